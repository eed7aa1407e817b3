"""The batched (vectorized) training paths give the same results as the sequential ones
(correctness only; speed is measured by benchmarks/ensemble_step.py):

- a batched property/Jacobian evaluation equals the sequential one;
- a vectorized ensemble training step equals the sequential step;
- the batched paths compile once per shape.
"""

from __future__ import annotations

from dataclasses import replace

import jax.numpy as jnp
import numpy as np
import pytest

from tunable_solids import minimize as mz
from tunable_solids import systems
from tunable_solids.potentials import make_potential
from tunable_solids.studies.training import physics as T


def _sticky(n=64, seed=0):
    params = systems.default_params(2, [0.8, 1.0], 5.0, 0.1)
    species = jnp.asarray(systems.assign_species(n, 2))
    box = systems.box_for_density(n, 2, 1.6)
    R0 = systems.random_positions(np.random.default_rng(seed), n, box)
    return make_potential("harmonic_morse_xplor"), params, species, box, R0


def _train_setup(batch=3):
    pot, params, species, box, _ = _sticky(64)
    system = T.System(pot, box, np.asarray(species), params, mz.MinimizeOptions())
    spec = T.TrainSpec("ensemble", (("nu", 0.35),), ("D", "B"), batch=batch)
    return spec, system


def test_evaluate_batch_equals_sequential():
    spec, system = _train_setup()
    theta = np.asarray(T.theta_of(system.params0, spec.names))
    starts = T.fresh_positions(system, 5, 0, spec.batch)
    _, v_seq, J_seq, ok_seq = T.evaluate(spec, system, theta, starts)
    _, v_bat, J_bat, ok_bat = T.evaluate_batch(spec, system, theta, starts)
    np.testing.assert_array_equal(ok_seq, ok_bat)
    # CG to 1e-12 on (round-off-)different minima: agreement far below any FD tolerance
    np.testing.assert_allclose(v_bat, v_seq, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(J_bat, J_seq, rtol=1e-7, atol=1e-9 * np.max(np.abs(J_seq)))


def test_vectorized_train_step_equals_sequential():
    spec, system = _train_setup(batch=2)
    state = T.init_state(spec, system, np.zeros((0, 64, 2)))
    s_seq, r_seq = T.train_step(spec, system, state, run_seed=1)
    s_bat, r_bat = T.train_step(replace(spec, vectorize=True), system, state, run_seed=1)
    assert r_bat.n_excluded == r_seq.n_excluded
    assert r_bat.loss == pytest.approx(r_seq.loss, rel=1e-8)
    np.testing.assert_allclose(s_bat.theta, s_seq.theta, rtol=1e-9)


def test_batched_paths_compile_once_per_shape():
    """jit caches of the batched property pass do not grow with new configurations."""
    spec, system = _train_setup(batch=2)
    theta = np.asarray(T.theta_of(system.params0, spec.names))
    T.evaluate_batch(spec, system, theta, T.fresh_positions(system, 1, 0, 2))
    sizes = (mz._minimize_core._cache_size(), T.property_jacobian_batch._cache_size())
    T.evaluate_batch(spec, system, theta, T.fresh_positions(system, 1, 1, 2))
    assert (mz._minimize_core._cache_size(), T.property_jacobian_batch._cache_size()) == sizes
