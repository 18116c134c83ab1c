"""The adapter as an object: read off a model, checked against one, attached, and blended with others.

An `Adapter` is the trained part alone — per layer A (r×in) and B (out×r), with r and α, and DoRA's
magnitudes — detached from any model, so that it can be saved, checked against a model before anything
changes, and combined. It always applies to the base model's own weights: an adapter whose init moved part
of W into it (PiSSA, OLoRA) is converted as PEFT's `path_initial_model_for_weight_conversion` does.
Its files: adapter_files (LoRA Lab's safetensors), peft_files (PEFT's), adapter_zips (the browser's).
"""
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from .lora import (
    LoRAParametrization,
    add_lora,
    base_relative_factors,
    copy_model,
    lora_layers,
    lora_of,
    merge_lora,
    moved_part,
)

MAX_STRENGTH = 1.5
SHOWN_CHARS = 60  # a value from a file is quoted in a message up to this length


class AdapterError(ValueError):
    """An adapter that cannot be read, or does not fit the model it is meant for."""


@dataclass(frozen=True, eq=False)
class Adapter:
    rank: int
    alpha: float
    weights: dict[str, tuple[torch.Tensor, torch.Tensor]]  # layer → (A (r, in), B (out, r))
    rslora: bool = False  # ΔW scaled by α/√r rather than α/r
    magnitudes: dict[str, torch.Tensor] | None = None  # DoRA: layer → m (out,); None for plain LoRA

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def __repr__(self) -> str:
        rslora = ", rslora" if self.rslora else ""
        dora = ", dora" if self.magnitudes is not None else ""
        return f"Adapter(rank={self.rank}, alpha={self.alpha:g}{rslora}{dora}, targets={self.targets})"


def shown(value) -> str:
    """A value read from a file, quoted for a message and cut short: a file may hold megabytes of it."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 1] + "…"


def adapter_of(model: nn.Module) -> Adapter:
    """The model's adapter, copied to the CPU, for the base model's own weights.

    After PiSSA or OLoRA the layers hold W_res = W − s·B₀·A₀, so the adapter becomes PEFT's conversion
    A′ = [A; A₀], B′ = [B | −B₀] at rank 2r, with α doubled (×√2 with rsLoRA) to keep s: on W it computes
    W + s·(B·A − B₀·A₀) = W_res + s·B·A, the trained network. DoRA's norms see that same sum, so m carries over.
    """
    layers = lora_layers(model)
    if not layers:
        raise AdapterError("the model has no LoRA adapter")
    first = lora_of(next(iter(layers.values())))
    weights = {name: tuple(t.detach().cpu().clone() for t in base_relative_factors(lora_of(layer)))
               for name, layer in layers.items()}
    rank, alpha = first.rank, first.alpha
    if moved_part(first) is not None:
        rank, alpha = 2 * rank, alpha * (2 ** 0.5 if first.rslora else 2)
    magnitudes = ({name: lora_of(layer).lora_magnitude.detach().cpu().clone() for name, layer in layers.items()}
                  if first.dora else None)
    return Adapter(rank, alpha, weights, first.rslora, magnitudes)


def check_fits(model: nn.Module, adapter: Adapter) -> None:
    """Raise AdapterError unless every tensor is finite and shaped for the model's layer."""
    if not isinstance(adapter.rank, int) or adapter.rank < 1:
        raise AdapterError(f"rank must be a positive integer, got {adapter.rank!r}")
    if not (isinstance(adapter.alpha, (int, float)) and 0 < adapter.alpha < math.inf):
        raise AdapterError(f"alpha must be a positive number, got {adapter.alpha!r}")
    if not adapter.weights:
        raise AdapterError("the adapter holds no layers")
    modules = dict(model.named_modules())
    for name, (A, B) in adapter.weights.items():
        layer = modules.get(name)
        if not isinstance(layer, nn.Linear):
            raise AdapterError(f"the adapter targets {shown(name)}, which is not a Linear layer of this model")
        out_f, in_f = layer.out_features, layer.in_features
        if tuple(A.shape) != (adapter.rank, in_f) or tuple(B.shape) != (out_f, adapter.rank):
            raise AdapterError(
                f"{name}: the adapter has A {tuple(A.shape)} and B {tuple(B.shape)}, but this model needs "
                f"A ({adapter.rank}, {in_f}) and B ({out_f}, {adapter.rank}) at rank {adapter.rank}")
        for label, tensor in (("A", A), ("B", B)):
            if not torch.isfinite(tensor).all():
                raise AdapterError(f"{name}: {label} holds NaN or infinite values")
        _check_magnitude(adapter, name, out_f)
        lora = LoRAParametrization(out_f, in_f, adapter.rank, adapter.alpha, rslora=adapter.rslora)
        with torch.no_grad():
            lora.lora_A.copy_(A)
            lora.lora_B.copy_(B)
            if not torch.isfinite(lora.delta_weight()).all():  # finite A and B, but α·B·A overflows
                raise AdapterError(f"{name}: the update ΔW = (α/r)·B·A is too large to compute (α = "
                                   f"{adapter.alpha:g}): it holds infinite or NaN values")


def _check_magnitude(adapter: Adapter, name: str, out_features: int) -> None:
    if adapter.magnitudes is None:
        return
    m = adapter.magnitudes.get(name)
    if m is None:
        raise AdapterError(f"{name}: the DoRA adapter has no magnitude vector for this layer")
    if tuple(m.shape) != (out_features,):
        raise AdapterError(f"{name}: the DoRA magnitude has shape {tuple(m.shape)}, but this layer needs "
                           f"({out_features},): one per output neuron")
    if not torch.isfinite(m).all():
        raise AdapterError(f"{name}: the DoRA magnitude holds NaN or infinite values")


@torch.no_grad()
def check_outputs(model: nn.Module, x: torch.Tensor) -> None:
    """Raise AdapterError unless the model carrying an adapter gives finite outputs on the probe batch `x`."""
    if not torch.isfinite(model(x)).all():
        raise AdapterError("with this adapter the network's outputs on test images are infinite or NaN: "
                           "its update is far too large for these weights")


def attach(model: nn.Module, adapter: Adapter) -> nn.Module:
    """Add LoRA to `model` (which must have none) carrying exactly `adapter`'s weights."""
    check_fits(model, adapter)  # before anything on the model changes
    add_lora(model, adapter.rank, adapter.alpha, adapter.targets, rslora=adapter.rslora,
             dora=adapter.magnitudes is not None)
    with torch.no_grad():
        for name, (A, B) in adapter.weights.items():
            lora = lora_of(model.get_submodule(name))
            lora.lora_A.copy_(A)
            lora.lora_B.copy_(B)
            if adapter.magnitudes is not None:
                lora.lora_magnitude.copy_(adapter.magnitudes[name])
    return model


# --- several adapters on one base ------------------------------------------------------------------

def blend(base: nn.Module, adapters: list[Adapter], strengths: list[float]) -> nn.Module:
    """A merged copy of `base` with W + Σ sᵢ·ΔWᵢ: switching and blending need no retraining.

    Each plain adapter becomes one LoRA parametrization, chained on the same weight, so ΔWᵢ = (αᵢ/rᵢ)·Bᵢ·Aᵢ
    is computed by the same `delta_weight` as everywhere else; the strength scales it. A DoRA adapter's
    ΔWᵢ = W′ᵢ − W depends on W: it is taken on the base's own weight, then scaled and added the same way.
    """
    if len(adapters) != len(strengths):
        raise ValueError(f"{len(adapters)} adapters but {len(strengths)} strengths")
    for s in strengths:
        if not 0 <= s <= MAX_STRENGTH:
            raise ValueError(f"strength must be in 0..{MAX_STRENGTH}, got {s!r}")
    model = copy_model(base)
    dora_updates = []  # (layer, sᵢ·(W′ᵢ − W)), added once the plain ones are merged
    for adapter, strength in zip(adapters, strengths, strict=True):
        check_fits(model, adapter)
        if strength == 0:
            continue
        for name in adapter.targets:
            layer = model.get_submodule(name)
            lora = _parametrization(layer, adapter, name)
            if lora.dora:
                with torch.no_grad():
                    dora_updates.append((name, strength * lora.to(layer.weight.device).update(layer.weight)))
                continue
            lora.scale *= strength
            parametrize.register_parametrization(layer, "weight", lora.to(layer.weight.device))
    merged = merge_lora(model)
    with torch.no_grad():
        for name, update in dora_updates:
            merged.get_submodule(name).weight.add_(update)
    return merged


def _parametrization(layer: nn.Linear, adapter: Adapter, name: str) -> LoRAParametrization:
    """A parametrization carrying `adapter`'s tensors for `layer` (on the CPU)."""
    lora = LoRAParametrization(layer.out_features, layer.in_features, adapter.rank, adapter.alpha,
                               rslora=adapter.rslora, dora=adapter.magnitudes is not None)
    A, B = adapter.weights[name]
    with torch.no_grad():
        lora.lora_A.copy_(A)
        lora.lora_B.copy_(B)
        if lora.dora:
            lora.lora_magnitude.copy_(adapter.magnitudes[name])
    return lora
