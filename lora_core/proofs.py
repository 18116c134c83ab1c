"""The LoRA page's proofs: numbers measured on an adapted network that must be zero (or below a tolerance)
when the adapter is what it claims to be — its base weights untouched, off equal to the baseline, the merge
equal to the parametrization, the factored training path equal to W′ — and the helpers they use."""
import torch
from torch import nn

from .factored import factored_forward
from .lora import copy_model, lora_enabled, lora_layers, merge_lora, original_weight
from .train import logits_of


def adapter_checks(base: nn.Module, tuned: nn.Module, x: torch.Tensor, base_logits=None,
                   merged_logits=None) -> dict[str, float]:
    """The proofs the LoRA page shows, each a number computed here and compared against zero.

    - weights_changed: largest |W_tuned,original − W_base| over the adapted layers (0 = untouched)
    - off_vs_base: largest |logits with the adapter off − base logits|
    - merged_vs_parametrized: largest |logits of a merged copy − logits through the parametrization|
    - factored_vs_parametrized: largest |logits through the factored training path W·x + s·B·(A·x) −
      logits through W′ = W + s·B·A|, relative to the largest |logit| (FACTORED_TOLERANCE)

    The base's and a merged copy's outputs on `x`, when already computed, can be passed in; the tuned
    model's, with the adapter off and on, are always computed here through its parametrization (evaluations
    score a merged copy, which would make the merge's proof compare the merge with itself).
    """
    base_layers = dict(base.named_modules())
    with torch.inference_mode():
        weights_changed = max(float((original_weight(layer) - base_layers[name].weight).abs().max())
                              for name, layer in lora_layers(tuned).items())
    if base_logits is None:
        base_logits = logits_of(base, x)
    with lora_enabled(tuned, False):
        off_logits = logits_of(tuned, x, own_forward=True)
    on_logits = logits_of(tuned, x, own_forward=True)
    if merged_logits is None:
        merged_logits = logits_of(merged_copy(tuned), x)
    with factored_forward(tuned):
        factored_logits = logits_of(tuned, x)
    return {"weights_changed": weights_changed,
            "off_vs_base": float((off_logits - base_logits).abs().max()),
            "merged_vs_parametrized": float((merged_logits - on_logits).abs().max()),
            "factored_vs_parametrized": float((factored_logits - on_logits).abs().max() / on_logits.abs().max())}


@torch.no_grad()
def start_checks(model: nn.Module, x: torch.Tensor, base_logits: torch.Tensor) -> dict[str, float]:
    """The step-0 proofs of an init that moved W's principal part into the adapter (PiSSA, OLoRA), measured
    on a fresh adapted copy before any step, relative to the largest |base logit|:

    - start_vs_base: the adapted network, W_res + s·B₀·A₀, against the baseline (0 up to rounding)
    - residual_vs_base: the residual base W_res alone (the adapter off) against the baseline (far from 0)
    """
    largest = base_logits.abs().max()
    with lora_enabled(model, False):
        residual = logits_of(model, x, own_forward=True)
    return {"start_vs_base": float((logits_of(model, x, own_forward=True) - base_logits).abs().max() / largest),
            "residual_vs_base": float((residual - base_logits).abs().max() / largest)}


# W_res + s·B₀·A₀ rounds W's own numbers once more in float32 (ε ≈ 1.2e-7 per weight): relative to the
# largest logit the outputs stay well below this (PEFT's own conversion is checked to the same bound)
START_TOLERANCE = 1e-5


# The two forwards sum the same products in a different order: float32 rounding (ε ≈ 1.2e-7) accumulated
# over 784 + 1000 + 2000 terms, relative to the largest logit, stays well below this.
FACTORED_TOLERANCE = 1e-5


@torch.no_grad()
def same_network(a: nn.Module, b: nn.Module) -> bool:
    """Whether two networks of one architecture use the same weights and biases, bit for bit (a LoRA
    parametrization applied): then their forwards give the same outputs on every input."""
    def used(model):
        return [(m.weight, m.bias) for m in model.modules() if isinstance(m, nn.Linear)]
    pairs = list(zip(used(a), used(b), strict=True))
    return all(torch.equal(wa, wb) and torch.equal(ba, bb) for (wa, ba), (wb, bb) in pairs)


@torch.no_grad()
def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` with W + ΔW baked into its weights."""
    return merge_lora(copy_model(model)).eval()
