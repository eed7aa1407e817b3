"""Figures of the independent-response study, drawn from its tables and stores only.

- :func:`rank_vs_n_theta`: rank(J) against n_theta per scenario and feature set, disordered
  and crystal, and the same scaled by n_y (paper Fig. 1 with its inset as panel b);
- :func:`singular_values`: all singular values per scenario at the reference n_theta,
  crystals shaded (Fig. 2);
- :func:`linear_regime`: |dy| against gamma with the linear and quadratic predictions and
  gamma_tilde, gamma_r, gamma_star marked (Fig. 3);
- :func:`tunability`: gamma_star and zeta = gamma_star s against s (Fig. 4).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

FEATURE_COLORS = {"C": "C0", "Sigma": "C1", "omega": "C2", "C+Sigma": "C3", "C+Sigma+omega": "C4"}


def _marker(structure: str, dim: int) -> str:
    if structure == "crystal":
        return "^"
    return "D" if dim == 2 else "o"


def _color(features: str, k: int) -> str:
    return FEATURE_COLORS.get(features, f"C{5 + k % 5}")


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def rank_vs_n_theta(svd: pd.DataFrame):
    """(a) rank(J) against n_theta for every (scenario, feature set) with several n_theta
    (all of them if none has), n_theta on a logarithmic axis so that species parameters (a few
    to tens) and spring networks (one parameter per bond, hundreds) are all readable; (b) both
    scaled by n_y, where full independence is the single curve min(1, n_theta / n_y)."""
    fig, (ax, scaled) = plt.subplots(1, 2, figsize=(12, 6.6))
    ok = svd[svd["converged"].astype(bool)]
    groups = list(ok.groupby(["scenario", "features"], sort=False))
    multi = [g for g in groups if g[1]["n_theta"].nunique() > 1]
    groups = multi or groups
    if not groups:
        _empty(ax, "no Jacobians")
        _empty(scaled, "no Jacobians")
        return fig
    x_all, r_all, top = [], [], 0.0
    for k, ((scenario, features), g) in enumerate(groups):
        first = g.iloc[0]
        n_y = int(first["n_y"])
        stats = g.groupby("n_theta")["rank"].agg(["mean", "min", "max"]).reset_index()
        x = stats["n_theta"].to_numpy(float)
        y = stats["mean"].to_numpy(float)
        err = np.array([y - stats["min"].to_numpy(float), stats["max"].to_numpy(float) - y])
        style = {
            "marker": _marker(first["structure"], int(first["dim"])),
            "color": _color(features, k),
            "mfc": "none" if first["structure"] == "crystal" else None,
            "ls": "-",
            "lw": 0.8,
            "ms": 6,
        }
        label = f"{scenario}: {features} ($n_y$ = {n_y}, {int(first['dim'])}D {first['structure']})"
        ax.errorbar(x, y, yerr=err, capsize=2, label=label, **style)
        scaled.errorbar(x / n_y, y / n_y, yerr=err / n_y, capsize=2, **{**style, "ms": 4})
        x_all.append(x)
        r_all.append(x / n_y)
        top = max(top, float(stats["max"].max()))
    x_all, r_all = np.concatenate(x_all), np.concatenate(r_all)
    lo, hi = x_all.min() / 1.4, x_all.max() * 1.4
    grid = np.geomspace(lo, hi, 200)
    ax.plot(grid, grid, "k:", lw=0.8, label="rank = $n_\\theta$")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, 1.15 * top)
    ax.set_xlabel("number of parameters $n_\\theta$ (log scale)")
    ax.set_ylabel("rank$(J)$")
    ax.set_title("a  rank against $n_\\theta$", loc="left", fontsize=9)
    r_lo, r_hi = min(r_all.min(), 0.5) / 1.4, max(r_all.max(), 2.0) * 1.4
    xs = np.geomspace(r_lo, r_hi, 200)
    scaled.plot(xs, np.minimum(1, xs), "k:", lw=0.8, label="full independence")
    scaled.set_xscale("log")
    scaled.set_xlim(r_lo, r_hi)
    scaled.set_ylim(0, 1.15)
    scaled.set_xlabel("$n_\\theta / n_y$ (log scale)")
    scaled.set_ylabel("rank$(J) / n_y$")
    scaled.set_title(
        "b  scaled by $n_y$: full independence is min$(1, n_\\theta / n_y)$", loc="left", fontsize=9
    )
    for a in (ax, scaled):
        a.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        a.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        a.grid(alpha=0.3, which="both", lw=0.4)
    handles, labels = ax.get_legend_handles_labels()
    ncol = 3
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    rows = -(-len(labels) // ncol)
    fig.suptitle(
        "Independent response: rank of $J = dy/d\\theta$ (mean over seeds, bars: min-max)\n"
        "diamonds 2D / circles 3D disordered, open triangles crystals",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.03 * rows + 0.01, 1, 1))
    return fig


def singular_values(sv: pd.DataFrame):
    """All singular values of J at the reference n_theta, one column per (scenario, feature
    set): faint points per seed, large markers the mean over seeds of the i-th value;
    values below the rank threshold (s = 0 numerically) sit on the bottom line as crosses.
    Crystal columns are shaded."""
    ref = sv[sv["reference"].astype(bool)]
    cols = list(ref.groupby(["scenario", "features"], sort=False))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(cols) + 2), 5))
    if not cols:
        _empty(ax, "no Jacobians")
        return fig
    relevant = ref[ref["relevant"].astype(bool)]
    floor = 10 ** math.floor(math.log10(relevant["s"].min())) / 10 if len(relevant) else 1e-12
    rng = np.random.default_rng(0)
    labels = []
    for x, ((scenario, features), g) in enumerate(cols):
        first = g.iloc[0]
        if first["structure"] == "crystal":
            ax.axvspan(x - 0.45, x + 0.45, color="0.88", zorder=0)
        rel = g[g["relevant"].astype(bool)]
        zero = g[~g["relevant"].astype(bool)]
        color = "C3" if first["structure"] == "crystal" else "C0"
        ax.plot(
            x + 0.12 * rng.uniform(-1, 1, len(rel)), rel["s"], ".", color=color, alpha=0.25, ms=3
        )
        mean = rel.groupby("index")["s"].mean()
        ax.plot(np.full(len(mean), x), mean.to_numpy(), "_", color=color, ms=14, mew=1.5)
        if len(zero):
            ax.plot(
                np.full(len(zero), x) + 0.12 * rng.uniform(-1, 1, len(zero)),
                np.full(len(zero), floor),
                "x",
                color="k",
                ms=4,
            )
        labels.append(f"{scenario}\n{features}, $n_\\theta$={int(first['n_theta'])}")
    ax.axhline(floor, color="k", lw=0.5, ls=":")
    ax.set_yscale("log")
    ax.set_xticks(range(len(cols)), labels, rotation=60, ha="right", fontsize=6.5)
    ax.set_xlim(-0.6, len(cols) - 0.4)
    ax.set_ylabel("singular values $s_i$ (susceptibilities)")
    ax.set_title(
        "Singular values of $J$ (bars: mean over seeds of $s_i$; dots: single seeds;\n"
        "crosses: $s_i$ below the rank threshold; shaded: crystals)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def linear_regime(examples: list[dict]):
    """|dy| against gamma for up to two sweeps (see :func:`.tables.sweep_examples`)."""
    n = max(1, len(examples))
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4.5), squeeze=False)
    if not examples:
        _empty(axes[0, 0], "no linear-regime sweeps configured")
        return fig
    for ax, ex in zip(axes[0], examples, strict=True):
        g = np.asarray(ex["gamma"])

        def pos(v):
            v = np.asarray(v, float)
            return np.where(v > 0, v, np.nan)

        ax.loglog(g, pos(ex["dy_norm"]), "o", color="C0", ms=4, label="measured $|\\Delta y|$")
        ax.loglog(g, pos(ex["linear_norm"]), "-", color="C0", label="linear $\\gamma |J w|$")
        ax.loglog(
            g, pos(ex["deviation"]), "o", color="C1", ms=4, label="$|\\Delta y - \\gamma J w|$"
        )
        ax.loglog(
            g, pos(ex["quadratic_norm"]), "-", color="C1", label="quadratic $\\gamma^2 |y''| / 2$"
        )
        re = np.asarray(ex["rearranged"], bool)
        if re.any():
            ax.loglog(
                g[re],
                pos(ex["dy_norm"])[re],
                "o",
                mfc="none",
                mec="C3",
                ms=8,
                label="contact network changed",
            )
        for key, color, ls, label in (
            ("gamma_tilde", "0.5", "--", "$\\tilde\\gamma$"),
            ("gamma_r", "C3", "-", "$\\gamma_r$"),
            ("gamma_star", "k", "-", "$\\gamma^*$"),
        ):
            v = ex[key]
            if math.isfinite(v):
                ax.axvline(v, color=color, ls=ls, lw=1.2, label=f"{label} = {v:.2g}")
        for key, color in (("gamma_star", "C0"), ("gamma_r", "C3")):
            lo, hi = ex[f"{key}_lo"], ex[key]
            if math.isfinite(hi) and math.isfinite(lo):
                ax.axvspan(max(lo, g[0]), hi, color=color, alpha=0.12, lw=0)
        ax.set_xlabel("$\\gamma = |\\Delta\\theta|$")
        ax.set_ylabel("feature change")
        ax.set_title(
            f"{ex['scenario']}, seed {ex['seed']}: {ex['features']}, $w_{{{ex['mode']}}}$, "
            f"$s$ = {ex['s']:.3g}",
            fontsize=9,
        )
        ax.legend(fontsize=6.5, loc="upper left")
    fig.tight_layout()
    return fig


def tunability(linear: pd.DataFrame):
    """(a) gamma_star against the susceptibility s of the swept mode; (b) the maximum
    linear tunability zeta = gamma_star s against s. Filled: the linear regime ended by
    nonlinearity; open: by a rearrangement."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.3))
    data = linear[np.isfinite(linear["gamma_star"].astype(float))] if len(linear) else linear
    if not len(data):
        for ax in axes:
            _empty(ax, "no linear-regime sweeps")
        return fig
    for k, (scenario, g) in enumerate(data.groupby("scenario", sort=False)):
        color = f"C{k % 10}"
        for limited, mfc in (("nonlinearity", color), ("rearrangement", "none")):
            h = g[g["limited_by"] == limited]
            if not len(h):
                continue
            label = f"{scenario} ({limited})"
            axes[0].loglog(h["s"], h["gamma_star"], "o", color=color, mfc=mfc, label=label)
            axes[1].loglog(h["s"], h["zeta"], "o", color=color, mfc=mfc, label=label)
    axes[0].set_ylabel("$\\gamma^*$")
    axes[1].set_ylabel("$\\zeta = \\gamma^* s$")
    for ax, tag in zip(axes, "ab", strict=True):
        ax.set_xlabel("susceptibility $s$")
        ax.set_title(f"({tag})", loc="left", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[1].legend(fontsize=7)
    fig.suptitle("Maximum linear tunability", fontsize=10)
    fig.tight_layout()
    return fig
