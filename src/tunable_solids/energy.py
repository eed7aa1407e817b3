"""Total and per-pair potential energy of a configuration.

The energy is written as a function of the minimum-image pair vectors, so an affine
strain ``eps`` (symmetric ``(d, d)``) enters as ``dr -> (I + eps) dr``: the same code gives
forces (d/dR), the stress (d/d eps) and the mixed derivatives of the elastic tensor.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .general import GeneralEnergy, is_general
from .linalg import hessian_vp
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
    """Total potential energy (scalar) of positions ``R`` (N, d) in ``box`` under ``strain``.

    ``potential`` may also be a :class:`general.GeneralEnergy`; then ``species`` is unused and
    ``pairs`` is the energy's neighbor state.
    """
    if is_general(potential):
        return potential(R, box, params, pairs, strain)
    dr = strained(pair_vectors(R, box, pairs), strain)
    return jnp.sum(pair_energies(potential, dr, params, species, pairs))


def forces(potential, R, box, params, species, pairs) -> Array:
    """Forces ``-dE/dR``, shape ``(N, d)``."""
    return -jax.grad(energy, argnums=1)(potential, R, box, params, species, pairs)


def max_force(F: Array) -> Array:
    """Largest force magnitude over particles, ``max_i |F_i|`` (the convergence measure)."""
    return jnp.sqrt(jnp.max(jnp.sum(F**2, axis=-1)))


def stiffness_coefficients(potential: Potential, R: Array, box: Array, pairs: Pairs, pp):
    """Per pair: ``a = u'' - u'/r``, ``b = u'/r`` (zero on empty slots) and the unit vector
    ``n``, so that the pair's Hessian block is ``K = a n n^T + b I``."""
    dr = pair_vectors(R, box, pairs)
    r = jnp.sqrt(jnp.where(pairs.mask, jnp.sum(dr**2, axis=-1), _FAR**2))
    du_fn = jax.grad(lambda x: jnp.sum(potential.pair_energy(x, pp)))
    du, d2u = jax.jvp(du_fn, (r,), (jnp.ones_like(r),))
    n = dr / r[:, None]
    b = jnp.where(pairs.mask, du / r, 0.0)
    a = jnp.where(pairs.mask, d2u, 0.0) - b
    return a, b, n


def pair_stiffness(potential: Potential, R: Array, box: Array, pairs: Pairs, pp) -> Array:
    """Hessian block ``K_p = u'' n n^T + (u'/r)(I - n n^T)`` of every pair slot, ``(P, d, d)``
    (zero on empty slots): ``H = sum_p (e_i - e_j)(e_i - e_j)^T (x) K_p``."""
    a, b, n = stiffness_coefficients(potential, R, box, pairs, pp)
    eye = jnp.eye(R.shape[1], dtype=R.dtype)
    return a[:, None, None] * n[:, :, None] * n[:, None, :] + b[:, None, None] * eye


def pair_hessian_vp(potential: Potential, R: Array, box: Array, pairs: Pairs, pp):
    """``v -> H v`` for the Hessian of the pair energy at ``R`` (``v`` of shape ``(N, d)``),
    given the per-pair parameters ``pp`` (:func:`potentials.pair_parameters`).

    Pair-structured and matrix-free: each pair contributes
    ``u''(r) (n . dv) n + (u'(r) / r) (dv - (n . dv) n)`` with ``dv = v_i - v_j``; the
    per-pair coefficients are computed once (autodiff of ``pair_energy`` in ``r`` only), so
    a product costs one gather/scatter pass. A CG solve to 1e-12 with it was measured 2.7x
    (2D harmonic-Morse, N = 368) and 3.7x (3D soft spheres, N = 256) faster than with
    forward-over-reverse differentiation of :func:`energy`; the products agree to round-off
    (tests/core/test_performance_paths.py). Differentiable in ``R``, ``box`` and ``pp``.
    """
    a, b, n = stiffness_coefficients(potential, R, box, pairs, pp)

    def hvp(v):
        dv = v[pairs.i] - v[pairs.j]
        t = (a * jnp.sum(n * dv, axis=-1))[:, None] * n + b[:, None] * dv
        return jnp.zeros_like(v).at[pairs.i].add(t).at[pairs.j].add(-t)

    return hvp


def hessian_operator(
    potential: Potential, R: Array, box: Array, params, species: Array | None, pairs: Pairs
):
    """:func:`pair_hessian_vp` from species-level ``params``: the operator of every CG
    solve at a minimum (elastic constants, implicit derivatives). For a
    :class:`general.GeneralEnergy` the forward-over-reverse autodiff product."""
    if is_general(potential):
        return hessian_vp(lambda x: potential(x, box, params, pairs), R)
    return pair_hessian_vp(
        potential, R, box, pairs, pair_parameters(params, species, pairs.i, pairs.j)
    )


def as_general(potential: Potential, species: Array | None, pairs: Pairs) -> GeneralEnergy:
    """The pair potential on the general path: a :class:`general.GeneralEnergy` over the fixed
    pair list ``pairs`` (autodiff Hessian products, no multigrid). For cross-checks of the
    fast path; ``pairs`` must hold every pair that can interact in the states it is used at
    (e.g. :func:`space.all_pairs`)."""
    species = None if species is None else jnp.asarray(species)
    return GeneralEnergy(
        lambda R, box, params: energy(potential, R, box, params, species, pairs),
        name=f"{type(potential).__name__} (general path)",
    )
