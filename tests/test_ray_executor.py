"""Trainings on a real local Ray cluster of two nodes (one CPU each), against the same work run in process.

The app's node here is the head, as in deploy/compose.yaml an app container joins the cluster: the
channel actor lives there. Skipped when Ray is not installed (requirements-cluster.txt).
"""
import dataclasses
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import open_session, parent_pid

import lora_core as lc
from lora_core import executor, run_claims, works
from lora_core.slots import Cancelled, TrainingSlots
from lora_core.store import RunStore
from lora_core.train import planned_steps
from service.kinds import Kind

ray = pytest.importorskip("ray", reason="the cluster tests need Ray: pip install -r requirements-cluster.txt")
from lora_core.ray_executor import RayExecutor  # noqa: E402  (imports ray)

ROOT = Path(__file__).resolve().parent.parent
SMALL = lc.BaselineConfig(hidden1=32, hidden2=16, max_steps=40, seed=11)
LONG = lc.BaselineConfig(hidden1=8, hidden2=8, epochs=2_000, max_steps=200_000, seed=12)  # minutes: time to act
FINETUNE = lc.FinetuneConfig(rank=2, steps=15, digits=(4,))
DEADLINE_S = 60
LONG_STEPS = planned_steps(5_000, LONG.epochs, LONG.batch_size, LONG.max_steps)


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node, one CPU each; their worker processes import lora_core from here."""
    from ray.cluster_utils import Cluster

    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), previous]))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous


@pytest.fixture(scope="module")
def remote(cluster):
    return RayExecutor(cluster.address, executor.InProcess(TrainingSlots(1), lambda running: 1), cpus=1)


def in_process(work):
    """`work` run here with one torch thread, as each cluster task runs (thread counts change rounding)."""
    previous = torch.get_num_threads()
    try:
        return executor.InProcess(TrainingSlots(1), lambda running: 1).run(executor.Progress(), work)
    finally:
        torch.set_num_threads(previous)


def in_background(remote, work) -> tuple[executor.Progress, dict, threading.Thread]:
    """Run `work` on the cluster from a thread, as a page's job does; the outcome lands in the dict."""
    progress, outcome = executor.Progress(), {}

    def run():
        try:
            outcome["result"] = remote.run(progress, work)
        except Exception as err:
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return progress, outcome, thread


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {DEADLINE_S} s"
        time.sleep(0.05)


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_baseline_and_a_finetune_on_the_cluster_match_in_process(remote, data):
    progress = executor.Progress()
    there = remote.run(progress, works.baseline_work(data, SMALL))
    here = in_process(works.baseline_work(data, SMALL))
    assert there.losses == here.losses == progress.losses and progress.step == SMALL.max_steps
    assert same_weights(there.model, here.model) and there.model.linear1.weight.device == data.train_x.device
    assert there.evaluation.wrong_per_class == here.evaluation.wrong_per_class
    assert (there.evaluation.confusion == here.evaluation.confusion).all()

    tuned_there = works.finetune_from_record(remote.run(executor.Progress(), works.finetune_work(here, data, FINETUNE)),
                                             here)
    tuned_here = works.finetune_from_record(in_process(works.finetune_work(here, data, FINETUNE)), here)
    assert tuned_there.run.losses == tuned_here.run.losses
    assert tuned_there.run.update_norms == tuned_here.run.update_norms
    assert same_weights(tuned_there.run.model, tuned_here.run.model)
    assert tuned_there.run.after.wrong_per_class == tuned_here.run.after.wrong_per_class
    assert tuned_there.off.wrong_per_class == tuned_here.off.wrong_per_class
    assert tuned_there.checks == tuned_here.checks


def test_a_training_that_fails_on_the_cluster_raises_its_own_error(remote, data):
    diverging = lc.BaselineConfig(hidden1=64, hidden2=32, batch_size=100, lr=1e20, max_steps=50)
    with pytest.raises(lc.TrainingDiverged) as there:
        remote.run(executor.Progress(), works.baseline_work(data, diverging))
    with pytest.raises(lc.TrainingDiverged) as here:
        in_process(works.baseline_work(data, diverging))
    assert type(there.value) is lc.TrainingDiverged and str(there.value) == str(here.value)


def test_progress_streams_back_and_stop_ends_the_training_between_steps(remote, data):
    progress, outcome, thread = in_background(remote, works.baseline_work(data, LONG))
    wait_until(lambda: len(progress.losses) >= 20, "losses streamed back")
    assert thread.is_alive() and progress.place == 0 and progress.total == LONG_STEPS
    progress.stop()
    thread.join(DEADLINE_S)
    run = outcome["result"]
    assert 20 <= len(run.losses) < run.total_steps and not run.complete
    assert run.losses == progress.losses and progress.step == len(run.losses)
    # the model that came back is the one those whole steps made
    assert run.evaluation.wrong_per_class == lc.evaluate(run.model, data.test_x, data.test_y).wrong_per_class


def test_a_training_waits_in_line_while_the_cluster_is_full_and_stops_there(remote, data):
    running = [in_background(remote, works.baseline_work(data, LONG)) for _ in range(2)]  # both CPUs
    for progress, _, _ in running:
        wait_until(lambda progress=progress: progress.step > 0, "training started")
    waiting, outcome, thread = in_background(remote, works.baseline_work(data, LONG))
    wait_until(lambda: waiting.place == 1, "place in line shown")
    time.sleep(1)
    assert waiting.place == 1 and waiting.step == 0  # still in line: no CPU is free
    waiting.stop()
    thread.join(DEADLINE_S)
    assert isinstance(outcome.get("error"), Cancelled) and waiting.losses == []
    for progress, outcome, thread in running:
        progress.stop()
        thread.join(DEADLINE_S)
        assert not outcome["result"].complete


def training_workers() -> list[int]:
    """Processes running a training task (Ray names them after the task) that descend from this process:
    this cluster's, not another test process's."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::_run_remote"):
                if os.getpid() in ancestors(int(entry.name)):
                    pids.append(int(entry.name))
        except OSError:  # ended meanwhile
            continue
    return pids


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        pid = parent_pid(pid)
        chain.append(pid)
    return chain


def test_a_worker_killed_mid_training_is_a_clear_error_and_the_store_stays_whole(remote, data, tmp_path,
                                                                              monkeypatch):
    """Through the page's path (service.runs.obtain): the job ends with the lost-worker message, the run folder
    keeps what it had and no claim is left, and the next try trains."""
    from service import environment, jobs, runs
    from service.runs import Run
    from ui import baseline

    monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path))
    monkeypatch.setattr(jobs, "EXECUTOR", remote)
    monkeypatch.setattr(runs, "_store", [RunStore(environment.runs_dir(), runs.STORE_BYTES)])
    earlier = works.baseline_record(lc.train_baseline(SMALL, data))
    runs.store().put("earlier-run", earlier)
    before = sorted(p.name for p in environment.runs_dir().iterdir())
    run = Run("lost-run", "baseline", work=works.baseline_work(data, LONG), keep=baseline.keep)
    handle = runs.obtain(run, "session")
    how, job = handle.how, handle.job
    assert how == "started"
    wait_until(lambda: job.step > 5, "training started")
    workers = training_workers()
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)
    job.wait(DEADLINE_S)
    assert job.done and job.result is None and isinstance(job.error, executor.TrainingWorkerLost)
    assert jobs.failure("Training the baseline", job.error) == (
        "Training the baseline failed: The training worker was lost before the training finished (a machine of "
        "the cluster stopped or ran out of memory). Your settings are kept: train again.")
    assert sorted(p.name for p in environment.runs_dir().iterdir()) == before  # no partial file, no claim left
    assert runs.store().get("lost-run") is None and run_claims.lapsed(environment.runs_dir(), "lost-run")
    assert RunStore(environment.runs_dir()).get("earlier-run")["losses"] == earlier["losses"]
    # the cluster trains again after losing a worker
    assert remote.run(executor.Progress(), works.baseline_work(data, SMALL)).complete


# --- Train, then Stop while "starting…": on a cluster one person alone could store a 0-step baseline ----

def held_until_stop(progress, data, config):
    """The baseline's work on a worker, held after it told the app it started until the app's Stop reaches
    it: the training then reads that Stop before its first step, every time."""
    deadline = time.monotonic() + DEADLINE_S
    while not progress.should_stop() and time.monotonic() < deadline:
        time.sleep(0.05)
    return works.trained_baseline(progress, data, config)


def stop_once_started(key: str, session_id: str) -> None:
    """The session's Stop (ui.run_controls.stop) as soon as the cluster says the run `key` started."""
    from service import runs

    def started():
        job = runs.running(key)
        return job is not None and job.place == 0
    wait_until(started, "training started on the cluster")
    runs.running(key).release(session_id)


def test_a_baseline_stopped_after_it_started_and_before_its_first_step_is_never_stored(remote, monkeypatch,
                                                                                      tmp_path):
    """Through the baseline page: Train, then Stop once the cluster has started the run but before its step 1.
    Nothing is stored, the page says so, and the same settings opened again offer to train."""
    from service import jobs, runs
    from service.runs import How, Run

    monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path))
    monkeypatch.setattr(jobs, "EXECUTOR", remote)
    monkeypatch.setattr(runs, "_store", [])  # a store of its own, in tmp_path
    whole_work = works.baseline_work
    monkeypatch.setattr(works, "baseline_work",
                        lambda data, config: dataclasses.replace(whole_work(data, config), fn=held_until_stop))
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the worker cannot import this module
    try:
        settings = dict(base_hidden1=16, base_hidden2=16, base_epochs=1, base_batch=64, seed=6_003)
        at = open_session(**settings)
        at.switch_page("app_pages/baseline.py").run()
        key = runs.key(at.session_state["experiment"], Kind.BASELINE, "cpu")
        stopper = threading.Thread(target=stop_once_started, args=(key, at.session_state["session_id"]))
        stopper.start()
        at.button(key="base_train").click().run()
        stopper.join(DEADLINE_S)
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert not stopper.is_alive() and not at.exception, at.exception
    assert "Stopped before the first step: nothing was trained or kept." in [i.value for i in at.info]
    assert at.session_state["base_max_steps"] == 0 and not at.success  # still no limit; nothing shown as made
    assert runs.find(key) is None and not runs.store().path(key).exists() and runs.store().writes == 0
    assert runs.obtain(Run(key, Kind.BASELINE), None, start=False).how is How.ABSENT
    other = open_session(**settings)  # someone else opens the same settings: not made, Train is offered
    other.switch_page("app_pages/baseline.py").run()
    assert not other.exception and not other.success and not other.button(key="base_train").disabled
