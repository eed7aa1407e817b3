"""Pseudo-harmonic modes: minima of ``C(z) = (M : zz)^2 / sum_<ij> (z_ij . z_ij)^2`` (paper Eq. 14).

``z`` is an ``(n, d)`` field, ``M`` the Hessian of a :class:`operator.BondNetwork`, the sum
runs over its bonds and ``z_ij = z_i - z_j``. ``C`` is invariant under ``z -> c z`` and under
global translations. It is minimized by nonlinear conjugate gradients (Polak-Ribiere+) with
an exact line search: along ``z + t p`` both numerator and denominator are polynomials in
``t`` (degrees 4 and 4), so the stationary points of ``C(t)`` are the real roots of a
degree-5 polynomial and the line minimum is found to round-off, with no step-size parameter.

Resolution: ``C`` is a ratio of sums over all bonds, so it is known to ~1e-14 relative; near
a minimum ``C - C* ~ |grad C|^2``, so the scale-free gradient cannot be driven much below
~1e-7 (measured: 2D harmonic spheres, N = 128, floor 3e-7 after ~300 iterations). The
default stopping tolerance 1e-6 sits above that floor; the search also stops when the line
minimum no longer lowers ``C`` (a stall, reported through ``gradient``).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .operator import BondNetwork, hessian_apply

Array = jax.Array


def pseudo_harmonic_cost(net: BondNetwork, z: Array) -> Array:
    """``C(z)`` of paper Eq. 14 (dimension of a stiffness squared over length^0)."""
    dz = z[net.i] - z[net.j]
    den = jnp.sum(jnp.sum(dz * dz, axis=-1) ** 2)
    return jnp.vdot(z, hessian_apply(net, z)) ** 2 / den


def _line_minimum(net: BondNetwork, z: Array, p: Array) -> Array:
    """Step ``t`` minimizing ``C(z + t p)`` exactly (0 if no real stationary point lowers it)."""
    Mz, Mp = hessian_apply(net, z), hessian_apply(net, p)
    q = jnp.stack([jnp.vdot(p, Mp), 2.0 * jnp.vdot(z, Mp), jnp.vdot(z, Mz)])  # highest first
    dz, dp = z[net.i] - z[net.j], p[net.i] - p[net.j]
    al, be, ga = (jnp.sum(dz * dz, -1), jnp.sum(dz * dp, -1), jnp.sum(dp * dp, -1))
    Q = jnp.stack(
        [
            jnp.sum(ga * ga),
            jnp.sum(4.0 * be * ga),
            jnp.sum(4.0 * be * be + 2.0 * al * ga),
            jnp.sum(4.0 * al * be),
            jnp.sum(al * al),
        ]
    )
    P5 = 2.0 * jnp.polymul(jnp.polyder(q), Q) - jnp.polymul(q, jnp.polyder(Q))
    P5 = P5 / jnp.max(jnp.abs(P5))
    roots = jnp.roots(P5, strip_zeros=False)
    real = jnp.isfinite(roots) & (jnp.abs(roots.imag) <= 1e-6 * (1.0 + jnp.abs(roots.real)))
    t = jnp.where(real, roots.real, 0.0)
    dP5 = jnp.polyder(P5)
    for _ in range(3):  # Newton polish: companion-matrix roots lose digits when clustered
        slope = jnp.polyval(dP5, t)
        t = t - jnp.where(slope != 0.0, jnp.polyval(P5, t) / jnp.where(slope != 0, slope, 1), 0.0)
    cost = jnp.polyval(q, t) ** 2 / jnp.polyval(Q, t)
    cost = jnp.where(real & jnp.isfinite(cost), cost, jnp.inf)
    best = jnp.argmin(cost)
    c0 = q[2] ** 2 / Q[4]
    return jnp.where(cost[best] < c0, t[best], 0.0)


class PseudoHarmonicMode(NamedTuple):
    """A pseudo-harmonic mode: ``z`` ``(n, d)`` (unit norm), its ``cost`` ``C(z)``, the cost
    at the start ``cost_start``, ``iterations`` and the final scale-free gradient
    ``|grad C| |z| / C`` (``gradient``: 0 at a stationary point)."""

    z: Array
    cost: Array
    cost_start: Array
    iterations: Array
    gradient: Array


def _relative_gradient(g: Array, z: Array, c: Array) -> Array:
    return jnp.linalg.norm(g) * jnp.linalg.norm(z) / c


@partial(jax.jit, static_argnames=("max_iter",))
def pseudo_harmonic_mode(
    net: BondNetwork, z0: Array, tol: float = 1e-6, max_iter: int = 5_000
) -> PseudoHarmonicMode:
    """Minimize ``C`` from ``z0`` (e.g. a displacement mode ``D``) until the scale-free
    gradient ``|grad C| |z| / C <= tol``, a stall or ``max_iter`` iterations."""
    value_and_grad = jax.value_and_grad(partial(pseudo_harmonic_cost, net))
    z0 = z0 / jnp.linalg.norm(z0)
    c0, g0 = value_and_grad(z0)

    def cond(s):
        z, g, _, c, k, stalled = s
        return (_relative_gradient(g, z, c) > tol) & (k < max_iter) & ~stalled

    def body(s):
        z, g, p, _, k, _ = s
        p = jnp.where(jnp.vdot(p, g) < 0.0, p, -g)  # restart along -g if not a descent
        t = _line_minimum(net, z, p)
        # No progress along the conjugate direction: restart along -g before giving up.
        p = jnp.where(t == 0.0, -g, p)
        t = jnp.where(t == 0.0, _line_minimum(net, z, p), t)
        z_new = z + t * p
        scale = jnp.linalg.norm(z_new)
        z_new = z_new / scale
        c_new, g_new = value_and_grad(z_new)
        beta = jnp.maximum(jnp.vdot(g_new, g_new - g) / jnp.vdot(g, g), 0.0)
        # C(c z) = C(z) and grad C(c z) = grad C(z) / c: rescale p with z.
        return z_new, g_new, -g_new + beta * p / scale, c_new, k + 1, t == 0.0

    z, g, _, c, k, _ = jax.lax.while_loop(cond, body, (z0, g0, -g0, c0, 0, False))
    return PseudoHarmonicMode(z, c, c0, k, _relative_gradient(g, z, c))
