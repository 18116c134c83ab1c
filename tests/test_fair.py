"""Fair sharing: one person cannot hold every training slot, a training over the server's limits is refused
with the reason, and the operator sees every training and can stop it."""
import threading
import time
from contextlib import ExitStack

import pytest
import streamlit as st
from conftest import held_baseline, train_baseline
from streamlit.testing.v1 import AppTest
from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string

import lora_core as lc
from lora_core import executor, works
from lora_core.slots import Busy, Cancelled, TrainingSlots
from lora_core.train import planned_steps
from service import environment, jobs, limits, runs, sessions
from service.kinds import Kind
from ui import operator, progress

APP = "../app.py"  # relative to this file


def tab(session: str, browser: str) -> tuple:
    return ("session", session), ("browser", browser)


# --- the core: admission per owner ------------------------------------------------------------------

def test_two_tabs_of_one_browser_cannot_take_both_slots_and_another_student_gets_one():
    slots = TrainingSlots(limit=2, per_owner=1)
    slots.admit("a-tab1", tab("a1", "browser-a"))
    with pytest.raises(Busy) as refused:
        slots.admit("a-tab2", tab("a2", "browser-a"))  # same browser, another tab (another session)
    assert refused.value.owner == ("browser", "browser-a") and refused.value.held == ["a-tab1"]
    slots.admit("b", tab("b1", "browser-b"))
    with ExitStack() as stack:
        stack.enter_context(slots.slot("a-tab1"))
        stack.enter_context(slots.slot("b"))
        assert slots.position("a-tab1") == slots.position("b") == 0  # both slots: one per student
        assert slots.position("a-tab2") == -1
    slots.admit("a-tab2", tab("a2", "browser-a"))  # a's first training ended: the second is admitted


def test_one_session_is_one_person_without_a_browser_name():
    slots = TrainingSlots(limit=4, per_owner=1)
    slots.admit("first", [("session", "s")])
    with pytest.raises(Busy):
        slots.admit("second", [("session", "s")])
    slots.admit("other", [("session", "t")])


def test_an_admission_ends_when_the_wait_is_given_up_or_the_owner_leaves_it():
    slots = TrainingSlots(limit=1, per_owner=1)
    slots.admit("running", tab("x", "bx"))
    slots.admit("queued", tab("y", "by"))
    with slots.slot("running"):
        with pytest.raises(Cancelled):
            with slots.slot("queued", cancelled=lambda: True):
                pass
    assert slots.held_by(("session", "y")) == [] and slots.held_by(("session", "x")) == []
    slots.admit("shared", tab("x", "bx"))
    slots.disown("shared", tab("x", "bx"))  # it runs on for others: x may start something else
    slots.admit("next", tab("x", "bx"))
    assert slots.held_by(("browser", "bx")) == ["next"]


@pytest.mark.parametrize("per_owner", [0, -1, True, 1.5, "1"])
def test_per_owner_must_be_a_positive_integer(per_owner):
    with pytest.raises(ValueError, match="per_owner"):
        TrainingSlots(1, per_owner)


def test_the_browser_is_named_by_its_xsrf_token_whatever_the_mask():
    token, other = b"0123456789abcdef", b"fedcba9876543210"
    first, second = (sessions.browser_of_cookie(generate_xsrf_token_string(token, 1_700_000_000))
                     for _ in range(2))
    assert first == second and first is not None  # each tab gets the token masked afresh: same browser
    assert sessions.browser_of_cookie(generate_xsrf_token_string(other, 1_700_000_000)) != first
    assert sessions.browser_of_cookie(f'"{generate_xsrf_token_string(token, 1)}"') == first  # quoted
    for unreadable in ("", "2|zz|00|1", "2||00|1"):
        assert sessions.browser_of_cookie(unreadable) is None


# --- the app's jobs: refusals say why ---------------------------------------------------------------

@pytest.fixture
def slots(monkeypatch):
    """Two slots, one training per person, for this test only (and the executor that runs jobs in them)."""
    fresh = TrainingSlots(limit=2, per_owner=1)
    monkeypatch.setattr(jobs, "SLOTS", fresh)
    monkeypatch.setattr(jobs, "EXECUTOR", executor.InProcess(fresh, environment.threads_each))
    return fresh


def blocking_job(kind: Kind, owners: tuple, release: threading.Event, **cost) -> jobs.Job:
    def work(job):
        job.total = 100
        while not release.is_set() and not job.should_stop():
            job.step = min(job.step + 1, 99)
            time.sleep(0.01)
        return "done"
    return jobs.Job(kind, work, owners=owners, **cost)


def test_a_second_training_of_one_browser_is_refused_and_another_students_runs(slots):
    release = threading.Event()
    try:
        first = blocking_job(Kind.FINETUNE, tab("a1", "browser-a"), release)
        second = blocking_job(Kind.COMPARE, tab("a2", "browser-a"), release)
        other = blocking_job(Kind.FINETUNE, tab("b1", "browser-b"), release)
        assert second.done and second.refused and second.result is None
        message = jobs.failure("Training", second.error)
        assert message.startswith("Not started: you already have an adapter training (LoRA finetuning)")
        assert "another tab" in message and "Training failed" not in message
        deadline = time.monotonic() + 30
        while not (first.place == 0 and other.place == 0) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first.place == other.place == 0  # both students train at once
    finally:
        release.set()
    for job in (first, other):
        job.wait(30)
        assert job.result == "done"
    assert slots.held_by(("browser", "browser-a")) == []  # ended: a may train again
    third = blocking_job(Kind.FINETUNE, tab("a2", "browser-a"), release)
    third.wait(30)
    assert third.result == "done"


@pytest.mark.parametrize("cost, words", [
    ((limits.DEFAULT_MAX_STEPS + 1, (), 0), f"at most {limits.DEFAULT_MAX_STEPS:,} in one training"),
    ((0, (limits.DEFAULT_MAX_HIDDEN + 1, 8), 0), f"larger than this server allows ({limits.DEFAULT_MAX_HIDDEN:,})"),
    ((1, (), int(2e12)), f"at most {limits.DEFAULT_MAX_SECONDS / 60:g} minutes here"),
])
def test_a_training_over_a_cap_is_refused_with_the_cap(slots, cost, words):
    job = blocking_job(Kind.BASELINE, tab("c", "browser-c"), threading.Event(), cost=cost)
    assert job.refused and job.done and words in str(job.error)
    assert slots.held_by(("session", "c")) == []  # a refusal holds nothing


def test_a_queued_training_says_its_place_and_when_it_should_start(slots, monkeypatch):
    monkeypatch.setenv(limits.MAX_SECONDS_ENV, str(24 * 3600))  # an operator's longer trainings
    release, hour = threading.Event(), int(3600 * limits.IMAGE_WEIGHTS_PER_S)  # an hour's work each
    try:
        running = [blocking_job(Kind.BASELINE, tab(f"r{i}", f"b{i}"), release, cost=(100, (), hour))
                   for i in range(slots.limit)]
        queued = [blocking_job(Kind.FINETUNE, tab(f"q{i}", f"c{i}"), release, cost=(100, (), hour // 2))
                  for i in range(2)]
        deadline = time.monotonic() + 30
        while any(job.step < 99 for job in running) and time.monotonic() < deadline:
            time.sleep(0.01)  # each running job at step 99 of 100: 1 % of its hour left
        assert [slots.position(job) for job in queued] == [1, 2]
        assert jobs.estimated_start(queued[0]) == pytest.approx(2 * 36 / slots.limit)  # what the runners have left
        assert jobs.estimated_start(queued[1]) == pytest.approx((2 * 36 + 1800) / slots.limit)  # and the first's
        value, text = jobs.status(queued[1], "Training the baseline")
        assert value == 0.0 and "1 training(s) queued before this one, 2 run at a time" in text
        assert text.endswith("it should start in about 16 minutes (an estimate)")  # (72 + 1,800) s / 2
        assert jobs.status(queued[0], "Training the baseline")[1].endswith(
            "it should start in about 35 s (an estimate)")  # 72 s / 2, to 5 s
        assert jobs._when(4.9) == "at any moment now"  # read after "it should start"
        # a queue's pages are sent a new text only when it says something new: not every second
        assert jobs._when(33.1) == jobs._when(36.9) != jobs._when(38.1)
    finally:
        release.set()
        for job in running + queued:
            job.wait(30)


def test_the_caps_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(limits.MAX_STEPS_ENV, "50")
    monkeypatch.setenv(limits.MAX_HIDDEN_ENV, "not a number")
    assert limits.max_steps() == 50 and limits.max_hidden() == limits.DEFAULT_MAX_HIDDEN
    with pytest.raises(limits.Refused, match="51 training steps"):
        limits.check_cost(51)
    limits.check_cost(50, (limits.DEFAULT_MAX_HIDDEN,))


def test_the_notebooks_baseline_and_the_default_settings_fit_the_default_caps():
    notebook = lc.NOTEBOOK_BASELINE  # full MNIST: 60,000 training images
    steps = planned_steps(60_000, notebook.epochs, notebook.batch_size, notebook.max_steps)
    assert steps == notebook.epochs * 60_000 // notebook.batch_size == 6_000 <= limits.DEFAULT_MAX_STEPS
    default = lc.BaselineConfig()
    limits.check_cost(steps, (default.hidden1, default.hidden2))


# --- two sessions in the app ----------------------------------------------------------------------

def open_session(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_baseline_over_the_step_cap_is_refused_on_the_page_and_the_session_kept(monkeypatch):
    monkeypatch.setenv(limits.MAX_STEPS_ENV, "100")
    at = open_session(base_hidden1=16, base_hidden2=16, base_epochs=2, base_batch=64, base_max_steps=0)
    at.switch_page("app_pages/baseline.py").run()
    assert any("at most 100 steps" in c.value for c in at.caption)  # the cap is said where the inputs are
    if not at.button(key="base_train").disabled:
        at.button(key="base_train").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [
        "Not started: this would take 158 training steps, and this server runs at most 100 in one training, "
        "so that everyone gets a turn. Use fewer steps or epochs, a larger batch, or a step limit."]
    assert at.session_state["base_epochs"] == 2 and at.session_state.get("baseline_job") is None
    assert held_baseline(at)["run"] is None  # nothing was trained or stored


# --- the operator's page ------------------------------------------------------------------------------

OPERATOR_TITLE = "Operator: trainings on this server"


@pytest.fixture(autouse=True)
def no_wrong_tries():
    """Each test starts with the server's record of wrong operator tokens empty (it is server-wide)."""
    operator._wrong.clear()
    yield
    operator._wrong.clear()


def sign_in(at: AppTest, given: str) -> AppTest:
    """Type `given` into the operator page's sign-in form and submit it."""
    at.switch_page("app_pages/operator.py").run()
    at.text_input(key="op_token").input(given)
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert not at.exception, at.exception
    return at


def operator_session(given: str | None) -> AppTest:
    """A new session, signed in with `given` when it is not None."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at if given is None else sign_in(at, given)


def test_without_a_token_the_server_has_no_operator_page(monkeypatch):
    monkeypatch.setenv(operator.TOKEN_ENV, "")
    at = operator_session(None)
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not in this server's app
        at.switch_page("app_pages/operator.py")


@pytest.mark.parametrize("given", ["wrong", "s3cret-toke", ""])
def test_the_operator_page_shows_nothing_but_its_form_without_the_token(monkeypatch, given):
    monkeypatch.setenv(operator.TOKEN_ENV, "s3cret-token")
    at = sign_in(operator_session(None), given)
    assert [e.value for e in at.error] == ["That is not the operator's token."]
    assert not at.dataframe and not at.subheader and not at.info  # no training, no stored run listed


def test_a_token_in_the_address_is_taken_out_and_never_accepted(monkeypatch):
    monkeypatch.setenv(operator.TOKEN_ENV, "s3cret-token")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params[operator.QUERY_KEY] = "s3cret-token"  # as an old link, or the history, would bring it
    at.run()
    assert operator.QUERY_KEY not in at.query_params
    at.switch_page("app_pages/operator.py").run()
    assert at.text_input(key="op_token") is not None and not at.dataframe  # still the sign-in form


def test_wrong_tries_are_logged_and_throttled_for_the_whole_server(monkeypatch, caplog):
    monkeypatch.setenv(operator.TOKEN_ENV, "s3cret-token")
    for attempt in range(operator.MAX_WRONG):  # each from a new session: a guesser opens new tabs
        sign_in(operator_session(None), f"guess-{attempt}")
    assert sum("wrong token tried" in r.getMessage() for r in caplog.records) == operator.MAX_WRONG
    at = sign_in(operator_session(None), "s3cret-token")  # even the right token waits out the window
    assert at.error[0].value.startswith("Too many wrong tries on this server: try again in")
    assert not at.dataframe
    operator._wrong[:] = [t - operator.WINDOW_S for t in operator._wrong]  # the window has passed
    at = sign_in(at, "s3cret-token")
    assert not at.error and at.dataframe is not None and at.subheader[0].value == "Stored runs"


def test_the_operator_sees_every_training_and_stops_one(monkeypatch, slots):
    monkeypatch.setenv(operator.TOKEN_ENV, "s3cret-token")
    release = threading.Event()
    try:
        running = blocking_job(Kind.FINETUNE, tab("student-one", "browser-one"), release)
        queued = [blocking_job(Kind.COMPARE, tab(f"student-{i}", f"browser-{i}"), release) for i in (2, 3)]
        deadline = time.monotonic() + 30
        while not (running.step and slots.position(queued[-1]) == 1) and time.monotonic() < deadline:
            time.sleep(0.01)
        at = operator_session("s3cret-token")
        at.switch_page("app_pages/operator.py").run()
        assert [t.value for t in at.title] == [OPERATOR_TITLE]
        table = at.dataframe[0].value
        assert list(table["job"]) == [running.name, queued[0].name, queued[1].name]
        assert list(table["state"]) == ["running", "running", "queued, place 1"]  # two slots
        assert list(table["session"]) == ["student-", "student-", "student-"]
        assert table["step"][0] >= 1 and table["of"][0] == 100 and table["elapsed (s)"][0] >= 0
        at.button(key=f"op_stop_{running.name}").click().run()
        assert not at.exception, at.exception
        running.wait(30)
        assert running.done and running.stopping and not any(q.stopping for q in queued)
        assert operator.rows()[0]["job"] != running.name
    finally:
        release.set()
        for job in queued:
            job.wait(30)


def test_a_refused_training_and_the_operator_page_name_the_jobs_real_kind(monkeypatch, slots):
    """The LoRA page's own finetune (named by the page, not by this test) is what a second training of the
    same person is refused for, and what the operator's page lists."""
    monkeypatch.setenv(operator.TOKEN_ENV, "s3cret-token")
    at = open_session(base_max_steps=30)
    assert train_baseline(at)["run"] is not None
    # the LoRA page's Train starts the finetune and leaves the page at once, rather than following it to its end
    monkeypatch.setattr(progress, "follow", lambda job, what, live_chart=True: st.stop())
    at.switch_page("app_pages/lora.py").run()
    at.number_input(key="lora_steps").set_value(limits.DEFAULT_MAX_STEPS).run()
    at.button(key="lora_train").click().run()
    assert not at.exception, at.exception
    (finetune,) = slots.tickets()
    try:
        at.switch_page("app_pages/inspector.py").run()
        at.button(key="insp_run").click().run()
        assert not at.exception, at.exception
        refusals = [e.value for e in at.error if e.value.startswith("Not started")]
        assert len(refusals) == 1
        assert refusals[0].startswith("Not started: you already have an adapter training (LoRA finetuning) ")
        assert [row["what"] for row in operator.rows()] == ["an adapter training (LoRA finetuning)"]
        op = operator_session("s3cret-token")
        op.switch_page("app_pages/operator.py").run()
        assert list(op.dataframe[0].value["what"]) == ["an adapter training (LoRA finetuning)"]
        assert finetune.name.startswith("finetune-")
    finally:
        finetune.stop()
        finetune.wait(60)
    assert finetune.done


def test_the_operator_deletes_a_stored_run_and_it_is_made_again_when_asked(monkeypatch, data):
    monkeypatch.setenv(operator.TOKEN_ENV, "s3cret-token")
    config = lc.BaselineConfig(hidden1=8, hidden2=8, max_steps=4, seed=6_003)
    run = lc.train_baseline(config, data)
    key = runs.key(lc.Experiment(baseline=config, seed=config.seed), Kind.BASELINE, "cpu")
    runs.store().put(key, works.baseline_record(run), run)
    at = operator_session("s3cret-token")
    at.switch_page("app_pages/operator.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    (row,) = [i for i, run_key in enumerate(table["run"]) if run_key == key]
    assert table["holds"][row] == (f"BaselineConfig(hidden1=8, hidden2=8, epochs=3, batch_size=64, lr=0.001, "
                                   f"max_steps=4, seed=6003); {len(run.losses)} steps trained")
    at.selectbox(key="op_delete_run").set_value(key).run()
    at.button(key="op_delete").click().run()
    assert not at.exception, at.exception
    assert runs.find(key) is None and not runs.store().path(key).exists()
    assert not any("run" in frame.value.columns and key in list(frame.value["run"]) for frame in at.dataframe)
