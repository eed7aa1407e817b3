"""Derivatives through an energy minimum by implicit differentiation.

At a minimum ``R*(a)`` of ``E(R, a)`` the force vanishes, so for any tangent ``da``
``H dR = -(d^2 E / dR da) da``. :func:`at_minimum` returns ``R*`` unchanged and attaches
exactly that tangent (a matrix-free CG solve of the Hessian), never differentiating the
minimizer's iterations. It supports forward mode (``jax.jvp``, ``jax.jacfwd``) and, since
the solve is a ``lax.custom_linear_solve``, reverse mode (``jax.grad``, ``jax.jacrev``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import jax

from .energy import energy, hessian_operator
from .linalg import hessian_vp, solve_psd
from .multigrid import Plan, hessian_preconditioner
from .potentials import Potential

Array = jax.Array


@partial(jax.custom_jvp, nondiff_argnums=(0, 3))
def at_minimum(energy_fn: Callable, R_star: Array, args, cg_tol: float = 1e-12) -> Array:
    """Identity on ``R_star``, with the implicit derivative of the minimum w.r.t. ``args``.

    energy_fn: pure ``(R, args) -> scalar``; must not close over traced values. If it has
               ``hessian_vp(R, args)`` and ``preconditioner(R, args, hvp)`` methods
               (:class:`ParticleEnergy`), the solve uses them.
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
    precond = None
    if hasattr(energy_fn, "hessian_vp"):
        hvp = energy_fn.hessian_vp(R, args)
        precond = energy_fn.preconditioner(R, args, hvp)
    else:
        hvp = hessian_vp(lambda x: energy_fn(x, args), R)
    dR = solve_psd(hvp, -rhs, tol=cg_tol, precond=precond)
    return R, dR


@dataclass(frozen=True)
class ParticleEnergy:
    """``energy_fn`` of a pair potential for :func:`at_minimum`, with
    ``args = (params, box, species, pairs)``; its ``hessian_vp`` (the pair-structured
    :func:`energy.hessian_operator`) makes the implicit solve several times cheaper than
    the generic forward-over-reverse product; with a ``multigrid`` plan the solve is
    preconditioned (:mod:`multigrid`)."""

    potential: Potential
    multigrid: Plan | None = None

    def __call__(self, R: Array, args) -> Array:
        params, box, species, pairs = args
        return energy(self.potential, R, box, params, species, pairs)

    def hessian_vp(self, R: Array, args) -> Callable[[Array], Array]:
        params, box, species, pairs = args
        return hessian_operator(self.potential, R, box, params, species, pairs)

    def preconditioner(self, R: Array, args, hvp) -> Callable[[Array], Array] | None:
        """CG preconditioner for the Hessian with product ``hvp`` (None: plain CG)."""
        params, box, species, pairs = args
        return hessian_preconditioner(
            self.multigrid, hvp, self.potential, R, box, params, species, pairs
        )
