"""Which compute device to run on."""
import torch

_PREFERENCE = ("cuda", "mps", "cpu")


def available_devices() -> list[str]:
    """The usable devices among cuda, mps and cpu, best first."""
    usable = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    return [name for name in _PREFERENCE if usable[name]]


def pick_device(name: str = "auto") -> torch.device:
    """"auto" takes the best available device; any other name must be available."""
    available = available_devices()
    if name == "auto":
        return torch.device(available[0])
    if name not in available:
        raise ValueError(f"device {name!r} is not available here; available: {', '.join(available)}")
    return torch.device(name)
