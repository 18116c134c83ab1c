"""The initialisation gallery's part on PiSSA and OLoRA: the spectrum each leaves in the base beside W's,
the outputs at step 0, and their learning curves beside plain LoRA's. Numbers from lora_core.studies'
InitCurve (its spectra: lora_core.variants.residual_spectra)."""
import plotly.graph_objects as go
import streamlit as st

from lora_core import studies
from ui import charts
from ui.inside import INIT_LABELS
from ui.inside_charts import INIT_COLORS

PLAIN = "kaiming"  # plain LoRA: PEFT's default start
SHORT = {"kaiming": "plain LoRA", "pissa": "PiSSA", "olora": "OLoRA"}


def spectra_chart(layer: str, weight, residuals: dict[str, list[float]]) -> go.Figure:
    """σᵢ of W and of each init's residual W − s·B₀·A₀, on a log axis."""
    lines = [("W (the baseline's)", list(weight), charts.GREY, "solid")]
    lines += [(f"{SHORT[init]}'s residual", list(values), INIT_COLORS.get(init, charts.BLUE), "dash")
              for init, values in residuals.items()]
    fig = go.Figure([go.Scatter(x=list(range(1, len(y) + 1)), y=y, name=name, mode="lines",
                                line=dict(color=color, width=3, dash=dash)) for name, y, color, dash in lines])
    fig.update_xaxes(title="index i")
    fig.update_yaxes(type="log", title="singular value σᵢ (log scale)", exponentformat="power")
    return charts.style(fig, f"Singular values of {layer}: W and what the base keeps", height=420)


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
            charts.show(spectra_chart(layer, weight, residuals), key=f"inits_spectrum_{layer}",
                        caption="; ".join(words) + ".")


def _curves(curves: dict) -> None:
    shown = {init: curves[init].losses for init in SHORT if init in curves}
    fig = go.Figure([go.Scatter(x=list(range(1, len(y) + 1)), y=list(y), name=SHORT[init], mode="lines",
                                line=dict(color=INIT_COLORS.get(init, charts.GREY), width=3))
                     for init, y in shown.items()])
    fig.update_xaxes(title="step", rangemode="tozero")
    fig.update_yaxes(title="cross-entropy loss", rangemode="tozero")
    charts.show(charts.style(fig, "Loss beside plain LoRA", height=380), key="inits_beside_plain",
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
