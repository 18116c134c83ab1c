"""The service that makes runs, without Streamlit: service.runs.obtain finds a run stored, joins it while it
trains, sees another server make it, refuses it over a limit, or starts it once; on real (tiny) trainings,
checked against lora_core called directly. Nothing here imports Streamlit or ui."""
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import lora_core as lc
from lora_core import executor, run_claims, works
from lora_core.slots import TrainingSlots
from lora_core.store import RunStore
from service import environment, jobs, limits, runs
from service.kinds import Kind
from service.runs import How, Run

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(hidden1=8, hidden2=8, max_steps=20, batch_size=32)


@pytest.fixture(autouse=True)
def own_run_folder(tmp_path, monkeypatch):
    """Each test gets an empty run store and run folder (claims included), as a fresh server would."""
    monkeypatch.setenv(environment.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(runs, "_store", [])


@pytest.fixture
def sessions(monkeypatch):
    """What the service is told of sessions: every session here is one browser's, and the jobs each follows."""
    followed: dict[str, list] = {}
    hook = jobs.Sessions(owners_of=lambda session: () if session is None else (("browser", "one"),),
                         track=lambda session, job: followed.setdefault(session, []).append(job))
    monkeypatch.setattr(jobs, "SESSIONS", hook)
    return followed


def baseline_run(data, seed: int, gate: threading.Event | None = None, trained: list | None = None) -> Run:
    """The run of a tiny baseline, as a page describes it; its work waits for `gate` before training (so
    that a second request finds it running) and counts its trainings in `trained`."""
    config = lc.BaselineConfig(seed=seed, **TINY)

    def work(job):
        if gate is not None:
            assert gate.wait(60), "the test never let the training start"
        if trained is not None:
            trained.append(job)
        return lc.train_baseline(config, data, on_step=job.on_step, should_stop=job.should_stop)

    key = runs.key(lc.Experiment(baseline=config, seed=seed), Kind.BASELINE, "cpu")
    return Run(key, Kind.BASELINE, work=work, keep=keep_whole, steps=config.max_steps,
               hidden=(config.hidden1, config.hidden2),
               revive=lambda record: works.baseline_from_record(record, "cpu"))


def keep_whole(run: lc.BaselineRun):
    return (works.baseline_record(run), run) if run.complete else None


def test_the_service_imports_without_streamlit():
    code = ("import sys; sys.modules['streamlit'] = None\n"
            "import service, service.environment, service.executors, service.jobs, service.kinds, "
            "service.limits, service.runs\n"
            "assert not [m for m in sys.modules if m == 'ui' or m.startswith('ui.')], 'the service imported ui'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_run_is_started_once_joined_by_a_second_session_then_found_stored(data, sessions):
    gate, trained = threading.Event(), []
    run = baseline_run(data, 201, gate, trained)
    assert runs.obtain(run, "session-a", start=False).how is How.ABSENT and runs.running(run.key) is None
    started = runs.obtain(run, "session-a")
    joined = runs.obtain(run, "session-b")
    assert (started.how, joined.how) == (How.STARTED, How.JOINED) and joined.job is started.job
    assert started.job.watchers == {"session-a", "session-b"}
    assert sessions == {"session-a": [started.job], "session-b": [started.job]}  # told, to release it later
    gate.set()
    started.job.wait(60)
    assert started.job.error is None and len(trained) == 1
    stored = runs.obtain(run, "session-c")
    assert stored.how is How.STORED and stored.job is None and stored.result is started.job.result
    direct = lc.train_baseline(lc.BaselineConfig(seed=201, **TINY), data)  # the same run, without the service
    assert stored.result.losses == direct.losses
    assert stored.result.evaluation.accuracy == direct.evaluation.accuracy
    assert bool((stored.result.evaluation.predictions == direct.evaluation.predictions).all())
    assert len(trained) == 1 and runs.running(run.key) is None


def test_a_stored_run_is_read_back_from_disk_by_a_restarted_server(data, monkeypatch):
    run = baseline_run(data, 202)
    job = runs.obtain(run, "session-a").job
    job.wait(60)
    monkeypatch.setattr(runs, "_store", [])  # a restart: memory is empty, the folder is not
    found = runs.obtain(run, "session-b", start=False)
    assert found.how is How.STORED and found.result is not job.result
    assert found.result.losses == job.result.losses
    x = data.test_x[:64]
    assert bool((found.result.model(x) == job.result.model(x)).all())  # the same weights, revived


def test_a_run_stopped_by_its_only_follower_is_not_stored(data, sessions):
    gate = threading.Event()
    run = baseline_run(data, 203, gate)
    job = runs.obtain(run, "session-a").job
    assert job.release("session-a") == 0 and job.stopping
    gate.set()
    job.wait(60)
    assert job.result is None or not job.result.complete  # stopped before it took every step
    assert runs.obtain(run, "session-a", start=False).how is How.ABSENT
    assert runs.find(run) is None and not runs.store().path(run.key).exists()
    assert run_claims.lapsed(environment.runs_dir(), run.key)  # its claim let go


def test_a_run_over_the_servers_step_limit_is_refused_and_never_runs(data, monkeypatch, sessions):
    monkeypatch.setenv(limits.MAX_STEPS_ENV, "10")
    trained = []
    run = baseline_run(data, 204, trained=trained)  # 20 steps
    refused = runs.obtain(run, "session-a")
    assert refused.how is How.REFUSED and refused.job.refused and refused.job.done
    assert str(refused.job.error).startswith("Not started: this would take 20 training steps")
    assert jobs.failure("Training", refused.job.error) == str(refused.job.error)  # said as it is, not "failed"
    assert trained == [] and runs.running(run.key) is None and sessions == {}
    assert run_claims.lapsed(environment.runs_dir(), run.key)  # another server may make it


def test_a_second_training_of_one_person_is_refused_by_name(data, monkeypatch, sessions):
    slots = TrainingSlots(limit=2, per_owner=1)
    monkeypatch.setattr(jobs, "SLOTS", slots)
    monkeypatch.setattr(jobs, "EXECUTOR", executor.InProcess(slots, environment.threads_each))
    gate = threading.Event()
    first = runs.obtain(baseline_run(data, 205, gate), "tab-1")
    try:
        second = runs.obtain(baseline_run(data, 206), "tab-2")  # the same browser (the sessions hook)
        assert (first.how, second.how) == (How.STARTED, How.REFUSED)
        assert str(second.job.error).startswith("Not started: you already have a baseline training running or "
                                                "waiting")
        assert second.job.error.blocking is first.job  # what a page waits for to take the refusal back
    finally:
        gate.set()
        first.job.wait(60)


def test_a_run_another_server_makes_is_waited_for_not_trained(data):
    trained = []
    run = baseline_run(data, 207, trained=trained)
    other = run_claims.claim(environment.runs_dir(), run.key)  # another server of the same run folder
    assert other is not None
    try:
        assert runs.obtain(run, "session-a", start=False).how is How.ELSEWHERE
        assert runs.obtain(run, "session-a").how is How.ELSEWHERE and trained == []
        assert not runs.wait_elsewhere(run.key, 0.1)  # still being made: the wait's deadline ends it
        made = lc.train_baseline(lc.BaselineConfig(seed=207, **TINY), data)
        RunStore(environment.runs_dir()).put(run.key, works.baseline_record(made))  # the other server stores it
    finally:
        other.release()
    assert runs.wait_elsewhere(run.key, 30)
    found = runs.obtain(run, "session-a")
    assert found.how is How.STORED and found.result.losses == made.losses and trained == []
