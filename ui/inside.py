"""The "Inside the update" pages' shared parts: their widget defaults, the run settings they start from,
their background jobs, and core results reshaped into rows for tables and charts.

Every number comes from lora_core (anatomy, studies, runs); nothing here computes on tensors.
"""
import atexit
import threading
import time
from dataclasses import asdict, replace

import pandas as pd
import streamlit as st

import lora_core as lc
from lora_core import anatomy, parallel, studies
from lora_core.adapters import MAX_STRENGTH
from lora_core.svd import check_rank
from ui import adapters as ui_adapters
from ui import jobs, tables

# The widgets of these pages, stored with the app's other defaults (ui/state.py) so that leaving a page
# keeps them. Step counts are small: every view should finish in seconds on a laptop CPU.
DEFAULTS = {
    "insp_every": 10, "insp_layer": None, "insp_k": 1, "insp_image": 0, "insp_source": None,
    "oracle_ranks": [1, 2, 4, 8], "oracle_steps": 50, "oracle_layer": None,
    "inits_rank": 4, "inits_steps": 50,
    "scaling_ranks": [1, 2, 4, 8], "scaling_alpha": 8.0, "scaling_steps": 50,
    "frontier_ranks": [1, 2, 4, 8], "frontier_steps": 50, "frontier_strength": 1.0,
}
RANK_CHOICES = [1, 2, 4, 8, 16, 32, 64]
SNAPSHOT_CHOICES = [0, 5, 10, 25, 50, 100]  # steps between live redraws of the ΔW spectrum; 0 = only norms
STRENGTH_STEP = 0.05
PATH_STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)  # evaluated right after training: the paths drawn
INIT_LABELS = {
    "kaiming": "B zero, A kaiming (default)",
    "gaussian": "B zero, A gaussian",
    "zeros": "both zero (the notebook)",
    "random": "both random",
}


# --- the run settings these pages start from -------------------------------------------------------

def run_config(ctx, base_model, ranks=None, **changes) -> lc.FinetuneConfig:
    """The LoRA page's settings (rank, α, layers, classes, steps, learning rate) and the sidebar's seed.

    They are the settings a shared link carries. Shows an error and stops the page when they cannot run.
    """
    ss = st.session_state
    targets, classes = list(ss["lora_targets"]), list(ss["lora_classes"])
    if not targets or not classes:
        st.error("Choose at least one target layer and one class on the **LoRA finetuning** page.")
        st.stop()
    try:
        config = lc.FinetuneConfig(rank=int(ss["lora_rank"]), alpha=float(ss["lora_alpha"]), targets=tuple(targets),
                                   digits=tuple(sorted(classes)), steps=int(ss["lora_steps"]),
                                   lr=float(ss["lora_lr"]), seed=ctx.seed)
        config = replace(config, **changes)
        largest = max(ranks or [config.rank])
        for name in config.targets:  # the core's own check, before any run: it names the layer and its limit
            layer = base_model.get_submodule(name)
            check_rank(largest, layer.out_features, layer.in_features, of=f"{name}'s")
        return config
    except ValueError as err:
        st.error(tables.settings_error(err))
        st.stop()


def describe(config: lc.FinetuneConfig, classes, with_rank: bool = True) -> str:
    rank = f"rank {config.rank}, " if with_rank else ""
    return (f"{rank}α {config.alpha:g} on {', '.join(config.targets)}; {config.steps:,} steps on "
            f"{tables.class_names(classes, config.digits)}; learning rate {config.lr:g}; seed {config.seed}")


# --- jobs ------------------------------------------------------------------------------------------

class Stopped(Exception):
    """Raised from a study's progress callback after Stop: the studies take no should_stop."""


def _progress(job: jobs.Job):
    def on_progress(done: int, total: int, label: str) -> None:
        if job.should_stop():
            raise Stopped
        job.on_progress(done, total, label)
    return on_progress


def _study(name: str, work) -> jobs.Job:
    """A job around a study; after Stop its result is {"stopped": True} (the finished runs are lost)."""
    def run(job: jobs.Job) -> dict:
        try:
            return work(job)
        except Stopped:
            return {"stopped": True}
    return jobs.Job(f"{name}-{time.monotonic_ns()}", run)


@st.cache_resource(max_entries=16, show_spinner=False)
def _weight_spectra(base_key: tuple, _model) -> dict:
    """W's singular values: a baseline's W never changes, so its SVDs are done once per server."""
    return anatomy.weight_spectra(_model)


def _spectra_on_one_thread(base_key: tuple, model) -> None:
    with parallel.one_thread():
        _weight_spectra(base_key, model)


def inspection(model, base_key: tuple) -> dict:
    """What the inspector shows about a LoRA model: per-layer views and, for linear1, A's rows as images."""
    views = anatomy.inspect_layers(model, _weight_spectra(base_key, model))
    patterns = anatomy.input_patterns(model) if "linear1" in lc.lora_layers(model) else None
    return {"views": views, "patterns": patterns}


def delta_spectra(model) -> dict[str, list[float]]:
    return {name: S.tolist() for name, S in anatomy.delta_spectra(model).items()}


class LiveFinetune(jobs.Job):
    """A LoRA finetune the page looks into while it trains.

    `finetune_lora(on_start=…)` hands over the adapted model before the first step; every step adds each
    layer's ‖ΔW‖_F, every `every` steps a snapshot of ΔW's r singular values (from the factors: cheap
    for the default network on a CPU, so optional and sparse; at step 0 they are all zero, B being zero).
    """

    def __init__(self, base: lc.BaselineRun, base_key: tuple, data: lc.Dataset, config: lc.FinetuneConfig,
                 every: int):
        self.model, self.base_key = None, base_key
        self.norms: dict[str, list[float]] = {}  # layer → ‖ΔW_l‖_F after each step
        self.snapshots: list[tuple[int, dict[str, list[float]]]] = []  # (step, layer → top-r σ of ΔW)
        self.every = every
        super().__init__(f"inspect-{time.monotonic_ns()}", lambda job: job._work(base, data, config))

    def _work(self, base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig) -> dict:
        if self.cores > 1:  # W's SVDs (once per baseline) on another core while the adapter trains on one
            _in_background(_spectra_on_one_thread, self.base_key, base.model)

        def on_start(model) -> None:
            self.model = model
            self.norms = {name: [value] for name, value in anatomy.layer_update_norms(model).items()}  # step 0

        def on_step(step: int, total: int, loss: float) -> None:
            for name, value in anatomy.layer_update_norms(self.model).items():
                self.norms[name].append(value)
            if self.every and (step % self.every == 0 or step == total):
                self.snapshots.append((step, delta_spectra(self.model)))
            self.on_step(step, total, loss)

        run = lc.finetune_lora(base.model, data, config, on_step=on_step, should_stop=self.should_stop,
                               on_start=on_start, evaluated=False)  # the inspector shows no accuracy
        self.label = "computing the SVDs of W and ΔW"
        return {"run": run, "norms": self.norms, "snapshots": self.snapshots,
                **inspection(run.model, self.base_key)}


def oracle(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig, ranks) -> jobs.Job:
    """studies.rank_oracle as a job, its result reshaped into plain lists for the page."""
    def work(job: jobs.Job) -> dict:
        found = studies.rank_oracle(base.model, data, config, ranks, on_progress=_progress(job),
                                    should_stop=job.should_stop, workers=job.cores)
        if found is None or not found.ranks:
            raise Stopped
        layers = {name: {"singular_values": layer.singular_values.tolist(), "energy": layer.energy.tolist(),
                         "effective_rank": layer.effective_rank} for name, layer in found.layers.items()}
        similarity = {(name, rank): {"angles_deg": s["angles_deg"].tolist(), "similarity": s["similarity"]}
                      for name, layer in found.layers.items() for rank, s in layer.similarity.items()}
        return {"layers": layers, "similarity": similarity, "ranks": list(found.ranks),
                "full_evaluation": found.full_evaluation, "full_losses": found.full_losses}
    return _study("oracle", work)


def gallery(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig) -> jobs.Job:
    return _study("inits", lambda job: {"curves": studies.init_gallery(base.model, data, config,
                                                                       on_progress=_progress(job),
                                                                       workers=job.cores)})


def scaling(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig, ranks) -> jobs.Job:
    return _study("scaling", lambda job: {"rows": studies.scaling_sweep(base.model, data, config, ranks,
                                                                        on_progress=_progress(job),
                                                                        workers=job.cores)})


def frontier_adapters(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig, ranks) -> jobs.Job:
    """One adapter per rank; then the frontier at a few strengths, so that each rank's path shows at once."""
    def work(job: jobs.Job) -> dict:
        adapters = studies.train_frontier_adapters(base.model, data, config, ranks, on_progress=_progress(job),
                                                   workers=job.cores)
        points = {}
        for strength in PATH_STRENGTHS:
            job.label = f"evaluating every adapter at strength {strength:g}"
            points[strength] = studies.frontier(base.model, data, adapters, config.digits, strength, base.evaluation)
        _in_background(_fill_strengths, points, base, data, adapters, config.digits)
        return {"adapters": adapters, "points": points}
    return _study("frontier", work)


FILL_PATIENCE_S = 600  # how long the fill waits for the server's trainings to end before it gives up
_background: set[threading.Thread] = set()  # work done ahead of a request, in daemon threads
_closing = threading.Event()


def _in_background(target, *args) -> None:
    """`target(*args)` in a daemon thread that the interpreter's exit waits for (a little)."""
    _background.difference_update([t for t in list(_background) if not t.is_alive()])
    thread = threading.Thread(target=target, args=args, name=f"lora-lab {target.__name__}", daemon=True)
    _background.add(thread)
    thread.start()


@atexit.register
def _finish_background() -> None:
    """A daemon thread still inside torch when the interpreter ends aborts the process: let them end first."""
    _closing.set()
    for thread in list(_background):
        thread.join(timeout=60)


def _fill_strengths(points: dict, base: lc.BaselineRun, data: lc.Dataset, adapters, digits) -> None:
    """The frontier at every strength of the slider, nearest to 1 (as trained) first, on one core and only
    while no training runs (it must not slow anyone's): a new slider value is then read, not computed.
    The page computes one itself if it comes before this."""
    deadline = time.monotonic() + FILL_PATIENCE_S
    with parallel.using(1):
        for strength in sorted(strengths(), key=lambda s: (abs(s - 1), s)):
            while jobs.SLOTS.running() and not _closing.is_set():
                if time.monotonic() > deadline:
                    return
                time.sleep(0.5)
            if _closing.is_set():
                return
            if strength not in points:
                points[strength] = studies.frontier(base.model, data, adapters, digits, strength, base.evaluation)


# --- following a job ---------------------------------------------------------------------------------

def status(job: jobs.Job, what: str) -> tuple[float, str]:
    """The progress bar's value and text, as ui.jobs.follow words them."""
    step, total = job.step, job.total
    if job.done:
        return 1.0, f"{what}: done"
    if job.place > 0:
        return 0.0, (f"{what}: waiting for a free training slot — {job.place - 1} training(s) queued before "
                     f"this one, {jobs.SLOTS.limit} run at a time on this server")
    if job.stopping:
        return (min(step / total, 1.0) if total else 0.0), f"{what}: stopping after step {step}…"
    if not total:
        return 0.0, f"{what}: starting…"
    text = f"{what}: step {step:,} of {total:,}" + (f" — {job.label}" if job.label else "")
    if step >= total:
        text = f"{what}: {job.label or 'evaluating'}…"
    return min(step / total, 1.0), text


def follow(job: jobs.Job, what: str, draw=None) -> None:
    """A progress bar, and `draw(job)` redrawn in place while the job runs (a live chart); then cleared."""
    bar, live = st.empty(), st.empty()
    tick = 0
    while True:
        finished = job.done  # read first: the last drawing then has every step
        value, text = status(job, what)
        bar.progress(value, text=text)
        if draw is not None and job.step and not finished:
            tick += 1
            with live.container():
                draw(job, tick)  # element keys must differ on every redraw within one run
        if finished:
            break
        time.sleep(jobs.POLL_S * 2)
    bar.empty()
    live.empty()


def controls(key: str, label: str, start, what: str, help: str, draw=None) -> None:
    """Run and Stop buttons for a job kept under `{key}_job`; when it ends its result (a dict, with
    `extra` merged in) is stored under `key` and the page reruns, or the page says why there is none."""
    job = st.session_state.get(f"{key}_job")
    run_col, stop_col, _ = st.columns([1, 1, 3])
    if run_col.button(label, key=f"{key}_run", type="primary", disabled=job is not None, help=help):
        job, extra = start()
        st.session_state[f"{key}_job"], st.session_state[f"{key}_extra"] = job, extra
    stop_col.button("Stop", key=f"{key}_stop", on_click=jobs.stop, args=(f"{key}_job",), disabled=job is None,
                    help="End after the current step.")
    if job is None:
        return
    follow(job, what, draw)
    st.session_state[f"{key}_job"] = None
    if job.error is not None:
        st.session_state[key] = None
        st.error(f"{what} failed: {jobs.describe(job.error)}")
        st.stop()
    if job.result is None:
        st.info("Stopped while waiting for a training slot: nothing was run.")
        st.stop()
    if job.result.get("stopped"):
        st.info("Stopped: the study was interrupted, so there is nothing new to show.")
        st.stop()
    st.session_state[key] = dict(job.result, **st.session_state[f"{key}_extra"])
    st.rerun()


def subjects(held: dict, classes) -> dict[str, dict]:
    """The adapters the inspector can look into: the one trained on this page, the LoRA page's current one.

    Each: the model carrying it, a caption, a warning (stopped early) or None, and what this page
    recorded while training it (norms, snapshots, views, patterns) when it trained it.
    """
    found = {}
    own = current("insp", held)
    if own is not None:
        run = own["run"]
        stopped = len(run.losses) < run.config.steps
        found["trained here"] = {
            **own, "model": run.model, "caption": f"{describe(run.config, classes)}; {len(run.losses):,} steps.",
            "warning": (f"Stopped after {len(run.losses):,} of {run.config.steps:,} steps: this is the partly "
                        "trained adapter.") if stopped else None}
    page = ui_adapters.current(held["key"])
    if page is not None:
        found["from the LoRA finetuning page"] = {"model": page["model"], "caption": page["caption"],
                                                  "warning": page["warning"]}
    return found


def current(key: str, held: dict):
    """This user's result under `key` when it was computed from the baseline held now."""
    result = st.session_state.get(key)
    return result if result is not None and result.get("base_key") == held["key"] else None


# --- results reshaped for tables -------------------------------------------------------------------

def layer_frame(views, norms: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame([{
        "layer": v.name, "ΔW shape": "×".join(map(str, v.delta.shape)), "rank r": v.rank,
        "‖ΔW‖_F": norms[v.name], "effective rank": v.effective_rank,
        "energy in top direction": float(anatomy.energy(v.delta_singular_values)[0]),
        "σ₁(ΔW)": float(v.delta_singular_values[0]), "σ₁(W)": float(v.weight_singular_values[0]),
    } for v in views])


def oracle_frame(result: dict, layer: str) -> pd.DataFrame:
    energy = result["layers"][layer]["energy"]
    rows = []
    for rank in result["ranks"]:
        found = result["similarity"][(layer, rank)]
        rows.append({"rank r": rank, "energy of the full ΔW in its top r": energy[rank - 1],
                     "subspace similarity": found["similarity"],
                     "smallest angle (°)": min(found["angles_deg"]), "largest angle (°)": max(found["angles_deg"])})
    return pd.DataFrame(rows)


def gallery_frame(curves) -> pd.DataFrame:
    return pd.DataFrame([{
        "initialisation": INIT_LABELS.get(c.init, c.init), "init": c.init,
        "largest output change before any step": c.initial_change,
        "final ‖ΔW‖_F": c.update_norms[-1] if c.update_norms else 0.0,
        "final loss": studies.final_loss(c.losses),
    } for c in curves])


def scaling_frame(rows) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in rows])


def strengths() -> list[float]:
    return [round(i * STRENGTH_STEP, 2) for i in range(int(round(MAX_STRENGTH / STRENGTH_STEP)) + 1)]


def frontier_points(result: dict, base: lc.BaselineRun, data: lc.Dataset, digits, strength: float):
    """The frontier at one strength: computed once (a merge and a test pass per rank), then cached."""
    points = result["points"]
    if strength not in points:
        points[strength] = studies.frontier(base.model, data, result["adapters"], digits, strength, base.evaluation)
    return points[strength]


def baseline_point(base: lc.BaselineRun, digits) -> tuple[int, int]:
    """(errors on the other classes, errors on the finetuned classes) of the baseline."""
    target = tables.wrong_on(base.evaluation, digits)
    return base.evaluation.wrong - target, target
