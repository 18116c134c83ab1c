import pytest
import torch

from lora_core import BaselineConfig, load_dataset, train_baseline


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
