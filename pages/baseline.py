import streamlit as st

import lora_core as lc
from ui import baseline, charts, context, fair, state, tables

ctx = context.current()
st.title("Baseline training")
st.markdown("The notebook's classifier — 784 pixels → hidden layer 1 → hidden layer 2 → 10 classes, with "
            "ReLU — trained on every class. LoRA later adapts this trained network without changing it.")


def use_notebook_settings() -> None:
    st.session_state.base_batch = lc.NOTEBOOK_BASELINE.batch_size
    st.session_state.base_epochs = lc.NOTEBOOK_BASELINE.epochs


cols = st.columns(6)
hidden1 = cols[0].number_input("Hidden layer 1 size", 1, fair.max_hidden(), step=100, key="base_hidden1",
                               help="Neurons in the first hidden layer: linear1 has a 784 × this weight.")
hidden2 = cols[1].number_input("Hidden layer 2 size", 1, fair.max_hidden(), step=100, key="base_hidden2",
                               help="Neurons in the second hidden layer: linear2 is hidden1 → hidden2.")
epochs = cols[2].number_input("Epochs", 1, 50, key="base_epochs",
                              help="Passes over all training images, each in a new random order.")
batch = cols[3].number_input("Batch size", 1, 1024, key="base_batch",
                             help="Images per step: one gradient step per batch. Small batches take more, "
                                  "noisier steps per epoch.")
lr = cols[4].select_slider("Learning rate", state.LEARNING_RATES, key="base_lr", format_func="{:g}".format,
                           help="How far each Adam step moves the weights.")
max_steps = cols[5].number_input("Step limit (0 = none)", 0, 1_000_000, key="base_max_steps",
                                 help="Stop after this many steps even if the epochs are not done: "
                                      "a quick, rougher baseline.")
st.button("Use the notebook's settings", key="base_notebook", on_click=use_notebook_settings,
          help="Batch size 10 and 1 epoch, as the original notebook trained.")
st.caption(fair.caps_note())

config = lc.BaselineConfig(hidden1=int(hidden1), hidden2=int(hidden2), epochs=int(epochs),
                           batch_size=int(batch), lr=float(lr), max_steps=int(max_steps) or None, seed=ctx.seed)

train_col, stop_col, _ = st.columns([1, 1, 4])
if train_col.button("Train baseline", key="base_train", type="primary", disabled=baseline.running() is not None,
                    help="Train a new baseline with these settings (or reuse one trained already)."):
    baseline.start(ctx, config)
stop_col.button("Stop training", key="base_stop", on_click=baseline.stop, disabled=baseline.running() is None,
                help="End training after the current step. The model keeps what it has learned so far.")
baseline.messages()
baseline.follow(ctx)

held = baseline.current(ctx)
if held is None:
    st.info(f"No baseline for {ctx.data.name} on {ctx.device} yet: press **Train baseline**.")
    st.stop()
run = held["run"]
if held["how"] == "reused":
    st.success(baseline.NOTES["reused"])
if not run.complete:
    st.warning(f"Stopped after {len(run.losses):,} of {run.total_steps:,} steps: the results below are the "
               "partly trained model's.")
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
    charts.show(charts.loss_curve(run.losses), key="base_loss")
with right:
    charts.show(charts.wrong_per_class(run.evaluation.wrong_per_class, ctx.data.classes), key="base_wrong")

st.subheader("Parameters per layer")
st.dataframe(tables.layer_frame(run.model), hide_index=True,
             column_config={"parameters": st.column_config.NumberColumn(format="localized")})
