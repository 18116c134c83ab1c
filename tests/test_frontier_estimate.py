"""The frontier's slider at a strength nobody computed yet: an exact count on the first 1,000 test images at
once, labelled as such, then the full 10,000-image value in its place."""
import copy

import pytest
import torch
from conftest import open_session, train_baseline

import lora_core as lc
from lora_core import studies
from service.frontier import estimated_points

SETTINGS = {"base_hidden1": 32, "base_hidden2": 16, "base_max_steps": 40}


@pytest.fixture(scope="module")
def frontier(data):
    base = lc.train_baseline(lc.BaselineConfig(hidden1=32, hidden2=16, max_steps=40), data)
    adapters = studies.train_frontier_adapters(base.model, data, lc.FinetuneConfig(steps=10), (1, 2))
    return base, adapters


def merged_by_hand(model, adapter: lc.Adapter, strength: float):
    """W + strength·(α/r)·B·A in plain torch, on a copy: an independent merge."""
    merged = copy.deepcopy(model)
    scale = adapter.alpha / adapter.rank
    with torch.no_grad():
        for name, (A, B) in adapter.weights.items():
            merged.get_submodule(name).weight += strength * scale * (B @ A)
    return merged


def test_the_estimate_counts_exactly_on_the_first_thousand_test_images(frontier, data):
    base, adapters = frontier
    result = lc.FrontierStudy(lc.FinetuneConfig(steps=10), adapters, {}, stopped=False)
    points, star = estimated_points(result, base, data, (2,), 0.65)
    x, y = data.test_x[:1000], data.test_y[:1000]
    for point, (rank, adapter) in zip(points, adapters.items(), strict=True):
        with torch.no_grad():
            wrong = merged_by_hand(base.model, adapter, 0.65)(x).argmax(1) != y
        assert (point.rank, point.strength) == (rank, 0.65)
        assert point.target_wrong == int(wrong[y == 2].sum()) and point.other_wrong == int(wrong[y != 2].sum())
    with torch.no_grad():
        base_wrong = base.model(x).argmax(1) != y
    assert star == (int(base_wrong[y != 2].sum()), int(base_wrong[y == 2].sum()))
    assert result.points == {}  # an estimate is never kept as the strength's value


def test_the_page_ends_on_the_full_value_labelled_as_such():
    at = open_session(SETTINGS, frontier_ranks=[1], frontier_steps=10, timeout=300)
    train_baseline(at)
    at.switch_page("app_pages/frontier.py").run()
    at.button(key="frontier_run").click().run()
    at.slider(key="frontier_strength").set_value(0.65).run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert any("at strength 0.65, on all 10,000 test images" in c for c in captions)
    assert not any("Estimate on the first" in c for c in captions)  # replaced, not left beside it
