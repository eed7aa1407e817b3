"""The fast paths give the same results as the reference paths (correctness only; the
speed is measured by benchmarks/, never asserted here).

- cell-list pair lists equal the dense all-distances lists (same content and order);
- the pair force and pair Hessian-vector kernels equal autodiff of ``energy.energy``;
- minimizing with the cell list gives the same minimum as with the dense builder;
- Newton-Krylov finishing reaches the same minimum as FIRE alone;
- batched minimization equals the sequential one;
- repeated seeds of one shape reuse the compiled minimizer.

The batched training paths (property Jacobians, training steps) are checked in
tests/training/test_training_paths.py.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from tunable_solids import energy as en
from tunable_solids import minimize as mz
from tunable_solids import space, systems
from tunable_solids.linalg import hessian_vp
from tunable_solids.potentials import make_potential, pair_parameters


def _sticky(n=64, seed=0):
    params = systems.default_params(2, [0.8, 1.0], 5.0, 0.1)
    species = jnp.asarray(systems.assign_species(n, 2))
    box = systems.box_for_density(n, 2, 1.6)
    R0 = systems.random_positions(np.random.default_rng(seed), n, box)
    return make_potential("harmonic_morse_xplor"), params, species, box, R0


def _soft(dim, n, phi, seed=0):
    params = systems.default_params(2, [1.0, 1.4], 1.0, 0.0)
    species = systems.assign_species(n, 2)
    box = systems.box_for_packing_fraction(np.asarray(params.diameter)[species], dim, phi)
    R0 = systems.random_positions(np.random.default_rng(seed), n, box)
    return make_potential("soft_sphere"), params, jnp.asarray(species), box, R0


def _same_pairs(a: space.Pairs, b: space.Pairs):
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --------------------------------------------------------------------------- pair lists
@pytest.mark.parametrize(
    "dim,n,length,rc,shear",
    [
        (2, 400, 18.0, 2.5, 0.0),  # 7 x 7 cells
        (2, 400, 18.0, 2.5, 0.35),  # sheared (triclinic) box
        (3, 300, 8.0, 1.5, 0.2),  # 3D, sheared
        (2, 80, 6.0, 2.5, 0.0),  # 2 x 2 cells: neighbour offsets alias
        (3, 60, 4.0, 1.5, 0.0),  # 2 x 2 x 2 cells
        (2, 120, 7.0, 3.2, -0.1),  # 2 x 2 cells, sheared the other way
    ],
)
def test_cell_list_equals_dense(dim, n, length, rc, shear):
    rng = np.random.default_rng(dim * 1000 + n)
    box = np.eye(dim) * length
    box[0, 1] = shear * length
    # positions outside the primary cell too (the builders wrap them)
    R = jnp.asarray(rng.uniform(size=(n, dim)) @ box.T + rng.normal(scale=3.0, size=(n, dim)))
    cap = n * (n - 1) // 2
    dense, count_d = space.dense_pairs(R, jnp.asarray(box), rc, cap)
    occ = space.max_row_occupancy(np.asarray(R), box, rc)
    cells, count_c, overflow = space.cell_list_pairs(R, jnp.asarray(box), rc, cap, occ)
    assert int(count_d) == int(count_c) > 0
    assert not bool(overflow)
    _same_pairs(dense, cells)
    # one slot too few per stencil row is detected
    *_, overflow = space.cell_list_pairs(R, jnp.asarray(box), rc, cap, occ - 1)
    assert bool(overflow)


def test_neighbor_pairs_dispatch_and_truncation():
    """Above CELL_LIST_MIN_N neighbor_pairs uses the cell list and returns the dense result;
    a too-small pair capacity is reported through the count in both builders."""
    pot, params, species, box, R0 = _soft(2, space.CELL_LIST_MIN_N, 0.85)
    R = jnp.asarray(R0)
    rc = 1.4
    n = R.shape[0]
    cap = mz.pair_capacity(n, 2, n / float(np.linalg.det(box)), rc)
    auto, count = space.neighbor_pairs(R, jnp.asarray(box), rc, cap)
    dense, count_d = space.dense_pairs(R, jnp.asarray(box), rc, cap)
    assert int(count) == int(count_d) <= cap
    _same_pairs(auto, dense)
    small = int(count) - 5
    _, c_small = space.neighbor_pairs(R, jnp.asarray(box), rc, small)
    assert int(c_small) > small
    # a row capacity too small for the densest stencil row reports count > capacity as well
    _, c_cells = space.neighbor_pairs(R, jnp.asarray(box), rc, cap, row_capacity=1)
    assert int(c_cells) > cap


def test_rebuild_criterion_keeps_the_list_complete():
    """``minimize._stale``: a list built at ``R_ref`` to ``rc + skin`` holds every pair
    closer than ``rc`` at ``R`` as long as the criterion says it is not stale, and the
    criterion fires exactly when the two largest displacements sum to more than the skin."""
    n, box, rc, skin = 300, np.eye(2) * 15.0, 1.5, 0.4
    rng = np.random.default_rng(11)
    R_ref = jnp.asarray(rng.uniform(size=(n, 2)) @ box.T)
    cap = n * (n - 1) // 2
    listed, _ = space.dense_pairs(R_ref, jnp.asarray(box), rc + skin, cap)
    listed = {(int(a), int(b)) for a, b, m in zip(*listed, strict=True) if m}
    fresh_checked = 0
    for trial in range(40):
        u = rng.normal(size=(n, 2))
        u *= (rng.uniform(0.0, 0.3) / np.linalg.norm(u, axis=1))[:, None]  # |u_i| <= 0.3
        big = rng.choice(n, 2, replace=False)  # two particles moving far, in opposite ways
        u[big] = np.array([[1.0, 0.0], [-1.0, 0.0]]) * rng.uniform(0.05, 0.25)
        R = R_ref + jnp.asarray(u)
        d = np.sort(np.linalg.norm(u, axis=1))[::-1]
        stale = bool(mz._stale(R, R_ref, skin))
        assert stale == (d[0] + d[1] > skin), trial
        if not stale:
            now, _ = space.dense_pairs(R, jnp.asarray(box), rc, cap)
            now = {(int(a), int(b)) for a, b, m in zip(*now, strict=True) if m}
            assert now <= listed, trial
            fresh_checked += 1
    assert 5 <= fresh_checked <= 35  # both branches exercised


# --------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("kind", ["sticky", "soft2d", "soft3d"])
def test_pair_kernels_match_autodiff(kind):
    if kind == "sticky":
        pot, params, species, box, R0 = _sticky(64)
    else:
        pot, params, species, box, R0 = _soft(2 if kind == "soft2d" else 3, 64, 0.85)
    R, box = jnp.asarray(R0), jnp.asarray(box)
    pairs = space.all_pairs(R.shape[0])
    pp = pair_parameters(params, species, pairs.i, pairs.j)
    F_ref = en.forces(pot, R, box, params, species, pairs)
    F = mz.pair_forces(pot, R, box, pairs, pp)
    scale = float(jnp.max(jnp.abs(F_ref)))
    # same sums in another association order: round-off ~ P eps |f| << 1e-12 |F|
    np.testing.assert_allclose(np.asarray(F), np.asarray(F_ref), rtol=0, atol=1e-12 * scale)
    E_ref = en.energy(pot, R, box, params, species, pairs)
    assert abs(float(mz.pair_energy_sum(pot, R, box, pairs, pp)) - float(E_ref)) <= 1e-12 * abs(
        float(E_ref)
    )
    v = jnp.asarray(np.random.default_rng(1).normal(size=R.shape))
    Hv_ref = hessian_vp(lambda x: en.energy(pot, x, box, params, species, pairs), R)(v)
    Hv = en.pair_hessian_vp(pot, R, box, pairs, pp)(v)
    s = float(jnp.max(jnp.abs(Hv_ref)))
    np.testing.assert_allclose(np.asarray(Hv), np.asarray(Hv_ref), rtol=0, atol=1e-12 * s)


# --------------------------------------------------------------------------- minimization
def test_cell_list_minimization_equals_dense(monkeypatch):
    """Forcing the cell-list builder (in and out of the loop) gives the same minimum: the
    lists are identical, so the trajectories are too."""
    pot, params, species, box, R0 = _sticky(256, seed=4)
    ref = mz.minimize(pot, R0, box, params, species)
    monkeypatch.setattr(mz, "CELL_LIST_MIN_N", 1)
    assert mz._plan(pot, np.asarray(R0)[None], box, params, mz.MinimizeOptions())[2] > 0
    cells = mz.minimize(pot, R0, box, params, species)
    assert bool(ref.converged) and bool(cells.converged)
    assert int(cells.iterations) == int(ref.iterations)
    np.testing.assert_array_equal(np.asarray(cells.positions), np.asarray(ref.positions))
    _same_pairs(cells.pairs, ref.pairs)


@pytest.mark.parametrize("kind", ["sticky", "soft2d"])
def test_newton_finish_reaches_same_minimum(kind):
    """FIRE to 1e-4 then Newton-CG: the same minimum (energy to round-off, positions to the
    position error ~ max|F| / lambda_min of a 1e-12 minimum), forces <= 1e-12 recomputed with
    a dense list."""
    pot, params, species, box, R0 = _sticky(64, 2) if kind == "sticky" else _soft(2, 64, 0.9)
    fire = mz.minimize(pot, R0, box, params, species)
    newton = mz.minimize(pot, R0, box, params, species, mz.MinimizeOptions(newton_tol=1e-4))
    assert bool(newton.converged)
    dense = space.all_pairs(R0.shape[0])
    F = en.forces(pot, newton.positions, jnp.asarray(box), params, species, dense)
    assert float(en.max_force(F)) <= 1e-12
    assert abs(float(newton.energy) - float(fire.energy)) <= 1e-12 * abs(float(fire.energy))
    d = np.asarray(newton.positions - fire.positions)
    d = d - np.round(d @ np.linalg.inv(box).T) @ box.T  # minimum image
    d = d - d.mean(axis=0)
    assert np.max(np.abs(d)) < 1e-8


def test_minimize_batch_equals_sequential():
    pot, params, species, box, _ = _sticky(64)
    starts = np.stack(
        [systems.random_positions(np.random.default_rng(s), 64, box) for s in range(3)]
    )
    batch = mz.minimize_batch(pot, starts, box, params, species)
    for b, R0 in enumerate(starts):
        one = mz.minimize(pot, R0, box, params, species)
        assert bool(batch.converged[b]) and bool(one.converged)
        assert float(batch.max_force[b]) <= 1e-12
        # same trajectory up to round-off of the vectorized arithmetic
        assert abs(int(batch.iterations[b]) - int(one.iterations)) <= 5
        assert abs(float(batch.energy[b]) - float(one.energy)) <= 1e-12 * abs(float(one.energy))
        d = np.asarray(batch.positions[b] - one.positions)
        d = d - np.round(d @ np.linalg.inv(box).T) @ box.T
        assert np.max(np.abs(d - d.mean(axis=0))) < 1e-8


def test_repeated_seeds_do_not_recompile():
    pot, params, species, box, _ = _sticky(64)
    mz.minimize(pot, systems.random_positions(np.random.default_rng(0), 64, box), box, params,
                species)  # fmt: skip
    size = mz._minimize_core._cache_size()
    for s in range(1, 4):
        R0 = systems.random_positions(np.random.default_rng(s), 64, box)
        mz.minimize(pot, R0, box, params, species)
    assert mz._minimize_core._cache_size() == size
