"""Fair sharing in a real browser: two tabs of one browser are one person (Streamlit's XSRF cookie names
the browser), so the second tab's training is refused with the reason, while another browser's training
takes the other slot at once."""
import re

from browser_harness import RUN_MS, open_app, streamlit_server

TRAINING = re.compile(r"Training the baseline: step \d+")


def set_hidden(page, size: str) -> None:
    """Other settings than the other tabs', so that this tab starts its own training (not joins one)."""
    from playwright.sync_api import expect

    field = page.get_by_role("spinbutton", name="Hidden layer 1 size")
    field.fill(size)
    field.press("Enter")
    expect(field).to_have_value(size)
    page.wait_for_timeout(500)  # the rerun that stores it


def test_two_tabs_of_one_browser_take_one_slot_and_another_browser_gets_the_other(tmp_path, chromium):
    from playwright.sync_api import expect

    env = {"LORA_LAB_MAX_TRAININGS": "2", "LORA_LAB_CACHE": str(tmp_path / "checkpoints")}
    with streamlit_server(env, tmp_path / "server.log") as url:
        student = chromium.new_context()
        other_student = chromium.new_context()
        try:
            first = open_app(student, url, "baseline?v=2&epochs=40")  # thousands of steps: time to ask twice
            first.get_by_role("button", name="Train baseline").click()  # the default: hundreds of steps
            expect(first.get_by_text(TRAINING)).to_be_visible(timeout=RUN_MS)

            second = open_app(student, url, "baseline")  # another tab, another session, the same browser
            set_hidden(second, "50")
            second.get_by_role("button", name="Train baseline").click()
            refusal = second.get_by_text(re.compile(r"Not started: you already have a baseline training running or "
                                                    r"waiting, maybe in another tab"))
            expect(refusal).to_be_visible()
            expect(second.get_by_text(TRAINING)).to_have_count(0)
            expect(second.get_by_text(re.compile(r"Your other training: step [\d,]+ of"))).to_be_visible(timeout=RUN_MS)

            third = open_app(other_student, url, "baseline?v=2&epochs=50")  # its own run, as long as the first's
            third.get_by_role("button", name="Train baseline").click()
            expect(third.get_by_text(TRAINING)).to_be_visible(timeout=RUN_MS)  # a slot at once: no queue
            expect(first.get_by_text(TRAINING)).to_be_visible()
            for page in (first, third):
                page.get_by_role("button", name="Stop training").click()
            expect(refusal).to_have_count(0, timeout=RUN_MS)  # the other training ended: the refusal is taken back
            expect(second.get_by_role("button", name="Train baseline")).to_be_enabled()
        finally:
            student.close()
            other_student.close()
    assert "Traceback" not in (tmp_path / "server.log").read_text()
