"""Peak memory of one variant, measured alone in a fresh process.

`python -m benchmarks.memory VARIANT ROOT STEPS` imports everything every variant needs (torch,
torchvision, peft, lora_core), reads the peak resident set size (VmHWM), then loads the data the
variant's way, builds its model, trains STEPS steps at batch 10, evaluates the 10,000 test images,
and reads it again. It prints one JSON line: the peak resident set size of the process (MiB) and its
growth over the post-import figure, i.e. what the variant's data, model, optimizer state, activations
and evaluation added at peak.
"""
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

VARIANTS = ("notebook", "lora_core", "lora_core-r8", "peft-r8")


def _peak_mib() -> float:
    """This process's peak resident set size. VmHWM belongs to the process's own memory map (unlike
    ru_maxrss, which a child inherits from the parent it was forked from); ru_maxrss where it is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _run(variant: str, root: str, steps: int) -> dict:
    import peft
    import torch  # noqa: F401
    import torchvision  # noqa: F401

    import lora_core
    from lora_core.finetuning import new_model

    from . import notebook
    before = _peak_mib()
    if variant == "notebook":
        net = notebook.new_net(0)
        train_loader, test_loader = notebook.loaders(root)
        notebook.train_steps(net, notebook.make_optimizer(net), notebook.batches(train_loader), steps)
        notebook.test(net, test_loader)
    else:
        data = lora_core.load_dataset("fashion-mnist", root=root)
        model = new_model(1000, 2000, 0, "cpu")
        if variant != "lora_core":
            rank = int(variant.rsplit("-r", 1)[1])
            for p in model.parameters():
                p.requires_grad_(False)
            if variant.startswith("peft"):
                config = peft.LoraConfig(r=rank, lora_alpha=1.0,
                                         target_modules=["linear1", "linear2", "linear3"])
                model = peft.get_peft_model(model, config)
            else:
                model = lora_core.add_lora(model, rank, 1.0)
        lora_core.train(model, data.train_x, data.train_y, batch_size=10, max_steps=steps)
        lora_core.evaluate(model, data.test_x, data.test_y)
    peak = _peak_mib()
    return {"variant": variant, "peak_mib": round(peak, 1), "growth_mib": round(peak - before, 1),
            "after_imports_mib": round(before, 1)}


def measure(variant: str, root, steps: int) -> dict:
    """Run one variant in a fresh interpreter and return its figures."""
    repo = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory", variant, str(root), str(steps)],
                         capture_output=True, text=True, check=True, cwd=repo, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    name, data_root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    print(json.dumps(_run(name, data_root, n)))
