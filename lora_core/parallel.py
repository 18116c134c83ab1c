"""Several cores without changing a single number.

torch's CPU kernels split a product differently for each thread count, and a training's backward pass
then rounds differently (every gradient of a batch of 10 differs between one thread and two).
So every training, and every chunk of an evaluation, runs on one torch thread: its numbers never depend
on how busy the server was. The cores are used by running several of those at once — the chunks of an
evaluation, the runs of a study — in threads (torch releases the GIL inside its kernels).

`cores()` is how many this thread may use: a server job sets it from its training slot (`using`), a
server gives the threads that set nothing (its pages') a default (`set_default`), and otherwise it is what
torch would use.
"""
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch

_local = threading.local()
_default = []  # [provider]: the cores of a thread that set none, asked each time
_foreground = [0, 0.0]  # passes under way that someone waits for, and when the last one ended (monotonic)
_foreground_lock = threading.Lock()
FOREGROUND_GRACE_S = 1.0  # a page's work is several passes with gaps between: background work waits this long
BACKGROUND_POLL_S = 0.02  # how often a background chunk that waits looks again


def cores() -> int:
    """The cores this thread may use: as set by `using`, else the process's default (`set_default`), else
    torch's own thread count (1 in most new threads: torch's setting is per thread)."""
    return getattr(_local, "cores", None) or (_default[0]() if _default else torch.get_num_threads())


def set_default(provider) -> None:
    """`cores()` of every thread that set none becomes `provider()`, asked at each call."""
    _default[:] = [provider]


def using(n: int):
    """Inside, `cores()` is n in this thread."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"cores must be a positive integer, got {n!r}")
    return _in_this_thread("cores", n)


@contextmanager
def _in_this_thread(name: str, value):
    """Inside, this thread's setting `name` is `value`; the one before it after."""
    previous = getattr(_local, name, None)
    setattr(_local, name, value)
    try:
        yield
    finally:
        setattr(_local, name, previous)


@contextmanager
def one_thread():
    """torch on one intra-op thread in this thread (torch's setting is per thread), restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def foreground():
    """Inside, someone waits for this work (a page's own pass): `waiting()` is true."""
    with _foreground_lock:
        _foreground[0] += 1
    try:
        yield
    finally:
        with _foreground_lock:
            _foreground[0] -= 1
            _foreground[1] = time.monotonic()


def background(busy):
    """Inside, this thread's passes are work done ahead of a request: each of their chunks first waits while
    `busy()` holds (a page's pass under way, say), so that whoever waits is slowed by one chunk at most."""
    return _in_this_thread("busy", busy)


def idle_priority() -> bool:
    """From now on this thread, and every thread it starts, runs only on a core that no other work wants
    (Linux's SCHED_IDLE): for work done ahead of a request, in a thread of its own, which then never slows
    a page's own run or drawing. Whether the system allowed it (elsewhere `background`'s waits still hold)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: the calling thread, not the process
    except (AttributeError, OSError):
        return False
    return True


def waiting() -> bool:
    """Whether foreground work is under way or ended less than FOREGROUND_GRACE_S ago: background work
    (done ahead of a request) waits for it."""
    return _foreground[0] > 0 or time.monotonic() - _foreground[1] < FOREGROUND_GRACE_S


def map_ordered(work, items, workers: int | None = None) -> list:
    """[work(item) for item in items], `workers` (default `cores()`) at a time, each on one torch thread
    and one core; the results in the order of `items`, whatever order they finish in. In a thread that set
    no cores (a server's page) it is foreground work."""
    if getattr(_local, "cores", None) is None:
        with foreground():
            return _map_ordered(work, items, workers)
    return _map_ordered(work, items, workers)


def _map_ordered(work, items, workers: int | None) -> list:
    items = list(items)
    workers = min(workers or cores(), len(items))
    busy = getattr(_local, "busy", None)  # set by `background`, in the calling thread

    def call(item):
        while busy is not None and busy():
            time.sleep(BACKGROUND_POLL_S)
        with one_thread(), using(1):
            return work(item)

    if workers <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="lora-lab worker") as pool:
        return list(pool.map(call, items))
