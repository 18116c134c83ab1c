"""Streamlit's own Stop in the header, pressed while a page follows a training, never leaves a frozen page:
without a click, the page follows the training again and shows its end. The note that says so is where the
eye is: above the progress bar, on screen."""
import re

from browser_harness import RUN_MS, metric, open_app, wait_idle

from ui import progress

STEPS = "5,000"
LONG = "baseline?v=2&h1=64&h2=32&epochs=10&base_batch=10"  # 5,000 steps: long enough to stop the page mid-way
STEP = re.compile(rf"Training the baseline: step ([\d,]+) of {STEPS}")
VIEWPORT = {"width": 1400, "height": 900}  # the screen the issue was seen on
FINISH_MS = 300_000  # the whole training, on a loaded machine


def test_the_header_stop_never_freezes_a_page_that_follows_a_training(chromium, streamlit_url):
    from playwright.sync_api import expect

    context = chromium.new_context(viewport=VIEWPORT)
    try:
        tab = open_app(context, streamlit_url, LONG)
        tab.get_by_role("button", name="Train baseline", exact=True).click()
        bar = tab.get_by_test_id("stProgress").filter(has_text=STEP)
        expect(bar).to_be_visible(timeout=RUN_MS)
        note = tab.get_by_text(progress.HEADER_STOP, exact=True)
        expect(note).to_be_visible()
        _assert_above_and_on_screen(note.bounding_box(), bar.bounding_box())

        tab.get_by_test_id("stStatusWidget").get_by_role("button", name="Stop", exact=True).click()
        wait_idle(tab)  # the page's pass is stopped; the training goes on
        shown = tab.evaluate(f"() => document.body.textContent.match(/{STEP.pattern}/)?.[1] ?? null")
        if shown is not None:  # else the page was drawn again already, and the training has ended
            # no click: the page follows the training again (a later step, unless it ends first)
            _wait_for_a_later_step_or_the_end(tab, int(shown.replace(",", "")))
        expect(metric(tab, "Steps trained")).to_have_text(STEPS, timeout=FINISH_MS)
        expect(tab.get_by_role("button", name="Train baseline", exact=True)).to_be_disabled()  # stored: made
    finally:
        context.close()


def _wait_for_a_later_step_or_the_end(tab, stopped_at: int) -> None:
    from playwright.sync_api import TimeoutError

    try:
        tab.wait_for_function(
            """([pattern, stoppedAt]) => [...document.querySelectorAll('[data-testid="stProgress"]')].some(e => {
                   const m = e.textContent.match(new RegExp(pattern));
                   return m && Number(m[1].replaceAll(',', '')) > stoppedAt; })
                || document.body.textContent.includes('Steps trained')""",
            arg=[STEP.pattern, stopped_at], timeout=RUN_MS)
    except TimeoutError:
        seen = tab.evaluate("""() => [document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState,
            [...document.querySelectorAll('[data-testid="stProgress"], [data-testid="stMetric"]')]
                .map(e => e.innerText)]""")
        raise AssertionError(f"the page never showed a step after {stopped_at:,} nor the end; (script state, "
                             f"progress and metrics) on it: {seen}") from None


def _assert_above_and_on_screen(note: dict, bar: dict) -> None:
    assert note["y"] + note["height"] <= bar["y"], f"the note {note} is not above the progress bar {bar}"
    assert 0 <= note["y"] and note["y"] + note["height"] <= VIEWPORT["height"], f"the note {note} is off-screen"
