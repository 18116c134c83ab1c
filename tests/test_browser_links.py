"""A link is a promise, in a real browser: a teacher's run opens in a student's browser without training,
a reload mid-training follows the training again, and every page follows a link's and a preset's settings.

Each test opens its own browser contexts (its own sessions) on the shared server (conftest.py); runs made by
one test may already be stored when another runs, which is what the store is for — each test checks what it
needs whatever ran before. The runs are small (hidden sizes 64, 20 steps): what a link promises does not
depend on their size (tests/test_app_pages.py checks that the notebook preset's link spells out its settings).
"""
import re
import time

import pytest
from browser_harness import click, go, metric, open_app, press, problems, wait_idle

import lora_core as lc
from lora_core import presets
from lora_core.presets import PRESETS

expect = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright").expect
pytestmark = pytest.mark.browser

SMALL = lc.BaselineConfig(hidden1=64, hidden2=64, max_steps=20)
SMALL_LINK = "v=2&h1=64&h2=64&base_steps=20"  # SMALL as a link's query
FINETUNE = lc.FinetuneConfig(steps=20)


def wrong_per_class(page) -> list[int]:
    """The before/after chart's 'after' bars: the wrong count of every class, read off the chart once plotly has
    drawn it (it draws after the metrics above it show)."""
    from playwright.sync_api import TimeoutError

    try:
        bars = page.wait_for_function("""() => [...document.querySelectorAll('.js-plotly-plot')]
            .filter(e => e.layout && e.data && (e.layout.title?.text || '').startsWith('Wrong test images per class'))
            .map(e => e.data.map(t => t.y))[0]""", timeout=60_000)
    except TimeoutError:
        raise AssertionError("the before/after chart is not on the page") from None
    return bars.json_value()[-1]


@pytest.fixture(scope="module")
def small_run(data):
    """SMALL and FINETUNE on it, computed by lora_core directly."""
    base = lc.train_baseline(SMALL, data)
    return base, lc.finetune_lora(base.model, data, FINETUNE)


def share_link(page) -> str:
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Share this experiment").click()
    return sidebar.get_by_test_id("stCode").first.inner_text().strip()


def until_the_baseline_is_there(page) -> None:
    """On the LoRA page: train its baseline unless it is stored, until the page offers Train LoRA."""
    deadline = time.monotonic() + 300
    while not page.get_by_role("button", name="Train LoRA").is_visible():  # the baseline, trained or stored
        assert time.monotonic() < deadline, "the baseline never appeared"
        train = page.get_by_role("button", name="Train the baseline")
        if train.is_visible() and train.is_enabled():  # a click Streamlit dropped in a rerun is clicked again
            click(page, train, timeout=300_000)
        page.wait_for_timeout(500)


def test_a_teachers_run_opens_in_a_students_browser_without_training(chromium, streamlit_url, small_run):
    base, tuned = small_run
    teacher = open_app(chromium.new_context(viewport={"width": 1400, "height": 900}), streamlit_url,
                       f"lora?{SMALL_LINK}&steps={FINETUNE.steps}")
    until_the_baseline_is_there(teacher)
    if teacher.get_by_role("button", name="Train LoRA").is_enabled():
        click(teacher, teacher.get_by_role("button", name="Train LoRA"), timeout=120_000)
    expect(metric(teacher, "Accuracy after LoRA")).to_have_text(f"{tuned.after.accuracy:.2%}")
    link = share_link(teacher)
    assert link.endswith(f"?{SMALL_LINK}&steps={FINETUNE.steps}")
    teacher_wrong = wrong_per_class(teacher)
    assert teacher_wrong == tuned.after.wrong_per_class

    student_context = chromium.new_context(viewport={"width": 390, "height": 844})  # a phone
    student = student_context.new_page()
    student.goto(link)  # how long this takes is measured by scripts/link_wait.py, not asserted here
    expect(metric(student, "Accuracy after LoRA")).to_have_text(f"{tuned.after.accuracy:.2%}", timeout=60_000)
    wait_idle(student)
    expect(metric(student, "Accuracy before")).to_have_text(f"{base.evaluation.accuracy:.2%}")
    assert student.get_by_role("button", name="Train LoRA").is_disabled()  # nothing to train: it is stored
    assert wrong_per_class(student) == teacher_wrong
    assert not problems(student)


def test_layers_picked_out_of_order_give_a_link_that_opens_the_same_run_in_another_browser(chromium, streamlit_url,
                                                                                          small_run, data):
    """A picks the layers as linear2, linear3, linear1 and trains; A's address, and a link written in that order,
    open A's run in other browsers: stored, not to be trained again."""
    config = lc.FinetuneConfig(steps=13, targets=("linear1", "linear2", "linear3"))  # 13: no other test's run
    tuned = lc.finetune_lora(small_run[0].model, data, config)
    mine = open_app(chromium.new_context(viewport={"width": 1400, "height": 900}), streamlit_url,
                    f"lora?{SMALL_LINK}&steps={config.steps}")
    until_the_baseline_is_there(mine)
    layers = mine.get_by_test_id("stMultiSelect").filter(has_text="Target layers")
    click(mine, layers.get_by_role("button", name="Remove linear1"))  # linear2, linear3
    layers.get_by_role("combobox").click()
    click(mine, mine.get_by_role("option", name="linear1", exact=True))  # linear2, linear3, linear1
    mine.keyboard.press("Escape")  # the open list covers the chosen layers
    expect(layers.get_by_role("button", name="Remove linear1")).to_be_visible()
    press(mine, "Train LoRA", timeout=120_000)
    expect(metric(mine, "Accuracy after LoRA")).to_have_text(f"{tuned.after.accuracy:.2%}", timeout=60_000)

    written = f"{streamlit_url}/lora?{SMALL_LINK}&steps={config.steps}&targets=linear2,linear3,linear1"
    for link in (mine.url, written):
        other = chromium.new_context(viewport={"width": 1400, "height": 900}).new_page()
        other.goto(link)
        expect(metric(other, "Accuracy after LoRA")).to_have_text(f"{tuned.after.accuracy:.2%}", timeout=60_000)
        wait_idle(other)
        assert other.get_by_role("button", name="Train LoRA").is_disabled(), link  # stored: nothing to train
        assert not problems(other)
        other.context.close()
    mine.context.close()


def test_a_reload_mid_training_follows_the_training_again(chromium, streamlit_url):
    # a baseline long enough to reload in the middle of it (10 epochs at batch 10 on the sample: 5,000 steps)
    link = "baseline?v=2&epochs=10&base_batch=10&seed=11"
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = open_app(context, streamlit_url, link)
    page.get_by_role("button", name="Train baseline").click()
    progress = page.get_by_test_id("stProgress")
    expect(progress).to_contain_text("step", timeout=60_000)
    page.reload()
    expect(progress).to_contain_text("step", timeout=60_000)  # the same training, followed again
    assert page.get_by_role("button", name="Stop training").is_enabled()
    click(page, page.get_by_role("button", name="Stop training"), timeout=120_000)
    expect(page.get_by_text("is a run of its own")).to_be_visible(timeout=60_000)
    assert "base_steps=" in page.url  # the partly trained baseline is its own run, and the link says so


def test_a_stored_baseline_needs_no_click_on_any_page(chromium, streamlit_url, small_run):
    page = open_app(chromium.new_context(viewport={"width": 1400, "height": 900}), streamlit_url,
                    f"baseline?{SMALL_LINK}")
    if page.get_by_role("button", name="Train baseline").is_enabled():
        click(page, page.get_by_role("button", name="Train baseline"), timeout=120_000)
    expect(metric(page, "Test accuracy")).to_have_text(f"{small_run[0].evaluation.accuracy:.2%}")
    other = open_app(chromium.new_context(viewport={"width": 1400, "height": 900}), streamlit_url,
                     f"ranks?{SMALL_LINK}")
    expect(other.get_by_role("button", name="Run comparison")).to_be_visible()  # no "train the baseline" first
    assert not other.get_by_role("button", name="Train the baseline").is_visible()


@pytest.mark.parametrize("path, title", [
    ("ranks", "Rank comparison"), ("inspector", "ΔW inspector"), ("oracle", "Rank oracle"),
    ("inits", "Initialisation gallery"), ("scaling", "Scaling explorer"), ("frontier", "Learn/forget frontier"),
])
def test_every_page_follows_a_links_and_a_presets_settings(chromium, streamlit_url, path, title):
    forgetting = PRESETS["forgetting"]
    link = f"{path}?{SMALL_LINK}&preset=forgetting"
    page = open_app(chromium.new_context(viewport={"width": 1400, "height": 900}), streamlit_url, link)
    if page.get_by_role("button", name="Train the baseline").is_visible():
        click(page, page.get_by_role("button", name="Train the baseline"), timeout=120_000)
    query = presets.to_query(presets.with_values(forgetting, {("baseline", "hidden1"): 64, ("baseline", "hidden2"): 64,
                                                              ("baseline", "max_steps"): 20}))
    for name, value in query.items():
        assert f"{name}={value}" in page.url.replace("%2C", ",")
    if path == "ranks":  # the comparison trains the finetune's class and steps
        expect(page.get_by_role("spinbutton", name="Steps per run")).to_have_value(str(forgetting.finetune.steps))
    else:
        # its caption: the inspector's "uses the LoRA page's settings", a study's "From the LoRA page"
        expect(page.get_by_text(re.compile(r"(From the LoRA page: |uses the LoRA page's settings).*class 7"))
               .first).to_be_visible()
    go(page, "LoRA finetuning", "LoRA finetuning")
    assert "preset" not in page.url and "steps=500" in page.url
