"""Aggregation multigrid preconditioner for the Hessian of a pair energy.

Why: the Hessian of an elastic solid has long-wavelength modes whose stiffness falls as
``L^-2``, so plain conjugate gradients needs ``~ N^(1/d)`` iterations per solve. A
multigrid V-cycle treats every wavelength on a grid where it is short, so the iteration
count of preconditioned CG grows far more slowly (2D harmonic-Morse, one elastic solve to
1e-12: 86 / 99 iterations at N = 4096 / 16384, against 710 / 1233 for plain CG).

Construction (all matrix-free, fixed shapes, jit- and vmap-friendly):

- The Hessian of a pair energy is a sum over pairs,
  ``H = sum_p (e_i - e_j)(e_i - e_j)^T (x) K_p`` with a ``(d, d)`` block per pair
  (:func:`energy.pair_stiffness`).
- Level 1 aggregates particles into the cells of a regular grid in fractional coordinates;
  level ``l + 1`` merges ``2`` cells of level ``l`` along each axis that can be halved.
  Interpolation is piecewise constant (all members of a cell move together), so the
  Galerkin operator ``P^T H P`` of every level has the same pair form on cells: a pair's
  block lands on the cells of its two ends, and pairs inside one cell drop out.
- Cells are at least ``rc / reach`` wide (``rc``: interaction range), so every coarse pair
  joins a cell to one within ``reach`` cells along each axis: a level is a fixed list of
  ``(cell, offset)`` blocks, ``n_cells * prod(2 reach + 1)`` of them.
- Smoothing is Chebyshev-accelerated block Jacobi (``(d, d)`` diagonal blocks), with the
  largest eigenvalue of ``D^-1 A`` estimated by power iteration; the coarsest level (at
  most :data:`COARSEST_CELLS` cells) is solved with a dense pseudo-inverse.

The V-cycle is symmetric (same polynomial smoother before and after the coarse correction),
so it is a valid CG preconditioner. It only changes how fast CG converges: the stopping
rule (``|H x - b| <= tol |b|``) and hence the accuracy of every solve are unchanged.

The grid is a static :class:`Plan` chosen on the host from the box, N and the interaction
range (:func:`plan`); below :data:`MIN_PARTICLES` particles (and by default in 3D, where
it was measured slower) plain CG is used (``None``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .energy import pair_stiffness
from .potentials import pair_parameters
from .space import Pairs, box_heights, fractional

Array = jax.Array

# Smallest N that gets the preconditioner, per dimension (benchmarks/scaling.py, elastic
# constants of 2D harmonic-Morse, preconditioned vs plain CG: 0.84 vs 0.87 s at N = 1024,
# 1.46 vs 1.98 s at 2048, 20.4 vs 46.0 s at 16384; one solve at 4096: 1.75 vs 2.67 s,
# 86 vs 710 iterations). In 3D (soft spheres, phi = 0.70) it was
# slower up to N = 4096 (8.8 vs 5.4 s): fewer pairs per particle make plain CG iterations
# cheap and the V-cycle relatively dear, so 3D keeps plain CG by default.
MIN_PARTICLES = {2: 2048}
# Largest coarsest level, solved densely: (COARSEST_CELLS * d)^2 entries.
COARSEST_CELLS = 64
# Largest mean number of particles per level-1 cell: the reach is the smallest integer that
# keeps the occupancy at or below it (finer cells make a better first coarse level).
_MAX_OCCUPANCY = {2: 6.0, 3: 12.0}
# Chebyshev smoother: degree, and the part [lambda_max / RATIO, lambda_max] it damps.
CHEBYSHEV_DEGREE = 2
CHEBYSHEV_RATIO = 4.0
# Over-correction of the piecewise-constant coarse correction (the usual remedy for plain
# aggregation): 86 instead of 95 iterations for 2D harmonic-Morse at N = 4096.
COARSE_SCALE = 1.5
# Power iterations for lambda_max(D^-1 A), and the safety factor on the estimate.
POWER_STEPS = 12
POWER_SAFETY = 1.1


@dataclass(frozen=True)
class Plan:
    """Static description of the hierarchy (hashable; part of a jit cache key).

    grids:   cells per axis of levels ``1 .. L`` (level 0 is the particles).
    reaches: largest cell offset of a pair per axis, per level.
    """

    grids: tuple[tuple[int, ...], ...]
    reaches: tuple[tuple[int, ...], ...]

    @property
    def dim(self) -> int:
        return len(self.grids[0])


def _round_to_halvable(g: int) -> int:
    """Largest ``a * 2^k <= g`` with ``a`` in 4..7 (or ``g`` itself below 8), so the grid
    halves cleanly several times while losing at most 20% of the cells per axis."""
    if g < 8:
        return g
    k = int(math.floor(math.log2(g / 4)))
    return (g >> k) << k


def plan(box, n: int, rc: float, min_particles: int | None = None) -> Plan | None:
    """Plan for ``n`` particles in ``box`` (``(d, d)``, columns = lattice vectors) whose pairs
    interact up to distance ``rc``; ``None`` (plain CG) below ``min_particles`` (default
    :data:`MIN_PARTICLES` of the dimension; none in 3D)."""
    box = np.asarray(box, float)
    dim = box.shape[0]
    if min_particles is None:
        min_particles = MIN_PARTICLES.get(dim, math.inf)
    if n < min_particles:
        return None
    heights = box_heights(box)
    density = n / abs(np.linalg.det(box))
    reach = 1
    while reach < 3 and density * (rc / reach) ** dim > _MAX_OCCUPANCY[dim]:
        reach += 1
    grid = tuple(_round_to_halvable(max(int(h * reach / rc), 1)) for h in heights)
    reaches = (tuple(min(reach, g) for g in grid),)
    grids = (grid,)
    while math.prod(grids[-1]) > COARSEST_CELLS:
        g, s = grids[-1], reaches[-1]
        halve = [ga % 2 == 0 and ga >= 4 for ga in g]
        if not any(halve):
            break
        grids += (tuple(ga // 2 if h else ga for ga, h in zip(g, halve, strict=True)),)
        reaches += (tuple(-(-sa // 2) if h else sa for sa, h in zip(s, halve, strict=True)),)
    return Plan(grids, reaches)


def plan_for(potential, params, box, n: int) -> Plan | None:
    """:func:`plan` for a pair potential: ``rc`` is its cutoff at the largest diameter."""
    rc = float(potential.cutoff(jnp.max(jnp.asarray(params.diameter))))
    return plan(box, n, rc)


# --------------------------------------------------------------------------- static maps
def _offsets(reach: tuple[int, ...]) -> np.ndarray:
    """Offsets ``(S, d)`` with ``|o_a| <= reach_a`` that are lexicographically non-negative:
    a pair of cells at offset ``-o`` is the same pair seen from the other end, so each
    level stores one block per cell and offset of this half."""
    axes = [np.arange(-r, r + 1) for r in reach]
    full = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(reach))
    return full[len(full) // 2 :]


@cache
def _offset_table(reach: tuple[int, ...]):
    """For every offset in ``[-reach, reach]^d`` (row-major index): the index of ``+-o`` in
    :func:`_offsets` and whether it is ``-o`` (then the pair is anchored at its other end)."""
    axes = [np.arange(-r, r + 1) for r in reach]
    full = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(reach))
    half = len(full) // 2
    flip = np.arange(len(full)) < half
    index = np.where(flip, len(full) - 1 - np.arange(len(full)), np.arange(len(full))) - half
    return index, flip


def _flat(c: np.ndarray, grid) -> np.ndarray:
    return np.ravel_multi_index(tuple(np.moveaxis(c, -1, 0)), grid)


def _canonical_entries(a, b, grid, reach, xp=np):
    """Entry index ``anchor * S + offset_index`` of the cell pairs ``(a, b)`` (cell
    coordinates ``(M, d)``, at most ``reach`` apart periodically); works with NumPy (static
    maps) and JAX (level 1, from positions)."""
    grid_a, reach_a = xp.asarray(grid), xp.asarray(reach)
    o = xp.mod(b - a + reach_a, grid_a)
    o = xp.clip(o, 0, 2 * reach_a)  # pairs further apart carry zero blocks (see caller)
    full = o[:, 0]
    for k in range(1, len(grid)):
        full = full * (2 * reach[k] + 1) + o[:, k]
    index, flip = (xp.asarray(t) for t in _offset_table(tuple(reach)))
    anchor = xp.where(flip[full][:, None], b, a)
    flat = anchor[:, 0]  # row-major, as np.ravel_multi_index
    for k in range(1, len(grid)):
        flat = flat * grid[k] + anchor[:, k]
    return flat * (len(index) // 2 + 1) + index[full]


@cache
def _level_maps(p: Plan):
    """Per level ``l``: ``a``, ``b`` (entry -> its two cells) and, for ``l < L``, ``parent``
    (cell -> cell of level ``l + 1``) and ``coarse_entry`` (entry -> entry of level
    ``l + 1``). Entry ``e = cell * S + offset_index`` (:func:`_offsets`)."""
    maps = []
    for lev, (grid, reach) in enumerate(zip(p.grids, p.reaches, strict=True)):
        cells = np.stack(np.unravel_index(np.arange(math.prod(grid)), grid), -1)
        off = _offsets(reach)
        a = np.repeat(cells, len(off), axis=0)
        b = np.mod(a + np.tile(off, (len(cells), 1)), grid)
        m = {"a": _flat(a, grid), "b": _flat(b, grid)}
        if lev + 1 < len(p.grids):
            cgrid, creach = p.grids[lev + 1], p.reaches[lev + 1]
            f = np.asarray(grid) // np.asarray(cgrid)
            m["parent"] = _flat(cells // f, cgrid)
            m["coarse_entry"] = _canonical_entries(a // f, b // f, cgrid, creach)
        maps.append({k: v.astype(np.int32) for k, v in m.items()})
    return tuple(maps)


# --------------------------------------------------------------------------- operators
def _block_apply(K: Array, v: Array) -> Array:
    """``K_m v_m`` for blocks ``K`` ``(M, d, d)`` and ``v`` ``(M, d)``, written out per
    component (XLA's CPU batched ``dot`` on tiny blocks is several times slower)."""
    d = v.shape[-1]
    cols = []
    for a in range(d):
        out = K[:, a, 0] * v[:, 0]
        for b in range(1, d):
            out = out + K[:, a, b] * v[:, b]
        cols.append(out)
    return jnp.stack(cols, axis=-1)


def _pair_matvec(ea: Array, eb: Array, K: Array, v: Array) -> Array:
    """``sum_e (e_a - e_b)(e_a - e_b)^T K_e v`` for pair blocks ``K`` ``(M, d, d)``."""
    t = _block_apply(K, v[ea] - v[eb])
    return jnp.zeros_like(v).at[ea].add(t).at[eb].add(-t)


def _diagonal_blocks(ea: Array, eb: Array, K: Array, n: int) -> Array:
    """Diagonal ``(d, d)`` blocks ``(n, d, d)`` of the pair operator (self pairs excluded)."""
    K = jnp.where((ea != eb)[:, None, None], K, 0.0)
    return jnp.zeros((n,) + K.shape[1:], K.dtype).at[ea].add(K).at[eb].add(K)


def _eigh_blocks(D: Array, sweeps: int = 8) -> tuple[Array, Array]:
    """Eigen-decomposition ``D = V diag(w) V^T`` of symmetric blocks ``(n, d, d)`` by cyclic
    Jacobi rotations, elementwise over blocks.

    Not ``jnp.linalg.eigh``: its batched LAPACK kernel splits the batch over XLA's CPU thread
    pool and was seen to deadlock (all threads idle) when two such kernels ran at once on
    two cores (2D N = 8192 gradient). One rotation is exact for d = 2; for d = 3 Jacobi
    converges quadratically, so 8 sweeps reach round-off.
    """
    d = D.shape[-1]
    A = D
    V = jnp.broadcast_to(jnp.eye(d, dtype=D.dtype), D.shape)
    planes = [(p, q) for p in range(d) for q in range(p + 1, d)]
    for _ in range(1 if d == 2 else sweeps):
        for p, q in planes:
            # Rotation in the (p, q) plane that zeroes A[p, q]: tan 2t = 2 a_pq / (a_qq - a_pp).
            t = 0.5 * jnp.arctan2(2.0 * A[:, p, q], A[:, q, q] - A[:, p, p])
            c, s = jnp.cos(t), jnp.sin(t)
            G = jnp.broadcast_to(jnp.eye(d, dtype=D.dtype), D.shape)
            G = G.at[:, p, p].set(c).at[:, q, q].set(c).at[:, p, q].set(s).at[:, q, p].set(-s)
            A = jnp.einsum("nba,nbc,ncd->nad", G, A, G)
            V = jnp.einsum("nab,nbc->nac", V, G)
    return jnp.diagonal(A, axis1=1, axis2=2), V


def _inverse_eigenvalues(w: Array) -> Array:
    """``1 / w``, with eigenvalues below ``1e-10`` of the largest counted as zero."""
    floor = 1e-10 * jnp.max(w)
    return jnp.where(w > floor, 1.0 / jnp.where(w > floor, w, 1.0), 0.0)


def _pinv_blocks(D: Array) -> Array:
    """Pseudo-inverses of symmetric PSD blocks ``(n, d, d)``; eigenvalues below
    ``1e-10`` of the largest block eigenvalue (rattlers, floppy directions) count as zero."""
    w, V = _eigh_blocks(D)
    return jnp.einsum("nab,nb,ncb->nac", V, _inverse_eigenvalues(w), V)


@jax.custom_batching.sequential_vmap
def _pinv_dense(A: Array) -> Array:
    """Pseudo-inverse of the dense symmetric PSD coarsest operator ``(m, m)``; eigenvalues
    below ``1e-10`` of the largest (translations) count as zero.

    Under ``vmap`` (vectorized training) the batch is looped over, one LAPACK ``eigh`` per
    matrix: the batched kernel can deadlock on CPU (see :func:`_eigh_blocks`).
    """
    w, V = jnp.linalg.eigh(A)
    return (V * _inverse_eigenvalues(w)) @ V.T


def _dense(ea: Array, eb: Array, K: Array, n: int) -> Array:
    """Dense ``(n d, n d)`` matrix of a (small) pair operator."""
    d = K.shape[-1]
    A = jnp.zeros((n, d, n, d), K.dtype)
    A = A.at[ea, :, ea, :].add(K).at[eb, :, eb, :].add(K)
    A = A.at[ea, :, eb, :].add(-K).at[eb, :, ea, :].add(-K)
    return A.reshape(n * d, n * d)


def _lambda_max(matvec, dinv: Array, shape) -> Array:
    """Largest eigenvalue of ``D^-1 A`` by power iteration (Rayleigh quotient in the
    ``A``-inner product, from a fixed pseudo-random start)."""
    v = jax.random.normal(jax.random.PRNGKey(0), shape, dinv.dtype)

    def step(v, _):
        w = _block_apply(dinv, matvec(v))
        return w / jnp.maximum(jnp.sqrt(jnp.vdot(w, w)), 1e-300), None

    v, _ = jax.lax.scan(step, v, None, length=POWER_STEPS)
    Av = matvec(v)
    w = _block_apply(dinv, Av)
    return jnp.vdot(Av, w) / jnp.maximum(jnp.vdot(v, Av), 1e-300)


def _chebyshev(matvec, dinv: Array, lam: Array, b: Array, x: Array | None) -> Array:
    """``CHEBYSHEV_DEGREE`` Chebyshev steps for ``A x = b`` preconditioned by ``D^-1``,
    damping the spectrum of ``D^-1 A`` in ``[lam / CHEBYSHEV_RATIO, lam]``; ``x = None``
    starts from zero."""
    hi = POWER_SAFETY * lam
    lo = hi / CHEBYSHEV_RATIO
    theta, delta = 0.5 * (hi + lo), 0.5 * (hi - lo)
    sigma = theta / delta
    rho = 1.0 / sigma
    jac = lambda r: _block_apply(dinv, r)
    r = jac(b if x is None else b - matvec(x))
    d = r / theta
    for k in range(CHEBYSHEV_DEGREE):
        x = d if x is None else x + d
        if k == CHEBYSHEV_DEGREE - 1:
            break
        r = r - jac(matvec(d))
        rho_new = 1.0 / (2.0 * sigma - rho)
        d = rho_new * rho * d + (2.0 * rho_new / delta) * r
        rho = rho_new
    return x


class CellOperator(NamedTuple):
    """A coarse level: ``A = sum_e (e_a - e_b)(e_a - e_b)^T (x) K_e`` on ``n_cells`` cells."""

    a: Array
    b: Array
    K: Array
    n_cells: int


def coarse_operators(p: Plan, R: Array, box: Array, pairs: Pairs, K: Array):
    """Galerkin operators ``P^T H P`` of levels ``1 .. L`` for the Hessian with pair blocks
    ``K`` ``(P, d, d)`` of ``pairs`` at positions ``R`` ``(N, d)``.

    Returns ``(owner, operators, valid)``: the level-1 cell of each particle ``(N,)``, one
    :class:`CellOperator` per level, and whether every interacting pair lies within the
    plan's reach (False if the particles grew beyond the range the plan was made for).
    """
    maps = _level_maps(p)
    grid = jnp.asarray(p.grids[0])
    s = fractional(R, box)
    cell = jnp.clip(jnp.floor((s - jnp.floor(s)) * grid).astype(jnp.int32), 0, grid - 1)
    owner = jnp.ravel_multi_index(tuple(cell.T), p.grids[0], mode="clip")
    # Pairs further apart than the reach are beyond rc: their blocks are zero.
    entry = _canonical_entries(cell[pairs.i], cell[pairs.j], p.grids[0], p.reaches[0], jnp)
    Kl = jnp.where(pairs.mask[:, None, None], K, 0.0)
    delta = cell[pairs.j] - cell[pairs.i]
    delta = jnp.abs(delta - grid * jnp.round(delta / grid))  # periodic distance in cells
    far = jnp.any(delta > jnp.asarray(p.reaches[0]), axis=-1)
    valid = ~jnp.any(far & jnp.any(Kl != 0.0, axis=(1, 2)))
    operators = []
    for lev, m in enumerate(maps):
        Kl = jax.ops.segment_sum(Kl, entry, num_segments=len(m["a"]))
        operators.append(CellOperator(m["a"], m["b"], Kl, math.prod(p.grids[lev])))
        entry = m.get("coarse_entry")
    return owner, operators, valid


def preconditioner(p: Plan, fine_matvec, R: Array, box: Array, pairs: Pairs, K: Array):
    """V-cycle ``r -> M r ~ H^+ r`` for the Hessian ``H`` with pair blocks ``K`` ``(P, d, d)``
    (:func:`energy.pair_stiffness`) of the pair list ``pairs`` at positions ``R`` ``(N, d)``.

    ``fine_matvec`` is the product with ``H`` itself. ``M`` is symmetric positive
    semi-definite; it is zero on particles without interactions (rattlers), so CG keeps
    the minimum-norm solution there, and the mean translation is removed from its output.
    If an interacting pair lies beyond the plan's reach, ``M`` is the identity (plain CG).
    Nothing here is differentiated (inputs are wrapped in ``stop_gradient``).
    """
    R, box, K = jax.lax.stop_gradient((R, box, K))
    owner, operators, valid = coarse_operators(p, R, box, pairs, K)
    D0 = _diagonal_blocks(pairs.i, pairs.j, jnp.where(pairs.mask[:, None, None], K, 0.0), len(R))
    active = jnp.trace(D0, axis1=1, axis2=2) > 0
    dinv0 = _pinv_blocks(D0)
    # (matvec, D^-1, lambda_max(D^-1 A)) of the smoothed levels: particles, cells 1 .. L-1.
    levels = [(fine_matvec, dinv0, _lambda_max(fine_matvec, dinv0, R.shape))]
    for op in operators[:-1]:
        mv = partial(_pair_matvec, op.a, op.b, op.K)
        dinv = _pinv_blocks(_diagonal_blocks(op.a, op.b, op.K, op.n_cells))
        levels.append((mv, dinv, _lambda_max(mv, dinv, (op.n_cells, p.dim))))
    last = operators[-1]
    coarsest = _pinv_dense(_dense(last.a, last.b, last.K, last.n_cells))

    maps = _level_maps(p)
    members = [owner] + [m["parent"] for m in maps[:-1]]  # level l -> level l + 1 cell

    def cycle(lev, b):
        if lev == len(levels):
            return (coarsest @ b.reshape(-1)).reshape(b.shape)
        mv, dinv, lam = levels[lev]
        up = members[lev]
        x = _chebyshev(mv, dinv, lam, b, None)
        r = jax.ops.segment_sum(b - mv(x), up, num_segments=operators[lev].n_cells)
        x = x + COARSE_SCALE * cycle(lev + 1, r)[up]
        return _chebyshev(mv, dinv, lam, b, x)

    def apply(r):
        # An invalid plan would give a wrong coarse operator: fall back to plain CG.
        z = jnp.where(valid, jnp.where(active[:, None], cycle(0, r), 0.0), r)
        return z - jnp.mean(z, axis=0, keepdims=True)

    return apply


def hessian_preconditioner(
    p: Plan | None, hvp, potential, R: Array, box: Array, params, species, pairs: Pairs
):
    """:func:`preconditioner` of the Hessian of ``potential`` at ``R`` (species-level
    ``params``), whose product ``hvp`` (:func:`energy.hessian_operator`) the caller already
    has; ``None`` (plain CG) when ``p`` is ``None``."""
    if p is None:
        return None
    K = pair_stiffness(potential, R, box, pairs, pair_parameters(params, species, pairs.i, pairs.j))
    return preconditioner(p, hvp, R, box, pairs, K)
