import streamlit as st

import lora_core as lc
from ui import baseline, charts, context, inside, jobs, state, tables

RANK_CHOICES = [1, 2, 4, 8, 16, 32, 64, 128]

ctx = context.current()
st.title("Rank comparison")
st.markdown("The same finetune at several ranks, and full finetuning of every weight as the reference: "
            "how much each **learns** (errors on the finetuned classes) and how much it **forgets** "
            "(errors on the other classes), for how many trainable parameters.")
held = baseline.require(ctx, "sweep")
base = held["run"]

cols = st.columns(3)
ranks = cols[0].multiselect("Ranks", RANK_CHOICES, key="sweep_ranks",
                            help="Each rank r gives every target layer r·(d+k) trainable parameters: "
                                 "ΔW = (α/r)·B·A with B d×r and A r×k.")
targets = cols[1].multiselect("Target layers", lc.DEFAULT_TARGETS, key="sweep_targets",
                              help="linear3 maps 2000 features to only 10 classes, so its rank is at most "
                                   "10: with it, ranks above 10 are impossible. That is why the default "
                                   "here adapts linear1 and linear2 only.")
classes = cols[2].multiselect("Classes to finetune on", list(range(len(ctx.data.classes))), key="sweep_classes",
                              format_func=lambda i: ctx.data.classes[i],
                              help="Only training images of these classes are shown during finetuning.")
cols = st.columns(4)
steps = cols[0].number_input("Steps per run", 1, 100_000, key="sweep_steps",
                             help="Every run — each rank and the full finetune — trains this many steps.")
alpha = cols[1].number_input("Alpha α", 0.1, 1000.0, step=0.5, key="sweep_alpha",
                             help="Scales the update: ΔW = (α/r)·B·A, the same α for every rank.")
lr = cols[2].select_slider("Learning rate", state.LEARNING_RATES, key="sweep_lr", format_func="{:g}".format,
                           help="The same Adam learning rate for every LoRA run; full finetuning also runs at "
                                "it, for comparison.")
full_lr = cols[3].select_slider("Full finetuning's learning rate", inside.FULL_LEARNING_RATES, key="sweep_full_lr",
                                format_func="{:g}".format,
                                help="Full finetuning's own, smaller learning rate: every one of its 2.8 M weights "
                                     "moves by about this much per Adam step.")

if not ranks or not targets or not classes:
    st.error("Choose at least one rank, one target layer and one class.")
    st.stop()
try:
    config = lc.FinetuneConfig(alpha=float(alpha), targets=tuple(targets), digits=tuple(classes),
                               steps=int(steps), lr=float(lr), seed=ctx.seed)
    tables.lora_parameters(base.model, max(ranks), float(alpha), targets, ctx.seed)  # the largest rank fits?
except ValueError as err:
    st.error(tables.settings_error(err))
    st.stop()

job = st.session_state.get("sweep_job")
run_col, stop_col, _ = st.columns([1, 1, 4])
if run_col.button("Run comparison", key="sweep_run", type="primary", disabled=job is not None,
                  help="Finetune at every chosen rank, then every weight, from the same baseline."):
    job = st.session_state.sweep_job = jobs.compare(base, ctx.data, ranks, config, float(full_lr))
    st.session_state.sweep_job_info = {"base_key": held["key"], "config": config, "full_lr": float(full_lr)}
stop_col.button("Stop comparison", key="sweep_stop", on_click=jobs.stop, args=("sweep_job",), disabled=job is None,
                help="End after the current step; the runs that finished are kept.")
if job is not None:
    jobs.follow(job, "Comparing ranks", live_chart=False)
    st.session_state.sweep_job = None
    if job.error is not None:
        st.session_state.sweep = None
        st.error(f"The comparison failed: {type(job.error).__name__}: {job.error}")
        st.stop()
    if job.result is None:
        st.info("Stopped while waiting for a training slot: nothing was trained.")
        st.stop()
    st.session_state.sweep = dict(job.result, **st.session_state.sweep_job_info)
    st.rerun()  # draw the page again: results in, Run enabled, Stop disabled

result = st.session_state.get("sweep")
if result is None or result["base_key"] != held["key"]:
    st.info("Press **Run comparison**.")
    st.stop()
if result["stopped"]:
    st.warning("Stopped early: only the runs that finished are shown.")
c = result["config"]
names = tables.class_names(ctx.data.classes, c.digits)
st.caption(f"Last comparison: α {c.alpha:g} on {', '.join(c.targets)}; {c.steps:,} steps per run on {names}; "
           f"learning rate {c.lr:g} for LoRA, full finetuning at {c.lr:g} and at its own "
           f"{result.get('full_lr', c.lr):g}.")

frame = tables.sweep_frame(result["rows"])
rows = {row.method: row for row in result["rows"]}
baseline_row, lora_rows = rows["baseline"], [r for r in result["rows"] if r.rank is not None]
full_rows = [r for r in result["rows"] if r.method.startswith("full finetune")]
left, right = st.columns(2)
with left:
    charts.show(charts.sweep(frame, "target_wrong", f"errors on {names}", "What is learned"),
                key="sweep_learned",
                caption=f"Errors on {names} (the baseline: {baseline_row.target_wrong:,}) against trainable "
                        "parameters: " + ", ".join(f"{r.method} {r.target_wrong:,}" for r in lora_rows + full_rows)
                        + ".")
with right:
    charts.show(charts.sweep(frame, "other_wrong", "errors, other classes", "What is forgotten"),
                key="sweep_forgotten",
                caption=f"Errors on the classes not finetuned on (the baseline: {baseline_row.other_wrong:,}): "
                        + ", ".join(f"{r.method} {r.other_wrong:,}" for r in lora_rows + full_rows) + ".")
for row in full_rows:
    if row.lr == c.lr and row.accuracy < 0.5:
        st.warning(
            f"**Full finetuning at LoRA's learning rate {row.lr:g} collapsed to {row.accuracy:.1%} test accuracy.** "
            f"Shown only {names}, the loss is lowest when the network answers that for every image, and with all "
            f"{row.trainable:,} weights free, each moving by about {row.lr:g} per Adam step, "
            f"{c.steps:,} steps get it there. That is a true result, not a bug: LoRA's low-rank update cannot move "
            "that far in the same steps, so it learns less and forgets less (Biderman et al., 2024). Full "
            "finetuning is usually run at a smaller learning rate: the other star is the same run at "
            "its own rate.", icon=":material/info:")
st.dataframe(frame, hide_index=True, column_config={
    "trainable": st.column_config.NumberColumn("trainable parameters", format="localized"),
    "target_wrong": st.column_config.NumberColumn(f"wrong on {names}"),
    "other_wrong": st.column_config.NumberColumn("wrong on the other classes"),
    "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
    "lr": st.column_config.NumberColumn("learning rate", format="%g"),
})
st.download_button("Download CSV", frame.to_csv(index=False), file_name="lora_rank_comparison.csv",
                   mime="text/csv", key="sweep_download", on_click="ignore",
                   help="The table above as comma-separated values.")
