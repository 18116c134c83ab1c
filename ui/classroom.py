"""The Class page's glue: the class database of this server, who this session is in a class (the teacher
key or the student's token stays in this session only), the questions the current experiment offers with
answers computed from its stored runs, and a student's finished finetunes put on the board.

Uses of other modules, kept few: service.environment.cache_dir (where SQLite lives), service.runs store / key
(finished runs by key), baseline.run_key / baseline.revive (the class's baseline), experiment.current,
share_link.link, server.browser_id.
"""
import streamlit as st

import classroom as cr
import lora_core as lc
from classroom import browsers, computed
from lora_core import presets as core_presets
from lora_core import settings as lc_settings
from service import environment, runs, share_link
from ui import baseline, experiment, server
from ui.plain import plain
from views import class_board

TEACHER, STUDENT, POSTED = "class_teacher", "class_student", "class_posted"
QUERY_KEY, JOIN_CODE = "class", "class_join_code"
PROOF_IMAGES = 256  # test images the strength-0 question compares outputs on
SHOWN_FINETUNES = "lora_shown"  # the LoRA page's finetune keys this session has shown (ui.finetunes)


@st.cache_resource(show_spinner=False)
def _database(url: str):
    return cr.open_database(url)


def engine():
    """This server's class database (LORA_LAB_DATABASE_URL, else SQLite in the cache folder)."""
    return _database(cr.database_url(environment.cache_dir()))


def remember_join_code() -> None:
    """Keep a join link's ?class=CODE for the Class page: call before the experiment rewrites the address."""
    given = st.query_params.get(QUERY_KEY)
    if given is not None:
        try:
            st.session_state[JOIN_CODE] = cr.normal_code(given)
        except cr.ClassroomError:
            pass  # not a code: the page's Join box stays empty


def attempt(action, *args) -> bool:
    """action(*args); False, with its reason shown in words, when the class refuses it."""
    try:
        action(*args)
    except cr.ClassroomError as error:
        st.error(plain(error))
        return False
    return True


def role() -> tuple[str, str] | None:
    """("teacher", code) or ("student", code) for this session, or None. A reload starts a new session: the
    teacher's browser finds its class again (classroom.browsers)."""
    if TEACHER not in st.session_state and STUDENT not in st.session_state and (browser := server.browser_id()):
        if found := browsers.teacher_of(engine(), browser):
            st.session_state[TEACHER] = found
    if TEACHER in st.session_state:
        return "teacher", st.session_state[TEACHER][0]
    if STUDENT in st.session_state:
        return "student", st.session_state[STUDENT][0]
    return None


def start_class() -> None:
    info, key = cr.create_class(engine())
    st.session_state[TEACHER] = (info.code, key)
    _remember_browser()


def _remember_browser() -> None:
    if browser := server.browser_id():
        browsers.remember_teacher(engine(), *st.session_state[TEACHER], browser)


def take_over(code: str, key: str) -> None:
    """The teacher reopens a class from another session with its code and key."""
    info = cr.teacher_class(engine(), code, key)
    st.session_state[TEACHER] = (info.code, key)
    _remember_browser()


def join(code: str, nickname: str) -> None:
    student = cr.join(engine(), code, nickname)
    st.session_state[STUDENT] = (cr.normal_code(code), student.id, student.token)


def student_settings() -> dict:
    """The settings this session's class locks and hides ({} for a session that is no class's student): its
    teacher may change them at any time, so they are read on every run."""
    if STUDENT not in st.session_state:
        return {}
    try:
        return cr.find_class(engine(), st.session_state[STUDENT][0]).settings
    except cr.ClassroomError:
        return {}


def draw_setting_locks(code: str, settings: dict) -> None:
    """The teacher locks settings (shown, not editable) and hides others (not drawn) for the class's students,
    at the values the teacher's own experiment holds when applied."""
    with st.expander("Lock or hide settings for the students"):
        st.caption("A locked setting is shown to every student of the class but cannot be changed; a hidden one "
                   "is not drawn. Both take the values your own pages hold now.")
        names = list(lc_settings.BY_URL)
        lock = st.multiselect("Locked (shown, not editable)", names, [u for u in settings["locked"]
                              if u not in settings["hidden"]], format_func=class_board.setting_name, key="class_lock")
        hide = st.multiselect("Hidden", names, settings["hidden"], format_func=class_board.setting_name,
                              key="class_hide")
        if not st.button("Apply to the class", key="class_apply_locks"):
            return
        exp, chosen = experiment.current(), [*(u for u in lock if u not in hide), *hide]
        values = {url: experiment.widget_value(core_presets.get(exp, lc_settings.BY_URL[url].path)) for url in chosen}
        if attempt(cr.set_settings, engine(), code, teacher_key(), values, hide, settings["board_for_students"]):
            st.rerun()


def teacher_key() -> str:
    return st.session_state[TEACHER][1]


def student_id_token() -> tuple[int, str]:
    return st.session_state[STUDENT][1], st.session_state[STUDENT][2]


def leave() -> None:
    if TEACHER in st.session_state and (browser := server.browser_id()):
        browsers.forget_teacher(engine(), browser)  # else a reload would bring the class back
    for name in (TEACHER, STUDENT, POSTED):
        st.session_state.pop(name, None)


def join_link(code: str) -> tuple[str, bool]:
    return share_link.link(st.context.url, {QUERY_KEY: code})


def computed_answer(question: cr.Question, ctx):
    """The question's answer from the current experiment's stored runs; None while a run it needs is not made."""
    exp, store = experiment.current(), runs.store()
    if question.kind == "rank_parameters":
        return computed.rank_parameters(question, exp.finetune.targets)
    if question.kind == "least_forgetting":
        found = store.get(runs.key(exp, "compare", ctx.device))
        return computed.least_forgetting(question, found.rows) if isinstance(found, lc.Comparison) else None
    record = store.get(runs.key(exp, "finetune", ctx.device))
    if record is None:
        return None
    if question.kind == "still_wrong":
        return computed.still_wrong(question, record["config"], record["after"])
    base = store.get(baseline.run_key(ctx, exp), baseline.revive(ctx))
    if base is None:
        return None
    tuned = lc.attach(lc.copy_model(base.model), record["adapter"])
    return computed.strength_zero(question, base.model, tuned, ctx.data.test_x[:PROOF_IMAGES])


def post_finished_runs() -> int:
    """Put this student's finished finetunes (those the LoRA page showed) on the class board: how many are
    new. Nothing for a session in no class; a refusal (the class closed, the student's limit) is a toast."""
    if STUDENT not in st.session_state:
        return 0
    code, (student_id, token) = st.session_state[STUDENT][0], student_id_token()
    posted = st.session_state.setdefault(POSTED, set())
    added = 0
    for key in sorted(st.session_state.get(SHOWN_FINETUNES, ())):
        record = None if key in posted else runs.store().get(key)
        if record is None or record.get("after") is None:
            continue
        try:
            added += cr.post(engine(), code, student_id, token, key, computed.run_numbers(record))
        except cr.ClassroomError as error:
            st.toast(plain(f"Not put on the class board: {error}"))
        posted.add(key)
    return added
