import streamlit as st

from lora_core.adapters import MAX_STRENGTH
from service import frontier
from ui import baseline, charts, context, experiment, inside, streamlit_private
from views import inside_figures, tables

ctx = context.current()
st.title("Learn/forget frontier")
st.markdown("Finetuning on a few classes fixes errors there (learned) and may add errors on the others "
            "(forgotten). One adapter per rank, trained once; the strength slider scales each ΔW from 0 (the "
            "baseline) past 1 (as trained) and moves every point along its path without retraining.")
held = baseline.require(ctx)
base = held["run"]

cols = st.columns(2)
ranks = experiment.widget(cols[0], "frontier_ranks")  # labels, bounds and help: lora_core.settings
steps = experiment.widget(cols[1], "frontier_steps")
if not ranks:
    st.error("Choose at least one rank.")
    st.stop()
config = inside.study_config("frontier")
st.caption(tables.study_settings(config, ctx.data.classes, own=("steps",), hidden=("rank",)))

result = inside.run("frontier", held, ctx, config, "Train the adapters", "Training one adapter per rank",
                    help="Train one adapter per rank; the strength then needs no training.")
if result is None:
    st.info("Press **Train the adapters**.")
    st.stop()
digits = result.config.digits
names = tables.class_names(ctx.data.classes, digits)
st.caption(f"Adapters trained with {tables.describe_finetune(result.config, ctx.data.classes, with_rank=False)}.")


@st.fragment
def strength_view() -> None:
    """The slider and what it moves: a new strength reruns this alone, not the page."""
    strength = round(experiment.widget(st, "strength"), 2)  # on the grid whatever the slider's rounding
    chart = st.empty()
    if frontier.known_points(result, strength) is None:  # nobody computed it yet: first 1,000 images, at once
        estimate, star = frontier.estimated_points(result, base, ctx.data, digits, strength)
        with chart.container():
            charts.show(inside_figures.frontier(estimate, star, {}, strength, names), key="frontier_estimate",
                        caption=f"Estimate at strength {strength:g} on the first {frontier.ESTIMATE_IMAGES:,} test "
                                f"images only, while all "
                                f"{len(ctx.data.test_y):,} are evaluated: errors on {names} and on the other "
                                f"classes among those images, the baseline star at {star[1]:,} and {star[0]:,}. "
                                + "; ".join(f"rank {p.rank}: {p.target_wrong:,} and {p.other_wrong:,}"
                                            for p in estimate) + ".")
    with st.spinner(f"Evaluating every adapter at strength {strength:g} on all {len(ctx.data.test_y):,} test "
                    "images…"):
        points = frontier.frontier_points(result, base, ctx.data, digits, strength,
                                          should_stop=streamlit_private.newer_run_waiting)
    if points is None:  # the slider has moved on: its new value comes next, from its estimate
        return
    paths = {rank: [(p.other_wrong, p.target_wrong) for s in sorted(result.points)
                    for p in result.points[s] if p.rank == rank] for rank in result.adapters}
    origin = frontier.baseline_point(base, digits)
    with chart.container():
        charts.show(inside_figures.frontier(points, origin, paths, strength, names), key="frontier_chart",
                    caption=f"Each rank's errors on {names} (up: worse) against errors on the other classes "
                            f"(right: worse) at strength {strength:g}, on all {len(ctx.data.test_y):,} test "
                            f"images; the baseline star at {origin[1]:,} and {origin[0]:,}. "
                            + "; ".join(f"rank {p.rank}: {p.target_wrong:,} and {p.other_wrong:,}" for p in points)
                            + ".")
    st.caption(f"Thin lines: each rank's path from strength 0 (the baseline) to {MAX_STRENGTH:g}, through every "
               "strength evaluated so far (each computed once, then kept).")
    st.dataframe([{"rank r": p.rank, "strength": p.strength, f"errors on {names}": p.target_wrong,
                   "errors on the other classes": p.other_wrong, "accuracy": p.accuracy} for p in points],
                 hide_index=True, column_config={"accuracy": st.column_config.NumberColumn(format="percent")})


strength_view()
