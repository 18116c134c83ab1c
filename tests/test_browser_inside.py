"""The "Inside the update" pages in a real browser: a `streamlit run` server and Debian's chromium.

One session clicks through them in order — a shared link first, then a small baseline, then each view's
computation — and saves a screenshot of each to docs/screenshots/inside-<view>.png.
"""
import os
import re
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api")
from browser_harness import CHROMIUM, streamlit_server, wait_idle  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

LONG_MS = 120_000  # a job on a busy two-core machine

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A fresh `streamlit run app.py` on a free loopback port, with its own (empty) data and checkpoints."""
    folder = tmp_path_factory.mktemp("inside-server")
    env = {"LORA_LAB_DATA": str(folder), "LORA_LAB_CACHE": str(folder / "checkpoints")}
    with streamlit_server(env=env) as url:
        yield url


@pytest.fixture(scope="module")
def page(server, chromium):
    """A tab in the session's one chromium (a second Playwright would clash with the first)."""
    context = chromium.new_context(viewport={"width": 1500, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(LONG_MS)
    yield tab
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Screenshots go to $LORA_LAB_SCREENSHOTS (e.g. docs/screenshots) when set, else to a temporary folder."""
    return Path(os.environ.get("LORA_LAB_SCREENSHOTS") or tmp_path_factory.mktemp("inside-screenshots"))


def connected(page) -> None:
    expect(page.locator('[data-testid="stApp"][data-test-connection-state="CONNECTED"]')).to_be_visible()


def open_view(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    expect(page.get_by_role("heading", name=title).first).to_be_visible()


def steps(page, label: str, value: str = "25") -> None:
    """Fewer steps than the page's default: the smallest computation worth a screenshot."""
    field = page.get_by_role("spinbutton", name=label)
    field.fill(value)
    field.press("Enter")
    expect(field).to_have_value(value)
    page.wait_for_timeout(500)  # the rerun that stores it


def run_and_wait(page, button: str, done) -> None:
    page.get_by_role("button", name=button).click()
    expect(done).to_be_visible(timeout=LONG_MS)
    expect(page.get_by_role("button", name=button)).to_be_enabled(timeout=LONG_MS)


def slide_to(page, slider, value: str, key: str, presses: int = 12) -> None:
    """Press `key` one step at a time until the slider reads `value`: each step reruns the page, and a key
    pressed during that rerun can be undone when it ends, so wait for each rerun before the next press."""
    for _ in range(presses):
        if slider.input_value() == value:
            return
        slider.press(key)
        page.wait_for_timeout(300)  # the rerun that the step starts
        wait_idle(page, LONG_MS)
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


def test_a_shared_link_sets_the_run(page, server):
    page.goto(f"{server}/?preset=forgetting&rank=4&digits=7&steps=20")
    connected(page)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_test_id("stCode")).to_contain_text("?rank=4&digits=7&steps=20", timeout=30_000)
    assert re.search(r"\?rank=4&digits=7&steps=20$", page.url), page.url  # "preset=" spelled out

    open_view(page, "Baseline training")  # a small baseline keeps every view quick
    for label, value in (("Hidden layer 1 size", "256"), ("Hidden layer 2 size", "128"),
                         ("Step limit (0 = none)", "30")):
        field = page.get_by_role("spinbutton", name=label)
        field.fill(value)
        field.press("Enter")
        page.wait_for_timeout(300)
    run_and_wait(page, "Train baseline", page.get_by_text("Test accuracy"))

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


def test_inspector(page, shots):
    open_view(page, "ΔW inspector")
    run_and_wait(page, "Train and watch", page.get_by_text("Effective rank", exact=True))
    expect(page.get_by_text("rows of A in linear1")).to_be_visible()
    screenshot(page, shots, "inspector", charts=8)


def test_rank_oracle(page, shots):
    open_view(page, "Rank oracle")
    steps(page, "Steps per run")
    run_and_wait(page, "Run the oracle", page.get_by_text("Rank holding 90 % of it"))
    screenshot(page, shots, "oracle", charts=2)


def test_initialisation_gallery(page, shots):
    open_view(page, "Initialisation gallery")
    steps(page, "Steps per run")
    run_and_wait(page, "Run the gallery", page.get_by_text("both zero (the notebook): final ‖ΔW‖_F"))
    metric = page.get_by_test_id("stMetric").filter(has_text="both zero")
    expect(metric.get_by_test_id("stMetricValue")).to_have_text("0")
    screenshot(page, shots, "inits", charts=2)


def test_scaling_explorer(page, shots):
    open_view(page, "Scaling explorer")
    steps(page, "Steps per run")
    run_and_wait(page, "Run the sweep", page.get_by_text("Last sweep"))
    screenshot(page, shots, "scaling", charts=2)


def test_frontier(page, shots):
    open_view(page, "Learn/forget frontier")
    steps(page, "Steps per adapter")
    run_and_wait(page, "Train the adapters", page.get_by_role("slider", name="Adapter strength"))
    strength = page.get_by_role("slider", name="Adapter strength")
    strength.focus()
    expect(strength).to_be_focused()  # the keys must reach the slider, not the page
    slide_to(page, strength, "0.8", "ArrowLeft")
    expect(page.get_by_text(re.compile(r"at strength 0\.8; the baseline star"))).to_be_visible()  # the caption
    screenshot(page, shots, "frontier", charts=1)
