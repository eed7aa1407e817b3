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
  capacity); unused slots have ``mask == False`` and point at particle 0.
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


def pair_vectors(R: Array, box: Array, pairs: Pairs) -> Array:
    """Minimum-image vectors ``R[i] - R[j]`` for every pair slot, shape ``(P, d)``."""
    dR = R[pairs.i] - R[pairs.j]
    s = dR @ jnp.linalg.inv(box).T
    s = s - jnp.round(s)
    return s @ box.T


def all_pairs(n: int) -> Pairs:
    """Every pair ``i < j`` of ``n`` particles (dense list, ``n (n-1) / 2`` slots)."""
    i, j = np.triu_indices(n, k=1)
    return Pairs(jnp.asarray(i, jnp.int32), jnp.asarray(j, jnp.int32), jnp.ones(len(i), bool))


def neighbor_pairs(R: Array, box: Array, cutoff: Array, capacity: int) -> tuple[Pairs, Array]:
    """Pairs closer than ``cutoff`` (scalar, or ``(N, N)`` per-pair cutoffs), as a fixed list.

    Built from all ``N^2`` distances, so it is meant for N up to a few thousand.
    Returns the list and the number of pairs found; if that exceeds ``capacity`` the
    list is incomplete and the caller must rebuild with a larger capacity.
    """
    n = R.shape[0]
    dR = R[:, None, :] - R[None, :, :]
    s = dR @ jnp.linalg.inv(box).T
    s = s - jnp.round(s)
    d2 = jnp.sum((s @ box.T) ** 2, axis=-1)
    upper = jnp.triu(jnp.ones((n, n), bool), k=1)
    close = upper & (d2 < jnp.asarray(cutoff) ** 2)
    count = jnp.sum(close)
    i, j = jnp.nonzero(close, size=capacity, fill_value=0)
    mask = jnp.arange(capacity) < count
    return Pairs(i.astype(jnp.int32), j.astype(jnp.int32), mask), count
