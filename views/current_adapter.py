"""The LoRA page's current adapter, typed: the one it shows (trained here or uploaded), attached to a copy of
the baseline, with its evaluations, its proofs and the words the page says of it, made in one piece here; and
the captions of its charts, from the same numbers the charts draw. ui.adapters keeps it in the session."""
from dataclasses import dataclass, field

from torch import nn

import lora_core as lc
from lora_core import works
from views import tables


@dataclass
class OnDemand:
    """What is made of an adapter only when first asked for, then kept: its zips by format (True: PEFT's) and
    the merge lab's rows (lc.merge_precision)."""
    zips: dict[bool, bytes] = field(default_factory=dict)
    merge_rows: list[dict] | None = None


@dataclass(frozen=True)
class CurrentAdapter:
    name: str  # as the adapter list shows it: unique in the list (ui.adapters.make_current)
    model: nn.Module  # a copy of the baseline carrying the adapter
    adapter: lc.Adapter  # the same adapter, detached from any model (the list and its blends use it)
    before: lc.Evaluation  # the baseline's
    after: lc.Evaluation  # the adapter on
    off: lc.Evaluation  # the adapter switched off
    merged: lc.Evaluation | None  # a merged copy's; None where not made
    checks: dict[str, float]  # the proofs (lc.adapter_checks)
    losses: list[float]  # one per training step; none for an upload
    chosen: tuple[int, ...]  # the classes finetuned on; none for an upload
    base_key: str  # the baseline it was made on
    source: str  # "trained" or "uploaded"
    stem: str  # the downloads' file name, without its ending
    caption: str
    warning: str | None = None  # a stopped training's
    upload_key: str | None = None  # an upload's key in the run store (ui.uploads)
    made: OnDemand = field(default_factory=OnDemand, init=False, compare=False, repr=False)

    def charted_like(self, blend: lc.Evaluation, baseline: lc.Evaluation, blended: list) -> bool:
        """Whether a blend's chart would repeat this adapter's own (the same bars, the same classes marked; e.g.
        a new adapter alone at strength 1): the page then draws it once."""
        return (blend.wrong_per_class == self.after.wrong_per_class and blended == sorted(self.chosen)
                and baseline.wrong_per_class == self.before.wrong_per_class)


def trained(finetune: works.CheckedFinetune, adapter: lc.Adapter, base_key: str, classes) -> CurrentAdapter:
    """A finetune (its run's model carrying `adapter`) as the current adapter."""
    run = finetune.run
    c = run.config
    names = tables.class_names(classes, c.digits)
    warning = None
    if len(run.losses) < c.steps:
        warning = (f"Stopped after {len(run.losses):,} of {c.steps:,} steps: the results below are the "
                   "partly trained adapter's.")
    return CurrentAdapter(
        f"rank {c.rank} · {names}", run.model, adapter, run.before, run.after, finetune.off, finetune.merged,
        finetune.checks, run.losses, c.digits, base_key, "trained",
        f"lora-adapter-rank{c.rank}-" + "-".join(classes[d] for d in c.digits).replace(" ", "_"),
        f"Last run: rank {c.rank}, α {c.alpha:g} on {', '.join(c.targets)}; {len(run.losses):,} "
        f"steps on {names}; learning rate {c.lr:g}; seed {c.seed}.", warning)


def uploaded(filename: str, adapter: lc.Adapter, model: nn.Module, before: lc.Evaluation, found: dict,
             base_key: str) -> CurrentAdapter:
    """An uploaded adapter, attached to `model` (a copy of the baseline, evaluated `before`), as the current
    adapter; `found` is works.adapter_results of it."""
    return CurrentAdapter(
        f"rank {adapter.rank} · {filename}", model, adapter, before, found["after"], found["off"], found["merged"],
        found["checks"], [], (), base_key, "uploaded", filename.rsplit(".", 1)[0],
        f"Uploaded {filename}: rank {adapter.rank}, α {adapter.alpha:g} on {', '.join(adapter.targets)}.")


def loss_caption(losses: list[float], names: str) -> str:
    return (f"Loss of each of the {len(losses):,} steps on {names}: {losses[0]:.3g} at step 1, "
            f"{losses[-1]:.3g} at the last.")


def before_after_caption(before: lc.Evaluation, after: lc.Evaluation, after_label: str, chosen, names: str) -> str:
    return (f"Misclassified test images per class before (grey) and {after_label} (blue); "
            f"{before.wrong:,} in all before, {after.wrong:,} {after_label}"
            + (f"; on {names}: {lc.wrong_on(before, chosen):,} → {lc.wrong_on(after, chosen):,}." if chosen else "."))


def merge_caption(rows: list[dict]) -> str:
    """The merge lab's chart: lc.merge_precision's rows."""
    return "Largest rounding error of the merged weights per storage format (log scale): " + ", ".join(
        f"{r['dtype']} {r['max_abs_error']:.3g} ({r['flipped']:,} predictions flipped)" for r in rows) + "."


def blend_charted_above_caption(score: lc.Evaluation) -> str:
    """A blend whose bars are the current adapter's chart (CurrentAdapter.charted_like)."""
    return (f"This blend's misclassified test images per class are the current adapter's, charted above: "
            f"{score.wrong:,} in all.")


def blend_caption(baseline: lc.Evaluation, score: lc.Evaluation) -> str:
    return (f"Misclassified test images per class for the baseline (grey) and the blend (blue): "
            f"{baseline.wrong:,} and {score.wrong:,} in all.")
