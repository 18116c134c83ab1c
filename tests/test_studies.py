"""The studies behind the "Inside the update" views, most on the narrow baseline (conftest.py): what they claim
holds for any width, and the oracle's SVDs of a 64×784 and a 32×64 update take milliseconds, not seconds."""
import pytest

from lora_core import FinetuneConfig, evaluate
from lora_core.inits import gallery_inits
from lora_core.studies import frontier, init_gallery, rank_oracle, scaling_sweep, train_frontier_adapters

CONFIG = FinetuneConfig(steps=15, targets=("linear1", "linear2"))


def test_init_gallery(baseline, data):  # the app's widths: the exact zeros below are pinned on them
    curves = {c.init: c for c in init_gallery(baseline.model, data, CONFIG)}
    assert set(curves) == set(gallery_inits(CONFIG.rank))
    assert set(curves) == {"kaiming", "gaussian", "zeros", "random", "pissa", "olora"}  # rank 1: no orthogonal
    zeros = curves["zeros"]
    assert zeros.update_norms == [0.0] * 15  # both zero: every gradient is zero, nothing ever moves
    assert zeros.initial_change == 0 and curves["kaiming"].initial_change == 0 == curves["gaussian"].initial_change
    assert curves["random"].initial_change > 0.1  # both random: the outputs change before any step
    assert curves["kaiming"].update_norms[-1] > 0 and len(curves["kaiming"].losses) == 15
    assert curves["kaiming"].losses != zeros.losses


def test_scaling_sweep(narrow_baseline, data):
    rows = scaling_sweep(narrow_baseline.model, data, FinetuneConfig(steps=10, alpha=4.0, targets=("linear2",)), [1, 4])
    by = {(r.scaling, r.rank): r for r in rows}
    assert by[("α/r", 4)].scale == 1.0 and by[("α/√r", 4)].scale == 2.0 and by[("α/r", 1)].scale == 4.0
    assert all(r.update_norm > 0 and r.final_loss > 0 for r in rows)


def test_frontier_moves_with_strength(narrow_baseline, data):
    adapters = train_frontier_adapters(narrow_baseline.model, data, CONFIG, [1, 2])
    off = frontier(narrow_baseline.model, data, adapters, (2,), 0.0)
    before = evaluate(narrow_baseline.model, data.test_x, data.test_y)
    assert all(p.target_wrong == before.wrong_per_class[2] and p.accuracy == pytest.approx(before.accuracy)
               for p in off)
    full = frontier(narrow_baseline.model, data, adapters, (2,), 1.0)
    assert [p.rank for p in full] == [1, 2]
    assert all(p.target_wrong < before.wrong_per_class[2] for p in full)


def test_rank_oracle(narrow_baseline, data):
    oracle = rank_oracle(narrow_baseline.model, data, CONFIG, [2, 1])
    assert oracle.ranks == (1, 2) and set(oracle.layers) == {"linear1", "linear2"}
    layer = oracle.layers["linear2"]
    assert layer.energy[-1] == pytest.approx(1) and (layer.energy.diff() >= -1e-12).all()
    assert 1 < layer.effective_rank <= len(layer.singular_values)
    for rank in (1, 2):
        found = layer.similarity[rank]
        assert 0 <= found["similarity"] <= 1 and len(found["angles_deg"]) == rank
    assert len(oracle.full_losses) == CONFIG.steps


def test_studies_stop_and_keep_only_finished_runs(narrow_baseline, data):
    steps = []
    stop = lambda: len(steps) >= CONFIG.steps + 3  # the second run is cut short
    progress = lambda *p: steps.append(p)
    assert len(init_gallery(narrow_baseline.model, data, CONFIG, on_progress=progress, should_stop=stop)) == 1
    steps.clear()
    assert len(scaling_sweep(narrow_baseline.model, data, CONFIG, [1, 2], on_progress=progress, should_stop=stop)) == 1
    steps.clear()
    assert list(train_frontier_adapters(narrow_baseline.model, data, CONFIG, [1, 2], on_progress=progress,
                                        should_stop=stop)) == [1]
    steps.clear()
    assert rank_oracle(narrow_baseline.model, data, CONFIG, [1], on_progress=progress, should_stop=lambda: True) is None
    steps.clear()
    assert rank_oracle(narrow_baseline.model, data, CONFIG, [1, 2], on_progress=progress, should_stop=stop).ranks == ()
