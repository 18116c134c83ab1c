"""A class: created by a teacher (a code to share, a key to keep), joined by students with a nickname.

Every teacher action checks the teacher key against its stored hash; every student action checks the
student's own token, returned once on joining and kept in that student's session, so nobody can act
for somebody else by knowing a nickname.
"""
from dataclasses import dataclass

import sqlalchemy as sa

from .db import classes, now, students
from .names import (
    ClassroomError,
    new_code,
    new_secret,
    nickname_key,
    normal_code,
    normal_nickname,
    secret_hash,
    secret_matches,
)

MAX_STUDENTS = 300  # a lecture hall, and a bound on what one person joining in a loop can add
MAX_SETTINGS = 50
MAX_SETTING_NAME = 40
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class ClassInfo:
    id: int
    code: str
    settings: dict
    created: float
    closed: float | None

    @property
    def is_open(self) -> bool:
        return self.closed is None


@dataclass(frozen=True)
class Student:
    id: int
    class_id: int
    nickname: str
    token: str = ""  # given back only by `join`: the student's session keeps it


def check_settings(locked: dict, hidden, board_for_students: bool) -> dict:
    """The class's settings as stored: locked settings with their values, hidden controls' names."""
    if not isinstance(locked, dict) or isinstance(hidden, (str, bytes)) or not isinstance(board_for_students, bool):
        raise ClassroomError("settings must be a table of locked values, a list of hidden controls, yes/no")
    hidden = list(dict.fromkeys(hidden))
    if len(locked) + len(hidden) > MAX_SETTINGS:
        raise ClassroomError(f"at most {MAX_SETTINGS} settings can be locked or hidden")
    for name in [*locked, *hidden]:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_SETTING_NAME:
            raise ClassroomError(f"a setting's name is up to {MAX_SETTING_NAME} characters, got {name!r}"[:200])
    for name, value in locked.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, _SCALARS) for v in values):
            raise ClassroomError(f"the locked value of {name} must be a number, text, yes/no or a list of them")
    return {"locked": dict(locked), "hidden": hidden, "board_for_students": board_for_students}


def _info(row) -> ClassInfo:
    return ClassInfo(row.id, row.code, row.settings, row.created, row.closed)


def create_class(engine: sa.Engine, attempts: int = 5) -> tuple[ClassInfo, str]:
    """A new open class and its teacher key (shown once: only its hash is stored)."""
    key = new_secret()
    for _ in range(attempts):
        code = new_code()
        try:
            with engine.begin() as conn:
                conn.execute(classes.insert().values(code=code, teacher_key_hash=secret_hash(key),
                                                     settings=check_settings({}, [], False), created=now()))
        except sa.exc.IntegrityError:
            continue  # the code is taken: draw another
        return find_class(engine, code), key
    raise ClassroomError("no free class code was found; try again")


def find_class(engine: sa.Engine, code) -> ClassInfo:
    """The class with `code` (as typed), open or closed; ClassroomError when there is none."""
    code = normal_code(code)
    with engine.connect() as conn:
        row = conn.execute(sa.select(classes).where(classes.c.code == code)).first()
    if row is None:
        raise ClassroomError(f"no class has the code {code}: check it with your teacher")
    return _info(row)


def teacher_class(engine: sa.Engine, code, teacher_key) -> ClassInfo:
    """The class, when `teacher_key` is its key; ClassroomError otherwise."""
    code = normal_code(code)
    with engine.connect() as conn:
        row = conn.execute(sa.select(classes).where(classes.c.code == code)).first()
    if row is None or not secret_matches(teacher_key, row.teacher_key_hash):
        raise ClassroomError("only the class's teacher can do this")
    return _info(row)


def open_class(engine: sa.Engine, code) -> ClassInfo:
    info = find_class(engine, code)
    if not info.is_open:
        raise ClassroomError(f"class {info.code} is closed")
    return info


def join(engine: sa.Engine, code, nickname) -> Student:
    """Join an open class; the returned Student's token proves who answers and posts from now on."""
    info, nickname = open_class(engine, code), normal_nickname(nickname)
    token = new_secret()
    try:
        with engine.begin() as conn:
            joined = conn.execute(sa.select(sa.func.count()).where(students.c.class_id == info.id)).scalar_one()
            if joined >= MAX_STUDENTS:
                raise ClassroomError(f"class {info.code} is full ({MAX_STUDENTS} students)")
            student_id = conn.execute(students.insert().values(
                class_id=info.id, nickname=nickname, nickname_key=nickname_key(nickname),
                token_hash=secret_hash(token), entries=0, joined=now())).inserted_primary_key[0]
    except sa.exc.IntegrityError:
        raise ClassroomError("that nickname is taken in this class: choose another") from None
    return Student(student_id, info.id, nickname, token)


def check_student(engine: sa.Engine, code, student_id, token) -> Student:
    """The student, when `token` is theirs and they are in the open class `code`; ClassroomError otherwise."""
    info = open_class(engine, code)
    with engine.connect() as conn:
        row = conn.execute(sa.select(students).where(students.c.id == student_id,
                                                     students.c.class_id == info.id)).first()
    if row is None or not secret_matches(token, row.token_hash):
        raise ClassroomError("you are not in this class under that name: join again")
    return Student(row.id, row.class_id, row.nickname)


def roster(engine: sa.Engine, code) -> list[str]:
    """The class's nicknames in the order they joined."""
    info = find_class(engine, code)
    with engine.connect() as conn:
        return list(conn.execute(sa.select(students.c.nickname).where(students.c.class_id == info.id)
                                 .order_by(students.c.id)).scalars())


def set_settings(engine: sa.Engine, code, teacher_key, locked: dict, hidden=(), board_for_students=False) -> None:
    info = teacher_class(engine, code, teacher_key)
    settings = check_settings(locked, hidden, board_for_students)
    with engine.begin() as conn:
        conn.execute(classes.update().where(classes.c.id == info.id).values(settings=settings))


def close_class(engine: sa.Engine, code, teacher_key) -> None:
    """No more joins, answers or board entries; the board and answers stay, to read and export."""
    info = teacher_class(engine, code, teacher_key)
    with engine.begin() as conn:
        conn.execute(classes.update().where(classes.c.id == info.id).values(closed=now()))


def reopen_class(engine: sa.Engine, code, teacher_key) -> None:
    info = teacher_class(engine, code, teacher_key)
    with engine.begin() as conn:
        conn.execute(classes.update().where(classes.c.id == info.id).values(closed=None))
