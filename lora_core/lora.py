"""LoRA through torch.nn.utils.parametrize: the weight a layer sees is W′ = W + (α/r)·B·A.

A starts random (kaiming-uniform, as loralib and PEFT do) and B at zero, so a fresh adapter changes
nothing yet both get gradients: dL/dB = (α/r)·g·(A·x)ᵀ is non-zero because A is. (The notebook starts
both at zero, where every gradient is zero and nothing ever learns.)
"""
import copy
import math
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .svd import check_rank

DEFAULT_TARGETS = ("linear1", "linear2", "linear3")


def _kaiming(t: torch.Tensor, generator) -> None:
    nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=generator)  # nn.Linear's own default


def _zeros(t: torch.Tensor, generator) -> None:
    nn.init.zeros_(t)


def _gaussian(t: torch.Tensor, generator) -> None:
    nn.init.normal_(t, std=1 / t.shape[0], generator=generator)  # PEFT's "gaussian": std 1/r for A (r, in)


# name → (init of A, init of B). "kaiming" is what loralib and PEFT do; "zeros" is the notebook's bug.
INITS = {
    "kaiming": (_kaiming, _zeros),
    "gaussian": (_gaussian, _zeros),
    "zeros": (_zeros, _zeros),
    "random": (_kaiming, _kaiming),
}


class LoRAParametrization(nn.Module):
    """Maps a Linear weight W (out×in) to W + s·B·A, with A (r×in), B (out×r) and s = α/r.

    With `rslora`, s = α/√r (rank-stabilised LoRA), so that the update's size does not shrink as the
    rank grows. `init` picks how A and B start (see INITS).
    """

    def __init__(self, out_features: int, in_features: int, rank: int = 1, alpha: float = 1.0,
                 generator: torch.Generator | None = None, init: str = "kaiming", rslora: bool = False):
        super().__init__()
        check_rank(rank, out_features, in_features)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < math.inf:
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; known: {', '.join(INITS)}")
        self.rank, self.alpha, self.init, self.rslora = rank, float(alpha), init, bool(rslora)
        self.scale = alpha / math.sqrt(rank) if rslora else alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, in_features))  # (r, in)
        self.lora_B = nn.Parameter(torch.empty(out_features, rank))  # (out, r)
        init_A, init_B = INITS[init]
        init_A(self.lora_A, generator)
        init_B(self.lora_B, generator)
        self.enabled = True

    def delta_weight(self) -> torch.Tensor:
        """ΔW = s·B·A, (out, in): the one place the update is computed."""
        return self.scale * (self.lora_B @ self.lora_A)

    def delta_norm(self) -> torch.Tensor:
        """‖ΔW‖_F without forming ΔW: ‖BA‖_F² = trace((BᵀB)(AAᵀ)), two r×r products."""
        gram = (self.lora_B.T @ self.lora_B) @ (self.lora_A @ self.lora_A.T)  # (r, r)
        return self.scale * gram.trace().clamp_min(0).sqrt()

    def forward(self, W: torch.Tensor) -> torch.Tensor:
        return W + self.delta_weight() if self.enabled else W

    def extra_repr(self) -> str:
        out_f, in_f = self.lora_B.shape[0], self.lora_A.shape[1]
        return (f"{out_f}×{in_f}, rank={self.rank}, alpha={self.alpha:g}, scale={self.scale:g}, "
                f"init={self.init}, enabled={self.enabled}")


def _target_layer(model: nn.Module, name: str) -> nn.Linear:
    try:
        layer = model.get_submodule(name)
    except AttributeError:
        layer = None
    if not isinstance(layer, nn.Linear):
        linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        raise ValueError(f"target {name!r} is not a Linear layer of the model; Linear layers: {linears}")
    return layer


def lora_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """The model's layers that carry a LoRA parametrization, by name."""
    return {name: m for name, m in model.named_modules()
            if parametrize.is_parametrized(m, "weight")
            and isinstance(m.parametrizations.weight[0], LoRAParametrization)}


def lora_of(layer: nn.Linear) -> LoRAParametrization:
    return layer.parametrizations.weight[0]


def add_lora(model: nn.Module, rank: int = 1, alpha: float = 1.0, targets=DEFAULT_TARGETS,
             seed: int = 0, init: str = "kaiming", rslora: bool = False) -> nn.Module:
    """Register a LoRA parametrization on each target's weight and freeze every non-LoRA parameter."""
    if lora_layers(model):
        raise ValueError("the model already has LoRA layers; merge_lora or remove_lora first")
    if isinstance(targets, str) or not targets:
        raise ValueError(f"targets must be a non-empty sequence of layer names, got {targets!r}")
    layers = {name: _target_layer(model, name) for name in targets}
    for name, layer in layers.items():  # validate everything before changing anything
        check_rank(rank, layer.out_features, layer.in_features, of=f"{name}'s")
    generator = torch.Generator().manual_seed(seed)
    for layer in layers.values():
        lora = LoRAParametrization(layer.out_features, layer.in_features, rank, alpha, generator, init, rslora)
        parametrize.register_parametrization(layer, "weight", lora.to(layer.weight.device))
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name)
    return model


def set_lora_enabled(model: nn.Module, enabled: bool) -> None:
    for layer in lora_layers(model).values():
        lora_of(layer).enabled = enabled


@contextmanager
def lora_enabled(model: nn.Module, enabled: bool):
    """Temporarily switch every adapter on or off; the previous states come back on exit."""
    previous = {name: lora_of(layer).enabled for name, layer in lora_layers(model).items()}
    set_lora_enabled(model, enabled)
    try:
        yield model
    finally:
        for name, layer in lora_layers(model).items():
            lora_of(layer).enabled = previous[name]


def merge_lora(model: nn.Module) -> nn.Module:
    """Bake W + ΔW into each weight (ΔW only where enabled) and remove the parametrizations."""
    for layer in lora_layers(model).values():
        parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
    return model


def remove_lora(model: nn.Module) -> nn.Module:
    """Remove the parametrizations and restore the original weights."""
    for layer in lora_layers(model).values():
        parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
    return model


def copy_model(model: nn.Module) -> nn.Module:
    """copy.deepcopy that is safe for parametrized models.

    torch keeps a parametrization's property on a class made for the module, and deepcopy shares that
    class: removing the parametrization from a copy would delete `weight` from the original too. Each
    parametrized module of the copy gets its own class.
    """
    clone = copy.deepcopy(model)
    for module in clone.modules():
        if parametrize.is_parametrized(module):
            cls = module.__class__
            namespace = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
            module.__class__ = type(cls.__name__, cls.__bases__, namespace)
    return clone


def original_weight(layer: nn.Linear) -> torch.Tensor:
    """The frozen W under a LoRA parametrization."""
    return layer.parametrizations.weight.original


@torch.no_grad()
def update_norm(model: nn.Module) -> float:
    """‖ΔW‖_F over every adapted layer together: √(Σ ‖ΔW_l‖_F²)."""
    return math.sqrt(sum(float(lora_of(layer).delta_norm()) ** 2 for layer in lora_layers(model).values()))


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter: the entries whose name holds `lora_`."""
    return {k: v for k, v in model.state_dict().items() if "lora_" in k}


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters of the base model, of the adapters, and those that will be trained."""
    counts = {"base": 0, "lora": 0, "trainable": 0}
    for name, param in model.named_parameters():
        counts["lora" if "lora_" in name else "base"] += param.numel()
        counts["trainable"] += param.numel() if param.requires_grad else 0
    return counts


def _factored_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    lora = lora_of(layer)
    out = F.linear(x, original_weight(layer), layer.bias)  # (N, out)
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
