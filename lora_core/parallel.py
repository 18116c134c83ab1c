"""Several cores without changing a single number.

torch's CPU matrix products split their sums differently for each thread count (MKL cuts the inner
dimension among its threads), so the same training run on one thread and on two rounds differently. Every
computation here therefore has a split that depends on the shapes alone, never on the cores that run it:

- a training's large products (`fixed_split`) are cut into PRODUCT_CHUNKS blocks of rows or columns, never
  along the sum, each block a one-thread product; the blocks run on the cores the training has, in any order,
  and land in their own place of the result. Its optimizer's update is elementwise: it runs on every core
  (on one when the machine is busy: the same bits, faster there).
- the chunks of an evaluation, the runs of a study (`map_ordered`) each run on one torch thread, several at
  once in threads (torch releases the GIL inside its kernels).

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
from torch.utils._python_dispatch import TorchDispatchMode

_local = threading.local()
_default = []  # [provider]: the cores of a thread that set none, asked each time
_foreground = [0, 0.0]  # passes under way that someone waits for, and when the last one ended (monotonic)
_foreground_lock = threading.Lock()
FOREGROUND_GRACE_S = 1.0  # a page's work is several passes with gaps between: background work waits this long
BACKGROUND_POLL_S = 0.02  # how often a background chunk that waits looks again
# Part of what a training computes, like its seed: a different count gives other roundings. Two blocks fill
# this server's two cores; a training never uses more cores than there are blocks.
PRODUCT_CHUNKS = 2
MIN_SPLIT_MACS = 1 << 20  # smaller products (a rank-r adapter's, the last layer's) are not worth a thread hop
_CHUNK_ALIGN = 16  # block edges on 64-byte lines, so that every block takes the kernel's aligned path
_aten = torch.ops.aten


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


def _oversubscribed() -> bool:
    """Whether the last minute had more runnable work than the machine has cores (Linux's load average)."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:
        return False


def _one_torch_thread() -> None:
    torch.set_num_threads(1)


def _bounds(length: int) -> list[slice]:
    """PRODUCT_CHUNKS slices that tile range(length), edges on _CHUNK_ALIGN: a function of `length` alone."""
    size = -(-length // (PRODUCT_CHUNKS * _CHUNK_ALIGN)) * _CHUNK_ALIGN
    return [slice(start, min(start + size, length)) for start in range(0, length, size)]


_PRODUCTS = (_aten.mm.default, _aten.addmm.default, _aten.addmm_.default)  # a Linear's forward and backward


def _worth_splitting(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.device.type == "cpu" and a.dtype == b.dtype and a.shape[0] * a.shape[1] * b.shape[1] >= MIN_SPLIT_MACS


class _FixedProducts(TorchDispatchMode):
    """Computes mm, addmm and addmm_ of a large enough size as fixed blocks of the result (`_bounds` of its
    longer side), each a one-thread product, the blocks spread over the caller and `pool`."""

    def __init__(self, pool: ThreadPoolExecutor | None, workers: int):
        super().__init__()
        self.pool, self.workers = pool, workers
        self.stolen = 0  # blocks the caller did itself because no helper was free to start them

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in _PRODUCTS or not _worth_splitting(*args[-2:]):
            return func(*args, **kwargs)
        a, b = args[-2:]
        c = args[0] if len(args) == 3 else None
        out = c if func is _aten.addmm_.default else a.new_empty((a.shape[0], b.shape[1]))
        return self._blocks(a, b, c, kwargs.get("beta", 1), kwargs.get("alpha", 1), out)

    def _blocks(self, a, b, c, beta, alpha, out):
        (m, _), n = a.shape, b.shape[1]
        by_rows = m >= n
        c = None if c is None else c.expand(m, n)

        def block(part: slice) -> None:
            rows, cols = (part, slice(None)) if by_rows else (slice(None), part)
            with torch.no_grad():  # below autograd already: a worker thread does not know that
                if c is None:
                    torch.mm(a[rows], b[:, cols], out=out[rows, cols])
                else:
                    torch.addmm(c[rows, cols], a[rows], b[:, cols], beta=beta, alpha=alpha, out=out[rows, cols])

        parts = _bounds(m if by_rows else n)
        helped = [(part, self.pool.submit(block, part)) for i, part in enumerate(parts) if i % self.workers] \
            if self.pool is not None else []
        for i, part in enumerate(parts):
            if self.pool is None or i % self.workers == 0:
                block(part)
        for part, future in helped:
            if future.cancel():  # no helper has started it (a busy machine): the caller does it, not waits
                block(part)
                self.stolen += 1
            else:
                future.result()
        return out


class FixedSplit:
    """A training's way to use `cores` without its numbers depending on them (see the module's docstring)."""

    def __init__(self, cores: int, pool: ThreadPoolExecutor | None):
        self.cores = cores
        self._products = _FixedProducts(pool, min(cores, PRODUCT_CHUNKS))

    @contextmanager
    def products(self):
        """Inside, this thread runs torch on one thread and its large products in fixed blocks (a training's
        forward and backward passes): no kernel of it sees how many cores there are."""
        self._products.stolen = 0
        with one_thread(), self._products:
            yield

    @contextmanager
    def elementwise(self):
        """Inside, torch uses every core of the training in this thread: only for elementwise work (an
        optimizer's update), whose every element is the same computation however the elements are shared.
        One core when the machine is busy (the last products found no helper free, or more runnable work than
        cores): torch's threads wait for each other at every kernel, several times slower when one of them
        waits for a core. Either way the same bits."""
        previous = torch.get_num_threads()
        torch.set_num_threads(1 if self._products.stolen or _oversubscribed() else self.cores)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


@contextmanager
def fixed_split(cores: int):
    """A FixedSplit on `cores` cores: the helper threads (at most PRODUCT_CHUNKS - 1, each on one torch
    thread) live as long as the block. Threads it starts inherit the caller's scheduling (`idle_priority`)."""
    helpers = min(cores, PRODUCT_CHUNKS) - 1
    pool = ThreadPoolExecutor(helpers, "lora-lab product", initializer=_one_torch_thread) if helpers else None
    try:
        yield FixedSplit(cores, pool)
    finally:
        if pool is not None:
            pool.shutdown()
