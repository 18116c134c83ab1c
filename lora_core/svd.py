"""Low-rank matrices and their factorisation W ≈ B·A through the SVD."""
from dataclasses import dataclass
from functools import lru_cache

import torch


def check_rank(r, d: int, k: int, what: str = "rank", of: str = "") -> None:
    """Raise ValueError unless r is an integer in 1..min(d, k), naming the value and the matrix."""
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= min(d, k):
        raise ValueError(f"{what} must be an integer in 1..{min(d, k)} for {of or 'a'} {d}×{k} matrix, got {r!r}")


def random_low_rank(d: int, k: int, rank: int, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    """A d×k matrix of the given rank: (d×rank Gaussian) @ (rank×k Gaussian), as in the notebook."""
    check_rank(rank, d, k)
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(d, rank, generator=gen, dtype=dtype) @ torch.randn(rank, k, generator=gen, dtype=dtype)


def singular_values(W: torch.Tensor) -> torch.Tensor:
    return torch.linalg.svdvals(W)


def _rank_from_singular_values(S: torch.Tensor, d: int, k: int) -> int:
    """Singular values above max(d, k)·eps·σ_max count, as numpy.linalg.matrix_rank does."""
    return int((S > S.max() * max(d, k) * torch.finfo(S.dtype).eps).sum())


def numerical_rank(W: torch.Tensor) -> int:
    return _rank_from_singular_values(singular_values(W), *W.shape)


def _truncate(U, S, Vh, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    return U[:, :r] * S[:r], Vh[:r]  # B = U_r·diag(S_r) (d, r); A = V_rᵀ (r, k)


def rank_factorize(W: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """B = U_r·diag(S_r) (d×r) and A = V_rᵀ (r×k): the best rank-r approximation is B @ A."""
    d, k = W.shape
    check_rank(r, d, k)
    return _truncate(*torch.linalg.svd(W, full_matrices=False), r)


def reconstruction_error(W: torch.Tensor, r: int) -> float:
    """‖W − B·A‖_F, by Eckart–Young equal to √(σ_{r+1}² + … + σ_n²)."""
    B, A = rank_factorize(W, r)
    return float(torch.linalg.matrix_norm(W - B @ A))


def parameter_counts(d: int, k: int, r: int) -> dict:
    """Parameters of the full d×k matrix against the rank-r factors B (d×r) and A (r×k)."""
    check_rank(r, d, k)
    full, factored = d * k, r * (d + k)
    return {"full": full, "factored": factored, "saved_share": 1 - factored / full}


@dataclass(frozen=True)
class Playground:
    """Everything the SVD page shows for one setting of its sliders."""
    W: torch.Tensor  # (d, k)
    B: torch.Tensor  # (d, r)
    A: torch.Tensor  # (r, k)
    singular_values: torch.Tensor  # (min(d, k),)
    numerical_rank: int
    error: float  # ‖W − BA‖_F
    relative_error: float  # ‖W − BA‖_F / ‖W‖_F
    counts: dict
    x: torch.Tensor  # (k,)
    bias: torch.Tensor  # (d,)
    y: torch.Tensor  # Wx + b, (d,)
    y_prime: torch.Tensor  # BAx + b, (d,)

    @property
    def product(self) -> torch.Tensor:
        """B·A, (d, k): the rank-r approximation of W."""
        return self.B @ self.A

    @property
    def difference(self) -> torch.Tensor:
        """y − y′, (d,)."""
        return self.y - self.y_prime

    @property
    def max_abs_difference(self) -> float:
        return float(self.difference.abs().max())


@lru_cache(maxsize=8)
def _decomposed(d: int, k: int, true_rank: int, seed: int):
    """W and its SVD, kept so that moving only the kept rank r costs no new decomposition."""
    W = random_low_rank(d, k, true_rank, seed, torch.float64)  # float64: exact reconstructions show as ~1e-15
    return (W, *torch.linalg.svd(W, full_matrices=False))


def playground(d: int, k: int, true_rank: int, r: int, seed: int = 0) -> Playground:
    """W of rank `true_rank`, its rank-r factorisation, and y = Wx + b against y′ = BAx + b."""
    check_rank(r, d, k, "kept rank")
    W, U, S, Vh = _decomposed(d, k, true_rank, seed)
    B, A = _truncate(U, S, Vh, r)
    gen = torch.Generator().manual_seed(seed + 1)
    bias = torch.randn(d, generator=gen, dtype=torch.float64)
    x = torch.randn(k, generator=gen, dtype=torch.float64)
    error = float(torch.linalg.matrix_norm(W - B @ A))
    relative_error = error / float(torch.linalg.matrix_norm(W))
    return Playground(W, B, A, S, _rank_from_singular_values(S, d, k), error, relative_error,
                      parameter_counts(d, k, r), x, bias, W @ x + bias, B @ (A @ x) + bias)
