"""docs/screenshots/class.png: the teacher's board at projector size (1280×720) after six students, each in
their own browser, predicted and trained a small finetune of their own on a real `streamlit run` server.

Usage: python scripts/class_screenshot.py [--out docs/screenshots/class.png]
"""
import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.browser import chromium, click, go, open_app, press, set_number, streamlit_server  # noqa: E402

STUDENTS = {"Ada": (4, 9), "Bo": (12, 30), "Chen": (25, 14), "Dee": (40, 20), "Emil": (60, 6), "Fay": (90, 25)}
WAIT_MS = 120_000


def teacher_with_a_class(browser, url: str):
    """The teacher's tab on the Class page of a new class, its question asked; the experiment's link."""
    tab = open_app(browser.new_context(viewport={"width": 1280, "height": 720}), url, "baseline", WAIT_MS)
    for label, value in (("Hidden layer 1 size", 64), ("Hidden layer 2 size", 32), ("Step limit (0 = none)", 60)):
        set_number(tab, label, value)
    press(tab, "Train baseline", WAIT_MS)
    go(tab, "LoRA finetuning", "LoRA finetuning")
    set_number(tab, "Steps", 10)
    press(tab, "Train LoRA", WAIT_MS)
    experiment, context = tab.url.split("?", 1)[1], tab.context
    tab.close()
    tab = open_app(context, url, f"class?{experiment}", WAIT_MS)
    click(tab, tab.get_by_role("button", name="Start a class"))
    code = re.search(r"Class code: (\w+)", tab.get_by_role("heading", name=re.compile("Class code")).inner_text())[1]
    click(tab, tab.get_by_role("button", name="Ask"))
    return tab, code, experiment


def student(browser, url: str, code: str, experiment: str, nickname: str, steps: int, guess: int) -> None:
    own = f"&{experiment}&".replace("&steps=10&", f"&steps={steps}&").strip("&")
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        tab = open_app(context, url, f"class?{own}&class={code}", WAIT_MS)
        tab.get_by_role("textbox", name="Nickname").fill(nickname)
        click(tab, tab.get_by_role("button", name="Join"))
        tab.get_by_role("spinbutton", name="Your answer").fill(str(guess))
        click(tab, tab.get_by_role("button", name="Commit"))
        click(tab, tab.get_by_role("link", name="Go to LoRA finetuning"))
        press(tab, "Train LoRA", WAIT_MS)
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "class.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, streamlit_server(env={"LORA_LAB_CACHE": folder}) as url, \
            chromium() as browser:
        teacher, code, experiment = teacher_with_a_class(browser, url)
        for nickname, (steps, guess) in STUDENTS.items():
            student(browser, url, code, experiment, nickname, steps, guess)
        click(teacher, teacher.get_by_role("button", name="Reveal the distribution"))
        click(teacher, teacher.get_by_role("button", name="Reveal the answer"))
        board = teacher.get_by_role("heading", name=re.compile(r"^Board: "))
        board.filter(has_text=f"{len(STUDENTS)} student(s)").wait_for(timeout=WAIT_MS)
        board.evaluate("e => e.scrollIntoView({block: 'start'})")
        teacher.mouse.move(0, 0)
        teacher.wait_for_timeout(2500)  # the charts in view draw themselves
        args.out.parent.mkdir(parents=True, exist_ok=True)
        teacher.screenshot(path=str(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
