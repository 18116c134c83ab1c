"""The ΔW inspector's words: each chart's caption, from the same numbers the chart draws."""
from lora_core import anatomy
from lora_core.data import MEAN, STD
from views import tables


def values(named: dict, last) -> str:
    """"linear1 0.12, linear2 0.034": one number per layer, `last` picking it from the layer's values."""
    return ", ".join(f"{name} {last(v):.3g}" for name, v in named.items())


def heatmap_caption(layer: str, largest_entry: float) -> str:
    return (f"Each entry of ΔW of {layer} as a colour, blue +, red −, one entry one square; "
            + (f"the largest |entry| is {largest_entry:.3g}." if largest_entry else "every entry is 0."))


def spectra_caption(view, nonzero: int) -> str:
    return (f"σ₁ of ΔW is {float(view.delta_singular_values[0]):.3g}, σ₁ of W "
            f"{float(view.weight_singular_values[0]):.3g}; ΔW has {nonzero} non-zero singular "
            f"value{'' if nonzero == 1 else 's'} (r = {view.rank}), W "
            f"{anatomy.nonzero_count(view.weight_singular_values)}.")


def patterns_caption(patterns: list) -> str:
    largest = max(abs(v) for p in patterns for row in p for v in row)
    return (f"{len(patterns)} row{'s' if len(patterns) > 1 else ''} of A, each a weight per pixel "
            + (f"drawn square; one colour scale for all, ±{largest:.3g} at its ends." if largest
               else "drawn square; every entry is 0."))


def predicted(logits: list[float], classes) -> str:
    """The class whose logit is the largest."""
    return classes[max(range(len(logits)), key=logits.__getitem__)]


EFFECTIVE_RANK_HELP = ("exp of the entropy of the normalised singular values: k when k of them are equal, "
                       "1 when one direction dominates, 0 when ΔW = 0. It can never exceed r.")

PATTERNS_TEXT = (
    "Each row of A (r×784) is a weighting of the 784 pixels: ΔW·x starts with A·x, so these r "
    "images are the only input patterns the update can respond to. Blue pixels raise that row's "
    "A·x, red ones lower it; the sign means something only together with B, since flipping the "
    "signs of both B and A leaves ΔW unchanged. The input is the normalised image, where blank "
    f"background is {-MEAN / STD:.2f}, not 0, so the background counts too. A starts as random "
    "noise (kaiming-uniform) and each Adam step moves an entry by up to about the learning rate: at "
    "1e-3, linear1's A has moved as far as its starting noise (‖A − A₀‖ ≥ ‖A₀‖) within 50 steps.")


def top_energy_help(nonzero: int) -> str:
    return ("Share of ‖ΔW‖²_F that its largest singular direction holds; "
            + (f"its {nonzero} non-zero direction(s) hold 100 %, as ΔW has rank {nonzero} ≤ r."
               if nonzero else "ΔW = 0, so no direction holds any."))


def heatmap_size_caption(shape, stride: int) -> str:
    out, inp = shape
    return f"ΔW is {out}×{inp}" + (f"; drawn every {stride}th row and column to stay light in the browser "
                                   "(the numbers and SVDs use the whole matrix)." if stride > 1 else ".")


def spectra_shown_caption(shown: int, of: int) -> str:
    return (f"The first {shown} of W's {of} singular values, and ΔW's r: computed "
            "from B and A alone, since B·A cannot have more than r directions — every other one is zero.")


def energy_caption(k: int, delta_energy: list[float], weight_energy: list[float], nonzero: int, rank: int) -> str:
    """The top-k energy chart at the slider's k (ΔW's energy stays at 100 % past its rank)."""
    return (f"Share of ‖M‖²_F in the top k singular directions: at k = {k}, ΔW "
            f"{tables.percent(delta_energy[min(k, len(delta_energy)) - 1])} and W "
            f"{tables.percent(weight_energy[k - 1])}; "
            + (f"ΔW reaches 100 % at k = {nonzero}, its rank (r = {rank})." if nonzero
               else "ΔW = 0 holds no energy at any k."))


def logits_caption(without: list[float], with_adapter: list[float], classes) -> str:
    return (f"The ten logits through W and through W + ΔW; the largest is {predicted(without, classes)} "
            f"({max(without):.3g}) off and {predicted(with_adapter, classes)} ({max(with_adapter):.3g}) on.")


def norms_caption(norms: dict) -> str:
    return f"‖ΔW‖_F of each layer from 0 at step 0 to, after the last step: {values(norms, lambda v: v[-1])}."


def history_caption(layer: str, step: int, spectra: dict) -> str:
    return (f"ΔW's singular values of {layer} at each snapshot; at step {step:,}: "
            + ", ".join(f"{v:.3g}" for v in spectra[layer]) + ".")
