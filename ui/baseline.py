"""This user's baseline: training or reusing one, following it, stopping it. Used by two pages."""
import streamlit as st

import lora_core as lc
from ui import jobs
from ui.context import Context

NOTES = {
    "reused": "Reused a baseline trained earlier with these settings (by you or someone else on this "
              "server): same dataset, device and settings give the same model, so it was not trained again.",
    "joined": "Someone else on this server is training a baseline with exactly these settings: you are "
              "following that training rather than starting a second copy.",
    "restored": "Loaded from this server's checkpoint of a baseline trained earlier with these settings "
                "(its SHA-256 checked), so it was not trained again.",
    "retrained": "The checkpoint saved for these settings was damaged or incomplete, so it was not loaded: "
                 "this baseline is trained again, and saved afresh when it completes.",
}


def current(ctx: Context) -> dict | None:
    """{"run", "key", "how"} of this user's baseline when it fits the dataset and device chosen now."""
    held = st.session_state.get("baseline")
    if held and held["key"][:2] == (ctx.data.name, str(ctx.data.train_x.device)):
        return held
    return None


def running() -> jobs.Job | None:
    return st.session_state.get("baseline_job")


def start(ctx: Context, config: lc.BaselineConfig) -> None:
    how, job_or_run = jobs.start_baseline(ctx.data, config, st.session_state.session_id)
    key = jobs.baseline_key(ctx.data, config)
    if how in ("reused", "restored"):
        st.session_state.baseline = {"run": job_or_run, "key": key, "how": "reused"}
        if how == "restored":
            st.session_state.baseline_message = NOTES["restored"]
    else:
        st.session_state.baseline_job = job_or_run
        st.session_state.baseline_job_info = {"key": key, "how": how}


def stop() -> None:
    """The Stop button's callback: runs first thing in the rerun the click causes."""
    job = running()
    if job is None:
        return
    others = jobs.leave_baseline(job, st.session_state.session_id)
    if others:  # the training goes on for them; this user simply stops following it
        st.session_state.baseline_job = None
        st.session_state.baseline_message = (
            f"Training continues for {others} other session(s) with the same settings; click Train baseline "
            "again to follow it, or to reuse the baseline once it has finished.")


def follow(ctx: Context) -> None:
    """While this user's baseline trains, show its progress; when it ends, keep what it learned and rerun."""
    job = running()
    if job is None:
        return
    info = st.session_state.baseline_job_info
    if info["how"] in ("joined", "retrained"):
        st.info(NOTES[info["how"]])
    jobs.follow(job, "Training the baseline")
    st.session_state.baseline_job = None
    kept = " Your previous baseline is kept." if st.session_state.get("baseline") else ""
    if job.error is not None:
        st.session_state.baseline_error = jobs.failure("Training", job.error) + kept
    elif job.result is None:
        st.session_state.baseline_message = "Stopped while waiting for a training slot: nothing was trained."
    else:
        st.session_state.baseline = {"run": job.result, "key": info["key"], "how": info["how"]}
        if info["how"] == "retrained":
            st.session_state.baseline_message = ("The checkpoint saved for these settings was damaged or "
                                                 "incomplete, so it was not loaded: this baseline was trained "
                                                 "again and saved afresh.")
    st.rerun()  # draw the page again from the top: results in, Train enabled, Stop disabled


def messages() -> None:
    """Notes about the last baseline action: reused, stopped early, or the training failed."""
    if error := st.session_state.pop("baseline_error", None):
        st.error(error)
    if message := st.session_state.pop("baseline_message", None):
        st.info(message)


def require(ctx: Context, key: str) -> dict:
    """This user's baseline; if there is none, offer to train the default one and stop the page here."""
    held = current(ctx)
    if held is not None:
        return held
    st.info(f"LoRA adapts a trained network, and there is no baseline for {ctx.data.name} on {ctx.device} "
            "yet. Train one on the **Baseline training** page, or here with the default settings.")
    train_col, stop_col, _ = st.columns([2, 1, 3])
    if train_col.button("Train the default baseline", key=f"{key}_train_baseline", type="primary",
                        disabled=running() is not None,
                        help="The default settings: hidden sizes 1000 and 2000, 3 epochs, batch 64. "
                             "Reused at once when someone has trained it already."):
        start(ctx, lc.BaselineConfig(seed=ctx.seed))
    stop_col.button("Stop training", key=f"{key}_stop_baseline", on_click=stop, disabled=running() is None,
                    help="End training after the current step; the model keeps what it has learned.")
    messages()
    follow(ctx)  # reruns the page when the baseline is ready
    st.stop()
