"""The only place LoRA Lab reaches past Streamlit's public API, and why.

The sweep in service.sessions frees the models of sessions that closed or idled. Streamlit has no public way to
reach a session from outside its own script run, nor to ask whether its tab is still connected, so this
module uses three internals (checked against Streamlit 1.67 by tests/test_streamlit_private.py, which
fails with the reason when an upgrade changes one of them):

- the running script's context (`get_script_run_ctx`) and, in it, the session's id and its state object;
- that state object's `filtered_state`: the user's keys and their values, readable from another thread
  under the state's own lock (`st.session_state` only answers inside the session's script run);
- the runtime's `is_active_session`: whether a session's websocket is still open;
- Streamlit's `StopException` (what its header Stop raises in the script), the session's `AppSession` (its
  runner, its last client state and its event loop) and `request_rerun`: the page is drawn again after that
  Stop, as Streamlit redraws a page whose source file changed (`runner.runOnSave`). The Stop ends a pass that
  follows a run, never the run; without this the page stays frozen until the next widget click;
- the script run's pending requests (`ScriptRequests`' state): whether the browser asked for a newer run that
  waits for this one. Streamlit never cuts a fragment's run short for a widget of that fragment, so the
  frontier's slider would wait for the full pass of a value it has left (`newer_run_waiting`).

Everything else the app does with sessions goes through `st.session_state`.
"""
import time
from contextlib import contextmanager

from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType

REDRAW_WITHIN_S = 30.0  # how long a stopped pass may take to end before its page is left as it is


def script_run():
    """The context of the script run in this thread, or None outside one (never a warning)."""
    return get_script_run_ctx(suppress_warning=True)


def session_id(run) -> str:
    """Streamlit's id of the session `run` belongs to (what `is_connected` asks about)."""
    return run.session_id


def session_state(run):
    """The state object of `run`'s session, which stays usable from other threads after the run: reading
    and deleting keys (`in`, `[]`, `del`) and `state_items`. Writing from another thread logs Streamlit's
    missing-context warning, so the sweep never writes."""
    return run.session_state


def state_items(state) -> dict:
    """Every user key of a session's state and its value (keyless widgets left out)."""
    return state.filtered_state


def is_connected(streamlit_session_id: str) -> bool | None:
    """Whether the session's tab is still connected; None without a server (AppTest, a bare script)."""
    if not runtime.exists():
        return None
    return runtime.get_instance().is_active_session(streamlit_session_id)


@contextmanager
def redrawn_after_header_stop():
    """Draw the page again (on its own, no click) when Streamlit's header Stop ends this pass inside. (`st.stop()`
    raises the same exception: nothing inside may call it, or the page would be drawn again and again.)"""
    try:
        yield
    except StopException:
        if (run := script_run()) is not None and runtime.exists():
            _redraw_when_ended(run.session_id)
        raise


def _redraw_when_ended(streamlit_session_id: str) -> None:
    """Once the session's stopped run has ended, rerun its page with the browser's last state (its page,
    query and widgets), on the server's event loop, where Streamlit handles its sessions' runs; only while the
    browser is still connected, and only when nothing else asked for a run: a click stops the running pass
    the same way (Streamlit's fast reruns) and starts its own, and a closed or reloaded tab stops it too."""
    manager = getattr(runtime.get_instance(), "_session_mgr", None)  # none in AppTest's stand-in runtime
    info = None if manager is None else manager.get_active_session_info(streamlit_session_id)
    stopped = None if info is None else info.session._scriptrunner
    if stopped is None or not stopped._is_in_script_thread():  # a newer run is on its way already
        return
    session, deadline = info.session, time.monotonic() + REDRAW_WITHIN_S

    def when_ended():
        if session._scriptrunner is stopped and time.monotonic() < deadline:
            session._event_loop.call_later(0.05, when_ended)
        elif session._scriptrunner is None and manager.get_active_session_info(streamlit_session_id) is not None:
            session.request_rerun(session._client_state)

    session._event_loop.call_soon_threadsafe(when_ended)


def newer_run_waiting() -> bool:
    """Whether this session's browser asked for another run (a widget moved, its Stop) that waits for the
    script run in this thread to end; False outside a script run."""
    run = script_run()
    requests = None if run is None else run.script_requests
    return requests is not None and requests._state is not ScriptRequestType.CONTINUE
