"""What every pruning method returns (:class:`PruningResult`) and when a target counts as
reached (:func:`reached`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .elasticity import Geometry, elastic_tensor, poisson_ratios


class PruningResult(NamedTuple):
    """Outcome of one method on one network.

    nu_*: the paper's ``(nu_x + nu_y)/2``; nu_iso_*: ``(B - G)/(B + G)``; success: the final
    nu is at or beyond ``target`` (:func:`reached`); bonds_removed_fraction: removed / initial
    bonds; z = 2 bonds / N; mask ``(B,)`` the final bonds; wall_s: wall time of the method;
    info: method-specific numbers (e.g. proposals, refresh errors, training loss).
    """

    method: str
    nu_initial: float
    nu_final: float
    nu_iso_initial: float
    nu_iso_final: float
    target: float
    success: bool
    bonds_removed_fraction: float
    z_initial: float
    z_final: float
    mask: np.ndarray
    wall_s: float
    info: dict


def direction(nu_initial: float, target: float) -> float:
    """+1 to raise nu toward the target, -1 to lower it."""
    return 1.0 if target > nu_initial else -1.0


def reached(nu: float, target: float, sign: float) -> bool:
    """Whether ``nu`` is at or beyond ``target`` moving in direction ``sign``."""
    return bool(sign * (nu - target) >= 0.0)


def make_result(
    method: str, geom: Geometry, target: float, mask: np.ndarray, wall_s: float, **info
) -> PruningResult:
    """Result of a final ``mask``, its nu re-evaluated by a fresh exact solve (independent of
    the updates that led to it); the initial state is all bonds (unit stiffness)."""
    b = len(mask)
    full = poisson_ratios(elastic_tensor(geom, np.ones(b)))
    final = poisson_ratios(elastic_tensor(geom, np.asarray(mask, float)))
    sign = direction(float(full.nu), target)
    n = geom.n_nodes
    return PruningResult(
        method,
        float(full.nu),
        float(final.nu),
        float(full.nu_iso),
        float(final.nu_iso),
        float(target),
        reached(float(final.nu), target, sign),
        float(1.0 - np.sum(mask) / b),
        2.0 * b / n,
        2.0 * float(np.sum(mask)) / n,
        np.asarray(mask, bool),
        float(wall_s),
        info,
    )
