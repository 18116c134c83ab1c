"""Adapter arithmetic: several adapters combined into one, by each of PEFT's `add_weighted_adapter` methods.

Computed here with torch, step for step as PEFT 0.21.2 does it, so that the combined ΔW equals PEFT's,
and with what PEFT leaves unsaid made visible: every layer reports how far its combined ΔW = B′·A′ is
from the weighted sum Σ wᵢ·ΔWᵢ that a user usually means.

- `linear`, `ties`, `dare_linear`, `dare_ties`, `magnitude_prune` combine the A's and the B's separately
  (each weighted by ±√|wᵢ·sᵢ|), so B′·A′ holds cross terms Bᵢ·Aⱼ: only an approximation of the sum.
- `cat` stacks the factors: exact, and its rank is the sum of the ranks.
- `svd` and the `*_svd` methods combine the ΔWᵢ themselves and keep the top `svd_rank` singular
  directions: `svd` is exact once `svd_rank` reaches the rank of the sum.
The combined adapter carries its scaling in its factors (α = r′, scale 1).
"""
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .adapters import Adapter, attach
from .lora import copy_model
from .svd import _rank_from_singular_values
from .train import Evaluation, evaluate
from .train import wrong_on as wrong_count

FACTOR_METHODS = ("linear", "ties", "dare_linear", "dare_ties", "magnitude_prune")  # A and B apart
SVD_METHODS = ("svd", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd")
METHODS = ("cat", *FACTOR_METHODS, *SVD_METHODS)
SIGN_METHODS = ("total", "frequency")


def _merge_rule(method: str) -> str:
    """The rule that merges tensors: the method without its `_svd`; `svd` itself is plain arithmetic."""
    return "linear" if method == "svd" else method.removesuffix("_svd")


def uses_density(method: str) -> bool:
    return _merge_rule(method) in ("ties", "dare_linear", "dare_ties", "magnitude_prune")


def uses_sign_election(method: str) -> bool:
    return _merge_rule(method) in ("ties", "dare_ties")


@dataclass(frozen=True)
class CombineConfig:
    """How to combine: one weight per adapter (negative subtracts), and the method's own settings.

    `density` (the fraction of entries kept, 0 < density ≤ 1) is needed by the pruning methods only;
    `svd_rank` (default: the largest rank) by the svd methods only; `seed` draws DARE's random masks.
    """
    method: str
    weights: tuple[float, ...]
    density: float | None = None
    majority_sign_method: str = "total"
    svd_rank: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown combination method {self.method!r}; known: {', '.join(METHODS)}")
        object.__setattr__(self, "weights", tuple(self.weights))
        for weight in self.weights:
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise ValueError(f"each weight must be a finite number, got {weight!r}")
        if uses_density(self.method):
            density = self.density
            if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 < density <= 1:
                raise ValueError(f"{self.method} keeps a fraction of each tensor's entries: density must be a "
                                 f"number in (0, 1], got {density!r}")
        if self.majority_sign_method not in SIGN_METHODS:
            raise ValueError(f"majority_sign_method must be one of {', '.join(SIGN_METHODS)}, "
                             f"got {self.majority_sign_method!r}")
        if self.svd_rank is not None and (isinstance(self.svd_rank, bool) or not isinstance(self.svd_rank, int)
                                          or self.svd_rank < 1):
            raise ValueError(f"svd_rank must be a whole number of at least 1, got {self.svd_rank!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")


@dataclass(frozen=True, eq=False)
class LayerCombination:
    A: torch.Tensor  # (r′, in)
    B: torch.Tensor  # (out, r′)
    relative_error: float  # ‖B′A′ − Σ wᵢΔWᵢ‖_F / ‖Σ wᵢΔWᵢ‖_F
    sum_rank: int  # numerical rank of Σ wᵢΔWᵢ: what svd_rank must reach for `svd` to be exact

    @property
    def rank(self) -> int:
        return self.A.shape[0]

    @property
    def parameters(self) -> int:
        return self.A.numel() + self.B.numel()


@dataclass(frozen=True, eq=False)
class Combination:
    config: CombineConfig
    adapter: Adapter  # rank r′, α = r′, rsLoRA off: ΔW = B′·A′
    layers: dict[str, LayerCombination]
    notes: tuple[str, ...] = field(default=())  # what PEFT would do differently, in words

    @property
    def parameters(self) -> int:
        return sum(layer.parameters for layer in self.layers.values())


# --- the merge rules, as PEFT's merge_utils applies them ---------------------------------------------

def _keep_largest(tensor: torch.Tensor, density: float) -> torch.Tensor:
    """Zero all but the int(density·n) entries largest in magnitude."""
    mask = torch.zeros_like(tensor).reshape(-1)
    mask[torch.topk(tensor.abs().reshape(-1), k=int(density * tensor.numel())).indices] = 1
    return tensor * mask.reshape(tensor.shape)


def _drop_randomly(tensor: torch.Tensor, density: float, generator: torch.Generator) -> torch.Tensor:
    """DARE: keep each entry with probability `density`, and divide by it so the expectation stays."""
    mask = torch.bernoulli(torch.full_like(tensor, density), generator=generator)
    return tensor * mask / density


def _pruned(tensor: torch.Tensor, rule: str, density: float, generator: torch.Generator) -> torch.Tensor:
    if rule == "linear" or density >= 1:  # density 1 keeps everything and draws no mask
        return tensor
    return _drop_randomly(tensor, density, generator) if rule.startswith("dare") else _keep_largest(tensor, density)


def _merge(tensors: list[torch.Tensor], weights: list[float], config: CombineConfig,
           generator: torch.Generator) -> torch.Tensor:
    """Σ wᵢ·prune(tᵢ), or with sign election (TIES) the mean of the weighted entries agreeing in sign."""
    rule = _merge_rule(config.method)
    stacked = torch.stack([_pruned(t, rule, config.density, generator) for t in tensors])
    weighted = stacked * torch.tensor(weights).view(-1, *[1] * tensors[0].dim())
    if not uses_sign_election(config.method):
        return weighted.sum(dim=0)
    signs = stacked.sign()  # elected on the unweighted entries, as PEFT does
    votes = stacked.sum(dim=0) if config.majority_sign_method == "total" else signs.sum(dim=0)
    agree = signs == torch.where(votes >= 0, 1, -1)
    return (weighted * agree).sum(dim=0) / agree.sum(dim=0).clamp(min=1.0)


# --- combining adapters ------------------------------------------------------------------------------

def _scale(adapter: Adapter) -> float:
    return adapter.alpha / math.sqrt(adapter.rank) if adapter.rslora else adapter.alpha / adapter.rank


def _check_compatible(adapters: list[Adapter], config: CombineConfig) -> dict[str, tuple[int, int]]:
    """Every layer's (out, in); ValueError where PEFT refuses, or where the result could not be used."""
    if len(adapters) < 2:
        raise ValueError(f"choose at least two adapters to combine, got {len(adapters)}")
    if len(config.weights) != len(adapters):
        raise ValueError(f"{len(adapters)} adapters but {len(config.weights)} weights: give one weight each")
    ranks = [adapter.rank for adapter in adapters]
    if config.method in FACTOR_METHODS and len(set(ranks)) > 1:
        raise ValueError(f"{config.method} adds the A's and the B's entry by entry, so it needs adapters of one "
                         f"rank (these have ranks {', '.join(map(str, ranks))}); PEFT refuses this too. "
                         "cat and the svd methods accept different ranks")
    shapes: dict[str, tuple[int, int]] = {}
    for number, adapter in enumerate(adapters, 1):
        for name, (A, B) in adapter.weights.items():
            shape = shapes.setdefault(name, (B.shape[0], A.shape[1]))
            if shape != (B.shape[0], A.shape[1]):
                raise ValueError(f"adapter {number}'s {name} is {B.shape[0]}×{A.shape[1]} but an earlier adapter's "
                                 f"is {shape[0]}×{shape[1]}: these adapters belong to different networks")
    _check_rank_fits(combined_rank(adapters, config), config.method, shapes)
    return shapes


def _check_rank_fits(rank: int, method: str, shapes: dict[str, tuple[int, int]]) -> None:
    for name, (out_f, in_f) in shapes.items():
        most = min(out_f, in_f)
        if rank <= most:
            continue
        if method == "cat":  # PEFT builds it; a LoRA Lab adapter holds at most rank min(out, in) per layer
            raise ValueError(f"cat's rank is the sum of the ranks, {rank}, but {name} ({out_f}×{in_f}) holds an "
                             f"adapter of rank at most {most}. Use an svd method with svd_rank ≤ {most}: exact "
                             f"on {name}, whose update cannot have a higher rank")
        raise ValueError(f"svd_rank {rank}, but {name} ({out_f}×{in_f}) has rank at most {most}: choose "
                         f"svd_rank ≤ {most} (PEFT accepts a larger one, then fails when the network runs)")


def combined_rank(adapters: list[Adapter], config: CombineConfig) -> int:
    """r′: PEFT's rule: the sum of the ranks for cat, svd_rank (or the largest rank) for svd methods."""
    ranks = [adapter.rank for adapter in adapters]
    if config.method == "cat":
        return sum(ranks)
    if config.method in SVD_METHODS:
        return config.svd_rank or max(ranks)
    return ranks[0]


def _cat(present: list[tuple[Adapter, float]], rank: int, shape: tuple[int, int], name: str):
    A, B = torch.zeros(rank, shape[1]), torch.zeros(shape[0], rank)  # an absent adapter leaves its rows zero
    row = 0
    for adapter, weight in present:
        A_i, B_i = adapter.weights[name]
        A[row:row + adapter.rank] = A_i * weight * _scale(adapter)
        B[:, row:row + adapter.rank] = B_i
        row += adapter.rank
    return A, B


def _factors_apart(present, config, generator, name: str):
    """A′ = merge(Aᵢ, ±√|wᵢsᵢ|), B′ = merge(Bᵢ, √|wᵢsᵢ|): the sign rides on A alone."""
    scaled = [weight * _scale(adapter) for adapter, weight in present]
    signed_roots = [math.sqrt(abs(w)) * (1 if w >= 0 else -1) for w in scaled]
    A = _merge([adapter.weights[name][0] for adapter, _ in present], signed_roots, config, generator)
    B = _merge([adapter.weights[name][1] for adapter, _ in present], [math.sqrt(abs(w)) for w in scaled],
               config, generator)
    return A, B


def _svd(present, config, generator, name: str, rank: int):
    """The merged ΔW's top `rank` singular directions: A′ = V_rᵀ, B′ = U_r·S_r, as PEFT computes them."""
    deltas = [(adapter.weights[name][1] @ adapter.weights[name][0]) * _scale(adapter) for adapter, _ in present]
    merged = _merge(deltas, [weight for _, weight in present], config, generator)
    U, S, Vh = torch.linalg.svd(merged, full_matrices=True)  # PEFT's call: the same rounding
    return Vh[:rank, :], U[:, :rank] @ torch.diag(S[:rank])


def _weighted_sum(present, name: str) -> torch.Tensor:
    """Σ wᵢ·sᵢ·Bᵢ·Aᵢ in float64: the reference every method is measured against."""
    return sum(weight * _scale(adapter) * (adapter.weights[name][1].double() @ adapter.weights[name][0].double())
               for adapter, weight in present)


def _sum_singular_values(present, name: str) -> torch.Tensor:
    """Singular values of Σ wᵢΔWᵢ = [B₁ … Bₙ]·[w₁s₁A₁; …; wₙsₙAₙ] in float64, from the R-factors of those
    two: those of a (Σrᵢ)×(Σrᵢ) core rather than of the out×in sum."""
    B = torch.cat([adapter.weights[name][1] for adapter, _ in present], dim=1).double()
    A = torch.cat([adapter.weights[name][0] * weight * _scale(adapter) for adapter, weight in present]).double()
    return torch.linalg.svdvals(torch.linalg.qr(B).R @ torch.linalg.qr(A.T).R.T)


def _relative_error(A: torch.Tensor, B: torch.Tensor, reference: torch.Tensor) -> float:
    difference = float(torch.linalg.norm(B.double() @ A.double() - reference))
    size = float(torch.linalg.norm(reference))
    return difference / size if size > 0 else (0.0 if difference == 0 else math.inf)


def _rslora_note(adapters: list[Adapter], rank: int) -> tuple[str, ...]:
    if not adapters[0].rslora:
        return ()
    return (f"PEFT keeps the first adapter's rsLoRA setting with α = r′ = {rank}, so it scales the combined "
            f"adapter by α/√r′ = √{rank} = {math.sqrt(rank):.3g}: its update is {math.sqrt(rank):.3g}× too large. "
            "This combined adapter is saved with rsLoRA off (scale α/r′ = 1), which gives the intended update.",)


@torch.no_grad()
def combine(adapters: list[Adapter], config: CombineConfig) -> Combination:
    """The adapters combined by `config.method`, layer by layer, with each layer's distance from Σ wᵢΔWᵢ.

    A layer that only some adapters target combines those (PEFT's rule). DARE's masks come from one
    generator seeded with `config.seed`, drawn layer by layer in the order the adapters name the layers;
    within a layer, in the order PEFT draws them (all A's, then all B's; or each ΔWᵢ for `*_svd`).
    """
    shapes = _check_compatible(list(adapters), config)
    rank = combined_rank(adapters, config)
    generator = torch.Generator().manual_seed(config.seed)
    layers = {}
    for name, shape in shapes.items():
        present = [(a, w) for a, w in zip(adapters, config.weights, strict=True) if name in a.weights]
        if config.method == "cat":
            A, B = _cat(present, rank, shape, name)
        elif config.method in SVD_METHODS:
            A, B = _svd(present, config, generator, name, rank)
        else:
            A, B = _factors_apart(present, config, generator, name)
        A, B = A.float().contiguous(), B.float().contiguous()
        sum_rank = _rank_from_singular_values(_sum_singular_values(present, name), *shape)
        layers[name] = LayerCombination(A, B, _relative_error(A, B, _weighted_sum(present, name)), sum_rank)
    adapter = Adapter(rank, float(rank), {name: (layer.A, layer.B) for name, layer in layers.items()})
    return Combination(config, adapter, layers, _rslora_note(list(adapters), rank))


# --- what the network then gets wrong -----------------------------------------------------------------

def adapted(base: nn.Module, adapter: Adapter) -> nn.Module:
    """A copy of `base` carrying `adapter` (for adapter_zips' downloads and for evaluation)."""
    return attach(copy_model(base), adapter)


def evaluate_adapter(base: nn.Module, adapter: Adapter, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
    """The baseline with `adapter` on the test images: accuracy and wrong per class."""
    return evaluate(adapted(base, adapter), x, y)


def wrong_on(evaluation: Evaluation, digits) -> tuple[int, int]:
    """(misclassified, test images) over the classes in `digits`: an adapter's own digits, or the others."""
    digits = sorted(set(digits))
    return (wrong_count(evaluation, digits),
            int(evaluation.confusion[digits].sum()))
