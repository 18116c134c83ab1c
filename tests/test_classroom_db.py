"""The class database layer on SQLite and on a real PostgreSQL server: two engines on one database are two
app replicas; a new engine on the same database is a restarted server."""
import csv
import io
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from plain_text import as_shown

import classroom as cr
from classroom import ClassroomError, Question, RunNumbers
from ui.plain import plain

POSTGRES_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"))  # Debian's `postgresql` package
DEADLINE_S = 60  # for the server to start or stop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_server():
    """A PostgreSQL server in a temporary folder, listening on a unix socket there only; stopped at the end.
    The server refuses to run as root: then it runs as Debian's `postgres` user."""
    if not POSTGRES_BINS:
        pytest.skip("Debian's postgresql package is not installed (scripts/setup.sh --test installs it)")
    bin_dir = POSTGRES_BINS[-1]
    folder = Path(tempfile.mkdtemp(prefix="lora-lab-pg-"))
    as_user = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()

    def pg(*args):
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=DEADLINE_S)

    pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-k {folder} -p {port} -c listen_addresses='' -c fsync=off"
    pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
       "-t", str(DEADLINE_S), "start")
    try:
        yield f"postgresql://postgres@/{{database}}?host={folder}&port={port}"
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", str(DEADLINE_S), "stop")
        shutil.rmtree(folder, ignore_errors=True)


_databases = iter(range(10**6))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path, monkeypatch):
    """A fresh, empty class database's URL, as database_url gives it: SQLite in the cache folder, or a new
    database on the PostgreSQL server named by LORA_LAB_DATABASE_URL."""
    if request.param == "sqlite":
        monkeypatch.delenv(cr.DATABASE_ENV, raising=False)
        yield cr.database_url(tmp_path)
        return
    import sqlalchemy as sa
    server = request.getfixturevalue("postgres_server")
    name = f"class_{next(_databases)}"
    monkeypatch.setenv(cr.DATABASE_ENV, server.format(database="postgres"))
    admin = sa.create_engine(cr.database_url(tmp_path), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    monkeypatch.setenv(cr.DATABASE_ENV, server.format(database=name))
    yield cr.database_url(tmp_path)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()



@pytest.fixture
def replicas(url):
    """replica() opens one more engine on the class database, as another app server (or the same one after
    a restart) would; all are closed at the end."""
    engines = []

    def replica():
        engines.append(cr.open_database(url))
        return engines[-1]
    yield replica
    for engine in engines:
        engine.dispose()


@pytest.fixture
def db(replicas):
    return replicas()


def key_of(n: int) -> str:
    """A run store key (a SHA-256 in hex) for the n-th made-up run."""
    return f"{n:064x}"


def numbers(n: int = 0, changes: str = "") -> RunNumbers:
    return RunNumbers(accuracy=0.9 - n % 500 / 1000, target_wrong=n % 17, other_wrong=3 * n % 29, trainable=1000 + n,
                      changes=changes)


# --- classes, codes, nicknames ----------------------------------------------------------------------

def test_codes_come_from_an_alphabet_without_look_alikes_and_are_too_many_to_guess():
    assert not set(cr.CODE_ALPHABET) & set("01OIL")
    assert cr.CODE_COUNT == len(set(cr.CODE_ALPHABET)) ** cr.CODE_LENGTH == 31**6 == 887_503_681
    assert cr.normal_code(" k7q-2xm ") == "K7Q2XM"
    for typo in ("K7Q2X", "K7Q2XMM", "K7Q2X0", ""):
        with pytest.raises(ClassroomError, match="6 letters and digits"):
            cr.normal_code(typo)


def test_a_class_is_found_by_its_code_and_a_wrong_code_says_so(db):
    info, key = cr.create_class(db)
    assert len(info.code) == cr.CODE_LENGTH and set(info.code) <= set(cr.CODE_ALPHABET) and info.is_open
    assert cr.find_class(db, info.code.lower()) == info
    assert cr.teacher_class(db, info.code, key) == info
    wrong = next(c * cr.CODE_LENGTH for c in cr.CODE_ALPHABET if c * cr.CODE_LENGTH != info.code)
    with pytest.raises(ClassroomError, match=f"no class has the code {wrong}"):
        cr.find_class(db, wrong)
    other, other_key = cr.create_class(db)
    assert other.code != info.code and other_key != key


def test_nicknames_are_normalised_length_limited_and_unique_in_a_class(db):
    info, _ = cr.create_class(db)
    ada = cr.join(db, info.code, "  Ada \n Lovelace\u202e ")
    assert ada.nickname == "Ada Lovelace"
    for same in ("ada lovelace", "ADA  LOVELACE", "\uff21da Lovelace", "Ada\u200b Lovelace"):
        with pytest.raises(ClassroomError, match="nickname is taken"):
            cr.join(db, info.code, same)
    with pytest.raises(ClassroomError, match="at most 24 characters; this one has 25"):
        cr.join(db, info.code, "x" * 25)
    with pytest.raises(ClassroomError, match="type a nickname"):
        cr.join(db, info.code, " \t\u200b ")
    assert cr.join(db, info.code, "x" * 24).nickname == "x" * 24
    other, _ = cr.create_class(db)
    assert cr.join(db, other.code, "Ada Lovelace").nickname == "Ada Lovelace"  # unique per class only
    assert cr.roster(db, info.code) == ["Ada Lovelace", "x" * 24]


HOSTILE = ["[Reset](http://ev.il)", "<img src=x onerror=a()>", "**bold** :red[x]",
           "=HYPERLINK(\"http://x\")", "@SUM(A1)", "-1+2", "$x^2$ &amp; `code`", "# heading"]


def test_hostile_nicknames_stay_plain_text_on_the_page_and_in_the_csv(db):
    info, _ = cr.create_class(db)
    for n, nickname in enumerate(HOSTILE):
        student = cr.join(db, info.code, nickname)
        assert student.nickname == nickname
        assert as_shown(plain(student.nickname)) == nickname  # shown exactly as typed
        cr.post(db, info.code, student.id, student.token, key_of(n), numbers(n, changes=nickname))
    entries = cr.read(db, info.code)
    assert [e.nickname for e in entries] == HOSTILE
    rows = list(csv.DictReader(io.StringIO(cr.board_csv(entries))))
    for row, nickname in zip(rows, HOSTILE, strict=True):
        # a spreadsheet would run a cell starting = + - @ as a formula: such a cell starts with a quote
        formula = nickname[0] in "=+-@"
        assert row["nickname"] == ("'" + nickname if formula else nickname)
        assert row["changes"] == row["nickname"]


# --- teacher only -----------------------------------------------------------------------------------

def test_only_the_teacher_key_reveals_locks_removes_and_closes(db):
    info, key = cr.create_class(db)
    student = cr.join(db, info.code, "Ada")
    cr.post(db, info.code, student.id, student.token, key_of(1), numbers(1))
    entry = cr.read(db, info.code)[0]
    question = cr.ask(db, info.code, key, Question("strength_zero"), answer="yes")
    other, other_key = cr.create_class(db)
    for wrong in ("", student.token, other_key, key[:-1], None):
        attempts = [
            lambda k: cr.ask(db, info.code, k, Question("strength_zero")),
            lambda k: cr.advance(db, info.code, k, question, cr.DISTRIBUTION),
            lambda k: cr.set_answer(db, info.code, k, question, "no"),
            lambda k: cr.set_settings(db, info.code, k, {"dataset": "mnist"}),
            lambda k: cr.remove(db, info.code, k, entry.id),
            lambda k: cr.close_class(db, info.code, k),
            lambda k: cr.reopen_class(db, info.code, k),
        ]
        for attempt in attempts:
            with pytest.raises(ClassroomError, match="only the class's teacher"):
                attempt(wrong)
    assert cr.find_class(db, info.code) == info  # nothing changed
    assert cr.read(db, info.code) == [entry]
    assert cr.summary(db, info.code, question).phase == cr.OPEN
    with pytest.raises(ClassroomError, match="not on this class's board"):
        cr.remove(db, other.code, other_key, entry.id)  # one teacher's key does not reach another's class

    cr.set_settings(db, info.code, key, {"dataset": "mnist", "digits": [2, 3]}, ["rank"], board_for_students=True)
    assert cr.find_class(db, info.code).settings == {"locked": {"dataset": "mnist", "digits": [2, 3]},
                                                     "hidden": ["rank"], "board_for_students": True}
    with pytest.raises(ClassroomError, match="locked value of dataset"):
        cr.set_settings(db, info.code, key, {"dataset": {"nested": 1}})
    cr.remove(db, info.code, key, entry.id)
    assert cr.read(db, info.code) == []


def test_a_closed_class_takes_nothing_new_keeps_its_board_and_reopens_with_its_code(db):
    info, key = cr.create_class(db)
    ada = cr.join(db, info.code, "Ada")
    question = cr.ask(db, info.code, key, Question("strength_zero"))
    cr.post(db, info.code, ada.id, ada.token, key_of(1), numbers(1))
    cr.close_class(db, info.code, key)
    assert not cr.find_class(db, info.code).is_open
    with pytest.raises(ClassroomError, match="is closed"):
        cr.join(db, info.code, "Bob")
    with pytest.raises(ClassroomError, match="is closed"):
        cr.answer(db, info.code, ada.id, ada.token, question, "yes", 3)
    with pytest.raises(ClassroomError, match="is closed"):
        cr.post(db, info.code, ada.id, ada.token, key_of(2), numbers(2))
    assert [e.run_key for e in cr.read(db, info.code)] == [key_of(1)]
    cr.reopen_class(db, info.code, key)
    assert cr.join(db, info.code, "Bob").nickname == "Bob"
    assert cr.answer(db, info.code, ada.id, ada.token, question, "yes", 3) == (1, False)


# --- replicas, restarts, many students ---------------------------------------------------------------

def test_two_replicas_see_one_board_and_it_survives_a_restart(replicas):
    one, two = replicas(), replicas()
    info, key = cr.create_class(one)
    ada = cr.join(one, info.code, "Ada")
    bob = cr.join(two, info.code, "Bob")
    assert cr.post(one, info.code, ada.id, ada.token, key_of(1), numbers(1))
    assert cr.post(two, info.code, bob.id, bob.token, key_of(1), numbers(1))  # the same run, posted by Bob
    assert cr.post(two, info.code, bob.id, bob.token, key_of(2), numbers(2, "rank 4"))
    assert not cr.post(one, info.code, bob.id, bob.token, key_of(2), numbers(2, "rank 4"))  # there already
    board = cr.read(one, info.code)
    assert board == cr.read(two, info.code)
    assert [(e.nickname, e.run_key) for e in board] == [("Ada", key_of(1)), ("Bob", key_of(1)), ("Bob", key_of(2))]
    runs = cr.shared_runs(board)
    assert [(r.run_key, r.nicknames, r.count) for r in runs] == [(key_of(1), ("Ada", "Bob"), 2),
                                                               (key_of(2), ("Bob",), 1)]
    one.dispose()
    two.dispose()
    restarted = replicas()
    assert cr.read(restarted, info.code) == board
    assert cr.teacher_class(restarted, info.code, key) == info
    with pytest.raises(ClassroomError, match="nickname is taken"):
        cr.join(restarted, info.code, "ada")


def test_replicas_joining_and_posting_at_once_keep_the_nickname_unique_and_the_limit(replicas):
    engines = [replicas(), replicas()]
    info, _ = cr.create_class(engines[0])
    results, lock = [], threading.Lock()

    def join_as(n):
        try:
            outcome = cr.join(engines[n % 2], info.code, "Ada")
        except ClassroomError as error:
            outcome = error
        with lock:
            results.append(outcome)
    threads = [threading.Thread(target=join_as, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DEADLINE_S)
    joined = [r for r in results if isinstance(r, cr.Student)]
    assert len(results) == 8 and len(joined) == 1 and cr.roster(engines[0], info.code) == ["Ada"]

    ada, limit = joined[0], cr.MAX_ENTRIES_PER_STUDENT
    posted = []

    def post(n):
        try:
            added = cr.post(engines[n % 2], info.code, ada.id, ada.token, key_of(n), numbers(n))
        except ClassroomError:
            added = False
        with lock:
            posted.append(added)
    threads = [threading.Thread(target=post, args=(n,)) for n in range(limit + 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DEADLINE_S)
    assert len(posted) == limit + 6 and sum(posted) == limit == len(cr.read(engines[1], info.code))


def test_no_student_floods_the_board_and_a_removed_entry_frees_a_place(db):
    info, key = cr.create_class(db)
    ada, bob = cr.join(db, info.code, "Ada"), cr.join(db, info.code, "Bob")
    for n in range(cr.MAX_ENTRIES_PER_STUDENT):
        assert cr.post(db, info.code, ada.id, ada.token, key_of(n), numbers(n))
    with pytest.raises(ClassroomError, match=f"{cr.MAX_ENTRIES_PER_STUDENT} runs on the board already"):
        cr.post(db, info.code, ada.id, ada.token, key_of(999), numbers(999))
    assert cr.post(db, info.code, bob.id, bob.token, key_of(999), numbers(999))  # the limit is Ada's alone
    first = cr.read(db, info.code)[0]
    cr.remove(db, info.code, key, first.id)
    assert cr.post(db, info.code, ada.id, ada.token, key_of(1000), numbers(1000))
    with pytest.raises(ClassroomError, match="not a finished run's key"):
        cr.post(db, info.code, bob.id, bob.token, "../../etc/passwd", numbers(1))
    with pytest.raises(ValueError, match="accuracy must be a fraction"):
        RunNumbers(accuracy=1.5, target_wrong=0, other_wrong=0, trainable=0)


def test_a_student_acts_only_as_themselves(db):
    info, _ = cr.create_class(db)
    ada, bob = cr.join(db, info.code, "Ada"), cr.join(db, info.code, "Bob")
    other, other_key = cr.create_class(db)
    question = cr.ask(db, other.code, other_key, Question("strength_zero"))
    eve = cr.join(db, other.code, "Eve")
    for student_id, token in ((ada.id, bob.token), (bob.id, ""), (eve.id, eve.token), (ada.id, None)):
        with pytest.raises(ClassroomError, match="not in this class under that name"):
            cr.post(db, info.code, student_id, token, key_of(1), numbers(1))
    with pytest.raises(ClassroomError, match="not asked in this class"):
        cr.answer(db, info.code, ada.id, ada.token, question, "yes", 3)  # another class's question
    assert cr.read(db, info.code) == [] and cr.summary(db, other.code, question).answered == {}


def test_a_class_of_100_students_and_its_csv_match_the_board(db):
    info, _ = cr.create_class(db)
    students = [cr.join(db, info.code, f"student {n:03d}") for n in range(100)]
    for n, student in enumerate(students):
        # every fourth student trains the class's default run: one run, 25 students
        run = 0 if n % 4 == 0 else n
        cr.post(db, info.code, student.id, student.token, key_of(run), numbers(run, f"run {run}"))
    board = cr.read(db, info.code)
    assert len(board) == 100 and [e.nickname for e in board] == [s.nickname for s in students]
    runs = cr.shared_runs(board)
    assert len(runs) == 76 and runs[0].count == 25 and runs[0].nicknames == tuple(f"student {n:03d}"
                                                                               for n in range(0, 100, 4))
    rows = list(csv.DictReader(io.StringIO(cr.board_csv(board))))
    assert [(r["nickname"], r["run_key"], float(r["accuracy"]), int(r["target_wrong"]), int(r["other_wrong"]),
             int(r["trainable"]), r["changes"]) for r in rows] == [
        (e.nickname, e.run_key, e.accuracy, e.target_wrong, e.other_wrong, e.trainable, e.changes) for e in board]
    best = cr.top(runs, "other_wrong")
    expected = sorted(runs, key=lambda r: (r.entry.other_wrong, board.index(r.entry)))[:5]
    assert best == expected and [r.entry.other_wrong for r in best] == sorted(r.entry.other_wrong for r in runs)[:5]
    assert cr.top(runs, "accuracy", 1)[0].entry.accuracy == max(e.accuracy for e in board)


# --- predict, then reveal -----------------------------------------------------------------------------

def test_predict_then_reveal_hides_the_distribution_and_answer_until_each_is_revealed(db):
    info, key = cr.create_class(db)
    question = Question("rank_parameters", {"rank": 4, "hidden1": 1000, "hidden2": 2000})
    qid = cr.ask(db, info.code, key, question)
    guesses = [100, 4000, 15_000, 15_176, 15_176, 20_000, 1_000_000]
    students = [cr.join(db, info.code, f"s{n}") for n in range(len(guesses) + 1)]
    for student, guess, confidence in zip(students, guesses, [1, 2, 3, 4, 5, 5, 2], strict=False):
        assert cr.answer(db, info.code, student.id, student.token, qid, str(guess), confidence) == (1, False)
    with pytest.raises(ClassroomError, match="answered this round already"):
        cr.answer(db, info.code, students[0].id, students[0].token, qid, 7, 3)
    for bad, message in (("many", "number from 0"), (-1, "number from 0"), (float("nan"), "number from 0")):
        with pytest.raises(ClassroomError, match=message):
            cr.answer(db, info.code, students[-1].id, students[-1].token, qid, bad, 3)
    with pytest.raises(ClassroomError, match="from 1 .a guess. to 5"):
        cr.answer(db, info.code, students[-1].id, students[-1].token, qid, 5, 6)

    seen = cr.summary(db, info.code, qid)
    assert (seen.phase, seen.answered, seen.distribution, seen.answer) == (cr.OPEN, {1: 7}, None, None)
    cr.advance(db, info.code, key, qid, cr.DISTRIBUTION)
    with pytest.raises(ClassroomError, match="not measured yet"):
        cr.advance(db, info.code, key, qid, cr.ANSWER)
    seen = cr.summary(db, info.code, qid)
    q1, median, q3 = np.percentile(guesses, [25, 50, 75])  # numpy's linear = statistics' inclusive
    assert seen.distribution == {1: {"n": 7, "min": 100, "q1": q1, "median": median, "q3": q3, "max": 1_000_000}}
    assert seen.mean_confidence == {1: pytest.approx(np.mean([1, 2, 3, 4, 5, 5, 2]))} and seen.answer is None

    late = students[-1]  # answers after seeing the distribution: kept, marked, not counted
    assert cr.answer(db, info.code, late.id, late.token, qid, 15_176, 5) == (1, True)
    assert cr.summary(db, info.code, qid).late == 1 and cr.summary(db, info.code, qid).answered == {1: 7}

    cr.advance(db, info.code, key, qid, cr.SECOND_VOTE)
    assert cr.answer(db, info.code, students[0].id, students[0].token, qid, 15_176, 4) == (2, False)
    with pytest.raises(ClassroomError, match="can go on to answer"):
        cr.advance(db, info.code, key, qid, cr.DISTRIBUTION)
    cr.set_answer(db, info.code, key, qid, 15_176)
    cr.advance(db, info.code, key, qid, cr.ANSWER)
    seen = cr.summary(db, info.code, qid)
    assert seen.answer == 15_176 and seen.answered == {1: 7, 2: 1}
    assert cr.answer(db, info.code, students[1].id, students[1].token, qid, 15_176, 5) == (2, True)

    rows = list(csv.DictReader(io.StringIO(cr.answers_csv(db, info.code))))
    assert len(rows) == 10 and {r["prompt"] for r in rows} == {question.prompt}
    assert [(r["nickname"], int(r["vote_round"]), r["after_reveal"]) for r in rows if r["after_reveal"] == "True"] \
        == [(late.nickname, 1, "True"), (students[1].nickname, 2, "True")]


def test_a_choice_question_counts_every_choice(db):
    info, key = cr.create_class(db)
    question = Question("least_forgetting", {"ranks": [1, 4, 16]})
    assert question.choices == ("rank 1", "rank 4", "rank 16", "full finetuning")
    qid = cr.ask(db, info.code, key, question, answer=["rank 1"])
    votes = ["rank 4", "rank 4", "full finetuning", "rank 1"]
    for n, vote in enumerate(votes):
        student = cr.join(db, info.code, f"s{n}")
        cr.answer(db, info.code, student.id, student.token, qid, vote, 3)
    with pytest.raises(ClassroomError, match="choose one of: rank 1, rank 4"):
        cr.answer(db, info.code, student.id, student.token, qid, "rank 2", 3)
    cr.advance(db, info.code, key, qid, cr.DISTRIBUTION)
    assert cr.summary(db, info.code, qid).distribution == {1: {"rank 1": 1, "rank 4": 2, "rank 16": 0,
                                                               "full finetuning": 1}}
    cr.advance(db, info.code, key, qid, cr.ANSWER)
    assert cr.summary(db, info.code, qid).answer == ["rank 1"]
    assert [a.phase for a in cr.asked_questions(db, info.code)] == [cr.ANSWER]


def test_a_full_class_refuses_one_more_student(db, monkeypatch):
    monkeypatch.setattr(cr.classes, "MAX_STUDENTS", 3)
    info, _ = cr.create_class(db)
    for n in range(3):
        cr.join(db, info.code, f"s{n}")
    with pytest.raises(ClassroomError, match=f"class {info.code} is full .3 students."):
        cr.join(db, info.code, "one more")
    assert cr.roster(db, info.code) == ["s0", "s1", "s2"]
