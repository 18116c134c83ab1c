"""A class's locked and hidden settings through Streamlit's AppTest: its students' widgets show the class's
values, disabled, or are not drawn, and their runs use those values; a session in no class is unaffected."""
import pytest
from conftest import open_session
from test_classroom_page import PAGE, button, on_page

import classroom as cr
from service import runs
from ui import classroom as uc

CLASS_BASELINE = {"base_hidden1": 24, "base_hidden2": 16, "base_max_steps": 8}


@pytest.fixture(autouse=True)
def embedded_database(monkeypatch):
    monkeypatch.delenv(cr.DATABASE_ENV, raising=False)


def baseline_widgets(at):
    at.switch_page("app_pages/baseline.py").run()
    assert not at.exception, at.exception
    return {w.key: w for w in [*at.number_input, *at.select_slider, *at.selectbox]}


def test_a_student_trains_the_class_s_locked_baseline_and_an_outsider_keeps_their_own():
    teacher = on_page(CLASS_BASELINE)
    button(teacher, "Start a class").click().run()
    code = teacher.session_state[uc.TEACHER][0]
    teacher.multiselect(key="class_lock").set_value(["h1", "h2", "base_steps", "dataset"])
    teacher.multiselect(key="class_hide").set_value(["base_lr"])
    button(teacher, "Apply to the class").click().run()
    assert not teacher.exception, teacher.exception
    settings = cr.find_class(uc.engine(), code).settings
    assert settings["locked"] == {"h1": 24, "h2": 16, "base_steps": 8, "dataset": "mnist-sample", "base_lr": 1e-3}
    assert settings["hidden"] == ["base_lr"]

    # the student had chosen another baseline: the class's locks win
    student = open_session({"base_hidden1": 100, "base_hidden2": 90, "base_lr": 1e-2})
    student.switch_page(PAGE).run()
    student.text_input(key="class_code").set_value(code)
    student.text_input(key="class_nickname").set_value("Ada")
    next(b for b in student.button if b.label == "Join").click().run()
    widgets = baseline_widgets(student)
    for key, value in CLASS_BASELINE.items():
        assert widgets[key].disabled and widgets[key].value == value, key
    assert "base_lr" not in widgets  # hidden: not drawn
    assert widgets["base_epochs"].disabled is False  # not locked
    student.button(key="base_train").click().run()
    assert not student.exception, student.exception
    baseline = student.session_state["experiment"].baseline
    assert (baseline.hidden1, baseline.hidden2, baseline.max_steps, baseline.lr) == (24, 16, 8, 1e-3)
    trained = runs.find(runs.key(student.session_state["experiment"], "baseline", "cpu"))
    assert trained is not None and trained.config == baseline
    assert [p.shape[0] for n, p in trained.model.named_parameters() if n.endswith("weight")][:2] == [24, 16]

    outsider = open_session({"base_hidden1": 40})
    widgets = baseline_widgets(outsider)
    assert widgets["base_hidden1"].value == 40 and not widgets["base_hidden1"].disabled
    assert "base_lr" in widgets

    student.switch_page(PAGE).run()
    button(student, "Leave this class").click().run()  # out of the class: the controls are theirs again
    widgets = baseline_widgets(student)
    assert not widgets["base_hidden1"].disabled and "base_lr" in widgets
