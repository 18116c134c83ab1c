"""An Experiment as URL query parameters, and the named presets: a teacher sends a link, every student
opens the same run.

A link holds only the values that differ from the defaults, and `v=2`. Links made before the version
field (v1: seed, dataset, rank, alpha, digits, steps, targets and three presets that changed only the
finetune) still open what they opened then. Parsing never raises: a bad value is replaced by the default
and reported in words.
"""
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .data import DATASETS
from .experiment import STUDY_RANKS, Experiment
from .lora import DEFAULT_TARGETS, INITS
from .model import NUM_CLASSES
from .runs import MAX_HIDDEN, NOTEBOOK_BASELINE

VERSION = 2
MAX_SEED = 2**31 - 1
MAX_RANK = 64  # the LoRA page's rank slider
MAX_ALPHA = 1000.0
MAX_LORAPLUS_RATIO = 100.0  # the largest ratio of B's learning rate to A's that a link may ask for
MAX_STEPS = 100_000
LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)  # the choices the pages offer: no NaN losses


@dataclass(frozen=True)
class Whole:
    low: int
    high: int

    def parse(self, text: str) -> int:
        value = int(text)
        if not self.low <= value <= self.high:
            raise ValueError
        return value

    def describe(self) -> str:
        return f"a whole number in {self.low}..{self.high:,}"


@dataclass(frozen=True)
class Number:
    low: float  # exclusive
    high: float

    def parse(self, text: str) -> float:
        value = float(text)
        if not self.low < value <= self.high:  # also refuses nan and inf
            raise ValueError
        return value

    def describe(self) -> str:
        return f"a number in ({self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class OneOf:
    options: tuple

    def parse(self, text: str):
        for option in self.options:
            if text == _text(option):
                return option
        raise ValueError

    def describe(self) -> str:
        return "one of " + ", ".join(map(_text, self.options))


@dataclass(frozen=True)
class SomeOf:
    options: tuple
    ordered: bool = True  # sorted (classes, ranks) rather than in the order given

    def parse(self, text: str) -> tuple:
        chosen = [OneOf(self.options).parse(part.strip()) for part in text.split(",") if part.strip()]
        if not chosen:
            raise ValueError
        chosen = list(dict.fromkeys(chosen))
        return tuple(sorted(chosen) if self.ordered else chosen)

    def describe(self) -> str:
        return "comma-separated, among " + ", ".join(map(_text, self.options))


def _text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (tuple, list)):
        return ",".join(map(_text, value))
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)  # exact: a link must give the same run
    return str(value)


# URL name → (where in the Experiment, what it accepts). v1's names keep their meaning.
FIELDS = {
    "dataset": (("dataset",), OneOf(DATASETS)),
    "seed": (("seed",), Whole(0, MAX_SEED)),
    "h1": (("baseline", "hidden1"), Whole(1, MAX_HIDDEN)),
    "h2": (("baseline", "hidden2"), Whole(1, MAX_HIDDEN)),
    "epochs": (("baseline", "epochs"), Whole(1, 50)),
    "base_batch": (("baseline", "batch_size"), Whole(1, 1024)),
    "base_lr": (("baseline", "lr"), OneOf(LEARNING_RATES)),
    "base_steps": (("baseline", "max_steps"), Whole(0, 1_000_000)),  # 0: no limit
    "targets": (("finetune", "targets"), SomeOf(DEFAULT_TARGETS)),  # before the rank, which must fit them
    "rank": (("finetune", "rank"), Whole(1, MAX_RANK)),
    "alpha": (("finetune", "alpha"), Number(0, MAX_ALPHA)),
    "digits": (("finetune", "digits"), SomeOf(tuple(range(NUM_CLASSES)))),
    "steps": (("finetune", "steps"), Whole(1, MAX_STEPS)),
    "batch": (("finetune", "batch_size"), Whole(1, 1024)),
    "lr": (("finetune", "lr"), OneOf(LEARNING_RATES)),
    "init": (("finetune", "init"), OneOf(tuple(INITS))),
    "rslora": (("finetune", "rslora"), OneOf((False, True))),
    "dora": (("finetune", "dora"), OneOf((False, True))),
    "loraplus": (("finetune", "loraplus_ratio"), Number(0, MAX_LORAPLUS_RATIO)),
    "cmp_ranks": (("compare", "ranks"), SomeOf(STUDY_RANKS)),
    "cmp_targets": (("compare", "targets"), SomeOf(DEFAULT_TARGETS)),
    "full_lr": (("compare", "full_lr"), OneOf(LEARNING_RATES)),
    "oracle_ranks": (("oracle", "ranks"), SomeOf(STUDY_RANKS[:-1])),
    "oracle_steps": (("oracle", "steps"), Whole(1, MAX_STEPS)),
    "oracle_full_lr": (("oracle", "full_lr"), OneOf(LEARNING_RATES)),
    "inits_rank": (("inits", "rank"), OneOf(STUDY_RANKS[:-1])),
    "inits_steps": (("inits", "steps"), Whole(1, MAX_STEPS)),
    "scaling_ranks": (("scaling", "ranks"), SomeOf(STUDY_RANKS[:-1])),
    "scaling_alpha": (("scaling", "alpha"), Number(0, MAX_ALPHA)),
    "scaling_steps": (("scaling", "steps"), Whole(1, MAX_STEPS)),
    "frontier_ranks": (("frontier", "ranks"), SomeOf(STUDY_RANKS[:-1])),
    "frontier_steps": (("frontier", "steps"), Whole(1, MAX_STEPS)),
    "strength": (("frontier", "strength"), OneOf(tuple(round(i * 0.05, 2) for i in range(31)))),
    "every": (("inspect_every",), OneOf((0, 5, 10, 25, 50, 100))),
}


def get(experiment: Experiment, path: tuple[str, ...]):
    value = experiment
    for name in path:
        value = getattr(value, name)
    return 0 if path == ("baseline", "max_steps") and value is None else value


def with_values(experiment: Experiment, values: dict[tuple[str, ...], object]) -> Experiment:
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


NOTEBOOK = Experiment(baseline=NOTEBOOK_BASELINE)  # its finetune is the default: rank 1, α 1, digit 2, 100 steps
PRESETS = {
    "quick start": Experiment(),
    "the notebook": NOTEBOOK,
    "rank sweep": with_values(Experiment(), {("finetune", "rank"): 8, ("finetune", "alpha"): 8.0,
                                             ("compare", "ranks"): (1, 2, 4, 8, 16, 32, 64)}),
    "forgetting": with_values(Experiment(), {("finetune", "steps"): 500, ("finetune", "digits"): (7,)}),
}
# What the notebook did that no setting here reproduces; said beside the preset.
NOTEBOOK_DIFFERENCES = (
    "The bundled sample has 5,000 training images, so one epoch at batch 10 is 500 steps; the notebook's "
    "60,000 images gave 6,000. Choose full MNIST in the sidebar for the notebook's data.",
    "A starts kaiming-uniform, not zero: with both matrices zero, as in the notebook, nothing ever learns "
    "(the Initialisation gallery shows why).",
)
# v1 presets changed only these finetune settings of the default experiment
V1_PRESETS = {
    "the notebook": {},
    "rank sweep": {("finetune", "rank"): 8, ("finetune", "alpha"): 8.0},
    "forgetting": {("finetune", "steps"): 500, ("finetune", "digits"): (7,)},
}
DEFAULT = Experiment()


def preset_of(experiment: Experiment) -> str | None:
    return next((name for name, preset in PRESETS.items() if preset == experiment), None)


def to_query(experiment: Experiment) -> dict[str, str]:
    """The experiment as query parameters: `v` and every value that differs from the defaults."""
    query = {"v": str(VERSION)}
    for name, (path, _) in FIELDS.items():
        value = get(experiment, path)
        if value != get(DEFAULT, path):
            query[name] = _text(value)
    return query


def from_query(params: Mapping) -> tuple[Experiment, list[str]]:
    """The experiment a link describes, and one message for each value that could not be used.

    `preset=<name>` starts from a named preset; explicit parameters override it. Unknown parameters are
    ignored. A list (a repeated parameter) counts by its last value.
    """
    problems = []

    def text(name):
        value = params.get(name)
        value = value[-1] if isinstance(value, (list, tuple)) and value else value
        return value if isinstance(value, str) else None

    version = text("v")
    if version is None:
        version = 1
    elif version.strip() in ("1", "2"):
        version = int(version)
    else:
        problems.append(f"v={version[:20]!r}: this link was made by another version of LoRA Lab (this one "
                        f"reads versions 1 and 2); its settings are read as version {VERSION}'s")
        version = VERSION
    experiment, preset = DEFAULT, text("preset")
    if preset is not None:
        if version == 1 and preset in V1_PRESETS:
            experiment = with_values(DEFAULT, V1_PRESETS[preset])
        elif version == 2 and preset in PRESETS:
            experiment = PRESETS[preset]
        else:
            problems.append(f"preset={preset[:40]!r} is not one of {', '.join(PRESETS)}; using the defaults")
    for name in FIELDS:  # v1's fields mean the same in v2: only its presets differ
        raw = text(name)
        if raw is None:
            continue
        path, accepts = FIELDS[name]
        kept = _text(get(experiment, path))
        try:
            value = accepts.parse(raw)
        except (ValueError, TypeError, OverflowError):
            problems.append(f"{name}={raw[:40]!r} is not {accepts.describe()}; keeping {kept}")
            continue
        try:
            experiment = with_values(experiment, {path: value})
        except ValueError as err:
            problems.append(f"{name}={raw[:40]!r} does not go with the link's other settings ({err}); keeping {kept}")
    return experiment, problems
