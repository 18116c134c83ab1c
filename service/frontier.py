"""The learn/forget frontier's runs: a job that trains one adapter per rank and evaluates them at a few
strengths, a background fill of every other strength of the slider, and the points at one strength (known,
computed now, or estimated on a subset). No Streamlit: app_pages/frontier.py draws them."""
import time

import lora_core as lc
from lora_core import parallel, studies
from lora_core.settings import STRENGTHS
from lora_core.train import wrong_on
from service import jobs

PATH_STRENGTHS = (0.0, 0.5, 1.0, 1.5)  # evaluated right after training: the paths drawn (the fill adds the rest)


def frontier_work(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig, ranks):
    """One adapter per rank; then the frontier at a few strengths, so that each rank's path shows at once."""
    def work(job: jobs.Job) -> lc.FrontierStudy:
        adapters = studies.train_frontier_adapters(base.model, data, config, ranks, on_progress=job.on_progress,
                                                   should_stop=job.should_stop, workers=job.cores)
        points = {}
        for strength in PATH_STRENGTHS:
            job.label = f"evaluating every adapter at strength {strength:g}"
            points[strength] = studies.frontier(base.model, data, adapters, config.digits, strength, base.evaluation)
        study = lc.FrontierStudy(config, adapters, points, len(adapters) < len(set(ranks)))
        jobs.in_background(fill_strengths, points, study.focus, base, data, adapters, config.digits)
        return study
    return work


FILL_PATIENCE_S = 600  # how long the fill waits for the server's trainings to end before it gives up
_latest_fill = [0]  # the newest frontier's fill; an older one ends (its tab has moved on or closed)


def fill_strengths(points: dict, focus: list, base: lc.BaselineRun, data: lc.Dataset, adapters, digits) -> None:
    """The frontier at every strength of the slider, nearest first to the one a page asked for last
    (`focus[0]`, 1 until then), one adapter at a time on every core, only while no training runs and no page
    computes a pass of its own (it must not slow anyone's: it steps aside between adapters and between the
    chunks of a pass): a slider value near the last one is then read, not computed.
    The page computes one itself if it comes before this. One fill at a time on the server: a newer frontier's
    fill ends this one."""
    _latest_fill[0] += 1
    mine = _latest_fill[0]
    deadline = time.monotonic() + FILL_PATIENCE_S

    def superseded() -> bool:
        return jobs.CLOSING.is_set() or _latest_fill[0] != mine

    def busy() -> bool:
        return not jobs.CLOSING.is_set() and bool(jobs.SLOTS.running() or parallel.waiting())

    def wait_for_a_free_server() -> bool:
        while busy():
            if superseded() or time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return not superseded()

    while pending := [s for s in strengths() if s not in points]:
        strength = min(pending, key=lambda s: (abs(s - focus[0]), s))
        found = []
        for rank, adapter in adapters.items():
            if not wait_for_a_free_server():
                return
            try:
                with parallel.using(parallel.cores()), parallel.background(busy):
                    found += studies.frontier(base.model, data, {rank: adapter}, digits, strength, base.evaluation)
            except RuntimeError as err:  # the server is stopping: Python's exit makes thread pools refuse work
                if "after interpreter shutdown" not in str(err):  # (before our atexit hook sets jobs.CLOSING)
                    raise
                return
        points.setdefault(strength, found)  # a page may have computed it meanwhile: the same numbers


def strengths() -> list[float]:
    return list(STRENGTHS)  # the frontier's slider: every value its setting accepts


def frontier_points(result: lc.FrontierStudy, base: lc.BaselineRun, data: lc.Dataset, digits, strength: float,
                    should_stop=None):
    """The frontier at one strength: computed once (a merge and a test pass per rank), then cached. None when
    `should_stop()` turned true between two ranks (a newer slider value waits): nothing is kept then, and the
    fill or a later ask computes it."""
    points = result.points
    result.focus[0] = strength
    if strength not in points:
        found = []
        with parallel.foreground():  # the fill waits between this value's adapters too
            for rank, adapter in result.adapters.items():
                if should_stop is not None and should_stop():
                    return None
                found += studies.frontier(base.model, data, {rank: adapter}, digits, strength, base.evaluation)
        points.setdefault(strength, found)  # the fill may have computed it meanwhile: the same numbers
    return points[strength]


def baseline_point(base: lc.BaselineRun, digits) -> tuple[int, int]:
    """(errors on the other classes, errors on the finetuned classes) of the baseline."""
    target = wrong_on(base.evaluation, digits)
    return base.evaluation.wrong - target, target


ESTIMATE_IMAGES = 1_000  # a strength nobody computed yet is shown first on this many test images


def known_points(result: lc.FrontierStudy, strength: float):
    """The frontier at `strength` when it is computed already (by a page or the background fill), else None."""
    return result.points.get(strength)


def estimated_points(result: lc.FrontierStudy, base: lc.BaselineRun, data: lc.Dataset, digits, strength: float):
    """(points, baseline point) at `strength` on the first ESTIMATE_IMAGES test images only: exact counts on
    that subset, in a fraction of the full pass's time (the same work per adapter on a tenth of the images),
    shown until the full frontier_points replaces them."""
    subset = lc.Dataset(data.name, data.train_x, data.train_y, data.test_x[:ESTIMATE_IMAGES],
                        data.test_y[:ESTIMATE_IMAGES], data.classes, data.source)
    with parallel.foreground():
        points = studies.frontier(base.model, subset, result.adapters, digits, strength)
        base_eval = lc.evaluate(base.model, subset.test_x, subset.test_y)
    target = wrong_on(base_eval, digits)
    return points, (base_eval.wrong - target, target)
