"""What one refresh of the class board costs the server: the board read (one query), grouped by run, the
top 5, and the current question's summary, for a class of N students with RUNS runs each and everyone's
answer. Prints the median wall time and the server's own CPU time per refresh (ms).

With --page, also the whole Class page as the teacher sees it (Streamlit's AppTest: the app's frame and
sidebar, the join link and QR code, the question and the board with its scatter), per full run.

Usage: python scripts/board_refresh.py [--students 30 100] [--refreshes 200] [--page]
The class database is a SQLite file in a temporary folder, or the server LORA_LAB_DATABASE_URL names
(a fresh class is made there for each N).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import classroom as cr  # noqa: E402

RUNS = 3  # finished runs each student has on the board


def fill(engine, students: int, class_and_key=None):
    info, key = class_and_key or cr.create_class(engine)
    qid = cr.ask(engine, info.code, key, cr.Question("rank_parameters", {"rank": 4, "hidden1": 1000, "hidden2": 2000}))
    for n in range(students):
        student = cr.join(engine, info.code, f"student {n}")
        for run in range(RUNS):
            numbers = cr.RunNumbers(accuracy=0.9, target_wrong=run, other_wrong=n % 13, trainable=1000 * run,
                                    changes=f"rank {run + 1}")
            cr.post(engine, info.code, student.id, student.token, f"{n * RUNS + run:064x}", numbers)
        cr.answer(engine, info.code, student.id, student.token, qid, 10_000 + n, 3)
    cr.advance(engine, info.code, key, qid, cr.DISTRIBUTION)
    return info.code, qid


def refresh(engine, code: str, qid: int):
    runs = cr.shared_runs(cr.read(engine, code))
    return cr.top(runs, "other_wrong"), cr.summary(engine, code, qid)


def measure(engine, students: int, refreshes: int) -> tuple[float, float]:
    code, qid = fill(engine, students)
    refresh(engine, code, qid)  # connections opened, statements compiled
    walls, cpus = [], []
    for _ in range(refreshes):
        wall, cpu = time.perf_counter(), time.process_time()
        refresh(engine, code, qid)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def page_run(folder: str, students: int, runs: int) -> tuple[float, float]:
    """(wall, CPU) ms of one full run of the teacher's Class page, the median of `runs`."""
    from streamlit.testing.v1 import AppTest

    os.environ["LORA_LAB_CACHE"] = folder  # before the app's first import reads it
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=300)
    at.switch_page("app_pages/class.py").run()
    next(b for b in at.button if b.label == "Start a class").click().run()
    code, key = at.session_state["class_teacher"]
    engine = cr.open_database(cr.database_url(Path(folder)))  # the page's own database, as a replica sees it
    fill(engine, students, (cr.find_class(engine, code), key))
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        at.run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    if at.exception:
        raise SystemExit(f"the page failed: {at.exception}")
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--refreshes", type=int, default=200)
    parser.add_argument("--page", action="store_true", help="also time the whole Class page (20 runs each)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = cr.database_url(Path(folder))
        engine = cr.open_database(url)
        print(f"database: {engine.url.get_backend_name()}; {RUNS} runs per student; median of {args.refreshes}")
        for students in args.students:
            wall, cpu = measure(engine, students, args.refreshes)
            print(f"{students:4d} students ({students * RUNS} board entries): {wall:.2f} ms per refresh, "
                  f"{cpu:.2f} ms of server CPU")
        engine.dispose()
    for students in args.students if args.page else ():
        with tempfile.TemporaryDirectory() as folder:
            wall, cpu = page_run(folder, students, 20)
        print(f"{students:4d} students, the teacher's whole Class page: {wall:.0f} ms per run, {cpu:.0f} ms of CPU")


if __name__ == "__main__":
    main()
