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


def class_names(classes, chosen) -> str:
    """"class 2" or "classes 2, 7": the chosen classes by name."""
    return ("class " if len(chosen) == 1 else "classes ") + ", ".join(classes[c] for c in chosen)


def describe_finetune(config: lc.FinetuneConfig, classes, with_rank: bool = True) -> str:
    """"rank 4, α 8 on linear1, linear2; 100 steps on class 2; learning rate 0.001; seed 0"."""
    rank = f"rank {config.rank}, " if with_rank else ""
    return (f"{rank}α {config.alpha:g} on {', '.join(config.targets)}; {config.steps:,} steps on "
            f"{class_names(classes, config.digits)}; learning rate {config.lr:g}; seed {config.seed}")


def joined(names) -> str:
    """"2", "2 and 7", "2, 5 and 7"."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def most_and_fewest(counts, classes) -> str:
    """"most for 2 and 7 (1,028 each), fewest for 6 (103)": every class that ties at either end is named."""
    counts = list(counts)
    high, low = max(counts), min(counts)
    if high == low:
        return f"{high:,} for every class"

    def at(value):
        chosen = [classes[i] for i, c in enumerate(counts) if c == value]
        return f"{joined(chosen)} ({value:,}{' each' if len(chosen) > 1 else ''})"

    return f"most for {at(high)}, fewest for {at(low)}"


# The FinetuneConfig fields a study may take from the LoRA page, as a caption shows them.
_SETTING_TEXT = {
    "rank": lambda c, classes: f"rank {c.rank}",
    "alpha": lambda c, classes: f"α {c.alpha:g}",
    "targets": lambda c, classes: "layers " + ", ".join(c.targets),
    "digits": lambda c, classes: class_names(classes, c.digits),
    "batch_size": lambda c, classes: f"batch {c.batch_size:,}",
    "lr": lambda c, classes: f"learning rate {c.lr:g}",
    "steps": lambda c, classes: f"{c.steps:,} steps",
    "init": lambda c, classes: f"init {c.init}",
    "rslora": lambda c, classes: "scale α/√r" if c.rslora else "scale α/r",
}


def study_settings(config: lc.FinetuneConfig, classes, own, hidden=()) -> str:
    """Which of a study's settings come from the LoRA page and which are the study's own (its knobs above);
    `hidden`: fields the study varies itself (a list of ranks), shown by its own widgets."""
    def listed(names):
        return "; ".join(_SETTING_TEXT[n](config, classes) for n in names)

    shared = [n for n in _SETTING_TEXT if n not in own and n not in hidden]
    return (f"From the LoRA page: {listed(shared)}. This study's own, set above: {listed(own)}. "
            f"Seed {config.seed}, from the sidebar.")


def proof_rows(checks: dict) -> list[tuple[str, str, float, bool, str]]:
    """The LoRA page's proofs: (claim, what is measured, its value, whether it holds, the bound) for every
    proof the checks hold (lora_core.proofs.adapter_checks, and start_checks after PiSSA or OLoRA)."""
    def at_most(claim, what, value, bound):
        return claim, what, value, value <= bound, f"must be ≤ {bound:g}"
    found = [
        at_most("The original weights are unchanged", "max |W now − W of the baseline|",
                checks["weights_changed"], 0.0),
        at_most("Adapter off gives the original network's outputs", "max |difference|", checks["off_vs_base"], 0.0),
        at_most("Merged weights give the same outputs as the adapter", "max |difference|",
                checks["merged_vs_parametrized"], 1e-5),
    ]
    if "factored_vs_parametrized" in checks:  # adapters checked before this proof existed lack it
        found.append(at_most("The factored training path gives the parametrized W′'s outputs",
                             "max |difference| / max |logit|", checks["factored_vs_parametrized"],
                             lc.FACTORED_TOLERANCE))
    if "start_vs_base" in checks:  # an init that moved W's principal part into the adapter
        found.append(at_most("At step 0 the adapted network (residual base + s·B₀·A₀) gave the baseline's outputs",
                             "max |difference| / max |logit|", checks["start_vs_base"], lc.START_TOLERANCE))
        value = checks["residual_vs_base"]
        found.append(("The residual base alone (adapter off at step 0) did not", "max |difference| / max |logit|",
                      value, value > lc.START_TOLERANCE, f"must be > {lc.START_TOLERANCE:g}"))
    return found
