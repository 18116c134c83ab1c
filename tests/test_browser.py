"""The dashboard in a real browser: `streamlit run` driven by Playwright through Debian's chromium.

One server and one chromium serve every test (session fixtures in conftest.py). Each test opens its own
tab, that is its own Streamlit session, and makes what it needs (a baseline trained once per server is
reused by the next session), so each passes alone and in any order. Every number read off the page is
compared with lora_core called here with the same settings; training is deterministic on the CPU, and
conftest.py runs one training at a time, so they agree exactly.

Screenshots go to a temporary folder, or to $LORA_LAB_SCREENSHOTS (e.g. docs/screenshots) when set.
"""
import io
import os
import zipfile
from pathlib import Path

import pytest
import torch
from browser_harness import (
    chart_when,
    click,
    full_page_screenshot,
    go,
    metric,
    open_app,
    press,
    problems,
    rerun,
    set_number,
)

import lora_core as lc
from lora_core.adapters import ADAPTER_FILE, read_upload

expect = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright").expect

BASELINE = lc.BaselineConfig(max_steps=30)
FINETUNE = lc.FinetuneConfig(steps=20)  # the LoRA page's defaults but for the steps
SWEEP_RANKS = [1, 2, 4, 8, 16]  # the rank page's defaults
SWEEP = lc.FinetuneConfig(steps=5, targets=("linear1", "linear2"))
BEFORE_AFTER = "Wrong test images per class, before and after"
PAGES = [  # (path, sidebar link, page title)
    ("", "What is LoRA?", "LoRA Lab"),
    ("notebook", "The notebook", "The notebook"),
    ("svd", "SVD playground", "SVD playground"),
    ("baseline", "Baseline training", "Baseline training"),
    ("lora", "LoRA finetuning", "LoRA finetuning"),
    ("ranks", "Rank comparison", "Rank comparison"),
]
LINK = {path: (link, title) for path, link, title in PAGES}


def percent(share: float) -> str:
    return f"{share:.2%}"


@pytest.fixture(scope="module")
def core(data):
    """What the pages must show, computed by lora_core directly."""
    base = lc.train_baseline(BASELINE, data)
    return {"base": base, "lora": lc.finetune_lora(base.model, data, FINETUNE)}


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return Path(os.environ.get("LORA_LAB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))


@pytest.fixture
def tab(chromium, streamlit_url):
    """A new tab: a new Streamlit session, with the app's defaults."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = open_app(context, streamlit_url)
    yield page
    context.close()


def visit(page, path: str) -> None:
    go(page, *LINK[path])
    assert problems(page) == []



def ensure_baseline(page) -> str:
    """Give this session the small baseline (trained once per server, then found); return the page's text."""
    visit(page, "baseline")
    set_number(page, "Step limit (0 = none)", BASELINE.max_steps)
    press(page, "Train baseline", 180_000)
    expect(metric(page, "Steps trained")).to_have_text(str(BASELINE.max_steps), timeout=120_000)
    return page.get_by_test_id("stMain").inner_text()


def train_lora(page) -> None:
    """The small baseline, then the LoRA page's defaults but for the steps."""
    ensure_baseline(page)
    visit(page, "lora")
    set_number(page, "Steps", FINETUNE.steps)
    press(page, "Train LoRA", 180_000)


@pytest.mark.parametrize("path, link, title", PAGES)
def test_every_page_opens_by_its_url(chromium, streamlit_url, path, link, title):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = open_app(context, streamlit_url, path)
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        expect(page.get_by_test_id("stSidebarNav").get_by_role("link", name=link)).to_be_visible()
        assert problems(page) == []
    finally:
        context.close()


def test_home_page(tab, shots):
    visit(tab, "")
    expect(tab.get_by_text("LoRA — low-rank adaptation")).to_be_visible()
    full_page_screenshot(tab, shots / "home.png")


def test_svd_kept_rank_slider_changes_the_error(tab, shots):
    visit(tab, "svd")
    error = metric(tab, "Reconstruction error ‖W − BA‖_F")
    rank_2, rank_1 = lc.playground(10, 10, 2, 2, seed=0).error, lc.playground(10, 10, 2, 1, seed=0).error
    expect(error).to_have_text(f"{rank_2:.3g}")
    assert f"{rank_1:.3g}" != f"{rank_2:.3g}"
    slider = tab.get_by_role("slider", name="Kept rank r")
    slider.focus()
    with rerun(tab):
        slider.press("ArrowLeft")  # the notebook's r = 2 → 1: a rank-2 matrix is no longer reproduced
    expect(error).to_have_text(f"{rank_1:.3g}", timeout=30_000)
    expect(metric(tab, "Parameters of B and A (r·(d+k))")).to_have_text("20")
    sigma = chart_when(tab, "Singular values of W", lambda t: t[0]["y"] is not None)
    assert sigma[0]["y"] == pytest.approx(lc.playground(10, 10, 2, 1, seed=0).singular_values.tolist(), abs=1e-12)
    full_page_screenshot(tab, shots / "svd.png")


def test_train_a_small_baseline(tab, core, shots):
    ensure_baseline(tab)
    base = core["base"]
    expect(metric(tab, "Test accuracy")).to_have_text(percent(base.evaluation.accuracy))
    expect(metric(tab, "Wrong test images")).to_have_text(f"{base.evaluation.wrong:,}")
    wrong = chart_when(tab, "Wrong test images per class", lambda t: t[0]["y"] == base.evaluation.wrong_per_class)
    assert wrong[0]["y"] == base.evaluation.wrong_per_class
    loss = chart_when(tab, "Training loss", lambda t: len(t[0]["y"]) == len(base.losses))
    assert loss[0]["y"] == pytest.approx(base.losses, rel=1e-6)
    assert problems(tab) == []
    full_page_screenshot(tab, shots / "baseline.png")


def test_finetune_with_lora_and_switch_the_adapter(tab, core, shots):
    train_lora(tab)
    tuned, before = core["lora"].after, core["lora"].before
    bars = chart_when(tab, BEFORE_AFTER, lambda t: t[1]["y"] == tuned.wrong_per_class, timeout_s=120)
    assert bars is not None, "the before/after chart never appeared"
    assert bars[0]["y"] == before.wrong_per_class and bars[1]["y"] == tuned.wrong_per_class
    expect(metric(tab, "Accuracy after LoRA")).to_have_text(percent(tuned.accuracy))
    expect(metric(tab, "Wrong on class 2")).to_have_text(f"{tuned.wrong_per_class[2]:,}")
    assert tuned.wrong_per_class != before.wrong_per_class  # else the switch below could not show anything

    switch = tab.get_by_role("switch", name="Adapter on", exact=True)
    label = tab.locator("label").filter(has=switch)  # the input itself is hidden under its label
    click(tab, label)  # off: exactly the baseline again
    expect(switch).not_to_be_checked()
    expect(metric(tab, "Accuracy adapter off")).to_have_text(percent(before.accuracy), timeout=30_000)
    bars = chart_when(tab, BEFORE_AFTER, lambda t: t[1]["y"] == before.wrong_per_class)
    assert bars[1]["y"] == before.wrong_per_class
    click(tab, label)
    expect(switch).to_be_checked()
    expect(metric(tab, "Accuracy after LoRA")).to_have_text(percent(tuned.accuracy), timeout=30_000)
    assert problems(tab) == []
    chart_when(tab, "Merging in lower precision")
    full_page_screenshot(tab, shots / "lora.png")


def test_download_an_adapter_and_upload_it_in_a_new_session(tab, core, chromium, streamlit_url, tmp_path):
    train_lora(tab)
    with tab.expect_download() as download:
        tab.get_by_role("button", name="Download adapter (.zip)").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == "lora-adapter-rank1-2.zip"
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as zf:
        assert zf.namelist() == [ADAPTER_FILE]
    saved, trained = read_upload(path.name, path.read_bytes()), lc.adapter_of(core["lora"].model)
    assert saved.targets == trained.targets and (saved.rank, saved.alpha) == (trained.rank, trained.alpha)
    assert all(torch.equal(a, b) for name in trained.targets for a, b in zip(saved.weights[name],
                                                                             trained.weights[name], strict=True))

    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        fresh = open_app(context, streamlit_url)
        assert "Stored on this server" in ensure_baseline(fresh)  # same settings: from the server-wide store
        visit(fresh, "lora")
        expect(fresh.get_by_text("Press Train LoRA to finetune")).to_be_visible()
        with rerun(fresh):
            fresh.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(path)
        expect(fresh.get_by_test_id("stAlertContentSuccess")).to_contain_text(
            f"{path.name} is attached to a copy of your baseline", timeout=60_000)
        tuned = core["lora"].after
        bars = chart_when(fresh, BEFORE_AFTER, lambda t: t[1]["y"] == tuned.wrong_per_class)
        assert bars is not None and bars[1]["y"] == tuned.wrong_per_class
        assert bars[0]["y"] == core["base"].evaluation.wrong_per_class
        expect(metric(fresh, "Accuracy after LoRA")).to_have_text(percent(tuned.accuracy))
        assert problems(fresh) == []
    finally:
        context.close()


def test_compare_ranks(tab, core, data, shots):
    ensure_baseline(tab)
    visit(tab, "ranks")
    set_number(tab, "Steps per run", SWEEP.steps)
    press(tab, "Run comparison", 240_000)
    rows = lc.compare_ranks(core["base"].model, data, SWEEP_RANKS, SWEEP)
    lora_rows = [r for r in rows if r.rank is not None]
    learned = chart_when(tab, "What is learned", lambda t: t[0]["y"] == [r.target_wrong for r in lora_rows],
                         timeout_s=180)
    assert learned is not None, "the comparison's charts never appeared"
    assert learned[0]["y"] == [r.target_wrong for r in lora_rows]
    assert learned[0]["x"] == [r.trainable for r in lora_rows]
    forgotten = chart_when(tab, "What is forgotten")
    assert forgotten[0]["y"] == [r.other_wrong for r in lora_rows]  # forgetting: errors on the other classes
    full = [r for r in rows if r.method.startswith("full finetune")]
    assert [t["y"] for t in forgotten[1:-1]] == [[r.other_wrong] for r in full] and len(full) == 2
    assert problems(tab) == []
    full_page_screenshot(tab, shots / "ranks.png")
