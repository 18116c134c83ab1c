"""The prediction-against-result scatter: each student's committed answer against their own run's count,
checked against the class database and against lora_core's finetunes called directly."""
import json

import pytest
from conftest import open_session, train_baseline
from test_classroom_page import PAGE, button, on_page

import classroom as cr
import lora_core as lc
from ui import classroom as uc

SMALL = {"base_hidden1": 32, "base_hidden2": 32, "base_max_steps": 10, "lora_steps": 5}


@pytest.fixture(autouse=True)
def embedded_database(monkeypatch):
    monkeypatch.delenv(cr.DATABASE_ENV, raising=False)


def student_with_a_finetune(steps: int):
    """A session that trained the small baseline and a rank-1 finetune of digit 2 for `steps` steps."""
    student = open_session({**SMALL, "lora_steps": steps})
    held = train_baseline(student)
    student.switch_page("app_pages/lora.py").run()
    if not student.button(key="lora_train").disabled:  # else the server has this finetune stored: shown
        student.button(key="lora_train").click().run()
    assert not student.exception, student.exception
    return student, held["run"]


def join(student, code: str, nickname: str) -> None:
    student.switch_page(PAGE).run()
    student.text_input(key="class_code").set_value(code)
    student.text_input(key="class_nickname").set_value(nickname)
    next(b for b in student.button if b.label == "Join").click().run()
    assert not student.exception, student.exception


def commit(student, value: int, confidence: int) -> None:
    student.run()
    student.number_input[0].set_value(value)
    student.slider[0].set_value(confidence)
    next(b for b in student.button if b.label == "Commit").click().run()
    assert not student.exception, student.exception


def test_each_student_s_prediction_is_drawn_against_their_own_run(data):
    teacher = on_page({**SMALL, "lora_steps": 3})  # the question: Ada's finetune, which answers it
    button(teacher, "Start a class").click().run()
    code = teacher.session_state[uc.TEACHER][0]
    trained = {}
    for nickname, steps in (("Ada", 3), ("Bo", 4)):  # steps no other test stores
        student, baseline = student_with_a_finetune(steps)
        join(student, code, nickname)  # the finished finetune goes onto the board
        trained[nickname] = (student, lc.finetune_lora(baseline.model, data,
                                                       student.session_state["experiment"].finetune))
    teacher.run()
    choice = teacher.selectbox(key="class_question")
    choice.select_index(next(i for i, o in enumerate(choice.options) if o.startswith("With rank"))).run()
    button(teacher, "Ask").click().run()
    asked = cr.asked_questions(uc.engine(), code)[-1]
    assert asked.question.kind == "still_wrong" and asked.question.params["digit"] == 2
    commit(trained["Ada"][0], 7, 4)
    commit(trained["Bo"][0], 30, 2)
    teacher.run()
    button(teacher, "Reveal the distribution").click().run()
    button(teacher, "Open a second vote").click().run()
    commit(trained["Bo"][0], 12, 5)  # Bo changes his mind: his last answer counts
    teacher.run()
    button(teacher, "Reveal the answer").click().run()
    assert not teacher.exception, teacher.exception

    in_database = {p.nickname: (p.predicted, p.confidence) for p in cr.predictions(uc.engine(), code, asked.id)}
    assert in_database == {"Ada": (7, 4), "Bo": (12, 5)}
    board = {e.nickname: e.run_key for e in cr.read(uc.engine(), code)}
    [chart] = [json.loads(c.proto.spec) for c in teacher.get("plotly_chart")
               if "predicted" in json.loads(c.proto.spec)["layout"]["xaxis"]["title"]["text"]]
    points = next(trace for trace in chart["data"] if trace.get("mode") == "markers")
    drawn = {name: (x, y, sure) for name, x, y, sure in zip(points["text"], points["x"], points["y"],
                                                             points["customdata"], strict=True)}
    expected = {name: (in_database[name][0], run.after.wrong_per_class[2], in_database[name][1])
                for name, (_, run) in trained.items()}
    assert drawn == expected  # x: the database's last answer; y: the student's own finetune, run again here
    assert len(set(board.values())) == 2  # two different runs: 3 and 4 steps
