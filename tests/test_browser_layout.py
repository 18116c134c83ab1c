"""Every chart drawn honestly at a desktop, a laptop and a phone width, in a real browser.

One session trains a small baseline, runs each page's computation once with few steps, and then, at each of
1400×900, 1280×720 and 390×844, reads every plotly chart's boxes off the page: 28×28 images and heatmap cells
stay square, a heatmap's axes do not run past the matrix, titles are not cut, and no title, legend or point
label overlaps another. A width with a problem leaves its screenshot, named in the failure, in a temporary
folder; scripts/screenshots.py --layout takes every page at the three sizes, to look at.
"""
import json
import time
from pathlib import Path

import pytest
from browser_harness import go, open_app, press, problems, set_number, wait_idle

pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright")

VIEWPORTS = [(1400, 900), (1280, 720), (390, 844)]
LONG_MS = 240_000
# (sidebar link, page title, steps input or None, steps, button or None, charts drawn once it ran)
PAGES = [
    ("SVD playground", "SVD playground", None, None, None, 4),
    ("Baseline training", "Baseline training", None, None, None, 2),
    ("LoRA finetuning", "LoRA finetuning", "Steps", 20, "Train LoRA", 2),
    ("Rank comparison", "Rank comparison", "Steps per run", 5, "Run comparison", 2),
    ("ΔW inspector", "ΔW inspector", None, None, "Train and watch", 6),
    ("Rank oracle", "Rank oracle", "Steps per run", 10, "Run the oracle", 2),
    ("Intruder dimensions", "Intruder dimensions", "Steps per run", 10, "Run the oracle", 1),
    ("Initialisation gallery", "Initialisation gallery", "Steps per run", 10, "Run the gallery", 2),
    ("Scaling explorer", "Scaling explorer", "Steps per run", 10, "Run the sweep", 3),
    ("Learn/forget frontier", "Learn/forget frontier", "Steps per adapter", 10, "Train the adapters", 1),
]

# Boxes of every chart, read from the drawn SVG (and plotly's own axis lengths for the data aspect).
LAYOUT_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].filter(e => e._fullLayout).map(e => {
  const box = el => { if (!el) return null; const r = el.getBoundingClientRect();
                      return r.width && r.height ? {l: r.left, r: r.right, t: r.top, b: r.bottom} : null; };
  const L = e._fullLayout;
  const heatmaps = e._fullData.filter(t => t.type === 'heatmap').map(t => {
    const xa = L[t.xaxis.replace('x', 'xaxis')], ya = L[t.yaxis.replace('y', 'yaxis')];
    const xs = Math.abs(xa.range[1] - xa.range[0]), ys = Math.abs(ya.range[1] - ya.range[0]);
    return {xPx: xa._length / xs, yPx: ya._length / ys, yLow: Math.min(...ya.range), xLow: Math.min(...xa.range),
            rows: t.z.length, cols: t.z[0].length, dy: t.dy || 1, yHigh: Math.max(...ya.range)};
  });
  return {title: (L.title && L.title.text) || '', svg: box(e.querySelector('svg.main-svg')),
          gtitle: box(e.querySelector('.g-gtitle')), legend: box(e.querySelector('.legend')),
          axisTitles: [...e.querySelectorAll('.g-xtitle, .g-ytitle')].map(box).filter(Boolean),
          notes: [...e.querySelectorAll('.infolayer .annotation')].map(box).filter(Boolean),
          labels: [...e.querySelectorAll('.scatterlayer .textpoint text')].map(box).filter(Boolean),
          heatmaps};
})"""


def overlap(a, b, slack: float = 1.0) -> bool:
    return a["l"] < b["r"] - slack and b["l"] < a["r"] - slack and a["t"] < b["b"] - slack and b["t"] < a["b"] - slack


def layout_problems(charts: list[dict]) -> list[str]:
    found = []
    for chart in charts:
        name, svg = chart["title"].replace("<br>", " ") or "(untitled)", chart["svg"]
        if chart["gtitle"] and chart["legend"] and overlap(chart["gtitle"], chart["legend"]):
            found.append(f"{name}: the legend overlaps the title")
        for what, box in [("the title", chart["gtitle"])] + [("an axis title", b) for b in chart["axisTitles"]]:
            if box and svg and (box["l"] < svg["l"] - 1 or box["r"] > svg["r"] + 1 or box["t"] < svg["t"] - 1
                                or box["b"] > svg["b"] + 1):
                found.append(f"{name}: {what} is cut at the chart's edge")
        if chart["gtitle"] and any(overlap(chart["gtitle"], b) for b in chart["axisTitles"]):
            found.append(f"{name}: an axis title overlaps the title")
        if chart["gtitle"] and any(overlap(chart["gtitle"], b) for b in chart["notes"]):
            found.append(f"{name}: a subplot title or note overlaps the title")
        labels = chart["labels"]
        if any(overlap(a, b) for i, a in enumerate(labels) for b in labels[i + 1:]):
            found.append(f"{name}: two point labels overlap")
        for h in chart["heatmaps"]:
            if abs(h["xPx"] / h["yPx"] - 1) > 0.02:
                found.append(f"{name}: a {h['rows']}×{h['cols']} heatmap's cells are not square "
                             f"({h['xPx']:.2f} px × {h['yPx']:.2f} px per entry)")
            if h["yLow"] < -0.5 - 1e-6 or h["xLow"] < -0.5 - 1e-6:
                found.append(f"{name}: an axis starts before the first row or column")
    return found


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("layout")


@pytest.fixture(scope="module")
def tab(chromium, streamlit_url):
    """One session with a small baseline; each page's computation runs the first time the page is checked."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = open_app(context, streamlit_url)
    page.set_default_timeout(LONG_MS)
    go(page, "Baseline training", "Baseline training")
    for label, value in (("Hidden layer 1 size", 256), ("Hidden layer 2 size", 128), ("Step limit (0 = none)", 30)):
        set_number(page, label, value)
    press(page, "Train baseline", LONG_MS)
    page.get_by_text("Test accuracy").wait_for(timeout=LONG_MS)
    yield page
    context.close()


def drawn_titles(page) -> list[str]:
    return page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].filter(e => e._fullLayout)"
                         ".map(e => ((e._fullLayout.title || {}).text || '').replaceAll('<br>', ' '))")


# Every drawn chart's plotly width and its boxes, as one string: the same in successive frames once the
# charts have been laid out for the viewport's width
SHAPE_JS = """() => JSON.stringify([...document.querySelectorAll('.js-plotly-plot')].filter(e => e._fullLayout)
                                   .map(e => {
  const r = e.getBoundingClientRect(), svg = e.querySelector('svg.main-svg');
  const s = svg ? svg.getBoundingClientRect() : {};
  return [Math.round(r.width), e._fullLayout.width, Math.round(s.width), Math.round(s.height), Math.round(r.top)];
}))"""
SETTLED_FRAMES = 4  # polls 100 ms apart that see the same shapes


def wait_for_charts(page, count: int, timeout_s: float = 120) -> None:
    """Until `count` charts are drawn (plotly draws lazily) and laid out for this width: each one shown is
    drawn as wide as its layout says, and nothing moves for SETTLED_FRAMES polls (plotly's last layout pass
    after a resize)."""
    deadline = time.monotonic() + timeout_s
    seen, same = None, 0
    while time.monotonic() < deadline:
        shape = page.evaluate(SHAPE_JS)
        charts = json.loads(shape)
        fitted = len(charts) >= count and all(c[0] == 0 or abs(c[2] - c[1]) <= 1 for c in charts)  # 0: hidden
        same = same + 1 if fitted and shape == seen else 0
        if same >= SETTLED_FRAMES:
            return
        seen = shape
        page.wait_for_timeout(100)
    raise AssertionError(f"charts drawn: {drawn_titles(page)}, not {count} laid out for the width "
                         f"({seen}); problems: {problems(page)}")


@pytest.mark.parametrize(("link", "title", "steps_label", "steps", "button", "count"), PAGES,
                         ids=[p[0] for p in PAGES])
def test_charts_keep_their_shape_at_every_width(tab, shots, link, title, steps_label, steps, button, count):
    tab.set_viewport_size({"width": 1400, "height": 900})
    go(tab, link, title)
    if steps_label:
        set_number(tab, steps_label, steps)
    if button:
        press(tab, button, LONG_MS)  # unless its run is stored (e.g. by test_browser_inside.py): then it is shown
    wait_idle(tab, LONG_MS)
    found = []
    for width, height in VIEWPORTS:
        tab.set_viewport_size({"width": width, "height": height})
        wait_for_charts(tab, 0)  # those drawn laid out for this width before the page's height is read
        # as tall as the page (the width alone shapes the charts), so that every chart is drawn and in the shot
        full = tab.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], "
                            "[data-testid=\"stAppViewContainer\"]')].map(e => e.scrollHeight))")
        tab.set_viewport_size({"width": width, "height": min(max(int(full) + 40, height), 9000)})
        tab.mouse.move(0, 0)
        shot = shots / f"{link.replace('/', '-').replace(' ', '-')}-{width}x{height}.png"
        try:
            wait_for_charts(tab, count)
        except AssertionError:
            tab.screenshot(path=str(shot))
            raise
        if here := layout_problems(tab.evaluate(LAYOUT_JS)):
            tab.screenshot(path=str(shot))
            found += [f"{width}×{height} {p} (see {shot})" for p in here]
    tab.set_viewport_size({"width": 1400, "height": 900})
    assert found == []
