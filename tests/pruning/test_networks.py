"""The three network builders: topology, stress-free springs, rigidity of the start."""

from __future__ import annotations

import numpy as np
import pytest

from tunable_solids import energy, mechanics
from tunable_solids.studies.pruning import elasticity as el
from tunable_solids.studies.pruning import networks as nw


def _stress_free(net):
    """Energy and forces of the core's spring model at the construction positions vanish
    (rest length = length); round-off of r - l with r ~ 1 is ~1e-16 per bond."""
    model, R, params = nw.as_core(net)
    E = float(energy.energy(model.potential, R, model.box, params, None, model.pairs))
    F = energy.forces(model.potential, R, model.box, params, None, model.pairs)
    assert E < 1e-28 and float(energy.max_force(F)) < 1e-14


def test_triangular_lattice_topology():
    net = nw.triangular_lattice(6)
    assert len(net.i) == 3 * 36 and np.all(nw.degrees(net) == 6)
    np.testing.assert_allclose(net.rest_length, 1.0, atol=1e-14)
    with pytest.raises(ValueError, match="even"):
        nw.triangular_lattice(7)


def test_distorted_lattice_moves_every_node_by_r():
    r = 0.35
    lat = nw.triangular_lattice(8)
    net = nw.distorted_triangular(8, r, np.random.default_rng(3))
    d = nw.bond_vectors(np.concatenate([net.positions, lat.positions]), net.box,
                        np.arange(64), np.arange(64) + 64)  # fmt: skip
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), r, atol=1e-12)
    np.testing.assert_array_equal(net.i, lat.i)
    np.testing.assert_array_equal(net.j, lat.j)
    _stress_free(net)
    with pytest.raises(ValueError, match="distortion"):
        nw.distorted_triangular(8, 0.99, np.random.default_rng(0))


def test_periodic_delaunay_is_a_triangulation():
    """z = 6 exactly (Euler on the torus), every node in >= 3 triangles, stress free, rigid."""
    net = nw.periodic_delaunay(80, np.random.default_rng(1))
    assert nw.coordination(net) == 6.0 and nw.degrees(net).min() >= 3
    assert len(net.positions) == 80
    _stress_free(net)
    assert el.rigidity(el.geometry(net), np.ones(len(net.i))).valid


def test_jammed_contact_network():
    """Contacts of a jammed 1:1.4 packing at phi = 0.9: no rattlers left (every node >= 3
    bonds), above isostatic z = 4, stress free, rigid, and every bond was a real overlap
    (rest length below the pair's contact distance 1, 1.2 or 1.4)."""
    net = nw.jammed_contact_network(48, np.random.default_rng(0))
    assert nw.degrees(net).min() >= 3 and nw.coordination(net) > 4.0
    assert net.rest_length.max() < 1.4 and net.rest_length.min() > 0.5
    _stress_free(net)
    g = el.geometry(net)
    assert el.rigidity(g, np.ones(len(net.i))).valid
    model, R, params = nw.as_core(net)
    C = np.asarray(mechanics.elastic_constants(model, R, params).voigt)
    np.testing.assert_allclose(C, el.elastic_tensor(g, np.ones(len(net.i))), atol=1e-10)
