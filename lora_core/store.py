"""Finished runs kept by what describes them: in memory (least recently used first out) and on disk as
atomic, hash-verified safetensors files, so that a link, a reload or a second student gets the result
without training it again, even after the server restarts.

A run's key is the SHA-256 of its description (Experiment.identity) and of what else changes its numbers:
the library versions, the torch threads of one training and the device. Values are plain data — numbers,
strings, lists, dicts, tensors, arrays and lora_core's own dataclasses — written as tensors plus JSON:
nothing is ever unpickled, and only lora_core's dataclasses can be rebuilt from a file.
"""
import dataclasses
import hashlib
import json
import math
import os
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from .checkpoints import load_tensors, read_info, save_tensors

FORMAT = "lora-lab-run/3"  # a new number when what a record holds changes


def code_version(folder: Path = Path(__file__).parent) -> str:
    """A digest of the code that computes runs (this package's sources): servers on different code never
    share a run, and a change to how a number is computed makes its runs anew, with no number to bump."""
    digest = hashlib.sha256()
    for source in sorted(folder.rglob("*.py")):
        digest.update(source.relative_to(folder).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


CODE = code_version()
USED_EVERY_S = 60.0  # how often a run served from memory refreshes its file's time
MAX_RUN_BYTES = 2**30  # the largest run file read back (a baseline of 4096-wide layers is about 90 MB)


def run_key(kind: str, identity: dict, environment: dict) -> str:
    """A stable name for a run: the same description on the same software gives the same key."""
    text = json.dumps({"format": FORMAT, "code": CODE, "kind": kind, "run": identity, "env": environment},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def environment(device: str, threads: int) -> dict:
    """What besides the description changes a run's float rounding: a different one is a different run."""
    return {"torch": torch.__version__, "numpy": np.__version__, "device": device, "threads": threads}


# --- values as tensors + JSON --------------------------------------------------------------------------

def _dataclasses() -> dict[str, type]:
    """lora_core's dataclasses by name: the only classes a stored value can hold."""
    found = {}
    for name, module in list(sys.modules.items()):
        if name.startswith(f"{__package__}.") and module is not None:
            for value in vars(module).values():
                if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == name:
                    found[value.__qualname__] = value
    return found


def encode(value) -> tuple[dict[str, torch.Tensor], object]:
    """(tensors, a JSON-able structure that refers to them by name)."""
    tensors: dict[str, torch.Tensor] = {}
    names: dict[tuple, str] = {}  # a tensor held twice (one evaluation as "before" and "off") is written once
    storages: set[int] = set()

    def walk(v):
        if v is None or isinstance(v, (bool, int, str)):
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else {"float": repr(v)}
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().contiguous()
            storage = v.untyped_storage().data_ptr()
            same = (storage, v.storage_offset(), tuple(v.shape), v.dtype)
            if same not in names:
                names[same] = str(len(tensors))
                tensors[names[same]] = v.clone() if storage in storages else v  # safetensors refuses shared memory
                storages.add(storage)
            return {"tensor": names[same]}
        if isinstance(v, np.ndarray):
            return {"array": walk(torch.from_numpy(np.array(v, order="C")))["tensor"]}  # a copy: v may be read-only
        if isinstance(v, np.generic):
            return walk(v.item())
        if isinstance(v, (list, tuple)):
            return {"tuple" if isinstance(v, tuple) else "list": [walk(x) for x in v]}
        if isinstance(v, dict):
            return {"dict": [[walk(k), walk(x)] for k, x in v.items()]}
        if dataclasses.is_dataclass(v) and not isinstance(v, type) and type(v).__module__.startswith(__package__):
            return {"dataclass": type(v).__qualname__,
                    "fields": {f.name: walk(getattr(v, f.name)) for f in dataclasses.fields(v) if f.init}}
        raise TypeError(f"a stored run cannot hold a {type(v).__name__}")

    return tensors, walk(value)


def decode(tensors: dict[str, torch.Tensor], structure):
    """The value `encode` was given; a ValueError for anything it could not have written."""
    classes = _dataclasses()

    def walk(v):
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if not isinstance(v, dict) or len(v) not in (1, 2):
            raise ValueError(f"not a stored value: {str(v)[:60]}")
        (tag, body), = list(v.items())[:1]
        if tag == "float":
            return float(body)
        if tag == "tensor":
            return tensors[body]
        if tag == "array":
            return tensors[body].numpy()
        if tag in ("list", "tuple"):
            items = [walk(x) for x in body]
            return tuple(items) if tag == "tuple" else items
        if tag == "dict":
            return {_hashable(walk(k)): walk(x) for k, x in body}
        if tag == "dataclass":
            cls = classes.get(body)
            if cls is None:
                raise ValueError(f"unknown stored class {body!r}")
            return cls(**{name: walk(x) for name, x in v["fields"].items()})
        raise ValueError(f"unknown stored tag {tag!r}")

    try:
        return walk(structure)
    except (KeyError, TypeError) as err:
        raise ValueError(f"a damaged stored value: {err}") from err


def _header_fields(value) -> dict | None:
    """The top-level fields of an encoded record (a dict, or a dataclass), by name; None for anything else."""
    if isinstance(value, dict) and isinstance(value.get("fields"), dict):
        return value["fields"]
    if not isinstance(value, dict) or not isinstance(value.get("dict"), list):
        return None
    return {k: v for k, v in (item for item in value["dict"] if isinstance(item, list) and len(item) == 2)
            if isinstance(k, str)}


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def nbytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


# --- the store -------------------------------------------------------------------------------------

class RunStore:
    """Finished runs by key: `get` looks in memory, then on disk; `put` keeps a run in both.

    On disk a run is the record `put` was given; in memory it is kept as it is used (a baseline's model,
    shared read-only by every session) or, when `put` has no live value, as the record, which
    `get(key, revive)` turns into what is used on every call (a finetune: a fresh copy of the baseline
    carrying the adapter, for the session that asked). Memory is bounded by the records' tensor bytes.
    """

    def __init__(self, directory: Path | str | None, max_bytes: int = 512 * 2**20, problem=None):
        self.directory = Path(directory) if directory is not None else None
        self.max_bytes = max_bytes
        self.problem = problem or (lambda record: None)  # why a record is not the whole run it claims to be
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, tuple[object, bool, int]] = OrderedDict()  # key → (value, live?, bytes)
        self.writes = 0  # runs put: a test can see that a run was stored once
        self.damaged: set[str] = set()  # keys whose file could not be verified: made again, then overwritten
        self._used: dict[str, float] = {}  # key → when its file's time was last set to "used now"

    def __repr__(self) -> str:
        return f"RunStore({self.directory}, {len(self._memory)} in memory)"

    def path(self, key: str) -> Path | None:
        return self.directory / f"{key}.safetensors" if self.directory is not None else None

    def get(self, key: str, revive=None, share: bool = False):
        """The value for `key`, or None: what `put` kept in memory, or `revive(record)` (the record when no
        `revive` is given). With `share`, a value revived from disk is kept in memory as the live one."""
        with self._lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
        if found is not None:
            self._mark_used(key)
            value, live, _ = found
            return value if live or revive is None else revive(value)
        path = self.path(key)
        if path is None or not path.exists():
            return None
        loaded = load_tensors(path, MAX_RUN_BYTES)
        try:
            if loaded is None or loaded[1].get("key") != key:
                raise ValueError("not a verified run file")
            tensors, info = loaded
            record = decode(tensors, info["value"])
            if (problem := self.problem(record)) is not None:
                raise ValueError(problem)
            value = revive(record) if revive is not None else record
        except (ValueError, TypeError, KeyError, RuntimeError):
            self.damaged.add(key)  # damaged or foreign: the run is made again, never half-read
            return None
        self._remember(key, value if share and revive is not None else record, share and revive is not None,
                       nbytes(tensors))
        return value

    def _mark_used(self, key: str, now: float | None = None) -> None:
        """A run served from memory is in use: its file's time says so (at most once a minute), so that the
        folder's bound (checkpoints.tidy, oldest first) never takes it before runs nobody asks for."""
        now = time.time() if now is None else now
        if self.directory is None or now - self._used.get(key, -math.inf) < USED_EVERY_S:
            return
        self._used[key] = now
        try:
            os.utime(self.path(key), (now, now))
        except OSError:  # not on disk (a full disk, say): only memory holds it
            pass

    def put(self, key: str, record, live=None) -> OSError | None:
        """Keep a finished run: `record` (plain data) on disk, `live` (default: the record) in memory.

        A disk that cannot be written only costs the copy on disk (the error is returned, for the log):
        the run stays in memory. A record that contradicts what it describes (`problem`) is refused with a
        ValueError: what is stored under a key is always the whole run of that key."""
        if (problem := self.problem(record)) is not None:
            raise ValueError(f"not stored: {problem}")
        tensors, structure = encode(record)
        self._remember(key, record if live is None else live, live is not None, nbytes(tensors))
        self.writes += 1
        self.damaged.discard(key)
        path = self.path(key)
        if path is not None:
            try:
                save_tensors(tensors, path, {"key": key, "value": structure})
            except OSError as err:
                return err
        return None

    def forget(self, key: str) -> None:
        with self._lock:
            self._memory.pop(key, None)

    def delete(self, key: str) -> bool:
        """Forget the run `key` in memory and on disk; whether there was a file to delete."""
        self.forget(key)
        path = self.path(key)
        try:
            path.unlink()
        except (OSError, AttributeError):  # gone already, or a store without a folder (path None)
            return False
        return True

    def summary(self, key: str) -> str:
        """What the file of run `key` holds, from its header alone: its kind (a typed result's class), its
        config and steps, or the uploaded file's name."""
        info = read_info(self.path(key)) if self.path(key) is not None else None
        value = info.get("value") if info is not None else None
        fields = _header_fields(value)
        if fields is None:
            return "unreadable" if info is None else "a stored value"
        kind = f"{value['dataclass']}: " if "dataclass" in value else ""
        config, losses = fields.get("config"), fields.get("losses")
        if isinstance(config, dict) and isinstance(config.get("fields"), dict):
            settings = ", ".join(f"{k}={v}" for k, v in config["fields"].items() if not isinstance(v, dict))
            steps = f"; {len(losses['list']):,} steps trained" if isinstance(losses, dict) and "list" in losses else ""
            return f"{kind}{config.get('dataclass')}({settings}){steps}"
        if "filename" in fields:
            return "upload: " + str(fields["filename"])
        return (kind or "a stored value: ") + ", ".join(fields)

    def files(self) -> list[tuple[str, int, float]]:
        """(key, bytes, last used as a Unix time) of every run on disk, most recently used first."""
        found = []
        for path in self.directory.glob("*.safetensors") if self.directory is not None else ():
            try:
                info = path.stat()
            except OSError:  # gone meanwhile
                continue
            found.append((path.name.removesuffix(".safetensors"), info.st_size, info.st_mtime))
        return sorted(found, key=lambda row: row[2], reverse=True)

    def _remember(self, key: str, value, live: bool, size: int) -> None:
        with self._lock:
            self._memory[key] = (value, live, size)
            self._memory.move_to_end(key)
            while len(self._memory) > 1 and sum(s for *_, s in self._memory.values()) > self.max_bytes:
                self._memory.popitem(last=False)
