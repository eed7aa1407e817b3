"""Initial configurations: boxes, species, random packings, crystals, spring networks.

All generators are pure functions of their arguments (a numpy ``Generator`` for
randomness) and return numpy arrays; lengths are in units of the large diameter
unless a scheme says otherwise.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .potentials import NetworkParams, SpeciesParams, species_params
from .space import Pairs


def species_diameters(n_species: int, diameters: list[float]) -> np.ndarray:
    """Diameter of each species: the first half of the species take ``diameters[0]``,
    the second half ``diameters[-1]`` (one species: ``diameters[0]``).

    ``n_species=2, diameters=[1.0, 1.4]`` is the 1:1.4 bidisperse mixture of
    "Fully independent response"; ``diameters=[0.8, 1.0]`` with even ``n_species`` is the
    model of "Designing athermal disordered solids".
    """
    if n_species == 1:
        return np.array([float(diameters[0])])
    if n_species % 2:
        raise ValueError(f"species.n_species must be 1 or even, got {n_species}")
    half = n_species // 2
    return np.array([float(diameters[0])] * half + [float(diameters[-1])] * half)


def assign_species(n: int, n_species: int) -> np.ndarray:
    """Divide ``n`` particles evenly (contiguous blocks) into ``n_species`` species."""
    return (np.arange(n) * n_species // n).astype(np.int32)


def random_sequential_addition(
    rng: np.random.Generator, n: int, density: float, r_min: float
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points in a periodic cube of number density ``density``, added one by one at
    uniform random positions and rejected when closer than ``r_min`` to any point already
    placed (a liquid-like snapshot without overlaps). Returns positions ``(n, 3)`` and the
    box ``(3, 3)``; needs ``density r_min^3`` well below the jamming limit of RSA (~0.5)."""
    L = (n / density) ** (1 / 3)
    R = np.zeros((0, 3))
    while len(R) < n:
        x = rng.uniform(0, L, 3)
        d = R - x
        d -= L * np.round(d / L)
        if len(R) == 0 or np.min(np.sum(d * d, axis=1)) >= r_min**2:
            R = np.vstack([R, x])
    return R, np.eye(3) * L


def power_law_sizes(
    rng: np.random.Generator, n: int, low: float, high: float, exponent: float = 3.0
) -> np.ndarray:
    """``n`` sizes drawn from ``P(lambda) ~ lambda^-exponent`` on ``[low, high]`` (inverse
    transform sampling; ``exponent > 1``, ``0 < low < high``)."""
    if not (0.0 < low < high) or exponent <= 1.0:
        raise ValueError(f"need 0 < low < high and exponent > 1; got {low}, {high}, {exponent}")
    e = 1.0 - exponent
    u = rng.random(n)
    return (low**e + u * (high**e - low**e)) ** (1.0 / e)


def box_for_density(n: int, dim: int, density: float) -> np.ndarray:
    """Cubic box with number density ``n / V = density``."""
    return np.eye(dim) * (n / density) ** (1.0 / dim)


def box_for_packing_fraction(diameters: np.ndarray, dim: int, phi: float) -> np.ndarray:
    """Cubic box at packing fraction ``phi`` for particles of the given diameters ``(N,)``."""
    vol = np.pi / 4 * diameters**2 if dim == 2 else np.pi / 6 * diameters**3
    return np.eye(dim) * (np.sum(vol) / phi) ** (1.0 / dim)


def random_positions(rng: np.random.Generator, n: int, box: np.ndarray) -> np.ndarray:
    """Uniformly random positions in the box (infinite-temperature start), ``(N, d)``."""
    return rng.uniform(size=(n, box.shape[0])) @ box.T


def _near_cubic_factors(m: int, aspect: np.ndarray) -> tuple[int, ...] | None:
    """Factor ``m`` cells into ``len(aspect)`` counts making the box as cubic as possible."""
    dim = len(aspect)
    best, best_score = None, math.inf
    for nx in range(1, m + 1):
        if m % nx:
            continue
        rest = (
            [(m // nx,)]
            if dim == 2
            else [(ny, m // nx // ny) for ny in range(1, m // nx + 1) if (m // nx) % ny == 0]
        )
        for tail in rest:
            counts = np.array((nx, *tail))
            lengths = counts * aspect
            score = lengths.max() / lengths.min()
            if score < best_score - 1e-12:
                best, best_score = tuple(int(c) for c in counts), score
    return best if best_score < 2.0 else None


def crystal(n: int, dim: int, density: float) -> tuple[np.ndarray, np.ndarray]:
    """Perfect triangular (2D) or FCC (3D) crystal of ``n`` sites at number density ``density``.

    Returns ``(positions (N, d), box (d, d))``. Raises ``ValueError`` if ``n`` cannot fill a
    near-cubic periodic box (2D: ``n = 2 nx ny``; 3D: ``n = 4 nx ny nz``).
    """
    if dim == 2:
        a = math.sqrt(2.0 / (math.sqrt(3.0) * density))
        cell = np.array([a, math.sqrt(3.0) * a])
        basis = np.array([[0.0, 0.0], [0.5, 0.5]])
        per_cell = 2
    else:
        a = (4.0 / density) ** (1.0 / 3.0)
        cell = np.array([a, a, a])
        basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]], float)
        per_cell = 4
    if n % per_cell:
        raise ValueError(f"N = {n} is not a multiple of {per_cell} sites per crystal cell")
    counts = _near_cubic_factors(n // per_cell, cell)
    if counts is None:
        raise ValueError(f"N = {n} cannot fill a near-cubic periodic crystal box in {dim}D")
    grid = np.stack(np.meshgrid(*[np.arange(c) for c in counts], indexing="ij"), -1)
    sites = (grid.reshape(-1, 1, dim) + basis[None]).reshape(-1, dim) * cell
    box = np.diag(np.array(counts) * cell)
    return sites + 0.25 * a, box


class Reassignment(NamedTuple):
    """Result of :func:`reassign_species`: new per-particle species and their parameters."""

    species: np.ndarray
    params: SpeciesParams
    parent: np.ndarray  # (n_new,) original species of each new species


def reassign_species(
    rng: np.random.Generator, species: np.ndarray, params: SpeciesParams, n_new: int
) -> Reassignment:
    """Randomly split particles into ``n_new`` species, each a subset of one old species.

    This changes the parameterisation, not the state: new species inherit the diameter,
    k and B of their parent species, so the energy of every configuration is unchanged, and
    each new species is made of one size only (the parameterisation of "Fully independent
    response"). New species are shared among the old ones in proportion to their particle
    counts (at least one each); an old species' particles are dealt to its new species at
    random, as evenly as possible.
    """
    species = np.asarray(species)
    old = np.unique(species)
    counts = np.array([np.sum(species == s) for s in old])
    if n_new < len(old):
        raise ValueError(f"n_theta species ({n_new}) must be at least the {len(old)} old species")
    share = np.maximum(1, np.round(n_new * counts / counts.sum()).astype(int))
    while share.sum() != n_new:  # fix rounding on the largest (or a reducible) share
        if share.sum() < n_new:
            share[np.argmax(counts - share)] += 1
        else:
            share[np.argmax(np.where(share > 1, share, 0))] -= 1
    new_species = np.empty_like(species)
    parent = []
    offset = 0
    for s, m in zip(old, share, strict=True):
        members = rng.permutation(np.flatnonzero(species == s))
        if len(members) < m:
            raise ValueError(f"cannot make {m} species out of {len(members)} particles")
        for k, chunk in enumerate(np.array_split(members, m)):
            new_species[chunk] = offset + k
            parent.append(int(s))
        offset += m
    parent = np.array(parent)
    new = SpeciesParams(
        np.asarray(params.diameter)[parent],
        np.asarray(params.k)[np.ix_(parent, parent)],
        np.asarray(params.binding)[np.ix_(parent, parent)],
    )
    return Reassignment(new_species.astype(np.int32), new, parent)


def spring_network(
    i: np.ndarray, j: np.ndarray, contact: np.ndarray, lengths: np.ndarray, stiffness: float = 1.0
) -> tuple[Pairs, NetworkParams]:
    """Spring network on the contacts of a packing: one bond per contact pair.

    ``lengths`` are the pair distances at the packing's minimum, used as rest lengths, so
    the network is stress-free in that configuration.
    """
    import jax.numpy as jnp

    keep = np.flatnonzero(np.asarray(contact))
    bonds = Pairs(
        jnp.asarray(np.asarray(i)[keep], jnp.int32),
        jnp.asarray(np.asarray(j)[keep], jnp.int32),
        jnp.ones(len(keep), bool),
    )
    params = NetworkParams(
        jnp.full(len(keep), float(stiffness)), jnp.asarray(np.asarray(lengths)[keep])
    )
    return bonds, params


def default_params(n_species: int, diameters: list[float], k: float, binding: float):
    """Species parameters of a scenario (all pairs share ``k`` and ``binding``)."""
    return species_params(species_diameters(n_species, diameters), k=k, binding=binding)
