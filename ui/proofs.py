"""The LoRA page's proofs: each claim beside the number lora_core measured for it and the bound it must meet
(lora_core.finetuning.adapter_checks, and start_checks after PiSSA or OLoRA)."""
import streamlit as st

import lora_core as lc
from lora_core import works


def rows(checks: dict) -> list[tuple[str, str, float, bool, str]]:
    """(claim, what is measured, its value, whether it holds, the bound) for every proof the checks hold."""
    def at_most(claim, what, value, bound):
        return claim, what, value, value <= bound, f"must be ≤ {bound:g}"
    found = [
        at_most("The original weights are unchanged", "max |W now − W of the baseline|",
                checks["weights_changed"], 0.0),
        at_most("Adapter off gives the original network's outputs", "max |difference|", checks["off_vs_base"], 0.0),
        at_most("Merged weights give the same outputs as the adapter", "max |difference|",
                checks["merged_vs_parametrized"], 1e-5),
    ]
    if "factored_vs_parametrized" in checks:  # adapters checked before this proof existed lack it
        found.append(at_most("The factored training path gives the parametrized W′'s outputs",
                             "max |difference| / max |logit|", checks["factored_vs_parametrized"],
                             lc.FACTORED_TOLERANCE))
    if "start_vs_base" in checks:  # an init that moved W's principal part into the adapter
        found.append(at_most("At step 0 the adapted network (residual base + s·B₀·A₀) gave the baseline's outputs",
                             "max |difference| / max |logit|", checks["start_vs_base"], lc.START_TOLERANCE))
        value = checks["residual_vs_base"]
        found.append(("The residual base alone (adapter off at step 0) did not", "max |difference| / max |logit|",
                      value, value > lc.START_TOLERANCE, f"must be > {lc.START_TOLERANCE:g}"))
    return found


def draw(checks: dict) -> None:
    st.subheader("Proofs")
    st.markdown("Training ran through the factored path **W·x + (α/r)·B·(A·x)**, which never builds W′; the "
                "evaluations above, the switch and the merge use the parametrized weight **W′ = W + (α/r)·B·A**. "
                "The last proof checks that the two forwards agree on the trained adapter. The weights are "
                f"compared in full, the outputs on the first {works.PROOF_IMAGES:,} test images.")
    if "start_vs_base" in checks:
        st.markdown("This adapter started from PiSSA or OLoRA: W's principal part s·B₀·A₀ was moved into it and "
                    "training ran on the residual W − s·B₀·A₀. Kept as PEFT saves such an adapter, for the "
                    "baseline's own W: A′ = [A; A₀], B′ = [B | −B₀] at rank 2r, so W + s·B′·A′ = W − s·B₀·A₀ + "
                    "s·B·A, the trained network, and the proofs above it hold for the baseline itself.")
    for claim, what, value, holds, bound in rows(checks):
        mark = ":green[:material/check_circle:]" if holds else ":red[:material/cancel:]"
        st.markdown(f"{mark} **{claim}** — {what} = `{value:.3g}` ({bound})")
