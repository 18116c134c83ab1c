"""The compute a class's load test needs: one student's trainings timed alone, in process, on one core.

The load test's student trains a small baseline and a LoRA adapter (scripts/load_test.py). Here the same
two Works the server runs (lora_core.works: training, evaluation, proofs) are timed on one core each, as
the server runs them when both of its training slots are busy, median of --repeat, each with its own seed
so nothing is reused. N students need N × that on the machine's cores: no server, however well it
schedules, serves them all sooner. Prints the figures as JSON.

    python scripts/compute_floor.py --users 30
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lora_core as lc  # noqa: E402
from lora_core import executor, works  # noqa: E402
from lora_core.slots import TrainingSlots  # noqa: E402


def timed(runner, work) -> tuple[float, object]:
    start = time.perf_counter()
    result = runner.run(executor.Progress(), work)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--baseline-steps", type=int, default=20)
    parser.add_argument("--lora-steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = lc.load_dataset("mnist-sample")
    one_core = executor.InProcess(TrainingSlots(1), lambda running: 1)
    baseline_s, finetune_s = [], []
    for seed in range(args.repeat + 1):  # the first is a warm-up
        config = lc.BaselineConfig(max_steps=args.baseline_steps, seed=10_000 + seed)
        seconds, base = timed(one_core, works.baseline_work(data, config))
        tune = lc.FinetuneConfig(steps=args.lora_steps, seed=10_000 + seed)
        tuned_seconds, _ = timed(one_core, works.finetune_work(base, data, tune))
        if seed:
            baseline_s.append(seconds)
            finetune_s.append(tuned_seconds)
    cores = os.cpu_count() or 1
    per_student = statistics.median(baseline_s) + statistics.median(finetune_s)
    print(json.dumps({
        "cores": cores, "baseline_s": round(statistics.median(baseline_s), 2),
        "finetune_s": round(statistics.median(finetune_s), 2), "per_student_core_s": round(per_student, 2),
        "floor_s": {n: round(n * per_student / cores, 1) for n in args.users},
    }, indent=2))


if __name__ == "__main__":
    main()
