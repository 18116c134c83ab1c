"""LoRA's training-time forward: W·x + (α/r)·B·(A·x), without materialising W′ = W + ΔW (lora_core.lora)."""
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .lora import lora_layers, lora_of, original_weight


def _factored_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    lora = lora_of(layer)
    W = original_weight(layer)
    if lora.enabled and lora.dora:
        # m/‖W + s·B·A‖ ⊙ (W·x + s·B·(A·x)) + b: PEFT's DoRA forward, with the same detached norm
        direction = F.linear(x, W).addmm_(F.linear(x, lora.lora_A), lora.lora_B.t(), alpha=lora.scale)
        out = direction * (lora.lora_magnitude / lora.row_norm(W))
        return out if layer.bias is None else out + layer.bias
    out = F.linear(x, W, layer.bias)  # (N, out)
    if lora.enabled:
        # += (α/r)·(x·Aᵀ)·Bᵀ in place: one (N, out) pass fewer, and F.linear's backward never reads `out`
        out.addmm_(F.linear(x, lora.lora_A), lora.lora_B.t(), alpha=lora.scale)  # (N, r) @ (r, out)
    return out


@contextmanager
def factored_forward(model: nn.Module):
    """Inside, LoRA layers compute W·x + (α/r)·B·(A·x) rather than materialising W′ = W + ΔW.

    Same outputs (up to rounding), but a training step never builds the dense W′ nor its dense
    gradient, which is what makes plain parametrize slower than PEFT. Outside, W′ is what layers see.
    """
    layers = list(lora_layers(model).values())
    for layer in layers:
        layer.forward = partial(_factored_linear, layer)  # shadows nn.Linear.forward on this instance
    try:
        yield model
    finally:
        for layer in layers:
            del layer.forward
