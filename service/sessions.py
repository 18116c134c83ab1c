"""Every session a server has seen, and the sweep that ends what closed sessions left running and frees the
models of sessions left idle. No Streamlit: ui.server tells it how to read a session's state and whether its
tab is connected (ui/streamlit_private.py).

Streamlit keeps a closed tab's session (and its `st.session_state`) for `server.disconnectedSessionTTL`
seconds, then drops it; but a training thread the session started would run on, and anything server-wide
that names the session would stay. The sweep (service.startup, every SWEEP_S seconds) looks at every session
this module has seen:
- closed (its websocket gone) for CLOSED_GRACE_S: its jobs are released (a job nobody follows any more
  stops between two steps), its models freed, and it is forgotten;
- open but idle (no run for `idle_s()`, no job running): its models are freed and it is told so on its
  next run;
- never tied to a Streamlit session (a session id used outside a page) and not seen for `idle_s()`:
  released and forgotten.
"""
import dataclasses
import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Callable

import torch
from torch import nn

from service.environment import number as env_number

log = logging.getLogger("lora_lab")  # ui.server gives it Streamlit's handler


IDLE_ENV = "LORA_LAB_IDLE_MINUTES"  # an open tab unused this long gives its models back (default 60)
DEFAULT_IDLE_MINUTES = 60
CLOSED_GRACE_S = env_number("LORA_LAB_CLOSED_GRACE_S", 30.0, float, low=0)  # a reload reconnects sooner


def idle_s() -> float:
    return 60 * env_number(IDLE_ENV, DEFAULT_IDLE_MINUTES, float, low=0.01)


def holds_model(value, depth: int = 0) -> bool:
    """Whether a session_state value holds an nn.Module (the only big thing a session keeps), looking
    through containers, dataclasses and this app's own objects a few levels deep."""
    if isinstance(value, nn.Module):
        return True
    if depth >= 4 or isinstance(value, (str, bytes, torch.Tensor)):
        return False
    if isinstance(value, dict):
        return any(holds_model(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple, set)):
        return any(holds_model(v, depth + 1) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(holds_model(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    if type(value).__module__.split(".")[0] in ("lora_core", "ui") and hasattr(value, "__dict__"):
        return any(holds_model(v, depth + 1) for v in vars(value).values())
    return False


def free_models(anchor: "Anchor", note: str, state_items: Callable[[object], dict]) -> int:
    """Delete every entry of a session's state that holds a model (`state_items(state)`: its keys and
    values); leave `note` for its next run."""
    state = anchor.state
    keys = [key for key, value in state_items(state).items() if holds_model(value)]
    for key in keys:
        try:
            del state[key]
        except KeyError:  # gone meanwhile
            pass
    if keys:
        anchor.note = note  # not written into the state: only the session's own run writes there
    return len(keys)


class Anchor:
    """Kept in a session's own state, known here by a weak reference: it lives exactly as long as the
    state does, and leads to it (Streamlit's session state cannot be weakly referenced itself). It also
    carries the sweep's note to the session's next run."""
    __slots__ = ("state", "note", "__weakref__")

    def __init__(self, state):
        self.state, self.note = state, None


@dataclasses.dataclass(eq=False)
class Session:
    id: str  # the app's own id for this user (ui.state), which shared jobs know their watchers by
    streamlit_id: str | None = None
    anchor: weakref.ref | None = None  # to the session's state, without keeping it alive
    last_seen: float = dataclasses.field(default_factory=time.monotonic)  # start or end of its last run
    browser: str | None = None  # the browser its tab runs in (browser_id), when known
    running: int = 0  # runs in progress (a fast rerun can start before the previous one has ended)
    away_since: float | None = None  # when the sweep first found its websocket closed
    jobs: weakref.WeakSet = dataclasses.field(default_factory=weakref.WeakSet)

    def live_jobs(self) -> list:
        return [job for job in list(self.jobs) if not job.done]

    def held_anchor(self) -> "Anchor | None":
        return self.anchor() if self.anchor is not None else None


class Sessions:
    """Every session this server has seen, by the app's session id. `connected(streamlit_id)`: whether a
    session's tab is still connected (None when nobody can tell); `state_items(state)`: a session's state,
    read from another thread."""

    def __init__(self, connected: Callable[[str], bool | None], state_items: Callable[[object], dict]):
        self._connected, self._state_items = connected, state_items
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}
        self._ended: list[weakref.ref] = []  # anchors of ended sessions, to see Streamlit drop them

    def __repr__(self) -> str:
        return f"Sessions({len(self._by_id)})"

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, session_id: str) -> Session | None:
        return self._by_id.get(session_id)

    def started(self, session_id: str, streamlit_id: str | None, anchor: Anchor | None,
                browser: str | None = None) -> None:
        """A run of this session begins (from the script thread)."""
        with self._lock:
            s = self._by_id.setdefault(session_id, Session(session_id))
            s.streamlit_id, s.last_seen, s.away_since = streamlit_id, time.monotonic(), None
            s.browser = browser or s.browser
            s.running += 1
            if anchor is not None:
                s.anchor = weakref.ref(anchor)

    def finished(self, session_id: str) -> None:
        with self._lock:
            s = self._by_id.get(session_id)
            if s is not None:
                s.running = max(0, s.running - 1)
                s.last_seen = time.monotonic()

    def track(self, session_id: str, job) -> None:
        """`session_id` follows `job`: when the session ends, `job.release(session_id)` is called."""
        with self._lock:
            self._by_id.setdefault(session_id, Session(session_id)).jobs.add(job)

    def alive(self, session_id: str) -> bool | None:
        """Whether this session's tab is still connected (None when nobody can tell)."""
        s = self.get(session_id)
        return None if s is None else self._alive(s)

    def _alive(self, s: Session) -> bool | None:
        """True while its websocket is open, False once it is gone, None when nobody can tell."""
        connected = self._connected(s.streamlit_id) if s.streamlit_id is not None else None
        if connected is not None:
            return connected
        if s.anchor is not None:  # no server (AppTest): the session lives as long as its state
            return s.anchor() is not None
        return None

    def sweep(self, now: float | None = None, idle: float | None = None) -> dict[str, int]:
        """One pass over every session (see the module's docstring). Returns what it did, for the log."""
        now, idle = time.monotonic() if now is None else now, idle_s() if idle is None else idle
        done = {"ended": 0, "released": 0, "freed": 0}
        with self._lock:
            sessions = list(self._by_id.values())
        for s in sessions:
            alive = self._alive(s)
            s.away_since = (s.away_since or now) if alive is False else None  # None again after a reconnect
            closed = alive is False and now - s.away_since >= CLOSED_GRACE_S
            if closed or (alive is None and now - s.last_seen >= idle):
                done["released"] += self._end(s)
                done["ended"] += 1
            elif alive and not s.running and now - s.last_seen >= idle and not s.live_jobs():
                anchor = s.held_anchor()
                if anchor is not None and free_models(anchor, IDLE_NOTE.format(minutes=round(idle / 60)),
                                                           self._state_items):
                    done["freed"] += 1
        return done

    def _end(self, s: Session) -> int:
        followed = list(s.jobs)
        for job in followed:
            job.release(s.id)  # a job this session alone followed stops between two steps
            log.info("LoRA Lab: session %s ended; released %r", s.id[:8], job)
        anchor = s.held_anchor()
        if anchor is not None:  # a closed tab's state lingers in Streamlit until disconnectedSessionTTL
            free_models(anchor, CLOSED_NOTE, self._state_items)
        with self._lock:
            if self._by_id.get(s.id) is s:
                del self._by_id[s.id]
            if s.anchor is not None and s.anchor() is not None:
                self._ended.append(s.anchor)
        return len(followed)

    def owners_of(self, session_id: str | None) -> tuple:
        """Whom a training started by `session_id` counts against (service.limits): the session, and its
        browser when known (browser_id)."""
        if session_id is None:
            return ()
        session = self.get(session_id)
        browser = session.browser if session is not None else None
        return (("session", session_id),) + ((("browser", browser),) if browser else ())

    def lingering(self) -> int:
        """Ended sessions whose state Streamlit still holds (it drops them after disconnectedSessionTTL)."""
        with self._lock:
            self._ended = [ref for ref in self._ended if ref() is not None]
            return len(self._ended)


IDLE_NOTE = ("Your trained models were cleared after {minutes} minutes without activity, to keep the "
             "server's memory for the others. Your settings are kept: train again to see results.")
CLOSED_NOTE = ("This tab was disconnected for a while, so its training was stopped and its trained models "
               "were cleared. Your settings are kept: train again to see results.")


def browser_of_cookie(value) -> str | None:
    """The browser's name from its XSRF cookie: the token, unmasked and hashed; None when unreadable."""
    if not isinstance(value, str):  # e.g. AppTest, which has no cookies
        return None
    value = value.strip("\"'")
    parts = value.split("|")
    try:
        if len(parts) == 4 and parts[0] == "2":
            mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
            token = bytes(b ^ mask[i % len(mask)] for i, b in enumerate(masked))
        else:  # version 1: the token itself
            token = value.encode()
    except (ValueError, ZeroDivisionError):  # not hex, or an empty mask: a cookie we cannot read
        return None
    return hashlib.sha256(token).hexdigest()[:16] if token else None
