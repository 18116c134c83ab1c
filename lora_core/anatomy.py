"""Inside an update ΔW: its spectrum, how low-rank it is, what it reads, and how it sits against the
update that full finetuning finds."""
import math
from dataclasses import dataclass

import torch
from torch import nn

from .lora import LoRAParametrization, lora_enabled, lora_layers, lora_of, original_weight
from .model import IMAGE_PIXELS


def spectrum(M: torch.Tensor) -> torch.Tensor:
    """Singular values, largest first, in float64."""
    return torch.linalg.svdvals(M.detach().double())


def energy(S: torch.Tensor) -> torch.Tensor:
    """Share of ‖M‖_F² that the top k singular directions hold, for k = 1..len(S)."""
    squares = S.double() ** 2
    total = squares.sum()
    return squares.cumsum(0) / total if total > 0 else torch.zeros_like(squares)


def nonzero_count(S: torch.Tensor) -> int:
    """How many singular values are non-zero beyond rounding: above len(S)·eps·σ₁ (numpy's matrix_rank
    tolerance); 0 for a zero matrix."""
    S = S.double()
    if len(S) == 0 or float(S.max()) == 0:
        return 0
    return int((S > S.max() * len(S) * torch.finfo(torch.float64).eps).sum())


def rank_for_energy(energy_curve, share: float) -> int:
    """The smallest k whose top-k directions hold `share` of the energy (energy_curve from `energy`)."""
    return next((k for k, e in enumerate(energy_curve, 1) if e >= share), len(energy_curve))


def effective_rank(S: torch.Tensor) -> float:
    """exp of the entropy of the normalised singular values (Roy & Vetterli, 2007): k for k equal ones."""
    total = S.double().sum()
    if total <= 0:
        return 0.0
    p = S.double()[S > 0] / total
    return math.exp(float(-(p * p.log()).sum()))


def lora_spectrum(lora: LoRAParametrization) -> torch.Tensor:
    """The r singular values of ΔW = s·B·A from its factors, without forming ΔW (out×in).

    B = Q_B·R_B and Aᵀ = Q_A·R_A (thin QR) give ΔW = s·Q_B·(R_B·R_Aᵀ)·Q_Aᵀ with orthonormal Q's, so ΔW's
    singular values are s times those of the r×r matrix R_B·R_Aᵀ. Every other singular value is zero.
    """
    R_B = torch.linalg.qr(lora.lora_B.detach().double())[1]  # (r, r)
    R_A = torch.linalg.qr(lora.lora_A.detach().double().T)[1]  # (r, r)
    return abs(lora.scale) * torch.linalg.svdvals(R_B @ R_A.T)


@torch.no_grad()
def delta_spectra(model: nn.Module) -> dict[str, torch.Tensor]:
    """The r singular values of every adapted layer's ΔW: cheap enough to follow training live."""
    return {name: lora_spectrum(lora_of(layer)) for name, layer in lora_layers(model).items()}


@torch.no_grad()
def layer_update_norms(model: nn.Module) -> dict[str, float]:
    """‖ΔW_l‖_F of every adapted layer, from the factors."""
    return {name: float(lora_of(layer).delta_norm()) for name, layer in lora_layers(model).items()}


@torch.no_grad()
def weight_spectra(model: nn.Module, known=None) -> dict[str, torch.Tensor]:
    """Singular values of every adapted layer's frozen W: seconds for the full network, so worth keeping
    for a baseline, whose W never changes. `known(W)`, when given, returns a spectrum kept earlier or
    computes it."""
    find = known or spectrum
    return {name: find(original_weight(layer).detach()) for name, layer in lora_layers(model).items()}


@dataclass(frozen=True)
class LayerView:
    """What the ΔW inspector shows for one adapted layer."""
    name: str
    rank: int
    delta: torch.Tensor  # (out, in) ΔW = s·B·A
    delta_singular_values: torch.Tensor  # (r,): ΔW has no others
    weight_singular_values: torch.Tensor  # (min(out, in),) of the frozen W
    effective_rank: float  # of ΔW


@torch.no_grad()
def inspect_layers(model: nn.Module, weight_singular_values: dict | None = None) -> list[LayerView]:
    """Per adapted layer: ΔW, its spectrum and effective rank, and W's spectrum (pass
    `weight_spectra(model)` once computed, to skip W's SVDs)."""
    weights = weight_singular_values or weight_spectra(model)
    views = []
    for name, layer in lora_layers(model).items():
        lora = lora_of(layer)
        S = lora_spectrum(lora)
        views.append(LayerView(name, lora.rank, lora.delta_weight().detach().cpu(), S, weights[name],
                               effective_rank(S)))
    return views


@torch.no_grad()
def input_patterns(model: nn.Module, layer: str = "linear1") -> torch.Tensor:
    """The r rows of the first layer's A as 28×28 images: the input patterns the adapter reads."""
    A = lora_of(model.get_submodule(layer)).lora_A.detach().cpu()  # (r, 784)
    if A.shape[1] != IMAGE_PIXELS:
        raise ValueError(f"{layer} does not read images: its A has {A.shape[1]} columns")
    return A.reshape(-1, 28, 28)


@torch.no_grad()
def logits_with_and_without(model: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of one image through W (adapter off) and through W + ΔW (adapter on)."""
    model.eval()
    with lora_enabled(model, False):
        without = model(image.reshape(1, -1))[0].cpu()
    with lora_enabled(model, True):
        with_adapter = model(image.reshape(1, -1))[0].cpu()
    return without, with_adapter


# --- the rank oracle -------------------------------------------------------------------------------

@torch.no_grad()
def full_updates(base: nn.Module, finetuned: nn.Module) -> dict[str, torch.Tensor]:
    """ΔW_full = W_finetuned − W_base for every Linear layer."""
    tuned = dict(finetuned.named_modules())
    return {name: (tuned[name].weight - layer.weight).detach().cpu().double()
            for name, layer in base.named_modules() if isinstance(layer, nn.Linear)}


def principal_angles(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Angles in degrees between the column spaces of X and Y, smallest first."""
    Qx, Qy = torch.linalg.qr(X.double())[0], torch.linalg.qr(Y.double())[0]
    cosines = torch.linalg.svdvals(Qx.T @ Qy).clamp(-1, 1)
    return torch.rad2deg(torch.arccos(cosines))


def top_directions(M: torch.Tensor, r: int) -> torch.Tensor:
    """The top-r left singular vectors of M, (out, r): the output directions it moves most."""
    return torch.linalg.svd(M.double(), full_matrices=False)[0][:, :r]


def lora_directions(lora: LoRAParametrization) -> torch.Tensor:
    """An orthonormal basis of the output directions ΔW = s·B·A can move: the column space of B, (out, r)."""
    return torch.linalg.qr(lora.lora_B.detach().double())[0]


def chance_similarity(r: int, d: int) -> float:
    """The average subspace_similarity of two random r-dimensional subspaces of R^d: r/d.

    For X with orthonormal columns and Y uniformly random, E‖XᵀY‖_F² = Σ_ij E(xᵢ·yⱼ)² = r·r·(1/d), since a
    random unit vector's squared component along any fixed unit vector averages 1/d; divided by r: r/d.
    """
    if not 0 < r <= d:
        raise ValueError(f"need 0 < r ≤ d, got r={r!r}, d={d!r}")
    return r / d


def subspace_similarity(X: torch.Tensor, Y: torch.Tensor) -> dict:
    """How far the subspace spanned by X's columns lies inside Y's, both of dimension r.

    similarity = Σ cos²(θ_i) / r over the principal angles θ_i, from 0 (orthogonal) to 1 (the same
    subspace): for orthonormal bases it is ‖Xᵀ·Y‖_F² / r, the LoRA paper's subspace comparison.
    """
    angles = principal_angles(X, Y)
    return {"angles_deg": angles, "similarity": float((torch.cos(torch.deg2rad(angles)) ** 2).sum() / X.shape[1])}
