"""Tables of the packings study and the figure inputs, read from its stores only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunable_solids import store

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
