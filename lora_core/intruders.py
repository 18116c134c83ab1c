"""Forgetting seen in the weights: "intruder dimensions" (Shuttleworth et al. 2024, "LoRA vs Full Fine-tuning:
An Illusion of Equivalence").

Finetuning changes W (out×in) into W′ = W + ΔW. A left singular vector of W′ is an intruder when it is unlike
every left singular vector of W: its largest |cosine| with them is below ε. LoRA tends to add a few such
high-ranking new directions; full finetuning mostly rotates the old ones a little. The detection and the
mitigation follow PEFT's `reduce_intruder_dimension` (peft/tuners/lora/intruders.py) exactly, so that the
numbers can be checked against it:

    U, _, _ = svd(W);  U′, S′, V′ = svd(W′)
    similarity_i = max_j |U′_iᵀ U_j|          for the top_k singular vectors i of W′
    intruders    = {i < top_k : similarity_i < ε}

A layer with as many outputs as its rank (linear3: 10 outputs) has left singular vectors that span all of its
output space, so every unit vector has a |cosine| of at least 1/√out with one of them: its intruders are
rotations within a space W already fills, not new directions (`spans_output_space`).
"""
import math
from dataclasses import dataclass

import torch

TOP_K = 10  # PEFT's defaults
EPSILON = 0.5
MITIGATION = 0.75


@dataclass(frozen=True)
class LayerIntruders:
    layer: str
    similarity: tuple[float, ...]  # for each of W′'s top_k left singular vectors: its largest |cos| with W's
    intruders: tuple[int, ...]  # their indices (0 = the largest singular value) with similarity < ε
    spans_output_space: bool  # W's singular vectors span every output direction: no direction can be new
    floor: float  # the smallest similarity any unit vector can have with W's singular vectors (0 unless spanning)


def similarities(W: torch.Tensor, W_finetuned: torch.Tensor, top_k: int = TOP_K) -> torch.Tensor:
    """(top_k,) the largest |cosine| of each of W′'s top left singular vectors with any of W's."""
    U_base = torch.linalg.svd(W.double(), full_matrices=False).U  # (out, min(out, in))
    U_new = torch.linalg.svd(W_finetuned.double(), full_matrices=False).U
    return (U_new.T @ U_base).abs().max(dim=1).values[:top_k].float()


def find(layer: str, W: torch.Tensor, W_finetuned: torch.Tensor, top_k: int = TOP_K,
         epsilon: float = EPSILON) -> LayerIntruders:
    """The intruder dimensions of one layer finetuned from W to W′."""
    if not 0 < epsilon <= 1:
        raise ValueError(f"epsilon must be in (0, 1], got {epsilon!r}")
    similarity = similarities(W, W_finetuned, top_k)
    out, inp = W.shape
    spans = torch.linalg.matrix_rank(W.double()).item() == out
    return LayerIntruders(layer, tuple(similarity.tolist()),
                          tuple(i for i, s in enumerate(similarity.tolist()) if s < epsilon), spans,
                          1 / math.sqrt(out) if spans else 0.0)


def mitigated_delta(W: torch.Tensor, delta: torch.Tensor, scaling: float, rank: int, top_k: int = TOP_K,
                    epsilon: float = EPSILON, mitigation: float = MITIGATION) -> tuple[torch.Tensor, torch.Tensor]:
    """PEFT's mitigation: (A, B) of rank `rank` whose s·B·A is ΔW with `1 − mitigation` of each intruder
    direction of W + ΔW kept. (out, r) B and (r, in) A share the singular values' square roots."""
    merged = W + delta
    U_base = torch.linalg.svd(W, full_matrices=False).U
    U, S, Vh = torch.linalg.svd(merged, full_matrices=False)
    similarity = (U.T @ U_base).abs().max(dim=1).values
    intruders = torch.where(similarity[:top_k] < epsilon)[0]
    if len(intruders):
        intruder = U[:, intruders] @ torch.diag(S[intruders]) @ Vh[intruders]  # (out, in)
        delta = delta + (mitigation - 1) * intruder
    U_d, S_d, Vh_d = torch.linalg.svd(delta / scaling, full_matrices=False)
    root = S_d[:rank].sqrt()
    return root[:, None] * Vh_d[:rank], U_d[:, :rank] * root  # A (r, in), B (out, r)


def of_models(base, finetuned, layers=("linear1", "linear2", "linear3"), top_k: int = TOP_K,
              epsilon: float = EPSILON) -> list[LayerIntruders]:
    """Each layer's intruders from `base` to `finetuned` (LoRA attached or merged, or fully finetuned): a
    parametrized layer's `.weight` is W + ΔW."""
    with torch.no_grad():
        return [find(name, base.get_submodule(name).weight, finetuned.get_submodule(name).weight, top_k, epsilon)
                for name in layers]
