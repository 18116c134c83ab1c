"""Runs by their description, shared by every session on the server: found in the run store (memory, then
disk), joined while they train, started once.

A page asks for the run its experiment describes. If the store has it, the page shows it at once: a link,
a reload, a second tab or another student never trains it again. If it is training (a reload mid-run, or
a classmate who clicked first), the page follows that training. Otherwise the page offers to start it.
A finished run is stored only when it is whole; a stopped one stays with the sessions that followed it.

Several app servers can share one run folder (replicas behind a proxy): a server that starts a run claims
its key there (lora_core.run_claims), and the others, asked for the same run, wait for its file rather than
train it again.
"""
import threading
import time

import streamlit as st

from lora_core import run_claims, works
from lora_core.checkpoints import tidy
from lora_core.store import RunStore, environment, run_key
from service.kinds import Kind
from ui import fair, jobs, server

TRAINING_THREADS = 1  # every training runs on one torch thread (lora_core.parallel), whatever the server's load
STORE_BYTES = 1024 * 2**20  # finished runs kept in memory (their tensors); the disk keeps every one
ELSEWHERE_POLL_S = 0.5  # how often a page waiting for another server's run looks for its file
STOPPING_WAIT_S = 30  # how long a new start waits for a stopping run of this server to let go of its claim
MADE_HELP = "Already made with exactly these settings: shown below."
STOP_HELP = "End after the current step; what finished is kept."
# the prefix of a page's session-state and widget keys for its run, where it is not the kind's own name
SESSION_PREFIX = {Kind.FINETUNE: "lora", Kind.INSPECT: "insp", Kind.COMPARE: "sweep"}
_running: dict[str, jobs.Job] = {}
_lock = threading.Lock()
_store: list[RunStore] = []


def store() -> RunStore:
    """The server's run store, made on first use (after the environment names its folder)."""
    with _lock:
        if not _store:
            _store.append(RunStore(server.runs_dir(), STORE_BYTES, problem=works.record_problem))
        return _store[0]


def key(experiment, kind: Kind, device: str) -> str:
    """The store's key of the run `kind` that `experiment` describes, on this server."""
    kind = Kind(kind)
    return run_key(kind, experiment.identity(kind), environment(device, TRAINING_THREADS))


def running(run: str) -> jobs.Job | None:
    with _lock:
        job = _running.get(run)
    return job if job is not None and not job.stopping else None


def start(run: str, kind: Kind, work, keep, session_id: str, steps: int = 0,
          hidden: tuple[int, ...] = ()) -> tuple[str, jobs.Job | None]:
    """("joined", job) when this run already trains here; else ("started", job), a new shared job counted
    against this person (ui.fair), or ("refused", job) when it is over a limit: then it never runs and its
    error says why; or ("elsewhere", None) when another server sharing the run folder trains it.
    `steps` and `hidden` are what it costs, for the server's caps. `work` is a callable `work(job)` or a
    lora_core.executor.Work, which a cluster can run (ui.jobs).

    `keep(result)` gives (record, live) for the store when the result is whole, or None (a stopped run);
    live None keeps the record in memory too (lora_core.store.RunStore.put). Followers get `result`."""
    with _lock:
        job = _running.get(run)
    if job is not None and job.stopping:  # ours, still letting go of the run's claim
        job.wait(STOPPING_WAIT_S)
    with _lock:
        job = _running.get(run)
        if job is not None and not job.stopping:
            how = "joined"
        else:
            claim = run_claims.claim(server.runs_dir(), run)
            if claim is None:
                return "elsewhere", None
            try:
                job = jobs.Job(kind, work, shared=True,
                               owners=fair.owners(session_id), steps=steps, hidden=hidden,
                               settle=_settle(run, keep, claim))
            except BaseException:
                claim.release()
                raise
            if job.refused:
                claim.release()
                return "refused", job
            _running[run] = job
            how = "started"
    job.watch(session_id)
    return how, job


def _settle(run: str, keep, claim: run_claims.Claim):
    """What a run's job does once it has ended: store a whole result, let go of the run's claim, leave
    the running runs — in that order, so that a page never finds the run in neither place."""
    def settle(job: jobs.Job) -> None:
        try:
            kept = keep(job.result) if job.result is not None and not job.stopping else None
            if kept is not None:
                error = store().put(run, *kept)
                if error is not None:
                    server.log.warning("Run %s kept in memory only: %s", run[:12], error)
                tidy(server.runs_dir(), server.cache_limit_bytes())  # the folder under its limit, oldest out
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
    return not run_claims.lapsed(server.runs_dir(), run)


def wait_elsewhere(run: str, what: str) -> None:
    """Say that another server makes this run, and wait until its file is there or its claim lapses (its
    server stopped); a click on the page ends the wait too."""
    with st.spinner(f"{what}: another server of this site is making exactly this run; it appears here when "
                    "it is done…"):
        while not store().path(run).exists() and elsewhere(run):
            time.sleep(ELSEWHERE_POLL_S)


def find(run: str, revive=None, share: bool = False):
    """The finished run, from memory or disk, or None (lora_core.store.RunStore.get)."""
    return store().get(run, revive, share)


# --- one page's run --------------------------------------------------------------------------------

def partial(prefix: str, run: str):
    """This session's stopped run under the session-state `prefix` (SESSION_PREFIX), when it is the one
    described now."""
    held = st.session_state.get(f"{prefix}_partial")
    return held["result"] if held is not None and held["key"] == run else None


def say_next_pass(prefix: str, text: str, level: str = "info") -> None:
    """A message (st.info or st.error) under the buttons of this page's `prefix` controls in its next pass."""
    st.session_state[f"{prefix}_note"] = (level, text)


def stop(prefix: str) -> None:
    """A Stop button's callback: this session stops following; the run stops when nobody else follows."""
    job = st.session_state.get(f"{prefix}_job")
    if job is None:
        return
    for watcher in list(job.watchers):  # a tab closed or reloaded follows nothing: it does not keep it going
        if watcher != st.session_state.session_id and server.SESSIONS.alive(watcher) is False:
            job.release(watcher)
    others = job.release(st.session_state.session_id)
    if others:
        st.session_state[f"{prefix}_job"] = None
        say_next_pass(prefix, f"This run goes on for {others} other session(s) with the same settings: it will "
                              "appear here when it has finished (click anywhere to look again).")


def controls(of: Kind, run: str, label: str, start_work, keep, what: str, help: str, follow, revive=None,
             stop_label: str = "Stop", buttons: tuple[str, str] | None = None,
             cost: tuple[int, tuple[int, ...]] = (0, ())) -> object | None:
    """Run and Stop buttons (widget keys `buttons`, default `{prefix}_run` and `{prefix}_stop`, the prefix
    being SESSION_PREFIX's) for the run `run` of kind `of`, and its result. `cost` is (training steps,
    hidden sizes), for the caps.

    The result is the stored run (no click needed; `revive` makes a run read from disk usable, and it is
    then shared from memory), else this session's stopped one, else None. While the run trains here or
    anywhere on the server, the page follows it (`follow(job, what)`)."""
    of = Kind(of)
    prefix = SESSION_PREFIX.get(of, of.value)
    session = st.session_state.session_id
    found = find(run, revive, share=revive is not None)
    job = st.session_state.get(f"{prefix}_job")
    if job is not None and st.session_state.get(f"{prefix}_job_key") != run:
        job = None  # the settings changed: the page follows what they describe now
    if found is None and job is None and (joined := running(run)) is not None:
        job = joined  # started by a reload of this page, another tab or a classmate: follow it
        joined.watch(session)
        st.session_state[f"{prefix}_job"], st.session_state[f"{prefix}_job_key"] = joined, run
    made_elsewhere = found is None and job is None and elsewhere(run)
    run_key, stop_key = buttons or (f"{prefix}_run", f"{prefix}_stop")
    run_col, stop_col, _ = st.columns([1, 1, 3])
    run_slot, stop_slot = run_col.empty(), stop_col.empty()  # a run that ends in this pass redraws them
    refused, joined_note = None, False
    if run_slot.button(label, key=run_key, type="primary",
                       disabled=job is not None or found is not None or made_elsewhere,
                       help=help if found is None else MADE_HELP):
        how, started = start(run, of, start_work, keep, session, *cost)
        if how == "refused":
            refused = started
        elif how == "elsewhere":
            made_elsewhere = True
        else:  # started or joined before the Stop button is drawn, so that it is enabled for this run
            job, joined_note = started, how == "joined"
            st.session_state[f"{prefix}_job"], st.session_state[f"{prefix}_job_key"] = job, run
    stop_slot.button(stop_label, key=stop_key, on_click=stop, args=(prefix,), disabled=job is None,
                     help=STOP_HELP)
    st.caption(fair.caps_note())
    # The progress of a run followed in this pass. One slot, drawn in every pass whether or not a run is
    # followed: the page's later elements keep their places, so that the next pass's stale elements (shown
    # until it redraws them) are the ones it replaces, not others shifted into their place.
    live = st.empty()
    if note := st.session_state.pop(f"{prefix}_note", None):  # say_next_pass's
        getattr(st, note[0])(note[1])
    if refused is not None:
        st.error(jobs.failure(what, refused.error))
        return partial(prefix, run)
    if made_elsewhere:
        wait_elsewhere(run, what)
        st.rerun()  # the run from the store, or the Train button again if its server stopped
    if joined_note:
        st.info("Someone on this server is making exactly this run: you follow it rather than start a copy.")
    if job is not None:
        with live.container():
            follow(job, what)
        live.empty()
        st.session_state[f"{prefix}_job"] = None
        # Nothing to draw: the next pass says why, with Train enabled again.
        if job.error is not None:
            say_next_pass(prefix, jobs.failure(what, job.error), "error")
            st.rerun()
        if job.result is None:
            say_next_pass(prefix, "Stopped while waiting for a training slot: nothing was run.")
            st.rerun()
        found = find(run, revive, share=revive is not None)
        if found is None:  # stopped: this session keeps what finished, and its Train button trains the rest
            st.session_state[f"{prefix}_partial"] = {"key": run, "result": job.result}
            st.rerun()
        # Stored: the page goes on to draw it in this same pass (a rerun from the top would add a large share
        # of a LoRA click's time). Both buttons are now disabled, as a stored run's are; being redrawn in this pass
        # they need keys of their own, which no click can reach.
        run_slot.button(label, key=f"{run_key}-made", type="primary", disabled=True, help=MADE_HELP)
        stop_slot.button(stop_label, key=f"{stop_key}-made", disabled=True, help=STOP_HELP)
    return found if found is not None else partial(prefix, run)
