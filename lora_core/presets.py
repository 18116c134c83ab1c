"""An Experiment as URL query parameters, and the named presets: a teacher sends a link, every student
opens the same run.

A link holds only the values that differ from the defaults, and `v=2`. Links made before the version
field (v1: seed, dataset, rank, alpha, digits, steps, targets and three presets that changed only the
finetune) still open what they opened then. Parsing never raises: a bad value is replaced by the default
and reported in words.
"""
from collections.abc import Mapping

from .experiment import Experiment, get, with_values
from .finetuning import NOTEBOOK_BASELINE
from .settings import SETTINGS, as_text

__all__ = ["DEFAULT", "FIELDS", "NOTEBOOK", "NOTEBOOK_DIFFERENCES", "PRESETS", "VERSION", "from_query", "get",
           "preset_of", "to_query", "with_values"]

VERSION = 2
# URL name → (where in the Experiment, what it accepts), from the settings table. v1's names keep their
# meaning; the table's order is the order a link's fields are applied (the targets before the rank).
FIELDS = {s.url: (s.path, s.accepts) for s in SETTINGS}


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
            query[name] = as_text(value)
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
        kept = as_text(get(experiment, path))
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
