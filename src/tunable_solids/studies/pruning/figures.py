"""Figures of the pruning study, drawn from ``pruning_{runs,modes}.csv`` and the
``network.zarr`` / ``modes.zarr`` stores only (no physics recomputed).

- :func:`bonds` (``pruning_bonds``, after paper Fig. 1i-j): each bond's strain under x- vs
  y-loading for the initial and the two annealed networks of one entry, and ``sigma^2`` vs nu
  over every analysed state;
- :func:`networks` (``pruning_networks``, after paper Fig. 2): per network kind the network
  tuned toward the lowest target, the initial one and the one tuned toward the highest, bonds
  coloured by their strain under x-loading;
- :func:`spectra` (``pruning_spectra``, after paper Fig. 4c, e-f): ``|C_omega|^2`` vs omega
  along the annealing paths, and ``nu'`` vs omega of the final states;
- :func:`collapse` (``pruning_collapse``, after paper Fig. 4d): ``nu_bar'`` vs nu by kind;
- :func:`frequencies` (``pruning_frequencies``, after the paper's SI / Fig. 5 text):
  ``omega+`` and ``omega-`` vs ``z - z_c``;
- :func:`methods` (``pruning_methods``): reached nu, fraction of bonds removed, success and
  wall time per method.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from tunable_solids import store  # noqa: E402
from tunable_solids.plotting import box_frame  # noqa: E402

from .stages import METHOD_CODES, STAGES  # noqa: E402

KIND_COLORS = {"triangular": "tab:blue", "delaunay": "tab:orange", "packing": "tab:green"}
METHOD_COLORS = {"anneal": "tab:purple", "greedy": "tab:red", "gradient": "tab:cyan"}


class Entry:
    """One network entry's first seed: its network and modes stores, loaded."""

    def __init__(self, name, kind, n, network_path, modes_path):
        self.name, self.kind, self.n = name, kind, n
        self.net, _ = store.read_store(network_path)
        self.modes, _ = store.read_store(modes_path)

    def state(self, method: str, target: float | None, stage: str) -> int | None:
        """Index of the first valid state matching (``target`` None: the lowest/any)."""
        m = self.modes
        code = -1 if stage == "initial" else METHOD_CODES[method]
        sel = (m["method"] == code) & (m["stage"] == STAGES.index(stage)) & m["valid"]
        if target is not None:
            sel &= np.isclose(m["target"], target)
        idx = np.flatnonzero(sel)
        return int(idx[0]) if len(idx) else None

    def path(self, method: str, target: float) -> list[int]:
        """Initial, during and final states of a run, in order."""
        m = self.modes
        sel = (m["method"] == METHOD_CODES[method]) & np.isclose(m["target"], target) & m["valid"]
        start = self.state(method, None, "initial")
        return ([start] if start is not None else []) + list(np.flatnonzero(sel))

    @property
    def targets(self) -> np.ndarray:
        t = self.modes["target"]
        return np.unique(t[np.isfinite(t)])

    @property
    def method(self) -> str:
        """The method drawn: anneal if the entry ran it, else the first it ran."""
        codes = set(self.modes["method"].tolist()) - {-1}
        names = [k for k, v in METHOD_CODES.items() if v in codes]
        return "anneal" if "anneal" in names else names[0]


def _title(ax, letter, text):
    ax.set_title(f"({letter}) {text}", loc="left", fontsize=9)


def _state_label(e: Entry, s: int) -> str:
    m = e.modes
    return rf"$\nu$ = {m['nu'][s]:+.2f}"


def bonds(entry: Entry, table: pd.DataFrame):
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    t = entry.targets
    picks = [("initial", None), ("final", t.max()), ("final", t.min())]
    for k, (ax, (stage, target)) in enumerate(zip(axes[:3], picks, strict=True)):
        s = entry.state(entry.method, target, stage)
        if s is None:
            ax.text(0.5, 0.5, "no such state", ha="center", transform=ax.transAxes)
            continue
        sx, sy = entry.modes["strain_x"][s], entry.modes["strain_y"][s]
        ok = np.isfinite(sx)
        ax.scatter(sx[ok], sy[ok], s=6, alpha=0.6, color=KIND_COLORS[entry.kind])
        ax.axhline(0, color="k", lw=0.6)
        ax.axvline(0, color="k", lw=0.6)
        lim = np.nanmax(np.abs(np.concatenate([sx[ok], sy[ok]]))) * 1.05
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xlabel(r"bond strain, x-loading ($\epsilon_{xx}=1$)")
        ax.set_ylabel(r"bond strain, y-loading ($\epsilon_{yy}=1$)")
        what = "initial" if stage == "initial" else f"{entry.method} to {target:+g}"
        _title(ax, "abc"[k], f"{entry.name}: {what}, {_state_label(entry, s)}")
    ax = axes[3]
    for kind, g in table.groupby("network_kind"):
        ax.scatter(g["nu"], g["sigma2"], s=14, color=KIND_COLORS[kind], label=kind, alpha=0.8)
    ax.set_xlabel(r"Poisson's ratio $\nu = (\nu_x + \nu_y)/2$")
    ax.set_ylabel(r"$\sigma^2$ of the bond strains")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    _title(ax, "d", "bond-strain variance, all states")
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _draw_network(ax, net: dict, mask: np.ndarray, color: np.ndarray, vmax: float, cmap):
    R, box = net["positions"], net["box"]
    i, j = net["i"][mask], net["j"][mask]
    inv = np.linalg.inv(box)
    ds = (R[i] - R[j]) @ inv.T
    d = (ds - np.round(ds)) @ box.T
    segs = np.stack([R[i], R[i] - d], axis=1)
    lc = LineCollection(segs, cmap=cmap, lw=1.2)
    lc.set_array(color[mask])
    lc.set_clim(-vmax, vmax)
    ax.add_collection(lc)
    box_frame(ax, np.diag(box))
    return lc


def networks(entries: list[Entry]):
    # the first entry of each kind, in the order triangular, delaunay, packing
    picked = [next(e for e in entries if e.kind == k) for k in KIND_COLORS
              if any(e.kind == k for e in entries)]  # fmt: skip
    fig, axes = plt.subplots(len(picked), 3, figsize=(11, 3.6 * len(picked)), squeeze=False)
    cmap = plt.get_cmap("coolwarm")
    for r, e in enumerate(picked):
        t = e.targets
        for c, (stage, target) in enumerate([("final", t.min()), ("initial", None),
                                             ("final", t.max())]):  # fmt: skip
            ax = axes[r, c]
            s = e.state(e.method, target, stage)
            if s is None:
                ax.axis("off")
                continue
            color = e.modes["strain_x"][s]
            vmax = np.nanpercentile(np.abs(color), 98)
            lc = _draw_network(ax, e.net, e.modes["mask"][s], color, vmax, cmap)
            what = "initial" if stage == "initial" else f"{e.method} to {target:+g}"
            z = e.modes["z"][s]
            ax.set_title(f"{e.name} ({e.kind}): {what}\n{_state_label(e, s)}, z = {z:.2f}",
                         fontsize=9)  # fmt: skip
            fig.colorbar(lc, ax=ax, fraction=0.046, pad=0.02, label="bond strain, x-loading")
    fig.tight_layout()
    return fig


def _weights_panel(ax, entry: Entry, path: list[int], suffix: str, title: str):
    cmap = plt.get_cmap("viridis")
    m = entry.modes
    for q, s in enumerate(path):
        color = cmap(q / max(len(path) - 1, 1))
        ax.plot(m[f"omega{suffix}"][s], m[f"weight{suffix}"][s], "-", lw=1, color=color,
                label=f"{STAGES[int(m['stage'][s])]}: {_state_label(entry, s)}")  # fmt: skip
        for key, mk in (("plus", "^"), ("minus", "v")):
            ax.plot(m[f"omega_{key}{suffix}"][s], m[f"weight_{key}{suffix}"][s], mk, color=color,
                    ms=7)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel(r"frequency $\omega$")
    ax.set_ylabel(r"$|C_\omega|^2$ (x, y averaged)")
    ax.legend(fontsize=7)
    ax.set_title(title, loc="left", fontsize=9)


def spectra(entry: Entry):
    fig, axes = plt.subplots(2, 3, figsize=(17, 7.8))
    t = entry.targets
    for r, target in enumerate([t.min(), t.max()]):
        path = entry.path(entry.method, target)
        run = f"{entry.name}, {entry.method} to {target:+g}"
        _weights_panel(axes[r, 0], entry, path, "", f"({'ad'[r]}) {run}: 2N network modes")
        _weights_panel(axes[r, 1], entry, path, "_box",
                       f"({'be'[r]}) {run}: modes with the box strain")  # fmt: skip
        ax = axes[r, 2]
        s = path[-1]
        m = entry.modes
        w = np.log10(m["weight_box"][s] + 1e-16)
        sc = ax.scatter(m["omega_box"][s], m["nu_prime_box"][s], c=w, s=8, cmap="magma_r",
                        vmin=-6, vmax=0)  # fmt: skip
        fig.colorbar(sc, ax=ax, label=r"$\log_{10} |C_\omega|^2$")
        ax.set_xscale("log")
        ax.set_xlabel(r"frequency $\omega$")
        ax.set_ylabel(r"per-mode $\nu'$ (box modes)")
        ax.set_ylim(-1.05, 1.05)
        _title(ax, "cf"[r], f"final state {_state_label(entry, s)}")
    for a in axes.ravel():
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def collapse(table: pd.DataFrame):
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.8))
    markers = {"initial": "s", "during": "o", "final": "D"}
    for ax, suffix, what in zip(axes, ("", "_box"), ("modes of the network (2N)",
                                "modes with the box strain (2N + 3)"), strict=True):  # fmt: skip
        col = f"nu_bar_prime{suffix}"
        for kind, g in table.groupby("network_kind"):
            for stage, h in g.groupby("stage"):
                ax.scatter(h["nu"], h[col], s=22, color=KIND_COLORS[kind], marker=markers[stage],
                           label=f"{kind}, {stage}", alpha=0.8)  # fmt: skip
        ok = np.isfinite(table[col])
        lo = min(table["nu"].min(), table[col].min(), -1)
        hi = max(table["nu"].max(), table[col].max(), 1)
        ax.plot([lo, hi], [lo, hi], "k:", lw=1, label=r"$\bar\nu' = \nu$")
        r = np.corrcoef(table["nu"][ok], table[col][ok])[0, 1] if ok.sum() > 2 else np.nan
        ax.set_xlabel(r"Poisson's ratio $\nu$")
        ax.set_ylabel(r"$\bar\nu' = |C_+|^2\nu'(\omega^+) + |C_-|^2\nu'(\omega^-)$")
        ax.grid(alpha=0.3)
        _title(ax, "ab"[suffix == "_box"], f"{what}: correlation {r:.2f}")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def frequencies(table: pd.DataFrame):
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6))
    for ax, suffix, what in zip(axes, ("", "_box"), ("modes of the network (2N)",
                                "modes with the box strain (2N + 3)"), strict=True):  # fmt: skip
        for kind, g in table.groupby("network_kind"):
            c = KIND_COLORS[kind]
            ax.scatter(g["z_minus_zc"], g[f"omega_plus{suffix}"], s=20, color=c, marker="^",
                       label=rf"{kind} $\omega^+$")  # fmt: skip
            ax.scatter(g["z_minus_zc"], g[f"omega_minus{suffix}"], s=20, facecolors="none",
                       edgecolors=c, marker="v", label=rf"{kind} $\omega^-$")  # fmt: skip
        ax.set_xlabel(r"$z - z_c$ ($z_c = 4$)")
        ax.set_ylabel(r"peak frequency $\omega^\pm$")
        ax.grid(alpha=0.3)
        _title(ax, "ab"[suffix == "_box"], what)
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def methods(runs: pd.DataFrame):
    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    names = [m for m in METHOD_CODES if m in set(runs["method"])]
    targets = sorted(runs["target"].unique())
    width = 0.8 / max(len(targets), 1)
    for k, target in enumerate(targets):
        for x, m in enumerate(names):
            g = runs[(runs["method"] == m) & (runs["target"] == target)]
            if g.empty:
                continue
            xs = x + (k - (len(targets) - 1) / 2) * width
            jitter = np.linspace(-0.25, 0.25, len(g)) * width if len(g) > 1 else np.zeros(1)
            for ax, col in zip(axes[[0, 1, 3]], ("nu_final", "bonds_removed_fraction",
                                                  "wall_s"), strict=True):  # fmt: skip
                ok = g["success"].to_numpy(bool)
                ax.scatter(xs + jitter[ok], g[col][ok], color=METHOD_COLORS[m], s=20)
                ax.scatter(xs + jitter[~ok], g[col][~ok], facecolors="none",
                           edgecolors=METHOD_COLORS[m], s=20)  # fmt: skip
            axes[2].bar(xs, g["success"].mean(), width * 0.9, color=METHOD_COLORS[m], alpha=0.8)
            axes[2].text(xs, g["success"].mean() + 0.02, f"{target:+g}", ha="center",
                         fontsize=7)  # fmt: skip
    for target in targets:
        axes[0].axhline(target, color="k", ls=":", lw=0.8)
    labels = (r"reached $\nu$ (open: failed)", "fraction of bonds removed",
              "success rate over runs", "wall time per run [s]")  # fmt: skip
    for k, (ax, lab) in enumerate(zip(axes, labels, strict=True)):
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3, axis="y")
        _title(ax, "abcd"[k], "")
    axes[2].set_ylim(0, 1.15)
    axes[3].set_yscale("log")
    fig.tight_layout()
    return fig


def draw_all(entries, runs_path, modes_path, network_paths, modes_paths, outputs, network, dpi):
    """Draw every figure into ``outputs`` (``results/figures/<name>.<ext>``). ``entries``:
    ``[(name, kind, N, seeds, methods)]``; the store lists are entry by entry, seed by seed;
    the first seed of each entry is drawn, ``network`` (an entry name) in the single-network
    figures (default: the first entry)."""
    loaded, k = [], 0
    for name, kind, n, seeds, _ in entries:
        loaded.append(Entry(name, kind, n, network_paths[k], modes_paths[k]))
        k += len(seeds)
    drawn = next((e for e in loaded if e.name == network), loaded[0])
    runs, modes = pd.read_csv(runs_path), pd.read_csv(modes_path)
    figs = {
        "pruning_bonds": bonds(drawn, modes),
        "pruning_networks": networks(loaded),
        "pruning_spectra": spectra(drawn),
        "pruning_collapse": collapse(modes),
        "pruning_frequencies": frequencies(modes),
        "pruning_methods": methods(runs),
    }
    for path in outputs:
        name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        figs[name].savefig(path, dpi=dpi)
    for f in figs.values():
        plt.close(f)
