"""python -m benchmarks [--quick] [--root DIR] [--no-write]

Compares, in one process and on the same Fashion-MNIST data, the original notebook's pipeline with
lora_core's, and lora_core's LoRA with PEFT's; prints a markdown table and writes benchmarks/RESULTS.md.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import lora_core

from . import cases, machine, memory
from .report import Report

RESULTS = Path(__file__).parent / "RESULTS.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[2])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (about a minute)")
    parser.add_argument("--root", help="torchvision root to unpack Fashion-MNIST into (default: a temp dir)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="on a shared machine: before each timed repeat, wait up to this long for other "
                             "processes to leave the CPU idle")
    args = parser.parse_args(argv)
    if args.root:
        return run(args, Path(args.root))
    with tempfile.TemporaryDirectory(prefix="lora-bench-") as root:
        return run(args, Path(root))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(args, root: Path) -> int:
    quick = args.quick
    steps, repeats = (100, 3) if quick else (300, 7)
    budget = 0 if quick else 60  # seconds of extra pairs per comparison, to replace contended ones
    command = "python -m benchmarks" + (" --quick" if quick else "")
    command += f" --wait-quiet {args.wait_quiet:g}" if args.wait_quiet > 0 else ""
    report = Report(machine.describe(), quick, command)
    report.load_before = machine.load()
    others = machine.OtherLoad()
    started = time.perf_counter()
    log(f"{report.machine}; {report.load_before}")
    data = lora_core.load_dataset("fashion-mnist", root=root)  # unpacks Debian's files under root
    log(f"data: {data}")

    log(f"1/5 training steps/s at batch 10, {repeats} interleaved repeats of {steps} steps")
    wait = args.wait_quiet
    report.train = cases.train_speed(data, root, steps, repeats, budget, wait)
    log(f"1b/5 two trainings at once, total steps/s, {repeats} interleaved repeats of {steps} steps each")
    report.two_at_once = cases.two_at_once_speed(data, root, steps, repeats, budget, wait)

    notebook_steps = 1000 if quick else None
    log("2/5 time to the notebook's accuracy: the notebook's "
        + ("first 1000 steps" if quick else "full epoch (once, 1-2 minutes or more)") + ", then lora_core")
    report.tta, net, trained = cases.time_to_accuracy(data, root, notebook_steps, runs=1 if quick else 3,
                                                      wait_s=wait)

    log(f"3/5 evaluation of {len(data.test_y):,} test images, {repeats} interleaved repeats")
    report.evaluation = cases.eval_speed(net, root, data, repeats, budget, wait)

    log(f"4/5 LoRA finetune steps/s, lora_core vs PEFT, {repeats} interleaved repeats of {steps} steps")
    report.lora = {rank: cases.lora_speed(trained, data, rank, 1.0, steps, repeats, budget / 2, wait)
                   for rank in (1, 8)}

    log("5/5 peak memory, each variant in a fresh process")
    report.memory = [memory.measure(v, root, steps) for v in memory.VARIANTS]

    report.load_after = machine.load()
    report.others = others.cores()
    report.total_s = time.perf_counter() - started
    report.waited_s = machine.WAITED[0]
    text = report.markdown()
    print(text)
    if not args.no_write and not quick:
        RESULTS.write_text(text)
        log(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
