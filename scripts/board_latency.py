"""How long a student's finished run takes to reach the teacher's board, and what the board's refreshes
cost the server, on a real `streamlit run` server with the teacher's Class page open in chromium.

Simulated students join the class in the server's own database and post finished runs one at a time, each
0–2 s after the previous one showed, so at any moment of the page's refresh cycle (a real student's run is
posted by the script run in which it finishes); the time is from the post's commit to the moment the point
is in the teacher's scatter, read in the browser every 25 ms. Then the page is left alone for --idle seconds
and the server process's CPU time is divided by the board refreshes it sent (counted from Streamlit's own
websocket messages).

Usage: python scripts/board_latency.py [--students 10 30] [--samples 30] [--idle 30]
"""
import argparse
import math
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

import classroom as cr  # noqa: E402
from benchmarks.browser import chromium, click, open_app, streamlit_server  # noqa: E402

BOARD = "Learned against forgotten: one point per run"
POINTS_JS = """title => { const e = [...document.querySelectorAll('.js-plotly-plot')].find(
    e => e.layout && e.layout.title && e.layout.title.text.includes(title));
    return e ? e.data.find(t => t.mode === 'markers').x.length : 0; }"""


def server_process(url: str) -> psutil.Process:
    port = url.rsplit(":", 1)[1]
    for child in psutil.Process().children(recursive=True):
        if port in child.cmdline() and "streamlit" in " ".join(child.cmdline()):
            return child
    raise RuntimeError("the streamlit server process was not found")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def measure(browser, url: str, folder: str, students: int, samples: int, idle: float) -> dict:
    # tall enough that the board's scatter is in view: plotly draws a chart once it is
    context = browser.new_context(viewport={"width": 1280, "height": 2400})
    try:
        tab = open_app(context, url, "class")
        click(tab, tab.get_by_role("button", name="Start a class"))
        heading = tab.get_by_role("heading", name=re.compile("Class code")).inner_text()
        code = re.search(r"Class code: (\w+)", heading).group(1)
        engine = cr.open_database(cr.database_url(Path(folder)))
        joined = [cr.join(engine, code, f"student {n}") for n in range(students)]
        posts, latencies = math.ceil(samples / students), []
        for round_ in range(posts):
            for n, student in enumerate(joined):
                time.sleep(random.uniform(0, 2))
                shown = tab.evaluate(POINTS_JS, BOARD)
                numbers = cr.RunNumbers(0.9, n % 17, round_ * 7 + n % 5, 1000 + n, f"rank {round_ + 1}")
                cr.post(engine, code, student.id, student.token, f"{round_ * students + n:064x}", numbers)
                posted = time.perf_counter()
                while tab.evaluate(POINTS_JS, BOARD) <= shown:
                    if time.perf_counter() - posted > 30:
                        raise TimeoutError("a run did not reach the board within 30 s")
                    tab.wait_for_timeout(25)
                latencies.append(time.perf_counter() - posted)
        server = server_process(url)
        refreshes, cpu, start = tab._lora_lab_runs.finished, cpu_seconds(server), time.perf_counter()
        tab.wait_for_timeout(idle * 1000)
        refreshes = tab._lora_lab_runs.finished - refreshes
        per_refresh = (cpu_seconds(server) - cpu) / max(refreshes, 1)
        engine.dispose()
        return {"latencies": latencies, "refreshes": refreshes, "seconds": time.perf_counter() - start,
                "cpu_ms": per_refresh * 1000, "entries": posts * students}
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--samples", type=int, default=30, help="runs posted (at least one per student)")
    parser.add_argument("--idle", type=float, default=30, help="seconds of refreshes the CPU is measured over")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, streamlit_server(env={"LORA_LAB_CACHE": folder}) as url, \
            chromium() as browser:
        for students in args.students:
            found = measure(browser, url, folder, students, args.samples, args.idle)
            lat = found["latencies"]
            print(f"{students:3d} students, {len(lat)} runs posted ({found['entries']} on the board): run finished "
                  f"→ point on the teacher's board p50 {statistics.median(lat):.2f} s, "
                  f"p95 {percentile(lat, 0.95):.2f} s, "
                  f"max {max(lat):.2f} s; idle board: {found['refreshes']} refreshes in {found['seconds']:.0f} s, "
                  f"{found['cpu_ms']:.1f} ms of server CPU each")


if __name__ == "__main__":
    main()
