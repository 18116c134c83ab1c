import streamlit as st

import classroom as cr
from service import runs, share_link
from ui import classroom as uc
from ui import context, experiment
from ui.plain import for_chart, plain
from views import class_board

ctx = context.current()
st.title("Class")
db = uc.engine()

if uc.role() is None:
    start, enter = st.columns(2)
    start.subheader("Teach")
    if start.button("Start a class", icon=":material/co_present:") and uc.attempt(uc.start_class):
        st.rerun()
    with start.expander("Reopen a class"):
        code, key = st.text_input("Class code", key="class_reopen_code"), st.text_input("Teacher key", type="password")
        st.button("Reopen") and uc.attempt(uc.take_over, code, key) and st.rerun()
    enter.subheader("Join")
    with enter.form("class_join"):
        code = st.text_input("Class code", st.session_state.get(uc.JOIN_CODE, ""), 12, key="class_code")
        nickname = st.text_input("Nickname", max_chars=cr.MAX_NICKNAME, key="class_nickname")
        st.form_submit_button("Join") and uc.attempt(uc.join, code, nickname) and st.rerun()
    st.stop()

role, code = uc.role()
info = cr.find_class(db, code)
teacher = role == "teacher"
# the teacher's board shows a finished run within 2 s (the refresh, plus its drawing); a student's page only
# posts their runs and follows the question, and there are many students
TEACHER_REFRESH_S, STUDENT_REFRESH_S = 1, 2


def draw_board() -> None:
    entries = cr.read(db, code)
    runs = cr.shared_runs(entries)
    st.subheader(f"Board: {len(runs)} run(s) from {len({e.nickname for e in entries})} student(s)")
    if not runs:
        st.info("No finished run yet: runs appear here when students finish a finetune on the LoRA page.")
        return
    rows = class_board.board_rows(runs)
    st.plotly_chart(class_board.board(runs, [for_chart(", ".join(r.nicknames)) for r in runs],
                                      [for_chart(r.entry.changes) for r in runs]), key="class_scatter")
    st.caption("One point per run: left is learned, low is kept. " + plain(class_board.board_points(rows)))
    measure = st.selectbox("Top 5 by", cr.MEASURES, key="class_measure")
    st.dataframe([rows[runs.index(r)] for r in cr.top(runs, measure)], hide_index=True)
    st.dataframe(rows, hide_index=True)
    st.download_button("Board as CSV", cr.board_csv(entries), f"class-{code}-board.csv", "text/csv",
                       on_click="ignore")


def draw_question(asked: cr.Asked) -> None:
    question, seen = asked.question, cr.summary(db, code, asked.id)
    st.subheader(plain(question.prompt))
    st.caption(f"{sum(seen.answered.values())} answer(s); phase: {seen.phase.replace('_', ' ')}"
               + (f"; {seen.late} after a reveal" if seen.late else ""))
    if seen.distribution is not None:
        for vote_round, spread in seen.distribution.items():
            st.write(f"Vote {vote_round}: " + ", ".join(f"{k} {v:,}" for k, v in spread.items()))
    if seen.answer is not None:
        answer = seen.answer if question.answer_type == "number" else " or ".join(seen.answer)
        st.success(f"Measured: {answer}")
        if question.kind in cr.PER_STUDENT:
            draw_predictions(asked)


def draw_predictions(asked: cr.Asked) -> None:
    """Each student's prediction against what their own run measured: on the diagonal, they were right."""
    points = cr.measured(uc.engine(), code, asked, runs.store().get)
    if not points:
        st.caption("Prediction against result: no student who answered has a run of this digit on the board yet.")
        return
    st.plotly_chart(class_board.predictions(points, [for_chart(p.nickname) for p, _, _ in points]),
                    key="class_predictions")
    st.caption("On the dotted line, the prediction was right. " + plain(class_board.prediction_points(points)))


@st.fragment(run_every=TEACHER_REFRESH_S if teacher else STUDENT_REFRESH_S)
def live() -> None:
    current = cr.asked_questions(db, code)
    if current:
        draw_question(current[-1])
    if teacher and current and current[-1].phase != cr.ANSWER:
        step = {cr.OPEN: cr.DISTRIBUTION, cr.DISTRIBUTION: cr.ANSWER, cr.SECOND_VOTE: cr.ANSWER}[current[-1].phase]
        cols = st.columns(2)
        if cols[0].button(f"Reveal the {step.replace('_', ' ')}", key="class_reveal"):
            uc.attempt(cr.advance, db, code, uc.teacher_key(), current[-1].id, step) and st.rerun()
        if current[-1].phase == cr.DISTRIBUTION and cols[1].button("Open a second vote", key="class_second"):
            uc.attempt(cr.advance, db, code, uc.teacher_key(), current[-1].id, cr.SECOND_VOTE) \
                and st.rerun()
    if role == "student" and (added := uc.post_finished_runs()):
        st.toast(f"{added} finished run(s) put on the board")
    if teacher or cr.find_class(db, code).settings["board_for_students"]:  # the teacher may change it
        draw_board()


if teacher:
    link, local_only = uc.join_link(code)
    left, right = st.columns([2, 1])
    left.markdown(f"## Class code: `{code}`")
    left.code(link, language=None)
    if local_only:
        left.warning(share_link.local_only_warning(st.get_option("server.port")))
    left.caption(f"{len(cr.roster(db, code))} student(s) joined.")
    with left.expander("Teacher key: reopens this class from another browser (do not project it)"):
        st.code(uc.teacher_key(), language=None)
    right.image(share_link.qr_png(link), caption="Scan to join", width=240)
    chosen = st.selectbox("Ask a question", cr.offered(experiment.current()), format_func=lambda q: q.prompt,
                          key="class_question")
    if st.button("Ask", icon=":material/quiz:"):
        uc.attempt(cr.ask, db, code, uc.teacher_key(), chosen, uc.computed_answer(chosen, ctx))
    current = cr.asked_questions(db, code)
    if current and current[-1].answer is None and st.button("Measure the answer from the stored runs"):
        measured = uc.computed_answer(current[-1].question, ctx)
        if measured is None:
            st.warning("The run this answer needs is not made yet: train it on its page first.")
        else:
            uc.attempt(cr.set_answer, db, code, uc.teacher_key(), current[-1].id, measured)
    settings = st.columns(2)
    shown = settings[0].toggle("Students see the board", value=info.settings["board_for_students"])
    if shown != info.settings["board_for_students"]:
        uc.attempt(cr.set_settings, db, code, uc.teacher_key(), info.settings["locked"], info.settings["hidden"], shown)
    uc.draw_setting_locks(code, info.settings)
    toggle = (cr.close_class, "Close the class") if info.is_open else (cr.reopen_class, "Reopen the class")
    settings[1].button(toggle[1]) and uc.attempt(toggle[0], db, code, uc.teacher_key()) and st.rerun()
    st.download_button("Answers as CSV", cr.answers_csv(db, code), f"class-{code}-answers.csv", "text/csv",
                       on_click="ignore")
else:
    st.markdown(f"You are in class `{code}`. Finish a finetune on the LoRA page: it comes to the board.")
    st.page_link("app_pages/lora.py", label="Go to LoRA finetuning", icon=":material/tune:")
    current = cr.asked_questions(db, code)
    if current and current[-1].phase in (cr.OPEN, cr.SECOND_VOTE):
        question = current[-1].question
        with st.form("class_answer"):
            st.markdown(plain(question.prompt))
            value = st.radio("Your answer", question.choices) if question.choices else \
                st.number_input("Your answer", min_value=0, step=1)
            confidence = st.slider("How sure are you?", 1, 5, 3)
            if st.form_submit_button("Commit"):
                if uc.attempt(cr.answer, db, code, *uc.student_id_token(), current[-1].id, value, confidence):
                    st.success("Committed.")
if not info.is_open:
    st.warning(f"Class {code} is closed: its board and answers stay to read and export.")
live()
if st.button("Leave this class"):
    uc.leave()
    st.rerun()
