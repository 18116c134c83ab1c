import os

import pytest
import torch

from lora_core import BaselineConfig, load_dataset, train_baseline

# One training at a time, so the app's jobs use as many torch threads as a test does, and their numbers
# match lora_core called directly, bit for bit. Set before any test module imports ui.jobs.
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
    return load_dataset("mnist-sample")


@pytest.fixture(scope="session")
def baseline(data):
    """The notebook's baseline on the bundled sample: one epoch at batch 10 (500 steps)."""
    return train_baseline(BaselineConfig(epochs=1, batch_size=10), data)


@pytest.fixture
def small_mlp():
    from lora_core import MLP
    torch.manual_seed(0)
    return MLP(hidden1=32, hidden2=16)


# --- the real browser: one streamlit server and one chromium for every browser test -----------------

@pytest.fixture(scope="session")
def streamlit_url(tmp_path_factory):
    """A `streamlit run app.py` server that only has the bundled sample and keeps its files in a tmp dir."""
    import browser_harness

    pytest.importorskip("playwright", reason="the browser tests need Playwright (pip install playwright)")
    root = tmp_path_factory.mktemp("streamlit")
    env = {"LORA_LAB_DATA": str(root / "data"), "LORA_LAB_CACHE": str(root / "checkpoints")}
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


def held_baseline(at) -> dict:
    """{"run", "key"} of the baseline an AppTest session's experiment describes, from the server's store."""
    from ui import runs

    key = runs.key(at.session_state["experiment"], "baseline", "cpu")
    return {"run": runs.find(key), "key": key}
