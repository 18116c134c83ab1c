"""A real `streamlit run` server and Debian's chromium driven by Playwright: for the browser tests and the
UI benchmark (python -m benchmarks.ui).

Streamlit draws a page in pieces and keeps the previous run's elements on screen until they are
replaced, so every helper that reads the page waits for the value it expects and returns what it saw
last: the test then asserts on it, and a wrong value fails with the value shown.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(env: dict | None = None, log: Path | None = None, options: tuple[str, ...] = (),
                     script: str = "app.py", port: int | None = None):
    """Yield the base URL of a fresh server on a loopback port (`port`, or a free one); stop it afterwards.

    `options` are further `streamlit run` flags, e.g. ("--server.disconnectedSessionTTL", "2"); `script` is
    the file it runs, relative to the project (whose .streamlit/config.toml applies)."""
    port = port or free_port()
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
               "--server.runOnSave", "false", *options]
    out = open(log, "w") if log else subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start (exit code {process.poll()})") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log:
            out.close()


@contextmanager
def chromium():
    """One headless Debian chromium (never Playwright's own download, which needs the internet)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


FIRST_RUN_MS = 90_000  # a fresh server imports torch and loads the dataset on its first run
RUN_MS = 60_000


def open_app(context, url: str, path: str = "", timeout: int = FIRST_RUN_MS):
    """A new tab (a new Streamlit session) on `url/path`, once the page's title is drawn."""
    page = context.new_page()
    page._lora_lab_runs = RunCounter(page)  # before the websocket opens
    page.goto(f"{url}/{path}", timeout=timeout)
    page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]', timeout=timeout)
    page.get_by_role("heading", level=1).first.wait_for(timeout=timeout)
    wait_idle(page, timeout)
    return page


def wait_idle(page, timeout: int = RUN_MS) -> None:
    """Until the script run in progress (if any) has finished."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)


class RunCounter:
    """Counts the script runs a tab's session finished, read from Streamlit's own websocket messages.

    The page's "running" state can come and go between two looks at it (or within one render), so
    waiting for "not running" after a click may see the previous run. The server says when each run
    ends (ForwardMsg.script_finished); counting those is exact.
    """

    def __init__(self, page):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self.finished = 0
        # a whole run, or a fragment's (a slider inside st.fragment reruns only that part)
        self._message, self._done = ForwardMsg, (ForwardMsg.FINISHED_SUCCESSFULLY,
                                                 ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        if isinstance(payload, bytes | bytearray):
            try:
                message = self._message.FromString(bytes(payload))
            except Exception:  # not a ForwardMsg: nothing to count
                return
            if message.WhichOneof("type") == "script_finished" and message.script_finished in self._done:
                self.finished += 1


def _counter(page) -> RunCounter:
    counter = getattr(page, "_lora_lab_runs", None)
    if counter is None:
        raise RuntimeError("open the tab with open_app, which starts counting its runs")
    return counter


@contextmanager
def rerun(page, timeout: int = RUN_MS):
    """Wait for a script run that the actions inside cause to finish."""
    counter = _counter(page)
    before = counter.finished
    yield
    deadline = time.monotonic() + timeout / 1000
    while counter.finished == before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no script run finished within {timeout / 1000:g} s")
        page.wait_for_timeout(50)  # lets Playwright deliver the websocket events
    wait_idle(page)


def click(page, locator, timeout: int = RUN_MS) -> None:
    """Click a widget and wait for the run it causes (a training button's run lasts the training)."""
    with rerun(page, timeout):
        locator.click()


def press(page, name: str, timeout: int = RUN_MS) -> None:
    """Click a Train button and wait for its run, unless the run it would make is stored on the server
    already: then the button is disabled and the page shows that run."""
    button = page.get_by_role("button", name=name, exact=True)
    if button.is_enabled():
        click(page, button, timeout=timeout)


def go(page, link: str, heading: str) -> None:
    """Click a page in the sidebar (same session, so its state stays) and wait for its title."""
    from playwright.sync_api import expect

    click(page, page.get_by_test_id("stSidebarNav").get_by_role("link", name=link))
    expect(page.get_by_role("heading", level=1)).to_have_text(heading, timeout=RUN_MS)


def set_number(page, label: str, value) -> None:
    """Type into a number input and commit it (Enter), as a person does; no run if the value is unchanged."""
    box = page.get_by_role("spinbutton", name=label, exact=True)
    if box.input_value() == str(value):
        return
    with rerun(page):
        box.fill(str(value))
        box.press("Enter")


def metric(page, label: str):
    """The value element of the st.metric with exactly this label."""
    return (page.get_by_test_id("stMetric")
            .filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
            .get_by_test_id("stMetricValue"))


def charts(page) -> dict[str, list[dict]]:
    """Every plotly chart drawn now: title → its traces' x and y, read from the chart itself."""
    text = page.evaluate("""() => JSON.stringify(Object.fromEntries(
        [...document.querySelectorAll('.js-plotly-plot')].filter(e => e.layout && e.data).map(e => [
            ((e.layout.title && e.layout.title.text) || '').replaceAll('<br>', ' '),  // long titles wrap
            e.data.map(t => ({name: t.name, x: t.x, y: t.y}))])))""")
    return json.loads(text)


def chart_when(page, title: str, ready=lambda traces: True, timeout_s: float = RUN_MS / 1000) -> list[dict] | None:
    """The traces of the chart titled `title` once `ready(traces)` holds (plotly draws lazily), else the last
    seen (None if it never appeared)."""
    deadline, seen = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        seen = charts(page).get(title, seen)
        if seen is not None and ready(seen):
            break
        time.sleep(0.2)
    return seen


def problems(page) -> list[str]:
    """Texts of the exception and error boxes on the page (a page drawn well has none)."""
    boxes = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    return boxes.all_inner_texts()


def full_page_screenshot(page, path: Path) -> None:
    """Streamlit scrolls inside its own container: grow the viewport to the content, then shoot."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], section.main, "
        "[data-testid=\"stAppViewContainer\"], [data-testid=\"stSidebarContent\"]')].map(e => e.scrollHeight), 800)")
    page.mouse.move(0, 0)  # no tooltip of the last widget touched over the picture
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": min(int(height) + 40, 6000)})
    page.wait_for_timeout(500)  # charts that just came into view draw themselves
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": width, "height": 900})
