"""Runs by their description, shared by every session on the server: the one call `obtain` finds a run in
the run store (memory, then disk), joins it while it trains here, sees it made on another server, or starts
it once.

A page asks for the run its experiment describes. If the store has it, the page shows it at once: a link,
a reload, a second tab or another student never trains it again. If it is training (a reload mid-run, or
a classmate who clicked first), the page follows that training. Otherwise the page offers to start it.
A finished run is stored only when it is whole; a stopped one stays with the sessions that followed it.

Several app servers can share one run folder (replicas behind a proxy): a server that starts a run claims
its key there (lora_core.run_claims), and the others, asked for the same run, wait for its file rather than
train it again. Work that can travel may run on a Ray cluster (service.jobs.EXECUTOR).
"""
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from lora_core import run_claims, works
from lora_core.checkpoints import tidy
from lora_core.store import RunStore, environment, run_key
from service import jobs
from service.environment import cache_limit_bytes, log, runs_dir
from service.kinds import Kind

TRAINING_THREADS = 1  # every training runs on one torch thread (lora_core.parallel), whatever the server's load
STORE_BYTES = 1024 * 2**20  # finished runs kept in memory (their tensors); the disk keeps every one
ELSEWHERE_POLL_S = 0.5  # how often a wait for another server's run looks for its file
STOPPING_WAIT_S = 30  # how long a new start waits for a stopping run of this server to let go of its claim
_running: dict[str, jobs.Job] = {}
_lock = threading.Lock()
_store: list[RunStore] = []


class How(StrEnum):
    """Where a run asked for stands."""
    STORED = "stored"  # finished and whole: Handle.result
    JOINED = "joined"  # training on this server already: Handle.job, now followed by the asking session too
    STARTED = "started"  # started by this call: Handle.job
    REFUSED = "refused"  # over a limit of this server: never started, Handle.job.error says why
    ELSEWHERE = "elsewhere"  # another server sharing the run folder makes it (wait_elsewhere)
    ABSENT = "absent"  # none of these, and the call was not to start it


@dataclass(frozen=True)
class Run:
    """One run, by its store key (`key`): its kind, and what starting it takes. `work` is a callable
    `work(job)` or a lora_core.executor.Work, which a cluster can run (service.jobs.Job). `keep(result)`
    gives (record, live) for the store when the result is whole, or None (a stopped run); live None keeps
    the record in memory too (lora_core.store.RunStore.put). `steps`, `hidden` and `load` are what it costs, for
    the server's caps (service.limits). `revive` makes a record read from disk usable; it is then shared
    from memory."""
    key: str
    kind: Kind
    work: object = None
    keep: Callable | None = None
    steps: int = 0
    hidden: tuple[int, ...] = ()
    revive: Callable | None = None
    load: int = 0  # images × weights it trains through (lora_core.Experiment.total_work), for the cost cap

    def __post_init__(self):
        object.__setattr__(self, "kind", Kind(self.kind))


@dataclass(frozen=True)
class Handle:
    """What `obtain` found or did: `how` (How), the stored `result`, or the `job` to follow (its result,
    error and progress)."""
    how: How
    result: object = None
    job: jobs.Job | None = None


def store() -> RunStore:
    """The server's run store, made on first use (after the environment names its folder)."""
    with _lock:
        if not _store:
            _store.append(RunStore(runs_dir(), STORE_BYTES, problem=works.record_problem))
        return _store[0]


def key(experiment, kind: Kind, device: str) -> str:
    """The store's key of the run `kind` that `experiment` describes, on this server."""
    kind = Kind(kind)
    return run_key(kind, experiment.identity(kind), environment(device, TRAINING_THREADS))


def find(run: Run | str, revive=None):
    """The finished run, from memory or disk, or None (lora_core.store.RunStore.get)."""
    if isinstance(run, Run):
        run, revive = run.key, run.revive
    return store().get(run, revive, share=revive is not None)


def running(run: str) -> jobs.Job | None:
    """This server's job making the run `run`, unless it is stopping."""
    with _lock:
        job = _running.get(run)
    return job if job is not None and not job.stopping else None


def obtain(run: Run, session_id: str | None, start: bool = True) -> Handle:
    """The run `run` for the session `session_id`: STORED with its result; else JOINED when it trains on
    this server (the session now follows it); else ELSEWHERE when another server makes it; else, when
    `start`, STARTED (a new job followed by the session and counted against it) or REFUSED; else ABSENT."""
    found = find(run)
    if found is not None:
        return Handle(How.STORED, result=found)
    joined = running(run.key)
    if joined is not None:
        if session_id is not None:
            joined.watch(session_id)
        return Handle(How.JOINED, job=joined)
    if not start:
        return Handle(How.ELSEWHERE if elsewhere(run.key) else How.ABSENT)
    return _start(run, session_id)


def _start(run: Run, session_id: str | None) -> Handle:
    with _lock:
        job = _running.get(run.key)
    if job is not None and job.stopping:  # ours, still letting go of the run's claim
        job.wait(STOPPING_WAIT_S)
    with _lock:
        job = _running.get(run.key)
        if job is not None and not job.stopping:
            how = How.JOINED
        else:
            claim = run_claims.claim(runs_dir(), run.key)
            if claim is None:
                return Handle(How.ELSEWHERE)
            try:
                job = jobs.Job(run.kind, run.work, owners=jobs.SESSIONS.owners_of(session_id),
                               cost=(run.steps, run.hidden, run.load), settle=_settle(run.key, run.keep, claim))
            except BaseException:
                claim.release()
                raise
            if job.refused:
                claim.release()
                return Handle(How.REFUSED, job=job)
            _running[run.key] = job
            how = How.STARTED
    if session_id is not None:
        job.watch(session_id)
    return Handle(how, job=job)


def _settle(run: str, keep, claim: run_claims.Claim):
    """What a run's job does once it has ended: store a whole result, let go of the run's claim, leave
    the running runs — in that order, so that a page never finds the run in neither place."""
    def settle(job: jobs.Job) -> None:
        try:
            kept = keep(job.result) if keep is not None and job.result is not None and not job.stopping else None
            if kept is not None:
                error = store().put(run, *kept)
                if error is not None:
                    log.warning("Run %s kept in memory only: %s", run[:12], error)
                tidy(runs_dir(), cache_limit_bytes())  # the folder under its limit, oldest out
        finally:
            claim.release()
            with _lock:
                if _running.get(run) is job:
                    del _running[run]
    return settle


def elsewhere(run: str) -> bool:
    """Whether another server sharing the run folder is making this run now."""
    with _lock:
        if run in _running:
            return False
    return not run_claims.lapsed(runs_dir(), run)


def wait_elsewhere(run: str, deadline_s: float) -> bool:
    """Wait until another server's run is in the store or its claim lapses (its server stopped), for at
    most `deadline_s` seconds; whether the wait ended before the deadline."""
    until = time.monotonic() + deadline_s
    while not store().path(run).exists() and elsewhere(run):
        if time.monotonic() >= until:
            return False
        time.sleep(ELSEWHERE_POLL_S)
    return True
