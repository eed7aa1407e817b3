"""Tables of the training study and the figure inputs, read from its stores only (they never
recompute physics)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tunable_solids import store

TRAINING_COLUMNS = [
    "run",
    "group",
    "mode",
    "target_name",
    "target",
    "n_species",
    "m",
    "batch",
    "dim",
    "N",
    "a",
    "seed",
    "steps",
    "final_loss",
    "success",
    "validated_mean",
    "validated_sem",
    "initial_mean",
    "initial_sem",
    "n_validation",
    "n_excluded",
    "validation_N",
    "n_targets",
    "n_excluded_training",
    "n_rearrangements",
]


def _morse_a(sysc: dict) -> float:
    """Morse range ``a`` of a training system (NaN for soft spheres)."""
    if not sysc["potential"].startswith("harmonic_morse"):
        return float("nan")
    default = 5.0 if sysc["potential"] == "harmonic_morse_xplor" else 50.0
    return float(sysc.get("potential_options", {}).get("a", default))


def _pick(values, i):
    return values[i] if values else float("nan")


def _run_columns(run: dict) -> dict:
    sysc = run["system"]
    mode = run["mode"]
    return {
        "run": run["id"],
        "group": run["group"],
        "mode": mode,
        "n_species": sysc["species"]["n_species"],
        "m": run["m"] if mode == "multi" else (1 if mode == "individual" else 0),
        "batch": run["batch"] if mode == "ensemble" else 0,
        "dim": sysc["dim"],
        "N": sysc["N"],
        "a": _morse_a(sysc),
        "seed": run["seed"],
        "n_targets": len(run["target"]),
    }


def training_table(run_paths: list[str], validation_paths: list[str]) -> pd.DataFrame:
    """One row per training run and targeted property (a joint nu + p run gives two rows).

    ``validated_*`` / ``initial_*``: mean and standard error over the converged validation
    configurations at the trained / initial parameters; ``n_excluded`` counts validation
    configurations that did not converge (excluded, never replaced), ``n_excluded_training``
    the configurations excluded from ensemble training steps.
    """
    rows = []
    for run_path, val_path in zip(run_paths, validation_paths, strict=True):
        attrs, vattrs = store.read_attrs(run_path), store.read_attrs(val_path)
        run, summ, vsum = attrs["provenance"]["config"], attrs["summary"], vattrs["summary"]
        vcfg = vattrs["provenance"]["config"]["validation"]
        for i, (q, target) in enumerate(zip(summ["properties"], summ["targets"], strict=True)):
            row = _run_columns(run)
            row.update(
                {
                    "target_name": q,
                    "target": target,
                    "steps": summ["steps"],
                    "final_loss": summ["final_loss"],
                    "success": summ["success"],
                    **_validated(vsum, i),
                    "validation_N": vcfg.get("N") or run["system"]["N"],
                    "n_excluded_training": summ["n_excluded"],
                    "n_rearrangements": summ["n_rearrangements"],
                }
            )
            rows.append(row)
    return pd.DataFrame(rows, columns=TRAINING_COLUMNS)


def _validated(vsum: dict, i: int) -> dict:
    """Columns of a validation summary for its ``i``-th targeted property."""
    return {
        "validated_mean": _pick(vsum["mean_trained"], i),
        "validated_sem": _pick(vsum["sem_trained"], i),
        "initial_mean": _pick(vsum["mean_initial"], i),
        "initial_sem": _pick(vsum["sem_initial"], i),
        "n_validation": vsum["n_validation"],
        "n_excluded": vsum["n_excluded"],
    }


VALIDATION_COLUMNS = [
    "run",
    "group",
    "mode",
    "validation",
    "target_name",
    "target",
    "n_species",
    "m",
    "dim",
    "N",
    "a",
    "seed",
    "n_targets",
    "validation_N",
    "polydispersity",
    "heterogeneity",
    "validated_mean",
    "validated_sem",
    "initial_mean",
    "initial_sem",
    "n_validation",
    "n_excluded",
]


def training_validations_table(validation_paths: list[str]) -> pd.DataFrame:
    """One row per validation store (plain ``validation.zarr``: ``validation = plain``, and
    every extra validation by name) and targeted property."""
    rows = []
    for path in validation_paths:
        attrs = store.read_attrs(path)
        run, vsum = attrs["provenance"]["config"], attrs["summary"]
        val = run["validation"]
        for i, (q, target) in enumerate(run["target"].items()):
            row = _run_columns(run)
            row.update(
                {
                    "validation": run.get("validation_name") or "plain",
                    "target_name": q,
                    "target": target,
                    "validation_N": val.get("N") or run["system"]["N"],
                    "polydispersity": val["polydispersity"],
                    "heterogeneity": val["heterogeneity"],
                    **_validated(vsum, i),
                }
            )
            rows.append(row)
    return pd.DataFrame(rows, columns=VALIDATION_COLUMNS)


SUCCESS_COLUMNS = [
    "group",
    "mode",
    "a",
    "dim",
    "N",
    "n_species",
    "m",
    "target_name",
    "target",
    "n_runs",
    "n_success",
    "p_success",
    "p_success_err",
]


def training_success_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Success statistics of individual and multi runs (paper Figs. 2 and 3c): per group,
    Morse range ``a``, n_species, m and target, the fraction of runs whose loss fell below
    the threshold within the step budget, with its binomial standard error."""
    sel = runs[runs["mode"].isin(["individual", "multi"]) & (runs["n_targets"] == 1)]
    keys = ["group", "mode", "a", "dim", "N", "n_species", "m", "target_name", "target"]
    if sel.empty:
        return pd.DataFrame(columns=SUCCESS_COLUMNS)
    g = sel.groupby(keys, dropna=False)["success"]
    out = g.agg(n_runs="count", n_success="sum").reset_index()
    out["n_success"] = out["n_success"].astype(int)
    p = out["n_success"] / out["n_runs"]
    out["p_success"] = p
    out["p_success_err"] = np.sqrt(p * (1 - p) / out["n_runs"])
    return out[SUCCESS_COLUMNS]


PARAMETER_COLUMNS = [
    "run",
    "group",
    "mode",
    "n_species",
    "m",
    "dim",
    "a",
    "seed",
    "targets",
    "target_name",
    "target",
    "success",
    "parameter",
    "initial",
    "final",
]


def training_parameters_table(run_paths: list[str]) -> pd.DataFrame:
    """One row per training run and trained parameter: initial and final value (paper
    Figs. 1e, 4d). ``targets`` names every target (``nu=0.5;pressure=0.4``); ``target_name``
    and ``target`` are those of a single-target run (empty for joint runs)."""
    import zarr

    rows = []
    for path in run_paths:
        group = zarr.open_group(store.store_path(path), mode="r")
        attrs = dict(group.attrs)
        run, summ = attrs["provenance"]["config"], attrs["summary"]
        theta = np.asarray(group["theta"][...])
        final = np.asarray(group["final_theta"][...])
        initial = theta[0] if len(theta) else np.full_like(final, np.nan)
        single = len(run["target"]) == 1
        base = _run_columns(run)
        base.pop("batch")
        base.pop("N")
        base.pop("n_targets")
        base.update(
            {
                "targets": ";".join(f"{q}={v:g}" for q, v in run["target"].items()),
                "target_name": next(iter(run["target"])) if single else "",
                "target": next(iter(run["target"].values())) if single else float("nan"),
                "success": summ["success"],
            }
        )
        for label, a, b in zip(summ["parameters"], initial, final, strict=True):
            rows.append({**base, "parameter": label, "initial": float(a), "final": float(b)})
    return pd.DataFrame(rows, columns=PARAMETER_COLUMNS)


def training_history(run_path: str) -> dict:
    """Per-step history of a training run (``loss``, ``values``, ``theta``, ``lr``, ...) with
    its settings (``run``) and summary (``summary``): what the trace figures draw."""
    arrays, attrs = store.read_store(run_path)
    return {**arrays, "run": attrs["provenance"]["config"], "summary": attrs["summary"]}


def training_analysis(path: str) -> dict:
    """Arrays of a gradient-check, bonds or validation store with ``run`` and ``summary``."""
    arrays, attrs = store.read_store(path)
    return {**arrays, "run": attrs["provenance"]["config"], "summary": attrs["summary"]}
