"""Elastic tensor, Poisson's ratios, rigidity and the rank-one updates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunable_solids import mechanics
from tunable_solids.studies.pruning import elasticity as el
from tunable_solids.studies.pruning import networks as nw


def test_triangular_lattice_is_analytic():
    """Perfect triangular central-force net (k = 1, a = 1): no relaxation (every node is an
    inversion centre), C_11 = 9 / (4 sqrt 3), C_12 = C_66 = 3 / (4 sqrt 3), C_16 = C_26 = 0,
    so every Poisson's ratio is exactly 1/3; round-off only (1e-12)."""
    g = el.geometry(nw.triangular_lattice(6))
    C = el.elastic_tensor(g, np.ones(len(g.i)))
    s3 = math.sqrt(3.0)
    expected = np.array([[9, 3, 0], [3, 9, 0], [0, 0, 3]]) / (4 * s3)
    np.testing.assert_allclose(C, expected, atol=1e-12)
    for value in el.poisson_ratios(C):
        assert value == pytest.approx(1.0 / 3.0, abs=1e-12)
    # stiffness scales C, not nu
    C2 = el.elastic_tensor(g, np.full(len(g.i), 2.5))
    np.testing.assert_allclose(C2, 2.5 * expected, atol=1e-12)


def test_fresh_solve_matches_core_routes(distorted8):
    """Sparse pinned solve vs the core's matrix-free CG (1e-12) and dense pseudo-inverse, on
    random stiffnesses (relaxation is large here, so this tests the non-affine term);
    agreement to 1e-10 of C ~ 1 is CG tolerance times the condition number."""
    net, g = distorted8
    k = np.random.default_rng(0).uniform(0.3, 2.0, len(g.i))
    C = el.elastic_tensor(g, k)
    model, R, params = nw.as_core(net, k)
    np.testing.assert_allclose(C, np.asarray(mechanics.elastic_constants(model, R, params).voigt),
                               atol=1e-10)  # fmt: skip
    np.testing.assert_allclose(C, np.asarray(mechanics.elastic_constants_dense(model, R, params)),
                               atol=1e-10)  # fmt: skip
    born = g.strain.T @ (k[:, None] * g.strain) / g.volume
    assert np.abs(C - born).max() > 0.05  # relaxation matters here


def test_poisson_ratios_are_uniaxial_responses():
    """On an anisotropic C with shear coupling: nu_x is -e_yy/e_xx under stress (1, 0, 0)
    (shear strain free), nu_rect the same with the shear strain held at 0; nu_iso equals
    mechanics.isotropic_moduli's."""
    C = np.array([[2.0, 0.7, 0.3], [0.7, 1.5, -0.2], [0.3, -0.2, 0.8]])
    p = el.poisson_ratios(C)
    ex = np.linalg.solve(C, [1.0, 0, 0])
    ey = np.linalg.solve(C, [0, 1.0, 0])
    assert p.nu_x == pytest.approx(-ex[1] / ex[0], rel=1e-14)
    assert p.nu_y == pytest.approx(-ey[0] / ey[1], rel=1e-14)
    assert p.nu == pytest.approx(0.5 * (p.nu_x + p.nu_y), rel=1e-14)
    assert el.poisson_ratio(C) == pytest.approx(p.nu, rel=1e-14)
    e2 = np.linalg.solve(C[:2, :2], [1.0, 0])
    assert 0.5 * (-e2[1] / e2[0] + 0.7 / 2.0) == pytest.approx(p.nu_rect, rel=1e-14)
    assert p.nu_iso == pytest.approx(float(mechanics.isotropic_moduli(C, 2)[2]), rel=1e-14)


def test_bond_contributions_sum_to_C_and_project_to_core(distorted8):
    """k_b T_b T_b^T / V sums to C; its bulk / shear projections are the core's K_p, G_p."""
    net, g = distorted8
    k = np.random.default_rng(1).uniform(0.5, 1.5, len(g.i))
    upd = el.Updater(g, k)
    T = upd.extensions()
    contrib = k[:, None, None] * T[:, :, None] * T[:, None, :] / g.volume
    np.testing.assert_allclose(contrib.sum(0), upd.C, atol=1e-13)
    model, R, params = nw.as_core(net, k)
    elast = mechanics.elastic_constants(model, R, params)
    K, G = (np.asarray(x) for x in mechanics.bond_contributions(model, R, params, elast.nonaffine))
    vol = T @ np.array([1.0, 1.0, 0.0])
    dev = (T @ np.array([1.0, -1.0, 0.0]) / math.sqrt(2)) ** 2 + (T[:, 2] * math.sqrt(2)) ** 2
    np.testing.assert_allclose(K, k * vol**2 / (4 * g.volume), atol=1e-10)
    np.testing.assert_allclose(G, k * dev / (4 * g.volume), atol=1e-10)


def _remove(g, k, bonds):
    k = k.copy()
    k[list(bonds)] = 0.0
    return k


def _bonds_of(g, node):
    return np.flatnonzero((g.i == node) | (g.j == node))


def _direction(net, b, node):
    d = nw.bond_vectors(net.positions, net.box, net.i[b : b + 1], net.j[b : b + 1])[0]
    return d if net.i[b] == node else -d


@pytest.mark.parametrize("node", [0, 21])  # node 0 is the pinned one of the rank-one route
def test_rigidity_hand_made(node):
    """Around one node of a perfect 6x6 triangular lattice, keeping: 5 bonds: valid; two at
    60 degrees: valid; two opposite (collinear): one transverse zero mode, invalid, neither
    isolated nor dangling; one: dangling (1 zero mode); none: isolated (2 zero modes). The
    rank-one test agrees, proposing the last removal from a valid state with one more bond
    (an isolated node cannot be reached from a valid state in one removal)."""
    net = nw.triangular_lattice(6)
    g = el.geometry(net)
    full = np.ones(len(g.i))
    bonds = _bonds_of(g, node)
    angle = {b: math.atan2(*_direction(net, b, node)[::-1]) % (2 * math.pi) for b in bonds}
    by_angle = sorted(bonds, key=lambda b: angle[b])  # 0, 60, ..., 300 degrees
    cases = {  # kept -> (valid, extra zero modes, isolated, dangling), extra bond before
        (0, 1, 2, 3, 4): ((True, 0, False, False), 5),
        (0, 1): ((True, 0, False, False), 2),
        (0, 3): ((False, 1, False, False), 1),
        (0,): ((False, 1, False, True), 1),
        (): ((False, 2, True, False), None),
    }
    for keep, ((valid, extra, isolated, dangling), before) in cases.items():
        k = _remove(g, full, [by_angle[a] for a in range(6) if a not in keep])
        r = el.rigidity(g, k)
        assert (r.valid, r.extra_zero_modes) == (valid, extra), keep
        assert (bool(r.isolated[node]), bool(r.dangling[node])) == (isolated, dangling), keep
        assert r.isolated.sum() == isolated and r.dangling.sum() == dangling
        if before is None:
            with pytest.raises(ValueError, match="not rigid"):
                el.Updater(g, k)
            continue
        k_before = k.copy()
        k_before[by_angle[before]] = 1.0
        assert el.rigidity(g, k_before).valid
        move = el.Updater(g, k_before).propose(int(by_angle[before]), 0.0)
        assert move.valid == valid, keep
        if valid:
            assert move.nu == pytest.approx(el.poisson_ratio(el.elastic_tensor(g, k)), abs=1e-12)
        else:
            assert abs(move.redundancy) < 1e-12  # exactly floppy, up to round-off


def test_rank_one_updates_match_fresh_solves(distorted8):
    """200 random proposals (remove p = 0.7 / re-add), accepted whenever valid, refresh every
    7 accepts: each proposal's nu equals a fresh sparse solve to 1e-10, its validity equals
    the dense rigidity check, and every refresh agrees to 1e-10. The walk goes from z = 6 to
    z ~ 4.5, where the first removals that would make the network floppy appear. Both
    routes carry round-off ~ eps cond(H) |dnu/dC|: observed < 1e-12 on this walk; other
    seeds reaching nearly floppy states (z ~ 4.2, nu ~ -1.6) showed up to 4e-10."""
    net, g = distorted8
    rng = np.random.default_rng(0)
    upd = el.Updater(g, np.ones(len(g.i)), refresh_every=7)
    n_valid = n_invalid = 0
    for _ in range(200):
        present = np.flatnonzero(upd.stiffness > 0)
        removed = np.flatnonzero(upd.stiffness == 0)
        remove = rng.random() < 0.7 or len(removed) == 0
        b = int(rng.choice(present if remove else removed))
        move = upd.propose(b, 0.0 if remove else 1.0)
        k = upd.stiffness.copy()
        k[b] = move.new_k
        assert move.valid == el.rigidity(g, k).valid
        if move.valid:
            fresh = el.poisson_ratios(el.elastic_tensor(g, k))
            assert abs(move.nu - fresh.nu) < 1e-10
            upd.accept(move)
            n_valid += 1
        else:
            n_invalid += 1
    assert len(upd.refresh_errors) >= 10 and max(upd.refresh_errors) < 1e-10
    assert n_invalid >= 2 and n_valid >= 100  # both branches exercised
    assert upd.stiffness.sum() < 0.8 * len(g.i)  # the network was pruned far
