"""classroom: a class sees itself — a class code and nicknames, predict-then-reveal questions whose answers
lora_core computes, and a board of every student's finished runs, kept in SQLite or PostgreSQL.
Nothing here imports Streamlit; ui.classroom draws it."""

from .board import (
    MAX_ENTRIES_PER_STUDENT,
    MEASURES,
    BoardEntry,
    RunNumbers,
    SharedRun,
    board_csv,
    post,
    read,
    remove,
    shared_runs,
    top,
)
from .classes import (
    MAX_STUDENTS,
    ClassInfo,
    Student,
    check_student,
    close_class,
    create_class,
    find_class,
    join,
    reopen_class,
    roster,
    set_settings,
    teacher_class,
)
from .db import DATABASE_ENV, database_url, open_database
from .names import CODE_ALPHABET, CODE_COUNT, CODE_LENGTH, MAX_NICKNAME, ClassroomError, normal_code, normal_nickname
from .predictions import PER_STUDENT, Prediction, measured, own_result, predictions
from .questions import KINDS, Question, offered
from .votes import (
    ANSWER,
    DISTRIBUTION,
    OPEN,
    PHASES,
    SECOND_VOTE,
    Asked,
    Summary,
    advance,
    answer,
    answers_csv,
    ask,
    asked_questions,
    set_answer,
    summary,
)

__all__ = [
    "MAX_ENTRIES_PER_STUDENT", "MEASURES", "BoardEntry", "RunNumbers", "SharedRun", "board_csv", "post", "read",
    "remove", "shared_runs", "top",
    "MAX_STUDENTS", "ClassInfo", "Student", "check_student", "close_class", "create_class", "find_class", "join",
    "reopen_class", "roster", "set_settings", "teacher_class",
    "DATABASE_ENV", "database_url", "open_database",
    "CODE_ALPHABET", "CODE_COUNT", "CODE_LENGTH", "MAX_NICKNAME", "ClassroomError", "normal_code", "normal_nickname",
    "PER_STUDENT", "Prediction", "measured", "own_result", "predictions",
    "KINDS", "Question", "offered",
    "ANSWER", "DISTRIBUTION", "OPEN", "PHASES", "SECOND_VOTE", "Asked", "Summary", "advance", "answer",
    "answers_csv", "ask", "asked_questions", "set_answer", "summary",
]
