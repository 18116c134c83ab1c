"""Load test: N simulated students against one `streamlit run app.py` on loopback (127.0.0.1 only).

Each user is its own browser context (its own Streamlit session) in one headless chromium. Arriving
`--stagger` seconds apart, each opens the app with its own seed in the link, trains a small baseline (its
own, so every user trains), finetunes a LoRA adapter, and opens the SVD playground. For every N it starts a
fresh server and reports page render times (p50/p95), training wall times (queueing for a training slot
included), errors, and the server's memory (VmRSS from /proc). `--repeat-lora K` instead has one user
finetune K times in one session and records the server's RSS after each run.

Not part of the test suite. Bounded: every wait has a timeout and every N a deadline; it stops by itself.

    python scripts/load_test.py --users 1 10 30
    python scripts/load_test.py --repeat-lora 30
"""
import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
MINUTE_MS = 60_000
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'  # no script run in progress


# --- the server ----------------------------------------------------------------------------------------

def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Server:
    """`streamlit run app.py` on a free loopback port, with its RSS sampled every quarter second."""

    def __init__(self, workdir: Path, env: dict | None = None):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "server.log"
        env = {**os.environ, "LORA_LAB_CACHE": str(workdir / "checkpoints"),
               "LORA_LAB_DATA": str(workdir / "data"), **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             "--server.runOnSave", "false"],
            cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env)
        self.samples: list[tuple[float, float]] = []  # (seconds since start, RSS MB)
        self._done = threading.Event()
        deadline = time.monotonic() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"streamlit did not start:\n{self.log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        self.started = time.monotonic()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._done.wait(0.25):
            value = rss_mb(self.process.pid)
            if value is not None:
                self.samples.append((time.monotonic() - self.started, value))

    def rss(self) -> float:
        return rss_mb(self.process.pid) or 0.0

    def stop(self) -> None:
        self._done.set()
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- one simulated user ----------------------------------------------------------------------------------

WATCH_RUNS = """() => {  // the whole document (Streamlit may replace the app element), old values too (a quick
    // run flips to "running" and back before the observer's callback reads the attribute)
    const app = () => document.querySelector('[data-testid="stApp"]');
    window.__scriptRan = false;
    if (window.__runWatcher) window.__runWatcher.disconnect();
    window.__runWatcher = new MutationObserver(records => {
        if (records.some(r => r.oldValue === 'running') ||
            app()?.getAttribute('data-test-script-state') === 'running') window.__scriptRan = true;
    });
    window.__runWatcher.observe(document.documentElement, {attributes: true, attributeOldValue: true,
        childList: true, subtree: true, attributeFilter: ['data-test-script-state']});
}"""
RAN = """() => window.__scriptRan &&
    document.querySelector('[data-testid="stApp"]').getAttribute('data-test-script-state') === 'notRunning'"""


async def run_of(page, action, timeout_ms: int) -> None:
    """Do `action` and wait for the script run it causes to start and finish (once the run before is done:
    a page can still be drawing below what the user already sees)."""
    await page.wait_for_selector(IDLE, timeout=timeout_ms)
    await page.evaluate(WATCH_RUNS)
    await action()
    await page.wait_for_function(RAN, timeout=timeout_ms)


async def go(page, link: str, timeout_ms: int, title: str | None = None) -> float:
    """Click a page in the sidebar; seconds until its title is drawn and its run is done."""
    title = title or link
    await page.wait_for_selector(IDLE, timeout=timeout_ms)
    start = time.perf_counter()
    await page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    # (a page switch can replace the element whose run state a watcher would follow: wait for the new title)
    await page.get_by_role("heading", level=1, name=title).first.wait_for(timeout=timeout_ms)
    await page.wait_for_selector(IDLE, timeout=timeout_ms)
    return time.perf_counter() - start


async def set_number(page, label: str, value: int, timeout_ms: int) -> bool:
    """Type a value and commit it with Enter; whether the run it causes was seen (on a starved machine a
    keystroke can be lost: the caller checks what the page then shows)."""
    box = page.get_by_role("spinbutton", name=label, exact=True)
    if await box.input_value() == str(value):
        return True

    async def type_it():
        await box.fill(str(value))
        await box.press("Enter")
    try:
        await run_of(page, type_it, timeout_ms)
        return True
    except Exception:
        await page.wait_for_selector(IDLE, timeout=timeout_ms)
        return False


async def train(page, button: str, done: str, args) -> float:
    """Click a Train button; seconds until its run has ended and `done` is drawn (the queue included)."""
    start = time.perf_counter()
    await run_of(page, page.get_by_role("button", name=button, exact=True).click, args.train_timeout * 1000)
    await page.get_by_text(done, exact=True).wait_for(timeout=args.page_timeout * 1000)
    return time.perf_counter() - start


async def metric_value(page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
    return (await metric.get_by_test_id("stMetricValue").inner_text()).strip()


async def user(i: int, browser, url: str, args, record) -> None:
    await asyncio.sleep(i * args.stagger)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(args.page_timeout * 1000)
    step = "open"
    try:
        page = await context.new_page()
        start = time.perf_counter()
        # the link carries the seed (each user trains its own baseline) and the LoRA steps (ui/presets)
        await page.goto(f"{url}/?seed={1000 + i}&steps={args.lora_steps}", timeout=args.page_timeout * 1000)
        await page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]',
                                     timeout=args.page_timeout * 1000)
        await page.get_by_role("heading", level=1).first.wait_for(timeout=args.page_timeout * 1000)
        await page.wait_for_selector(IDLE, timeout=args.page_timeout * 1000)
        record("render", "home", time.perf_counter() - start)

        step = "baseline page"
        record("render", "baseline", await go(page, "Baseline training", args.page_timeout * 1000))
        await set_number(page, "Step limit (0 = none)", args.baseline_steps, args.page_timeout * 1000)
        step = "train baseline"
        record("train", "baseline", await train(page, "Train baseline", "Steps trained", args))
        trained = await metric_value(page, "Steps trained")
        if trained != str(args.baseline_steps):  # the step limit's keystroke was lost: a longer baseline
            record("note", "baseline steps", trained)

        step = "LoRA page"
        record("render", "lora", await go(page, "LoRA finetuning", args.page_timeout * 1000))
        step = "train LoRA"
        record("train", "lora", await train(page, "Train LoRA", "Proofs", args))

        step = "SVD page"
        record("render", "svd", await go(page, "SVD playground", args.page_timeout * 1000))
        step = "check"
        shown = await page.locator('[data-testid="stException"]').all_inner_texts()
        if shown:
            record("error", step, shown[0][:200])
    except Exception as err:  # a timeout or a closed page: counted, and this user stops
        record("error", step, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
        if args.keep:
            try:
                await page.screenshot(path=str(args.keep / f"user{i}-{step.replace(' ', '-')}.png"))
                state = await page.evaluate("() => [location.href, document.querySelector('[data-testid=\"stApp\"]')"
                                            ".getAttribute('data-test-script-state'), window.__scriptRan]")
                record("error", f"{step} (page state)", str(state))
            except Exception:
                pass
    finally:
        await context.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    low, high = int(k), min(int(k) + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (k - low)


def launch_chromium(playwright, args, workdir: Path):
    """Debian's chromium. With --browser-idle it runs under Linux's SCHED_IDLE policy (`chrt --idle`, which
    its processes inherit; `nice` does not hold, chromium resets its renderers' niceness): in a class the
    browsers run on the students' machines, so here they should not starve the server they measure."""
    executable = CHROMIUM
    if args.browser_idle:
        executable = workdir / "chromium-idle"
        executable.write_text(f'#!/bin/sh\nexec chrt --idle 0 {CHROMIUM} "$@"\n')
        executable.chmod(0o755)
    return playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)


async def load(n: int, args, workdir: Path) -> dict:
    from playwright.async_api import async_playwright

    server = Server(workdir)
    events: list[tuple[str, str, object]] = []
    idle_rss = server.rss()
    started = time.monotonic()
    try:
        async with async_playwright() as p:
            browser = await launch_chromium(p, args, workdir)
            try:
                tasks = [user(i, browser, server.url, args, lambda *e: events.append(e)) for i in range(n)]
                await asyncio.wait_for(asyncio.gather(*tasks), timeout=args.deadline)
            except TimeoutError:
                events.append(("error", "deadline", f"not finished after {args.deadline} s"))
            finally:
                await browser.close()
        wall = time.monotonic() - started
        after_users = server.rss()
        time.sleep(args.settle)  # the sweep ends the closed sessions; Streamlit drops them later
        settled = server.rss()
    finally:
        server.stop()
    log = server.log.read_text()
    renders = [v for kind, _, v in events if kind == "render"]
    result = {
        "users": n, "wall_s": round(wall, 1), "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "render_p50_s": round(percentile(renders, 0.5), 2), "render_p95_s": round(percentile(renders, 0.95), 2),
        "renders": len(renders),
        "errors": [f"{what}: {v}" for kind, what, v in events if kind == "error"],
        "notes": [f"{what}: {v}" for kind, what, v in events if kind == "note"],
        "tracebacks_in_log": log.count("Traceback"),
        "rss_mb": {"idle": round(idle_rss), "peak": round(max((s for _, s in server.samples), default=0)),
                   "after_users": round(after_users), "after_settle": round(settled)},
    }
    for what in ("baseline", "lora"):
        times = [v for kind, w, v in events if kind == "train" and w == what]
        result[f"train_{what}_s"] = {"n": len(times), "p50": round(percentile(times, 0.5), 1),
                                     "p95": round(percentile(times, 0.95), 1),
                                     "max": round(max(times), 1) if times else None}
    return result


async def repeat_lora(k: int, args, workdir: Path) -> dict:
    """One session: a small baseline, then K finetunes; the server's RSS after each."""
    from playwright.async_api import async_playwright

    server = Server(workdir)
    rss, times = [], []
    try:
        async with async_playwright() as p:
            browser = await launch_chromium(p, args, workdir)
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(args.page_timeout * 1000)
            page = await context.new_page()
            await page.goto(server.url, timeout=args.page_timeout * 1000)
            await page.wait_for_selector(IDLE, timeout=args.page_timeout * 1000)
            await go(page, "Baseline training", args.page_timeout * 1000)
            await set_number(page, "Step limit (0 = none)", args.baseline_steps, args.page_timeout * 1000)
            await train(page, "Train baseline", "Steps trained", args)
            await go(page, "LoRA finetuning", args.page_timeout * 1000)
            await set_number(page, "Steps", args.lora_steps, args.page_timeout * 1000)
            rss.append(server.rss())
            for run in range(k):
                times.append(await train(page, "Train LoRA", "Proofs", args))
                rss.append(server.rss())
                print(f"finetune {run + 1}/{k}: {times[-1]:.1f} s, server RSS {rss[-1]:.0f} MB", flush=True)
            errors = await page.locator('[data-testid="stException"]').all_inner_texts()
            await browser.close()
    finally:
        server.stop()
    return {"finetunes": k, "lora_steps": args.lora_steps, "rss_mb_before_and_after_each": [round(r) for r in rss],
            "finetune_s_p50": round(percentile(times, 0.5), 1), "errors": errors,
            "tracebacks_in_log": server.log.read_text().count("Traceback")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--stagger", type=float, default=1.0, help="seconds between two users' arrivals")
    parser.add_argument("--baseline-steps", type=int, default=20)
    parser.add_argument("--lora-steps", type=int, default=10)
    parser.add_argument("--page-timeout", type=float, default=180, help="seconds for one page to draw")
    parser.add_argument("--train-timeout", type=float, default=900, help="seconds for one training, queue included")
    parser.add_argument("--deadline", type=float, default=1800, help="seconds for all users of one N")
    parser.add_argument("--settle", type=float, default=50,
                        help="seconds after the last user left before the last RSS reading (the sweep ends a "
                             "closed tab's session 30-45 s after it closed)")
    parser.add_argument("--browser-idle", action="store_true",
                        help="run chromium at idle CPU priority: the simulated browsers yield the CPU to the server")
    parser.add_argument("--repeat-lora", type=int, default=0, help="instead: one user finetunes this many times")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", type=Path, help="keep the servers' logs (and a screenshot per error) here")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"needs Debian's chromium at {CHROMIUM}")
    settings = {k: v for k, v in vars(args).items() if k != "json"} | {"cores": os.cpu_count(),
                                                                        "max_trainings": os.environ.get(
                                                                            "LORA_LAB_MAX_TRAININGS", "cores")}
    results = {"settings": {k: str(v) for k, v in settings.items()}, "runs": []}
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lora-lab-load-") as scratch:
        tmp = tempfile.mkdtemp(prefix="lora-lab-load-", dir=args.keep) if args.keep else scratch
        if args.repeat_lora:
            results["runs"].append(asyncio.run(repeat_lora(args.repeat_lora, args, Path(tmp))))
        else:
            for n in args.users:
                workdir = Path(tmp) / f"n{n}"
                workdir.mkdir()
                result = asyncio.run(load(n, args, workdir))
                results["runs"].append(result)
                print(json.dumps(result), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
