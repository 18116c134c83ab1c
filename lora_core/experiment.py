"""One experiment, completely described: the dataset, the seed, the baseline, the finetune and every
study's own knobs. Everything that changes a number on screen is in it and nothing else is, so that the
description names the run: a link carries it (lora_core.presets) and a store keys results by it
(lora_core.store).

Frozen, validated and coerced on construction (lists become tuples, a rank must fit every target layer),
so an Experiment that exists can run.
"""
from dataclasses import asdict, dataclass, field, replace

from .data import DATASETS
from .lora import DEFAULT_TARGETS, INITS
from .model import IMAGE_PIXELS, NUM_CLASSES
from .runs import FULL_FINETUNE_LR, BaselineConfig, FinetuneConfig, check_choices
from .train import _check_positive, planned_steps

STUDY_RANKS = (1, 2, 4, 8, 16, 32, 64, 128)  # the ranks a study may compare


def _ranks(name: str, values, allowed=STUDY_RANKS) -> tuple[int, ...]:
    ranks = tuple(sorted(set(check_choices(name, values, allowed))))
    return ranks


def _set(obj, **values) -> None:
    for name, value in values.items():
        object.__setattr__(obj, name, value)  # coercion inside a frozen dataclass's __post_init__


@dataclass(frozen=True)
class RankComparison:
    """Rank comparison: the finetune at each of `ranks` on `targets`, and full finetuning at `full_lr`."""
    ranks: tuple[int, ...] = (1, 2, 4, 8, 16)
    targets: tuple[str, ...] = ("linear1", "linear2")  # linear3 (→ 10 classes) would cap every rank at 10
    full_lr: float = FULL_FINETUNE_LR  # full finetuning's own: at LoRA's it forgets almost everything

    def __post_init__(self):
        _set(self, ranks=_ranks("ranks", self.ranks), targets=check_choices("targets", self.targets, DEFAULT_TARGETS))
        _check_positive("full_lr", self.full_lr, float)


@dataclass(frozen=True)
class RankStudy:
    """A study that trains the finetune at several ranks for its own number of steps (oracle, frontier)."""
    ranks: tuple[int, ...] = (1, 2, 4, 8)
    steps: int = 50

    def __post_init__(self):
        _set(self, ranks=_ranks("ranks", self.ranks))
        _check_positive("steps", self.steps)


@dataclass(frozen=True)
class OracleStudy(RankStudy):
    """The rank oracle: full finetuning (at its own `full_lr`), then LoRA at each rank."""
    full_lr: float = FULL_FINETUNE_LR

    def __post_init__(self):
        super().__post_init__()
        _check_positive("full_lr", self.full_lr, float)


@dataclass(frozen=True)
class InitStudy:
    rank: int = 4
    steps: int = 50

    def __post_init__(self):
        _check_positive("rank", self.rank)
        _check_positive("steps", self.steps)


@dataclass(frozen=True)
class ScalingStudy:
    ranks: tuple[int, ...] = (1, 2, 4, 8)
    alpha: float = 8.0
    steps: int = 50

    def __post_init__(self):
        _set(self, ranks=_ranks("ranks", self.ranks), alpha=float(self.alpha))
        _check_positive("alpha", self.alpha, float)
        _check_positive("steps", self.steps)


@dataclass(frozen=True)
class FrontierStudy:
    ranks: tuple[int, ...] = (1, 2, 4, 8)
    steps: int = 50
    strength: float = 1.0  # s in W + s·ΔW: moves the points without retraining

    def __post_init__(self):
        _set(self, ranks=_ranks("ranks", self.ranks), strength=float(self.strength))
        _check_positive("steps", self.steps)
        if not 0 <= self.strength <= 1.5:
            raise ValueError(f"strength must be in 0..1.5, got {self.strength!r}")


@dataclass(frozen=True)
class Experiment:
    dataset: str = "mnist-sample"
    seed: int = 0
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    compare: RankComparison = field(default_factory=RankComparison)
    oracle: OracleStudy = field(default_factory=OracleStudy)
    inits: InitStudy = field(default_factory=InitStudy)
    scaling: ScalingStudy = field(default_factory=ScalingStudy)
    frontier: FrontierStudy = field(default_factory=FrontierStudy)
    inspect_every: int = 10  # steps between live snapshots of ΔW's spectrum in the inspector; 0 = none

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; known: {', '.join(DATASETS)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise ValueError(f"seed must be a whole number in 0..{2**31 - 1}, got {self.seed!r}")
        if isinstance(self.inspect_every, bool) or not isinstance(self.inspect_every, int) or self.inspect_every < 0:
            raise ValueError(f"inspect_every must be a whole number ≥ 0, got {self.inspect_every!r}")
        # one seed for the whole experiment: the configs carry it for the core's functions
        _set(self, baseline=replace(self.baseline, seed=self.seed), finetune=replace(self.finetune, seed=self.seed))

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
        the finetune's settings with the study's own steps, layers, rank or α; its largest rank checked."""
        f = self.finetune
        if name == "finetune":
            config, ranks = f, [f.rank]
        elif name == "compare":
            config, ranks = replace(f, targets=self.compare.targets), self.compare.ranks
        elif name == "inits":
            config, ranks = replace(f, rank=self.inits.rank, steps=self.inits.steps), [self.inits.rank]
        elif name == "scaling":
            config, ranks = replace(f, alpha=self.scaling.alpha, steps=self.scaling.steps), self.scaling.ranks
        elif name in ("oracle", "frontier"):
            config, ranks = replace(f, steps=getattr(self, name).steps), getattr(self, name).ranks
        else:
            raise ValueError(f"unknown study {name!r}")
        self.check_rank(max(ranks), config.targets)
        return config

    def as_dict(self) -> dict:
        return asdict(self)

    def identity(self, kind: str) -> dict:
        """What determines the result of run `kind` ("baseline", "inspect" or a study name), as plain data.

        A view-only knob (the frontier's strength) is not in it: one stored run serves every value."""
        described = {"dataset": self.dataset, "baseline": asdict(self.baseline)}
        if kind == "baseline":
            return described
        described["finetune"] = asdict(self.study("finetune" if kind == "inspect" else kind))
        extra = {"compare": lambda: {"ranks": self.compare.ranks, "full_lr": self.compare.full_lr},
                 "inspect": lambda: {"every": self.inspect_every}}
        if kind in ("oracle", "scaling", "frontier"):
            described["ranks"] = getattr(self, kind).ranks
        if kind == "oracle":
            described["full_lr"] = self.oracle.full_lr
        elif kind in extra:
            described.update(extra[kind]())
        return described

    def total_steps(self, kind: str, train_images: int) -> int:
        """Training steps run `kind` takes in all, every run of a study counted (for a server's caps)."""
        if kind == "baseline":
            b = self.baseline
            return planned_steps(train_images, b.epochs, b.batch_size, b.max_steps)
        config = self.study("finetune" if kind == "inspect" else kind)
        runs = {"finetune": 1, "inspect": 1, "inits": len(INITS), "frontier": len(self.frontier.ranks),
                "scaling": 2 * len(self.scaling.ranks), "oracle": len(self.oracle.ranks) + 1,
                # every rank, then full finetuning at its own learning rate and at LoRA's when they differ
                "compare": len(self.compare.ranks) + len({self.compare.full_lr, config.lr})}[kind]
        return runs * config.steps
