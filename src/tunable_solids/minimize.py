"""FIRE energy minimization with an on-the-fly pair list, optionally Newton-Krylov finished.

FIRE 2.0 (Guenole et al., Comput. Mater. Sci. 175, 109584 (2020)) with semi-implicit
Euler steps and unit masses, run inside one ``lax.while_loop`` until
``max_i |F_i| <= force_tol`` or ``max_steps``. The pair list carries a skin and is rebuilt
inside the loop when the two largest displacements since the last build add up to more
than the skin (dense ``N^2`` builder for small N, an O(N) cell list for large N); its
capacity is a static shape, so repeated seeds of one scenario reuse one compilation.

The step cap adapts to the stiffness: once ``max|F| <= AUTO_DT_FORCE`` it becomes
``FireOptions.dt_auto / sqrt(lambda_max)`` (half the leapfrog stability limit for
``dt_auto = 1``), with ``lambda_max`` the Hessian's largest eigenvalue there. A fixed cap
suits one potential's stiffness only: 0.1 is ~0.2 of the limit for soft spheres, so 3D soft
spheres took 3.7x (N = 256, benchmarks/minimize.py) to 4.5x (N = 2048) more FIRE iterations
with it.

With ``MinimizeOptions.newton_tol > 0`` FIRE stops at ``max|F| <= newton_tol`` and Newton
steps ``R += H^+ F`` (matrix-free conjugate gradients on Hessian-vector products,
multigrid-preconditioned from :data:`multigrid.MIN_PARTICLES` particles) take the
force to ``force_tol``; a Newton step is only kept if it lowers ``max|F|``, and if Newton
does not finish the job (negative curvature, no progress) FIRE continues, so the
convergence criterion ``max|F| <= force_tol`` is the same either way.

:func:`minimize_batch` minimizes several configurations of the same shape (same box,
parameters and species) in one vectorized loop; it returns the same minima as
:func:`minimize` called on each of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import multigrid
from .energy import pair_hessian_vp, pair_stiffness
from .general import GeneralEnergy, is_general
from .linalg import conjugate_gradients, hessian_vp, remove_translation
from .potentials import NetworkParams, Potential, pair_parameters
from .space import (
    Pairs,
    all_pairs,
    box_volume,
    bucket,
    cell_grid,
    max_row_occupancy,
    neighbor_pairs,
    pair_vectors,
    squared_norm,
    wrap,
)

Array = jax.Array

# Distance given to empty pair slots (as in energy.py): beyond every cutoff.
_FAR = 1.0e6
# Particles from which the cell list replaces the dense N^2 pair-list builder.
CELL_LIST_MIN_N = 2048


@dataclass(frozen=True)
class FireOptions:
    """FIRE 2.0 parameters (time in units of sqrt(m sigma^2 / k), forces in k sigma).

    ``dt_max`` caps the step until the forces first fall to ``max|F| <= AUTO_DT_FORCE``;
    from then on the cap is ``dt_auto / sqrt(lambda_max)``, with ``lambda_max`` the largest
    Hessian eigenvalue there (power iteration), clamped to ``[dt_max, 10 dt_max]``.
    ``dt_auto = 1`` is half the stability limit ``2 / omega_max`` of the leapfrog step;
    ``dt_auto = 0`` keeps ``dt_max`` throughout (the classic FIRE setting).
    """

    dt_start: float = 0.01
    dt_max: float = 0.1
    dt_auto: float = 1.0
    dt_min: float = 1e-5
    n_min: int = 5
    f_inc: float = 1.1
    f_dec: float = 0.5
    alpha_start: float = 0.1
    f_alpha: float = 0.99


# Force below which the step cap adapts to the stiffness (FireOptions.dt_auto): the largest
# Hessian eigenvalue there is already close to that of the minimum (N = 2048, same start:
# 9.6% below it for 3D soft spheres, 0.3% for 2D harmonic-Morse), and reaching it takes a
# few hundred steps (164 and 278).
AUTO_DT_FORCE = 0.1
# Power iterations of the lambda_max estimate (an underestimate by a few percent at most).
AUTO_DT_POWER_STEPS = 50


@dataclass(frozen=True)
class MinimizeOptions:
    """Convergence criterion and pair-list settings of :func:`minimize`.

    force_tol:    stop when ``max_i |F_i| <= force_tol`` (default 1e-12).
    max_steps:    FIRE iterations before giving up (the state is then flagged unconverged).
    skin:         extra pair-list range, in units of the largest diameter.
    newton_tol:   if > 0, FIRE hands over to Newton-Krylov steps at ``max|F| <= newton_tol``
                  (FIRE resumes if Newton stalls); 0 = FIRE all the way.
    newton_steps: at most this many Newton steps.
    newton_cg_tol: relative residual of each Newton step's CG solve.
    """

    force_tol: float = 1e-12
    max_steps: int = 200_000
    skin: float = 0.3
    fire: FireOptions = field(default_factory=FireOptions)
    newton_tol: float = 0.0
    newton_steps: int = 6
    newton_cg_tol: float = 1e-4


class Minimum(NamedTuple):
    """Result of a minimization. ``pairs`` is valid for ``positions`` (includes the skin).

    ``iterations`` counts FIRE steps plus Newton steps (each Newton step is one linear
    solve of ``cg_iterations`` Hessian-vector products in total).
    """

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
    """Pair-list capacity: >= 1.2x the ideal-gas count within ``rc`` plus slack, <= all pairs.

    Homogeneous liquids and packings hold about the ideal-gas count of pairs within a few
    diameters (measured: 0.97-1.0 of it at ``rc + skin``), so 1.2x leaves ample room; a
    strongly clustered system that overflows is redone with a larger capacity (correct, only
    slower). Every slot costs as much as a real pair in the force and Hessian-vector kernels.
    """
    ball = math.pi * rc**2 if dim == 2 else 4.0 / 3.0 * math.pi * rc**3
    estimate = 0.5 * n * density * ball * 1.2 + 64
    # Round up to a 2^(1/4)-spaced ladder: small density changes (pressure preparation,
    # other seeds) keep the same static shape and so the same compiled code.
    return int(min(bucket(estimate), n * (n - 1) // 2))


# --------------------------------------------------------------------------- force kernel
def pair_energy_sum(potential, R: Array, box: Array, pairs: Pairs, pp) -> Array:
    """Total energy from cached per-pair parameters ``pp`` (same value as
    :func:`energy.energy`, written for speed: see :mod:`space`)."""
    dr = pair_vectors(R, box, pairs)
    r = jnp.sqrt(jnp.where(pairs.mask, squared_norm(dr), _FAR**2))
    return jnp.sum(jnp.where(pairs.mask, potential.pair_energy(r, pp), 0.0))


def pair_forces(potential, R: Array, box: Array, pairs: Pairs, pp) -> Array:
    """Forces ``-dE/dR`` ``(N, d)`` from cached per-pair parameters.

    ``u'(r)`` of every pair slot by autodiff of the pair energy alone, then ``f = u' dr / r``
    scattered onto both particles: about 2x cheaper on CPU than differentiating the total
    energy, with the same result up to round-off.
    """
    dr = pair_vectors(R, box, pairs)
    r = jnp.sqrt(jnp.where(pairs.mask, squared_norm(dr), _FAR**2))
    du = jax.grad(lambda x: jnp.sum(potential.pair_energy(x, pp)))(r)
    f = jnp.where(pairs.mask, du / r, 0.0)[:, None] * dr
    return jnp.zeros_like(R).at[pairs.i].add(-f).at[pairs.j].add(f)


def _dot(x, y):
    """Row-wise dot product over the short last axis, component by component."""
    out = x[..., 0] * y[..., 0]
    for k in range(1, x.shape[-1]):
        out = out + x[..., k] * y[..., k]
    return out


def _stale(R: Array, R_ref: Array, skin) -> Array:
    """Whether the pair list built at ``R_ref`` with ``skin`` may miss a pair at ``R``.

    A pair's distance changes by at most the sum of its two particles' displacements, so
    the list stays complete while the two largest displacements sum to at most ``skin``
    (the usual test, twice the largest, rebuilds up to 2x more often when few particles
    move far).
    """
    d2 = squared_norm(R - R_ref)
    k = jnp.argmax(d2)
    return jnp.sqrt(d2[k]) + jnp.sqrt(jnp.max(d2.at[k].set(0.0))) > skin


def _max_force(F):
    return jnp.sqrt(jnp.max(squared_norm(F)))


# --------------------------------------------------------------------------- the loop
class _Static(NamedTuple):
    """Everything that is a static shape / option of the compiled loop (hashable)."""

    potential: object
    options: MinimizeOptions
    capacity: int
    row_capacity: int  # 0: dense builder
    rebuild: bool
    multigrid: multigrid.Plan | None = None  # preconditioner of the Newton solves


class _State(NamedTuple):
    R: Array
    V: Array
    F: Array
    dt: Array
    dt_max: Array
    alpha: Array
    n_pos: Array
    step: Array
    pairs: Pairs
    pp: object
    R_ref: Array
    overflow: Array
    newton: Array  # Newton steps taken


def _build(static: _Static, R, box, params, species, list_range):
    pairs, count = neighbor_pairs(
        R, box, list_range[1], static.capacity, static.row_capacity or None
    )
    return pairs, pair_parameters(params, species, pairs.i, pairs.j), count > static.capacity


def _fire_update(fire: FireOptions, R, V, F, dt, dt_max, alpha, n_pos):
    """One FIRE 2.0 step of one configuration (semi-implicit Euler, unit masses) given the
    forces ``F`` at ``R``; returns the new ``R, V, dt, alpha, n_pos``."""
    uphill = jnp.sum(F * V) <= 0.0
    n_pos = jnp.where(uphill, 0, n_pos + 1)
    accelerate = (~uphill) & (n_pos > fire.n_min)
    dt = jnp.where(
        uphill,
        jnp.maximum(dt * fire.f_dec, fire.dt_min),
        jnp.where(accelerate, jnp.minimum(dt * fire.f_inc, dt_max), dt),
    )
    alpha = jnp.where(uphill, fire.alpha_start, jnp.where(accelerate, alpha * fire.f_alpha, alpha))
    R = jnp.where(uphill, R - 0.5 * dt * V, R)
    V = jnp.where(uphill, 0.0, V)
    V = V + dt * F
    v_norm = jnp.sqrt(jnp.sum(V * V))
    f_norm = jnp.sqrt(jnp.sum(F * F))
    V = (1.0 - alpha) * V + alpha * v_norm * F / jnp.where(f_norm > 0, f_norm, 1.0)
    R = R + dt * V
    return R, V, dt, alpha, n_pos


def _fire_loop(static: _Static, state: _State, tol, box, params, species, list_range):
    """FIRE on a batch of states (leading axis B) until each has ``max|F| <= tol``."""
    fire = static.options.fire
    max_steps = static.options.max_steps
    forces = jax.vmap(partial(pair_forces, static.potential), in_axes=(0, None, 0, 0))
    skin = list_range[1] - list_range[0]

    def active(s):
        return (s.step < max_steps) & (jax.vmap(_max_force)(s.F) > tol) & ~s.overflow

    def update(s: _State, live):
        one = partial(_fire_update, fire)

        R, V, dt, alpha, n_pos = jax.vmap(one)(s.R, s.V, s.F, s.dt, s.dt_max, s.alpha, s.n_pos)
        keep = lambda new, old: jnp.where(
            live.reshape(live.shape + (1,) * (new.ndim - 1)), new, old
        )
        return s._replace(
            R=keep(R, s.R),
            V=keep(V, s.V),
            dt=keep(dt, s.dt),
            alpha=keep(alpha, s.alpha),
            n_pos=keep(n_pos, s.n_pos),
            step=s.step + live,
        )

    def body(s: _State) -> _State:
        live = active(s)
        s = update(s, live)
        if static.rebuild:
            stale = live & jax.vmap(partial(_stale, skin=skin))(s.R, s.R_ref)
            s = jax.lax.cond(
                jnp.any(stale),
                lambda s: _rebuild_where(static, s, stale, box, params, species, list_range),
                lambda s: s,
                s,
            )
        F = forces(s.R, box, s.pairs, s.pp)
        return s._replace(F=jnp.where(live[:, None, None], F, s.F))

    return jax.lax.while_loop(lambda s: jnp.any(active(s)), body, state)


def _rebuild_where(static, s: _State, which, box, params, species, list_range):
    """Rebuild the pair lists of the configurations flagged in ``which`` (others kept)."""
    pairs, pp, over = jax.vmap(lambda R: _build(static, R, box, params, species, list_range))(s.R)
    pick = lambda new, old: jnp.where(which.reshape(which.shape + (1,) * (new.ndim - 1)), new, old)
    return s._replace(
        pairs=jax.tree.map(pick, pairs, s.pairs),
        pp=jax.tree.map(pick, pp, s.pp),
        R_ref=pick(s.R, s.R_ref),
        overflow=s.overflow | (which & over),
    )


def _newton_loop(static: _Static, state: _State, box, params, species, list_range):
    """Newton-Krylov steps ``R += H^+ F`` while they lower ``max|F|`` above ``force_tol``."""
    opts = static.options
    n, dim = state.R.shape[1:]
    skin = list_range[1] - list_range[0]

    def solve(R, F, pairs, pp):
        hvp = pair_hessian_vp(static.potential, R, box, pairs, pp)
        M = None
        if static.multigrid is not None:
            K = pair_stiffness(static.potential, R, box, pairs, pp)
            M = multigrid.preconditioner(static.multigrid, hvp, R, box, pairs, K)
        return _cg_or_nan(hvp, F, opts.newton_cg_tol, 20 * n * dim, M)

    def active(s, ok):
        return ok & (s.st.newton < opts.newton_steps) & (s.F_max > opts.force_tol) & ~s.st.overflow

    class _N(NamedTuple):
        st: _State
        F_max: Array

    def body(carry):
        s, ok = carry
        st = s.st
        live = active(s, ok)
        dx = jax.vmap(solve)(st.R, st.F, st.pairs, st.pp)
        R_new = st.R + dx
        F_new = jax.vmap(partial(pair_forces, static.potential), in_axes=(0, None, 0, 0))(
            R_new, box, st.pairs, st.pp
        )
        f_new = jax.vmap(_max_force)(F_new)
        good = live & (f_new < s.F_max)  # NaN (negative curvature) compares False
        stale = jax.vmap(partial(_stale, skin=skin))(R_new, st.R_ref)
        st = st._replace(
            R=jnp.where(good[:, None, None], R_new, st.R),
            F=jnp.where(good[:, None, None], F_new, st.F),
            newton=st.newton + good,
        )
        if static.rebuild:
            stale = good & stale
            st = jax.lax.cond(
                jnp.any(stale),
                lambda x: _rebuild_where(static, x, stale, box, params, species, list_range),
                lambda x: x,
                st,
            )
        return _N(st, jnp.where(good, f_new, s.F_max)), ok & good

    start = _N(state, jax.vmap(_max_force)(state.F))
    ok0 = jnp.ones(state.R.shape[0], bool)
    (s, _) = jax.lax.while_loop(lambda c: jnp.any(active(*c)), body, (start, ok0))
    return s.st


def lambda_max_estimate(
    potential, R: Array, box: Array, pairs: Pairs, pp, steps: int = AUTO_DT_POWER_STEPS
) -> Array:
    """Largest eigenvalue of the pair Hessian at ``R`` by ``steps`` power iterations.

    Returns the Rayleigh quotient of the last iterate, so never above the true value. The
    start vector is fixed, so the estimate (and the FIRE trajectory using it) is
    deterministic.
    """
    return power_lambda_max(pair_hessian_vp(potential, R, box, pairs, pp), R, steps)


def power_lambda_max(hvp, R: Array, steps: int = AUTO_DT_POWER_STEPS) -> Array:
    """Largest eigenvalue of the operator ``hvp`` on fields shaped like ``R`` by ``steps``
    power iterations from a fixed start (see :func:`lambda_max_estimate`)."""
    v0 = jax.random.normal(jax.random.PRNGKey(0), R.shape, R.dtype)

    def step(_, v):
        w = hvp(v)
        return w / jnp.maximum(jnp.sqrt(jnp.vdot(w, w)), 1e-300)

    v = jax.lax.fori_loop(0, steps, step, v0 / jnp.sqrt(jnp.vdot(v0, v0)))
    return jnp.vdot(v, hvp(v))


def _stiffness_dt_max(static: _Static, s: _State, box) -> Array:
    """Step cap ``dt_auto / sqrt(lambda_max)`` of every configuration, clamped to
    ``[dt_max, 10 dt_max]``."""
    fire = static.options.fire
    lam = jax.vmap(partial(lambda_max_estimate, static.potential), in_axes=(0, None, 0, 0))(
        s.R, box, s.pairs, s.pp
    )
    return _auto_dt_max(fire, lam)


def _auto_dt_max(fire: FireOptions, lam: Array) -> Array:
    """Step cap ``dt_auto / sqrt(lambda_max)`` clamped to ``[dt_max, 10 dt_max]``."""
    dt = fire.dt_auto / jnp.sqrt(jnp.maximum(lam, 1e-300))
    return jnp.clip(dt, fire.dt_max, 10.0 * fire.dt_max)


def _cg_or_nan(matvec, b, tol, max_iter, precond=None):
    """CG solve of ``H x = b``; NaN if CG meets non-positive curvature (not a minimum basin)."""
    return conjugate_gradients(_CurvatureCheck(matvec), b, tol, max_iter, precond).x


class _CurvatureCheck:
    """Matvec wrapper: returns NaN products when ``p.Hp <= 0`` so CG's iterate becomes NaN
    and the Newton step is rejected (kept out of :mod:`linalg`, which stays generic)."""

    def __init__(self, matvec):
        self.matvec = matvec

    def __call__(self, p):
        Hp = remove_translation(self.matvec(p))
        pHp = jnp.vdot(p, Hp)
        pp = jnp.vdot(p, p)
        return jnp.where((pHp > 0) | (pp == 0), Hp, jnp.nan)


@partial(jax.jit, static_argnames=("static",))
def _minimize_core(static: _Static, R, box, params, species, pairs, list_range):
    """Batched minimization: ``R`` ``(B, N, d)``, ``pairs`` leaves ``(B, P)``."""
    opts = static.options
    B = R.shape[0]
    pp = jax.vmap(lambda p: pair_parameters(params, species, p.i, p.j))(pairs)
    F = jax.vmap(partial(pair_forces, static.potential), in_axes=(0, None, 0, 0))(R, box, pairs, pp)
    fire = opts.fire

    def fresh(R, F, pairs, pp, R_ref, overflow, step, newton, dt_max):
        return _State(
            R,
            jnp.zeros_like(R),
            F,
            jnp.full(B, fire.dt_start),
            dt_max,
            jnp.full(B, fire.alpha_start),
            jnp.zeros(B, jnp.int32),
            step,
            pairs,
            pp,
            R_ref,
            overflow,
            newton,
        )

    zeros = jnp.zeros(B, jnp.int32)
    s = fresh(R, F, pairs, pp, R, jnp.zeros(B, bool), zeros, zeros, jnp.full(B, fire.dt_max))
    if fire.dt_auto > 0 and AUTO_DT_FORCE > opts.force_tol:
        s = _fire_loop(static, s, AUTO_DT_FORCE, box, params, species, list_range)
        s = s._replace(dt_max=_stiffness_dt_max(static, s, box))
    if opts.newton_tol > opts.force_tol:
        s = _fire_loop(static, s, opts.newton_tol, box, params, species, list_range)
        s = _newton_loop(static, s, box, params, species, list_range)
        # FIRE finishes whatever Newton did not (restarted: velocities are stale).
        s = fresh(s.R, s.F, s.pairs, s.pp, s.R_ref, s.overflow, s.step, s.newton, s.dt_max)
    s = _fire_loop(static, s, opts.force_tol, box, params, species, list_range)
    E = jax.vmap(partial(pair_energy_sum, static.potential), in_axes=(0, None, 0, 0))(
        s.R, box, s.pairs, s.pp
    )
    fmax = jax.vmap(_max_force)(s.F)
    return s.R, E, fmax, s.step + s.newton, fmax <= opts.force_tol, s.pairs, s.overflow


def _plan(potential, R0: np.ndarray, box: np.ndarray, params, options: MinimizeOptions):
    """Host-side choice of pair-list range, capacity and builder for start positions
    ``R0`` ``(B, N, d)``. Returns ``(list_range, capacity, row_capacity)``."""
    _, n, dim = R0.shape
    rc = interaction_range(potential, params)
    dmax = float(jnp.max(params.diameter))
    list_range = (rc, rc + options.skin * dmax)
    density = n / float(box_volume(jnp.asarray(box)))
    capacity = pair_capacity(n, dim, density, list_range[1])
    row_capacity = 0
    if n >= CELL_LIST_MIN_N and capacity < n * (n - 1) // 2:
        occ = max(max_row_occupancy(r, box, list_range[1]) for r in R0)
        # Margin for fluctuations during the run; a dense packing has smaller occupancy
        # fluctuations than the random start, so 1.5x is rarely exceeded.
        row_capacity = bucket(1.5 * occ + 2)
        if np.min(cell_grid(box, list_range[1])) < 3:
            row_capacity = 0
    return list_range, capacity, row_capacity


def _run(potential, R0, box, params, species, options, bonds):
    """Minimize the batch ``R0`` ``(B, N, d)``; returns the batched outputs of the core."""
    R0 = jnp.asarray(R0, jnp.float64)
    box = jnp.asarray(box, jnp.float64)
    B, n, dim = R0.shape
    if bonds is not None or isinstance(params, NetworkParams):
        if bonds is None:
            raise ValueError("a spring network needs its bonds")
        static = _Static(potential, options, len(bonds.i), 0, False)
        pairs = jax.tree.map(lambda x: jnp.broadcast_to(x, (B,) + x.shape), bonds)
        return _minimize_core(static, R0, box, params, species, pairs, jnp.zeros(2))
    list_range, capacity, row_capacity = _plan(potential, np.asarray(R0), box, params, options)
    lr = jnp.asarray(list_range)
    while True:
        if capacity >= n * (n - 1) // 2:
            full = all_pairs(n)
            pairs = jax.tree.map(lambda x: jnp.broadcast_to(x, (B,) + x.shape), full)
            static = _Static(potential, options, len(full.i), 0, False)
        else:
            newton = options.newton_tol > options.force_tol
            mg = multigrid.plan(np.asarray(box), n, list_range[0]) if newton else None
            static = _Static(potential, options, capacity, row_capacity, True, mg)
            build = partial(neighbor_pairs, capacity=capacity, row_capacity=row_capacity or None)
            pairs, count = jax.vmap(lambda R, build=build: build(R, box, lr[1]))(R0)
            if int(jnp.max(count)) > capacity:
                capacity, row_capacity = _grow(n, int(jnp.max(count)), capacity, row_capacity)
                continue
        out = _minimize_core(static, R0, box, params, species, pairs, lr)
        if not bool(jnp.any(out[-1])):
            return out
        capacity, row_capacity = _grow(n, 0, capacity, row_capacity)


def _grow(n, count, capacity, row_capacity):
    """Larger pair and row capacities after an overflow."""
    capacity = min(max(2 * capacity, bucket(1.3 * count)), n * (n - 1) // 2)
    return capacity, (bucket(1.5 * row_capacity) if row_capacity else 0)


# --------------------------------------------------------------------------- general energies
# Reallocations of a general energy's neighbor state after overflows, before giving up.
MAX_REALLOCATIONS = 8


class _GeneralState(NamedTuple):
    R: Array
    V: Array
    F: Array
    dt: Array
    dt_max: Array
    alpha: Array
    n_pos: Array
    step: Array
    neighbors: object
    overflow: Array


def _general_forces(energy: GeneralEnergy, R, box, params, neighbors) -> Array:
    return -jax.grad(energy, argnums=0)(R, box, params, neighbors)


@partial(jax.jit, static_argnames=("energy", "options"))
def _general_fire(
    energy: GeneralEnergy, options: MinimizeOptions, s: _GeneralState, tol, box, params
) -> _GeneralState:
    """FIRE on one configuration of a general energy until ``max|F| <= tol``, ``max_steps``,
    a neighbor overflow or a non-finite force (NaN compares False, so the loop stops)."""

    def active(s):
        return (s.step < options.max_steps) & (_max_force(s.F) > tol) & ~s.overflow

    def body(s):
        R, V, dt, alpha, n_pos = _fire_update(
            options.fire, s.R, s.V, s.F, s.dt, s.dt_max, s.alpha, s.n_pos
        )
        neighbors = energy.update(R, box, s.neighbors)
        F = _general_forces(energy, R, box, params, neighbors)
        return _GeneralState(
            R, V, F, dt, s.dt_max, alpha, n_pos, s.step + 1, neighbors, energy.overflow(neighbors)
        )

    return jax.lax.while_loop(active, body, s)


@partial(jax.jit, static_argnames=("energy",))
def _general_lambda_max(energy: GeneralEnergy, R, box, params, neighbors) -> Array:
    return power_lambda_max(hessian_vp(lambda x: energy(x, box, params, neighbors), R), R)


def _minimize_general(energy: GeneralEnergy, R, box, params, options: MinimizeOptions) -> Minimum:
    """:func:`minimize` for a :class:`general.GeneralEnergy`: the same FIRE 2.0 steps,
    adaptive step cap and stopping rule, with autodiff forces and the energy's own neighbor
    state (updated every step; reallocated at the current positions after an overflow, so
    no step ever uses a truncated list)."""
    R = jnp.asarray(R, jnp.float64)
    box = jnp.asarray(box, jnp.float64)
    energy.check(R, box, params)
    neighbors = energy.allocate(R, box)
    if neighbors is not None:
        energy.check(R, box, params, neighbors)
    fire = options.fire
    F = _general_forces(energy, R, box, params, neighbors)
    s = _GeneralState(
        R,
        jnp.zeros_like(R),
        F,
        jnp.asarray(fire.dt_start),
        jnp.asarray(fire.dt_max),
        jnp.asarray(fire.alpha_start),
        jnp.asarray(0),
        jnp.asarray(0),
        neighbors,
        jnp.asarray(False),
    )
    phases = [options.force_tol]
    if fire.dt_auto > 0 and AUTO_DT_FORCE > options.force_tol:
        phases.insert(0, AUTO_DT_FORCE)
    reallocations = 0
    for k, tol in enumerate(phases):
        while True:
            s = _general_fire(energy, options, s, tol, box, params)
            if not bool(s.overflow):
                break
            reallocations += 1
            if reallocations > MAX_REALLOCATIONS:
                raise RuntimeError(
                    f"{energy.name}: the neighbor list overflowed {reallocations} times "
                    f"(step {int(s.step)}); check the cutoff and the density"
                )
            neighbors = energy.allocate(s.R, box)
            s = s._replace(
                neighbors=neighbors,
                overflow=jnp.asarray(False),
                F=_general_forces(energy, s.R, box, params, neighbors),
            )
        if len(phases) == 2 and k == 0:
            lam = _general_lambda_max(energy, s.R, box, params, s.neighbors)
            s = s._replace(dt_max=_auto_dt_max(fire, lam))
    E = energy(s.R, box, params, s.neighbors)
    fmax = _max_force(s.F)
    if not (bool(jnp.isfinite(E)) and bool(jnp.isfinite(fmax))):
        raise FloatingPointError(
            f"{energy.name}: the energy or the forces became non-finite during minimization "
            f"(step {int(s.step)}: energy {float(E)}, max|F| {float(fmax)}); check the "
            "parameters and the start positions (overlapping particles?)"
        )
    return Minimum(wrap(s.R, box), E, fmax, s.step, fmax <= options.force_tol, s.neighbors)


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

    ``potential`` may be a :class:`general.GeneralEnergy` (``species`` and ``bonds`` unused):
    then ``Minimum.pairs`` is its neighbor state at the minimum.
    """
    if is_general(potential):
        return _minimize_general(potential, R, box, params, options)
    R = jnp.asarray(R, jnp.float64)
    out = _run(potential, R[None], box, params, species, options, bonds)
    Rm, E, fmax, steps, converged, pairs, _ = jax.tree.map(lambda x: x[0], out)
    return Minimum(wrap(Rm, jnp.asarray(box, jnp.float64)), E, fmax, steps, converged, pairs)


def minimize_batch(
    potential: Potential,
    R: Array,
    box: Array,
    params,
    species: Array | None,
    options: MinimizeOptions = MinimizeOptions(),
    bonds: Pairs | None = None,
) -> Minimum:
    """:func:`minimize` for a batch of start positions ``R`` ``(B, N, d)`` of one shape
    (same box, parameters, species) in one vectorized loop; every field of the returned
    :class:`Minimum` has a leading batch axis.

    Each configuration stops updating when it has converged, so the minima equal those of
    :func:`minimize` run one by one (up to floating-point round-off of the vectorized
    arithmetic); the loop runs until the slowest configuration has finished.
    A :class:`general.GeneralEnergy` is minimized one configuration after the other (its
    neighbor states must then have equal capacities to be stacked).
    """
    if is_general(potential):
        out = [_minimize_general(potential, r, box, params, options) for r in R]
        return jax.tree.map(lambda *x: jnp.stack(x), *out)
    R = jnp.asarray(R, jnp.float64)
    box = jnp.asarray(box, jnp.float64)
    Rm, E, fmax, steps, converged, pairs, _ = _run(
        potential, R, box, params, species, options, bonds
    )
    return Minimum(jax.vmap(lambda x: wrap(x, box))(Rm), E, fmax, steps, converged, pairs)


# --------------------------------------------------------------------------- polishing
@partial(jax.jit, static_argnames=("potential",))
def _newton_step(potential, R, box, params, species, pairs, cg_tol):
    if is_general(potential):
        F = _general_forces(potential, R, box, params, pairs)
        hvp = hessian_vp(lambda x: potential(x, box, params, pairs), R)
        R_new = R + conjugate_gradients(hvp, F, cg_tol, 20 * R.size).x
        F_new = _general_forces(potential, R_new, box, params, pairs)
        return R_new, potential(R_new, box, params, pairs), _max_force(F_new)
    pp = pair_parameters(params, species, pairs.i, pairs.j)

    def e(x):
        return pair_energy_sum(potential, x, box, pairs, pp)

    F = pair_forces(potential, R, box, pairs, pp)
    hvp = pair_hessian_vp(potential, R, box, pairs, pp)
    dx = conjugate_gradients(hvp, F, cg_tol, 20 * R.size).x
    R_new = R + dx
    F_new = pair_forces(potential, R_new, box, pairs, pp)
    return R_new, e(R_new), _max_force(F_new)


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
