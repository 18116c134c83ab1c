"""The questions' right answers, computed from real runs on the bundled MNIST sample and checked against
an independent count: predictions counted by hand, count_parameters, outputs compared bit for bit."""
import pytest
import torch

import lora_core as lc
from classroom import ClassroomError, Question, computed
from lora_core.train import logits_of

SMALL = lc.BaselineConfig(hidden1=64, hidden2=32, epochs=1, batch_size=10, max_steps=300)  # seconds on a CPU


@pytest.fixture(scope="module")
def small_baseline(data):
    return lc.train_baseline(SMALL, data)


@pytest.fixture(scope="module")
def rank1_on_2(small_baseline, data):
    return lc.finetune_lora(small_baseline.model, data, lc.FinetuneConfig(rank=1, digits=(2,), steps=100))


def test_prompts_are_the_issue_s_questions_and_bad_parameters_are_named():
    assert Question("still_wrong", {"digit": 2, "rank": 1, "steps": 100}).prompt == \
        "With rank 1 on digit 2 for 100 steps, how many 2s will still be wrong?"
    assert Question("least_forgetting", {"ranks": (1, 4, 16)}).prompt == \
        "Which rank forgets the other digits least: 1, 4, 16 or full finetuning?"
    assert Question("strength_zero").prompt == \
        "Will the adapter at strength 0 give back the original network exactly?"
    assert Question("rank_parameters", {"rank": 4, "hidden1": 1000, "hidden2": 2000}).prompt == \
        "How many trainable parameters does rank 4 add?"
    with pytest.raises(ValueError, match="unknown question 'favourite_colour'"):
        Question("favourite_colour")
    with pytest.raises(ValueError, match="takes digit, rank, steps"):
        Question("still_wrong", {"digit": 2})
    with pytest.raises(ValueError, match="digit must be a whole number in 0..9, got 10"):
        Question("still_wrong", {"digit": 10, "rank": 1, "steps": 100})
    with pytest.raises(ValueError, match="ranks must be different ranks"):
        Question("least_forgetting", {"ranks": [4, 4]})
    number = Question("rank_parameters", {"rank": 4, "hidden1": 1000, "hidden2": 2000})
    assert number.check_value(" 15,176 ") == 15_176 and number.check_value(2.5) == 2.5
    for bad in (True, "1e400", "ten", -3):
        with pytest.raises(ClassroomError, match="answer with a number"):
            number.check_value(bad)
    with pytest.raises(ValueError, match="must be among"):
        Question("strength_zero").check_answer("maybe")


@pytest.mark.parametrize("rank, hidden1, hidden2, targets", [
    (4, 1000, 2000, lc.DEFAULT_TARGETS), (1, 64, 32, lc.DEFAULT_TARGETS), (7, 50, 30, ("linear1", "linear3"))])
def test_rank_parameters_is_r_times_in_plus_out_as_count_parameters_counts(rank, hidden1, hidden2, targets):
    question = Question("rank_parameters", {"rank": rank, "hidden1": hidden1, "hidden2": hidden2})
    model = lc.add_lora(lc.MLP(hidden1, hidden2), rank, targets=targets)
    assert computed.rank_parameters(question, targets) == lc.count_parameters(model)["lora"]
    if targets == lc.DEFAULT_TARGETS and hidden1 == 1000:
        assert computed.rank_parameters(question) == 4 * (784 + 1000) + 4 * (1000 + 2000) + 4 * (2000 + 10) == 27_176


def test_still_wrong_counts_the_digit_s_test_images_the_finetuned_network_gets_wrong(rank1_on_2, data):
    question = Question("still_wrong", {"digit": 2, "rank": 1, "steps": 100})
    predictions = logits_of(lc.merged_copy(rank1_on_2.model), data.test_x).argmax(dim=1)
    twos = data.test_y == 2
    by_hand = int((predictions[twos] != 2).sum())
    assert computed.still_wrong(question, rank1_on_2.config, rank1_on_2.after) == by_hand
    assert 0 < int(twos.sum())
    with pytest.raises(ValueError, match="not the one the question describes"):
        computed.still_wrong(Question("still_wrong", {"digit": 3, "rank": 1, "steps": 100}), rank1_on_2.config,
                             rank1_on_2.after)


def test_strength_zero_gives_back_the_original_network_bit_for_bit(small_baseline, rank1_on_2, data):
    question = Question("strength_zero")
    x = data.test_x[:256]
    assert computed.strength_zero(question, small_baseline.model, rank1_on_2.model, x) == "yes"
    other = lc.copy_model(small_baseline.model)
    with torch.no_grad():
        other.linear1.weight[0, 0] += 1e-3  # a network that differs in one weight is told apart
    assert computed.strength_zero(question, other, rank1_on_2.model, x) == "no"
    with pytest.raises(ValueError, match="not to rank_parameters"):
        computed.strength_zero(Question("rank_parameters", {"rank": 1, "hidden1": 8, "hidden2": 8}),
                               small_baseline.model, rank1_on_2.model, x)


def test_least_forgetting_picks_the_run_with_fewest_errors_on_the_other_digits(small_baseline, data):
    question = Question("least_forgetting", {"ranks": [1, 4, 16]})
    config = lc.FinetuneConfig(targets=("linear1", "linear2"), digits=(2,), steps=30)  # rank 16 fits these
    rows = lc.compare_ranks(small_baseline.model, data, [1, 4, 16], config)
    other_wrong = {"rank 1": rows[1].other_wrong, "rank 4": rows[2].other_wrong, "rank 16": rows[3].other_wrong,
                   "full finetuning": rows[4].other_wrong}
    assert [r.method for r in rows[1:5]] == ["LoRA r=1", "LoRA r=4", "LoRA r=16", f"full finetune (lr {3e-5:g})"]
    fewest = min(other_wrong.values())
    assert computed.least_forgetting(question, rows) == [c for c, w in other_wrong.items() if w == fewest]

    made_up = [lc.SweepRow("baseline", None, 0, 5, 5, 0.9), lc.SweepRow("LoRA r=1", 1, 10, 3, 7, 0.9),
               lc.SweepRow("LoRA r=4", 4, 40, 3, 2, 0.9), lc.SweepRow("LoRA r=16", 16, 160, 3, 2, 0.9),
               lc.SweepRow("full finetune (lr 3e-05)", None, 999, 1, 9, 0.9)]
    assert computed.least_forgetting(question, made_up) == ["rank 4", "rank 16"]  # a tie names both
    with pytest.raises(ValueError, match="no run for rank 16"):
        computed.least_forgetting(question, made_up[:3] + made_up[4:])
