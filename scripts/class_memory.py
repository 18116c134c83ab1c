"""What a class leaves in the server's memory: measured in one process, as the server holds it.

Steps, with the process's RSS (VmRSS) after each: import what the server imports; load the bundled
dataset (shared by every session); train the default baseline (shared); then a "class" of N sessions,
each in its own thread as the app's jobs are: finetune an adapter on a copy of the baseline, upload it
back (read, attach, evaluate, merge table) and keep everything in a per-session dict. Then the class
leaves: the dicts are dropped and garbage-collected (what the app's sweep does), and finally glibc is asked
to give freed memory back (malloc_trim). Rounds repeat the class to see whether memory keeps growing.

    python scripts/class_memory.py --sessions 8 --rounds 3
"""
import argparse
import ctypes
import gc
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # lora_core, run from anywhere


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def malloc_trim() -> bool:
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def session(base, data, seed: int, kept: dict) -> None:
    import lora_core as lc

    config = lc.FinetuneConfig(steps=100, rank=4, seed=seed, digits=(seed % 10,))
    run = lc.finetune_lora(base.model, data, config, before=base.evaluation)
    blob = lc.adapter_zip(run.model)
    model = lc.attach(lc.copy_model(base.model), lc.read_upload("adapter.zip", blob))
    kept[seed] = {"run": run, "upload": model, "after": lc.evaluate(model, data.test_x, data.test_y),
                  "merge": lc.merge_precision(model, data.test_x), "zip": blob}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    marks = {"start": rss_mb()}
    import streamlit  # noqa: F401  (the server has it loaded)
    import torch

    import lora_core as lc
    marks["imports"] = rss_mb()
    torch.set_num_threads(1)
    data = lc.load_dataset("mnist-sample")
    marks["dataset"] = rss_mb()
    base = lc.train_baseline(lc.BaselineConfig(), data)
    gc.collect()
    marks["baseline"] = rss_mb()
    rounds = []
    for r in range(args.rounds):
        kept: dict = {}
        threads = [threading.Thread(target=session, args=(base, data, r * 100 + i, kept))
                   for i in range(args.sessions)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        row = {"round": r + 1, "class_mb": rss_mb(), "seconds": round(time.perf_counter() - start, 1)}
        del kept, threads
        gc.collect()
        row["after_gc_mb"] = rss_mb()
        row["trimmed"] = malloc_trim()
        row["after_trim_mb"] = rss_mb()
        rounds.append({k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()})
        print(json.dumps(rounds[-1]), flush=True)
    sizes = {"dataset_tensors_mb": sum(t.numel() * t.element_size() for t in
                                       (data.train_x, data.train_y, data.test_x, data.test_y)) / 2**20,
             "baseline_weights_mb": sum(p.numel() * p.element_size() for p in base.model.parameters()) / 2**20}
    print(json.dumps({"marks_mb": {k: round(v, 1) for k, v in marks.items()},
                      **{k: round(v, 1) for k, v in sizes.items()}}))


if __name__ == "__main__":
    main()
