"""Long computations in a background thread, and the server-wide store of trained baselines.

A click in Streamlit reruns the script, interrupting whatever it was doing. Training therefore runs in
its own thread, which a rerun does not touch: the script only watches it. Stop sets a flag that the
core's `should_stop` reads between steps, so the model keeps every whole step it took. A server-wide
set of training slots keeps a classroom of users from running more trainings at once than there are
cores (or $LORA_LAB_MAX_TRAININGS); the others wait in a queue whose place the page shows. A training
over the server's limits, or a second one of the same person, is refused before it starts (ui.fair).

A job knows the sessions that follow it: one for a session's own run, several for a shared baseline.
When the last of them stops following — Stop, or the sweep of ui.server after a tab closed — it stops.
Finished runs are kept by ui.runs.
"""
import atexit
import itertools
import threading
import time

import streamlit as st

import lora_core as lc
from lora_core import executor, parallel
from lora_core.slots import Busy, Cancelled, TrainingSlots
from service import executors
from service.kinds import Kind
from ui import charts, fair, server

POLL_S = 0.25  # how often the progress bar is redrawn
LIVE_CHART_AFTER_S = 1.0  # a run shorter than this (counted from its first step, not its wait in line) shows its
# progress bar only: drawing a chart would take the cores from the run's own test pass
LIVE_CHART_EVERY_S = 0.5  # the pause between the live chart's redraws: each builds a plotly figure on the server
# and makes the browser draw the chart anew, which a class's server pays for every follower
SLOTS = TrainingSlots(server.max_trainings(), fair.per_person())  # one per server process
THREADS = server.threads_each(SLOTS.limit)  # cores of each job when all SLOTS.limit slots are taken
# in this process under SLOTS, a lone job on every core; or, for work that can travel, on the Ray cluster
# of LORA_LAB_RAY_ADDRESS
EXECUTOR = executors.from_env(SLOTS, server.threads_each)
# A page's own passes (an upload's evaluation, a slider's new value) run in Streamlit's script threads,
# which set no cores: they get a training's share as if they were one more (every core on an idle server).
parallel.set_default(lambda: server.threads_each(SLOTS.running() + 1))
CLOSING = threading.Event()  # the interpreter is ending: background work stops at its next check
_numbers = itertools.count(1)  # tells jobs of one kind apart in their names
_background: set[threading.Thread] = set()  # work done ahead of a request, in daemon threads


class Job(executor.Progress):
    """A run of `kind` (service.kinds.Kind): `work` in a daemon thread through EXECUTOR, a callable
    `work(job)`, which reports through on_step/on_progress and obeys should_stop, or a
    lora_core.executor.Work, which may run on a cluster. Its name is its kind and a number.

    Started from a page, the job is followed by that page's session and counts against it (ui.fair);
    `shared=True` leaves the followers to `watch`, and whom it counts against to `owners`. It stops when
    every follower has called `release`. A job over a limit never starts: it is done at once, its error
    a fair.Refused that says why. `settle(job)` runs in the job's thread once it has ended, however it
    ended, before it counts as done.
    """

    def __init__(self, kind: Kind, work, shared: bool = False, owners: tuple = (), steps: int = 0,
                 hidden: tuple[int, ...] = (), settle=None):
        super().__init__()  # losses, step, total, label, place, cores, Stop
        self.kind = Kind(kind)
        self.name = self.kind.job_name(next(_numbers))
        self.created = time.monotonic()
        self.result, self.error = None, None
        self.live = None  # what the work shows while it runs, for a page to draw (ui.inside.LiveInspection)
        self.cores = THREADS  # the cores it may use, set when it gets its slot
        self.watchers: set[str] = set()  # the sessions following this job
        self._watchers_lock = threading.Lock()
        self._settle = settle
        owner = None if shared else server.current_session_id()
        self.owners = owners if shared else fair.owners(owner)
        self._thread = threading.Thread(target=self._run, args=(work,), name=f"lora-lab {self.name}", daemon=True)
        try:
            fair.check_cost(steps, hidden)
            SLOTS.admit(self, self.owners)
        except Busy as err:
            self.error = fair.busy(err.held)
        except fair.Refused as err:
            self.error = err
        if self.error is not None:
            return  # never started: done, with the reason
        if owner is not None:
            self.watch(owner)
        try:
            self._thread.start()
        except BaseException:
            SLOTS.leave(self)
            raise

    def __repr__(self) -> str:
        state = "done" if self.done else "stopping" if self.stopping else "running"
        return f"Job({self.name!r}, {state}, step {self.step}/{self.total})"

    def _run(self, work) -> None:
        try:
            self.result = EXECUTOR.run(self, work)
        except Cancelled:  # stopped while queued: nothing ran, result stays None
            pass
        except Exception as err:  # shown on the page, never lost in a thread
            self.error = err
        finally:
            SLOTS.leave(self)  # its admission too when a cluster ran it, where no slot of ours held it
            if self._settle is not None:
                try:
                    self._settle(self)
                except Exception as err:
                    self.error = self.error or err

    def watch(self, session_id: str) -> None:
        """`session_id` follows this job; the server releases it for the session if the session ends."""
        with self._watchers_lock:
            self.watchers.add(session_id)
        server.SESSIONS.track(session_id, self)

    def release(self, session_id: str) -> int:
        """`session_id` stops following; the job stops when nobody follows it. Returns who still does."""
        with self._watchers_lock:
            self.watchers.discard(session_id)
            if not self.watchers:
                self.stop()
            else:  # it runs on for the others: no longer this session's training
                SLOTS.disown(self, fair.owners(session_id))
            return len(self.watchers)

    @property
    def refused(self) -> bool:
        """Never started, being over a limit of this server (ui.fair)."""
        return isinstance(self.error, fair.Refused)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread.ident is not None:  # a refused job never started
            self._thread.join(timeout)



HEADER_STOP = ("Streamlit's own Stop (top right) only stops this page from updating: the training goes on. "
               "Use the Stop button here to end it; click anywhere to see its progress again.")


def in_background(target, *args) -> None:
    """`target(*args)` in a daemon thread that the interpreter's exit waits for (a little), at idle CPU
    priority (parallel.idle_priority): work done ahead of anyone's request takes only cores nobody wants."""
    def run() -> None:
        parallel.idle_priority()
        target(*args)
    _background.difference_update([t for t in list(_background) if not t.is_alive()])
    thread = threading.Thread(target=run, name=f"lora-lab {target.__name__}", daemon=True)
    _background.add(thread)
    thread.start()


@atexit.register
def _finish_background() -> None:
    """A daemon thread still inside torch when the interpreter ends aborts the process: let them end first."""
    CLOSING.set()
    for thread in list(_background):
        thread.join(timeout=60)


def remote() -> bool:
    """Whether trainings that can travel run on a cluster (LORA_LAB_RAY_ADDRESS)."""
    return not isinstance(EXECUTOR, executor.InProcess)


def waiting(place: int) -> str:
    """What a job at `place` in line waits for."""
    if remote():
        return (f"waiting for a free worker on the training cluster — {place - 1} of this server's training(s) "
                "queued before this one")
    return (f"waiting for a free training slot — {place - 1} training(s) queued before this one, {SLOTS.limit} "
            "run at a time on this server")


def status(job: Job, what: str, finishing: str = "evaluating on the test images") -> tuple[float, str]:
    """A progress bar's value and text for `job`; `finishing` is said after its last step, unless the job
    says what it is doing."""
    step, total = job.step, job.total
    if job.done:
        return 1.0, f"{what}: done"
    if job.place > 0:
        return 0.0, f"{what}: {waiting(job.place)}"
    if job.stopping:
        return (min(step / total, 1.0) if total else 0.0), f"{what}: stopping after step {step}…"
    if not total:
        return 0.0, f"{what}: starting…"
    if step >= total:
        return 1.0, f"{what}: {job.label or finishing}…"
    return step / total, f"{what}: step {step:,} of {total:,}" + (f" — {job.label}" if job.label else "")


def describe(error: Exception) -> str:
    """An error of a job, for the page: a diverged loss explains itself, anything else says its type."""
    if isinstance(error, (lc.TrainingDiverged, executor.TrainingWorkerLost)):
        return str(error)
    return f"{type(error).__name__}: {error}"


def failure(what: str, error: Exception) -> str:
    """The page's message for a job that ended with `error`: a refusal says itself, a failure says so."""
    return str(error) if isinstance(error, fair.Refused) else f"{what} failed: {describe(error)}"


def follow(job: Job, what: str, live_chart: bool = True) -> None:
    """Show a progress bar (and, once the run has trained for LIVE_CHART_AFTER_S, the loss curve as it grows)
    until the job ends; then clear them.

    A rerun (a click anywhere) interrupts this loop, not the job: the next run follows it again.
    """
    bar, chart, note = st.empty(), st.empty(), st.empty()
    note.caption(HEADER_STOP)
    drawn, shown, training_since, charted = -1, None, None, 0.0
    while True:
        finished = job.done  # read first, so that the last drawing has every step
        step, total = job.step, job.total
        value, text = status(job, what)
        if (step, total, text) != shown:  # a queue of waiting sessions sends nothing while nothing moves
            shown = (step, total, text)
            bar.progress(value, text=text)
        now = time.monotonic()
        if training_since is None and job.losses:
            training_since = now
        if (live_chart and training_since is not None and len(job.losses) != drawn
                and now - training_since >= LIVE_CHART_AFTER_S and now - charted >= LIVE_CHART_EVERY_S):
            drawn = len(job.losses)
            with chart.container():
                charts.show(charts.loss_curve(job.losses[:drawn], f"Training loss (live, {drawn:,} steps)"),
                            key=f"live-{job.name}-{drawn}")
            charted = time.monotonic()  # the pause runs from the end of this drawing
        if finished:
            break
        job.wait(POLL_S)  # returns at once when the job ends: its result is drawn without a poll's delay
    bar.empty()
    chart.empty()
    note.empty()


# --- this user's experiments -----------------------------------------------------------------------

def compare(base: lc.BaselineRun, data: lc.Dataset, ranks, config: lc.FinetuneConfig, full_lr: float):
    """The work of a rank comparison job; after a Stop it returns only the runs that finished."""
    def work(job: Job) -> dict:
        def on_progress(done: int, total: int, label: str) -> None:
            job.on_progress(done, total, "full finetuning, the reference" if label == "full" else label)

        rows = lc.compare_ranks(base.model, data, ranks, config, on_progress=on_progress,
                                should_stop=job.should_stop, full_lr=full_lr, before=base.evaluation,
                                workers=job.cores)
        return {"rows": rows, "stopped": job.stopping}
    return work
