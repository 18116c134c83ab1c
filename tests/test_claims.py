"""Every quantitative sentence the pages teach, measured on the real objects.

Each test names the page and the sentence it pins: changing the code or the defaults so that a sentence
becomes false makes its test fail. The baseline is the app's default (BaselineConfig() on the bundled
sample), trained once for the module at one torch thread.
"""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

import lora_core as lc
from lora_core import anatomy, studies
from lora_core.data import MEAN, STD
from lora_core.lora import lora_of

SWEEP = lc.FinetuneConfig(targets=("linear1", "linear2"))  # the Rank comparison page's defaults


@pytest.fixture(scope="module")
def threads_one():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def default_base(data, threads_one):
    """The baseline the app trains by default."""
    return lc.train_baseline(lc.BaselineConfig(), data)


def _first_step_norms(base, data, rslora: bool, ranks) -> list[float]:
    config = lc.FinetuneConfig(alpha=8.0, targets=("linear1", "linear2"), steps=1, rslora=rslora)
    few = replace(data, test_x=data.test_x[:10], test_y=data.test_y[:10])  # the claim is about ΔW: skip the test pass
    return [lc.finetune_lora(base.model, few, replace(config, rank=r), before=base.evaluation).update_norms[0]
            for r in ranks]


def test_alpha_over_r_shrinks_the_update_like_one_over_sqrt_r(default_base, data):
    """Scaling explorer, LoRA page, home page, README: after one Adam step ‖ΔW‖ falls like 1/√r under α/r
    and stays flat under α/√r."""
    ranks = [1, 4, 16, 64]
    plain = studies.scaling_exponent(ranks, _first_step_norms(default_base, data, False, ranks))
    stabilised = studies.scaling_exponent(ranks, _first_step_norms(default_base, data, True, ranks))
    assert plain == pytest.approx(-0.5, abs=0.1)
    assert stabilised == pytest.approx(0.0, abs=0.1)


def test_scaling_exponent_against_numpy():
    ranks, values = [1, 2, 4, 8], [3.0, 2.2, 1.4, 1.1]
    assert studies.scaling_exponent(ranks, values) == pytest.approx(np.polyfit(np.log(ranks), np.log(values), 1)[0])
    with pytest.raises(ValueError, match="two different ranks"):
        studies.scaling_exponent([4, 4], [1.0, 2.0])


def test_chance_level_of_subspace_similarity_is_r_over_d():
    """Rank oracle: random r-dimensional subspaces of R^d score r/d on average (0.8 at r = 8, d = 10)."""
    generator = torch.Generator().manual_seed(0)
    for r, d in [(1, 10), (8, 10), (4, 50)]:
        scores = [anatomy.subspace_similarity(torch.randn(d, r, generator=generator, dtype=torch.float64),
                                              torch.randn(d, r, generator=generator, dtype=torch.float64))["similarity"]
                  for _ in range(400)]
        assert np.mean(scores) == pytest.approx(anatomy.chance_similarity(r, d), abs=4 * np.std(scores) / 20)
    assert anatomy.chance_similarity(8, 10) == 0.8
    assert lc.MLP().linear3.out_features == 10  # "linear3's 10 outputs"
    # "near 0 for linear1 and linear2, with 1,000s of outputs" (the default sizes)
    assert lc.MLP().linear1.out_features >= 1000 and anatomy.chance_similarity(8, lc.MLP().linear1.out_features) < 0.01
    with pytest.raises(ValueError, match="r=11"):
        anatomy.chance_similarity(11, 10)


def test_A_moves_as_far_as_its_start_within_50_steps(default_base, data):
    """ΔW inspector: at learning rate 1e-3, linear1's ‖A − A₀‖ reaches ‖A₀‖ within 50 steps."""
    start = {}
    run = lc.finetune_lora(default_base.model, data, lc.FinetuneConfig(steps=50, lr=1e-3),
                           on_start=lambda m: start.update(A=lora_of(m.linear1).lora_A.detach().clone()))
    A = lora_of(run.model.linear1).lora_A.detach()
    assert float((A - start["A"]).norm() / start["A"].norm()) >= 1


def test_signs_of_A_mean_nothing_alone_and_blank_pixels_are_not_zero(data):
    """ΔW inspector: flipping B and A leaves ΔW unchanged; a blank pixel is −0.42 after normalisation."""
    lora = lc.LoRAParametrization(6, 5, rank=2, generator=torch.Generator().manual_seed(0), init="random")
    before = lora.delta_weight().detach().clone()
    with torch.no_grad():
        lora.lora_A.neg_(), lora.lora_B.neg_()
    assert torch.equal(lora.delta_weight(), before)
    assert f"{-MEAN / STD:.2f}" == "-0.42"
    assert float(data.test_x.min()) == pytest.approx(-MEAN / STD)  # the blank background, as the net sees it


def test_same_seed_same_thread_count_gives_the_same_numbers(data):
    """Sidebar: the same seed gives the same numbers every time on this server (a fixed thread count)."""
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            config = lc.BaselineConfig(hidden1=64, hidden2=32, max_steps=40)
            first, second = lc.train_baseline(config, data), lc.train_baseline(config, data)
            assert first.losses == second.losses
            assert all(torch.equal(a, b) for a, b in zip(first.model.parameters(), second.model.parameters(),
                                                         strict=True))
    finally:
        torch.set_num_threads(previous)


def test_full_finetuning_collapses_at_loras_rate_and_not_at_its_own(default_base, data):
    """Rank comparison and oracle: at LoRA's 1e-3 full finetuning on one class answers that class for almost
    every image; at FULL_FINETUNE_LR it learns the class and keeps most of the accuracy; LoRA at the same
    1e-3 learns less and forgets less than full finetuning does."""
    rows = {r.method: r for r in lc.compare_ranks(default_base.model, data, [1], SWEEP)}
    base, lora = rows["baseline"], rows["LoRA r=1"]
    collapsed = rows[f"full finetune (lr {SWEEP.lr:g})"]
    own = rows[f"full finetune (lr {lc.FULL_FINETUNE_LR:g})"]
    assert collapsed.accuracy < 0.2  # ~ one class's share of the test images
    _, _, evaluation = lc.finetune_full(default_base.model, data, SWEEP)
    assert float((evaluation.predictions == SWEEP.digits[0]).float().mean()) > 0.9  # answers 2 for almost all
    assert own.accuracy > 0.85 and own.target_wrong < base.target_wrong / 2
    assert lora.target_wrong > collapsed.target_wrong and lora.other_wrong < collapsed.other_wrong
    assert collapsed.lr == SWEEP.lr and own.lr == lc.FULL_FINETUNE_LR


def test_factored_training_path_agrees_with_the_parametrized_weight(default_base, data):
    """LoRA page: the adapter trained through W·x + s·B·(A·x); W′ = W + s·B·A gives the same logits within the
    stated relative tolerance."""
    run = lc.finetune_lora(default_base.model, data, lc.FinetuneConfig())
    checks = lc.adapter_checks(default_base.model, run.model, data.test_x)
    assert 0 <= checks["factored_vs_parametrized"] <= lc.FACTORED_TOLERANCE


def test_home_page_numbers():
    """Home page: rank 1 trains 0.24 % of the network's 2.8 million parameters."""
    model = lc.add_lora(lc.MLP(), rank=1)
    counts = lc.count_parameters(model)
    assert f"{counts['lora'] / counts['base']:.2%}" == "0.24%" and round(counts["base"] / 1e6, 1) == 2.8


def test_notebook_page_numbers(data):
    """The notebook page: its step limit `limit >= total` ends after one step; the bundled sample holds all
    10,000 test images and 5,000 training images; the notebook's rank-1 adapter adds 6,794 parameters."""
    limit, iterations = 100, 0
    while True:  # the notebook's loop, reduced to its stopping rule
        iterations += 1
        if limit is not None and limit >= iterations:
            break
    assert iterations == 1
    assert len(data.test_y) == 10_000 and len(data.train_y) == 5_000
    assert lc.count_parameters(lc.add_lora(lc.MLP(), rank=1))["lora"] == 6794
    assert math.isclose(6794 / 2_807_010 * 100, 0.242, abs_tol=5e-4)  # "Prams increment : 0.242%"
