"""Model checkpoints on disk: written atomically, verified on reading, never unpickled.

A checkpoint is a safetensors file whose metadata holds the SHA-256 of its tensors: a partial write, a
flipped byte or a foreign file reads as None (retrain), never as a silently wrong model.
"""
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

FORMAT = "lora-lab-checkpoint/1"


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the tensors' names and bytes: equal exactly when they hold the same numbers."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(model: nn.Module, path, info: dict | None = None) -> None:
    """Write the model's state_dict to `path` via a temporary file and a rename: all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "sha256": digest(tensors), "info": json.dumps(info or {})}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(save_safetensors(tensors, metadata=metadata))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(model: nn.Module, path) -> dict | None:
    """Load `path` into `model` and return its info, or None when it is missing, partial or corrupt
    (the model is then untouched)."""
    try:
        blob = Path(path).read_bytes()
        header_length = int.from_bytes(blob[:8], "little")
        metadata = json.loads(blob[8:8 + header_length]).get("__metadata__") or {}
        tensors = load_safetensors(blob)
    except (OSError, ValueError, SafetensorError, UnicodeDecodeError):
        return None
    if metadata.get("format") != FORMAT or metadata.get("sha256") != digest(tensors):
        return None
    expected = model.state_dict()
    if set(tensors) != set(expected) or any(tensors[k].shape != expected[k].shape for k in tensors):
        return None
    model.load_state_dict(tensors)
    try:
        return json.loads(metadata.get("info", "{}"))
    except ValueError:
        return {}
