"""The background jobs behind the Train and Stop buttons, and the baseline store every session shares."""
import threading
import time

from conftest import wait_for_steps

import lora_core as lc
from ui import jobs

TINY = dict(hidden1=8, hidden2=8, max_steps=10_000, epochs=200)  # thousands of quick steps: time to stop


def test_sessions_with_the_same_settings_share_one_training(data):
    config = lc.BaselineConfig(seed=101, **TINY)
    how_a, job_a = jobs.start_baseline(data, config, "session-a")
    how_b, job_b = jobs.start_baseline(data, config, "session-b")
    assert (how_a, how_b) == ("started", "joined") and job_a is job_b
    wait_for_steps(job_a, 5)
    assert jobs.leave_baseline(job_a, "session-a") == 1  # b still follows: training goes on
    assert not job_a.stopping
    assert jobs.leave_baseline(job_a, "session-b") == 0  # nobody left: it stops
    job_a.wait(60)
    run = job_a.result
    assert job_a.error is None and 5 <= len(run.losses) < run.total_steps
    assert run.losses == job_a.losses
    assert jobs.baseline_key(data, config) not in jobs._store()["done"]  # partial: not shared


def test_a_finished_baseline_is_reused_not_retrained(data):
    config = lc.BaselineConfig(seed=102, hidden1=8, hidden2=8, max_steps=20)
    how, job = jobs.start_baseline(data, config, "session-a")
    assert how == "started"
    job.wait(60)
    assert job.result.complete
    how, run = jobs.start_baseline(data, config, "session-b")
    assert how == "reused" and run is job.result
    assert run.losses == lc.train_baseline(config, data).losses  # the same numbers as training it here


def test_stopping_keeps_every_whole_step(data):
    job = jobs.Job("test", lambda job: lc.train_baseline(lc.BaselineConfig(seed=103, **TINY), data,
                                                          on_step=job.on_step, should_stop=job.should_stop))
    wait_for_steps(job, 3)
    job.stop()
    job.wait(60)
    run = job.result
    assert len(run.losses) == len(job.losses) == job.step
    assert run.evaluation.accuracy == lc.evaluate(run.model, data.test_x, data.test_y).accuracy


def test_an_error_in_a_job_is_kept_for_the_page():
    def fail(job):
        raise ValueError("rank must be an integer in 1..10")
    job = jobs.Job("failing", fail)
    job.wait(10)
    assert job.done and isinstance(job.error, ValueError) and job.result is None


def test_jobs_beyond_the_slots_wait_in_line_and_can_be_stopped_there():
    release = threading.Event()
    holders = [jobs.Job(f"holder-{i}", lambda job: release.wait(30)) for i in range(jobs.SLOTS.limit)]
    queued = jobs.Job("queued", lambda job: "ran")
    try:
        deadline = time.monotonic() + 10
        while queued.place != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert queued.place == 1 and all(h.place == 0 for h in holders)
        queued.stop()
        queued.wait(10)
        assert queued.done and queued.result is None and queued.error is None  # gave up its place
    finally:
        release.set()
        for holder in holders:
            holder.wait(10)
    assert all(h.result is True for h in holders)
