import streamlit as st

import lora_core as lc
from lora_core.results import expecting
from service import jobs, runs
from service.kinds import Kind
from service.runs import Run
from ui import baseline, charts, context, experiment, progress, run_controls
from views import figures, tables

ctx = context.current()
st.title("Rank comparison")
st.markdown("The same finetune at several ranks, and full finetuning of every weight as the reference: "
            "how much each **learns** (errors on the finetuned classes) and how much it **forgets** "
            "(errors on the other classes), for how many trainable parameters.")
held = baseline.require(ctx)
base = held["run"]

cols = st.columns(3)
# labels, bounds and help from the settings table (lora_core.settings); the LoRA page's settings say here
# what they mean for a comparison
ranks = experiment.widget(cols[0], "cmp_ranks")
targets = experiment.widget(cols[1], "cmp_targets",
                            help=f"linear3 maps {base.config.hidden2:,} features to only 10 classes, so its rank "
                                 f"is at most {min(10, base.config.hidden2)}: with it, larger ranks are impossible. "
                                 "That is why the default here adapts linear1 and linear2 only.")
classes = experiment.widget(cols[2], "digits", format_func=lambda i: ctx.data.classes[i],
                            help="Only training images of these classes are shown during finetuning.")
cols = st.columns(4)
experiment.widget(cols[0], "steps", label="Steps per run",
                  help="Every run — each rank and the full finetune — trains this many steps (the LoRA page's "
                       "steps).")
experiment.widget(cols[1], "alpha", step=0.5,
                  help="Scales the update: ΔW = (α/r)·B·A, the same α for every rank (the LoRA page's α).")
experiment.widget(cols[2], "lr", format_func="{:g}".format,
                  help="The same Adam learning rate for every LoRA run (the LoRA page's); full finetuning also "
                       "runs at it, for comparison.")
experiment.widget(cols[3], "full_lr", format_func="{:g}".format,
                  help=f"Full finetuning's own, smaller learning rate: every one of the baseline's "
                       f"{lc.count_parameters(base.model)['base']:,} weights moves by about this much per "
                       "Adam step.")

exp = experiment.current()
if problem := experiment.problem_for("compare", "compare", "finetune"):
    st.error(tables.settings_error(ValueError(problem)))
    st.stop()
try:
    config = exp.study("compare")
except ValueError as err:
    st.error(tables.settings_error(err))
    st.stop()

result = run_controls.controls(
    Run(runs.key(exp, Kind.COMPARE, ctx.device), Kind.COMPARE,
        work=jobs.compare(base, ctx.data, exp.compare.ranks, config, exp.compare.full_lr),
        keep=lambda found: (found, found) if not found.stopped else None, revive=expecting(lc.Comparison),
        steps=exp.total_steps("compare", len(ctx.data.train_y)), load=exp.total_work("compare", len(ctx.data.train_y))),
    "Run comparison", what="Comparing ranks",
    follow=lambda job, what: progress.follow(job, what, live_chart=False), stop_label="Stop comparison",
    help="Finetune at every chosen rank, then every weight, from the same baseline.")
if result is None:
    st.info("Press **Run comparison**.")
    st.stop()
if result.stopped:
    st.warning("Stopped early: only the runs that finished are shown.")
c = config
names = tables.class_names(ctx.data.classes, c.digits)
st.caption(f"Last comparison: α {c.alpha:g} on {', '.join(c.targets)}; {c.steps:,} steps per run on {names}; "
           f"learning rate {c.lr:g} for LoRA, full finetuning at {c.lr:g} and at its own "
           f"{exp.compare.full_lr:g}.")

frame = tables.sweep_frame(result.rows)
rows = {row.method: row for row in result.rows}
baseline_row, lora_rows = rows["baseline"], [r for r in result.rows if r.rank is not None]
full_rows = [r for r in result.rows if r.method.startswith("full finetune")]
left, right = st.columns(2)
with left:
    charts.show(figures.sweep(frame, "target_wrong", f"errors on {names}", "What is learned"),
                key="sweep_learned",
                caption=f"Errors on {names} (the baseline: {baseline_row.target_wrong:,}) against trainable "
                        "parameters: " + ", ".join(f"{r.method} {r.target_wrong:,}" for r in lora_rows + full_rows)
                        + ".")
with right:
    charts.show(figures.sweep(frame, "other_wrong", "errors, other classes", "What is forgotten"),
                key="sweep_forgotten",
                caption=f"Errors on the classes not finetuned on (the baseline: {baseline_row.other_wrong:,}): "
                        + ", ".join(f"{r.method} {r.other_wrong:,}" for r in lora_rows + full_rows) + ".")
for row in full_rows:
    if row.lr == c.lr and row.accuracy < 0.5:
        st.warning(
            f"**Full finetuning at LoRA's learning rate {row.lr:g} collapsed to {row.accuracy:.1%} test accuracy.** "
            f"Shown only {names}, the loss is lowest when the network answers "
            f"{'that' if len(c.digits) == 1 else 'one of them'} for every image, and with all "
            f"{row.trainable:,} weights free, each moving by about {row.lr:g} per Adam step, "
            f"{c.steps:,} steps get it there. That is a true result, not a bug: LoRA's low-rank update cannot move "
            "that far in the same steps, so it learns less and forgets less (Biderman et al., 2024). Full "
            "finetuning is usually run at a smaller learning rate: the other star is the same run at "
            "its own rate.", icon=":material/info:")
st.dataframe(tables.sweep_display(frame), hide_index=True, column_config={
    "trainable": st.column_config.NumberColumn("trainable parameters", format="localized"),
    "target_wrong": st.column_config.NumberColumn(f"wrong on {names}", format="localized"),
    "other_wrong": st.column_config.NumberColumn("wrong on the other classes", format="localized"),
    "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
    "lr": st.column_config.TextColumn("learning rate"),
})
st.download_button("Download CSV", frame.to_csv(index=False), file_name="lora_rank_comparison.csv",
                   mime="text/csv", key="sweep_download", on_click="ignore",
                   help="The table above as comma-separated values.")
