"""Long computations in a background thread, and the server-wide store of trained baselines.

A click in Streamlit reruns the script, interrupting whatever it was doing. Training therefore runs in
its own thread, which a rerun does not touch: the script only watches it. Stop sets a flag that the
core's `should_stop` reads between steps, so the model keeps every whole step it took. A server-wide
set of training slots keeps a classroom of users from running more trainings at once than there are
cores; the others wait in a queue whose place the page shows.
"""
import threading
import time
from collections import OrderedDict

import streamlit as st

import lora_core as lc
from lora_core.slots import Cancelled, TrainingSlots
from ui import charts

POLL_S = 0.25  # how often the live chart and progress bar are redrawn
STORED_BASELINES = 8  # completed baselines kept for reuse by every session, oldest dropped first
SLOTS = TrainingSlots()  # one per server process: at most one training per core at a time


class Job:
    """Runs `work(job)` in a daemon thread; `work` reports through on_step/on_progress, obeys should_stop."""

    def __init__(self, name: str, work):
        self.name = name
        self.losses: list[float] = []
        self.step, self.total, self.label = 0, 0, ""
        self.result, self.error = None, None
        self.place = -1  # in the queue for a training slot: k > 0 while waiting, 0 once running
        self.watchers: set[str] = set()  # sessions following a shared job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(work,), name=f"lora-lab {name}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        state = "done" if self.done else "stopping" if self.stopping else "running"
        return f"Job({self.name!r}, {state}, step {self.step}/{self.total})"

    def _run(self, work) -> None:
        try:
            with SLOTS.slot(self, on_wait=self._wait, cancelled=self.should_stop):
                self.place = 0
                self.result = work(self)
        except Cancelled:  # stopped while queued: nothing ran, result stays None
            pass
        except Exception as err:  # shown on the page, never lost in a thread
            self.error = err

    def _wait(self, place: int) -> None:
        self.place = place

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

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


def stop(key: str) -> None:
    """A Stop button's callback: stop the job this session holds under `key`, if it still runs."""
    job = st.session_state.get(key)
    if job is not None:
        job.stop()


def follow(job: Job, what: str, live_chart: bool = True) -> None:
    """Show a progress bar (and the loss curve as it grows) until the job ends; then clear them.

    A rerun (a click anywhere) interrupts this loop, not the job: the next run follows it again.
    """
    bar, chart = st.empty(), st.empty()
    drawn = -1
    while True:
        finished = job.done  # read first, so that the last drawing has every step
        step, total = job.step, job.total
        if finished:
            text = f"{what}: done"
        elif job.place > 0:
            text = (f"{what}: waiting for a free training slot — {job.place - 1} training(s) queued before "
                    f"this one, {SLOTS.limit} run at a time on this server")
        elif job.stopping:
            text = f"{what}: stopping after step {step}…"
        elif not total:
            text = f"{what}: starting…"
        elif step >= total:
            text = f"{what}: {job.label or 'evaluating on the test images'}…"
        else:
            text = f"{what}: step {step:,} of {total:,}" + (f" — {job.label}" if job.label else "")
        bar.progress(min(step / total, 1.0) if total else 0.0, text=text)
        if live_chart and len(job.losses) != drawn:
            drawn = len(job.losses)
            with chart.container():
                charts.show(charts.loss_curve(job.losses[:drawn], f"Training loss (live, {drawn:,} steps)"),
                            key=f"live-{job.name}-{drawn}")
        if finished:
            break
        time.sleep(POLL_S)
    bar.empty()
    chart.empty()


# --- baselines shared by every session -------------------------------------------------------------

@st.cache_resource
def _store() -> dict:
    """Completed baselines by (dataset, device, config), and the jobs training one right now."""
    return {"lock": threading.Lock(), "done": OrderedDict(), "running": {}}


_INIT_LOCK = threading.Lock()  # new_model seeds torch's global generator: two inits must not interleave


def baseline_key(data: lc.Dataset, config: lc.BaselineConfig) -> tuple:
    return data.name, str(data.train_x.device), config


def _train(job: Job, data: lc.Dataset, config: lc.BaselineConfig, key: tuple) -> lc.BaselineRun:
    _INIT_LOCK.acquire()
    held = [True]

    def should_stop() -> bool:  # first called after the model exists, before the first step
        if held[0]:
            held[0] = False
            _INIT_LOCK.release()
        return job.should_stop()

    try:
        run = lc.train_baseline(config, data, on_step=job.on_step, should_stop=should_stop)
    finally:
        if held[0]:
            _INIT_LOCK.release()
        store = _store()
        with store["lock"]:
            if store["running"].get(key) is job:
                del store["running"][key]
    if run.complete:  # a stopped baseline is this user's; only whole runs are shared
        with store["lock"]:
            store["done"][key] = run
            while len(store["done"]) > STORED_BASELINES:
                store["done"].popitem(last=False)
    return run


def start_baseline(data: lc.Dataset, config: lc.BaselineConfig, session_id: str):
    """("reused", run) when one was trained already; else ("joined" | "started", job)."""
    store, key = _store(), baseline_key(data, config)
    with store["lock"]:
        if key in store["done"]:
            store["done"].move_to_end(key)
            return "reused", store["done"][key]
        job = store["running"].get(key)
        how = "joined"
        if job is None or job.stopping:
            job = Job(f"baseline-{len(store['running'])}-{time.monotonic_ns()}",
                      lambda job: _train(job, data, config, key))
            store["running"][key] = job
            how = "started"
        job.watchers.add(session_id)
        return how, job


def leave_baseline(job: Job, session_id: str) -> int:
    """This session stops following; the job stops when nobody follows it. Returns who still does."""
    with _store()["lock"]:
        job.watchers.discard(session_id)
        if not job.watchers:
            job.stop()
        return len(job.watchers)


# --- this user's experiments -----------------------------------------------------------------------

def finetune(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig) -> Job:
    """Finetune a copy of `base`; then evaluate it with the adapter off and run the adapter checks."""
    def work(job: Job) -> dict:
        run = lc.finetune_lora(base.model, data, config, before=base.evaluation, on_step=job.on_step,
                               should_stop=job.should_stop)
        job.label = "checking the adapter"
        with lc.lora_enabled(run.model, False):
            off = lc.evaluate(run.model, data.test_x, data.test_y)
        return {"run": run, "off": off, "checks": lc.adapter_checks(base.model, run.model, data.test_x)}
    return Job(f"finetune-{time.monotonic_ns()}", work)


def compare(base: lc.BaselineRun, data: lc.Dataset, ranks, config: lc.FinetuneConfig) -> Job:
    """compare_ranks; after a Stop only the runs that finished are kept (the rest trained 0 steps)."""
    def work(job: Job) -> dict:
        def on_progress(done: int, total: int, label: str) -> None:
            job.on_progress(done, total, "full finetuning, the reference" if label == "full" else label)

        rows = lc.compare_ranks(base.model, data, ranks, config, on_progress=on_progress,
                                should_stop=job.should_stop)
        if job.stopping:
            finished_runs = job.step // config.steps  # every run takes config.steps steps
            rows = rows[:1 + finished_runs]  # the baseline row, then the runs in order
        return {"rows": rows, "stopped": job.stopping}
    return Job(f"sweep-{time.monotonic_ns()}", work)
