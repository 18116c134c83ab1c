"""Prediction against result: each student's committed answer to a question next to what their own runs on
the board measured, for a question every student measures in their own run (how many of a digit stay
wrong: each student's finetune of that digit gives its own count)."""
from dataclasses import dataclass

import sqlalchemy as sa

from .classes import find_class
from .db import answers, board_entries, questions, students
from .names import ClassroomError
from .questions import Question

PER_STUDENT = ("still_wrong",)  # the kinds whose answer each student's own run measures


@dataclass(frozen=True)
class Prediction:
    nickname: str
    predicted: float  # the student's last committed answer (the second vote's, when there was one)
    confidence: int
    run_keys: tuple[str, ...]  # the student's runs on the board, newest first


def predictions(engine: sa.Engine, code, question_id: int) -> list[Prediction]:
    """Every student who answered the question, in the order they joined, with their board runs: two queries."""
    info = find_class(engine, code)
    with engine.connect() as conn:
        kind = conn.execute(sa.select(questions.c.kind).where(
            questions.c.id == question_id, questions.c.class_id == info.id)).scalar_one_or_none()
        if kind is None:
            raise ClassroomError("that question was not asked in this class")
        given = conn.execute(
            sa.select(students.c.id, students.c.nickname, answers.c.value, answers.c.confidence)
            .join(students, students.c.id == answers.c.student_id)
            .where(answers.c.question_id == question_id)
            .order_by(students.c.id, answers.c.vote_round, answers.c.time, answers.c.id)).all()
        runs = conn.execute(sa.select(board_entries.c.student_id, board_entries.c.run_key)
                            .where(board_entries.c.class_id == info.id)
                            .order_by(board_entries.c.time.desc(), board_entries.c.id.desc())).all()
    last = {row.id: row for row in given}  # ordered by round then time: the last one stays
    keys: dict[int, list[str]] = {}
    for row in runs:
        keys.setdefault(row.student_id, []).append(row.run_key)
    return [Prediction(row.nickname, row.value, row.confidence, tuple(keys.get(student, ())))
            for student, row in last.items()]


def own_result(question: Question, record: dict) -> int | None:
    """What a student's finished finetune (a run store record) measured for the question: the test images of
    the question's digit it still gets wrong; None when the run did not finetune that digit."""
    if question.kind not in PER_STUDENT:
        raise ValueError(f"{question.kind} has one answer for the class, not one per student")
    digit = question.params["digit"]
    if record.get("after") is None or digit not in record["config"].digits:
        return None
    return int(record["after"].wrong_per_class[digit])


def measured(engine: sa.Engine, code, asked, find) -> list[tuple[Prediction, str, int]]:
    """(prediction, run key, result) for each student who answered `asked` and has a run on the board that
    measures its question (their newest such run); `find(key)` is the run store's record of a key, or None."""
    points = []
    for prediction in predictions(engine, code, asked.id):
        for key in prediction.run_keys:
            record = find(key)
            if record is not None and (result := own_result(asked.question, record)) is not None:
                points.append((prediction, key, result))
                break
    return points
