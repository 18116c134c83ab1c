"""Long computations in a background thread, under the server's training slots.

A click in Streamlit reruns the script, interrupting whatever it was doing. Training therefore runs in
its own thread, which a rerun does not touch: a page only follows it. Stop sets a flag that the core's
`should_stop` reads between steps, so the model keeps every whole step it took. A server-wide set of
training slots keeps a classroom of users from running more trainings at once than there are cores (or
$LORA_LAB_MAX_TRAININGS); the others wait in a queue whose place the page shows. A training over the
server's limits, or a second one of the same person, is refused before it starts (service.limits).

A job knows the sessions that follow it: one for a session's own run, several for a shared one. When the
last of them stops following (Stop, or the server's sweep after a tab closed) it stops. Who a session is
(whom its trainings count against, and how the server learns that it follows a job) is told by whoever
knows the sessions, through `connect` (the app's ui.server); without it a session is only itself.
Finished runs are kept by service.runs.
"""
import atexit
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import lora_core as lc
from lora_core import executor, parallel
from lora_core.slots import Busy, Cancelled, TrainingSlots
from service import environment, executors, limits
from service.kinds import Kind

log = logging.getLogger("lora_lab")

SLOTS = TrainingSlots(environment.max_trainings(), limits.per_person())  # one per server process
THREADS = environment.threads_each(SLOTS.limit)  # cores of each job when all SLOTS.limit slots are taken
# in this process under SLOTS, a lone job on every core; or, for work that can travel, on the Ray cluster
# of LORA_LAB_RAY_ADDRESS
EXECUTOR = executors.from_env(SLOTS, environment.threads_each)
# A page's own passes (an upload's evaluation, a slider's new value) run in Streamlit's script threads,
# which set no cores: they get a training's share as if they were one more (every core on an idle server).
parallel.set_default(lambda: environment.threads_each(SLOTS.running() + 1))
CLOSING = threading.Event()  # the interpreter is ending: background work stops at its next check
_numbers = itertools.count(1)  # tells jobs of one kind apart in their names
_background: set[threading.Thread] = set()  # work done ahead of a request, in daemon threads


def _only_the_session(session_id: str | None) -> tuple:
    return () if session_id is None else (("session", session_id),)


@dataclass
class Sessions:
    """What the service asks of whoever knows the sessions: `owners_of(session_id)`, whom a training of
    that session counts against (service.limits); `track(session_id, job)`, told when a session follows a
    job, so that it can release the job when the session ends."""
    owners_of: Callable[[str | None], tuple] = _only_the_session
    track: Callable[[str, object], None] = lambda session_id, job: None


SESSIONS = Sessions()


def connect(owners_of: Callable[[str | None], tuple], track: Callable[[str, object], None]) -> None:
    """Tell the service who sessions are (see Sessions); the app's ui.server calls it once."""
    SESSIONS.owners_of, SESSIONS.track = owners_of, track


class Job(executor.Progress):
    """A run of `kind` (service.kinds.Kind): `work` in a daemon thread through EXECUTOR, a callable
    `work(job)`, which reports through on_step/on_progress and obeys should_stop, or a
    lora_core.executor.Work, which may run on a cluster. Its name is its kind and a number.

    It counts against `owners` (service.limits; SESSIONS.owners_of gives a session's) and is followed by
    the sessions that `watch` it. It stops when every follower has called `release`. A job over a limit
    never starts: it is done at once, its error a limits.Refused that says why. `settle(job)` runs in the
    job's thread once it has ended, however it ended, before it counts as done.
    """

    def __init__(self, kind: Kind, work, owners: tuple = (), cost: tuple = (0, (), 0), settle=None):
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
        self.owners = owners
        self.load = cost[2]  # images × weights: what it computes, for the queue's estimates
        self._thread = threading.Thread(target=self._run, args=(work,), name=f"lora-lab {self.name}", daemon=True)
        try:
            limits.check_cost(*cost)  # (steps, hidden sizes, images × weights)
            SLOTS.admit(self, self.owners)
        except Busy as err:
            self.error = limits.busy(err.held)
        except limits.Refused as err:
            self.error = err
        if self.error is not None:
            return  # never started: done, with the reason
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
            if not isinstance(err, (lc.TrainingDiverged, executor.TrainingWorkerLost)):
                log.error("LoRA Lab: %s failed", self.name, exc_info=err)
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
        SESSIONS.track(session_id, self)

    def release(self, session_id: str) -> int:
        """`session_id` stops following; the job stops when nobody follows it. Returns who still does."""
        with self._watchers_lock:
            self.watchers.discard(session_id)
            if not self.watchers:
                self.stop()
            else:  # it runs on for the others: no longer this session's training
                SLOTS.disown(self, SESSIONS.owners_of(session_id))
            return len(self.watchers)

    @property
    def refused(self) -> bool:
        """Never started, being over a limit of this server (service.limits)."""
        return isinstance(self.error, limits.Refused)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread.ident is not None:  # a refused job never started
            self._thread.join(timeout)


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


def seconds_left(job) -> float:
    """The estimated seconds `job` still needs: its load at the cap's pace (service.limits), less its steps
    done; a job holding a slot that said no load counts nothing."""
    estimate = limits.estimated_seconds(getattr(job, "load", 0))
    return estimate * (1 - job.step / job.total) if job.total and job.step <= job.total else estimate


def estimated_start(job) -> float:
    """Seconds until a queued `job` is estimated to get a slot: what the running jobs and those queued before
    it still need, shared by the slots."""
    place, tickets = SLOTS.position(job), SLOTS.tickets()
    ahead = [t for t in tickets if SLOTS.position(t) == 0 or 0 < SLOTS.position(t) < place]
    return sum(seconds_left(t) for t in ahead) / max(SLOTS.limit, 1)


def _when(seconds: float) -> str:
    """To 5 s (or a minute): a page redraws its progress bar only when the text changes, and each redraw is a
    message to the browser, which a class's server sends to every queued student."""
    return "at any moment now" if seconds < 5 else (f"in about {5 * round(seconds / 5)} s" if seconds < 90
                                                    else f"in about {seconds / 60:.0f} minutes")


def status(job: Job, what: str, finishing: str = "evaluating on the test images") -> tuple[float, str]:
    """A progress bar's value and text for `job`; `finishing` is said after its last step, unless the job
    says what it is doing."""
    step, total = job.step, job.total
    if job.done:
        return 1.0, f"{what}: done"
    if job.place > 0:
        start = "" if remote() else f"; it should start {_when(estimated_start(job))} (an estimate)"
        return 0.0, f"{what}: {waiting(job.place)}{start}"
    if job.stopping:
        return (min(step / total, 1.0) if total else 0.0), f"{what}: stopping after step {step}…"
    if not total:
        return 0.0, f"{what}: starting…"
    if step >= total:
        return 1.0, f"{what}: {job.label or finishing}…"
    return step / total, f"{what}: step {step:,} of {total:,}" + (f" — {job.label}" if job.label else "")


def describe(error: Exception) -> str:
    """An error of a job, for the page: a diverged loss or a lost worker explains itself; anything else is
    said in general words (its type, message and traceback are the operator's, in the server's log)."""
    if isinstance(error, (lc.TrainingDiverged, executor.TrainingWorkerLost)):
        return str(error)
    return ("something went wrong on the server (its log has the details). Your settings are kept: train "
            "again, or change a setting")


def failure(what: str, error: Exception) -> str:
    """The page's message for a job that ended with `error`: a refusal says itself, a failure says so."""
    return str(error) if isinstance(error, limits.Refused) else f"{what} failed: {describe(error)}"


# --- work that pages start --------------------------------------------------------------------------

def compare(base: lc.BaselineRun, data: lc.Dataset, ranks, config: lc.FinetuneConfig, full_lr: float):
    """The work of a rank comparison job; after a Stop it returns only the runs that finished."""
    def work(job: Job) -> lc.Comparison:
        def on_progress(done: int, total: int, label: str) -> None:
            job.on_progress(done, total, "full finetuning, the reference" if label == "full" else label)

        rows = lc.compare_ranks(base.model, data, ranks, config, on_progress=on_progress,
                                should_stop=job.should_stop, full_lr=full_lr, before=base.evaluation,
                                workers=job.cores)
        return lc.Comparison(rows, job.stopping)
    return work
