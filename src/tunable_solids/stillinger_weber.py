"""Stillinger-Weber energy with a tunable bond angle, on the general energy path.

The force field of *De Novo Atomistic Discovery of Disordered Mechanical Metamaterials by
Machine Learning* (Eqs. 3-5 of its Methods; Stillinger and Weber, Phys. Rev. B 31, 5262
(1985)), for one species::

    E = sum_{i<j} U2(r_ij) + sum_i sum_{j<k, j,k != i} U3(r_ij, r_ik, theta_jik)
    U2(r) = A eps [B (sigma/r)^p - (sigma/r)^q] exp(sigma / (r - a sigma))
    U3 = lambda eps (cos theta_jik - cos theta_0)^2
         exp(gamma sigma / (r_ij - a sigma)) exp(gamma sigma / (r_ik - a sigma))

for ``r < a sigma`` (both factors vanish with all their derivatives at the cutoff ``a
sigma``); ``i`` is the vertex of the angle. The two-body constants are fixed at Stillinger
and Weber's silicon values in reduced units (``eps = sigma = 1``, ``a = 1.8``,
``A = 7.049556277``, ``B = 0.6022245584``, ``p = 4``, ``q = 0``; constructor arguments of
:func:`stillinger_weber_energy`), so the bond length at the two-body minimum is
``2^(1/6) sigma ~ 1.12 sigma`` and the pair well depth ``eps``. The tunable, differentiable
parameters are :class:`SWParams` ``(lambda_, gamma, theta0)``.

**lambda vs the paper's "lambda/A".** The paper tunes the ratio ``lambda / A`` ("the relative
angular penalty intensity with respect to its two-body interaction magnitude") with ``A =
7.049556277`` fixed, so ``lambda = (lambda/A) * A``: silicon's ``lambda = 21`` is ``lambda/A
= 2.979`` (its Table 1 prints 3.000 for "Diamond/Silicon"), the optimum ``lambda/A = 2.094``
is ``lambda = 14.76``, ``lambda/A`` in ``[0, 4]`` is ``lambda`` in ``[0, 28.2]``.
:class:`SWParams` holds ``lambda_`` itself (the ``lambda`` of Eq. 5 and of LAMMPS's
``pair_style sw`` file); :func:`sw_params` takes it, :func:`paper_params` takes the
paper's ``lambda/A``. ``theta0`` is in degrees, ``gamma`` dimensionless.

Cost linear in N: an own neighbor state (:class:`SWNeighbors`, from the project's pair
lists, :func:`space.neighbor_pairs`, with a skin) gives every atom a dense, masked row of
its neighbors ``(N, M)``. The three-body sum over the pairs ``j < k`` of an atom's neighbors
is evaluated exactly through moments of its row, O(M) per atom instead of O(M^2)::

    sum_{j != k} f_j f_k (u_j.u_k - c0)^2 = |T|_F^2 - 2 c0 |v|^2 + c0^2 F^2 - sum_j f_j^2 (1 - c0)^2

with ``u_j`` the unit bond vectors, ``f_j = exp(gamma sigma / (r_j - a sigma))``, ``T =
sum_j f_j u_j u_j^T``, ``v = sum_j f_j u_j``, ``F = sum_j f_j`` (the diagonal ``j = k`` is
removed with the computed ``|u_j|^2``). ``method="triplets"`` sums the ``M x M`` pairs of
each row directly (same result to round-off; a cross-check).

Conventions: the project's (:mod:`space`, :mod:`general`): real-space ``R (N, d)``, box
columns are the lattice vectors (any non-singular box, triclinic included), minimum image
(the list range ``a sigma + skin`` must stay below half the smallest box height), strain
deforms ``R`` and box together and the energy is exactly differentiable in it (bond vectors
are ``box (s_j - s_i - round(s_j - s_i))`` of fractional coordinates ``s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .general import GeneralEnergy
from .space import Pairs, bucket, check_box_fits, fractional, neighbor_pairs, transform

Array = jax.Array

# Stillinger and Weber's two-body constants in reduced units (the paper's Table 1).
SW_A = 7.049556277
SW_B = 0.6022245584
SW_A_CUT = 1.8
SW_P = 4.0
SW_Q = 0.0
SILICON_LAMBDA = 21.0
SILICON_GAMMA = 1.2
TETRAHEDRAL_DEG = math.degrees(math.acos(-1.0 / 3.0))  # 109.4712206...

# Default skin of the neighbor rows (in units of sigma): the list holds pairs within
# a sigma + skin and is rebuilt when atoms (or the box) moved enough to bring an unlisted
# pair inside a sigma.
DEFAULT_SKIN = 0.3
_METHOD_ERROR = "Stillinger-Weber: method must be 'moments' or 'triplets'; got {!r}"


class SWParams(NamedTuple):
    """Tunable Stillinger-Weber parameters, each a float array (differentiable).

    lambda_: three-body strength ``lambda`` (Eq. 5; the paper's ``lambda/A`` times ``A``);
    gamma:   radial decay of the three-body term (``> 0``);
    theta0:  favoured bond angle in degrees, ``[0, 180]``.
    """

    lambda_: Array
    gamma: Array
    theta0: Array


def _check_value(name: str, value, low: float, high: float, low_open: bool = False) -> float:
    try:
        x = float(np.asarray(value))
    except (TypeError, ValueError) as err:
        raise ValueError(f"Stillinger-Weber: {name} must be a real number; got {value!r}") from err
    below = x <= low if low_open else x < low
    if not math.isfinite(x) or below or x > high:
        lo = "(" if low_open else "["
        raise ValueError(f"Stillinger-Weber: {name} must be in {lo}{low}, {high}]; got {value!r}")
    return x


def check_params(params: SWParams) -> None:
    """Raise ``ValueError`` naming the parameter that is out of range (host-side check of
    concrete values: ``lambda_ >= 0``, ``gamma > 0``, ``0 <= theta0 <= 180``)."""
    if not isinstance(params, SWParams):
        raise ValueError(
            f"Stillinger-Weber: params must be SWParams(lambda_, gamma, theta0); "
            f"got {type(params).__name__}"
        )
    _check_value("lambda_", params.lambda_, 0.0, math.inf)
    _check_value("gamma", params.gamma, 0.0, math.inf, low_open=True)
    _check_value("theta0 (degrees)", params.theta0, 0.0, 180.0)


def sw_params(lambda_: float, gamma: float, theta0_deg: float) -> SWParams:
    """:class:`SWParams` from ``lambda`` (Eq. 5, LAMMPS's ``lambda``), ``gamma`` and the
    favoured angle in degrees; validated (``ValueError`` names the bad parameter)."""
    _check_value("lambda_", lambda_, 0.0, math.inf)
    _check_value("gamma", gamma, 0.0, math.inf, low_open=True)
    _check_value("theta0 (degrees)", theta0_deg, 0.0, 180.0)
    p = SWParams(
        jnp.asarray(lambda_, jnp.float64),
        jnp.asarray(gamma, jnp.float64),
        jnp.asarray(theta0_deg, jnp.float64),
    )
    check_params(p)
    return p


def paper_params(lambda_over_A: float, gamma: float, theta0_deg: float, A: float = SW_A):
    """:class:`SWParams` from the paper's ``lambda/A`` (its Table 1 and search space), with
    ``lambda = (lambda/A) * A``."""
    lam = _check_value("lambda/A", lambda_over_A, 0.0, math.inf)
    return sw_params(lam * A, gamma, theta0_deg)


def silicon_params() -> SWParams:
    """Stillinger-Weber silicon: ``lambda = 21``, ``gamma = 1.2``, ``cos theta0 = -1/3``."""
    return sw_params(SILICON_LAMBDA, SILICON_GAMMA, TETRAHEDRAL_DEG)


def cos_theta0(params: SWParams) -> Array:
    """``cos(theta0)`` (the ``costheta0`` of a LAMMPS sw file)."""
    return jnp.cos(jnp.deg2rad(params.theta0))


# ------------------------------------------------------------------------ neighbor rows
class SWNeighbors(NamedTuple):
    """Neighbor state: every atom's neighbors within ``a sigma + skin`` as dense rows.

    idx:     ``(N, M)`` int32, neighbor indices of each atom, padded with ``N``;
    pairs:   the half pair list ``(P,)`` it came from (its capacity is static);
    R_ref:   ``(N, d)`` positions, ``box_ref`` ``(d, d)`` the box, at the last build;
    overflow: bool, a build lost pairs (``P`` or ``M`` too small): reallocate.
    """

    idx: Array
    pairs: Pairs
    R_ref: Array
    box_ref: Array
    overflow: Array


def _rows(pairs: Pairs, n: int, row_capacity: int) -> tuple[Array, Array]:
    """Dense neighbor rows ``(n, row_capacity)`` (padded with ``n``) from a half pair list,
    and whether a row overflowed."""
    i2 = jnp.concatenate([pairs.i, pairs.j])
    j2 = jnp.concatenate([pairs.j, pairs.i])
    m2 = jnp.concatenate([pairs.mask, pairs.mask])
    key = jnp.where(m2, i2, n)
    order = jnp.argsort(key, stable=True)
    ks, js = key[order], j2[order]
    rank = jnp.arange(ks.shape[0]) - jnp.searchsorted(ks, ks, side="left")
    valid = ks < n
    fits = valid & (rank < row_capacity)
    row = jnp.where(fits, ks, n)
    col = jnp.where(fits, rank, 0)
    idx = jnp.full((n + 1, row_capacity), n, jnp.int32).at[row, col].set(js.astype(jnp.int32))
    return idx[:n], jnp.any(valid & (rank >= row_capacity))


@partial(jax.jit, static_argnames=("list_range", "capacity", "row_capacity"))
def _build(R, box, list_range: float, capacity: int, row_capacity: int) -> SWNeighbors:
    n = R.shape[0]
    pairs, count = neighbor_pairs(R, box, list_range, capacity)
    idx, row_over = _rows(pairs, n, row_capacity)
    return SWNeighbors(idx, pairs, R, box, (count > capacity) | row_over)


@dataclass(frozen=True, eq=False)
class SWNeighborHandler:
    """Allocates and updates :class:`SWNeighbors` (``general.GeneralEnergy`` handler).

    cutoff: interaction range ``a sigma``; skin: extra list range. The list is rebuilt (in
    :meth:`update`, traceable) when an unlisted pair may have come within ``cutoff``: with
    ``Fm = box inv(box_ref)``, a pair at ``r >= cutoff + skin`` at the build is now at least
    ``s_min(Fm) (cutoff + skin) - |d_1| - |d_2|`` apart (``s_min(Fm) >= 1 / (1 + |inv(Fm) -
    I|_F)``) (``d`` the two largest atom
    displacements, measured in the current box), so the rows stay complete while that is
    ``>= cutoff`` (box changes, e.g. a barostat, are covered).
    """

    cutoff: float
    skin: float = DEFAULT_SKIN

    @property
    def list_range(self) -> float:
        return float(self.cutoff + self.skin)

    def allocate(self, R: Array, box: Array) -> SWNeighbors:
        R = jnp.asarray(R, jnp.float64)
        box = jnp.asarray(box, jnp.float64)
        check_box_fits(np.asarray(box), self.list_range)
        n, dim = R.shape
        # Start from the ideal-gas estimate at the list range, grow on overflow.
        volume = abs(float(np.linalg.det(np.asarray(box))))
        ball = (math.pi if dim == 2 else 4.0 * math.pi / 3.0) * self.list_range**dim
        capacity = bucket(0.75 * n * n * ball / volume + 64)
        row_capacity = 32
        for _ in range(12):
            nb = _build(R, box, self.list_range, capacity, row_capacity)
            if not bool(nb.overflow):
                break
            capacity, row_capacity = 2 * capacity, 2 * row_capacity
        else:
            raise RuntimeError("Stillinger-Weber: could not size the neighbor list")
        # Tighten the rows to the occupancy (with a margin), keeping one static shape per
        # bucket so nearby states share a compilation.
        deg = int(jnp.max(jnp.sum(nb.idx < n, axis=1)))
        count = int(jnp.sum(nb.pairs.mask))
        capacity = bucket(1.25 * count + 64)
        row_capacity = bucket(1.25 * deg + 4)
        return _build(R, box, self.list_range, capacity, row_capacity)

    def update(self, R: Array, box: Array, nbrs: SWNeighbors) -> SWNeighbors:
        ds = fractional(R, box) - fractional(nbrs.R_ref, box)
        d2 = jnp.sum(transform(box, ds - jnp.round(ds)) ** 2, axis=1)
        top = jax.lax.top_k(d2, 2)[0] if d2.shape[0] >= 2 else jnp.concatenate([d2, d2])
        moved = jnp.sqrt(top[0]) + jnp.sqrt(top[1])
        # s_min(box inv(box_ref)) = 1 / |box_ref inv(box)|_2 >= 1 / (1 + |box_ref inv(box) - I|_F)
        dm = nbrs.box_ref @ jnp.linalg.inv(box) - jnp.eye(box.shape[0], dtype=box.dtype)
        s_min = 1.0 / (1.0 + jnp.sqrt(jnp.sum(dm * dm)))
        stale = s_min * self.list_range - moved < self.cutoff
        capacity, row_capacity = nbrs.pairs.i.shape[0], nbrs.idx.shape[1]

        def rebuild(_):
            fresh = _build(R, box, self.list_range, capacity, row_capacity)
            return fresh._replace(overflow=fresh.overflow | nbrs.overflow)

        return jax.lax.cond(stale, rebuild, lambda _: nbrs, None)

    def overflow(self, nbrs: SWNeighbors) -> Array:
        return nbrs.overflow


# ------------------------------------------------------------------------------ energy
def _bonds(R, box, idx, cutoff):
    """Bond vectors ``r_j - r_i`` of the rows ``idx`` as ``d`` components ``(N, M)`` each,
    lengths (safe: 1 where masked) and the mask ``r < cutoff``. Component by component:
    XLA on CPU runs these element-wise ops several times faster than ``(N, M, d)`` arrays
    with a short last axis (see :mod:`space`)."""
    n, dim = R.shape
    s = fractional(R, box)
    valid = idx < n
    j = jnp.where(valid, idx, jnp.arange(n)[:, None])
    ds = [s[j, a] - s[:, a][:, None] for a in range(dim)]
    ds = [x - jnp.round(x) for x in ds]
    dr = [sum(box[a, b] * ds[b] for b in range(dim)) for a in range(dim)]
    r2 = sum(x * x for x in dr)
    mask = valid & (r2 < cutoff * cutoff)
    r = jnp.sqrt(jnp.where(mask, r2, 1.0))
    return dr, r, mask


def _radial_terms(r, mask, gamma, epsilon, sigma, a, A, B, p, q):
    """Per row entry ``(N, M)``: the pair energy ``U2(r)`` and the three-body radial factor
    ``f = exp(gamma sigma / (r - a sigma))``, both 0 where masked."""
    cutoff = a * sigma
    x = sigma / r
    cut = jnp.exp(jnp.where(mask, sigma / (r - cutoff), -1.0))
    u2 = jnp.where(mask, A * epsilon * (B * x**p - x**q) * cut, 0.0)
    f = jnp.where(mask, jnp.exp(jnp.where(mask, gamma * sigma / (r - cutoff), -1.0)), 0.0)
    return u2, f


def _triplet_terms(u, f, c0):
    """``w[i, a, b] = f_a f_b (u_a.u_b - c0)^2`` of vertex ``i`` and its row slots ``a != b``
    (0 on the diagonal) ``(N, M, M)``: each angle's term appears twice, as ``(a, b)`` and
    ``(b, a)``."""
    cos = sum(c[:, :, None] * c[:, None, :] for c in u)
    off = ~jnp.eye(f.shape[1], dtype=bool)
    return jnp.where(off[None], f[:, :, None] * f[:, None, :] * (cos - c0) ** 2, 0.0)


def sw_energy(
    R: Array,
    box: Array,
    params: SWParams,
    neighbors: SWNeighbors,
    *,
    epsilon: float = 1.0,
    sigma: float = 1.0,
    a: float = SW_A_CUT,
    A: float = SW_A,
    B: float = SW_B,
    p: float = SW_P,
    q: float = SW_Q,
    method: str = "moments",
    per_atom: bool = False,
) -> Array:
    """Total Stillinger-Weber energy (or per-atom energies ``(N,)`` with ``per_atom``: half
    of each pair term to each atom, the three-body term to the vertex atom)."""
    dr, r, mask = _bonds(R, box, neighbors.idx, a * sigma)
    u2, f = _radial_terms(r, mask, params.gamma, epsilon, sigma, a, A, B, p, q)
    # Two-body: each pair appears in both rows, so half of U2 per row entry.
    e_atom = 0.5 * jnp.sum(u2, axis=1)
    # Three-body on each vertex i over the pairs j < k of its row.
    lam = params.lambda_
    c0 = cos_theta0(params)
    u = [c / r for c in dr]  # unit bond vectors, by component (masked entries: f = 0)
    dim = len(u)
    if method == "moments":
        fu = [f * c for c in u]
        vv = sum(jnp.sum(c, axis=1) ** 2 for c in fu)  # |v|^2
        TT = 0.0  # |T|_F^2, T_kl = sum_m f u_k u_l (symmetric)
        for k in range(dim):
            for m in range(k, dim):
                t = jnp.sum(fu[k] * u[m], axis=1)
                TT = TT + (1.0 if k == m else 2.0) * t * t
        F = jnp.sum(f, axis=1)
        uu = sum(c * c for c in u)
        diag = jnp.sum(f * f * (uu - c0) ** 2, axis=1)
        e3 = 0.5 * (TT - 2.0 * c0 * vv + c0**2 * F**2 - diag)
    elif method == "triplets":
        e3 = 0.5 * jnp.sum(_triplet_terms(u, f, c0), axis=(1, 2))
    else:
        raise ValueError(_METHOD_ERROR.format(method))
    e_atom = e_atom + lam * epsilon * e3
    return e_atom if per_atom else jnp.sum(e_atom)


@partial(jax.jit, static_argnames=("epsilon", "sigma", "a", "A", "B", "p", "q"))
def atom_virial(
    R: Array,
    box: Array,
    params: SWParams,
    neighbors: SWNeighbors,
    *,
    epsilon: float = 1.0,
    sigma: float = 1.0,
    a: float = SW_A_CUT,
    A: float = SW_A,
    B: float = SW_B,
    p: float = SW_P,
    q: float = SW_Q,
) -> Array:
    """Per-atom virials ``W_i = d e_i / d F`` ``(N, d, d)`` (energy units) of a homogeneous
    deformation ``R -> R (I + F)^T``, ``box -> (I + F) box`` at ``F = 0``, where ``e_i`` is
    atom ``i``'s share of the energy in LAMMPS's convention (``compute stress/atom``): half
    of each pair term, a third of each three-body term to each of its three atoms. ``W_i``
    is symmetric and positive in tension; ``sum_i W_i = V sigma`` (the stress of
    :mod:`mechanics`) and equals LAMMPS's ``stress/atom`` output (stress times volume).
    Costs ``O(N M^2)`` memory (the triplets of every row), one derivative direction at a
    time; an analysis of stored states, not a hot path."""
    R, box = jnp.asarray(R), jnp.asarray(box)
    n, dim = R.shape
    c0 = cos_theta0(params)
    idx = neighbors.idx
    slot = jnp.where(idx < n, idx, n)  # padded slots go to a dropped segment

    def shares(F):
        G = jnp.eye(dim, dtype=R.dtype) + F
        dr, r, mask = _bonds(R @ G.T, G @ box, idx, a * sigma)
        u2, f = _radial_terms(r, mask, params.gamma, epsilon, sigma, a, A, B, p, q)
        w = params.lambda_ * epsilon * _triplet_terms([c / r for c in dr], f, c0)
        vertex = 0.5 * jnp.sum(u2, axis=1) + jnp.sum(w, axis=(1, 2)) / 6.0
        ends = jnp.sum(w, axis=2) / 3.0  # (N, M): slot a's third of its angles at vertex i
        return vertex + jax.ops.segment_sum(ends.reshape(-1), slot.reshape(-1), n + 1)[:n]

    basis = jnp.eye(dim * dim, dtype=R.dtype).reshape(-1, dim, dim)
    zero = jnp.zeros((dim, dim), R.dtype)
    cols = jax.lax.map(lambda t: jax.jvp(shares, (zero,), (t,))[1], basis)  # (d*d, N)
    return cols.T.reshape(n, dim, dim)


def stillinger_weber_energy(
    *,
    epsilon: float = 1.0,
    sigma: float = 1.0,
    a: float = SW_A_CUT,
    A: float = SW_A,
    B: float = SW_B,
    p: float = SW_P,
    q: float = SW_Q,
    skin: float = DEFAULT_SKIN,
    method: str = "moments",
    name: str = "Stillinger-Weber",
) -> GeneralEnergy:
    """The Stillinger-Weber energy as a :class:`general.GeneralEnergy` ``fn(R, box, params,
    neighbors)`` with params :class:`SWParams` and its own neighbor handler
    (:class:`SWNeighborHandler`, list range ``a sigma + skin``).

    Build it once and reuse it (a static argument of compiled functions). The fixed
    constants default to the paper's reduced units.
    """
    for label, value in (("epsilon", epsilon), ("sigma", sigma), ("a", a), ("A", A)):
        _check_value(label, value, 0.0, math.inf, low_open=True)
    _check_value("B", B, 0.0, math.inf)
    _check_value("p", p, 0.0, math.inf)
    _check_value("q", q, 0.0, math.inf)
    _check_value("skin", skin, 0.0, math.inf, low_open=True)
    if method not in ("moments", "triplets"):
        raise ValueError(_METHOD_ERROR.format(method))
    consts = dict(epsilon=float(epsilon), sigma=float(sigma), a=float(a), A=float(A),
                  B=float(B), p=float(p), q=float(q), method=method)  # fmt: skip

    def fn(R, box, params, neighbors):
        return sw_energy(R, box, params, neighbors, **consts)

    handler = SWNeighborHandler(float(a) * float(sigma), float(skin))
    return GeneralEnergy(fn, handler, name)


# ------------------------------------------------------------------------------ crystals
def diamond_lattice_constant(sigma: float = 1.0) -> float:
    """Cubic lattice constant of the diamond crystal with nearest-neighbour distance
    ``2^(1/6) sigma`` (the two-body minimum, where every tetrahedral angle has cos = -1/3
    and the three-body term vanishes): ``4 * 2^(1/6) sigma / sqrt(3)``."""
    return 4.0 * 2.0 ** (1.0 / 6.0) * sigma / math.sqrt(3.0)


def diamond(cells, lattice_constant: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Diamond crystal of ``cells`` (int or 3 ints) cubic cells: ``(R (8 n_cells, 3), box)``."""
    cells = (cells,) * 3 if np.ndim(cells) == 0 else tuple(cells)
    a0 = diamond_lattice_constant() if lattice_constant is None else float(lattice_constant)
    basis = np.array([[0, 0, 0], [0, 2, 2], [2, 0, 2], [2, 2, 0],
                      [1, 1, 1], [1, 3, 3], [3, 1, 3], [3, 3, 1]]) / 4.0  # fmt: skip
    grid = np.stack(np.meshgrid(*[np.arange(c) for c in cells], indexing="ij"), -1)
    R = ((grid.reshape(-1, 1, 3) + basis[None]) * a0).reshape(-1, 3)
    return R, np.diag(np.asarray(cells, float) * a0)


def two_body_minimum(sigma: float = 1.0, B: float = SW_B, p: float = SW_P, q: float = SW_Q,
                     A: float = SW_A, epsilon: float = 1.0, a: float = SW_A_CUT):  # fmt: skip
    """``(r_min, U2(r_min))`` of the two-body term (Newton on ``U2'``; for the default
    constants ``2^(1/6) sigma`` and ``-eps`` to 1e-9: Stillinger and Weber chose ``A, B``
    for that)."""
    u = lambda r: A * epsilon * (B * (sigma / r) ** p - (sigma / r) ** q) * jnp.exp(
        sigma / (r - a * sigma)
    )
    du, d2u = jax.grad(u), jax.grad(jax.grad(u))
    r = jnp.asarray(2.0 ** (1.0 / 6.0) * sigma)
    for _ in range(50):
        r = r - du(r) / d2u(r)
    return float(r), float(u(r))
