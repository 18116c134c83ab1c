"""Core results turned into tables and messages for display."""
from dataclasses import asdict

import numpy as np
import pandas as pd

import lora_core as lc


def approximation(p: lc.Playground) -> np.ndarray:
    """B·A as an array for the heatmap (the playground keeps the factors, not their product)."""
    return p.B.numpy() @ p.A.numpy()  # (d, r) @ (r, k) → (d, k)


def outputs_table(p: lc.Playground) -> pd.DataFrame:
    """y, y′ and their difference, one row per output entry."""
    y, y_prime = p.y.numpy(), p.y_prime.numpy()
    return pd.DataFrame({"y = Wx + b": y, "y′ = BAx + b": y_prime, "difference y − y′": y - y_prime})


def rank_limits(model, targets) -> dict[str, tuple[int, int]]:
    """(out, in) of each target layer: a LoRA rank can be at most min(out, in)."""
    return {name: (model.get_submodule(name).out_features, model.get_submodule(name).in_features)
            for name in targets}


def rank_problems(model, targets, ranks) -> list[str]:
    """A sentence for every target layer that cannot take the largest of `ranks`."""
    largest = max(ranks)
    return [f"Rank {largest} is too large for **{name}**: it is a {out}×{inp} layer, so its rank is at most "
            f"**{min(out, inp)}**. Choose a rank ≤ {min(out, inp)} or leave {name} out of the target layers."
            for name, (out, inp) in rank_limits(model, targets).items() if largest > min(out, inp)]


def layer_frame(model) -> pd.DataFrame:
    """The notebook's per-layer parameter table, with the total as the last row."""
    total = {"layer": "total", "W": "", "b": "", "parameters": lc.count_parameters(model)["base"]}
    return pd.DataFrame(lc.layer_table(model) + [total])


def sweep_frame(rows: list[lc.SweepRow]) -> pd.DataFrame:
    frame = pd.DataFrame([asdict(row) for row in rows])
    frame["rank"] = frame["rank"].astype("Int64")
    return frame


def percent(share: float, digits: int = 2) -> str:
    return f"{share:.{digits}%}"


def lora_parameters(model, rank: int, alpha: float, targets, seed: int) -> dict[str, int]:
    """count_parameters of a copy of `model` carrying the adapter; the shared model is left alone."""
    return lc.count_parameters(lc.add_lora(lc.copy_model(model), rank, alpha, tuple(targets), seed=seed))


def wrong_on(evaluation: lc.Evaluation, classes) -> int:
    """Test errors on the chosen classes."""
    return sum(evaluation.wrong_per_class[c] for c in classes)


def class_names(classes, chosen) -> str:
    """"class 2" or "classes 2, 7": the chosen classes by name."""
    return ("class " if len(chosen) == 1 else "classes ") + ", ".join(classes[c] for c in chosen)
