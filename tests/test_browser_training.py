"""Following a training in a real browser: the Train button is disabled from the click on, and Streamlit's own
Stop in the header never leaves a frozen page: it picks the training up again by itself and shows its end."""
import re

from browser_harness import RUN_MS, metric, open_app

LONG = "baseline?v=2&h1=64&h2=32&epochs=20&base_batch=10"  # 10,000 steps: long enough to stop the page mid-way


def test_the_header_stop_never_freezes_a_page_that_follows_a_training(chromium, streamlit_url):
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        tab = open_app(context, streamlit_url, LONG)
        tab.get_by_role("button", name="Train baseline", exact=True).click()
        expect(tab.get_by_text(re.compile(r"Training the baseline: step [\d,]+ of 10,000"))).to_be_visible(
            timeout=RUN_MS)
        assert tab.get_by_role("button", name="Train baseline", exact=True).is_disabled()  # no second click
        expect(tab.get_by_text(re.compile(r"Streamlit's own Stop \(top right\) does not end the training"))) \
            .to_be_visible()
        tab.get_by_test_id("stStatusWidget").get_by_role("button", name="Stop").click()  # the header's Stop
        tab.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=RUN_MS)
        first = _step(tab)
        # no click: the page follows the training again, its step moving on, and shows the baseline at its end
        expect(tab.get_by_text(re.compile(r"Training the baseline: step [\d,]+ of 10,000"))).to_be_visible(
            timeout=RUN_MS)
        tab.wait_for_function(f"() => {{ const m = document.body.textContent.match(/step ([\\d,]+) of 10,000/);"
                              f" return m && Number(m[1].replaceAll(',', '')) > {first}; }}", timeout=RUN_MS)
        expect(metric(tab, "Steps trained")).to_have_text("10,000", timeout=240_000)
        tab.get_by_role("button", name="Stop training").count()  # the page is live: its widgets answer
    finally:
        context.close()


def _step(tab) -> int:
    text = tab.get_by_text(re.compile(r"step [\d,]+ of 10,000")).first.inner_text()
    return int(re.search(r"step ([\d,]+) of", text).group(1).replace(",", ""))
