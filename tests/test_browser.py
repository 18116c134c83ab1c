"""The dashboard in a real browser, for what only a browser shows: every page by its own URL, and an adapter
downloaded from one session and uploaded into another. `streamlit run` is driven by Playwright through
Debian's chromium; the pages' numbers are checked through AppTest (tests/test_app_pages.py).

One server and one chromium serve every test (session fixtures in conftest.py). Each test opens its own
tab, that is its own Streamlit session, and makes what it needs (a baseline trained once per server is
reused by the next session), so each passes alone and in any order. Every number read off the page is
compared with lora_core called here with the same settings; training is deterministic on the CPU, so they
agree exactly.
"""
import io
import zipfile

import pytest
import torch
from browser_harness import chart_when, go, metric, open_app, press, problems, rerun, set_number
from conftest import SMALL_BASELINE, SMALL_FINETUNE

import lora_core as lc
from lora_core.adapter_files import ADAPTER_FILE
from lora_core.adapter_zips import read_upload

expect = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright").expect

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
    set_number(page, "Step limit (0 = none)", SMALL_BASELINE.max_steps)
    press(page, "Train baseline", 180_000)
    expect(metric(page, "Steps trained")).to_have_text(str(SMALL_BASELINE.max_steps), timeout=120_000)
    return page.get_by_test_id("stMain").inner_text()


def train_lora(page) -> None:
    """The small baseline, then the LoRA page's defaults but for the steps."""
    ensure_baseline(page)
    visit(page, "lora")
    set_number(page, "Steps", SMALL_FINETUNE.steps)
    press(page, "Train LoRA", 180_000)


@pytest.mark.parametrize("path, link, title", PAGES)
def test_every_page_opens_by_its_url(chromium, streamlit_url, path, link, title):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = open_app(context, streamlit_url, path)
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        expect(page.get_by_test_id("stSidebarNav").get_by_role("link", name=link)).to_be_visible()
        assert problems(page) == []
        expect(page.get_by_test_id("stToolbar")).to_be_visible()  # the header is drawn, without developer tools:
        assert not page.get_by_test_id("stAppDeployButton").count()  # no Deploy (.streamlit/config.toml)
    finally:
        context.close()


def test_download_an_adapter_and_upload_it_in_a_new_session(tab, small_baseline, small_lora, chromium, streamlit_url,
                                                             tmp_path):
    train_lora(tab)
    with tab.expect_download() as download:
        tab.get_by_role("button", name="Download adapter (.zip)").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == "lora-adapter-rank1-2.zip"
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as zf:
        assert zf.namelist() == [ADAPTER_FILE]
    saved, trained = read_upload(path.name, path.read_bytes()), lc.adapter_of(small_lora.model)
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
        tuned = small_lora.after
        bars = chart_when(fresh, BEFORE_AFTER, lambda t: t[1]["y"] == tuned.wrong_per_class)
        assert bars is not None and bars[1]["y"] == tuned.wrong_per_class
        assert bars[0]["y"] == small_baseline.evaluation.wrong_per_class
        expect(metric(fresh, "Accuracy after LoRA")).to_have_text(percent(tuned.accuracy))
        assert problems(fresh) == []
    finally:
        context.close()
