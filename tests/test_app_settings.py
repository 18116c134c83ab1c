"""The settings table on the pages: a value the table allows but the server's cap does not is kept as typed
and refused by the cap, in its words, when Train is pressed; a set picked in any order is one setting."""
from conftest import open_session, train_baseline

from service import limits

SMALL = {"base_hidden2": 8, "base_max_steps": 2}


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


def test_a_hidden_size_over_the_cap_is_kept_and_refused_by_the_cap_when_train_is_pressed():
    at = open_session(SMALL)
    at.switch_page("app_pages/baseline.py").run()
    at.number_input(key="base_hidden1").set_value(3000).run()
    at.button(key="base_train").click().run()
    assert not at.exception, at.exception
    refusal = f"a hidden layer of 3,000 neurons is larger than this server allows ({limits.DEFAULT_MAX_HIDDEN:,})"
    assert refusal in texts(at.error)
    at.run()  # the next pass keeps what was typed: nothing clamps it to the cap
    assert at.number_input(key="base_hidden1").value == 3000
    assert at.session_state["experiment"].baseline.hidden1 == 3000
    assert at.query_params["h1"] == "3000"
    assert f"at most {limits.DEFAULT_MAX_HIDDEN:,} neurons" in at.number_input(key="base_hidden1").help


def test_layers_picked_out_of_order_are_held_and_linked_in_one_order():
    at = open_session(SMALL, base_hidden1=8)
    train_baseline(at)  # the LoRA page draws its inputs over a baseline
    at.switch_page("app_pages/lora.py").run()
    at.multiselect(key="lora_targets").set_value(["linear3", "linear1"]).run()
    assert not at.exception, at.exception
    at.run()
    assert at.session_state["lora_targets"] == ["linear1", "linear3"]
    assert at.session_state["experiment"].finetune.targets == ("linear1", "linear3")
    assert at.query_params["targets"] == "linear1,linear3"


def test_a_rank_that_does_not_fit_on_the_lora_page_does_not_stop_a_study_of_ranks():
    at = open_session(SMALL, base_hidden1=8)
    train_baseline(at)
    at.session_state["lora_rank"] = 32  # linear3, a default target, holds rank 10 at most
    at.switch_page("app_pages/lora.py").run()
    assert "does not fit linear3" in texts(at.error)
    at.switch_page("app_pages/frontier.py").run()
    assert not at.exception and not at.error, (at.exception, texts(at.error))
    assert at.button(key="frontier_run").label == "Train the adapters"
