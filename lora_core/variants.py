"""What a page shows of PEFT's variants: the spectrum PiSSA/OLoRA leave in the base, and learning curves
of a variant beside plain LoRA on the same data, steps and batches."""
from dataclasses import dataclass, replace

import torch
from torch import nn

from .data import Dataset
from .finetuning import FinetuneConfig, finetune_lora, run_together
from .lora import lora_layers, lora_of, moved_part, original_weight
from .svd import singular_values


@dataclass(frozen=True)
class LayerSpectrum:
    layer: str
    base: torch.Tensor  # singular values of the weight the base model had, W_base = W_res + s·B₀·A₀
    residual: torch.Tensor  # of W_res, what the base keeps: for PiSSA, W_base's minus its r largest
    moved: torch.Tensor  # of s·B₀·A₀, the part moved into the adapter (r values)


@torch.no_grad()
def residual_spectra(model: nn.Module) -> list[LayerSpectrum]:
    """Per layer whose init moved part of W into the adapter (PiSSA, OLoRA): the three spectra, on the CPU.

    ValueError when no layer's init did (plain inits leave the base weight as it was)."""
    spectra = []
    for name, layer in lora_layers(model).items():
        lora = lora_of(layer)
        moved = moved_part(lora)
        if moved is None:
            continue
        W = original_weight(layer).detach().cpu().float()
        part = lora.scale * (moved[1] @ moved[0])
        spectra.append(LayerSpectrum(name, singular_values(W + part), singular_values(W),
                                     singular_values(part)[:lora.rank]))
    if not spectra:
        raise ValueError("no layer's init moved part of its weight into the adapter: choose pissa or olora")
    return spectra


@dataclass(frozen=True)
class Curve:
    label: str
    config: FinetuneConfig
    losses: tuple[float, ...]  # the training loss of every step
    update_norms: tuple[float, ...]  # ‖W′ − W_base‖_F over all layers after each step
    accuracy: float | None  # on the test images after training (None when not evaluated)
    target_wrong: int | None  # test errors on the finetuned digits
    other_wrong: int | None  # test errors on every other digit


def learning_curves(base: nn.Module, data: Dataset, config: FinetuneConfig, variants: dict[str, dict],
                    should_stop=None, workers: int = 1, evaluated: bool = True) -> list[Curve]:
    """Plain LoRA (`config` as given, labelled "plain LoRA") and each variant — `config` with the fields in
    `variants[label]` replaced, e.g. {"PiSSA": {"init": "pissa"}, "DoRA": {"dora": True}} — trained on the
    same digits, steps, seed and so the same batches. Runs cut short by `should_stop` are left out."""
    plans = [("plain LoRA", config)] + [(label, replace(config, **fields)) for label, fields in variants.items()]

    def run(plan) -> Curve | None:
        label, cfg = plan
        tuned = finetune_lora(base, data, cfg, should_stop=should_stop, evaluated=evaluated)
        if len(tuned.losses) < cfg.steps:
            return None
        after = tuned.after
        target = None if after is None else sum(after.wrong_per_class[d] for d in cfg.digits)
        return Curve(label, cfg, tuple(tuned.losses), tuple(tuned.update_norms),
                     None if after is None else after.accuracy, target,
                     None if after is None else after.wrong - target)

    return [curve for curve in run_together(plans, run, should_stop, workers) if curve is not None]
