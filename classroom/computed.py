"""The right answers, computed by lora_core from the class's own runs: never typed in by hand; and the
numbers a run puts on the board."""
from dataclasses import fields

import torch
from torch import nn

from lora_core import Evaluation, FinetuneConfig, SweepRow, copy_model, lora_layers, lora_of
from lora_core.lora import DEFAULT_TARGETS
from lora_core.model import IMAGE_PIXELS, NUM_CLASSES
from lora_core.train import logits_of, wrong_on

from .board import MAX_CHANGES, RunNumbers
from .questions import FULL, NO, YES, Question


def _expect(question: Question, kind: str) -> None:
    if question.kind != kind:
        raise ValueError(f"this computes the answer to {kind}, not to {question.kind}")


def still_wrong(question: Question, config: FinetuneConfig, after: Evaluation) -> int:
    """Test images of the question's digit still misclassified after the finetune it describes: from the
    finished run's config and evaluation (a FinetuneRun's, or a stored record's)."""
    _expect(question, "still_wrong")
    p = question.params
    if (config.rank, config.digits, config.steps) != (p["rank"], (p["digit"],), p["steps"]):
        raise ValueError(f"the run (rank {config.rank}, digits {config.digits}, {config.steps} steps) is not the "
                         f"one the question describes")
    return int(after.wrong_per_class[p["digit"]])


def least_forgetting(question: Question, rows: list[SweepRow]) -> list[str]:
    """The choices whose run made the fewest errors on the digits it was not finetuned on (several when
    tied), from compare_ranks' rows: its first full-finetune row is the one at full finetuning's own rate."""
    _expect(question, "least_forgetting")
    by_choice = {}
    for row in rows:
        if row.rank in question.params["ranks"]:
            by_choice.setdefault(f"rank {row.rank}", row.other_wrong)
        elif row.method.startswith("full finetune"):
            by_choice.setdefault(FULL, row.other_wrong)
    missing = [c for c in question.choices if c not in by_choice]
    if missing:
        raise ValueError(f"the comparison has no run for {', '.join(missing)}")
    fewest = min(by_choice.values())
    return [choice for choice in question.choices if by_choice[choice] == fewest]


@torch.no_grad()
def strength_zero(question: Question, base: nn.Module, tuned: nn.Module, x: torch.Tensor) -> str:
    """Whether the trained adapter, scaled to strength 0 through its own parametrization, gives the base
    network's outputs on `x` bit for bit."""
    _expect(question, "strength_zero")
    silenced = copy_model(tuned)
    layers = lora_layers(silenced)
    if not layers:
        raise ValueError("the tuned network has no adapter")
    for layer in layers.values():
        lora_of(layer).scale = 0.0
    same = torch.equal(logits_of(silenced, x, own_forward=True), logits_of(base, x))
    return YES if same else NO


def rank_parameters(question: Question, targets=DEFAULT_TARGETS) -> int:
    """r·(in + out) for each adapted layer of the question's network: A is r×in, B is out×r."""
    _expect(question, "rank_parameters")
    p = question.params
    shapes = {"linear1": (IMAGE_PIXELS, p["hidden1"]), "linear2": (p["hidden1"], p["hidden2"]),
              "linear3": (p["hidden2"], NUM_CLASSES)}
    return sum(p["rank"] * (shapes[name][0] + shapes[name][1]) for name in targets)


def describe_changes(config: FinetuneConfig) -> str:
    """What a finetune changed from the app's default finetune, e.g. "rank 4, steps 300"."""
    default = FinetuneConfig(seed=config.seed)
    changed = [f"{f.name} {getattr(config, f.name)}" for f in fields(config)
               if getattr(config, f.name) != getattr(default, f.name)]
    return ", ".join(changed) or "the default finetune"


def run_numbers(record: dict) -> RunNumbers:
    """A stored finetune's numbers as the class board keeps them."""
    config, after = record["config"], record["after"]
    target = wrong_on(after, config.digits)
    return RunNumbers(float(after.accuracy), int(target), int(after.wrong - target),
                      int(record["parameters"]["trainable"]), describe_changes(config)[:MAX_CHANGES])
