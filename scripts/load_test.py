"""Load test: N simulated students against `streamlit run app.py` on loopback (127.0.0.1 only).

Each user is its own browser context (its own Streamlit session) in one headless chromium. Arriving
`--stagger` seconds apart, each opens the app with its own seed in the link, gets a small baseline (its own,
so every user trains), finetunes a LoRA adapter, and opens the SVD playground. For every N it starts fresh
servers and reports page render times (p50/p95), training wall times (queueing for a training slot
included), how each user got each run (clicked Train, joined a training, waited for another server's, or
found it stored), errors, and the servers' memory (VmRSS from /proc).

- `--link`: every user opens the same link (one seed): the first trains, the others join its training or
  find the run in the server's run store, as a class does with the teacher's link;
- `--replicas K`: K servers sharing one `LORA_LAB_CACHE` (so one run store on disk), user i on server i % K
  (each browser stays on its server, as behind a sticky proxy);
- `--ray`: a local Ray cluster of two nodes on this machine, its address given to every server
  (`LORA_LAB_RAY_ADDRESS`); its processes' memory is reported too.

`--repeat-lora K` instead has one user finetune K times in one session (alpha 1, 2, ...: each a new run) and
records the server's RSS after each run.

Not part of the test suite. Bounded: every wait has a timeout and every N a deadline; it stops by itself.

    python scripts/load_test.py --users 1 10 30
    python scripts/load_test.py --users 30 --link --replicas 2 --ray
    python scripts/load_test.py --repeat-lora 30
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
RAY = Path(sys.executable).parent / "ray"
RAY_START_S = 180  # one `ray start`, on a busy 2-core machine
RAY_OBJECT_STORE_BYTES = 1 << 30  # per node; Ray's default (30% of RAM per node) is far more than runs need
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'  # no script run in progress
STEP_LIMIT = "Step limit (0 = none)"  # the baseline page's box, typed into when a link did not set it
# ui/run_controls.py `controls`: a click joined this server's training of the run; another server (a replica) makes it
JOINED_NOTE = "Someone on this server is making exactly this run"
ELSEWHERE_NOTE = "another server of this site is making exactly this run"
BASELINE = ("Baseline training", "Train baseline", "Steps trained")  # sidebar link and title, button, result
LORA = ("LoRA finetuning", "Train LoRA", "Proofs")


# --- memory --------------------------------------------------------------------------------------------

def cpu_s(pid: int) -> float:
    """CPU seconds a process has used (all its threads, user + system)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent not idle, over all cores."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Peak:
    """The largest value `read()` gives, read every `every` seconds on a thread until `stop()`."""

    def __init__(self, read, every: float):
        self.value = 0.0
        self._read = read
        self._done = threading.Event()
        threading.Thread(target=self._sample, args=(every,), daemon=True).start()

    def _sample(self, every: float) -> None:
        while not self._done.wait(every):
            self.value = max(self.value, self._read() or 0.0)

    def stop(self) -> None:
        self._done.set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the servers and Ray ----------------------------------------------------------------------------------

class Server:
    """`streamlit run app.py` on a free loopback port, with its RSS sampled every quarter second. Servers
    started in the same `workdir` share its cache folder, and so the run store under it."""

    def __init__(self, workdir: Path, env: dict, name: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{name}.log"
        env = {**os.environ, "LORA_LAB_CACHE": str(workdir / "checkpoints"),
               "LORA_LAB_DATA": str(workdir / "data"), **env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             "--server.runOnSave", "false"],
            cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env)
        self.peak = Peak(self.rss, 0.25)
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

    def rss(self) -> float:
        return rss_mb(self.process.pid) or 0.0

    def stop(self) -> None:
        self.peak.stop()
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[3])  # after the command name: state, ppid, pgrp, session


class RayCluster:
    """A head and one worker node, each `--num-cpus cpus`, advertising 127.0.0.1 (Ray's daemons still listen
    on every interface), in a short temporary folder (Ray's socket paths must stay under 108 characters).

    Each `ray start` runs in a new session, which the daemons it leaves behind keep: the cluster's processes
    are the ones in those sessions. `ray stop` would end every Ray of this user on the machine, so `stop()`
    ends only these, by their ids."""

    def __init__(self, workdir: Path, cpus: int):
        self.temp_dir = tempfile.mkdtemp(prefix="llray-", dir="/tmp")
        self.address = f"127.0.0.1:{free_port()}"
        self.log = workdir / "ray.log"
        self.sessions: list[int] = []
        self.peak = Peak(self.rss, 1.0)
        try:
            self._start(cpus, "--head", "--port", self.address.split(":")[1], "--include-dashboard", "false")
            self._start(cpus, "--address", self.address)
        except Exception:
            self.stop()
            raise

    def _start(self, cpus: int, *role: str) -> None:
        # every port Ray would otherwise take at a fixed number is free or random: two nodes share this machine
        command = [str(RAY), "start", *role, "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
                   "--temp-dir", self.temp_dir, "--object-store-memory", str(RAY_OBJECT_STORE_BYTES),
                   "--dashboard-agent-listen-port", str(free_port()), "--min-worker-port", "0",
                   "--max-worker-port", "0", "--disable-usage-stats"]
        with self.log.open("a") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.sessions.append(process.pid)  # before the wait: a failed start's daemons are stopped too
        if process.wait(RAY_START_S) != 0:
            raise RuntimeError(f"ray start {' '.join(role)} failed:\n{self.log.read_text()[-2000:]}")

    def processes(self) -> list[int]:
        pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
        return [pid for pid in pids if session_of(pid) in self.sessions]

    def rss(self) -> float:
        return sum(rss_mb(pid) or 0.0 for pid in self.processes())

    def raylets(self) -> int:
        """How many nodes run: one raylet each."""
        def name(pid):
            try:
                return Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                return None
        return sum(name(pid) == "raylet" for pid in self.processes())

    def stop(self) -> None:
        self.peak.stop()
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):  # the GCS can outlast a SIGTERM
            for pid in self.processes():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@contextmanager
def backend(args, workdir: Path):
    """The Ray cluster (with --ray) and `--replicas` servers using it; all stopped on the way out."""
    with ExitStack() as stack:
        ray, env = None, {}
        if args.ray:
            ray = RayCluster(workdir, args.ray_cpus_per_node)
            stack.callback(ray.stop)
            env["LORA_LAB_RAY_ADDRESS"] = ray.address
        servers = []
        for k in range(args.replicas):
            servers.append(Server(workdir, env, f"server{k}"))
            stack.callback(servers[-1].stop)  # stopped before Ray, which they use
        yield servers, ray


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
DISABLED = """button => [...document.querySelectorAll('button')]
    .some(b => b.innerText.trim() === button && b.disabled)"""
WATCH_NOTES = """notes => {  // notes shown only while a training runs: caught as they are drawn
    window.__notes = [];
    if (window.__noteWatcher) window.__noteWatcher.disconnect();
    window.__noteWatcher = new MutationObserver(records => records.forEach(r => {
        const text = r.type === 'characterData' ? r.target.textContent
                                                : [...r.addedNodes].map(n => n.textContent).join(' ');
        window.__notes.push(...notes.filter(note => text.includes(note)));
    }));
    window.__noteWatcher.observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def link(i: int, args) -> str:
    """The link user i opens (url names of lora_core/presets.py FIELDS): its own seed, or with --link the
    same for all; the baseline's step limit and the LoRA steps."""
    seed = 1000 if args.link else 1000 + i
    return f"/?v=2&seed={seed}&base_steps={args.baseline_steps}&steps={args.lora_steps}"


async def run_of(page, action, timeout_ms: int) -> None:
    """Do `action` and wait for the script run it causes to start and finish (once the run before is done:
    a page can still be drawing below what the user already sees)."""
    await page.wait_for_selector(IDLE, timeout=timeout_ms)
    await page.evaluate(WATCH_RUNS)
    await action()
    await page.wait_for_function(RAN, timeout=timeout_ms)


async def click_page(page, title: str, timeout_ms: int) -> float:
    """Click a page in the sidebar once the page is idle; the moment of the click, returned once the page's
    title is drawn (a page switch can replace the element whose run state a watcher would follow)."""
    await page.wait_for_selector(IDLE, timeout=timeout_ms)
    clicked = time.perf_counter()
    await page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    await page.get_by_role("heading", level=1, name=title).first.wait_for(timeout=timeout_ms)
    return clicked


async def go(page, title: str, timeout_ms: int) -> float:
    """Click a page in the sidebar; seconds until its title is drawn and its run is done."""
    clicked = await click_page(page, title, timeout_ms)
    await page.wait_for_selector(IDLE, timeout=timeout_ms)
    return time.perf_counter() - clicked


async def open_run_page(page, title: str, button: str, timeout_ms: int, record, what: str) -> float:
    """Click a page with a Train button; the moment of the click. Its render time is recorded only when
    Train is enabled: otherwise the page may be following someone's training, and its run lasts as long."""
    clicked = await click_page(page, title, timeout_ms)
    train_button = page.get_by_role("button", name=button, exact=True)
    await train_button.wait_for(timeout=timeout_ms)
    if await train_button.is_enabled():
        await page.wait_for_selector(IDLE, timeout=timeout_ms)
        record("render", what, time.perf_counter() - clicked)
    return clicked


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
    """Click a Train button; seconds until its run has ended and `done` is drawn (the queue included).

    What follows the click is read from the page, not from a script run seen to start: the button turns
    disabled (training, joined, or found in the store), then `done` is drawn and the page is idle. (With one
    link for 30 users on two cores, a watcher of the run state missed half of the runs.)"""
    train_button = page.get_by_role("button", name=button, exact=True)
    await page.wait_for_selector(IDLE, timeout=args.page_timeout * 1000)
    start = time.perf_counter()
    await train_button.click()
    await page.wait_for_function(DISABLED, arg=button, timeout=args.train_timeout * 1000)
    await page.get_by_text(done, exact=True).wait_for(timeout=args.train_timeout * 1000)
    await page.wait_for_selector(IDLE, timeout=args.train_timeout * 1000)
    return time.perf_counter() - start


async def click_train(page, button: str, done: str, args) -> tuple[str, float]:
    """Click an enabled Train; seconds from the click until `done` is drawn, and "clicked", or "joined" /
    "elsewhere" when the page says that this server / another server makes the same run. ("clicked": the
    click started the training, or found one that a classmate on this server started after this page was
    drawn: the page then follows it without a word, as it follows its own.)"""
    await page.evaluate(WATCH_NOTES, [JOINED_NOTE, ELSEWHERE_NOTE])
    seconds = await train(page, button, done, args)
    seen = await page.evaluate("() => window.__notes")
    return ("joined" if JOINED_NOTE in seen else "elsewhere" if ELSEWHERE_NOTE in seen else "clicked"), seconds


async def wait_for_others(page, done: str, args) -> str:
    """Train is disabled: the run is "stored" (drawn at once), training on this server ("joined": the page's
    run follows it with a progress bar) or on another ("elsewhere": the page waits for its file); then it is
    drawn. Returns once it is drawn."""
    drawn = page.get_by_text(done, exact=True)
    waiting = page.get_by_text(ELSEWHERE_NOTE)
    await drawn.or_(page.get_by_test_id("stProgress")).or_(waiting).first.wait_for(
        timeout=args.page_timeout * 1000)
    how = "stored" if await drawn.is_visible() else "elsewhere" if await waiting.first.is_visible() else "joined"
    await page.wait_for_selector(IDLE, timeout=args.train_timeout * 1000)  # a cheap wait through the training
    await drawn.wait_for(timeout=args.page_timeout * 1000)
    return how


async def get_run(page, what: str, button: str, done: str, opened: float, args, record) -> None:
    """Get the page's run however the server has it; record how, and the seconds from when the user asked
    for it (the click on an enabled Train, else the page's opening) until it is drawn."""
    if await page.get_by_role("button", name=button, exact=True).is_enabled():
        how, seconds = await click_train(page, button, done, args)
    else:
        how = await wait_for_others(page, done, args)
        seconds = time.perf_counter() - opened
    record("train", what, seconds)
    record("how", what, how)


async def metric_value(page, label: str) -> str:
    metric = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
    return (await metric.get_by_test_id("stMetricValue").inner_text()).strip()


async def user(i: int, browser, url: str, args, record) -> None:
    await asyncio.sleep(i * args.stagger)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(args.page_timeout * 1000)
    page_ms = args.page_timeout * 1000
    step = "open"
    try:
        page = await context.new_page()
        start = time.perf_counter()
        await page.goto(url + link(i, args), timeout=page_ms)
        await page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]',
                                     timeout=page_ms)
        await page.get_by_role("heading", level=1).first.wait_for(timeout=page_ms)
        await page.wait_for_selector(IDLE, timeout=page_ms)
        record("render", "home", time.perf_counter() - start)

        step = "baseline page"
        title, button, done = BASELINE
        opened = await open_run_page(page, title, button, page_ms, record, "baseline")
        await set_number(page, STEP_LIMIT, args.baseline_steps, page_ms)  # a no-op when the link set it
        step = "get baseline"
        await get_run(page, "baseline", button, done, opened, args, record)
        trained = await metric_value(page, "Steps trained")
        if trained != str(args.baseline_steps):  # neither the link nor the keystroke set the step limit
            record("note", "baseline steps", trained)

        step = "LoRA page"
        title, button, done = LORA
        opened = await open_run_page(page, title, button, page_ms, record, "lora")
        step = "get LoRA"
        await get_run(page, "lora", button, done, opened, args, record)

        step = "SVD page"
        record("render", "svd", await go(page, "SVD playground", page_ms))
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


# --- one N -------------------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    low, high = int(k), min(int(k) + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (k - low)


def idle_wrapper(workdir: Path, browser: str = CHROMIUM) -> Path:
    """A script that runs `browser` with its arguments under Linux's SCHED_IDLE policy (`chrt --idle`, which
    its processes inherit; `nice` does not hold, chromium resets its renderers' niceness), in a session whose
    autogroup has niceness 19: Playwright starts the browser in a session of its own, and Linux's autogroup
    shares the cores fairly between sessions whatever their processes' policy, so the session must yield too."""
    wrapper = workdir / "chromium-idle"
    wrapper.write_text(f'#!/bin/sh\necho 19 > /proc/self/autogroup 2>/dev/null\nexec chrt --idle 0 {browser} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def launch_chromium(playwright, args, workdir: Path):
    """Debian's chromium; with --browser-idle at idle priority (idle_wrapper): in a class the browsers run
    on the students' machines, so here they should not starve the server they measure."""
    executable = idle_wrapper(workdir) if args.browser_idle else CHROMIUM
    return playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)


def memory(idle: float, peak: Peak, after: float, settled: float) -> dict:
    return {"idle": round(idle), "peak": round(peak.value), "after_users": round(after),
            "after_settle": round(settled)}


async def load(n: int, args, workdir: Path) -> dict:
    from playwright.async_api import async_playwright

    events: list[tuple[int, str, str, object]] = []  # (user, kind, what, value)
    with backend(args, workdir) as (servers, ray):
        idle = [server.rss() for server in servers]
        ray_idle = ray.rss() if ray else 0.0
        cpu_before, busy_before = sum(cpu_s(s.process.pid) for s in servers), machine_busy_s()
        started = time.monotonic()
        async with async_playwright() as p:
            browser = await launch_chromium(p, args, workdir)
            try:
                tasks = [user(i, browser, servers[i % len(servers)].url, args,
                              lambda *event, i=i: events.append((i, *event))) for i in range(n)]
                await asyncio.wait_for(asyncio.gather(*tasks), timeout=args.deadline)
            except TimeoutError:
                events.append((-1, "error", "deadline", f"not finished after {args.deadline} s"))
            finally:
                await browser.close()
        wall = time.monotonic() - started
        cpu = {"app_servers": sum(cpu_s(s.process.pid) for s in servers) - cpu_before,
               "machine": machine_busy_s() - busy_before, "available": wall * (os.cpu_count() or 1)}
        after = [server.rss() for server in servers]
        ray_after = ray.rss() if ray else 0.0
        time.sleep(args.settle)  # the sweep ends the closed sessions; Streamlit drops them later
        per_server = [memory(idle[k], server.peak, after[k], server.rss()) for k, server in enumerate(servers)]
        ray_memory = memory(ray_idle, ray.peak, ray_after, ray.rss()) | {"nodes": ray.raylets()} if ray else None
    result = summary(n, events, wall, args) | {
        "tracebacks_in_log": sum(server.log.read_text().count("Traceback") for server in servers),
        "rss_mb": {key: sum(one[key] for one in per_server) for key in per_server[0]},  # peaks: sum of each's
        "cpu_core_s": {key: round(value, 1) for key, value in cpu.items()},  # from the first arrival to the last
    }
    if len(servers) > 1:
        result["rss_mb_per_server"] = per_server
    if ray_memory:
        result["ray_rss_mb"] = ray_memory
    return result


def summary(n: int, events: list, wall: float, args) -> dict:
    """Times, errors and how each run was had, from the users' events."""
    renders = [v for _, kind, _, v in events if kind == "render"]
    how = {(i, what): v for i, kind, what, v in events if kind == "how"}
    result = {
        "users": n, "wall_s": round(wall, 1), "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        "render_p50_s": round(percentile(renders, 0.5), 2), "render_p95_s": round(percentile(renders, 0.95), 2),
        "renders": len(renders),
        "errors": [f"{what}: {v}" for _, kind, what, v in events if kind == "error"],
        "notes": [f"{what}: {v}" for _, kind, what, v in events if kind == "note"],
    }
    for what in ("baseline", "lora"):
        times = [(how.get((i, w)), v) for i, kind, w, v in events if kind == "train" and w == what]
        result[f"train_{what}_s"] = spread([v for _, v in times]) | {
            "by_how": {way: spread([v for h, v in times if h == way]) for way in sorted({h for h, _ in times})}}
    if args.link:
        result["per_user"] = [{"user": i, "server": i % args.replicas, "baseline": how.get((i, "baseline")),
                               "lora": how.get((i, "lora"))} for i in range(n)]
    result["how"] = {what: dict(Counter(v for (_, w), v in how.items() if w == what)) for what in ("baseline", "lora")}
    return result


def spread(times: list[float]) -> dict:
    return {"n": len(times), "p50": round(percentile(times, 0.5), 1), "p95": round(percentile(times, 0.95), 1),
            "max": round(max(times), 1) if times else None}


async def repeat_lora(k: int, args, workdir: Path) -> dict:
    """One session: a small baseline, then K finetunes, the i-th with alpha i (the run store would show a
    repeated finetune rather than train it again); the server's RSS after each."""
    from playwright.async_api import async_playwright

    rss, times = [], []
    page_ms = args.page_timeout * 1000
    with backend(args, workdir) as (servers, _):
        server = servers[0]
        async with async_playwright() as p:
            browser = await launch_chromium(p, args, workdir)
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(page_ms)
            page = await context.new_page()
            await page.goto(server.url + link(0, args), timeout=page_ms)
            await page.wait_for_selector(IDLE, timeout=page_ms)
            await go(page, "Baseline training", page_ms)
            await set_number(page, STEP_LIMIT, args.baseline_steps, page_ms)  # a no-op when the link set it
            await train(page, "Train baseline", "Steps trained", args)
            await go(page, "LoRA finetuning", page_ms)
            rss.append(server.rss())
            for run in range(k):
                await set_number(page, "Alpha α", run + 1, page_ms)
                times.append(await train(page, "Train LoRA", "Proofs", args))
                rss.append(server.rss())
                print(f"finetune {run + 1}/{k}: {times[-1]:.1f} s, server RSS {rss[-1]:.0f} MB", flush=True)
            errors = await page.locator('[data-testid="stException"]').all_inner_texts()
            await browser.close()
    return {"finetunes": k, "lora_steps": args.lora_steps, "rss_mb_before_and_after_each": [round(r) for r in rss],
            "finetune_s_p50": round(percentile(times, 0.5), 1), "errors": errors,
            "tracebacks_in_log": server.log.read_text().count("Traceback")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--stagger", type=float, default=1.0, help="seconds between two users' arrivals")
    parser.add_argument("--baseline-steps", type=int, default=20)
    parser.add_argument("--lora-steps", type=int, default=10)
    parser.add_argument("--link", action="store_true",
                        help="every user opens the same link (one seed): one trains, the others join or find it")
    parser.add_argument("--replicas", type=int, default=1,
                        help="servers sharing one cache folder (and run store); user i uses server i %% K")
    parser.add_argument("--ray", action="store_true",
                        help="start a two-node local Ray cluster and give its address to every server")
    parser.add_argument("--ray-cpus-per-node", type=int, default=1)
    parser.add_argument("--page-timeout", type=float, default=180, help="seconds for one page to draw")
    parser.add_argument("--train-timeout", type=float, default=900, help="seconds for one training, queue included")
    parser.add_argument("--deadline", type=float, default=1800, help="seconds for all users of one N")
    parser.add_argument("--settle", type=float, default=50,
                        help="seconds after the last user left before the last RSS reading (the sweep ends a "
                             "closed tab's session 30-45 s after it closed)")
    parser.add_argument("--browser-idle", action="store_true",
                        help="run chromium at idle CPU priority: the simulated browsers yield the CPU to the server")
    parser.add_argument("--repeat-lora", type=int, default=0,
                        help="instead: one user finetunes this many times (alpha 1, 2, ...: each a new run)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", type=Path, help="keep the servers' logs (and a screenshot per error) here")
    args = parser.parse_args()
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    if args.repeat_lora and (args.link or args.replicas > 1):
        parser.error("--repeat-lora is one user on one server: no --link or --replicas")
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
