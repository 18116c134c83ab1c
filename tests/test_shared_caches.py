"""What st.cache_resource shares between sessions is keyed by everything its value depends on: one
student's settings never change what another student sees. AppTest sessions run in this process and
share its caches, as the sessions of one `streamlit run` server do."""
import pytest
import torch
from conftest import held_baseline, open_session, train_baseline
from streamlit.testing.v1 import AppTest

import lora_core as lc
from ui import inside

BASE = {"base_hidden1": 24, "base_hidden2": 12, "base_max_steps": 8, "lora_steps": 3, "lora_rank": 1}


def inspect_lora_pages_adapter(**state) -> AppTest:
    """A session that trains the small baseline (or reuses it), an adapter on the LoRA page, and opens it
    in the ΔW inspector."""
    at = open_session(BASE, timeout=120, **state)
    train_baseline(at)
    at.switch_page("app_pages/lora.py").run()
    at.button(key="lora_train").click().run()
    at.switch_page("app_pages/inspector.py").run()
    return at


def test_one_students_layers_do_not_break_the_inspector_for_another():
    first = inspect_lora_pages_adapter(lora_targets=["linear3"])
    assert not first.exception, first.exception
    assert list(first.dataframe[0].value["layer"]) == ["linear3"]
    second = inspect_lora_pages_adapter(lora_targets=list(lc.DEFAULT_TARGETS))  # the same baseline
    assert not second.exception, second.exception
    table = second.dataframe[0].value
    assert list(table["layer"]) == list(lc.DEFAULT_TARGETS)
    model = held_baseline(second)["run"].model
    for name, sigma in zip(table["layer"], table["σ₁(W)"], strict=True):
        expected = torch.linalg.matrix_norm(model.get_submodule(name).weight.double(), ord=2)
        assert sigma == pytest.approx(float(expected), rel=1e-9)


def test_layers_with_other_weights_never_share_a_spectrum():
    """A baseline stopped early has the complete one's settings but other weights: each gets its own."""
    spectra = []
    for seed in (0, 1):  # two networks of one shape, as a stopped and a complete baseline are
        model = lc.add_lora(lc.new_model(24, 12, seed, "cpu"), 1, 1.0, ("linear2",), seed)
        view, = inside.inspection(model)["views"]
        assert torch.equal(view.weight_singular_values,
                           torch.linalg.svdvals(model.linear2.parametrizations.weight.original.double()))
        spectra.append(view.weight_singular_values)
    assert not torch.equal(*spectra)
