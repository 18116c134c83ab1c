"""The LoRA page's proofs: each claim beside the number lora_core measured for it and the bound it must meet
(views.tables.proof_rows)."""
import streamlit as st

from lora_core import works
from views import tables


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
    for claim, what, value, holds, bound in tables.proof_rows(checks):
        mark = ":green[:material/check_circle:]" if holds else ":red[:material/cancel:]"
        st.markdown(f"{mark} **{claim}** — {what} = `{value:.3g}` ({bound})")
