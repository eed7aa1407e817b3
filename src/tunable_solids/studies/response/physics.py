"""Independent response: Jacobians of mechanical features w.r.t. interaction parameters.

Features ``y`` (any ordered combination of groups):

- ``C``: independent elastic constants, the upper triangle of the Voigt matrix
  (6 in 2D, 21 in 3D, order of :func:`mechanics.independent_labels`);
- ``Sigma``: independent stress elements in Voigt order (3 in 2D, 6 in 3D);
- ``omega``: the lowest ``n_frequencies`` non-zero vibrational frequencies.

Parameters ``theta`` (an ordered combination, :mod:`tunable_solids.parameters`): ``D``
(species diameters), ``k`` and ``B`` (upper triangles, row by row, of the symmetric species
matrices k_ab and B_ab) or ``stiffness`` (bond stiffnesses of a spring network). The state a
Jacobian is taken at is a :class:`tunable_solids.preparation.State`.

``J = dy/dtheta`` is computed at a minimum by implicit differentiation
(:func:`implicit.at_minimum`), in forward mode when ``n_theta <= n_y`` and reverse mode
otherwise. :func:`jacobian_fd` is the independent check: central differences of
re-minimized features (Richardson-extrapolated over steps h and h/2).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tunable_solids import mechanics as mech
from tunable_solids.implicit import ParticleEnergy, at_minimum
from tunable_solids.minimize import MinimizeOptions, minimize, polish
from tunable_solids.parameters import params_of, theta_of
from tunable_solids.potentials import NetworkParams
from tunable_solids.preparation import State, contact_set

Array = jax.Array

FEATURE_GROUPS = ("C", "Sigma", "omega")


@dataclass(frozen=True)
class FeatureSpec:
    """Which features make up ``y``: ``groups`` from ``C``, ``Sigma``, ``omega``."""

    groups: tuple[str, ...] = ("C",)
    n_frequencies: int = 10

    def __post_init__(self):
        bad = [g for g in self.groups if g not in FEATURE_GROUPS]
        if bad or not self.groups:
            raise ValueError(f"feature groups {bad or '[]'} not allowed; use {FEATURE_GROUPS}")


def feature_labels(spec: FeatureSpec, dim: int) -> list[str]:
    """Name of every entry of ``y``."""
    labels = []
    for g in spec.groups:
        if g == "C":
            labels += mech.independent_labels(dim)
        elif g == "Sigma":
            labels += [f"Sigma_{v}" for v in mech.voigt_labels(dim)]
        else:
            labels += [f"omega_{i}" for i in range(spec.n_frequencies)]
    return labels


def feature_group_of(spec: FeatureSpec, dim: int) -> np.ndarray:
    """Group name (``C``/``Sigma``/``omega``) of every entry of ``y``."""
    sizes = {
        "C": len(mech.independent_labels(dim)),
        "Sigma": mech.n_voigt(dim),
        "omega": spec.n_frequencies,
    }
    return np.concatenate([[g] * sizes[g] for g in spec.groups])


@partial(jax.jit, static_argnames=("potential", "spec", "cg_tol"))
def features(potential, spec: FeatureSpec, params, state: State, cg_tol: float = 1e-12) -> Array:
    """Feature vector ``y`` at the minimum ``state.positions`` of ``params``.

    Differentiable in ``params`` through the minimum (implicit differentiation); the
    positions must be a minimum of exactly these parameters.
    """
    energy_fn = ParticleEnergy(potential)
    R = at_minimum(
        energy_fn, state.positions, (params, state.box, state.species, state.pairs), cg_tol
    )
    model = mech.Model(potential, state.box, state.species, state.pairs)
    dim = R.shape[1]
    parts = []
    for g in spec.groups:
        if g == "C":
            el = mech.elastic_constants(model, R, params, cg_tol=cg_tol)
            parts.append(mech.independent_constants(el.voigt))
        elif g == "Sigma":
            sig = mech.stress(model, R, params)
            parts.append(jnp.stack([sig[a, b] for a, b in mech.VOIGT[dim]]))
        else:
            spec_ = mech.vibrational_spectrum(model, R, params, state.rattler, spec.n_frequencies)
            parts.append(spec_.frequencies)
    return jnp.concatenate(parts)


class Jacobian(NamedTuple):
    """``y0`` ``(n_y,)`` at theta0 ``(n_theta,)`` and ``J`` ``(n_y, n_theta)``."""

    y0: Array
    theta0: Array
    J: Array
    mode: str


def jacobian(
    potential,
    spec: FeatureSpec,
    names: tuple[str, ...],
    params0,
    state: State,
    cg_tol: float = 1e-12,
) -> Jacobian:
    """AD Jacobian through the minimum; forward mode if ``n_theta <= n_y``, else reverse."""
    theta0 = theta_of(params0, names)
    y0 = features(potential, spec, params0, state, cg_tol)
    mode = "forward" if theta0.shape[0] <= y0.shape[0] else "reverse"
    J = _jacobian(potential, spec, names, mode, cg_tol, theta0, params0, state)
    return Jacobian(y0, theta0, J, mode)


@partial(jax.jit, static_argnames=("potential", "spec", "names", "mode", "cg_tol"))
def _jacobian(potential, spec, names, mode, cg_tol, theta0, params0, state):
    def f(theta):
        return features(potential, spec, params_of(theta, params0, names), state, cg_tol)

    return (jax.jacfwd if mode == "forward" else jax.jacrev)(f)(theta0)


@partial(jax.jit, static_argnames=("potential", "spec", "names", "cg_tol"))
def directional_derivatives(potential, spec, names, cg_tol, params0, state, direction):
    """First and second derivatives of ``y`` along ``theta0 + gamma * direction`` at 0."""
    theta0 = theta_of(params0, names)

    def f(g):
        return features(
            potential, spec, params_of(theta0 + g * direction, params0, names), state, cg_tol
        )

    def first(g):
        return jax.jvp(f, (g,), (jnp.ones_like(g),))[1]

    d1, d2 = jax.jvp(first, (jnp.asarray(0.0),), (jnp.asarray(1.0),))
    return d1, d2


# --------------------------------------------------------------------------- re-minimization
class Reminimized(NamedTuple):
    """Features after changing parameters and re-minimizing from the reference state."""

    y: np.ndarray
    converged: bool
    max_force: float
    contacts: frozenset  # contact pairs (i, j) between non-rattlers
    energy: float


def reminimize(
    potential,
    spec: FeatureSpec,
    params,
    ref: State,
    options: MinimizeOptions,
    cg_tol: float = 1e-12,
) -> Reminimized:
    """Minimize at ``params`` starting from the reference minimum, polish, measure ``y``.

    The rattlers of the reference state are kept (a structural change shows up in the
    contact set, which the caller compares with the reference).
    """
    network = isinstance(params, NetworkParams)
    bonds = ref.pairs if network else None
    m = minimize(potential, ref.positions, ref.box, params, ref.species, options, bonds=bonds)
    m = polish(potential, m, ref.box, params, ref.species)
    state = ref._replace(positions=m.positions, pairs=m.pairs)
    y = np.asarray(features(potential, spec, params, state, cg_tol))
    return Reminimized(
        y,
        bool(m.converged),
        float(m.max_force),
        contact_set(potential, params, state),
        float(m.energy),
    )


class FDCheck(NamedTuple):
    """Finite-difference Jacobian and its comparison with the AD one.

    J_fd ``(n_y, n_theta)``; max_rel_err per feature group: ``max |J - J_fd|`` over the
    group's rows divided by ``max |J|`` over those rows; rearranged: a +-h re-minimization
    changed the contact network (that column is not a derivative and is flagged).
    """

    J_fd: np.ndarray
    max_rel_err: dict
    rearranged: np.ndarray
    step: float


def jacobian_fd(
    potential,
    spec: FeatureSpec,
    names: tuple[str, ...],
    params0,
    ref: State,
    J: np.ndarray,
    options: MinimizeOptions,
    step: float = 1e-4,
    cg_tol: float = 1e-12,
) -> FDCheck:
    """Central finite differences of re-minimized features, Richardson-extrapolated.

    ``D(h) = (y(theta + h e_j) - y(theta - h e_j)) / 2h`` has error ``O(h^2)``;
    ``(4 D(h/2) - D(h)) / 3`` cancels it, leaving ``O(h^4)``. Each re-minimization starts from
    the reference minimum and is Newton-polished to max|F| ~ 1e-15, so position errors
    (~ max|F| / lambda_min) stay far below ``h``. ``step`` is relative to ``max(|theta_j|, 1)``.
    """
    theta0 = np.asarray(theta_of(params0, names))
    contacts0 = contact_set(potential, params0, ref)
    n_y, n_t = J.shape
    J_fd = np.zeros((n_y, n_t))
    rearranged = np.zeros(n_t, bool)
    for j in range(n_t):
        h = step * max(abs(theta0[j]), 1.0)
        d = {}
        for hh in (h, h / 2):
            ys = []
            for sign in (1.0, -1.0):
                th = theta0.copy()
                th[j] += sign * hh
                r = reminimize(
                    potential,
                    spec,
                    params_of(jnp.asarray(th), params0, names),
                    ref,
                    options,
                    cg_tol,
                )
                rearranged[j] |= (r.contacts != contacts0) or not r.converged
                ys.append(r.y)
            d[hh] = (ys[0] - ys[1]) / (2 * hh)
        J_fd[:, j] = (4 * d[h / 2] - d[h]) / 3
    groups = feature_group_of(spec, ref.positions.shape[1])
    ok = ~rearranged
    errs = {}
    for g in spec.groups:
        rows = groups == g
        scale = np.max(np.abs(J[rows][:, ok])) if ok.any() else np.nan
        errs[g] = (
            float(np.max(np.abs(J[rows][:, ok] - J_fd[rows][:, ok])) / scale)
            if ok.any()
            else float("nan")
        )
    return FDCheck(J_fd, errs, rearranged, step)


# --------------------------------------------------------------------------- SVD
class SVD(NamedTuple):
    """``J = U diag(s) W^T``; rank counts ``s > rtol * s_max``."""

    U: np.ndarray  # (n_y, n_y) left singular vectors (columns)
    s: np.ndarray  # (min(n_y, n_theta),) descending
    W: np.ndarray  # (n_theta, n_theta) right singular vectors (columns)
    rank: int
    fully_independent: bool
    rtol: float


def svd(J: np.ndarray, rtol: float = 1e-9) -> SVD:
    """Singular values and vectors of ``J`` and its numerical rank.

    Singular values below ``rtol * s_max`` count as zero. The default 1e-9 sits between the
    accuracy of the AD Jacobian (~1e-11 relative, set by the 1e-12 CG tolerances) and the
    smallest physical susceptibilities seen in disordered packings (~1e-6 s_max).
    """
    U, s, Wt = np.linalg.svd(np.asarray(J), full_matrices=True)
    rank = int(np.sum(s > rtol * s[0])) if s.size and s[0] > 0 else 0
    return SVD(U, s, Wt.T, rank, rank == min(J.shape), rtol)


# --------------------------------------------------------------------------- linear regime
class Sweep(NamedTuple):
    """A sweep ``theta0 + gamma w`` along one design mode.

    gamma ``(G,)``; dy_norm ``|y(gamma) - y0|``; linear_norm ``gamma |J w|``; deviation
    ``|y - y0 - gamma J w|``; quadratic_norm ``gamma^2 |y''| / 2``; contacts_changed ``(G,)``:
    the re-minimized contact network differs from the reference; jumped ``(G,)``: the
    features jumped (:func:`feature_jumps`); rearranged = either; gamma_tilde: where the
    quadratic term reaches 10% of the linear one; gamma_r: first rearranged grid point (NaN
    if none); gamma_star: first grid point where the deviation exceeds 10% of the linear
    prediction (NaN if none).
    """

    gamma: np.ndarray
    dy_norm: np.ndarray
    linear_norm: np.ndarray
    deviation: np.ndarray
    quadratic_norm: np.ndarray
    rearranged: np.ndarray
    converged: np.ndarray
    contacts_changed: np.ndarray
    jumped: np.ndarray
    gamma_tilde: float
    gamma_r: float
    gamma_star: float


#: A feature increment between neighbouring grid points larger than this many times its
#: second-order Taylor prediction counts as a jump (a smooth but strongly non-linear
#: response stays within a few times its prediction over one step of the log grid).
JUMP_FACTOR = 10.0
#: Increments below this fraction of ``|y0|`` are never jumps: re-minimized features
#: (max|F| <= 1e-12, CG 1e-12) reproduce to ~1e-10 relative, so 1e-8 is safely above
#: their noise and far below a rearrangement's change.
JUMP_NOISE = 1e-8


def feature_jumps(
    gammas: np.ndarray,
    dy: np.ndarray,
    d1: np.ndarray,
    d2: np.ndarray,
    y0_norm: float,
    factor: float = JUMP_FACTOR,
) -> np.ndarray:
    """Grid points ``(G,)`` where the features jump: ``|dy_k - dy_{k-1}|`` exceeds ``factor``
    times the increment of the Taylor prediction ``gamma d1 + gamma^2 d2 / 2`` plus the noise
    floor ``JUMP_NOISE |y0|`` (``dy``: ``(G, n_y)`` changes from the reference ``y0``;
    the first point is compared with gamma = 0)."""
    g = np.concatenate([[0.0], np.asarray(gammas, float)])
    pred = g[:, None] * d1[None] + 0.5 * g[:, None] ** 2 * d2[None]
    meas = np.concatenate([np.zeros((1, dy.shape[1])), dy])
    step_meas = np.linalg.norm(np.diff(meas, axis=0), axis=1)
    step_pred = np.linalg.norm(np.diff(pred, axis=0), axis=1)
    return step_meas > factor * step_pred + JUMP_NOISE * y0_norm


def linear_regime_sweep(
    potential,
    spec: FeatureSpec,
    names: tuple[str, ...],
    params0,
    ref: State,
    direction: np.ndarray,
    gammas: np.ndarray,
    options: MinimizeOptions,
    cg_tol: float = 1e-12,
) -> Sweep:
    """Re-minimize (from the reference state) along ``direction`` for every ``gamma``."""
    direction = jnp.asarray(direction)
    theta0 = theta_of(params0, names)
    y0 = np.asarray(features(potential, spec, params0, ref, cg_tol))
    d1, d2 = (
        np.asarray(x)
        for x in directional_derivatives(potential, spec, names, cg_tol, params0, ref, direction)
    )
    contacts0 = contact_set(potential, params0, ref)
    out = {k: [] for k in ("dy", "contacts", "conv")}
    for g in gammas:
        r = reminimize(
            potential, spec, params_of(theta0 + g * direction, params0, names), ref, options, cg_tol
        )
        out["dy"].append(r.y - y0)
        out["contacts"].append(r.contacts != contacts0)
        out["conv"].append(r.converged)
    gammas = np.asarray(gammas, float)
    dy = np.asarray(out["dy"])
    lin = gammas * np.linalg.norm(d1)
    quad = 0.5 * gammas**2 * np.linalg.norm(d2)
    dev = np.linalg.norm(dy - gammas[:, None] * d1[None], axis=1)
    contacts = np.asarray(out["contacts"])
    jumped = feature_jumps(gammas, dy, d1, d2, float(np.linalg.norm(y0)))
    re = contacts | jumped
    gamma_tilde = 0.2 * np.linalg.norm(d1) / max(np.linalg.norm(d2), 1e-300)
    gamma_r = float(gammas[re.argmax()]) if re.any() else float("nan")
    bad = dev > 0.1 * lin
    gamma_star = float(gammas[bad.argmax()]) if bad.any() else float("nan")
    return Sweep(
        gammas,
        np.linalg.norm(dy, axis=1),
        lin,
        dev,
        quad,
        re,
        np.asarray(out["conv"]),
        contacts,
        jumped,
        float(gamma_tilde),
        gamma_r,
        gamma_star,
    )


class InverseStep(NamedTuple):
    """One-step inverse design ``dtheta = pinv(J) dy*`` and what re-minimizing achieved."""

    dtheta: np.ndarray
    requested: np.ndarray
    achieved: np.ndarray
    rel_error: float  # |achieved - requested| / |requested|
    rearranged: bool


def one_step_design(
    potential,
    spec: FeatureSpec,
    names: tuple[str, ...],
    params0,
    ref: State,
    J: np.ndarray,
    dy_target: np.ndarray,
    options: MinimizeOptions,
    cg_tol: float = 1e-12,
) -> InverseStep:
    """Request a feature change ``dy_target``; apply ``pinv(J) dy_target``; re-minimize."""
    dtheta = np.linalg.pinv(J) @ dy_target
    theta0 = theta_of(params0, names)
    y0 = np.asarray(features(potential, spec, params0, ref, cg_tol))
    r = reminimize(
        potential,
        spec,
        params_of(theta0 + jnp.asarray(dtheta), params0, names),
        ref,
        options,
        cg_tol,
    )
    achieved = r.y - y0
    err = float(np.linalg.norm(achieved - dy_target) / np.linalg.norm(dy_target))
    return InverseStep(
        dtheta, dy_target, achieved, err, r.contacts != contact_set(potential, params0, ref)
    )
