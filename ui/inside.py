"""The "Inside the update" pages' shared parts: their widget defaults, the run settings they start from,
their background jobs, and core results reshaped into rows for tables and charts.

Every number comes from lora_core (anatomy, studies, finetuning); nothing here computes on tensors.
"""
import time
from dataclasses import asdict, dataclass, field, replace

import pandas as pd
import streamlit as st

import lora_core as lc
from lora_core import anatomy, parallel, studies, works
from lora_core.checkpoints import digest
from lora_core.results import expecting
from lora_core.settings import STRENGTHS
from service import jobs, runs
from service.kinds import Kind
from service.runs import Run
from ui import adapters as ui_adapters
from ui import experiment, finetunes, progress, run_controls
from views import tables

# The widgets of these pages that only choose what to look at (the study settings are the experiment's:
# ui.experiment), stored with the app's other defaults (ui/state.py) so that leaving a page keeps them.
DEFAULTS = {"insp_layer": None, "insp_k": 1, "insp_image": 0, "insp_source": None, "oracle_layer": None}
PATH_STRENGTHS = (0.0, 0.5, 1.0, 1.5)  # evaluated right after training: the paths drawn (the fill adds the rest)
INIT_LABELS = {
    "kaiming": "B zero, A kaiming (default)",
    "gaussian": "B zero, A gaussian",
    "zeros": "both zero (the notebook)",
    "random": "both random",
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


def describe(config: lc.FinetuneConfig, classes, with_rank: bool = True) -> str:
    rank = f"rank {config.rank}, " if with_rank else ""
    return (f"{rank}α {config.alpha:g} on {', '.join(config.targets)}; {config.steps:,} steps on "
            f"{tables.class_names(classes, config.digits)}; learning rate {config.lr:g}; seed {config.seed}")


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
    return {"views": _views(model), "patterns": _patterns(model)}


def _views(model) -> list:
    return anatomy.inspect_layers(model, anatomy.weight_spectra(model, _known_spectrum))


def _patterns(model):
    return anatomy.input_patterns(model) if "linear1" in lc.lora_layers(model) else None


def delta_spectra(model) -> dict[str, list[float]]:
    return {name: S.tolist() for name, S in anatomy.delta_spectra(model).items()}


@dataclass
class LiveInspection:
    """What the inspector draws of an adapter while it trains: each layer's ‖ΔW‖_F after each step (step 0
    first), and every few steps ΔW's singular values, (step, layer → top-r σ)."""
    norms: dict[str, list[float]] = field(default_factory=dict)
    snapshots: list[tuple[int, dict[str, list[float]]]] = field(default_factory=list)


def _inspect(base: lc.BaselineRun, base_key: str, data: lc.Dataset, config: lc.FinetuneConfig, every: int):
    """A LoRA finetune the page looks into while it trains, through `job.live` (a LiveInspection).

    `finetune_lora(on_start=…)` hands over the adapted model before the first step; every step adds each
    layer's ‖ΔW‖_F, every `every` steps a snapshot of ΔW's r singular values (from the factors: cheap, so
    optional and sparse; at step 0 they are all zero, B being zero)."""
    def work(job: jobs.Job) -> lc.Inspection:
        live = job.live = LiveInspection()
        adapted = []

        def on_start(model) -> None:
            adapted.append(model)
            live.norms = {name: [value] for name, value in anatomy.layer_update_norms(model).items()}  # step 0

        def on_step(step: int, total: int, loss: float) -> None:
            for name, value in anatomy.layer_update_norms(adapted[0]).items():
                live.norms[name].append(value)
            if every and (step % every == 0 or step == total):
                live.snapshots.append((step, delta_spectra(adapted[0])))
            job.on_step(step, total, loss)

        run = lc.finetune_lora(base.model, data, config, on_step=on_step, should_stop=job.should_stop,
                               on_start=on_start, evaluated=False)  # the inspector shows no accuracy
        job.label = "computing the SVDs of W and ΔW"
        return lc.Inspection(config, live.norms, live.snapshots, _views(run.model), _patterns(run.model),
                             len(run.losses) < config.steps, run=run)
    return work


def _oracle(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig, ranks, full_lr: float):
    """studies.rank_oracle, full finetuning at its own learning rate."""
    def work(job: jobs.Job) -> lc.OracleStudy:
        found = studies.rank_oracle(base.model, data, config, ranks, on_progress=job.on_progress,
                                    should_stop=job.should_stop, full_lr=full_lr, workers=job.cores)
        stopped = found is None or len(found.ranks) < len(set(ranks))
        return lc.OracleStudy(config, full_lr, found, stopped)
    return work


def _gallery(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig):
    def work(job: jobs.Job) -> lc.GalleryStudy:
        curves = studies.init_gallery(base.model, data, config, on_progress=job.on_progress,
                                      should_stop=job.should_stop, workers=job.cores)
        return lc.GalleryStudy(config, curves, len(curves) < len(lc.lora.INITS))
    return work


def _scaling(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig, ranks):
    def work(job: jobs.Job) -> lc.ScalingStudy:
        rows = studies.scaling_sweep(base.model, data, config, ranks, on_progress=job.on_progress,
                                     should_stop=job.should_stop, workers=job.cores)
        return lc.ScalingStudy(config, rows, len(rows) < 2 * len(set(ranks)))
    return work


def _frontier(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig, ranks):
    """One adapter per rank; then the frontier at a few strengths, so that each rank's path shows at once."""
    def work(job: jobs.Job) -> lc.FrontierStudy:
        adapters = studies.train_frontier_adapters(base.model, data, config, ranks, on_progress=job.on_progress,
                                                   should_stop=job.should_stop, workers=job.cores)
        points = {}
        for strength in PATH_STRENGTHS:
            job.label = f"evaluating every adapter at strength {strength:g}"
            points[strength] = studies.frontier(base.model, data, adapters, config.digits, strength, base.evaluation)
        study = lc.FrontierStudy(config, adapters, points, len(adapters) < len(set(ranks)))
        jobs.in_background(_fill_strengths, points, study.focus, base, data, adapters, config.digits)
        return study
    return work


STUDIES = lc.OracleStudy | lc.GalleryStudy | lc.ScalingStudy | lc.FrontierStudy
RESULT_OF = {Kind.INSPECT: lc.Inspection, Kind.ORACLE: lc.OracleStudy, Kind.INITS: lc.GalleryStudy,
             Kind.SCALING: lc.ScalingStudy, Kind.FRONTIER: lc.FrontierStudy}


def _keep(result: STUDIES):
    if result.stopped:
        return None
    if isinstance(result, lc.FrontierStudy):  # its strengths are still being filled in: store those there are now
        return replace(result, points=dict(result.points)), result  # (a dict copy is atomic under the GIL)
    return result, result


def _keep_inspection(result: lc.Inspection):
    if result.stopped:
        return None
    return replace(result, run=None, finetune=works.finetune_record(works.CheckedFinetune(result.run, None))), None


def _revive_inspection(base: lc.BaselineRun):
    def build(stored: lc.Inspection) -> lc.Inspection:
        return replace(stored, run=finetunes.revive(base)(stored.finetune).run)
    return build


def work_for(kind: str, held: dict, data: lc.Dataset, config: lc.FinetuneConfig, exp: lc.Experiment):
    """The job's work for study `kind` ("inspect", "oracle", "inits", "scaling", "frontier")."""
    base = held["run"]
    return {
        "inspect": lambda: _inspect(base, held["key"], data, config, exp.inspect_every),
        "oracle": lambda: _oracle(base, data, config, exp.oracle.ranks, exp.oracle.full_lr),
        "inits": lambda: _gallery(base, data, config),
        "scaling": lambda: _scaling(base, data, config, exp.scaling.ranks),
        "frontier": lambda: _frontier(base, data, config, exp.frontier.ranks),
    }[kind]()


def run(kind: Kind, held: dict, ctx, config: lc.FinetuneConfig, label: str, what: str, help: str, draw=None):
    """Run and Stop for the study `kind` the experiment describes; its result (stored, or this session's
    stopped one) or None."""
    kind = Kind(kind)
    exp, base = experiment.current(), held["run"]
    work = work_for(kind, held, ctx.data, config, exp)
    inspecting = kind is Kind.INSPECT
    key = runs.key(exp, kind, ctx.device)
    run = Run(key, kind, work=work, keep=_keep_inspection if inspecting else _keep,
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


FILL_PATIENCE_S = 600  # how long the fill waits for the server's trainings to end before it gives up
_latest_fill = [0]  # the newest frontier's fill; an older one ends (its tab has moved on or closed)


def _fill_strengths(points: dict, focus: list, base: lc.BaselineRun, data: lc.Dataset, adapters, digits) -> None:
    """The frontier at every strength of the slider, nearest first to the one a page asked for last
    (`focus[0]`, 1 until then), one adapter at a time on every core, only while no training runs and no page
    computes a pass of its own (it must not slow anyone's: it steps aside between adapters and between the
    chunks of a pass): a slider value near the last one is then read, not computed.
    The page computes one itself if it comes before this. One fill at a time on the server: a newer frontier's
    fill ends this one."""
    _latest_fill[0] += 1
    mine = _latest_fill[0]
    deadline = time.monotonic() + FILL_PATIENCE_S

    def superseded() -> bool:
        return jobs.CLOSING.is_set() or _latest_fill[0] != mine

    def busy() -> bool:
        return not jobs.CLOSING.is_set() and bool(jobs.SLOTS.running() or parallel.waiting())

    def wait_for_a_free_server() -> bool:
        while busy():
            if superseded() or time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return not superseded()

    while pending := [s for s in strengths() if s not in points]:
        strength = min(pending, key=lambda s: (abs(s - focus[0]), s))
        found = []
        for rank, adapter in adapters.items():
            if not wait_for_a_free_server():
                return
            try:
                with parallel.using(parallel.cores()), parallel.background(busy):
                    found += studies.frontier(base.model, data, {rank: adapter}, digits, strength, base.evaluation)
            except RuntimeError as err:  # the server is stopping: Python's exit makes thread pools refuse work
                if "after interpreter shutdown" not in str(err):  # (before our atexit hook sets jobs.CLOSING)
                    raise
                return
        points.setdefault(strength, found)  # a page may have computed it meanwhile: the same numbers


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
            "model": run.model, "caption": f"{describe(run.config, classes)}; {len(run.losses):,} steps.",
            "warning": (f"Stopped after {len(run.losses):,} of {run.config.steps:,} steps: this is the partly "
                        "trained adapter.") if stopped else None}
    page = ui_adapters.current(held["key"])
    if page is not None:
        found["from the LoRA finetuning page"] = {"model": page["model"], "caption": page["caption"],
                                                  "warning": page["warning"]}
    return found


# --- results reshaped for tables -------------------------------------------------------------------

def layer_frame(views, norms: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame([{
        "layer": v.name, "ΔW shape": "×".join(map(str, v.delta.shape)), "rank r": v.rank,
        "‖ΔW‖_F": norms[v.name], "effective rank": v.effective_rank,
        "energy in top direction": float(anatomy.energy(v.delta_singular_values)[0]),
        "σ₁(ΔW)": float(v.delta_singular_values[0]), "σ₁(W)": float(v.weight_singular_values[0]),
    } for v in views])


def oracle_frame(result: lc.OracleStudy, layer: str) -> pd.DataFrame:
    found = result.oracle.layers[layer]
    rows = []
    for rank in result.ranks:
        angles = found.similarity[rank]["angles_deg"]
        rows.append({"rank r": rank, "energy of the full ΔW in its top r": float(found.energy[rank - 1]),
                     "subspace similarity": found.similarity[rank]["similarity"],
                     "chance level r/d": anatomy.chance_similarity(rank, found.out_features),
                     "smallest angle (°)": float(angles.min()), "largest angle (°)": float(angles.max())})
    return pd.DataFrame(rows)


def gallery_frame(curves) -> pd.DataFrame:
    return pd.DataFrame([{
        "initialisation": INIT_LABELS.get(c.init, c.init), "init": c.init,
        "largest output change before any step": c.initial_change,
        "final ‖ΔW‖_F": c.update_norms[-1] if c.update_norms else 0.0,
        "final loss": studies.final_loss(c.losses),
    } for c in curves])


def scaling_frame(rows) -> pd.DataFrame:
    """One row per run, with ‖ΔW‖_F after its first step; the rest of the per-step curve is not tabled."""
    frame = pd.DataFrame([asdict(r) for r in rows])
    frame.insert(3, "first_step_norm", [r.update_norms[0] for r in rows])
    return frame.drop(columns="update_norms")


def strengths() -> list[float]:
    return list(STRENGTHS)  # the frontier's slider: every value its setting accepts


def frontier_points(result: lc.FrontierStudy, base: lc.BaselineRun, data: lc.Dataset, digits, strength: float):
    """The frontier at one strength: computed once (a merge and a test pass per rank), then cached."""
    points = result.points
    result.focus[0] = strength
    if strength not in points:
        with parallel.foreground():  # the fill waits between this value's adapters too
            points[strength] = studies.frontier(base.model, data, result.adapters, digits, strength,
                                                base.evaluation)
    return points[strength]


def baseline_point(base: lc.BaselineRun, digits) -> tuple[int, int]:
    """(errors on the other classes, errors on the finetuned classes) of the baseline."""
    target = tables.wrong_on(base.evaluation, digits)
    return base.evaluation.wrong - target, target


ESTIMATE_IMAGES = 1_000  # a strength nobody computed yet is shown first on this many test images


def known_points(result: lc.FrontierStudy, strength: float):
    """The frontier at `strength` when it is computed already (by a page or the background fill), else None."""
    return result.points.get(strength)


def estimated_points(result: lc.FrontierStudy, base: lc.BaselineRun, data: lc.Dataset, digits, strength: float):
    """(points, baseline point) at `strength` on the first ESTIMATE_IMAGES test images only: exact counts on
    that subset, a tenth of the full pass's time, shown until the full frontier_points replaces them."""
    subset = lc.Dataset(data.name, data.train_x, data.train_y, data.test_x[:ESTIMATE_IMAGES],
                        data.test_y[:ESTIMATE_IMAGES], data.classes, data.source)
    with parallel.foreground():
        points = studies.frontier(base.model, subset, result.adapters, digits, strength)
        base_eval = lc.evaluate(base.model, subset.test_x, subset.test_y)
    target = tables.wrong_on(base_eval, digits)
    return points, (base_eval.wrong - target, target)
