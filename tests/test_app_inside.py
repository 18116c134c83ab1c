"""The "Inside the update" pages and the shareable presets through AppTest, their numbers checked against
lora_core called directly with the same settings.

A small baseline (hidden sizes 64 and 32, 30 steps on the bundled sample) and 10-step runs keep each test
to seconds; training is deterministic on the CPU, so the app and the test get the same models.
"""
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import APP, NARROW_BASELINE, metrics
from streamlit.testing.v1 import AppTest

import lora_core as lc
from lora_core import anatomy, presets, studies, variants
from lora_core.store import encode
from service import frontier, jobs, runs, study_jobs
from service.kinds import Kind
from ui import inside

SMALL = {"base_hidden1": NARROW_BASELINE.hidden1, "base_hidden2": NARROW_BASELINE.hidden2,
         "base_max_steps": NARROW_BASELINE.max_steps}  # the baseline conftest trains once: the app must match it
STEPS = 10
PAGES = [f"app_pages/{name}.py" for name in ("inspector", "oracle", "inits", "scaling", "frontier")]


pytestmark = pytest.mark.usefixtures("empty_data_root")


@pytest.fixture
def base(narrow_baseline):
    return narrow_baseline.model


def session(page: str, query: dict | None = None, **state) -> AppTest:
    """A session with the small baseline (trained, or reused from the server's store) on `page`."""
    at = AppTest.from_file(APP, default_timeout=300)
    for key, value in {**SMALL, **state}.items():
        at.session_state[key] = value
    at.query_params.update(query or {})
    at.run()
    at.switch_page("app_pages/baseline.py").run()
    if not at.button(key="base_train").disabled:
        at.button(key="base_train").click().run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly charts by their title."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {spec["layout"]["title"]["text"].replace("<br>", " "): spec for spec in specs  # long titles wrap
            if "title" in spec["layout"]}


def stored(at: AppTest, kind: str):
    """The run of `kind` the session's experiment describes, from the server's store."""
    return runs.find(runs.key(at.session_state["experiment"], kind, "cpu"))


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_view_renders_and_waits_for_a_click(page):
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert "has not been trained on this server yet" in at.info[0].value  # offers to train it first
    at = session(page)
    assert at.button(key=f"{Path(page).stem.replace('inspector', 'insp')}_run").disabled is False
    assert any(m.value.startswith("Press") for m in at.info)


def test_inspector_matches_core(data, base):
    at = session("app_pages/inspector.py", lora_rank=2, lora_steps=STEPS, lora_targets=["linear1", "linear3"],
                 insp_every=5)
    click(at, "insp_run")
    config = lc.FinetuneConfig(rank=2, targets=("linear1", "linear3"), steps=STEPS)
    run = lc.finetune_lora(base, data, config)
    views = {v.name: v for v in anatomy.inspect_layers(run.model)}

    table = at.dataframe[0].value
    assert table["layer"].tolist() == ["linear1", "linear3"]
    assert table["effective rank"].tolist() == pytest.approx([views[n].effective_rank for n in table["layer"]])
    assert table["energy in top direction"].tolist() == pytest.approx(
        [float(anatomy.energy(views[n].delta_singular_values)[0]) for n in table["layer"]])
    view = views["linear1"]
    shown = metrics(at)
    assert shown["Rank r"] == "2"
    assert shown["Effective rank"] == f"{view.effective_rank:.3f}"
    assert shown["Energy in the top direction"] == f"{float(anatomy.energy(view.delta_singular_values)[0]):.2%}"
    assert 1 <= view.effective_rank <= 2
    drawn = charts(at)
    sigma = drawn["Singular values of linear1: ΔW beside W"]
    assert sigma["layout"]["yaxis"]["type"] == "log"
    assert sigma["data"][1]["y"] == pytest.approx(view.delta_singular_values[:40].tolist(), rel=1e-6, abs=1e-12)
    assert sigma["data"][0]["y"] == pytest.approx(view.weight_singular_values[:40].tolist(), rel=1e-6)
    assert len(drawn["The 2 rows of A in linear1, as 28×28 images"]["data"]) == 2
    norms = drawn["‖ΔW‖_F of each layer, step by step"]["data"]
    assert [len(line["y"]) for line in norms] == [STEPS + 1] * 2 and norms[0]["y"][0] == 0  # B starts at 0
    assert norms[0]["y"][-1] == pytest.approx(anatomy.layer_update_norms(run.model)["linear1"], rel=1e-6)
    history = drawn["ΔW's singular values of linear1 while training"]["data"]
    assert history[0]["x"] == [5, 10]
    assert history[0]["y"][-1] == pytest.approx(view.delta_singular_values[0].item(), rel=1e-5)

    at.slider(key="insp_image").set_value(7).run()
    without, with_adapter = anatomy.logits_with_and_without(run.model, data.test_x[7])
    bars = charts(at)["Logits with the adapter off and on"]["data"]
    assert bars[0]["y"] == pytest.approx(without.tolist(), rel=1e-5)
    assert bars[1]["y"] == pytest.approx(with_adapter.tolist(), rel=1e-5)
    at.selectbox(key="insp_layer").set_value("linear3").run()
    assert metrics(at)["Effective rank"] == f"{views['linear3'].effective_rank:.3f}"


def test_inspector_reads_the_lora_pages_adapter(data, base):
    at = session("app_pages/lora.py", lora_rank=3, lora_steps=STEPS, lora_targets=["linear3"])
    click(at, "lora_train")
    at.switch_page("app_pages/inspector.py").run()
    assert not at.exception, at.exception
    assert at.radio(key="insp_source").value == "from the LoRA finetuning page"
    run = lc.finetune_lora(base, data, lc.FinetuneConfig(rank=3, targets=("linear3",), steps=STEPS))
    view = anatomy.inspect_layers(run.model)[0]
    assert metrics(at)["Effective rank"] == f"{view.effective_rank:.3f}"
    assert at.dataframe[0].value["‖ΔW‖_F"].tolist() == pytest.approx([run.update_norms[-1]], rel=1e-6)


def test_rank_oracle_matches_core(data, base):
    at = session("app_pages/oracle.py", lora_targets=["linear3"], oracle_ranks=[1, 4], oracle_steps=STEPS)
    click(at, "oracle_run")
    config = lc.FinetuneConfig(targets=("linear3",), steps=STEPS)
    full, _, _ = lc.finetune_full(base, data, replace(config, lr=lc.FULL_FINETUNE_LR))  # its own learning rate
    delta_full = anatomy.full_updates(base, full)["linear3"]
    S = anatomy.spectrum(delta_full)
    energy = anatomy.energy(S).tolist()
    shown = metrics(at)
    assert shown["Effective rank of the full ΔW"] == f"{anatomy.effective_rank(S):.1f}"
    assert shown["Rank holding 90 % of it"] == str(next(k for k, e in enumerate(energy, 1) if e >= 0.9))
    assert shown["Rank holding 99 % of it"] == str(next(k for k, e in enumerate(energy, 1) if e >= 0.99))
    table = at.dataframe[0].value
    for rank, row in zip([1, 4], table.to_dict("records"), strict=True):
        run = lc.finetune_lora(base, data, replace(config, rank=rank))
        delta_lora = lc.lora_of(run.model.linear3).delta_weight().detach()  # via its SVD, not B's QR as the page
        found = anatomy.subspace_similarity(anatomy.top_directions(delta_lora, rank),
                                            anatomy.top_directions(delta_full, rank))
        assert row["rank r"] == rank
        assert row["energy of the full ΔW in its top r"] == pytest.approx(energy[rank - 1])
        assert row["subspace similarity"] == pytest.approx(found["similarity"], rel=1e-6)
        assert 0 <= row["subspace similarity"] <= 1
        assert row["chance level r/d"] == rank / 10  # linear3 has 10 outputs
        assert row["largest angle (°)"] == pytest.approx(found["angles_deg"].max().item(), abs=1e-3)
    curve = charts(at)["Energy of linear3's full ΔW in its top k"]["data"][0]["y"]
    assert curve == pytest.approx(energy)


def test_init_gallery_matches_core(data, base):
    at = session("app_pages/inits.py", inits_rank=4, inits_steps=STEPS)
    click(at, "inits_run")
    curves = {c.init: c for c in studies.init_gallery(base, data, lc.FinetuneConfig(rank=4, steps=STEPS))}
    assert list(curves) == ["kaiming", "gaussian", "zeros", "random", "orthogonal", "pissa", "olora"]
    shown = metrics(at)
    assert shown["both zero (the notebook): final ‖ΔW‖_F"] == "0"
    for init in curves:
        assert shown[f"{inside.INIT_LABELS[init]}: final ‖ΔW‖_F"] == f"{curves[init].update_norms[-1]:.3g}"
    drawn = charts(at)
    norms = {line["name"]: line["y"] for line in drawn["Size of the update ‖ΔW‖_F"]["data"]}
    assert norms[inside.INIT_LABELS["zeros"]] == [0.0] * STEPS  # both gradients zero: it never moves
    losses = {line["name"]: line["y"] for line in drawn["Finetuning loss"]["data"]}
    assert losses[inside.INIT_LABELS["kaiming"]] == pytest.approx(curves["kaiming"].losses, rel=1e-6)
    table = at.dataframe[0].value
    assert table["largest output change before any step"].tolist() == pytest.approx(
        [curves[i].initial_change for i in curves], abs=1e-6)
    assert table["final loss"].tolist() == pytest.approx([studies.final_loss(curves[i].losses)
                                                          for i in curves], rel=1e-6)
    # orthogonal halves: B·A = 0 up to rounding at step 0, and both move
    assert curves["orthogonal"].initial_change <= 1e-5 < curves["orthogonal"].update_norms[0]
    assert any("both gradients are zero" in m.value.lower() for m in at.markdown)


def test_scaling_explorer_matches_core(data, base):
    at = session("app_pages/scaling.py", scaling_ranks=[1, 4], scaling_alpha=8.0, scaling_steps=STEPS)
    click(at, "scaling_run")
    rows = studies.scaling_sweep(base, data, lc.FinetuneConfig(alpha=8.0, steps=STEPS), [1, 4])
    table = at.dataframe[0].value
    assert table["scaling"].tolist() == [r.scaling for r in rows] == ["α/r", "α/r", "α/√r", "α/√r"]
    assert table["scale"].tolist() == [8.0, 2.0, 8.0, 4.0] == [r.scale for r in rows]
    assert table["update_norm"].tolist() == pytest.approx([r.update_norm for r in rows], rel=1e-6)
    assert table["final_loss"].tolist() == pytest.approx([r.final_loss for r in rows], rel=1e-6)
    assert table["first_step_norm"].tolist() == pytest.approx([r.update_norms[0] for r in rows], rel=1e-6)
    assert table["other_wrong"].tolist() == [r.other_wrong for r in rows]
    drawn = charts(at)
    assert drawn["Size of the update after training"]["layout"]["xaxis"]["type"] == "log"
    first = {line["name"]: line["y"] for line in drawn["Size of the update after one step"]["data"]}
    assert first["scale α/r"] == pytest.approx([r.update_norms[0] for r in rows[:2]], rel=1e-6)
    assert "shrinks like 1/√r" in at.info[0].value


def test_frontier_matches_core_and_moves_without_retraining(data, base):
    at = session("app_pages/frontier.py", frontier_ranks=[1, 2], frontier_steps=STEPS)
    click(at, "frontier_run")
    config = lc.FinetuneConfig(steps=STEPS)
    adapters = studies.train_frontier_adapters(base, data, config, [1, 2])
    for strength in (1.0, 0.8, 0.0):
        at.slider(key="frontier_strength").set_value(strength).run()
        assert not at.exception, at.exception
        points = studies.frontier(base, data, adapters, (2,), strength)
        table = at.dataframe[0].value
        assert table["rank r"].tolist() == [1, 2]
        assert table["errors on class 2"].tolist() == [p.target_wrong for p in points]
        assert table["errors on the other classes"].tolist() == [p.other_wrong for p in points]
        chart = charts(at)[f"Learned against forgotten, at strength {strength:g}"]["data"]
        assert [(t["x"], t["y"]) for t in chart[-2:]] == [([p.other_wrong], [p.target_wrong]) for p in points]
        assert any(f"at strength {strength:g}, on all 10,000 test images; the baseline star at " in c.value
                   for c in at.caption)
    before = lc.evaluate(base, data.test_x, data.test_y)
    assert table["errors on class 2"].tolist() == [before.wrong_per_class[2]] * 2  # strength 0: the baseline
    # the paths' strengths were evaluated with the training, 0.8 when it was chosen (or by the background fill
    # of the slider's other values): each once, then kept, and only the slider's values
    assert {*frontier.PATH_STRENGTHS, 0.8} <= set(stored(at, "frontier").points) <= set(frontier.strengths())


def test_a_link_sets_the_widgets():
    at = session("app_pages/lora.py", query={"v": "2", "rank": "4", "digits": "7", "preset": "forgetting", "h1": "64",
                                         "h2": "32", "base_steps": "30"})
    assert at.slider(key="lora_rank").value == 4
    assert at.multiselect(key="lora_classes").value == [7]
    assert at.number_input(key="lora_steps").value == presets.PRESETS["forgetting"].finetune.steps == 500
    assert at.number_input(key="lora_alpha").value == 1.0
    assert not at.warning
    # the preset spelled out, in version 2
    assert at.query_params == {"v": "2", "h1": "64", "h2": "32", "base_steps": "30", "rank": "4", "digits": "7",
                               "steps": "500"}


def test_a_bad_link_warns_and_keeps_the_defaults():
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params.update({"rank": "abc", "alpha": "2000", "seed": "5"})
    at.run()
    assert not at.exception, at.exception
    assert "not all usable" in at.warning[0].value
    lines = "\n".join(t.value for t in at.text)  # the link's values, as plain text
    assert "rank='abc'" in lines and "1..64" in lines and "alpha='2000'" in lines and "0.1..1000" in lines
    assert at.session_state["lora_rank"] == 1 and at.session_state["seed"] == 5
    assert at.session_state["lora_alpha"] == 1.0  # 2000 is refused: the α input takes at most 1000
    assert at.query_params == {"v": "2", "seed": "5"}


def test_named_presets_and_the_link_in_the_sidebar():
    """Each check is a new visitor whose settings are in place before the first run, as a link's are."""
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert at.sidebar.selectbox(key="preset_name").value == "quick start"
    assert at.query_params == {"v": "2"} and at.sidebar.code[0].value == "?v=2"  # the defaults need nothing else
    at.sidebar.selectbox(key="preset_name").set_value("rank sweep").run()
    assert not at.exception, at.exception
    assert at.session_state["lora_rank"] == 8 and at.session_state["lora_alpha"] == 8.0
    assert at.session_state["sweep_ranks"] == [1, 2, 4, 8, 16, 32, 64]  # the comparison's ranks too

    sweep = {"lora_rank": 8, "lora_alpha": 8.0, "sweep_ranks": [1, 2, 4, 8, 16, 32, 64]}
    at = AppTest.from_file(APP, default_timeout=300)
    for key, value in sweep.items():
        at.session_state[key] = value
    at.run()
    assert at.sidebar.selectbox(key="preset_name").value == "rank sweep"
    assert at.query_params == {"v": "2", "rank": "8", "alpha": "8", "cmp_ranks": "1,2,4,8,16,32,64"}
    assert at.sidebar.code[0].value.endswith("?v=2&rank=8&alpha=8&cmp_ranks=1,2,4,8,16,32,64")

    at = AppTest.from_file(APP, default_timeout=300)
    for key, value in {**sweep, "lora_classes": [2, 7]}.items():
        at.session_state[key] = value
    at.run()
    assert at.sidebar.selectbox(key="preset_name").value is None  # own settings
    found, problems = presets.from_query(at.query_params)
    assert found == presets.with_values(presets.PRESETS["rank sweep"], {("finetune", "digits"): (2, 7)})
    assert not problems


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs Debian's dataset-fashion-mnist package")
def test_fashion_mnist_class_names_inside():
    at = session("app_pages/frontier.py", query={"dataset": "fashion-mnist", "digits": "2"},
                 frontier_ranks=[1], frontier_steps=5)
    assert at.session_state["context"].data.name == "fashion-mnist"
    click(at, "frontier_run")
    assert "errors on class Pullover" in at.dataframe[0].value.columns
    at.switch_page("app_pages/inspector.py").run()
    at.session_state["lora_steps"] = 5
    at.session_state["lora_targets"] = ["linear3"]
    at.run()
    click(at, "insp_run")
    assert charts(at)["Logits with the adapter off and on"]["data"][0]["x"][2] == "Pullover"


def test_stop_keeps_the_partly_trained_adapter_and_ends_a_study_between_steps(data, base):
    """What the Stop buttons do while a job runs (AppTest only sees finished runs, where Stop is disabled)."""
    held = {"run": lc.BaselineRun(NARROW_BASELINE, base, [], lc.evaluate(base, data.test_x, data.test_y), 0),
            "key": "test"}
    experiment = presets.with_values(lc.Experiment(), {("inspect_every",): 0})
    live = jobs.Job(Kind.INSPECT, inside.work_for("inspect", held, data, lc.FinetuneConfig(steps=5_000), experiment))
    study = jobs.Job(Kind.INITS, inside.work_for("inits", held, data, lc.FinetuneConfig(steps=2_000), experiment))
    # the study is stopped three quarters in: with its runs trained together (as many as the job has cores),
    # at most that many are unfinished then, so at least one has finished
    for job, steps in ((live, 3), (study, 9_000)):
        deadline = time.monotonic() + 120
        while job.step < steps and not job.done:
            assert time.monotonic() < deadline, "the job never got that far"
            time.sleep(0.01)
        job.stop()
        job.wait(120)
        assert job.done and job.error is None
    run = live.result.run
    assert 3 <= len(run.losses) < 5_000
    assert [len(norms) for norms in live.result.norms.values()] == [len(run.losses) + 1] * 3
    assert live.result.views and live.result.stopped
    assert study.result.stopped and len(study.result.curves) < len(lc.inits.gallery_inits(1))  # what finished is kept
    assert 1 <= len(study.result.curves) < len(lc.inits.gallery_inits(1))
    assert all(len(curve.losses) == 2_000 for curve in study.result.curves)  # only whole runs are kept


def test_the_frontier_fill_starts_around_the_last_asked_strength_and_gives_what_a_page_computes(base, data):
    small = replace(data, test_x=data.test_x[:500], test_y=data.test_y[:500])  # every slider value: quick
    small_base = lc.BaselineRun(NARROW_BASELINE, base, [], lc.evaluate(base, small.test_x, small.test_y), 0)
    config = lc.FinetuneConfig(steps=5)
    adapters = studies.train_frontier_adapters(base, small, config, (1, 2))

    class Recorded(dict):
        def setdefault(self, key, value):
            order.append(key)
            return super().setdefault(key, value)
    order, points = [], Recorded()
    frontier.fill_strengths(points, [0.3], small_base, small, adapters, config.digits)
    assert sorted(points) == frontier.strengths()
    assert order[:3] == [0.3, 0.25, 0.35]  # nearest to the focus first, the lower of two equally near first
    page = lc.FrontierStudy(config, adapters, {}, stopped=False)
    for strength in (0.0, 0.3, 1.45):
        assert frontier.frontier_points(page, small_base, small, config.digits, strength) == points[strength]
    assert page.focus == [1.45]
    stored, live = study_jobs.keep(page)
    assert stored.points == page.points and stored.points is not page.points and live is page
    assert "focus" not in encode(stored)[1]["fields"]  # where the fill starts is this server's moment, not stored


def test_a_newer_slider_value_cuts_the_full_pass_short_between_ranks_and_nothing_half_done_is_kept(base, data):
    small = replace(data, test_x=data.test_x[:500], test_y=data.test_y[:500])
    small_base = lc.BaselineRun(NARROW_BASELINE, base, [], lc.evaluate(base, small.test_x, small.test_y), 0)
    config = lc.FinetuneConfig(steps=5)
    page = lc.FrontierStudy(config, studies.train_frontier_adapters(base, small, config, (1, 2, 4)), {}, False)
    asked = []

    def newer_after_one_rank():
        asked.append(len(asked))
        return len(asked) > 1
    assert frontier.frontier_points(page, small_base, small, config.digits, 0.7, newer_after_one_rank) is None
    assert len(asked) == 2 and 0.7 not in page.points  # one rank computed, then the newer value won; none kept
    full = frontier.frontier_points(page, small_base, small, config.digits, 0.7, should_stop=lambda: False)
    assert full == studies.frontier(base, small, page.adapters, config.digits, 0.7) and page.points[0.7] == full


def _numpy_residual(W: np.ndarray, init: str, rank: int, scale: float) -> np.ndarray:
    """W − s·B₀·A₀ from numpy's SVD (PiSSA: W's top r part) or QR (OLoRA: s·Q_r·R_r), in float64."""
    if init == "pissa":
        U, S, Vh = np.linalg.svd(W, full_matrices=False)
        return W - (U[:, :rank] * S[:rank]) @ Vh[:rank]
    Q, R = np.linalg.qr(W)
    return W - scale * Q[:, :rank] @ R[:rank]


def _numpy_logits(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    for i, (W, b) in enumerate(layers):
        x = x @ W.T + b
        x = np.maximum(x, 0) if i < len(layers) - 1 else x
    return x


def test_gallery_shows_what_pissa_and_olora_move(data, base):
    """The PiSSA/OLoRA part of the gallery against numpy (SVD, QR, a float64 forward) and against
    variants.learning_curves, which trains plain LoRA and each init again on the same data and steps."""
    rank, alpha = 4, 1.0
    at = session("app_pages/inits.py", inits_rank=rank, inits_steps=STEPS)
    if not at.button(key="inits_run").disabled:  # else the gallery is the server's stored one, shown already
        click(at, "inits_run")
    shown, drawn = metrics(at), charts(at)
    x = data.test_x[:1000].reshape(-1, 784).double().numpy()
    names = ("linear1", "linear2", "linear3")
    weights = {n: getattr(base, n).weight.detach().double().numpy() for n in names}
    biases = {n: getattr(base, n).bias.detach().double().numpy() for n in names}
    before = _numpy_logits([(weights[n], biases[n]) for n in names], x)
    for init, label in (("pissa", "PiSSA"), ("olora", "OLoRA")):
        residuals = {n: _numpy_residual(weights[n], init, rank, alpha / rank) for n in names}
        residual_change = np.abs(_numpy_logits([(residuals[n], biases[n]) for n in names], x) - before).max()
        assert float(shown[f"{label}: residual base alone"]) == pytest.approx(residual_change, rel=1e-2)
        assert float(shown[f"{label}: max |output change| at step 0"]) <= 1e-5 * np.abs(before).max()
        for n in names:
            spectrum = drawn[f"Singular values of {n}: W and what the base keeps"]
            lines = {line["name"]: line["y"] for line in spectrum["data"]}
            expected = np.linalg.svd(residuals[n], compute_uv=False)
            assert np.abs(np.array(lines[f"{label}'s residual"]) - expected).max() <= 1e-4 * expected[0]
            W_values = np.linalg.svd(weights[n], compute_uv=False)
            assert lines["W (the baseline's)"] == pytest.approx(W_values, rel=1e-4, abs=1e-6)
            if init == "pissa":  # what the base keeps starts at W's σ_{r+1}: its top r moved into the adapter
                assert expected[0] == pytest.approx(W_values[rank], rel=1e-9)
    captions = [c.value for c in at.caption]
    assert any("PiSSA moved 4 singular values into the adapter" in c for c in captions)
    config = lc.FinetuneConfig(rank=rank, steps=STEPS, alpha=alpha)
    again = {c.label: c.losses for c in variants.learning_curves(base, data, config, {
        "PiSSA": {"init": "pissa"}, "OLoRA": {"init": "olora"}}, evaluated=False)}
    beside = {line["name"]: line["y"] for line in drawn["Loss beside plain LoRA"]["data"]}
    assert beside == {label: pytest.approx(losses, rel=1e-6) for label, losses in again.items()}
    assert beside["PiSSA"] != beside["plain LoRA"]  # the start really changes the run
