"""Bayesian optimization of n (studies.metamaterials.optimize): designs, expected improvement,
the Gaussian-process surrogate, batch proposals, config rules, and BO against random search on
a cheap synthetic function."""

import jsonschema
import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from tunable_solids.config import registry
from tunable_solids.studies.metamaterials import optimize as o

P = list(o.PARAMETERS)


def bowl(x):
    """Shifted anisotropic quadratic, minimum 1 at unit-cube point (0.3, 0.7, 0.45): steep in
    lambda/A, mild in theta0 (a GP must find both length scales)."""
    u = o.to_unit(x)
    return 1.0 + 4.0 * ((u - [0.3, 0.7, 0.45]) ** 2 * [4.0, 1.0, 0.25]).sum(axis=1)


# --------------------------------------------------------------------------- designs


def test_factorial_design_is_the_papers_120_force_fields():
    x = o.factorial_design()
    assert x.shape == (120, 3)
    assert len(np.unique(x, axis=0)) == 120
    assert np.all((x >= o.BOUNDS[:, 0]) & (x <= o.BOUNDS[:, 1]))
    for k, p in enumerate(P):  # every combination of the paper's levels
        assert sorted(set(x[:, k])) == sorted(o.FACTORIAL_LEVELS[p])
    assert {len(o.FACTORIAL_LEVELS[p]) for p in P} == {4, 5, 6}


@pytest.mark.parametrize("size", [7, 30])
def test_latin_hypercube_has_one_point_per_stratum_on_every_axis(size):
    u = o.latin_hypercube(size, o.rng_for(3))
    assert u.shape == (size, 3)
    assert np.all((u >= 0) & (u < 1))
    for k in range(3):
        assert sorted(np.floor(u[:, k] * size).astype(int)) == list(range(size))
    assert np.array_equal(u, o.latin_hypercube(size, o.rng_for(3)))
    assert not np.allclose(u, o.latin_hypercube(size, o.rng_for(4)))


# --------------------------------------------------------------------------- expected improvement


def ei_by_quadrature(mu, sd, best, xi):
    """E[max(best - xi - Y, 0)], Y ~ N(mu, sd^2), by adaptive quadrature (independent route)."""
    val, _ = quad(lambda y: (best - xi - y) * norm.pdf(y, mu, sd), mu - 12 * sd, best - xi)
    return max(val, 0.0)


@pytest.mark.parametrize(
    "mu, sd, best, xi",
    [(1.2, 0.1, 1.1, 0.0), (1.0, 0.3, 1.1, 0.0), (1.05, 0.02, 1.1, 0.01), (2.0, 0.5, 1.0, 0.1)],
)
def test_expected_improvement_matches_quadrature(mu, sd, best, xi):
    # quad's default tolerance (~1.5e-8 relative) sets the comparison.
    ei = o.expected_improvement(mu, sd, best, xi)
    assert ei == pytest.approx(ei_by_quadrature(mu, sd, best, xi), rel=1e-7, abs=1e-12)


def test_expected_improvement_by_hand_and_limits():
    # At the incumbent (Z = 0): EI = sd phi(0) = sd / sqrt(2 pi).
    assert o.expected_improvement(1.0, 0.2, 1.0) == pytest.approx(0.2 / np.sqrt(2 * np.pi))
    # sd -> 0: EI -> max(best - mu - xi, 0), continuously; at sd = 0 the paper sets EI = 0.
    assert o.expected_improvement(1.5, 1e-9, 1.0) < 1e-300
    assert o.expected_improvement(0.7, 1e-9, 1.0, 0.1) == pytest.approx(0.2, abs=1e-12)
    assert o.expected_improvement(0.7, 0.0, 1.0) == 0.0
    # EI >= the plain improvement (Jensen), grows with sd, falls with mu; never negative.
    mu = np.linspace(0.0, 2.0, 21)  # Z >= -10: EI >= 1e-24, no underflow to exact zeros
    sd = np.linspace(0.1, 1.0, 19)
    ei = o.expected_improvement(mu[:, None], sd[None, :], 1.0)
    assert np.all(ei >= np.clip(1.0 - mu[:, None], 0, None) - 1e-15)
    assert np.all(np.diff(ei, axis=1) > 0) and np.all(np.diff(ei, axis=0) < 0)


def test_ei_gradient_matches_finite_differences():
    rng = o.rng_for(5)
    x = o.from_unit(rng.random((25, 3)))
    y = bowl(x)
    s = o.fit_gp(x, y, np.full(len(y), 0.01), restarts=1, seed=0)
    u = rng.random((6, 3))
    best = float(np.median(y))  # EI clearly non-zero at some points
    value, grad = o.ei_unit(s, u, best, 0.01, grad=True)
    assert value.max() > 1e-3
    # Central differences: truncation ~h^2; round-off ~1e-16 c / h, where the fitted amplitude
    # c (~1e3 on this bowl) makes the latent variance a difference of O(c) numbers. h = 1e-5
    # balances them to ~1e-6 relative (1e-6 and 1e-4 give ~1e-5, 1e-3 ~1e-3).
    h = 1e-5
    for k in range(3):
        e = np.zeros(3)
        e[k] = h
        fd = (o.ei_unit(s, u + e, best, 0.01) - o.ei_unit(s, u - e, best, 0.01)) / (2 * h)
        assert np.allclose(grad[:, k], fd, rtol=1e-5, atol=1e-6 * np.abs(grad).max())


# --------------------------------------------------------------------------- surrogate


def test_latent_prediction_matches_scikit_learn():
    """Own Matern 5/2 prediction (used for speed and gradients) = scikit-learn's, whose
    variance also holds the white noise."""
    rng = o.rng_for(1)
    x = o.from_unit(rng.random((20, 3)))
    s = o.fit_gp(x, bowl(x) + 0.01 * rng.normal(size=20), np.full(20, 0.01), 1, 0)
    u = rng.random((8, 3))
    mu, sd = o.predict_unit(s, u)
    m, v = s.gp.predict(u, return_std=True)
    # Same formulas, different summation order: round-off ~1e-16 c |K^-1 y| with amplitude
    # c ~ 1e2 and |K^-1 y| up to ~1e4 on this smooth bowl, i.e. ~1e-10 (seen: 3e-11).
    assert np.allclose(mu, s.mean + s.scale * m, rtol=0, atol=1e-9)
    noise = s.gp.kernel_.k2.noise_level
    assert np.allclose(sd**2, s.scale**2 * (v**2 - noise), rtol=1e-9, atol=1e-14)


def test_gp_interpolates_noiseless_data():
    u = o.latin_hypercube(30, o.rng_for(2))
    x = o.from_unit(u)
    y = np.sin(3 * o.to_unit(x)) @ [1.0, 0.5, 0.25]
    s = o.fit_gp(x, y, None, restarts=2, seed=0)
    mu, sd = o.predict(s, x)
    # Exact data: the fitted white noise goes to its floor (1e-10 of the variance), so the
    # mean reproduces the data to ~1e-5 of their spread and the latent sd vanishes there.
    assert s.gp.kernel_.k2.noise_level < 1e-6
    assert np.abs(mu - y).max() < 1e-4 * y.std()
    assert sd.max() < 1e-2 * y.std()


def test_gp_recovers_length_scale_ordering():
    """Data drawn from the GP prior with length scales 0.15 < 0.6 < 5 (fractions of each
    range): the fitted length scales keep that order."""
    rng = o.rng_for(7)
    u = o.latin_hypercube(70, rng)
    ell = np.array([0.15, 0.6, 5.0])
    r = np.linalg.norm((u[:, None] - u[None]) / ell, axis=-1)
    k = (1 + np.sqrt(5) * r + 5 / 3 * r**2) * np.exp(-np.sqrt(5) * r)
    y = np.linalg.cholesky(k + 1e-10 * np.eye(70)) @ rng.normal(size=70)
    s = o.fit_gp(o.from_unit(u), y, None, restarts=3, seed=0)
    fitted = s.length_scales
    assert fitted[0] < fitted[1] < fitted[2], fitted
    assert 0.5 * ell[0] < fitted[0] < 2 * ell[0], fitted  # the short one, within a factor 2


def test_loo_closed_form_matches_refits():
    rng = o.rng_for(9)
    x = o.from_unit(rng.random((15, 3)))
    err = np.full(15, 0.02)
    s = o.fit_gp(x, bowl(x) + 0.02 * rng.normal(size=15), err, 1, 0)
    mu, sd = o.loo_predictions(s)
    u, z = s.gp.X_train_, s.gp.y_train_
    for i in (0, 7, 14):
        keep = np.arange(15) != i
        gp = o.GaussianProcessRegressor(s.gp.kernel_, alpha=s.gp.alpha[keep], optimizer=None)
        gp.fit(u[keep], z[keep])
        m, v = gp.predict(u[i : i + 1], return_std=True)  # v holds the white noise
        assert mu[i] == pytest.approx(s.mean + s.scale * m[0], rel=1e-9)
        assert sd[i] ** 2 == pytest.approx(s.scale**2 * (v[0] ** 2 + s.gp.alpha[i]), rel=1e-8)


# --------------------------------------------------------------------------- proposals


def settings(**kw):
    base = {"initial_size": 8, "rounds": 2, "batch_size": 3, "restarts": 1, "n_starts": 6}
    return o.bo_settings({**base, "n_candidates": 256, **kw})


def evaluations_of(x, n, converged=True):
    return pd.DataFrame(x, columns=P).assign(n=n, n_err=0.01, converged=converged)


def test_proposals_in_bounds_distinct_and_deterministic():
    s = settings(min_distance=0.05)
    run = o.bo_runs(s)["bo-s0"]
    x = o.initial_design("lhs", 8, o.rng_for(0))
    ev = evaluations_of(x, bowl(x))
    # An unconverged force field near the optimum: not fitted, but never proposed again.
    ev.loc[len(ev)] = [1.2, 1.52, 114.0, np.nan, np.nan, False]
    rs = o.round_settings(s, run, 1)
    a = o.propose_round(rs, 1, ev)
    assert list(a.columns) == list(o.PROPOSAL_COLUMNS)
    assert a.equals(o.propose_round(rs, 1, ev))  # bit for bit
    xa = a[P].to_numpy()
    assert np.all((xa >= o.BOUNDS[:, 0]) & (xa <= o.BOUNDS[:, 1]))
    ua = o.to_unit(xa)
    assert o.far_from(ua, o.to_unit(ev[P].to_numpy()), 0.05).all()
    for i in range(len(ua)):
        assert o.far_from(ua[i : i + 1], np.delete(ua, i, axis=0), 0.05).all()
    assert np.all(a["ei"] >= 0) and np.all(a["predicted_sd"] > 0)


def test_maximize_steps_aside_from_excluded_peak():
    c = np.array([0.4, 0.5, 0.6])

    def f(u, grad=False):
        v = np.exp(-20 * ((u - c) ** 2).sum(axis=1))
        return (v, -40 * (u - c) * v[:, None]) if grad else v

    u, value = o.maximize(f, o.rng_for(0), c[None], 0.05, n_starts=6, n_candidates=256)
    # Outside the exclusion sphere, yet near the peak: the best point of the search left
    # (f > 0.5 means within 0.19 of it), not an arbitrary one.
    assert np.linalg.norm(u - c) >= 0.05
    assert value == f(u[None])[0] > 0.5
    u, _ = o.maximize(f, o.rng_for(0), np.zeros((0, 3)), 0.05, n_starts=6, n_candidates=256)
    assert np.linalg.norm(u - c) < 1e-3


def test_valid_drops_unconverged_excluded_and_nan():
    ev = pd.DataFrame(
        {
            "n": [1.0, 2.0, np.nan, 3.0, 4.0],
            "converged": [True, False, True, "True", True],
            "excluded": [False, False, False, False, True],
        }
    )
    assert list(o.valid(ev).index) == [0, 3]


def test_run_table_best_so_far_skips_invalid_runs():
    s = settings(rounds=1, batch_size=2, initial_size=3)
    props = pd.concat(
        [
            o.propose_round(
                o.round_settings(s, {"strategy": "lhs", "seed": 0, "sizes": [3]}, 0),
                0,
                o.read_evaluations([]),
            ),
            pd.DataFrame({"round": [1, 1], "proposal": [0, 1], **{p: [1.0, 2.0] for p in P}}),
        ]
    )
    ev = props[["round", "proposal", *P]].assign(
        n=[2.0, 1.5, 1.7, 0.5, 1.2], n_err=0.01, converged=[True, True, True, False, True]
    )
    t = o.run_table(props, ev)
    assert list(t["evaluation"]) == [1, 2, 3, 4, 5]
    assert list(t["best_so_far"]) == [2.0, 1.5, 1.5, 1.5, 1.2]  # 0.5 did not converge


# --------------------------------------------------------------------------- config


def schema_errors(bo):
    schema = {"$ref": "metamaterials_bo.schema.yaml#/$defs/bo"}
    v = jsonschema.Draft202012Validator(schema, registry=registry())
    return [e.message for e in v.iter_errors(bo)]


def test_schema_and_semantic_rules():
    good = {"initial_design": "lhs", "initial_size": 10, "rounds": 3, "batch_size": 4}
    assert schema_errors(good) == []
    assert o.bo_errors({"metamaterials": {"bo": good}}) == []
    assert schema_errors({**good, "initial_design": "sobol"})
    assert schema_errors({**good, "xi": -0.1})
    assert schema_errors({**good, "optimizer_seeds": [1, 1]})
    assert schema_errors({**good, "batchsize": 4})
    (msg,) = o.bo_errors({"metamaterials": {"bo": {"initial_design": "lhs"}}})
    assert "metamaterials.bo.initial_size" in msg and "lhs" in msg
    (msg,) = o.bo_errors(
        {"metamaterials": {"bo": {"initial_design": "factorial", "initial_size": 50}}}
    )
    assert "50" in msg and "120" in msg
    big = {**good, "rounds": 5000, "batch_size": 10, "min_distance": 0.1}
    (msg,) = o.bo_errors({"metamaterials": {"bo": big}})
    assert "min_distance" in msg and "0.1" in msg
    assert o.bo_errors({}) == []


def test_runs_share_budget_and_round_settings_isolate_reruns():
    s = settings(optimizer_seeds=[0, 3])
    runs = o.bo_runs(s)
    assert set(runs) == {"bo-s0", "random-s0", "lhs-s0", "bo-s3", "random-s3", "lhs-s3"}
    assert {sum(r["sizes"]) for r in runs.values()} == {o.budget(s)} == {14}
    r0 = o.round_settings(s, runs["bo-s0"], 0)
    assert r0 == o.round_settings({**s, "xi": 0.5, "rounds": 9}, runs["bo-s0"], 0)
    assert o.round_settings(s, runs["bo-s0"], 1) != o.round_settings(
        {**s, "xi": 0.5}, runs["bo-s0"], 1
    )


# --------------------------------------------------------------------------- BO vs random


def test_bayesian_optimization_beats_random_search_on_a_bowl():
    """8 optimizer seeds, budget 20 (8-point Latin hypercube + 4 rounds of 3) on :func:`bowl`.

    Random search: the gap g = best - min after m uniform points in 3-D shrinks like m^(-2/3)
    (the sublevel set {f < min + g} has volume ~ g^(3/2)); at m = 20 it is ~0.1-0.3 here
    (measured mean log10 g: -0.75). BO, once its GP has the bowl, lands within ~1e-3 (seen:
    log10 g from -3.9 to -3.0 on all 8 seeds, mean -3.4). Required: BO's mean log10 gap at
    least 1.5 decades below random search's, and BO better on at least 6 of 8 seeds. A seed
    on which BO stalls at the random-search level costs ~0.35 decade of the mean, so the test
    tolerates about three such seeds and fails when BO stops working, not by chance."""
    s = settings(initial_size=8, rounds=4, batch_size=3, lhs_baseline=False)
    gaps = {"bo": [], "random": []}
    for seed in range(8):
        for run in o.bo_runs({**s, "optimizer_seeds": [seed]}).values():
            table = o.simulate(bowl, s, run)
            assert len(table) == 20
            gaps[run["strategy"]].append(table["best_so_far"].iloc[-1] - 1.0)
    lg_bo, lg_rs = np.log10(gaps["bo"]), np.log10(gaps["random"])
    assert lg_bo.mean() < lg_rs.mean() - 1.5, (lg_bo, lg_rs)
    assert np.sum(lg_bo < lg_rs) >= 6, (lg_bo, lg_rs)


# --------------------------------------------------------------------------- figures


def test_figures_draw_from_a_synthetic_table(tmp_path):
    from tunable_solids.studies.metamaterials import figures_bo

    s = settings(initial_size=8, rounds=2, batch_size=3, optimizer_seeds=[0, 1])
    runs = {name: o.simulate(bowl, s, run, noise=0.02) for name, run in o.bo_runs(s).items()}
    table = o.optimization_table(runs, s)
    assert set(table["strategy"]) == {"bo", "random", "lhs"}
    loo = figures_bo.loo_table(table)
    assert len(loo) == len(table.drop_duplicates(subset=P))
    # n carries noise of sd 0.02: the LOO error of a smooth bowl sits at that level, far
    # below the spread of n over the space (~1.5).
    assert np.sqrt(np.mean((loo["n"] - loo["loo_mean"]) ** 2)) < 0.1
    out = [str(tmp_path / f"{name}.png") for name in figures_bo.FIGURES]
    figures_bo.draw_all(table, s, out, dpi=50)
    assert all((tmp_path / f"{name}.png").stat().st_size > 1000 for name in figures_bo.FIGURES)


def test_schema_defaults_are_the_code_defaults():
    import yaml

    from tunable_solids.config import SCHEMA_DIR

    props = yaml.safe_load((SCHEMA_DIR / "metamaterials_bo.schema.yaml").read_text())["$defs"]
    props = props["bo"]["properties"]
    assert {k: props[k]["default"] for k in o.DEFAULT_BO} == o.DEFAULT_BO
