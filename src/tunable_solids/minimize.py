"""FIRE energy minimization with an on-the-fly pair list.

FIRE 2.0 (Guenole et al., Comput. Mater. Sci. 175, 109584 (2020)) with semi-implicit
Euler steps and unit masses, run inside one ``lax.while_loop`` until
``max_i |F_i| <= force_tol`` or ``max_steps``. The pair list carries a skin and is rebuilt
inside the loop when any particle has moved more than half the skin since the last build;
its capacity is a static shape, so repeated seeds of one scenario reuse one compilation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .energy import energy, max_force
from .linalg import cg_solve, hessian_vp
from .potentials import NetworkParams, Potential
from .space import Pairs, all_pairs, box_volume, neighbor_pairs, wrap

Array = jax.Array


@dataclass(frozen=True)
class FireOptions:
    """FIRE 2.0 parameters (time in units of sqrt(m sigma^2 / k))."""

    dt_start: float = 0.01
    dt_max: float = 0.1
    dt_min: float = 1e-5
    n_min: int = 5
    f_inc: float = 1.1
    f_dec: float = 0.5
    alpha_start: float = 0.1
    f_alpha: float = 0.99


@dataclass(frozen=True)
class MinimizeOptions:
    """Convergence criterion and pair-list settings of :func:`minimize`.

    force_tol: stop when ``max_i |F_i| <= force_tol`` (default 1e-12).
    max_steps: FIRE iterations before giving up (the state is then flagged unconverged).
    skin:      extra pair-list range, in units of the largest diameter.
    """

    force_tol: float = 1e-12
    max_steps: int = 200_000
    skin: float = 0.3
    fire: FireOptions = field(default_factory=FireOptions)


class Minimum(NamedTuple):
    """Result of a minimization. ``pairs`` is valid for ``positions`` (includes the skin)."""

    positions: Array
    energy: Array
    max_force: Array
    iterations: Array
    converged: Array
    pairs: Pairs


def interaction_range(potential: Potential, params) -> float:
    """Largest distance at which two particles interact, for the given parameters."""
    dmax = float(jnp.max(params.diameter))
    return float(potential.cutoff(jnp.asarray(dmax)))


def pair_capacity(n: int, dim: int, density: float, rc: float) -> int:
    """Pair-list capacity: >= 1.5x the ideal-gas count within ``rc`` plus slack, <= all pairs."""
    ball = math.pi * rc**2 if dim == 2 else 4.0 / 3.0 * math.pi * rc**3
    estimate = 0.5 * n * density * ball * 1.5 + 64
    # Round up to a sqrt(2)-spaced ladder: small density changes (pressure preparation,
    # other seeds) keep the same static shape and so the same compiled code.
    bucket = int(math.ceil(2.0 ** (math.ceil(2.0 * math.log2(estimate)) / 2.0)))
    return int(min(bucket, n * (n - 1) // 2))


@partial(jax.jit, static_argnames=("potential", "options", "capacity", "rebuild"))
def _fire(potential, options, capacity, rebuild, R, box, params, species, pairs, list_range):
    fire = options.fire
    grad = jax.grad(energy, argnums=1)

    def force(R, pairs):
        return -grad(potential, R, box, params, species, pairs)

    def cond(state):
        R, V, F, dt, alpha, n_pos, step, pairs, R_ref, overflow = state
        return (step < options.max_steps) & (max_force(F) > options.force_tol) & ~overflow

    def body(state):
        R, V, F, dt, alpha, n_pos, step, pairs, R_ref, overflow = state
        uphill = jnp.sum(F * V) <= 0.0
        n_pos = jnp.where(uphill, 0, n_pos + 1)
        accelerate = (~uphill) & (n_pos > fire.n_min)
        dt = jnp.where(
            uphill,
            jnp.maximum(dt * fire.f_dec, fire.dt_min),
            jnp.where(accelerate, jnp.minimum(dt * fire.f_inc, fire.dt_max), dt),
        )
        alpha = jnp.where(
            uphill, fire.alpha_start, jnp.where(accelerate, alpha * fire.f_alpha, alpha)
        )
        R = jnp.where(uphill, R - 0.5 * dt * V, R)
        V = jnp.where(uphill, 0.0, V)
        V = V + dt * F
        v_norm = jnp.linalg.norm(V)
        f_norm = jnp.linalg.norm(F)
        V = (1.0 - alpha) * V + alpha * v_norm * F / jnp.where(f_norm > 0, f_norm, 1.0)
        R = R + dt * V
        if rebuild:
            moved = jnp.max(jnp.sum((R - R_ref) ** 2, axis=-1))
            stale = moved > (0.5 * (list_range[1] - list_range[0])) ** 2

            def fresh(_):
                new, count = neighbor_pairs(R, box, list_range[1], capacity)
                return new, R, count > capacity

            pairs, R_ref, over = jax.lax.cond(
                stale, fresh, lambda _: (pairs, R_ref, jnp.asarray(False)), None
            )
            overflow = overflow | over
        return R, V, force(R, pairs), dt, alpha, n_pos, step + 1, pairs, R_ref, overflow

    F0 = force(R, pairs)
    state = (
        R,
        jnp.zeros_like(R),
        F0,
        jnp.asarray(fire.dt_start),
        jnp.asarray(fire.alpha_start),
        jnp.asarray(0),
        jnp.asarray(0),
        pairs,
        R,
        jnp.asarray(False),
    )
    R, V, F, dt, alpha, n_pos, step, pairs, R_ref, overflow = jax.lax.while_loop(cond, body, state)
    E = energy(potential, R, box, params, species, pairs)
    fmax = max_force(F)
    return R, E, fmax, step, fmax <= options.force_tol, pairs, overflow


def minimize(
    potential: Potential,
    R: Array,
    box: Array,
    params,
    species: Array | None,
    options: MinimizeOptions = MinimizeOptions(),
    bonds: Pairs | None = None,
) -> Minimum:
    """Minimize the energy over positions at fixed box and parameters.

    R: ``(N, d)`` start positions; box: ``(d, d)``; species: ``(N,)`` int (None for networks).
    For spring networks pass ``bonds`` (the fixed pair list); otherwise a pair list with
    skin ``options.skin`` is built and maintained. Returned positions are wrapped into the box.
    """
    R = jnp.asarray(R, jnp.float64)
    box = jnp.asarray(box, jnp.float64)
    n, dim = R.shape
    if bonds is not None or isinstance(params, NetworkParams):
        if bonds is None:
            raise ValueError("a spring network needs its bonds")
        out = _fire(
            potential, options, len(bonds.i), False, R, box, params, species, bonds, jnp.zeros(2)
        )
    else:
        rc = interaction_range(potential, params)
        dmax = float(jnp.max(params.diameter))
        list_range = jnp.asarray([rc, rc + options.skin * dmax])
        density = n / float(box_volume(box))
        capacity = pair_capacity(n, dim, density, float(list_range[1]))
        while True:
            if capacity >= n * (n - 1) // 2:
                pairs, rebuild = all_pairs(n), False
            else:
                pairs, count = neighbor_pairs(R, box, list_range[1], capacity)
                rebuild = True
                if int(count) > capacity:
                    capacity = 2 * int(count)
                    continue
            out = _fire(
                potential,
                options,
                len(pairs.i),
                rebuild,
                R,
                box,
                params,
                species,
                pairs,
                list_range,
            )
            if not bool(out[-1]):
                break
            capacity *= 2
    Rm, E, fmax, steps, converged, pairs, _ = out
    return Minimum(wrap(Rm, box), E, fmax, steps, converged, pairs)


@partial(jax.jit, static_argnames=("potential",))
def _newton_step(potential, R, box, params, species, pairs, cg_tol):
    def e(x):
        return energy(potential, x, box, params, species, pairs)

    F = -jax.grad(e)(R)
    dx = cg_solve(hessian_vp(e, R), F, tol=cg_tol, max_iter=20 * R.size)
    R_new = R + dx
    F_new = -jax.grad(e)(R_new)
    return R_new, e(R_new), max_force(F_new)


def polish(
    potential: Potential,
    m: Minimum,
    box: Array,
    params,
    species: Array | None,
    steps: int = 4,
    cg_tol: float = 1e-6,
) -> Minimum:
    """Newton-Krylov refinement of a minimum: ``R += H^+ F`` (matrix-free CG), up to ``steps``
    times, keeping a step only if it lowers ``max|F|``.

    Each step reduces the force by about ``cg_tol``, taking FIRE's ``1e-12`` to the round-off
    floor (~1e-15) in one or two steps; used where finite differences of minimized quantities
    need positions converged far below the finite-difference step. A loose ``cg_tol`` is
    deliberate: residual forces on (near-)rattlers lie outside the range of H, and a tight
    solve would amplify them along those zero modes.
    """
    R, E, fmax = m.positions, m.energy, m.max_force
    for _ in range(steps):
        R_new, E_new, f_new = _newton_step(potential, R, box, params, species, m.pairs, cg_tol)
        if not bool(f_new < fmax):
            break
        R, E, fmax = R_new, E_new, f_new
    return m._replace(positions=wrap(R, box), energy=E, max_force=fmax)
