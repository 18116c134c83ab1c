"""The settings that define a run, as URL query parameters: a teacher sends a link, every student sees
the same run. Parsing never raises: a bad value is replaced by the default and reported."""
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

from .data import DATASETS
from .lora import DEFAULT_TARGETS
from .model import NUM_CLASSES

MAX_SEED = 2**31 - 1
MAX_RANK = 64
MAX_ALPHA = 1024.0
MAX_STEPS = 5000


@dataclass(frozen=True)
class RunSettings:
    seed: int = 0
    dataset: str = "mnist-sample"
    rank: int = 1
    alpha: float = 1.0
    digits: tuple[int, ...] = (2,)
    steps: int = 100
    targets: tuple[str, ...] = DEFAULT_TARGETS


PRESETS = {
    "the notebook": RunSettings(),
    "rank sweep": RunSettings(rank=8, alpha=8.0),
    "forgetting": RunSettings(steps=500, digits=(7,)),
}


def _whole(text: str, low: int, high: int) -> int:
    value = int(text)
    if not low <= value <= high:
        raise ValueError
    return value


def _alpha(text: str) -> float:
    value = float(text)
    if not 0 < value <= MAX_ALPHA:  # also refuses nan and inf
        raise ValueError
    return value


def _one_of(text: str, allowed) -> str:
    if text not in allowed:
        raise ValueError
    return text


def _choices(text: str, allowed, convert=str) -> tuple:
    values = tuple(dict.fromkeys(convert(part.strip()) for part in text.split(",") if part.strip()))
    if not values or any(v not in allowed for v in values):
        raise ValueError
    return values


_PARSERS = {  # name → (parse, what a valid value looks like)
    "seed": (lambda t: _whole(t, 0, MAX_SEED), f"a whole number in 0..{MAX_SEED}"),
    "dataset": (lambda t: _one_of(t, DATASETS), f"one of {', '.join(DATASETS)}"),
    "rank": (lambda t: _whole(t, 1, MAX_RANK), f"a whole number in 1..{MAX_RANK}"),
    "alpha": (_alpha, f"a number in (0, {MAX_ALPHA:g}]"),
    "digits": (lambda t: tuple(sorted(_choices(t, range(NUM_CLASSES), int))), "classes 0..9, comma-separated"),
    "steps": (lambda t: _whole(t, 1, MAX_STEPS), f"a whole number in 1..{MAX_STEPS}"),
    "targets": (lambda t: _choices(t, DEFAULT_TARGETS), f"layers among {', '.join(DEFAULT_TARGETS)}"),
}


def to_query(settings: RunSettings) -> dict[str, str]:
    """The settings as strings for st.query_params."""
    def text(value) -> str:
        if isinstance(value, (tuple, list)):
            return ",".join(map(str, value))
        return f"{value:g}" if isinstance(value, float) else str(value)

    return {name: text(value) for name, value in asdict(settings).items()}


def from_query(params: Mapping) -> tuple[RunSettings, list[str]]:
    """Settings from query parameters, and one message for each value that was refused.

    `preset=<name>` starts from a named preset; explicit parameters override it. Unknown parameters
    are ignored. A list (a repeated parameter) counts by its last value.
    """
    problems = []

    def text(name):
        value = params.get(name)
        value = value[-1] if isinstance(value, (list, tuple)) and value else value
        return value if isinstance(value, str) else None

    settings = RunSettings()
    preset = text("preset")
    if preset is not None:
        if preset in PRESETS:
            settings = PRESETS[preset]
        else:
            problems.append(f"preset={preset[:40]!r} is not one of {', '.join(PRESETS)}; using the defaults")
    changes = {}
    for field in fields(RunSettings):
        raw = text(field.name)
        if raw is None:
            continue
        parse, expected = _PARSERS[field.name]
        try:
            changes[field.name] = parse(raw)
        except (ValueError, TypeError, OverflowError):
            kept = getattr(settings, field.name)
            problems.append(f"{field.name}={raw[:40]!r} is not {expected}; keeping {kept!r}")
    return replace(settings, **changes), problems
