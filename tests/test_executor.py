"""The executor seam in process: Work gives the numbers lora_core gives, through the same slots as today."""
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lora_core as lc
from lora_core import executor, works
from lora_core.slots import Cancelled, TrainingSlots
from service import executors
from service.kinds import Kind

ROOT = Path(__file__).resolve().parent.parent

SMALL = lc.BaselineConfig(hidden1=32, hidden2=16, max_steps=40, seed=7)
FINETUNE = lc.FinetuneConfig(rank=2, steps=15, digits=(3,))


@pytest.fixture(scope="module")
def base(data):
    return lc.train_baseline(SMALL, data)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_baseline_as_work_is_the_baseline_trained_here(data, base):
    progress = executor.Progress()
    here = executor.InProcess(TrainingSlots(1), lambda running: torch.get_num_threads())
    run = here.run(progress, works.baseline_work(data, SMALL))
    assert run.losses == base.losses == progress.losses
    assert same_weights(run.model, base.model)
    assert not any(p.requires_grad for p in run.model.parameters())
    assert run.evaluation.wrong_per_class == base.evaluation.wrong_per_class and run.complete
    assert progress.place == 0 and progress.step == progress.total == SMALL.max_steps


def test_a_finetune_as_work_is_the_finetune_run_here(data, base):
    """The LoRA page's job, its adapter carried back as tensors and attached to a copy of the baseline."""
    record = executor.InProcess(TrainingSlots(1), lambda running: torch.get_num_threads()).run(
        executor.Progress(), works.finetune_work(base, data, FINETUNE))
    result = works.finetune_from_record(record, base)
    here = lc.finetune_lora(base.model, data, FINETUNE, before=base.evaluation)
    run = result.run
    assert run.losses == here.losses and run.update_norms == here.update_norms
    assert run.after.wrong_per_class == here.after.wrong_per_class
    assert same_weights(run.model, here.model) and run.parameters == lc.count_parameters(run.model)
    assert lc.evaluate(run.model, data.test_x, data.test_y).wrong_per_class == here.after.wrong_per_class
    with lc.lora_enabled(here.model, False):
        assert result.off.wrong_per_class == lc.evaluate(here.model, data.test_x, data.test_y).wrong_per_class
    probe = data.test_x[:works.PROOF_IMAGES]
    assert result.checks == lc.adapter_checks(base.model, here.model, probe)


def test_work_waits_in_line_and_a_stop_there_runs_nothing(data):
    slots = TrainingSlots(1)
    progress = executor.Progress()
    with slots.slot("someone else"):
        progress.stop()
        with pytest.raises(Cancelled):
            here = executor.InProcess(slots, lambda running: torch.get_num_threads())
            here.run(progress, works.baseline_work(data, SMALL))
    assert progress.losses == [] and progress.step == 0


def test_work_refuses_a_function_a_cluster_could_not_import(data):
    with pytest.raises(ValueError, match="module-level"):
        executor.Work(lambda progress, data: None, data)


def test_the_backend_comes_from_the_environment(monkeypatch):
    slots = TrainingSlots(2)
    monkeypatch.delenv(executors.RAY_ADDRESS_ENV, raising=False)
    local = executors.from_env(slots, lambda running: 3)
    assert isinstance(local, executor.InProcess) and local.slots is slots and local.cores_for(1) == 3
    monkeypatch.setenv(executors.RAY_ADDRESS_ENV, "auto")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    monkeypatch.delitem(sys.modules, "lora_core.ray_executor", raising=False)
    with pytest.raises(RuntimeError, match="requirements-cluster.txt"):
        executors.from_env(slots, lambda running: 3)


def test_the_app_runs_without_ray():
    """requirements.txt has no Ray: with `import ray` failing, every module of the app imports (but the Ray
    executor, which only LORA_LAB_RAY_ADDRESS loads) and the app's first page draws."""
    code = ("import sys, importlib, pkgutil; sys.modules['ray'] = None\n"
            "for package in ('lora_core', 'service', 'ui', 'views', 'classroom'):\n"
            "    for found in pkgutil.iter_modules(importlib.import_module(package).__path__):\n"
            "        if found.name != 'ray_executor':\n"
            "            importlib.import_module(f'{package}.{found.name}')\n"
            "from streamlit.testing.v1 import AppTest\n"
            "at = AppTest.from_file('app.py', default_timeout=120).run()\n"
            "assert not at.exception and at.title[0].value, at.exception\n")
    env = {k: v for k, v in os.environ.items() if k != executors.RAY_ADDRESS_ENV}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env=env)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name, value, problem, used", [
    (executors.RAY_CPUS_ENV, "two", "not an integer ≥ 1", ("cpus", 1)),
    (executors.RAY_CPUS_ENV, "0", "not an integer ≥ 1", ("cpus", 1)),
    (executors.RAY_GPUS_ENV, "-0.5", "not a number ≥ 0", ("gpus", 0.0)),
    (executors.RAY_GPUS_ENV, "nan", "not a number ≥ 0", ("gpus", 0.0)),
])
def test_a_bad_cluster_setting_is_named_and_its_default_used(monkeypatch, caplog, name, value, problem, used):
    """The one policy of every server setting (service.environment): named in the log, never a traceback."""
    pytest.importorskip("ray")
    monkeypatch.setenv(executors.RAY_ADDRESS_ENV, "auto")
    monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="lora_lab"):
        remote = executors.from_env(TrainingSlots(1), lambda running: 1)
    assert f"{name}='{value}' is {problem}; using {used[1]}" in caplog.text
    assert getattr(remote, used[0]) == used[1]


def test_good_cluster_settings_reach_the_executor(monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv(executors.RAY_ADDRESS_ENV, "auto")
    monkeypatch.setenv(executors.RAY_CPUS_ENV, "2")
    monkeypatch.setenv(executors.RAY_GPUS_ENV, "0.25")
    remote = executors.from_env(TrainingSlots(1), lambda running: 1)  # connects on its first training, not here
    assert (remote.address, remote.cpus, remote.gpus, remote.device) == ("auto", 2, 0.25, "cuda")


def test_a_page_job_runs_work_through_the_executor(data, base):
    """service.jobs.Job keeps its interface: a Work runs like a closure did, with the same progress."""
    from service import jobs

    job = jobs.Job(Kind.BASELINE, works.baseline_work(data, SMALL))
    job.wait(60)
    assert job.done and job.error is None and job.place == 0
    assert job.result.losses == job.losses == base.losses
