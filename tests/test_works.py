"""The finetune's evaluations and proofs (lora_core.works.adapter_results): one pass over the test images,
with "adapter off" and "merged" taken from the passes whose weights they share bit for bit — checked here
against passes of their own over all 10,000 test images."""
import pytest
import torch

import lora_core as lc
from lora_core import parallel, works
from lora_core.train import logits_of


@pytest.fixture(scope="module")
def tuned(baseline, data):
    return lc.finetune_lora(baseline.model, data, lc.FinetuneConfig(steps=20), before=baseline.evaluation)


def evaluation_with_adapter_off(model, data):
    with lc.lora_enabled(model, False):
        return lc.evaluate(model, data.test_x, data.test_y)


def test_off_and_merged_are_what_their_own_passes_give(baseline, data, tuned):
    results = works.adapter_results(baseline, tuned.model, data, tuned.after)
    assert results["off"] is baseline.evaluation and results["merged"] is tuned.after  # no pass of their own
    off = evaluation_with_adapter_off(tuned.model, data)
    merged = lc.evaluate(lc.merged_copy(tuned.model), data.test_x, data.test_y)
    assert torch.equal(off.predictions, baseline.evaluation.predictions)
    assert torch.equal(merged.predictions, tuned.after.predictions)
    probe = data.test_x[:works.PROOF_IMAGES]
    assert results["checks"] == lc.adapter_checks(baseline.model, tuned.model, probe)
    assert results["checks"]["off_vs_base"] == 0 and results["checks"]["merged_vs_parametrized"] == 0


def test_an_off_network_that_is_not_the_baseline_gets_a_pass_of_its_own(baseline, data, tuned):
    model = lc.copy_model(tuned.model)
    with torch.no_grad():
        lc.original_weight(model.linear3)[0, 0] += 1.0  # the frozen W moved: off is no longer the baseline
    results = works.adapter_results(baseline, model, data)
    off = evaluation_with_adapter_off(model, data)
    assert results["off"] is not baseline.evaluation
    assert torch.equal(results["off"].predictions, off.predictions)
    assert results["checks"]["weights_changed"] == 1.0 and results["checks"]["off_vs_base"] > 0


def test_same_network_sees_one_changed_bit(baseline):
    copy = lc.copy_model(baseline.model)
    assert lc.same_network(copy, baseline.model)
    with torch.no_grad():
        copy.linear2.bias[7] = torch.nextafter(copy.linear2.bias[7], torch.tensor(float("inf")))
    assert not lc.same_network(copy, baseline.model)


def test_a_parametrized_network_is_scored_with_the_bits_of_its_own_forward(data, tuned):
    x = data.test_x[:3_000]
    with parallel.one_thread(), torch.inference_mode():
        forward = torch.cat([tuned.model(chunk) for chunk in x.split(1_000)])  # W + ΔW recomputed per chunk
    assert torch.equal(logits_of(tuned.model, x), forward)
    with lc.lora_enabled(tuned.model, False), parallel.one_thread(), torch.inference_mode():
        off = torch.cat([tuned.model(chunk) for chunk in x.split(1_000)])
        assert torch.equal(logits_of(tuned.model, x), off)
    with lc.factored_forward(tuned.model), torch.inference_mode():  # the proof's other path stays factored
        factored = logits_of(tuned.model, x)
    assert not torch.equal(factored, forward) and torch.allclose(factored, forward, atol=1e-4)


def test_the_merge_proof_compares_the_merge_with_the_parametrized_forward(baseline, data, tuned):
    probe = data.test_x[:works.PROOF_IMAGES]
    merged = logits_of(lc.merged_copy(tuned.model), probe)
    assert lc.adapter_checks(baseline.model, tuned.model, probe, merged_logits=merged)["merged_vs_parametrized"] == 0
    wrong = lc.adapter_checks(baseline.model, tuned.model, probe, merged_logits=merged + 0.25)
    assert wrong["merged_vs_parametrized"] == pytest.approx(0.25, abs=1e-5)  # a merge that differed shows (float32)
