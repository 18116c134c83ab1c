import streamlit as st

from ui import baseline, charts, context, experiment
from views import figures, tables

ctx = context.current()
st.title("Baseline training")
st.markdown("The notebook's classifier — 784 pixels → hidden layer 1 → hidden layer 2 → 10 classes, with "
            "ReLU — trained on every class. LoRA later adapts this trained network without changing it.")


cols = st.columns(6)
# labels, bounds and help from the settings table (lora_core.settings)
experiment.widget(cols[0], "h1", step=100)
experiment.widget(cols[1], "h2", step=100)
experiment.widget(cols[2], "epochs")
experiment.widget(cols[3], "base_batch")
experiment.widget(cols[4], "base_lr", format_func="{:g}".format)
experiment.widget(cols[5], "base_steps")
st.caption("The notebook trained 1 epoch at batch 10: choose the preset *the notebook* in the sidebar.")

run = baseline.controls(ctx, "Train baseline", "Train a baseline with these settings, or show the one trained "
                                               "already on this server with exactly these settings.")
if run is None:
    if problem := experiment.problem_for("baseline", "baseline"):
        st.error(problem)
    st.info(f"No baseline with these settings on {ctx.data.name} yet: press **Train baseline**.")
    st.stop()
st.success("Stored on this server with exactly these settings: whoever opens the same settings (or a link to "
           "them) sees this baseline without training it again.", icon=":material/inventory_2:")
c = run.config
st.caption(f"Trained on {ctx.data.name} with hidden sizes {c.hidden1} and {c.hidden2}, {c.epochs} epoch(s), "
           f"batch {c.batch_size}, learning rate {c.lr:g}, step limit {c.max_steps or 'none'}, seed {c.seed}.")

col1, col2, col3 = st.columns(3)
col1.metric("Test accuracy", tables.percent(run.evaluation.accuracy),
            help=f"Share of the {len(ctx.data.test_y):,} test images classified correctly.")
col2.metric("Wrong test images", f"{run.evaluation.wrong:,}")
col3.metric("Steps trained", f"{len(run.losses):,}")

left, right = st.columns(2)
with left:
    charts.show(figures.loss_curve(run.losses), key="base_loss",
                caption=f"Cross-entropy loss of each of the {len(run.losses):,} training steps: from "
                        f"{run.losses[0]:.3g} at step 1 to {run.losses[-1]:.3g} at the last.")
with right:
    wrong = run.evaluation.wrong_per_class
    charts.show(figures.wrong_per_class(wrong, ctx.data.classes), key="base_wrong",
                caption=f"Misclassified test images of each class, {sum(wrong):,} in all: "
                        f"{tables.most_and_fewest(wrong, ctx.data.classes)}.")

st.subheader("Parameters per layer")
st.dataframe(tables.layer_frame(run.model), hide_index=True,
             column_config={"parameters": st.column_config.NumberColumn(format="localized")})
