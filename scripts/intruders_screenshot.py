"""docs/screenshots/intruders.png (1400×900) and intruders-phone.png (390×844): the Intruder dimensions page on
the app's default baseline with the LoRA page's learning rate at 0.01, where LoRA r=1 shows an intruder, on a
fresh `streamlit run` server in Debian's chromium.

Usage: python scripts/intruders_screenshot.py [FOLDER]   (FOLDER defaults to docs/screenshots)
"""
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.browser import chromium, go, open_app, press, problems, streamlit_server  # noqa: E402
from scripts.screenshots import shoot  # noqa: E402

LONG_MS = 600_000  # the default baseline, then five runs and their SVDs, on a busy two-core machine
SIZES = {"intruders": (1400, 900), "intruders-phone": (390, 844)}


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    with tempfile.TemporaryDirectory(prefix="lora-lab-shots-") as work:
        env = {"LORA_LAB_DATA": f"{work}/data", "LORA_LAB_CACHE": f"{work}/checkpoints"}
        with streamlit_server(env=env, log=Path(work) / "streamlit.log") as url, chromium() as browser:
            page = open_app(browser.new_context(viewport={"width": 1400, "height": 900}), url, "?lr=0.01")
            go(page, "Baseline training", "Baseline training")
            press(page, "Train baseline", LONG_MS)
            go(page, "Intruder dimensions", "Intruder dimensions")
            press(page, "Run the oracle", LONG_MS)
            for name, (width, height) in SIZES.items():
                page.set_viewport_size({"width": width, "height": height})
                shoot(page, folder / f"{name}.png")
            if found := problems(page):
                print("\n".join(found), file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
