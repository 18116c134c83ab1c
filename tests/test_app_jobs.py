"""The background jobs behind the Train and Stop buttons, and the baseline store every session shares."""
import itertools
import os
import threading
import time

import pytest
from conftest import open_session, wait_for_steps
from streamlit.testing.v1 import AppTest

import lora_core as lc
from lora_core import executor
from lora_core.slots import TrainingSlots
from service import environment, jobs, runs
from service.kinds import Kind
from service.runs import Run
from ui import baseline as ui_baseline
from ui import charts, progress

TINY = dict(hidden1=8, hidden2=8, max_steps=10_000, epochs=50, batch_size=16)  # thousands of quick steps: time to stop


@pytest.fixture(scope="module")
def data():
    return lc.load_dataset("mnist-sample")




def start_baseline(config: lc.BaselineConfig, data, session: str, keep=None):
    """service.runs.obtain for this baseline, as the pages start one (keeping it in the store when it is whole)."""
    key = runs.key(lc.Experiment(baseline=config, seed=config.seed), "baseline", "cpu")
    work = lambda job: lc.train_baseline(config, data, on_step=job.on_step, should_stop=job.should_stop)  # noqa: E731
    handle = runs.obtain(Run(key, "baseline", work=work, keep=keep or ui_baseline.keep), session)
    return key, handle.how, handle.job


def test_sessions_with_the_same_settings_share_one_training(data):
    config = lc.BaselineConfig(seed=101, **TINY)
    key, how_a, job_a = start_baseline(config, data, "session-a")
    _, how_b, job_b = start_baseline(config, data, "session-b")
    assert (how_a, how_b) == ("started", "joined") and job_a is job_b
    assert runs.running(key) is job_a  # a reload, a second tab or a classmate finds it and follows it
    wait_for_steps(job_a, 5)
    assert job_a.release("session-a") == 1  # b still follows: training goes on
    assert not job_a.stopping
    assert job_a.release("session-b") == 0  # nobody left: it stops
    job_a.wait(60)
    run = job_a.result
    assert job_a.error is None and 5 <= len(run.losses) < run.total_steps
    assert run.losses == job_a.losses
    assert runs.find(key) is None and runs.running(key) is None  # partial: not stored under the whole run's key


def test_two_sessions_asking_at_once_train_it_once(data):
    config = lc.BaselineConfig(seed=104, hidden1=8, hidden2=8, max_steps=20)
    trained = []
    counting = lambda run: trained.append(run) or ui_baseline.keep(run)  # noqa: E731
    barrier, found = threading.Barrier(2), []

    def ask(session):
        barrier.wait(10)  # both ask at the same moment
        found.append(start_baseline(config, data, session, counting))

    askers = [threading.Thread(target=ask, args=(s,)) for s in ("session-a", "session-b")]
    for thread in askers:
        thread.start()
    for thread in askers:
        thread.join(60)
    (key, how_1, job_1), (_, how_2, job_2) = found
    assert sorted((how_1, how_2)) == ["joined", "started"] and job_1 is job_2
    job_1.wait(60)
    assert len(trained) == 1  # one training for both
    writes = runs.store().writes
    assert runs.find(key) is job_1.result
    _, how, job = start_baseline(config, data, "session-c")  # a third asks later: found, not trained
    assert (how, job) == ("stored", None) and runs.store().writes == writes


def test_a_finished_baseline_is_found_not_retrained(data):
    config = lc.BaselineConfig(seed=102, hidden1=8, hidden2=8, max_steps=20)
    key, how, job = start_baseline(config, data, "session-a")
    assert how == "started"
    job.wait(60)
    assert job.result.complete
    assert runs.find(key) is job.result
    assert job.result.losses == lc.train_baseline(config, data).losses  # the same numbers as training it here


def test_stopping_keeps_every_whole_step(data):
    job = jobs.Job(Kind.BASELINE, lambda job: lc.train_baseline(lc.BaselineConfig(seed=103, **TINY), data,
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
    job = jobs.Job(Kind.FINETUNE, fail)
    job.wait(10)
    assert job.done and isinstance(job.error, ValueError) and job.result is None


def test_jobs_beyond_the_slots_wait_in_line_and_can_be_stopped_there():
    release = threading.Event()
    holders = [jobs.Job(Kind.BASELINE, lambda job: release.wait(30)) for i in range(jobs.SLOTS.limit)]
    queued = jobs.Job(Kind.BASELINE, lambda job: "ran")
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


def _follow_the_sessions_job():
    import streamlit as st

    from ui import progress
    progress.follow(st.session_state.job, "Training")


def test_the_live_chart_waits_for_a_second_of_training_and_is_redrawn_at_most_twice_a_second(monkeypatch):
    drawn, first_step = [], []
    monkeypatch.setattr(charts, "loss_curve", lambda losses, title: drawn.append(time.monotonic()))
    monkeypatch.setattr(charts, "show", lambda fig, key=None, caption=None: None)

    def training(wait_s: float, steps: int):
        def work(job):
            time.sleep(wait_s)  # as in line for a slot: no step yet
            first_step.append(time.monotonic())
            for step in range(1, steps + 1):
                job.on_step(step, steps, 1.0 / step)
                time.sleep(0.1)
            return "trained"
        return work

    for wait_s, steps in ((1.5, 5), (0.0, 30)):  # 0.5 s of training after 1.5 s in line; then 3 s of training
        drawn.clear()
        first_step.clear()
        at = AppTest.from_function(_follow_the_sessions_job, default_timeout=60)
        at.session_state["job"] = job = jobs.Job(Kind.BASELINE, training(wait_s, steps))
        at.run()
        assert not at.exception and job.result == "trained"
        if steps == 5:
            assert drawn == []  # the wait in line is no training: the run was too short for a chart
        else:
            assert drawn and drawn[0] - first_step[0] >= progress.LIVE_CHART_AFTER_S
            assert all(b - a >= progress.LIVE_CHART_EVERY_S for a, b in itertools.pairwise(drawn))


def _controls_of_a_run_that_fails():
    import time

    import streamlit as st

    from service.runs import Run
    from ui import run_controls

    def work(job):
        time.sleep(0.2)
        raise ValueError("the weights overflowed")
    st.session_state.setdefault("session_id", "a-session-whose-run-fails")
    run = Run(st.session_state.run_key, "oracle", work=work, keep=lambda result: (result, None))
    run_controls.controls(run, "Train it", what="Training it", help="Train it.",
                          follow=lambda job, what: job.wait(30))


def test_a_run_that_fails_says_why_and_its_train_button_works_again():
    at = AppTest.from_function(_controls_of_a_run_that_fails, default_timeout=60)
    at.session_state["run_key"] = f"failing-{time.monotonic_ns()}"  # never stored: each click trains again
    at.run()
    train, stop = at.button(key="oracle_run"), at.button(key="oracle_stop")
    assert not train.disabled and stop.disabled and not at.error
    for _ in range(2):  # the message is the run's own, and the buttons are those of a page without a run
        at.button(key="oracle_run").click().run()
        assert not at.exception
        assert [e.value for e in at.error] == [  # in words: the error's type and message are the server log's
            "Training it failed: something went wrong on the server (its log has the details). Your settings are "
            "kept: train again, or change a setting"]
        assert not at.button(key="oracle_run").disabled and at.button(key="oracle_stop").disabled


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's idle scheduling policy")
def test_work_done_ahead_of_a_request_runs_at_idle_priority():
    done, policy = threading.Event(), []

    def ahead():
        policy.append(os.sched_getscheduler(0))
        done.set()
    jobs.in_background(ahead)
    assert done.wait(30) and policy == [os.SCHED_IDLE]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


# --- a run stopped before its first step is never stored ---------------------------------------------------

def test_a_queued_baseline_stopped_just_as_its_slot_frees_trains_nothing_and_stores_nothing(data, monkeypatch):
    """One slot: A's run holds it, B's waits; B's Stop and the end of A's run arrive together."""
    slots = TrainingSlots(limit=1)
    monkeypatch.setattr(jobs, "SLOTS", slots)
    monkeypatch.setattr(jobs, "EXECUTOR", executor.InProcess(slots, environment.threads_each))
    release = threading.Event()
    holder = jobs.Job(Kind.BASELINE, lambda job: release.wait(30))

    class StoppedAsItsSlotFrees(jobs.Job):
        """Its Stop comes as it waits in line, together with the end of the run before it."""
        @property
        def place(self) -> int:
            return self._place

        @place.setter
        def place(self, value: int) -> None:
            self._place = value
            if value == 1 and not self.stopping:
                self.stop()  # the slot frees once this job sleeps in line again, with its Stop already set
                release.set()

    monkeypatch.setattr(jobs, "Job", StoppedAsItsSlotFrees)
    config = lc.BaselineConfig(hidden1=16, hidden2=16, epochs=1, batch_size=64, seed=6_001)
    key, how, queued = start_baseline(config, data, "b")
    assert how == "started"
    queued.wait(60)
    holder.wait(60)
    assert queued.done and holder.done and release.is_set()
    assert queued.result is None and queued.error is None and queued.losses == []
    assert runs.find(key) is None and not runs.store().path(key).exists()


def test_a_baseline_stopped_before_its_first_step_is_not_kept_as_the_whole_run(data):
    at = open_session(base_hidden1=16, base_hidden2=16, base_epochs=1, base_batch=64, base_max_steps=0,
                      seed=6_002)
    exp = at.session_state["experiment"]
    key = runs.key(exp, Kind.BASELINE, "cpu")
    zero = lc.train_baseline(exp.baseline, data, should_stop=lambda: True)  # what a Stop before step 1 returns
    at.session_state["baseline_partial"] = {"key": key, "result": zero}
    at.switch_page("app_pages/baseline.py").run()
    assert not at.exception, at.exception
    assert "Stopped before the first step: nothing was trained or kept." in [i.value for i in at.info]
    assert runs.find(key) is None and at.session_state["base_max_steps"] == 0
    assert not at.button(key="base_train").disabled
