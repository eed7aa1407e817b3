"""Figures of the packings study, drawn from its table and stores (:mod:`.tables`) only.

- :func:`overview`: a packing with its contacts and the distributions of nu, B, G.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tunable_solids.plotting import draw_packing  # noqa: E402


def strip(ax, table: pd.DataFrame, column: str) -> None:
    """Every state's value per scenario (jittered points) with the mean +- standard error."""
    rng = np.random.default_rng(0)
    names = sorted(table["scenario"].unique())
    for y, name in enumerate(names):
        v = table.loc[table["scenario"] == name, column].to_numpy()
        ax.plot(v, y + 0.15 * rng.uniform(-1, 1, len(v)), "o", ms=3, alpha=0.6)
        sem = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
        ax.errorbar(v.mean(), y, xerr=sem, fmt="|", color="k", ms=14, capsize=3)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(-0.5, len(names) - 0.5)
    ax.grid(axis="x", alpha=0.3)


def overview(state: dict, table: pd.DataFrame):
    """Packing with contacts (left) and the distributions of nu, B, G over converged states."""
    fig, axes = plt.subplots(1, 4, figsize=(16, 4), gridspec_kw={"width_ratios": [1.2, 1, 1, 1]})
    draw_packing(axes[0], state)
    ok = table[table["converged"]]
    for ax, col, label in zip(
        axes[1:],
        ["nu", "B", "G"],
        [r"Poisson's ratio $\nu$", "bulk modulus $B$", "shear modulus $G$"],
        strict=True,
    ):
        strip(ax, ok, col)
        ax.set_xlabel(label)
    for ax in axes[2:]:
        ax.set_yticklabels([])
    n_bad = int((~table["converged"]).sum())
    fig.suptitle(
        f"{len(ok)} converged states; bars: mean $\\pm$ standard error"
        + (f"; {n_bad} excluded (not converged)" if n_bad else ""),
        fontsize=10,
    )
    fig.tight_layout()
    return fig
