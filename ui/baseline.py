"""The baseline the experiment describes: found in the run store, followed while it trains, or trained.

A stopped baseline is its own run: its step limit becomes the number of steps it took, so the settings
(and a link to them) describe exactly the partly trained network, which is then stored like any other; one
stopped before its first step is no run at all.
"""
import streamlit as st

import lora_core as lc
from lora_core import presets, works
from service import runs
from service.kinds import Kind
from service.runs import Run
from ui import experiment, progress, run_controls
from ui.context import Context


def run_key(ctx: Context, exp: lc.Experiment | None = None) -> str:
    return runs.key(exp or experiment.current(), Kind.BASELINE, ctx.device)


def revive(ctx: Context):
    return revive_on(ctx.data)


def revive_on(data: lc.Dataset):
    """A stored baseline back as a BaselineRun on `data`'s device; a ValueError when the record is not one."""
    return lambda stored: works.baseline_from_record(stored, data.train_x.device)


def keep(run: lc.BaselineRun):
    """(record, live) of a whole baseline for the store; None for a stopped one."""
    return (works.baseline_record(run), run) if run.complete else None


def _keep_stopped(ctx: Context, run: lc.BaselineRun) -> None:
    """A stopped baseline becomes the run 'these settings, step limit = the steps it took'; one stopped
    before its first step is nothing (its limit, 0, would read as "no limit": the whole run's settings)."""
    steps = len(run.losses)
    if steps == 0:
        run_controls.say_next_pass("baseline", "Stopped before the first step: nothing was trained or kept.")
        return
    exp = presets.with_values(experiment.current(), {("baseline", "max_steps"): steps})
    whole = lc.BaselineRun(exp.baseline, run.model, run.losses, run.evaluation, steps)
    # a disk that cannot be written keeps it in memory
    runs.store().put(run_key(ctx, exp), works.baseline_record(whole), whole)
    experiment.set_later("base_max_steps", steps)
    run_controls.say_next_pass("baseline", f"Stopped after {steps:,} of {run.total_steps:,} steps. This partly "
                               f"trained baseline is a run of its own: its step limit is now {steps:,}, so these "
                               "settings — and a link to them — describe exactly it.")


def controls(ctx: Context, label: str, help: str) -> lc.BaselineRun | None:
    """Train and Stop for the experiment's baseline; the baseline when it exists."""
    exp = experiment.current()
    run = Run(run_key(ctx, exp), Kind.BASELINE,
              work=works.baseline_work(ctx.data, exp.baseline),  # in this process, or on a cluster
              keep=keep, steps=exp.total_steps("baseline", len(ctx.data.train_y)),
              hidden=(exp.baseline.hidden1, exp.baseline.hidden2), revive=revive(ctx),
              load=exp.total_work("baseline", len(ctx.data.train_y)))
    found = run_controls.controls(run, label, what="Training the baseline", help=help, follow=progress.follow,
                                  stop_label="Stop training", buttons=("base_train", "base_stop"))
    if found is not None and not found.complete:  # stopped just now: store it as its own run, then show it
        _keep_stopped(ctx, found)
        st.session_state.baseline_partial = None
        st.rerun()
    if runs.store().damaged and run_key(ctx, exp) in runs.store().damaged:
        st.warning("The stored copy of this baseline was damaged, so it was not loaded: train it again and it is "
                   "stored afresh.")
    return found


def describe(config: lc.BaselineConfig) -> str:
    limit = f", at most {config.max_steps:,} steps" if config.max_steps else ""
    return (f"hidden sizes {config.hidden1} and {config.hidden2}, {config.epochs} epoch(s) at batch "
            f"{config.batch_size}, learning rate {config.lr:g}{limit}, seed {config.seed}")


def require(ctx: Context) -> dict:
    """The experiment's baseline {"run", "key"}; when it has not been trained, offer to train it here and
    stop the page."""
    exp = experiment.current()
    key = run_key(ctx, exp)
    found = runs.find(key, revive(ctx))
    if found is not None:
        return {"run": found, "key": key}
    st.info(f"LoRA adapts a trained network, and the baseline these settings describe ({describe(exp.baseline)}, "
            f"on {ctx.data.name}) has not been trained on this server yet. Train it here, or change its settings "
            "on the **Baseline training** page.")
    found = controls(ctx, "Train the baseline", "Train the baseline these settings describe (reused at once when "
                                                 "someone has trained it already).")
    if found is not None:
        st.rerun()
    st.stop()
