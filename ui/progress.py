"""A job's progress on a page: a progress bar, and the loss curve as it grows (service.jobs runs the job).

A click in Streamlit reruns the script and interrupts the drawing, never the job: the next pass follows it
again.
"""
import time

import streamlit as st

from service import jobs
from service.jobs import Job
from ui import charts

POLL_S = 0.25  # how often the progress bar is redrawn
LIVE_CHART_AFTER_S = 1.0  # a run shorter than this (counted from its first step, not its wait in line) shows its
# progress bar only: drawing a chart would take the cores from the run's own test pass
LIVE_CHART_EVERY_S = 0.5  # the pause between the live chart's redraws: each builds a plotly figure on the server
# and makes the browser draw the chart anew, which a class's server pays for every follower
HEADER_STOP = ("Streamlit's own Stop (top right) does not end the training, and this page picks its progress up "
               "again by itself: use the Stop button here to end it.")


def follow(job: Job, what: str, live_chart: bool = True) -> None:
    """Show a progress bar (and, once the run has trained for LIVE_CHART_AFTER_S, the loss curve as it grows)
    until the job ends; then clear them.

    A rerun (a click on a widget, Streamlit's header Stop) interrupts this loop, not the job: the next run
    follows it again.
    """
    note, bar, chart = st.empty(), st.empty(), st.empty()  # the note above the bar, where the eye is
    note.caption(HEADER_STOP)
    drawn, shown, training_since, charted = -1, None, None, 0.0
    while True:
        finished = job.done  # read first, so that the last drawing has every step
        step, total = job.step, job.total
        value, text = jobs.status(job, what)
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
