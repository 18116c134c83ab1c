"""The timed comparisons. Each returns plain figures; __main__ prints them."""
import copy
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import peft
import torch

import lora_core
from lora_core import parallel
from lora_core.finetuning import new_model

from . import notebook
from .machine import OtherLoad, wait_quiet
from .timing import QUIET_CORES, Pair, interleaved


def _notebook_steps(root):
    """The notebook's training loop as `theirs(n)`: n steps at batch 10 on torch's own threads."""
    net = notebook.new_net(0)
    optimizer = notebook.make_optimizer(net)
    batch_iter = notebook.batches(notebook.loaders(root)[0])
    return lambda n: notebook.train_steps(net, optimizer, batch_iter, n)


def train_speed(data: lora_core.Dataset, root, steps: int, repeats: int, budget_s: float, wait_s: float = 0,
                warmup: int = 30) -> Pair:
    """Training steps/s at batch 10: the notebook's loop vs lora_core.train(max_steps=steps), alone on every
    core (lora_core.parallel.cores() is torch's thread count here, as on an idle server)."""
    theirs = _notebook_steps(root)
    model = new_model(1000, 2000, 0, "cpu")
    seeds = iter(range(10_000))

    def ours(n=steps):
        return len(lora_core.train(model, data.train_x, data.train_y, batch_size=10, max_steps=n,
                                   seed=next(seeds)))

    theirs(warmup), ours(warmup)
    return interleaved(lambda: theirs(steps), ours, repeats, budget_s, wait_s)


def two_at_once_speed(data: lora_core.Dataset, root, steps: int, repeats: int, budget_s: float,
                      wait_s: float = 0, warmup: int = 30) -> Pair:
    """Steps/s of two trainings at once, both counted, each on half the cores (a server's two slots): the
    notebook's loop alone vs two lora_core.train(max_steps=steps) in two threads."""
    theirs = _notebook_steps(root)
    models = [new_model(1000, 2000, seed, "cpu") for seed in (0, 1)]
    half = max(1, torch.get_num_threads() // 2)
    seeds = iter(range(10_000))

    def one(model, n: int) -> int:
        with parallel.using(half):
            return len(lora_core.train(model, data.train_x, data.train_y, batch_size=10, max_steps=n,
                                       seed=next(seeds)))

    def ours(n=steps):
        with ThreadPoolExecutor(2, thread_name_prefix="benchmark training") as pool:
            return sum(pool.map(one, models, (n, n)))

    theirs(warmup), ours(warmup)
    return interleaved(lambda: theirs(steps), ours, repeats, budget_s, wait_s)


@dataclass
class TimeToAccuracy:
    target: float  # the notebook's accuracy after its run
    notebook_steps: int
    notebook_s: float  # training only: its evaluation is not counted
    notebook_others: float  # cores other processes used meanwhile
    batch_size: int
    lr: float
    eval_every: int
    runs: list[dict]  # per lora_core run: seconds (training + evaluations), steps, accuracy, evaluations, others

    @property
    def used(self) -> list[dict]:
        """The runs the figures come from: those while the machine was otherwise quiet, if any."""
        quiet = [r for r in self.runs if r["others"] <= QUIET_CORES]
        return quiet or self.runs

    @property
    def quiet(self) -> bool:
        return all(r["others"] <= QUIET_CORES for r in self.used)

    @property
    def median_s(self) -> float:
        return statistics.median(r["seconds"] for r in self.used)

    @property
    def reached(self) -> bool:
        return all(r["accuracy"] >= self.target for r in self.used)


def notebook_epoch(root, max_steps: int | None, wait_s: float = 0) -> tuple[notebook.Net, int, float, float, float]:
    """The notebook's one epoch (or its first max_steps steps).

    Returns (net, steps, train seconds, accuracy, cores other processes used meanwhile)."""
    net = notebook.new_net(0)
    optimizer = notebook.make_optimizer(net)
    train_loader, test_loader = notebook.loaders(root)
    if wait_s > 0:
        wait_quiet(wait_s)
    load = OtherLoad()
    start = time.perf_counter()
    if max_steps is None:
        steps = notebook.train_epoch(net, optimizer, train_loader)
    else:
        steps = notebook.train_steps(net, optimizer, notebook.batches(train_loader), max_steps)
    seconds = time.perf_counter() - start
    others = load.cores() or 0.0
    accuracy, _ = notebook.test(net, test_loader)
    return net, steps, seconds, accuracy, others


def chase(data: lora_core.Dataset, target: float, batch_size: int, lr: float, eval_every: int,
          max_epochs: int, seed: int = 0) -> dict:
    """Train a fresh MLP with lora_core until the test accuracy reaches target; time all of it."""
    load = OtherLoad()
    start = time.perf_counter()
    model = new_model(1000, 2000, seed, "cpu")
    state = {"accuracy": 0.0, "evaluations": 0, "steps": 0}

    def on_step(step, total, loss):
        state["steps"] = step
        if step % eval_every == 0 or step == total:
            state["accuracy"] = lora_core.evaluate(model, data.test_x, data.test_y).accuracy
            state["evaluations"] += 1
            model.train()

    lora_core.train(model, data.train_x, data.train_y, epochs=max_epochs, batch_size=batch_size, lr=lr,
                    seed=seed, on_step=on_step, should_stop=lambda: state["accuracy"] >= target)
    state["seconds"] = time.perf_counter() - start
    state["others"] = load.cores() or 0.0
    state["model"] = model
    return state


def time_to_accuracy(data, root, notebook_steps: int | None, runs: int, batch_size: int = 128,  # noqa: PLR0913
                     lr: float = 1e-3, eval_every: int = 50, max_epochs: int = 5, wait_s: float = 0):
    net, steps, seconds, target, others = notebook_epoch(root, notebook_steps, wait_s)
    results = []  # up to 2·runs attempts (seeds 0, 1, ...) to get `runs` on an otherwise quiet machine
    while sum(r["others"] <= QUIET_CORES for r in results) < runs and len(results) < 2 * runs:
        if wait_s > 0:
            wait_quiet(wait_s)
        results.append(chase(data, target, batch_size, lr, eval_every, max_epochs, seed=len(results)))
    models = [r.pop("model") for r in results]
    return (TimeToAccuracy(target, steps, seconds, others, batch_size, lr, eval_every, results), net,
            models[0])


def eval_speed(net: notebook.Net, root, data: lora_core.Dataset, repeats: int,
               budget_s: float, wait_s: float = 0) -> tuple[Pair, float, float]:
    """Images/s over the 10,000 test images: the notebook's test() vs lora_core.evaluate, same weights."""
    model = new_model(1000, 2000, 0, "cpu")
    model.load_state_dict(net.state_dict())
    test_loader = notebook.loaders(root)[1]
    n = len(data.test_y)
    results = {}

    def theirs():
        results["notebook"] = notebook.test(net, test_loader)[0]
        return n

    def ours():
        results["lora_core"] = lora_core.evaluate(model, data.test_x, data.test_y).accuracy
        return n

    ours()  # warm-up
    return interleaved(theirs, ours, repeats, budget_s, wait_s), results["notebook"], results["lora_core"]


def lora_speed(base: torch.nn.Module, data: lora_core.Dataset, rank: int, alpha: float, steps: int,  # noqa: PLR0913
               repeats: int, budget_s: float, wait_s: float = 0, warmup: int = 30) -> tuple[Pair, int, int]:
    """Finetune steps/s at batch 10, lora_core's LoRA vs PEFT's, both trained by lora_core.train."""
    base = copy.deepcopy(base)
    for p in base.parameters():
        p.requires_grad_(False)
    ours_model = lora_core.add_lora(copy.deepcopy(base), rank, alpha)
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, target_modules=["linear1", "linear2", "linear3"])
    peft_model = peft.get_peft_model(copy.deepcopy(base), config)
    x, y = data.train_x, data.train_y
    seeds = iter(range(10_000))

    def run(model, n):
        return len(lora_core.train(model, x, y, batch_size=10, max_steps=n, seed=next(seeds)))

    run(peft_model, warmup), run(ours_model, warmup)
    pair = interleaved(lambda: run(peft_model, steps), lambda: run(ours_model, steps), repeats, budget_s,
                       wait_s)
    trainable = [sum(p.numel() for p in m.parameters() if p.requires_grad) for m in (ours_model, peft_model)]
    return pair, trainable[0], trainable[1]
