"""Every figure of the app, in one style that stays readable on a projector (drawn by ui.charts.show)."""
import math

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

BLUE, ORANGE, GREY, GREEN, RED = "#1f5fa8", "#e07b00", "#9a9a9a", "#2a9d4b", "#c0392b"

# The one look shared by all charts, as the default template: white, large type, fixed colours, the title at the
# top left above the plot and the legend in a strip at the bottom of the figure, below the x axis, so the two
# never meet. A default template is applied as plotly serializes a figure; naming it on each figure, or
# setting these on each figure's layout, checked them again every time (most of the 8-10 ms a chart took).
pio.templates["lora_lab"] = go.layout.Template(pio.templates["plotly_white"]).update(layout=dict(
    title=dict(font=dict(size=20), x=0, xref="container", xanchor="left", yref="paper", y=1, yanchor="bottom"),
    font=dict(size=16), colorway=[BLUE, ORANGE, GREEN, RED, GREY], margin=dict(l=70, r=30),
    legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", xref="container", x=0, xanchor="left"),
    hoverlabel=dict(font=dict(size=16)),
))
pio.templates.default = "lora_lab"

HEATMAP_CELLS = 128  # per axis: a 512×512 heatmap is 262,144 cells, too heavy to send on every slider move


TITLE_LINE_CHARS = 30  # 20 px type: about 300 px per line, so a title fits a phone's chart without being cut
LEGEND_ROW_PX = 28
TITLE_LINE_PX = 26


def wrap_title(title: str, width: int = TITLE_LINE_CHARS) -> str:
    """Break a long title into lines at spaces (plotly never wraps, it cuts)."""
    lines, line = [], ""
    for word in title.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "<br>".join([*lines, line])


def style(fig: go.Figure, title: str = "", height: int = 420) -> go.Figure:
    """A chart in the shared look (the default template): its title wrapped, and its height and top and
    bottom margins sized for the title's lines and the legend's rows.

    The title sits above the plot and pushes the top margin down when it takes two lines; the legend's strip
    at the bottom grows with its rows."""
    legend_items = sum(1 for t in fig.data if t.showlegend is not False and t.name)
    legend_rows = 0 if legend_items < 2 else 1 + (legend_items > 2)  # plotly shows one from 2 items; a phone wraps 3
    text = wrap_title(title)
    extra_lines = text.count("<br>")
    # Set as whole objects (what the figure had kept): update_layout would take twice as long to check them
    layout = fig.layout
    layout.height = height + TITLE_LINE_PX * extra_lines + LEGEND_ROW_PX * legend_rows
    # just above the plot, in a top margin sized for its lines (plotly anchors a title by its first line)
    layout.title = go.layout.Title(layout.title, text=text, pad=dict(b=14 + TITLE_LINE_PX * extra_lines, l=12))
    layout.margin = go.layout.Margin(layout.margin, t=(60 + TITLE_LINE_PX * extra_lines) if title else 20,
                                     b=70 + LEGEND_ROW_PX * legend_rows)
    return fig


def _stride(n: int) -> int:
    return max(1, math.ceil(n / HEATMAP_CELLS))


def color_limit(matrix) -> float:
    """The largest |entry|: the end of a colour scale centred on zero."""
    return float(np.abs(np.asarray(matrix)).max()) or 1.0


def heatmap(matrix, title: str, zmax: float) -> tuple[go.Figure, int]:
    """A d×k matrix as a diverging heatmap centred on 0, one entry one square: a 10×469 matrix is drawn as a
    strip 47 times wider than tall. Large ones are drawn every `stride`-th row/column, each drawn cell
    covering stride×stride entries at their true place."""
    values = np.asarray(matrix)
    rows, cols = values.shape
    stride = max(_stride(rows), _stride(cols))
    shown = values[::stride, ::stride]
    fig = go.Figure(go.Heatmap(z=shown.tolist(), x0=(stride - 1) / 2, dx=stride, y0=(stride - 1) / 2, dy=stride,
                               colorscale="RdBu", zmid=0, zmin=-zmax, zmax=zmax, colorbar=dict(thickness=14),
                               hovertemplate="row %{y:.0f}, column %{x:.0f}: %{z:.4g}<extra></extra>"))
    fig.update_xaxes(title="column", range=[-0.5, shown.shape[1] * stride - 0.5], constrain="domain",
                     showgrid=False, zeroline=False)
    fig.update_yaxes(title="row", range=[shown.shape[0] * stride - 0.5, -0.5], scaleanchor="x", scaleratio=1,
                     constrain="domain", showgrid=False, zeroline=False)
    plot = 460 * min(1.0, max(rows / cols, 0.15))  # a wide strip needs less height than a square
    return style(fig, title, height=int(plot) + 130), stride


def singular_values(values, kept: int, numerical_rank: int) -> go.Figure:
    """σ₁ ≥ σ₂ ≥ … as bars; the r kept by the factorisation in blue, the dropped ones grey."""
    values = list(values)
    index = list(range(1, len(values) + 1))
    colors = [BLUE if i <= kept else GREY for i in index]
    fig = go.Figure(go.Bar(x=index, y=values, marker_color=colors, name="σ",
                           hovertemplate="σ%{x} = %{y:.4g}<extra></extra>"))
    fig.add_vline(x=numerical_rank + 0.5, line_dash="dash", line_color=RED,
                  annotation_text=f"numerical rank {numerical_rank}", annotation_position="top right")
    fig.update_xaxes(title="index i (blue: kept in B·A)")
    fig.update_yaxes(title="singular value σᵢ")
    return style(fig, "Singular values of W")


def outputs(y, y_prime) -> go.Figure:
    """y = Wx + b against y′ = BAx + b, entry by entry."""
    y, y_prime = list(y), list(y_prime)
    index = list(range(len(y)))
    fig = go.Figure([
        go.Scatter(x=index, y=y, name="y = Wx + b", mode="lines+markers", line=dict(color=BLUE, width=3)),
        go.Scatter(x=index, y=y_prime, name="y′ = BAx + b", mode="markers",
                   marker=dict(color=ORANGE, size=9, symbol="x")),
    ])
    fig.update_xaxes(title="output entry")
    fig.update_yaxes(title="value")
    return style(fig, "The layer's output with W and with B·A")


def loss_curve(losses, title: str = "Training loss") -> go.Figure:
    losses = list(losses)
    fig = go.Figure(go.Scatter(x=list(range(1, len(losses) + 1)), y=losses, mode="lines", name="loss",
                               line=dict(color=BLUE, width=2)))
    fig.update_xaxes(title="step", rangemode="tozero")
    fig.update_yaxes(title="cross-entropy loss", rangemode="tozero")
    return style(fig, title, height=360)


def wrong_per_class(wrong, classes, title: str = "Wrong test images per class") -> go.Figure:
    fig = go.Figure(go.Bar(x=list(classes), y=list(wrong), marker_color=BLUE, text=list(wrong),
                           textposition="outside", name="wrong"))
    fig.update_layout(uniformtext=dict(minsize=12, mode="hide"))
    fig.update_xaxes(title="true class", type="category")
    fig.update_yaxes(title="misclassified test images")
    return style(fig, title)


def before_after(before, after, classes, chosen, after_name: str = "after LoRA",
                 title: str = "Wrong test images per class, before and after") -> go.Figure:
    """Wrong counts per class before and after finetuning, side by side; the finetuned classes marked."""
    labels = [f"{name} ★" if i in chosen else name for i, name in enumerate(classes)]
    fig = go.Figure([
        go.Bar(x=labels, y=list(before), name="before (baseline)", marker_color=GREY, text=list(before),
               textposition="outside"),
        go.Bar(x=labels, y=list(after), name=after_name, marker_color=BLUE, text=list(after),
               textposition="outside"),
    ])
    fig.update_layout(barmode="group", uniformtext=dict(minsize=12, mode="hide"))  # a phone hides, never overlaps
    fig.update_xaxes(title="true class (★ = finetuned on)", type="category")
    fig.update_yaxes(title="misclassified test images")
    return style(fig, title)


def merge_precision(rows) -> go.Figure:
    """Largest merge error per storage dtype (log scale), each bar labelled with the predictions that flip."""
    fig = go.Figure(go.Bar(
        x=[row["dtype"] for row in rows], y=[row["max_abs_error"] for row in rows], marker_color=BLUE,
        text=[f"{row['flipped']:,} flipped" for row in rows], textposition="outside", name="max |error|",
        hovertemplate="%{x}: max |error| %{y:.3g}<extra></extra>"))
    fig.update_xaxes(title="stored as", type="category")
    fig.update_yaxes(type="log", title="max |W + ΔW − exact sum|", exponentformat="e")
    return style(fig, "Merging in lower precision")


def sweep(frame, y: str, y_title: str, title: str) -> go.Figure:
    """Trainable parameters (log scale) against one outcome; full finetuning starred (one star per learning
    rate), the baseline a line."""
    lora = frame[frame["rank"].notna()]
    full = frame[frame["method"].str.startswith("full finetune")]
    base = frame[frame["method"] == "baseline"]
    positions = ["top center", "bottom center"]  # neighbouring ranks' labels on opposite sides: they never touch
    fig = go.Figure([
        go.Scatter(x=lora["trainable"].tolist(), y=lora[y].tolist(), mode="lines+markers+text",
                   text=[f"r={int(r)}" for r in lora["rank"]], name="LoRA",
                   textposition=[positions[i % 2] for i in range(len(lora))],
                   marker=dict(size=12, color=BLUE), line=dict(color=BLUE, width=2)),
    ])
    for (_, row), symbol, color in zip(full.iterrows(), ["star", "x"], [ORANGE, RED], strict=False):
        fig.add_trace(go.Scatter(x=[row["trainable"]], y=[row[y]], mode="markers", name=f"full, lr {row['lr']:g}",
                                 marker=dict(size=16, color=color, symbol=symbol)))
    for value in base[y].tolist():  # named in the legend, not on the plot, where the rank labels are
        fig.add_hline(y=value, line_dash="dash", line_color=GREY)
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="baseline",
                                 line=dict(color=GREY, dash="dash")))
    fig.update_xaxes(type="log", title="trainable parameters (log scale)")
    fig.update_yaxes(title=y_title, rangemode="tozero")
    return style(fig, title)
