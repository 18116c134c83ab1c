"""Predict, then reveal (peer instruction): the teacher asks, every student commits an answer and a
confidence, the class sees its distribution without the right answer, may vote again, then sees the
computed answer. An answer given after something was revealed is kept but marked, and left out of the
distribution.
"""
import statistics
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa

from .board import to_csv
from .classes import check_student, find_class, teacher_class
from .db import answers, now, questions, students
from .names import ClassroomError
from .questions import CHOICE, Question

OPEN, DISTRIBUTION, SECOND_VOTE, ANSWER = "open", "distribution", "second_vote", "answer"
PHASES = (OPEN, DISTRIBUTION, SECOND_VOTE, ANSWER)
NEXT_PHASES = {OPEN: (DISTRIBUTION,), DISTRIBUTION: (SECOND_VOTE, ANSWER), SECOND_VOTE: (ANSWER,), ANSWER: ()}
MAX_QUESTIONS = 100  # per class


@dataclass(frozen=True)
class Asked:
    id: int
    question: Question
    phase: str
    answer: object  # the computed answer, None until known (shown only once revealed: see `summary`)


@dataclass(frozen=True)
class Summary:
    phase: str
    answered: dict  # vote round → students who answered before anything was revealed
    late: int  # answers given after a reveal
    distribution: dict | None  # round → counts per choice, or quartiles of numbers; None until revealed
    mean_confidence: dict | None  # round → mean confidence; None until revealed
    answer: object  # None until the answer is revealed


def _asked(row) -> Asked:
    return Asked(row.id, Question(row.kind, row.params), row.phase, row.answer)


def ask(engine: sa.Engine, code, teacher_key, question: Question, answer=None) -> int:
    """Open `question` in the class; `answer` is its computed answer when already known."""
    info = teacher_class(engine, code, teacher_key)
    stored = None if answer is None else question.check_answer(answer)
    with engine.begin() as conn:
        count = conn.execute(sa.select(sa.func.count()).where(questions.c.class_id == info.id)).scalar_one()
        if count >= MAX_QUESTIONS:
            raise ClassroomError(f"a class holds at most {MAX_QUESTIONS} questions")
        return conn.execute(questions.insert().values(class_id=info.id, kind=question.kind, params=question.params,
                                                      phase=OPEN, answer=stored, created=now())
                            ).inserted_primary_key[0]


def _question(conn, class_id: int, question_id: int) -> Asked:
    row = conn.execute(sa.select(questions).where(questions.c.id == question_id,
                                                  questions.c.class_id == class_id)).first()
    if row is None:
        raise ClassroomError("that question was not asked in this class")
    return _asked(row)


def asked_questions(engine: sa.Engine, code) -> list[Asked]:
    info = find_class(engine, code)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(questions).where(questions.c.class_id == info.id).order_by(questions.c.id))
        return [_asked(row) for row in rows]


def set_answer(engine: sa.Engine, code, teacher_key, question_id: int, answer) -> None:
    """Store the computed answer once the run it needs has finished."""
    info = teacher_class(engine, code, teacher_key)
    with engine.begin() as conn:
        stored = _question(conn, info.id, question_id).question.check_answer(answer)
        conn.execute(questions.update().where(questions.c.id == question_id).values(answer=stored))


def advance(engine: sa.Engine, code, teacher_key, question_id: int, phase: str) -> None:
    """Move the question on: reveal the distribution, open a second vote, reveal the answer."""
    info = teacher_class(engine, code, teacher_key)
    with engine.begin() as conn:
        current = _question(conn, info.id, question_id)
        if phase not in NEXT_PHASES[current.phase]:
            raise ClassroomError(f"the question is at {current.phase}; it can go on to "
                                 f"{' or '.join(NEXT_PHASES[current.phase]) or 'nothing more'}")
        if phase == ANSWER and current.answer is None:
            raise ClassroomError("the answer is not measured yet: wait for its run to finish")
        # the phase is checked in the update too, so two teacher screens cannot both move it on
        moved = conn.execute(questions.update().where(questions.c.id == question_id,
                                                      questions.c.phase == current.phase).values(phase=phase))
        if not moved.rowcount:
            raise ClassroomError("the question was moved on from another screen")


def _round_of(conn, current: Asked) -> tuple[int, bool]:
    """The vote round an answer given now belongs to, and whether it comes after a reveal."""
    if current.phase == OPEN:
        return 1, False
    if current.phase == SECOND_VOTE:
        return 2, False
    had_second = conn.execute(sa.select(answers.c.id).where(answers.c.question_id == current.id,
                                                            answers.c.vote_round == 2).limit(1)).first()
    return (2 if had_second else 1), True


def answer(engine: sa.Engine, code, student_id, token, question_id: int, value, confidence) -> tuple[int, bool]:
    """Commit the student's answer: (vote round, after a reveal). Once per round; ClassroomError otherwise."""
    student = check_student(engine, code, student_id, token)
    if isinstance(confidence, bool) or confidence not in (1, 2, 3, 4, 5):
        raise ClassroomError("say how sure you are, from 1 (a guess) to 5 (certain)")
    try:
        with engine.begin() as conn:
            current = _question(conn, student.class_id, question_id)
            value = current.question.check_value(value)
            vote_round, late = _round_of(conn, current)
            conn.execute(answers.insert().values(question_id=question_id, student_id=student.id,
                                                 vote_round=vote_round, value=value, confidence=int(confidence),
                                                 after_reveal=late, time=now()))
    except sa.exc.IntegrityError:
        raise ClassroomError("you have answered this round already") from None
    return vote_round, late


def _spread(question: Question, values: list):
    if question.answer_type == CHOICE:
        counts = Counter(values)
        return {choice: counts[choice] for choice in question.choices}
    if not values:
        return {"n": 0}
    quartiles = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return {"n": len(values), "min": min(values), "q1": quartiles[0], "median": quartiles[1], "q3": quartiles[2],
            "max": max(values)}


def summary(engine: sa.Engine, code, question_id: int) -> Summary:
    """What the class may see of a question now: the answer only once revealed."""
    info = find_class(engine, code)
    with engine.connect() as conn:
        current = _question(conn, info.id, question_id)
        rows = conn.execute(sa.select(answers.c.vote_round, answers.c.value, answers.c.confidence,
                                      answers.c.after_reveal).where(answers.c.question_id == question_id)).all()
    on_time = [r for r in rows if not r.after_reveal]
    rounds = sorted({r.vote_round for r in on_time})
    answered = {n: sum(r.vote_round == n for r in on_time) for n in rounds}
    shown = current.phase != OPEN
    distribution = {n: _spread(current.question, [r.value for r in on_time if r.vote_round == n])
                    for n in rounds} if shown else None
    confidence = {n: statistics.fmean(r.confidence for r in on_time if r.vote_round == n)
                  for n in rounds} if shown else None
    return Summary(current.phase, answered, len(rows) - len(on_time), distribution, confidence,
                   current.answer if current.phase == ANSWER else None)


ANSWER_COLUMNS = ("question", "prompt", "nickname", "vote_round", "answer", "confidence", "after_reveal", "time")


def answer_rows(engine: sa.Engine, code) -> list[tuple]:
    """Every answer in the class, in ANSWER_COLUMNS' order, by question then time."""
    info = find_class(engine, code)
    query = (sa.select(questions.c.id, questions.c.kind, questions.c.params, students.c.nickname,
                       answers.c.vote_round, answers.c.value, answers.c.confidence, answers.c.after_reveal,
                       answers.c.time)
             .join(questions, questions.c.id == answers.c.question_id)
             .join(students, students.c.id == answers.c.student_id)
             .where(questions.c.class_id == info.id).order_by(questions.c.id, answers.c.time, answers.c.id))
    with engine.connect() as conn:
        return [(r.id, Question(r.kind, r.params).prompt, r.nickname, r.vote_round, r.value, r.confidence,
                 bool(r.after_reveal), r.time) for r in conn.execute(query)]


def answers_csv(engine: sa.Engine, code) -> str:
    return to_csv(ANSWER_COLUMNS, answer_rows(engine, code))
