"""The intruder dimensions page's chart: how close each of W′'s top singular vectors stays to W's, per run."""
import plotly.graph_objects as go

from lora_core.intruders import EPSILON, RunIntruders
from views.figures import GREY, RED, style
from views.inside_figures import RANK_COLORS, RANK_SYMBOLS


def legend_name(run: RunIntruders) -> str:
    """Short, so that five runs fit a phone's legend in two rows."""
    return "full" if run.rank is None else f"r={run.rank}"


def similarity(runs: list[RunIntruders], layer: str) -> go.Figure:
    """Each run's similarities of W′'s singular vectors i = 1..k with W's, a line per run; ε drawn, and the
    floor no direction can go below where W's singular vectors span the outputs."""
    fig = go.Figure()
    for i, run in enumerate(runs):
        found = run.layer(layer)
        full = run.rank is None
        fig.add_trace(go.Scatter(
            x=list(range(1, len(found.similarity) + 1)), y=list(found.similarity), name=legend_name(run),
            mode="lines+markers", line=dict(color=GREY if full else RANK_COLORS[i % len(RANK_COLORS)], width=3,
                                            dash="dash" if full else "solid"),
            marker=dict(size=10, symbol="x" if full else RANK_SYMBOLS[i % len(RANK_SYMBOLS)]),
            hovertemplate=f"{run.run}, i = %{{x}}: %{{y:.3f}}<extra></extra>"))
    fig.add_hline(y=EPSILON, line_dash="dot", line_color=RED, annotation_text=f"ε = {EPSILON:g}: below is an intruder",
                  annotation_position="bottom left")
    floor = runs[0].layer(layer).floor if runs else 0.0
    if floor:
        fig.add_hline(y=floor, line_dash="dot", line_color=GREY, annotation_text=f"floor 1/√d = {floor:.2f}",
                      annotation_position="bottom right")
    fig.update_xaxes(title="singular vector i of W′ (1 = largest)", dtick=1)
    fig.update_yaxes(title="largest |cos| with W's", range=[0, 1.05])
    return style(fig, f"{layer}: W′'s top singular vectors against W's", height=440)


def table(runs: list[RunIntruders], names: str) -> list[dict]:
    """One row per run: its intruders in linear1 and linear2, what it learned on `names` and forgot."""
    return [{"run": run.run, "intruders in linear1": len(run.layer("linear1").intruders),
             "intruders in linear2": len(run.layer("linear2").intruders),
             f"learned: errors fixed on {names}": run.learned,
             "forgotten: errors added on the other classes": run.forgotten} for run in runs]


def found(runs: list[RunIntruders]) -> str:
    """Which runs have intruders in linear1 or linear2, and where ("" when none has)."""
    parts = [f"{run.run} in {layer.layer} at i = {', '.join(str(i + 1) for i in layer.intruders)}"
             for run in runs for layer in run.layers[:2] if layer.intruders]
    return "; ".join(parts)
