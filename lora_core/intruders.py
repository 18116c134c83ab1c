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
    outputs: int = 0  # W's output dimension


@dataclass(frozen=True)
class Directions:
    """W's left singular vectors and whether they span its output space: computed once per W, then compared
    with every W′ finetuned from it."""
    U: torch.Tensor  # (out, min(out, in)), in double
    spans_output_space: bool


def directions(W: torch.Tensor) -> Directions:
    U, S, _ = torch.linalg.svd(W.float(), full_matrices=False)  # in W's own precision: half a double SVD's time
    rank = int((S > S.max() * max(W.shape) * torch.finfo(S.dtype).eps).sum())  # torch.linalg.matrix_rank's tolerance
    return Directions(U.double(), rank == W.shape[0])


def similarities(W: torch.Tensor, W_finetuned: torch.Tensor, top_k: int = TOP_K,
                 reference: Directions | None = None) -> torch.Tensor:
    """(top_k,) the largest |cosine| of each of W′'s top left singular vectors with any of W's."""
    U_base = (reference or directions(W)).U  # (out, min(out, in))
    U_new = top_left_singular_vectors(W_finetuned.double(), top_k)
    return (U_new.T @ U_base).abs().max(dim=1).values.float()


def top_left_singular_vectors(M: torch.Tensor, k: int) -> torch.Tensor:
    """(out, k) the left singular vectors of M's k largest singular values (all of them if fewer), from the
    eigenvectors of the smaller Gram matrix — M·Mᵀ or Mᵀ·M — in M's precision (double here): a third of a
    full SVD's time on the app's layers, and what the similarities need."""
    out, inputs = M.shape
    k = min(k, out, inputs)
    if out <= inputs:
        _, vectors = torch.linalg.eigh(M @ M.T)  # ascending eigenvalues σ²
        return vectors[:, -k:].flip(1)
    values, vectors = torch.linalg.eigh(M.T @ M)
    V, S = vectors[:, -k:].flip(1), values[-k:].flip(0).clamp_min(0).sqrt()
    return (M @ V) / S


def find(layer: str, W: torch.Tensor, W_finetuned: torch.Tensor, top_k: int = TOP_K,  # noqa: PLR0913
         epsilon: float = EPSILON, reference: Directions | None = None) -> LayerIntruders:
    """The intruder dimensions of one layer finetuned from W to W′ (`reference`: W's directions, if known)."""
    if not 0 < epsilon <= 1:
        raise ValueError(f"epsilon must be in (0, 1], got {epsilon!r}")
    reference = reference or directions(W)
    similarity = similarities(W, W_finetuned, top_k, reference).tolist()
    spans = reference.spans_output_space
    return LayerIntruders(layer, tuple(similarity), tuple(i for i, s in enumerate(similarity) if s < epsilon), spans,
                          1 / math.sqrt(W.shape[0]) if spans else 0.0, W.shape[0])


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


LAYERS = ("linear1", "linear2", "linear3")


def of_models(base, finetuned, layers=LAYERS, top_k: int = TOP_K, epsilon: float = EPSILON,
              references: dict[str, Directions] | None = None) -> list[LayerIntruders]:
    """Each layer's intruders from `base` to `finetuned` (LoRA attached or merged, or fully finetuned): a
    parametrized layer's `.weight` is W + ΔW. `references`: the base's layers' directions, if known."""
    references = references or {}
    with torch.no_grad():
        return [find(name, base.get_submodule(name).weight, finetuned.get_submodule(name).weight, top_k, epsilon,
                     references.get(name)) for name in layers]


@dataclass(frozen=True)
class RunIntruders:
    """One finetune seen in its weights and on the test images: each layer's intruders beside what it learned
    (errors it fixed on the finetuned classes) and what it forgot (errors it added on the other classes)."""
    run: str  # "LoRA r=4" or "full finetuning"
    rank: int | None  # None for full finetuning
    layers: tuple[LayerIntruders, ...]
    target_wrong: int  # test errors on the finetuned classes
    other_wrong: int  # test errors on every other class
    learned: int  # the baseline's target_wrong − the run's
    forgotten: int  # the run's other_wrong − the baseline's

    def layer(self, name: str) -> LayerIntruders:
        return next(found for found in self.layers if found.layer == name)


def of_run(run: str, rank: int | None, layers, evaluation, before, digits) -> RunIntruders:
    """A run's intruders (`layers`, from of_models) beside its test errors (`evaluation`) and the baseline's
    (`before`) on the finetuned `digits` and on the others."""
    def split(found) -> tuple[int, int]:
        target = sum(found.wrong_per_class[d] for d in digits)
        return target, found.wrong - target
    (target, other), (base_target, base_other) = split(evaluation), split(before)
    return RunIntruders(run, rank, tuple(layers), target, other, base_target - target, other - base_other)
