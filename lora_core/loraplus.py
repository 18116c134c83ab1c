"""LoRA+ (Hayou et al. 2024): B learns `ratio` times faster than A, as PEFT's create_loraplus_optimizer.

PEFT puts every trainable parameter named lora_B, and every one-dimensional one (DoRA's magnitudes),
in the fast group; the rest (A) keeps the base learning rate. Weight decay is 0, as PEFT's default.
"""
import math

import torch
from torch import nn

from .train import make_optimizer


def check_ratio(ratio) -> None:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < math.inf:
        raise ValueError(f"the LoRA+ ratio (B's learning rate over A's) must be a positive number, got {ratio!r}")


def loraplus_groups(model: nn.Module, lr: float, ratio: float) -> list[dict]:
    """Adam's parameter groups: {A…} at lr, {B…, magnitudes} at lr·ratio (trainable parameters only)."""
    check_ratio(ratio)
    slow, fast = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (fast if "lora_B" in name or param.ndim == 1 else slow).append(param)
    return [{"params": slow, "lr": lr}, {"params": fast, "lr": lr * ratio}]


def loraplus_optimizer(ratio: float):
    """An optimizer factory for `train`: (model, lr, device) → Adam over the LoRA+ groups."""
    check_ratio(ratio)

    def make(model: nn.Module, lr: float, device: torch.device) -> torch.optim.Adam:
        return make_optimizer(loraplus_groups(model, lr, ratio), lr, device)
    return make
