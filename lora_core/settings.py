"""Every setting of an experiment, declared once: where it lives in the Experiment, what it accepts, its
default, its name in a link, its widget, the server cap that applies to it, and the runs it changes.

The Experiment's validation, the link codec (lora_core.presets), the widgets' bounds and the repair of a
stale session (ui.state, ui.experiment) all read this table, so that they accept exactly the same values
(tests/test_settings.py proves it). A cap is named here, never valued: the server reads its value from
the environment, and may refuse a value the table allows, with its own message.
"""
import math
from dataclasses import dataclass

from .adapters import MAX_STRENGTH
from .data import DATASETS
from .lora import DEFAULT_TARGETS, INIT_CHOICES
from .model import NUM_CLASSES

# --- what a setting accepts ------------------------------------------------------------------------


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Whole:
    """A whole number in low..high."""
    low: int
    high: int

    def check(self, value) -> int:
        if not _whole(value) or not self.low <= value <= self.high:
            raise ValueError
        return value

    def parse(self, text: str) -> int:
        return self.check(int(text))

    def describe(self) -> str:
        return f"a whole number in {self.low:,}..{self.high:,}"


@dataclass(frozen=True)
class Number:
    """A finite number in low..high; a whole number counts as its float."""
    low: float
    high: float

    def check(self, value) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            raise ValueError  # also refuses nan and inf
        return float(value)

    def parse(self, text: str) -> float:
        return self.check(float(text))

    def describe(self) -> str:
        return f"a number in {self.low:g}..{self.high:g}"


def _same(a, b) -> bool:
    """Equal and of the same type: True is not 1, "2" is not 2; a float equal to the last rounding (a
    slider's 3 × 0.05 is 0.15000000000000002) is its option."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class OneOf:
    options: tuple

    def check(self, value):
        for option in self.options:
            if _same(value, option):
                return option
        raise ValueError

    def has(self, value) -> bool:
        return any(_same(value, option) for option in self.options)

    def parse(self, text: str):
        for option in self.options:
            if text == as_text(option):
                return option
        if any(isinstance(option, float) for option in self.options):
            return self.check(float(text))  # a number written otherwise: 0.0010, 1e-3
        raise ValueError

    def describe(self) -> str:
        return "one of " + ", ".join(map(as_text, self.options))


@dataclass(frozen=True)
class SomeOf:
    """A non-empty set of options, held in the options' order: the same choice is always the same value."""
    options: tuple

    def check(self, value) -> tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ValueError
        if not value or not all(OneOf(self.options).has(v) for v in value):
            raise ValueError
        return self.canonical(value)

    def canonical(self, value) -> tuple:
        return tuple(option for option in self.options if any(_same(v, option) for v in value))

    def parse(self, text: str) -> tuple:
        return self.check([OneOf(self.options).parse(part.strip()) for part in text.split(",") if part.strip()])

    def describe(self) -> str:
        return "comma-separated, among " + ", ".join(map(as_text, self.options))


def as_text(value) -> str:
    """A value as a link writes it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (tuple, list)):
        return ",".join(map(as_text, value))
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)  # exact: a link must give the same run
    return str(value)


# --- the runs a setting changes ----------------------------------------------------------------------

KINDS = ("baseline", "finetune", "inspect", "compare", "oracle", "inits", "scaling", "frontier")
ALL = frozenset(KINDS)
ADAPTED = ALL - {"baseline"}  # every run that finetunes the baseline
LORA_PAGE = frozenset({"finetune", "inspect"})  # the LoRA page's adapter, and the inspector's replay of it


def but(*kinds: str) -> frozenset:
    """Every finetuning run except these, which set the value themselves (a study of ranks, say)."""
    return ADAPTED - set(kinds)


# --- the table ---------------------------------------------------------------------------------------

STUDY_RANKS = (1, 2, 4, 8, 16, 32, 64, 128)  # the comparison's; the other studies stop at 64
RANKS = STUDY_RANKS[:-1]
LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)  # no NaN losses at any of them
FULL_LEARNING_RATES = LEARNING_RATES[:5]  # full finetuning's own: smaller than LoRA's
STRENGTH_STEP = 0.05
STRENGTHS = tuple(round(i * STRENGTH_STEP, 2) for i in range(round(MAX_STRENGTH / STRENGTH_STEP) + 1))
MAX_HIDDEN = 4096  # the widest hidden layer a baseline may have; a server may cap it lower (service.limits)
STEPS = Whole(1, 100_000)
BATCH = Whole(1, 1024)
ALPHA = Number(0.1, 1000.0)
CLASSES = tuple(range(NUM_CLASSES))


@dataclass(frozen=True)
class Setting:
    url: str  # its name in a link
    path: tuple[str, ...]  # where it lives in the Experiment
    accepts: Whole | Number | OneOf | SomeOf
    default: object
    key: str  # the session_state key of its widget
    widget: str  # number_input, slider, select_slider, selectbox, multiselect or toggle
    label: str
    affects: frozenset  # the run kinds whose result depends on it (their store keys hold it)
    help: str | None = None
    cap: str | None = None  # the server limit that applies to it, by name (ui.experiment.cap gives its value)

    def __post_init__(self):
        object.__setattr__(self, "affects", frozenset(self.affects))


S = Setting
SETTINGS = (
    # the dataset and the seed are drawn in the sidebar (ui.context), with the data folder's words
    S("dataset", ("dataset",), OneOf(DATASETS), "mnist-sample", "dataset", "selectbox", "Dataset", ALL),
    S("seed", ("seed",), Whole(0, 2**31 - 1), 0, "seed", "number_input", "Random seed", ALL),
    S("h1", ("baseline", "hidden1"), Whole(1, MAX_HIDDEN), 1000, "base_hidden1", "number_input",
      "Hidden layer 1 size", ALL, "Neurons in the first hidden layer: linear1 has a 784 × this weight.",
      cap="max_hidden"),
    S("h2", ("baseline", "hidden2"), Whole(1, MAX_HIDDEN), 2000, "base_hidden2", "number_input",
      "Hidden layer 2 size", ALL, "Neurons in the second hidden layer: linear2 is hidden1 → hidden2.",
      cap="max_hidden"),
    S("epochs", ("baseline", "epochs"), Whole(1, 50), 3, "base_epochs", "number_input", "Epochs", ALL,
      "Passes over all training images, each in a new random order."),
    S("base_batch", ("baseline", "batch_size"), BATCH, 64, "base_batch", "number_input", "Batch size", ALL,
      "Images per step: one gradient step per batch. Small batches take more, noisier steps per epoch."),
    S("base_lr", ("baseline", "lr"), OneOf(LEARNING_RATES), 1e-3, "base_lr", "select_slider", "Learning rate",
      ALL, "How far each Adam step moves the weights."),
    S("base_steps", ("baseline", "max_steps"), Whole(0, 1_000_000), 0, "base_max_steps", "number_input",
      "Step limit (0 = none)", ALL, "Stop after this many steps even if the epochs are not done: a quick, "
      "rougher baseline."),
    # the targets before the rank, which must fit them: a link sets its fields in this order
    S("targets", ("finetune", "targets"), SomeOf(DEFAULT_TARGETS), DEFAULT_TARGETS, "lora_targets",
      "multiselect", "Target layers", but("compare"), "The layers that get an adapter: linear1 is 784→hidden1, "
      "linear2 hidden1→hidden2, linear3 hidden2→10 (so it allows rank ≤ 10)."),
    S("rank", ("finetune", "rank"), Whole(1, 64), 1, "lora_rank", "slider", "Rank r", LORA_PAGE,
      "Size of the adapter: B is d×r and A is r×k, so a layer gets r·(d+k) trainable numbers and ΔW = (α/r)·B·A "
      "has rank at most r. A rank is at most min(d, k) of every target layer."),
    S("alpha", ("finetune", "alpha"), ALPHA, 1.0, "lora_alpha", "number_input", "Alpha α", but("scaling"),
      "Scales the update: ΔW = (α/r)·B·A; a larger α acts like a larger step. Dividing by r spares retuning "
      "when r changes (Hu et al.), but it also shrinks the update as r grows: after one Adam step ‖ΔW‖ falls "
      "like 1/√r (see the Scaling explorer)."),
    S("digits", ("finetune", "digits"), SomeOf(CLASSES), (2,), "lora_classes", "multiselect",
      "Classes to finetune on", ADAPTED, "Only training images of these classes are shown to the adapter. "
      "The notebook finetuned on digit 2, which its baseline got wrong most often (88 test images)."),
    S("steps", ("finetune", "steps"), STEPS, 100, "lora_steps", "number_input", "Steps",
      LORA_PAGE | {"compare"}, "Training steps of a batch each on the chosen classes.", cap="max_steps"),
    S("batch", ("finetune", "batch_size"), BATCH, 10, "lora_batch", "number_input", "Batch size", ADAPTED,
      "Training images per step."),
    S("lr", ("finetune", "lr"), OneOf(LEARNING_RATES), 1e-3, "lora_lr", "select_slider", "Learning rate",
      ADAPTED, "How far each Adam step moves A and B."),
    S("init", ("finetune", "init"), OneOf((*INIT_CHOICES, "pissa_niter_4")), "kaiming", "lora_init", "selectbox",
      "Initialisation", but("inits"), "How A and B start. With B zero a fresh adapter changes nothing; with both "
      "zero nothing ever learns (the notebook's bug). PiSSA and OLoRA move W's principal part into B·A and leave "
      "the residual in the base, so the network's outputs are unchanged at step 0. Orthogonal needs an even rank."),
    S("rslora", ("finetune", "rslora"), OneOf((False, True)), False, "lora_rslora", "toggle",
      "rsLoRA: scale by α/√r", but("scaling"), "Scale ΔW by α/√r instead of α/r (rank-stabilised LoRA; see "
      "the Scaling explorer)."),
    S("dora", ("finetune", "dora"), OneOf((False, True)), False, "lora_dora", "toggle", "DoRA: learn each "
      "neuron's magnitude", ADAPTED, "Weight-decomposed LoRA (Liu et al. 2024): W′ = m ⊙ (W + (α/r)·B·A) / "
      "‖W + (α/r)·B·A‖ per output neuron, with the magnitudes m trained too (PEFT's use_dora)."),
    S("loraplus", ("finetune", "loraplus_ratio"), Number(0.1, 100.0), 1.0, "lora_loraplus", "number_input",
      "LoRA+ ratio", ADAPTED, "LoRA+ (Hayou et al. 2024): B (and DoRA's magnitudes) learn this many times "
      "faster than A; 1 is plain LoRA (PEFT's create_loraplus_optimizer)."),
    S("cmp_ranks", ("compare", "ranks"), SomeOf(STUDY_RANKS), (1, 2, 4, 8, 16), "sweep_ranks", "multiselect",
      "Ranks", {"compare"}, "Each rank r gives every target layer r·(d+k) trainable parameters: ΔW = (α/r)·B·A "
      "with B d×r and A r×k."),
    S("cmp_targets", ("compare", "targets"), SomeOf(DEFAULT_TARGETS), ("linear1", "linear2"), "sweep_targets",
      "multiselect", "Target layers", {"compare"}, "linear3 maps 2000 features to only 10 classes, so its rank "
      "is at most 10: with it, ranks above 10 are impossible. That is why the default here adapts linear1 and "
      "linear2 only."),
    S("full_lr", ("compare", "full_lr"), OneOf(FULL_LEARNING_RATES), 3e-5, "sweep_full_lr", "select_slider",
      "Full finetuning's learning rate", {"compare"}, "Full finetuning's own, smaller learning rate: every one "
      "of its 2.8 M weights moves by about this much per Adam step."),
    S("oracle_ranks", ("oracle", "ranks"), SomeOf(RANKS), (1, 2, 4, 8), "oracle_ranks", "multiselect",
      "LoRA ranks to compare", {"oracle"}, "A LoRA run at each rank, with the same data and steps as the full "
      "finetune."),
    S("oracle_steps", ("oracle", "steps"), STEPS, 50, "oracle_steps", "number_input", "Steps per run",
      {"oracle"}, "The full finetune and every LoRA run train this many steps.", cap="max_steps"),
    S("oracle_full_lr", ("oracle", "full_lr"), OneOf(FULL_LEARNING_RATES), 3e-5, "oracle_full_lr",
      "select_slider", "Full finetuning's learning rate", {"oracle"}, "Its own, smaller than LoRA's: at LoRA's "
      "1e-3, training all 2.8 M weights on one class makes the network answer that class for almost every image."),
    S("inits_rank", ("inits", "rank"), OneOf(RANKS), 4, "inits_rank", "select_slider", "Rank r", {"inits"},
      "The same rank for every run (orthogonal, which needs an even rank, is left out at an odd one)."),
    S("inits_steps", ("inits", "steps"), STEPS, 50, "inits_steps", "number_input", "Steps per run", {"inits"},
      "Each run trains this many steps.", cap="max_steps"),
    S("scaling_ranks", ("scaling", "ranks"), SomeOf(RANKS), (1, 2, 4, 8), "scaling_ranks", "multiselect",
      "Ranks", {"scaling"}, "Each rank is trained twice: once scaled by α/r, once by α/√r."),
    S("scaling_alpha", ("scaling", "alpha"), ALPHA, 8.0, "scaling_alpha", "number_input", "Alpha α (fixed)",
      {"scaling"}, "The same α for every run: only the rank and the scaling rule change."),
    S("scaling_steps", ("scaling", "steps"), STEPS, 50, "scaling_steps", "number_input", "Steps per run",
      {"scaling"}, cap="max_steps"),
    S("frontier_ranks", ("frontier", "ranks"), SomeOf(RANKS), (1, 2, 4, 8), "frontier_ranks", "multiselect",
      "Ranks", {"frontier"}, "One adapter per rank."),
    S("frontier_steps", ("frontier", "steps"), STEPS, 50, "frontier_steps", "number_input", "Steps per adapter",
      {"frontier"}, cap="max_steps"),
    # it moves the points without retraining, so no run depends on it
    S("strength", ("frontier", "strength"), OneOf(STRENGTHS), 1.0, "frontier_strength", "slider",
      "Adapter strength", frozenset(), "W + strength·ΔW: 0 is the baseline, 1 the adapter as trained, above 1 "
      "an exaggerated update."),
    # steps between live snapshots of ΔW's spectrum in the inspector; 0 = only norms
    S("every", ("inspect_every",), OneOf((0, 5, 10, 25, 50, 100)), 10, "insp_every", "select_slider",
      "While training, redraw ΔW's singular values every", {"inspect"}, "‖ΔW‖_F of each layer is redrawn after "
      "every step (it costs two r×r products). The singular values come from the r×r core of B and A (two thin "
      "QRs and an r×r SVD), so frequent redraws are cheap too."),
)
BY_URL = {s.url: s for s in SETTINGS}
BY_PATH = {s.path: s for s in SETTINGS}
BY_KEY = {s.key: s for s in SETTINGS}
assert len(BY_URL) == len(BY_PATH) == len(BY_KEY) == len(SETTINGS), "each setting declared once"
assert all(set(s.affects) <= ALL for s in SETTINGS)


def default(*path: str):
    """The table's default for the setting at `path`, as a dataclass field takes it."""
    value = BY_PATH[path].default
    return None if path == ("baseline", "max_steps") and value == 0 else value


def checked(setting: Setting, value):
    """`value` in its one form (a set in the options' order, a whole α as a float); a ValueError in words
    when the setting does not accept it."""
    try:
        return setting.accepts.check(value)
    except (ValueError, TypeError):
        shown = as_text(value) if isinstance(value, (int, float, tuple, list)) else repr(value)
        raise ValueError(f"{setting.label.lower()} ({setting.url}) must be {setting.accepts.describe()}, "
                         f"got {shown[:40]}") from None


def widget_bounds(setting: Setting) -> dict:
    """The keyword arguments that bound its widget: a range, or options."""
    accepts = setting.accepts
    if isinstance(accepts, (Whole, Number)):
        return {"min_value": accepts.low, "max_value": accepts.high}
    if setting.widget == "slider":  # a grid of numbers drawn as a plain slider
        low, high = min(accepts.options), max(accepts.options)
        step = round(accepts.options[1] - accepts.options[0], 10)
        return {"min_value": low, "max_value": high, "step": step}
    if setting.widget == "toggle":
        return {}
    return {"options": list(accepts.options)}
