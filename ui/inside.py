"""The "Inside the update" pages' Streamlit glue: their widget defaults, the run settings they start from,
their jobs started and followed (the work: service.study_jobs, service.frontier), the adapters the
inspector can look into.
"""
from dataclasses import replace

import streamlit as st

import lora_core as lc
from lora_core import anatomy
from lora_core.checkpoints import digest
from lora_core.results import expecting
from service import frontier, jobs, runs, study_jobs
from service.kinds import Kind
from service.runs import Run
from ui import adapters as ui_adapters
from ui import charts, experiment, finetunes, progress, run_controls
from views import inside_figures, inspector, tables

# The widgets of these pages that only choose what to look at (the study settings are the experiment's:
# ui.experiment), stored with the app's other defaults (ui/state.py) so that leaving a page keeps them.
DEFAULTS = {"insp_layer": None, "insp_k": 1, "insp_image": 0, "insp_source": None, "oracle_layer": None}
INIT_LABELS = {
    "kaiming": "B zero, A kaiming (default)",
    "gaussian": "B zero, A gaussian",
    "zeros": "both zero (the notebook)",
    "random": "both random",
    "orthogonal": "orthogonal halves (BA = 0)",
    "pissa": "PiSSA: W's top r singular directions",
    "pissa_niter_4": "PiSSA, fast SVD (4 iterations)",
    "olora": "OLoRA: W's first r QR columns",
}


# --- the run settings these pages start from -------------------------------------------------------

def study_config(kind: str) -> lc.FinetuneConfig:
    """The finetune study `kind` trains, from the experiment (the LoRA page's settings and the study's own);
    shows an error and stops the page when it cannot run."""
    if kind != "finetune" and (problem := experiment.problem_for(kind, kind)):
        st.error(tables.settings_error(ValueError(problem)))
        st.stop()
    # only the LoRA page's settings this study depends on: a rank that does not fit there does not stop a
    # study of ranks
    if problem := experiment.problem_for(kind, "finetune"):
        st.error(tables.settings_error(ValueError(problem)) + " Fix it on the **LoRA finetuning** page.")
        st.stop()
    try:
        return experiment.current().study(kind)
    except ValueError as err:
        st.error(tables.settings_error(err))
        st.stop()


# --- jobs ------------------------------------------------------------------------------------------

@st.cache_resource(max_entries=48, show_spinner=False)
def _weight_spectrum(weight_digest: str, _weight):
    """One frozen W's singular values, done once per server. Keyed by W's own numbers, the only thing they
    depend on: not by a baseline's settings, nor by a model, whose adapted layers are each student's choice."""
    return anatomy.spectrum(_weight)


def _known_spectrum(weight):
    return _weight_spectrum(digest({"W": weight}), weight)


def inspection(model) -> dict:
    """What the inspector shows about a LoRA model: per-layer views and, for linear1, A's rows as images."""
    return {"views": study_jobs.layer_views(model, _known_spectrum), "patterns": study_jobs.input_patterns(model)}


RESULT_OF = {Kind.INSPECT: lc.Inspection, Kind.ORACLE: lc.OracleStudy, Kind.INITS: lc.GalleryStudy,
             Kind.SCALING: lc.ScalingStudy, Kind.FRONTIER: lc.FrontierStudy}


def _revive_inspection(base: lc.BaselineRun):
    def build(stored: lc.Inspection) -> lc.Inspection:
        return replace(stored, run=finetunes.revive(base)(stored.finetune).run)
    return build


def work_for(kind: str, held: dict, data: lc.Dataset, config: lc.FinetuneConfig, exp: lc.Experiment):
    """The job's work for study `kind` ("inspect", "oracle", "inits", "scaling", "frontier")."""
    base = held["run"]
    return {
        "inspect": lambda: study_jobs.inspect_work(base, data, config, exp.inspect_every, _known_spectrum),
        "oracle": lambda: study_jobs.oracle_work(base, data, config, exp.oracle.ranks, exp.oracle.full_lr),
        "inits": lambda: study_jobs.gallery_work(base, data, config),
        "scaling": lambda: study_jobs.scaling_work(base, data, config, exp.scaling.ranks),
        "frontier": lambda: frontier.frontier_work(base, data, config, exp.frontier.ranks),
    }[kind]()


def run(kind: Kind, held: dict, ctx, config: lc.FinetuneConfig, label: str, what: str, help: str, draw=None):
    """Run and Stop for the study `kind` the experiment describes; its result (stored, or this session's
    stopped one) or None."""
    kind = Kind(kind)
    exp, base = experiment.current(), held["run"]
    work = work_for(kind, held, ctx.data, config, exp)
    inspecting = kind is Kind.INSPECT
    key = runs.key(exp, kind, ctx.device)
    run = Run(key, kind, work=work, keep=study_jobs.keep_inspection if inspecting else study_jobs.keep,
              steps=exp.total_steps(kind, len(ctx.data.train_y)), revive=expecting(RESULT_OF[kind]),
              load=exp.total_work(kind, len(ctx.data.train_y)))
    result = run_controls.controls(run, label, what=what, help=help,
                                   follow=lambda job, text: follow(job, text, draw))
    if inspecting and result is not None and result.run is None:  # stored: revived once per session onto a copy
        held_key, revived = st.session_state.get("insp_revived", (None, None))
        if held_key != key:
            revived = _revive_inspection(base)(result)
            st.session_state.insp_revived = (key, revived)
        result = revived
    if result is not None and result.stopped:
        st.info("Stopped: only the runs that finished are shown." if not inspecting else
                "Stopped: this is the partly trained adapter.")
    return result


# --- following a job ---------------------------------------------------------------------------------

def follow(job: jobs.Job, what: str, draw=None) -> None:
    """A progress bar, and `draw(job)` redrawn in place while the job runs (a live chart); then cleared."""
    bar, live = st.empty(), st.empty()
    tick = 0
    while True:
        finished = job.done  # read first: the last drawing then has every step
        value, text = jobs.status(job, what, finishing="evaluating")
        bar.progress(value, text=text)
        if draw is not None and job.step and not finished:
            tick += 1
            with live.container():
                draw(job, tick)  # element keys must differ on every redraw within one run
        if finished:
            break
        job.wait(progress.POLL_S * 2)  # returns at once when the job ends
    bar.empty()
    live.empty()


def subjects(held: dict, classes) -> dict[str, dict]:
    """The adapters the inspector can look into: the one trained on this page, the LoRA page's current one.

    Each: the model carrying it, a caption, a warning (stopped early) or None, and what this page
    recorded while training it (norms, snapshots, views, patterns) when it trained it.
    """
    found = {}
    own = held.get("inspected")
    if own is not None:
        run = own.run
        stopped = len(run.losses) < run.config.steps
        found["trained here"] = {
            "norms": own.norms, "snapshots": own.snapshots, "views": own.views, "patterns": own.patterns,
            "model": run.model,
            "caption": f"{tables.describe_finetune(run.config, classes)}; {len(run.losses):,} steps.",
            "warning": (f"Stopped after {len(run.losses):,} of {run.config.steps:,} steps: this is the partly "
                        "trained adapter.") if stopped else None}
    page = ui_adapters.current(held["key"])
    if page is not None:
        found["from the LoRA finetuning page"] = {"model": page.model, "caption": page.caption,
                                                  "warning": page.warning}
    return found


def with_views(subject: dict) -> dict:
    """The LoRA page's adapter with what the inspector shows of it (inspection), computed once per adapter; a
    subject trained here has them already."""
    if "views" in subject:
        return subject
    cached = st.session_state.get("insp_page_views")
    if cached is None or cached["model"] is not subject["model"]:
        with st.spinner("Computing the SVDs of W and ΔW…"):
            cached = st.session_state.insp_page_views = {"model": subject["model"], **inspection(subject["model"])}
    return {**subject, **cached}


def draw_live(job, tick: int) -> None:
    """The inspector's training as it runs: ‖ΔW‖_F of each layer so far, and ΔW's latest singular values."""
    left, right = st.columns(2)
    with left:
        charts.show(inside_figures.norm_curves(job.live.norms, f"‖ΔW‖_F of each layer (live, step {job.step:,})"),
                    key=f"insp_live_norms_{tick}",
                    caption=f"‖ΔW‖_F of each layer so far: {inspector.values(job.live.norms, lambda v: v[-1])}.")
    with right:
        if job.live.snapshots:
            step, spectra = job.live.snapshots[-1]
            charts.show(inside_figures.live_spectra(spectra, step), key=f"insp_live_spectra_{tick}",
                        caption=f"ΔW's singular values at step {step:,}; largest: "
                                f"{inspector.values(spectra, lambda v: max(v, default=0))}.")
