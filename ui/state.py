"""Per-user state: widget defaults in one place, kept while their page is not shown."""
import uuid

import streamlit as st

import lora_core as lc
from ui import inside

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

LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]


def init() -> None:
    """Give every widget its default once; re-store the others so that leaving a page keeps them.

    Streamlit forgets a widget's value when a run does not draw it; writing the value back through
    session_state on every run (from the frame, before any page) keeps it.
    """
    for key, default in DEFAULTS.items():
        st.session_state[key] = st.session_state.get(key, default)
    if "session_id" not in st.session_state:
        st.session_state.session_id = uuid.uuid4().hex  # names this user to the shared baseline store


def clamp(key: str, low: int, high: int) -> int:
    """Keep a slider's stored value inside limits that other sliders just moved; call before drawing it."""
    st.session_state[key] = min(max(st.session_state[key], low), high)
    return st.session_state[key]
