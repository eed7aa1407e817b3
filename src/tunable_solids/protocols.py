"""Preparation protocols built from minimization and mechanics.

:func:`prepare_at_pressure` brings a packing to a target pressure by affinely rescaling
the box and re-minimizing: Newton steps in ``ln V`` with the measured bulk modulus
(``dp / d ln V ~ -B``), kept inside the bracket of volumes already known to lie above and
below the target, so near jamming an overshoot into the unjammed state is undone by
bisection instead of diverging.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from .mechanics import Model, elastic_constants, isotropic_moduli, pressure
from .minimize import MinimizeOptions, Minimum, minimize

log = logging.getLogger(__name__)


class Prepared(NamedTuple):
    """A minimum at (approximately) the target pressure."""

    minimum: Minimum
    box: np.ndarray
    pressure: float
    rounds: int
    converged: bool  # force-converged and within the pressure tolerance
    total_iterations: int


def prepare_at_pressure(
    potential,
    R,
    box,
    params,
    species,
    target: float,
    options: MinimizeOptions,
    rtol: float = 1e-3,
    max_rounds: int = 60,
    max_step: float = 0.1,
) -> Prepared:
    """Minimize, then rescale the box until ``|p - target| <= rtol * target``.

    Each round re-minimizes from the affinely rescaled previous minimum. ``max_step`` bounds
    ``|d ln V|`` per round. Returns the last state; ``converged`` is False if the tolerance
    was not reached in ``max_rounds`` or the last minimization did not converge.
    """
    box = np.asarray(box, float)
    dim = box.shape[0]
    m = minimize(potential, R, box, params, species, options)
    iterations = int(m.iterations)
    ln_v = math.log(abs(np.linalg.det(box)))
    above, below = None, None  # ln V with p > target (compressed), p < target (expanded)
    p = float("nan")
    for rounds in range(1, max_rounds + 1):
        model = Model(potential, jnp.asarray(box), species, m.pairs)
        p = float(pressure(model, m.positions, params))
        ok = bool(m.converged) and abs(p - target) <= rtol * target
        log.info(
            "pressure round %d: p = %.6e (target %.3e), ln V = %.6f, max|F| = %.2e",
            rounds,
            p,
            target,
            ln_v,
            float(m.max_force),
        )
        if ok:
            return Prepared(m, box, p, rounds, True, iterations)
        if p > target:
            above = ln_v if above is None else max(above, ln_v)
        else:
            below = ln_v if below is None else min(below, ln_v)
        if p <= 1e-3 * target:  # unjammed (or nearly): no useful modulus, compress
            step = -0.5 * max_step
        else:
            el = elastic_constants(model, m.positions, params)
            bulk = float(isotropic_moduli(el.voigt, dim)[0])
            step = (p - target) / max(bulk, p)
        step = float(np.clip(step, -max_step, max_step))
        new = ln_v + step
        if above is not None and below is not None and not (above < new < below):
            new = 0.5 * (above + below)
        factor = math.exp((new - ln_v) / dim)
        ln_v = new
        box = box * factor
        m = minimize(potential, m.positions * factor, box, params, species, options)
        iterations += int(m.iterations)
    p = float(pressure(Model(potential, jnp.asarray(box), species, m.pairs), m.positions, params))
    return Prepared(m, box, p, max_rounds, False, iterations)
