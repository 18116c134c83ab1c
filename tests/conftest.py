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
