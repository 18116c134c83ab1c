import streamlit as st

import lora_core as lc
from ui import baseline, charts, context, jobs, state, tables

ctx = context.current()
st.title("LoRA finetuning")
st.markdown("Freeze the trained baseline, add **W′ = W + (α/r)·B·A** to its layers, and train only A and B "
            "on a few classes. The chosen classes improve; the others may get worse — and switching the "
            "adapter off gives back the original network exactly.")
held = baseline.require(ctx, "lora")
base = held["run"]
st.caption(f"Adapting your baseline: test accuracy {tables.percent(base.evaluation.accuracy)}, "
           f"{len(base.losses):,} training steps" + (" (stopped early)." if not base.complete else "."))

cols = st.columns(3)
rank = cols[0].slider("Rank r", 1, 64, key="lora_rank",
                      help="Size of the adapter: B is d×r and A is r×k, so a layer gets r·(d+k) trainable "
                           "numbers and ΔW = (α/r)·B·A has rank at most r. A rank is at most min(d, k) of "
                           "every target layer.")
alpha = cols[1].number_input("Alpha α", 0.1, 1000.0, step=0.5, key="lora_alpha",
                             help="Scales the update: ΔW = (α/r)·B·A. Dividing by r keeps the update's size "
                                  "similar when you change the rank; a larger α acts like a larger step.")
targets = cols[2].multiselect("Target layers", lc.DEFAULT_TARGETS, key="lora_targets",
                              help="The layers that get an adapter: linear1 is 784→hidden1, linear2 "
                                   "hidden1→hidden2, linear3 hidden2→10 (so it allows rank ≤ 10).")
cols = st.columns(3)
classes = cols[0].multiselect("Classes to finetune on", list(range(len(ctx.data.classes))), key="lora_classes",
                              format_func=lambda i: ctx.data.classes[i],
                              help="Only training images of these classes are shown to the adapter — the "
                                   "notebook finetuned on the digit it recognised worst.")
steps = cols[1].number_input("Steps", 1, 100_000, key="lora_steps",
                             help="Training steps of 10 images each on the chosen classes.")
lr = cols[2].select_slider("Learning rate", state.LEARNING_RATES, key="lora_lr", format_func="{:g}".format,
                           help="How far each Adam step moves A and B.")

if not targets or not classes:
    st.error("Choose at least one target layer and at least one class.")
    st.stop()
try:
    config = lc.FinetuneConfig(rank=rank, alpha=float(alpha), targets=tuple(targets), digits=tuple(classes),
                               steps=int(steps), lr=float(lr), seed=ctx.seed)
    counts = tables.lora_parameters(base.model, rank, float(alpha), targets, ctx.seed)
except ValueError as err:  # e.g. a rank larger than a target layer allows: the core names the layer
    st.error(tables.settings_error(err))
    st.stop()

col1, col2, col3 = st.columns(3)
col1.metric("Original parameters (frozen)", f"{counts['base']:,}")
col2.metric("LoRA parameters (trained)", f"{counts['lora']:,}")
col3.metric("Increase", tables.percent(counts["lora"] / counts["base"], 3),
            help="Adapter parameters as a share of the original network's.")

job = st.session_state.get("lora_job")
train_col, stop_col, _ = st.columns([1, 1, 4])
if train_col.button("Train LoRA", key="lora_train", type="primary", disabled=job is not None,
                    help="Copy the baseline, attach the adapter, and train A and B on the chosen classes."):
    job = st.session_state.lora_job = jobs.finetune(base, ctx.data, config)
    st.session_state.lora_job_info = {"base_key": held["key"], "config": config}
stop_col.button("Stop training", key="lora_stop", on_click=jobs.stop, args=("lora_job",), disabled=job is None,
                help="End training after the current step. The adapter keeps what it has learned.")
if job is not None:
    jobs.follow(job, "Training the adapter")
    st.session_state.lora_job = None
    if job.error is not None:
        st.session_state.lora = None
        st.error(f"Training failed: {type(job.error).__name__}: {job.error}")
        st.stop()
    if job.result is None:
        st.info("Stopped while waiting for a training slot: nothing was trained.")
        st.stop()
    st.session_state.lora = dict(job.result, **st.session_state.lora_job_info)
    st.session_state.lora_adapter_on = True  # a new adapter is shown switched on
    st.rerun()  # draw the page again: results in, Train enabled, Stop disabled

result = st.session_state.get("lora")
if result is None or result["base_key"] != held["key"]:
    st.info("Press **Train LoRA** to finetune.")
    st.stop()
run, chosen = result["run"], result["config"].digits
names = tables.class_names(ctx.data.classes, chosen)
if len(run.losses) < run.config.steps:
    st.warning(f"Stopped after {len(run.losses):,} of {run.config.steps:,} steps: the results below are the "
               "partly trained adapter's.")
c = run.config
st.caption(f"Last run: rank {c.rank}, α {c.alpha:g} on {', '.join(c.targets)}; {len(run.losses):,} steps on "
           f"{names}; learning rate {c.lr:g}; seed {c.seed}.")

left, right = st.columns([2, 3])
with left:
    charts.show(charts.loss_curve(run.losses, f"Finetuning loss on {names}"), key="lora_loss")
with right:
    adapter_on = st.toggle("Adapter on", key="lora_adapter_on",
                           help="Switch the adapter off to use W alone: the network is then exactly the "
                                "baseline again. Both evaluations were computed once, so this is instant.")
    after = run.after if adapter_on else result["off"]
    after_label = "after LoRA" if adapter_on else "adapter off"
    col1, col2, col3 = st.columns(3)
    col1.metric("Accuracy before", tables.percent(run.before.accuracy))
    col2.metric(f"Accuracy {after_label}", tables.percent(after.accuracy),
                delta=f"{(after.accuracy - run.before.accuracy) * 100:+.2f} points")
    col3.metric(f"Wrong on {names}", f"{tables.wrong_on(after, chosen):,}",
                delta=f"{tables.wrong_on(after, chosen) - tables.wrong_on(run.before, chosen):+,}",
                delta_color="inverse", help="Test images of the finetuned classes that are misclassified.")
charts.show(charts.before_after(run.before.wrong_per_class, after.wrong_per_class, ctx.data.classes,
                                chosen, after_label), key="lora_before_after")

st.subheader("Proofs")
checks = result["checks"]
proofs = [
    ("The original weights are unchanged", "max |ΔW_original|", checks["weights_changed"], 0.0),
    ("Adapter off gives the original network's outputs", "max |difference|", checks["off_vs_base"], 0.0),
    ("Merged weights give the same outputs as the adapter", "max |difference|",
     checks["merged_vs_parametrized"], 1e-5),
]
for claim, what, value, tolerance in proofs:
    mark = "✅" if value <= tolerance else "❌"
    st.markdown(f"{mark} **{claim}** — {what} = `{value:.3g}` (must be ≤ {tolerance:g})")
