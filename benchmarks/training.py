"""python -m benchmarks.training [--steps N] [--repeats N]: the training rows alone (a few minutes).

One lora_core training alone on every core, and two at once on half the cores each (total steps/s), each
against the notebook's pipeline in the same run, interleaved. Copied with cases.py and report.py into an
older checkout, it measures that code the same way.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import lora_core

from . import cases, machine
from .report import TARGETS, _pair_row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__.splitlines()[2])
    parser.add_argument("--steps", type=int, default=300, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved pairs per row")
    args = parser.parse_args(argv)
    others = machine.OtherLoad()
    print(f"- Machine: {machine.describe()}; {machine.load()} at the start", flush=True)
    with tempfile.TemporaryDirectory(prefix="lora-bench-") as root:
        data = lora_core.load_dataset("fashion-mnist", root=Path(root))
        rows = [("1. training steps/s at batch 10, alone on every core", cases.train_speed, TARGETS["train"]),
                ("1b. two trainings at once, total steps/s (each on half the cores)", cases.two_at_once_speed,
                 None)]
        for label, case, target in rows:
            pair = case(data, root, args.steps, args.repeats, budget_s=0)
            print(_pair_row(label, pair, "steps/s", target), flush=True)
            print(f"  per-pair ratios: {', '.join(f'{r:.2f}' for r in pair.ratios)}; "
                  f"others' cores per pair: {', '.join(f'{o:.2f}' for o in pair.others)}", flush=True)
    print(f"- {machine.load()} at the end; other processes kept {others.cores() or 0:.2f} cores busy on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
