"""One experiment, completely described: the dataset, the seed, the baseline, the finetune and every
study's own knobs. Everything that changes a number on screen is in it and nothing else is, so that the
description names the run: a link carries it (lora_core.presets) and a store keys results by it
(lora_core.store).

Frozen, validated and coerced on construction by the settings table (lora_core.settings: each field's
default and accepted values; a set becomes a tuple in its options' order), and a rank must fit every
target layer, so an Experiment that exists can run.
"""
from dataclasses import asdict, dataclass, field, replace

from .finetuning import BaselineConfig, FinetuneConfig
from .inits import gallery_inits
from .model import IMAGE_PIXELS, NUM_CLASSES
from .settings import BY_PATH, KINDS, SETTINGS, STUDY_RANKS, checked, default
from .train import planned_steps

__all__ = ["STUDY_RANKS", "Experiment", "FrontierStudy", "InitStudy", "OracleStudy", "RankComparison",
           "ScalingStudy", "get", "with_values"]


def _set(obj, **values) -> None:
    for name, value in values.items():
        object.__setattr__(obj, name, value)  # coercion inside a frozen dataclass's __post_init__


def _check(section, name: str) -> None:
    """Every field of one study checked and put in its one form by the settings table (lora_core.settings)."""
    _set(section, **{f: checked(BY_PATH[(name, f)], getattr(section, f)) for f in section.__dataclass_fields__})


@dataclass(frozen=True)
class RankComparison:
    """Rank comparison: the finetune at each of `ranks` on `targets`, and full finetuning at `full_lr`."""
    ranks: tuple[int, ...] = default("compare", "ranks")
    targets: tuple[str, ...] = default("compare", "targets")
    full_lr: float = default("compare", "full_lr")

    def __post_init__(self):
        _check(self, "compare")


@dataclass(frozen=True)
class OracleStudy:
    """The rank oracle: full finetuning (at its own `full_lr`), then LoRA at each rank."""
    ranks: tuple[int, ...] = default("oracle", "ranks")
    steps: int = default("oracle", "steps")
    full_lr: float = default("oracle", "full_lr")

    def __post_init__(self):
        _check(self, "oracle")


@dataclass(frozen=True)
class InitStudy:
    rank: int = default("inits", "rank")
    steps: int = default("inits", "steps")

    def __post_init__(self):
        _check(self, "inits")


@dataclass(frozen=True)
class ScalingStudy:
    ranks: tuple[int, ...] = default("scaling", "ranks")
    alpha: float = default("scaling", "alpha")
    steps: int = default("scaling", "steps")

    def __post_init__(self):
        _check(self, "scaling")


@dataclass(frozen=True)
class FrontierStudy:
    ranks: tuple[int, ...] = default("frontier", "ranks")
    steps: int = default("frontier", "steps")
    strength: float = default("frontier", "strength")

    def __post_init__(self):
        _check(self, "frontier")


def get(experiment, path: tuple[str, ...]):
    """The value at `path` as the settings table holds it (a baseline without a step limit: 0)."""
    value = experiment
    for name in path:
        value = getattr(value, name)
    return 0 if path == ("baseline", "max_steps") and value is None else value


def with_values(experiment, values: dict[tuple[str, ...], object]):
    """`experiment` with the values at these paths replaced; a ValueError when the result is invalid."""
    top, parts = {}, {}
    for path, value in values.items():
        if path == ("baseline", "max_steps"):
            value = value or None
        if len(path) == 1:
            top[path[0]] = value
        else:
            parts.setdefault(path[0], {})[path[1]] = value
    changes = {name: replace(getattr(experiment, name), **fields) for name, fields in parts.items()}
    return replace(experiment, **top, **changes)


@dataclass(frozen=True)
class Experiment:
    dataset: str = default("dataset")
    seed: int = default("seed")
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    compare: RankComparison = field(default_factory=RankComparison)
    oracle: OracleStudy = field(default_factory=OracleStudy)
    inits: InitStudy = field(default_factory=InitStudy)
    scaling: ScalingStudy = field(default_factory=ScalingStudy)
    frontier: FrontierStudy = field(default_factory=FrontierStudy)
    inspect_every: int = default("inspect_every")

    def __post_init__(self):
        # the studies check their own fields; the baseline's and the finetune's configs serve the core with
        # any values, so the table's bounds on them are checked here
        parts = {"baseline": {"seed": self.seed}, "finetune": {"seed": self.seed}}  # one seed for the experiment
        for setting in SETTINGS:
            section = setting.path[0]
            if section in parts:
                parts[section][setting.path[1]] = checked(setting, get(self, setting.path))
        parts["baseline"]["max_steps"] = parts["baseline"]["max_steps"] or None
        _set(self, dataset=checked(BY_PATH[("dataset",)], self.dataset), seed=checked(BY_PATH[("seed",)], self.seed),
             inspect_every=checked(BY_PATH[("inspect_every",)], self.inspect_every),
             baseline=replace(self.baseline, **parts["baseline"]), finetune=replace(self.finetune, **parts["finetune"]))

    def layer_sizes(self) -> dict[str, tuple[int, int]]:
        """(out, in) of each layer of the baseline's MLP."""
        b = self.baseline
        return {"linear1": (b.hidden1, IMAGE_PIXELS), "linear2": (b.hidden2, b.hidden1),
                "linear3": (NUM_CLASSES, b.hidden2)}

    def check_rank(self, rank: int, targets) -> None:
        """A ValueError naming the layer when `rank` does not fit one of `targets` of this baseline.

        Checked when a run is asked for, not on construction: a baseline page works whatever the ranks."""
        for name in targets:
            out, inp = self.layer_sizes()[name]
            if rank > min(out, inp):
                raise ValueError(f"rank {rank} does not fit {name} ({out}×{inp}): its rank is at most {min(out, inp)}")

    def study(self, name: str) -> FinetuneConfig:
        """The finetune that `name` trains ("finetune", "compare", "oracle", "inits", "scaling", "frontier"):
        the finetune's settings with the study's own; its largest rank checked. What a study varies itself
        (the rank, the init, rsLoRA) is set to its own first value, so that the config holds nothing the
        study does not depend on."""
        f = self.finetune
        if name == "finetune":
            config, ranks = f, [f.rank]
        elif name == "compare":
            ranks = self.compare.ranks
            config = replace(f, targets=self.compare.targets, rank=ranks[0])
        elif name == "inits":
            ranks = [self.inits.rank]
            config = replace(f, rank=self.inits.rank, steps=self.inits.steps, init=default("finetune", "init"))
        elif name == "scaling":
            ranks = self.scaling.ranks
            config = replace(f, alpha=self.scaling.alpha, steps=self.scaling.steps, rank=ranks[0], rslora=False)
        elif name in ("oracle", "frontier"):
            ranks = getattr(self, name).ranks
            config = replace(f, steps=getattr(self, name).steps, rank=ranks[0])
        else:
            raise ValueError(f"unknown study {name!r}")
        self.check_rank(max(ranks), config.targets)
        return config

    def as_dict(self) -> dict:
        return asdict(self)

    def identity(self, kind: str) -> dict:
        """What determines the result of run `kind` ("baseline", "inspect" or a study name), as plain data:
        exactly the settings the table says it depends on (lora_core.settings), so that a setting of
        another page neither retrains it nor reuses another run for it. A view-only knob (the frontier's
        strength) is in none: one stored run serves every value."""
        if kind not in KINDS:
            raise ValueError(f"unknown run kind {kind!r}; known: {', '.join(KINDS)}")
        return {s.url: get(self, s.path) for s in SETTINGS if kind in s.affects}

    def total_work(self, kind: str, train_images: int) -> int:
        """Images × weights run `kind` trains through in all (each step passes a batch through every weight of
        the baseline): what a training costs, whatever its mix of steps, batch and width (a server's cap)."""
        b = self.baseline
        weights = IMAGE_PIXELS * b.hidden1 + b.hidden1 * b.hidden2 + b.hidden2 * NUM_CLASSES
        batch = b.batch_size if kind == "baseline" else self.study("finetune" if kind == "inspect" else kind).batch_size
        return self.total_steps(kind, train_images) * batch * weights

    def total_steps(self, kind: str, train_images: int) -> int:
        """Training steps run `kind` takes in all, every run of a study counted (for a server's caps)."""
        if kind == "baseline":
            b = self.baseline
            return planned_steps(train_images, b.epochs, b.batch_size, b.max_steps)
        config = self.study("finetune" if kind == "inspect" else kind)
        runs = {"finetune": 1, "inspect": 1, "inits": len(gallery_inits(self.inits.rank)),
                "frontier": len(self.frontier.ranks),
                "scaling": 2 * len(self.scaling.ranks), "oracle": len(self.oracle.ranks) + 1,
                # every rank, then full finetuning at its own learning rate and at LoRA's when they differ
                "compare": len(self.compare.ranks) + len({self.compare.full_lr, config.lr})}[kind]
        return runs * config.steps
