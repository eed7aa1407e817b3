"""Matrix-free linear algebra at an energy minimum.

The Hessian is never formed on these paths: ``hessian_vp`` is a forward-over-reverse
Hessian-vector product, and :func:`cg_solve` solves ``H x = b`` by conjugate gradients.
The Hessian of a periodic system is singular (``d`` global translations, plus rattlers);
right-hand sides built from forces are orthogonal to those zero modes, CG started from 0
stays in the range of H, and the mean translation is projected out of every iterate so
round-off cannot accumulate along it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

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


def cg_solve(matvec: Callable[[Array], Array], b: Array, tol: float, max_iter: int) -> Array:
    """Conjugate gradients for symmetric positive semi-definite ``matvec``.

    Stops when ``|r| <= tol |b|`` (Euclidean norms over all components) or after
    ``max_iter`` iterations; callers check the residual they need independently.
    """
    b = remove_translation(b)
    b_norm = jnp.sqrt(jnp.vdot(b, b))
    x = jnp.zeros_like(b)

    def cond(state):
        _, r, _, rr, k = state
        return (jnp.sqrt(rr) > tol * b_norm) & (k < max_iter)

    def body(state):
        x, r, p, rr, k = state
        Ap = remove_translation(matvec(p))
        pAp = jnp.vdot(p, Ap)
        step = rr / jnp.where(pAp != 0, pAp, 1.0)
        x = x + step * p
        r = r - step * Ap
        rr_new = jnp.vdot(r, r)
        p = r + (rr_new / jnp.where(rr != 0, rr, 1.0)) * p
        return x, r, p, rr_new, k + 1

    x, *_ = jax.lax.while_loop(cond, body, (x, b, b, jnp.vdot(b, b), 0))
    return remove_translation(x)


def solve_psd(
    matvec: Callable[[Array], Array], b: Array, tol: float = 1e-12, max_iter: int = 100_000
) -> Array:
    """``H^+ b`` on the range of ``H``, differentiable by implicit (not unrolled) rules.

    Wrapped in ``lax.custom_linear_solve``: derivatives of the solution w.r.t. anything
    ``matvec`` or ``b`` depend on are themselves solves with the same operator.
    """
    solve = partial(cg_solve, tol=tol, max_iter=max_iter)
    return jax.lax.custom_linear_solve(matvec, b, lambda mv, rhs: solve(mv, rhs), symmetric=True)


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
