"""DoRA, LoRA+, PiSSA and OLoRA on the LoRA page: the page's numbers are lora_core's, which
tests/test_variants.py checks against PEFT."""
import copy
import io
import json
import re
import zipfile

import numpy as np
import pytest
from conftest import metrics, open_session, train_baseline

import lora_core as lc
from lora_core import works
from ui import adapters

SETTINGS = {"base_hidden1": 32, "base_hidden2": 16, "base_max_steps": 40, "lora_steps": 30, "lora_rank": 2}


def test_a_dora_finetune_with_loraplus_shows_lora_cores_numbers():
    at = open_session(SETTINGS, timeout=180)
    base = train_baseline(at)["run"]
    at.switch_page("app_pages/lora.py").run()
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


def proofs(at) -> dict[str, tuple[bool, float]]:
    """The LoRA page's proofs: claim → (marked as holding, the value shown)."""
    found = {}
    for text in (m.value for m in at.markdown):
        if match := re.search(r"\*\*(.+?)\*\* — .+ = `([^`]+)`", text):
            found[match.group(1)] = ("check_circle" in text, float(match.group(2)))
    return found


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_a_pissa_or_olora_finetune_proves_its_start_and_loads_in_peft_on_the_original_baseline(init, tmp_path):
    """The step-0 proofs against a float64 numpy forward of the residual (SVD or QR), the other proofs hold for
    the baseline's own weights, and the page's PEFT zip on the original baseline gives the page's accuracy."""
    peft = pytest.importorskip("peft")
    at = open_session({**SETTINGS, "lora_init": init}, timeout=180)
    base = train_baseline(at)["run"].model
    at.switch_page("app_pages/lora.py").run()
    assert at.query_params["init"] in (init, [init])  # the link
    at.button(key="lora_train").click().run()
    assert not at.exception, at.exception
    shown = proofs(at)
    assert all(holds for holds, _ in shown.values()) and len(shown) == 6, shown
    assert shown["The original weights are unchanged"][1] == 0  # the adapter is kept for the baseline's own W
    assert shown["Adapter off gives the original network's outputs"][1] == 0
    x = lc.load_dataset("mnist-sample").test_x[:works.PROOF_IMAGES].reshape(-1, 784).double().numpy()
    layers = [(getattr(base, n).weight.detach().double().numpy(), getattr(base, n).bias.detach().double().numpy())
              for n in ("linear1", "linear2", "linear3")]
    residual = []
    for W, b in layers:  # rank 2, α 1: s = 1/2
        if init == "pissa":
            U, S, Vh = np.linalg.svd(W, full_matrices=False)
            residual.append((W - (U[:, :2] * S[:2]) @ Vh[:2], b))
        else:
            Q, R = np.linalg.qr(W)
            residual.append((W - 0.5 * Q[:, :2] @ R[:2], b))
    before = forward(layers, x)
    expected = np.abs(forward(residual, x) - before).max() / np.abs(before).max()
    assert shown["The residual base alone (adapter off at step 0) did not"][1] == pytest.approx(expected, rel=1e-2)
    assert shown["At step 0 the adapted network (residual base + s·B₀·A₀) gave the baseline's outputs"][1] <= 1e-5
    with zipfile.ZipFile(io.BytesIO(adapters.zip_bytes(at.session_state["lora"], True))) as zf:
        zf.extractall(tmp_path)  # what "Download for PEFT (.zip)" gives
    assert json.loads((tmp_path / "adapter_config.json").read_text())["r"] == 4  # [B | −B₀]·[A; A₀]: rank 2r
    theirs = peft.PeftModel.from_pretrained(copy.deepcopy(base), str(tmp_path)).eval()
    data = lc.load_dataset("mnist-sample")
    assert metrics(at)["Accuracy after LoRA"] == f"{lc.evaluate(theirs, data.test_x, data.test_y).accuracy:.2%}"


def forward(layers, x):
    for i, (W, b) in enumerate(layers):
        x = x @ W.T + b
        x = np.maximum(x, 0) if i < len(layers) - 1 else x
    return x
