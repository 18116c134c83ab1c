"""The run settings in the URL: a teacher sends a link and every student opens the same run.

On a session's first run the URL's settings (lora_core.presets) become the widgets' values; from then on
the URL follows the widgets, so the address bar is always a link to what is on screen.
"""
from dataclasses import replace
from urllib.parse import urlencode

import streamlit as st

from lora_core import presets as core
from ui.plain import plain

# RunSettings field → the session_state key of the widget that shows it (sidebar and LoRA page)
KEYS = {"seed": "seed", "dataset": "dataset", "rank": "lora_rank", "alpha": "lora_alpha",
        "digits": "lora_classes", "steps": "lora_steps", "targets": "lora_targets"}
ALPHA_LIMITS = (0.1, 1000.0)  # the LoRA page's α input
DEFAULT_QUERY = core.to_query(core.RunSettings())


def current() -> core.RunSettings:
    """The settings the widgets hold now."""
    ss = st.session_state
    targets = [t for t in core.DEFAULT_TARGETS if t in ss["lora_targets"]]
    return core.RunSettings(seed=int(ss["seed"]), dataset=ss.get("dataset", core.RunSettings.dataset),
                            rank=int(ss["lora_rank"]),
                            alpha=float(ss["lora_alpha"]), digits=tuple(sorted(ss["lora_classes"])),
                            steps=int(ss["lora_steps"]), targets=tuple(targets))


def apply(settings: core.RunSettings, only=KEYS) -> None:
    """Give the widgets these settings (before they are drawn in this run); `only` some of them."""
    for name in only:
        value = getattr(settings, name)
        st.session_state[KEYS[name]] = list(value) if isinstance(value, tuple) else value


def _fit_widgets(settings: core.RunSettings) -> tuple[core.RunSettings, list[str]]:
    """α within the LoRA page's input, which is narrower than what a link may carry."""
    low, high = ALPHA_LIMITS
    if low <= settings.alpha <= high:
        return settings, []
    kept = min(max(settings.alpha, low), high)
    return (replace(settings, alpha=kept),
            [f"alpha={settings.alpha:g} is outside the LoRA page's {low:g}..{high:g}; using {kept:g}"])


def link_query(settings: core.RunSettings) -> dict[str, str]:
    """The query parameters of these settings: only those that differ from the defaults."""
    return {name: value for name, value in core.to_query(settings).items()
            if value and value != DEFAULT_QUERY[name]}


def _write_url(query: dict[str, str]) -> None:
    for name in (*KEYS, "preset"):
        if name in query:
            if st.query_params.get(name) != query[name]:
                st.query_params[name] = query[name]
        elif name in st.query_params:
            del st.query_params[name]


def _dismiss() -> None:
    st.session_state.preset_problems = []


def _choose() -> None:
    name = st.session_state.preset_name
    if name in core.PRESETS:
        apply(core.PRESETS[name])
        st.session_state.preset_problems = []


def from_link() -> None:
    """Read the URL once per session; then keep it in step with the widgets. Warn about refused values.

    Call from the frame before any widget is drawn: what it draws lands at the top of the page.
    """
    if "preset_problems" not in st.session_state:
        params = st.query_params.to_dict()
        settings, problems = core.from_query(params)
        settings, clamped = _fit_widgets(settings)
        named = core.PRESETS.get(params.get("preset")) is not None  # a preset sets every field
        apply(settings, KEYS if named else [name for name in KEYS if name in params])
        st.session_state.preset_problems = problems + clamped
    problems = st.session_state.preset_problems
    if problems:
        text, button = st.columns([6, 1])
        text.warning("**The link's settings were not all usable**; these were replaced:\n\n"
                     + "\n".join(f"- {plain(p)}" for p in problems), icon=":material/warning:")
        button.button("Dismiss", key="preset_dismiss", on_click=_dismiss)
    _write_url(link_query(current()))


def sidebar() -> None:
    """The named presets and the link to the current settings; draw inside the sidebar."""
    settings = current()
    st.session_state.preset_name = next((n for n, p in core.PRESETS.items() if p == settings), None)
    st.selectbox("Preset", list(core.PRESETS), key="preset_name", index=None, on_change=_choose,
                 placeholder="your own settings",
                 help="Named run settings: seed, dataset, rank, α, classes, steps and target layers. "
                      "Choosing one sets the sidebar and the LoRA page.")
    query = link_query(settings)
    with st.expander("Share these settings"):
        st.caption("Whoever opens this link gets the same seed, dataset and LoRA settings (the address bar "
                   "holds it too).")
        st.code((st.context.url or "") + ("?" + urlencode(query, safe=",") if query else ""), language=None)
