"""Inside an update ΔW: its spectrum, how low-rank it is, what it reads, and how it sits against the
update that full finetuning finds."""
import math
from dataclasses import dataclass

import torch
from torch import nn

from .lora import lora_enabled, lora_layers, lora_of, original_weight
from .model import IMAGE_PIXELS


def spectrum(M: torch.Tensor) -> torch.Tensor:
    """Singular values, largest first, in float64."""
    return torch.linalg.svdvals(M.detach().double())


def energy(S: torch.Tensor) -> torch.Tensor:
    """Share of ‖M‖_F² that the top k singular directions hold, for k = 1..len(S)."""
    squares = S.double() ** 2
    total = squares.sum()
    return squares.cumsum(0) / total if total > 0 else torch.zeros_like(squares)


def effective_rank(S: torch.Tensor) -> float:
    """exp of the entropy of the normalised singular values (Roy & Vetterli, 2007): k for k equal ones."""
    total = S.double().sum()
    if total <= 0:
        return 0.0
    p = S.double()[S > 0] / total
    return math.exp(float(-(p * p.log()).sum()))


@dataclass(frozen=True)
class LayerView:
    """What the ΔW inspector shows for one adapted layer."""
    name: str
    rank: int
    delta: torch.Tensor  # (out, in) ΔW = s·B·A
    delta_singular_values: torch.Tensor  # (min(out, in),)
    weight_singular_values: torch.Tensor  # of the frozen W
    energy_in_rank: float  # share of ‖ΔW‖_F² in its top-r directions (1 up to rounding: rank ΔW ≤ r)
    effective_rank: float


@torch.no_grad()
def inspect_layers(model: nn.Module) -> list[LayerView]:
    views = []
    for name, layer in lora_layers(model).items():
        lora = lora_of(layer)
        delta = lora.delta_weight().detach().cpu()
        S = spectrum(delta)
        views.append(LayerView(name, lora.rank, delta, S, spectrum(original_weight(layer)),
                               float(energy(S)[lora.rank - 1]), effective_rank(S)))
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


def subspace_similarity(delta_lora: torch.Tensor, delta_full: torch.Tensor, r: int) -> dict:
    """How far LoRA's rank-r update lies inside the top-r directions of the full update.

    similarity = ‖U_loraᵀ U_full‖_F² / r, from 0 (orthogonal) to 1 (the same subspace), as in the LoRA
    paper's subspace comparison; angles are the principal angles between the two subspaces.
    """
    U_lora, U_full = top_directions(delta_lora, r), top_directions(delta_full, r)
    angles = principal_angles(U_lora, U_full)
    return {"angles_deg": angles, "similarity": float((torch.cos(torch.deg2rad(angles)) ** 2).sum() / r)}
