"""Tables and figure inputs of the independent-response study, read from its stores.

The stores are those of :mod:`.stages` (``jacobian.zarr``,
``jacobian_check.zarr``, ``sweeps.zarr``); nothing here recomputes physics.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tunable_solids import store

from .stages import SWEEP_MODE_QUANTITIES

# The scenario's columns (``_scenario_columns``) that lead every table.
SYSTEM_COLUMNS = ["scenario", "dim", "structure", "potential", "N"]
SVD_COLUMNS = [
    *SYSTEM_COLUMNS,
    "pressure",
    "density",
    "seed",
    "converged",
    "features",
    "params",
    "n_species",
    "n_y",
    "n_theta",
    "reference",
    "rank",
    "fully_independent",
    "s_max",
    "s_min",
    "s_min_over_max",
    "rank_rtol",
    "n_rattlers",
    "omega_degenerate",
    "jacobian_finite",
    "fd_max_rel_err",
    "fd_rearranged_columns",
]
SINGULAR_COLUMNS = [
    *SYSTEM_COLUMNS,
    "seed",
    "features",
    "params",
    "n_theta",
    "reference",
    "index",
    "s",
    "s_over_max",
    "relevant",
]
LINEAR_COLUMNS = [
    *SYSTEM_COLUMNS,
    "seed",
    "features",
    "n_theta",
    "mode",
    *SWEEP_MODE_QUANTITIES,
    "limited_by",
]
DESIGN_COLUMNS = [
    *SYSTEM_COLUMNS,
    "seed",
    "features",
    "n_y",
    "n_theta",
    "relative_change",
    "requested_norm",
    "achieved_norm",
    "dtheta_norm",
    "rel_error",
    "rearranged",
]


def _scenario_columns(cfg: dict) -> dict:
    return {
        "scenario": cfg["name"],
        "dim": cfg["dim"],
        "structure": cfg["structure"],
        "potential": cfg["potential"],
        "N": cfg["N"],
    }


def _name(fs) -> str:
    return "+".join(fs)


def _reference_n_theta(cfg: dict, reference: dict | None) -> int | None:
    """The scenario's reference n_theta (None: every parameterization is the reference, as
    for spring networks). ``reference`` maps scenario -> n_theta (the jacobian stores do not
    record it: it is not an input of the Jacobian)."""
    if reference is not None and cfg["name"] in reference:
        return reference[cfg["name"]]
    return cfg.get("response", {}).get("reference_n_theta")


def _check_errors(check_paths: list[str]) -> dict:
    """``{(scenario, seed, parameterization): ({group: error}, rearranged columns)}``."""
    out = {}
    for path in check_paths:
        arrays, attrs = store.read_store(path)
        name = attrs["provenance"]["config"]["name"]
        groups = attrs["summary"]["feature_groups"]
        for s, seed in enumerate(arrays["seed"]):
            for k in np.flatnonzero(arrays["checked"][s]):
                err = dict(zip(groups, arrays["fd_max_rel_err"][s, k].tolist(), strict=True))
                n_re = int(arrays["fd_rearranged"][s, k].sum())
                out[(name, int(seed), int(k))] = (err, n_re)
    return out


def jacobian_svd_table(
    jacobian_paths: list[str], check_paths: list[str] = (), reference: dict | None = None
) -> pd.DataFrame:
    """One row per (scenario, seed, n_theta, feature set): rank, extreme singular values,
    flags, and the finite-difference error where checked (max over the set's groups of the
    per-group error; empty where not checked). ``reference``: scenario -> reference n_theta."""
    checks = _check_errors(list(check_paths))
    rows = []
    for path in jacobian_paths:
        arrays, attrs = store.read_store(path)
        cfg, summ = attrs["provenance"]["config"], attrs["summary"]
        ref = _reference_n_theta(cfg, reference)
        sets = summ["feature_sets"]
        for s, seed in enumerate(arrays["seed"]):
            for k in range(arrays["n_theta"].shape[1]):
                nt = int(arrays["n_theta"][s, k])
                for f, fs in enumerate(sets):
                    n_y = int(arrays["feature_set_rows"][f].sum())
                    conv = bool(arrays["converged"][s]) and nt >= 0
                    sv = arrays["singular_values"][s, k, f]
                    sv = sv[np.isfinite(sv)]
                    err, n_re = checks.get((cfg["name"], int(seed), k), (None, None))
                    if err is not None:
                        vals = [err[g] for g in fs if g in err and math.isfinite(err[g])]
                        fd = max(vals) if vals else float("nan")
                    else:
                        fd = None
                    row = {
                        **_scenario_columns(cfg),
                        "pressure": cfg.get("pressure"),
                        "density": cfg.get("density"),
                        "seed": int(seed),
                        "converged": conv,
                        "features": _name(fs),
                        "params": "+".join(summ["params"]),
                        "n_species": int(arrays["n_species"][k]),
                        "n_y": n_y,
                        "n_theta": nt if conv else None,
                        "reference": (ref is None) or (nt == ref),
                        "rank": int(arrays["rank"][s, k, f]) if conv else None,
                        "fully_independent": bool(arrays["fully_independent"][s, k, f])
                        if conv
                        else None,
                        "s_max": float(sv[0]) if sv.size else None,
                        "s_min": float(sv[-1]) if sv.size else None,
                        "s_min_over_max": float(sv[-1] / sv[0]) if sv.size and sv[0] > 0 else None,
                        "rank_rtol": summ["rank_rtol"],
                        "n_rattlers": int(arrays["n_rattlers"][s]),
                        "omega_degenerate": bool(arrays["omega_degenerate"][s]) and "omega" in fs,
                        "jacobian_finite": bool(arrays["jacobian_finite"][s, k]),
                        "fd_max_rel_err": fd,
                        "fd_rearranged_columns": n_re,
                    }
                    rows.append(row)
    return pd.DataFrame(rows, columns=SVD_COLUMNS)


def singular_values_table(jacobian_paths: list[str], reference: dict | None = None) -> pd.DataFrame:
    """Every singular value (long format), with ``relevant = s > rank_rtol * s_max``."""
    rows = []
    for path in jacobian_paths:
        arrays, attrs = store.read_store(path)
        cfg, summ = attrs["provenance"]["config"], attrs["summary"]
        ref = _reference_n_theta(cfg, reference)
        for s, seed in enumerate(arrays["seed"]):
            if not arrays["converged"][s]:
                continue
            for k in range(arrays["n_theta"].shape[1]):
                nt = int(arrays["n_theta"][s, k])
                for f, fs in enumerate(summ["feature_sets"]):
                    sv = arrays["singular_values"][s, k, f]
                    sv = sv[np.isfinite(sv)]
                    smax = sv[0] if sv.size else np.nan
                    for i, val in enumerate(sv):
                        rows.append(
                            {
                                **_scenario_columns(cfg),
                                "seed": int(seed),
                                "features": _name(fs),
                                "params": "+".join(summ["params"]),
                                "n_theta": nt,
                                "reference": (ref is None) or (nt == ref),
                                "index": i,
                                "s": float(val),
                                "s_over_max": float(val / smax) if smax > 0 else np.nan,
                                "relevant": bool(val > summ["rank_rtol"] * smax),
                            }
                        )
    return pd.DataFrame(rows, columns=SINGULAR_COLUMNS)


def _sweep_n_theta(arrays: dict, s: int, summ: dict) -> int:
    nt = summ.get("n_theta_reference", -1)
    if nt is None or nt < 0:  # networks: the number of bonds
        d = arrays["direction"][s]
        nt = int(np.isfinite(d).any(axis=0).sum()) if d.size else -1
    return int(nt)


def linear_regime_table(sweep_paths: list[str]) -> pd.DataFrame:
    """One row per swept design mode: ``s``, ``gamma_tilde``, ``gamma_r``, ``gamma_star``,
    ``zeta = gamma_star s`` and what ended the linear regime first."""
    rows = []
    for path in sweep_paths:
        arrays, attrs = store.read_store(path)
        cfg, summ = attrs["provenance"]["config"], attrs["summary"]
        for s, seed in enumerate(arrays["seed"]):
            for i in np.flatnonzero(arrays["swept"][s]):
                g_r, g_s = float(arrays["gamma_r"][s, i]), float(arrays["gamma_star"][s, i])
                if not math.isfinite(g_s):
                    limited = "none"
                elif math.isfinite(g_r) and g_r <= g_s:
                    limited = "rearrangement"
                else:
                    limited = "nonlinearity"
                rows.append(
                    {
                        **_scenario_columns(cfg),
                        "seed": int(seed),
                        "features": _name(summ["sweep_feature_set"]),
                        "n_theta": _sweep_n_theta(arrays, s, summ),
                        "mode": int(i),
                        **{k: float(arrays[k][s, i]) for k in SWEEP_MODE_QUANTITIES},
                        "limited_by": limited,
                    }
                )
    return pd.DataFrame(rows, columns=LINEAR_COLUMNS)


def inverse_design_table(sweep_paths: list[str]) -> pd.DataFrame:
    """One row per one-step design test: requested vs achieved feature change."""
    rows = []
    for path in sweep_paths:
        arrays, attrs = store.read_store(path)
        cfg, summ = attrs["provenance"]["config"], attrs["summary"]
        for s, seed in enumerate(arrays["seed"]):
            for f, fs in enumerate(summ["feature_sets"]):
                err = float(arrays["design_rel_error"][s, f])
                if not math.isfinite(err):
                    continue
                req = arrays["design_requested"][s, f]
                req = req[np.isfinite(req)]
                ach = arrays["design_achieved"][s, f]
                ach = ach[np.isfinite(ach)]
                dth = arrays["design_dtheta"][s, f]
                dth = dth[np.isfinite(dth)]
                rows.append(
                    {
                        **_scenario_columns(cfg),
                        "seed": int(seed),
                        "features": _name(fs),
                        "n_y": int(req.size),
                        "n_theta": int(dth.size),
                        "relative_change": summ["relative_change"],
                        "requested_norm": float(np.linalg.norm(req)),
                        "achieved_norm": float(np.linalg.norm(ach)),
                        "dtheta_norm": float(np.linalg.norm(dth)),
                        "rel_error": err,
                        "rearranged": bool(arrays["design_rearranged"][s, f]),
                    }
                )
    return pd.DataFrame(rows, columns=DESIGN_COLUMNS)


SWEEP_KEYS = (
    "dy_norm",
    "linear_norm",
    "deviation",
    "quadratic_norm",
    "rearranged",
    "sweep_converged",
)
MODE_KEYS = ("s", "gamma_tilde", "gamma_r", "gamma_star", "zeta", "gamma_r_lo", "gamma_star_lo")


def sweep_examples(sweep_paths: list[str], scenario: str | None = None) -> list[dict]:
    """Up to two sweeps for Fig. 3 (from ``scenario``, default the first with sweeps): one
    whose linear regime ends by nonlinearity and one that ends by a rearrangement, when
    both kinds exist (else the first two sweeps)."""
    candidates = []
    for path in sweep_paths:
        arrays, attrs = store.read_store(path)
        cfg, summ = attrs["provenance"]["config"], attrs["summary"]
        if scenario is not None and cfg["name"] != scenario:
            continue
        for s, seed in enumerate(arrays["seed"]):
            for i in np.flatnonzero(arrays["swept"][s]):
                ex = {
                    "scenario": cfg["name"],
                    "dim": cfg["dim"],
                    "seed": int(seed),
                    "mode": int(i),
                    "features": _name(summ["sweep_feature_set"]),
                    "gamma": arrays["gamma"],
                    **{k: arrays[k][s, i] for k in SWEEP_KEYS},
                    **{k: float(arrays[k][s, i]) for k in MODE_KEYS},
                }
                candidates.append(ex)
        if candidates and scenario is None:
            break

    def by_rearrangement(ex):
        return math.isfinite(ex["gamma_r"]) and ex["gamma_r"] <= ex["gamma_star"]

    def by_nonlinearity(ex):
        return math.isfinite(ex["gamma_star"]) and not by_rearrangement(ex)

    picked = []
    for rule in (by_nonlinearity, by_rearrangement):
        ex = next((e for e in candidates if rule(e) and not any(e is p for p in picked)), None)
        if ex is not None:
            picked.append(ex)
    for ex in candidates:
        if len(picked) >= 2:
            break
        if not any(ex is p for p in picked):
            picked.append(ex)
    return picked
