"""Core results turned into tables and messages for display."""
from dataclasses import asdict

import pandas as pd

import lora_core as lc


def outputs_table(p: lc.Playground) -> pd.DataFrame:
    """y, y′ and their difference, one row per output entry."""
    return pd.DataFrame({"y = Wx + b": p.y.numpy(), "y′ = BAx + b": p.y_prime.numpy(),
                         "difference y − y′": p.difference.numpy()})


def layer_frame(model) -> pd.DataFrame:
    """The notebook's per-layer parameter table, with the total as the last row."""
    total = {"layer": "total", "W": "", "b": "", "parameters": lc.count_parameters(model)["base"]}
    return pd.DataFrame(lc.layer_table(model) + [total])


def sweep_frame(rows: list[lc.SweepRow]) -> pd.DataFrame:
    """The comparison's rows as numbers (a CSV's empty cell where a row has no rank or learning rate)."""
    frame = pd.DataFrame([asdict(row) for row in rows])
    frame["rank"] = frame["rank"].astype("Int64")
    return frame


def sweep_display(frame: pd.DataFrame) -> pd.DataFrame:
    """sweep_frame for the page: a row without a rank or a learning rate says "—", not "None"."""
    shown = frame.copy()
    shown["rank"] = [str(r) if pd.notna(r) else "—" for r in frame["rank"]]
    shown["lr"] = [f"{lr:g}" if pd.notna(lr) else "—" for lr in frame["lr"]]
    return shown


def percent(share: float, digits: int = 2) -> str:
    return f"{share:.{digits}%}"


def lora_parameters(model, rank: int, alpha: float, targets, seed: int) -> dict[str, int]:
    """count_parameters of a copy of `model` carrying the adapter; the shared model is left alone.

    Raises add_lora's ValueError, which names the layer, when the rank does not fit a target.
    """
    return lc.count_parameters(lc.add_lora(lc.copy_model(model), rank, alpha, tuple(targets), seed=seed))


def settings_error(err: ValueError) -> str:
    """The core's ValueError as the page's message; a rank error already names the layer and its limit."""
    hint = (" A layer of d outputs and k inputs takes a rank of at most min(d, k): choose a smaller rank or "
            "leave that layer out." if "rank must be" in str(err) else "")
    return f"**These settings cannot be used:** {err}.{hint}"


def wrong_on(evaluation: lc.Evaluation, classes) -> int:
    """Test errors on the chosen classes."""
    return sum(evaluation.wrong_per_class[c] for c in classes)


def class_names(classes, chosen) -> str:
    """"class 2" or "classes 2, 7": the chosen classes by name."""
    return ("class " if len(chosen) == 1 else "classes ") + ", ".join(classes[c] for c in chosen)
