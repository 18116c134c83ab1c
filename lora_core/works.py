"""The app's baseline and finetune as lora_core.executor.Work: what a worker computes is plain data —
tensors, numbers, lora_core's dataclasses — which is exactly what the run store keeps (a record), and
`*_from_record` turns a record back into what a page uses. So a run computed in this process, on a
cluster, or read from disk reaches the page the same way.
"""
import dataclasses

import torch

from .adapters import adapter_of, attach
from .data import Dataset
from .executor import Work
from .finetuning import (
    BaselineConfig,
    BaselineRun,
    FinetuneConfig,
    FinetuneRun,
    finetune_lora,
    train_baseline,
)
from .inits import moves_base
from .lora import copy_model, lora_enabled
from .model import MLP
from .proofs import adapter_checks, merged_copy, same_network, start_checks
from .results import Inspection
from .train import Evaluation, evaluate, logits_of

# --- baseline ------------------------------------------------------------------------------------------


def baseline_record(run: BaselineRun) -> dict:
    """What the store keeps of a baseline: its weights, losses, test evaluation and the outputs it scored
    (the proofs of every finetune on it compare with them)."""
    return {"config": run.config, "state": run.model.state_dict(), "losses": run.losses,
            "evaluation": run.evaluation, "total_steps": run.total_steps, "test_logits": run.test_logits}


def baseline_problem(record: dict) -> str | None:
    """How a baseline record contradicts its own config, or None: a whole run trained at least one step,
    every step of it (its step limit included) has its loss."""
    config, losses, total = record.get("config"), record.get("losses"), record.get("total_steps")
    if not isinstance(losses, list) or not losses:
        return "a baseline that trained no step"
    if not isinstance(total, int) or len(losses) != total:
        return f"a baseline of {len(losses):,} losses for {total!r} steps"
    if config.max_steps is not None and total > config.max_steps:
        return f"a baseline of {total:,} steps over its limit of {config.max_steps:,}"
    return None


def finetune_problem(record: dict) -> str | None:
    """How a finetune record contradicts its config, or None: it trained exactly its steps."""
    losses = record.get("losses")
    if not isinstance(losses, list) or len(losses) != record["config"].steps:
        return f"a finetune of {len(losses or ()):,} losses for {record['config'].steps:,} steps"
    return None


def record_problem(record) -> str | None:
    """Why a record cannot be the whole run its key describes, or None (the run store refuses it): a
    stopped study or comparison, or a baseline or finetune (an inspection's too) whose losses disagree with
    its steps (lora_core.store)."""
    if getattr(record, "stopped", False) is True:  # a typed result (lora_core.results)
        return "a stopped run"
    if isinstance(record, Inspection):
        return None if record.finetune is None else record_problem(record.finetune)
    if not isinstance(record, dict):
        return None
    config = record.get("config")
    if isinstance(config, BaselineConfig) and "state" in record:
        return baseline_problem(record)
    if isinstance(config, FinetuneConfig) and "adapter" in record:
        return finetune_problem(record)
    return None


def baseline_from_record(stored: dict, device) -> BaselineRun:
    """A stored baseline as a BaselineRun on `device`, read-only; a ValueError when the record is not one."""
    config, losses = stored.get("config"), stored.get("losses")
    if not isinstance(config, BaselineConfig) or not isinstance(losses, list) or \
            not all(type(v) is float for v in losses):
        raise ValueError("not a stored baseline")
    state = stored.get("state")
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) and t.dtype == torch.float32
                                              and bool(torch.isfinite(t).all()) for t in state.values()):
        raise ValueError("not a stored baseline: its weights are not finite float32 tensors")
    with torch.device("meta"):  # no initial weights to draw: the stored ones replace them
        model = MLP(config.hidden1, config.hidden2)
    # copies (the record stays the store's); a RuntimeError when a tensor is missing, extra or of another shape
    model.load_state_dict({name: t.to(device, copy=True) for name, t in state.items()}, assign=True)
    for param in model.parameters():
        param.requires_grad_(False)  # a baseline is shared by every session
    logits = stored.get("test_logits")
    return BaselineRun(config, model, losses, stored["evaluation"], stored["total_steps"],
                       None if logits is None else logits.to(device))


def trained_baseline(progress, data: Dataset, config: BaselineConfig) -> dict:
    """train_baseline, as its record (its tensors on the CPU, to travel)."""
    run = train_baseline(config, data, on_step=progress.on_step, should_stop=progress.should_stop)
    return on_cpu(baseline_record(run))


def baseline_work(data: Dataset, config: BaselineConfig) -> Work:
    return Work(trained_baseline, data, (config,), lambda record: baseline_from_record(record, data.train_x.device))


# --- finetune ------------------------------------------------------------------------------------------

PROOF_IMAGES = 256  # test images whose outputs the proofs compare (the identities hold for any input; each
# image more costs every finetune and upload time); the weights are compared in full


def adapter_results(base: BaselineRun, model, data: Dataset, on: Evaluation | None = None,
                    say=lambda text: None) -> dict:
    """Evaluations of an adapted copy of `base` with the adapter on and off and of its merged copy, and the
    proofs, for one pass over the test images (on; none when the finetune evaluated it: `on`).

    Off and merged need no pass of their own: switched off, the adapter leaves the baseline's weights bit for
    bit, and a merged copy has the adapted network's (both checked here in full), so they give exactly those
    outputs on every image. The proofs measure the outputs on the first PROOF_IMAGES test images."""
    if on is None:
        say("evaluating the adapted network")
        on = evaluate(model, data.test_x, data.test_y)
    say("checking the proofs")
    merged = merged_copy(model)
    probe = data.test_x[:PROOF_IMAGES]
    base_logits = None if base.test_logits is None else base.test_logits[:PROOF_IMAGES]
    checks = adapter_checks(base.model, model, probe, base_logits=base_logits, merged_logits=logits_of(merged, probe))
    with lora_enabled(model, False):
        off_is_base = same_network(model, base.model)
        off = base.evaluation if off_is_base else evaluate(model, data.test_x, data.test_y)
    merged_evaluation = on if same_network(merged, model) else evaluate(merged, data.test_x, data.test_y)
    return {"after": on, "off": off, "merged": merged_evaluation, "checks": checks}


@dataclasses.dataclass
class CheckedFinetune:
    """A finetune as the LoRA page shows it: its run (a copy of the baseline carrying the adapter), its
    evaluations with the adapter off and merged, and the proofs (adapter_results; None where not made)."""
    run: FinetuneRun
    off: Evaluation | None
    merged: Evaluation | None = None
    checks: dict | None = None


def finetune_record(finetune: CheckedFinetune) -> dict:
    """What the store keeps of a finetune: the adapter alone (kilobytes), its curves, evaluations and proofs."""
    run = finetune.run
    return {"config": run.config, "adapter": adapter_of(run.model), "losses": run.losses, "before": run.before,
            "after": run.after, "off": finetune.off, "merged": finetune.merged, "checks": finetune.checks,
            "parameters": run.parameters, "update_norms": run.update_norms}


def finetune_from_record(stored: dict, base: BaselineRun) -> CheckedFinetune:
    """A finetune's record (stored, or just trained) as the page uses it: its adapter attached to a copy
    of `base`."""
    model = attach(copy_model(base.model), stored["adapter"])
    run = FinetuneRun(stored["config"], model, stored["losses"], stored["before"], stored["after"],
                      stored["parameters"], stored["update_norms"])
    return CheckedFinetune(run, stored["off"], stored.get("merged"), stored["checks"])


def checked_finetune(progress, data: Dataset, base: BaselineRun, config: FinetuneConfig) -> dict:
    """finetune_lora on a copy of `base`, then its evaluations with the adapter off and merged and the
    proofs (adapter_results), as its record.

    After PiSSA or OLoRA the run's layers hold the residual W − s·B₀·A₀; its adapter is converted for the
    baseline's own W (adapters.adapter_of, as PEFT saves it) and the converted network is the one evaluated
    and proved, as the page and the downloads use it; the step-0 proofs (start_checks) are added."""
    if base.model.linear1.weight.device != data.train_x.device:  # a GPU worker of a CPU app
        base = dataclasses.replace(base, model=copy_model(base.model).to(data.train_x.device),
                                   test_logits=on_device(base.test_logits, data.train_x.device))
    probe, start = data.test_x[:PROOF_IMAGES], {}

    def measure(model) -> None:
        base_logits = logits_of(base.model, probe) if base.test_logits is None else base.test_logits[:PROOF_IMAGES]
        start.update(start_checks(model, probe, base_logits))
    moved = moves_base(config.init)
    run = finetune_lora(base.model, data, config, before=base.evaluation, on_step=progress.on_step,
                        should_stop=progress.should_stop, on_start=measure if moved else None,
                        evaluated=not moved)  # a moved init's converted network is evaluated below instead
    if moved:
        run.model, run.before = attach(copy_model(base.model), adapter_of(run.model)), base.evaluation

    def say(text: str) -> None:
        progress.label = text
    found = adapter_results(base, run.model, data, None if moved else run.after, say)
    run.after = found["after"]
    return on_cpu(finetune_record(CheckedFinetune(run, found["off"], found["merged"], found["checks"] | start)))


def finetune_work(base: BaselineRun, data: Dataset, config: FinetuneConfig) -> Work:
    """The finetune of `base` a page asks for, as its record (finetune_from_record makes it usable); a
    cluster's worker gets `base` (weights and outputs) with it."""
    return Work(checked_finetune, data, (base, config))


def on_device(value, device):
    """`value` with every tensor in it (in dicts, lists, tuples, dataclasses) on `device`."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(device)
    if isinstance(value, dict):
        return {k: on_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_device(v, device) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: on_device(getattr(value, f.name), device)
                                             for f in dataclasses.fields(value) if f.init})
    return value


def on_cpu(record: dict) -> dict:
    """A record as it travels from a worker: every tensor on the CPU."""
    return on_device(record, "cpu")
