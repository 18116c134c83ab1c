import copy
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from lora_core import MLP, FinetuneConfig, add_lora, finetune_full, lora_layers, lora_of
from lora_core.anatomy import (
    delta_spectra,
    effective_rank,
    energy,
    full_updates,
    input_patterns,
    inspect_layers,
    layer_update_norms,
    logits_with_and_without,
    lora_directions,
    principal_angles,
    rank_for_energy,
    subspace_similarity,
    top_directions,
    weight_spectra,
)
from lora_core.lora import update_norm


def trained_looking(rank=3, seed=0):
    torch.manual_seed(seed)
    model = add_lora(MLP(hidden1=300, hidden2=200), rank=rank, alpha=2.0)  # narrower: the SVDs take milliseconds
    with torch.no_grad():
        for layer in lora_layers(model).values():
            lora_of(layer).lora_B.normal_(0, 0.05)
    return model


def test_energy_and_effective_rank_closed_forms():
    S = torch.tensor([3.0, 4.0, 0.0])
    assert energy(S).tolist() == pytest.approx([9 / 25, 1.0, 1.0])
    assert effective_rank(torch.ones(5)) == pytest.approx(5)  # k equal singular values → k
    assert effective_rank(torch.tensor([1.0, 0, 0])) == pytest.approx(1)
    p = np.array([3, 1]) / 4
    assert effective_rank(torch.tensor([3.0, 1.0])) == pytest.approx(math.exp(-(p * np.log(p)).sum()))
    assert effective_rank(torch.zeros(3)) == 0 and energy(torch.zeros(2)).tolist() == [0, 0]


def test_rank_for_energy_closed_form():
    curve = energy(torch.tensor([2.0, 1.0, 1.0]))  # 4/6, 5/6, 6/6
    assert [rank_for_energy(curve, share) for share in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)] == [1, 1, 2, 2, 3, 3]


def test_inspector_against_numpy():
    model = trained_looking(rank=3)
    views = {v.name: v for v in inspect_layers(model)}
    lora = lora_of(model.linear2)
    delta = (2.0 / 3) * (lora.lora_B @ lora.lora_A).detach().numpy()
    view = views["linear2"]
    assert np.allclose(view.delta.numpy(), delta, atol=1e-7)
    S = np.linalg.svd(delta.astype(np.float64), compute_uv=False)
    assert np.linalg.matrix_rank(delta) == 3 and len(view.delta_singular_values) == 3
    assert np.allclose(view.delta_singular_values.numpy(), S[:3], rtol=1e-5)  # from the factors alone
    assert view.effective_rank == pytest.approx(effective_rank(torch.from_numpy(S[:3])), rel=1e-5)
    assert 1 <= view.effective_rank <= 3
    W = model.linear2.parametrizations.weight.original.detach().numpy()
    assert np.allclose(view.weight_singular_values.numpy()[:10], np.linalg.svd(W, compute_uv=False)[:10], rtol=1e-4)


def test_update_norm_identity():
    model = trained_looking(rank=4)
    layers = lora_layers(model).values()
    direct = math.sqrt(sum(float(lora_of(layer).delta_weight().detach().double().norm()) ** 2 for layer in layers))
    assert update_norm(model) == pytest.approx(direct, rel=1e-5)
    assert update_norm(add_lora(MLP(), rank=2)) == 0  # B starts at zero


def test_input_patterns_and_logits():
    model = trained_looking(rank=2)
    patterns = input_patterns(model)
    assert patterns.shape == (2, 28, 28)
    assert torch.equal(patterns[1].reshape(-1), lora_of(model.linear1).lora_A[1].detach())
    image = torch.randn(784)
    without, with_adapter = logits_with_and_without(model, image)
    base = copy.deepcopy(model)
    lora_of(base.linear1).enabled = lora_of(base.linear2).enabled = lora_of(base.linear3).enabled = False
    assert torch.equal(without, base(image)[0].detach()) and not torch.allclose(without, with_adapter)
    with pytest.raises(ValueError, match="images"):
        input_patterns(model, "linear2")


def test_principal_angles_against_scipy():
    gen = torch.Generator().manual_seed(0)
    X, Y = torch.randn(50, 3, generator=gen), torch.randn(50, 4, generator=gen)
    ours = principal_angles(X, Y).numpy()
    theirs = np.sort(np.degrees(scipy.linalg.subspace_angles(X.double().numpy(), Y.double().numpy())))
    assert np.allclose(ours, theirs, atol=1e-6)
    theta = 0.3  # closed form: span(e1, e2) against span(e1, cos θ e2 + sin θ e3)
    e = torch.eye(3, dtype=torch.float64)
    tilted = torch.stack([e[:, 0], math.cos(theta) * e[:, 1] + math.sin(theta) * e[:, 2]], 1)
    angles = principal_angles(e[:, :2], tilted)
    assert angles.tolist() == pytest.approx([0, math.degrees(theta)], abs=1e-6)


def test_subspace_similarity_bounds():
    gen = torch.Generator().manual_seed(1)
    M = torch.randn(40, 30, generator=gen, dtype=torch.float64)
    top = top_directions(M, 4)
    same = subspace_similarity(top, top)
    assert same["similarity"] == pytest.approx(1) and same["angles_deg"].max() < 1e-4
    U = torch.linalg.svd(M)[0]
    assert subspace_similarity(U[:, 10:14], top)["similarity"] == pytest.approx(0, abs=1e-10)
    half = torch.stack([U[:, 0], U[:, 1], U[:, 10], U[:, 11]], 1)  # two of four directions shared
    assert subspace_similarity(half, top)["similarity"] == pytest.approx(0.5)


def test_lora_directions_span_the_update():
    model = trained_looking(rank=3)
    lora = lora_of(model.linear2)
    Q = lora_directions(lora)
    assert torch.allclose(Q.T @ Q, torch.eye(3, dtype=torch.float64), atol=1e-10)
    delta = lora.delta_weight().detach().double()
    assert torch.allclose(Q @ (Q.T @ delta), delta, atol=1e-7)  # ΔW's columns lie in span(Q), up to float32
    assert subspace_similarity(Q, top_directions(delta, 3))["similarity"] == pytest.approx(1)


def test_delta_spectra_and_norms_from_factors():
    model = trained_looking(rank=2)
    spectra, norms = delta_spectra(model), layer_update_norms(model)
    for name, layer in lora_layers(model).items():
        delta = lora_of(layer).delta_weight().detach().double()
        assert torch.allclose(spectra[name], torch.linalg.svdvals(delta)[:2], rtol=1e-6)
        assert norms[name] == pytest.approx(float(delta.norm()), rel=1e-5)
    W = weight_spectra(model)["linear3"]
    assert torch.allclose(W, torch.linalg.svdvals(model.linear3.parametrizations.weight.original.detach().double()))


def test_full_updates(baseline, data):
    model, _, _ = finetune_full(baseline.model, data, FinetuneConfig(steps=3))
    deltas = full_updates(baseline.model, model)
    assert set(deltas) == {"linear1", "linear2", "linear3"}
    assert torch.equal(deltas["linear3"], (model.linear3.weight - baseline.model.linear3.weight).detach().double())
    assert all(d.abs().max() > 0 for d in deltas.values())
