"""A page's Run and Stop buttons over one run of the service (service.runs.obtain), and its progress.

The page shows the stored run at once; follows the run while it trains here (started by this session, a
reload of it, another tab or a classmate); waits for it while another server makes it; and keeps a stopped
run for this session alone (service.runs stores only whole ones).
"""
import streamlit as st

from service import jobs, limits
from service import runs as service_runs
from service.kinds import Kind
from service.runs import How, Run
from ui import progress, server, streamlit_private

MADE_HELP = "Already made with exactly these settings: shown below."
STOP_HELP = "End after the current step; what finished is kept."
RUNNING_HELP = "Training now: its progress is shown below."
# the prefix of a page's session-state and widget keys for its run, where it is not the kind's own name
SESSION_PREFIX = {Kind.FINETUNE: "lora", Kind.INSPECT: "insp", Kind.COMPARE: "sweep"}


def wait_elsewhere(run: str, what: str) -> None:
    """Say that another server makes this run, and wait until its file is there or its claim lapses (its
    server stopped)."""
    busy = f"{what}: another server of this site is making exactly this run; it appears here when it is done…"
    with streamlit_private.redrawn_after_header_stop(), st.spinner(busy):
        service_runs.wait_elsewhere(run, float("inf"))


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
                              "appear here when it has finished and the page is drawn again (a click on a "
                              "button or a setting).")


def _follow_here(prefix: str, run: str, job: jobs.Job) -> None:
    st.session_state[f"{prefix}_job"], st.session_state[f"{prefix}_job_key"] = job, run


def controls(run: Run, label: str, what: str, help: str, follow, stop_label: str = "Stop",
             buttons: tuple[str, str] | None = None) -> object | None:
    """Run and Stop buttons (widget keys `buttons`, default `{prefix}_run` and `{prefix}_stop`, the prefix
    being SESSION_PREFIX's) for `run`, and its result.

    The result is the stored run (no click needed), else this session's stopped one, else None. While the
    run trains here or anywhere on the server, the page follows it (`follow(job, what)`)."""
    prefix = SESSION_PREFIX.get(run.kind, run.kind.value)
    session = st.session_state.session_id
    job = st.session_state.get(f"{prefix}_job")
    if job is not None and st.session_state.get(f"{prefix}_job_key") != run.key:
        job = None  # the settings changed: the page follows what they describe now
    seen = service_runs.obtain(run, session, start=False)
    found = seen.result
    if job is None and seen.how is How.JOINED:
        job = seen.job  # started by a reload of this page, another tab or a classmate: follow it
        _follow_here(prefix, run.key, job)
    made_elsewhere = job is None and seen.how is How.ELSEWHERE
    run_key, stop_key = buttons or (f"{prefix}_run", f"{prefix}_stop")
    run_col, stop_col, _ = st.columns([1, 1, 3])
    run_slot, stop_slot = run_col.empty(), stop_col.empty()  # a run that ends in this pass redraws them
    clicked = None
    if run_slot.button(label, key=run_key, type="primary",
                       disabled=job is not None or found is not None or made_elsewhere,
                       help=help if found is None else MADE_HELP):
        clicked = service_runs.obtain(run, session)
        found = clicked.result
        made_elsewhere = clicked.how is How.ELSEWHERE
        if clicked.how in (How.STARTED, How.JOINED):  # before the Stop button is drawn, so that it is enabled
            job = clicked.job
            _follow_here(prefix, run.key, job)
            # the clicked button, drawn enabled, is replaced at once: no second click while this pass follows it
            run_slot.button(label, key=f"{run_key}-running", type="primary", disabled=True, help=RUNNING_HELP)
    stop_slot.button(stop_label, key=stop_key, on_click=stop, args=(prefix,), disabled=job is None,
                     help=STOP_HELP)
    st.caption(limits.caps_note(run.load))
    # The progress of a run followed in this pass. One slot, drawn in every pass whether or not a run is
    # followed: the page's later elements keep their places, so that the next pass's stale elements (shown
    # until it redraws them) are the ones it replaces, not others shifted into their place.
    live = st.empty()
    if note := st.session_state.pop(f"{prefix}_note", None):  # say_next_pass's
        getattr(st, note[0])(note[1])
    if clicked is not None and clicked.how is How.REFUSED:
        st.error(jobs.failure(what, clicked.job.error))
        if (blocking := getattr(clicked.job.error, "blocking", None)) is not None:
            # the person's other training: once it ends, the refusal is no longer true
            with live.container(), streamlit_private.redrawn_after_header_stop():
                progress.follow(blocking, "Your other training", live_chart=False)
            live.empty()
            st.rerun()
        return partial(prefix, run.key)
    if made_elsewhere:
        wait_elsewhere(run.key, what)
        st.rerun()  # the run from the store, or the Train button again if its server stopped
    if clicked is not None and clicked.how is How.JOINED:
        st.info("Someone on this server is making exactly this run: you follow it rather than start a copy.")
    if job is not None:
        with live.container(), streamlit_private.redrawn_after_header_stop():
            follow(job, what)
        live.empty()
        found = _ended(prefix, run, job, what)
        # Stored: the page goes on to draw it in this same pass (a rerun from the top would add a large share
        # of a LoRA click's time). Both buttons are now disabled, as a stored run's are; being redrawn in this
        # pass they need keys of their own, which no click can reach.
        run_slot.button(label, key=f"{run_key}-made", type="primary", disabled=True, help=MADE_HELP)
        stop_slot.button(stop_label, key=f"{stop_key}-made", disabled=True, help=STOP_HELP)
    return found if found is not None else partial(prefix, run.key)


def _ended(prefix: str, run: Run, job: jobs.Job, what: str):
    """The stored run once the followed `job` has ended; when nothing was stored, the next pass says why
    (with Train enabled again), and this one ends here."""
    st.session_state[f"{prefix}_job"] = None
    if job.error is not None:
        say_next_pass(prefix, jobs.failure(what, job.error), "error")
        st.rerun()
    if job.result is None:
        say_next_pass(prefix, "Stopped while waiting for a training slot: nothing was run.")
        st.rerun()
    found = service_runs.find(run)
    if found is None:  # stopped: this session keeps what finished, and its Train button trains the rest
        st.session_state[f"{prefix}_partial"] = {"key": run.key, "result": job.result}
        st.rerun()
    return found
