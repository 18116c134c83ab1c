"""Per-user state: widget defaults in one place, kept while their page is not shown, and repaired when
they are not what their widget accepts (a stale session, a hand-made request, a bug elsewhere)."""
import math
import uuid
from typing import NamedTuple

import streamlit as st

import lora_core as lc
from lora_core import presets
from lora_core.experiment import STUDY_RANKS
from ui import experiment, fair, inside

# Every input widget's key and default. Widgets are created without `value=` and read their value from
# here, so a default is stated once and a callback (a preset, say) can change it. The experiment's widgets
# take theirs from lora_core's Experiment.
DEFAULTS = {
    **experiment.DEFAULTS,
    "svd_d": 10, "svd_k": 10, "svd_true_rank": 2, "svd_r": 2,  # the notebook's 10×10 matrix of rank 2
    "lora_adapter_on": True,
    **inside.DEFAULTS,  # the "Inside the update" pages' views
}
del DEFAULTS["dataset"]  # the dataset selectbox starts from its first option (ui.context)

LEARNING_RATES = list(presets.LEARNING_RATES)  # the learning-rate inputs offer only these: no NaN losses


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
    "lora_steps": Range(int, 1, 100_000), "lora_lr": OneOf(presets.LEARNING_RATES),
    "lora_batch": Range(int, 1, 1024), "lora_init": OneOf(tuple(lc.lora.INITS)), "lora_rslora": OneOf((True, False)),
    "lora_dora": OneOf((True, False)), "lora_loraplus": Range(float, 0.1, presets.MAX_LORAPLUS_RATIO),
    "lora_adapter_on": OneOf((True, False)),
    "sweep_ranks": SomeOf(STUDY_RANKS), "sweep_targets": SomeOf(lc.DEFAULT_TARGETS),
    "sweep_full_lr": OneOf(tuple(inside.FULL_LEARNING_RATES)),
    "oracle_full_lr": OneOf(tuple(inside.FULL_LEARNING_RATES)),
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
