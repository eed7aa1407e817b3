"""Drawing helpers shared by the studies' figures (matplotlib, non-interactive backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection, PatchCollection  # noqa: E402
from matplotlib.patches import Circle  # noqa: E402


def box_frame(ax, L) -> None:
    """Draw the (orthorhombic, 2D) box ``[0, L_x] x [0, L_y]`` and fit the axes to it, equal
    aspect, no ticks."""
    ax.plot([0, L[0], L[0], 0, 0], [0, 0, L[1], L[1], 0], "k-", lw=0.8)
    ax.set_xlim(0, L[0])
    ax.set_ylim(0, L[1])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def draw_packing(ax, state: dict) -> None:
    """Particles as discs coloured by species, with periodic images clipped to the box, and
    the contact network (2D; a 3D state is projected on its first two axes)."""
    R, box = state["positions"], state["box"]
    species, diam = state["species"], state["diameter"]
    L = np.diag(box)[:2]
    cmap = plt.get_cmap("tab10" if len(diam) <= 10 else "tab20")
    shifts = [np.array([a, b]) * L for a in (-1, 0, 1) for b in (-1, 0, 1)]
    discs, colors = [], []
    for shift in shifts:
        for p, s in zip(R[:, :2] + shift, species, strict=True):
            r = 0.5 * diam[s]
            if np.all(p + r > 0) and np.all(p - r < L):
                discs.append(Circle(p, r))
                colors.append(cmap(s % cmap.N))
    clip = plt.Rectangle((0, 0), L[0], L[1], transform=ax.transData)
    coll = PatchCollection(discs, facecolors=colors, edgecolors="k", linewidths=0.3, alpha=0.75)
    coll.set_clip_path(clip)
    ax.add_collection(coll)
    valid = (state["pair_i"] >= 0) & state["pair_contact"]
    i, j = state["pair_i"][valid], state["pair_j"][valid]
    frac = (R[i] - R[j]) @ np.linalg.inv(box).T
    d = (frac - np.round(frac)) @ box.T  # minimum image
    segs = np.concatenate([np.stack([R[j, :2] + sh, R[j, :2] + sh + d[:, :2]], 1) for sh in shifts])
    lines = LineCollection(segs, colors="k", linewidths=0.6)
    lines.set_clip_path(clip)
    ax.add_collection(lines)
    box_frame(ax, L)
    cfg = state["config"]
    ax.set_title(
        f"{cfg['name']}: {cfg['potential']}, N = {cfg['N']}, seed {int(state['seed'])}", fontsize=9
    )
