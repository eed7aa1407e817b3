"""Figures drawn from loaded store data (see :mod:`loaders`)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection, PatchCollection  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402


def draw_packing(ax, state: dict) -> None:
    """Particles as discs coloured by species and the contact network (2D; 3D projected)."""
    R, box = state["positions"], state["box"]
    species, diam = state["species"], state["diameter"]
    xy = R[:, :2]
    cmap = plt.get_cmap("tab10" if len(diam) <= 10 else "tab20")
    discs = [Circle(p, 0.5 * diam[s]) for p, s in zip(xy, species, strict=True)]
    colors = [cmap(s % cmap.N) for s in species]
    ax.add_collection(PatchCollection(discs, facecolors=colors, edgecolors="k", linewidths=0.3,
                                      alpha=0.75))  # fmt: skip
    valid = (state["pair_i"] >= 0) & state["pair_contact"]
    i, j = state["pair_i"][valid], state["pair_j"][valid]
    d = R[i] - R[j]
    inv = np.linalg.inv(box)
    frac = d @ inv.T
    d = (frac - np.round(frac)) @ box.T  # minimum image, so bonds across the edge stay short
    segs = np.stack([xy[j], xy[j] + d[:, :2]], axis=1)
    ax.add_collection(LineCollection(segs, colors="k", linewidths=0.6))
    L = np.diag(box)[:2]
    ax.plot([0, L[0], L[0], 0, 0], [0, 0, L[1], L[1], 0], "k--", lw=0.5)
    ax.set_xlim(-0.05 * L[0], 1.05 * L[0])
    ax.set_ylim(-0.05 * L[1], 1.05 * L[1])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    cfg = state["config"]
    ax.set_title(f"{cfg['name']}: {cfg['potential']}, N = {cfg['N']}, seed {int(state['seed'])}",
                 fontsize=9)  # fmt: skip


def overview(state: dict, table: pd.DataFrame):
    """Packing with contacts (left) and distributions of nu, B, G over converged states."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), gridspec_kw={"width_ratios": [1.3, 1, 1, 1]})
    draw_packing(axes[0], state)
    ok = table[table["converged"]]
    for ax, col, label in zip(axes[1:], ["nu", "B", "G"], [r"$\nu$", "$B$", "$G$"], strict=True):
        for name, grp in ok.groupby("scenario"):
            ax.hist(grp[col], bins=max(5, min(30, len(grp) // 2)), alpha=0.6, label=name)
        ax.set_xlabel(label)
        ax.set_ylabel("states")
    axes[1].legend(fontsize=7)
    n_bad = int((~table["converged"]).sum())
    fig.suptitle(f"{len(ok)} converged states" + (f", {n_bad} excluded (not converged)"
                                                  if n_bad else ""), fontsize=10)  # fmt: skip
    fig.tight_layout()
    return fig
