"""Gradient design: continuous bond stiffnesses trained so nu hits the target, then the
weakest bonds removed to get a binary (pruned) network.

Training. ``k_b = softplus(theta_b)`` (so ``k_b > 0``; ``theta_b = ln(e - 1)`` gives the
unit start), loss ``(nu(k) - nu*)^2`` with nu the paper's ``(nu_x + nu_y)/2`` of the relaxed
tensor from the core's matrix-free ``mechanics.elastic_constants`` (CG to 1e-12, its
derivative by implicit differentiation, no linear solve beyond the forward ones). The
network is stress free for every ``k``, so the positions stay the minimum and no
re-minimization is needed: d nu / d k is the derivative at fixed positions. Adam (optax)
with a fixed learning rate; training stops at ``|nu - nu*| <= tol`` or after ``steps``.

Rounding. The bonds are visited from the weakest trained stiffness up (only those below
``k_cut``); each is removed if the network stays rigid (rank-one test, :mod:`.elasticity`),
and nu of the binary network (present bonds back at k = 1) is tracked exactly along the
way. The walk stops at the first binary network whose nu reaches the target; if none does,
the prefix closest to the target is kept.
"""

from __future__ import annotations

import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tunable_solids import mechanics

from .elasticity import Geometry, Updater, poisson_ratio
from .networks import Network, as_core
from .result import PruningResult, direction, make_result, reached

THETA_UNIT = float(np.log(np.e - 1.0))  # softplus^-1(1)


def nu_of_stiffness(network: Network):
    """``k (B,) -> nu`` (jax, differentiable) through ``mechanics.elastic_constants``."""
    model, R, params = as_core(network)

    def nu(k):
        el = mechanics.elastic_constants(model, R, params._replace(stiffness=k))
        return poisson_ratio(el.voigt)

    return nu


@partial(jax.jit, static_argnums=0)
def _loss_and_grad(nu_fn, theta, target):
    def loss(th):
        nu = nu_fn(jax.nn.softplus(th))
        return (nu - target) ** 2, nu

    return jax.value_and_grad(loss, has_aux=True)(theta)


def train_stiffness(
    network: Network,
    target: float,
    steps: int = 300,
    learning_rate: float = 0.05,
    tol: float = 1e-3,
    resume: tuple | None = None,
    checkpoint=None,
    checkpoint_every: int = 50,
    callback=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Adam on ``theta`` from unit stiffnesses. Returns the trained ``k`` ``(B,)`` and the
    nu of every step ``(steps_done,)``.

    Resume: ``checkpoint(theta, opt_state, nus)`` is called every ``checkpoint_every`` steps
    (after the update, so the three are the whole training state); passing them back as
    ``resume`` continues with the same operations, hence the same result.
    ``callback(step, nu)`` is called after every step."""
    nu_fn = _Hashable(nu_of_stiffness(network))
    opt = optax.adam(learning_rate)
    if resume is None:
        theta = jnp.full(len(network.i), THETA_UNIT)
        opt_state, nus = opt.init(theta), []
    else:
        theta, opt_state, nus = jnp.asarray(resume[0]), resume[1], list(resume[2])
    while len(nus) < steps:
        (_, nu), g = _loss_and_grad(nu_fn, theta, target)
        nus.append(float(nu))
        if callback is not None:
            callback(len(nus), float(nu))
        if abs(float(nu) - target) <= tol:
            break
        updates, opt_state = opt.update(g, opt_state)
        theta = optax.apply_updates(theta, updates)
        if checkpoint is not None and len(nus) % checkpoint_every == 0:
            checkpoint(theta, opt_state, nus)
    return np.asarray(jax.nn.softplus(theta)), np.array(nus)


def opt_state_arrays(opt_state) -> list[np.ndarray]:
    """The leaves of an optax state (for a checkpoint); :func:`opt_state_from` inverts."""
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(opt_state)]


def opt_state_from(leaves: list, n_bonds: int, learning_rate: float):
    """An Adam state with the given leaves (the structure of ``optax.adam(lr).init``)."""
    template = optax.adam(learning_rate).init(jnp.zeros(n_bonds))
    tree = jax.tree_util.tree_structure(template)
    return jax.tree_util.tree_unflatten(tree, [jnp.asarray(x) for x in leaves])


class _Hashable:
    """A function usable as a static jit argument (hashed by identity)."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)


def round_stiffness(
    geom: Geometry, k: np.ndarray, target: float, k_cut: float = 0.5, refresh_every: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Binary network from trained stiffnesses (see the module doc). Returns the mask
    ``(B,)`` and the exact nu after each removal made, ``(removals + 1,)``."""
    upd = Updater(geom, np.ones(len(k)), refresh_every)
    sign = direction(upd.nu, target)
    nus, masks = [upd.nu], [upd.stiffness > 0]
    for b in np.argsort(k, kind="stable"):
        if k[b] >= k_cut or reached(nus[-1], target, sign):
            break
        move = upd.propose(int(b), 0.0)
        if move.valid:
            upd.accept(move)
            nus.append(upd.nu)
            masks.append(upd.stiffness > 0)
    nus = np.array(nus)
    hit = np.flatnonzero(sign * (nus - target) >= 0)
    best = int(hit[0]) if len(hit) else int(np.argmin(np.abs(nus - target)))
    return masks[best], nus[: best + 1]


def gradient_design(
    network: Network,
    geom: Geometry,
    target: float,
    steps: int = 300,
    learning_rate: float = 0.05,
    k_cut: float = 0.5,
) -> PruningResult:
    """Train stiffnesses, round to a binary network; ``info``: trained nu, loss path,
    trained k, nu along the rounding."""
    t0 = time.perf_counter()
    k, nus = train_stiffness(network, target, steps, learning_rate)
    mask, path = round_stiffness(geom, k, target, k_cut)
    wall = time.perf_counter() - t0
    return make_result(
        "gradient", geom, target, mask, wall, nu_trained=float(nus[-1]), train_nu=nus,
        stiffness=k, rounding_nu=path,
    )  # fmt: skip
