"""Figures of the metamaterials study, drawn from its tables only.

- ``metamaterials_scaling`` (paper Fig. 3): ``E / E_50`` against ``Phi`` on log axes, one
  panel per force field, crystal and disordered samples with their fitted lines.
- ``metamaterials_disorder`` (paper Fig. 4C): the exponent ``n`` (with its error bar)
  against the mean two-body excess entropy ``S_2`` of each force field and family.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

MARKERS = {"disordered": "o", "fcc": "s", "diamond": "D", "hcp": "^"}


def scaling_figure(samples: pd.DataFrame, fits: pd.DataFrame):
    names = list(dict.fromkeys(samples["name"]))
    cols = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        for _, fit in fits[fits["name"] == name].iterrows():
            fam = fit["structure"]
            g = samples[(samples["name"] == name) & (samples["structure"] == fam) & samples["used"]]
            if not len(g) or not np.isfinite(fit["E_50"]):
                continue
            label = f"{fam}: n = {fit['n']:.2f}" + (
                f" ± {fit['n_err']:.2f}" if np.isfinite(fit["n_err"]) else ""
            )
            line = ax.plot(g["phi"], g["young"] / fit["E_50"], MARKERS.get(fam, "o"),
                           ls="none", alpha=0.8, label=label)[0]  # fmt: skip
            x = np.geomspace(g["phi"].min(), 0.5, 20)
            ax.plot(x, (x / 0.5) ** fit["n"], color=line.get_color(), lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"packing fraction $\Phi$")
        ax.set_ylabel(r"$E / E_{50}$")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def disorder_figure(fits: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(4.4, 3.4))
    ok = fits[np.isfinite(fits["n"])]
    for _, r in ok.iterrows():
        err = r["n_err"] if np.isfinite(r["n_err"]) else 0.0
        ax.errorbar(r["S2"], r["n"], yerr=err, fmt=MARKERS.get(r["structure"], "o"), capsize=2,
                    label=f"{r['name']} ({r['structure']})")  # fmt: skip
    ax.set_xlabel(r"two-body excess entropy $S_2$")
    ax.set_ylabel(r"scaling exponent $n$")
    if len(ok):
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def draw_all(samples_csv: str, fits_csv: str, outputs: list[str], dpi: int = 150) -> None:
    samples = pd.read_csv(samples_csv)
    fits = pd.read_csv(fits_csv)
    figs = {"metamaterials_scaling": scaling_figure(samples, fits),
            "metamaterials_disorder": disorder_figure(fits)}  # fmt: skip
    for path in outputs:
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        figs[stem].savefig(path, dpi=dpi)
    for f in figs.values():
        plt.close(f)
