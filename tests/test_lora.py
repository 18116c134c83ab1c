import copy

import pytest
import torch
from torch import nn

from lora_core import (
    MLP,
    LoRAParametrization,
    add_lora,
    copy_model,
    count_parameters,
    factored_forward,
    lora_enabled,
    lora_layers,
    lora_of,
    lora_state_dict,
    merge_lora,
    original_weight,
    remove_lora,
    set_lora_enabled,
)


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return MLP()


@pytest.fixture
def x():
    return torch.randn(64, 784, generator=torch.Generator().manual_seed(1))


def randomise_B(model, seed=2):
    """A trained-looking adapter: B no longer zero, so every check below can fail."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            lora_of(layer).lora_B.copy_(torch.randn(lora_of(layer).lora_B.shape, generator=gen) * 0.05)
    return model


def test_notebook_parameter_counts(mlp):
    assert count_parameters(mlp) == {"base": 2_807_010, "lora": 0, "trainable": 2_807_010}


@pytest.mark.parametrize("rank", [1, 2, 4, 8])
def test_rank_r_adds_6794_r_parameters(mlp, rank):
    counts = count_parameters(add_lora(copy.deepcopy(mlp), rank=rank))
    # closed form: r·(in + out) summed over 784→1000, 1000→2000, 2000→10
    assert counts["lora"] == rank * ((784 + 1000) + (1000 + 2000) + (2000 + 10)) == 6794 * rank
    assert counts["base"] == 2_807_010 and counts["trainable"] == counts["lora"]
    if rank == 1:
        assert f"{100 * counts['lora'] / counts['base']:.3f}%" == "0.242%"


def test_only_lora_parameters_train(mlp):
    model = add_lora(copy.deepcopy(mlp), rank=2)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"linear{i}.parametrizations.weight.0.lora_{m}" for i in (1, 2, 3) for m in "AB"}
    assert set(lora_state_dict(model)) == trainable


def test_initialisation_A_kaiming_B_zero():
    lora = LoRAParametrization(1000, 784, rank=4, alpha=8)
    assert torch.count_nonzero(lora.lora_B) == 0
    bound = 1 / 784 ** 0.5  # kaiming_uniform(a=√5) on fan_in 784 gives U(−1/√784, 1/√784)
    assert lora.lora_A.abs().max() <= bound and lora.lora_A.std() > bound / 3
    assert lora.scale == 2.0


def test_fresh_adapter_changes_nothing(mlp, x):
    model = add_lora(copy.deepcopy(mlp), rank=4, alpha=4)
    assert torch.equal(model(x), mlp(x))


def test_weight_is_W_plus_scaled_BA(mlp):
    model = randomise_B(add_lora(copy.deepcopy(mlp), rank=3, alpha=6))
    layer = model.linear2
    lora = lora_of(layer)
    expected = mlp.linear2.weight + (6 / 3) * lora.lora_B @ lora.lora_A
    assert torch.allclose(layer.weight, expected, atol=1e-6)
    assert not torch.equal(layer.weight, mlp.linear2.weight)


def test_disabled_lora_is_bit_identical_to_base(mlp, x):
    model = randomise_B(add_lora(copy.deepcopy(mlp), rank=4))
    assert not torch.allclose(model(x), mlp(x))
    with lora_enabled(model, False):
        assert torch.equal(model(x), mlp(x))
    assert not torch.allclose(model(x), mlp(x))  # the context restored the adapter
    set_lora_enabled(model, False)
    assert torch.equal(model(x), mlp(x))


def test_merged_equals_parametrized(mlp, x):
    model = randomise_B(add_lora(copy.deepcopy(mlp), rank=8, alpha=16))
    expected = model(x)
    merged = merge_lora(model)
    assert not lora_layers(merged) and not any("lora_" in n for n, _ in merged.named_parameters())
    assert (merged(x) - expected).abs().max() <= 1e-5


def test_remove_restores_original_weights(mlp, x):
    model = randomise_B(add_lora(copy.deepcopy(mlp), rank=2))
    remove_lora(model)
    assert not lora_layers(model)
    for i in (1, 2, 3):
        assert torch.equal(getattr(model, f"linear{i}").weight, getattr(mlp, f"linear{i}").weight)
    assert torch.equal(model(x), mlp(x))


def test_factored_forward_matches_parametrized_and_trains_no_dense_gradient(mlp, x):
    model = randomise_B(add_lora(copy.deepcopy(mlp), rank=4, alpha=2))
    factors = [p for name, p in model.named_parameters() if "lora_" in name]
    expected = model(x)
    expected_grads = torch.autograd.grad(expected.square().sum(), factors)
    with factored_forward(model):
        out = model(x)
        out.square().sum().backward()
    assert (out - expected).abs().max() <= 1e-5
    for factor, expected_grad in zip(factors, expected_grads, strict=True):  # the factored path trains the same adapter
        assert torch.allclose(factor.grad, expected_grad, rtol=1e-4, atol=1e-5)
    assert original_weight(model.linear1).grad is None
    assert lora_of(model.linear1).lora_A.grad is not None
    assert "forward" not in vars(model.linear1)  # the instance override is gone again
    with lora_enabled(model, False), factored_forward(model):
        assert torch.allclose(model(x), mlp(x), atol=1e-6)


def test_partial_targets(mlp):
    model = add_lora(copy.deepcopy(mlp), rank=2, targets=("linear1",))
    assert list(lora_layers(model)) == ["linear1"]
    assert count_parameters(model)["lora"] == 2 * (784 + 1000)


@pytest.mark.parametrize("kwargs, message", [
    ({"rank": 0}, "rank"), ({"rank": -1}, "rank"), ({"rank": 1.5}, "rank"), ({"rank": "2"}, "rank"),
    ({"rank": 11}, "1..10 for linear3's"),  # linear3 has 10 outputs
    ({"rank": 2, "targets": ("linear1",)}, None),
    ({"alpha": 0}, "alpha"), ({"alpha": -1.0}, "alpha"), ({"alpha": float("nan")}, "alpha"),
    ({"alpha": float("inf")}, "alpha"),
    ({"targets": ("linear9",)}, "linear9"), ({"targets": ("relu",)}, "relu"), ({"targets": ()}, "targets"),
    ({"targets": "linear1"}, "targets"),
])
def test_bad_arguments_raise_value_error_naming_the_value(mlp, kwargs, message):
    model = copy.deepcopy(mlp)
    if message is None:
        add_lora(model, **kwargs)
        return
    with pytest.raises(ValueError, match=message):
        add_lora(model, **kwargs)
    assert not lora_layers(model)  # nothing half-registered
    assert all(p.requires_grad for p in model.parameters())


def test_second_add_is_refused(mlp):
    model = add_lora(copy.deepcopy(mlp))
    with pytest.raises(ValueError, match="already"):
        add_lora(model)


def test_not_a_linear_model_target():
    model = nn.Sequential(nn.Conv1d(1, 1, 3))
    with pytest.raises(ValueError, match="not a Linear"):
        add_lora(model, targets=("0",))


@pytest.mark.parametrize("undo", [merge_lora, remove_lora])
def test_undoing_lora_on_a_copy_leaves_the_original_working(mlp, x, undo):
    """copy.deepcopy shares torch's per-module parametrized class; copy_model must not."""
    model = randomise_B(add_lora(copy.deepcopy(mlp), rank=2))
    expected = model(x)
    undo(copy_model(model))
    assert torch.equal(model(x), expected) and lora_layers(model)


@pytest.mark.parametrize("init, A_zero, B_zero", [("kaiming", False, True), ("gaussian", False, True),
                                                  ("zeros", True, True), ("random", False, False)])
def test_inits(init, A_zero, B_zero):
    lora = LoRAParametrization(100, 50, rank=4, init=init, generator=torch.Generator().manual_seed(0))
    assert (torch.count_nonzero(lora.lora_A) == 0) == A_zero
    assert (torch.count_nonzero(lora.lora_B) == 0) == B_zero
    if init == "gaussian":  # PEFT's gaussian init: std 1/r
        assert lora.lora_A.std().item() == pytest.approx(1 / 4, rel=0.1)


def test_rslora_scale_and_unknown_init():
    assert LoRAParametrization(100, 50, rank=4, alpha=8, rslora=True).scale == 8 / 2
    with pytest.raises(ValueError, match="init"):
        LoRAParametrization(100, 50, init="xavier")
