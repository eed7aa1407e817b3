"""Figures of the Bayesian optimization, drawn from the optimization table only
(``results/tables/metamaterials_optimization.csv``, :func:`.optimize.optimization_table`):

- :func:`trace` (``metamaterials_bo_trace``, after paper Fig. 5): measured n per evaluation of
  the BO runs, and the best n found vs evaluations for BO, random search and the space-filling
  design alone at the same budget, over optimizer seeds;
- :func:`maps` (``metamaterials_bo_maps``, after paper Figs. 6B and 7A): the GP's predicted n
  and its uncertainty on the three coordinate planes through the best force field found (and
  the coordination number where the table has it);
- :func:`gp_check` (``metamaterials_bo_gp_check``): the GP's predictive check, leave-one-out
  and prospective (each proposal's prediction made before it was measured).

The GP of the maps and the check is re-fitted here to every valid, distinct force field of
the table (all runs pooled): a table-only statistical model, no physics is recomputed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from . import optimize  # noqa: E402

P = optimize.PARAMETERS
LABELS = {"lambda_over_A": r"$\lambda/A$", "gamma": r"$\gamma$", "theta0": r"$\theta_0$ (deg)"}
STYLE = {
    "bo": ("C3", "Bayesian optimization"),
    "random": ("C0", "random search"),
    "lhs": ("C2", "Latin hypercube alone"),
}


def distinct_valid(table: pd.DataFrame) -> pd.DataFrame:
    """Valid evaluations, one row per distinct force field (first kept): a force field
    evaluated by several runs would otherwise count as its own leave-one-out neighbour."""
    good = table[table["valid"].astype(bool)] if "valid" in table else optimize.valid(table)
    return good.drop_duplicates(subset=list(P)).reset_index(drop=True)


def pooled_surrogate(table: pd.DataFrame, target: str = "n", seed: int = 0):
    """GP of ``target`` fitted to :func:`distinct_valid` rows (``n`` with ``n_err`` as known
    noise); returns the surrogate and the rows."""
    d = distinct_valid(table)
    d = d[np.isfinite(d[target].to_numpy(float))]
    err = d["n_err"].to_numpy(float) if target == "n" and "n_err" in d else None
    s = optimize.fit_gp(d[list(P)].to_numpy(float), d[target].to_numpy(float), err, 5, seed)
    return s, d


def loo_table(table: pd.DataFrame) -> pd.DataFrame:
    """Leave-one-out check of the pooled GP of n: each distinct valid force field with
    ``loo_mean``, ``loo_sd`` (predicting the measured value) and ``z`` (standardized
    residual)."""
    s, d = pooled_surrogate(table)
    mu, sd = optimize.loo_predictions(s)
    return d.assign(loo_mean=mu, loo_sd=sd, z=(d["n"].to_numpy(float) - mu) / sd)


def trace(table: pd.DataFrame, settings: dict):
    """(a) measured n of every evaluation of the BO runs (initial design as squares) with
    their best so far; (b) best n so far vs evaluations per strategy: median over optimizer
    seeds, band = min..max."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    bo = table[table["strategy"] == "bo"]
    for k, (_, run) in enumerate(bo.groupby("run")):
        v = run[run["valid"].astype(bool)]
        init = v["round"] == 0
        lab = k == 0
        ax.plot(
            v["evaluation"][init],
            v["n"][init],
            "s",
            ms=4,
            mfc="none",
            color="0.5",
            label="initial design" if lab else None,
        )
        ax.plot(
            v["evaluation"][~init],
            v["n"][~init],
            "o",
            ms=4,
            color="C3",
            alpha=0.7,
            label="BO proposals" if lab else None,
        )
        ax.step(
            run["evaluation"],
            run["best_so_far"],
            where="post",
            color="k",
            lw=1,
            label="best so far" if lab else None,
        )
    ax.axvline(settings["initial_size"] + 0.5, color="0.6", ls="--", lw=1)
    ax.set_xlabel("evaluation")
    ax.set_ylabel("measured $n$")
    ax.set_title("(a) BO runs", loc="left", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1]
    for strategy, (color, label) in STYLE.items():
        runs = table[table["strategy"] == strategy]
        if not len(runs):
            continue
        best = runs.pivot(index="evaluation", columns="run", values="best_so_far").sort_index()
        x = best.index.to_numpy()
        ax.fill_between(x, best.min(axis=1), best.max(axis=1), step="post", color=color, alpha=0.2)
        seeds = f"{best.shape[1]} seed{'s' if best.shape[1] > 1 else ''}"
        ax.step(x, best.median(axis=1), where="post", color=color, label=f"{label} ({seeds})")
    ax.axvline(
        settings["initial_size"] + 0.5, color="0.6", ls="--", lw=1, label="end of initial design"
    )
    # Zoom on the comparison after the initial design (the first few evaluations span n ~ 1-10).
    at_end = table.loc[table["evaluation"] == settings["initial_size"], "best_so_far"]
    lowest = table["best_so_far"].min()
    if len(at_end) and np.isfinite(at_end.max()) and at_end.max() > lowest:
        ax.set_ylim(
            lowest - 0.05 * (at_end.max() - lowest), at_end.max() + 0.1 * (at_end.max() - lowest)
        )
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best $n$ found")
    ax.set_title("(b) median over optimizer seeds, band min..max", loc="left", fontsize=10)
    ax.legend(fontsize=8)
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _slices(center: np.ndarray, points: int):
    """The three coordinate planes through ``center``: (x index, y index, fixed index) and
    physical grids ``(points^2, 3)``."""
    out = []
    for i, j, k in ((0, 1, 2), (0, 2, 1), (1, 2, 0)):
        a = np.linspace(*optimize.BOUNDS[i], points)
        b = np.linspace(*optimize.BOUNDS[j], points)
        A, B = np.meshgrid(a, b)
        x = np.tile(center, (points * points, 1))
        x[:, i], x[:, j] = A.ravel(), B.ravel()
        out.append((i, j, k, A, B, x))
    return out


def maps(table: pd.DataFrame, settings: dict, points: int = 60):
    """GP-predicted n (row 1) and its standard deviation (row 2) on the planes through the
    best valid force field (red star); evaluated force fields within 5% of the range of the
    fixed parameter are drawn as dots. A row of predicted coordination is added when the
    table has a ``coordination`` column (paper Fig. 7A)."""
    targets = ["n"]
    if "coordination" in table and np.isfinite(table["coordination"].to_numpy(float)).any():
        targets.append("coordination")
    s, d = pooled_surrogate(table)
    center = d.loc[d["n"].idxmin(), list(P)].to_numpy(float)
    rows = [("n", s, "predicted $n$"), ("sd", s, "GP standard deviation of $n$")]
    if "coordination" in targets:
        rows.append(("n", pooled_surrogate(table, "coordination")[0], "predicted coordination"))
    fig, axes = plt.subplots(len(rows), 3, figsize=(13, 3.6 * len(rows)), squeeze=False)
    xd = d[list(P)].to_numpy(float)
    planes = _slices(center, points)
    # One colour scale per row, shared by its three planes.
    fields = [
        [optimize.predict(model, x)[0 if what == "n" else 1] for *_, x in planes]
        for what, model, _ in rows
    ]
    for col, (i, j, k, A, B, _) in enumerate(planes):
        near = np.abs(xd[:, k] - center[k]) <= 0.05 * np.ptp(optimize.BOUNDS[k])
        for row, (what, _, label) in enumerate(rows):
            ax = axes[row, col]
            z = fields[row][col].reshape(A.shape)
            lo, hi = min(map(np.min, fields[row])), max(map(np.max, fields[row]))
            hi = max(hi, lo + 1e-9 * max(1.0, abs(lo)))  # a flat field still gets levels
            levels = np.linspace(lo, hi, 21)
            cmap = "viridis" if what == "n" else "magma"
            im = ax.contourf(A, B, z, levels=levels, cmap=cmap)
            fig.colorbar(im, ax=ax, label=label, ticks=MaxNLocator(6), format="%.3g")
            ax.plot(xd[near, i], xd[near, j], "o", ms=3, mfc="w", mec="k", mew=0.5)
            ax.plot(center[i], center[j], "*", ms=13, color="r", mec="k", mew=0.5)
            ax.set_xlabel(LABELS[P[i]])
            ax.set_ylabel(LABELS[P[j]])
            fixed = f"{LABELS[P[k]]} = {center[k]:.4g}"
            ax.set_title(f"({'abcdefghi'[3 * row + col]}) {fixed}", loc="left", fontsize=10)
    fig.suptitle(
        f"GP of {len(d)} force fields; best measured n = {d['n'].min():.3g} (red star)", fontsize=10
    )
    fig.tight_layout()
    return fig


def gp_check(table: pd.DataFrame, settings: dict):
    """(a) leave-one-out predicted vs measured n (+-2 sd); (b) prospective: each BO proposal's
    predicted n (GP of the rounds before it) vs its measured n; (c) standardized LOO
    residuals against the standard normal."""
    loo = loo_table(table)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    lo = min(loo["n"].min(), loo["loo_mean"].min())
    hi = max(loo["n"].max(), loo["loo_mean"].max())
    ax = axes[0]
    ax.errorbar(loo["n"], loo["loo_mean"], yerr=2 * loo["loo_sd"], fmt="o", ms=3, lw=0.6, alpha=0.7)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    rmse = float(np.sqrt(np.mean((loo["n"] - loo["loo_mean"]) ** 2)))
    cover = float(np.mean(np.abs(loo["z"]) <= 2))
    ax.set_title(
        f"(a) leave-one-out: RMSE {rmse:.3g}, {100 * cover:.0f}% within 2 sd",
        loc="left",
        fontsize=10,
    )
    ax.set_xlabel("measured $n$")
    ax.set_ylabel("predicted $n$")
    ax = axes[1]
    pro = table[(table["strategy"] == "bo") & (table["round"] > 0) & table["valid"].astype(bool)]
    if len(pro):
        ax.errorbar(
            pro["n"],
            pro["predicted_n"],
            yerr=2 * pro["predicted_sd"],
            fmt="o",
            ms=3,
            lw=0.6,
            color="C3",
            alpha=0.7,
        )
        a = min(pro["n"].min(), pro["predicted_n"].min())
        b = max(pro["n"].max(), pro["predicted_n"].max())
        ax.plot([a, b], [a, b], "k--", lw=1)
        err = float(np.sqrt(np.mean((pro["n"] - pro["predicted_n"]) ** 2)))
        ax.set_title(f"(b) prospective (BO rounds >= 1): RMSE {err:.3g}", loc="left", fontsize=10)
    else:
        ax.text(0.5, 0.5, "no BO proposal measured yet", ha="center", transform=ax.transAxes)
        ax.set_title("(b) prospective", loc="left", fontsize=10)
    ax.set_xlabel("measured $n$")
    ax.set_ylabel("predicted $n$ (before measuring)")
    ax = axes[2]
    zmax = max(4.0, float(np.abs(loo["z"]).max()))
    ax.hist(loo["z"], bins=np.linspace(-zmax, zmax, 25), density=True, alpha=0.6)
    g = np.linspace(-zmax, zmax, 200)
    ax.plot(g, np.exp(-0.5 * g**2) / np.sqrt(2 * np.pi), "k-", lw=1, label="N(0, 1)")
    ax.set_xlabel("LOO residual / LOO sd")
    ax.set_ylabel("density")
    ax.set_title(f"(c) {len(loo)} distinct force fields", loc="left", fontsize=10)
    ax.legend(fontsize=8)
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


FIGURES = {
    "metamaterials_bo_trace": trace,
    "metamaterials_bo_maps": maps,
    "metamaterials_bo_gp_check": gp_check,
}


def draw_all(table: pd.DataFrame, settings: dict, outputs: list[str], dpi: int = 150) -> None:
    """Draw each figure named by the stem of an output path (every format asked for)."""
    for name, draw in FIGURES.items():
        paths = [p for p in outputs if Path(p).stem == name]
        if not paths:
            continue
        fig = draw(table, settings)
        for p in paths:
            Path(p).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(p, dpi=dpi)
        plt.close(fig)
