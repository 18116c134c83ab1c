"""Intruder dimensions page: each of its sentences measured on the real objects (the app's default baseline,
trained once for the module at one torch thread, as tests/test_claims.py does)."""
import inspect
import math

import numpy as np
import pytest
from test_claims import default_base, threads_one  # noqa: F401  (fixtures)

import lora_core as lc
from lora_core import intruders
from lora_core.settings import LEARNING_RATES
from lora_core.studies import rank_oracle

peft = pytest.importorskip("peft")
from peft.tuners.lora.intruders import reduce_intruder_dimension  # noqa: E402

HIGH_LR = lc.FinetuneConfig(steps=50, lr=max(LEARNING_RATES))  # the page's example: default baseline, class 2


def test_epsilon_and_top_k_are_peft_s_defaults():
    """"below ε = 0.5 (PEFT's default)", "W′'s top 10 left singular vectors"."""
    defaults = inspect.signature(reduce_intruder_dimension).parameters
    assert defaults["threshold_epsilon"].default == intruders.EPSILON == 0.5
    assert defaults["top_k"].default == intruders.TOP_K == 10


@pytest.fixture(scope="module")
def loud(default_base, data):  # noqa: F811
    """The rank oracle at r = 1 with the LoRA page's learning rate at its largest."""
    return rank_oracle(default_base.model, data, HIGH_LR, [1])


def test_a_large_lora_update_comes_close_to_an_intruder_and_forgets(loud, data):  # noqa: F811
    """"With the LoRA page's learning rate at 0.01 (default baseline, class 2, 50 steps), LoRA r=1's directions
    in linear2 come close to ε: its smallest |cosine| drops to about 0.55 while full finetuning's stays above
    0.95, and it forgets most of the other classes"; and, as the paper finds, full finetuning's W′ has no
    intruder."""
    full, lora = loud.intruders
    assert HIGH_LR.digits == (2,) and lc.Experiment().oracle.steps == HIGH_LR.steps  # the defaults the page names
    smallest = min(lora.layer("linear2").similarity)
    assert round(smallest, 2) == 0.55 and smallest > intruders.EPSILON  # close, and (as the page says) above ε
    assert min(full.layer("linear2").similarity) > 0.95
    others = int((data.test_y != 2).sum())
    assert lora.other_wrong > others / 2 and lora.forgotten > others / 2
    assert all(not found.intruders for found in full.layers)


def test_linear3s_directions_span_its_outputs(loud, default_base):  # noqa: F811
    """"linear3 has 10 outputs, and W's 10 left singular vectors span all of them: every direction of W′ has a
    |cosine| of at least 1/√10 ≈ 0.32 with one of them"."""
    W = default_base.model.linear3.weight.detach().double().numpy()
    assert W.shape[0] == 10 and np.linalg.matrix_rank(W) == 10
    U = np.linalg.svd(W, full_matrices=False)[0]  # (10, 10): an orthonormal basis of R^10
    unit = np.random.default_rng(0).normal(size=(10, 1000))
    unit /= np.linalg.norm(unit, axis=0)
    assert (np.abs(U.T @ unit).max(axis=0) >= 1 / math.sqrt(10) - 1e-12).all()
    balanced = U.sum(axis=1) / math.sqrt(10)  # equally far from all ten: the bound is reached
    assert np.abs(U.T @ balanced).max() == pytest.approx(1 / math.sqrt(10))
    for run in loud.intruders:
        found = run.layer("linear3")
        assert found.spans_output_space and found.outputs == 10 and found.floor == pytest.approx(1 / math.sqrt(10))
        assert min(found.similarity) >= found.floor - 1e-6
    assert f"{1 / math.sqrt(10):.2f}" == "0.32"


def test_wide_layers_leave_room_for_new_directions(default_base):  # noqa: F811
    """The floor is drawn only for linear3: linear1 and linear2 have more outputs than W's rank can fill."""
    for name in ("linear1", "linear2"):
        assert not intruders.directions(default_base.model.get_submodule(name).weight.detach()).spans_output_space
