"""FIRE minimization: forces vanish at returned minima, symmetries of the energy, networks.

Forces are recomputed independently of the minimizer: with :func:`energy.forces` on a
*dense* list of all pairs (not the minimizer's skin list), so a pair missing from the
minimizer's list would show up as a residual force.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tunable_solids import energy as en
from tunable_solids import space, systems
from tunable_solids.minimize import FireOptions, MinimizeOptions, lambda_max_estimate, minimize
from tunable_solids.potentials import make_potential, pair_parameters

PACKINGS = ["soft2d", "soft2d_rattlers", "xplor2d", "morse2d", "soft3d"]


def _dense(state):
    return space.all_pairs(state.n)


def _scale(state, R=None, species=None, pairs=None):
    """Sum of |pair energies|: the magnitude that round-off in the energy sum scales with."""
    R = state.R if R is None else R
    species = state.species if species is None else species
    pairs = _dense(state) if pairs is None else pairs
    dr = space.pair_vectors(R, jnp.asarray(state.box), pairs)
    return float(jnp.sum(jnp.abs(en.pair_energies(state.potential, dr, state.params, species,
                                                  pairs))))  # fmt: skip


@pytest.mark.parametrize("name", PACKINGS)
def test_forces_vanish_at_minimum(name, request):
    s = request.getfixturevalue(name)
    m = s.minimum
    assert bool(m.converged)
    assert float(m.max_force) <= 1e-12
    F = en.forces(s.potential, s.R, jnp.asarray(s.box), s.params, s.species, _dense(s))
    fmax = float(en.max_force(F))
    # The requested convergence criterion, recomputed with an independent pair list.
    assert fmax <= 1e-12
    # ... and equal to the reported value up to round-off: the positions were wrapped into
    # the box after the run, which moves minimum-image vectors by ~eps * L per component,
    # so forces move by at most ~ |H| * eps * L (|H| = largest Hessian eigenvalue); a
    # factor 4 covers the sqrt(d) of the vector norm and summation order.
    lam_max = float(np.linalg.eigvalsh(s.hessian)[-1])
    L = float(np.max(np.abs(s.box)))
    assert abs(fmax - float(m.max_force)) <= 4 * np.finfo(float).eps * L * lam_max
    # Energy reported = energy with all pairs (the skin list misses no interacting pair).
    E = float(en.energy(s.potential, s.R, jnp.asarray(s.box), s.params, s.species, _dense(s)))
    assert abs(E - float(m.energy)) <= 1e-13 * _scale(s)
    # Net force vanishes exactly by Newton's third law (pairwise forces), to round-off.
    assert float(jnp.max(jnp.abs(jnp.sum(F, axis=0)))) <= 1e-13
    # Positions are wrapped into the box.
    frac = np.asarray(s.R) @ np.linalg.inv(s.box).T
    # (fractional coordinates recomputed here carry round-off eps * |s| ~ 1e-16)
    assert frac.min() >= -1e-14 and frac.max() <= 1.0 + 1e-14


@pytest.mark.parametrize("name", ["soft2d", "xplor2d", "soft3d"])
def test_minimum_is_stable(name, request):
    """A true minimum: the Hessian has exactly d zero modes (translations) and no negative
    ones. |lambda| < 1e-10 max(lambda) counts as zero (round-off of the dense eigensolver is
    ~ eps * N d * max(lambda) ~ 1e-13 max); every other eigenvalue must be positive."""
    s = request.getfixturevalue(name)
    w = np.linalg.eigvalsh(s.hessian)
    assert not s.rattlers.any()
    zero = np.abs(w) < 1e-10 * w[-1]
    assert zero.sum() == s.dim
    assert np.all(w[~zero] > 0)


def test_not_converged_is_flagged(soft2d):
    """The convergence flag can be False: stopping after 10 FIRE steps from a random start."""
    s = soft2d
    m = minimize(s.potential, s.start, s.box, s.params, s.species,
                 MinimizeOptions(max_steps=10))  # fmt: skip
    assert not bool(m.converged)
    assert int(m.iterations) == 10
    assert float(m.max_force) > 1e-12


@pytest.mark.parametrize("name", ["soft2d", "morse2d", "soft3d"])
def test_energy_invariant_under_translation(name, request):
    s = request.getfixturevalue(name)
    shift = np.random.default_rng(5).uniform(-3, 3, size=s.dim)
    pairs = _dense(s)
    E0 = float(en.energy(s.potential, s.R, jnp.asarray(s.box), s.params, s.species, pairs))
    E1 = float(en.energy(s.potential, s.R + shift, jnp.asarray(s.box), s.params, s.species,
                         pairs))  # fmt: skip
    # Minimum-image vectors change by round-off eps * L only; 1e-12 of sum|u_p| as asked.
    assert abs(E1 - E0) <= 1e-12 * _scale(s)


@pytest.mark.parametrize("name", ["soft2d", "morse2d", "xplor2d"])
def test_energy_invariant_under_relabeling(name, request):
    """Permuting particles together with their species leaves the energy unchanged."""
    s = request.getfixturevalue(name)
    perm = np.random.default_rng(7).permutation(s.n)
    R, species = s.R[perm], s.species[perm]
    pairs = _dense(s)
    E0 = float(en.energy(s.potential, s.R, jnp.asarray(s.box), s.params, s.species, pairs))
    E1 = float(en.energy(s.potential, R, jnp.asarray(s.box), s.params, species, pairs))
    # same pair energies summed in another order: |dE| <= P eps sum|u| ~ 2e3 * 1e-16; the
    # requested 1e-12 relative to sum|u_p| covers that with margin.
    assert abs(E1 - E0) <= 1e-12 * _scale(s)
    # forces are permuted with the particles
    F0 = en.forces(s.potential, s.R, jnp.asarray(s.box), s.params, s.species, pairs)
    F1 = en.forces(s.potential, R, jnp.asarray(s.box), s.params, species, pairs)
    np.testing.assert_allclose(np.asarray(F1), np.asarray(F0)[perm], rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", ["soft2d", "xplor2d"])
def test_minimizing_permuted_start_gives_same_minimum(name, request):
    """FIRE is permutation-equivariant: the permuted random start reaches the same energy.

    In exact arithmetic the trajectories are identical; in floating point they differ by
    round-off, which the dissipative dynamics does not amplify into a different basin here
    (checked: positions agree to 1e-9). Energy to 1e-12 relative as asked.
    """
    s = request.getfixturevalue(name)
    perm = np.random.default_rng(11).permutation(s.n)
    m = minimize(s.potential, s.start[perm], s.box, s.params, s.species[perm])
    assert bool(m.converged)
    assert abs(float(m.energy) - float(s.minimum.energy)) <= 1e-12 * _scale(s)
    d = np.asarray(space.pair_vectors(
        jnp.concatenate([m.positions, s.R[perm]]), jnp.asarray(s.box),
        space.Pairs(jnp.arange(s.n), jnp.arange(s.n) + s.n, jnp.ones(s.n, bool))))  # fmt: skip
    d = d - d.mean(axis=0)  # a global translation is not fixed by the energy
    assert np.max(np.abs(d)) < 1e-9


def test_small_skin_forces_many_rebuilds(soft2d):
    """Pair list rebuilt in the loop (skin 0.02 of the largest diameter): same minimum."""
    s = soft2d
    m = minimize(s.potential, s.start, s.box, s.params, s.species, MinimizeOptions(skin=0.02))
    assert bool(m.converged)
    F = en.forces(s.potential, m.positions, jnp.asarray(s.box), s.params, s.species, _dense(s))
    assert float(en.max_force(F)) <= 1e-12
    assert abs(float(m.energy) - float(s.minimum.energy)) <= 1e-12 * _scale(s)


def test_triangular_network_relaxes_to_lattice():
    """A randomly displaced triangular spring lattice relaxes back to the perfect lattice
    (its unique minimum up to translation): E ~ |F|^2 / lambda_min <= N 1e-24 / 0.1."""
    R, box = systems.crystal(56, 2, 2.0 / np.sqrt(3.0))
    pairs, count = space.neighbor_pairs(jnp.asarray(R), jnp.asarray(box), 1.2, 3 * 56)
    assert int(count) == 3 * 56
    bonds, params = systems.spring_network(pairs.i, pairs.j, pairs.mask, np.ones(3 * 56), 1.0)
    from tunable_solids.potentials import Spring

    start = R + np.random.default_rng(3).normal(scale=0.05, size=R.shape)
    m = minimize(Spring(), start, box, params, None, bonds=bonds)
    assert bool(m.converged) and float(m.max_force) <= 1e-12
    assert float(m.energy) <= 1e-20
    d = np.asarray(space.pair_vectors(
        jnp.concatenate([m.positions, jnp.asarray(R)]), jnp.asarray(box),
        space.Pairs(jnp.arange(56), jnp.arange(56) + 56, jnp.ones(56, bool))))  # fmt: skip
    d = d - d.mean(axis=0)
    # displacement error ~ |F| / lambda_min ~ 1e-12 / 0.1
    assert np.max(np.abs(d)) < 1e-10
    with pytest.raises(ValueError, match="bonds"):
        minimize(Spring(), start, box, params, None)


# --------------------------------------------------------------------------- step cap
def test_lambda_max_estimate_matches_dense_spectrum(soft3d, xplor2d):
    """Power iteration vs the dense autodiff Hessian: a Rayleigh quotient never exceeds the
    largest eigenvalue, and after 50 steps it is within 5% of it (the cap is dt_auto /
    sqrt(lambda), so 5% in lambda is 2.5% in the step: well inside the factor 2 between
    dt_auto = 1 and the stability limit)."""
    for s in (soft3d, xplor2d):
        pairs = s.minimum.pairs
        pp = pair_parameters(s.params, s.species, pairs.i, pairs.j)
        lam = float(lambda_max_estimate(s.potential, s.R, jnp.asarray(s.box), pairs, pp))
        exact = float(np.linalg.eigvalsh(s.hessian)[-1])
        assert lam <= exact * (1 + 1e-12)
        assert lam >= 0.95 * exact


def _soft3d_96(fire: FireOptions):
    """Random start of 96 3D soft spheres (phi = 0.70) and its minimum with ``fire``."""
    n = 96
    params = systems.default_params(2, [1.0, 1.4], 1.0, 0.0)
    species = systems.assign_species(n, 2)
    box = systems.box_for_packing_fraction(np.asarray(params.diameter)[species], 3, 0.70)
    R0 = systems.random_positions(np.random.default_rng(5), n, box)
    pot = make_potential("soft_sphere")
    m = minimize(pot, R0, box, params, jnp.asarray(species), MinimizeOptions(fire=fire))
    return pot, params, species, box, m


def test_step_cap_clamped_to_dt_max_reproduces_the_fixed_cap():
    """The adaptive cap is really applied, and switching to it keeps the FIRE state: with
    dt_auto so small that the cap is clamped to dt_max, the run is the fixed-cap run (same
    iterations, same positions to round-off), while dt_auto = 1 takes a different path."""
    fixed = _soft3d_96(FireOptions(dt_auto=0.0))[-1]
    clamped = _soft3d_96(FireOptions(dt_auto=1e-6))[-1]
    adaptive = _soft3d_96(FireOptions(dt_auto=1.0))[-1]
    assert int(clamped.iterations) == int(fixed.iterations)
    assert float(jnp.max(jnp.abs(clamped.positions - fixed.positions))) <= 1e-12
    assert int(adaptive.iterations) != int(fixed.iterations)


@pytest.mark.parametrize("dt_auto", [0.0, 1.0])
def test_adaptive_and_fixed_step_cap_both_reach_stable_minima(dt_auto):
    """Both caps meet the same criterion, checked independently (dense pair list, dense
    Hessian): max|F| <= 1e-12 and no negative eigenvalue beyond round-off."""
    pot, params, species, box, m = _soft3d_96(FireOptions(dt_auto=dt_auto))
    n = len(species)
    assert bool(m.converged)
    dense = space.all_pairs(n)
    F = en.forces(pot, m.positions, jnp.asarray(box), params, jnp.asarray(species), dense)
    assert float(en.max_force(F)) <= 1e-12
    H = jax.hessian(lambda x: en.energy(pot, x, jnp.asarray(box), params, jnp.asarray(species),
                                        dense))(m.positions).reshape(3 * n, 3 * n)  # fmt: skip
    w = np.linalg.eigvalsh(np.asarray(H))
    # Zero modes (translations, rattlers) may dip below zero by the eigensolver's round-off
    # (~ eps * N d * max(lambda), as in test_minimum_is_stable) and by the residual force: a
    # particle touched with force f <= 1e-12 has tangential stiffness -f / r >= -1e-12.
    assert w[0] >= -(1e-10 * w[-1] + 1e-12)
