"""The LoRA page's current adapter, drawn: what it changed, its switch, and its proofs — each claim beside the
number lora_core measured for it and the bound it must meet (views.tables.proof_rows)."""
import streamlit as st

from lora_core import works
from lora_core.train import wrong_on
from ui import charts
from ui.plain import plain
from views import current_adapter, figures, tables
from views.current_adapter import CurrentAdapter


def draw(result: CurrentAdapter | None, classes) -> None:
    if result is None:
        st.info("Press **Train LoRA** to finetune, or upload an adapter file below.")
        return
    st.subheader(f"Current adapter: {plain(result.name)}")
    if result.warning:
        st.warning(result.warning)
    st.caption(plain(result.caption))
    chosen = result.chosen
    names = tables.class_names(classes, chosen) if chosen else ""
    left, right = st.columns([2, 3]) if result.losses else (None, st.container())
    if left is not None:
        with left:
            charts.show(figures.loss_curve(result.losses, f"Finetuning loss on {names}"), key="lora_loss",
                        caption=current_adapter.loss_caption(result.losses, names))
    with right:
        adapter_on = st.toggle("Adapter on", key="lora_adapter_on",
                               help="Switch the adapter off to use W alone: the network is then exactly the "
                                    "baseline again: its weights are the baseline's bit for bit (checked), so its "
                                    "evaluation is the baseline's and switching is instant.")
        before, after = result.before, result.after if adapter_on else result.off
        after_label = "after LoRA" if adapter_on else "adapter off"
        col1, col2, col3 = st.columns(3)
        col1.metric("Accuracy before", tables.percent(before.accuracy))
        col2.metric(f"Accuracy {after_label}", tables.percent(after.accuracy),
                    delta=f"{(after.accuracy - before.accuracy) * 100:+.2f} points")
        if chosen:
            col3.metric(f"Wrong on {names}", f"{wrong_on(after, chosen):,}",
                        delta=f"{wrong_on(after, chosen) - wrong_on(before, chosen):+,}",
                        delta_color="inverse", help="Test images of the finetuned classes that are misclassified.")
        else:
            col3.metric("Wrong test images", f"{after.wrong:,}", delta=f"{after.wrong - before.wrong:+,}",
                        delta_color="inverse")
    charts.show(figures.before_after(before.wrong_per_class, after.wrong_per_class, classes, chosen, after_label),
                key="lora_before_after",
                caption=current_adapter.before_after_caption(before, after, after_label, chosen, names))
    draw_proofs(result.checks)


def draw_proofs(checks: dict) -> None:
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
