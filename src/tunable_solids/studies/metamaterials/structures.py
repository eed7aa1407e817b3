"""Porous Stillinger-Weber networks: melt-quenched disordered networks and vacancy crystals.

The protocol of *De Novo Atomistic Discovery of Disordered Mechanical Metamaterials* (its
"Experimental Section"), in reduced units (``eps = sigma = m = k_B = 1``):

- **Disordered**: ``N`` atoms at uniform random positions in a cubic box of initial packing
  fraction ``Phi_0 = N (pi/6) d^3 / V`` with ``d = 2^(1/6) sigma`` (the paper's "1.12 sigma",
  the two-body bond length); overlaps removed by minimizing harmonic spheres of diameter
  ``OVERLAP_DIAMETER`` (random positions put atoms at ``r -> 0``, where the SW repulsion
  ``B r^-4`` makes FIRE crawl); then NPT **melt** at ``T = 0.3`` for ``melt_time`` while the
  barostat target goes linearly from the initial pressure ``P_0`` to ``0`` if ``P_0 > 0``,
  or to ``P_0 / 2`` if ``P_0 < 0`` (the paper's rule, LAMMPS sign: ``P > 0`` compression);
  NPT **quench** at ``P = 0`` with ``T`` going linearly ``0.3 -> 0`` over ``quench_time``;
  then FIRE minimization (the project's, to ``max|F| <= force_tol``) at the final box.
- **Crystals**: FCC, diamond or HCP lattices of nearest-neighbour distance ``d`` with a
  fraction of atoms removed at random, minimized, **relaxed** by NPT at ``T = 0.03`` and
  ``P = 0`` for ``melt_time``, quenched ``0.03 -> 0`` over ``quench_time``, minimized.

Dynamics: jax-md's ``simulate.npt_nose_hoover`` (Martyna-Tuckerman-Klein, isotropic box,
Nose-Hoover chains on particles and box), driven through :func:`jax_md_energy`, an adapter
of the project's general energy (real-space ``R``, ``box``) to jax-md's fractional
coordinates with a ``perturbation`` (strain) argument. Settings the paper leaves open
(:class:`MDSettings` defaults): thermostat ``tau = 1`` (100 steps), barostat ``tau = 10``
(1000 steps), chain length 5 (jax-md's defaults in units of dt); masses 1; Maxwell velocities
at the start temperature. jax-md's Nose-Hoover masses are proportional to the target ``kT``:
with a target far below the instantaneous temperature the chain forces grow like ``T / kT``
(measured: a 300-atom quench ramped to ``kT = 1e-4`` in 10 time units ended in NaN), so the
quench ramps to ``temperature_floor`` (default 0.01, a thirtieth of the melt temperature;
a crystal quench to a third of its relaxation temperature at most) and the minimization that
follows removes the rest. The target ``P`` and ``kT`` are passed to each step (jax-md's
dynamic arguments).

Long runs checkpoint: the MD runs in chunks of ``checkpoint_every`` steps; every chunk starts
from neighbour rows rebuilt at the run's fixed capacities (so a resumed run repeats exactly the
arithmetic of an uninterrupted one; tested bit-identical) and is followed by
``checkpoint(steps, arrays)``; minimization runs in rounds of ``minimize.chunk`` FIRE steps
(FIRE restarts each round, resumed or not). Progress (time, ``T``, ``P``, energy per atom,
ETA) goes to the log.

Errors (:class:`StructureError` subclasses) name what went wrong: :class:`DensityError` (a
density that cannot hold ``N`` atoms or a box too small for the interaction range),
:class:`BarostatError` (the box blew up or collapsed), :class:`NonFiniteMDError` (NaN or inf
in the dynamics).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tunable_solids import mechanics, potentials
from tunable_solids.general import GeneralEnergy
from tunable_solids.minimize import MinimizeOptions, minimize
from tunable_solids.space import box_heights, wrap

log = logging.getLogger(__name__)

Array = jax.Array

#: Effective atomic diameter of the packing fraction (the paper's "1.12 sigma"): the bond
#: length at the two-body minimum, 2^(1/6) sigma.
DIAMETER = 2.0 ** (1.0 / 6.0)
#: Diameter of the harmonic spheres that push random start positions apart (below the bond
#: length: only real overlaps are removed, the melt does the rest).
OVERLAP_DIAMETER = 0.9
#: max|F| of the overlap removal.
OVERLAP_FORCE = 1e-3
#: Densest packing fraction a random start is allowed (harmonic spheres of diameter
#: OVERLAP_DIAMETER must relax: random close packing of spheres is ~0.64).
MAX_START_PHI = 0.55
#: A box whose volume changed by more than this factor (either way) during one chunk blew up.
BOX_BLOWUP = 8.0
LATTICES = ("fcc", "diamond", "hcp")


class StructureError(RuntimeError):
    """A structure could not be made (the subclass says why)."""


class DensityError(StructureError, ValueError):
    """The requested density cannot hold the atoms (or the box cannot hold the cutoff)."""


class BarostatError(StructureError):
    """The barostat blew the box up or collapsed it."""


class NonFiniteMDError(StructureError, FloatingPointError):
    """NaN or inf in positions, momenta or energy during MD."""


@dataclass(frozen=True)
class MDSettings:
    """MD protocol (reduced units). Paper values: ``dt = 0.01``, ``melt_time = quench_time =
    100``, ``melt_temperature = 0.3``, ``crystal_temperature = 0.03``; the rest is what the
    paper leaves open (see the module docstring)."""

    dt: float = 0.01
    melt_time: float = 100.0
    quench_time: float = 100.0
    melt_temperature: float = 0.3
    crystal_temperature: float = 0.03
    thermostat_tau: float = 1.0
    barostat_tau: float = 10.0
    chain_length: int = 5
    temperature_floor: float = 0.01
    checkpoint_every: int = 1000

    def steps(self, duration: float) -> int:
        return int(round(duration / self.dt))


# ------------------------------------------------------------------------- start states
def number_density(phi: float, diameter: float = DIAMETER) -> float:
    """Number density of packing fraction ``phi`` of spheres of ``diameter`` (3D)."""
    return phi / (math.pi / 6.0 * diameter**3)


def packing_fraction(n: int, volume: float, diameter: float = DIAMETER) -> float:
    """``Phi = n (pi/6) d^3 / V``."""
    return n * math.pi / 6.0 * diameter**3 / volume


def check_box(box: np.ndarray, list_range: float, what: str) -> None:
    """Raise :class:`DensityError` unless the minimum image holds over ``list_range``."""
    h = float(np.min(box_heights(np.asarray(box))))
    if h <= 2.0 * list_range:
        raise DensityError(
            f"{what}: the box (smallest height {h:.3f} sigma) must exceed twice the neighbour "
            f"list range {list_range:.3f} sigma; use more atoms or a lower density"
        )


def random_start(rng: np.random.Generator, n: int, phi0: float, list_range: float):
    """``(R (n, 3), box (3, 3))``: uniform random positions in the cube of packing fraction
    ``phi0``; :class:`DensityError` if ``phi0`` is outside ``(0, MAX_START_PHI]`` or the box
    is too small for ``list_range``."""
    if not (0.0 < phi0 <= MAX_START_PHI):
        raise DensityError(
            f"initial packing fraction Phi_0 = {phi0!r} cannot hold the atoms as a random "
            f"start; allowed: 0 < Phi_0 <= {MAX_START_PHI}"
        )
    L = (n / number_density(phi0)) ** (1.0 / 3.0)
    box = np.eye(3) * L
    check_box(box, list_range, f"{n} atoms at Phi_0 = {phi0}")
    return rng.uniform(0.0, L, (n, 3)), box


def remove_overlaps(R: np.ndarray, box: np.ndarray, max_steps: int = 100_000) -> np.ndarray:
    """Positions with the overlaps of ``R`` relaxed: harmonic spheres of diameter
    ``OVERLAP_DIAMETER`` minimized to ``max|F| <= OVERLAP_FORCE``."""
    n = R.shape[0]
    soft = potentials.SoftSphere(name="harmonic_sphere", repulsion="absolute")
    params = potentials.species_params([OVERLAP_DIAMETER], 1.0, 0.0)
    options = MinimizeOptions(force_tol=OVERLAP_FORCE, max_steps=max_steps)
    m = minimize(soft, R, box, params, jnp.zeros(n, jnp.int32), options)
    return np.asarray(m.positions)


def lattice(kind: str, cells: int, d: float = DIAMETER) -> tuple[np.ndarray, np.ndarray]:
    """Perfect crystal of ``cells^3`` unit cells with nearest-neighbour distance ``d``:
    ``fcc`` (cubic cell, 4 atoms), ``diamond`` (cubic, 8 atoms) or ``hcp`` (orthorhombic
    cell ``a x sqrt(3) a x c`` with ideal ``c / a = sqrt(8/3)``, 4 atoms).
    Returns ``(R (n, 3), box (3, 3))``."""
    if kind == "fcc":
        a = d * math.sqrt(2.0)
        basis = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
        cell = np.array([a, a, a])
    elif kind == "diamond":
        a = 4.0 * d / math.sqrt(3.0)
        fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
        basis = np.concatenate([fcc, fcc + 0.25])
        cell = np.array([a, a, a])
    elif kind == "hcp":
        a, c = d, d * math.sqrt(8.0 / 3.0)
        basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 5 / 6, 0.5], [0, 1 / 3, 0.5]])
        cell = np.array([a, math.sqrt(3.0) * a, c])
    else:
        raise ValueError(f"lattice kind must be one of {LATTICES}; got {kind!r}")
    grid = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    R = ((grid + basis[None]) * cell).reshape(-1, 3)
    return R, np.diag(cell * cells)


def remove_atoms(rng: np.random.Generator, R: np.ndarray, fraction: float) -> np.ndarray:
    """``R`` with ``round(fraction N)`` atoms removed at random (vacancies)."""
    if not (0.0 <= fraction < 1.0):
        raise ValueError(f"vacancy fraction must be in [0, 1); got {fraction!r}")
    n_remove = int(round(fraction * R.shape[0]))
    keep = np.sort(rng.permutation(R.shape[0])[n_remove:])
    return R[keep]


# --------------------------------------------------------------------------- dynamics
def _jax_md():
    """jax-md's ``simulate`` and ``space``, imported on first use: importing jax_md takes
    ~7 s here (it compiles at import), which the DAG parse and the jobs that run no MD
    should not pay."""
    from jax_md import simulate, space

    return simulate, space


def jax_md_energy(energy: GeneralEnergy, params) -> Callable:
    """``U(S, box=..., perturbation=1, neighbor=...)`` in jax-md's conventions (fractional
    positions ``S``, ``perturbation`` a scalar or ``(3, 3)`` deformation applied to box and
    positions) from a project energy ``energy(R, box, params, neighbors)``.

    Real positions are made with jax-md's ``space.transform``, whose custom derivative passes
    fractional tangents through as real-space ones: ``grad_S U`` is then the real-space
    gradient, which is what jax-md's integrators expect of an energy built on
    ``periodic_general(fractional_coordinates=True)``."""
    jmd_simulate, jmd_space = _jax_md()


    def U(S, box, perturbation=1.0, neighbor=None, **unused):
        R = jmd_space.transform(box, S)
        F = perturbation * jnp.eye(3) if jnp.ndim(perturbation) == 0 else perturbation
        return energy(R @ F.T, F @ box, params, neighbor)

    return U


class Thermo(NamedTuple):
    """Instantaneous thermodynamics: kinetic temperature, pressure (virial + kinetic,
    positive in compression), potential energy per atom, volume."""

    temperature: float
    pressure: float
    energy_per_atom: float
    volume: float


def thermo(energy: GeneralEnergy, params, R, box, momentum, neighbors) -> Thermo:
    n, dim = R.shape
    ke = float(0.5 * jnp.sum(momentum**2))
    V = float(jnp.linalg.det(box))
    model = mechanics.Model(energy, jnp.asarray(box), None, neighbors)
    p_virial = float(mechanics.pressure(model, jnp.asarray(R), params))
    T = 2.0 * ke / (dim * (n - 1))
    e = float(energy(R, box, params, neighbors)) / n
    return Thermo(T, p_virial + 2.0 * ke / (dim * V), e, V)


class Segment(NamedTuple):
    """One MD stage: ``steps`` steps with ``kT`` and target pressure linear in time from
    start to end values."""

    name: str
    steps: int
    kT: tuple[float, float]
    pressure: tuple[float, float]


def protocol(md: MDSettings, kind: str, p0: float = 0.0) -> list[Segment]:
    """The paper's segments: ``disordered`` (melt with the pressure ramp from ``p0``, then
    quench at ``P = 0``) or a crystal (relax at ``crystal_temperature``, quench)."""
    if kind == "disordered":
        T0 = md.melt_temperature
        p_end = 0.0 if p0 > 0 else 0.5 * p0
        first = Segment("melt", md.steps(md.melt_time), (T0, T0), (p0, p_end))
    else:
        T0 = md.crystal_temperature
        first = Segment("relax", md.steps(md.melt_time), (T0, T0), (0.0, 0.0))
    floor = min(md.temperature_floor, T0 / 3.0)
    quench = Segment("quench", md.steps(md.quench_time), (T0, floor), (0.0, 0.0))
    return [first, quench]


class Simulator(NamedTuple):
    init: Callable  # (key, S, box, neighbor=, params=, kT=) -> state
    chunk: Callable  # (state, neighbors, params, step0, n_steps, total, kT0, kT1, p0, p1)


@functools.lru_cache(maxsize=16)
def simulator(energy: GeneralEnergy, md: MDSettings) -> Simulator:
    """jax-md NPT Nose-Hoover with the project's energy, and a compiled chunk of ``n_steps``
    steps (a traced count) whose ``kT`` and target pressure are linear in the segment's step
    ``step0 + i`` of ``total`` between ``(kT0, p0)`` and ``(kT1, p1)``. Cached per energy and
    settings, with the force-field parameters an argument: one compilation per process and
    shape, whatever the force field."""
    jmd_simulate, jmd_space = _jax_md()


    def U(S, box, perturbation=1.0, neighbor=None, params=None, **unused):
        return jax_md_energy(energy, params)(S, box, perturbation, neighbor)

    # The box of every call is passed as ``box=``; this one is only a placeholder.
    _, shift = jmd_space.periodic_general(jnp.eye(3), fractional_coordinates=True)
    init, apply = jmd_simulate.npt_nose_hoover(
        U, shift, md.dt, 0.0, md.melt_temperature,
        barostat_kwargs={"tau": md.barostat_tau, "chain_length": md.chain_length},
        thermostat_kwargs={"tau": md.thermostat_tau, "chain_length": md.chain_length},
    )  # fmt: skip

    @jax.jit
    def chunk(state, neighbors, params, step0, n_steps, total, kT0, kT1, p0, p1):
        def body(i, carry):
            st, nb = carry
            x = (step0 + i + 1.0) / total
            kT, P = kT0 + (kT1 - kT0) * x, p0 + (p1 - p0) * x
            st = apply(st, neighbor=nb, params=params, kT=kT, pressure=P)
            box = jmd_simulate.npt_box(st)
            nb = energy.update(jmd_space.transform(box, st.position), box, nb)
            return st, nb

        return jax.lax.fori_loop(0, n_steps, body, (state, neighbors))

    return Simulator(init, chunk)


def real_positions(state) -> tuple[Array, Array]:
    """``(R, box)`` of a jax-md NPT state (positions wrapped into the box)."""
    jmd_simulate, jmd_space = _jax_md()
    box = jmd_simulate.npt_box(state)
    return wrap(jmd_space.transform(box, state.position), box), box


def float64(state):
    """Every floating leaf of a jax-md state as (strong) float64: jax-md makes some of them
    weakly typed float32 at ``init``, which a restored checkpoint could not reproduce."""
    cast = lambda x: (
        jnp.asarray(x, jnp.float64) if jnp.issubdtype(jnp.result_type(x), jnp.floating) else x
    )
    return jax.tree_util.tree_map(cast, state)


def state_leaves(state) -> list[np.ndarray]:
    """The arrays of an NPT state (for a checkpoint)."""
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]


def _neighbors(energy: GeneralEnergy, R, box, capacity: tuple[int, int]):
    """Neighbour rows built at ``(R, box)`` with fixed capacities (deterministic: the same
    inputs give the same rows, so a resumed run repeats an uninterrupted one exactly)."""
    from tunable_solids.stillinger_weber import _build

    h = energy.neighbor_handler
    return _build(jnp.asarray(R), jnp.asarray(box), h.list_range, *capacity)


def run_md(
    energy: GeneralEnergy,
    params,
    R: np.ndarray,
    box: np.ndarray,
    segments: list[Segment],
    md: MDSettings,
    seed: int,
    label: str = "MD",
    resume: tuple[int, list[np.ndarray]] | None = None,
    checkpoint: Callable[[int, list[np.ndarray]], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Thermo]]:
    """Run the NPT ``segments`` from ``(R, box)`` with Maxwell velocities of seed ``seed``.

    ``resume = (steps_done, leaves)`` continues a checkpointed run (``leaves`` from a
    ``checkpoint(steps_done, leaves)`` call, made after every chunk: the jax-md state's arrays
    and the neighbour-row capacities). Every chunk starts from neighbour rows rebuilt at fixed
    capacities (one compilation); a chunk whose rows overflowed is redone from its start with
    doubled capacities. Returns the final ``(R, box)`` and the thermodynamics after every
    chunk. Raises :class:`NonFiniteMDError`, :class:`BarostatError` or :class:`DensityError`.
    """
    jmd_simulate, jmd_space = _jax_md()

    n = R.shape[0]
    total = sum(s.steps for s in segments)
    chunk_steps = max(1, min(md.checkpoint_every, total))
    sim = simulator(energy, md)
    R = jnp.asarray(R, jnp.float64)
    box = jnp.asarray(box, jnp.float64)
    S = jmd_space.transform(jnp.linalg.inv(box), R)
    nb = energy.allocate(R, box)
    capacity = (int(nb.pairs.i.shape[0]), int(nb.idx.shape[1]))
    key = jax.random.PRNGKey(seed)
    state = float64(sim.init(key, S, box, neighbor=nb, params=params, kT=segments[0].kT[0]))
    done = 0
    if resume is not None:
        done, leaves = resume
        treedef = jax.tree_util.tree_structure(state)
        capacity = (int(leaves[-2]), int(leaves[-1]))
        state = float64(
            jax.tree_util.tree_unflatten(treedef, [jnp.asarray(x) for x in leaves[:-2]])
        )
        log.info("%s: resuming at step %d of %d", label, done, total)
    bounds = np.cumsum([0] + [s.steps for s in segments])
    history = []
    start_time, start_done = time.perf_counter(), done
    list_range = energy.neighbor_handler.list_range
    while done < total:
        k = int(np.searchsorted(bounds, done, side="right") - 1)
        seg = segments[k]
        local = done - bounds[k]
        n_run = int(min(chunk_steps, seg.steps - local))
        R, box = real_positions(state)
        check_box(np.asarray(box), list_range, f"{label}: {seg.name} at step {done}")
        V_before = float(jnp.linalg.det(box))
        for _ in range(8):
            nb = _neighbors(energy, R, box, capacity)
            if not bool(nb.overflow):
                new, nb = sim.chunk(state, nb, params, float(local), n_run, float(seg.steps),
                                    *seg.kT, *seg.pressure)  # fmt: skip
                if not bool(nb.overflow):
                    break
            capacity = (2 * capacity[0], 2 * capacity[1])
            log.info("%s: neighbour rows grown to %s", label, capacity)
        else:
            raise StructureError(f"{label}: the neighbour rows kept overflowing at step {done}")
        state = new
        done += n_run
        R, box = real_positions(state)
        V_after = float(jnp.linalg.det(box))
        ratio = V_after / V_before
        if math.isfinite(ratio) and not (1.0 / BOX_BLOWUP < ratio < BOX_BLOWUP):
            raise BarostatError(
                f"{label}: the barostat changed the volume by a factor {ratio:.3g} within "
                f"{n_run} steps during {seg.name} (step {done}); increase barostat_tau"
            )
        finite = all(bool(jnp.all(jnp.isfinite(x))) for x in (R, box, state.momentum))
        th = None
        if finite:
            check_box(np.asarray(box), list_range, f"{label}: {seg.name} at step {done}")
            nb = _neighbors(energy, R, box, capacity)
            th = thermo(energy, params, R, box, state.momentum, nb)
        if th is None or not (math.isfinite(th.energy_per_atom) and math.isfinite(th.pressure)):
            raise NonFiniteMDError(
                f"{label}: non-finite positions or energy during {seg.name} at step {done} "
                f"(time {done * md.dt:g}); reduce dt or check the force field"
            )
        history.append(th)
        elapsed = time.perf_counter() - start_time
        eta = elapsed / (done - start_done) * (total - done)
        log.info(
            "%s %s: t = %.2f/%.2f, T = %.4f, P = %.4g, E/N = %.5f, Phi = %.4f | elapsed %.1f s, "
            "ETA %.1f s",
            label, seg.name, done * md.dt, total * md.dt, th.temperature, th.pressure,
            th.energy_per_atom, packing_fraction(n, th.volume), elapsed, eta,
        )  # fmt: skip
        if checkpoint is not None:
            caps = [np.asarray(capacity[0]), np.asarray(capacity[1])]
            checkpoint(done, [*state_leaves(state), *caps])
    R, box = real_positions(state)
    return np.asarray(R), np.asarray(box), history


def initial_pressure(energy: GeneralEnergy, params, R, box, kT: float) -> float:
    """Pressure of positions ``R`` at temperature ``kT`` (virial plus ``N kT / V``): the
    ``P_0`` the barostat ramp starts from."""
    R, box = jnp.asarray(R), jnp.asarray(box)
    nb = energy.allocate(R, box)
    model = mechanics.Model(energy, box, None, nb)
    p_virial = float(mechanics.pressure(model, R, params))
    return p_virial + R.shape[0] * kT / float(jnp.linalg.det(box))


# ------------------------------------------------------------------------ minimization
class Relaxed(NamedTuple):
    positions: np.ndarray
    energy: float
    max_force: float
    iterations: int
    converged: bool


def minimize_rounds(
    energy: GeneralEnergy,
    params,
    R,
    box,
    options: MinimizeOptions,
    chunk: int,
    label: str = "minimize",
    resume: tuple[int, np.ndarray] | None = None,
    checkpoint: Callable[[int, np.ndarray], None] | None = None,
) -> Relaxed:
    """FIRE (:func:`minimize.minimize`) in rounds of at most ``chunk`` steps up to
    ``options.max_steps`` in total, checkpointing ``(steps_done, R)`` after each round and
    resuming from ``resume``. ``converged`` is ``max|F| <= options.force_tol``."""
    done, R = (0, np.asarray(R)) if resume is None else resume
    start = time.perf_counter()
    m = None
    while True:
        n = int(min(chunk, options.max_steps - done))
        if n <= 0 and m is not None:
            break
        opts = MinimizeOptions(
            force_tol=options.force_tol, max_steps=max(n, 1), skin=options.skin,
            fire=options.fire,
        )  # fmt: skip
        m = minimize(energy, R, box, params, None, opts)
        done += int(m.iterations)
        R = np.asarray(m.positions)
        log.info(
            "%s: %d steps, E/N = %.10f, max|F| = %.3e | elapsed %.1f s",
            label, done, float(m.energy) / R.shape[0], float(m.max_force),
            time.perf_counter() - start,
        )  # fmt: skip
        if checkpoint is not None:
            checkpoint(done, R)
        if bool(m.converged) or done >= options.max_steps or int(m.iterations) == 0:
            break
    return Relaxed(R, float(m.energy), float(m.max_force), done, bool(m.converged))
