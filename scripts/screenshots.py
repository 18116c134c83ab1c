"""The pictures in docs/screenshots: every page of a fresh `streamlit run` server in Debian's chromium, after
a small run of its computation. The tests check what the pages show; this script only takes their picture.

Usage: python scripts/screenshots.py [FOLDER] [--layout]
FOLDER defaults to docs/screenshots; --layout also takes every page at 1400×900, 1280×720 and 390×844 into
FOLDER/layout, to look at what tests/test_browser_layout.py measures.
"""
import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.browser import (  # noqa: E402
    chromium,
    full_page_screenshot,
    go,
    open_app,
    press,
    rerun,
    set_number,
    streamlit_server,
    wait_idle,
)

LONG_MS = 300_000  # a training on a busy two-core machine
WIDE = {"width": 1400, "height": 900}
# The app's widths with 30 steps for the first pages; the inside views on a smaller baseline with the LoRA
# page's settings from a link (rank 5 on class 7), as the README describes them.
FIRST_PAGES = [  # (file name, sidebar link, title, steps input, steps, button)
    ("home", "What is LoRA?", "LoRA Lab", None, None, None),
    ("svd", "SVD playground", "SVD playground", None, None, None),
    ("baseline", "Baseline training", "Baseline training", "Step limit (0 = none)", 30, "Train baseline"),
    ("lora", "LoRA finetuning", "LoRA finetuning", "Steps", 20, "Train LoRA"),
    ("ranks", "Rank comparison", "Rank comparison", "Steps per run", 5, "Run comparison"),
]
INSIDE_LINK = "?rank=5&digits=7&steps=20"
INSIDE_BASELINE = (("Hidden layer 1 size", 256), ("Hidden layer 2 size", 128), ("Step limit (0 = none)", 30))
INSIDE_PAGES = [
    ("inside-inspector", "ΔW inspector", "ΔW inspector", None, None, "Train and watch"),
    ("inside-oracle", "Rank oracle", "Rank oracle", "Steps per run", 25, "Run the oracle"),
    ("inside-inits", "Initialisation gallery", "Initialisation gallery", "Steps per run", 25, "Run the gallery"),
    ("inside-scaling", "Scaling explorer", "Scaling explorer", "Steps per run", 25, "Run the sweep"),
    ("inside-frontier", "Learn/forget frontier", "Learn/forget frontier", "Steps per adapter", 25,
     "Train the adapters"),
]
LAYOUT_SIZES = [(1400, 900), (1280, 720), (390, 844)]


def run_page(page, link: str, title: str, steps_label: str | None, steps: int | None, button: str | None) -> None:
    """Open the page in the sidebar, set its steps and run its computation (unless it is stored already)."""
    go(page, link, title)
    if steps_label:
        set_number(page, steps_label, steps)
    if button:
        press(page, button, LONG_MS)
    wait_idle(page, LONG_MS)


def wait_for_charts(page) -> None:
    """Plotly draws a chart once it is in view: until every chart of the page has drawn."""
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].every(e => e._fullLayout)",
                           timeout=30_000)
    page.wait_for_timeout(800)  # plotly's last layout pass


def shoot(page, path: Path) -> None:
    wait_for_charts(page)
    full_page_screenshot(page, path)
    print(path)


def take_pages(browser, url: str, folder: Path) -> None:
    context = browser.new_context(viewport=WIDE)
    page = open_app(context, url)
    for name, *how in FIRST_PAGES:
        run_page(page, *how)
        shoot(page, folder / f"{name}.png")
    context.close()

    context = browser.new_context(viewport={"width": 1500, "height": 900})
    page = open_app(context, url, INSIDE_LINK)
    go(page, "Baseline training", "Baseline training")
    for label, value in INSIDE_BASELINE:
        set_number(page, label, value)
    press(page, "Train baseline", LONG_MS)
    for name, *how in INSIDE_PAGES:
        run_page(page, *how)
        if name == "inside-frontier":  # the slider moved off 1, so the paths and the caption show
            slider = page.get_by_role("slider", name="Adapter strength")
            slider.focus()
            for _ in range(4):
                with rerun(page, LONG_MS):
                    slider.press("ArrowLeft")
        shoot(page, folder / f"{name}.png")
    context.close()


def take_layout(browser, url: str, folder: Path) -> None:
    """Every page at the three widths, in one session that has run every page's computation already."""
    context = browser.new_context(viewport=WIDE)
    page = open_app(context, url, INSIDE_LINK)
    go(page, "Baseline training", "Baseline training")
    for label, value in INSIDE_BASELINE:
        set_number(page, label, value)
    press(page, "Train baseline", LONG_MS)
    for _, link, title, *how in FIRST_PAGES[1:] + INSIDE_PAGES:
        run_page(page, link, title, *how)
        for width, height in LAYOUT_SIZES:
            page.set_viewport_size({"width": width, "height": height})
            shoot(page, folder / f"{link.replace('/', '-').replace(' ', '-')}-{width}x{height}.png")
        page.set_viewport_size(WIDE)
    context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--layout", action="store_true", help="also every page at three sizes, in FOLDER/layout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lora-lab-shots-") as work:
        env = {"LORA_LAB_DATA": f"{work}/data", "LORA_LAB_CACHE": f"{work}/checkpoints"}
        with streamlit_server(env=env, log=Path(work) / "streamlit.log") as url, chromium() as browser:
            take_pages(browser, url, args.folder)
            if args.layout:
                take_layout(browser, url, args.folder / "layout")
    return 0


if __name__ == "__main__":
    sys.exit(main())
