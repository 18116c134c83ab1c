"""Several cores without changing a single number.

MKL, torch's matrix products on the CPU, cuts a product's sum among its threads, so by default the same
training on one thread and on two rounds differently. Its strict "conditional numerical reproducibility" mode
(`STRICT_PRODUCTS`, turned on here before torch's first product) keeps each sum's order whatever the thread
count; every other kernel of a training is elementwise or sums in an order fixed by the shapes. A training
therefore runs each step on as many of its cores as help (`ThreadPicker`: fewer when another process holds
one), and its numbers are the same on any number of them. Where that mode is not there (another BLAS, or a
product ran before lora_core was imported) a training keeps to one thread: slower, never different.

Subnormal floats (below 1.2e-38) are computed as zero (`flush_subnormals`, turned on here for the importing
thread): late in a training a confident softmax gives gradients that small, their squares in Adam smaller
still, and this CPU computes each of those up to a hundred times slower than a normal float. The flag is a
thread's, inherited by the threads it starts (torch's own workers among them), so the server's script runs
set it too (ui.server).

The chunks of an evaluation and the runs of a study (`map_ordered`) each run on one torch thread, several at
once in threads (torch releases the GIL inside its kernels).

`cores()` is how many this thread may use: a server job sets it from its training slot (`using`), a
server gives the threads that set nothing (its pages') a default (`set_default`), and otherwise it is what
torch would use.
"""
import ctypes
import math
import os
import threading
import time
from collections import deque
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
    own = getattr(_local, "cores", None)
    if own is not None:
        return own() if callable(own) else own
    return _default[0]() if _default else torch.get_num_threads()


def set_default(provider) -> None:
    """`cores()` of every thread that set none becomes `provider()`, asked at each call."""
    _default[:] = [provider]


def using(n):
    """Inside, `cores()` is n in this thread; or n(), asked at each call (a training slot's share, which
    changes as other trainings start and end)."""
    if not callable(n) and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
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


_MKL_STRICT, _MKL_AUTO = 0x10000, 2  # mkl_service.h: MKL_CBWR_STRICT, MKL_CBWR_AUTO (this CPU's fastest code)


def _strict_products() -> bool:
    """Turns MKL's strict reproducibility on (unless MKL_CBWR in the environment chose a mode) and says
    whether it is on. MKL is linked into torch's CPU library; it takes the setting only before its first
    product (the call then fails, and this says False)."""
    try:
        mkl = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        get, set_mode = mkl.mkl_serv_cbwr_get, mkl.mkl_serv_cbwr_set
    except (OSError, AttributeError):  # not an MKL build of torch
        return False
    if "MKL_CBWR" not in os.environ:
        set_mode(ctypes.c_int(_MKL_AUTO | _MKL_STRICT))
    return bool(get(ctypes.c_int(-1)) & _MKL_STRICT)


STRICT_PRODUCTS = _strict_products()


class ThreadPicker:
    """How many torch threads each step of a training uses: all its `cores` (a number, or a function asked
    before every step: a server's training gets every core while alone, and one from the step after another
    training starts) while its steps keep their pace there; one for the next BACK_OFF_STEPS once the median of
    the last RECENT steps on all of them is SLOW times the fastest of their batch size, which means another
    process holds one of the cores (torch's threads wait for each other at every kernel: a step on two
    contended cores took 5–10× one on a single core). A single slow step (a page fault, a timer) does not
    count. The numbers are the same either way (STRICT_PRODUCTS); without strict products it is always one
    thread."""
    SLOW = 2.0
    RECENT = 5
    BACK_OFF_STEPS = 50

    def __init__(self, cores):
        self.cores = cores if STRICT_PRODUCTS else 1
        self.fastest: dict[int, float] = {}  # batch size → seconds of its fastest step on all the cores
        self.recent: deque[float] = deque(maxlen=self.RECENT)  # the last steps' seconds / their size's fastest
        self.single_left = 0  # steps still to run on one thread

    def threads(self) -> int:
        allowed = self.cores() if callable(self.cores) else self.cores
        if self.single_left and allowed > 1:
            self.single_left -= 1
            return 1
        return allowed

    def took(self, threads: int, batch_size: int, seconds: float) -> None:
        """A step of `batch_size` examples on `threads` threads took `seconds`."""
        if threads > 1:
            fastest = self.fastest[batch_size] = min(self.fastest.get(batch_size, math.inf), seconds)
            self.recent.append(seconds / fastest)
            if len(self.recent) == self.RECENT and sorted(self.recent)[self.RECENT // 2] > self.SLOW:
                self.single_left, self.recent = self.BACK_OFF_STEPS, deque(maxlen=self.RECENT)

    @contextmanager
    def step(self, batch_size: int):
        """Inside, torch runs on the threads picked for this step (restored after); its time is noted."""
        threads, previous = self.threads(), torch.get_num_threads()
        torch.set_num_threads(threads)
        started = time.perf_counter()
        try:
            yield
        finally:
            torch.set_num_threads(previous)
            self.took(threads, batch_size, time.perf_counter() - started)


def flush_subnormals() -> None:
    """This thread, and every thread it starts from now on, computes subnormal floats as zero (the CPU's
    flush-to-zero and denormals-are-zero modes; where the CPU has none, nothing changes)."""
    torch.set_flush_denormal(True)


flush_subnormals()
