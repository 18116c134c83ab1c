"""The dashboard's experiments as plain functions: a baseline, a LoRA finetune, a full finetune, and runs side by
side (the rank comparison is in rank_comparison, the adapter proofs in proofs).

Configs are frozen dataclasses, validated on construction, hashable so that they can key a cache.
"""
import math
import threading
from dataclasses import dataclass, field

import torch
from torch import nn

from .data import Dataset
from .inits import check_init
from .lora import (
    DEFAULT_TARGETS,
    add_lora,
    copy_model,
    count_parameters,
    update_norm,
)
from .loraplus import check_ratio, loraplus_optimizer
from .model import IMAGE_PIXELS, MLP, NUM_CLASSES
from .parallel import map_ordered
from .settings import MAX_HIDDEN, default
from .train import Evaluation, _check_positive, evaluate, planned_steps, train

# the largest rank each layer can hold whatever the hidden sizes: min(out, in) at its widest
RANK_LIMITS = {"linear1": IMAGE_PIXELS, "linear2": MAX_HIDDEN, "linear3": NUM_CLASSES}


def check_choices(name: str, values, allowed) -> tuple:
    """`values` as a tuple in `allowed`'s order, each once: the same choice is the same config whatever
    order it was picked in. A ValueError naming the value when any is not one of `allowed` or there are
    none. Accepts any iterable but a string, so lists from a widget work."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a list of choices, got {values!r}")
    chosen = tuple(dict.fromkeys(values))
    allowed = tuple(allowed)
    if not chosen or any(isinstance(v, bool) or v not in allowed for v in chosen):
        raise ValueError(f"{name} must be a non-empty selection of {', '.join(map(str, allowed))}; got {values!r}")
    return tuple(option for option in allowed if option in chosen)


@dataclass(frozen=True)
class BaselineConfig:
    # defaults from the settings table (lora_core.settings), which also bounds them in an Experiment
    hidden1: int = default("baseline", "hidden1")
    hidden2: int = default("baseline", "hidden2")
    epochs: int = default("baseline", "epochs")
    batch_size: int = default("baseline", "batch_size")
    lr: float = default("baseline", "lr")
    max_steps: int | None = default("baseline", "max_steps")
    seed: int = default("seed")

    def __post_init__(self):
        for name in ("hidden1", "hidden2", "epochs", "batch_size"):
            _check_positive(name, getattr(self, name))
        for name in ("hidden1", "hidden2"):
            if getattr(self, name) > MAX_HIDDEN:
                raise ValueError(f"{name} must be at most {MAX_HIDDEN}, got {getattr(self, name)!r}")
        _check_positive("lr", self.lr, float)
        if self.max_steps is not None:
            _check_positive("max_steps", self.max_steps)


NOTEBOOK_BASELINE = BaselineConfig(epochs=1, batch_size=10)  # the notebook's settings


@dataclass(frozen=True)
class FinetuneConfig:
    # defaults from the settings table (lora_core.settings); a study sets its own ranks (up to 128) here
    rank: int = default("finetune", "rank")
    alpha: float = default("finetune", "alpha")
    targets: tuple[str, ...] = default("finetune", "targets")
    digits: tuple[int, ...] = default("finetune", "digits")  # the classes finetuned on
    steps: int = default("finetune", "steps")
    lr: float = default("finetune", "lr")
    batch_size: int = default("finetune", "batch_size")
    seed: int = default("seed")
    init: str = default("finetune", "init")  # how A and B start: lora.INIT_CHOICES
    rslora: bool = default("finetune", "rslora")  # scale ΔW by α/√r instead of α/r
    dora: bool = default("finetune", "dora")  # DoRA: a trained magnitude per output neuron
    loraplus_ratio: float = default("finetune", "loraplus_ratio")  # LoRA+: B's learning rate is lr × this

    def __post_init__(self):
        # coerced here so that a config built from widget lists is hashable and equal to the same run's
        object.__setattr__(self, "targets", check_choices("targets", self.targets, DEFAULT_TARGETS))
        object.__setattr__(self, "digits", check_choices("digits", self.digits, range(NUM_CLASSES)))
        if isinstance(self.alpha, int) and not isinstance(self.alpha, bool):
            object.__setattr__(self, "alpha", float(self.alpha))
        _check_positive("rank", self.rank)
        for name in self.targets:
            if self.rank > RANK_LIMITS[name]:
                raise ValueError(f"rank {self.rank} does not fit {name}: its rank is at most {RANK_LIMITS[name]}")
        check_init(self.init, self.rank)
        _check_positive("alpha", self.alpha, float)
        if not self.alpha < math.inf:
            raise ValueError(f"alpha must be finite, got {self.alpha!r}")
        _check_positive("steps", self.steps)
        _check_positive("lr", self.lr, float)
        _check_positive("batch_size", self.batch_size)
        for name in ("rslora", "dora"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if isinstance(self.loraplus_ratio, int) and not isinstance(self.loraplus_ratio, bool):
            object.__setattr__(self, "loraplus_ratio", float(self.loraplus_ratio))
        check_ratio(self.loraplus_ratio)


@dataclass
class BaselineRun:
    config: BaselineConfig
    model: nn.Module
    losses: list[float]
    evaluation: Evaluation
    total_steps: int
    test_logits: torch.Tensor | None = None  # the outputs `evaluation` scored: the proofs compare with them

    @property
    def complete(self) -> bool:
        return len(self.losses) == self.total_steps


def new_model(hidden1: int, hidden2: int, seed: int, device) -> MLP:
    """An MLP initialised from `seed` with its own generator: safe when several threads build models.

    Built on the meta device (no memory, no global random draws), then filled with nn.Linear's own
    default init: W ~ kaiming-uniform(a=√5), b ~ U(±1/√fan_in).
    """
    with torch.device("meta"):
        model = MLP(hidden1, hidden2)
    model.to_empty(device=device)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (model.linear1, model.linear2, model.linear3):
            weight = torch.empty(layer.weight.shape)
            torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(layer.in_features)
            layer.weight.copy_(weight)
            layer.bias.copy_(torch.empty(layer.out_features).uniform_(-bound, bound, generator=generator))
    return model


def train_baseline(config: BaselineConfig, data: Dataset, on_step=None, should_stop=None,
                   on_start=None) -> BaselineRun:
    """Train the MLP on all of `data`'s training images and evaluate it on the test images.

    `on_start(model)` receives the freshly initialised model before the first step.
    """
    model = new_model(config.hidden1, config.hidden2, config.seed, data.train_x.device)
    if on_start is not None:
        on_start(model)
    losses = train(model, data.train_x, data.train_y, epochs=config.epochs, batch_size=config.batch_size,
                   lr=config.lr, max_steps=config.max_steps, seed=config.seed, on_step=on_step,
                   should_stop=should_stop)
    for param in model.parameters():
        param.requires_grad_(False)  # a baseline is shared read-only from here on
    total = planned_steps(len(data.train_x), config.epochs, config.batch_size, config.max_steps)
    evaluation, logits = evaluate(model, data.test_x, data.test_y, return_logits=True)
    return BaselineRun(config, model, losses, evaluation, total, logits)


@dataclass
class FinetuneRun:
    config: FinetuneConfig
    model: nn.Module  # a copy of the baseline carrying the adapter
    losses: list[float]
    before: Evaluation | None  # None when the run was not evaluated (finetune_lora's `evaluated`)
    after: Evaluation | None
    parameters: dict = field(default_factory=dict)  # count_parameters of the adapted model
    update_norms: list[float] = field(default_factory=list)  # ‖ΔW‖_F over all layers after each step


def finetune_lora(base: nn.Module, data: Dataset, config: FinetuneConfig, before: Evaluation | None = None,
                  on_step=None, should_stop=None, on_start=None, evaluated: bool = True) -> FinetuneRun:
    """Copy `base`, attach LoRA, train it on `config.digits` only, and evaluate before and after.

    `on_start(model)` receives the adapted copy before the first step, for views that follow it live.
    With `evaluated=False` nothing is evaluated (before and after are None): for studies
    that read only the adapter, its losses or its norms — a pass over the test images is most of a
    short run's time.
    """
    model = add_lora(copy_model(base), config.rank, config.alpha, config.targets, config.seed, config.init,
                     config.rslora, config.dora)
    if evaluated:
        before = before or evaluate(base, data.test_x, data.test_y)
    x, y = data.train_subset(config.digits)
    norms: list[float] = []

    def track(step, total, loss):
        norms.append(update_norm(model))
        if on_step is not None:
            on_step(step, total, loss)

    if on_start is not None:
        on_start(model)
    optimizer = None if config.loraplus_ratio == 1 else loraplus_optimizer(config.loraplus_ratio)
    losses = train(model, x, y, epochs=_epochs_for(config.steps, config.batch_size, len(x)),
                   batch_size=config.batch_size, lr=config.lr, max_steps=config.steps, seed=config.seed,
                   on_step=track, should_stop=should_stop, optimizer_factory=optimizer)
    after = evaluate(model, data.test_x, data.test_y) if evaluated else None
    return FinetuneRun(config, model, losses, before if evaluated else None, after, count_parameters(model), norms)


# Full finetuning's own learning rate. Measured on the bundled sample (default baseline, 100 steps on digit 2,
# seed 0): at LoRA's 1e-3 every weight moving by about 1e-3 per step pushes the network to answer the one
# class it sees (test accuracy 10.6 %); 1e-4 still falls to 74 %; 3e-5 learns the class (75 → 13 errors)
# and keeps 90 %. Full finetuning is usually run at a smaller learning rate than LoRA.
FULL_FINETUNE_LR = 3e-5


def finetune_full(base: nn.Module, data: Dataset, config: FinetuneConfig, on_step=None,
                  should_stop=None) -> tuple[nn.Module, list[float], Evaluation]:
    """The reference LoRA is measured against: every weight trained, same data, steps and optimiser
    (at `config.lr`: pass a config with full finetuning's own learning rate)."""
    model = copy_model(base)
    for param in model.parameters():
        param.requires_grad_(True)
    x, y = data.train_subset(config.digits)
    losses = train(model, x, y, epochs=_epochs_for(config.steps, config.batch_size, len(x)),
                   batch_size=config.batch_size, lr=config.lr, max_steps=config.steps, seed=config.seed,
                   on_step=on_step, should_stop=should_stop)
    return model, losses, evaluate(model, data.test_x, data.test_y)


def shared_progress(on_progress, total: int):
    """on_step makers for runs that may train at once: `for_run(label)` counts that run's steps into
    one sum, and reports `on_progress(steps done by all runs, total, label)`."""
    lock, done = threading.Lock(), [0]

    def for_run(label: str):
        if on_progress is None:
            return None

        def on_step(_step, _steps, _loss):
            with lock:
                done[0] += 1
                on_progress(done[0], total, label)
        return on_step
    return for_run


def run_together(plans, work, should_stop=None, workers: int = 1) -> list:
    """work(plan) for each plan, `workers` at a time (lora_core.parallel: each on one torch thread, so
    the numbers are those of a serial run); a plan not begun when `should_stop()` turns true is skipped
    (None). Results in the order of `plans`."""
    def run(plan):
        return None if should_stop is not None and should_stop() else work(plan)
    return map_ordered(run, plans, workers)


def _epochs_for(steps: int, batch_size: int, n: int) -> int:
    """Enough passes over n images for `steps` batches (the notebook stopped after one step instead)."""
    return -(-steps * batch_size // n)
