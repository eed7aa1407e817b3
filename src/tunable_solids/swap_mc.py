"""SWAP Monte Carlo at a temperature T (k_B = 1): particle displacements and size swaps with
Metropolis acceptance, for pair potentials with per-particle sizes (:class:`ParticleParams`),
in periodic orthorhombic boxes, 2D and 3D. Used to equilibrate glass formers at a parent
temperature T_p before a quench (Berthier, Coslovich, Ninarello, Ozawa, PRL 116, 238002
(2016); Ninarello, Berthier, Coslovich, PRX 7, 021039 (2017)).

Moves
-----
- displacement: one particle moves by ``dx`` uniform in the cube ``[-delta, delta]^d``;
- SWAP: two particles exchange their sizes (the multiset of sizes is conserved).
Each move step is a SWAP step with probability ``p_swap`` (0.2 in Berthier et al.), else a
displacement step, drawn independently of the configuration (all active cells of one step make
the same kind of move); both proposals are symmetric, so the Metropolis rule
``accept with min(1, exp(-dE / T))`` gives detailed balance w.r.t. ``exp(-E / T)`` over
positions and size assignments.

Checkerboard decomposition (vectorized in JAX)
-----------------------------------------------
The box is cut into ``n_a`` cells per axis, ``n_a`` even (``floor(L_a / r_c)``, lowered by one
when odd; at least 2), each of side ``>= r_c``, the largest interaction range over all pairs
of sizes. A *round* draws a random grid offset (uniform in one cell, independent of the
configuration), sorts the particles into cells (dense padded arrays ``(cells, capacity)``),
then runs ``2^d`` sub-steps, one per color class (cell index parities), in a random order. In
a sub-step every cell of the active class makes ``moves_per_cell`` trial moves in sequence;
each picks one particle uniformly among the particles of that cell (a SWAP picks an unordered
pair of distinct particles of the same cell uniformly: SWAPs are local, between particles of
one cell; a valid variant of the global SWAP since the proposal is still symmetric). A
displacement that would take the particle out of its cell is rejected, so the occupation of
every cell, hence the uniform choice, is the same before and after a move: each sub-step
satisfies detailed balance for the fixed offset, and a round (a product of such kernels,
averaged over offsets and color orders) leaves the Boltzmann distribution invariant. The
offset is drawn per round rather than per sub-step: a particle stays in its cell for the whole
round, so one cell sort serves all ``2^d`` sub-steps. Active cells are at least one cell apart
and cells are at least ``r_c`` wide, so the moves of different active cells never interact:
they are evaluated and accepted in parallel. The energy change of a move sums over the
particles of the ``3^d`` neighbouring cells, each taken at the periodic image adjacent to the
active cell (a static shift per neighbour cell: no minimum-image rounding in the kernel; with 2
cells along an axis the other cell is seen as both of its images, at most one of which is
within ``r_c <= L / 2``).

A *sweep* is ``rounds_per_sweep = max(1, round(N / (cells * moves_per_cell)))`` rounds, i.e.
about N trial moves.

Cell capacity: a cell holding more particles than the capacity would silently lose
neighbours, so it is detected: the block of sweeps is recomputed from its start with twice the
capacity (the capacity is part of the state, so a resumed run uses the same shapes).

Adaptive displacement: while ``state.sweep < warmup_sweeps`` the half-width ``delta`` is
rescaled after every sweep towards a displacement acceptance ``target_acceptance``; after the
warm-up it stays fixed (a fixed kernel: detailed balance holds). Only production sweeps after
the warm-up sample the Boltzmann distribution exactly.

The total energy is tracked incrementally (sum of accepted ``dE``); :func:`energy_error`
compares it to a fresh full evaluation.

Units: lengths as the positions and sizes, energies in the potential's ``k``, T in the same
units as the energy (k_B = 1). The state is a :class:`SwapState` of plain arrays: save it with
:func:`state_arrays`, restore with :func:`state_from_arrays`; a run split at any sweep with a
save/restore in between is bit-identical to one run (unless a cell overflows: the capacity then
grows at a block start, which can differ between the two runs and change the last bits).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .energy import energy as _energy
from .potentials import InversePowerLaw, PairParams, ParticleParams
from .space import bucket

Array = jax.Array

DISPLACEMENT, SWAP = 0, 1  # indices of the per-move-kind counters

# Distance given to empty or excluded neighbour slots: beyond every cutoff.
_FAR = 1.0e6


class SwapState(NamedTuple):
    """The full state of a SWAP MC chain (a pytree of arrays; checkpoint = these arrays).

    positions:     ``(N, d)`` float64, wrapped into the box ``[0, L)^d``.
    sizes:         ``(N,)`` float64, the current size of every particle (a permutation of
                   the initial sizes).
    key:           ``(2,)`` uint32 raw PRNG key.
    sweep:         ``()`` int64, sweeps done so far.
    accepted:      ``(2,)`` int64 accepted moves per kind ``[displacement, swap]``.
    proposed:      ``(2,)`` int64 proposed moves per kind.
    energy:        ``()`` float64 total potential energy, tracked incrementally.
    delta:         ``()`` float64 half-width of the displacement cube.
    cell_capacity: ``()`` int64 slots per cell of the padded cell arrays.
    """

    positions: Array
    sizes: Array
    key: Array
    sweep: Array
    accepted: Array
    proposed: Array
    energy: Array
    delta: Array
    cell_capacity: Array


class Progress(NamedTuple):
    """What the callback of :func:`run` receives after each block of sweeps.

    sweep: sweeps done; energy_per_particle: E / N; acceptance_displacement and
    acceptance_swap: accepted / proposed over the block (nan if none proposed); delta.
    """

    sweep: int
    energy_per_particle: float
    acceptance_displacement: float
    acceptance_swap: float
    delta: float


class _Plan(NamedTuple):
    """Static (compile-time) layout of the checkerboard."""

    potential: object
    ncell: tuple
    capacity: int
    rounds: int
    moves_per_cell: int


# ----------------------------------------------------------------------------- set-up


def box_lengths(box) -> np.ndarray:
    """Edge lengths ``(d,)`` of an orthorhombic box (diagonal ``(d, d)`` matrix); any other
    box raises ``ValueError``."""
    b = np.asarray(box, float)
    if b.ndim != 2 or b.shape[0] != b.shape[1] or b.shape[0] not in (2, 3):
        raise ValueError(f"box must be a (d, d) matrix with d = 2 or 3, got shape {b.shape}")
    lengths = np.diag(b).copy()
    off = b - np.diag(lengths)
    if np.any(np.abs(off) > 1e-12 * np.max(np.abs(lengths))) or np.any(lengths <= 0):
        raise ValueError(
            "box must be orthorhombic (a diagonal matrix with positive entries) for SWAP MC; "
            f"got {b.tolist()}"
        )
    return lengths


def _sigma(li, lj, nonadditivity):
    return 0.5 * (li + lj) * (1.0 - nonadditivity * jnp.abs(li - lj))


def interaction_range(potential, sizes, nonadditivity) -> float:
    """Largest interaction range over all pairs of the given sizes (a swap keeps the set of
    sizes, so this bound holds for the whole run). ``nonadditivity >= 0``: ``sigma_ij`` is at
    most the largest size; otherwise all pairs are checked (host-side, in row blocks)."""
    s = np.asarray(sizes, float)
    eps = float(nonadditivity)
    if eps >= 0.0:
        smax = float(s.max())
    else:
        u = np.unique(s)
        smax = 0.0
        for start in range(0, len(u), 1024):
            a = u[start : start + 1024, None]
            smax = max(smax, float(np.max(0.5 * (a + u) * (1.0 - eps * np.abs(a - u)))))
    return float(potential.cutoff(jnp.asarray(smax)))


def cell_grid(box, r_c: float) -> tuple[int, ...]:
    """Cells per axis: ``floor(L_a / r_c)``, lowered to an even number; ``ValueError`` naming
    ``box`` if an axis has room for fewer than 2 cells of side ``>= r_c``."""
    lengths = box_lengths(box)
    n = np.floor(lengths / r_c).astype(int)
    n = n - (n % 2)
    if np.any(n < 2):
        raise ValueError(
            f"box too small for SWAP MC: edge lengths {lengths.tolist()} must hold at least 2 "
            f"cells of side >= the interaction range r_c = {r_c:.4g} per axis (L >= 2 r_c); "
            "use a larger N"
        )
    return tuple(int(x) for x in n)


def _tables(ncell: tuple):
    """Static tables of the grid: cell coordinates ``(C, d)``; the ``3^d`` neighbour cells of
    every cell ``(C, 3^d)`` with the periodic image shift of each, in box lengths
    ``(C, 3^d, d)`` (with 2 cells along an axis the other cell appears twice, as its two
    images, of which at most one is within range since ``r_c <= L / 2``); the column of the
    cell itself among its neighbours; the active cells of each color class ``(2^d, C/2^d)``."""
    dim = len(ncell)
    n = np.array(ncell)
    coords = np.array(list(itertools.product(*[range(k) for k in ncell])), np.int64)
    offsets = np.array(list(itertools.product(*[(-1, 0, 1)] * dim)), np.int64)
    center = int(np.flatnonzero(np.all(offsets == 0, axis=1))[0])
    raw = coords[:, None, :] + offsets[None]
    neighbours = np.ravel_multi_index(tuple(np.mod(raw, n).transpose(2, 0, 1)), ncell)
    shifts = np.floor_divide(raw, n).astype(np.float64)  # -1, 0 or +1 box lengths
    colors = []
    for col in range(2**dim):
        bits = np.array([(col >> a) & 1 for a in range(dim)])
        colors.append(np.flatnonzero(np.all(coords % 2 == bits, axis=1)))
    return coords, neighbours, shifts, center, np.stack(colors)


def default_cell_capacity(n: int, ncell: tuple) -> int:
    """Slots per cell: the mean occupancy plus 3 standard deviations of an ideal gas plus 4,
    on the :func:`space.bucket` ladder (dense liquids fluctuate less; a cell that still
    overflows makes :func:`run` redo the block with twice the capacity)."""
    mean = n / math.prod(ncell)
    return min(bucket(mean + 3.0 * math.sqrt(mean) + 4.0), n)


def init_state(potential, positions, box, params: ParticleParams, seed, delta: float = 0.1):
    """A :class:`SwapState` at ``positions`` ``(N, d)`` with sizes ``params.diameter``, the
    PRNG seeded by ``seed`` (int) and the energy evaluated in full. ``delta``: initial
    displacement half-width (length units)."""
    params = _check_params(params)
    R = np.asarray(positions, float)
    lengths = box_lengths(box)
    if R.ndim != 2 or R.shape[1] != len(lengths):
        raise ValueError(f"positions must be (N, {len(lengths)}), got shape {R.shape}")
    if params.diameter.shape != (R.shape[0],):
        raise ValueError(
            f"params.diameter must have shape ({R.shape[0]},), got {params.diameter.shape}"
        )
    if not delta > 0:
        raise ValueError(f"delta must be positive, got {delta!r}")
    r_c = interaction_range(potential, params.diameter, params.nonadditivity)
    ncell = cell_grid(box, r_c)
    R = R - lengths * np.floor(R / lengths)
    sizes = jnp.asarray(params.diameter, jnp.float64)
    e = total_energy(potential, R, box, params, sizes)
    return SwapState(
        positions=jnp.asarray(R, jnp.float64),
        sizes=sizes,
        key=jax.random.key_data(jax.random.key(int(seed))).astype(jnp.uint32),
        sweep=jnp.asarray(0, jnp.int64),
        accepted=jnp.zeros(2, jnp.int64),
        proposed=jnp.zeros(2, jnp.int64),
        energy=jnp.asarray(e, jnp.float64),
        delta=jnp.asarray(delta, jnp.float64),
        cell_capacity=jnp.asarray(default_cell_capacity(R.shape[0], ncell), jnp.int64),
    )


def _check_params(params) -> ParticleParams:
    if not isinstance(params, ParticleParams):
        raise TypeError(
            "SWAP MC needs per-particle sizes: params must be potentials.ParticleParams, "
            f"got {type(params).__name__}"
        )
    return params


# ----------------------------------------------------------------------------- energies


def total_energy(potential, positions, box, params: ParticleParams, sizes=None) -> float:
    """Fresh full potential energy with sizes ``sizes`` ``(N,)`` (default ``params.diameter``):
    :func:`energy.energy` over the pair list of :func:`preparation.interacting_pairs`."""
    from .preparation import interacting_pairs  # heavy module: imported on use

    R = jnp.asarray(positions, jnp.float64)
    p = params if sizes is None else params._replace(diameter=jnp.asarray(sizes, jnp.float64))
    box = jnp.asarray(box, jnp.float64)
    pairs = interacting_pairs(potential, R, box, p)
    species = jnp.arange(R.shape[0])
    return float(_energy(potential, R, box, p, species, pairs))


def energy_error(state: SwapState, potential, box, params: ParticleParams) -> float:
    """Relative difference ``|E_tracked - E_full| / max(|E_full|, N * 1e-300)`` between the
    incrementally tracked energy and :func:`total_energy` of the state's configuration."""
    full = total_energy(potential, state.positions, box, params, state.sizes)
    return abs(float(state.energy) - full) / max(abs(full), 1e-300)


def _energy_table(potential, qw, ql, nw, nl, mask, k, eps):
    """Energy of query particles with their neighbour slots, for every (position, size)
    combination: query positions ``qw (A, P, d)`` and sizes ``ql (A, S)``; neighbour slots
    ``nw (A, d, M)`` (already shifted to the query's periodic image), ``nl (A, M)``,
    ``mask (A, M)``; returns ``(A, P, S)``. Coordinates are component-major (``d`` before
    ``M``) so the inner loop runs over contiguous slots (20% faster on CPU)."""
    r2 = 0.0
    for a in range(qw.shape[-1]):
        dr = qw[:, :, a, None] - nw[:, None, a, :]  # (A, P, M)
        r2 = r2 + dr * dr
    m = mask[:, None, None, :]
    r2 = jnp.where(m, r2[:, :, None, :], _FAR**2)  # (A, P, 1, M)
    sigma = _sigma(ql[:, None, :, None], nl[:, None, None, :], eps)  # (A, 1, S, M)
    u = _pair_energy_r2(potential, r2, sigma, k)
    return jnp.sum(jnp.where(m, u, 0.0), axis=-1)


def _pair_energy_r2(potential, r2, sigma, k):
    """Pair energy from squared distances. For an :class:`InversePowerLaw` with an even
    integer exponent the same formula in ``x^2 = r^2 / sigma^2`` (no square root, integer
    powers: XLA's ``pow`` with a float exponent costs ~30x more on CPU, measured 460 vs
    14 us for 66k pairs); any other potential through its ``pair_energy(sqrt(r2))``."""
    n = getattr(potential, "exponent", None)
    if not isinstance(potential, InversePowerLaw) or n != int(n) or int(n) % 2:
        pp = PairParams(sigma, k, jnp.zeros_like(sigma))
        return potential.pair_energy(jnp.sqrt(r2), pp)
    c0, c2, c4 = potential.coefficients()
    x2 = r2 / (sigma * sigma)
    inside = x2 < potential.x_c**2
    x2 = jnp.where(inside, x2, 1.0)
    u = jax.lax.integer_pow(x2, -(int(n) // 2)) + c0 + c2 * x2 + c4 * x2 * x2
    return k * jnp.where(inside, u, 0.0)


# ----------------------------------------------------------------------------- kernel


class _Consts(NamedTuple):
    lengths: Array  # (d,)
    side: Array  # (d,)
    temperature: Array
    p_swap: Array
    k: Array
    nonadditivity: Array
    warmup_sweeps: Array
    target_acceptance: Array


def _round(plan: _Plan, c: _Consts, carry):
    """One round: random offset, cell sort, ``2^d`` sub-steps (one per color class)."""
    positions, sizes, key, energy, accepted, proposed, delta, overflow = carry
    n, dim = positions.shape
    ncell = np.array(plan.ncell)
    cap, n_moves = plan.capacity, plan.moves_per_cell
    coords, neighbours, shifts, center, colors = _tables(plan.ncell)
    n_colors, n_active = colors.shape
    n_cells, n_nb = neighbours.shape
    m_slots = n_nb * cap

    key, k_off, k_perm, k_moves = jax.random.split(key, 4)
    offset = jax.random.uniform(k_off, (dim,), jnp.float64) * c.side
    perm = jax.random.permutation(k_perm, n_colors)
    draws = jax.random.uniform(k_moves, (n_colors, n_moves, n_active, 4 + dim), jnp.float64)

    # Cell sort in the offset frame w = (x - offset) mod L, in [0, L).
    w = jnp.mod(positions - offset, c.lengths)
    w = jnp.where(w >= c.lengths, w - c.lengths, w)
    cc = jnp.clip(jnp.floor(w / c.side).astype(jnp.int32), 0, jnp.asarray(ncell - 1, jnp.int32))
    flat = cc[:, 0]
    for a in range(1, dim):
        flat = flat * int(ncell[a]) + cc[:, a]
    order = jnp.argsort(flat, stable=True)
    counts = jnp.zeros(n_cells, jnp.int32).at[flat].add(1)
    starts = jnp.cumsum(counts) - counts
    sorted_cells = flat[order]
    slot = jnp.arange(n, dtype=jnp.int32) - starts[sorted_cells]
    overflow = overflow | jnp.any(counts > cap)
    ids = (
        jnp.full((n_cells, cap), n, jnp.int32)
        .at[sorted_cells, slot]
        .set(order.astype(jnp.int32), mode="drop")
    )
    pad = lambda x, v: jnp.concatenate([x, jnp.full((1,) + x.shape[1:], v, x.dtype)])
    # Cell arrays: x (real positions, updated by accepted dx, written back at the end),
    # w (the same positions in the offset frame, component-major: energies and the cell
    # test), sizes. Padding slots: w = 0, size 1 (masked out by the counts).
    cell_x = pad(positions, 0.0)[ids]  # (C, cap, d)
    cell_w = jnp.swapaxes(pad(w, 0.0)[ids], 1, 2)  # (C, d, cap)
    cell_l = pad(sizes, 1.0)[ids]  # (C, cap)

    colors_j = jnp.asarray(colors, jnp.int32)
    neighbours_j = jnp.asarray(neighbours, jnp.int32)
    shift_all = jnp.asarray(shifts) * c.lengths  # (C, n_nb, d)
    lo_all = jnp.asarray(coords, jnp.float64) * c.side  # (C, d) lower corners (w frame)
    slots_m = jnp.arange(m_slots, dtype=jnp.int32)

    def neighbourhood(cell_w, cell_l, act, a, b):
        """Neighbour slots of the active cells (shifted to the active cell's image), without
        the moving particles a and b: ``(A, d, M)``, ``(A, M)``, mask ``(A, M)``."""
        nb = neighbours_j[act]  # (A, n_nb)
        nw = cell_w[nb] + shift_all[act][..., None]  # (A, n_nb, d, cap)
        nw = jnp.swapaxes(nw, 1, 2).reshape(n_active, dim, m_slots)
        nl = cell_l[nb].reshape(n_active, m_slots)
        valid = (jnp.arange(cap) < counts[nb][..., None]).reshape(n_active, m_slots)
        ca, cb = center * cap + a, center * cap + b
        return nw, nl, valid & (slots_m != ca[:, None]) & (slots_m != cb[:, None])

    def table(qw, ql, nbh):
        return _energy_table(plan.potential, qw, ql, *nbh, c.k, c.nonadditivity)

    def pick(n_c, u):
        return jnp.clip(jnp.floor(u * n_c).astype(jnp.int32), 0, jnp.maximum(n_c - 1, 0))

    def displace(arrays, act, u):
        cell_x, cell_w, cell_l, energy, accepted, proposed = arrays
        n_c = counts[act]
        a = pick(n_c, u[:, 0])
        dx = (2.0 * u[:, 4:] - 1.0) * delta
        xa, la, wa = cell_x[act, a], cell_l[act, a], cell_w[act, :, a]
        lo = lo_all[act]
        inside = jnp.all((wa + dx >= lo) & (wa + dx < lo + c.side), axis=-1)
        nbh = neighbourhood(cell_w, cell_l, act, a, a)
        e = table(jnp.stack([wa + dx, wa], 1), la[:, None], nbh)
        d_e = e[:, 0, 0] - e[:, 1, 0]
        real = n_c >= 1
        accept = real & inside & jnp.isfinite(d_e) & (u[:, 3] < jnp.exp(-d_e / c.temperature))
        cell_x = cell_x.at[act, a].set(jnp.where(accept[:, None], xa + dx, xa))
        cell_w = cell_w.at[act, :, a].set(jnp.where(accept[:, None], wa + dx, wa))
        energy = energy + jnp.sum(jnp.where(accept, d_e, 0.0))
        accepted = accepted.at[DISPLACEMENT].add(jnp.sum(accept))
        proposed = proposed.at[DISPLACEMENT].add(jnp.sum(real))
        return cell_x, cell_w, cell_l, energy, accepted, proposed

    def swap(arrays, act, u):
        cell_x, cell_w, cell_l, energy, accepted, proposed = arrays
        n_c = counts[act]
        a = pick(n_c, u[:, 0])
        other = jnp.clip(jnp.floor(u[:, 1] * (n_c - 1)).astype(jnp.int32), 0, n_c - 2)
        real = n_c >= 2
        b = jnp.where(real, (a + 1 + other) % jnp.maximum(n_c, 1), a)
        la, lb = cell_l[act, a], cell_l[act, b]
        qw = jnp.stack([cell_w[act, :, a], cell_w[act, :, b]], 1)
        e = table(qw, jnp.stack([la, lb], 1), neighbourhood(cell_w, cell_l, act, a, b))
        # The pair (a, b) itself is unchanged by the swap (sigma_ab is symmetric).
        d_e = e[:, 0, 1] + e[:, 1, 0] - e[:, 0, 0] - e[:, 1, 1]
        accept = real & jnp.isfinite(d_e) & (u[:, 3] < jnp.exp(-d_e / c.temperature))
        cell_l = cell_l.at[act, a].set(jnp.where(accept, lb, la))
        cell_l = cell_l.at[act, b].set(jnp.where(accept, la, lb))
        energy = energy + jnp.sum(jnp.where(accept, d_e, 0.0))
        accepted = accepted.at[SWAP].add(jnp.sum(accept))
        proposed = proposed.at[SWAP].add(jnp.sum(real))
        return cell_x, cell_w, cell_l, energy, accepted, proposed

    def move(arrays, act, u):
        """One trial move in every active cell, all of one kind: SWAP with probability
        p_swap, drawn per move step independently of the configuration."""
        return jax.lax.cond(u[0, 2] < c.p_swap, swap, displace, arrays, act, u)

    def substep(s, arrays):
        act = colors_j[perm[s]]
        return jax.lax.fori_loop(0, n_moves, lambda m, arr: move(arr, act, draws[s, m]), arrays)

    arrays = (cell_x, cell_w, cell_l, energy, accepted, proposed)
    cell_x, _, cell_l, energy, accepted, proposed = jax.lax.fori_loop(0, n_colors, substep, arrays)

    flat_ids = ids.reshape(-1)
    new_x = pad(positions, 0.0).at[flat_ids].set(cell_x.reshape(-1, dim))[:n]
    outside = (new_x < 0) | (new_x >= c.lengths)
    new_x = jnp.where(outside, new_x - c.lengths * jnp.floor(new_x / c.lengths), new_x)
    new_l = pad(sizes, 1.0).at[flat_ids].set(cell_l.reshape(-1))[:n]
    return new_x, new_l, key, energy, accepted, proposed, delta, overflow


def _sweep(plan: _Plan, c: _Consts, carry, sweep):
    """One sweep (``plan.rounds`` rounds), then the warm-up adaptation of ``delta``."""
    acc0, prop0 = carry[4], carry[5]
    carry = jax.lax.fori_loop(0, plan.rounds, lambda _, x: _round(plan, c, x), carry)
    positions, sizes, key, energy, accepted, proposed, delta, overflow = carry
    n_acc = (accepted - acc0)[DISPLACEMENT]
    n_prop = (proposed - prop0)[DISPLACEMENT]
    rate = n_acc / jnp.maximum(n_prop, 1)
    factor = jnp.sqrt(jnp.clip(rate / c.target_acceptance, 0.5, 2.0))
    adapted = jnp.clip(delta * factor, 1e-6, 0.5 * jnp.min(c.side))
    delta = jnp.where((sweep < c.warmup_sweeps) & (n_prop > 0), adapted, delta)
    return positions, sizes, key, energy, accepted, proposed, delta, overflow


@partial(jax.jit, static_argnums=0)
def _block(plan: _Plan, c: _Consts, state: SwapState, n_sweeps):
    """``n_sweeps`` sweeps from ``state``; returns the new state and the overflow flag."""

    def body(i, carry):
        return _sweep(plan, c, carry, state.sweep + i)

    carry = (
        state.positions,
        state.sizes,
        state.key,
        state.energy,
        state.accepted,
        state.proposed,
        state.delta,
        jnp.asarray(False),
    )
    carry = jax.lax.fori_loop(0, n_sweeps, body, carry)
    positions, sizes, key, energy, accepted, proposed, delta, overflow = carry
    new = SwapState(
        positions,
        sizes,
        key,
        state.sweep + n_sweeps,
        accepted,
        proposed,
        energy,
        delta,
        state.cell_capacity,
    )
    return new, overflow


# ----------------------------------------------------------------------------- run


def run(
    state: SwapState,
    n_sweeps: int,
    potential,
    box,
    params: ParticleParams,
    temperature: float,
    p_swap: float = 0.2,
    *,
    warmup_sweeps: int = 0,
    target_acceptance: float = 0.4,
    moves_per_cell: int = 1,
    block_sweeps: int = 100,
    callback: Callable[[Progress], None] | None = None,
) -> SwapState:
    """``n_sweeps`` sweeps of SWAP MC at ``temperature`` from ``state``; returns the new state.

    potential: a pair potential with ``pair_energy`` and ``cutoff`` (e.g.
    :class:`potentials.InversePowerLaw`); box: orthorhombic ``(d, d)``; params: the
    :class:`ParticleParams` (``k``, ``nonadditivity``; sizes come from ``state.sizes``);
    p_swap: probability that a trial move is a SWAP (0: plain MC); warmup_sweeps: ``delta``
    adapts while ``state.sweep < warmup_sweeps`` (absolute sweep count, so a resumed run
    continues the same schedule) towards ``target_acceptance`` of displacements;
    moves_per_cell: trial moves per active cell per sub-step; block_sweeps: sweeps per compiled
    call, after each of which ``callback(Progress)`` is called (if given).
    """
    params = _check_params(params)
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    if not 0.0 <= p_swap <= 1.0:
        raise ValueError(f"p_swap must be in [0, 1], got {p_swap!r}")
    if not 0.0 < target_acceptance < 1.0:
        raise ValueError(f"target_acceptance must be in (0, 1), got {target_acceptance!r}")
    if int(n_sweeps) < 0 or int(block_sweeps) < 1 or int(moves_per_cell) < 1:
        raise ValueError(
            "n_sweeps must be >= 0 and block_sweeps, moves_per_cell >= 1; got "
            f"{n_sweeps!r}, {block_sweeps!r}, {moves_per_cell!r}"
        )
    lengths = box_lengths(box)
    n = state.positions.shape[0]
    r_c = interaction_range(potential, state.sizes, params.nonadditivity)
    ncell = cell_grid(box, r_c)
    n_cells = math.prod(ncell)
    rounds = max(1, round(n / (n_cells * int(moves_per_cell))))
    consts = _Consts(
        jnp.asarray(lengths),
        jnp.asarray(lengths / np.array(ncell)),
        jnp.asarray(float(temperature)),
        jnp.asarray(float(p_swap)),
        jnp.asarray(params.k, jnp.float64),
        jnp.asarray(params.nonadditivity, jnp.float64),
        jnp.asarray(int(warmup_sweeps), jnp.int64),
        jnp.asarray(float(target_acceptance)),
    )
    done = 0
    while done < n_sweeps:
        todo = min(int(block_sweeps), n_sweeps - done)
        while True:
            cap = int(state.cell_capacity)
            plan = _Plan(potential, ncell, cap, rounds, int(moves_per_cell))
            new, overflow = _block(plan, consts, state, jnp.asarray(todo, jnp.int64))
            if not bool(overflow):
                break
            if cap >= n:  # cannot happen: a cell never holds more than N particles
                raise RuntimeError("cell capacity overflow with capacity >= N")
            state = state._replace(cell_capacity=jnp.asarray(min(2 * cap, n), jnp.int64))
        if callback is not None:
            d_acc = np.asarray(new.accepted - state.accepted)
            d_prop = np.asarray(new.proposed - state.proposed)
            with np.errstate(invalid="ignore", divide="ignore"):
                rates = np.where(d_prop > 0, d_acc / np.maximum(d_prop, 1), np.nan)
            callback(
                Progress(
                    int(new.sweep),
                    float(new.energy) / n,
                    float(rates[DISPLACEMENT]),
                    float(rates[SWAP]),
                    float(new.delta),
                )
            )
        state = new
        done += todo
    return state


def acceptance(state: SwapState) -> tuple[float, float]:
    """Cumulative acceptance rates ``(displacement, swap)`` (nan where nothing proposed)."""
    acc, prop = np.asarray(state.accepted), np.asarray(state.proposed)
    rates = [acc[i] / prop[i] if prop[i] > 0 else float("nan") for i in (DISPLACEMENT, SWAP)]
    return float(rates[0]), float(rates[1])


def state_arrays(state: SwapState) -> dict[str, np.ndarray]:
    """The state as a dict of numpy arrays (for a store or ``np.savez``)."""
    return {name: np.asarray(value) for name, value in state._asdict().items()}


def state_from_arrays(arrays) -> SwapState:
    """Inverse of :func:`state_arrays` (any mapping of field name to array)."""
    dtypes = {
        "positions": jnp.float64,
        "sizes": jnp.float64,
        "key": jnp.uint32,
        "sweep": jnp.int64,
        "accepted": jnp.int64,
        "proposed": jnp.int64,
        "energy": jnp.float64,
        "delta": jnp.float64,
        "cell_capacity": jnp.int64,
    }
    return SwapState(**{f: jnp.asarray(np.asarray(arrays[f]), dtypes[f]) for f in dtypes})
