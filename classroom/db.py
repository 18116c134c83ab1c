"""Where a class lives: one schema, written with SQLAlchemy Core, on SQLite or PostgreSQL.

SQLite in the cache folder is the default (no setup; WAL mode, so the board's readers never wait for a
writer). `LORA_LAB_DATABASE_URL` names a PostgreSQL server instead, for app replicas that must show one
board. The same statements run on both. Runs are referenced by their store key, never copied here.
"""
import os
import time
from pathlib import Path

import sqlalchemy as sa

DATABASE_ENV = "LORA_LAB_DATABASE_URL"
SQLITE_FILE = "classroom.sqlite3"
BUSY_TIMEOUT_MS = 10_000  # a writer waits this long for another replica's write, then fails in words

metadata = sa.MetaData()

classes = sa.Table(
    "classes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(16), nullable=False, unique=True),
    sa.Column("teacher_key_hash", sa.String(64), nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),  # {"locked": {name: value}, "hidden": [name], ...}
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("closed", sa.Float),  # None while the class is open
)

students = sa.Table(
    "students", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("class_id", sa.Integer, sa.ForeignKey("classes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("nickname", sa.String(64), nullable=False),
    sa.Column("nickname_key", sa.String(64), nullable=False),  # the form two nicknames are compared in
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("entries", sa.Integer, nullable=False, default=0),  # board entries posted, for the limit
    sa.Column("joined", sa.Float, nullable=False),
    sa.UniqueConstraint("class_id", "nickname_key"),
)

questions = sa.Table(
    "questions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("class_id", sa.Integer, sa.ForeignKey("classes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("answer", sa.JSON),  # the computed answer, once known; None until then
    sa.Column("created", sa.Float, nullable=False),
)

answers = sa.Table(
    "answers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("question_id", sa.Integer, sa.ForeignKey("questions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("student_id", sa.Integer, sa.ForeignKey("students.id", ondelete="CASCADE"), nullable=False),
    sa.Column("vote_round", sa.Integer, nullable=False),
    sa.Column("value", sa.JSON, nullable=False),
    sa.Column("confidence", sa.Integer, nullable=False),
    sa.Column("after_reveal", sa.Boolean, nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.UniqueConstraint("question_id", "student_id", "vote_round"),
)

board_entries = sa.Table(
    "board_entries", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("class_id", sa.Integer, sa.ForeignKey("classes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("student_id", sa.Integer, sa.ForeignKey("students.id", ondelete="CASCADE"), nullable=False),
    sa.Column("run_key", sa.String(64), nullable=False),
    sa.Column("numbers", sa.JSON, nullable=False),  # only what the board shows
    sa.Column("time", sa.Float, nullable=False),
    sa.UniqueConstraint("class_id", "student_id", "run_key"),
    sa.Index("board_by_class", "class_id", "time"),
)

# the browser a teacher runs a class in, so that a reload (a new Streamlit session) finds the class again
teacher_browsers = sa.Table(
    "teacher_browsers", metadata,
    sa.Column("lookup", sa.String(64), primary_key=True),  # a hash of the browser's name, never the name
    sa.Column("class_id", sa.Integer, sa.ForeignKey("classes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("sealed_key", sa.String(128), nullable=False),  # the teacher key, sealed with the browser's name
    sa.Column("time", sa.Float, nullable=False),
)


def database_url(cache_folder: Path) -> str:
    """The server named by LORA_LAB_DATABASE_URL, else a SQLite file in `cache_folder`."""
    url = os.environ.get(DATABASE_ENV, "").strip()
    if not url:
        return f"sqlite:///{Path(cache_folder) / SQLITE_FILE}"
    # a bare postgresql:// would pick psycopg2; the pinned driver is psycopg (3)
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def open_database(url: str) -> sa.Engine:
    """An engine on `url` with the schema created (idempotent: replicas may start together)."""
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.database:
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sa_url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = sa.create_engine(sa_url, pool_pre_ping=True)
    try:
        metadata.create_all(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        metadata.create_all(engine, checkfirst=True)  # another replica created a table between check and create
    return engine


def now() -> float:
    return time.time()
