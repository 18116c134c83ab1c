"""Experiments that answer the questions people ask about LoRA: how to start it, how to scale it, and
how much it forgets for what it learns."""
import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from .adapters import Adapter, adapter_of, blend
from .data import Dataset
from .lora import INITS
from .runs import FinetuneConfig, finetune_lora, run_progress
from .train import evaluate

FINAL_LOSS_STEPS = 10  # the final loss is the mean over the last steps: one batch is too noisy


@dataclass(frozen=True)
class InitCurve:
    init: str
    losses: list[float]
    update_norms: list[float]  # ‖ΔW‖_F after each step
    initial_change: float  # largest |logit change| a fresh adapter makes on the test images, before any step


def init_gallery(base: nn.Module, data: Dataset, config: FinetuneConfig, inits=tuple(INITS),
                 on_progress=None) -> list[InitCurve]:
    """The same finetune from each initialisation: same data, same steps, same seed."""
    curves, total = [], len(inits) * config.steps
    x = data.test_x[:1000]
    with torch.no_grad():
        base_logits = base(x)
    for i, init in enumerate(inits):
        change = []  # measured before the first step: does a fresh adapter already change the outputs?
        measure = lambda model, change=change: change.append(_largest_change(model, x, base_logits))
        run = finetune_lora(base, data, replace(config, init=init), on_start=measure,
                            on_step=run_progress(on_progress, i * config.steps, total, init))
        curves.append(InitCurve(init, run.losses, run.update_norms, change[0]))
    return curves


@torch.no_grad()
def _largest_change(model: nn.Module, x: torch.Tensor, reference: torch.Tensor) -> float:
    return float((model(x) - reference).abs().max())


@dataclass(frozen=True)
class ScalingRow:
    scaling: str  # "α/r" or "α/√r"
    rank: int
    scale: float
    update_norm: float  # ‖ΔW‖_F after training, all layers
    final_loss: float


def scaling_sweep(base: nn.Module, data: Dataset, config: FinetuneConfig, ranks, on_progress=None) -> list[ScalingRow]:
    """α/r against α/√r (rsLoRA) across ranks at a fixed α."""
    rows, plans = [], [(rslora, rank) for rslora in (False, True) for rank in sorted(set(ranks))]
    for i, (rslora, rank) in enumerate(plans):
        label = f"{'α/√r' if rslora else 'α/r'}, rank {rank}"
        run = finetune_lora(base, data, replace(config, rank=rank, rslora=rslora),
                            on_step=run_progress(on_progress, i * config.steps, len(plans) * config.steps, label))
        scale = config.alpha / (math.sqrt(rank) if rslora else rank)
        final = sum(run.losses[-FINAL_LOSS_STEPS:]) / len(run.losses[-FINAL_LOSS_STEPS:])
        rows.append(ScalingRow("α/√r" if rslora else "α/r", rank, scale, run.update_norms[-1], final))
    return rows


@dataclass(frozen=True)
class FrontierPoint:
    rank: int
    strength: float
    target_wrong: int  # errors on the finetuned classes: what was learned
    other_wrong: int  # errors on every other class: what was forgotten
    accuracy: float


def train_frontier_adapters(base: nn.Module, data: Dataset, config: FinetuneConfig, ranks,
                            on_progress=None) -> dict[int, Adapter]:
    """One adapter per rank, trained once; the frontier then moves along strengths without retraining."""
    adapters, ranks = {}, sorted(set(ranks))
    for i, rank in enumerate(ranks):
        step = run_progress(on_progress, i * config.steps, len(ranks) * config.steps, f"rank {rank}")
        adapters[rank] = adapter_of(finetune_lora(base, data, replace(config, rank=rank), on_step=step).model)
    return adapters


def frontier(base: nn.Module, data: Dataset, adapters: dict[int, Adapter], digits,
             strength: float) -> list[FrontierPoint]:
    """Target-class errors against other-class errors, one point per rank, at one adapter strength."""
    points = []
    for rank, adapter in adapters.items():
        evaluation = evaluate(blend(base, [adapter], [strength]), data.test_x, data.test_y)
        target = sum(evaluation.wrong_per_class[d] for d in digits)
        points.append(FrontierPoint(rank, strength, target, evaluation.wrong - target, evaluation.accuracy))
    return points
