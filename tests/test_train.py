import copy

import numpy as np
import pytest
import torch

from lora_core import (
    FULL_FINETUNE_LR,
    BaselineConfig,
    FinetuneConfig,
    TrainingDiverged,
    adapter_checks,
    compare_ranks,
    evaluate,
    finetune_lora,
    lora_layers,
    new_model,
    original_weight,
    train,
    train_baseline,
)


def test_baseline_learns(baseline):
    assert baseline.complete and len(baseline.losses) == 500  # 5,000 images at batch 10, one epoch
    assert np.mean(baseline.losses[-50:]) < np.mean(baseline.losses[:50]) / 3
    assert baseline.evaluation.accuracy > 0.85


def test_evaluation_matches_a_per_sample_loop(baseline, data):
    """The notebook's per-sample loop on the first 500 test images is the oracle."""
    x, y = data.test_x[:500], data.test_y[:500]
    ours = evaluate(baseline.model, x, y)
    correct, wrong = 0, [0] * 10
    with torch.no_grad():
        for image, label in zip(x, y, strict=True):
            if torch.argmax(baseline.model(image)) == label:
                correct += 1
            else:
                wrong[label] += 1
    assert ours.accuracy == correct / 500 and ours.wrong_per_class == wrong
    assert ours.confusion.sum() == 500 and np.trace(ours.confusion) == correct
    assert ours.wrong_per_class == (ours.confusion.sum(1) - np.diag(ours.confusion)).tolist()


def test_same_seed_is_bit_identical(data):
    config = BaselineConfig(hidden1=64, hidden2=32, max_steps=40, batch_size=32, seed=7)
    a, b = train_baseline(config, data), train_baseline(config, data)
    assert a.losses == b.losses
    assert torch.equal(a.evaluation.predictions, b.evaluation.predictions)
    c = train_baseline(BaselineConfig(hidden1=64, hidden2=32, max_steps=40, batch_size=32, seed=8), data)
    assert c.losses != a.losses


def test_max_steps_callbacks_and_stop(data):
    model = new_model(32, 16, 0, "cpu")
    seen = []
    losses = train(model, data.train_x, data.train_y, epochs=3, batch_size=100, max_steps=7,
                   on_step=lambda step, total, loss: seen.append((step, total, loss)))
    assert len(losses) == 7 and [s[0] for s in seen] == list(range(1, 8)) and {s[1] for s in seen} == {7}
    assert [s[2] for s in seen] == losses
    # more than one epoch: 5000/1000 = 5 steps an epoch, 3 epochs = 15 (the notebook stopped after 1)
    assert len(train(model, data.train_x, data.train_y, epochs=3, batch_size=1000)) == 15
    calls = iter(range(100))
    stopped = train(model, data.train_x, data.train_y, batch_size=100, should_stop=lambda: next(calls) >= 4)
    assert len(stopped) == 4


def test_only_trainable_parameters_change(data):
    model = new_model(32, 16, 0, "cpu")
    model.linear1.weight.requires_grad_(False)
    before = model.linear1.weight.clone(), model.linear2.weight.clone()
    train(model, data.train_x, data.train_y, batch_size=50, max_steps=5)
    assert torch.equal(model.linear1.weight, before[0]) and not torch.equal(model.linear2.weight, before[1])


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": 0}, {"lr": 0.0}, {"lr": -1e-3},
                                    {"max_steps": 0}, {"epochs": 1.5}])
def test_bad_training_arguments(data, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        train(new_model(8, 8, 0, "cpu"), data.train_x, data.train_y, **kwargs)


def test_finetune_on_digit_2_cuts_its_errors(baseline, data):
    run = finetune_lora(baseline.model, data, FinetuneConfig(rank=1, alpha=1.0, digits=(2,), steps=100))
    before, after = run.before.wrong_per_class[2], run.after.wrong_per_class[2]
    print(f"\ndigit-2 wrong count before {before}, after {after}; "
          f"accuracy {run.before.accuracy:.4f} -> {run.after.accuracy:.4f}")
    print("wrong per digit before", run.before.wrong_per_class)
    print("wrong per digit after ", run.after.wrong_per_class)
    assert len(run.losses) == 100  # the notebook's `limit >= total` stopped after one step
    assert after <= before / 2  # learned: the notebook's zero-initialised LoRA left this unchanged
    assert run.parameters == {"base": 2_807_010, "lora": 6794, "trainable": 6794}
    checks = adapter_checks(baseline.model, run.model, data.test_x)
    assert checks["weights_changed"] == 0 and checks["off_vs_base"] == 0
    assert checks["merged_vs_parametrized"] <= 1e-5
    for name, layer in lora_layers(run.model).items():  # base weights bit-identical after finetuning
        assert torch.equal(original_weight(layer), getattr(baseline.model, name).weight)


def test_adapter_checks_detect_a_changed_weight(baseline, data):
    run = finetune_lora(baseline.model, data, FinetuneConfig(steps=3))
    with torch.no_grad():
        original_weight(run.model.linear3).add_(0.5)
    checks = adapter_checks(baseline.model, run.model, data.test_x[:100])
    assert checks["weights_changed"] == pytest.approx(0.5) and checks["off_vs_base"] > 0


def test_notebook_zero_init_never_learns(baseline, data):
    """Why B=0 with A random: with both zero every LoRA gradient is zero and the loss never moves."""
    run = finetune_lora(baseline.model, data, FinetuneConfig(steps=1))
    model = run.model
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.parametrizations.weight[0].lora_A.zero_()
            layer.parametrizations.weight[0].lora_B.zero_()
    x, y = data.train_subset([2])
    frozen = copy.deepcopy(model)
    train(model, x, y, max_steps=20)
    assert evaluate(model, data.test_x, data.test_y).wrong_per_class == run.before.wrong_per_class
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), frozen.parameters(), strict=True))


def test_compare_ranks(baseline, data):
    progress = []
    rows = compare_ranks(baseline.model, data, [2, 1], FinetuneConfig(steps=10, targets=("linear1", "linear2")),
                         on_progress=lambda done, total, label: progress.append((done, total, label)))
    assert [r.method for r in rows] == ["baseline", "LoRA r=1", "LoRA r=2", "full finetune (lr 3e-05)",
                                        "full finetune (lr 0.001)"]  # its own learning rate, then LoRA's
    assert [r.trainable for r in rows] == [0, 4784, 9568, 2_807_010, 2_807_010]  # r·((784+1000)+(1000+2000))
    assert [r.lr for r in rows] == [None, 1e-3, 1e-3, FULL_FINETUNE_LR, 1e-3]
    assert progress[-1][:2] == (40, 40)
    same = compare_ranks(baseline.model, data, [1], FinetuneConfig(steps=2, targets=("linear2",)), full_lr=1e-3)
    assert [r.method for r in same] == ["baseline", "LoRA r=1", "full finetune (lr 0.001)"]  # one run when equal
    base = rows[0]
    assert base.target_wrong == baseline.evaluation.wrong_per_class[2]
    assert base.target_wrong + base.other_wrong == sum(baseline.evaluation.wrong_per_class)
    with pytest.raises(ValueError, match="rank"):
        compare_ranks(baseline.model, data, [16], FinetuneConfig(steps=1))


@pytest.mark.parametrize("kwargs", [{"rank": 0}, {"alpha": 0}, {"steps": 0}, {"digits": ()}, {"digits": (10,)},
                                    {"targets": ()}, {"lr": 0.0}])
def test_bad_finetune_config(kwargs):
    with pytest.raises(ValueError):
        FinetuneConfig(**kwargs)


def test_a_stopped_sweep_returns_only_finished_runs(baseline, data):
    progress = []
    stop_after = lambda: len(progress) >= 12  # rank 1 finishes its 10 steps; rank 2 is cut short
    rows = compare_ranks(baseline.model, data, [1, 2], FinetuneConfig(steps=10, targets=("linear2",)),
                         on_progress=lambda *p: progress.append(p), should_stop=stop_after)
    assert [r.method for r in rows] == ["baseline", "LoRA r=1"]


def test_new_model_is_seeded_by_its_own_generator():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a, b = new_model(50, 40, 3, "cpu"), new_model(50, 40, 3, "cpu")
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator was not touched
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(new_model(50, 40, 4, "cpu").linear1.weight, a.linear1.weight)
    bound = 1 / 784 ** 0.5  # nn.Linear's default init: W and b within ±1/√fan_in
    assert a.linear1.weight.abs().max() <= bound and a.linear1.bias.abs().max() <= bound
    assert a.linear1.weight.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.05)  # std of U(±bound)


def test_baseline_on_start_and_total_steps(data):
    seen = []
    run = train_baseline(BaselineConfig(hidden1=16, hidden2=8, max_steps=3), data, on_start=seen.append)
    assert seen[0] is run.model and run.total_steps == 3 and run.complete
    run = train_baseline(BaselineConfig(hidden1=16, hidden2=8, epochs=2, batch_size=1000), data,
                         should_stop=lambda: True)
    assert run.total_steps == 10 and not run.complete and run.losses == []


def test_a_diverging_run_stops_with_a_clear_error(data):
    model = new_model(64, 32, 0, "cpu")
    with pytest.raises(TrainingDiverged, match="learning rate 1e\\+20") as err:
        train(model, data.train_x, data.train_y, batch_size=100, lr=1e20, max_steps=50)
    assert 1 < err.value.step <= 50
