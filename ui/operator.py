"""The operator's view of the server: every training running or queued, whose it is, and a Stop for each;
every run stored on disk, and a Delete for one (a run that should not be served: it is made again when asked).

It is a page of the app shown only to a session that opened the app with `?operator=TOKEN`, TOKEN being
$LORA_LAB_OPERATOR_TOKEN; without that variable there is no operator page at all. The token travels in
the URL, so serve the app over HTTPS and choose a long random token; a session that showed it once keeps
the page until it ends, and the token is taken out of the address bar.
"""
import hmac
import os
import time

import streamlit as st

from service import jobs, runs
from service.environment import log

TOKEN_ENV = "LORA_LAB_OPERATOR_TOKEN"
QUERY_KEY = "operator"
STATE_KEY = "operator_verified"


def allowed() -> bool:
    """Whether this session may see the operator page; checks a token it brings in the URL once."""
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        return False
    given = st.query_params.get(QUERY_KEY)
    if given is not None:
        del st.query_params[QUERY_KEY]  # out of the address bar, the history and links copied from it
        if hmac.compare_digest(given.encode(), token.encode()):
            st.session_state[STATE_KEY] = True
    return st.session_state.get(STATE_KEY) is True


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
