"""Click → result in a real browser, for each action of issue 12's table: `python -m benchmarks.ui`.

A fresh `streamlit run` server (its own checkpoint folder, so nothing is restored from disk) and Debian's
chromium driven by Playwright. Each repeat of an action opens a new tab (a new session) on a link with a
seed of its own — the server's run store would otherwise show a repeat's result at once, without
computing it — trains that seed's default baseline (not timed) and times from the click to the moment
the result is on screen and the page has stopped running. The baseline action times that baseline.
The slider moves the frontier's strength one step at a time, in a tab that has shown its adapters for
SETTLE_S seconds (a person reading it), and again in one that has just shown them. Prints the median of
the repeats with their range.

Both moments are taken in the page, on its own clock: the click (or key, or file) as its event arrives,
the result when a MutationObserver sees it drawn and the run ended, after the next frame is painted.
Asking from outside would cost the page what it measures (polling a text locator every 50 ms took a
fifth of a core from the LoRA page) and see the result late (Playwright's own waits retry at up to
0.5 s intervals).
"""
import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import lora_core as lc
from benchmarks.browser import chromium, go, metric, open_app, press, streamlit_server, wait_idle
from lora_core.adapter_zips import adapter_zip
from lora_core.train import planned_steps

LONG_MS = 600_000  # the longest click → result the benchmark waits for
SETTLE_S = 10  # how long the frontier is on screen before its slider moves: a person reading it
STUDIES = {  # page title → its run button and the note it shows until a result is there
    "Rank oracle": "Run the oracle", "Initialisation gallery": "Run the gallery",
    "Scaling explorer": "Run the sweep", "Learn/forget frontier": "Train the adapters",
}


WATCH = """([done, ended]) => {  // the moment of the next action in this tab, and of its result drawn (with
  // the run ended, unless `ended` is false: a first value the page shows while it goes on computing)
  const bench = window.__bench = {action: null, result: null};
  const idle = () => document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]');
  for (const type of ["pointerdown", "keydown", "change"])
    document.addEventListener(type, () => { bench.action ??= performance.now(); }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    if (bench.action === null || (ended && !idle()) || !eval(done)()) return;
    observer.disconnect();
    requestAnimationFrame(() => setTimeout(() => { bench.result = performance.now(); }));  // once painted
  });
  observer.observe(document, {subtree: true, childList: true, characterData: true, attributes: true,
                              attributeFilter: ["data-test-script-state", "disabled"]});
}"""


def text(words: str) -> str:
    """A page condition (JavaScript): `words` are in the page."""
    return f"() => document.body.textContent.includes({json.dumps(words)})"


def heading(words: str) -> str:
    return f"() => [...document.querySelectorAll('h1, h2, h3')].some(h => h.textContent.trim() === {json.dumps(words)})"


def metric_is(label: str, value: str) -> str:
    return (f"() => [...document.querySelectorAll('[data-testid=stMetric]')].some(m => "
            f"m.querySelector('[data-testid=stMetricLabel]')?.textContent.trim() === {json.dumps(label)} && "
            f"m.querySelector('[data-testid=stMetricValue]')?.textContent.trim() === {json.dumps(value)})")


def timed(page, action, done: str, timeout_ms: int = LONG_MS, ended: bool = True) -> float:
    """Seconds from `action`'s event in the page to the page showing `done` (a condition) with its run
    ended (or, without `ended`, as soon as it shows it), both on the page's clock."""
    page.evaluate(WATCH, [done, ended])
    action()
    page.wait_for_function("() => window.__bench.result !== null", polling=100, timeout=timeout_ms)
    return page.evaluate("() => (window.__bench.result - window.__bench.action) / 1000")


class Bench:
    def __init__(self, browser, url: str, adapter_file: Path):
        self.browser, self.url, self.adapter_file = browser, url, adapter_file
        self.seed = 0

    def tab(self, with_baseline: bool = True, link: str = ""):
        """A new session on the baseline page of a new seed (and the settings `link` adds, e.g. "&dora=1"),
        with that seed's baseline when asked for."""
        self.seed += 1
        context = self.browser.new_context(viewport={"width": 1400, "height": 900})
        # a busy machine draws slowly
        page = open_app(context, self.url, f"baseline?seed={self.seed}{link}", timeout=LONG_MS)
        if with_baseline:
            press(page, "Train baseline", timeout=LONG_MS)
            metric(page, "Steps trained").wait_for(timeout=LONG_MS)
            wait_idle(page, LONG_MS)
        return context, page

    def baseline(self) -> float:
        context, page = self.tab(with_baseline=False)
        try:
            steps = planned_steps(5000, lc.BaselineConfig().epochs, lc.BaselineConfig().batch_size)
            return timed(page, page.get_by_role("button", name="Train baseline", exact=True).click,
                         metric_is("Steps trained", f"{steps:,}"))
        finally:
            context.close()

    def lora(self, link: str = "") -> float:
        context, page = self.tab(link=link)
        try:
            go(page, "LoRA finetuning", "LoRA finetuning")
            return timed(page, page.get_by_role("button", name="Train LoRA", exact=True).click, heading("Proofs"))
        finally:
            context.close()

    def lora_dora(self) -> float:
        return self.lora("&dora=1")

    def lora_pissa(self) -> float:
        return self.lora("&init=pissa")

    def upload(self) -> float:
        context, page = self.tab()
        try:
            go(page, "LoRA finetuning", "LoRA finetuning")
            box = page.get_by_test_id("stFileUploaderDropzoneInput")
            return timed(page, lambda: box.set_input_files(str(self.adapter_file)),
                         text("is attached to a copy of your baseline"))
        finally:
            context.close()

    def combine(self) -> float:
        """Two adapters (one trained, one uploaded) on the Combine page, combined by `cat` (the default): from
        choosing `linear` to its result."""
        context, page = self.tab()
        try:
            go(page, "LoRA finetuning", "LoRA finetuning")
            press(page, "Train LoRA", timeout=LONG_MS)
            page.get_by_role("heading", name="Proofs").wait_for(timeout=LONG_MS)
            page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(self.adapter_file))
            page.get_by_text("is attached to a copy of your baseline").first.wait_for(timeout=LONG_MS)
            wait_idle(page, LONG_MS)
            go(page, "Combine adapters", "Combine adapters")
            page.get_by_text("The combined adapter: rank 2").first.wait_for(timeout=LONG_MS)  # cat: 1 + 1
            wait_idle(page, LONG_MS)
            page.get_by_test_id("stSelectbox").filter(has_text="Method").click()
            option = page.get_by_role("option", name="linear", exact=True)
            return timed(page, option.click, text("The combined adapter: rank 1"))
        finally:
            context.close()

    def ranks(self) -> float:
        context, page = self.tab()
        try:
            go(page, "Rank comparison", "Rank comparison")
            return timed(page, page.get_by_role("button", name="Run comparison", exact=True).click,
                         text("Last comparison:"))
        finally:
            context.close()

    def inspector(self) -> float:
        context, page = self.tab()
        try:
            go(page, "ΔW inspector", "ΔW inspector")
            return timed(page, page.get_by_role("button", name="Train and watch", exact=True).click,
                         heading("One layer's update"))
        finally:
            context.close()

    def study(self, title: str, keep_open: bool = False):
        context, page = self.tab()
        button = STUDIES[title]
        go(page, title, title)
        note = text(f"Press {button}.")  # shown until there is a result
        seconds = timed(page, page.get_by_role("button", name=button, exact=True).click, f"() => !({note})()")
        if keep_open:
            return seconds, context, page
        context.close()
        return seconds

    def slider(self, repeats: int, settle_s: float = SETTLE_S, exact: bool = True) -> list[float]:
        """Seconds from a slider key to the new value's chart: with `exact`, the full test set's; else the
        first chart of that value, the estimate on 1,000 test images when nobody had computed it yet."""
        _, context, page = self.study("Learn/forget frontier", keep_open=True)
        try:
            time.sleep(settle_s)
            strength = page.get_by_role("slider", name="Adapter strength")
            strength.focus()
            # the chart's caption names the slider's new value, and whether it is the estimate
            value = ("${Number(document.querySelector('input[type=range][aria-label=\"Adapter strength\"]')"
                     ".value)}")
            full = f"document.body.textContent.includes(`at strength {value}, on all`)"
            first = f"{full} || document.body.textContent.includes(`Estimate at strength {value} on the first`)"
            # 1.0 → 0.95 → 0.9 …: each a value this tab has not shown
            return [timed(page, lambda: strength.press("ArrowLeft"), f"() => {full if exact else first}",
                          ended=exact)  # the estimate is drawn while the full pass still runs
                    for _ in range(repeats)]
        finally:
            context.close()


ACTIONS = [  # (row, method or study title); issue 12's targets in the report
    ("LoRA finetune, defaults", "lora"),
    ("LoRA finetune, DoRA (otherwise defaults)", "lora_dora"),
    ("LoRA finetune, PiSSA (otherwise defaults)", "lora_pissa"),
    ("Rank comparison, defaults", "ranks"),
    ("ΔW inspector, Train and watch", "inspector"),
    ("Rank oracle", "Rank oracle"),
    ("Initialisation gallery", "Initialisation gallery"),
    ("Scaling explorer", "Scaling explorer"),
    ("Learn/forget frontier", "Learn/forget frontier"),
    ("Baseline, defaults (sample)", "baseline"),
    ("Adapter upload", "upload"),
    ("Combine adapters, two on the baseline: the linear method chosen", "combine"),
]


def adapter_file(folder: Path) -> Path:
    """A rank-1 adapter on the default network's layers, as the LoRA page downloads it."""
    model = lc.add_lora(lc.new_model(1000, 2000, 0, "cpu"), rank=1)
    path = folder / "adapter.zip"
    path.write_bytes(adapter_zip(model))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each action (default 5)")
    parser.add_argument("--quick", action="store_true", help="one repeat of each action")
    parser.add_argument("--only", nargs="*", help="row names (or their start) to run, e.g. 'LoRA' 'Adapter'")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats

    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        env = {"LORA_LAB_CACHE": str(Path(tmp) / "checkpoints")}
        with streamlit_server(env=env, log=Path(tmp) / "streamlit.log") as url:
            bench = Bench(browser, url, adapter_file(Path(tmp)))
            rows = []
            chosen = [(row, how) for row, how in ACTIONS
                      if not args.only or any(row.startswith(name) for name in args.only)]
            for row, how in chosen:
                times = [getattr(bench, how)() if hasattr(bench, how) else bench.study(how) for _ in range(repeats)]
                rows.append((row, times))
                print(f"{row}: " + ", ".join(f"{t:.1f}" for t in times) + " s", flush=True)
            if not args.only or any("Frontier strength".startswith(n) or n.startswith("Frontier") for n in args.only):
                for row, settle_s, exact in (
                        (f"Frontier strength slider, a new value ({SETTLE_S} s after the frontier)", SETTLE_S, True),
                        ("Frontier strength slider, a new value at once: first value shown", 0, False),
                        ("Frontier strength slider, a new value at once: the full test set's", 0, True)):
                    rows.append((row, bench.slider(repeats, settle_s, exact)))
                    print(f"{row}: " + ", ".join(f"{t:.2f}" for t in rows[-1][1]) + " s", flush=True)
    print(f"\n{os.cpu_count()} cores; {repeats} repeat(s); median (range)\n")
    print("| click → result | median | range |\n| --- | ---: | ---: |")
    for row, times in rows:
        print(f"| {row} | {statistics.median(times):.2f} s | {min(times):.2f}–{max(times):.2f} s |")


if __name__ == "__main__":
    main()
