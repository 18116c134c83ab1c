"""Tensor files on disk (the run store's): written atomically, verified on reading, never unpickled; a
bounded folder.

A checkpoint is a safetensors file whose metadata holds the SHA-256 of its tensors: a partial write, a
flipped byte, a foreign file or anything else that is not exactly what was saved reads as None (retrain),
never as a silently wrong model and never as an exception. The folder is kept under a size: the least
recently used checkpoints go first, and what a killed writer left half-written is deleted.
"""
import hashlib
import json
import os
import stat
import tempfile
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

FORMAT = "lora-lab-checkpoint/1"
PARTIAL = ".partial"  # suffix of a file being written; renamed into place when complete
MAX_HEADER_BYTES = 64 * 2**20  # the header holds the tensor index and the info (a loss curve): far less
PARTIAL_AGE_S = 60.0  # a write takes seconds: a .partial file older than this was left by a killed writer


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the tensors' names and bytes: equal exactly when they hold the same numbers."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_tensors(tensors: dict[str, torch.Tensor], path, info: dict | None = None) -> None:
    """Write tensors and JSON-able `info` to `path` via a temporary file and a rename: all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = {"format": FORMAT, "sha256": digest(tensors), "info": json.dumps(info or {})}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=PARTIAL)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(save_safetensors(tensors, metadata=metadata))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_regular_file(path, limit: int) -> bytes | None:
    """The bytes of `path`, or None unless it is a regular file of at most `limit` bytes.

    Opened without blocking and checked before reading: a FIFO would wait forever for a writer, and a
    device such as /dev/zero would never end.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        blob = f.read(limit + 1)
    return blob if len(blob) <= limit else None


def safetensors_metadata(blob: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors file's bytes (an 8-byte little-endian length, then a JSON header),
    or {} when it has none; a ValueError when the header is not JSON of that shape."""
    length = int.from_bytes(blob[:8], "little")
    if len(blob) < 8 or length > min(MAX_HEADER_BYTES, len(blob) - 8):
        raise ValueError("no safetensors header")
    header = json.loads(blob[8:8 + length])
    metadata = header.get("__metadata__", {}) if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("the safetensors metadata is not a table of texts")
    return metadata


def read_info(path) -> dict | None:
    """The `info` a checkpoint was saved with, reading its header only; None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            length = int.from_bytes(f.read(8), "little")
            metadata = safetensors_metadata(length.to_bytes(8, "little") + f.read(min(length, MAX_HEADER_BYTES)))
        info = json.loads(metadata.get("info", "{}"))
    except (OSError, ValueError, RecursionError):
        return None
    return info if isinstance(info, dict) else None


def _header(blob: bytes) -> tuple[dict, dict]:
    """(metadata, info) of a checkpoint; ValueError when either is not a JSON object of the right shape."""
    metadata = safetensors_metadata(blob)
    info = json.loads(metadata.get("info", "{}"))
    if not isinstance(info, dict):
        raise ValueError("info is not an object")
    return metadata, info


def load_tensors(path, limit: int) -> tuple[dict[str, torch.Tensor], dict] | None:
    """(tensors, info) of a file `save_tensors` wrote, at most `limit` bytes of tensors; None when it is
    missing or damaged in any way. A file read is marked as just used, for the cache's eviction order."""
    try:
        blob = _read_regular_file(path, limit + MAX_HEADER_BYTES)
        if blob is None:
            return None
        tensors = load_safetensors(blob)
        metadata, info = _header(blob)
    except (OSError, ValueError, SafetensorError, RecursionError):  # RecursionError: JSON nested too deep
        return None
    if metadata.get("format") != FORMAT or metadata.get("sha256") != digest(tensors):
        return None
    try:
        os.utime(path)
    except OSError:  # a read-only folder still serves its files
        pass
    return tensors, info


def tidy(folder, max_bytes: float, partial_age_s: float = PARTIAL_AGE_S, now: float | None = None) -> dict:
    """Bound the checkpoint folder: delete `.partial` files older than `partial_age_s` (a killed writer's),
    then the least recently used checkpoints (oldest modification time) until the rest fit in `max_bytes`.

    Returns what it did: {"partial": files, "evicted": files, "kept_bytes": bytes}. Never raises.
    """
    done = {"partial": 0, "evicted": 0, "kept_bytes": 0}
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return done
    checkpoints = []
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
            if entry.name.endswith(PARTIAL):
                if now - info.st_mtime >= partial_age_s:
                    os.unlink(entry.path)
                    done["partial"] += 1
            elif entry.name.endswith(".safetensors"):
                checkpoints.append((info.st_mtime, info.st_size, entry.path))
        except OSError:  # gone meanwhile, or not ours to delete
            continue
    full = False
    for _, size, path in sorted(checkpoints, reverse=True):  # most recently used first
        full = full or done["kept_bytes"] + size > max_bytes
        if not full:
            done["kept_bytes"] += size
            continue
        try:
            os.unlink(path)
            done["evicted"] += 1
        except OSError:
            done["kept_bytes"] += size
    return done

