"""What of a server's sessions reads Streamlit's runtime: the session whose script runs in this thread, its
browser, and each run's start and end told to the sessions' bookkeeping (service.sessions), which this module
gives the two Streamlit internals it needs (ui/streamlit_private.py)."""
import streamlit as st
from streamlit.logger import get_logger

from lora_core import parallel
from service import jobs, sessions, startup
from ui import streamlit_private

log = get_logger("lora_lab")  # Streamlit's handler and level, for service/'s messages too
NOTE_KEY = "server_note"  # a message for the session's next run (app.py shows it)
ANCHOR_KEY = "server_anchor"

SESSIONS = sessions.Sessions(streamlit_private.is_connected, streamlit_private.state_items)
jobs.connect(SESSIONS.owners_of, SESSIONS.track)


def setup() -> None:
    """First thing in every script run: this run's thread computes subnormal floats as zero, as lora_core's
    own threads do (each Streamlit run has a thread of its own); and once per server process, the startup
    (service.startup)."""
    parallel.flush_subnormals()
    startup.setup(SESSIONS)


def current_session_id() -> str | None:
    """The app's id of the session whose script runs in this thread, if any (also from a job's thread:
    none runs a script, so None there)."""
    run = streamlit_private.script_run()
    if run is None:
        return None
    try:
        return streamlit_private.session_state(run)["session_id"]
    except KeyError:
        return None


def run_started() -> str | None:
    """At the start of every run, after ui.state.init(): hands the sweep's note over; the id for run_finished."""
    run = streamlit_private.script_run()
    session_id = current_session_id()
    if run is None or session_id is None:
        return None
    state = streamlit_private.session_state(run)
    anchor = state[ANCHOR_KEY] if ANCHOR_KEY in state else None
    if not isinstance(anchor, sessions.Anchor):  # once per session: every run's state object leads to the same state
        anchor = state[ANCHOR_KEY] = sessions.Anchor(state)
    if anchor.note is not None:
        state[NOTE_KEY], anchor.note = anchor.note, None
    SESSIONS.started(session_id, streamlit_private.session_id(run), anchor, browser_id())
    return session_id


XSRF_COOKIE = "_streamlit_xsrf"  # Streamlit's; version 2 reads "2|mask|masked token|time", all hex but time


def browser_id() -> str | None:
    """A short name for the browser this session's tab runs in; None when it cannot be told.

    Streamlit sets its XSRF cookie once per browser and keeps its token: every tab sends the same token
    (masked afresh), so the unmasked token names the browser, and its hash is kept, not the token. A private
    window or cleared cookies make a new browser; with server.enableXsrfProtection off there is no cookie,
    and per-person limits hold per tab only. The client's address is not used: a class behind one router or
    proxy shares it, and st.context.ip_address is None on localhost.
    """
    return sessions.browser_of_cookie(st.context.cookies.get(XSRF_COOKIE, ""))


def run_finished(session_id: str | None) -> None:
    if session_id is not None:
        SESSIONS.finished(session_id)
