"""The pages' sentences at the edges: ties, a both-zero adapter, one class, a batch other than 10, a study's
own settings against the LoRA page's.

Each page is rendered through AppTest on a grid of such settings, and every sentence that states a number is
checked against that number computed here without the page (numpy, lora_core called directly, PEFT). The
baseline is tiny (hidden sizes 8 and 8, 8 steps, seed 36), trained once per server and found by every later
session, and its per-class errors tie at the top (classes 2 and 7, 1,028 each), so the grid stays fast.
"""
import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import open_session, train_baseline

import lora_core as lc
from lora_core.adapters import AdapterError
from lora_core.lora import lora_of
from lora_core.peft_files import export_peft, read_peft

TIE = {"seed": 36, "base_hidden1": 8, "base_hidden2": 8, "base_max_steps": 8}
TIE_BASELINE = lc.BaselineConfig(hidden1=8, hidden2=8, max_steps=8, seed=36)

pytestmark = pytest.mark.usefixtures("empty_data_root")


@pytest.fixture(scope="module")
def tie_base(data):
    return lc.train_baseline(TIE_BASELINE, data)


def page(path: str, **state):
    """A new session with the tiny baseline (trained here or found in the server's store) on `path`."""
    at = open_session(TIE, **state)
    train_baseline(at)
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def caption(at, start: str) -> str:
    (found,) = [c.value for c in at.caption if c.value.startswith(start)]
    return found


def test_baseline_caption_names_every_class_that_ties(tie_base, data):
    """Baseline page: "most for … fewest for …" names every class at the top and at the bottom."""
    predictions = tie_base.model(data.test_x).argmax(1).numpy()
    labels = data.test_y.numpy()
    wrong = np.bincount(labels[predictions != labels], minlength=10)
    most, fewest = np.flatnonzero(wrong == wrong.max()), np.flatnonzero(wrong == wrong.min())
    assert len(most) == 2  # the grid point is a tie: the claim is tested where it used to fail
    text = caption(page("app_pages/baseline.py"), "Misclassified test images of each class")
    top = text.split("most for ")[1].split(", fewest for ")[0]
    bottom = text.split("fewest for ")[1]
    assert sorted(int(c) for c in re.findall(r"\d", top.split(" (")[0])) == list(most)
    assert top.endswith(f"({wrong.max():,} each)")
    assert sorted(int(c) for c in re.findall(r"\d", bottom.split(" (")[0])) == list(fewest)
    assert f"{wrong.sum():,} in all" in text


def test_most_and_fewest_when_every_class_is_equal():
    from views.tables import most_and_fewest

    assert most_and_fewest([0] * 10, [str(c) for c in range(10)]) == "0 for every class"
    assert most_and_fewest([3, 1, 3, 1], list("abcd")) == "most for a and c (3 each), fewest for b and d (1 each)"


@pytest.mark.parametrize("batch", [7, 32])
def test_steps_help_says_the_batch_size(batch):
    """LoRA page: the Steps help says how many images a step takes, the batch size chosen."""
    at = page("app_pages/lora.py", lora_batch=batch)
    assert f"Training steps of {batch:,} images each" in at.number_input(key="lora_steps").help


STUDIES = {  # page → (its own settings as session keys, how they appear in the caption)
    "inits": {"inits_rank": 2, "inits_steps": 3},
    "oracle": {"oracle_steps": 4},
    "scaling": {"scaling_alpha": 5.0, "scaling_steps": 6},
    "frontier": {"frontier_steps": 9},
}
LORA_PAGE = {"lora_rank": 1, "lora_alpha": 3.0, "lora_steps": 70, "lora_batch": 12, "lora_classes": [4],
             "lora_init": "gaussian", "lora_rslora": True}


@pytest.mark.parametrize("study", list(STUDIES))
def test_study_caption_separates_its_own_settings_from_the_lora_pages(study):
    """Inits, oracle, scaling, frontier: the settings said to come from the LoRA page are the LoRA page's,
    and the study's own (rank, α, steps) are said to be its own."""
    own = STUDIES[study]
    text = caption(page(f"app_pages/{study}.py", **LORA_PAGE, **own), "From the LoRA page")
    shared, mine = text.split("This study's own")
    assert "batch 12" in shared and "class 4" in shared and "learning rate 0.001" in shared
    assert (f"α {own['scaling_alpha']:g}" in mine) if study == "scaling" else ("α 3;" in shared)
    steps = next(v for k, v in own.items() if k.endswith("_steps"))
    assert f"{steps} steps" in mine and "70 steps" not in text
    if study == "inits":
        assert "rank 2" in mine and "rank 1" not in text
        assert "init" not in text  # it trains every initialisation
    else:
        assert "rank" not in text  # the study's list of ranks is its own widget
        assert "init gaussian" in shared
    assert ("scale" not in text) if study == "scaling" else ("scale α/√r" in shared)  # scaling tries both


def _inspected(data, base, init: str):
    """The adapter the inspector trained, trained again here with the same settings: linear1's ΔW and A."""
    config = lc.FinetuneConfig(rank=2, steps=3, init=init, targets=("linear1", "linear3"), seed=TIE["seed"])
    lora = lora_of(lc.finetune_lora(base.model, data, config).model.linear1)
    return lora.delta_weight().detach().numpy(), lora.lora_A.detach().numpy()  # float32: matrix_rank's tolerance


@pytest.mark.parametrize("init", ["zeros", "kaiming"])
def test_inspector_sentences_on_a_zero_and_a_trained_update(init, tie_base, data):
    """ΔW inspector: the largest |entry|, the number of non-zero singular values, where the energy reaches
    100 % and the energy metric's help, for a both-zero adapter (ΔW = 0) and a trained one."""
    at = page("app_pages/inspector.py", lora_rank=2, lora_steps=3, lora_init=init, lora_targets=["linear1", "linear3"],
              insp_every=0)
    at.button(key="insp_run").click().run()
    assert not at.exception, at.exception
    delta, A = _inspected(data, tie_base, init)
    largest, rank = float(np.abs(delta).max()), int(np.linalg.matrix_rank(delta))
    heatmap = caption(at, "Each entry of ΔW of linear1")
    spectra = caption(at, "σ₁ of ΔW is")
    energy = caption(at, "Share of ‖M‖²_F")
    help_text = next(m.help for m in at.metric if m.label == "Energy in the top direction")
    patterns = caption(at, "2 rows of A")
    assert f"ΔW has {rank} non-zero singular value{'' if rank == 1 else 's'} (r = 2)" in spectra
    if init == "zeros":
        assert largest == 0 and rank == 0
        assert heatmap.endswith("every entry is 0.") and "σ₁ of ΔW is 0," in spectra
        assert "ΔW = 0 holds no energy" in energy and "100 %" not in energy
        assert "ΔW = 0, so no direction holds any" in help_text
        assert not A.any() and patterns.endswith("drawn square; every entry is 0.")
    else:
        assert rank == 2
        assert f"the largest |entry| is {largest:.3g}." in heatmap
        assert f"ΔW reaches 100 % at k = {rank}" in energy
        assert f"its {rank} non-zero direction(s) hold 100 %" in help_text
        assert patterns.endswith(f"one colour scale for all, ±{np.abs(A).max():.3g} at its ends.")


def test_nonzero_count_against_numpy():
    from lora_core import anatomy

    generator = torch.Generator().manual_seed(0)
    for rank in (0, 1, 3):
        M = torch.randn(12, rank, generator=generator, dtype=torch.float64) @ torch.randn(
            rank, 9, generator=generator, dtype=torch.float64)
        assert anatomy.nonzero_count(anatomy.spectrum(M)) == np.linalg.matrix_rank(M.numpy()) == rank


def test_notebook_page_says_the_full_datasets_are_used_only_when_chosen():
    """Notebook page: the bundled sample is the default; full MNIST or Fashion-MNIST only when chosen."""
    at = open_session()
    assert at.selectbox(key="dataset").value == lc.Experiment().dataset == "mnist-sample"  # unless chosen
    at.switch_page("app_pages/notebook.py").run()
    text = " ".join(m.value for m in at.markdown)
    assert "used only when chosen in the\n  sidebar" in text or "used only when chosen in the sidebar" in text
    assert "used when present" not in text


# --- the upload refusal, against PEFT 0.21's own behaviour -------------------------------------------------

@pytest.fixture(scope="module")
def small_base():
    torch.manual_seed(0)
    return lc.MLP(hidden1=16, hidden2=8)


def _peft_dir(tmp_path, model, **config):
    export_peft(model, tmp_path)
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return tmp_path


@pytest.mark.parametrize("init", ["olora", "pissa", "eva", "mica"])
def test_refusal_says_the_base_changes_only_where_peft_changes_it(init, small_base, tmp_path):
    peft = pytest.importorskip("peft")
    theirs = peft.get_peft_model(copy.deepcopy(small_base), peft.LoraConfig(
        r=2, lora_alpha=4, target_modules=["linear1"], init_lora_weights=init))
    changed = not torch.equal(theirs.base_model.model.linear1.base_layer.weight, small_base.linear1.weight)
    assert changed == (init in ("olora", "pissa"))  # PEFT's own start, read off the weights
    model = lc.add_lora(copy.deepcopy(small_base), rank=2, alpha=4.0, targets=("linear1",))
    with pytest.raises(AdapterError) as caught:
        read_peft(_peft_dir(tmp_path, model, init_lora_weights=init))
    assert ("changing the base weights" in str(caught.value)) == ("base weights" in str(caught.value)) == changed


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_orthogonal_start_is_refused_at_an_odd_rank_as_peft_refuses_it(rank, small_base, tmp_path):
    peft = pytest.importorskip("peft")
    model = lc.add_lora(copy.deepcopy(small_base), rank=rank, alpha=4.0, targets=("linear1",))
    folder = _peft_dir(tmp_path, model, init_lora_weights="orthogonal")
    try:
        peft.PeftModel.from_pretrained(copy.deepcopy(small_base), str(folder))
        peft_refuses = False
    except ValueError as err:
        peft_refuses = "even" in str(err)
    assert peft_refuses == bool(rank % 2)
    if peft_refuses:
        with pytest.raises(AdapterError, match=f"needs an even rank, got r = {rank}"):
            read_peft(folder)
    else:
        assert read_peft(folder).rank == rank


# --- the server's start-up line ----------------------------------------------------------------------------

def test_startup_line_says_how_a_training_uses_the_cores(tmp_path):
    """The server logs what a training gets: the free cores, with the same numbers on any number of them
    (tests/test_parallel.py measures both), or one torch thread where torch's MKL has no strict mode."""
    script = "import logging; logging.basicConfig(level=logging.INFO); from ui import server; server.setup()"
    env = {**os.environ, "LORA_LAB_CACHE": str(tmp_path), "LORA_LAB_MAX_TRAININGS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env,
                          cwd=Path(__file__).resolve().parent.parent)
    (line,) = [t for t in done.stderr.splitlines() if "training(s) at once" in t]
    strict = "each on the cores free for it, the same numbers on any number of them"
    strict_products = lc.parallel.STRICT_PRODUCTS
    assert (strict in line) == strict_products and ("one torch thread" in line) != strict_products


def _weights(config: lc.BaselineConfig) -> int:
    """The MLP's weights and biases, from its layer sizes: 784·h1 + h1 + h1·h2 + h2 + h2·10 + 10."""
    h1, h2 = config.hidden1, config.hidden2
    return 784 * h1 + h1 + h1 * h2 + h2 + h2 * 10 + 10


def test_rank_pages_count_the_baselines_own_weights_and_layers():
    """Rank comparison and oracle: the helps name the baseline's weight count and linear3's rank limit, not the
    default network's (2.8 M weights, 2000 features)."""
    ranks = page("app_pages/ranks.py")
    assert f"every one of the baseline's {_weights(TIE_BASELINE):,} weights" in ranks.select_slider(
        key="sweep_full_lr").help
    assert "linear3 maps 8 features to only 10 classes, so its rank is at most 8" in ranks.multiselect(
        key="sweep_targets").help
    oracle = page("app_pages/oracle.py")
    assert f"training all {_weights(TIE_BASELINE):,} weights" in oracle.select_slider(key="oracle_full_lr").help


def test_collapse_warning_on_two_classes_says_one_of_them(tie_base, data):
    """Rank comparison: full finetuning at LoRA's rate on two classes answers one of them for almost every
    image, and the warning says so (not "that")."""
    at = page("app_pages/ranks.py", lora_classes=[2, 7], lora_steps=40, sweep_ranks=[1])
    at.button(key="sweep_run").click().run()
    assert not at.exception, at.exception
    config = lc.FinetuneConfig(targets=("linear1", "linear2"), digits=(2, 7), steps=40, seed=TIE["seed"])
    _, _, evaluation = lc.finetune_full(tie_base.model, data, config)
    assert evaluation.accuracy < 0.5  # collapsed, so the warning is shown
    assert float(np.isin(evaluation.predictions.numpy(), [2, 7]).mean()) > 0.9
    (warning,) = [w.value for w in at.warning if "collapsed" in w.value]
    assert "answers one of them for every image" in warning
