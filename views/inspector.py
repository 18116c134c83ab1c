"""The ΔW inspector's words: each chart's caption, from the same numbers the chart draws."""
from lora_core import anatomy


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
