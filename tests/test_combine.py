"""Adapter arithmetic against PEFT's add_weighted_adapter: the same A and B in, the same ΔW out."""
import copy
import io
import json
import math
import zipfile

import numpy as np
import pytest
import torch
from plain_text import as_shown

import lora_core as lc
from lora_core.adapter_files import adapter_bytes, read_adapter_bytes
from lora_core.adapter_zips import adapter_zip, read_upload
from lora_core.adapters import Adapter
from lora_core.combine import (
    FACTOR_METHODS,
    METHODS,
    SVD_METHODS,
    CombineConfig,
    adapted,
    combine,
    evaluate_adapter,
    uses_density,
    wrong_on,
)

peft = pytest.importorskip("peft")
from peft.utils import merge_utils  # noqa: E402

TARGETS = ("linear1", "linear2", "linear3")
SETTINGS = {"density": 0.6, "majority_sign_method": "total", "seed": 11}


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    return lc.MLP(hidden1=32, hidden2=16)  # linear3 is 10×16: ranks up to 10


def random_adapter(rank, alpha, seed, targets=TARGETS, rslora=False, shapes=None):
    """Seeded A and B of the sizes `base` has: the algebra does not need training."""
    gen = torch.Generator().manual_seed(seed)
    shapes = shapes or {"linear1": (32, 784), "linear2": (16, 32), "linear3": (10, 16)}
    weights = {name: (torch.randn(rank, shapes[name][1], generator=gen) * 0.2,
                      torch.randn(shapes[name][0], rank, generator=gen) * 0.2) for name in targets}
    return Adapter(rank, float(alpha), weights, rslora)


class SeededTorch:
    """What merge_utils sees as `torch`: torch itself, but torch.bernoulli draws from a seeded generator,
    so PEFT's own DARE pruning draws the masks lora_core draws with the same seed."""

    def __init__(self, seed):
        self.generator = torch.Generator().manual_seed(seed)
        self.draws = 0

    def __getattr__(self, name):
        return getattr(torch, name)

    def bernoulli(self, probabilities):
        self.draws += 1
        return torch.bernoulli(probabilities, generator=self.generator)


def peft_model(base, adapters):
    """A PeftModel holding each adapter under the name a0, a1, …, its A and B copied in."""
    model = None
    for index, adapter in enumerate(adapters):
        config = peft.LoraConfig(r=adapter.rank, lora_alpha=adapter.alpha, target_modules=list(adapter.targets),
                                 lora_dropout=0.0, use_rslora=adapter.rslora)
        if model is None:
            model = peft.get_peft_model(copy.deepcopy(base), config, adapter_name=f"a{index}")
        else:
            model.add_adapter(f"a{index}", config)
        with torch.no_grad():
            for name, (A, B) in adapter.weights.items():
                layer = model.base_model.model.get_submodule(name)
                layer.lora_A[f"a{index}"].weight.copy_(A)
                layer.lora_B[f"a{index}"].weight.copy_(B)
    return model


def peft_combined(base, adapters, config, monkeypatch):
    """PEFT's combined adapter from the same A and B: its ΔW per layer, and the model holding it."""
    model = peft_model(base, adapters)
    seeded = SeededTorch(config.seed)
    monkeypatch.setattr(merge_utils, "torch", seeded)
    model.base_model.add_weighted_adapter([f"a{i}" for i in range(len(adapters))], list(config.weights),
                                          "combined", combination_type=config.method, svd_rank=config.svd_rank,
                                          density=config.density, majority_sign_method=config.majority_sign_method)
    monkeypatch.setattr(merge_utils, "torch", torch)
    with torch.no_grad():
        deltas = {name: model.base_model.model.get_submodule(name).get_delta_weight("combined")
                  for name in config_targets(adapters)}
    return deltas, model, seeded.draws


def config_targets(adapters):
    return list(dict.fromkeys(name for adapter in adapters for name in adapter.targets))


def relative(a, b) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def config_for(method, weights, **overrides):
    settings = {**SETTINGS, **overrides}
    return CombineConfig(method, weights, settings["density"] if uses_density(method) else None,
                         settings["majority_sign_method"], overrides.get("svd_rank"), settings["seed"])


def expected_draws(method, adapters) -> int:
    """Masks PEFT draws for DARE: one per adapter per layer, for A and B apart unless the method is _svd."""
    if not method.startswith("dare"):
        return 0
    return len(TARGETS) * len(adapters) * (1 if method in SVD_METHODS else 2)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("ranks, weights", [((4, 4), (0.7, 0.5)), ((3, 3, 3), (1.0, -0.4, 0.6))])
def test_equal_ranks_give_peft_s_delta(base, method, ranks, weights, monkeypatch):
    adapters = [random_adapter(r, 2.0 * (i + 1), seed=i) for i, r in enumerate(ranks)]
    config = config_for(method, weights, majority_sign_method="frequency" if len(ranks) == 3 else "total")
    ours = combine(adapters, config)
    theirs, model, draws = peft_combined(base, adapters, config, monkeypatch)
    assert draws == expected_draws(method, adapters)  # DARE's masks really came through the seeded generator
    for name, delta in theirs.items():
        layer = ours.layers[name]
        assert delta.abs().max() > 1e-3  # a real update: the comparison could fail
        assert relative(layer.B @ layer.A, delta) <= 1e-6, name
        peft_layer = model.base_model.model.get_submodule(name)  # the factors too, with α = r′
        assert relative(layer.A, peft_layer.lora_A["combined"].weight) <= 1e-6
        assert relative(layer.B, peft_layer.lora_B["combined"].weight) <= 1e-6
        assert peft_layer.scaling["combined"] == 1.0
        assert layer.rank == (sum(ranks) if method == "cat" else max(ranks))
        assert layer.parameters == layer.rank * sum(delta.shape)


@pytest.mark.parametrize("method", ["cat", *SVD_METHODS])
def test_different_ranks_give_peft_s_delta_where_peft_accepts_them(base, method, monkeypatch):
    adapters = [random_adapter(2, 4.0, seed=1), random_adapter(5, 5.0, seed=2, targets=("linear1", "linear3"))]
    config = config_for(method, (0.8, 0.6), svd_rank=4 if method == "ties_svd" else None)
    ours = combine(adapters, config)
    theirs, _, _ = peft_combined(base, adapters, config, monkeypatch)
    for name, delta in theirs.items():
        assert relative(ours.layers[name].B @ ours.layers[name].A, delta) <= 1e-6, name
    assert ours.adapter.rank == {"cat": 7, "ties_svd": 4}.get(method, 5)
    assert ours.parameters == ours.adapter.rank * ((784 + 32) + (32 + 16) + (16 + 10))  # r′·(in + out) per layer


@pytest.mark.parametrize("method", FACTOR_METHODS)
def test_different_ranks_are_refused_where_peft_refuses_them(base, method, monkeypatch):
    adapters = [random_adapter(2, 4.0, seed=1), random_adapter(5, 5.0, seed=2)]
    config = config_for(method, (0.8, 0.6))
    with pytest.raises(ValueError, match="same r value"):
        peft_combined(base, adapters, config, monkeypatch)
    with pytest.raises(ValueError, match=r"needs adapters of one rank \(these have ranks 2, 5\)"):
        combine(adapters, config)


def numpy_sum(adapters, weights, name):
    """Σ wᵢ·sᵢ·Bᵢ·Aᵢ in numpy float64, the scale written out from α and r."""
    total = 0
    for adapter, weight in zip(adapters, weights, strict=True):
        if name in adapter.weights:
            A, B = (t.double().numpy() for t in adapter.weights[name])
            scale = adapter.alpha / (math.sqrt(adapter.rank) if adapter.rslora else adapter.rank)
            total = total + weight * scale * (B @ A)
    return total


@pytest.mark.parametrize("method", METHODS)
def test_relative_error_and_rank_of_the_sum_match_numpy(base, method, monkeypatch):
    adapters = [random_adapter(3, 3.0, seed=5), random_adapter(3, 6.0, seed=6)]
    config = config_for(method, (1.0, 0.5))
    ours = combine(adapters, config)
    theirs, _, _ = peft_combined(base, adapters, config, monkeypatch)
    for name, delta in theirs.items():
        reference = numpy_sum(adapters, config.weights, name)
        error = np.linalg.norm(delta.double().numpy() - reference) / np.linalg.norm(reference)
        assert ours.layers[name].relative_error == pytest.approx(error, rel=1e-4, abs=1e-6)
        assert ours.layers[name].sum_rank == np.linalg.matrix_rank(reference) == 6


def test_what_each_method_gets_right_and_wrong(base):
    adapters = [random_adapter(3, 3.0, seed=5), random_adapter(3, 6.0, seed=6)]
    errors = {m: max(layer.relative_error for layer in combine(adapters, config_for(m, (1.0, 0.5))).layers.values())
              for m in ("cat", "linear", "svd")}
    exact_svd = combine(adapters, config_for("svd", (1.0, 0.5), svd_rank=6))
    assert errors["cat"] <= 1e-6  # exact, at rank 3 + 3
    assert errors["linear"] > 0.1  # the cross terms Bᵢ·Aⱼ
    assert errors["svd"] > 0.1  # rank 3 cannot hold a rank-6 sum
    assert max(layer.relative_error for layer in exact_svd.layers.values()) <= 1e-5  # svd_rank reaches it


def test_dare_masks_follow_the_seed(base):
    adapters = [random_adapter(3, 3.0, seed=5), random_adapter(3, 6.0, seed=6)]
    first, again, other = (combine(adapters, config_for("dare_ties", (1.0, 0.5), seed=s)) for s in (1, 1, 2))
    assert torch.equal(first.layers["linear1"].A, again.layers["linear1"].A)
    assert not torch.equal(first.layers["linear1"].A, other.layers["linear1"].A)


def test_svd_rank_above_a_layer_s_size_is_refused_before_peft_fails_at_forward(base, monkeypatch):
    adapters = [random_adapter(3, 3.0, seed=5), random_adapter(3, 6.0, seed=6)]
    config = config_for("svd", (1.0, 0.5), svd_rank=12)  # linear3 is 10×16
    model = peft_model(base, adapters)
    model.base_model.add_weighted_adapter(["a0", "a1"], [1.0, 0.5], "combined", svd_rank=12)  # PEFT accepts it…
    model.base_model.set_adapter("combined")
    with pytest.raises(RuntimeError, match="cannot be multiplied"), torch.no_grad():
        model(torch.zeros(1, 784))  # …and fails when the network runs
    with pytest.raises(ValueError, match=r"svd_rank 12, but linear3 \(10×16\) has rank at most 10"):
        combine(adapters, config)


def test_cat_beyond_a_layer_s_rank_is_refused_with_the_way_out(base, monkeypatch):
    adapters = [random_adapter(6, 3.0, seed=5), random_adapter(6, 6.0, seed=6)]
    theirs, _, _ = peft_combined(base, adapters, config_for("cat", (1.0, 1.0)), monkeypatch)  # PEFT builds it
    with pytest.raises(ValueError, match=r"sum of the ranks, 12, but linear3 \(10×16\).*svd_rank ≤ 10: exact"):
        combine(adapters, config_for("cat", (1.0, 1.0)))
    way_out = combine(adapters, config_for("svd", (1.0, 1.0), svd_rank=10))
    linear3 = way_out.layers["linear3"]
    assert linear3.relative_error <= 1e-5 and relative(linear3.B @ linear3.A, theirs["linear3"]) <= 1e-5


def test_rslora_merged_scaling_is_explained_and_not_reproduced(base, monkeypatch):
    adapters = [random_adapter(4, 2.0, seed=5, rslora=True), random_adapter(4, 3.0, seed=6, rslora=True)]
    config = config_for("cat", (1.0, 1.0))
    ours = combine(adapters, config)
    theirs, model, _ = peft_combined(base, adapters, config, monkeypatch)
    assert not ours.adapter.rslora and ours.adapter.alpha == ours.adapter.rank == 8
    assert "√8 = 2.83" in ours.notes[0]
    for name, delta in theirs.items():
        layer = ours.layers[name]
        assert layer.relative_error <= 1e-6  # ours is the intended sum …
        assert relative(math.sqrt(8) * (layer.B @ layer.A), delta) <= 1e-6  # … PEFT's is √r′ times it
        peft_layer = model.base_model.model.get_submodule(name)
        assert torch.equal(peft_layer.lora_A["combined"].weight, layer.A)  # same factors, other scale
    assert combine([random_adapter(4, 2.0, seed=5), adapters[1]], config).notes == ()


@pytest.mark.parametrize("settings, words", [
    (dict(method="mean", weights=(1, 1)), "unknown combination method 'mean'"),
    (dict(method="ties", weights=(1, 1)), r"density must be a number in \(0, 1\], got None"),
    (dict(method="dare_linear", weights=(1, 1), density=0.0), r"density must be a number in \(0, 1\], got 0.0"),
    (dict(method="linear", weights=(1, math.nan)), "each weight must be a finite number, got nan"),
    (dict(method="ties", weights=(1, 1), density=0.5, majority_sign_method="most"), "one of total, frequency"),
    (dict(method="svd", weights=(1, 1), svd_rank=0), "svd_rank must be a whole number of at least 1, got 0"),
])
def test_bad_settings_are_refused_in_words(settings, words):
    with pytest.raises(ValueError, match=words):
        CombineConfig(**settings)


def test_bad_adapter_lists_are_refused_in_words():
    one = random_adapter(2, 2.0, seed=1)
    with pytest.raises(ValueError, match="at least two adapters"):
        combine([one], CombineConfig("linear", (1.0,)))
    with pytest.raises(ValueError, match="2 adapters but 3 weights"):
        combine([one, one], CombineConfig("linear", (1.0, 1.0, 1.0)))
    other = random_adapter(2, 2.0, seed=1, shapes={"linear1": (64, 784), "linear2": (16, 64), "linear3": (10, 16)})
    with pytest.raises(ValueError, match="adapter 2's linear1 is 64×784 but an earlier adapter's is 32×784"):
        combine([one, other], CombineConfig("cat", (1.0, 1.0)))


@pytest.mark.parametrize("method", ["cat", "ties_svd"])
def test_combined_adapter_downloads_in_both_formats_and_loads_back(base, method, tmp_path):
    adapters = [random_adapter(2, 4.0, seed=1), random_adapter(3, 5.0, seed=2)]
    combined = combine(adapters, config_for(method, (0.8, -0.6)))
    model = adapted(base, combined.adapter)
    x = torch.randn(64, 784, generator=torch.Generator().manual_seed(3))
    expected = copy.deepcopy(base)
    with torch.no_grad():
        for name, layer in combined.layers.items():
            expected.get_submodule(name).weight += layer.B @ layer.A
        assert (expected(x) - base(x)).abs().max() > 1e-2
        ours_again = adapted(base, read_adapter_bytes(adapter_bytes(model)))
        assert torch.equal(ours_again(x), model(x))
        for peft_format in (False, True):
            assert torch.equal(adapted(base, read_upload("a.zip", adapter_zip(model, peft_format)))(x), model(x))
        with zipfile.ZipFile(io.BytesIO(adapter_zip(model, peft_format=True))) as zf:
            zf.extractall(tmp_path)
        theirs = peft.PeftModel.from_pretrained(copy.deepcopy(base), str(tmp_path)).eval()
        assert (theirs(x) - expected(x)).abs().max() <= 1e-5
        assert (model(x) - expected(x)).abs().max() <= 1e-5


def wrong_per_class(model, deltas: dict, data) -> list[int]:
    """The model with W + ΔW written into a copy, scored with plain torch: misclassified test images per class."""
    merged = copy.deepcopy(model)
    with torch.no_grad():
        for name, delta in deltas.items():
            merged.get_submodule(name).weight += delta
        predictions = merged(data.test_x).argmax(dim=1)
    return [int(((data.test_y == d) & (predictions != d)).sum()) for d in range(10)]


@pytest.fixture(scope="module")
def two_digits():
    """A small baseline and two adapters trained on the bundled MNIST: one on 2, one on 7."""
    data = lc.load_dataset("mnist-sample")
    base = lc.train_baseline(lc.BaselineConfig(hidden1=64, hidden2=32, epochs=1, max_steps=150), data).model
    runs = [lc.finetune_lora(base, data, lc.FinetuneConfig(rank=4, alpha=4.0, digits=(d,), steps=40, lr=5e-3),
                             evaluated=False) for d in (2, 7)]
    return data, base, [lc.adapter_of(run.model) for run in runs]


def test_wrong_per_class_of_the_combined_network_matches_plain_torch(two_digits):
    data, base, adapters = two_digits
    combined = combine(adapters, CombineConfig("cat", (1.0, 1.0)))
    evaluation = evaluate_adapter(base, combined.adapter, data.test_x, data.test_y)
    wrong = wrong_per_class(base, {name: layer.B @ layer.A for name, layer in combined.layers.items()}, data)
    labels = data.test_y.numpy()
    assert evaluation.wrong_per_class == wrong
    assert wrong_on(evaluation, (2, 7)) == (wrong[2] + wrong[7], int(np.sum((labels == 2) | (labels == 7))))
    others = [d for d in range(10) if d not in (2, 7)]
    assert wrong_on(evaluation, others) == (sum(wrong) - wrong[2] - wrong[7], int(np.isin(labels, others).sum()))
    alone = evaluate_adapter(base, adapters[0], data.test_x, data.test_y)
    assert alone.wrong_per_class != evaluation.wrong_per_class  # the combination really changed the network


# --- the Combine adapters page ------------------------------------------------------------------------

PAGE_SETTINGS = {"base_hidden1": 32, "base_hidden2": 16, "base_max_steps": 40, "lora_steps": 30, "lora_rank": 2}


@pytest.fixture(scope="module")
def page():
    """A session with a small baseline and three adapters trained on the LoRA page: on digit 2, on digit 7,
    and on both together."""
    from conftest import open_session, train_baseline

    at = open_session(PAGE_SETTINGS, timeout=180)
    held = train_baseline(at)
    at.switch_page("app_pages/lora.py").run()
    for digits in ([2], [7], [2, 7]):
        at.multiselect(key="lora_classes").set_value(digits).run()
        if not at.button(key="lora_train").disabled:
            at.button(key="lora_train").click().run()
        assert not at.exception, at.exception
    at.switch_page("app_pages/combine.py").run()
    assert not at.exception, at.exception
    two, seven, _ = at.session_state["lora_adapters"]
    at.multiselect(key="combine_chosen").set_value([two["uid"], seven["uid"]]).run()
    return at, held["run"]


def shown_table(at, column):
    (table,) = [t.value for t in at.dataframe if column in t.value.columns]
    return table


@pytest.mark.usefixtures("empty_data_root")
@pytest.mark.parametrize("method, weights", [("cat", (1.0, 1.0)), ("ties", (0.5, 1.5))])
def test_the_page_shows_the_core_s_combination_and_its_errors(page, method, weights):
    at, base = page
    data = lc.load_dataset("mnist-sample")
    two, seven, together = at.session_state["lora_adapters"]
    at.selectbox(key="combine_method").set_value(method).run()
    if uses_density(method):
        at.slider(key="combine_density").set_value(0.6).run()
    for entry, weight in zip((two, seven), weights, strict=True):
        at.number_input(key=f"combine_weight_{entry['uid']}").set_value(weight).run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    config = CombineConfig(method, weights, 0.6 if method == "ties" else None)
    expected = combine([two["adapter"], seven["adapter"]], config)
    layers = shown_table(at, "layer")
    assert list(layers["layer"]) == list(expected.layers)
    assert list(layers["rank r′"]) == [expected.adapter.rank] * 3 == [4 if method == "cat" else 2] * 3
    assert np.allclose(layers["‖ΔW′ − Σ wᵢΔWᵢ‖ / ‖Σ wᵢΔWᵢ‖"], [la.relative_error for la in expected.layers.values()])
    assert f"rank {expected.adapter.rank}, {expected.parameters:,} parameters" in at.subheader[0].value
    wrong = wrong_per_class(base.model, {name: la.B @ la.A for name, la in expected.layers.items()}, data)
    scores = shown_table(at, "network").set_index("network")
    row = scores.loc[f"combined ({method})"]
    assert (row["wrong on class 2"], row["wrong on class 7"]) == (wrong[2], wrong[7])
    assert row["wrong on the other classes"] == sum(wrong) - wrong[2] - wrong[7]
    joint = together["adapter"]  # trained on 2 and 7 together: the row to compare with
    joint_wrong = wrong_per_class(base.model, {name: joint.alpha / joint.rank * (B @ A)
                                               for name, (A, B) in joint.weights.items()}, data)
    row = scores.loc[f"{together['name']} (trained on them together)"]
    assert (row["wrong on class 2"], row["wrong on the other classes"]) == (
        joint_wrong[2], sum(joint_wrong) - joint_wrong[2] - joint_wrong[7])
    (bars,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert bars["data"][1]["y"] == wrong and bars["data"][0]["y"] == base.evaluation.wrong_per_class


@pytest.mark.usefixtures("empty_data_root")
def test_the_page_refuses_in_words_what_peft_would_fail_on(page):
    at, _ = page
    at.selectbox(key="combine_method").set_value("svd").run()
    at.number_input(key="combine_svd_rank").set_value(12).run()
    assert not at.exception
    assert "svd_rank 12, but linear3 (10×16) has rank at most 10" in as_shown(at.error[0].value)
    at.number_input(key="combine_svd_rank").set_value(4).run()  # the sum of two rank-2 adapters: exact
    assert not at.error and max(shown_table(at, "layer")["‖ΔW′ − Σ wᵢΔWᵢ‖ / ‖Σ wᵢΔWᵢ‖"]) <= 1e-5


@pytest.mark.usefixtures("empty_data_root")
def test_the_page_asks_for_two_adapters_first():
    from conftest import open_session, train_baseline

    at = open_session(PAGE_SETTINGS, timeout=180)
    train_baseline(at)
    at.switch_page("app_pages/combine.py").run()
    assert not at.exception and not at.dataframe
    assert "at least two adapters on this baseline" in at.info[0].value
