"""Total and per-pair potential energy of a configuration.

The energy is written as a function of the minimum-image pair vectors, so an affine
strain ``eps`` (symmetric ``(d, d)``) enters as ``dr -> (I + eps) dr``: the same code gives
forces (d/dR), the stress (d/d eps) and the mixed derivatives of the elastic tensor.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .potentials import Potential, pair_parameters
from .space import Pairs, pair_vectors

Array = jax.Array

# Distance given to empty pair slots: beyond every cutoff, and keeps sqrt differentiable.
_FAR = 1.0e6


def pair_energies(
    potential: Potential, dr: Array, params, species: Array | None, pairs: Pairs
) -> Array:
    """Energy of each pair slot, ``(P,)``; empty slots (``mask == False``) give 0."""
    d2 = jnp.where(pairs.mask, jnp.sum(dr**2, axis=-1), _FAR**2)
    r = jnp.sqrt(d2)
    pp = pair_parameters(params, species, pairs.i, pairs.j)
    return jnp.where(pairs.mask, potential.pair_energy(r, pp), 0.0)


def strained(dr: Array, strain: Array | None) -> Array:
    """Apply the affine map ``I + strain`` to pair vectors ``dr`` of shape ``(P, d)``."""
    if strain is None:
        return dr
    return dr + dr @ strain.T


def energy(
    potential: Potential,
    R: Array,
    box: Array,
    params,
    species: Array | None,
    pairs: Pairs,
    strain: Array | None = None,
) -> Array:
    """Total potential energy (scalar) of positions ``R`` (N, d) in ``box`` under ``strain``."""
    dr = strained(pair_vectors(R, box, pairs), strain)
    return jnp.sum(pair_energies(potential, dr, params, species, pairs))


def forces(potential, R, box, params, species, pairs) -> Array:
    """Forces ``-dE/dR``, shape ``(N, d)``."""
    return -jax.grad(energy, argnums=1)(potential, R, box, params, species, pairs)


def max_force(F: Array) -> Array:
    """Largest force magnitude over particles, ``max_i |F_i|`` (the convergence measure)."""
    return jnp.sqrt(jnp.max(jnp.sum(F**2, axis=-1)))
