"""A server-wide limit on concurrent trainings, with a visible queue, and torch threads sized to it."""
import os
import threading
from collections import deque
from contextlib import contextmanager


def default_limit() -> int:
    return os.cpu_count() or 1


def threads_per_run(limit: int, cores: int | None = None) -> int:
    """Intra-op threads for each training so that `limit` of them together use the cores, not more."""
    return max(1, (cores or os.cpu_count() or 1) // limit)


class TrainingSlots:
    """At most `limit` holders at once; the others wait in arrival order and can see their place."""

    def __init__(self, limit: int | None = None):
        limit = default_limit() if limit is None else limit
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        self.limit = limit
        self._running: set = set()
        self._waiting: deque = deque()
        self._changed = threading.Condition()

    def __repr__(self) -> str:
        return f"TrainingSlots(limit={self.limit}, running={len(self._running)}, waiting={len(self._waiting)})"

    def running(self) -> int:
        """How many hold a slot now."""
        with self._changed:
            return len(self._running)

    def position(self, ticket) -> int:
        """0 when `ticket` holds a slot, k when k−1 others wait before it, -1 when it is in neither."""
        with self._changed:
            if ticket in self._running:
                return 0
            return self._waiting.index(ticket) + 1 if ticket in self._waiting else -1

    @contextmanager
    def slot(self, ticket, on_wait=None, cancelled=None):
        """Hold a slot for the block. While waiting, `on_wait(place)` hears the place in the queue and
        `cancelled()` can give the place up (then nothing in the block runs: raises Cancelled)."""
        with self._changed:
            self._waiting.append(ticket)
            try:
                while self._waiting[0] is not ticket or len(self._running) >= self.limit:
                    if cancelled is not None and cancelled():
                        raise Cancelled(ticket)
                    if on_wait is not None:
                        on_wait(self._waiting.index(ticket) + 1)
                    self._changed.wait(timeout=0.2)
            finally:
                self._waiting.remove(ticket)
                self._changed.notify_all()
            self._running.add(ticket)
        try:
            yield
        finally:
            with self._changed:
                self._running.discard(ticket)
                self._changed.notify_all()


class Cancelled(RuntimeError):
    """A wait for a training slot was given up."""
