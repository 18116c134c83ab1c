"""The "Inside the update" pages in a real browser, for what only a browser shows: a shared link rewritten in
the address bar and followed by its widgets, and the frontier's strength slider moved by keys while its
fragment reruns. Their numbers are checked through AppTest (tests/test_app_inside.py).

Each test opens its own tab (its own session) and gives it a small baseline (trained once per server, then
reused). The screenshots in docs/ are made by scripts/screenshots.py.
"""
import re

import pytest

playwright = pytest.importorskip("playwright.sync_api")
from browser_harness import open_app, rerun, set_number, wait_idle  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

LONG_MS = 300_000  # a job on a busy two-core machine, shared with other work
FRONTIER_STEPS = 10  # as tests/test_browser_layout.py trains it: whichever runs second finds it stored
SMALL_BASELINE = (("Hidden layer 1 size", 256), ("Hidden layer 2 size", 128), ("Step limit (0 = none)", 30))


@pytest.fixture
def context(chromium):
    """A browser context of the test session's one chromium (a second Playwright would clash): its tabs
    are new Streamlit sessions."""
    context = chromium.new_context(viewport={"width": 1500, "height": 900})
    context.set_default_timeout(LONG_MS)
    yield context
    context.close()


def open_view(page, title: str) -> None:
    with rerun(page, LONG_MS):
        page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    expect(page.get_by_role("heading", name=title).first).to_be_visible()


def steps(page, label: str, value: int) -> None:
    """Fewer steps than the page's default: the smallest computation that shows the view."""
    set_number(page, label, value)
    expect(page.get_by_role("spinbutton", name=label)).to_have_value(str(value))


def give_baseline(page) -> None:
    """The small baseline that keeps every view quick (trained by the first session, reused by the others)."""
    open_view(page, "Baseline training")
    for label, value in SMALL_BASELINE:
        set_number(page, label, value)
    run_and_wait(page, "Train baseline", page.get_by_text("Test accuracy"))


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


def test_frontier(context, streamlit_url):
    page = open_app(context, streamlit_url)  # the app's defaults, as tests/test_browser_layout.py: one run for both
    give_baseline(page)
    open_view(page, "Learn/forget frontier")
    steps(page, "Steps per adapter", FRONTIER_STEPS)
    run_and_wait(page, "Train the adapters", page.get_by_role("slider", name="Adapter strength"))
    strength = page.get_by_role("slider", name="Adapter strength")
    strength.focus()
    expect(strength).to_be_focused()  # the keys must reach the slider, not the page
    slide_to(page, strength, "0.8", "ArrowLeft")
    caption = re.compile(r"at strength 0\.8, on all 10,000 test images; the baseline star")
    expect(page.get_by_text(caption)).to_be_visible()  # the caption
