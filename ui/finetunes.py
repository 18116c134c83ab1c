"""The finetune the experiment describes, as a stored run: its record (stored, trained just now, or
stopped) is what the LoRA page's Train and Stop give; the page attaches its adapter to the baseline."""
import streamlit as st

import lora_core as lc
from lora_core import works
from service import runs
from service.kinds import Kind
from service.runs import Run
from ui import adapters, classroom, experiment, progress, run_controls
from views import current_adapter


def revive(base: lc.BaselineRun):
    """A finetune's record back as what the page shows: its adapter attached to a copy of `base`."""
    return lambda stored: works.finetune_from_record(stored, base)


def keep(record: dict):
    """Memory keeps the record (the adapter, kilobytes), not the model: each session gets its own copy."""
    return (record, None) if len(record["losses"]) == record["config"].steps else None


def train_controls(ctx, held: dict, config: lc.FinetuneConfig) -> None:
    """Train LoRA and Stop; the finetune these settings describe becomes the current adapter when it is new
    here — trained just now, stored by someone earlier, or opened from a link."""
    exp = experiment.current()
    run = Run(runs.key(exp, Kind.FINETUNE, ctx.device), Kind.FINETUNE,
              work=works.finetune_work(held["run"], ctx.data, config), keep=keep, steps=config.steps,
              load=exp.total_work("finetune", len(ctx.data.train_y)))
    record = run_controls.controls(
        run, "Train LoRA", what="Training the adapter", follow=progress.follow, stop_label="Stop training",
        buttons=("lora_train", "lora_stop"),
        help="Copy the baseline, attach the adapter, and train A and B on the chosen classes.")
    shown = st.session_state.setdefault("lora_shown", set())
    if record is not None and run.key not in shown:
        shown.add(run.key)  # made current once: an upload made later stays current
        finetune = revive(held["run"])(record)
        adapter = lc.adapter_of(finetune.run.model)
        adapters.make_current(current_adapter.trained(finetune, adapter, held["key"], ctx.data.classes))
        classroom.post_finished_runs()  # a student in a class: the finished run goes to the class board
