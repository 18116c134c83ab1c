"""The Combine adapters page's session state: combinations and evaluations already computed, and their zips.

Everything is computed by lora_core.combine; this module only keeps results in `st.session_state` under
"combine_results" and "combine_scores" (a few each), so that moving back to a setting is instant.
"""
import streamlit as st

import lora_core as lc
from lora_core.adapter_zips import adapter_zip
from lora_core.combine import adapted, evaluate_adapter, wrong_on

MAX_KEPT = 16  # combinations, and adapter evaluations, remembered per session
DEFAULTS = {"combine_method": "cat", "combine_density": 0.5, "combine_sign": "total", "combine_svd_rank": 2,
            "combine_seed": 0}


def init_widgets(uids: list[int]) -> None:
    """The page's widget values before they are drawn: defaults where unset (the last two adapters chosen),
    and only adapters still in the list (an old one may have been dropped)."""
    for key, default in DEFAULTS.items():
        st.session_state.setdefault(key, default)
    held = st.session_state.get("combine_chosen", uids[-2:])
    chosen = [uid for uid in held if uid in uids] if isinstance(held, list) else uids[-2:]
    st.session_state.combine_chosen = chosen
    for uid in chosen:
        st.session_state.setdefault(f"combine_weight_{uid}", 1.0)


def _remember(store: str, key, make):
    kept = st.session_state.setdefault(store, {})
    if key not in kept:
        kept[key] = make()
        while len(kept) > MAX_KEPT:
            kept.pop(next(iter(kept)))
    return kept[key]


def combination(base_key, entries: list[dict], config: lc.CombineConfig) -> lc.Combination:
    """lc.combine of the entries' adapters; ValueError (in the user's words) when it cannot be done."""
    key = (base_key, tuple(e["uid"] for e in entries), config)
    return _remember("combine_results", key, lambda: lc.combine([e["adapter"] for e in entries], config))


def score(base: lc.BaselineRun, data: lc.Dataset, key, adapter: lc.Adapter) -> lc.Evaluation:
    """The baseline carrying `adapter`, evaluated on the test images once per `key`."""
    return _remember("combine_scores", key, lambda: evaluate_adapter(base.model, adapter, data.test_x, data.test_y))


def rows(evaluations: dict[str, lc.Evaluation], groups: dict[str, tuple[int, ...]]) -> list[dict]:
    """Per network: accuracy, and errors on each group of digits (each adapter's, then the others)."""
    return [{"network": name, "accuracy": evaluation.accuracy,
             **{f"wrong on {label}": wrong_on(evaluation, digits)[0] for label, digits in groups.items()}}
            for name, evaluation in evaluations.items()]


def joint(entries: list[dict], digits) -> dict | None:
    """An adapter of the list trained on exactly these digits together, if there is one (the newest)."""
    matches = [e for e in entries if e["source"] == "trained" and sorted(e["chosen"]) == sorted(digits)]
    return matches[-1] if matches else None


def zip_data(base: lc.BaselineRun, result: lc.Combination, peft_format: bool):
    """The combined adapter's zip for a download button, made when it is clicked."""
    return lambda: adapter_zip(adapted(base.model, result.adapter), peft_format)
