"""The finetune the experiment describes, as a stored run: what the store keeps of it, how a page gets
it back onto the baseline, and the LoRA page's Train and Stop."""
import streamlit as st

import lora_core as lc
from ui import adapters, experiment, jobs, runs


def record(result: dict) -> dict:
    """What the store keeps of a finetune: the adapter alone (kilobytes), its curves, evaluations and proofs."""
    run = result["run"]
    return {"config": run.config, "adapter": lc.adapter_of(run.model), "losses": run.losses, "before": run.before,
            "after": run.after, "off": result["off"], "merged": result.get("merged"), "checks": result["checks"],
            "parameters": run.parameters, "update_norms": run.update_norms}


def revive(base: lc.BaselineRun):
    """A stored finetune back as a job's result: its adapter attached to a copy of `base`."""
    def build(stored: dict) -> dict:
        model = lc.attach(lc.copy_model(base.model), stored["adapter"])
        run = lc.FinetuneRun(stored["config"], model, stored["losses"], stored["before"], stored["after"],
                             stored["parameters"], stored["update_norms"])
        return {"run": run, "off": stored["off"], "merged": stored.get("merged"), "checks": stored["checks"]}
    return build


def keep(result: dict):
    """Memory keeps the record (the adapter, kilobytes), not the model: each session gets its own copy."""
    run = result["run"]
    return (record(result), None) if len(run.losses) == run.config.steps else None


def train_controls(ctx, held: dict, config: lc.FinetuneConfig) -> None:
    """Train LoRA and Stop; the finetune these settings describe becomes the current adapter when it is new
    here — trained just now, stored by someone earlier, or opened from a link."""
    key = runs.key(experiment.current(), "finetune", ctx.device)
    result = runs.controls(
        "lora", key, "Train LoRA", start_work=jobs.finetune(held["run"], ctx.data, config), keep=keep,
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
        st.rerun()  # draw the page again: results in
