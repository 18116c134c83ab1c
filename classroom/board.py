"""The class board: each student's finished runs, referenced by the run store's key, with the few numbers
the board shows. One read per refresh; a run that several students share is one run with a count.
"""
import csv
import io
import math
import re
from dataclasses import astuple, dataclass, fields

import sqlalchemy as sa

from .classes import check_student, find_class, teacher_class
from .db import board_entries, now, students
from .names import ClassroomError

MAX_ENTRIES_PER_STUDENT = 20  # a class board, not a sweep: nobody's runs push the others off it
MAX_CHANGES = 200  # characters of "what this run changed from the class's settings"
_RUN_KEY = re.compile(r"[0-9a-f]{64}")  # lora_core.store.run_key: a SHA-256 in hex
MEASURES = ("accuracy", "target_wrong", "other_wrong", "trainable")
_LOWER_IS_BETTER = {"target_wrong", "other_wrong", "trainable"}


@dataclass(frozen=True)
class RunNumbers:
    """What the board shows of a finished run."""
    accuracy: float  # on the whole test set, 0..1
    target_wrong: int  # test errors on the finetuned digits
    other_wrong: int  # test errors on every other digit
    trainable: int  # parameters trained
    changes: str = ""  # what the run changed from the class's settings, e.g. "rank 4, 300 steps"

    def __post_init__(self):
        if isinstance(self.accuracy, bool) or not isinstance(self.accuracy, (int, float)) \
                or not 0 <= self.accuracy <= 1 or math.isnan(self.accuracy):
            raise ValueError(f"accuracy must be a fraction in 0..1, got {self.accuracy!r}")
        for name in ("target_wrong", "other_wrong", "trainable"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number ≥ 0, got {value!r}")
        if not isinstance(self.changes, str) or len(self.changes) > MAX_CHANGES:
            raise ValueError(f"changes must be text of at most {MAX_CHANGES} characters")


@dataclass(frozen=True)
class BoardEntry:
    id: int
    nickname: str
    run_key: str
    accuracy: float
    target_wrong: int
    other_wrong: int
    trainable: int
    changes: str
    time: float


@dataclass(frozen=True)
class SharedRun:
    """One run on the board, with every student who posted it."""
    run_key: str
    nicknames: tuple[str, ...]
    entry: BoardEntry  # the first posting: its numbers are the run's

    @property
    def count(self) -> int:
        return len(self.nicknames)


def post(engine: sa.Engine, code, student_id, token, run_key: str, numbers: RunNumbers) -> bool:
    """Put a student's finished run on the board: True when added, False when it is there already."""
    if not isinstance(run_key, str) or not _RUN_KEY.fullmatch(run_key):
        raise ClassroomError("that is not a finished run's key")
    student = check_student(engine, code, student_id, token)
    try:
        return _post(engine, student, run_key, numbers)
    except sa.exc.IntegrityError:
        return False  # the same run posted twice at once: the other posting holds it


def _post(engine: sa.Engine, student, run_key: str, numbers: RunNumbers) -> bool:
    with engine.begin() as conn:
        exists = conn.execute(sa.select(board_entries.c.id).where(
            board_entries.c.student_id == student.id, board_entries.c.run_key == run_key)).first()
        if exists:
            return False
        # one conditional update counts and limits at once: two replicas cannot both take the last place
        counted = conn.execute(students.update().where(
            students.c.id == student.id, students.c.entries < MAX_ENTRIES_PER_STUDENT,
        ).values(entries=students.c.entries + 1)).rowcount
        if not counted:
            raise ClassroomError(f"you have {MAX_ENTRIES_PER_STUDENT} runs on the board already: "
                                 "ask your teacher to remove one")
        conn.execute(board_entries.insert().values(
            class_id=student.class_id, student_id=student.id, run_key=run_key,
            numbers={f.name: getattr(numbers, f.name) for f in fields(RunNumbers)}, time=now()))
    return True


def remove(engine: sa.Engine, code, teacher_key, entry_id: int) -> None:
    """The teacher takes an entry off the board (the run stays in the store); its student may post again."""
    info = teacher_class(engine, code, teacher_key)
    with engine.begin() as conn:
        row = conn.execute(sa.select(board_entries.c.student_id).where(
            board_entries.c.id == entry_id, board_entries.c.class_id == info.id)).first()
        if row is None:
            raise ClassroomError("that entry is not on this class's board")
        conn.execute(board_entries.delete().where(board_entries.c.id == entry_id))
        conn.execute(students.update().where(students.c.id == row.student_id)
                     .values(entries=students.c.entries - 1))


def read(engine: sa.Engine, code) -> list[BoardEntry]:
    """Every entry of the class's board, oldest first: one query."""
    info = find_class(engine, code)
    query = (sa.select(board_entries.c.id, students.c.nickname, board_entries.c.run_key, board_entries.c.numbers,
                       board_entries.c.time)
             .join(students, students.c.id == board_entries.c.student_id)
             .where(board_entries.c.class_id == info.id)
             .order_by(board_entries.c.time, board_entries.c.id))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [BoardEntry(r.id, r.nickname, r.run_key, **{f.name: r.numbers[f.name] for f in fields(RunNumbers)},
                       time=r.time) for r in rows]


def shared_runs(entries: list[BoardEntry]) -> list[SharedRun]:
    """The board by run: entries with one run key become one run with the students who posted it."""
    by_key: dict[str, list[BoardEntry]] = {}
    for entry in entries:
        by_key.setdefault(entry.run_key, []).append(entry)
    return [SharedRun(key, tuple(e.nickname for e in group), group[0]) for key, group in by_key.items()]


def top(runs: list[SharedRun], measure: str, n: int = 5) -> list[SharedRun]:
    """The best `n` runs by `measure` (fewest errors or parameters; highest accuracy); ties: first posted."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
    sign = 1 if measure in _LOWER_IS_BETTER else -1
    return sorted(runs, key=lambda run: sign * getattr(run.entry, measure))[:n]


def safe_cell(value):
    """A value for a CSV cell that a spreadsheet shows as text: one starting = + - @ (a formula) gets a '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(header, rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return out.getvalue()


def board_csv(entries: list[BoardEntry]) -> str:
    """The board as CSV: one line per entry, the columns of BoardEntry."""
    return to_csv([f.name for f in fields(BoardEntry)], (astuple(e) for e in entries))
