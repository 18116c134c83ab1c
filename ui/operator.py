"""The operator's view of the server: every training running or queued, whose it is, and a Stop for each;
every run stored on disk, and a Delete for one (a run that should not be served: it is made again when asked).

It exists only where $LORA_LAB_OPERATOR_TOKEN is set, at /operator, behind a sign-in form: the token is typed,
never put in a URL (an address stays in the browser's history and in links copied from it). Wrong tries are
logged and, past MAX_WRONG in WINDOW_S on the whole server, every try waits out the window: guessing a long
random token is then hopeless. A session that signed in keeps the page until it ends.
"""
import hmac
import os
import threading
import time

import streamlit as st

from service import jobs, runs
from service.environment import log

TOKEN_ENV = "LORA_LAB_OPERATOR_TOKEN"
QUERY_KEY = "operator"  # an old link's ?operator=…: taken out of the address and never checked
STATE_KEY = "operator_verified"
MAX_WRONG, WINDOW_S = 5, 60.0
_wrong: list[float] = []  # the times of the server's recent wrong tries
_wrong_lock = threading.Lock()


def enabled() -> bool:
    """Whether this server has an operator page at all."""
    return bool(os.environ.get(TOKEN_ENV, ""))


def allowed() -> bool:
    """Whether this session signed in as the operator (and the server still has a token)."""
    if st.query_params.get(QUERY_KEY) is not None:
        del st.query_params[QUERY_KEY]  # a token in a URL is never accepted: it would stay in the history
    return enabled() and st.session_state.get(STATE_KEY) is True


def sign_in(given: str, now: float | None = None) -> str | None:
    """Check a typed token: None when it is right (this session is then the operator's), else why not."""
    now = time.monotonic() if now is None else now
    with _wrong_lock:
        _wrong[:] = [t for t in _wrong if now - t < WINDOW_S]
        if len(_wrong) >= MAX_WRONG:
            wait = WINDOW_S - (now - _wrong[0])
            log.warning("LoRA Lab operator: sign-in refused, %d wrong tries in %.0f s", len(_wrong),
                                    WINDOW_S)
            return f"Too many wrong tries on this server: try again in {wait:.0f} s."
        if enabled() and hmac.compare_digest(given.encode(), os.environ[TOKEN_ENV].encode()):
            st.session_state[STATE_KEY] = True
            return None
        _wrong.append(now)
        log.warning("LoRA Lab operator: wrong token tried (%d in the last %.0f s)", len(_wrong),
                                WINDOW_S)
    return "That is not the operator's token."


def _owner(job, kind: str) -> str:
    return ", ".join(name[:8] for k, name in job.owners if k == kind) or "—"


def rows(now: float | None = None) -> list[dict]:
    """One row per training running or queued: the running ones oldest first, then the queue in its order."""
    now = time.monotonic() if now is None else now
    places = {job: jobs.SLOTS.position(job) for job in jobs.SLOTS.tickets()}
    found = []
    for job in sorted(places, key=lambda job: (places[job], job.created)):
        place = places[job]
        found.append({
            "job": job.name, "what": job.kind.described,
            "state": ("stopping" if job.stopping else "running" if place == 0 else f"queued, place {place}"),
            "step": job.step, "of": job.total, "elapsed (s)": round(now - job.created, 1),
            "session": _owner(job, "session"), "browser": _owner(job, "browser"),
            "followers": len(job.watchers),
        })
    return found


def stop(name: str) -> bool:
    """Stop the training called `name` (between two steps, or before it leaves the queue)."""
    for job in jobs.SLOTS.tickets():
        if job.name == name:
            job.stop()
            return True
    return False


def stored(limit: int = 500) -> list[dict]:
    """The runs on disk, most recently used first (at most `limit`): key, what they hold, size, last use."""
    store = runs.store()
    return [{"run": key, "holds": store.summary(key), "size (MB)": round(size / 2**20, 2),
             "last used": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(used))}
            for key, size, used in store.files()[:limit]]


def delete(key: str) -> bool:
    """Delete the stored run `key` from memory and disk; whether it was on disk."""
    deleted = runs.store().delete(key)
    log.warning("LoRA Lab operator: stored run %s deleted", key[:12])
    return deleted
