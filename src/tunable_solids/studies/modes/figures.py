"""Figures of the bond-operator study, drawn from ``spectrum.zarr`` stores and
``modes_exponents.csv`` only (:mod:`.tables`).

- :func:`spectra` (``modes_spectra``, after paper Figs. 1b-c, 3 and 7): ``P(lambda)`` with
  the ``lambda^-7/2`` and ``lambda^-2`` slopes, ``N e(F)`` vs ``lambda`` with the plateau, and
  ``D(omega)`` with ``omega^4`` and the first phonon frequency of each ensemble;
- :func:`structure` (``modes_structure``, after paper Fig. 4d-e): decay of ``|D|``,
  ``|D_PH|``, ``|F|``, ``|F_PH|`` from the core of the highest-lambda modes, and
  ``1 - <D|D_PH>`` vs ``lambda``;
- :func:`example` (``modes_example``, after paper Fig. 4a-c): the highest-lambda bond force
  mode of a 2D glass (top 10% of bonds), ``F`` with ``F_PH`` and ``D`` with ``D_PH``;
- :func:`annealing` (``modes_annealing``, after paper Fig. 5): ``R_Ag = A_g / A_g(T_p = inf)``
  and ``R_xi = xi / xi(T_p = inf)`` vs T_p, per model, dimension and N.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from tunable_solids.plotting import box_frame  # noqa: E402

from . import tables  # noqa: E402

FIELDS = [r"$|D|$", r"$|D_{PH}|$", r"$|F|$", r"$|F_{PH}|$"]


def _label_log_panels(axes) -> None:
    """Panel letters, a log grid, and no minor tick labels (narrow log ranges overlap)."""
    for a, t in zip(axes, "abcdefgh", strict=False):
        a.set_title(f"({t})", loc="left", fontsize=10)
        a.grid(alpha=0.3, which="both")
        a.xaxis.set_minor_formatter(NullFormatter())


def _guide(ax, x0, y0, slope, decades, label):
    """A dashed power-law guide from ``(x0, y0)`` over ``decades`` decades of x."""
    x = x0 * np.logspace(0, decades, 10)
    ax.plot(x, y0 * (x / x0) ** slope, "k--", lw=1)
    ax.text(x[-1], y0 * (x[-1] / x0) ** slope, label, fontsize=9, va="bottom")


def spectra(ensembles: list[tuple[dict, dict]], table: pd.DataFrame):
    """Three panels over ensembles ``(settings, loaded data)``."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for settings, d in ensembles:
        n, dim = settings["N"], settings["dim"]
        s = tables.scaled_spectra(d, dim)
        label = f"{settings['name']} (N={n}, {d['eigenvalues'].shape[0]} glasses)"
        lam = s["lam"]
        bins = tables.log_bins(lam, settings["fit"]["bins_per_decade"])
        x, y, _ = tables.density(lam.ravel(), bins, lam.shape[0], n)
        (line,) = axes[0].loglog(x[y > 0], y[y > 0], "o-", ms=4, label=label)
        ne = n * d["participation"]
        centre, med = [], []
        for lo, hi in zip(bins[:-1], bins[1:], strict=True):
            sel = (lam >= lo) & (lam < hi)
            if sel.sum() >= 3:
                centre.append(np.sqrt(lo * hi))
                med.append(np.median(ne[sel]))
        axes[1].loglog(centre, med, "o-", ms=4, color=line.get_color())
        row = table[table["ensemble"] == settings["name"]]
        if len(row) and np.isfinite(row["plateau"].iloc[0]):
            axes[1].axhline(row["plateau"].iloc[0], color=line.get_color(), ls=":", lw=1)
        w = s["omega"]
        wb = tables.log_bins(w[w > 0], settings["fit"]["bins_per_decade"])
        xw, yw, _ = tables.density(w[w > 0], wb, w.shape[0], n)
        axes[2].loglog(xw[yw > 0], yw[yw > 0], "o-", ms=4, color=line.get_color())
        axes[2].axvline(np.mean(s["omega_ph"]), color=line.get_color(), ls="--", lw=1)
    ax = axes[0]
    ylo, yhi = ax.get_ylim()
    xlo, xhi = ax.get_xlim()
    _guide(ax, xhi / 10**1.5, yhi / 10, -3.5, 1.0, r"$\lambda^{-7/2}$")
    _guide(ax, xlo * 3, yhi / 3, -2.0, 1.0, r"$\lambda^{-2}$")
    ax.set_xlabel(r"$\lambda / \lambda_0$")
    ax.set_ylabel(r"$P(\lambda)$ per particle")
    ax.legend(fontsize=8, loc="lower left")
    axes[1].set_xlabel(r"$\lambda / \lambda_0$")
    axes[1].set_ylabel(r"$N\,e(F)$ (median per bin)")
    ax = axes[2]
    ylo, yhi = ax.get_ylim()
    xlo, _ = ax.get_xlim()
    _guide(ax, xlo * 1.5, ylo * 3, 4.0, 0.5, r"$\omega^4$")
    ax.set_xlabel(r"$\omega / \omega_0$ (dashed: $\omega_{ph} = 2\pi c_s / L$)")
    ax.set_ylabel(r"$D(\omega)$ per particle")
    _label_log_panels(axes)
    fig.tight_layout()
    return fig


def structure(ensembles: list[tuple[dict, dict]]):
    """Decay profiles (median over glasses and top modes) and overlap loss vs lambda."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    markers = ["o", "s", "^", "v"]
    for e, (settings, d) in enumerate(ensembles):
        bins = d["decay_bins"]
        r = 0.5 * (bins[1:] + bins[:-1]) / np.mean(d["a0"])
        decay = d["decay"].reshape(-1, *d["decay"].shape[2:])  # (glass x mode, field, bin)
        filled = np.isfinite(decay).any(axis=0)
        prof = np.full(decay.shape[1:], np.nan)  # median over glasses and modes per shell
        prof[filled] = np.nanmedian(decay[:, filled], axis=0)
        for c in range(4):
            ok = np.isfinite(prof[c]) & (prof[c] > 0)
            axes[0].loglog(r[ok], prof[c][ok], markers[c] + "-", ms=4, color=f"C{c}",
                           alpha=1.0 / (1.0 + 0.7 * e),
                           label=f"{FIELDS[c]} {settings['name']}")  # fmt: skip
        s = tables.scaled_spectra(d, settings["dim"])
        k = d["overlap_loss"].shape[1]
        axes[1].loglog(s["lam"][:, :k].ravel(), d["overlap_loss"].ravel(), markers[e % 4],
                       ms=4, label=settings["name"])  # fmt: skip
    ax = axes[0]
    xlo, xhi = ax.get_xlim()
    _, yhi = ax.get_ylim()
    _guide(ax, xlo * 1.5, yhi / 3, -2.0, np.log10(xhi / xlo / 2), r"$r^{-2}$")
    ax.set_xlabel(r"distance from the core $r / a_0$")
    ax.set_ylabel("median field magnitude / max")
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    ax = axes[1]
    ax.set_xlabel(r"$\lambda / \lambda_0$ (highest-$\lambda$ modes)")
    ax.set_ylabel(r"$1 - |\langle \hat D | \hat D_{PH} \rangle|$")
    ax.legend(fontsize=8)
    _label_log_panels(axes)
    fig.tight_layout()
    return fig


def _segments(R, box, bonds):
    """Bond segments ``(B, 2, 2)`` from particle i along the minimum image to j (2D)."""
    i, j = bonds[:, 0], bonds[:, 1]
    frac = (R[j] - R[i]) @ np.linalg.inv(box).T
    d = (frac - np.round(frac)) @ box.T
    return np.stack([R[i, :2], R[i, :2] + d[:, :2]], axis=1)


def example(ensembles: list[tuple[dict, dict]]):
    """The highest-lambda mode of the first analysed glass of the first 2D ensemble."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    chosen = next(((st, d) for st, d in ensembles if st["dim"] == 2 and "example_f" in d), None)
    if chosen is None:
        for ax in axes:
            ax.axis("off")
        axes[1].text(0.5, 0.5, "no 2D ensemble in modes.ensembles: nothing to draw",
                     ha="center", va="center", transform=axes[1].transAxes)  # fmt: skip
        return fig
    st, d = chosen
    R, box, bonds, f = d["example_positions"], d["example_box"], d["example_bonds"], d["example_f"]
    L = np.diag(box)
    segs = _segments(R, box, bonds)
    top = np.abs(f) >= np.quantile(np.abs(f), 0.9)
    ax = axes[0]
    ax.add_collection(LineCollection(segs, colors="0.85", linewidths=0.4))
    w = np.abs(f[top]) / np.abs(f).max()
    colors = np.where(f[top] > 0, "tab:red", "tab:blue")
    ax.add_collection(LineCollection(segs[top], colors=colors, linewidths=0.5 + 3.5 * w))
    ax.set_title(f"(a) bond force mode f, $\\lambda/\\lambda_0$ = {_scaled_lambda(d):.3g}\n"
                 "top 10% of |f|: red extension, blue compression", fontsize=9,
                 loc="left")  # fmt: skip
    pairs = [("example_F", "example_F_PH", "tab:blue", "tab:orange", "F", "F_PH"),
             ("example_D", "example_D_PH", "tab:green", "tab:purple", "D", "D_PH")]  # fmt: skip
    for ax, (a, b, ca, cb, la, lb), tag in zip(axes[1:], pairs, "bc", strict=True):
        fields = [d[k][:, :2] / np.linalg.norm(d[k]) for k in (a, b)]
        longest = max(np.linalg.norm(v, axis=1).max() for v in fields)
        for v, c, lab in zip(fields, (ca, cb), (la, lb), strict=True):
            # the longest arrow of the pair spans 3 length units
            ax.quiver(R[:, 0], R[:, 1], v[:, 0], v[:, 1], color=c, angles="xy",
                      scale_units="xy", scale=longest / 3.0, width=0.003, label=lab,
                      alpha=0.8)  # fmt: skip
        ax.set_title(f"({tag}) {la} and {lb}\n(unit norm, one arrow scale)", fontsize=9,
                     loc="left")  # fmt: skip
        ax.legend(fontsize=8, loc="upper right")
    for ax in axes:
        box_frame(ax, L)
    fig.suptitle(f"{st['name']}: N = {st['N']}, T_p = {st['parent_temperature']}", fontsize=10)
    fig.tight_layout()
    return fig


def _scaled_lambda(d: dict) -> float:
    """The example's eigenvalue in units of lambda_0 of its glass (the first used glass)."""
    u = tables.units(d, d["example_positions"].shape[1])
    return float(d["example_lambda"] / u["lambda0"][0])


def annealing(table: pd.DataFrame):
    """R_Ag and R_xi against T_p, relative to the T_p = inf ensemble of the same model, d, N."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    drawn = False
    t = table.copy()
    t["T_p"] = t["T_p"].astype(str)
    for (model, dim, n), g in t.groupby(["model", "dim", "N"]):
        ref = g[g["T_p"] == "inf"]
        finite = g[g["T_p"] != "inf"]
        if ref.empty or finite.empty:
            continue
        T = finite["T_p"].astype(float).to_numpy()
        order = np.argsort(T)
        for ax, col in zip(axes, ("A_g", "xi"), strict=True):
            r = finite[col].to_numpy() / ref[col].iloc[0]
            err = None
            if col == "A_g":
                err = r * np.hypot(finite["A_g_err"] / finite["A_g"],
                                   ref["A_g_err"].iloc[0] / ref["A_g"].iloc[0])  # fmt: skip
                err = np.asarray(err)[order]
            ax.errorbar(T[order], r[order], yerr=err, fmt="o-", capsize=3,
                        label=f"{model} {dim}D N={n}")  # fmt: skip
        drawn = True
    for ax, lab in zip(axes, (r"$R_{Ag} = A_g / A_g(T_p=\infty)$",
                              r"$R_\xi = \xi / \xi(T_p=\infty)$"), strict=True):  # fmt: skip
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.set_xlabel("parent temperature $T_p$")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            note = "needs a T_p = inf ensemble and a finite T_p\nof the same model, d, N"
            ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    fig.tight_layout()
    return fig


def draw_all(ensembles: list[tuple[dict, list[str]]], table_path: str, outputs: list[str],
             dpi: int) -> None:  # fmt: skip
    """Draw every figure into ``outputs`` (``results/figures/<name>.<ext>``)."""
    loaded = [(st, tables.load_ensemble(paths)) for st, paths in ensembles]
    table = pd.read_csv(table_path)
    figs = {
        "modes_spectra": spectra(loaded, table),
        "modes_structure": structure(loaded),
        "modes_example": example(loaded),
        "modes_annealing": annealing(table),
    }
    for path in outputs:
        name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        figs[name].savefig(path, dpi=dpi)
    for f in figs.values():
        plt.close(f)
