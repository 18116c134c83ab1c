"""How long a second student waits for a run the teacher already made: the teacher's browser trains the
notebook preset's baseline and finetune on a fresh server; then N fresh browsers (new sessions) open the
teacher's link and each is timed from the link's request to the finetune's accuracy on screen.

Usage: python scripts/link_wait.py [--tries 10]. Prints each wait and the median.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.browser import chromium, metric, open_app, press, streamlit_server  # noqa: E402

LINK = "lora?v=2&preset=the%20notebook"
SHOWN = "Accuracy after LoRA"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=10)
    args = parser.parse_args()
    from playwright.sync_api import expect

    with tempfile.TemporaryDirectory() as folder, streamlit_server({"LORA_LAB_CACHE": folder}) as url, \
            chromium() as browser:
        teacher = open_app(browser.new_context(viewport={"width": 1400, "height": 900}), url, LINK)
        press(teacher, "Train the baseline", 600_000)
        expect(teacher.get_by_role("button", name="Train LoRA")).to_be_visible(timeout=600_000)
        press(teacher, "Train LoRA", 600_000)
        expect(metric(teacher, SHOWN)).to_be_visible(timeout=600_000)
        waits = []
        for _ in range(args.tries):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            started = time.monotonic()
            page.goto(f"{url}/{LINK}")
            expect(metric(page, SHOWN)).to_be_visible(timeout=120_000)
            waits.append(time.monotonic() - started)
            context.close()
        print("waits (s):", ", ".join(f"{w:.2f}" for w in waits))
        print(f"median {statistics.median(waits):.2f} s over {len(waits)} fresh browsers")


if __name__ == "__main__":
    main()
