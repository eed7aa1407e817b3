"""Periodic boxes, minimum-image pair vectors and fixed-capacity pair lists.

Conventions
-----------
- Positions ``R`` are real-space coordinates, shape ``(N, d)``.
- A box is a ``(d, d)`` matrix whose *columns* are the lattice vectors; fractional
  coordinates are ``s = R @ inv(box).T`` and ``R = s @ box.T``.
- A pair vector is ``dr = R[i] - R[j]`` mapped to its minimum image. The minimum image
  is exact while every interaction range is below half the smallest box height, which
  :func:`check_box_fits` enforces before any work starts.
- A :class:`Pairs` list has a fixed capacity (a static shape, so JAX compiles once per
  capacity); unused slots have ``mask == False`` and point at particle 0. Valid slots come
  first, sorted by ``(i, j)``: the dense and the cell-list builders return identical lists.

Performance notes (XLA on CPU): products with the ``(d, d)`` box and sums over the short
coordinate axis are written out component by component (:func:`transform`,
:func:`squared_norm`); as ``dot``/``reduce`` ops on ``(P, d)`` arrays they cost 4-7x more.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


class Pairs(NamedTuple):
    """A list of particle pairs ``(i, j)`` with ``i < j`` and a validity mask, each ``(P,)``."""

    i: Array
    j: Array
    mask: Array


def transform(m: Array, x: Array) -> Array:
    """``x @ m.T`` for a small ``(d, d)`` matrix ``m`` and ``x`` of shape ``(..., d)``.

    Written as ``d`` broadcast multiply-adds: XLA's CPU ``dot`` on ``(P, 2) x (2, 2)`` is
    several times slower than these fused element-wise ops.
    """
    out = x[..., 0:1] * m[:, 0]
    for k in range(1, m.shape[1]):
        out = out + x[..., k : k + 1] * m[:, k]
    return out


def squared_norm(x: Array) -> Array:
    """``sum(x**2, axis=-1)`` over the (short) last axis, component by component."""
    out = x[..., 0] ** 2
    for k in range(1, x.shape[-1]):
        out = out + x[..., k] ** 2
    return out


def box_volume(box: Array) -> Array:
    """Volume (area in 2D) of the box spanned by the columns of ``box``."""
    return jnp.abs(jnp.linalg.det(box))


def box_heights(box: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the box, shape ``(d,)``."""
    inv = np.linalg.inv(np.asarray(box))
    return 1.0 / np.linalg.norm(inv, axis=1)


def check_box_fits(box: np.ndarray, max_range: float) -> None:
    """Raise ``ValueError`` if an interaction range ``max_range`` breaks the minimum image."""
    h = float(np.min(box_heights(box)))
    if max_range >= 0.5 * h:
        raise ValueError(
            f"interaction range {max_range:.4g} is not below half the box height {h:.4g}: "
            "increase N (or lower the density) so the minimum-image convention holds"
        )


def wrap(R: Array, box: Array) -> Array:
    """Map positions into the primary cell ``[0, 1)^d`` in fractional coordinates."""
    s = R @ jnp.linalg.inv(box).T
    return (s - jnp.floor(s)) @ box.T


def fractional(R: Array, box: Array) -> Array:
    """Fractional coordinates ``R @ inv(box).T`` (not wrapped), shape ``(N, d)``."""
    return transform(jnp.linalg.inv(box), R)


def pair_vectors(R: Array, box: Array, pairs: Pairs) -> Array:
    """Minimum-image vectors ``R[i] - R[j]`` for every pair slot, shape ``(P, d)``."""
    s = fractional(R, box)
    ds = s[pairs.i] - s[pairs.j]
    return transform(box, ds - jnp.round(ds))


def all_pairs(n: int) -> Pairs:
    """Every pair ``i < j`` of ``n`` particles (dense list, ``n (n-1) / 2`` slots)."""
    i, j = np.triu_indices(n, k=1)
    return Pairs(jnp.asarray(i, jnp.int32), jnp.asarray(j, jnp.int32), jnp.ones(len(i), bool))


# Below this many particles the dense N^2 builder is used by default (it is cheaper there
# and its memory, ~ 40 N^2 bytes, is small); above it the O(N) cell list.
CELL_LIST_MIN_N = 2048


def neighbor_pairs(
    R: Array, box: Array, cutoff: Array, capacity: int, row_capacity: int | None = None
) -> tuple[Pairs, Array]:
    """Pairs closer than ``cutoff`` (scalar, or ``(N, N)`` per-pair cutoffs), as a fixed list.

    For ``N >= CELL_LIST_MIN_N`` and a scalar cutoff (or whenever ``row_capacity`` is
    given) the O(N) cell list :func:`cell_list_pairs` is used, otherwise all ``N^2``
    distances; both return the same list. Returns the list and the number of pairs found;
    if that exceeds ``capacity`` the list is incomplete and the caller must rebuild with a
    larger capacity. (A cell list whose stencil rows overflow reports ``count > capacity``
    too, and a larger ``capacity`` also raises the default row capacity.)
    """
    n, dim = R.shape
    scalar = jnp.ndim(cutoff) == 0
    if scalar and (row_capacity is not None or n >= CELL_LIST_MIN_N):
        if row_capacity is None:
            row_capacity = default_row_capacity(n, dim, capacity)
        pairs, count, overflow = cell_list_pairs(R, box, cutoff, capacity, row_capacity)
        return pairs, jnp.where(overflow, jnp.maximum(count, capacity + 1), count)
    return dense_pairs(R, box, cutoff, capacity)


def dense_pairs(R: Array, box: Array, cutoff: Array, capacity: int) -> tuple[Pairs, Array]:
    """:func:`neighbor_pairs` from all ``N^2`` distances (memory ~ 40 N^2 bytes)."""
    n = R.shape[0]
    s = fractional(R, box)
    ds = s[:, None, :] - s[None, :, :]
    d2 = squared_norm(transform(box, ds - jnp.round(ds)))
    upper = jnp.triu(jnp.ones((n, n), bool), k=1)
    close = upper & (d2 < jnp.asarray(cutoff) ** 2)
    count = jnp.sum(close)
    i, j = jnp.nonzero(close, size=capacity, fill_value=0)
    mask = jnp.arange(capacity) < count
    return Pairs(i.astype(jnp.int32), j.astype(jnp.int32), mask), count


def default_row_capacity(n: int, dim: int, capacity: int) -> int:
    """Row capacity implied by a pair capacity: a row of three cells, each at most ``2 rc``
    wide, holds at most ``3 * 2^d / V_ball(1)`` times the neighbours within ``rc`` of a
    particle, estimated as ``2 capacity / n``; with a margin for fluctuations."""
    neighbours = 2.0 * capacity / n
    ratio = 3.0 * (4.0 / np.pi if dim == 2 else 8.0 / (4.0 / 3.0 * np.pi))
    return bucket(1.5 * ratio * neighbours + 8)


def bucket(x: float, per_octave: int = 4) -> int:
    """Round ``x`` up to a geometric ladder (``per_octave`` steps per doubling), so nearby
    sizes share one static shape and hence one compilation."""
    x = max(float(x), 1.0)
    return int(np.ceil(2.0 ** (np.ceil(per_octave * np.log2(x)) / per_octave)))


def cell_grid(box: np.ndarray, cutoff: float) -> np.ndarray:
    """Cells per box axis, ``floor(height / cutoff)`` (at least 1), shape ``(d,)``."""
    return np.maximum(np.floor(box_heights(box) / cutoff), 1).astype(int)


def max_row_occupancy(R: np.ndarray, box: np.ndarray, cutoff: float) -> int:
    """Most particles in one stencil row of :func:`cell_list_pairs` (three adjacent cells
    along the first box axis, fewer if the grid has fewer), host-side, to choose a row
    capacity."""
    box = np.asarray(box, float)
    ncell = cell_grid(box, cutoff)
    s = np.asarray(R, float) @ np.linalg.inv(box).T
    c = np.clip(np.floor((s - np.floor(s)) * ncell), 0, ncell - 1).astype(np.int64)
    occ = np.zeros(tuple(ncell), np.int64)
    np.add.at(occ, tuple(c.T), 1)
    shifts = {0, 1 % ncell[0], -1 % ncell[0]}  # distinct cells of a row
    return int(sum(np.roll(occ, k, axis=0) for k in shifts).max())


# Particles per block of the candidate pass of cell_list_pairs: bounds its temporaries
# (block x candidates x d floats) to a few MB, which XLA on CPU runs 3-4x faster than one
# pass over all candidates.
_CELL_BLOCK = 256


def cell_list_pairs(
    R: Array, box: Array, cutoff: Array, capacity: int, row_capacity: int
) -> tuple[Pairs, Array, Array]:
    """Pairs closer than the scalar ``cutoff`` from a cell list, O(N) time and memory.

    The box is cut into ``floor(h_a / cutoff)`` cells along each axis (``h_a``: box heights;
    works for any box matrix, in fractional coordinates), so every pair within ``cutoff``
    lies in the same or in adjacent cells. Particles are sorted by cell index, whose
    fastest axis is the first box axis, so the three cells ``x-1, x, x+1`` of a stencil row
    are (up to the periodic wrap) one contiguous run of the sorted particles. Each particle
    scans ``row_capacity`` slots of each of its ``3^(d-1)`` stencil rows. Grids with fewer
    than 3 cells along an axis are handled (each cell is scanned once).

    Compaction without a scatter: per-particle running counts of the close candidates, then
    every output slot finds its particle (search over the cumulative counts) and its
    candidate (binary search in that particle's running count).

    Returns ``(pairs, count, overflow)``: the list (same content and order as the dense
    builder), the number of pairs found and whether a stencil row held more than
    ``row_capacity`` particles (then the list may be incomplete: rebuild with a larger
    row capacity). ``count > capacity`` means the list is truncated, as in
    :func:`neighbor_pairs`.
    """
    n, dim = R.shape
    cutoff = jnp.asarray(cutoff, R.dtype)
    binv = jnp.linalg.inv(box)
    s = transform(binv, R)
    s = s - jnp.floor(s)
    heights = 1.0 / jnp.sqrt(squared_norm(binv))
    ncell = jnp.maximum(jnp.floor(heights / cutoff), 1.0).astype(jnp.int32)
    c = jnp.clip(jnp.floor(s * ncell).astype(jnp.int32), 0, ncell - 1)

    def flat_index(cc):
        out = cc[..., dim - 1]
        for a in range(dim - 2, -1, -1):
            out = out * ncell[a] + cc[..., a]
        return out

    own = flat_index(c)
    order = jnp.argsort(own).astype(jnp.int32)
    sorted_cells = own[order]
    s_sorted = s[order]

    # Stencil offsets (rows, 3, d): rows over the other axes, 3 cells along the first.
    offsets = np.stack(np.meshgrid(*([np.arange(-1, 2)] * dim), indexing="ij"), -1)
    offsets = jnp.asarray(offsets.reshape(3, -1, dim).transpose(1, 0, 2), jnp.int32)
    # With 1 or 2 cells along an axis, offsets -1, 0, +1 do not all reach distinct cells:
    # keep offset 0 always, -1 when there are >= 2 cells, +1 when there are >= 3.
    ok_axis = (offsets == 0) | ((offsets == -1) & (ncell >= 2)) | (ncell >= 3)
    offset_ok = jnp.all(ok_axis, axis=-1)  # (rows, 3)
    neighbour = flat_index(jnp.mod(c[:, None, None, :] + offsets[None], ncell))  # (N, rows, 3)
    start = jnp.searchsorted(sorted_cells, neighbour, side="left").astype(jnp.int32)
    end = jnp.searchsorted(sorted_cells, neighbour, side="right").astype(jnp.int32)
    length = jnp.where(offset_ok[None], end - start, 0)
    run1 = length[..., 0]
    run2 = run1 + length[..., 1]
    run3 = run2 + length[..., 2]  # cumulative run lengths; run3: the whole row, (N, rows)
    overflow = jnp.any(run3 > row_capacity)
    slots = jnp.arange(row_capacity, dtype=jnp.int32)
    width = offsets.shape[0] * row_capacity  # candidates per particle

    def sorted_position(first, r1, r2, k):
        """Position in the sorted order of slot ``k`` of a row (cell starts ``first``)."""
        return jnp.where(
            k < r1,
            first[..., 0] + k,
            jnp.where(k < r2, first[..., 1] + k - r1, first[..., 2] + k - r2),
        )

    def running_counts(block):
        i, first, r1, r2, r3 = block  # (B,), (B, rows, 3), (B, rows) x 3
        p = sorted_position(first[..., None, :], r1[..., None], r2[..., None], slots)
        p = jnp.minimum(p, n - 1)  # (B, rows, row_capacity)
        ds = s[i][:, None, None, :] - s_sorted[p]
        d2 = squared_norm(transform(box, ds - jnp.round(ds)))
        close = (slots < r3[..., None]) & (order[p] > i[:, None, None]) & (d2 < cutoff**2)
        return jnp.cumsum(close.reshape(i.shape[0], width), axis=1, dtype=jnp.int32)

    blocks = -(-n // _CELL_BLOCK)
    ids = jnp.arange(blocks * _CELL_BLOCK, dtype=jnp.int32) % n  # padded with repeats
    per_block = lambda x: x[ids].reshape((blocks, _CELL_BLOCK) + x.shape[1:])
    counts = jax.lax.map(
        running_counts,
        tuple(map(per_block, (jnp.arange(n, dtype=jnp.int32), start, run1, run2, run3))),
    ).reshape(blocks * _CELL_BLOCK, width)[:n]

    per_particle = counts[:, -1]
    cumulative = jnp.cumsum(per_particle)
    count = cumulative[-1]
    slot = jnp.arange(capacity, dtype=jnp.int32)
    mask = slot < count
    pi = jnp.minimum(jnp.searchsorted(cumulative, slot, side="right"), n - 1).astype(jnp.int32)
    rank = slot - (cumulative[pi] - per_particle[pi])  # 0-based, among pi's close candidates
    flat_counts = counts.reshape(-1)
    base = pi * width

    def bisect(_, bounds):  # smallest column whose running count exceeds rank
        lo, hi = bounds
        mid = (lo + hi) // 2
        left = flat_counts[base + mid] > rank
        return jnp.where(left, lo, mid + 1), jnp.where(left, mid, hi)

    steps = int(np.ceil(np.log2(width))) + 1
    col, _ = jax.lax.fori_loop(
        0, steps, bisect, (jnp.zeros_like(slot), jnp.full_like(slot, width - 1))
    )
    row, k = col // row_capacity, col % row_capacity
    p = sorted_position(start[pi, row], run1[pi, row], run2[pi, row], k)
    pj = jnp.where(mask, order[jnp.minimum(p, n - 1)], 0)
    pi = jnp.where(mask, pi, 0)
    # Canonical (i, j) order, empty slots last: the dense builder's order.
    key = jnp.where(mask, pi.astype(jnp.int64) * n + pj, jnp.iinfo(jnp.int64).max)
    perm = jnp.argsort(key)
    return Pairs(pi[perm], pj[perm], mask), count, overflow
