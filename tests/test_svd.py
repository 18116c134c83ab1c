import numpy as np
import pytest
import torch

from lora_core import (
    numerical_rank,
    parameter_counts,
    playground,
    random_low_rank,
    rank_factorize,
    reconstruction_error,
    singular_values,
)


def test_notebook_example_rank_2_of_10x10():
    W = random_low_rank(10, 10, 2)
    assert np.linalg.matrix_rank(W.numpy()) == 2 == numerical_rank(W)
    B, A = rank_factorize(W, 2)
    assert B.shape == (10, 2) and A.shape == (2, 10)
    assert B.numel() + A.numel() == 40 and W.numel() == 100
    assert torch.allclose(B @ A, W, atol=1e-5)


@pytest.mark.parametrize("d, k, true_rank, r", [(10, 10, 5, 2), (30, 20, 20, 7), (8, 40, 8, 1), (16, 16, 16, 16)])
def test_error_is_root_of_dropped_squared_singular_values(d, k, true_rank, r):
    W = random_low_rank(d, k, true_rank, seed=3, dtype=torch.float64)
    S = np.linalg.svd(W.numpy(), compute_uv=False)  # numpy as the independent oracle
    assert np.allclose(singular_values(W).numpy(), S)
    assert reconstruction_error(W, r) == pytest.approx(np.sqrt((S[r:] ** 2).sum()), abs=1e-9)


def test_factors_match_numpy_best_rank_r_approximation():
    W = random_low_rank(12, 9, 6, seed=1, dtype=torch.float64)
    U, S, Vt = np.linalg.svd(W.numpy(), full_matrices=False)
    B, A = rank_factorize(W, 3)
    assert np.allclose((B @ A).numpy(), U[:, :3] @ np.diag(S[:3]) @ Vt[:3])


@pytest.mark.parametrize("d, k, r", [(10, 10, 2), (512, 512, 8), (784, 1000, 1)])
def test_parameter_counts(d, k, r):
    counts = parameter_counts(d, k, r)
    assert counts["full"] == d * k and counts["factored"] == r * (d + k)
    assert counts["saved_share"] == pytest.approx(1 - r * (d + k) / (d * k))


def test_playground_numbers():
    p = playground(20, 15, 4, 2, seed=5)
    W = p.W.numpy()
    assert np.linalg.matrix_rank(W) == 4 == p.numerical_rank
    assert np.allclose(p.y.numpy(), W @ p.x.numpy() + p.bias.numpy())
    assert np.allclose(p.y_prime.numpy(), (p.B @ p.A).numpy() @ p.x.numpy() + p.bias.numpy())
    U, S, Vt = np.linalg.svd(W)  # numpy's best rank-2 approximation: what B·A must be
    best = U[:, :2] * S[:2] @ Vt[:2]
    assert np.allclose(p.product.numpy(), best, atol=1e-4)
    assert np.allclose(p.difference.numpy(), (W - best) @ p.x.numpy(), atol=1e-4)  # y − y' = (W − BA)·x
    assert p.max_abs_difference == pytest.approx(np.abs((W - best) @ p.x.numpy()).max(), abs=1e-4)
    assert p.error == pytest.approx(np.sqrt((S[2:] ** 2).sum()))
    assert p.relative_error == pytest.approx(p.error / np.linalg.norm(W))
    exact = playground(20, 15, 4, 4, seed=5)  # keeping the true rank reconstructs W exactly
    assert exact.error < 1e-10 and exact.max_abs_difference < 1e-10


@pytest.mark.parametrize("r", [0, -1, 11, 2.0, "2", None, True])
def test_rank_outside_range_raises(r):
    W = random_low_rank(10, 10, 2)
    with pytest.raises(ValueError, match="rank"):
        rank_factorize(W, r)
    with pytest.raises(ValueError, match="rank"):
        parameter_counts(10, 10, r)
    with pytest.raises(ValueError, match="rank"):
        playground(10, 10, 2, r)
    with pytest.raises(ValueError, match="rank"):
        random_low_rank(10, 10, r)
