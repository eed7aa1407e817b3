"""The one place figures and tables read stores from (they never recompute physics)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import store

STATE_COLUMNS = [
    "energy",
    "pressure",
    "max_force",
    "iterations",
    "converged",
    "n_rattlers",
    "n_contacts",
    "B",
    "G",
    "nu",
    "elastic_min_eig",
    "cg_residual",
]


def states_table(measured_paths: list[str]) -> pd.DataFrame:
    """One row per state of the given ``measured.zarr`` stores."""
    rows = []
    for path in measured_paths:
        arrays, attrs = store.read_store(path)
        cfg = attrs["provenance"]["config"]
        for s, seed in enumerate(arrays["seed"]):
            row = {
                "scenario": cfg["name"],
                "dim": cfg["dim"],
                "N": cfg["N"],
                "seed": int(seed),
                "structure": cfg["structure"],
                "potential": cfg["potential"],
            }
            row.update({c: arrays[c][s].item() for c in STATE_COLUMNS})
            rows.append(row)
    return pd.DataFrame(rows)


def state(measured_path: str, index: int = 0) -> dict[str, np.ndarray]:
    """Arrays of one state (``index`` along the seed axis) of a ``measured.zarr`` store."""
    arrays, attrs = store.read_store(measured_path)
    one = {
        k: (
            v[index]
            if v.ndim
            and v.shape[0] == len(arrays["seed"])
            and k not in ("species", "diameter", "k", "binding")
            else v
        )
        for k, v in arrays.items()
    }
    one["config"] = attrs["provenance"]["config"]
    return one


def training_table(run_paths: list[str], validation_paths: list[str]) -> pd.DataFrame:
    """One row per training run and targeted property (a joint nu + p run gives two rows)."""
    rows = []
    for run_path, val_path in zip(run_paths, validation_paths, strict=True):
        _, attrs = store.read_store(run_path)
        _, vattrs = store.read_store(val_path)
        run, summ, vsum = attrs["provenance"]["config"], attrs["summary"], vattrs["summary"]
        sysc = run["system"]
        for i, (q, target) in enumerate(zip(summ["properties"], summ["targets"], strict=True)):
            mean = vsum["mean_trained"][i] if vsum["mean_trained"] else float("nan")
            sem = vsum["sem_trained"][i] if vsum["sem_trained"] else float("nan")
            rows.append(
                {
                    "run": run["id"],
                    "mode": run["mode"],
                    "target_name": q,
                    "target": target,
                    "n_species": sysc["species"]["n_species"],
                    "m": run["m"]
                    if run["mode"] == "multi"
                    else (1 if run["mode"] == "individual" else 0),
                    "batch": run["batch"] if run["mode"] == "ensemble" else 0,
                    "dim": sysc["dim"],
                    "N": sysc["N"],
                    "seed": run["seed"],
                    "steps": summ["steps"],
                    "final_loss": summ["final_loss"],
                    "success": summ["success"],
                    "validated_mean": mean,
                    "validated_sem": sem,
                    "initial_mean": (vsum["mean_initial"] or [float("nan")] * (i + 1))[i],
                    "n_validation": vsum["n_validation"],
                    "n_excluded": vsum["n_excluded"],
                    "n_rearrangements": summ["n_rearrangements"],
                }
            )
    return pd.DataFrame(rows)
