"""Following a training in a real browser: the Train button is disabled from the click on, for the whole pass
that follows the run, so it cannot be clicked twice."""
import re

from browser_harness import RUN_MS, metric, open_app

LONG = "baseline?v=2&h1=64&h2=32&epochs=20&base_batch=10"  # 10,000 steps: seconds of training to look at


def test_the_train_button_is_disabled_while_its_own_training_runs(chromium, streamlit_url):
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        tab = open_app(context, streamlit_url, LONG)
        tab.get_by_role("button", name="Train baseline", exact=True).click()
        expect(tab.get_by_text(re.compile(r"Training the baseline: step [\d,]+ of 10,000"))).to_be_visible(
            timeout=RUN_MS)
        expect(tab.get_by_role("button", name="Train baseline", exact=True)).to_be_disabled()
        expect(tab.get_by_role("button", name="Stop training", exact=True)).to_be_enabled()
        expect(metric(tab, "Steps trained")).to_have_text("10,000", timeout=240_000)
    finally:
        context.close()
