import streamlit as st

from ui import baseline, charts, context, inside
from ui import inside_charts as ic

ctx = context.current()
st.title("Scaling explorer")
st.markdown("LoRA scales its update by α/r. rsLoRA scales it by α/√r instead. At a fixed α, the same finetune at "
            "several ranks with each scale: how large the update grows and how low the loss gets.")
held = baseline.require(ctx)
base = held["run"]

cols = st.columns(3)
ranks = cols[0].multiselect("Ranks", inside.RANK_CHOICES, key="scaling_ranks",
                            help="Each rank is trained twice: once scaled by α/r, once by α/√r.")
alpha = cols[1].number_input("Alpha α (fixed)", 0.1, 1000.0, step=1.0, key="scaling_alpha",
                             help="The same α for every run: only the rank and the scaling rule change.")
steps = cols[2].number_input("Steps per run", 1, 100_000, key="scaling_steps")
if not ranks:
    st.error("Choose at least one rank.")
    st.stop()
config = inside.study_config("scaling")
st.caption(f"The LoRA page's other settings: {inside.describe(config, ctx.data.classes, with_rank=False)}.")

result = inside.run("scaling", held, ctx, config, "Run the sweep", "α/r against α/√r",
                    help="Two runs per rank, one with each scaling rule.")

st.info("**What the rank does to the learning rate.** With α/r, doubling r halves the scale of the update, so "
        "the adapter's effective learning rate falls as 1/r: at a fixed α a larger rank learns *slower*, not "
        "more. rsLoRA's α/√r keeps the update's size stable as r grows (r directions add up like √r, and the "
        "scale divides that back out), so a larger rank can actually be put to use.")

if result is None:
    st.info("Press **Run the sweep**.")
    st.stop()
st.caption(f"Last sweep: {inside.describe(result['config'], ctx.data.classes, with_rank=False)}.")
frame = inside.scaling_frame(result["rows"])
left, right = st.columns(2)
with left:
    charts.show(ic.scaling(frame, "update_norm", "‖ΔW‖_F after training", "Size of the update"),
                key="scaling_norm")
with right:
    charts.show(ic.scaling(frame, "final_loss", "final loss (mean of the last steps)", "Final loss"),
                key="scaling_loss")
st.dataframe(frame, hide_index=True, column_config={
    "scaling": "scale rule", "rank": "rank r",
    "scale": st.column_config.NumberColumn("scale s (ΔW = s·B·A)", format="%.4g"),
    "update_norm": st.column_config.NumberColumn("‖ΔW‖_F", format="%.4g"),
    "final_loss": st.column_config.NumberColumn("final loss", format="%.3g"),
})
