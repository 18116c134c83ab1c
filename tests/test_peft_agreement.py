"""Our LoRA against PEFT's, an implementation nobody here wrote: same A, B, r and α → same outputs."""
import copy

import pytest
import torch

peft = pytest.importorskip("peft")

from lora_core import MLP, add_lora, lora_layers, lora_of, merge_lora  # noqa: E402


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return MLP()


@pytest.mark.parametrize("rank, alpha, targets, rslora", [(1, 1.0, ("linear1", "linear2", "linear3"), False),
                                                           (8, 16.0, ("linear1", "linear2", "linear3"), False),
                                                           (4, 2.0, ("linear2",), False),
                                                           (4, 2.0, ("linear1", "linear3"), True)])
def test_same_outputs_as_peft(mlp, rank, alpha, targets, rslora):
    ours = add_lora(copy.deepcopy(mlp), rank=rank, alpha=alpha, targets=targets, seed=3, rslora=rslora)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for layer in lora_layers(ours).values():  # non-zero B, or the comparison could not fail
            lora_of(layer).lora_B.copy_(torch.randn(lora_of(layer).lora_B.shape, generator=gen) * 0.1)
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0,
                             use_rslora=rslora)
    theirs = peft.get_peft_model(copy.deepcopy(mlp), config)
    with torch.no_grad():
        for name, layer in lora_layers(ours).items():
            peft_layer = theirs.base_model.model.get_submodule(name)
            peft_layer.lora_A["default"].weight.copy_(lora_of(layer).lora_A)  # (r, in)
            peft_layer.lora_B["default"].weight.copy_(lora_of(layer).lora_B)  # (out, r)
    x = torch.randn(256, 784, generator=gen)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        expected = theirs(x)
        assert (expected - mlp(x)).abs().max() > 1e-2  # the adapter really changes the outputs
        assert (ours(x) - expected).abs().max() <= 1e-5
        assert (merge_lora(ours)(x) - expected).abs().max() <= 1e-5
