"""Initial configurations: species rules, boxes, crystals, species reassignment, networks."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from tunable_solids import energy as en
from tunable_solids import mechanics as mech
from tunable_solids import potentials, space, systems

# ------------------------------------------------------------------------- species


def test_species_diameters_rules():
    np.testing.assert_array_equal(systems.species_diameters(1, [0.8, 1.0]), [0.8])
    np.testing.assert_array_equal(systems.species_diameters(2, [1.0, 1.4]), [1.0, 1.4])
    np.testing.assert_array_equal(systems.species_diameters(4, [0.8, 1.0]),
                                  [0.8, 0.8, 1.0, 1.0])  # fmt: skip
    np.testing.assert_array_equal(systems.species_diameters(6, [1.0]), [1.0] * 6)
    for bad in (3, 5):
        with pytest.raises(ValueError, match="1 or even"):
            systems.species_diameters(bad, [1.0, 1.4])


def test_assign_species_even_contiguous_blocks():
    s = systems.assign_species(64, 4)
    assert s.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(s), [16] * 4)
    assert np.all(np.diff(s) >= 0)  # contiguous blocks
    np.testing.assert_array_equal(systems.assign_species(10, 1), np.zeros(10))


def test_default_params():
    p = systems.default_params(4, [0.8, 1.0], k=5.0, binding=0.01)
    np.testing.assert_array_equal(np.asarray(p.diameter), [0.8, 0.8, 1.0, 1.0])
    np.testing.assert_array_equal(np.asarray(p.k), np.full((4, 4), 5.0))
    np.testing.assert_array_equal(np.asarray(p.binding), np.full((4, 4), 0.01))


# --------------------------------------------------------------------------- boxes


@pytest.mark.parametrize("dim", [2, 3])
def test_boxes(dim):
    box = systems.box_for_density(100, dim, 1.6)
    assert 100 / np.linalg.det(box) == pytest.approx(1.6, rel=1e-14)
    d = np.repeat([1.0, 1.4], 50)
    box = systems.box_for_packing_fraction(d, dim, 0.84)
    ball = math.pi / 4 * d**2 if dim == 2 else math.pi / 6 * d**3  # disc area / sphere volume
    assert ball.sum() / np.linalg.det(box) == pytest.approx(0.84, rel=1e-14)
    R = systems.random_positions(np.random.default_rng(0), 500, box)
    frac = R @ np.linalg.inv(box).T
    assert R.shape == (500, dim) and frac.min() >= 0 and frac.max() < 1
    # uniform: mean fractional coordinate 1/2 within 5 standard errors (sqrt(1/12/500))
    assert np.all(np.abs(frac.mean(axis=0) - 0.5) < 5 * math.sqrt(1 / 12 / 500))


# ------------------------------------------------------------------------- crystals


@pytest.mark.parametrize("n,dim,density,z", [(56, 2, 1.3, 6), (72, 2, 0.9, 6),
                                             (108, 3, 1.1, 12), (32, 3, 0.7, 12)])  # fmt: skip
def test_crystal_geometry(n, dim, density, z):
    """N sites at number density `density`; every site has exactly z nearest neighbours
    (6 triangular, 12 FCC) at the lattice spacing and nobody closer (exact geometry:
    distances to 1e-12 relative)."""
    R, box = systems.crystal(n, dim, density)
    assert R.shape == (n, dim)
    assert n / abs(np.linalg.det(box)) == pytest.approx(density, rel=1e-12)
    if dim == 2:  # triangular spacing
        a = math.sqrt(2 / (math.sqrt(3) * density))
    else:  # FCC nearest-neighbour distance a_cubic / sqrt(2)
        a = (4 / density) ** (1 / 3) / math.sqrt(2)
    d = R[:, None, :] - R[None, :, :]
    L = np.diag(box)
    d -= np.round(d / L) * L
    r = np.linalg.norm(d, axis=-1) + np.diag(np.full(n, np.inf))
    assert r.min() == pytest.approx(a, rel=1e-12)
    nn = np.sum(np.abs(r - a) < 1e-9 * a, axis=1)
    np.testing.assert_array_equal(nn, z)
    # box near cubic (aspect < 2) and sites inside it
    assert L.max() / L.min() < 2
    frac = R / L
    assert frac.min() >= 0 and frac.max() < 1


@pytest.mark.parametrize("n,dim,match", [
    (57, 2, "not a multiple of 2"),
    (26, 2, "cannot fill"),   # 13 cells: only 13 x 1, aspect far from cubic
    (30, 3, "not a multiple of 4"),
    (28, 3, "cannot fill"),   # 7 cells
])  # fmt: skip
def test_crystal_bad_n(n, dim, match):
    with pytest.raises(ValueError, match=match):
        systems.crystal(n, dim, 1.0)


# ------------------------------------------------------------------- reassignment


def _species_energy(state, species, params):
    pairs = space.all_pairs(state.n)
    return float(en.energy(state.potential, state.R, jnp.asarray(state.box), params,
                           jnp.asarray(species), pairs))  # fmt: skip


@pytest.mark.parametrize("n_new", [2, 3, 8, 13])
def test_reassign_species_keeps_energy(n_new, xplor2d):
    """Two size classes with distinct k and B for every pair type (so a wrong parent would
    change the energy); the energy of the state is unchanged to 1e-12 (the per-pair values
    are identical, only the species labels change)."""
    s = xplor2d
    params = potentials.SpeciesParams(jnp.asarray([0.8, 1.0]),
                                      jnp.asarray([[5.0, 6.0], [6.0, 7.0]]),
                                      jnp.asarray([[0.01, 0.02], [0.02, 0.03]]))  # fmt: skip
    species = np.asarray(s.species)
    out = systems.reassign_species(np.random.default_rng(1), species, params, n_new)
    assert out.species.dtype == np.int32
    np.testing.assert_array_equal(np.unique(out.species), np.arange(n_new))
    old_d = np.asarray(params.diameter)[species]
    new_d = np.asarray(out.params.diameter)
    for t in range(n_new):
        members = out.species == t
        assert len(np.unique(old_d[members])) == 1  # one size class per new species
        assert new_d[t] == old_d[members][0]
        assert out.parent[t] == np.bincount(species[members]).argmax()
    # particles of each size class are dealt as evenly as possible
    for size in np.unique(old_d):
        counts = np.bincount(out.species[old_d == size])
        counts = counts[counts > 0]
        assert counts.max() - counts.min() <= 1
    E0 = _species_energy(s, species, params)
    E1 = _species_energy(s, out.species, out.params)
    assert E1 == pytest.approx(E0, rel=1e-12)
    with pytest.raises(ValueError, match="at least"):
        systems.reassign_species(np.random.default_rng(1), species, params, 1)


def test_reassign_species_same_size_distinct_parameters(xplor2d):
    """Four old species, two sizes, every species with its own binding: the docstring
    promises 'the energy of every configuration is unchanged'."""
    s = xplor2d
    species = systems.assign_species(s.n, 4)
    b = np.array([[0.01, 0.02, 0.03, 0.04], [0.02, 0.05, 0.06, 0.07],
                  [0.03, 0.06, 0.08, 0.09], [0.04, 0.07, 0.09, 0.10]])  # fmt: skip
    params = potentials.SpeciesParams(jnp.asarray([0.8, 0.8, 1.0, 1.0]),
                                      jnp.full((4, 4), 5.0), jnp.asarray(b))  # fmt: skip
    out = systems.reassign_species(np.random.default_rng(1), species, params, 6)
    E0 = _species_energy(s, species, params)
    E1 = _species_energy(s, out.species, out.params)
    assert E1 == pytest.approx(E0, rel=1e-12)


# ------------------------------------------------------------------ spring networks


def test_spring_network_on_packing_contacts(soft2d):
    """Network on the contacts of a jammed packing: one bond per contact, rest lengths =
    contact distances, so it is stress free (energy and forces exactly 0 up to round-off)
    and, with z = 2 * bonds / N > 2d (above isostaticity), rigid: C positive definite."""
    s = soft2d
    pairs = s.minimum.pairs
    contact = np.asarray(mech.contact_mask(s.model, s.R, s.params))
    lengths = np.linalg.norm(np.asarray(space.pair_vectors(s.R, jnp.asarray(s.box), pairs)),
                             axis=1)  # fmt: skip
    bonds, net = systems.spring_network(pairs.i, pairs.j, contact, lengths, stiffness=2.0)
    assert len(bonds.i) == contact.sum() and np.all(np.asarray(bonds.mask))
    np.testing.assert_array_equal(np.asarray(net.stiffness), 2.0)
    spring = potentials.Spring()
    box = jnp.asarray(s.box)
    assert float(en.energy(spring, s.R, box, net, None, bonds)) == 0.0
    F = en.forces(spring, s.R, box, net, None, bonds)
    assert float(en.max_force(F)) == 0.0
    assert 2 * len(bonds.i) / s.n > 2 * s.dim
    model = mech.Model(spring, box, None, bonds)
    C = np.asarray(mech.elastic_constants(model, s.R, net).voigt)
    assert np.linalg.eigvalsh(C).min() > 1e-3 * np.abs(C).max()
    # stress: round-off of k (r - l) with r ~ 1.3 recomputed inside the strain derivative,
    # ~ eps * k * r * z / V-ish; 1e-14 is ~50 eps * k
    assert float(np.max(np.abs(np.asarray(mech.stress(model, s.R, net))))) < 1e-14
