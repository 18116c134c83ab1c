"""Where a training runs: in this process under the training slots (the default), or on a Ray cluster.

A training that can travel is handed over as `Work`: a module-level function, the dataset it reads (by
name, on a cluster) and picklable arguments. `fn(progress, data, *args)` reports through
`progress.on_step(step, total, loss)` / `on_progress(done, total, label)`, may set `progress.label`, stops
between two steps once `progress.should_stop()`, and returns plain data (lora_core.works: what the run
store keeps); `unpack`, run where the work was submitted, turns that back into what a page uses. Anything
else (a closure `work(progress)`: the studies) runs in process.

`from_env(slots, cores_for)` chooses: in process unless LORA_LAB_RAY_ADDRESS is set.
"""
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import parallel
from .data import Dataset
from .slots import TrainingSlots

RAY_ADDRESS_ENV = "LORA_LAB_RAY_ADDRESS"  # "auto" or "host:6379": trainings run on that Ray cluster
RAY_CPUS_ENV = "LORA_LAB_RAY_CPUS"  # CPUs each training asks of the cluster (its evaluation's cores), default 1
RAY_GPUS_ENV = "LORA_LAB_RAY_GPUS"  # GPUs (a fraction allowed) each training asks for; > 0 trains on cuda


@dataclass(frozen=True, eq=False)
class Work:
    """`fn(progress, data, *args)` → plain data; `unpack(result)` → what the page uses (run here)."""
    fn: Callable
    data: Dataset
    args: tuple = ()
    unpack: Callable | None = None

    def __post_init__(self):
        if not callable(self.fn) or "<locals>" in getattr(self.fn, "__qualname__", "<locals>"):
            raise ValueError(f"fn must be a module-level function (a cluster imports it), got {self.fn!r}")

    def __repr__(self) -> str:
        return f"Work({self.fn.__name__}, {self.data.name!r})"

    def finish(self, result):
        return result if self.unpack is None else self.unpack(result)


class Progress:
    """What a training reports and obeys, read by whoever follows it (a page's job, a test)."""

    def __init__(self):
        self.losses: list[float] = []
        self.step, self.total, self.label = 0, 0, ""
        self.place = -1  # in line for a training: k > 0 while waiting, 0 once running
        self.cores = 1  # the cores it may use, set when it starts
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"Progress(step {self.step}/{self.total}, place {self.place}{', stopping' if self.stopping else ''})"

    def on_step(self, step: int, total: int, loss: float) -> None:
        self.losses.append(loss)
        self.step, self.total = step, total

    def on_progress(self, done: int, total: int, label: str) -> None:
        self.step, self.total, self.label = done, total, label

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()


class InProcess:
    """The calling thread waits for one of `slots` (its place in line in `progress.place`), then runs the
    work itself on `cores_for(trainings running)` cores: a lone training gets every core. Each training
    still runs on one torch thread (lora_core.parallel), so the cores change how fast it is, never its
    numbers."""

    def __init__(self, slots: TrainingSlots, cores_for: Callable[[int], int]):
        self.slots, self.cores_for = slots, cores_for

    def __repr__(self) -> str:
        return f"InProcess({self.slots!r})"

    def run(self, progress: Progress, work):
        """`work` (a Work, or a callable `work(progress)`) for `progress`; raises slots.Cancelled when
        stopped while waiting for a slot."""
        def wait(place: int) -> None:
            progress.place = place

        with self.slots.slot(progress, on_wait=wait, cancelled=progress.should_stop):
            progress.cores = self.cores_for(self.slots.running())
            torch.set_num_threads(progress.cores)  # this thread's own setting
            progress.place = 0
            with parallel.using(progress.cores):
                if isinstance(work, Work):
                    return work.finish(work.fn(progress, work.data, *work.args))
                return work(progress)


class TrainingWorkerLost(RuntimeError):
    """The process or machine running a training went away before it finished."""

    def __init__(self, detail: str):
        super().__init__("The training worker was lost before the training finished (a machine of the "
                         "cluster stopped or ran out of memory). Your settings are kept: train again.")
        self.detail = detail


def _number(name: str, default, kind, low):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = low - 1
    if not low <= value < float("inf"):
        raise ValueError(f"{name}={text!r} is not {'an integer' if kind is int else 'a number'} ≥ {low}")
    return value


def from_env(slots: TrainingSlots, cores_for: Callable[[int], int]):
    """InProcess(slots, cores_for); a RayExecutor when LORA_LAB_RAY_ADDRESS is set (work that cannot
    travel still runs in process under `slots`)."""
    local = InProcess(slots, cores_for)
    address = os.environ.get(RAY_ADDRESS_ENV, "").strip()
    if not address:
        return local
    try:
        from .ray_executor import RayExecutor
    except ImportError as err:
        raise RuntimeError(f"{RAY_ADDRESS_ENV} is set but Ray is not installed ({err}): install it with "
                           f"`pip install -r requirements-cluster.txt`, or unset {RAY_ADDRESS_ENV}") from err
    return RayExecutor(address, local, cpus=_number(RAY_CPUS_ENV, 1, int, low=1),
                       gpus=_number(RAY_GPUS_ENV, 0.0, float, low=0))
