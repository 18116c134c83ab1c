"""A server-wide limit on concurrent trainings, with a visible queue, a limit per person, and torch threads
sized to it."""
import os
import threading
from collections import deque
from contextlib import contextmanager


def default_limit() -> int:
    return os.cpu_count() or 1


def threads_per_run(limit: int, cores: int | None = None) -> int:
    """Intra-op threads for each training so that `limit` of them together use the cores, not more."""
    return max(1, (cores or os.cpu_count() or 1) // limit)


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class TrainingSlots:
    """At most `limit` holders at once; the others wait in arrival order and can see their place.

    A ticket may first be `admit`ted for its owners (a session, a browser): no owner has more than
    `per_owner` tickets admitted, running or waiting, so that two tabs of one person cannot take two slots
    while someone else waits. The admission ends when the ticket leaves its slot, or its owner `disown`s it.
    """

    def __init__(self, limit: int | None = None, per_owner: int | None = None):
        limit = default_limit() if limit is None else limit
        _check_positive("limit", limit)
        if per_owner is not None:
            _check_positive("per_owner", per_owner)
        self.limit, self.per_owner = limit, per_owner
        self._running: set = set()
        self._waiting: deque = deque()
        self._owners: dict = {}  # admitted ticket → its owners
        self._changed = threading.Condition()

    def __repr__(self) -> str:
        return (f"TrainingSlots(limit={self.limit}, per_owner={self.per_owner}, running={len(self._running)}, "
                f"waiting={len(self._waiting)})")

    def admit(self, ticket, owners) -> None:
        """Count `ticket` against each of `owners`; raise Busy, admitting nothing, when one already holds
        `per_owner` tickets."""
        owners = frozenset(owners)
        with self._changed:
            if self.per_owner is not None:
                for owner in owners:
                    held = [t for t, its in self._owners.items() if owner in its]
                    if len(held) >= self.per_owner:
                        raise Busy(owner, held)
            self._owners[ticket] = owners

    def disown(self, ticket, owners) -> None:
        """`owners` no longer answer for `ticket` (it may run on for others)."""
        with self._changed:
            if ticket in self._owners:
                self._owners[ticket] = self._owners[ticket] - frozenset(owners)

    def held_by(self, owner) -> list:
        with self._changed:
            return [t for t, its in self._owners.items() if owner in its]

    def tickets(self) -> list:
        """Every ticket running, then every one waiting in its order."""
        with self._changed:
            return list(self._running) + list(self._waiting)

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
                while True:
                    # Stop is looked at before the slot is taken too: given up as the slot frees, it runs nothing
                    if cancelled is not None and cancelled():
                        raise Cancelled(ticket)
                    if self._waiting[0] is ticket and len(self._running) < self.limit:
                        break
                    if on_wait is not None:
                        on_wait(self._waiting.index(ticket) + 1)
                    self._changed.wait(timeout=0.2)
            except BaseException:
                self._owners.pop(ticket, None)  # it never ran: its owners are free at once
                raise
            finally:
                self._waiting.remove(ticket)
                self._changed.notify_all()
            self._running.add(ticket)
        try:
            yield
        finally:
            self.leave(ticket)

    def leave(self, ticket) -> None:
        """`ticket` is done: its slot and its admission are free (also for a ticket admitted but never run)."""
        with self._changed:
            self._running.discard(ticket)
            self._owners.pop(ticket, None)
            self._changed.notify_all()


class Cancelled(RuntimeError):
    """A wait for a training slot was given up."""


class Busy(RuntimeError):
    """An owner already holds as many tickets as one owner may."""

    def __init__(self, owner, held: list):
        super().__init__(f"{owner!r} already holds {len(held)} ticket(s)")
        self.owner, self.held = owner, held
