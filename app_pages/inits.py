import streamlit as st

from lora_core import studies
from ui import base_inits, baseline, charts, context, experiment, inside
from views import inside_figures, inside_tables, tables

ctx = context.current()
st.title("Initialisation gallery")
st.markdown("How A and B start decides whether LoRA can learn at all. Every start, the same data, steps and "
            "seed: B zero with A random (kaiming, the default; or gaussian) changes nothing at first and still "
            "learns; orthogonal halves (PEFT's, at an even rank) start both non-zero with B·A = 0; both zero "
            "never moves; both random changes the network's outputs before any training; PiSSA and OLoRA move "
            "part of W into the adapter (below).")
held = baseline.require(ctx)
base = held["run"]

cols = st.columns(2)
rank = experiment.widget(cols[0], "inits_rank")  # labels, bounds and help: lora_core.settings
steps = experiment.widget(cols[1], "inits_steps")
config = inside.study_config("inits")
st.caption(tables.study_settings(config, ctx.data.classes, own=("rank", "steps"), hidden=("init",)))

result = inside.run("inits", held, ctx, config, "Run the gallery", "Finetuning from every initialisation",
                    help="The same finetune once from each initialisation that fits the rank.")
if result is None:
    st.info("Press **Run the gallery**.")
    st.stop()
curves = {c.init: c for c in result.curves}
st.caption(f"Last run: {tables.describe_finetune(result.config, ctx.data.classes)}.")

left, right = st.columns(2)
with left:
    charts.show(inside_figures.curves({n: c.losses for n, c in curves.items()}, inside_figures.INIT_COLORS,
                                      inside.INIT_LABELS, "Finetuning loss", "cross-entropy loss"), key="inits_loss",
                caption="Loss of each step from each start; mean of the last steps: " + ", ".join(
                    f"{inside.INIT_LABELS.get(n, n)} {studies.final_loss(c.losses):.3g}"
                    for n, c in curves.items()) + ".")
with right:
    charts.show(inside_figures.curves({n: c.update_norms for n, c in curves.items()}, inside_figures.INIT_COLORS,
                                      inside.INIT_LABELS, "Size of the update ‖ΔW‖_F", "‖ΔW‖_F over all layers"),
                key="inits_norm",
                caption="‖ΔW‖_F over all adapted layers after each step; after the last: " + ", ".join(
                    f"{inside.INIT_LABELS.get(n, n)} {c.update_norms[-1]:.3g}" for n, c in curves.items()) + ".")

frame = inside_tables.gallery_frame(result.curves, inside.INIT_LABELS)
cols = st.columns(4)
for i, row in enumerate(frame.to_dict("records")):
    cols[i % 4].metric(f"{row['initialisation']}: final ‖ΔW‖_F", f"{row['final ‖ΔW‖_F']:.3g}",
                       help="After the last step, over all adapted layers.")
st.dataframe(frame.drop(columns="init"), hide_index=True, column_config={
    "largest output change before any step": st.column_config.NumberColumn(format="%.3g"),
    "final ‖ΔW‖_F": st.column_config.NumberColumn(format="%.3g"),
    "final loss": st.column_config.NumberColumn(format="%.3g"),
})

if "zeros" in curves:
    zeros = curves["zeros"]
    st.markdown(f"**Both zero (the notebook's choice): ‖ΔW‖_F = {max(zeros.update_norms, default=0):g} at every "
                "step.** The layer computes W·x + (α/r)·B·(A·x). The gradient of B needs A·x, which is 0 when "
                "A = 0; the gradient of A needs Bᵀ·g, which is 0 when B = 0. Both gradients are zero, so Adam "
                "never moves either matrix: the adapter never learns, and the loss is the frozen network's.")
if "random" in curves and "kaiming" in curves:
    st.markdown(f"**Both random:** B·A ≠ 0 from the start, so the network's outputs change before the first "
                f"step — by up to **{curves['random'].initial_change:.3g}** in a logit on the first 1,000 "
                "test images — "
                "and training first has to undo that. With B = 0 it is exactly "
                f"{curves['kaiming'].initial_change:g}.")

base_inits.draw(curves, result.config.rank)
