"""Matrix-free linear algebra at an energy minimum.

The Hessian is never formed on these paths: ``hessian_vp`` is a forward-over-reverse
Hessian-vector product, and :func:`conjugate_gradients` solves ``H x = b`` (optionally
preconditioned, see :mod:`multigrid`).
The Hessian of a periodic system is singular (``d`` global translations, plus rattlers);
right-hand sides built from forces are orthogonal to those zero modes, CG started from 0
stays in the range of H, and the mean translation is projected out of every iterate so
round-off cannot accumulate along it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


def remove_translation(x: Array) -> Array:
    """Subtract the mean displacement over particles from an ``(N, d)`` field."""
    return x - jnp.mean(x, axis=0, keepdims=True)


def hessian_vp(energy_of_R: Callable[[Array], Array], R: Array) -> Callable[[Array], Array]:
    """``v -> H v`` for ``H = d^2 E / dR^2`` at ``R``; ``v`` has the shape of ``R``."""
    grad = jax.grad(energy_of_R)
    return lambda v: jax.jvp(grad, (R,), (v,))[1]


class CGResult(NamedTuple):
    """Solution ``x`` (translation removed), iterations taken, final ``|r| / |b|``."""

    x: Array
    iterations: Array
    residual: Array


def conjugate_gradients(
    matvec: Callable[[Array], Array],
    b: Array,
    tol: float,
    max_iter: int,
    precond: Callable[[Array], Array] | None = None,
) -> CGResult:
    """(Preconditioned) conjugate gradients for symmetric positive semi-definite ``matvec``.

    Stops when ``|r| <= tol |b|`` (Euclidean norms of the true recursion residual over all
    components) or after ``max_iter`` iterations; callers check the residual they need
    independently. ``precond`` (symmetric positive semi-definite, e.g. the multigrid
    V-cycle of :mod:`multigrid`) changes only how fast that criterion is met.
    """
    M = (lambda r: r) if precond is None else (lambda r: remove_translation(precond(r)))
    b = remove_translation(b)
    bb = jnp.vdot(b, b)
    x = jnp.zeros_like(b)
    z = M(b)

    def cond(state):
        _, r, _, _, k = state
        return (jnp.vdot(r, r) > tol**2 * bb) & (k < max_iter)

    def body(state):
        x, r, p, rz, k = state
        Ap = remove_translation(matvec(p))
        pAp = jnp.vdot(p, Ap)
        step = rz / jnp.where(pAp != 0, pAp, 1.0)
        x = x + step * p
        r = r - step * Ap
        z = M(r)
        rz_new = jnp.vdot(r, z)
        p = z + (rz_new / jnp.where(rz != 0, rz, 1.0)) * p
        return x, r, p, rz_new, k + 1

    x, r, _, _, k = jax.lax.while_loop(cond, body, (x, b, z, jnp.vdot(b, z), 0))
    return CGResult(remove_translation(x), k, jnp.sqrt(jnp.vdot(r, r) / jnp.maximum(bb, 1e-300)))


def solve_psd(
    matvec: Callable[[Array], Array],
    b: Array,
    tol: float = 1e-12,
    max_iter: int = 100_000,
    precond: Callable[[Array], Array] | None = None,
) -> Array:
    """``H^+ b`` on the range of ``H``, differentiable by implicit (not unrolled) rules.

    Wrapped in ``lax.custom_linear_solve``: derivatives of the solution w.r.t. anything
    ``matvec`` or ``b`` depend on are themselves solves with the same operator (and the
    same preconditioner, which is not differentiated).
    """

    def solve(mv, rhs):
        return conjugate_gradients(mv, rhs, tol, max_iter, precond).x

    return jax.lax.custom_linear_solve(matvec, b, solve, symmetric=True)


def relative_residual(matvec: Callable[[Array], Array], x: Array, b: Array) -> Array:
    """``|H x - b| / |b|`` after removing translations (a check independent of the solver)."""
    b = remove_translation(b)
    r = remove_translation(matvec(x)) - b
    return jnp.sqrt(jnp.vdot(r, r) / jnp.maximum(jnp.vdot(b, b), 1e-300))


@jax.custom_jvp
def eigvalsh(H: Array) -> Array:
    """Ascending eigenvalues of a symmetric matrix, with first-order perturbation theory as
    derivative: ``d lambda_i = v_i^T dH v_i``.

    Unlike differentiating ``jnp.linalg.eigh``, this stays finite for degenerate eigenvalues
    (there the individual derivative depends on the basis chosen inside the degenerate
    subspace; callers flag such cases by the eigenvalue gap).
    """
    return jnp.linalg.eigvalsh(H)


@eigvalsh.defjvp
def _eigvalsh_jvp(primals, tangents):
    (H,), (dH,) = primals, tangents
    w, V = jnp.linalg.eigh(H)
    dH = 0.5 * (dH + dH.T)
    return w, jnp.einsum("ji,jk,ki->i", V, dH, V)
