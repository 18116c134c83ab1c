"""The Class page through Streamlit's AppTest: a teacher's session and students' sessions on one server's
class database; the answer it reveals is checked against count_parameters."""
import html
import json

import pytest
from conftest import APP, open_session, train_baseline
from plain_text import as_shown
from streamlit.testing.v1 import AppTest

import classroom as cr
import lora_core as lc
from ui import classroom as uc

PAGE = "app_pages/class.py"


@pytest.fixture(autouse=True)
def embedded_database(monkeypatch):
    monkeypatch.delenv(cr.DATABASE_ENV, raising=False)  # SQLite in the test session's cache folder


def on_page(settings: dict | None = None, /, **query):
    """A new session on the Class page with `settings`, opened with a link carrying `query`."""
    at = AppTest.from_file(APP, default_timeout=300)
    at.switch_page(PAGE)
    for name, value in (settings or {}).items():
        at.session_state[name] = value
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    return at


def button(at, label):
    return next(b for b in at.button if b.label == label)


def test_a_teacher_starts_a_class_students_join_answer_and_see_the_measured_answer():
    teacher = on_page()
    button(teacher, "Start a class").click().run()
    code, key = teacher.session_state[uc.TEACHER]
    assert cr.teacher_class(uc.engine(), code, key).code == code
    assert any(c.value.endswith(f"?class={code}") for c in teacher.code)  # the join link, also drawn as a QR code

    hostile = "[x](http://e.x) **<b>"  # at most MAX_NICKNAME characters
    student = on_page(**{"class": code})
    assert student.text_input(key="class_code").value == code  # the link fills the code in
    student.text_input(key="class_nickname").set_value(hostile)
    next(b for b in student.button if b.label == "Join").click().run()
    assert not student.exception, student.exception
    assert cr.roster(uc.engine(), code) == [hostile]

    choice = teacher.selectbox(key="class_question")
    choice.select_index(next(i for i, o in enumerate(choice.options) if o.startswith("How many trainable"))).run()
    button(teacher, "Ask").click().run()
    asked = cr.asked_questions(uc.engine(), code)[-1]
    assert asked.question.kind == "rank_parameters"
    expected = lc.count_parameters(lc.add_lora(lc.MLP(asked.question.params["hidden1"],
                                                      asked.question.params["hidden2"]),
                                               asked.question.params["rank"]))["lora"]
    assert asked.answer == expected  # computed when asked: a closed form, checked against the model's count

    student.run()
    student.number_input[0].set_value(1234)
    next(b for b in student.button if b.label == "Commit").click().run()
    assert cr.summary(uc.engine(), code, asked.id).answered == {1: 1}

    student_entry = cr.check_student(uc.engine(), code, *student.session_state[uc.STUDENT][1:])
    cr.post(uc.engine(), code, student_entry.id, student.session_state[uc.STUDENT][2], "ab" * 32,
            cr.RunNumbers(0.93, 12, 40, 6794, "rank 1"))
    teacher.run()
    button(teacher, "Reveal the distribution").click().run()
    button(teacher, "Reveal the answer").click().run()
    assert not teacher.exception, teacher.exception
    assert cr.summary(uc.engine(), code, asked.id).answer == expected
    assert any(f"Measured: {expected}" in s.value for s in teacher.success)
    assert any(hostile in as_shown(c.value) for c in teacher.caption)  # the scatter's words: plain text
    assert list(teacher.dataframe[-1].value["students"]) == [hostile]
    [scatter] = [json.loads(c.proto.spec) for c in teacher.get("plotly_chart")]
    point = scatter["data"][0]
    assert (point["x"], point["y"], point["customdata"]) == ([12], [40], ["rank 1"])
    assert point["text"] == [html.escape(hostile)]  # plotly's own HTML subset shows the tags as written


SMALL = {"base_hidden1": 32, "base_hidden2": 32, "base_max_steps": 10, "lora_steps": 5}


def test_a_student_s_finished_finetune_reaches_the_board_and_answers_the_teacher_s_questions(data):
    student = open_session(SMALL)
    held = train_baseline(student)
    student.switch_page("app_pages/lora.py").run()
    student.button(key="lora_train").click().run()
    assert not student.exception, student.exception
    config = student.session_state["experiment"].finetune
    core = lc.finetune_lora(held["run"].model, data, config)  # the same finetune, called directly

    teacher = on_page(SMALL)  # the class's experiment: the one the student trained
    button(teacher, "Start a class").click().run()
    code = teacher.session_state[uc.TEACHER][0]
    student.switch_page(PAGE).run()
    student.text_input(key="class_code").set_value(code)
    student.text_input(key="class_nickname").set_value("Ada")
    next(b for b in student.button if b.label == "Join").click().run()
    student.run()  # the board's refresh puts the finished finetune on it
    [entry] = cr.read(uc.engine(), code)
    target = sum(core.after.wrong_per_class[d] for d in config.digits)
    assert (entry.nickname, entry.accuracy, entry.target_wrong, entry.other_wrong, entry.trainable) == \
        ("Ada", core.after.accuracy, target, core.after.wrong - target, core.parameters["trainable"])

    choice = teacher.run().selectbox(key="class_question")
    for prompt in ("With rank", "Will the adapter"):
        choice.select_index(next(i for i, o in enumerate(choice.options) if o.startswith(prompt))).run()
        button(teacher, "Ask").click().run()
        assert not teacher.exception, teacher.exception
    still_wrong, strength_zero = cr.asked_questions(uc.engine(), code)
    assert still_wrong.answer == core.after.wrong_per_class[config.digits[0]]
    assert strength_zero.answer == ["yes"]

    student.switch_page("app_pages/lora.py").run()
    student.number_input(key="lora_steps").set_value(6).run()
    student.button(key="lora_train").click().run()  # finished on the LoRA page: on the board without a visit
    assert not student.exception, student.exception
    assert [e.changes for e in cr.read(uc.engine(), code)] == ["steps 5", "steps 6"]


def test_the_teacher_closes_and_reopens_the_class_and_a_wrong_code_is_said_in_words():
    teacher = on_page()
    button(teacher, "Start a class").click().run()
    code = teacher.session_state[uc.TEACHER][0]
    button(teacher, "Close the class").click().run()
    assert not cr.find_class(uc.engine(), code).is_open
    assert any("is closed" in w.value for w in teacher.warning)
    student = on_page(**{"class": code})
    student.text_input(key="class_nickname").set_value("Ada")
    next(b for b in student.button if b.label == "Join").click().run()
    assert [as_shown(e.value) for e in student.error] == [f"class {code} is closed"]
    button(teacher, "Reopen the class").click().run()
    assert cr.find_class(uc.engine(), code).is_open
    wrong = next(c * cr.CODE_LENGTH for c in cr.CODE_ALPHABET if c * cr.CODE_LENGTH != code)
    student.text_input(key="class_code").set_value(wrong)
    next(b for b in student.button if b.label == "Join").click().run()
    assert not student.exception and uc.STUDENT not in student.session_state
    assert [as_shown(e.value) for e in student.error] == [f"no class has the code {wrong}: check it with your teacher"]
