"""Every page through Streamlit's AppTest, its numbers checked against lora_core called directly.

Training is deterministic on the CPU, so the same configs and seed give the same losses and evaluations
in the app and here. Small settings keep the suite quick: the bundled sample, 30 baseline steps.
"""
import json
import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import lora_core as lc
from ui import jobs

APP = "../app.py"  # relative to this file
SMALL_BASELINE = lc.BaselineConfig(max_steps=30)
SMALL_FINETUNE = lc.FinetuneConfig(steps=20)
SWEEP = lc.FinetuneConfig(steps=10, targets=("linear1", "linear2"))


@pytest.fixture(autouse=True)
def empty_data_root(tmp_path, monkeypatch):
    """No full dataset anywhere: only the bundled sample can load."""
    monkeypatch.setenv("LORA_LAB_DATA", str(tmp_path))


@pytest.fixture(scope="module")
def data():
    return lc.load_dataset("mnist-sample")


@pytest.fixture(scope="module")
def core_baseline(data):
    return lc.train_baseline(SMALL_BASELINE, data)


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def with_baseline(page: str) -> AppTest:
    """A session whose baseline is the small one (trained here, or reused from the server store)."""
    at = open_page("pages/baseline.py")
    at.number_input(key="base_max_steps").set_value(SMALL_BASELINE.max_steps).run()
    at.button(key="base_train").click().run()
    assert not at.exception, at.exception
    return at.switch_page(page).run()


def at_root() -> str:
    return os.environ["LORA_LAB_DATA"]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def percent(share: float, digits: int = 2) -> str:
    return f"{share:.{digits}%}"


def test_home_and_sidebar():
    at = open_page()
    assert "LoRA" in at.title[0].value
    assert at.selectbox(key="device").options == lc.available_devices()
    assert at.selectbox(key="dataset").value == "mnist-sample"
    assert any("Bundled MNIST sample" in c.value for c in at.sidebar.caption)
    assert not at.warning


@pytest.mark.parametrize("d, k, true_rank, r", [(10, 10, 2, 2), (10, 10, 2, 1), (64, 32, 8, 3)])
def test_svd_sliders_match_core(d, k, true_rank, r):
    at = open_page("pages/svd.py")
    for key, value in (("svd_d", d), ("svd_k", k), ("svd_true_rank", true_rank), ("svd_r", r)):
        at.slider(key=key).set_value(value).run()
    assert not at.exception, at.exception
    p = lc.playground(d, k, true_rank, r, seed=0)
    shown = metrics(at)
    assert shown["Parameters of W (d·k)"] == f"{d * k:,}"
    assert shown["Parameters of B and A (r·(d+k))"] == f"{r * (d + k):,}"
    assert shown["Numerical rank of W"] == str(p.numerical_rank)
    assert shown["Reconstruction error ‖W − BA‖_F"] == f"{p.error:.3g}"
    assert shown["Relative error ‖W − BA‖_F / ‖W‖_F"] == f"{p.relative_error:.3g}"
    assert shown["Largest |y − y′|"] == f"{p.max_abs_difference:.3g}"
    sigma = next(c for c in charts(at) if c["layout"]["title"]["text"] == "Singular values of W")
    assert sigma["data"][0]["y"] == p.singular_values.tolist()
    table = at.dataframe[0].value
    assert table["y = Wx + b"].tolist() == p.y.tolist()
    assert table["y′ = BAx + b"].tolist() == p.y_prime.tolist()


def test_svd_kept_rank_follows_the_slider_and_its_limit():
    at = open_page("pages/svd.py")
    before = metrics(at)["Reconstruction error ‖W − BA‖_F"]
    at.slider(key="svd_r").set_value(1).run()
    assert metrics(at)["Reconstruction error ‖W − BA‖_F"] != before
    at.slider(key="svd_d").set_value(512).run()
    at.slider(key="svd_k").set_value(3).run()  # ranks are clamped to min(d, k) = 3
    assert not at.exception, at.exception
    assert at.slider(key="svd_r").max == at.slider(key="svd_true_rank").max == 3
    assert at.slider(key="svd_true_rank").value == 2
    assert len(charts(at)) == 4


def test_baseline_trains_and_matches_core(core_baseline):
    at = open_page("pages/baseline.py")
    assert at.button(key="base_stop").disabled
    at.number_input(key="base_max_steps").set_value(30).run()
    at.button(key="base_train").click().run()
    assert not at.exception, at.exception
    shown = metrics(at)
    assert shown["Test accuracy"] == percent(core_baseline.evaluation.accuracy)
    assert shown["Wrong test images"] == f"{core_baseline.evaluation.wrong:,}"
    assert shown["Steps trained"] == "30"
    loss, wrong = charts(at)
    assert loss["data"][0]["y"] == core_baseline.losses
    assert wrong["data"][0]["y"] == core_baseline.evaluation.wrong_per_class
    table = at.dataframe[0].value
    assert table["parameters"].tolist() == [785_000, 2_002_000, 20_010, 2_807_010]

    second = open_page("pages/baseline.py")  # another user, same settings: nothing is trained again
    second.number_input(key="base_max_steps").set_value(30).run()
    second.button(key="base_train").click().run()
    assert "Reused a baseline" in second.success[0].value
    assert metrics(second) == shown


def test_notebook_settings_button():
    at = open_page("pages/baseline.py")
    at.button(key="base_notebook").click().run()
    assert at.number_input(key="base_batch").value == lc.NOTEBOOK_BASELINE.batch_size == 10
    assert at.number_input(key="base_epochs").value == lc.NOTEBOOK_BASELINE.epochs == 1


def test_stop_keeps_what_was_learned(data):
    """Stop ends training between steps; the page then shows the partly trained model's results.

    AppTest only sees finished runs, where Stop is disabled (Streamlit drops clicks on disabled
    widgets), so this does what the Stop button's callback does while training shows.
    """
    at = open_page("pages/baseline.py")
    config = lc.BaselineConfig(seed=7)  # 237 steps: far more than run before the stop
    session = at.session_state["session_id"]
    how, job = jobs.start_baseline(data, config, session)
    assert how == "started"
    at.session_state["baseline_job"] = job
    at.session_state["baseline_job_info"] = {"key": jobs.baseline_key(data, config), "how": how}
    while job.step < 3:
        time.sleep(0.01)
    assert jobs.leave_baseline(job, session) == 0  # nobody else follows it, so it stops
    at.run()
    assert not at.exception, at.exception
    run = at.session_state["baseline"]["run"]
    assert 3 <= len(run.losses) < run.total_steps == 237
    assert "Stopped after" in at.warning[0].value
    shown = metrics(at)
    assert shown["Steps trained"] == str(len(run.losses))
    assert shown["Test accuracy"] == percent(lc.evaluate(run.model, data.test_x, data.test_y).accuracy)
    assert charts(at)[0]["data"][0]["y"] == run.losses
    assert jobs.baseline_key(data, config) not in jobs._store()["done"]  # a partial run is not shared


def test_lora_finetune_matches_core(data, core_baseline):
    at = with_baseline("pages/lora.py")
    shown = metrics(at)
    assert shown["Original parameters (frozen)"] == "2,807,010"
    assert shown["LoRA parameters (trained)"] == "6,794"
    assert shown["Increase"] == "0.242%"

    at.slider(key="lora_rank").set_value(16).run()  # linear3 has only 10 outputs
    assert not at.exception
    assert "rank must be an integer in 1..10 for linear3's 10×2000 matrix, got 16" in at.error[0].value
    at.slider(key="lora_rank").set_value(1).run()

    at.number_input(key="lora_steps").set_value(SMALL_FINETUNE.steps).run()
    at.button(key="lora_train").click().run()
    assert not at.exception, at.exception
    core = lc.finetune_lora(core_baseline.model, data, SMALL_FINETUNE)
    shown = metrics(at)
    assert shown["Accuracy before"] == percent(core.before.accuracy)
    assert shown["Accuracy after LoRA"] == percent(core.after.accuracy)
    assert shown["Wrong on class 2"] == f"{core.after.wrong_per_class[2]:,}"
    loss, bars = charts(at)
    assert loss["data"][0]["y"] == core.losses
    assert bars["data"][0]["y"] == core.before.wrong_per_class
    assert bars["data"][1]["y"] == core.after.wrong_per_class
    proofs = [m.value for m in at.markdown if m.value.startswith(("✅", "❌"))]
    assert len(proofs) == 3 and all(p.startswith("✅") for p in proofs)

    at.toggle(key="lora_adapter_on").set_value(False).run()  # off: exactly the baseline again
    assert metrics(at)["Accuracy adapter off"] == percent(core.before.accuracy)
    assert charts(at)[1]["data"][1]["y"] == core.before.wrong_per_class


def test_rank_comparison_matches_core(data, core_baseline):
    at = with_baseline("pages/ranks.py")
    assert at.multiselect(key="sweep_targets").value == ["linear1", "linear2"]
    at.multiselect(key="sweep_targets").set_value(["linear1", "linear2", "linear3"]).run()
    assert "1..10 for linear3's 10×2000 matrix, got 16" in at.error[0].value  # rank 16 > 10
    at.multiselect(key="sweep_targets").set_value(["linear1", "linear2"]).run()
    at.multiselect(key="sweep_ranks").set_value([1, 2]).run()
    at.number_input(key="sweep_steps").set_value(SWEEP.steps).run()
    at.button(key="sweep_run").click().run()
    assert not at.exception, at.exception
    rows = lc.compare_ranks(core_baseline.model, data, [1, 2], SWEEP)
    table = at.dataframe[0].value
    assert table["method"].tolist() == [r.method for r in rows]
    assert table["trainable"].tolist() == [r.trainable for r in rows]
    assert table["target_wrong"].tolist() == [r.target_wrong for r in rows]
    assert table["accuracy"].tolist() == [r.accuracy for r in rows]
    learned, forgotten = charts(at)
    assert learned["layout"]["xaxis"]["type"] == "log"
    assert learned["data"][0]["y"] == [r.target_wrong for r in rows[1:3]]
    assert forgotten["data"][1]["y"] == [rows[-1].accuracy]
    assert at.get("download_button")


def test_unavailable_dataset_falls_back_to_the_sample():
    # AppTest shows the frame's elements (sidebar, warning) only on a session's first run: choose first
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["dataset"] = "mnist"
    at.run()
    assert not at.exception, at.exception
    assert "MNIST (full" in at.warning[0].value and "bundled MNIST sample is used" in at.warning[0].value
    assert "could not be downloaded" in at.warning[0].value
    assert any("Bundled MNIST sample" in c.value for c in at.sidebar.caption)
    at.switch_page("pages/baseline.py").run()
    assert not at.exception, at.exception
    assert "mnist-sample" in at.info[0].value  # the page goes on with the sample


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs Debian's dataset-fashion-mnist package")
def test_fashion_mnist_shows_class_names():
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["dataset"] = "fashion-mnist"
    at.run()
    assert not at.exception and not at.warning
    assert any("Fashion-MNIST" in c.value for c in at.sidebar.caption)
    at.switch_page("pages/baseline.py").run()
    at.number_input(key="base_max_steps").set_value(5).run()
    at.button(key="base_train").click().run()
    assert not at.exception, at.exception
    wrong = charts(at)[1]
    assert wrong["data"][0]["x"] == list(lc.load_dataset("fashion-mnist", root=at_root()).classes)
    assert wrong["data"][0]["x"][2] == "Pullover"
