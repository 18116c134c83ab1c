import pytest
import torch

from lora_core import available_devices, pick_device


def test_cpu_is_always_available_and_last():
    devices = available_devices()
    assert devices[-1] == "cpu"
    assert devices == [d for d in ("cuda", "mps", "cpu") if d in devices]


def test_auto_picks_the_best():
    assert pick_device("auto") == torch.device(available_devices()[0])
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "cuda:7", ""])
def test_unavailable_device_names_the_available_ones(name):
    if name in available_devices():
        pytest.skip(f"{name} is available here")
    with pytest.raises(ValueError, match="available: .*cpu"):
        pick_device(name)
