"""Figures of the metamaterials study, drawn from its tables only.

- ``metamaterials_scaling`` (paper Fig. 3): ``E / E_50`` against ``Phi`` on log axes, one
  panel per force field, crystal and disordered samples with their fitted lines.
- ``metamaterials_disorder`` (paper Fig. 4C): the exponent ``n`` (with its error bar)
  against the mean two-body excess entropy ``S_2`` of each force field and family.
- ``metamaterials_relaxed`` (paper Fig. 7B): ``E`` against ``Phi`` of the networks relaxed
  from another force field's (``relax_from``: the ionic and covalent ones) beside it.
- ``metamaterials_stress_shift`` (paper Fig. 8A): normal and shear stress shifts per atom
  under uniaxial tension.
"""

from __future__ import annotations

import math

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

MARKERS = {"disordered": "o", "fcc": "s", "diamond": "D", "hcp": "^"}


def _log_axes(ax) -> None:
    """Log-log axes with plain tick labels (0.3, not 3 x 10^-1)."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))


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
            x = np.geomspace(min(g["phi"].min(), 0.5), max(g["phi"].max(), 0.5), 20)
            ax.plot(x, (x / 0.5) ** fit["n"], color=line.get_color(), lw=1)
        _log_axes(ax)
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


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9,
            wrap=True)  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])


def relaxed_figure(samples: pd.DataFrame, fits: pd.DataFrame):
    """Paper Fig. 7B: ``E`` against ``Phi`` of each force field with ``relax_from`` and of
    its source, one panel per source, fitted lines, ``n`` and the mean coordination."""
    relax = samples["relax_from"].fillna("").astype(str) if "relax_from" in samples else None
    sources = [] if relax is None else list(dict.fromkeys(relax[relax != ""]))
    fig, axes = plt.subplots(1, max(1, len(sources)), figsize=(4.6 * max(1, len(sources)), 3.6),
                             squeeze=False)  # fmt: skip
    if not sources:
        _note(axes[0, 0], "no force field with relax_from in this config")
    for ax, src in zip(axes.flat, sources, strict=False):
        names = [src, *dict.fromkeys(samples.loc[relax == src, "name"])]
        for name in names:
            g = samples[(samples["name"] == name) & (samples["structure"] == "disordered")
                        & samples["used"]]  # fmt: skip
            fit = fits[(fits["name"] == name) & (fits["structure"] == "disordered")]
            if not len(g) or not len(fit) or not np.isfinite(fit["n"].iloc[0]):
                continue
            f = fit.iloc[0]
            label = (f"{name} (λ/A = {f['lambda_over_A']:g}): n = {f['n']:.2f}, "
                     f"CN = {f['coordination']:.1f}")  # fmt: skip
            line = ax.plot(g["phi"], g["young"], "o", alpha=0.8, label=label)[0]
            x = np.geomspace(g["phi"].min(), g["phi"].max(), 20)
            ax.plot(x, f["E_50"] * (x / 0.5) ** f["n"], color=line.get_color(), lw=1)
        _log_axes(ax)
        ax.set_xlabel(r"packing fraction $\Phi$")
        ax.set_ylabel(r"Young's modulus $E$ ($\epsilon/\sigma^3$)")
        ax.set_title(f"networks relaxed from {src}", fontsize=10)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def stress_shift_figure(shifts: pd.DataFrame):
    """Paper Fig. 8A: normal and shear stress shifts per atom against the uniaxial strain,
    one line per force field (mean over its samples, band: min to max)."""
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4))
    if not len(shifts):
        for ax in axes:
            _note(ax, "no stress shifts measured (measure.stress_shift.steps = 0)")
        fig.tight_layout()
        return fig
    for ax, col, label in ((axes[0], "d_sigma", r"normal stress shift $\Delta\bar\sigma$"),
                           (axes[1], "d_tau", r"shear stress shift $\Delta\bar\tau$")):  # fmt: skip
        for name, g in shifts.groupby("name", sort=False):
            stats = g.groupby("strain")[col].agg(["mean", "min", "max"])
            n = g.groupby(["structure_id", "seed"]).ngroups
            line = ax.plot(100 * stats.index, stats["mean"], "-o", ms=3,
                           label=f"{name} ({n} samples)")[0]  # fmt: skip
            ax.fill_between(100 * stats.index, stats["min"], stats["max"],
                            color=line.get_color(), alpha=0.2, lw=0)  # fmt: skip
        ax.set_xlabel(r"uniaxial strain $\epsilon_{xx}$ (%)")
        ax.set_ylabel(label + r" ($\epsilon/\sigma^3$)")
        ax.axhline(0.0, color="0.6", lw=0.6)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def draw_all(samples_csv: str, fits_csv: str, shifts_csv: str, outputs: list[str],
             dpi: int = 150) -> None:  # fmt: skip
    samples = pd.read_csv(samples_csv)
    fits = pd.read_csv(fits_csv)
    shifts = pd.read_csv(shifts_csv)
    figs = {"metamaterials_scaling": scaling_figure(samples, fits),
            "metamaterials_disorder": disorder_figure(fits),
            "metamaterials_relaxed": relaxed_figure(samples, fits),
            "metamaterials_stress_shift": stress_shift_figure(shifts)}  # fmt: skip
    for path in outputs:
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        figs[stem].savefig(path, dpi=dpi)
    for f in figs.values():
        plt.close(f)
