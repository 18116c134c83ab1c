import streamlit as st

from lora_core import studies
from service import frontier
from ui import baseline, charts, context, experiment, inside
from views import inside_figures, inside_tables, tables

ctx = context.current()
st.title("Scaling explorer")
st.markdown("LoRA scales its update by α/r. rsLoRA scales it by α/√r instead. At a fixed α, the same finetune at "
            "several ranks with each scale: how large the update is after one step and after training, and "
            "what each run forgets.")
held = baseline.require(ctx)
base = held["run"]

cols = st.columns(3)
ranks = experiment.widget(cols[0], "scaling_ranks")  # labels, bounds and help: lora_core.settings
alpha = experiment.widget(cols[1], "scaling_alpha", step=1.0)
steps = experiment.widget(cols[2], "scaling_steps")
if not ranks:
    st.error("Choose at least one rank.")
    st.stop()
config = inside.study_config("scaling")
st.caption(tables.study_settings(config, ctx.data.classes, own=("alpha", "steps"), hidden=("rank", "rslora")))

result = inside.run("scaling", held, ctx, config, "Run the sweep", "α/r against α/√r",
                    help="Two runs per rank, one with each scaling rule.")

st.info("**What the rank does to the update.** Adam moves every entry of B by about the learning rate in its "
        "first steps, whatever the scale s. B·A is a sum of r rank-one terms that point in unrelated directions, so "
        "its size grows like √r, and ‖ΔW‖ = s·‖B·A‖ follows s·√r: with LoRA's s = α/r the update shrinks like 1/√r "
        "as the rank grows, so at a fixed α a larger rank learns *slower*, not more. rsLoRA's s = α/√r cancels the "
        "√r and keeps the update's size flat, so a larger rank can be put to use. Hu et al. chose α/r to spare "
        "retuning when r changes; rsLoRA (Kalajdzievski, 2023) showed this shrinking.")

if result is None:
    st.info("Press **Run the sweep**.")
    st.stop()
st.caption(f"Last sweep: {tables.describe_finetune(result.config, ctx.data.classes, with_rank=False)}.")
frame = inside_tables.scaling_frame(result.rows)
rules = {name: part for name, part in frame.groupby("scaling", sort=False)}
exponents = {name: studies.scaling_exponent(part["rank"], part["first_step_norm"])
             for name, part in rules.items() if part["rank"].nunique() > 1}
left, right = st.columns(2)
with left:
    charts.show(inside_figures.scaling(frame, "first_step_norm", "‖ΔW‖_F (log scale)",
                                       "Size of the update after one step", log_y=True), key="scaling_first",
                caption="‖ΔW‖_F over all layers after the first Adam step, against r on log–log axes; fitted "
                        "exponent p in ‖ΔW‖ ∝ rᵖ: " + (", ".join(f"{n} {p:+.2f}" for n, p in exponents.items())
                                                        or "needs two ranks") + " (−0.5 is 1/√r, 0 is flat).")
with right:
    charts.show(inside_figures.scaling(frame, "update_norm", "‖ΔW‖_F after training",
                                       "Size of the update after training"),
                key="scaling_norm",
                caption="‖ΔW‖_F after the last step: " + "; ".join(
                    f"{n} from {part['update_norm'].iloc[0]:.3g} (r={part['rank'].iloc[0]}) to "
                    f"{part['update_norm'].iloc[-1]:.3g} (r={part['rank'].iloc[-1]})"
                    for n, part in rules.items()) + ".")
names = tables.class_names(ctx.data.classes, result.config.digits)
charts.show(inside_figures.scaling(frame, "other_wrong", "errors, other classes", "What each run forgets"),
            key="scaling_forgotten",
            caption=f"Held-out test images of the classes not finetuned on that are misclassified after training "
                    f"(the baseline: {frontier.baseline_point(base, result.config.digits)[0]:,}); "
                    + "; ".join(f"{n}: {', '.join(f'{v:,}' for v in part['other_wrong'])} at r = "
                                f"{', '.join(map(str, part['rank']))}" for n, part in rules.items()) + ".")
st.dataframe(frame, hide_index=True, column_config={
    "scaling": "scale rule", "rank": "rank r",
    "scale": st.column_config.NumberColumn("scale s (ΔW = s·B·A)", format="%.4g"),
    "first_step_norm": st.column_config.NumberColumn("‖ΔW‖_F after step 1", format="%.4g"),
    "update_norm": st.column_config.NumberColumn("‖ΔW‖_F after training", format="%.4g"),
    "final_loss": st.column_config.NumberColumn("final loss", format="%.2e"),
    "target_wrong": st.column_config.NumberColumn(f"wrong on {names}"),
    "other_wrong": st.column_config.NumberColumn("wrong on the other classes"),
    "accuracy": st.column_config.NumberColumn("test accuracy", format="percent"),
})
