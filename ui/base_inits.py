"""The initialisation gallery's part on PiSSA and OLoRA: the spectrum each leaves in the base beside W's,
the outputs at step 0, and their learning curves beside plain LoRA's. Numbers from lora_core.studies'
InitCurve (its spectra: lora_core.variants.residual_spectra)."""
import streamlit as st

from lora_core import studies
from ui import charts
from ui.inside import INIT_LABELS
from views import inside_figures
from views.inside_figures import SHORT_INIT as SHORT

PLAIN = "kaiming"  # plain LoRA: PEFT's default start


def _spectra(moved: list, rank: int) -> None:
    layers = [s.layer for s in moved[0].spectra]
    for tab, layer in zip(st.tabs(layers), layers, strict=True):
        with tab:
            found = {c.init: next(s for s in c.spectra if s.layer == layer) for c in moved}
            weight = next(iter(found.values())).base.tolist()
            residuals = {init: s.residual.tolist() for init, s in found.items()}
            words = [f"W's σ₁ … σ{rank + 1} = " + ", ".join(f"{v:.4g}" for v in weight[:rank + 1])]
            words += [f"{SHORT[init]}'s residual starts at σ₁ = {values[0]:.4g}" for init, values in residuals.items()]
            if "pissa" in found:
                words.append(f"PiSSA moved {found['pissa'].moved.numel()} singular values into the adapter: "
                             + ", ".join(f"{v:.4g}" for v in found["pissa"].moved.tolist()))
            charts.show(inside_figures.residual_spectra(layer, weight, residuals), key=f"inits_spectrum_{layer}",
                        caption="; ".join(words) + ".")


def _curves(curves: dict) -> None:
    shown = {init: curves[init].losses for init in inside_figures.SHORT_INIT if init in curves}
    charts.show(inside_figures.beside_plain(shown), key="inits_beside_plain",
                caption="The same data, steps and seed, so the same batches; mean loss of the last "
                        f"{studies.FINAL_LOSS_STEPS} steps: " + ", ".join(
                            f"{SHORT[init]} {studies.final_loss(y):.3g}" for init, y in shown.items()) + ".")


def draw(curves: dict, rank: int) -> None:
    """The section, when the gallery ran PiSSA or OLoRA."""
    moved = [c for c in curves.values() if c.spectra]
    if not moved:
        return
    st.subheader("PiSSA and OLoRA: part of W moves into the adapter")
    st.markdown("PiSSA puts W's top r singular directions, OLoRA its first r QR columns, into s·B₀·A₀, and the "
                "base keeps the residual W − s·B₀·A₀. Together they are W, so the network's outputs are "
                "unchanged at step 0 (up to float32 rounding); the residual alone is not the baseline.")
    cols = st.columns(2 * len(moved))
    for i, c in enumerate(moved):
        label = SHORT.get(c.init, INIT_LABELS.get(c.init, c.init))
        cols[2 * i].metric(f"{label}: max |output change| at step 0", f"{c.initial_change:.3g}",
                           help="Largest |logit change| on the first 1,000 test images, adapter on, before any step.")
        cols[2 * i + 1].metric(f"{label}: residual base alone", f"{c.residual_change:.3g}",
                               help="The same, with the adapter off: the base holds only W − s·B₀·A₀.")
    _spectra(moved, rank)
    if PLAIN in curves:
        _curves(curves)
