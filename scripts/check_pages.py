"""Every page of the app draws without an error, in a fresh session and after a tiny baseline is trained.

Needs only what requirements.txt installs (no pytest): CI runs it in a virtualenv made from that file alone,
to prove that README's first command gives a working app. Usage: python scripts/check_pages.py
"""
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
TINY_BASELINE = {"base_hidden1": 16, "base_hidden2": 16, "base_max_steps": 5}  # stored on disk too


def problems(at: AppTest, page: str) -> list[str]:
    return [f"{page}: {element.value}" for element in (*at.exception, *at.error)]


def main() -> int:
    os.chdir(ROOT)
    work = Path(tempfile.mkdtemp(prefix="lora-lab-pages-"))
    os.environ.update(LORA_LAB_DATA=str(work / "data"), LORA_LAB_CACHE=str(work / "checkpoints"),
                      LORA_LAB_OPERATOR_TOKEN=secrets.token_urlsafe(24))  # the operator's page exists only with one
    try:
        found, pages = check(work)
    finally:
        shutil.rmtree(work)
    for problem in found:
        print(problem, file=sys.stderr)
    print(f"{len(pages)} pages checked: {'ok' if not found else f'{len(found)} problem(s)'}")
    return 1 if found else 0


def check(work: Path) -> tuple[list[str], list[str]]:
    """(the problems found, the pages checked)."""
    pages = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "app_pages").glob("*.py"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for key, value in TINY_BASELINE.items():
        at.session_state[key] = value
    at.run()
    found = problems(at, "app.py")
    for page in pages:  # before a baseline: each page says what to do first
        found += problems(at.switch_page(page).run(), page)
    if found:  # a page that cannot draw has no buttons to press either
        return found, pages
    at.switch_page("app_pages/baseline.py").run()
    if not at.button(key="base_train").disabled:  # a run stored before is shown without training
        at.button(key="base_train").click().run()
    found += problems(at, "app_pages/baseline.py, training")
    for page in pages:  # with a baseline: each page shows its settings and its buttons
        found += problems(at.switch_page(page).run(), page)
    if not list((work / "checkpoints" / "runs").glob("*.safetensors")):
        found.append("training the baseline stored no run on disk")
    return found, pages


if __name__ == "__main__":
    sys.exit(main())
