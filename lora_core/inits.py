"""How an adapter's A (r×in) and B (out×r) start, each as PEFT 0.21.2's `init_lora_weights` does it.

Two kinds. Random inits draw A and B from a generator and leave W alone. PiSSA and OLoRA factor W
itself: B·A takes W's principal part (scaled by 1/s, so that s·B·A is that part) and the base keeps the
residual W − s·B·A, so the network computes the same function at step 0 while training starts from W's
strongest directions.
"""
import math
import re

import torch
from torch import nn

# the inits that draw A and B at random and leave the base weight as it is
RANDOM_INITS = ("kaiming", "gaussian", "zeros", "random", "orthogonal")
# the inits that move W's principal part into the adapter; also "pissa_niter_K" (K power iterations)
BASE_INITS = ("pissa", "olora")
_PISSA_NITER = re.compile(r"pissa_niter_([1-9][0-9]{0,2})")


def pissa_niter(init: str) -> int | None:
    """K of "pissa_niter_K" (randomised SVD with K power iterations), None for any other name."""
    match = _PISSA_NITER.fullmatch(init) if isinstance(init, str) else None
    return int(match.group(1)) if match else None


def moves_base(init: str) -> bool:
    """Whether the init leaves W − s·B₀·A₀ in the base weight (PiSSA, OLoRA) rather than W."""
    return init in BASE_INITS or pissa_niter(init) is not None


def gallery_inits(rank: int) -> tuple[str, ...]:
    """Every named init that fits `rank`, in RANDOM_INITS then BASE_INITS order: the initialisation
    gallery's runs (orthogonal needs an even rank)."""
    return tuple(init for init in RANDOM_INITS + BASE_INITS if init != "orthogonal" or rank % 2 == 0)


def check_init(init, rank: int) -> None:
    """ValueError naming the init unless it is one of RANDOM_INITS, BASE_INITS or pissa_niter_K and fits the rank."""
    if not (init in RANDOM_INITS or moves_base(init)):
        raise ValueError(f"unknown init {init!r}; known: {', '.join(RANDOM_INITS + BASE_INITS)}, "
                         "pissa_niter_K (K = 1..999)")
    if init == "orthogonal" and rank % 2:
        raise ValueError(f"the orthogonal init needs an even rank (half of A's rows and half of B's columns "
                         f"come from each of two orthogonal halves), got rank {rank}")


def _kaiming(shape, generator) -> torch.Tensor:
    return nn.init.kaiming_uniform_(torch.empty(shape), a=math.sqrt(5), generator=generator)  # nn.Linear's own


def _orthogonal(out_features: int, in_features: int, rank: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """PEFT's orthogonal init, drawn in its order: the rows of A span half of a random orthogonal basis
    of ℝʳ and the columns of B the other half, so BA = 0 (no change at step 0) while both are non-zero."""
    Q, _ = torch.linalg.qr(torch.randn(rank, rank, generator=generator))
    A = torch.randn(in_features, rank // 2, generator=generator).mm(Q[0::2, :]).T / 10.0
    B = torch.randn(rank // 2, out_features, generator=generator).T.mm(Q[1::2, :]) / 10.0
    return A.contiguous(), B.contiguous()


def random_init(init: str, out_features: int, in_features: int, rank: int,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) of one of RANDOM_INITS. "kaiming" is loralib's and PEFT's default; "zeros" is the notebook's
    bug (every gradient is zero); "random" draws B as A, so the adapter changes the network from step 0."""
    a_shape, b_shape = (rank, in_features), (out_features, rank)
    if init == "orthogonal":
        return _orthogonal(out_features, in_features, rank, generator)
    if init == "zeros":
        return torch.zeros(a_shape), torch.zeros(b_shape)
    if init == "gaussian":  # PEFT: std 1/r
        A = torch.empty(a_shape).normal_(0.0, 1 / rank, generator=generator)
    else:
        A = _kaiming(a_shape, generator)
    return A, (_kaiming(b_shape, generator) if init == "random" else torch.zeros(b_shape))


def randomized_svd(W: torch.Tensor, rank: int, niter: int,
                   generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """torch.svd_lowrank(W, q=rank, niter) step for step (Halko et al.), but drawing its random matrix
    from `generator` rather than torch's global one: (U (m, r), S (r,), V (n, r)), W ≈ U·diag(S)·Vᵀ."""
    tall = W.shape[0] >= W.shape[1]
    M = W if tall else W.mT
    R = torch.randn(M.shape[-1], rank, generator=generator).to(M)
    Q = torch.linalg.qr(M @ R).Q
    for _ in range(niter):
        Q = torch.linalg.qr(M.mT @ Q).Q
        Q = torch.linalg.qr(M @ Q).Q
    U, S, Vh = torch.linalg.svd(Q.mT @ M, full_matrices=False)
    U, V = Q @ U, Vh.mT
    return (U, S, V) if tall else (V, S, U)


def base_init(init: str, W: torch.Tensor, rank: int, scale: float,
              generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(A₀, B₀) of PiSSA or OLoRA from W (out, in), in float32; the base then keeps W − scale·B₀·A₀.

    PiSSA: W = U·S·Vᵀ, A₀ = √(S_r/s)·V_rᵀ, B₀ = U_r·√(S_r/s), so s·B₀·A₀ is W's best rank-r part.
    OLoRA: W = Q·R, B₀ = Q_r (orthonormal columns), A₀ = R_r (not divided by s, as in PEFT).
    """
    W = W.detach().float()
    if init == "olora":
        # Householder QR fixes Q's first r columns from W's first r columns alone, and R_r = Q_rᵀ·W: PEFT's
        # Q[:, :r] and R[:r] of the whole W, for a QR of out×r rather than out×in
        Q = torch.linalg.qr(W[:, :rank]).Q
        return (Q.T @ W).contiguous(), Q.contiguous()
    niter = pissa_niter(init)
    if niter is None:
        U, S, Vh = torch.linalg.svd(W, full_matrices=False)
        U, S, Vh = U[:, :rank], S[:rank], Vh[:rank]
    else:
        U, S, V = randomized_svd(W, rank, niter, generator)
        Vh = V.T
    root = torch.sqrt(S / scale)
    return torch.diag(root) @ Vh, U @ torch.diag(root)
