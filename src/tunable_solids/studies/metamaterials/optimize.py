"""Bayesian optimization of the stiffness-density exponent ``n`` over Stillinger-Weber force
fields (paper "De novo atomistic discovery of disordered mechanical metamaterials by machine
learning", Experimental Section and Fig. 5; expected improvement is its Eq. 8).

Search space (paper Fig. 5A), columns always in the order of :data:`PARAMETERS`:
``lambda_over_A`` in [0, 4], ``gamma`` in [0.4, 2.0], ``theta0`` in [60, 180] degrees. The
surrogate and the acquisition work in the unit cube ``u = (x - low) / (high - low)``, so the
fitted length scales are fractions of each parameter's range.

Pieces (all pure functions of explicit data and integer seeds; the same inputs give the same
proposals bit for bit, which is what lets an interrupted loop resume with the same points):

- designs: the paper's full factorial (6 theta0 x 4 lambda/A x 5 gamma = 120 force fields),
  a Latin hypercube, uniform random points;
- surrogate (:func:`fit_gp`): a Gaussian process, constant x Matern(nu = 5/2) with one length
  scale per dimension + white noise, hyperparameters by maximum marginal likelihood with
  restarts, on targets standardized here (zero mean, unit variance). The measured error of
  each ``n`` (its fit error ``n_err``) enters as known per-point noise, the white term takes
  what it does not explain (seed-to-seed scatter of the melt-quench);
- acquisition (:func:`expected_improvement`): Eq. 8 for minimization with an exploration
  margin ``xi`` (``xi = 0`` is the paper's form), maximized over the unit cube by multi-start
  L-BFGS-B (:func:`maximize`);
- batches (:func:`propose_batch`): ``q`` proposals per round, so that a round is ``q``
  parallel cluster jobs, by the *kriging believer* heuristic: after choosing a point, the
  GP is conditioned on its own predicted mean there (hyperparameters kept) and the next
  point maximizes EI again. We prefer it to the constant liar because it needs no lie level
  (a "min" liar pushes the batch to explore, a "max" liar to cluster, and the choice is a
  free parameter with no physical meaning here) and uses the model's own belief; both are
  heuristics of the same cost (one Cholesky update per point), and neither re-fits the
  hyperparameters inside a batch. A point closer than ``min_distance`` (unit cube) to any
  point already evaluated or proposed is never returned;
- baselines at the same budget (:func:`propose_round`): random search (uniform points) and a
  space-filling design alone (a Latin hypercube of the whole budget in one round);
- checks: leave-one-out predictions (:func:`loo_predictions`, closed form, Rasmussen &
  Williams Eq. 5.12) and the table the figures read (:func:`optimization_table`).

Why scikit-learn's ``GaussianProcessRegressor`` rather than BoTorch: weight and long-term
value. scikit-learn needs only numpy and scipy, which the project already has; BoTorch brings
PyTorch and GPyTorch (hundreds of MB on CPU, a second CUDA stack on GPU) into a JAX project.
The scikit-learn GP API has been stable for over a decade under a conservative deprecation
policy, while BoTorch's is still 0.x and changes between releases. What BoTorch adds (Monte
Carlo q-EI, GPU-batched acquisition, large data) buys nothing for a few hundred 3-D points
whose every evaluation costs hours of MD: an exact GP here costs milliseconds. The price is
that EI, its multi-start maximization and the batch heuristic are written here (and tested).
"""

from __future__ import annotations

import copy
import functools
import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.linalg import cho_solve
from scipy.optimize import minimize
from scipy.special import ndtr
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from threadpoolctl import threadpool_limits  # a requirement of scikit-learn

PARAMETERS = ("lambda_over_A", "gamma", "theta0")
BOUNDS = np.array([[0.0, 4.0], [0.4, 2.0], [60.0, 180.0]])
# The paper's initial orthogonal array (Experimental Section): all combinations of these.
FACTORIAL_LEVELS = {
    "lambda_over_A": (1.0, 2.0, 3.0, 4.0),
    "gamma": (0.4, 0.8, 1.2, 1.6, 2.0),
    "theta0": (60.0, 90.0, 109.5, 120.0, 150.0, 180.0),
}
#: Decimals kept in proposed parameters (written to CSV, read back by the evaluation jobs).
DECIMALS = 4
#: Diagonal jitter (standardized units) added to every training point for numerical safety.
JITTER = 1e-10
STRATEGIES = ("bo", "random", "lhs")
LOG = logging.getLogger(__name__)
EVALUATION_COLUMNS = ("lambda_over_A", "gamma", "theta0", "n", "n_err", "converged")
PROPOSAL_COLUMNS = (
    "round",
    "proposal",
    "lambda_over_A",
    "gamma",
    "theta0",
    "predicted_n",
    "predicted_sd",
    "ei",
)

DEFAULT_BO = {
    "initial_design": "lhs",
    "rounds": 2,
    "batch_size": 4,
    "xi": 0.0,
    "restarts": 5,
    "n_starts": 16,
    "n_candidates": 2048,
    "min_distance": 1e-3,
    "use_n_err": True,
    "seed": 0,
    "optimizer_seeds": [0],
    "random_search": True,
    "lhs_baseline": True,
}


def single_threaded(fn):
    """Run ``fn`` with one BLAS thread: the matrices here are at most a few hundred wide, so
    threads gain nothing, and on a shared node their spinning slowed a proposal round ~30x
    (measured on 2 busy cores)."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapped


# --------------------------------------------------------------------------- space, designs


def to_unit(x: np.ndarray) -> np.ndarray:
    """Physical parameters ``(m, 3)`` (columns :data:`PARAMETERS`) -> unit cube."""
    return (np.asarray(x, float) - BOUNDS[:, 0]) / (BOUNDS[:, 1] - BOUNDS[:, 0])


def from_unit(u: np.ndarray) -> np.ndarray:
    """Unit cube ``(m, 3)`` -> physical parameters, rounded to :data:`DECIMALS` and clipped to
    the bounds."""
    x = BOUNDS[:, 0] + np.asarray(u, float) * (BOUNDS[:, 1] - BOUNDS[:, 0])
    return np.clip(np.round(x, DECIMALS), BOUNDS[:, 0], BOUNDS[:, 1])


def rng_for(*keys: int) -> np.random.Generator:
    """A generator determined by integer ``keys`` (base seed, run seed, round, purpose...)."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


def factorial_design() -> np.ndarray:
    """The paper's 120 force fields ``(120, 3)``: every combination of
    :data:`FACTORIAL_LEVELS` (theta0 slowest, gamma fastest)."""
    lv = FACTORIAL_LEVELS
    grid = [
        (lam, gam, th) for th in lv["theta0"] for lam in lv["lambda_over_A"] for gam in lv["gamma"]
    ]
    return np.array(grid, float)


def latin_hypercube(size: int, rng: np.random.Generator) -> np.ndarray:
    """Latin hypercube in the unit cube ``(size, 3)``: along every axis, each of the ``size``
    equal strata holds exactly one point (uniform inside its stratum)."""
    d = len(PARAMETERS)
    strata = np.stack([rng.permutation(size) for _ in range(d)], axis=1)
    return (strata + rng.random((size, d))) / size


def initial_design(kind: str, size: int | None, rng: np.random.Generator) -> np.ndarray:
    """Physical parameters of round 0: ``factorial`` (paper, 120) or ``lhs`` (``size``)."""
    if kind == "factorial":
        return factorial_design()
    if kind == "lhs":
        return from_unit(latin_hypercube(int(size), rng))
    raise ValueError(f"initial_design: {kind!r} is not allowed; allowed: factorial, lhs")


# --------------------------------------------------------------------------- surrogate


@dataclass(frozen=True)
class Surrogate:
    """A fitted GP on unit-cube inputs and standardized targets ``(y - mean) / scale``."""

    gp: GaussianProcessRegressor
    mean: float
    scale: float

    @property
    def length_scales(self) -> np.ndarray:
        """Fitted Matern length scales (fractions of each parameter's range)."""
        return np.atleast_1d(self.gp.kernel_.k1.k2.length_scale).astype(float)

    @property
    def noise_sd(self) -> float:
        """Fitted white-noise standard deviation, in units of ``n``."""
        return float(np.sqrt(self.gp.kernel_.k2.noise_level) * self.scale)


def make_kernel(dim: int = len(PARAMETERS)):
    """Constant x Matern 5/2 (one length scale per dimension) + white noise, on standardized
    targets (unit variance). Length scales from 1% of a range (finer than any design here
    resolves) to 3 ranges (a parameter that hardly matters: correlation 0.92 across the whole
    range); signal variance up to 10. Wider bounds (1e2 ranges, 1e3) let a GP of a few points
    explain a smooth bowl by a huge, nearly flat trend that it then extrapolates into the
    corners of the cube: on the bowl of the tests BO stalled at the random-search level on 3
    of 8 seeds with them, on none with these."""
    return ConstantKernel(1.0, (1e-3, 10.0)) * Matern(
        length_scale=np.full(dim, 0.3), length_scale_bounds=(1e-2, 3.0), nu=2.5
    ) + WhiteKernel(1e-2, (1e-10, 1.0))


@single_threaded
def fit_gp(
    x: np.ndarray,
    y: np.ndarray,
    y_err: np.ndarray | None = None,
    restarts: int = 5,
    seed: int = 0,
) -> Surrogate:
    """Fit the surrogate to physical points ``x`` ``(m, 3)`` and values ``y`` ``(m,)``;
    ``y_err`` (same units as ``y``) is added as known per-point noise. ``restarts`` extra
    marginal-likelihood optimizations start from random hyperparameters (``seed``)."""
    y = np.asarray(y, float)
    mean = float(y.mean())
    scale = float(y.std()) or 1.0
    alpha = np.full(len(y), JITTER)
    if y_err is not None:
        alpha = alpha + (np.nan_to_num(np.asarray(y_err, float)) / scale) ** 2
    gp = GaussianProcessRegressor(
        make_kernel(),
        alpha=alpha,
        normalize_y=False,  # standardized here: the kriging believer keeps mean and scale
        n_restarts_optimizer=int(restarts),
        random_state=int(seed),
    )
    with warnings.catch_warnings():
        # A hyperparameter at its bound is expected (an irrelevant dimension's length scale
        # at 100 ranges, the white noise at its floor for exact data): not worth a warning.
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(to_unit(x), (y - mean) / scale)
    return Surrogate(gp, mean, scale)


def condition(s: Surrogate, u_new: np.ndarray, y_new: np.ndarray) -> Surrogate:
    """``s`` conditioned on extra unit-cube points with values ``y_new`` (units of y), its
    hyperparameters kept (no re-fit): the kriging-believer update."""
    u = np.vstack([s.gp.X_train_, np.atleast_2d(u_new)])
    z = np.concatenate([s.gp.y_train_, (np.atleast_1d(y_new) - s.mean) / s.scale])
    alpha = np.concatenate(
        [np.broadcast_to(s.gp.alpha, len(s.gp.y_train_)), [JITTER] * (len(z) - len(s.gp.y_train_))]
    )
    gp = GaussianProcessRegressor(s.gp.kernel_, alpha=alpha, optimizer=None, normalize_y=False)
    gp.fit(u, z)
    return Surrogate(gp, s.mean, s.scale)


def _matern52(u: np.ndarray, x: np.ndarray, s: Surrogate) -> tuple[np.ndarray, np.ndarray]:
    """Signal covariance ``k(u_i, x_j)`` ``(m, k)`` of the fitted kernel (constant x Matern
    5/2, the white term has no cross-covariance) and its gradient in ``u`` ``(m, k, 3)``:
    ``c (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)``, ``r = |(u - x) / l|``, whose gradient
    ``-5c/3 (1 + sqrt5 r) exp(-sqrt5 r) (u - x) / l^2`` is smooth at ``r = 0``."""
    c = float(s.gp.kernel_.k1.k1.constant_value)
    ell = s.length_scales
    diff = (u[:, None, :] - x[None, :, :]) / ell
    r = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    e = np.exp(-np.sqrt(5.0) * r)
    k = c * (1.0 + np.sqrt(5.0) * r + 5.0 / 3.0 * r**2) * e
    dk = (-5.0 / 3.0 * c * (1.0 + np.sqrt(5.0) * r) * e)[..., None] * diff / ell
    return k, dk


def predict_unit(s: Surrogate, u: np.ndarray, grad: bool = False):
    """Posterior mean and standard deviation of the *latent* ``n`` (white noise excluded)
    at unit-cube points ``u`` ``(m, 3)``, in units of ``n``; with ``grad``, also their
    gradients in ``u`` ``(m, 3)`` each (where ``sd > 0``)."""
    gp = s.gp
    u = np.atleast_2d(np.asarray(u, float))
    k, dk = _matern52(u, gp.X_train_, s)
    mu = k @ gp.alpha_
    w = cho_solve((gp.L_, True), k.T)  # K^-1 k, (n_train, m)
    c = float(gp.kernel_.k1.k1.constant_value)
    var = np.clip(c - np.einsum("ij,ji->i", k, w), 0.0, None)
    sd = np.sqrt(var)
    if not grad:
        return s.mean + s.scale * mu, s.scale * sd
    dmu = np.einsum("ijk,j->ik", dk, gp.alpha_)
    dvar = -2.0 * np.einsum("ijk,ji->ik", dk, w)
    dsd = np.where(sd[:, None] > 0, dvar / (2.0 * np.where(sd > 0, sd, 1.0)[:, None]), 0.0)
    return s.mean + s.scale * mu, s.scale * sd, s.scale * dmu, s.scale * dsd


def predict(s: Surrogate, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict_unit` at physical points ``x`` ``(m, 3)``."""
    return predict_unit(s, to_unit(x))


@single_threaded
def loo_predictions(s: Surrogate) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out mean and standard deviation of each *measured* value (noise included)
    with the hyperparameters fixed, in closed form: ``mu_i = y_i - [K^-1 y]_i / [K^-1]_ii``,
    ``var_i = 1 / [K^-1]_ii`` (Rasmussen & Williams Eq. 5.12). Units of ``n``, training order.
    Not re-fitting the hyperparameters per left-out point makes it slightly optimistic."""
    gp = s.gp
    kinv = cho_solve((gp.L_, True), np.eye(len(gp.y_train_)))
    d = np.diag(kinv)
    mu = gp.y_train_ - gp.alpha_ / d
    return s.mean + s.scale * mu, s.scale / np.sqrt(d)


# --------------------------------------------------------------------------- acquisition


def expected_improvement(mu, sd, best: float, xi: float = 0.0) -> np.ndarray:
    """Expected improvement below ``best`` (paper Eq. 8, for minimization):
    ``EI = (best - mu - xi) Phi(Z) + sd phi(Z)``, ``Z = (best - mu - xi) / sd``, and 0 where
    ``sd = 0`` (the paper's convention). ``xi >= 0`` asks for an improvement of at least
    ``xi`` (units of n); the paper's form is ``xi = 0``. (The paper's text says EI is high
    where n(x) is *higher* than the incumbent: for a minimization it is where it is lower.)"""
    mu, sd = np.broadcast_arrays(np.asarray(mu, float), np.asarray(sd, float))
    gain = best - mu - xi
    out = np.zeros(mu.shape)
    pos = sd > 0
    z = gain[pos] / sd[pos]
    out[pos] = gain[pos] * ndtr(z) + sd[pos] * np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    return np.clip(out, 0.0, None)  # rounding can leave -1e-17 far below the incumbent


def ei_unit(s: Surrogate, u: np.ndarray, best: float, xi: float = 0.0, grad: bool = False):
    """:func:`expected_improvement` of the surrogate's latent n at unit-cube points ``u``
    ``(m, 3)``; with ``grad`` also its gradient ``(m, 3)``, from ``dEI/dmu = -Phi(Z)`` and
    ``dEI/dsd = phi(Z)``."""
    if not grad:
        return expected_improvement(*predict_unit(s, u), best, xi)
    mu, sd, dmu, dsd = predict_unit(s, u, grad=True)
    value = expected_improvement(mu, sd, best, xi)
    pos = sd > 0
    z = np.where(pos, (best - mu - xi) / np.where(pos, sd, 1.0), 0.0)
    pdf = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    g = -ndtr(z)[:, None] * dmu + pdf[:, None] * dsd
    return value, np.where(pos[:, None], g, 0.0)


def far_from(u: np.ndarray, others: np.ndarray, min_distance: float) -> np.ndarray:
    """Which rows of ``u`` ``(m, 3)`` are at least ``min_distance`` (Euclidean, unit cube)
    from every row of ``others`` ``(k, 3)``."""
    u = np.atleast_2d(u)
    if len(others) == 0:
        return np.ones(len(u), bool)
    d = np.linalg.norm(u[:, None, :] - np.asarray(others)[None, :, :], axis=-1)
    return d.min(axis=1) >= min_distance


def maximize(
    fun,
    rng: np.random.Generator,
    exclude: np.ndarray,
    min_distance: float,
    n_starts: int = 16,
    n_candidates: int = 2048,
) -> tuple[np.ndarray, float]:
    """Maximize ``fun`` (``fun(u) -> (m,)`` values >= 0 at unit-cube points ``(m, 3)``,
    ``fun(u, grad=True) -> (values, (m, 3) gradients)``) over the unit cube by L-BFGS-B from
    ``n_starts`` starts: half the best of ``n_candidates`` uniform points, half uniform points
    (a sharp peak found by sampling and distant basins are both searched). Returns the best
    point (as :func:`from_unit` rounds it) at least ``min_distance`` from every row of
    ``exclude``, and its value; the uniform candidates are the fallback."""
    d = len(PARAMETERS)
    cand = rng.random((n_candidates, d))
    fc = fun(cand)
    n_top = n_starts - n_starts // 2
    starts = np.vstack([cand[np.argsort(-fc)[:n_top]], rng.random((n_starts - n_top, d))])
    # Scaled so that L-BFGS-B's absolute gradient tolerance means the same at any EI level.
    ref = max(float(fc.max()), 1e-300)

    def neg(v):
        value, g = fun(v[None, :], grad=True)
        return -value[0] / ref, -g[0] / ref

    ends = [
        minimize(neg, s, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * d).x for s in starts
    ]
    pts = to_unit(from_unit(np.vstack([np.array(ends), cand])))
    vals = fun(pts)
    ok = far_from(pts, exclude, min_distance)
    if not ok.any():
        raise RuntimeError(
            f"no point of the search space is farther than min_distance = {min_distance} "
            f"(unit cube) from the {len(exclude)} points evaluated or proposed"
        )
    i = np.flatnonzero(ok)[np.argmax(vals[ok])]
    return pts[i], float(vals[i])


def propose_batch(
    x: np.ndarray,
    y: np.ndarray,
    y_err: np.ndarray | None,
    exclude: np.ndarray,
    q: int,
    rng: np.random.Generator,
    xi: float = 0.0,
    restarts: int = 5,
    n_starts: int = 16,
    n_candidates: int = 2048,
    min_distance: float = 1e-3,
) -> pd.DataFrame:
    """``q`` force fields maximizing EI by the kriging believer (module docstring).

    ``x`` ``(m, 3)``, ``y``, ``y_err`` ``(m,)``: valid evaluations (physical units);
    ``exclude`` ``(k, 3)``: every point ever evaluated or proposed, valid or not (a failed
    force field is not proposed again). Columns of the result: :data:`PARAMETERS`,
    ``predicted_n`` and ``predicted_sd`` (latent n from the GP fitted to ``x, y``: the
    prospective prediction of the measurement) and ``ei`` (the acquisition value at
    selection, with the batch's earlier proposals believed)."""
    s = fit_gp(x, y, y_err, restarts, int(rng.integers(2**31)))
    best = float(np.min(y))
    LOG.info(
        "GP on %d evaluations (best n = %.4g): %s; length scales / range %s, noise sd %.3g",
        len(y),
        best,
        s.gp.kernel_,
        np.round(s.length_scales, 3),
        s.noise_sd,
    )
    taken = to_unit(exclude) if len(exclude) else np.zeros((0, len(PARAMETERS)))
    believer, rows = s, []
    for _ in range(q):
        cur, b = believer, best

        def ei(u, grad=False, cur=cur, b=b):
            return ei_unit(cur, u, b, xi, grad)

        u, value = maximize(ei, rng, taken, min_distance, n_starts, n_candidates)
        mu, sd = predict_unit(s, u)
        rows.append([*from_unit(u[None])[0], mu[0], sd[0], value])
        taken = np.vstack([taken, u])
        fantasy = predict_unit(believer, u)[0]
        believer = condition(believer, u, fantasy)
        best = min(best, float(fantasy[0]))
        LOG.info(
            "proposal %d/%d: %s, predicted n = %.4g +- %.3g, EI = %.3g",
            len(rows),
            q,
            dict(zip(PARAMETERS, rows[-1][:3], strict=True)),
            *rows[-1][3:],
        )
    return pd.DataFrame(rows, columns=[*PARAMETERS, "predicted_n", "predicted_sd", "ei"])


def random_points(
    q: int, rng: np.random.Generator, exclude: np.ndarray, min_distance: float
) -> np.ndarray:
    """``q`` uniform points (physical), each farther than ``min_distance`` from ``exclude``
    and from one another (rejection)."""
    taken = to_unit(exclude) if len(exclude) else np.zeros((0, len(PARAMETERS)))
    out = []
    while len(out) < q:
        u = to_unit(from_unit(rng.random((1, len(PARAMETERS)))))
        if far_from(u, taken, min_distance)[0]:
            out.append(u[0])
            taken = np.vstack([taken, u])
    return from_unit(np.array(out))


# --------------------------------------------------------------------------- settings, runs


def bo_settings(bo: dict) -> dict:
    """The ``bo`` config block with defaults filled in (``initial_size`` is 120 for the
    factorial design)."""
    out = {**copy.deepcopy(DEFAULT_BO), **copy.deepcopy(bo)}
    if out["initial_design"] == "factorial":
        out.setdefault("initial_size", len(factorial_design()))
    return out


def bo_errors(config: dict) -> list[str]:
    """Rules of ``metamaterials.bo`` that the schema (``workflow/schemas/metamaterials_bo
    .schema.yaml#/$defs/bo``) cannot express; ``config`` is the whole workflow config."""
    bo = config.get("metamaterials", {}).get("bo")
    if bo is None:
        return []
    key, out = "metamaterials.bo", []
    s = bo_settings(bo)
    n_factorial = len(factorial_design())
    if s["initial_design"] == "lhs" and "initial_size" not in bo:
        out.append(f"{key}.initial_size: required with initial_design lhs")
        return out
    if s["initial_design"] == "factorial" and s["initial_size"] != n_factorial:
        out.append(
            f"{key}.initial_size: {s['initial_size']} is not allowed with initial_design "
            f"factorial; allowed: {n_factorial} (or leave it out)"
        )
    # Every proposal keeps min_distance from all others: spheres of diameter min_distance
    # around the points must fill well under random close packing (0.64) of the unit cube,
    # or late proposals are squeezed into the gaps left, whatever EI says.
    fill = budget(s) * np.pi / 6 * s["min_distance"] ** 3
    if fill > 0.05:
        out.append(
            f"{key}.min_distance: {s['min_distance']} is too large for a budget of "
            f"{budget(s)} force fields (they would fill {fill:.2f} of the unit cube; allowed: "
            "below 0.05)"
        )
    return out


def budget(settings: dict) -> int:
    """Evaluations of one BO run: the initial design plus ``rounds x batch_size``."""
    return settings["initial_size"] + settings["rounds"] * settings["batch_size"]


def bo_runs(settings: dict) -> dict[str, dict]:
    """Every run of the study: ``bo-s<k>`` per optimizer seed, and at the same budget
    ``random-s<k>`` (random search, same round sizes) and ``lhs-s<k>`` (a Latin hypercube of
    the whole budget in round 0: the space-filling design alone). Each value has the
    ``strategy``, ``seed`` and the number of proposals of each round (``sizes``)."""
    rounds = [settings["initial_size"]] + [settings["batch_size"]] * settings["rounds"]
    runs = {}
    for k in settings["optimizer_seeds"]:
        runs[f"bo-s{k}"] = {"strategy": "bo", "seed": k, "sizes": rounds}
        if settings["random_search"]:
            runs[f"random-s{k}"] = {"strategy": "random", "seed": k, "sizes": rounds}
        if settings["lhs_baseline"]:
            runs[f"lhs-s{k}"] = {"strategy": "lhs", "seed": k, "sizes": [budget(settings)]}
    return runs


def evaluation_keys(run: dict, rounds: int | None = None) -> list[tuple[int, int]]:
    """``(round, proposal)`` of every evaluation of ``run`` (:func:`bo_runs`), or of its first
    ``rounds`` rounds: the evaluation jobs a proposal round waits for."""
    sizes = run["sizes"][: len(run["sizes"]) if rounds is None else rounds]
    return [(r, i) for r, size in enumerate(sizes) for i in range(size)]


def round_settings(settings: dict, run: dict, round_: int) -> dict:
    """What round ``round_`` of ``run`` depends on (a proposal job's params): adding rounds or
    baselines, or changing the acquisition, never reruns the initial design."""
    out = {
        "strategy": run["strategy"],
        "seed": settings["seed"],
        "run_seed": run["seed"],
        "size": run["sizes"][round_],
        "min_distance": settings["min_distance"],
    }
    if run["strategy"] == "bo" and round_ == 0:
        out["initial_design"] = settings["initial_design"]
    if run["strategy"] == "bo" and round_ > 0:
        keys = ("initial_design", "xi", "restarts", "n_starts", "n_candidates", "use_n_err")
        out.update({key: settings[key] for key in keys})
    return out


def valid(evaluations: pd.DataFrame) -> pd.DataFrame:
    """The evaluations the surrogate may use: converged, not excluded, finite ``n``."""
    ok = np.isfinite(evaluations["n"].to_numpy(float))
    for flag, good in (("converged", True), ("excluded", False)):
        if flag in evaluations:
            ok &= evaluations[flag].astype(str).str.lower().isin(["true", "1", "1.0"]) == good
    return evaluations[ok]


@single_threaded
def propose_round(rs: dict, round_: int, evaluations: pd.DataFrame) -> pd.DataFrame:
    """Proposals of round ``round_`` (columns :data:`PROPOSAL_COLUMNS`) from the settings of
    that round (:func:`round_settings`) and every evaluation of the earlier rounds (columns
    :data:`EVALUATION_COLUMNS`; rows not :func:`valid` only keep their points from being
    proposed again). Deterministic in ``(rs, round_, evaluations)``."""
    rng = rng_for(rs["seed"], rs["run_seed"], STRATEGIES.index(rs["strategy"]), round_)
    q = rs["size"]
    nan = np.full(q, np.nan)
    exclude = evaluations[list(PARAMETERS)].to_numpy(float).reshape(-1, len(PARAMETERS))
    if round_ == 0 and rs["strategy"] == "bo":
        x = initial_design(rs["initial_design"], q, rng)
        out = pd.DataFrame(x, columns=PARAMETERS).assign(predicted_n=nan, predicted_sd=nan, ei=nan)
    elif rs["strategy"] == "lhs":
        if round_ > 0:
            raise ValueError("the lhs baseline has a single round")
        x = from_unit(latin_hypercube(q, rng))
        out = pd.DataFrame(x, columns=PARAMETERS).assign(predicted_n=nan, predicted_sd=nan, ei=nan)
    elif rs["strategy"] == "random":
        x = random_points(q, rng, exclude, rs["min_distance"])
        out = pd.DataFrame(x, columns=PARAMETERS).assign(predicted_n=nan, predicted_sd=nan, ei=nan)
    else:
        good = valid(evaluations)
        if len(good) < 2:
            raise ValueError(
                f"round {round_}: {len(good)} valid evaluations (converged, not excluded) of "
                f"{len(evaluations)}; the surrogate needs at least 2"
            )
        out = propose_batch(
            good[list(PARAMETERS)].to_numpy(float),
            good["n"].to_numpy(float),
            good["n_err"].to_numpy(float) if rs["use_n_err"] else None,
            exclude,
            q,
            rng,
            rs["xi"],
            rs["restarts"],
            rs["n_starts"],
            rs["n_candidates"],
            rs["min_distance"],
        )
    out.insert(0, "proposal", np.arange(q))
    out.insert(0, "round", round_)
    return out[list(PROPOSAL_COLUMNS)]


def read_evaluations(paths: list[str]) -> pd.DataFrame:
    """Concatenated one-row evaluation CSVs (columns :data:`EVALUATION_COLUMNS`, maybe
    ``excluded``); an empty list gives an empty table with those columns."""
    if not paths:
        return pd.DataFrame(columns=list(EVALUATION_COLUMNS))
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


def read_proposal(proposals: pd.DataFrame, index: int) -> dict[str, float]:
    """Force-field parameters of proposal ``index`` of a round (what an evaluation job
    reads from that round's ``proposals.csv``)."""
    row = proposals[proposals["proposal"] == int(index)]
    if len(row) != 1:
        raise ValueError(f"proposal {index} is not in the round's proposals ({len(proposals)})")
    return {p: float(row[p].iloc[0]) for p in PARAMETERS}


# --------------------------------------------------------------------------- tables


def run_table(proposals: pd.DataFrame, evaluations: pd.DataFrame) -> pd.DataFrame:
    """One run's proposals joined to their evaluations (both with ``round``, ``proposal``),
    in evaluation order, with ``evaluation`` (1, 2, ...) and ``best_so_far`` (lowest valid
    measured ``n`` up to that evaluation)."""
    ev = evaluations.drop(columns=[p for p in PARAMETERS if p in evaluations])
    out = proposals.merge(ev, on=["round", "proposal"], how="left", validate="one_to_one")
    out = out.sort_values(["round", "proposal"]).reset_index(drop=True)
    out["valid"] = out.index.isin(valid(out).index)
    out["evaluation"] = np.arange(1, len(out) + 1)
    out["best_so_far"] = out["n"].where(out["valid"]).cummin().ffill()
    return out


def optimization_table(runs: dict[str, pd.DataFrame], settings: dict) -> pd.DataFrame:
    """All runs (:func:`run_table` each, keyed by run name) in one table with ``run``,
    ``strategy`` and ``optimizer_seed`` columns: ``results/tables/metamaterials_optimization
    .csv`` (round, proposal, predicted and measured n)."""
    meta = bo_runs(settings)
    parts = [
        t.assign(run=name, strategy=meta[name]["strategy"], optimizer_seed=meta[name]["seed"])
        for name, t in runs.items()
    ]
    table = pd.concat(parts, ignore_index=True)
    first = ["run", "strategy", "optimizer_seed", "evaluation"]
    return table[first + [c for c in table.columns if c not in first]]


def simulate(objective, settings: dict, run: dict, noise: float = 0.0) -> pd.DataFrame:
    """Run one optimization in memory with a cheap ``objective`` (physical ``(m, 3) -> (m,)``)
    in place of the melt-quench jobs: the same :func:`propose_round` calls the workflow makes,
    round by round. ``noise``: sd of Gaussian noise added to n (its ``n_err``). Returns the
    :func:`run_table`."""
    props, evals = [], []
    for r in range(len(run["sizes"])):
        done = pd.concat(evals) if evals else pd.DataFrame(columns=EVALUATION_COLUMNS)
        p = propose_round(round_settings(settings, run, r), r, done)
        x = p[list(PARAMETERS)].to_numpy(float)
        n = objective(x) + noise * rng_for(settings["seed"], run["seed"], r, 99).normal(size=len(x))
        evals.append(p[["round", "proposal", *PARAMETERS]].assign(n=n, n_err=noise, converged=True))
        props.append(p)
    return run_table(pd.concat(props), pd.concat(evals))
