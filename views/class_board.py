"""The Class page's figures and words: the board's runs, learned against forgotten, and each student's
prediction against their own run's result. Names are shown as plain text (ui.plain) by the caller."""
import plotly.graph_objects as go

from lora_core import settings as lc_settings


def setting_name(url: str) -> str:
    """A setting as the teacher picks it: its label and the part of the experiment it belongs to."""
    setting = lc_settings.BY_URL[url]
    return f"{setting.label} ({setting.path[0] if len(setting.path) > 1 else 'sidebar'})"


def board_rows(runs) -> list[dict]:
    """The board's table: one row per shared run."""
    return [{"students": ", ".join(r.nicknames), "count": r.count, "changes": r.entry.changes,
             "accuracy": r.entry.accuracy, "wrong on finetuned digits": r.entry.target_wrong,
             "wrong on the others": r.entry.other_wrong, "trainable": r.entry.trainable} for r in runs]


def board_points(rows: list[dict]) -> str:
    """The board chart's points in words (the first 30)."""
    return "; ".join(f"{row['students']}: {row['wrong on finetuned digits']} and {row['wrong on the others']}"
                     for row in rows[:30])


def prediction_points(points) -> str:
    """The predictions chart's points in words (the first 30)."""
    return "; ".join(f"{p.nickname} predicted {p.predicted:g}, measured {result}" for p, _, result in points[:30])


def board(runs, names: list[str], changes: list[str]) -> go.Figure:
    """One point per shared run: still wrong on the finetuned digits against wrong on the others."""
    figure = go.Figure(go.Scatter(  # graph_objects: a tenth of plotly.express's server time per refresh
        x=[r.entry.target_wrong for r in runs], y=[r.entry.other_wrong for r in runs], mode="markers",
        marker={"size": 12},  # seen from the back of a classroom
        text=names, customdata=changes, hovertemplate="%{text}<br>%{customdata}<extra></extra>"))
    figure.update_layout(title="Learned against forgotten: one point per run",
                         xaxis_title="still wrong on the finetuned digits", yaxis_title="wrong on the other digits")
    return figure


def predictions(points, names: list[str]) -> go.Figure:
    """Each (prediction, run key, result) as a point; on the dotted diagonal, the prediction was right."""
    x, y = [p.predicted for p, _, _ in points], [result for _, _, result in points]
    top = max(x + y) or 1
    figure = go.Figure([
        go.Scatter(x=[0, top], y=[0, top], mode="lines", line={"dash": "dot", "color": "grey"}, hoverinfo="skip",
                   name="prediction = result"),
        go.Scatter(x=x, y=y, mode="markers", marker={"size": 12}, name="a student",
                   text=names, customdata=[p.confidence for p, _, _ in points],
                   hovertemplate="%{text}: predicted %{x}, measured %{y} (sure: %{customdata}/5)<extra></extra>")])
    figure.update_layout(title="Prediction against result: one point per student", xaxis_title="predicted",
                         yaxis_title="measured in their own run", height=380, showlegend=False)
    return figure
