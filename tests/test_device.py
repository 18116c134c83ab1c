import pytest
import torch

from lora_core import available_devices, pick_device


def test_every_listed_device_computes_and_cpu_is_last():
    devices = available_devices()
    assert devices[-1] == "cpu" and len(set(devices)) == len(devices)
    for name in devices:  # listed means usable: a tensor op runs there
        assert torch.ones(2, device=name).sum().item() == 2
    assert ("cuda" in devices) == torch.cuda.is_available()
    assert ("mps" in devices) == torch.backends.mps.is_available()


@pytest.mark.parametrize("cuda, mps, best", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu"),
                                             (True, False, "cuda")])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, best):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device("auto") == torch.device(best)
    assert available_devices() == [name for name, usable in (("cuda", cuda), ("mps", mps), ("cpu", True)) if usable]


def test_cpu_can_always_be_named():
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "cuda:7", ""])
def test_unavailable_device_names_the_available_ones(name):
    if name in available_devices():
        pytest.skip(f"{name} is available here")
    with pytest.raises(ValueError, match="available: .*cpu"):
        pick_device(name)
