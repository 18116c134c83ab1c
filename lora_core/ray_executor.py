"""Trainings as Ray tasks: the cluster's scheduler is the queue, a small actor carries progress and Stop.

Each `Work` becomes one task asking for `cpus` CPUs (its evaluation's cores; a training itself runs on one
torch thread, lora_core.parallel) and `gpus` GPUs. The task talks
to this app through one `_Channels` actor kept on the app's own node: it reports steps, losses and its
label every REPORT_S, and the answer says whether Stop was pressed, which the training reads between two
steps. Until the task reports that it started, the job waits in line; its place is counted among this
app's trainings still waiting. A task is never retried: a lost worker is a clear error, not a silent
second training. Imported only when LORA_LAB_RAY_ADDRESS is set; the app runs without Ray installed.
"""
import functools
import itertools
import os
import pickle
import threading

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayError, RayTaskError, TaskCancelledError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from . import parallel
from .data import load_dataset
from .executor import TrainingWorkerLost, Work
from .slots import Cancelled

REPORT_S = 0.1  # how often a training sends its progress and hears about Stop
WATCH_S = 0.2  # how often the app asks for that progress
DATA_ENV = "LORA_LAB_DATA"  # where a worker finds full MNIST / Fashion-MNIST (as the app does)


@ray.remote(num_cpus=0)
class _Channels:
    """Progress from each training to the app, Stop from the app to it, keyed by the app's job number."""

    def __init__(self):
        self._jobs: dict[int, dict] = {}

    def open(self, key: int) -> None:
        self._jobs[key] = {"started": False, "losses": [], "step": 0, "total": 0, "label": "", "stop": False}

    def report(self, key: int, losses: list[float], step: int, total: int, label: str) -> bool:
        """From the training: its news since the last report. Returns whether it should stop."""
        job = self._jobs.get(key)
        if job is None:  # the app gave up on it
            return True
        job["losses"].extend(losses)
        job.update(started=True, step=step, total=total, label=label)
        return job["stop"]

    def take(self, key: int) -> dict:
        """To the app: the news since it last asked (the losses are handed over once)."""
        job = self._jobs[key]
        news = dict(job)
        job["losses"] = []
        return news

    def stop(self, key: int) -> None:
        if key in self._jobs:
            self._jobs[key]["stop"] = True

    def close(self, key: int) -> None:
        self._jobs.pop(key, None)


class _RemoteProgress:
    """The `progress` a Work function sees on a worker: buffers steps, sends them every REPORT_S."""

    def __init__(self, channels, key: int):
        self.step, self.total, self.label = 0, 0, ""
        self._channels, self._key = channels, key
        self._losses: list[float] = []
        self._lock = threading.Lock()
        self._stop, self._closed = threading.Event(), threading.Event()
        self._send()  # "started": the app stops showing a place in line
        self._reporter = threading.Thread(target=self._report_until_closed, daemon=True)
        self._reporter.start()

    def on_step(self, step: int, total: int, loss: float) -> None:
        with self._lock:
            self._losses.append(loss)
            self.step, self.total = step, total

    def on_progress(self, done: int, total: int, label: str) -> None:
        self.step, self.total, self.label = done, total, label

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def _send(self) -> None:
        with self._lock:
            losses, self._losses = self._losses, []
            news = (losses, self.step, self.total, self.label)
        if ray.get(self._channels.report.remote(self._key, *news)):
            self._stop.set()

    def _report_until_closed(self) -> None:
        while not self._closed.wait(REPORT_S):
            self._send()

    def close(self) -> None:
        self._closed.set()
        self._reporter.join()
        self._send()  # the last steps


@functools.lru_cache(maxsize=2)
def _dataset(name: str, device: str):
    """Each worker process loads a dataset once, by name, and keeps it for the tasks that follow."""
    return load_dataset(name, root=os.environ.get(DATA_ENV), device=device)


@ray.remote(max_retries=0)  # a retry would be a second training the page does not follow
def _run_remote(channels, key: int, fn, dataset: str, args: tuple, cores: int, device: str):
    progress = _RemoteProgress(channels, key)
    try:
        with parallel.using(cores):  # the same numbers on any number of cores
            return fn(progress, _dataset(dataset, device), *args)
    except Exception as err:
        try:
            pickle.loads(pickle.dumps(err))
        except Exception:  # it could not reach the app: its type and message still do
            raise RuntimeError(f"{type(err).__name__}: {err}") from None
        raise
    finally:
        progress.close()


class RayExecutor:
    """Runs each Work as a Ray task on the cluster at `address`; anything else through `local`."""

    def __init__(self, address: str, local, cpus: int = 1, gpus: float = 0.0):
        if not isinstance(cpus, int) or cpus < 1:
            raise ValueError(f"cpus must be a positive integer, got {cpus!r}")
        if not 0 <= gpus < float("inf"):
            raise ValueError(f"gpus must be a number ≥ 0, got {gpus!r}")
        self.address, self.local, self.cpus, self.gpus = address, local, cpus, gpus
        self.device = "cuda" if gpus > 0 else "cpu"
        self._lock = threading.Lock()
        self._keys = itertools.count(1)
        self._waiting: list[int] = []  # this app's trainings not started yet, in the order they were sent
        self._channels = None

    def __repr__(self) -> str:
        return f"RayExecutor({self.address!r}, cpus={self.cpus}, gpus={self.gpus:g}, waiting={len(self._waiting)})"

    def _connected(self):
        """The channel actor, after connecting to the cluster on first use."""
        with self._lock:
            if self._channels is None:
                if not ray.is_initialized():
                    ray.init(address=self.address, log_to_driver=False, logging_level="WARNING")
                here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
                self._channels = _Channels.options(scheduling_strategy=here).remote()
            return self._channels

    def _place(self, key: int) -> int:
        with self._lock:
            return self._waiting.index(key) + 1 if key in self._waiting else 0

    def _started(self, key: int) -> None:
        with self._lock:
            if key in self._waiting:
                self._waiting.remove(key)

    def run(self, progress, work):
        """Like InProcess.run: returns the work's unpacked result; raises Cancelled when stopped in line,
        the work's own exception when it failed, TrainingWorkerLost when its worker died."""
        if not isinstance(work, Work):
            return self.local.run(progress, work)
        channels = self._connected()
        key = next(self._keys)
        with self._lock:
            self._waiting.append(key)
        progress.place = self._place(key)
        try:
            ray.get(channels.open.remote(key))
            task = _run_remote.options(num_cpus=self.cpus, num_gpus=self.gpus).remote(
                channels, key, work.fn, work.data.name, work.args, self.cpus, self.device)
            packed = self._follow(progress, channels, key, task)
        except TaskCancelledError as err:
            raise Cancelled(progress) from err
        except RayError as err:
            cause = err.cause if isinstance(err, RayTaskError) else err
            if not isinstance(cause, RayError):  # the work itself raised: the page explains that exception
                raise cause from None
            if isinstance(cause, (ActorDiedError, ActorUnavailableError)):
                with self._lock:
                    self._channels = None  # the channel is gone: the next training makes a new one
            raise TrainingWorkerLost(f"{type(cause).__name__}: {cause}") from err
        finally:
            self._started(key)
            channels.close.remote(key)
        return work.finish(packed)

    def _follow(self, progress, channels, key: int, task):
        stop_sent = False
        while True:
            finished, _ = ray.wait([task], timeout=WATCH_S)
            news = ray.get(channels.take.remote(key))
            if news["started"]:
                self._started(key)
            for loss in news["losses"]:  # losses first: the chart never shows a step without its loss
                progress.losses.append(loss)
            progress.step, progress.total, progress.label = news["step"], news["total"], news["label"]
            progress.place = self._place(key)
            if progress.should_stop() and not stop_sent:
                stop_sent = True
                if news["started"]:
                    channels.stop.remote(key)  # read between two steps: the steps taken are kept
                else:
                    ray.cancel(task)  # still in line: nothing ran
            if finished:
                return ray.get(task)
