"""Design by training: gradient descent on species-level parameters so properties hit targets.

Three modes share one step (:func:`train_step`):

- ``individual``: one configuration, objective ``sum_q (q_b - q*)^2``, every step re-minimized
  warm-started from the previous minimum (tracking one basin; rearrangements are detected
  as changes of the contact network and logged);
- ``multi``: ``m`` configurations, objective ``sum_b sum_q (q_b - q*)^2``, each warm-started;
- ``ensemble``: every step minimizes a fresh batch of random configurations (seeded by run
  seed and step) and the objective is ``sum_q (<q> - q*)^2`` over the converged ones.

Properties ``q`` (differentiable at a minimum through :func:`implicit.at_minimum`):
``nu`` (Poisson's ratio), ``pressure`` and ``q8`` (2D eight-fold bond-orientational order,
see :func:`q8_order`). Parameters ``theta`` are named groups (:mod:`tunable_solids.parameters`:
``D`` = diameters sigma_alpha, ``B`` = binding B_alpha_beta upper triangle, ...).

The optimizer is RMSProp (optax) with a learning rate that adapts (:class:`LearningRate`).
The whole training state is a :class:`TrainState` of plain arrays, so a run checkpointed
after any step resumes bit-identically (the caller does the I/O).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tunable_solids import mechanics as mech
from tunable_solids import systems
from tunable_solids.implicit import ParticleEnergy, at_minimum
from tunable_solids.minimize import MinimizeOptions, Minimum, minimize, minimize_batch
from tunable_solids.multigrid import plan_for
from tunable_solids.parameters import params_of, theta_of
from tunable_solids.potentials import SpeciesParams, xplor_switch
from tunable_solids.preparation import State, contact_set, interacting_pairs
from tunable_solids.space import Pairs, pair_vectors

Array = jax.Array

PROPERTIES = ("nu", "pressure", "q8")
MODES = ("individual", "multi", "ensemble")

# q8 neighbours: weight 1 below Q8_R_ON * sigma_ij, smoothly (XPLOR) to 0 at Q8_R_CUT * sigma_ij.
Q8_R_ON, Q8_R_CUT = 1.15, 1.35


def q8_order(R: Array, box: Array, params: SpeciesParams, species: Array, pairs: Pairs) -> Array:
    """Mean local eight-fold bond-orientational order ``<|psi_8|>`` of a 2D configuration.

    ``psi_8(j) = sum_k w_jk exp(8 i theta_jk) / sum_k w_jk`` over neighbours ``k`` of ``j``,
    with ``theta_jk`` the bond angle and weights ``w_jk`` = 1 for ``r < 1.15 sigma_jk``,
    switched smoothly (XPLOR) to 0 at ``1.35 sigma_jk`` (between the first peak and the first
    minimum of g(r) of these packings), so q8 is differentiable in positions and diameters.
    Particles without neighbours are left out of the mean.
    """
    dr = pair_vectors(R, box, pairs)
    r = jnp.sqrt(jnp.where(pairs.mask, jnp.sum(dr**2, -1), 1e12))
    sigma = 0.5 * (params.diameter[species[pairs.i]] + params.diameter[species[pairs.j]])
    w = jnp.where(pairs.mask, xplor_switch(r, Q8_R_ON * sigma, Q8_R_CUT * sigma), 0.0)
    angle = jnp.arctan2(dr[:, 1], dr[:, 0])
    z = w * jnp.exp(8j * angle)  # the bond seen from j points the opposite way: same for l = 8
    n = R.shape[0]
    num = jnp.zeros(n, jnp.complex128).at[pairs.i].add(z).at[pairs.j].add(z)
    den = jnp.zeros(n).at[pairs.i].add(w).at[pairs.j].add(w)
    has = den > 1e-12
    psi = jnp.abs(num) / jnp.where(has, den, 1.0)
    return jnp.sum(jnp.where(has, psi, 0.0)) / jnp.maximum(jnp.sum(has), 1)


def properties(potential, props, cg_tol, params, R, box, species, pairs, multigrid=None) -> Array:
    """Properties ``(n_q,)`` of the configuration ``R`` (differentiable in all arguments);
    ``multigrid``: plan of the CG preconditioner (None: plain CG)."""
    model = mech.Model(potential, box, species, pairs, multigrid)
    out = []
    for q in props:
        if q == "nu":
            el = mech.elastic_constants(model, R, params, cg_tol=cg_tol)
            out.append(mech.isotropic_moduli(el.voigt, R.shape[1])[2])
        elif q == "pressure":
            out.append(mech.pressure(model, R, params))
        else:
            out.append(q8_order(R, box, params, species, pairs))
    return jnp.stack(out)


@partial(jax.jit, static_argnames=("potential", "props", "cg_tol", "multigrid"))
def property_values(potential, props, cg_tol, params, R_star, box, species, pairs, multigrid=None):
    """Properties at a minimum, without derivatives (validation)."""
    return properties(potential, props, cg_tol, params, R_star, box, species, pairs, multigrid)


@partial(jax.jit, static_argnames=("potential", "props", "names", "cg_tol", "multigrid"))
def property_jacobian(
    potential, props, names, cg_tol, theta, params0, R_star, box, species, pairs, multigrid=None
):
    """Properties ``(n_q,)`` at the minimum ``R_star`` of ``params_of(theta)`` and their
    derivatives ``(n_q, n_theta)`` through the minimum (reverse mode); ``multigrid``: plan
    of the CG preconditioner of every solve (None: plain CG)."""

    def f(th):
        params = params_of(th, params0, names)
        args = (params, box, species, pairs)
        R = at_minimum(ParticleEnergy(potential, multigrid), R_star, args, cg_tol)
        return properties(potential, props, cg_tol, params, R, box, species, pairs, multigrid)

    return f(theta), jax.jacrev(f)(theta)


# --------------------------------------------------------------------------- learning rate
@dataclass(frozen=True)
class LearningRate:
    """Learning-rate control of RMSProp.

    ``adaptive`` (individual and multi runs): after a step that lowered the loss the rate grows
    by ``grow``; after one that raised it (overshoot, or a rearrangement) it shrinks by
    ``shrink``; always within ``[lr_min, lr_max]``. ``inverse_sqrt`` (ensemble runs, whose
    loss is too noisy to judge single steps): ``lr0 / sqrt(1 + step / decay_steps)``.
    """

    schedule: str = "adaptive"
    lr0: float = 2e-3
    lr_min: float = 1e-6
    lr_max: float = 2e-2
    grow: float = 1.05
    shrink: float = 0.5
    decay_steps: float = 500.0

    def next(self, lr: float, step: int, loss: float, prev_loss: float) -> float:
        if self.schedule == "inverse_sqrt":
            return self.lr0 / math.sqrt(1.0 + (step + 1) / self.decay_steps)
        if not math.isfinite(prev_loss):
            return lr
        factor = self.grow if loss < prev_loss else self.shrink
        return float(min(max(lr * factor, self.lr_min), self.lr_max))


@dataclass(frozen=True)
class TrainSpec:
    """What to train and how (hashable; part of a run's provenance)."""

    mode: str
    targets: tuple[tuple[str, float], ...]  # (property, target value)
    names: tuple[str, ...] = ("D", "B")
    max_steps: int = 10_000
    loss_threshold: float = 1e-6  # success for individual / multi runs
    batch: int = 8  # configurations per ensemble step
    vectorize: bool = False  # one vmapped minimization per step (pays on GPUs, not on CPU)
    rmsprop_decay: float = 0.9
    lr: LearningRate = field(default_factory=LearningRate)
    cg_tol: float = 1e-12

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} not allowed; use one of {MODES}")
        for q, _ in self.targets:
            if q not in PROPERTIES:
                raise ValueError(f"property {q!r} not allowed; use one of {PROPERTIES}")

    @property
    def props(self) -> tuple[str, ...]:
        return tuple(q for q, _ in self.targets)

    @property
    def target_values(self) -> np.ndarray:
        return np.array([v for _, v in self.targets])


class System(NamedTuple):
    """The fixed physical set-up of a run: potential, box, species, initial parameters."""

    potential: object
    box: np.ndarray
    species: np.ndarray
    params0: SpeciesParams
    options: MinimizeOptions


class TrainState(NamedTuple):
    """Everything needed to continue a run (plain arrays; saved in checkpoints).

    positions ``(m, N, d)``: warm starts (individual / multi); unused (m = 0) for ensembles.
    """

    step: int
    theta: np.ndarray
    opt_state: tuple
    lr: float
    prev_loss: float
    positions: np.ndarray


class StepRecord(NamedTuple):
    """What one step measured, before the update (``theta`` is the one evaluated)."""

    loss: float
    values: np.ndarray  # (m, n_q) property values per configuration (NaN if excluded)
    theta: np.ndarray
    grad_norm: float
    lr: float
    max_force: float
    iterations: int
    n_excluded: int
    rearranged: bool


def optimizer(spec: TrainSpec) -> optax.GradientTransformation:
    return optax.inject_hyperparams(optax.rmsprop)(
        learning_rate=spec.lr.lr0, decay=spec.rmsprop_decay
    )


def init_state(spec: TrainSpec, system: System, starts: np.ndarray) -> TrainState:
    """Initial state: theta from the system's parameters; for individual / multi runs the
    tracked configurations are the minima reached from ``starts`` ``(m, N, d)`` at theta0."""
    theta = np.asarray(theta_of(system.params0, spec.names))
    opt_state = optimizer(spec).init(jnp.asarray(theta))
    positions = np.zeros((0,) + np.shape(starts)[1:])
    if spec.mode != "ensemble":
        species, box = jnp.asarray(system.species), jnp.asarray(system.box)
        minima = [
            minimize(system.potential, R, box, system.params0, species, system.options)
            for R in starts
        ]
        if not all(bool(m.converged) for m in minima):
            raise RuntimeError("an initial configuration did not converge at theta0")
        positions = np.stack([np.asarray(m.positions) for m in minima])
    return TrainState(0, theta, opt_state, spec.lr.lr0, math.inf, positions)


def fresh_positions(system: System, run_seed: int, step: int, count: int) -> np.ndarray:
    """Random starting positions ``(count, N, d)`` for ensemble step ``step`` of a run."""
    rng = np.random.default_rng([run_seed, step])
    n = len(system.species)
    return np.stack([systems.random_positions(rng, n, system.box) for _ in range(count)])


def evaluate(
    spec: TrainSpec, system: System, theta: np.ndarray, starts: np.ndarray, gradient: bool = True
):
    """Minimize each configuration from ``starts`` at ``theta``; properties and Jacobians.

    Returns ``(minima, values (m, n_q), jacobians (m, n_q, n_theta) or None, converged (m,))``.
    With ``spec.vectorize`` the work is done by :func:`evaluate_batch` (same results up to
    round-off).
    """
    if spec.vectorize:
        return evaluate_batch(spec, system, theta, starts, gradient)
    params = params_of(jnp.asarray(theta), system.params0, spec.names)
    species = jnp.asarray(system.species)
    box = jnp.asarray(system.box)
    mg = plan_for(system.potential, params, system.box, len(system.species))
    minima, values, jacs, ok = [], [], [], []
    for R0 in starts:
        m = minimize(system.potential, R0, box, params, species, system.options)
        if gradient:
            v, J = property_jacobian(
                system.potential,
                spec.props,
                spec.names,
                spec.cg_tol,
                jnp.asarray(theta),
                system.params0,
                m.positions,
                box,
                species,
                m.pairs,
                multigrid=mg,
            )
            jacs.append(np.asarray(J))
        else:
            v = property_values(
                system.potential,
                spec.props,
                spec.cg_tol,
                params,
                m.positions,
                box,
                species,
                m.pairs,
                multigrid=mg,
            )
        minima.append(m)
        values.append(np.asarray(v))
        ok.append(bool(m.converged) and bool(np.all(np.isfinite(v))))
    return minima, np.stack(values), (np.stack(jacs) if gradient else None), np.asarray(ok)


def loss_and_grad(spec: TrainSpec, values: np.ndarray, jacs: np.ndarray, ok: np.ndarray):
    """Objective and its gradient from per-configuration values and Jacobians.

    Only converged configurations enter (``ok``); for ensembles the mean is over them.
    """
    target = spec.target_values
    v, J = values[ok], jacs[ok]
    if spec.mode == "ensemble":
        mean = v.mean(axis=0)
        resid = mean - target
        return float(np.sum(resid**2)), 2.0 * resid @ J.mean(axis=0)
    resid = v - target
    return float(np.sum(resid**2)), 2.0 * np.einsum("bq,bqt->t", resid, J)


def train_step(
    spec: TrainSpec, system: System, state: TrainState, run_seed: int
) -> tuple[TrainState, StepRecord]:
    """Evaluate the objective at ``state.theta``, then take one RMSProp step."""
    if spec.mode == "ensemble":
        starts = fresh_positions(system, run_seed, state.step, spec.batch)
    else:
        starts = state.positions
    minima, values, jacs, ok = evaluate(spec, system, state.theta, starts)
    n_excluded = int((~ok).sum())
    if not ok.any():
        raise RuntimeError(f"step {state.step}: no configuration converged; cannot continue")
    if spec.mode != "ensemble" and n_excluded:
        raise RuntimeError(f"step {state.step}: a tracked configuration did not converge")
    loss, grad = loss_and_grad(spec, values, jacs, ok)
    rearranged = False
    if spec.mode != "ensemble":
        params = params_of(jnp.asarray(state.theta), system.params0, spec.names)
        rearranged = _rearranged(system, params, starts, minima)
    lr = spec.lr.next(state.lr, state.step, loss, state.prev_loss) if state.step else state.lr
    opt = optimizer(spec)
    opt_state = state.opt_state._replace(
        hyperparams={**state.opt_state.hyperparams, "learning_rate": jnp.asarray(lr)}
    )
    updates, opt_state = opt.update(jnp.asarray(grad), opt_state, jnp.asarray(state.theta))
    theta = np.asarray(optax.apply_updates(jnp.asarray(state.theta), updates))
    positions = (
        np.stack([np.asarray(m.positions) for m in minima])
        if spec.mode != "ensemble"
        else state.positions
    )
    vals = np.where(ok[:, None], values, np.nan)
    record = StepRecord(
        loss,
        vals,
        state.theta,
        float(np.linalg.norm(grad)),
        lr,
        max(float(m.max_force) for m in minima),
        sum(int(m.iterations) for m in minima),
        n_excluded,
        rearranged,
    )
    return TrainState(state.step + 1, theta, opt_state, lr, loss, positions), record


def _rearranged(system: System, params, starts, minima) -> bool:
    """Whether any tracked configuration changed its contact network during this step's
    minimization (start: previous minimum, end: new minimum)."""
    species = jnp.asarray(system.species)
    box = jnp.asarray(system.box)
    no_rattlers = jnp.zeros(len(system.species), bool)
    for R0, m in zip(starts, minima, strict=True):
        before = State(
            jnp.asarray(R0),
            box,
            species,
            interacting_pairs(system.potential, jnp.asarray(R0), box, params),
            no_rattlers,
        )
        after = State(m.positions, box, species, m.pairs, no_rattlers)
        if contact_set(system.potential, params, before) != contact_set(
            system.potential, params, after
        ):
            return True
    return False


def validate(
    system: System,
    names: tuple[str, ...],
    theta: np.ndarray,
    starts: np.ndarray,
    props: tuple[str, ...],
    cg_tol: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray]:
    """Properties ``(n, n_q)`` of fresh configurations at fixed ``theta`` and a converged mask.

    Non-converged states are reported as NaN and excluded by the caller, never replaced.
    """
    spec = TrainSpec("ensemble", tuple((q, 0.0) for q in props), names, cg_tol=cg_tol)
    _, values, _, ok = evaluate(spec, system, theta, starts, gradient=False)
    return np.where(ok[:, None], values, np.nan), ok


# --------------------------------------------------------------------------- batched path
# Same-shape configurations (one box, species and theta) minimized and differentiated in one
# vectorized pass. Selectable alternative to the sequential path above (which stays the
# default: on a 2-core CPU the batched path is not faster, see benchmarks/README.md; on a
# GPU it amortizes kernel launches over the batch). Results equal the sequential ones up to
# floating-point round-off of the vectorized arithmetic.


@partial(jax.jit, static_argnames=("potential", "props", "names", "cg_tol", "multigrid"))
def property_jacobian_batch(
    potential, props, names, cg_tol, theta, params0, R_star, box, species, pairs, multigrid=None
):
    """:func:`property_jacobian` for a batch of minima ``R_star`` ``(B, N, d)`` with their
    pair lists (leaves ``(B, P)``): values ``(B, n_q)`` and Jacobians ``(B, n_q, n_theta)``."""

    one = partial(property_jacobian, potential, props, names, cg_tol, theta, params0)
    return jax.vmap(lambda R, p: one(R, box, species, p, multigrid))(R_star, pairs)


@partial(jax.jit, static_argnames=("potential", "props", "cg_tol", "multigrid"))
def property_values_batch(
    potential, props, cg_tol, params, R_star, box, species, pairs, multigrid=None
):
    """:func:`property_values` for a batch of minima (``(B, n_q)``)."""
    one = partial(properties, potential, props, cg_tol, params)
    return jax.vmap(lambda R, p: one(R, box, species, p, multigrid))(R_star, pairs)


def evaluate_batch(
    spec: TrainSpec, system: System, theta: np.ndarray, starts: np.ndarray, gradient: bool = True
):
    """:func:`evaluate` with one batched minimization (:func:`minimize.minimize_batch`) and
    one batched property/Jacobian pass; same return values (``minima`` as a list)."""
    params = params_of(jnp.asarray(theta), system.params0, spec.names)
    species = jnp.asarray(system.species)
    box = jnp.asarray(system.box)
    mb = minimize_batch(system.potential, jnp.asarray(starts), box, params, species, system.options)
    mg = plan_for(system.potential, params, system.box, len(system.species))
    if gradient:
        v, J = property_jacobian_batch(
            system.potential,
            spec.props,
            spec.names,
            spec.cg_tol,
            jnp.asarray(theta),
            system.params0,
            mb.positions,
            box,
            species,
            mb.pairs,
            multigrid=mg,
        )
        jacs = np.asarray(J)
    else:
        v = property_values_batch(
            system.potential,
            spec.props,
            spec.cg_tol,
            params,
            mb.positions,
            box,
            species,
            mb.pairs,
            multigrid=mg,
        )
        jacs = None
    values = np.asarray(v)
    minima = [Minimum(*(jax.tree.map(lambda x, b=b: x[b], tuple(mb)))) for b in range(len(starts))]
    ok = np.asarray(mb.converged) & np.all(np.isfinite(values), axis=1)
    return minima, values, jacs, ok
