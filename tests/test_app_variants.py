"""DoRA and LoRA+ on the LoRA page: the page's numbers are lora_core's, which tests/test_variants.py checks
against PEFT."""
from conftest import metrics, open_session, train_baseline

import lora_core as lc

SETTINGS = {"base_hidden1": 32, "base_hidden2": 16, "base_max_steps": 40, "lora_steps": 30, "lora_rank": 2}


def test_a_dora_finetune_with_loraplus_shows_lora_cores_numbers():
    at = open_session(SETTINGS, timeout=180)
    base = train_baseline(at)["run"]
    at.switch_page("pages/lora.py").run()
    at.toggle(key="lora_dora").set_value(True).run()
    at.number_input(key="lora_loraplus").set_value(4.0).run()
    assert at.query_params["dora"] in ("1", ["1"]) and at.query_params["loraplus"] in ("4", ["4"])  # the link
    at.button(key="lora_train").click().run()
    assert not at.exception, at.exception
    config = lc.FinetuneConfig(rank=2, steps=30, seed=at.session_state["seed"], dora=True, loraplus_ratio=4.0)
    core = lc.finetune_lora(base.model, lc.load_dataset("mnist-sample"), config)
    plain = lc.finetune_lora(base.model, lc.load_dataset("mnist-sample"), lc.FinetuneConfig(rank=2, steps=30,
                                                                                      seed=config.seed))
    assert metrics(at)["Accuracy after LoRA"] == f"{core.after.accuracy:.2%}"
    assert core.after.predictions.tolist() != plain.after.predictions.tolist()  # the options change the run
