"""The finetune the experiment describes, as a stored run: what the store keeps of it, how a page gets
it back onto the baseline, and the LoRA page's Train and Stop."""
import streamlit as st

import lora_core as lc
from lora_core import works
from service.kinds import Kind
from ui import adapters, experiment, jobs, runs


def revive(base: lc.BaselineRun):
    """A stored finetune back as a job's result: its adapter attached to a copy of `base`."""
    return lambda stored: works.finetune_from_record(stored, base)


def keep(result: dict):
    """Memory keeps the record (the adapter, kilobytes), not the model: each session gets its own copy."""
    run = result["run"]
    return (works.finetune_record(result), None) if len(run.losses) == run.config.steps else None


def train_controls(ctx, held: dict, config: lc.FinetuneConfig) -> None:
    """Train LoRA and Stop; the finetune these settings describe becomes the current adapter when it is new
    here — trained just now, stored by someone earlier, or opened from a link."""
    key = runs.key(experiment.current(), Kind.FINETUNE, ctx.device)
    result = runs.controls(
        Kind.FINETUNE, key, "Train LoRA", start_work=works.finetune_work(held["run"], ctx.data, config), keep=keep,
        what="Training the adapter", follow=jobs.follow, stop_label="Stop training",
        buttons=("lora_train", "lora_stop"), cost=(config.steps, ()),
        help="Copy the baseline, attach the adapter, and train A and B on the chosen classes.")
    shown = st.session_state.setdefault("lora_shown", set())
    if result is not None and key not in shown:
        shown.add(key)  # made current once: an upload made later stays current
        if "adapter" in result:  # the stored record: its adapter onto a copy of this baseline
            result = revive(held["run"])(result)
        entry = adapters.from_training(result, held["key"], ctx.data.classes)
        adapters.make_current(entry, lc.adapter_of(result["run"].model))
