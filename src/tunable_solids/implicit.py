"""Derivatives through an energy minimum by implicit differentiation.

At a minimum ``R*(a)`` of ``E(R, a)`` the force vanishes, so for any tangent ``da``
``H dR = -(d^2 E / dR da) da``. :func:`at_minimum` returns ``R*`` unchanged and attaches
exactly that tangent (a matrix-free CG solve of the Hessian), never differentiating the
minimizer's iterations. It supports forward mode (``jax.jvp``, ``jax.jacfwd``) and, since
the solve is a ``lax.custom_linear_solve``, reverse mode (``jax.grad``, ``jax.jacrev``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax

from .energy import energy
from .linalg import hessian_vp, solve_psd

Array = jax.Array


@partial(jax.custom_jvp, nondiff_argnums=(0, 3))
def at_minimum(energy_fn: Callable, R_star: Array, args, cg_tol: float = 1e-12) -> Array:
    """Identity on ``R_star``, with the implicit derivative of the minimum w.r.t. ``args``.

    energy_fn: pure ``(R, args) -> scalar``; must not close over traced values.
    R_star:    ``(N, d)`` minimum of ``energy_fn(., args)`` (e.g. from :func:`minimize`);
               its own tangent is ignored (the minimum does not depend on the start).
    args:      pytree of everything the energy depends on (parameters, box, pair list...).
    """
    return R_star


@at_minimum.defjvp
def _at_minimum_jvp(energy_fn, cg_tol, primals, tangents):
    R_star, args = primals
    _, d_args = tangents
    # The primal output is at_minimum itself (not the raw R_star) so that an outer
    # transformation sees how the minimum moves: this makes higher derivatives
    # (jvp of jvp, hessians) of quantities at the minimum exact as well.
    R = at_minimum(energy_fn, R_star, args, cg_tol)
    force_grad = jax.grad(energy_fn, argnums=0)
    _, rhs = jax.jvp(lambda a: force_grad(R, a), (args,), (d_args,))
    hvp = hessian_vp(lambda x: energy_fn(x, args), R)
    dR = solve_psd(hvp, -rhs, tol=cg_tol)
    return R, dR


def particle_energy(potential, R: Array, args) -> Array:
    """``energy_fn`` for :func:`at_minimum`: ``args = (params, box, species, pairs)``."""
    params, box, species, pairs = args
    return energy(potential, R, box, params, species, pairs)
