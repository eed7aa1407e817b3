"""Tables of the metamaterials study from the measure stores.

- :func:`samples_table`: one row per sample (force field, structure, seed, converged, used,
  Phi, E, B, G, nu, coordination, S_2).
- :func:`forcefields_table`: one row per force field and structure family with the fit
  ``E ~ Phi^n`` over all its used samples (``n, n_err, E_50``), the number of distinct
  densities (``Phi_0`` or vacancy fractions) and seeds, and the mean coordination and S_2;
  ``excluded`` counts samples whose minimization did not converge. Columns
  ``name, lambda_over_A, gamma, theta0, structure, n, n_err, E_50, n_densities, n_seeds,
  coordination, S2, samples, excluded, relax_from, paper_n`` (``relax_from``: the force
  field whose networks were relaxed, or empty; ``paper_n``: the paper's exponent where the
  config gives it, Table 1).
- :func:`stress_shift_table`: the stress shifts per atom under uniaxial tension (Fig. 8),
  one row per sample and strain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunable_solids import store

from .measure import power_law_fit

SAMPLE_COLUMNS = ("seed", "converged", "used", "phi", "young", "bulk", "shear", "poisson",
                  "coordination", "coordination_mode", "S2")  # fmt: skip


def samples_table(jobs: list[tuple[dict, str]]) -> pd.DataFrame:
    """``jobs``: ``(settings, measure store path)`` of every job."""
    rows = []
    for settings, path in jobs:
        arrays, _ = store.read_store(path)
        f, s = settings["forcefield"], settings["structure"]
        for k in range(len(arrays["seed"])):
            row = {"name": f["name"], "lambda_over_A": f["lambda_over_A"], "gamma": f["gamma"],
                   "theta0": f["theta0"], "structure": s["family"], "structure_id": s["name"],
                   "phi0": s.get("phi0", np.nan), "vacancy": s.get("vacancy", np.nan),
                   "relax_from": f.get("relax_from", ""),
                   "paper_n": f.get("paper_n", {}).get(s["family"], np.nan)}  # fmt: skip
            for c in SAMPLE_COLUMNS:
                row[c] = arrays[c][k].item()
            rows.append(row)
    return pd.DataFrame(rows)


def forcefields_table(samples: pd.DataFrame) -> pd.DataFrame:
    """The fit per force field and structure family (see the module docstring)."""
    rows = []
    keys = ["name", "lambda_over_A", "gamma", "theta0", "structure"]
    for key, g in samples.groupby(keys, sort=False):
        used = g[g["used"]]
        fit = power_law_fit(used["phi"], used["young"])
        rows.append({
            **dict(zip(keys, key, strict=True)),
            "n": fit.n, "n_err": fit.n_err, "E_50": fit.E_50,
            "n_densities": int(used["structure_id"].nunique()),
            "n_seeds": int(used["seed"].nunique()),
            "coordination": float(used["coordination"].mean()) if len(used) else np.nan,
            "S2": float(used["S2"].mean()) if len(used) else np.nan,
            "samples": len(g), "excluded": int((~g["converged"]).sum()),
            "relax_from": g["relax_from"].iloc[0],
            "paper_n": float(g["paper_n"].iloc[0]),
        })  # fmt: skip
    return pd.DataFrame(rows)


def stress_shift_table(jobs: list[tuple[dict, str]]) -> pd.DataFrame:
    """One row per used sample and strain step with its stress shifts (``d_sigma``,
    ``d_tau``: normal and shear, paper Eqs. 10-11) and the unstrained means (``sigma0``,
    ``tau0``); empty when no job measured them."""
    rows = []
    for settings, path in jobs:
        arrays, _ = store.read_store(path)
        if "shift_sigma" not in arrays or arrays["shift_sigma"].shape[1] == 0:
            continue
        f, s = settings["forcefield"], settings["structure"]
        for k in np.flatnonzero(arrays["used"]):
            if not np.all(np.isfinite(arrays["shift_sigma"][k])):
                continue
            for j, e in enumerate(arrays["shift_strain"]):
                rows.append({"name": f["name"], "structure": s["family"],
                             "structure_id": s["name"], "seed": int(arrays["seed"][k]),
                             "phi": float(arrays["phi"][k]), "strain": float(e),
                             "d_sigma": float(arrays["shift_sigma"][k, j]),
                             "d_tau": float(arrays["shift_tau"][k, j]),
                             "sigma0": float(arrays["sigma0"][k]),
                             "tau0": float(arrays["tau0"][k])})  # fmt: skip
    cols = ["name", "structure", "structure_id", "seed", "phi", "strain", "d_sigma", "d_tau",
            "sigma0", "tau0"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)
