"""Merging an adapter into its weights in lower precision: the rounding error and the predictions it flips."""
import torch
from torch import nn

from .lora import copy_model, lora_layers, lora_of, original_weight, remove_lora
from .train import logits_of

MERGE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@torch.no_grad()  # not inference_mode: removing a parametrization needs ordinary tensors
def merge_precision(model: nn.Module, x: torch.Tensor, dtypes=MERGE_DTYPES, reference=None) -> list[dict]:
    """Merge W + ΔW in each dtype: the largest error against the float64 sum, and predictions that flip.

    Every weight and bias is stored in the dtype (the merge adds in it); the forward runs in float32,
    so what differs is the stored precision alone. Flips count against the parametrized float32 model's
    predictions: `reference` when they were computed already.
    """
    model.eval()
    reference_predictions = logits_of(model, x).argmax(dim=1) if reference is None else reference
    layers = lora_layers(model)
    parts = {name: (original_weight(layer), lora_of(layer).update(original_weight(layer)))
             for name, layer in layers.items()}
    rows = []
    for dtype in dtypes:
        merged = remove_lora(copy_model(model))
        errors = []
        for name, (W, delta) in parts.items():
            low = W.to(dtype) + delta.to(dtype)  # the merge, done in the low precision
            merged.get_submodule(name).weight.copy_(low)
            errors.append((low.double() - (W.double() + delta.double())).abs().max())
        error = float(torch.stack(errors).max())  # torch's max keeps a NaN, where max(0, nan) would give 0
        for param in merged.parameters():
            param.copy_(param.to(dtype))  # stored in dtype, computed in float32
        flipped = int((logits_of(merged, x).argmax(dim=1) != reference_predictions).sum())
        rows.append({"dtype": str(dtype).removeprefix("torch."), "max_abs_error": error, "flipped": flipped})
    return rows
