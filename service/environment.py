"""The server's settings from its environment (its trainings at once, its run folder; the limits on one
training are service.limits'): one reader, one policy. A value that is not a valid number is named in the
log with the default used instead: a mistyped setting never stops the server, and never shows a user a
traceback."""
import logging
import os
from pathlib import Path

import torch

from lora_core.slots import default_limit, threads_per_run

log = logging.getLogger("lora_lab")  # Streamlit's logger of that name (ui.server) once the app runs


def number(name: str, default, kind=int, low=1):
    """The environment variable `name` as a `kind` ≥ `low`, or `default` when it is unset or not one."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
        if not low <= value < float("inf"):  # also refuses nan
            raise ValueError
        return value
    except ValueError:
        what = "an integer" if kind is int else "a number"
        log.warning("%s=%r is not %s ≥ %s; using %s", name, text, what, low, default)
        return default


def text(name: str) -> str:
    """The environment variable `name`, stripped; '' when unset."""
    return os.environ.get(name, "").strip()


MAX_TRAININGS_ENV = "LORA_LAB_MAX_TRAININGS"  # trainings at once on this server (default: one per core)
CACHE_ENV = "LORA_LAB_CACHE"  # where finished runs are kept between server restarts
CACHE_MB_ENV = "LORA_LAB_CACHE_MB"  # their folder's size limit; the least recently used go first
DEFAULT_CACHE_MB = 1024  # a dozen of the widest baselines (80 MB each), hundreds of default ones (11 MB)
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / "artifacts" / "checkpoints"
TORCH_DEFAULT_THREADS = torch.get_num_threads()


def max_trainings() -> int:
    return number(MAX_TRAININGS_ENV, default_limit())


def threads_each(limit: int) -> int:
    """Torch threads for each of `limit` concurrent trainings: together they use the cores, not more (and
    never more than torch would use alone)."""
    return min(threads_per_run(limit), TORCH_DEFAULT_THREADS)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def runs_dir() -> Path:
    """Where the run store keeps finished runs (service.runs)."""
    return cache_dir() / "runs"


def cache_limit_bytes() -> float:
    return number(CACHE_MB_ENV, DEFAULT_CACHE_MB, float, low=0) * 2**20  # 0: keep none
