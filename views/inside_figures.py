"""Figures of the "Inside the update" pages, in the app's one style (views.figures.style)."""
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from views.figures import BLUE, GREEN, GREY, ORANGE, RED, color_limit, style

LAYER_COLORS = {"linear1": BLUE, "linear2": ORANGE, "linear3": GREEN}
INIT_COLORS = {"kaiming": BLUE, "gaussian": GREEN, "zeros": RED, "random": ORANGE, "orthogonal": "#17becf",
               "pissa": "#7b4fa8", "olora": "#8c564b"}
SCALING_COLORS = {"α/r": BLUE, "α/√r": ORANGE}
PATTERN_COLUMNS = 8
RANK_COLORS = [BLUE, ORANGE, GREEN, RED, "#7b4fa8", "#8c564b", "#17becf"]
# a rank is told by its marker's shape as well as its colour: readable without telling green from red
RANK_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "pentagon", "hexagon", "triangle-down"]


def spectra(delta, weight, rank: int, shown: int, layer: str) -> go.Figure:
    """σᵢ of ΔW beside σᵢ of W on a log axis, the first `shown` of each; rank r marked."""
    delta, weight = list(delta)[:shown], list(weight)[:shown]
    fig = go.Figure([
        go.Scatter(x=list(range(1, len(weight) + 1)), y=weight, name="W (frozen)", mode="lines+markers",
                   line=dict(color=GREY, width=2), hovertemplate="σ%{x}(W) = %{y:.4g}<extra></extra>"),
        go.Scatter(x=list(range(1, len(delta) + 1)), y=delta, name="ΔW = (α/r)·B·A", mode="lines+markers",
                   line=dict(color=BLUE, width=3), hovertemplate="σ%{x}(ΔW) = %{y:.4g}<extra></extra>"),
    ])
    fig.add_vline(x=rank + 0.5, line_dash="dash", line_color=RED, annotation_text=f"rank r = {rank}",
                  annotation_position="top right")
    fig.update_xaxes(title="index i")
    fig.update_yaxes(type="log", title="singular value σᵢ (log scale)", exponentformat="power")
    return style(fig, f"Singular values of {layer}: ΔW beside W", height=460)


def energy(curves: dict[str, list[float]], marks, title: str, shown: int | None = None) -> go.Figure:
    """Share of ‖M‖_F² in the top k directions against k, one line per matrix; chosen ranks marked."""
    colors = [BLUE, GREY, ORANGE, GREEN]
    fig = go.Figure([go.Scatter(x=list(range(1, len(values[:shown]) + 1)), y=list(values[:shown]), name=name,
                                mode="lines", line=dict(color=colors[i % len(colors)], width=3),
                                hovertemplate="top %{x}: %{y:.1%}<extra></extra>")
                     for i, (name, values) in enumerate(curves.items())])
    first = next(iter(curves.values()))
    for rank in marks:
        if rank <= len(first[:shown]):
            fig.add_trace(go.Scatter(x=[rank], y=[first[rank - 1]], mode="markers+text", showlegend=False,
                                     text=[f"r={rank}"], textposition="bottom right",
                                     marker=dict(size=12, color=RED), hoverinfo="skip"))
    longest = max(len(values[:shown]) for values in curves.values())
    fig.update_xaxes(title="k, top directions kept (log)", type="log",
                     range=[-0.03, np.log10(max(longest, 2)) + 0.03])  # from k = 1: no ticks before it
    fig.update_yaxes(title="share of ‖M‖²_F", range=[0, 1.05], tickformat=".0%")
    return style(fig, title, height=460)


def norm_curves(norms: dict[str, list[float]], title: str = "‖ΔW‖_F of each layer while training",
                first_step: int = 0) -> go.Figure:
    """‖ΔW_l‖_F after each step (step 0: the fresh adapter), one line per adapted layer."""
    fig = go.Figure([go.Scatter(x=list(range(first_step, first_step + len(values))), y=list(values), name=name,
                                mode="lines",
                                line=dict(color=LAYER_COLORS.get(name, GREY), width=3))
                     for name, values in norms.items()])
    fig.update_xaxes(title="step", rangemode="tozero")
    fig.update_yaxes(title="‖ΔW‖_F", rangemode="tozero")
    return style(fig, title, height=360)


def spectrum_history(snapshots, layer: str) -> go.Figure:
    """Each of ΔW's r singular values of one layer against the step at which it was measured."""
    steps = [step for step, _ in snapshots]
    values = [spectra[layer] for _, spectra in snapshots]
    fig = go.Figure([go.Scatter(x=steps, y=[v[i] for v in values], name=f"σ{i + 1}", mode="lines+markers")
                     for i in range(len(values[0]))])
    fig.update_xaxes(title="step", rangemode="tozero")
    fig.update_yaxes(title="singular value of ΔW", rangemode="tozero")
    return style(fig, f"ΔW's singular values of {layer} while training", height=360)


def live_spectra(spectra: dict[str, list[float]], step: int) -> go.Figure:
    """The latest snapshot: σ₁..σ_r of every layer's ΔW as grouped bars."""
    fig = go.Figure([go.Bar(x=[f"σ{i + 1}" for i in range(len(values))], y=list(values), name=name,
                            marker_color=LAYER_COLORS.get(name, GREY)) for name, values in spectra.items()])
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="singular value of ΔW", type="category")
    fig.update_yaxes(title="σᵢ(ΔW)")
    return style(fig, f"ΔW's singular values at step {step:,} (live)", height=360)


def image(pixels, title: str, height: int = 300) -> go.Figure:
    """One 28×28 image as the network sees it (normalised pixels), ink dark on white."""
    fig = go.Figure(go.Heatmap(z=np.asarray(pixels).tolist(), colorscale="Greys", showscale=False,
                               hovertemplate="row %{y}, column %{x}: %{z:.2f}<extra></extra>"))
    fig.update_yaxes(range=[27.5, -0.5], visible=False, scaleanchor="x", constrain="domain")
    fig.update_xaxes(range=[-0.5, 27.5], visible=False, constrain="domain")
    fig = style(fig, title, height=height)
    fig.update_layout(margin=dict(l=10, r=10, t=50, b=10))
    return fig


def patterns(images, title: str) -> go.Figure:
    """The rows of A as 28×28 images in a grid, on one colour scale centred on 0 (red −, blue +); every
    image square whatever the width (each subplot's y axis is anchored to its x axis)."""
    images = [np.asarray(img) for img in images]
    columns = min(PATTERN_COLUMNS, len(images))
    rows = -(-len(images) // columns)
    zmax = max(color_limit(img) for img in images)
    names = [f"row {i + 1}" if columns <= 4 else str(i + 1) for i in range(len(images))]  # fit a phone's columns
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=names,
                        horizontal_spacing=0.02, vertical_spacing=0.08)
    for i, img in enumerate(images):
        fig.add_trace(go.Heatmap(z=img.tolist(), colorscale="RdBu", zmid=0, zmin=-zmax, zmax=zmax,
                                 showscale=i == 0, colorbar=dict(thickness=14),
                                 hovertemplate="row %{y}, column %{x}: %{z:.3g}<extra></extra>"),
                      row=i // columns + 1, col=i % columns + 1)
    for i in range(len(images)):
        suffix = "" if i == 0 else str(i + 1)
        fig.update_layout({f"yaxis{suffix}": dict(scaleanchor=f"x{suffix}", scaleratio=1, constrain="domain",
                                                  autorange="reversed", visible=False),
                           f"xaxis{suffix}": dict(constrain="domain", visible=False)})
    fig = style(fig, title, height=300 if columns < 3 else 120 + 170 * rows)
    # room for the images' own titles between the chart's title and the images
    fig.update_layout(margin_t=fig.layout.margin.t + 24, title_pad_b=fig.layout.title.pad.b + 24)
    fig.update_annotations(font_size=14)
    return fig


def logits(without, with_adapter, classes, title: str) -> go.Figure:
    """The ten logits through W and through W + ΔW, side by side."""
    fig = go.Figure([
        go.Bar(x=list(classes), y=list(without), name="W (adapter off)", marker_color=GREY),
        go.Bar(x=list(classes), y=list(with_adapter), name="W + ΔW (adapter on)", marker_color=BLUE),
    ])
    fig.update_layout(barmode="group")
    fig.update_xaxes(title="class", type="category")
    fig.update_yaxes(title="logit")
    return style(fig, title, height=360)


def similarity(frame) -> go.Figure:
    """Subspace similarity (0..1) of LoRA's update with the full update's top r, per rank; energy beside it."""
    ranks = [str(r) for r in frame["rank r"]]
    fig = go.Figure([
        go.Bar(x=ranks, y=frame["subspace similarity"].tolist(), name="similarity of the subspaces",
               marker_color=BLUE, text=[f"{v:.2f}" for v in frame["subspace similarity"]], textposition="outside"),
        go.Bar(x=ranks, y=frame["chance level r/d"].tolist(), name="chance: random subspaces (r/d)",
               marker_color="#c9d7ea", marker_pattern_shape="/", text=[f"{v:.2f}" for v in frame["chance level r/d"]],
               textposition="outside"),
        go.Bar(x=ranks, y=frame["energy of the full ΔW in its top r"].tolist(), name="energy the top r hold",
               marker_color=GREY, text=[f"{v:.0%}" for v in frame["energy of the full ΔW in its top r"]],
               textposition="outside"),
    ])
    fig.update_layout(barmode="group", uniformtext=dict(minsize=11, mode="hide"))
    fig.update_xaxes(title="LoRA rank r", type="category")
    fig.update_yaxes(title="0 = orthogonal, 1 = the same", range=[0, 1.15])
    return style(fig, "LoRA's r directions against the full update's", height=460)


def curves(series: dict[str, list[float]], colors: dict[str, str], labels: dict[str, str], title: str,
           y_title: str) -> go.Figure:
    """One line per run against the step: the init gallery's losses or ‖ΔW‖ curves."""
    fig = go.Figure([go.Scatter(x=list(range(1, len(values) + 1)), y=list(values), name=labels.get(name, name),
                                mode="lines", line=dict(color=colors.get(name, GREY), width=3,
                                                        dash="dot" if name == "zeros" else "solid"))
                     for name, values in series.items()])
    fig.update_xaxes(title="step", rangemode="tozero")
    fig.update_yaxes(title=y_title, rangemode="tozero")
    return style(fig, title, height=300 + 24 * len(series))  # the legend below grows with the runs


def scaling(frame, y: str, y_title: str, title: str, log_y: bool = False) -> go.Figure:
    """One outcome against the rank (log scale), one line for α/r and one for α/√r (told apart by colour,
    marker and dash)."""
    looks = {"α/r": ("circle", "solid"), "α/√r": ("diamond", "dash")}
    fig = go.Figure([go.Scatter(x=part["rank"].tolist(), y=part[y].tolist(), name=f"scale {name}",
                                mode="lines+markers", marker=dict(size=11, symbol=looks.get(name, ("circle",))[0]),
                                line=dict(color=SCALING_COLORS.get(name, GREY), width=3,
                                          dash=looks.get(name, (None, "solid"))[1]))
                     for name, part in frame.groupby("scaling", sort=False)])
    fig.update_xaxes(title="rank r (log scale)", type="log", tickvals=sorted(frame["rank"].unique().tolist()))
    if log_y:
        fig.update_yaxes(title=y_title, type="log")
    else:
        fig.update_yaxes(title=y_title, rangemode="tozero")
    return style(fig, title, height=380)


def frontier(points, baseline: tuple[int, int], paths: dict[int, list[tuple[int, int]]], strength: float,
             classes_label: str) -> go.Figure:
    """Errors on the finetuned classes against errors on the others: one point per rank at this strength,
    the baseline as a star, and each rank's path over the strengths computed so far as a thin line."""
    fig = go.Figure()
    colors = {rank: RANK_COLORS[i % len(RANK_COLORS)] for i, rank in enumerate(paths)}
    symbols = {rank: RANK_SYMBOLS[i % len(RANK_SYMBOLS)] for i, rank in enumerate(paths)}
    for rank, path in paths.items():
        fig.add_trace(go.Scatter(x=[p[0] for p in path], y=[p[1] for p in path], mode="lines+markers",
                                 line=dict(color=colors[rank], width=1), marker=dict(size=5, color=colors[rank]),
                                 opacity=0.45, showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[baseline[0]], y=[baseline[1]], mode="markers", name="baseline (strength 0)",
                             marker=dict(size=20, color=GREY, symbol="star")))
    for p in points:
        fig.add_trace(go.Scatter(x=[p.other_wrong], y=[p.target_wrong], mode="markers", name=f"rank {p.rank}",
                                 marker=dict(size=15, color=colors.get(p.rank, BLUE), symbol=symbols.get(p.rank),
                                             line=dict(width=1, color="white")),
                                 hovertemplate=f"rank {p.rank}, strength {strength:g}<br>%{{y}} learned-class "
                                               "errors, %{x} other errors<extra></extra>"))
    fig.update_xaxes(title="errors, other classes (forgotten →)", rangemode="tozero")
    fig.update_yaxes(title=f"errors on {classes_label} (← learned)", rangemode="tozero")
    return style(fig, f"Learned against forgotten, at strength {strength:g}", height=520)


SHORT_INIT = {"kaiming": "plain LoRA", "pissa": "PiSSA", "olora": "OLoRA"}  # the gallery's PiSSA/OLoRA section


def residual_spectra(layer: str, weight, residuals: dict[str, list[float]]) -> go.Figure:
    """σᵢ of W and of each init's residual W − s·B₀·A₀, on a log axis."""
    lines = [("W (the baseline's)", list(weight), GREY, "solid")]
    lines += [(f"{SHORT_INIT[init]}'s residual", list(values), INIT_COLORS.get(init, BLUE), "dash")
              for init, values in residuals.items()]
    fig = go.Figure([go.Scatter(x=list(range(1, len(y) + 1)), y=y, name=name, mode="lines",
                                line=dict(color=color, width=3, dash=dash)) for name, y, color, dash in lines])
    fig.update_xaxes(title="index i")
    fig.update_yaxes(type="log", title="singular value σᵢ (log scale)", exponentformat="power")
    return style(fig, f"Singular values of {layer}: W and what the base keeps", height=420)


def beside_plain(losses: dict[str, list[float]]) -> go.Figure:
    """Each init's loss per step (plain LoRA, PiSSA, OLoRA), on the same axes."""
    fig = go.Figure([go.Scatter(x=list(range(1, len(y) + 1)), y=list(y), name=SHORT_INIT[init], mode="lines",
                                line=dict(color=INIT_COLORS.get(init, GREY), width=3)) for init, y in losses.items()])
    fig.update_xaxes(title="step", rangemode="tozero")
    fig.update_yaxes(title="cross-entropy loss", rangemode="tozero")
    return style(fig, "Loss beside plain LoRA", height=380)
