"""The work of the "Inside the update" studies' jobs, and what of each result the run store keeps.

Each `*_work` returns the `work(job)` a service.jobs.Job runs; every number comes from lora_core (anatomy,
studies, finetuning). The frontier's job is in service.frontier. No Streamlit: ui.inside starts these.
"""
from dataclasses import dataclass, field, replace

import lora_core as lc
from lora_core import anatomy, studies, works
from service import jobs


def delta_spectra(model) -> dict[str, list[float]]:
    return {name: S.tolist() for name, S in anatomy.delta_spectra(model).items()}


def layer_views(model, spectrum) -> list:
    """anatomy.inspect_layers of a LoRA model; `spectrum(W)`: a frozen W's singular values (cached by the app)."""
    return anatomy.inspect_layers(model, anatomy.weight_spectra(model, spectrum))


def input_patterns(model):
    """A's rows of linear1 as images, or None when linear1 carries no adapter."""
    return anatomy.input_patterns(model) if "linear1" in lc.lora_layers(model) else None


@dataclass
class LiveInspection:
    """What the inspector draws of an adapter while it trains: each layer's ‖ΔW‖_F after each step (step 0
    first), and every few steps ΔW's singular values, (step, layer → top-r σ)."""
    norms: dict[str, list[float]] = field(default_factory=dict)
    snapshots: list[tuple[int, dict[str, list[float]]]] = field(default_factory=list)


def inspect_work(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig, every: int, spectrum):
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
        return lc.Inspection(config, live.norms, live.snapshots, layer_views(run.model, spectrum),
                             input_patterns(run.model), len(run.losses) < config.steps, run=run)
    return work


def oracle_work(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig, ranks, full_lr: float):
    """studies.rank_oracle, full finetuning at its own learning rate."""
    def work(job: jobs.Job) -> lc.OracleStudy:
        found = studies.rank_oracle(base.model, data, config, ranks, on_progress=job.on_progress,
                                    should_stop=job.should_stop, full_lr=full_lr, workers=job.cores)
        stopped = found is None or len(found.ranks) < len(set(ranks))
        return lc.OracleStudy(config, full_lr, found, stopped)
    return work


def gallery_work(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig):
    def work(job: jobs.Job) -> lc.GalleryStudy:
        curves = studies.init_gallery(base.model, data, config, on_progress=job.on_progress,
                                      should_stop=job.should_stop, workers=job.cores)
        return lc.GalleryStudy(config, curves, len(curves) < len(lc.inits.gallery_inits(config.rank)))
    return work


def scaling_work(base: lc.BaselineRun, data: lc.Dataset, config: lc.FinetuneConfig, ranks):
    def work(job: jobs.Job) -> lc.ScalingStudy:
        rows = studies.scaling_sweep(base.model, data, config, ranks, on_progress=job.on_progress,
                                     should_stop=job.should_stop, workers=job.cores)
        return lc.ScalingStudy(config, rows, len(rows) < 2 * len(set(ranks)))
    return work


STUDIES = lc.OracleStudy | lc.GalleryStudy | lc.ScalingStudy | lc.FrontierStudy


def keep(result: STUDIES):
    """(what the store keeps, what the page shows) of a finished study; None for a stopped one."""
    if result.stopped:
        return None
    if isinstance(result, lc.FrontierStudy):  # its strengths are still being filled in: store those there are now
        return replace(result, points=dict(result.points)), result  # (a dict copy is atomic under the GIL)
    return result, result


def keep_inspection(result: lc.Inspection):
    """The inspection without its model, which the store keeps as a finetune record instead."""
    if result.stopped:
        return None
    return replace(result, run=None, finetune=works.finetune_record(works.CheckedFinetune(result.run, None))), None
