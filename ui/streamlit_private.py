"""The only place LoRA Lab reaches past Streamlit's public API, and why.

The sweep in service.sessions frees the models of sessions that closed or idled. Streamlit has no public way to
reach a session from outside its own script run, nor to ask whether its tab is still connected, so this
module uses three internals (checked against Streamlit 1.67 by tests/test_streamlit_private.py, which
fails with the reason when an upgrade changes one of them):

- the running script's context (`get_script_run_ctx`) and, in it, the session's id and its state object;
- that state object's `filtered_state`: the user's keys and their values, readable from another thread
  under the state's own lock (`st.session_state` only answers inside the session's script run);
- the runtime's `is_active_session`: whether a session's websocket is still open.

Everything else the app does with sessions goes through `st.session_state`.
"""
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx


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
