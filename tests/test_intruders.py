"""Intruder dimensions: a closed-form case, and PEFT's own reduce_intruder_dimension on the same weights."""
import copy
import math

import pytest
import torch

from lora_core import MLP, add_lora, intruders, lora_layers, lora_of

peft = pytest.importorskip("peft")
from peft.tuners.lora.intruders import reduce_intruder_dimension  # noqa: E402


def _orthonormal(rows: int, cols: int, seed: int) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)))[0]


def test_a_new_direction_larger_than_ws_own_is_the_first_intruder():
    Q = _orthonormal(50, 50, 0)  # out = 50 > in = 40: W's 40 left singular vectors leave 10 directions free
    W = Q[:, :40] @ torch.diag(torch.linspace(5, 1, 40)) @ _orthonormal(40, 40, 1).T  # (50, 40)
    new = 9.0 * Q[:, 45:46] @ _orthonormal(40, 1, 2).T  # a direction none of W's columns has
    found = intruders.find("layer", W, W + new)
    assert found.intruders == (0,) and found.similarity[0] < 0.2  # the largest singular vector of W′ is new
    assert min(found.similarity[1:]) > 0.8 and not found.spans_output_space and found.floor == 0
    assert intruders.find("layer", W, 1.1 * W).intruders == ()  # a change along W's own directions adds none


def test_a_layer_whose_directions_span_its_outputs_says_so():
    W = torch.randn(10, 200, generator=torch.Generator().manual_seed(3))  # linear3's shape, smaller
    found = intruders.find("linear3", W, W + torch.randn(10, 200, generator=torch.Generator().manual_seed(4)))
    assert found.spans_output_space and found.floor == pytest.approx(1 / math.sqrt(10))
    assert min(found.similarity) >= found.floor - 1e-6  # no unit vector in 10 dimensions is further from all


@pytest.fixture(scope="module")
def adapted():
    """A small MLP with a large rank-2 adapter on every layer, ours and PEFT's, holding the same A and B."""
    torch.manual_seed(0)
    base = MLP(64, 48)
    ours = add_lora(copy.deepcopy(base), rank=2, alpha=4.0, targets=("linear1", "linear2", "linear3"), seed=1)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for layer in lora_layers(ours).values():
            lora_of(layer).lora_B.copy_(torch.randn(lora_of(layer).lora_B.shape, generator=gen))
    config = peft.LoraConfig(r=2, lora_alpha=4.0, target_modules=["linear1", "linear2", "linear3"])
    theirs = peft.get_peft_model(copy.deepcopy(base), config)
    with torch.no_grad():
        for name, layer in lora_layers(ours).items():
            module = theirs.base_model.model.get_submodule(name)
            module.lora_A["default"].weight.copy_(lora_of(layer).lora_A)
            module.lora_B["default"].weight.copy_(lora_of(layer).lora_B)
    return base, ours, theirs


def test_the_intruders_found_are_peft_s(adapted):
    base, ours, theirs = adapted
    said = []
    reduce_intruder_dimension(copy.deepcopy(theirs), logging_sink=said.append)
    peft_counts = {line.split(":")[0].rsplit(".", 1)[-1]: 0 if "No intruders" in line else int(line.rsplit(" ", 1)[-1])
                   for line in said if line.split(":")[0].endswith(("linear1", "linear2", "linear3"))}
    ours_found = {f.layer: len(f.intruders) for f in intruders.of_models(base, ours)}
    assert ours_found == peft_counts
    assert sum(ours_found.values()) > 0  # the comparison could fail: there are intruders to find


def test_the_mitigated_update_is_peft_s(adapted):
    base, ours, theirs = adapted
    mitigated = copy.deepcopy(theirs)
    reduce_intruder_dimension(mitigated, logging_sink=None)
    for name, layer in lora_layers(ours).items():
        lora = lora_of(layer)
        with torch.no_grad():
            A, B = intruders.mitigated_delta(base.get_submodule(name).weight, lora.delta_weight(), lora.scale,
                                             lora.rank)
            expected = mitigated.base_model.model.get_submodule(name).get_delta_weight("intruder_reduced")
        got = lora.scale * B @ A
        assert (got - expected).norm() <= 1e-5 * expected.norm(), name


@pytest.mark.parametrize("shape", [(50, 40), (40, 50), (10, 200)], ids=["tall", "wide", "linear3-like"])
def test_top_left_singular_vectors_are_the_svds(shape):
    """The Gram-matrix shortcut gives the SVD's top left singular vectors (up to each one's sign), checked
    against numpy's SVD on a matrix with well-separated singular values."""
    import numpy as np

    generator = np.random.default_rng(sum(shape))
    out, inputs = shape
    rank = min(shape)
    U, _ = np.linalg.qr(generator.normal(size=(out, rank)))
    V, _ = np.linalg.qr(generator.normal(size=(inputs, rank)))
    M = U @ np.diag(np.geomspace(10, 0.1, rank)) @ V.T
    k = min(intruders.TOP_K, rank)
    ours = intruders.top_left_singular_vectors(torch.from_numpy(M), intruders.TOP_K).numpy()
    theirs = np.linalg.svd(M, full_matrices=False)[0][:, :k]
    assert ours.shape == (out, k)
    np.testing.assert_allclose(np.abs((ours * theirs).sum(axis=0)), 1.0, atol=1e-9)  # the same vectors, ± each
