"""Simulated annealing of the bond set toward a target Poisson's ratio (the paper's Methods B).

Schedule: temperature level ``k`` has ``T_k = T_0 * 0.95^k`` (the paper's
``T_{k+1} = alpha T_k``, alpha = 0.95) and 15 proposals (``L_k``); the run stops when nu
reaches the target or before the first level with ``T_k < T_f``, so it makes at most
``15 * (floor(ln(T_f / T_0) / ln 0.95) + 1)`` proposals. A proposal removes a uniformly
random present bond with probability 0.7 and otherwise re-adds a uniformly random removed
one (when no bond has been removed yet, it removes). Acceptance is the paper's Eq. 2 for
lowering nu, ``P = 1`` if ``nu' <= nu`` else ``exp(-(nu' - nu) / T)``, and its mirror
``exp(-(nu - nu') / T)`` for raising it; a proposal leaving the network non-rigid (a zero
mode beyond the translations, which includes isolated nodes and dangling bonds, or a
non-positive-definite C) is rejected. nu is the paper's ``(nu_x + nu_y)/2``, evaluated
exactly by rank-one updates (:class:`elasticity.Updater`).

Defaults of ``T_0``, ``T_f`` (the paper gives none): a single bond changes nu by
~1e-3..1e-2 in these networks, so ``T_0 = 1e-2`` accepts typical uphill moves with
probability ~1/e at the start and ``T_f = 1e-5`` accepts essentially none at the end
(2025 proposals at most). Larger networks need more proposals (a wider ``T_0 / T_f``).

Resume: :class:`AnnealState` is the whole state (bond mask, schedule position, numpy
``Generator`` state, the bonds changed since the last exact refresh, history), plain data
(:func:`state_to_arrays` / :func:`state_from_arrays`). The rank-one workspace is rebuilt
from it by refactorizing the network at the last refresh and replaying those changes, which
repeats the same floating-point operations, so a run split at any level boundary and
resumed gives bit-identically the same result as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .elasticity import Geometry, Updater
from .result import PruningResult, direction, make_result, reached


@dataclass(frozen=True)
class AnnealOptions:
    """T0, Tf: first and last temperature (units of nu); cooling: T_{k+1} / T_k;
    per_temperature: proposals per level; p_remove: probability that a proposal removes a
    bond; refresh_every: accepted moves between exact refreshes."""

    T0: float = 1e-2
    Tf: float = 1e-5
    cooling: float = 0.95
    per_temperature: int = 15
    p_remove: float = 0.7
    refresh_every: int = 128

    def temperature(self, level: int) -> float:
        return self.T0 * self.cooling**level

    def n_levels(self) -> int:
        """Number of levels with ``T_k >= T_f``."""
        return int(math.floor(math.log(self.Tf / self.T0) / math.log(self.cooling) + 1e-9)) + 1


HISTORY_COLUMNS = ("step", "T", "nu", "bonds", "acceptance")


class AnnealState(NamedTuple):
    """Everything an annealing run needs to continue (plain data).

    mask ``(B,)`` bool present bonds; pending ``(m,)`` int bonds changed since the last exact
    refresh, in order; level: next temperature level; step: proposals made; accepted: moves
    accepted; nu: current nu; nu_initial, target; rng_state: ``Generator.bit_generator.state``;
    history ``(levels, 5)``: per finished level ``HISTORY_COLUMNS``; max_refresh_error:
    largest ``|nu_updated - nu_refreshed|`` so far; stop: '' (running), 'target' or 'T_f'.
    """

    mask: np.ndarray
    pending: np.ndarray
    level: int
    step: int
    accepted: int
    nu: float
    nu_initial: float
    target: float
    rng_state: dict
    history: np.ndarray
    max_refresh_error: float
    stop: str


def initial_state(geom: Geometry, target: float, seed: int) -> AnnealState:
    """All bonds present, level 0, ``np.random.default_rng(seed)``."""
    mask = np.ones(len(geom.i), bool)
    nu = Updater(geom, mask.astype(float), 1).nu
    rng = np.random.default_rng(seed)
    return AnnealState(
        mask, np.zeros(0, np.int64), 0, 0, 0, nu, nu, float(target),
        rng.bit_generator.state, np.zeros((0, len(HISTORY_COLUMNS))), 0.0, "",
    )  # fmt: skip


def workspace(geom: Geometry, state: AnnealState, options: AnnealOptions) -> Updater:
    """The rank-one workspace of a state: the network at the last refresh (the pending
    bonds toggled back), factorized, then the pending changes replayed in order."""
    k = state.mask.astype(float)
    for b in state.pending:
        k[b] = 1.0 - k[b]
    upd = Updater(geom, k, options.refresh_every)
    for b in state.pending:
        upd.accept(upd.propose(int(b), 1.0 - upd.stiffness[b]))
    return upd


def _metropolis(rng: np.random.Generator, d_bad: float, T: float) -> bool:
    """Paper Eq. 2 with ``d_bad`` the change of nu away from the target's side."""
    if d_bad <= 0.0:
        return True
    return bool(rng.random() <= math.exp(-d_bad / T))


def anneal(
    geom: Geometry,
    state: AnnealState,
    options: AnnealOptions = AnnealOptions(),
    max_levels: int | None = None,
    callback: Callable | None = None,
    updater: Updater | None = None,
) -> tuple[AnnealState, Updater]:
    """Run temperature levels from ``state`` until the target, ``T_f``, or ``max_levels``
    more levels; returns the new state and the workspace (pass it back to continue without
    rebuilding it; without it, it is rebuilt from the state, with identical results).

    ``callback(step, T, nu, bonds, acceptance)`` is called after every level (acceptance:
    fraction of that level's proposals accepted).
    """
    if state.stop:
        return state, updater
    upd = workspace(geom, state, options) if updater is None else updater
    rng = np.random.default_rng()
    rng.bit_generator.state = state.rng_state
    mask = state.mask.copy()
    sign = direction(state.nu_initial, state.target)
    level, step, accepted, nu = state.level, state.step, state.accepted, state.nu
    history = [state.history]
    max_err, stop = state.max_refresh_error, ""
    n_levels = options.n_levels()
    done_levels = 0
    while not stop and (max_levels is None or done_levels < max_levels):
        if level >= n_levels:
            stop = "T_f"
            break
        T = options.temperature(level)
        level_accepted = 0
        for _ in range(options.per_temperature):
            step += 1
            present = np.flatnonzero(mask)
            removed = np.flatnonzero(~mask)
            remove = rng.random() < options.p_remove or len(removed) == 0
            pool = present if remove else removed
            bond = int(pool[rng.integers(len(pool))])
            move = upd.propose(bond, 0.0 if remove else 1.0)
            if not move.valid:
                continue
            if not _metropolis(rng, sign * (nu - move.nu), T):
                continue
            err = upd.accept(move)
            if err is not None:
                max_err = max(max_err, err)
            mask[bond] = not remove
            nu = upd.nu
            accepted += 1
            level_accepted += 1
            if reached(nu, state.target, sign):
                stop = "target"
                break
        level += 1
        done_levels += 1
        acc = level_accepted / options.per_temperature
        history.append(np.array([[step, T, nu, mask.sum(), acc]]))
        if callback is not None:
            callback(step, T, nu, int(mask.sum()), acc)
    new = AnnealState(
        mask, np.asarray(upd.pending, np.int64), level, step, accepted, float(nu),
        state.nu_initial, state.target, rng.bit_generator.state, np.concatenate(history),
        float(max_err), stop,
    )  # fmt: skip
    return new, upd


def state_to_arrays(state: AnnealState) -> dict[str, np.ndarray]:
    """The state as named numpy arrays (for a store or ``np.savez``); the RNG state is a
    JSON string (its 128-bit integers do not fit numpy integers)."""
    out = {k: np.asarray(v) for k, v in state._asdict().items() if k != "rng_state"}
    out["rng_state"] = np.asarray(json.dumps(state.rng_state))
    return out


def state_from_arrays(arrays: dict) -> AnnealState:
    """Inverse of :func:`state_to_arrays`."""
    a = {k: np.asarray(arrays[k]) for k in AnnealState._fields}
    return AnnealState(
        a["mask"].astype(bool), a["pending"].astype(np.int64), int(a["level"]),
        int(a["step"]), int(a["accepted"]), float(a["nu"]), float(a["nu_initial"]),
        float(a["target"]), json.loads(str(a["rng_state"])), a["history"].astype(float),
        float(a["max_refresh_error"]), str(a["stop"]),
    )  # fmt: skip


def simulated_annealing(
    geom: Geometry,
    target: float,
    seed: int,
    options: AnnealOptions = AnnealOptions(),
    callback: Callable | None = None,
) -> PruningResult:
    """A whole annealing run from the full network (unit stiffnesses) as a result."""
    import time

    t0 = time.perf_counter()
    state, _ = anneal(geom, initial_state(geom, target, seed), options, callback=callback)
    wall = time.perf_counter() - t0
    return make_result(
        "annealing", geom, target, state.mask, wall, proposals=state.step,
        accepted=state.accepted, stop=state.stop, max_refresh_error=state.max_refresh_error,
        nu_updated=state.nu,
    )  # fmt: skip
