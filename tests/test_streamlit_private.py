"""What ui/streamlit_private.py relies on inside Streamlit, each checked on the installed release.

Streamlit does not promise these internals; a new release may move or change them. When one of these
tests fails after an upgrade, the sweep in service/sessions.py (freeing closed and idle sessions' models) no
longer works as written: adapt ui/streamlit_private.py, not the sweep. The message says what changed.
"""
import inspect
import logging
import threading

import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from ui import streamlit_private

UPGRADE = f"(Streamlit {streamlit.__version__}; ui/streamlit_private.py was written for 1.67)"


def _script():  # runs inside AppTest: hands the run's context to the test, through a module attribute
    import streamlit as st

    from ui import streamlit_private

    st.session_state["kept"] = 1
    st.session_state["model"] = "stands for a model"
    st.number_input("keyed widget", key="keyed", value=3)
    st.number_input("keyless widget", value=4)
    streamlit_private.last_run = streamlit_private.script_run()


@pytest.fixture
def run():
    """The context of a finished AppTest run, and its session as AppTest sees it."""
    at = AppTest.from_function(_script).run()
    assert not at.exception, at.exception
    found = getattr(streamlit_private, "last_run", None)
    assert found is not None, f"script_run() found no context inside a script run {UPGRADE}"
    yield found, at
    del streamlit_private.last_run


class StreamlitWarnings(logging.Handler):
    """Every warning any Streamlit logger emits meanwhile (they do not propagate to the root logger)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        self.loggers = [logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict)
                        if name.split(".")[0] == "streamlit"]
        for logger in self.loggers:
            logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        for logger in self.loggers:
            logger.removeHandler(self)


def test_outside_a_script_run_there_is_no_context_and_no_warning():
    with StreamlitWarnings() as warned:
        assert streamlit_private.script_run() is None
    assert not warned.records, f"get_script_run_ctx(suppress_warning=True) warned {UPGRADE}"
    parameters = inspect.signature(streamlit_private.get_script_run_ctx).parameters
    assert "suppress_warning" in parameters, f"get_script_run_ctx lost its suppress_warning flag {UPGRADE}"


def test_a_run_gives_its_session_id_and_a_state_readable_from_another_thread(run):
    context, at = run
    assert isinstance(streamlit_private.session_id(context), str) and streamlit_private.session_id(context), (
        f"the script run context no longer carries the session's id {UPGRADE}")
    state = streamlit_private.session_state(context)
    seen, failures = {}, []

    def sweep_like():  # the sweep's thread: no script run here
        try:
            seen["items"] = dict(streamlit_private.state_items(state))
            seen["has model"] = "model" in state
            del state["model"]
            seen["after"] = dict(streamlit_private.state_items(state))
        except Exception as err:  # reported below, with the reason
            failures.append(err)

    with StreamlitWarnings() as warned:
        thread = threading.Thread(target=sweep_like)
        thread.start()
        thread.join(30)
    assert not thread.is_alive(), f"reading a session's state from another thread hung {UPGRADE}"
    assert not failures, f"a session's state can no longer be read or changed from another thread: " \
                         f"{failures[0]!r} {UPGRADE}"
    assert seen["items"] == {"kept": 1, "model": "stands for a model", "keyed": 3}, (
        f"state_items no longer gives exactly the user's keys (keyless widgets left out) {UPGRADE}")
    assert seen["has model"] and seen["after"] == {"kept": 1, "keyed": 3}, f"deleting a key had no effect {UPGRADE}"
    assert "model" not in at.session_state, f"the run's state object is not the session's state {UPGRADE}"
    assert not warned.records, (f"reading the state from another thread now logs {warned.records[0].getMessage()!r}"
                                f" {UPGRADE}")


def test_without_a_server_nobody_can_tell_if_a_session_is_connected():
    assert streamlit_private.is_connected("no such session") is None


def test_the_runtime_still_answers_whether_a_session_is_active():
    from streamlit.runtime import Runtime

    method = getattr(Runtime, "is_active_session", None)
    assert callable(method), f"Runtime.is_active_session is gone {UPGRADE}"
    assert list(inspect.signature(method).parameters) == ["self", "session_id"], (
        f"Runtime.is_active_session takes other arguments now {UPGRADE}")


def test_the_header_stop_raises_stopexception_and_a_session_can_be_rerun_from_the_event_loop():
    """redrawn_after_header_stop: what Streamlit's header Stop raises in the script, and the AppSession parts
    that rerun the page with the browser's last state once the stopped run has ended."""
    from streamlit.runtime.app_session import AppSession
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException
    from streamlit.runtime.session_manager import SessionManager

    stop = inspect.getsource(streamlit.runtime.scriptrunner.script_runner.ScriptRunner)
    assert "raise StopException()" in stop, f"a stop request no longer raises StopException in the script {UPGRADE}"
    assert list(inspect.signature(SessionManager.get_active_session_info).parameters) == ["self", "session_id"], (
        f"SessionManager.get_active_session_info takes other arguments now {UPGRADE}")
    made = inspect.getsource(AppSession.__init__)
    for attribute in ("self._event_loop", "self._client_state", "self._scriptrunner"):
        assert attribute in made, f"AppSession no longer has {attribute} {UPGRADE}"
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner

    assert callable(getattr(ScriptRunner, "_is_in_script_thread", None)), (
        f"ScriptRunner._is_in_script_thread is gone {UPGRADE}")
    assert list(inspect.signature(AppSession.request_rerun).parameters) == ["self", "client_state"], (
        f"AppSession.request_rerun takes other arguments now {UPGRADE}")
    ended = inspect.getsource(AppSession._handle_scriptrunner_event_on_event_loop)
    assert "self._scriptrunner = None" in ended and "self._client_state = client_state" in ended, (
        f"an ended run no longer clears the session's runner and keeps its client state {UPGRADE}")
    runtime_made = inspect.getsource(streamlit.runtime.Runtime.__init__)
    assert "self._session_mgr" in runtime_made, f"Runtime._session_mgr is gone {UPGRADE}"

    with pytest.raises(StopException):  # outside a server (here, AppTest's too) it only lets the Stop through
        with streamlit_private.redrawn_after_header_stop():
            raise StopException()


def test_a_widget_of_a_running_fragment_waits_for_its_run_and_newer_run_waiting_sees_it(monkeypatch):
    """Why newer_run_waiting exists (Streamlit does not cut a fragment's run short for it) and what it reads."""
    from types import SimpleNamespace

    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

    requests = ScriptRequests()
    run = SimpleNamespace(script_requests=requests)
    monkeypatch.setattr(streamlit_private, "script_run", lambda: run)
    assert not streamlit_private.newer_run_waiting(), f"a new ScriptRequests has a request pending {UPGRADE}"
    assert requests.request_rerun(RerunData(fragment_id="the slider's fragment"))
    assert requests.on_scriptrunner_yield() is None, (
        f"a fragment's widget now cuts the running pass short: newer_run_waiting may be unneeded {UPGRADE}")
    assert streamlit_private.newer_run_waiting(), f"a pending rerun no longer shows in ScriptRequests._state {UPGRADE}"
    monkeypatch.setattr(streamlit_private, "script_run", lambda: None)
    assert not streamlit_private.newer_run_waiting()
