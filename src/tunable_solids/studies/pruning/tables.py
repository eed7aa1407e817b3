"""Tables of the pruning study, read from the stores only.

- :func:`runs_table` (``pruning_runs.csv``): one row per run (network entry, seed, method,
  target) with the columns the issue asks for plus seed, nu_iso and the stop reason;
- :func:`modes_table` (``pruning_modes.csv``): one row per analysed rigid state (initial,
  during, final) with the mode peaks, nu_bar', z - z_c and the bond statistics; ``*_box``:
  the same from the modes with the box strain (:class:`.modes.BoxModes`). States that
  were not rigid are never reported (dropped here).

``entries``: ``[(name, kind, N, seeds, methods)]`` in config order; the store lists are in the
order of the rule file (entry, seed, method).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunable_solids import store

from .modes import Z_C
from .stages import BOX_SCALARS, METHOD_CODES, STAGES

RUN_COLUMNS = ["network_kind", "N", "z_initial", "z_final", "nu_initial", "nu_final", "target",
               "method", "bonds_removed_fraction", "success", "wall_s"]  # fmt: skip
METHOD_NAMES = {v: k for k, v in METHOD_CODES.items()}


def runs_table(entries, run_stores: list[str]) -> pd.DataFrame:
    rows, it = [], iter(run_stores)
    for name, kind, n, seeds, methods in entries:
        for seed in seeds:
            for method in methods:
                a, attrs = store.read_store(next(it))
                infos = attrs["summary"]["infos"]
                for t in range(len(a["target"])):
                    row = {k: a[k][t].item() for k in ("z_initial", "z_final", "nu_initial",
                           "nu_final", "target", "bonds_removed_fraction", "success", "wall_s",
                           "nu_iso_initial", "nu_iso_final")}  # fmt: skip
                    rows.append({"network_kind": kind, "N": n, "method": method, **row,
                                 "network": name, "seed": seed,
                                 "nodes": int(round(2 * a["mask"].shape[1] / a["z_initial"][t])),
                                 "stop": infos[t]["stop"]})  # fmt: skip
    df = pd.DataFrame(rows)
    return df[RUN_COLUMNS + [c for c in df.columns if c not in RUN_COLUMNS]]


def modes_table(entries, mode_stores: list[str]) -> pd.DataFrame:
    rows, it = [], iter(mode_stores)
    keys = ("nu", "nu_iso", "z", "omega_plus", "omega_minus", "weight_plus", "weight_minus",
            "nu_prime_plus", "nu_prime_minus", "nu_bar_prime", "sigma2", "cov_xy",
            *(f"{k}_box" for k in BOX_SCALARS))  # fmt: skip
    for name, kind, n, seeds, _ in entries:
        for seed in seeds:
            a, _ = store.read_store(next(it))
            for s in np.flatnonzero(a["valid"]):
                row = {
                    "network_kind": kind,
                    "N": n,
                    "network": name,
                    "seed": seed,
                    "state": s,
                    "method": METHOD_NAMES.get(int(a["method"][s]), ""),
                    "target": a["target"][s].item(),
                    "stage": STAGES[int(a["stage"][s])],
                }
                row.update({k: a[k][s].item() for k in keys})
                row["z_minus_zc"] = row["z"] - Z_C
                rows.append(row)
    return pd.DataFrame(rows)
