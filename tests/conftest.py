"""Fixtures and helpers every test module shares: the data, baselines trained once per session, AppTest sessions,
the real browser.

Test modules import the helpers (`from conftest import open_session`); pytest finds the fixtures itself.
Every test that drives the real browser (it uses the `chromium` fixture) is marked `browser`, so
`pytest -m "not browser"` runs the rest quickly.
"""
import os

# Set before torch loads OpenMP: its idle threads then sleep instead of spinning. The suite's two workers, its
# servers and chromium share two cores, where a spinning thread holds a core another process needs. Waiting
# changes no number.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

import lora_core as lc  # noqa: E402

# One training at a time, so the app's jobs use as many torch threads as a test does, and their numbers
# match lora_core called directly, bit for bit. Set before any test module imports service.jobs.
os.environ.setdefault("LORA_LAB_MAX_TRAININGS", "1")


@pytest.fixture(scope="session", autouse=True)
def checkpoint_folder(tmp_path_factory):
    """Tests never read or write the server's baseline checkpoints: each test session gets its own folder."""
    previous = os.environ.get("LORA_LAB_CACHE")
    os.environ["LORA_LAB_CACHE"] = str(tmp_path_factory.mktemp("checkpoints"))
    yield
    if previous is None:
        del os.environ["LORA_LAB_CACHE"]
    else:
        os.environ["LORA_LAB_CACHE"] = previous


@pytest.fixture(scope="session")
def data():
    return lc.load_dataset("mnist-sample")


@pytest.fixture(scope="session")
def baseline(data):
    """The notebook's baseline on the bundled sample: one epoch at batch 10 (500 steps)."""
    return lc.train_baseline(lc.NOTEBOOK_BASELINE, data)


SMALL_BASELINE = lc.BaselineConfig(max_steps=30)  # the app's widths, few steps: what page tests train
SMALL_FINETUNE = lc.FinetuneConfig(steps=20)  # the LoRA page's defaults but for the steps


@pytest.fixture(scope="session")
def small_baseline(data):
    """SMALL_BASELINE trained once for the whole run: the numbers the pages' small runs must show."""
    return lc.train_baseline(SMALL_BASELINE, data)


@pytest.fixture(scope="session")
def small_lora(data, small_baseline):
    """SMALL_FINETUNE on the small baseline, once for the whole run."""
    return lc.finetune_lora(small_baseline.model, data, SMALL_FINETUNE)


NARROW_BASELINE = lc.BaselineConfig(hidden1=64, hidden2=32, max_steps=30)  # seconds, whatever a view computes


@pytest.fixture(scope="session")
def narrow_baseline(data):
    """NARROW_BASELINE trained once for the whole run: for studies whose cost grows with the layers' size (an
    SVD of a 2000×1000 update takes seconds) and whose claims do not depend on it."""
    return lc.train_baseline(NARROW_BASELINE, data)


@pytest.fixture
def empty_data_root(tmp_path, monkeypatch):
    """No full dataset anywhere: only the bundled sample (and Debian's Fashion-MNIST) can load."""
    monkeypatch.setenv("LORA_LAB_DATA", str(tmp_path))


@pytest.fixture
def small_mlp():
    from lora_core import MLP
    torch.manual_seed(0)
    return MLP(hidden1=32, hidden2=16)


# --- the real browser: one streamlit server and one chromium per worker, shared by its browser tests ----------

@pytest.fixture(scope="session")
def streamlit_url(tmp_path_factory):
    """A `streamlit run app.py` server that only has the bundled sample and keeps its files in a tmp dir."""
    import browser_harness

    pytest.importorskip("playwright", reason="the browser tests need Playwright (pip install playwright)")
    root = tmp_path_factory.mktemp("streamlit")
    # two slots: a training another test left in a closed tab (until the sweep stops it) never queues the next
    env = {"LORA_LAB_DATA": str(root / "data"), "LORA_LAB_CACHE": str(root / "checkpoints"),
           "LORA_LAB_MAX_TRAININGS": "2"}
    with browser_harness.streamlit_server(env=env, log=root / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="session")
def chromium():
    import browser_harness

    pytest.importorskip("playwright", reason="the browser tests need Playwright (pip install playwright)")
    if not os.path.exists(browser_harness.CHROMIUM):
        pytest.skip(f"the browser tests need Debian's chromium at {browser_harness.CHROMIUM}")
    with browser_harness.chromium() as browser:
        yield browser


def parent_pid(pid: int) -> int:
    """From /proc/PID/stat, "pid (name) state ppid ...": read after the name's ")" (a name may hold spaces)."""
    return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])


def pytest_collection_modifyitems(items):
    for item in items:
        if "chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


# --- AppTest: sessions of the app in this process ------------------------------------------------------

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def open_session(settings: dict | None = None, /, timeout: float = 300, **state) -> AppTest:
    """A new session (another user) after its first run: `settings`, then `state`, set before that run."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in {**(settings or {}), **state}.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def train_baseline(at: AppTest) -> dict:
    """Press Train baseline with the session's settings, unless the server has that baseline stored (then
    the button is disabled and the page shows it); the baseline as held_baseline gives it."""
    at.switch_page("app_pages/baseline.py").run()
    if not at.button(key="base_train").disabled:
        at.button(key="base_train").click().run()
    assert not at.exception, at.exception
    return held_baseline(at)


def metrics(at: AppTest) -> dict[str, str]:
    """Every st.metric on the page: label → value as shown."""
    return {m.label: m.value for m in at.metric}


def wait_for_steps(job, steps: int, timeout: float = 60) -> None:
    """Until a background job has trained `steps` steps (or ended); fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while job.step < steps and not job.done:
        assert time.monotonic() < deadline, f"the job trained {job.step} steps, not {steps}, in {timeout:g} s"
        time.sleep(0.01)
    assert job.step >= steps, f"the job ended after {job.step} steps, before {steps}"


def held_baseline(at) -> dict:
    """{"run", "key"} of the baseline an AppTest session's experiment describes, from the server's store."""
    from service import runs

    key = runs.key(at.session_state["experiment"], "baseline", "cpu")
    return {"run": runs.find(key), "key": key}
