"""Figures of the training study, drawn from its tables and stores only (see :mod:`.tables`).

Paper: "Designing athermal disordered solids with automatic differentiation".

- :func:`gradient` (Fig. 1c): measured |dq| vs the linear prediction |grad q . u| eps;
- :func:`individual` (Fig. 1d-e): loss / property trace of an example run, parameter traces;
- :func:`bonds` (Fig. 1f): P(K_ij), P(G_ij) (positive and negative tails apart) and the packing
  with the bonds of largest |K_ij| (blue positive, red negative);
- :func:`success` (Figs. 2, 3c): P_success vs target per n_sp (Morse range a) and vs m;
- :func:`multi` (Fig. 3a, b, d): validated <nu> of individually / multi-trained parameters;
- :func:`ensemble` (Fig. 4): ensemble loss and parameter traces, validated <nu> vs nu*, final
  parameters vs nu*;
- :func:`targets` (Fig. 5): validated <p>, <q8> vs target;
- :func:`joint` (Fig. 6): the joint (nu, p) objective and the reachable (<p>, <nu>) region;
- :func:`robustness` (SI Fig. 8): validated <nu> with polydispersity / heterogeneity;
- :func:`three_d` (SI H): 3D training runs.

Averages use converged configurations only (the tables already exclude the others and count
them); panels without data say so instead of failing.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from tunable_solids.plotting import draw_packing  # noqa: E402

LABELS = {"nu": r"\nu", "pressure": "p", "q8": "q_8"}


def _tex(q: str) -> str:
    return LABELS.get(q, q)


def _empty(ax, text: str = "no data in this configuration") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _panel(ax, letter: str) -> None:
    ax.text(-0.12, 1.04, letter, transform=ax.transAxes, fontsize=12, fontweight="bold")


def _cmap_values(values, cmap="viridis"):
    values = sorted(set(values))
    cm = plt.get_cmap(cmap)
    n = max(len(values) - 1, 1)
    return {v: cm(0.9 * k / n) for k, v in enumerate(values)}


def _single(table: pd.DataFrame, q: str) -> pd.DataFrame:
    return table[(table["target_name"] == q) & (table["n_targets"] == 1)]


def _mean_sem(v) -> tuple[float, float]:
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return np.nan, np.nan
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan


def _initial_line(ax, rows: pd.DataFrame, horizontal: bool = True) -> None:
    """The untrained ensemble average (mean of the validations at theta0) as a red band."""
    m, s = _mean_sem(rows["initial_mean"])
    if not np.isfinite(m):
        return
    ax.axhline(m, color="r", lw=1, label=f"untrained {m:.3f}")
    if np.isfinite(s):
        ax.axhspan(m - s, m + s, color="r", alpha=0.15, lw=0)


def _by_target(ax, rows: pd.DataFrame, color, label, marker="o", offset=0.0) -> None:
    """Validated mean per target (mean over runs; error bar: their standard error, or the
    single run's validation SEM)."""
    pts = []
    for t, sub in rows.groupby("target"):
        if len(sub) > 1:
            m, s = _mean_sem(sub["validated_mean"])
        else:
            m, s = float(sub["validated_mean"].iloc[0]), float(sub["validated_sem"].iloc[0])
        pts.append((t, m, s))
    if not pts:
        return
    t, m, s = map(np.asarray, zip(*pts, strict=True))
    ax.errorbar(t + offset, m, yerr=s, fmt=marker + "-", color=color, ms=4, capsize=2, label=label)


def _offset(targets) -> float:
    """A small horizontal shift that keeps overlapping error bars apart."""
    t = np.asarray(targets, float)
    span = float(t.max() - t.min()) if len(t) else 0.0
    return 0.01 * span if span > 0 else 1e-3


def _diagonal(ax, lo, hi) -> None:
    ax.plot([lo, hi], [lo, hi], "k:", lw=0.8, label="target")


# --------------------------------------------------------------------------- Fig. 1c
def gradient(checks: list[dict], max_panels: int = 4):
    """|q(theta + eps u) - q(theta)| (points; open: the contact network changed) and the
    prediction |grad q . u| eps (lines), at theta0 and at the trained theta."""
    n = max(min(len(checks), max_panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4), squeeze=False)
    if not checks:
        _empty(axes[0, 0])
    for ax, c in zip(axes[0], checks[:max_panels], strict=False):
        eps = c["eps"]
        props = c["summary"]["properties"]
        for r, label in enumerate(c["summary"]["references"]):
            if not c["reference_converged"][r]:
                continue
            color = "C0" if label == "initial" else "C3"
            for k, q in enumerate(props):
                ls = ["-", "--", ":"][k % 3]
                ax.loglog(
                    eps,
                    np.abs(c["linear"][r, :, k]),
                    ls,
                    color=color,
                    lw=1.2,
                    label=rf"$|\nabla {_tex(q)}\cdot u|\,\epsilon$ ({label})",
                )
                ok = c["converged"][r]
                changed = c["contact_change"][r] & ok
                same = ok & ~changed
                meas = np.abs(c["delta"][r, :, k])
                ax.loglog(
                    eps[same],
                    meas[same],
                    "o",
                    color=color,
                    ms=5,
                    label=rf"measured $|\Delta {_tex(q)}|$ ({label})",
                )
                if changed.any():
                    ax.loglog(
                        eps[changed],
                        meas[changed],
                        "o",
                        mfc="none",
                        color=color,
                        ms=5,
                        label="contacts changed",
                    )
        run = c["run"]
        ax.set_title(f"{run['id']}\n(theta0 and trained theta)", fontsize=8)
        ax.set_xlabel(r"step size $\epsilon$ along a random unit direction $u$")
        ax.set_ylabel("change of the property")
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle("Gradient predictiveness (paper Fig. 1c)", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- Fig. 1d-e
def _param_groups(labels: list[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for k, name in enumerate(labels):
        groups.setdefault(name.split("_")[0], []).append(k)
    return groups


def individual(histories: list[dict], max_traces: int = 40):
    """(d) loss and property of an example run, rearrangements marked; (e) parameters of
    every successful run (thick: the example)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if not histories:
        for ax in axes:
            _empty(ax)
        return fig
    ok = [h for h in histories if h["summary"]["success"]]
    kind = "successful runs" if ok else "runs (none successful)"
    ok = ok or histories
    ex = ok[0]
    ax = axes[0]
    _panel(ax, "d")
    steps = np.arange(len(ex["loss"]))
    ax.semilogy(steps, ex["loss"], "k-", lw=1, label="loss")
    ax.axhline(ex["run"]["loss_threshold"], color="grey", ls=":", lw=0.8, label="threshold")
    for s in steps[np.asarray(ex["rearranged"], bool)]:
        ax.axvline(s, color="orange", lw=0.5, alpha=0.6)
    ax.set_xlabel("optimization step")
    ax.set_ylabel(r"$\mathcal{L}$")
    ax2 = ax.twinx()
    q = ex["summary"]["properties"][0]
    ax2.plot(steps, np.nanmean(ex["values"][:, :, 0], axis=1), "C0-", lw=1)
    ax2.axhline(ex["summary"]["targets"][0], color="C0", ls="--", lw=0.8)
    ax2.set_ylabel(rf"${_tex(q)}_b$ (target dashed)", color="C0")
    ax.set_title(f"{ex['run']['id']} (orange: rearrangements)", fontsize=8)
    ax.legend(fontsize=7, loc="upper right")
    labels = ex["summary"]["parameters"]
    groups = _param_groups(labels)
    for ax, (letter, gname) in zip(axes[1:], [("e", "D"), ("e", "B")], strict=True):
        _panel(ax, letter)
        if gname not in groups:
            _empty(ax, f"{gname} not trained")
            continue
        for h in ok[:max_traces]:
            hl = h["summary"]["parameters"]
            idx = [k for k, name in enumerate(hl) if name.startswith(gname + "_")]
            thick = h is ex
            for j, k in enumerate(idx):
                ax.plot(
                    h["theta"][:, k],
                    color=f"C{j % 10}",
                    lw=1.8 if thick else 0.5,
                    alpha=1.0 if thick else 0.5,
                    label=hl[k] if thick else None,
                )
        ax.set_xlabel("optimization step")
        ax.set_ylabel({"D": r"diameters $\sigma_\alpha$", "B": r"binding $B_{\alpha\beta}$"}[gname])
        ax.set_title(f"{len(ok[:max_traces])} {kind} (thick: example)", fontsize=8)
        ax.legend(fontsize=6, ncol=2)
    fig.suptitle("Training individual configurations (paper Fig. 1d-e)", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- Fig. 1f
def _log_hist(ax, v, color, ls, label, bins):
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return
    h, edges = np.histogram(v, bins=bins, density=False)
    width = np.diff(edges)
    p = h / (width * max(len(v), 1))
    mid = np.sqrt(edges[1:] * edges[:-1])
    keep = h > 0
    ax.loglog(mid[keep], p[keep], ls, color=color, lw=1.2, label=label)


def bonds(stores: list[dict]):
    """P(K_ij), P(G_ij) of the trained configurations (solid: positive, dashed: negative
    values, by target), untrained in grey; the packing with the ``top`` largest |K_ij|."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    if not stores:
        for ax in axes:
            _empty(ax)
        return fig
    targets = [float(next(iter(s["summary"]["target"].values()))) for s in stores]
    colors = _cmap_values(targets, "coolwarm")
    for ax, key, letter in ((axes[0], "bond_K", "f"), (axes[1], "bond_G", "f")):
        _panel(ax, letter)
        allv = np.concatenate([np.abs(s[key][np.isfinite(s[key])]) for s in stores])
        allv = allv[allv > 0]
        if not len(allv):
            _empty(ax)
            continue
        bins = np.logspace(np.log10(allv.min()), np.log10(allv.max()), 40)
        first = stores[0]
        ref0 = first[key][0][first["converged"][0]]
        _log_hist(ax, ref0.ravel(), "grey", "-", "untrained, > 0", bins)
        _log_hist(ax, -ref0.ravel(), "grey", "--", "untrained, < 0", bins)
        seen = set()
        for s, t in zip(stores, targets, strict=True):
            v = s[key][1][s["converged"][1]].ravel()
            lab = t not in seen
            seen.add(t)
            _log_hist(ax, v, colors[t], "-", rf"$\nu^*={t:g}$, > 0" if lab else None, bins)
            _log_hist(ax, -v, colors[t], "--", rf"$\nu^*={t:g}$, < 0" if lab else None, bins)
        sym = "K" if key == "bond_K" else "G"
        ax.set_xlabel(rf"$|{sym}_{{ij}}|$")
        ax.set_ylabel(rf"$P({sym}_{{ij}})$, $P(-{sym}_{{ij}})$")
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3, which="both")
    ax = axes[2]
    k = int(np.argmin(targets))
    s = stores[k]
    if s["converged"][1, 0] and s["positions"].shape[-1] == 2:
        top = int(s["summary"]["top"])
        K = s["bond_K"][1, 0]
        valid = np.isfinite(K)
        state = {
            "positions": s["positions"][1, 0],
            "box": s["box"],
            "species": s["species"],
            "diameter": s["diameter"][1],
            "pair_i": np.full(1, -1),
            "pair_j": np.full(1, -1),
            "pair_contact": np.zeros(1, bool),
            "config": {"name": s["run"]["id"], "potential": "", "N": len(s["species"])},
            "seed": s["run"]["seed"],
        }
        draw_packing(ax, state)
        order = np.argsort(-np.abs(np.where(valid, K, 0.0)))[:top]
        R, box = state["positions"], s["box"]
        i, j = s["pair_i"][1, 0][order], s["pair_j"][1, 0][order]
        frac = (R[j] - R[i]) @ np.linalg.inv(box).T
        d = (frac - np.round(frac)) @ box.T
        segs = np.stack([R[i], R[i] + d], 1)
        cols = ["b" if x > 0 else "r" for x in K[order]]
        ax.add_collection(LineCollection(segs, colors=cols, linewidths=2.5))
        ax.set_title(
            rf"$\nu^*={targets[k]:g}$: the {top} bonds with largest $|K_{{ij}}|$"
            "\n(blue > 0, red < 0)",
            fontsize=8,
        )
    else:
        _empty(ax, "trained state not converged or not 2D")
    fig.suptitle("Bond-level contributions after training (paper Fig. 1f)", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- Figs. 2, 3c
def success(table: pd.DataFrame):
    """(Fig. 2) P_success vs nu* per n_sp (individual runs; dashed: other Morse ranges a);
    (Fig. 3c) P_success vs m per nu* (individual m = 1 and multi runs)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    t = table[(table["target_name"] == "nu") & (table["dim"] == 2)]
    ax = axes[0]
    _panel(ax, "2")
    ind = t[t["mode"] == "individual"]
    if ind.empty:
        _empty(ax)
    else:
        main_a = ind["a"].mode().iloc[0]
        colors = _cmap_values(ind["n_species"])
        for (a, n_sp), sub in ind.groupby(["a", "n_species"]):
            g = sub.groupby("target")[["n_runs", "n_success"]].sum().reset_index()
            p = g["n_success"] / g["n_runs"]
            ls = "o-" if a == main_a else "s--"
            lab = f"$n_{{sp}}={n_sp}$, a = {a:g}"
            ax.errorbar(
                g["target"],
                p,
                yerr=np.sqrt(p * (1 - p) / g["n_runs"]),
                fmt=ls,
                color=colors[n_sp],
                ms=4,
                capsize=2,
                label=lab,
            )
        ax.set_xlabel(r"target $\nu^*$")
        ax.set_ylabel(r"$P_{success}$")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=6)
        ax.set_title("individual configurations", fontsize=9)
    ax = axes[1]
    _panel(ax, "3c")
    mm = t[t["mode"].isin(["individual", "multi"])]
    if mm.empty or not (mm["mode"] == "multi").any():
        _empty(ax, "no multi-configuration runs")
    else:
        n_sp = mm.loc[mm["mode"] == "multi", "n_species"].max()
        main_a = mm.loc[mm["mode"] == "multi", "a"].mode().iloc[0]
        sel = mm[(mm["n_species"] == n_sp) & (mm["a"] == main_a)]
        colors = _cmap_values(sel["target"], "plasma")
        for target, sub in sel.groupby("target"):
            g = sub.groupby("m")[["n_runs", "n_success"]].sum().reset_index()
            p = g["n_success"] / g["n_runs"]
            ax.errorbar(
                g["m"],
                p,
                yerr=np.sqrt(p * (1 - p) / g["n_runs"]),
                fmt="o-",
                color=colors[target],
                ms=4,
                capsize=2,
                label=rf"$\nu^*={target:g}$",
            )
        ax.set_xlabel("configurations trained together, m")
        ax.set_ylabel(r"$P_{success}$")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=7)
        ax.set_title(f"$n_{{sp}}={n_sp}$, a = {main_a:g}", fontsize=9)
    fig.suptitle("Success of training (paper Figs. 2, 3c)", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- Fig. 3
def multi(runs: pd.DataFrame, validations: list[dict]):
    """(a) validated <nu> of parameters trained on one configuration vs nu* (red: untrained);
    (b) distribution of the validation nu, untrained vs trained (most negative target);
    (d) validated <nu> vs m (m = 0: untrained; solid: successful runs, dashed: all)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    t = _single(runs, "nu")
    t = t[(t["mode"].isin(["individual", "multi"])) & (t["dim"] == 2)]
    ax = axes[0]
    _panel(ax, "a")
    ind = t[t["mode"] == "individual"]
    if ind.empty:
        _empty(ax)
    else:
        n_sp = ind["n_species"].max()
        sel = ind[(ind["n_species"] == n_sp) & (ind["a"] == ind["a"].mode().iloc[0])]
        _by_target(ax, sel[sel["success"]], "C0", "successful runs")
        _by_target(ax, sel, "C1", "all runs", marker="s", offset=_offset(sel["target"]))
        _initial_line(ax, sel)
        ax.set_xlabel(r"target $\nu^*$ of the trained configuration")
        ax.set_ylabel(r"validated $\langle\nu\rangle$")
        ax.set_title(f"individual training, $n_{{sp}}={n_sp}$", fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[1]
    _panel(ax, "b")
    vals = [v for v in validations if v["run"]["system"]["dim"] == 2]
    vals = [v for v in vals if v["run"]["mode"] == "individual"] or vals
    if not vals:
        _empty(ax)
    else:
        v = min(vals, key=lambda x: next(iter(x["run"]["target"].values())))
        init = v["values_initial"][:, 0]
        trained = v["values"][:, 0]
        both = np.concatenate([init, trained])
        both = both[np.isfinite(both)]
        bins = np.linspace(both.min(), both.max(), 25) if len(both) else 10
        ax.hist(init[np.isfinite(init)], bins=bins, color="r", alpha=0.5, label="untrained")
        tgt = next(iter(v["run"]["target"].values()))
        ax.hist(
            trained[np.isfinite(trained)],
            bins=bins,
            color="orange",
            alpha=0.6,
            label=rf"trained, $\nu^*={tgt:g}$",
        )
        ax.set_xlabel(r"$\nu$ of validation configurations")
        ax.set_ylabel("count")
        ax.set_title(v["run"]["id"], fontsize=8)
        ax.legend(fontsize=7)
    ax = axes[2]
    _panel(ax, "d")
    if t.empty:
        _empty(ax)
    else:
        n_sp = t["n_species"].max()
        sel = t[(t["n_species"] == n_sp) & (t["a"] == t["a"].mode().iloc[0])]
        colors = _cmap_values(sel["target"], "plasma")
        for target, sub in sel.groupby("target"):
            m0, s0 = _mean_sem(sub["initial_mean"])
            for only_success, ls in ((True, "-"), (False, "--")):
                pts = [(0, m0, s0)]
                for m, g in sub.groupby("m"):
                    g = g[g["success"]] if only_success else g
                    if len(g):
                        mm, ss = _mean_sem(g["validated_mean"])
                        if len(g) == 1:
                            ss = float(g["validated_sem"].iloc[0])
                        pts.append((m, mm, ss))
                x, y, e = map(np.asarray, zip(*pts, strict=True))
                ax.errorbar(
                    x,
                    y,
                    yerr=e,
                    fmt="o" + ls,
                    color=colors[target],
                    ms=4,
                    capsize=2,
                    label=rf"$\nu^*={target:g}$" if only_success else None,
                )
        ax.set_xlabel("configurations trained together, m (0: untrained)")
        ax.set_ylabel(r"validated $\langle\nu\rangle$")
        ax.set_title(f"$n_{{sp}}={n_sp}$; solid: successful runs, dashed: all", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(
        "Effect of single- and multi-configuration training on the ensemble (paper Fig. 3)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- Fig. 4
def _running_mean(x, w):
    x = np.asarray(x, float)
    w = max(1, min(w, len(x)))
    c = np.cumsum(np.insert(x, 0, 0.0))
    out = (c[w:] - c[:-w]) / w
    return np.arange(w - 1, len(x)), out


def ensemble(
    histories: list[dict],
    runs: pd.DataFrame,
    validations: pd.DataFrame,
    parameters: pd.DataFrame,
    max_traces: int = 40,
):
    """(a) noisy ensemble loss of an example run with its validated loss (green: validation
    at the training N, purple: at a larger N); (b) parameter traces of the runs with the same
    target and n_sp (thick: example); (c) validated <nu> vs nu* per n_sp, with the target
    <nu> = nu* (dotted, crosses) in range; (d) final parameters vs nu* (mean over runs; open
    circles: initial)."""
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    hs = [h for h in histories if h["run"]["mode"] == "ensemble"]
    ax = axes[0]
    _panel(ax, "a")
    if not hs:
        _empty(axes[0])
        _empty(axes[1])
    else:
        ex = hs[0]
        run, target = ex["run"], ex["summary"]["targets"][0]
        steps = np.arange(len(ex["loss"]))
        ax.semilogy(steps, ex["loss"], color="grey", lw=0.6, label="batch loss")
        xs, ys = _running_mean(ex["loss"], max(len(steps) // 20, 1))
        ax.semilogy(xs, ys, "k-", lw=1.2, label="running mean")
        v = validations[(validations["run"] == run["id"]) & (validations["target_name"] == "nu")]
        for _, row in v.iterrows():
            loss_val = (row["validated_mean"] - target) ** 2
            big = row["validation_N"] != row["N"]
            pert = row["polydispersity"] or row["heterogeneity"]
            if pert:
                continue
            ax.semilogy(
                steps[-1],
                max(loss_val, 1e-12),
                "*" if big else "o",
                color="purple" if big else "green",
                ms=10 if big else 7,
                label=f"validated, N = {row['validation_N']}, "
                f"{row['n_validation'] - row['n_excluded']} configs",
            )
        ax.set_xlabel("optimization step")
        ax.set_ylabel(r"$\mathcal{L} = (\langle\nu\rangle - \nu^*)^2$")
        ax.set_title(f"{run['id']}, batch {run['batch']}", fontsize=8)
        ax.legend(fontsize=6)
        ax = axes[1]
        _panel(ax, "b")
        same = [
            h
            for h in hs
            if h["summary"]["targets"][0] == target
            and h["run"]["system"]["species"]["n_species"] == run["system"]["species"]["n_species"]
        ]
        labels = ex["summary"]["parameters"]
        for h in same[:max_traces]:
            thick = h is ex
            for k, name in enumerate(h["summary"]["parameters"]):
                ax.plot(
                    h["theta"][:, k],
                    color=f"C{k % 10}",
                    lw=1.8 if thick else 0.4,
                    alpha=1 if thick else 0.5,
                    label=name if thick else None,
                )
        ax.set_xlabel("optimization step")
        ax.set_ylabel(r"parameters $\sigma_\alpha$, $B_{\alpha\beta}$")
        ax.set_title(rf"$\nu^*={target:g}$: {len(same[:max_traces])} runs", fontsize=8)
        if len(labels) <= 12:
            ax.legend(fontsize=6, ncol=2)
    ax = axes[2]
    _panel(ax, "c")
    t = _single(runs, "nu")
    t = t[(t["mode"] == "ensemble") & (t["dim"] == 2)]
    if t.empty:
        _empty(ax)
    else:
        colors = _cmap_values(t["n_species"])
        for (n_sp, a), sub in t.groupby(["n_species", "a"]):
            _by_target(
                ax,
                sub,
                colors[n_sp],
                f"$n_{{sp}}={n_sp}$, a = {a:g}",
                marker="o" if n_sp == t["n_species"].min() else "^",
            )
        _initial_line(ax, t)
        # The target <nu> = nu* across the whole x-range (one target alone would be a
        # zero-length diagonal) and a cross at each target; y autoscales to include them.
        x0, x1 = ax.get_xlim()
        ax.plot([x0, x1], [x0, x1], "k:", lw=0.8, label=r"target $\langle\nu\rangle = \nu^*$")
        targets = np.unique(t["target"].to_numpy(float))
        ax.plot(targets, targets, "kx", ms=7, mew=1.2)
        ax.set_xlim(x0, x1)
        ax.set_xlabel(r"target $\nu^*$")
        ax.set_ylabel(r"validated $\langle\nu\rangle$")
        ax.legend(fontsize=6)
    ax = axes[3]
    _panel(ax, "d")
    p = parameters[(parameters["mode"] == "ensemble") & (parameters["target_name"] == "nu")]
    p = p[p["dim"] == 2]
    if p.empty:
        _empty(ax)
    else:
        n_sp = p["n_species"].min()
        p = p[p["n_species"] == n_sp]
        for k, (name, sub) in enumerate(p.groupby("parameter", sort=False)):
            g = sub.groupby("target")["final"].agg(["mean", "std", "count"]).reset_index()
            err = g["std"].fillna(0) / np.sqrt(g["count"])
            ax.errorbar(
                g["target"],
                g["mean"],
                yerr=err,
                fmt="o-",
                color=f"C{k % 10}",
                ms=4,
                capsize=2,
                label=name,
            )
            init = sub["initial"].iloc[0]
            m0 = runs.loc[
                (runs["mode"] == "ensemble") & (runs["target_name"] == "nu"), "initial_mean"
            ].mean()
            ax.plot(m0, init, "o", mfc="none", color=f"C{k % 10}", ms=7)
        ax.set_xlabel(
            r"target $\nu^*$ (open circles: initial, at the untrained $\langle\nu\rangle$)"
        )
        ax.set_ylabel("final parameter (mean over runs)")
        ax.set_title(f"$n_{{sp}}={n_sp}$", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
    fig.suptitle("Training the ensemble average (paper Fig. 4)", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- Fig. 5
def targets(runs: pd.DataFrame):
    """Validated <p> and <q8> vs their targets (runs training one property)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, q, letter in ((axes[0], "pressure", "a"), (axes[1], "q8", "b")):
        _panel(ax, letter)
        t = _single(runs, q)
        if t.empty:
            _empty(ax, f"no {q} runs")
            continue
        colors = _cmap_values(t["n_species"])
        for (mode, n_sp, dim), sub in t.groupby(["mode", "n_species", "dim"]):
            _by_target(
                ax,
                sub,
                colors[n_sp],
                f"{mode}, $n_{{sp}}={n_sp}$, {dim}D",
                marker="o" if mode == "ensemble" else "s",
            )
        _initial_line(ax, t)
        _diagonal(ax, t["target"].min(), t["target"].max())
        ax.set_xlabel(rf"target ${_tex(q)}^*$")
        ax.set_ylabel(rf"validated $\langle {_tex(q)}\rangle$")
        ax.legend(fontsize=6)
    fig.suptitle("Other targets: pressure and eight-fold order (paper Fig. 5)", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- Fig. 6
def joint(histories: list[dict], runs: pd.DataFrame):
    """(a) the two parts of a joint objective during training; (b) validated (<p>, <nu>)
    for a grid of targets (grey dots, joined to their result)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    _panel(ax, "a")
    hs = [h for h in histories if len(h["summary"]["properties"]) > 1]
    if not hs:
        _empty(ax)
    else:
        ex = hs[0]
        props, tgts = ex["summary"]["properties"], ex["summary"]["targets"]
        means = np.nanmean(ex["values"], axis=1)
        for k, (q, t) in enumerate(zip(props, tgts, strict=True)):
            part = (means[:, k] - t) ** 2
            ax.semilogy(part, color=f"C{k}", lw=0.5, alpha=0.5)
            xs, ys = _running_mean(part, max(len(part) // 20, 1))
            ax.semilogy(
                xs,
                ys,
                color=f"C{k}",
                lw=1.4,
                label=rf"$(\langle {_tex(q)}\rangle - {_tex(q)}^*)^2$, ${_tex(q)}^*={t:g}$",
            )
        ax.set_xlabel("optimization step")
        ax.set_ylabel("objective parts (batch; thick: running mean)")
        ax.set_title(ex["run"]["id"], fontsize=8)
        ax.legend(fontsize=7)
    ax = axes[1]
    _panel(ax, "b")
    j = runs[runs["n_targets"] > 1]
    if j.empty:
        _empty(ax)
    else:
        wide = j.pivot_table(
            index="run",
            columns="target_name",
            values=["target", "validated_mean", "validated_sem", "initial_mean"],
        )
        if ("target", "nu") in wide and ("target", "pressure") in wide:
            x, y = wide[("validated_mean", "pressure")], wide[("validated_mean", "nu")]
            tx, ty = wide[("target", "pressure")], wide[("target", "nu")]
            for a, b, c, d in zip(tx, ty, x, y, strict=True):
                ax.plot([a, c], [b, d], color="lightgrey", lw=0.6)
            ax.plot(tx, ty, ".", color="grey", ms=6, label=r"targets $(p^*, \nu^*)$")
            ax.errorbar(
                x,
                y,
                xerr=wide[("validated_sem", "pressure")],
                yerr=wide[("validated_sem", "nu")],
                fmt="o",
                color="C3",
                ms=4,
                capsize=2,
                label="validated",
            )
            ax.plot(
                wide[("initial_mean", "pressure")].mean(),
                wide[("initial_mean", "nu")].mean(),
                "s",
                mfc="none",
                color="k",
                ms=8,
                label="untrained",
            )
            ax.set_xlabel(r"$\langle p\rangle$")
            ax.set_ylabel(r"$\langle\nu\rangle$")
            ax.legend(fontsize=7)
        else:
            _empty(ax, "joint runs do not target (nu, pressure)")
    fig.suptitle(
        r"Joint objective $(\langle\nu\rangle-\nu^*)^2 + (\langle p\rangle-p^*)^2$ "
        "(paper Fig. 6)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- SI Fig. 8
def robustness(validations: pd.DataFrame):
    """Validated <nu> with the trained parameters, plain and with polydispersity /
    heterogeneity (runs that have perturbed validations), and the shift they cause."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    v = _single(validations, "nu")
    pert = v[(v["polydispersity"] > 0) | (v["heterogeneity"] > 0)]
    if pert.empty:
        for ax in axes:
            _empty(ax)
        return fig
    runs_with = set(pert["run"])
    v = v[v["run"].isin(runs_with) & (v["validation_N"] == v["N"])]
    kinds = list(dict.fromkeys(["plain", *sorted(set(pert["validation"]))]))
    ax = axes[0]
    _panel(ax, "a")
    for k, kind in enumerate(kinds):
        sub = v[v["validation"] == kind]
        if sub.empty:
            continue
        r = sub.iloc[0]
        lab = (
            kind
            if kind == "plain"
            else (
                f"{kind}: {100 * r['polydispersity']:g}% polydispersity, "
                f"{100 * r['heterogeneity']:g}% heterogeneity"
            )
        )
        _by_target(ax, sub, f"C{k}", lab, offset=k * _offset(v["target"]))
    _diagonal(ax, v["target"].min(), v["target"].max())
    ax.set_xlabel(r"target $\nu^*$")
    ax.set_ylabel(r"validated $\langle\nu\rangle$")
    ax.legend(fontsize=6)
    ax = axes[1]
    _panel(ax, "b")
    plain = v[v["validation"] == "plain"].set_index("run")
    for k, kind in enumerate(kinds[1:], start=1):
        sub = v[v["validation"] == kind].set_index("run")
        common = sub.index.intersection(plain.index)
        if not len(common):
            continue
        d = sub.loc[common, "validated_mean"] - plain.loc[common, "validated_mean"]
        e = np.hypot(sub.loc[common, "validated_sem"], plain.loc[common, "validated_sem"])
        ax.errorbar(
            plain.loc[common, "target"] + k * _offset(v["target"]),
            d,
            yerr=e,
            fmt="o",
            color=f"C{k}",
            ms=4,
            capsize=2,
            label=kind,
        )
    ax.axhspan(-0.01, 0.01, color="grey", alpha=0.2, lw=0, label=r"$\pm 0.01$")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel(r"target $\nu^*$")
    ax.set_ylabel(r"$\langle\nu\rangle_{perturbed} - \langle\nu\rangle_{plain}$")
    ax.legend(fontsize=6)
    fig.suptitle("Robustness to polydispersity and heterogeneity (paper SI Fig. 8)", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- SI H
def three_d(histories: list[dict], runs: pd.DataFrame):
    """3D runs: loss traces and validated <nu> vs nu* (red: untrained)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    _panel(ax, "a")
    hs = [h for h in histories if h["run"]["system"]["dim"] == 3]
    if not hs:
        _empty(ax, "no traced 3D runs")
    for k, h in enumerate(hs[:10]):
        ax.semilogy(h["loss"], color=f"C{k % 10}", lw=0.8, label=h["run"]["id"])
    if hs:
        ax.set_xlabel("optimization step")
        ax.set_ylabel(r"$\mathcal{L}$")
        ax.legend(fontsize=6)
    ax = axes[1]
    _panel(ax, "b")
    t = _single(runs, "nu")
    t = t[t["dim"] == 3]
    if t.empty:
        _empty(ax)
    else:
        for k, (mode, sub) in enumerate(t.groupby("mode")):
            _by_target(ax, sub, f"C{k}", mode)
        _initial_line(ax, t)
        _diagonal(ax, t["target"].min(), t["target"].max())
        ax.set_xlabel(r"target $\nu^*$")
        ax.set_ylabel(r"validated $\langle\nu\rangle$")
        ax.legend(fontsize=6)
    fig.suptitle("Training in three dimensions (paper SI H)", fontsize=10)
    fig.tight_layout()
    return fig
