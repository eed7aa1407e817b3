"""The bond-space operator A = S M^+ S^T: its defining properties, two routes to its spectrum,
its modes, and pseudo-harmonic modes.

States: a 2D harmonic-sphere packing (Appendix B potential, N = 128), a 3D polydisperse IPL
glass quenched from random positions (N = 250, T_p = infinity) and perfect triangular spring
networks (conftest). Tolerances: quantities computed by one dense factorization agree to
~1e-13 relative (round-off times the condition of M, ~1e3 here); matrix-free products are CG
solves to 1e-12, so eigenvalues agree to ~1e-11 and the issue's 1e-8 has room to spare.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tunable_solids import systems
from tunable_solids.potentials import Spring
from tunable_solids.preparation import interacting_pairs
from tunable_solids.studies.modes import operator as op
from tunable_solids.studies.modes.glasses import Glass, harmonic_sphere_glass, ipl_glass, quench
from tunable_solids.studies.modes.pseudo_harmonic import (
    _line_minimum,
    pseudo_harmonic_cost,
    pseudo_harmonic_mode,
)


def _network(glass: Glass, seed: int) -> op.BondNetwork:
    R0 = systems.random_positions(np.random.default_rng(seed), len(glass.species), glass.box)
    m = quench(glass, R0)
    assert bool(m.converged), float(m.max_force)
    pairs = interacting_pairs(glass.potential, m.positions, glass.box, glass.params)
    species = jnp.asarray(glass.species)
    return op.bond_network(glass.potential, m.positions, glass.box, glass.params, species, pairs)


@pytest.fixture(scope="module")
def harmonic2d() -> op.BondNetwork:
    return _network(harmonic_sphere_glass(128, 2, 0.9), seed=0)


@pytest.fixture(scope="module")
def ipl3d() -> op.BondNetwork:
    return _network(ipl_glass(np.random.default_rng(3), 250, 3), seed=3)


@pytest.fixture(scope="module", params=["harmonic2d", "ipl3d"])
def net(request) -> op.BondNetwork:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def dense(net):
    return op.bond_spectrum_dense(net), np.asarray(op.bond_operator_matrix(net))


def test_operator_is_symmetric_psd_with_exact_self_stress_count(net, dense):
    _, A = dense
    assert np.array_equal(A, A.T)
    w = np.linalg.eigvalsh(A)
    assert w[0] >= -1e-12 * w[-1]
    zero = int(np.sum(w < 1e-9 * w[-1]))
    assert zero == op.self_stress_count(net) > 0
    # the gap between zero and non-zero eigenvalues is wide: the count is not a threshold artefact
    assert w[zero] > 1e-4 * w[-1] and w[zero - 1] < 1e-13 * w[-1]


def test_dense_reduced_route_equals_the_explicit_operator(net, dense):
    spec, A = dense
    n, dim = net.R.shape
    lam = np.asarray(spec.eigenvalues)
    assert lam.shape == (n * dim - dim,)
    assert np.all(np.diff(lam) <= 0)
    w = np.sort(np.linalg.eigvalsh(A))[::-1][: lam.size]
    np.testing.assert_allclose(lam, w, rtol=1e-10)
    assert np.max(np.abs(spec.translation_eigs)) < 1e-12 * lam[0]


def test_modes_are_eigenvectors_and_d_solves_the_force_balance(net, dense):
    spec, A = dense
    which = jnp.asarray([0, 1, 2, 10, len(spec.eigenvalues) - 1])
    modes = op.modes_from_spectrum(net, spec, which)
    f = np.asarray(modes.f)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-10)
    lam = np.asarray(modes.eigenvalues)
    np.testing.assert_allclose(f @ A, lam[:, None] * f, atol=1e-10 * lam[0])
    for q in range(len(which)):
        F = np.asarray(op.equilibrium_apply(net, modes.f[q]))
        np.testing.assert_allclose(np.asarray(modes.F[q]), F, atol=1e-12 * np.abs(F).max())
        MD = np.asarray(op.hessian_apply(net, modes.D[q]))
        np.testing.assert_allclose(MD, F, atol=1e-10 * np.abs(F).max())
        assert abs(float(jnp.sum(modes.D[q]))) < 1e-10 * float(jnp.abs(modes.D[q]).max())
    # the participation shortcut F = sqrt(lambda) M u equals e(S^T f)
    e_all = np.asarray(op.dense_force_participation(net, spec))
    np.testing.assert_allclose(e_all[np.asarray(which)],
                               np.asarray(op.force_participation(modes.F)), rtol=1e-10)  # fmt: skip


def test_matrix_free_top_modes_agree_with_dense(net, dense):
    spec, _ = dense
    k = 6
    mf = op.top_bond_modes(net, jax.random.PRNGKey(1), k)
    lam = np.asarray(spec.eigenvalues[:k])
    assert float(mf.cg_residual) <= 1e-12
    np.testing.assert_allclose(np.asarray(mf.eigenvalues), lam, rtol=1e-8)
    assert float(mf.residual) < 1e-8
    modes = op.modes_from_spectrum(net, spec, jnp.arange(k))
    # eigenvectors up to sign (the top eigenvalues of these states are non-degenerate)
    overlap = np.abs(np.sum(np.asarray(mf.f) * np.asarray(modes.f), axis=1))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-8)
    mfm = op.modes_from_bond_forces(net, mf.eigenvalues, mf.f)
    sign = np.sign(np.sum(np.asarray(mf.f) * np.asarray(modes.f), axis=1))
    np.testing.assert_allclose(np.asarray(mfm.D) * sign[:, None, None], np.asarray(modes.D),
                               atol=1e-7 * float(jnp.abs(modes.D).max()))  # fmt: skip


def test_identical_unstressed_springs_give_a_projection_over_k(triangular_network):
    """M = k S^T S, so A = S (k S^T S)^+ S^T is the projector on the range of S over k: every
    non-zero eigenvalue is exactly 1/k."""
    tn = triangular_network
    net = op.bond_network(Spring(), tn.R, tn.box, tn.params, None, tn.bonds)
    assert net.n_rattlers == 0 and net.n_bonds == 3 * tn.R.shape[0]
    np.testing.assert_allclose(np.asarray(net.b), 0.0, atol=1e-14)  # stress-free
    spec = op.bond_spectrum_dense(net)
    np.testing.assert_allclose(np.asarray(spec.eigenvalues), 1.0 / tn.k, rtol=1e-11)
    A = np.asarray(op.bond_operator_matrix(net))
    np.testing.assert_allclose(tn.k * A @ A, A, atol=1e-12 / tn.k)


def test_rattlers_and_their_bonds_are_removed(soft2d_rattlers):
    s = soft2d_rattlers
    net = op.bond_network(s.potential, s.R, s.box, s.params, s.species, s.minimum.pairs)
    assert net.n_rattlers == int(s.rattlers.sum()) >= 2
    assert np.array_equal(net.kept, ~s.rattlers)
    z = np.bincount(np.asarray(net.i), minlength=net.R.shape[0]) + np.bincount(
        np.asarray(net.j), minlength=net.R.shape[0]
    )
    assert z.min() >= 3  # d + 1 contacts for every kept particle of a repulsive packing
    spec = op.bond_spectrum_dense(net)
    assert np.all(np.isfinite(np.asarray(spec.eigenvalues)))
    assert float(spec.eigenvalues[-1]) > 0


def test_pseudo_harmonic_modes_lower_the_cost_to_a_stationary_point(harmonic2d):
    net = harmonic2d
    spec = op.bond_spectrum_dense(net)
    modes = op.modes_from_spectrum(net, spec, jnp.arange(4))
    for q in range(4):
        ph = pseudo_harmonic_mode(net, modes.D[q])
        assert float(ph.cost) <= float(ph.cost_start)
        assert float(ph.gradient) <= 1e-6, (q, float(ph.gradient))
        # independent stationarity check: the cost does not go down along random directions
        key = jax.random.PRNGKey(q)
        for _ in range(3):
            key, sub = jax.random.split(key)
            p = jax.random.normal(sub, ph.z.shape) * 1e-4
            assert float(pseudo_harmonic_cost(net, ph.z + p)) >= float(ph.cost) * (1 - 1e-12)
    # scale invariance of C (Eq. 14 is a ratio of quartic forms)
    z = modes.D[0]
    np.testing.assert_allclose(float(pseudo_harmonic_cost(net, 3.7 * z)),
                               float(pseudo_harmonic_cost(net, z)), rtol=1e-13)  # fmt: skip


def test_exact_line_search_finds_the_line_minimum(harmonic2d):
    net = harmonic2d
    key1, key2 = jax.random.split(jax.random.PRNGKey(0))
    z = jax.random.normal(key1, net.R.shape)
    p = -jax.grad(lambda x: pseudo_harmonic_cost(net, x))(z)
    t = float(_line_minimum(net, z, p))
    ts = np.linspace(-4 * abs(t), 4 * abs(t), 4001)
    costs = np.array([float(pseudo_harmonic_cost(net, z + s * p)) for s in ts[::40]])
    best = float(pseudo_harmonic_cost(net, z + t * p))
    assert t != 0.0 and best <= costs.min() * (1 + 1e-12)
    h = 1e-6 * abs(t)
    slope = (float(pseudo_harmonic_cost(net, z + (t + h) * p))
             - float(pseudo_harmonic_cost(net, z + (t - h) * p))) / (2 * h)  # fmt: skip
    assert abs(slope) * abs(t) < 1e-6 * best


def test_sparse_route_agrees_with_dense(net, dense):
    """Sparse LU (one particle pinned) + ARPACK: the same top eigenpairs; the sparse S and M
    equal the dense ones entry by entry (assembled by different code)."""
    spec, _ = dense
    S = np.asarray(op.compatibility_matrix(net))
    np.testing.assert_array_equal(op.compatibility_sparse(net).toarray(), S)
    H = np.asarray(op.hessian_matrix(net))
    np.testing.assert_allclose(op.hessian_sparse(net).toarray(), H, atol=1e-14 * np.abs(H).max())
    k = 6
    sm = op.top_bond_modes_sparse(net, k)
    np.testing.assert_allclose(sm.eigenvalues, np.asarray(spec.eigenvalues[:k]), rtol=1e-10)
    assert sm.residual < 1e-10
    modes = op.modes_from_spectrum(net, spec, jnp.arange(k))
    overlap = np.abs(np.sum(sm.f * np.asarray(modes.f), axis=1))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-8)
