"""The Intruder dimensions page through AppTest: its numbers are lora_core's on the same runs, and one similarity
is recomputed from numpy's SVD of W and W′."""
from dataclasses import replace

import numpy as np
import pytest
from test_app_inside import STEPS, charts, click, session

import lora_core as lc
from lora_core import studies

pytestmark = pytest.mark.usefixtures("empty_data_root")
CONFIG = lc.FinetuneConfig(steps=STEPS, targets=("linear1", "linear2", "linear3"))


def _wrong(model, data, digits) -> tuple[int, int]:
    """(errors on `digits`, errors on the other classes), counted from the logits' argmax."""
    wrong = (model(data.test_x).argmax(1) != data.test_y).numpy()
    target = np.isin(data.test_y.numpy(), digits)
    return int(wrong[target].sum()), int(wrong[~target].sum())


def test_intruders_page_matches_core(data, narrow_baseline):
    base = narrow_baseline.model
    at = session("app_pages/intruders.py", oracle_ranks=[1, 4], oracle_steps=STEPS)
    click(at, "oracle_run")
    runs = studies.rank_oracle(base, data, CONFIG, [1, 4]).intruders
    assert [r.run for r in runs] == ["full finetuning", "LoRA r=1", "LoRA r=4"]

    table = at.dataframe[0].value.to_dict("records")
    assert [row["run"] for row in table] == [r.run for r in runs]
    for row, run in zip(table, runs, strict=True):
        assert row["intruders in linear1"] == len(run.layer("linear1").intruders)
        assert row["intruders in linear2"] == len(run.layer("linear2").intruders)
        assert row["learned: errors fixed on class 2"] == run.learned
        assert row["forgotten: errors added on the other classes"] == run.forgotten

    full, _, _ = lc.finetune_full(base, data, replace(CONFIG, lr=lc.FULL_FINETUNE_LR))
    U = np.linalg.svd(base.linear1.weight.detach().double().numpy(), full_matrices=False)[0]
    U_new = np.linalg.svd(full.linear1.weight.detach().double().numpy(), full_matrices=False)[0]
    expected = np.abs(U_new[:, 0] @ U).max()  # W′'s first direction against every one of W's
    lines = {line["name"]: line["y"] for line in charts(at)["linear1: W′'s top singular vectors against W's"]["data"]}
    assert lines["full"][0] == pytest.approx(expected, rel=1e-5)
    assert lines["r=4"] == pytest.approx(list(runs[2].layer("linear1").similarity), rel=1e-6)
    base_target, base_other = _wrong(base, data, CONFIG.digits)
    full_target, full_other = _wrong(full, data, CONFIG.digits)
    assert table[0]["learned: errors fixed on class 2"] == base_target - full_target
    assert table[0]["forgotten: errors added on the other classes"] == full_other - base_other

    sentences = " ".join(m.value for m in at.markdown)
    assert "linear3 has 10 outputs" in sentences and "1/√10 ≈ 0.32" in sentences
    assert not any(r.layer(name).intruders for r in runs for name in ("linear1", "linear2"))  # these small runs:
    assert "No run has an intruder in linear1 or linear2" in sentences  # the page says so
    at.selectbox(key="intr_layer").set_value("linear3").run()
    floor = charts(at)["linear3: W′'s top singular vectors against W's"]["layout"]["shapes"][1]
    assert floor["y0"] == pytest.approx(1 / np.sqrt(10))
