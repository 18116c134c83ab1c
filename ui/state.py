"""Per-user state: widget defaults in one place, kept while their page is not shown, and repaired when
they are not what their widget accepts (a stale session, a hand-made request, a bug elsewhere)."""
import math
import uuid
from typing import NamedTuple

import streamlit as st

import lora_core as lc
from ui import fair, inside

_BASE = lc.BaselineConfig()
_TUNE = lc.FinetuneConfig()

# Every input widget's key and default. Widgets are created without `value=` and read their value from
# here, so a default is stated once and a callback (e.g. "Use the notebook's settings") can change it.
DEFAULTS = {
    "seed": 0,
    "svd_d": 10, "svd_k": 10, "svd_true_rank": 2, "svd_r": 2,  # the notebook's 10×10 matrix of rank 2
    "base_hidden1": _BASE.hidden1, "base_hidden2": _BASE.hidden2, "base_epochs": _BASE.epochs,
    "base_batch": _BASE.batch_size, "base_lr": _BASE.lr, "base_max_steps": 0,
    "lora_rank": _TUNE.rank, "lora_alpha": _TUNE.alpha, "lora_targets": list(_TUNE.targets),
    "lora_classes": list(_TUNE.digits), "lora_steps": _TUNE.steps, "lora_lr": _TUNE.lr,
    "lora_adapter_on": True,
    "sweep_ranks": [1, 2, 4, 8, 16], "sweep_targets": ["linear1", "linear2"],
    "sweep_classes": list(_TUNE.digits), "sweep_steps": _TUNE.steps, "sweep_alpha": _TUNE.alpha,
    "sweep_lr": _TUNE.lr,
}

DEFAULTS.update(inside.DEFAULTS)  # the "Inside the update" pages

LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]  # the learning-rate inputs offer only these: no NaN losses


class Range(NamedTuple):  # a number_input's or slider's bounds
    kind: type
    low: float
    high: float


class OneOf(NamedTuple):  # a selectbox's or select_slider's options
    options: tuple


class SomeOf(NamedTuple):  # a multiselect's options
    options: tuple


CLASSES = tuple(range(10))
# What each widget accepts, as the pages draw it. A value outside is clamped (numbers) or filtered (lists);
# a value of the wrong type goes back to the default. Keys not listed here get the type check only.
LIMITS = {
    "seed": Range(int, 0, 2**31 - 1),
    "svd_d": Range(int, 2, 512), "svd_k": Range(int, 2, 512),
    "svd_true_rank": Range(int, 1, 512), "svd_r": Range(int, 1, 512),
    "base_hidden1": Range(int, 1, fair.max_hidden()), "base_hidden2": Range(int, 1, fair.max_hidden()),
    "base_epochs": Range(int, 1, 50),
    "base_batch": Range(int, 1, 1024), "base_lr": OneOf(tuple(LEARNING_RATES)),
    "base_max_steps": Range(int, 0, 1_000_000),
    "lora_rank": Range(int, 1, 64), "lora_alpha": Range(float, 0.1, 1000.0),
    "lora_targets": SomeOf(lc.DEFAULT_TARGETS), "lora_classes": SomeOf(CLASSES),
    "lora_steps": Range(int, 1, 100_000), "lora_lr": OneOf(tuple(LEARNING_RATES)),
    "lora_adapter_on": OneOf((True, False)),
    "sweep_ranks": SomeOf((1, 2, 4, 8, 16, 32, 64, 128)), "sweep_targets": SomeOf(lc.DEFAULT_TARGETS),
    "sweep_classes": SomeOf(CLASSES), "sweep_steps": Range(int, 1, 100_000),
    "sweep_alpha": Range(float, 0.1, 1000.0), "sweep_lr": OneOf(tuple(LEARNING_RATES)),
}


def _same(a, b) -> bool:
    """Equal and of the same type: True is not 1, "2" is not 2."""
    return type(a) is type(b) and a == b


def repaired(value, default, limit=None):
    """`value` if its widget accepts it, else the nearest value it does accept, else `default`."""
    if isinstance(limit, Range):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return default
        if limit.kind is int and value != int(value):
            return default
        return limit.kind(min(max(value, limit.low), limit.high))
    if isinstance(limit, OneOf):
        return next((option for option in limit.options if _same(value, option)), default)
    if isinstance(limit, SomeOf):
        if not isinstance(value, (list, tuple)):
            return default
        kept = [v for v in value if any(_same(v, option) for option in limit.options)]
        return list(dict.fromkeys(kept))  # in the order chosen, each once
    if default is None or value is None:
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not type(default):
        return default
    if isinstance(default, list) and default and any(type(v) is not type(default[0]) for v in value):
        return default
    return value


def repair(keys=None) -> None:
    """Put every widget value (or those of `keys`) back inside what its widget accepts."""
    for key in DEFAULTS if keys is None else keys:
        if key in st.session_state:
            value = st.session_state[key]
            fixed = repaired(value, DEFAULTS[key], LIMITS.get(key))
            if not (_same(fixed, value) or fixed is value):
                st.session_state[key] = fixed


def init() -> None:
    """Give every widget its default once; re-store the others so that leaving a page keeps them.

    Streamlit forgets a widget's value when a run does not draw it; writing the value back through
    session_state on every run (from the frame, before any page) keeps it.
    """
    for key, default in DEFAULTS.items():
        st.session_state[key] = st.session_state.get(key, default)
    repair()
    for key, options in (("device", lc.available_devices()), ("dataset", lc.DATASETS)):
        if key in st.session_state and not any(_same(st.session_state[key], o) for o in options):
            del st.session_state[key]  # the selectbox starts again from its first option
    if "session_id" not in st.session_state or not isinstance(st.session_state.session_id, str):
        st.session_state.session_id = uuid.uuid4().hex  # names this user to the shared baseline store


def clamp(key: str, low: int, high: int) -> int:
    """Keep a slider's stored value inside limits that other sliders just moved; call before drawing it."""
    st.session_state[key] = repaired(st.session_state[key], low, Range(int, low, high))
    return st.session_state[key]
