import streamlit as st

import lora_core as lc
from lora_core.experiment import STUDY_RANKS
from service.kinds import Kind
from ui import baseline, charts, context, experiment, inside, jobs, runs, state, tables

ctx = context.current()
st.title("Rank comparison")
st.markdown("The same finetune at several ranks, and full finetuning of every weight as the reference: "
            "how much each **learns** (errors on the finetuned classes) and how much it **forgets** "
            "(errors on the other classes), for how many trainable parameters.")
held = baseline.require(ctx)
base = held["run"]

cols = st.columns(3)
ranks = cols[0].multiselect("Ranks", STUDY_RANKS, key="sweep_ranks",
                            help="Each rank r gives every target layer r·(d+k) trainable parameters: "
                                 "ΔW = (α/r)·B·A with B d×r and A r×k.")
targets = cols[1].multiselect("Target layers", lc.DEFAULT_TARGETS, key="sweep_targets",
                              help="linear3 maps 2000 features to only 10 classes, so its rank is at most "
                                   "10: with it, ranks above 10 are impossible. That is why the default "
                                   "here adapts linear1 and linear2 only.")
classes = cols[2].multiselect("Classes to finetune on", list(range(len(ctx.data.classes))), key="lora_classes",
                              format_func=lambda i: ctx.data.classes[i],
                              help="Only training images of these classes are shown during finetuning.")
cols = st.columns(4)
cols[0].number_input("Steps per run", 1, 100_000, key="lora_steps",
                     help="Every run — each rank and the full finetune — trains this many steps (the LoRA page's "
                          "steps).")
cols[1].number_input("Alpha α", 0.1, 1000.0, step=0.5, key="lora_alpha",
                     help="Scales the update: ΔW = (α/r)·B·A, the same α for every rank (the LoRA page's α).")
cols[2].select_slider("Learning rate", state.LEARNING_RATES, key="lora_lr", format_func="{:g}".format,
                      help="The same Adam learning rate for every LoRA run (the LoRA page's); full finetuning also "
                           "runs at it, for comparison.")
cols[3].select_slider("Full finetuning's learning rate", inside.FULL_LEARNING_RATES, key="sweep_full_lr",
                      format_func="{:g}".format,
                      help="Full finetuning's own, smaller learning rate: every one of its 2.8 M weights moves by "
                           "about this much per Adam step.")

exp = experiment.current()
if problem := experiment.problem("cmp_ranks", "cmp_targets", "full_lr", "digits", "steps", "alpha", "lr"):
    st.error(tables.settings_error(ValueError(problem)))
    st.stop()
try:
    config = exp.study("compare")
except ValueError as err:
    st.error(tables.settings_error(err))
    st.stop()

result = runs.controls(
    Kind.COMPARE, runs.key(exp, Kind.COMPARE, ctx.device), "Run comparison",
    start_work=jobs.compare(base, ctx.data, exp.compare.ranks, config, exp.compare.full_lr),
    keep=lambda found: (found, found) if not found["stopped"] else None, what="Comparing ranks",
    follow=lambda job, what: jobs.follow(job, what, live_chart=False), stop_label="Stop comparison",
    help="Finetune at every chosen rank, then every weight, from the same baseline.",
    cost=(exp.total_steps("compare", len(ctx.data.train_y)), ()))
if result is None:
    st.info("Press **Run comparison**.")
    st.stop()
if result["stopped"]:
    st.warning("Stopped early: only the runs that finished are shown.")
c = config
names = tables.class_names(ctx.data.classes, c.digits)
st.caption(f"Last comparison: α {c.alpha:g} on {', '.join(c.targets)}; {c.steps:,} steps per run on {names}; "
           f"learning rate {c.lr:g} for LoRA, full finetuning at {c.lr:g} and at its own "
           f"{exp.compare.full_lr:g}.")

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
