"""LoRA through torch.nn.utils.parametrize: the weight a layer sees is W′ = W + (α/r)·B·A.

A starts random (kaiming-uniform, as loralib and PEFT do) and B at zero, so a fresh adapter changes
nothing yet both get gradients: dL/dB = (α/r)·g·(A·x)ᵀ is non-zero because A is. (The notebook starts
both at zero, where every gradient is zero and nothing ever learns.) PEFT's other inits (lora_core.inits)
and DoRA are options of the same parametrization.
"""
import copy
import math
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.utils import parametrize

from .inits import BASE_INITS, RANDOM_INITS, base_init, check_init, moves_base, random_init
from .parallel import one_thread
from .svd import check_rank

DEFAULT_TARGETS = ("linear1", "linear2", "linear3")
INIT_CHOICES = (*RANDOM_INITS, *BASE_INITS)  # and "pissa_niter_K": inits.check_init


class LoRAParametrization(nn.Module):
    """Maps a Linear weight W (out×in) to W + s·B·A, with A (r×in), B (out×r) and s = α/r.

    With `rslora`, s = α/√r (rank-stabilised LoRA), so that the update's size does not shrink as the
    rank grows. `init` picks how A and B start among inits.RANDOM_INITS; the inits that factor W itself
    (PiSSA, OLoRA) are set by `add_lora`, which owns the weight.

    With `dora` (DoRA, as PEFT's use_dora), W′ = m ⊙ (W + s·B·A) / ‖W + s·B·A‖, the norm of each output
    neuron's row (PEFT's dim=1) and detached from the gradient as in the DoRA paper §4.3: a trained
    magnitude m per output neuron, and B·A free to turn the rows' directions.
    """

    def __init__(self, out_features: int, in_features: int, rank: int = 1, alpha: float = 1.0,
                 generator: torch.Generator | None = None, init: str = "kaiming", rslora: bool = False,
                 dora: bool = False):
        super().__init__()
        check_rank(rank, out_features, in_features)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < math.inf:
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        if init not in RANDOM_INITS:
            raise ValueError(f"unknown init {init!r} for a parametrization; known: {', '.join(RANDOM_INITS)}")
        check_init(init, rank)
        self.rank, self.alpha, self.init, self.rslora, self.dora = rank, float(alpha), init, bool(rslora), bool(dora)
        self.scale = alpha / math.sqrt(rank) if rslora else alpha / rank
        A, B = random_init(init, out_features, in_features, rank, generator)
        self.lora_A = nn.Parameter(A)  # (r, in)
        self.lora_B = nn.Parameter(B)  # (out, r)
        # m, set from the weight by `init_magnitude` (add_lora does): ones until then
        self.lora_magnitude = nn.Parameter(torch.ones(out_features)) if dora else None  # (out,)
        self.enabled = True

    def delta_weight(self) -> torch.Tensor:
        """ΔW = s·B·A, (out, in): the one place the low-rank update is computed (DoRA's direction update)."""
        return self.scale * (self.lora_B @ self.lora_A)

    def delta_norm(self) -> torch.Tensor:
        """‖s·B·A‖_F without forming it: ‖BA‖_F² = trace((BᵀB)(AAᵀ)), two r×r products."""
        gram = (self.lora_B.T @ self.lora_B) @ (self.lora_A @ self.lora_A.T)  # (r, r)
        return self.scale * gram.trace().clamp_min(0).sqrt()

    def row_terms(self, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per output row i: ‖W_i‖², ⟨W_i, (B·A)_i⟩ and ‖(B·A)_i‖², each (out,), from the r-wide products
        W·Aᵀ and A·Aᵀ: B·A (out×in) is never formed."""
        A, B = self.lora_A, self.lora_B
        return self._weight_rows(W), (B * (W @ A.T)).sum(1), ((B @ (A @ A.T)) * B).sum(1)

    def _weight_rows(self, W: torch.Tensor) -> torch.Tensor:
        """‖W_i‖² per row, kept while W is the same tensor unchanged: the base weight is frozen, and reading
        all of it every step would be most of DoRA's extra cost."""
        cached = getattr(self, "_weight_rows_of", None)  # (W, its version, ‖W_i‖²)
        if cached is None or cached[0] is not W or cached[1] != W._version:
            cached = self._weight_rows_of = (W, W._version, torch.linalg.vector_norm(W.detach(), dim=1) ** 2)
        return cached[2]

    def row_norm(self, W: torch.Tensor, terms=None) -> torch.Tensor:
        """‖W + s·B·A‖ of each output neuron's row, (out,), detached: DoRA's denominator."""
        with torch.no_grad():
            weight, cross, low = self.row_terms(W) if terms is None else terms
            return (weight + 2 * self.scale * cross + self.scale ** 2 * low).clamp_min(0).sqrt()

    @torch.no_grad()
    def init_magnitude(self, W: torch.Tensor) -> None:
        """m = ‖W + s·B·A‖ per row, as PEFT starts DoRA: at step 0, W′ = W + s·B·A."""
        self.lora_magnitude.copy_(self.row_norm(W))

    def forward(self, W: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return W
        if self.dora:
            return (self.lora_magnitude / self.row_norm(W)).unsqueeze(1) * (W + self.delta_weight())
        return W + self.delta_weight()

    def update(self, W: torch.Tensor) -> torch.Tensor:
        """What the parametrization adds to the W it is given: s·B·A, or with DoRA W′ − W (depends on W)."""
        return self.forward(W) - W if self.dora else self.delta_weight()

    def extra_repr(self) -> str:
        out_f, in_f = self.lora_B.shape[0], self.lora_A.shape[1]
        dora = ", dora" if self.dora else ""
        return (f"{out_f}×{in_f}, rank={self.rank}, alpha={self.alpha:g}, scale={self.scale:g}, "
                f"init={self.init}{dora}, enabled={self.enabled}")


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
             seed: int = 0, init: str = "kaiming", rslora: bool = False, dora: bool = False) -> nn.Module:
    """Register a LoRA parametrization on each target's weight and freeze every non-LoRA parameter.

    With PiSSA or OLoRA (inits.BASE_INITS, pissa_niter_K) the targets' weights become the residuals
    W − s·B₀·A₀, in place; each parametrization keeps B₀ and A₀ (`moved_part`) to say what was moved.
    """
    if lora_layers(model):
        raise ValueError("the model already has LoRA layers; merge_lora or remove_lora first")
    if isinstance(targets, str) or not targets:
        raise ValueError(f"targets must be a non-empty sequence of layer names, got {targets!r}")
    check_init(init, rank)
    layers = {name: _target_layer(model, name) for name in targets}
    for name, layer in layers.items():  # validate everything before changing anything
        check_rank(rank, layer.out_features, layer.in_features, of=f"{name}'s")
    generator = torch.Generator().manual_seed(seed)
    for layer in layers.values():
        lora = LoRAParametrization(layer.out_features, layer.in_features, rank, alpha, generator,
                                   "zeros" if moves_base(init) else init, rslora, dora)
        if moves_base(init):
            _move_principal_part(layer, lora, init, generator)
        if dora:
            lora.init_magnitude(layer.weight.detach().cpu())
        parametrize.register_parametrization(layer, "weight", lora.to(layer.weight.device))
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name)
    return model


@torch.no_grad()
def _move_principal_part(layer: nn.Linear, lora: LoRAParametrization, init: str, generator) -> None:
    """PEFT's pissa_init / olora_init: A, B ← (A₀, B₀) and W ← W − (s·B₀)·A₀, in W's dtype."""
    W = layer.weight
    with one_thread():  # as training runs: the same numbers on any server, and 5-15× faster than a
        A0, B0 = base_init(init, W, lora.rank, lora.scale, generator)  # shared machine's threads fighting
    W.copy_((W.float() - (lora.scale * B0) @ A0).to(W.dtype))  # PEFT's order of operations, for equal bits
    lora.lora_A.copy_(A0)
    lora.lora_B.copy_(B0)
    lora.init = init
    lora.register_buffer("moved_A", A0.detach().cpu().clone(), persistent=False)
    lora.register_buffer("moved_B", B0.detach().cpu().clone(), persistent=False)


def moved_part(lora: LoRAParametrization) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(A₀, B₀) that PiSSA/OLoRA moved out of the base weight (W_base = W_residual + s·B₀·A₀), else None."""
    return (lora.moved_A, lora.moved_B) if hasattr(lora, "moved_A") else None


def base_relative_factors(lora: LoRAParametrization) -> tuple[torch.Tensor, torch.Tensor]:
    """(A′, B′) with s·B′·A′ = what the adapter adds to the weight the base model had: (A, B), or after
    PiSSA/OLoRA PEFT's conversion A′ = [A; A₀], B′ = [B | −B₀], since W_res + s·B·A = W + s·(B·A − B₀·A₀)."""
    moved = moved_part(lora)
    if moved is None:
        return lora.lora_A, lora.lora_B
    A0, B0 = moved
    return torch.cat([lora.lora_A, A0.to(lora.lora_A)]), torch.cat([lora.lora_B, -B0.to(lora.lora_B)], dim=1)


def layer_update(layer: nn.Linear) -> torch.Tensor:
    """W′ − W_base of one adapted layer, (out, in): against the weight the base model had before any init
    moved part of it (PiSSA, OLoRA), and with DoRA's rescaling included."""
    lora = lora_of(layer)
    W = original_weight(layer)
    if lora.enabled and not lora.dora:
        A, B = base_relative_factors(lora)
        return lora.scale * (B @ A)
    return lora(W) - W - _moved_weight(lora, W)  # lora(W) is W when the adapter is off


def _moved_weight(lora: LoRAParametrization, W: torch.Tensor) -> torch.Tensor | float:
    moved = moved_part(lora)
    return 0.0 if moved is None else lora.scale * (moved[1].to(W) @ moved[0].to(W))


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
    """‖W′ − W_base‖_F over every adapted layer together: √(Σ ‖ΔW_l‖_F²) (see layer_update)."""
    return math.sqrt(sum(_update_norm(layer) ** 2 for layer in lora_layers(model).values()))


def _update_norm(layer: nn.Linear) -> float:
    lora = lora_of(layer)
    if lora.dora and lora.enabled and moved_part(lora) is None:
        # row i of W′ − W is (c−1)·W_i + c·s·(B·A)_i with c = m/n: its norm from the same three row terms
        weight, cross, low = terms = lora.row_terms(original_weight(layer))
        c = lora.lora_magnitude / lora.row_norm(original_weight(layer), terms)
        rows = (c - 1) ** 2 * weight + 2 * (c - 1) * c * lora.scale * cross + (c * lora.scale) ** 2 * low
        return float(rows.sum().clamp_min(0).sqrt())
    if lora.dora or not lora.enabled:
        return float(torch.linalg.norm(layer_update(layer)))
    A, B = base_relative_factors(lora)  # ‖BA‖_F² = trace((BᵀB)(AAᵀ)): r×r products, no dense ΔW
    return lora.scale * float(((B.T @ B) @ (A @ A.T)).trace().clamp_min(0).sqrt())


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
