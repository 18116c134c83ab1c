"""The "Inside the update" pages in a real browser: a `streamlit run` server and Debian's chromium.

Each test opens its own tab (its own session) from a shared link, gives it a small baseline (trained once
per server, then reused) and runs one view's computation; the screenshots go to
$LORA_LAB_SCREENSHOTS/inside-<view>.png when it is set (e.g. docs/screenshots).
"""
import os
import re
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api")
from browser_harness import open_app, rerun, set_number, wait_idle  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

LONG_MS = 300_000  # a job on a busy two-core machine, shared with other work
LINK = "?rank=5&digits=7&steps=20"  # the LoRA page's settings every view starts from: short runs
SMALL_BASELINE = (("Hidden layer 1 size", 256), ("Hidden layer 2 size", 128), ("Step limit (0 = none)", 30))


@pytest.fixture
def context(chromium):
    """A browser context of the test session's one chromium (a second Playwright would clash): its tabs
    are new Streamlit sessions."""
    context = chromium.new_context(viewport={"width": 1500, "height": 900})
    context.set_default_timeout(LONG_MS)
    yield context
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Screenshots go to $LORA_LAB_SCREENSHOTS (e.g. docs/screenshots) when set, else to a temporary folder."""
    return Path(os.environ.get("LORA_LAB_SCREENSHOTS") or tmp_path_factory.mktemp("inside-screenshots"))


def open_view(page, title: str) -> None:
    with rerun(page, LONG_MS):
        page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    expect(page.get_by_role("heading", name=title).first).to_be_visible()


def steps(page, label: str, value: int = 25) -> None:
    """Fewer steps than the page's default: the smallest computation worth a screenshot."""
    set_number(page, label, value)
    expect(page.get_by_role("spinbutton", name=label)).to_have_value(str(value))


def give_baseline(page) -> None:
    """The small baseline that keeps every view quick (trained by the first session, reused by the others)."""
    open_view(page, "Baseline training")
    for label, value in SMALL_BASELINE:
        set_number(page, label, value)
    run_and_wait(page, "Train baseline", page.get_by_text("Test accuracy"))


def open_with_baseline(context, url: str):
    """A new tab (a new session) from the shared link, with the small baseline."""
    page = open_app(context, url, LINK)
    give_baseline(page)
    return page


def run_and_wait(page, button: str, done) -> None:
    """Click the button, unless its run is stored on the server already (then it is disabled and shown)."""
    if page.get_by_role("button", name=button).is_enabled():
        page.get_by_role("button", name=button).click()
    expect(done).to_be_visible(timeout=LONG_MS)
    wait_idle(page, LONG_MS)  # the run that drew it has ended (its button is now disabled: the run is stored)


def slide_to(page, slider, value: str, key: str, presses: int = 12) -> None:
    """Press `key` one step at a time until the slider reads `value`: each step reruns the page, and a key
    pressed during that rerun can be undone when it ends, so wait for each rerun before the next press."""
    for _ in range(presses):
        if slider.input_value() == value:
            return
        with rerun(page, LONG_MS):
            slider.press(key)
    expect(slider).to_have_value(value)


def screenshot(page, folder: Path, name: str, charts: int) -> None:
    """The whole page: Streamlit scrolls inside its own container, so grow the viewport to it first."""
    page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {charts}",
                           timeout=30_000)
    page.mouse.move(5, 5)  # no tooltip over the page
    page.wait_for_timeout(800)  # plotly's last layout pass
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], "
                           "[data-testid=\"stAppViewContainer\"]')].map(e => e.scrollHeight), 900)")
    page.set_viewport_size({"width": 1500, "height": min(int(height) + 40, 7000)})
    page.wait_for_timeout(500)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"inside-{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1500, "height": 900})


def test_a_shared_link_sets_the_run(context, streamlit_url):
    page = open_app(context, streamlit_url, "?preset=forgetting&rank=4&digits=7&steps=20")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_test_id("stCode")).to_contain_text("?v=2&rank=4&digits=7&steps=20", timeout=30_000)
    assert re.search(r"\?v=2&rank=4&digits=7&steps=20$", page.url), page.url  # "preset=" spelled out

    give_baseline(page)

    open_view(page, "LoRA finetuning")
    rank = page.get_by_role("slider", name="Rank r")
    expect(rank).to_have_value("4")
    expect(page.get_by_role("spinbutton", name="Steps")).to_have_value("20")
    classes = page.get_by_test_id("stMultiSelect").filter(has_text="Classes to finetune on")
    expect(classes).to_contain_text("7")
    rank.focus()
    rank.press("ArrowRight")  # the URL follows the widgets
    expect(rank).to_have_value("5")
    page.wait_for_function("() => window.location.search.includes('rank=5')", timeout=30_000)


def test_inspector(context, streamlit_url, shots):
    page = open_with_baseline(context, streamlit_url)
    open_view(page, "ΔW inspector")
    run_and_wait(page, "Train and watch", page.get_by_text("Effective rank", exact=True))
    expect(page.get_by_text("rows of A in linear1")).to_be_visible()
    screenshot(page, shots, "inspector", charts=8)


def test_rank_oracle(context, streamlit_url, shots):
    page = open_with_baseline(context, streamlit_url)
    open_view(page, "Rank oracle")
    steps(page, "Steps per run")
    run_and_wait(page, "Run the oracle", page.get_by_text("Rank holding 90 % of it"))
    screenshot(page, shots, "oracle", charts=2)


def test_initialisation_gallery(context, streamlit_url, shots):
    page = open_with_baseline(context, streamlit_url)
    open_view(page, "Initialisation gallery")
    steps(page, "Steps per run")
    run_and_wait(page, "Run the gallery", page.get_by_text("both zero (the notebook): final ‖ΔW‖_F"))
    metric = page.get_by_test_id("stMetric").filter(has_text="both zero")
    expect(metric.get_by_test_id("stMetricValue")).to_have_text("0")
    screenshot(page, shots, "inits", charts=2)


def test_scaling_explorer(context, streamlit_url, shots):
    page = open_with_baseline(context, streamlit_url)
    open_view(page, "Scaling explorer")
    steps(page, "Steps per run")
    run_and_wait(page, "Run the sweep", page.get_by_text("Last sweep"))
    screenshot(page, shots, "scaling", charts=2)


def test_frontier(context, streamlit_url, shots):
    page = open_with_baseline(context, streamlit_url)
    open_view(page, "Learn/forget frontier")
    steps(page, "Steps per adapter")
    run_and_wait(page, "Train the adapters", page.get_by_role("slider", name="Adapter strength"))
    strength = page.get_by_role("slider", name="Adapter strength")
    strength.focus()
    expect(strength).to_be_focused()  # the keys must reach the slider, not the page
    slide_to(page, strength, "0.8", "ArrowLeft")
    expect(page.get_by_text(re.compile(r"at strength 0\.8; the baseline star"))).to_be_visible()  # the caption
    screenshot(page, shots, "frontier", charts=1)
