"""The "Inside the update" pages' results as tables: one row per layer, rank, initialisation or run."""
from dataclasses import asdict

import pandas as pd

import lora_core as lc
from lora_core import anatomy, studies


def layer_frame(views, norms: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame([{
        "layer": v.name, "ΔW shape": "×".join(map(str, v.delta.shape)), "rank r": v.rank,
        "‖ΔW‖_F": norms[v.name], "effective rank": v.effective_rank,
        "energy in top direction": float(anatomy.energy(v.delta_singular_values)[0]),
        "σ₁(ΔW)": float(v.delta_singular_values[0]), "σ₁(W)": float(v.weight_singular_values[0]),
    } for v in views])


def oracle_frame(result: lc.OracleStudy, layer: str) -> pd.DataFrame:
    found = result.oracle.layers[layer]
    rows = []
    for rank in result.ranks:
        angles = found.similarity[rank]["angles_deg"]
        rows.append({"rank r": rank, "energy of the full ΔW in its top r": float(found.energy[rank - 1]),
                     "subspace similarity": found.similarity[rank]["similarity"],
                     "chance level r/d": anatomy.chance_similarity(rank, found.out_features),
                     "smallest angle (°)": float(angles.min()), "largest angle (°)": float(angles.max())})
    return pd.DataFrame(rows)


def gallery_frame(curves, labels: dict[str, str]) -> pd.DataFrame:
    """One row per initialisation, named by `labels`."""
    return pd.DataFrame([{
        "initialisation": labels.get(c.init, c.init), "init": c.init,
        "largest output change before any step": c.initial_change,
        "final ‖ΔW‖_F": c.update_norms[-1] if c.update_norms else 0.0,
        "final loss": studies.final_loss(c.losses),
    } for c in curves])


def scaling_frame(rows) -> pd.DataFrame:
    """One row per run, with ‖ΔW‖_F after its first step; the rest of the per-step curve is not tabled."""
    frame = pd.DataFrame([asdict(r) for r in rows])
    frame.insert(3, "first_step_norm", [r.update_norms[0] for r in rows])
    return frame.drop(columns="update_norms")
