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
import threading
import time

import streamlit as st
import torch

import lora_core as lc
from lora_core import parallel
from lora_core.slots import Busy, Cancelled, TrainingSlots
from ui import charts, fair, server

POLL_S = 0.25  # how often the live chart and progress bar are redrawn
SLOTS = TrainingSlots(server.max_trainings(), fair.per_person())  # one per server process
THREADS = server.threads_each(SLOTS.limit)  # cores of each job when all SLOTS.limit slots are taken


class Job:
    """Runs `work(job)` in a daemon thread; `work` reports through on_step/on_progress, obeys should_stop.

    Started from a page, the job is followed by that page's session and counts against it (ui.fair);
    `shared=True` leaves the followers to `watch`, and whom it counts against to `owners`. It stops when
    every follower has called `release`. A job over a limit never starts: it is done at once, its error
    a fair.Refused that says why.
    """

    def __init__(self, name: str, work, shared: bool = False, owners: tuple = (), steps: int = 0,
                 hidden: tuple[int, ...] = ()):
        self.name = name
        self.created = time.monotonic()
        self.losses: list[float] = []
        self.step, self.total, self.label = 0, 0, ""
        self.result, self.error = None, None
        self.place = -1  # in the queue for a training slot: k > 0 while waiting, 0 once running
        self.cores = THREADS  # the cores it may use, set when it gets its slot
        self.watchers: set[str] = set()  # the sessions following this job
        self._watchers_lock = threading.Lock()
        self._stop = threading.Event()
        owner = None if shared else server.current_session_id()
        self.owners = owners if shared else fair.owners(owner)
        self._thread = threading.Thread(target=self._run, args=(work,), name=f"lora-lab {name}", daemon=True)
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
            with SLOTS.slot(self, on_wait=self._wait, cancelled=self.should_stop):
                # a lone job gets every core; each training still runs on one thread (lora_core.parallel),
                # so how many others run changes how fast it is, never its numbers
                self.cores = server.threads_each(SLOTS.running())
                torch.set_num_threads(self.cores)  # this thread's own setting
                self.place = 0
                with parallel.using(self.cores):
                    self.result = work(self)
        except Cancelled:  # stopped while queued: nothing ran, result stays None
            pass
        except Exception as err:  # shown on the page, never lost in a thread
            self.error = err

    def _wait(self, place: int) -> None:
        self.place = place

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


def describe(error: Exception) -> str:
    """An error of a job, for the page: a diverged loss explains itself, anything else says its type."""
    if isinstance(error, lc.TrainingDiverged):
        return str(error)
    return f"{type(error).__name__}: {error}"


def failure(what: str, error: Exception) -> str:
    """The page's message for a job that ended with `error`: a refusal says itself, a failure says so."""
    return str(error) if isinstance(error, fair.Refused) else f"{what} failed: {describe(error)}"


def follow(job: Job, what: str, live_chart: bool = True) -> None:
    """Show a progress bar (and the loss curve as it grows) until the job ends; then clear them.

    A rerun (a click anywhere) interrupts this loop, not the job: the next run follows it again.
    """
    bar, chart, note = st.empty(), st.empty(), st.empty()
    note.caption(HEADER_STOP)
    drawn, shown = -1, None
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
        if (step, total, text) != shown:  # a queue of waiting sessions sends nothing while nothing moves
            shown = (step, total, text)
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
    note.empty()


# --- this user's experiments -----------------------------------------------------------------------

def adapter_results(base: lc.BaselineRun, model, data: lc.Dataset, on=None, on_logits=None,
                    say=lambda text: None) -> dict:
    """Evaluations of an adapted copy of `base` with the adapter on and off, of its merged copy, and the
    proofs — one pass over the test images for each of on, off and merged; the base's outputs are the
    ones its own evaluation scored. `on`/`on_logits` when the finetune already evaluated it."""
    if on is None:
        say("evaluating with the adapter on")
        on, on_logits = lc.evaluate(model, data.test_x, data.test_y, return_logits=True)
    say("evaluating with the adapter off")
    with lc.lora_enabled(model, False):
        off, off_logits = lc.evaluate(model, data.test_x, data.test_y, return_logits=True)
    say("checking the proofs on a merged copy")
    merged, merged_logits = lc.evaluate(lc.merged_copy(model), data.test_x, data.test_y, return_logits=True)
    checks = lc.adapter_checks(base.model, model, data.test_x, base_logits=base.test_logits, off_logits=off_logits,
                               on_logits=on_logits, merged_logits=merged_logits)
    return {"after": on, "off": off, "merged": merged, "checks": checks}


def finetune(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig):
    """The work of a finetune job: finetune a copy of `base`; then evaluate it with the adapter off and run
    the adapter checks."""
    def work(job: Job) -> dict:
        run = lc.finetune_lora(base.model, data, config, before=base.evaluation, on_step=job.on_step,
                               should_stop=job.should_stop)

        def say(text: str) -> None:
            job.label = text
        return {"run": run, **adapter_results(base, run.model, data, run.after, run.after_logits, say)}
    return work


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
