"""Per-user state: widget defaults in one place, kept while their page is not shown, and repaired when
they are not what their widget accepts (a stale session, a hand-made request, a bug elsewhere)."""
import math
import uuid

import streamlit as st

import lora_core as lc
from lora_core.settings import SETTINGS, Number, OneOf, SomeOf, Whole
from ui import experiment, inside

# Every input widget's key and default. Widgets are created without `value=` and read their value from
# here, so a default is stated once and a callback (a preset, say) can change it. The experiment's widgets
# take theirs from the settings table (lora_core.settings).
DEFAULTS = {
    **experiment.DEFAULTS,
    "svd_d": 10, "svd_k": 10, "svd_true_rank": 2, "svd_r": 2,  # the notebook's 10×10 matrix of rank 2
    "lora_adapter_on": True,
    **inside.DEFAULTS,  # the "Inside the update" pages' views
}
del DEFAULTS["dataset"]  # the dataset selectbox starts from its first option (ui.context)

# What each widget accepts: the experiment's from the settings table, the SVD playground's here. A value
# outside is clamped (numbers) or filtered (sets); a value of the wrong type goes back to the default.
# Keys not listed here get the type check only.
LIMITS = {
    **{s.key: s.accepts for s in SETTINGS},
    "svd_d": Whole(2, 512), "svd_k": Whole(2, 512), "svd_true_rank": Whole(1, 512), "svd_r": Whole(1, 512),
    "lora_adapter_on": OneOf((True, False)),
}
def _same(a, b) -> bool:
    """Equal and of the same type: True is not 1, "2" is not 2."""
    return type(a) is type(b) and a == b


def _clamped(value, limit: Whole | Number, default):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    if isinstance(limit, Whole) and value != int(value):
        return default
    kind = int if isinstance(limit, Whole) else float
    return kind(min(max(value, limit.low), limit.high))


def repaired(value, default, limit=None):
    """`value` if its widget accepts it, else the nearest value it does accept, else `default`; a set in
    its one order (the options')."""
    if isinstance(limit, (Whole, Number)):
        return _clamped(value, limit, default)
    if isinstance(limit, OneOf):
        return limit.check(value) if limit.has(value) else default
    if isinstance(limit, SomeOf):
        if not isinstance(value, (list, tuple)):
            return default
        return list(limit.canonical(value))
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
    st.session_state[key] = repaired(st.session_state[key], low, Whole(low, high))
    return st.session_state[key]
