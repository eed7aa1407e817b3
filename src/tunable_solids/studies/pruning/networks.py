"""Periodic 2D spring networks to be pruned: distorted triangular lattices, periodic Delaunay
triangulations of random points and contact networks of jammed bidisperse packings.

Conventions
-----------
- A :class:`Network` is plain numpy data: node positions ``(N, 2)``, a box ``(2, 2)`` whose
  columns are the lattice vectors (:mod:`tunable_solids.space`), bonds ``i < j`` ``(B,)``
  and rest lengths ``(B,)``. Bond ``b`` joins ``i[b]`` and ``j[b]`` along the minimum image,
  so every bond is shorter than half the box height (checked at construction).
- Every spring is relaxed at construction (rest length = length), so the network is stress
  free and its positions stay a minimum for any bond stiffnesses: no re-minimization is ever
  needed when bonds are removed or their stiffnesses change.
- Lengths: lattice networks in units of the lattice constant; Delaunay networks at number
  density 1; packing networks in units of the small diameter (diameters 1 and 1.4).
- ``mask`` ``(B,)`` bool says which bonds are present; ``z = 2 B_present / N``.
- :func:`as_core` gives the core's types (``space.Pairs``, ``potentials.NetworkParams``,
  ``mechanics.Model`` with ``potentials.Spring``) for the core's mechanics functions.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from tunable_solids import mechanics, space, systems
from tunable_solids.potentials import NetworkParams, Spring

KINDS = ("triangular", "delaunay", "packing")


class Network(NamedTuple):
    """A periodic spring network (numpy arrays; see the module conventions)."""

    positions: np.ndarray  # (N, 2)
    box: np.ndarray  # (2, 2), columns = lattice vectors
    i: np.ndarray  # (B,) int, i < j
    j: np.ndarray  # (B,) int
    rest_length: np.ndarray  # (B,) lengths at construction
    kind: str


def bond_vectors(positions: np.ndarray, box: np.ndarray, i: np.ndarray, j: np.ndarray):
    """Minimum-image bond vectors ``R[i] - R[j]``, ``(B, 2)``."""
    inv = np.linalg.inv(box)
    ds = (positions[i] - positions[j]) @ inv.T
    return (ds - np.round(ds)) @ box.T


def _network(positions, box, i, j, kind) -> Network:
    """Sorted, de-duplicated bonds ``i < j`` with rest length = current length."""
    i, j = np.minimum(i, j), np.maximum(i, j)
    keys = np.unique(i.astype(np.int64) * len(positions) + j)
    i, j = (keys // len(positions)).astype(np.int32), (keys % len(positions)).astype(np.int32)
    lengths = np.linalg.norm(bond_vectors(positions, box, i, j), axis=1)
    space.check_box_fits(box, float(lengths.max()))
    return Network(np.asarray(positions, float), np.asarray(box, float), i, j, lengths, kind)


def coordination(network: Network, mask: np.ndarray | None = None) -> float:
    """Mean coordination ``z = 2 B / N`` of the present bonds."""
    b = len(network.i) if mask is None else int(np.sum(mask))
    return 2.0 * b / len(network.positions)


def degrees(network: Network, mask: np.ndarray | None = None) -> np.ndarray:
    """Number of present bonds at each node, ``(N,)``."""
    m = np.ones(len(network.i), bool) if mask is None else np.asarray(mask, bool)
    n = len(network.positions)
    return np.bincount(network.i[m], minlength=n) + np.bincount(network.j[m], minlength=n)


def triangular_lattice(n_side: int) -> Network:
    """Perfect triangular lattice of ``n_side x n_side`` nodes, lattice constant 1.

    Rows are ``sqrt(3)/2`` apart and odd rows shifted by 1/2, so ``n_side`` must be even for
    the lattice to close periodically; box ``n_side x n_side sqrt(3)/2``; ``3 N`` bonds.
    """
    if n_side % 2 or n_side < 4:
        raise ValueError(f"n_side must be even and >= 4, got {n_side}")
    col, row = np.meshgrid(np.arange(n_side), np.arange(n_side))
    col, row = col.ravel(), row.ravel()
    h = math.sqrt(3.0) / 2.0
    R = np.stack([col + 0.5 * (row % 2), row * h], axis=1)
    box = np.diag([float(n_side), n_side * h])

    def node(c, r):
        return (r % n_side) * n_side + (c % n_side)

    up_left = np.where(row % 2 == 0, col - 1, col)  # the two neighbours in the row above
    i = np.concatenate([node(col, row)] * 3)
    j = np.concatenate([node(col + 1, row), node(up_left, row + 1), node(up_left + 1, row + 1)])
    return _network(R, box, i, j, "triangular")


def distorted_triangular(n_side: int, r: float, rng: np.random.Generator) -> Network:
    """Triangular lattice with every node moved by exactly ``r`` (lattice units) at a uniform
    random angle; springs relaxed at the new lengths, topology unchanged.

    ``r < 0.5`` keeps bonds from crossing (the pruning studies); 0.05 .. 0.95 is allowed
    (the surrogate's data set). Unlike the paper (fixed boundary nodes, open box), the
    network is periodic and every node is moved.
    """
    if not 0.0 <= r <= 0.95:
        raise ValueError(f"distortion r must be in [0, 0.95], got {r}")
    lat = triangular_lattice(n_side)
    theta = rng.uniform(0.0, 2.0 * np.pi, len(lat.positions))
    R = lat.positions + r * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return _network(R, lat.box, lat.i, lat.j, "triangular")


def periodic_delaunay(n: int, rng: np.random.Generator, density: float = 1.0) -> Network:
    """Delaunay triangulation of ``n`` uniformly random points in a periodic square box.

    The points and their 8 periodic images are triangulated (``scipy.spatial.Delaunay``);
    the edges with an end in the central cell, folded back to node indices, are the bonds.
    A periodic triangulation has exactly ``3 N`` edges (Euler on the torus: ``z = 6``), which
    is checked; an edge longer than half the box (tiny ``n``) raises ``ValueError``.
    """
    from scipy.spatial import Delaunay

    box = np.eye(2) * math.sqrt(n / density)
    R = rng.uniform(size=(n, 2)) @ box.T
    shifts = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)], float) @ box.T
    images = (R[None] + shifts[:, None]).reshape(-1, 2)  # image k of node p: k * n + p
    tri = Delaunay(images).simplices
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    central = 4  # shift (0, 0)
    edges = edges[(edges // n == central).any(axis=1)]
    a, b = edges[:, 0], edges[:, 1]
    # the edge vector must be the minimum image of its folded pair
    direct = images[a] - images[b]
    net = _network(R, box, a % n, b % n, "delaunay")
    folded = bond_vectors(R, box, a % n, b % n)
    if not np.allclose(direct, folded, atol=1e-9 * box[0, 0]):
        raise ValueError(f"n = {n} points too few for a periodic Delaunay network")
    if len(net.i) != 3 * n:
        raise ValueError(f"periodic Delaunay gave {len(net.i)} bonds, not 3 N = {3 * n}")
    return net


def jammed_contact_network(
    n: int,
    rng: np.random.Generator,
    phi: float = 0.9,
    pressure: float | None = None,
    diameters: tuple[float, float] = (1.0, 1.4),
) -> Network:
    """Contact network of a jammed 2D 1:1.4 bidisperse soft-sphere packing.

    ``n`` discs (half small, half large) from uniformly random positions are minimized
    (FIRE to ``max|F| <= 1e-12``) at packing fraction ``phi`` or, if ``pressure`` is given,
    brought to that pressure (:func:`protocols.prepare_at_pressure`, starting from ``phi``).
    Every contact becomes a relaxed spring; rattlers (fewer than 3 contacts, found
    iteratively) are dropped and the remaining nodes renumbered. Raises ``RuntimeError`` if
    the minimization did not converge.
    """
    from tunable_solids.minimize import MinimizeOptions, minimize
    from tunable_solids.potentials import make_potential
    from tunable_solids.preparation import interacting_pairs
    from tunable_solids.protocols import prepare_at_pressure

    potential = make_potential("soft_sphere")
    params = systems.default_params(2, list(diameters), 1.0, 0.0)
    species = systems.assign_species(n, 2)
    box = systems.box_for_packing_fraction(np.asarray(params.diameter)[species], 2, phi)
    start = systems.random_positions(rng, n, box)
    if pressure is None:
        m = minimize(potential, start, box, params, jnp.asarray(species))
        converged = bool(m.converged)
    else:
        prep = prepare_at_pressure(
            potential, start, box, params, jnp.asarray(species), pressure, MinimizeOptions()
        )
        m, box, converged = prep.minimum, prep.box, prep.converged
    if not converged:
        raise RuntimeError(f"packing did not converge (max|F| = {float(m.max_force):.2e})")
    R = np.asarray(m.positions)
    pairs = interacting_pairs(potential, R, box, params)
    model = mechanics.Model(potential, jnp.asarray(box), jnp.asarray(species), pairs)
    contact = np.asarray(mechanics.contact_mask(model, jnp.asarray(R), params))
    i, j = np.asarray(pairs.i)[contact], np.asarray(pairs.j)[contact]
    rattler = mechanics.rattlers(n, 2, i, j, np.ones(len(i), bool))
    keep = ~rattler[i] & ~rattler[j]
    new_index = np.cumsum(~rattler) - 1
    return _network(R[~rattler], box, new_index[i[keep]], new_index[j[keep]], "packing")


def as_core(network: Network, stiffness: np.ndarray | None = None):
    """The network in the core's types: ``(Model, positions (N, 2), NetworkParams)``.

    ``stiffness`` ``(B,)`` (default 1); a removed bond is stiffness 0 (same energy, Hessian
    and elastic constants as leaving it out), which keeps array shapes fixed.
    """
    b = len(network.i)
    k = np.ones(b) if stiffness is None else np.asarray(stiffness, float)
    pairs = space.Pairs(jnp.asarray(network.i), jnp.asarray(network.j), jnp.ones(b, bool))
    params = NetworkParams(jnp.asarray(k), jnp.asarray(network.rest_length))
    model = mechanics.Model(Spring(), jnp.asarray(network.box), None, pairs)
    return model, jnp.asarray(network.positions), params
