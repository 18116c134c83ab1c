"""Many sessions on one server: what they share is computed once and never written to, what each computes
is its own, and a session that ends or idles gives back what it held. AppTest sessions run in this
process, like the sessions of one `streamlit run` server; a small baseline keeps each run quick."""
import gc
import time
from pathlib import Path

import pytest
import torch
from conftest import open_session, train_baseline, wait_for_steps
from streamlit.testing.v1 import AppTest

import lora_core as lc
from service import environment, jobs, runs, sessions
from service.kinds import Kind
from service.runs import Run
from ui import baseline as ui_baseline
from ui import server

SMALL = {"base_hidden1": 32, "base_hidden2": 32, "base_max_steps": 10, "lora_steps": 5}
LONG = lc.BaselineConfig(hidden1=8, hidden2=8, epochs=50, batch_size=16, max_steps=10_000)  # time to stop it midway






def train_lora(at: AppTest, **settings) -> None:
    at.switch_page("app_pages/lora.py").run()
    for key, value in settings.items():
        at.session_state[key] = value
    at.run()  # draw the page for these settings: its Train button is for them
    at.button(key="lora_train").click().run()
    assert not at.exception, at.exception


def models(value) -> list[torch.nn.Module]:
    """The models a session_state value holds (as service.sessions looks for them)."""
    if isinstance(value, torch.nn.Module):
        return [value]
    if isinstance(value, dict):
        return [m for v in value.values() for m in models(v)]
    if isinstance(value, (list, tuple)):
        return [m for v in value for m in models(v)]
    if hasattr(value, "__dataclass_fields__"):
        return [m for name in value.__dataclass_fields__ for m in models(getattr(value, name))]
    return []


def held_models(at: AppTest) -> list[torch.nn.Module]:
    return [m for value in at.session_state.values() for m in models(value)]


def sweep_after_grace() -> None:
    """After a session was dropped (`del at`, as a server drops a closed tab's state): the sweep first
    finds it gone, and ends it once it stayed gone for the grace period."""
    gc.collect()
    now = time.monotonic()
    server.SESSIONS.sweep(now)
    server.SESSIONS.sweep(now + sessions.CLOSED_GRACE_S + 1)  # + 1: (now + g) - now can round below g


def test_two_sessions_share_the_data_and_the_baseline_but_never_an_adapter():
    a, b = open_session(SMALL, seed=9101), open_session(SMALL, seed=9101)
    assert a.session_state["session_id"] != b.session_state["session_id"]
    assert a.session_state["context"].data is b.session_state["context"].data  # loaded once per server
    held_a, held_b = train_baseline(a)["run"], train_baseline(b)["run"]
    base = held_a.model
    assert held_b is held_a and "Stored on this server" in b.success[0].value  # trained once
    weights = {name: w.clone() for name, w in base.state_dict().items()}

    train_lora(a, lora_rank=2, lora_classes=[3])
    b.switch_page("app_pages/lora.py").run()
    assert not held_models(b) or all(m is base for m in held_models(b))  # b sees nothing of a's adapter
    train_lora(b, lora_rank=4, lora_classes=[7])

    tuned_a = [m for m in held_models(a) if lc.lora_layers(m)]
    tuned_b = [m for m in held_models(b) if lc.lora_layers(m)]
    assert tuned_a and tuned_b and not {id(m) for m in tuned_a} & {id(m) for m in tuned_b}
    assert {lc.lora_of(layer).rank for layer in lc.lora_layers(tuned_a[0]).values()} == {2}
    assert {lc.lora_of(layer).rank for layer in lc.lora_layers(tuned_b[0]).values()} == {4}
    assert not lc.lora_layers(base)  # the shared baseline was copied before each adapter was attached
    assert all(torch.equal(weights[name], w) for name, w in base.state_dict().items())
    assert not any(p.requires_grad for p in base.parameters())


def test_a_closed_session_stops_its_training_and_the_model_keeps_every_whole_step(data):
    at = open_session(SMALL)
    session_id = at.session_state["session_id"]
    job = jobs.Job(Kind.BASELINE, lambda job: lc.train_baseline(LONG, data, on_step=job.on_step,
                                                                    should_stop=job.should_stop))
    job.watch(session_id)  # as a page's own job is followed by its session
    wait_for_steps(job, 3)
    del at
    gc.collect()
    now = time.monotonic()
    server.SESSIONS.sweep(now)
    assert not job.stopping  # gone for less than the grace: a reload could still come back to it
    server.SESSIONS.sweep(now + sessions.CLOSED_GRACE_S + 1)
    assert job.stopping and server.SESSIONS.get(session_id) is None
    job.wait(60)
    run = job.result
    assert job.error is None and 3 <= len(run.losses) < run.total_steps
    assert run.losses == job.losses  # the model and the curve hold the same whole steps
    assert run.evaluation.accuracy == lc.evaluate(run.model, data.test_x, data.test_y).accuracy


def test_a_shared_baseline_trains_on_while_one_session_still_follows_it(data):
    a, b = open_session(SMALL), open_session(SMALL)
    key = runs.key(lc.Experiment(baseline=LONG, seed=LONG.seed), "baseline", "cpu")
    work = lambda job: lc.train_baseline(LONG, data, on_step=job.on_step, should_stop=job.should_stop)  # noqa: E731
    run = Run(key, "baseline", work=work, keep=ui_baseline.keep)
    how_a, job = (handle := runs.obtain(run, a.session_state["session_id"])).how, handle.job
    how_b, same = (handle := runs.obtain(run, b.session_state["session_id"])).how, handle.job
    assert (how_a, how_b) == ("started", "joined") and same is job
    wait_for_steps(job, 2)
    del a
    sweep_after_grace()
    assert not job.stopping and job.watchers == {b.session_state["session_id"]}
    del b
    sweep_after_grace()
    assert job.stopping
    job.wait(60)
    assert runs.running(key) is None and runs.find(key) is None  # partial: not stored as the whole run


def test_a_run_that_ends_in_st_stop_still_ends_for_the_idle_sweep():
    """The LoRA page stops its run (st.stop()) while no baseline is trained; after st.stop() every Streamlit
    call raises again, so the frame must record the run's end without one, or the sweep would think the
    session busy for ever and never give its models back."""
    at = open_session(SMALL, seed=9001)
    at.switch_page("app_pages/lora.py").run()
    assert not at.exception, at.exception
    assert any("has not been trained on this server yet" in info.value for info in at.info)
    assert "lora_train" not in [button.key for button in at.button]  # stopped before its own Train
    assert server.SESSIONS.get(at.session_state["session_id"]).running == 0


def test_an_idle_session_gives_its_models_back_and_keeps_its_settings():
    at = open_session(SMALL, seed=9102)
    train_baseline(at)
    train_lora(at, lora_rank=3)
    assert held_models(at)
    session = server.SESSIONS.get(at.session_state["session_id"])
    server.SESSIONS.sweep(time.monotonic() + 60, idle=120)  # not idle long enough
    assert held_models(at)
    server.SESSIONS.sweep(session.last_seen + 121, idle=120)  # 121: (t + 120) - t can round below 120
    assert not held_models(at) and server.SESSIONS.get(session.id) is session  # still open, still known
    at.run()
    assert not at.exception, at.exception
    assert any("without activity" in info.value for info in at.info)
    assert server.NOTE_KEY not in at.session_state  # said once
    assert at.session_state["lora_rank"] == 3 and at.session_state["seed"] == 9102


def rss_mb() -> float:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024


def test_memory_stays_flat_over_repeated_finetunes_in_one_session():
    at = open_session(SMALL, seed=9103)
    train_baseline(at)
    counts, rss = [], []
    for run in range(7):
        train_lora(at, lora_rank=1 + run)  # each a new run: the same settings again would be found, not trained
        gc.collect()
        counts.append(sum(issubclass(type(o), lc.MLP) for o in gc.get_objects()))
        rss.append(rss_mb())
    assert len([m for m in held_models(at) if lc.lora_layers(m)]) == 1  # the last adapter only
    assert max(counts[3:]) <= counts[2], counts  # every earlier adapter's model was freed: no growth
    assert rss[-1] - rss[2] < 40, rss
    print(f"live models {counts}, RSS MB {[round(r) for r in rss]}")


def test_the_training_limit_and_torch_threads_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LORA_LAB_MAX_TRAININGS", "3")
    assert environment.max_trainings() == 3
    for bad in ("0", "-2", "two", "1.5", "nan", ""):
        monkeypatch.setenv("LORA_LAB_MAX_TRAININGS", bad)
        assert environment.max_trainings() == lc.slots.default_limit()
    assert environment.threads_each(1) == environment.TORCH_DEFAULT_THREADS
    assert environment.threads_each(10_000) == 1
    assert jobs.THREADS == environment.threads_each(jobs.SLOTS.limit)


@pytest.mark.parametrize("value, expected", [
    ({"a": [1, {"m": torch.nn.Linear(1, 1)}]}, True),
    (jobs.Job(Kind.BASELINE, lambda job: 1), False),
    ({"tensor": torch.zeros(3), "text": "x"}, False),
])
def test_what_counts_as_a_model_to_free(value, expected):
    if isinstance(value, jobs.Job):
        value.wait(10)
    assert sessions.holds_model(value) is expected
