"""Experiments that answer the questions people ask about LoRA: how low-rank the right update is, how to
start an adapter, how to scale it, and how much it forgets for what it learns.

Each takes `should_stop`: a stop ends the study, and what it returns holds only the runs that finished.
Each takes `workers`: how many of its runs train at once (lora_core.parallel: the numbers stay the same).
"""
import math
import threading
from dataclasses import dataclass, replace

import torch
from torch import nn

from .adapters import Adapter, adapter_of, blend
from .anatomy import effective_rank, energy, full_updates, lora_directions, subspace_similarity
from .data import Dataset
from .finetuning import FULL_FINETUNE_LR, FinetuneConfig, finetune_full, finetune_lora, run_together, shared_progress
from .inits import gallery_inits, moves_base
from .intruders import LAYERS, RunIntruders, directions, of_models, of_run
from .lora import lora_enabled, lora_layers, lora_of
from .train import Evaluation, evaluate
from .variants import LayerSpectrum, residual_spectra

FINAL_LOSS_STEPS = 10


def final_loss(losses: list[float]) -> float:
    """The mean loss of the last FINAL_LOSS_STEPS steps: one batch alone is too noisy."""
    tail = losses[-FINAL_LOSS_STEPS:]
    return sum(tail) / len(tail)


@dataclass(frozen=True)
class InitCurve:
    init: str
    losses: list[float]
    update_norms: list[float]  # ‖ΔW‖_F after each step
    initial_change: float  # largest |logit change| a fresh adapter makes on the test images, before any step
    # PiSSA and OLoRA only (None otherwise): the same change of the residual base alone (the adapter off) at
    # step 0, and each layer's spectra of W, the residual and the part moved into the adapter
    residual_change: float | None = None
    spectra: list[LayerSpectrum] | None = None


def init_gallery(base: nn.Module, data: Dataset, config: FinetuneConfig, inits=None,
                 on_progress=None, should_stop=None, workers: int = 1) -> list[InitCurve]:
    """The same finetune from each initialisation (by default every one that fits the rank,
    inits.gallery_inits): same data, same steps, same seed, so the same batches."""
    inits = gallery_inits(config.rank) if inits is None else tuple(inits)
    progress = shared_progress(on_progress, len(inits) * config.steps)
    x = data.test_x[:1000]
    with torch.no_grad():
        base_logits = base(x)

    def run(init: str) -> InitCurve | None:
        start = {}  # measured before the first step: does a fresh adapter already change the outputs?

        def measure(model):
            start["change"] = _largest_change(model, x, base_logits)
            if moves_base(init):
                with lora_enabled(model, False):
                    start["residual"] = _largest_change(model, x, base_logits)
                start["spectra"] = residual_spectra(model)
        tuned = finetune_lora(base, data, replace(config, init=init), on_start=measure, should_stop=should_stop,
                              on_step=progress(init), evaluated=False)
        if len(tuned.losses) < config.steps:
            return None
        return InitCurve(init, tuned.losses, tuned.update_norms, start["change"], start.get("residual"),
                         start.get("spectra"))

    return [curve for curve in run_together(inits, run, should_stop, workers) if curve is not None]


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
    update_norms: tuple[float, ...] = ()  # ‖ΔW‖_F after each step: where the scaling rules separate
    target_wrong: int = 0  # test errors on the finetuned classes after training (held-out images)
    other_wrong: int = 0  # test errors on every other class after training
    accuracy: float = 0.0  # test accuracy after training


def scaling_sweep(base: nn.Module, data: Dataset, config: FinetuneConfig, ranks, on_progress=None,
                  should_stop=None, workers: int = 1) -> list[ScalingRow]:
    """α/r against α/√r (rsLoRA) across ranks at a fixed α."""
    plans = [(rslora, rank) for rslora in (False, True) for rank in sorted(set(ranks))]
    progress = shared_progress(on_progress, len(plans) * config.steps)

    def run(plan: tuple[bool, int]) -> ScalingRow | None:
        rslora, rank = plan
        scaling = "α/√r" if rslora else "α/r"
        tuned = finetune_lora(base, data, replace(config, rank=rank, rslora=rslora), should_stop=should_stop,
                              on_step=progress(f"{scaling}, rank {rank}"))  # evaluated: its forgetting is shown
        if len(tuned.losses) < config.steps:
            return None
        scale = config.alpha / (math.sqrt(rank) if rslora else rank)
        target = sum(tuned.after.wrong_per_class[d] for d in config.digits)
        return ScalingRow(scaling, rank, scale, tuned.update_norms[-1], final_loss(tuned.losses),
                          tuple(tuned.update_norms), target, tuned.after.wrong - target, tuned.after.accuracy)

    return [row for row in run_together(plans, run, should_stop, workers) if row is not None]


def scaling_exponent(ranks, values) -> float:
    """The exponent p of values ≈ c·rᵖ: the least-squares slope of log(value) against log(rank)."""
    xs, ys = [math.log(r) for r in ranks], [math.log(v) for v in values]
    if len(xs) < 2 or len(set(xs)) < 2:
        raise ValueError(f"need at least two different ranks, got {list(ranks)!r}")
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


@dataclass(frozen=True)
class FrontierPoint:
    rank: int
    strength: float
    target_wrong: int  # errors on the finetuned classes: what was learned
    other_wrong: int  # errors on every other class: what was forgotten
    accuracy: float


def train_frontier_adapters(base: nn.Module, data: Dataset, config: FinetuneConfig, ranks,
                            on_progress=None, should_stop=None, workers: int = 1) -> dict[int, Adapter]:
    """One adapter per rank, trained once; the frontier then moves along strengths without retraining."""
    ranks = sorted(set(ranks))
    progress = shared_progress(on_progress, len(ranks) * config.steps)

    def run(rank: int) -> Adapter | None:
        tuned = finetune_lora(base, data, replace(config, rank=rank), on_step=progress(f"rank {rank}"),
                              should_stop=should_stop, evaluated=False)
        return adapter_of(tuned.model) if len(tuned.losses) == config.steps else None

    adapters = run_together(ranks, run, should_stop, workers)
    return {rank: adapter for rank, adapter in zip(ranks, adapters, strict=True) if adapter is not None}


def frontier(base: nn.Module, data: Dataset, adapters: dict[int, Adapter], digits,
             strength: float, base_evaluation: Evaluation | None = None) -> list[FrontierPoint]:
    """Target-class errors against other-class errors, one point per rank, at one adapter strength.

    At strength 0 every blend is the base itself: `base_evaluation`, when given, is then used as is.
    """
    points = []
    for rank, adapter in adapters.items():
        if strength == 0 and base_evaluation is not None:
            evaluation = base_evaluation
        else:
            evaluation = evaluate(blend(base, [adapter], [strength]), data.test_x, data.test_y)
        target = sum(evaluation.wrong_per_class[d] for d in digits)
        points.append(FrontierPoint(rank, strength, target, evaluation.wrong - target, evaluation.accuracy))
    return points


@dataclass(frozen=True)
class OracleLayer:
    singular_values: torch.Tensor  # of the full update ΔW_full
    energy: torch.Tensor  # share of ‖ΔW_full‖_F² in its top k directions, k = 1, 2, …
    effective_rank: float
    similarity: dict[int, dict]  # LoRA rank → {"angles_deg", "similarity"} against ΔW_full's top-r directions
    out_features: int = 0  # the dimension of the output space both subspaces lie in: chance_similarity's d


@dataclass(frozen=True)
class Oracle:
    full_losses: list[float]
    full_evaluation: Evaluation
    layers: dict[str, OracleLayer]  # every target layer
    ranks: tuple[int, ...]  # the LoRA runs that finished
    intruders: tuple[RunIntruders, ...] = ()  # full finetuning's, then each finished rank's


def rank_oracle(base: nn.Module, data: Dataset, config: FinetuneConfig, ranks, on_progress=None,
                should_stop=None, full_lr: float = FULL_FINETUNE_LR, workers: int = 1) -> Oracle | None:
    """Full finetuning on the same data and steps (at its own learning rate `full_lr`: at LoRA's it
    collapses to one class), the SVD of its update, and how close LoRA comes to it; and every run's intruder
    dimensions beside what it learned and forgot (lora_core.intruders).

    None when the full finetune itself was stopped; otherwise the LoRA ranks that finished.
    """
    ranks = sorted(set(ranks))
    progress = shared_progress(on_progress, config.steps * (len(ranks) + 1))
    before = evaluate(base, data.test_x, data.test_y)
    references, lock = {}, threading.Lock()

    def seen(name: str, rank: int | None, model: nn.Module, evaluation: Evaluation) -> RunIntruders:
        with lock:  # W's directions: once, by the first run to end, while the others still train
            if not references:
                references.update({layer: directions(base.get_submodule(layer).weight.detach()) for layer in LAYERS})
        layers = of_models(base, model, references=references)
        return of_run(name, rank, layers, evaluation, before, config.digits)

    def run(rank: int | None):
        if rank is None:  # the full finetune, first: the longest run, and the one the others are compared with
            full, losses, evaluation = finetune_full(base, data, replace(config, lr=full_lr), progress("full"),
                                                     should_stop)
            finished = len(losses) == config.steps
            return (full, losses, evaluation, seen("full finetuning", None, full, evaluation)) if finished else None
        tuned = finetune_lora(base, data, replace(config, rank=rank), before, on_step=progress(f"LoRA rank {rank}"),
                              should_stop=should_stop)
        finished = len(tuned.losses) == config.steps
        return (tuned, seen(f"LoRA r={rank}", rank, tuned.model, tuned.after)) if finished else None

    reference, *runs = run_together([None, *ranks], run, should_stop, workers)
    if reference is None:
        return None
    full, losses, evaluation, full_seen = reference
    deltas = {name: delta for name, delta in full_updates(base, full).items() if name in config.targets}
    spectra = {name: torch.linalg.svd(delta, full_matrices=False) for name, delta in deltas.items()}
    similarity, finished, seen_runs = {name: {} for name in deltas}, [], [full_seen]
    for rank, done in zip(ranks, runs, strict=True):
        if done is None:
            continue
        tuned, tuned_seen = done
        finished.append(rank)
        seen_runs.append(tuned_seen)
        for name, layer in lora_layers(tuned.model).items():
            U_full = spectra[name][0][:, :rank]  # (out, r): the full update's top-r output directions
            similarity[name][rank] = subspace_similarity(lora_directions(lora_of(layer)), U_full)
    layers = {name: OracleLayer(S, energy(S), effective_rank(S), similarity[name], deltas[name].shape[0])
              for name, (_, S, _) in spectra.items()}
    return Oracle(losses, evaluation, layers, tuple(finished), tuple(seen_runs))
