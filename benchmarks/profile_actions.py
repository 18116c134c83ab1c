"""Where each second of a page action goes, at the core level: `python -m benchmarks.profile_actions`.

Each action is what the page's job and the rerun after it compute, with the page's default settings,
run under cProfile on the bundled sample; a row gives its wall time and the cumulative seconds (and
calls) of the functions that matter. Contended machines give slow rows: compare rows of one run.
"""
import argparse
import cProfile
import pstats
import time
from dataclasses import replace

import torch

import lora_core as lc
from lora_core import anatomy, parallel, studies
from lora_core.adapter_zips import adapter_zip

PARTS = [("training", "train.py", "train"), ("test passes", "train.py", "logits_of"),
         ("merge lab", "precision.py", "merge_precision"), ("SVDs", "anatomy.py", "weight_spectra")]



def profile(name: str, action) -> None:
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    action()
    profiler.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats
    parts = []
    for label, file, function in PARTS:
        found = [v for (f, _, fn), v in stats.items() if fn == function and f.endswith(file)]
        seconds, calls = sum(v[3] for v in found), sum(v[1] for v in found)
        if seconds > 0.005:
            parts.append(f"{label} {seconds:.2f} s ({calls}×)")
    print(f"| {name} | {total:.2f} s | {', '.join(parts)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=torch.get_num_threads(), help="cores a lone job gets")
    args = parser.parse_args()
    data = lc.load_dataset("mnist-sample")
    held = {}
    print(f"cores: {args.cores}\n\n| action | wall | where it goes |\n| --- | ---: | --- |")
    with parallel.using(args.cores):
        profile("baseline, defaults", lambda: held.update(base=lc.train_baseline(lc.BaselineConfig(), data)))
        base = held["base"]
        tune = lc.FinetuneConfig()

        def finetune():
            from lora_core.works import adapter_results
            run = lc.finetune_lora(base.model, data, tune, before=base.evaluation)
            results = adapter_results(base, run.model, data, run.after)
            lc.merge_precision(run.model, data.test_x, reference=results["after"].predictions)
            held["zip"] = adapter_zip(run.model)

        def upload():
            from lora_core.works import adapter_results
            adapter = lc.read_upload("adapter.zip", held["zip"])
            model = lc.attach(lc.copy_model(base.model), adapter)
            results = adapter_results(base, model, data)
            lc.merge_precision(model, data.test_x, reference=results["after"].predictions)

        def inspector():
            models = []

            def watch(step, _total, _loss):
                anatomy.layer_update_norms(models[0])
                if step % 10 == 0:
                    anatomy.delta_spectra(models[0])
            run = lc.finetune_lora(base.model, data, tune, before=base.evaluation, on_start=models.append,
                                   on_step=watch)
            anatomy.inspect_layers(run.model, anatomy.weight_spectra(base.model))

        def frontier():
            held["adapters"] = studies.train_frontier_adapters(base.model, data, small, [1, 2, 4, 8],
                                                               workers=args.cores)
            for strength in frontier.PATH_STRENGTHS:
                studies.frontier(base.model, data, held["adapters"], small.digits, strength, base.evaluation)

        small = replace(tune, steps=50)
        profile("LoRA finetune, defaults (job + merge lab)", finetune)
        profile("adapter upload (+ merge lab)", upload)
        profile("rank comparison, defaults", lambda: lc.compare_ranks(
            base.model, data, [1, 2, 4, 8, 16], replace(tune, targets=("linear1", "linear2")),
            before=base.evaluation, workers=args.cores))
        profile("ΔW inspector, train and watch", inspector)
        profile("rank oracle", lambda: studies.rank_oracle(base.model, data, small, [1, 2, 4, 8], workers=args.cores))
        profile("initialisation gallery", lambda: studies.init_gallery(base.model, data, replace(small, rank=4),
                                                                       workers=args.cores))
        profile("scaling explorer", lambda: studies.scaling_sweep(base.model, data, replace(small, alpha=8.0),
                                                                  [1, 2, 4, 8], workers=args.cores))
        profile("learn/forget frontier (adapters + 7 strengths)", frontier)
        profile("frontier strength slider, a value not yet computed", lambda: studies.frontier(
            base.model, data, held["adapters"], small.digits, 0.35, base.evaluation))


if __name__ == "__main__":
    main()
