"""Every page through Streamlit's AppTest, its numbers checked against lora_core called directly.

Training is deterministic on the CPU, so the same configs and seed give the same losses and evaluations
in the app and here. Small settings keep the suite quick: the bundled sample, 30 baseline steps.
"""
import io
import json
import os
import time
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import APP, SMALL_BASELINE, SMALL_FINETUNE, metrics
from plain_text import as_shown
from safetensors.torch import save as save_safetensors
from streamlit.testing.v1 import AppTest

import lora_core as lc
from lora_core import presets, works
from lora_core.adapter_files import FORMAT, MAX_ADAPTER_BYTES, adapter_bytes
from lora_core.adapter_zips import adapter_zip
from service import runs
from service.runs import Run

SWEEP = lc.FinetuneConfig(steps=10, targets=("linear1", "linear2"))


pytestmark = pytest.mark.usefixtures("empty_data_root")


@pytest.fixture
def core_baseline(small_baseline):
    """What the pages' small baseline must show (conftest trains it once per test session)."""
    return small_baseline


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def train(at: AppTest, key: str) -> AppTest:
    """Click a Train button, unless the run it would make is stored already (then it is disabled and shown)."""
    if not at.button(key=key).disabled:
        at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def with_baseline(page: str) -> AppTest:
    """A session whose baseline is the small one (trained here, or found in the server's store)."""
    at = open_page("app_pages/baseline.py")
    at.number_input(key="base_max_steps").set_value(SMALL_BASELINE.max_steps).run()
    train(at, "base_train")
    return at.switch_page(page).run()


def held_baseline(at: AppTest) -> lc.BaselineRun:
    """The baseline the session's experiment describes, from the server's run store."""
    return runs.find(runs.key(at.session_state["experiment"], "baseline", "cpu"))


def at_root() -> str:
    return os.environ["LORA_LAB_DATA"]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def chart(at: AppTest, title: str) -> dict:
    (found,) = [c for c in charts(at) if c["layout"]["title"]["text"].replace("<br>", " ") == title]  # wrapped
    return found


def percent(share: float, digits: int = 2) -> str:
    return f"{share:.{digits}%}"


def test_no_folder_next_to_the_app_is_named_pages():
    """Streamlit takes a `pages/` folder beside app.py for its own page list: a fresh server whose first
    visitor opened a page's URL then listed the folder's file names ("app", "baseline", ...) for good, whatever
    st.navigation declared. The pages live in app_pages/."""
    assert not (Path(APP).parent / "pages").exists()
    assert (Path(APP).parent / "app_pages" / "home.py").exists()


def test_the_notebook_page_quotes_the_notebook():
    at = open_page("app_pages/notebook.py")
    assert at.title[0].value == "The notebook"
    quoted = "\n".join(c.value for c in at.code)
    assert "Accuracy : 0.961" in quoted and "Params introduced by LoRA : 6,794" in quoted
    text = "\n".join(m.value for m in at.markdown)
    assert f"default trains {lc.FinetuneConfig().steps} steps" in text


def test_home_and_sidebar():
    at = open_page()
    assert at.title[0].value == "LoRA Lab"
    assert any("**LoRA — low-rank adaptation**" in m.value for m in at.markdown)
    assert at.selectbox(key="device").options == lc.available_devices()
    assert at.selectbox(key="dataset").value == "mnist-sample"
    assert any("Bundled MNIST sample" in c.value for c in at.sidebar.caption)
    assert not at.warning


@pytest.mark.parametrize("d, k, true_rank, r", [(10, 10, 2, 2), (10, 10, 2, 1), (64, 32, 8, 3)])
def test_svd_sliders_match_core(d, k, true_rank, r):
    at = open_page("app_pages/svd.py")
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
    sigma = chart(at, "Singular values of W")
    assert sigma["data"][0]["y"] == p.singular_values.tolist()
    table = at.dataframe[0].value
    assert table["y = Wx + b"].tolist() == p.y.tolist()
    assert table["y′ = BAx + b"].tolist() == p.y_prime.tolist()


def test_svd_kept_rank_follows_the_slider_and_its_limit():
    at = open_page("app_pages/svd.py")
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
    at = open_page("app_pages/baseline.py")
    assert at.button(key="base_stop").disabled
    at.number_input(key="base_max_steps").set_value(30).run()
    train(at, "base_train")
    shown = metrics(at)
    assert shown["Test accuracy"] == percent(core_baseline.evaluation.accuracy)
    assert shown["Wrong test images"] == f"{core_baseline.evaluation.wrong:,}"
    assert shown["Steps trained"] == "30"
    loss, wrong = charts(at)
    assert loss["data"][0]["y"] == core_baseline.losses
    assert wrong["data"][0]["y"] == core_baseline.evaluation.wrong_per_class
    table = at.dataframe[0].value
    assert table["parameters"].tolist() == [785_000, 2_002_000, 20_010, 2_807_010]

    second = open_page("app_pages/baseline.py")  # another user, same settings: shown without a click
    writes = runs.store().writes
    second.number_input(key="base_max_steps").set_value(30).run()
    assert "Stored on this server" in second.success[0].value
    assert metrics(second) == shown and second.button(key="base_train").disabled
    assert runs.store().writes == writes  # nothing was trained or stored again


def test_a_run_that_ends_is_drawn_in_the_same_pass_with_its_buttons_disabled():
    at = open_page("app_pages/baseline.py")
    at.number_input(key="base_max_steps").set_value(13).run()  # 13 steps: a run no other test makes
    assert not at.button(key="base_train").disabled
    at.button(key="base_train").click().run()
    assert not at.exception, at.exception
    assert metrics(at)["Steps trained"] == "13"
    # redrawn in place once the run had ended, not by a rerun of the page (which would show the first keys)
    assert at.button(key="base_train-made").disabled and at.button(key="base_stop-made").disabled
    made = layout(at)
    at.run()
    assert at.button(key="base_train").disabled and at.button(key="base_stop").disabled
    assert metrics(at)["Steps trained"] == "13"
    # the next pass puts every element where this one did: none of its stale elements shows in another's place
    assert layout(at) == made


def layout(at: AppTest) -> list[tuple[int, str]]:
    """The page's top-level elements in order: their places and kinds."""
    return [(place, node.type) for place, node in at.main.children.items()]


def test_the_notebook_preset_sets_every_setting():
    at = open_page()
    at.sidebar.selectbox(key="preset_name").set_value("the notebook").run()
    at.switch_page("app_pages/baseline.py").run()
    assert not at.exception, at.exception
    assert at.session_state["experiment"] == presets.PRESETS["the notebook"]
    assert at.query_params["epochs"] == "1" and at.query_params["base_batch"] == "10"
    assert at.number_input(key="base_batch").value == lc.NOTEBOOK_BASELINE.batch_size == 10
    assert at.number_input(key="base_epochs").value == lc.NOTEBOOK_BASELINE.epochs == 1


def test_stop_keeps_what_was_learned(data):
    """Stop ends training between steps; the page then shows the partly trained model's results.

    AppTest only sees finished runs, where Stop is disabled (Streamlit drops clicks on disabled
    widgets), so this does what the Stop button's callback does while training shows.
    """
    at = open_page("app_pages/baseline.py")
    at.session_state["seed"] = 7  # 237 steps: far more than run before the stop
    at.run()
    experiment, session = at.session_state["experiment"], at.session_state["session_id"]
    key = runs.key(experiment, "baseline", "cpu")
    work = lambda job: lc.train_baseline(experiment.baseline, data, on_step=job.on_step,  # noqa: E731
                                         should_stop=job.should_stop)
    handle = runs.obtain(Run(key, "baseline", work=work, keep=lambda run: None), session)
    how, job = handle.how, handle.job
    assert how == "started"
    at.session_state["baseline_job"], at.session_state["baseline_job_key"] = job, key
    deadline = time.monotonic() + 120
    while job.step < 3:
        assert time.monotonic() < deadline, "the training never took 3 steps"
        time.sleep(0.01)
    assert job.release(session) == 0  # nobody else follows it, so it stops
    at.run()
    assert not at.exception, at.exception
    steps = at.number_input(key="base_max_steps").value
    assert 3 <= steps < 237
    assert any("is a run of its own" in i.value for i in at.info)  # its step limit is now what it took
    assert at.query_params["base_steps"] == str(steps)
    run = held_baseline(at)
    assert len(run.losses) == steps and run.complete
    shown = metrics(at)
    assert shown["Steps trained"] == str(steps)
    assert shown["Test accuracy"] == percent(lc.evaluate(run.model, data.test_x, data.test_y).accuracy)
    assert charts(at)[0]["data"][0]["y"] == run.losses
    assert runs.find(key) is None  # the whole run's key holds nothing half-trained


def test_lora_finetune_matches_core(data, core_baseline, core_lora):
    at = with_baseline("app_pages/lora.py")
    shown = metrics(at)
    assert shown["Original parameters (frozen)"] == "2,807,010"
    assert shown["LoRA parameters (trained)"] == "6,794"
    assert shown["Increase"] == "0.242%"

    at.slider(key="lora_rank").set_value(16).run()  # linear3 has only 10 outputs
    assert not at.exception
    assert "rank 16 does not fit linear3: its rank is at most 10" in at.error[0].value
    at.slider(key="lora_rank").set_value(1).run()

    at.number_input(key="lora_steps").set_value(SMALL_FINETUNE.steps).run()
    train(at, "lora_train")
    core = core_lora
    shown = metrics(at)
    assert shown["Accuracy before"] == percent(core.before.accuracy)
    assert shown["Accuracy after LoRA"] == percent(core.after.accuracy)
    assert shown["Wrong on class 2"] == f"{core.after.wrong_per_class[2]:,}"
    loss, bars = chart(at, "Finetuning loss on class 2"), chart(at, "Wrong test images per class, before and after")
    assert loss["data"][0]["y"] == core.losses
    assert bars["data"][0]["y"] == core.before.wrong_per_class
    assert bars["data"][1]["y"] == core.after.wrong_per_class
    proofs = [m.value for m in at.markdown if m.value.startswith((":green[", ":red["))]
    assert len(proofs) == 4 and all(p.startswith(":green[:material/check_circle:]") for p in proofs)
    probe = data.test_x[:works.PROOF_IMAGES]  # the proofs compare outputs on these images
    factored = lc.adapter_checks(core_baseline.model, core.model, probe)["factored_vs_parametrized"]
    assert f"`{factored:.3g}` (must be ≤ {lc.FACTORED_TOLERANCE:g})" in proofs[3]  # the forward that trained it

    at.toggle(key="lora_adapter_on").set_value(False).run()  # off: exactly the baseline again
    assert metrics(at)["Accuracy adapter off"] == percent(core.before.accuracy)
    assert chart(at, "Wrong test images per class, before and after")["data"][1]["y"] == core.before.wrong_per_class
    at.toggle(key="lora_adapter_on").set_value(True).run()  # on again: the trained adapter's numbers again
    assert metrics(at)["Accuracy after LoRA"] == percent(core.after.accuracy)
    assert chart(at, "Wrong test images per class, before and after")["data"][1]["y"] == core.after.wrong_per_class

    assert not at.dataframe  # the merge lab waits for its button: three passes not on the way to the results
    at.button(key="lora_merge_measure").click().run()
    rows = lc.merge_precision(core.model, data.test_x, reference=core.after.predictions)
    assert at.dataframe[0].value.to_dict("records") == rows
    at.run()
    assert at.dataframe[0].value.to_dict("records") == rows  # kept: no button, no second measurement
    assert "lora_merge_measure" not in [b.key for b in at.button]


def test_rank_comparison_matches_core(data, core_baseline):
    at = with_baseline("app_pages/ranks.py")
    assert at.multiselect(key="sweep_targets").value == ["linear1", "linear2"]
    at.multiselect(key="sweep_targets").set_value(["linear1", "linear2", "linear3"]).run()
    assert "rank 16 does not fit linear3 (10×2000)" in at.error[0].value  # rank 16 > 10
    at.multiselect(key="sweep_targets").set_value(["linear1", "linear2"]).run()
    at.multiselect(key="sweep_ranks").set_value([1, 2]).run()
    at.number_input(key="lora_steps").set_value(SWEEP.steps).run()
    train(at, "sweep_run")
    rows = lc.compare_ranks(core_baseline.model, data, [1, 2], SWEEP)
    table = at.dataframe[0].value
    assert table["method"].tolist() == [r.method for r in rows]
    assert table["trainable"].tolist() == [r.trainable for r in rows]
    assert table["target_wrong"].tolist() == [r.target_wrong for r in rows]
    assert table["accuracy"].tolist() == [r.accuracy for r in rows]
    assert table["rank"].tolist() == [str(r.rank) if r.rank else "—" for r in rows]  # no "None" cell
    assert table["lr"].tolist() == [f"{r.lr:g}" if r.lr else "—" for r in rows]
    learned, forgotten = charts(at)
    assert learned["layout"]["xaxis"]["type"] == "log"
    assert learned["data"][0]["y"] == [r.target_wrong for r in rows[1:3]]
    assert forgotten["data"][0]["y"] == [r.other_wrong for r in rows[1:3]]  # forgetting: the other classes
    assert [t["y"] for t in forgotten["data"][1:-1]] == [[r.other_wrong] for r in rows[3:]]  # full at both rates
    assert at.get("download_button")


def test_unavailable_dataset_falls_back_to_the_sample():
    # AppTest shows the frame's elements (sidebar, warning) only on a session's first run: choose first
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["dataset"] = "mnist"  # a link asks for full MNIST, which this machine does not have
    at.run()
    assert not at.exception, at.exception
    assert "MNIST (full" in at.warning[0].value and "bundled MNIST sample is used" in at.warning[0].value
    assert "could not download it" in at.warning[0].value and "/" not in at.warning[0].value  # words, no path
    assert at.query_params.get("dataset") is None  # the link now says what is used: the sample
    assert at.sidebar.selectbox(key="dataset").value == "mnist-sample"  # and the Dataset box, in this same pass
    assert any("Bundled MNIST sample" in c.value for c in at.sidebar.caption)
    at.switch_page("app_pages/baseline.py").run()
    assert not at.exception, at.exception
    assert "mnist-sample" in at.info[0].value  # the page goes on with the sample
    assert at.session_state["dataset"] == "mnist-sample"  # and so does the sidebar


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs Debian's dataset-fashion-mnist package")
def test_fashion_mnist_shows_class_names():
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["dataset"] = "fashion-mnist"
    at.run()
    assert not at.exception and not at.warning
    assert any("Fashion-MNIST" in c.value for c in at.sidebar.caption)
    at.switch_page("app_pages/baseline.py").run()
    at.number_input(key="base_max_steps").set_value(5).run()
    train(at, "base_train")
    wrong = charts(at)[1]
    assert wrong["data"][0]["x"] == list(lc.load_dataset("fashion-mnist", root=at_root()).classes)
    assert wrong["data"][0]["x"][2] == "Pullover"


# --- adapters as files, the adapter list and blends (LoRA page) ------------------------------------

BEFORE_AFTER = "Wrong test images per class, before and after"


@pytest.fixture
def core_lora(small_lora):
    return small_lora


def upload(at: AppTest, name: str, blob: bytes) -> AppTest:
    at.file_uploader(key="lora_upload").set_value((name, blob, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("name, make", [
    ("adapter.zip", lambda model: adapter_zip(model)),
    ("adapter-peft.zip", lambda model: adapter_zip(model, peft_format=True)),
    ("adapter.safetensors", adapter_bytes),
])
def test_uploaded_adapter_is_attached_to_a_copy_of_the_baseline(core_baseline, core_lora, name, make):
    at = with_baseline("app_pages/lora.py")
    base = held_baseline(at)
    upload(at, name, make(core_lora.model))
    assert "attached to a copy of your baseline" in at.success[0].value
    bars = chart(at, BEFORE_AFTER)
    assert bars["data"][0]["y"] == core_baseline.evaluation.wrong_per_class
    assert bars["data"][1]["y"] == core_lora.after.wrong_per_class  # the trained adapter's counts, exactly
    assert metrics(at)["Accuracy after LoRA"] == percent(core_lora.after.accuracy)
    assert not lc.lora_layers(base.model)  # the shared baseline itself stays plain
    (entry,) = at.session_state["lora_adapters"]
    assert entry["name"] == f"rank 1 · {name}" and entry["on"] and entry["strength"] == 1.0
    assert blend_charted_above(at, core_lora.after)  # the blend is this adapter alone: its chart is not repeated
    at.toggle(key="lora_adapter_on").set_value(False).run()
    assert chart(at, BEFORE_AFTER)["data"][1]["y"] == core_baseline.evaluation.wrong_per_class
    # switched off above, the current chart is the baseline's: the blend (still this adapter) has its own
    assert chart(at, f"Blend: 1·(rank 1 · {name})")["data"][1]["y"] == core_lora.after.wrong_per_class
    upload(at, f"again-{name}", make(core_lora.model))  # a new upload is current and switched on, alone
    assert at.toggle(key="lora_adapter_on").value and metrics(at)["Accuracy after LoRA"] == percent(
        core_lora.after.accuracy)
    first, second = at.session_state["lora_adapters"]
    assert [at.toggle(key=f"adapter_on_{e['uid']}").value for e in (first, second)] == [False, True]


def _safetensors(adapter: lc.Adapter, rank: str, alpha: str = "1.0") -> bytes:
    tensors = {}
    for layer, (A, B) in adapter.weights.items():
        tensors[f"{layer}.lora_A"], tensors[f"{layer}.lora_B"] = A.contiguous(), B.contiguous()
    return save_safetensors(tensors, metadata={"format": FORMAT, "rank": rank, "alpha": alpha,
                                               "targets": json.dumps(adapter.targets)})


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return buffer.getvalue()


def _bad_file(case: str, trained) -> tuple[str, bytes]:
    """Each bad upload the issue lists, made from the trained adapter where it needs one."""
    if case == "not safetensors":
        return "adapter.safetensors", b"this is not a tensor file " * 40
    if case == "not a zip":
        return "adapter.zip", b"PK but not a zip"
    if case == "zip without the files":
        return "adapter.zip", _zip({"README.txt": b"an adapter was meant to be here"})
    if case == "wrong shapes":
        other = lc.add_lora(lc.new_model(500, 2000, 0, "cpu"), 1)  # a baseline with another hidden size
        return "other.zip", adapter_zip(other)
    if case == "wrong rank":
        return "adapter.safetensors", _safetensors(lc.adapter_of(trained), rank="2")  # rank-1 tensors
    if case == "NaN":
        model = lc.copy_model(trained)
        with torch.no_grad():
            lc.lora_of(model.linear2).lora_B[0, 0] = float("nan")
        return "adapter.zip", adapter_zip(model)
    if case == "absurd alpha":  # finite A and B, but every prediction would be NaN
        return "adapter.safetensors", _safetensors(lc.adapter_of(trained), rank="1", alpha="1e38")
    if case == "oversized":
        return "adapter.safetensors", bytes(MAX_ADAPTER_BYTES + 1)
    raise ValueError(case)


@pytest.fixture(scope="module")
def session_with_adapter():
    """One session with a trained adapter current: every bad upload goes to it and must change nothing."""
    at = with_baseline("app_pages/lora.py")
    at.number_input(key="lora_steps").set_value(SMALL_FINETUNE.steps).run()
    train(at, "lora_train")
    return at


@pytest.mark.parametrize("case, says", [
    ("not safetensors", "not a safetensors file"),
    ("not a zip", "not a readable zip"),
    ("zip without the files", "holds neither adapter.safetensors"),
    ("wrong shapes", "has A (1, 784) and B (500, 1), but this model needs A (1, 784) and B (1000, 1)"),
    ("wrong rank", "this model needs A (2, 784)"),
    ("NaN", "linear2: B holds NaN or infinite values"),
    ("oversized", "adapters here are at most 16 MiB"),
    ("absurd alpha", "infinite or NaN"),
])
def test_bad_upload_is_refused_and_changes_nothing(session_with_adapter, core_lora, case, says):
    at = session_with_adapter
    held = held_baseline(at)
    weights = {k: v.clone() for k, v in held.model.state_dict().items()}
    current = at.session_state["lora"]
    kept = [(e["name"], e["adapter"], e["on"], e["strength"]) for e in at.session_state["lora_adapters"]]

    name, blob = _bad_file(case, current.model)
    upload(at, name, blob)
    (error,) = at.error
    shown = as_shown(error.value)  # the page escapes the file's name and the message: plain text
    assert f"{name} was not used" in shown and says in shown and "unchanged" in shown
    assert not at.success
    assert held_baseline(at) is held and at.session_state["lora"] is current
    assert held.model.state_dict().keys() == weights.keys()
    assert all(torch.equal(v, weights[k]) for k, v in held.model.state_dict().items())
    assert [(e["name"], e["adapter"], e["on"], e["strength"]) for e in at.session_state["lora_adapters"]] == kept
    assert chart(at, BEFORE_AFTER)["data"][1]["y"] == core_lora.after.wrong_per_class  # still the trained one


def blend_charted_above(at: AppTest, blend: lc.Evaluation) -> bool:
    """The page says that the blend's bars are the current adapter's chart (and draws no blend chart): true
    of `blend`, scored by the core on its own."""
    said = [c.value for c in at.caption if "are the current adapter's, charted above" in c.value]
    drawn = [c for c in charts(at) if c["layout"]["title"]["text"].startswith("Blend")]
    return (said == [f"This blend's misclassified test images per class are the current adapter's, charted above: "
                     f"{blend.wrong:,} in all."] and not drawn
            and chart(at, BEFORE_AFTER)["data"][1]["y"] == blend.wrong_per_class)


def test_blend_rescores_from_the_core(data, core_baseline):
    at = with_baseline("app_pages/lora.py")
    at.number_input(key="lora_steps").set_value(SMALL_FINETUNE.steps).run()
    trained = {}
    for digit in (2, 7):
        at.multiselect(key="lora_classes").set_value([digit]).run()
        train(at, "lora_train")
        config = lc.FinetuneConfig(steps=SMALL_FINETUNE.steps, digits=(digit,))
        trained[digit] = lc.adapter_of(lc.finetune_lora(core_baseline.model, data, config).model)
    first, second = at.session_state["lora_adapters"]
    assert (first["name"], first["on"]) == ("rank 1 · class 2", False)  # a new adapter is switched on alone
    assert (second["name"], second["on"]) == ("rank 1 · class 7", True)
    assert [at.toggle(key=f"adapter_on_{e['uid']}").value for e in (first, second)] == [False, True]  # drawn so

    def expected(adapters, strengths) -> lc.Evaluation:
        return lc.evaluate(lc.blend(core_baseline.model, adapters, strengths), data.test_x, data.test_y)

    seven = expected([trained[7]], [1.0])
    assert blend_charted_above(at, seven)

    at.toggle(key=f"adapter_on_{first['uid']}").set_value(True).run()
    at.slider(key=f"adapter_strength_{first['uid']}").set_value(0.5).run()
    at.slider(key=f"adapter_strength_{second['uid']}").set_value(1.25).run()
    assert not at.exception, at.exception
    both = expected([trained[2], trained[7]], [0.5, 1.25])
    bars = chart(at, "Blend: 0.5·(rank 1 · class 2) + 1.25·(rank 1 · class 7)")
    assert bars["data"][1]["y"] == both.wrong_per_class
    assert bars["data"][0]["y"] == core_baseline.evaluation.wrong_per_class
    assert metrics(at)["Blend accuracy"] == percent(both.accuracy)
    assert both.wrong_per_class != seven.wrong_per_class  # the blend really differs from either alone

    scored = len(at.session_state["blend_scores"])
    at.slider(key=f"adapter_strength_{second['uid']}").set_value(1.0).run()
    at.slider(key=f"adapter_strength_{second['uid']}").set_value(1.25).run()
    assert len(at.session_state["blend_scores"]) == scored  # both settings were scored before: cached

    at.toggle(key=f"adapter_on_{first['uid']}").set_value(False).run()
    at.toggle(key=f"adapter_on_{second['uid']}").set_value(False).run()
    off = chart(at, "Blend: all off: the baseline")
    assert off["data"][1]["y"] == core_baseline.evaluation.wrong_per_class
