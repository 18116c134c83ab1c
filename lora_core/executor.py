"""Where a training runs: in this process under the training slots (the default), or on a Ray cluster.

A training that can travel is handed over as `Work`: a module-level function, the dataset it reads (by
name, on a cluster) and picklable arguments. `fn(progress, data, *args)` reports through
`progress.on_step(step, total, loss)` / `on_progress(done, total, label)`, may set `progress.label`, stops
between two steps once `progress.should_stop()`, and returns plain data (lora_core.works: what the run
store keeps); `unpack`, run where the work was submitted, turns that back into what a page uses. Anything
else (a closure `work(progress)`: the studies) runs in process. Which of them a server uses is chosen
from its environment by service.executors.
"""
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import parallel
from .data import Dataset
from .slots import TrainingSlots


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
    work itself on `cores_for(trainings running)` cores, asked again at every step: a lone training gets every
    core, and its share from the step after another starts. The cores change how fast a training is, never
    its numbers (lora_core.parallel)."""

    def __init__(self, slots: TrainingSlots, cores_for: Callable[[int], int]):
        self.slots, self.cores_for = slots, cores_for

    def __repr__(self) -> str:
        return f"InProcess({self.slots!r})"

    def share(self) -> int:
        """The cores each running training may use now."""
        return self.cores_for(self.slots.running())

    def run(self, progress: Progress, work):
        """`work` (a Work, or a callable `work(progress)`) for `progress`; raises slots.Cancelled when
        stopped while waiting for a slot."""
        def wait(place: int) -> None:
            progress.place = place

        with self.slots.slot(progress, on_wait=wait, cancelled=progress.should_stop):
            progress.cores = self.share()
            torch.set_num_threads(progress.cores)  # this thread's own setting
            progress.place = 0
            # asked again at each step: every core while alone, its share once another training starts
            with parallel.using(self.share):
                if isinstance(work, Work):
                    return work.finish(work.fn(progress, work.data, *work.args))
                return work(progress)


class TrainingWorkerLost(RuntimeError):
    """The process or machine running a training went away before it finished."""

    def __init__(self, detail: str):
        super().__init__("The training worker was lost before the training finished (a machine of the "
                         "cluster stopped or ran out of memory). Your settings are kept: train again.")
        self.detail = detail
