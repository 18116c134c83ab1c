"""A training's cost is capped by what it computes (images × weights, said as estimated time before Train), not
by its steps alone: a wide network at a large batch is refused with the reason; the default runs are not."""
from conftest import open_session

from lora_core.experiment import Experiment
from service import limits


def test_the_work_of_a_run_is_its_images_times_the_baselines_weights():
    exp = Experiment()
    weights = 784 * 1000 + 1000 * 2000 + 2000 * 10  # the default baseline, biases aside
    assert exp.total_work("finetune", 5000) == 100 * 10 * weights
    assert exp.total_work("compare", 5000) == exp.total_steps("compare", 5000) * 10 * weights
    baseline_steps = exp.total_steps("baseline", 5000)
    assert exp.total_work("baseline", 5000) == baseline_steps * exp.baseline.batch_size * weights


def test_the_issues_two_browser_run_is_refused_for_its_cost_and_the_default_is_not():
    wide = {"base_hidden1": 2048, "base_hidden2": 2048, "base_batch": 1024, "base_epochs": 50, "base_max_steps": 0}
    at = open_session(wide)
    at.switch_page("app_pages/baseline.py").run()
    steps = 50 * 5  # 5,000 images at batch 1024: 5 steps an epoch
    work = steps * 1024 * (784 * 2048 + 2048 * 2048 + 2048 * 10)
    estimate = [c.value for c in at.caption if c.value.startswith("This run: about")]
    assert estimate and estimate[0].startswith(f"This run: about {work / limits.IMAGE_WEIGHTS_PER_S / 60:.0f} minutes")
    assert work / limits.IMAGE_WEIGHTS_PER_S > limits.DEFAULT_MAX_SECONDS  # under the step cap, over the cost cap
    at.button(key="base_train").click().run()
    refusal = [e.value for e in at.error if e.value.startswith("Not started")]
    assert refusal and f"{work:.2g} images × weights" in refusal[0] and "at most 5 minutes" in refusal[0]
    assert not at.exception


def test_defaults_are_well_under_the_cost_cap():
    exp = Experiment()
    for kind in ("baseline", "finetune", "compare", "oracle", "inits", "scaling", "frontier", "inspect"):
        assert limits.estimated_seconds(exp.total_work(kind, 5000)) < limits.DEFAULT_MAX_SECONDS / 5, kind


def test_the_estimate_says_its_duration_in_words_at_every_scale():
    """A tiny run's estimate reads "under a second", not "about 0 s"; then seconds, then minutes."""
    for seconds, words in {0.04: "under a second", 1.4: "about 1 s", 89: "about 89 s", 600: "about 10 minutes"}.items():
        caption = limits.caps_note(round(seconds * limits.IMAGE_WEIGHTS_PER_S))
        assert caption.startswith(f"This run: {words} of training on one core here"), (seconds, caption)
