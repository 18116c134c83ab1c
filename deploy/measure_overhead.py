"""What a Ray cluster adds to one training, measured on a local cluster on this machine.

    python deploy/measure_overhead.py [--repeat 7]

Starts a head with no CPUs (as in compose.yaml) and one worker node with 2 CPUs, then times the same Work
in process and as a Ray task (median of --repeat, after one cold task that starts the worker process and
loads the dataset), and reads the resident memory of Ray's processes from /proc. Prints Markdown.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

import ray  # noqa: E402
import torch  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

import lora_core as lc  # noqa: E402
from lora_core import executor, works  # noqa: E402
from lora_core.ray_executor import RayExecutor  # noqa: E402
from lora_core.slots import TrainingSlots  # noqa: E402

CASES = {  # name → (config, what it stands for)
    "empty": (lc.BaselineConfig(hidden1=8, hidden2=8, max_steps=1), "1 step of an 8-8 network: the overhead"),
    "load test": (lc.BaselineConfig(max_steps=20), "the load test's baseline: default network, 20 steps"),
}


def rss_mb(pid: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ray_processes() -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit():
                continue
            cmd = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            name = Path(cmd).name if not cmd.startswith("ray::") else cmd.split()[0]
            if name in ("raylet", "gcs_server") or name.startswith("ray::"):
                found.setdefault(name, []).append(rss_mb(entry.name))
        except OSError:
            continue
    return found


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=2)
    started = time.perf_counter() - start
    remote = RayExecutor(cluster.address, executor.InProcess(TrainingSlots(1), lambda running: 1), cpus=1)
    local = executor.InProcess(TrainingSlots(1), lambda running: 1)
    data = lc.load_dataset()
    print(f"Local cluster (head + one 2-CPU worker node) started in {started:.1f} s; "
          f"{os.cpu_count()} cores, load average before: {os.getloadavg()[0]:.1f}\n")
    cold = timed(lambda: remote.run(executor.Progress(), works.baseline_work(data, CASES["empty"][0])))
    print(f"First Ray task (a worker process starts, imports torch, loads the dataset): {cold:.2f} s\n")
    print("| work | in process p50 | Ray task p50 | Ray − in process |")
    print("| :--- | ---: | ---: | ---: |")
    for name, (config, what) in CASES.items():
        work = works.baseline_work(data, config)
        remote.run(executor.Progress(), work)  # warm
        here = statistics.median(timed(lambda work=work: local.run(executor.Progress(), work))
                                 for _ in range(args.repeat))
        there = statistics.median(timed(lambda work=work: remote.run(executor.Progress(), work))
                                  for _ in range(args.repeat))
        print(f"| {name} ({what}) | {here:.3f} s | {there:.3f} s | {there - here:+.3f} s |")
    state = lc.new_model(1000, 2000, 0, "cpu").state_dict()
    size = sum(t.numel() * t.element_size() for t in state.values()) / 2**20
    print(f"\nA default baseline's state_dict, the result that crosses to the app: {size:.1f} MiB\n")
    print("| Ray process | count | RSS each (MB) |")
    print("| :--- | ---: | ---: |")
    for name, sizes in sorted(ray_processes().items()):
        print(f"| {name} | {len(sizes)} | {', '.join(f'{s:.0f}' for s in sorted(sizes))} |")
    print(f"\nThis process (the app's side, torch and the dataset loaded): {rss_mb('self'):.0f} MB; "
          f"load average after: {os.getloadavg()[0]:.1f}")
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main()
