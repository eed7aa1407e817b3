"""Pair potentials (functional forms, continuity, cutoffs) and the energy function.

Every potential must be continuous in value and force (C^1) everywhere: at the contact
distance sigma, at the XPLOR switch-on distance r_on and at the cutoff r_cut. The check
compares one-sided limits at r0 -+ delta; it is shown to fail on deliberately broken
variants (a hard-truncated Morse tail: value jump; a truncated-and-shifted tail: force jump).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tunable_solids import energy as en
from tunable_solids import potentials as pot
from tunable_solids import space

EPS = float(np.finfo(np.float64).eps)


def pp_scalar(sigma, k, b) -> pot.PairParams:
    return pot.PairParams(jnp.asarray(sigma, jnp.float64), jnp.asarray(k, jnp.float64),
                          jnp.asarray(b, jnp.float64))  # fmt: skip


# ---------------------------------------------------------------- continuity machinery

DELTA = 1e-9  # one-sided offset: small enough that 2*delta*|u''| is far below any real jump


def c1_check(u, r0: float, energy_scale: float, length_scale: float) -> tuple[bool, dict]:
    """Is ``u`` (scalar function of r) continuous with continuous derivative at ``r0``?

    For a C^1 function whose one-sided derivatives are bounded by U1 (first) and U2
    (second) near r0, the differences of the one-sided values at r0 -+ delta are at most
    2 delta U1 (value) and 2 delta U2 (derivative). U1, U2 are measured on each side
    separately (they stay finite even across a jump), and a factor 2 covers their variation
    over the interval. Round-off adds ~ eps * (energy scale) to values and
    ~ eps * (energy scale / length scale) to derivatives; 1e3 eps covers the ~10 flops of
    the potentials and the loss of relative precision of r0 +- delta (~ eps r0 / delta
    would be far larger, but r enters only through r - sigma and r^2 differences of O(1)).
    """
    du = jax.grad(u)
    d2u = jax.grad(du)
    left = jnp.asarray([r0 - DELTA, r0 - 2 * DELTA])
    right = jnp.asarray([r0 + DELTA, r0 + 2 * DELTA])
    u1 = max(float(jnp.max(jnp.abs(jax.vmap(du)(s)))) for s in (left, right))
    u2 = max(float(jnp.max(jnp.abs(jax.vmap(d2u)(s)))) for s in (left, right))
    jump_u = abs(float(u(left[0]) - u(right[0])))
    jump_du = abs(float(du(left[0]) - du(right[0])))
    tol_u = 2 * (2 * DELTA * u1) + 1e3 * EPS * energy_scale
    tol_du = 2 * (2 * DELTA * u2) + 1e3 * EPS * energy_scale / length_scale
    ok = jump_u <= tol_u and jump_du <= tol_du
    return ok, dict(jump_u=jump_u, tol_u=tol_u, jump_du=jump_du, tol_du=tol_du)


MORSE_CASES = [  # (sigma, k, B): the contact distance of a 1.0/1.4 pair and of two 0.8 discs
    (1.2, 1.0, 1.0),
    (0.8, 5.0, 0.01),
]


def special_points(p, sigma):
    if isinstance(p, pot.HarmonicMorse):
        return {"sigma": sigma, "r_on": sigma + p.r_on_a / p.a, "r_cut": sigma + p.r_cut_a / p.a}
    if isinstance(p, pot.SoftSphere):
        return {"sigma": sigma}  # contact distance and cutoff coincide
    return {"rest_length": sigma}  # springs: no cutoff (infinite range)


@pytest.mark.parametrize("name", ["soft_sphere", "harmonic_morse", "harmonic_morse_xplor",
                                  "spring_network"])  # fmt: skip
@pytest.mark.parametrize("sigma,k,b", MORSE_CASES)
def test_potentials_are_c1_at_special_points(name, sigma, k, b):
    p = pot.make_potential(name)
    pp = pp_scalar(sigma, k, b)
    u = lambda r: p.pair_energy(r, pp)
    for where, r0 in special_points(p, sigma).items():
        ok, info = c1_check(u, r0, energy_scale=max(k, b), length_scale=sigma / 50.0)
        assert ok, f"{name} not C^1 at {where} = {r0}: {info}"


@pytest.mark.parametrize("name", ["soft_sphere", "harmonic_morse", "harmonic_morse_xplor",
                                  "spring_network"])  # fmt: skip
@pytest.mark.parametrize("sigma,k,b", MORSE_CASES)
def test_kinks_are_where_the_second_derivative_jumps(name, sigma, k, b):
    """``Potential.kinks`` lists exactly the distances where u'' jumps (finite-difference
    windows are built from it): a jump far above the smooth bound at each kink, none at
    points between and beyond them. Smooth bound as in :func:`c1_check`, one order up:
    2 (2 delta U3) plus round-off ~ 1e3 eps E / L^2."""
    p = pot.make_potential(name)
    pp = pp_scalar(sigma, k, b)
    d2u = jax.grad(jax.grad(lambda r: p.pair_energy(r, pp)))
    d3u = jax.grad(d2u)
    length = sigma / 50.0

    def jump_and_bound(r0):
        sides = jnp.asarray([r0 - DELTA, r0 - 2 * DELTA, r0 + DELTA, r0 + 2 * DELTA])
        u3 = float(jnp.max(jnp.abs(jax.vmap(d3u)(sides))))
        bound = 2 * (2 * DELTA * u3) + 1e3 * EPS * max(k, b) / length**2
        return abs(float(d2u(r0 + DELTA) - d2u(r0 - DELTA))), bound

    kinks = [float(x) for x in p.kinks(jnp.asarray(sigma))]
    for r0 in kinks:
        jump, bound = jump_and_bound(r0)
        assert jump > 10 * bound, f"{name}: no u'' jump at listed kink {r0}: {jump} vs {bound}"
    edges = sorted(kinks) or [sigma]
    smooth = [0.9 * edges[0], 1.05 * edges[-1]]
    smooth += [0.5 * (x + y) for x, y in zip(edges, edges[1:], strict=False)]
    for r0 in smooth:
        jump, bound = jump_and_bound(r0)
        assert jump <= bound, f"{name}: u'' jumps at {r0}, not listed in kinks(): {jump}"


def _morse_tail(r, sigma, b, a):
    return b * (1.0 - jnp.exp(-a * jnp.maximum(r - sigma, 0.0))) ** 2 - b


@pytest.mark.parametrize("sigma,k,b", MORSE_CASES)
def test_c1_check_detects_truncated_morse(sigma, k, b):
    """Negative controls: without the XPLOR switch the check must fail at the cutoff."""
    p = pot.make_potential("harmonic_morse")
    rc = float(p.cutoff(sigma))

    def truncated(r):  # value jump u(rc-) = -2 B exp(-9.9) + O(B e^-19.8) ~ -1e-4 B
        return jnp.where(r < rc, _morse_tail(r, sigma, b, p.a), 0.0)

    def shifted(r):  # continuous value, force jump 2 B a e^-9.9 (1 - e^-9.9) ~ 5e-3 B
        return jnp.where(r < rc, _morse_tail(r, sigma, b, p.a) - _morse_tail(rc, sigma, b, p.a),
                         0.0)  # fmt: skip

    ok, info = c1_check(truncated, rc, max(k, b), sigma / 50.0)
    assert not ok and info["jump_u"] > info["tol_u"], info
    ok, info = c1_check(shifted, rc, max(k, b), sigma / 50.0)
    assert not ok and info["jump_u"] <= info["tol_u"] and info["jump_du"] > info["tol_du"], info
    # the real (switched) potential at the same point passes
    ok, info = c1_check(lambda r: p.pair_energy(r, pp_scalar(sigma, k, b)), rc, max(k, b),
                        sigma / 50.0)  # fmt: skip
    assert ok, info


# ------------------------------------------------------------------- functional forms


def xplor_reference(r, r_on, r_cut):
    """XPLOR switch written out independently (Brooks et al. CHARMM form)."""
    r = np.asarray(r, float)
    s = ((r_cut**2 - r**2) ** 2 * (r_cut**2 + 2 * r**2 - 3 * r_on**2)
         / (r_cut**2 - r_on**2) ** 3)  # fmt: skip
    return np.where(r <= r_on, 1.0, np.where(r >= r_cut, 0.0, s))


def reference_energy(name, r, sigma, k, b):
    """The papers' pair potentials, written out with numpy."""
    r = np.asarray(r, float)
    if name == "soft_sphere":
        return np.where(r < sigma, 0.5 * k * (1 - r / sigma) ** 2, 0.0)
    if name == "spring_network":
        return 0.5 * k * (r - sigma) ** 2
    a = 50.0 if name == "harmonic_morse" else 5.0
    inside = 0.5 * k * (1 - r / sigma) ** 2 - b if name == "harmonic_morse" else (
        0.5 * k * (r - sigma) ** 2 - b)  # fmt: skip
    morse = b * (1 - np.exp(-a * np.maximum(r - sigma, 0))) ** 2 - b
    u = np.where(r < sigma, inside, morse)
    return u * xplor_reference(r, sigma + 5.0 / a, sigma + 9.9 / a)


@pytest.mark.parametrize("name", ["soft_sphere", "harmonic_morse", "harmonic_morse_xplor",
                                  "spring_network"])  # fmt: skip
@pytest.mark.parametrize("sigma,k,b", MORSE_CASES)
def test_pair_energy_matches_paper_formulas(name, sigma, k, b):
    p = pot.make_potential(name)
    rc = float(p.cutoff(sigma)) if name != "spring_network" else 3 * sigma
    r = np.linspace(0.3 * sigma, rc + 0.5, 2001)
    got = np.asarray(p.pair_energy(jnp.asarray(r), pp_scalar(sigma, k, b)))
    want = reference_energy(name, r, sigma, k, b)
    # same formulas evaluated in a different order: agreement to a few ulps of the
    # largest term, which is at most k * (r/sigma)^2 ~ 1e2 here
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * max(k, b) * 100)


def test_make_potential_parameters():
    hm = pot.make_potential("harmonic_morse")
    assert (hm.a, hm.repulsion, hm.r_on_a, hm.r_cut_a) == (50.0, "relative", 5.0, 9.9)
    hx = pot.make_potential("harmonic_morse_xplor")
    assert (hx.a, hx.repulsion, hx.name) == (5.0, "absolute", "harmonic_morse_xplor")
    assert float(hm.cutoff(1.0)) == pytest.approx(1.0 + 9.9 / 50.0, rel=1e-15)
    assert float(hx.cutoff(1.0)) == pytest.approx(1.0 + 9.9 / 5.0, rel=1e-15)
    assert float(pot.make_potential("soft_sphere").cutoff(1.2)) == 1.2
    assert math.isinf(float(pot.make_potential("spring_network").cutoff(1.0)))
    assert pot.make_potential("harmonic_morse", a=20.0).a == 20.0
    with pytest.raises(ValueError, match="unknown potential"):
        pot.make_potential("lennard_jones")
    with pytest.raises(ValueError, match="repulsion"):
        pot.HarmonicMorse(repulsion="sideways")
    with pytest.raises(ValueError, match="r_on_a < r_cut_a"):
        pot.HarmonicMorse(r_on_a=9.9, r_cut_a=5.0)


@pytest.mark.parametrize("name", ["harmonic_morse", "harmonic_morse_xplor"])
def test_morse_well_depth_is_binding_energy(name):
    """Minimum of u is exactly -B at r = sigma (both branches equal -B there, u' = 0)."""
    p = pot.make_potential(name)
    sigma, k, b = 1.2, 1.0, 0.3
    r = jnp.linspace(0.5 * sigma, float(p.cutoff(sigma)) + 0.1, 20001)
    u = np.asarray(p.pair_energy(r, pp_scalar(sigma, k, b)))
    assert float(p.pair_energy(jnp.asarray(sigma), pp_scalar(sigma, k, b))) == -b
    assert u.min() >= -b  # exact: no grid point is below the well depth
    du = float(jax.grad(lambda x: p.pair_energy(x, pp_scalar(sigma, k, b)))(sigma))
    assert du == 0.0


@pytest.mark.parametrize("name", ["soft_sphere", "harmonic_morse", "harmonic_morse_xplor"])
def test_energy_vanishes_beyond_cutoff(name):
    p = pot.make_potential(name)
    sigma = 1.2
    rc = float(p.cutoff(sigma))
    r = jnp.linspace(rc, rc + 5.0, 501)
    pp = pp_scalar(sigma, 1.0, 0.5)
    assert np.all(np.asarray(p.pair_energy(r, pp)) == 0.0)
    assert np.all(np.asarray(jax.vmap(jax.grad(lambda x: p.pair_energy(x, pp)))(r)) == 0.0)
    # and does not vanish just inside (the range is not shorter than advertised)
    assert float(p.pair_energy(jnp.asarray(rc - 1e-3 * sigma), pp)) != 0.0


def test_xplor_switch_shape():
    r_on, r_cut = 1.1, 1.2
    r = np.linspace(1.0, 1.3, 3001)
    s = np.asarray(pot.xplor_switch(jnp.asarray(r), r_on, r_cut))
    np.testing.assert_allclose(s, xplor_reference(r, r_on, r_cut), rtol=0, atol=1e-14)
    assert np.all(np.diff(s) <= 1e-15)  # monotonically non-increasing
    ds = jax.grad(lambda x: pot.xplor_switch(x, r_on, r_cut))
    # S'(r) = 12 r (r_c^2 - r^2)(r_on^2 - r^2)/(r_c^2 - r_on^2)^3 vanishes at both ends
    assert abs(float(ds(r_on + 1e-12))) < 1e-9 and abs(float(ds(r_cut - 1e-12))) < 1e-9


def test_species_and_pair_parameters():
    sp = pot.species_params([1.0, 1.4], k=2.0, binding=[[0.1, 0.2], [0.4, 0.3]])
    np.testing.assert_array_equal(np.asarray(sp.k), np.full((2, 2), 2.0))
    np.testing.assert_allclose(np.asarray(sp.binding), [[0.1, 0.3], [0.3, 0.3]], rtol=1e-15)
    species = jnp.asarray([0, 1, 1, 0])
    pp = pot.pair_parameters(sp, species, jnp.asarray([0, 0, 1]), jnp.asarray([3, 1, 2]))
    np.testing.assert_allclose(np.asarray(pp.sigma), [1.0, 1.2, 1.4], rtol=1e-15)
    np.testing.assert_allclose(np.asarray(pp.binding), [0.1, 0.3, 0.3], rtol=1e-15)
    net = pot.NetworkParams(jnp.asarray([1.0, 2.0]), jnp.asarray([0.9, 1.1]))
    ppn = pot.pair_parameters(net, None, jnp.asarray([0, 1]), jnp.asarray([1, 2]))
    np.testing.assert_array_equal(np.asarray(ppn.sigma), [0.9, 1.1])
    np.testing.assert_array_equal(np.asarray(ppn.k), [1.0, 2.0])


# --------------------------------------------------------------------------- energy


def _random_config(seed, n=24, dim=2, L=4.5):
    rng = np.random.default_rng(seed)
    box = np.array([[L, 0.3], [0.0, L * 0.9]]) if dim == 2 else np.diag([L, L, L])
    R = rng.uniform(size=(n, dim)) @ box.T
    species = jnp.asarray(rng.integers(0, 2, n), jnp.int32)
    params = pot.SpeciesParams(jnp.asarray([1.0, 1.4]), jnp.asarray([[1.0, 2.0], [2.0, 3.0]]),
                               jnp.asarray([[0.01, 0.02], [0.02, 0.03]]))  # fmt: skip
    return jnp.asarray(R), jnp.asarray(box), params, species


@pytest.mark.parametrize("name", ["soft_sphere", "harmonic_morse"])
def test_strain_argument_equals_deformed_box(name):
    """energy(R, box, strain=eps) is the energy of positions and box deformed by I + eps.

    The box is sheared (non-orthogonal columns) so the minimum image is exercised too.
    """
    R, box, params, species = _random_config(1)
    p = pot.make_potential(name)
    pairs = space.all_pairs(R.shape[0])
    eps = jnp.asarray([[0.013, -0.007], [-0.007, -0.004]])
    F = jnp.eye(2) + eps
    e_strain = float(en.energy(p, R, box, params, species, pairs, strain=eps))
    e_deformed = float(en.energy(p, R @ F.T, F @ box, params, species, pairs))
    scale = float(jnp.sum(jnp.abs(en.pair_energies(p, space.pair_vectors(R, box, pairs),
                                                   params, species, pairs))))  # fmt: skip
    assert scale > 0
    # two evaluation orders of the same sum: round-off ~ eps * sum|u_p| * few
    assert abs(e_strain - e_deformed) <= 1e-13 * scale


def test_masked_slots_contribute_nothing():
    R, box, params, species = _random_config(2)
    p = pot.make_potential("harmonic_morse")
    full = space.all_pairs(R.shape[0])
    pad = 7
    padded = space.Pairs(jnp.concatenate([full.i, jnp.zeros(pad, jnp.int32)]),
                         jnp.concatenate([full.j, jnp.zeros(pad, jnp.int32)]),
                         jnp.concatenate([full.mask, jnp.zeros(pad, bool)]))  # fmt: skip
    e1 = en.energy(p, R, box, params, species, full)
    e2 = en.energy(p, R, box, params, species, padded)
    # Padding adds exact zeros, but a longer array may be reduced in a different order
    # (XLA's blocked sums), so equality holds to round-off: a few eps * sum |u_p|.
    scale = float(jnp.sum(jnp.abs(en.pair_energies(p, space.pair_vectors(R, box, full), params,
                                                   species, full))))  # fmt: skip
    assert abs(float(e1) - float(e2)) <= 8 * np.finfo(float).eps * scale
    forces = jax.jit(en.forces, static_argnums=0)
    f1 = forces(p, R, box, params, species, full)
    f2 = forces(p, R, box, params, species, padded)
    assert np.all(np.isfinite(np.asarray(f2)))
    np.testing.assert_array_equal(np.asarray(f1), np.asarray(f2))


def test_forces_are_minus_gradient_and_repulsive():
    """Two overlapping soft discs along x: the right one is pushed to +x with |F| = k x/sigma
    where x = 1 - r/sigma; and forces equal -dE/dR by central differences."""
    p = pot.make_potential("soft_sphere")
    params = pot.species_params([1.0], k=2.0)
    box = jnp.eye(2) * 10.0
    R = jnp.asarray([[3.0, 3.0], [3.9, 3.0]])
    species = jnp.asarray([0, 0])
    pairs = space.all_pairs(2)
    F = np.asarray(en.forces(p, R, box, params, species, pairs))
    np.testing.assert_allclose(F[1], [2.0 * 0.1 / 1.0, 0.0], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(F[0], -F[1], rtol=0, atol=1e-15)  # Newton's third law
    h = 1e-5
    for a in range(2):
        for d in range(2):
            dR = jnp.zeros_like(R).at[a, d].set(h)
            fd = -(en.energy(p, R + dR, box, params, species, pairs)
                   - en.energy(p, R - dR, box, params, species, pairs)) / (2 * h)  # fmt: skip
            # u is quadratic in the overlap: the central difference is exact up to round-off
            # eps * u / h ~ 1e-18 / 1e-5
            assert abs(float(fd) - F[a, d]) < 1e-10
    assert float(en.max_force(jnp.asarray(F))) == pytest.approx(0.2, rel=1e-13)


# ------------------------------------------ harmonic spheres and the smoothed IPL glass former


def test_harmonic_sphere_is_absolute_repulsion():
    """Bond-operator paper Eq. B1: ``(k/2)(r - l)^2`` inside ``l``, 0 beyond, so for the same
    overlap the energy does not depend on the contact distance (unlike ``soft_sphere``)."""
    p = pot.make_potential("harmonic_sphere")
    for sigma in (1.0, 1.4):
        r = np.linspace(0.5 * sigma, 1.5 * sigma, 1001)
        got = np.asarray(p.pair_energy(jnp.asarray(r), pp_scalar(sigma, 2.0, 0.0)))
        want = np.where(r < sigma, 0.5 * 2.0 * (r - sigma) ** 2, 0.0)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    ok, info = c1_check(lambda r: p.pair_energy(r, pp_scalar(1.2, 1.0, 0.0)), 1.2, 1.0, 1.2 / 50)
    assert ok, info
    with pytest.raises(ValueError, match="repulsion"):
        pot.SoftSphere(repulsion="sideways")


@pytest.mark.parametrize("n,x_c", [(10.0, 1.48), (12.0, 1.25)])
def test_inverse_power_law_vanishes_smoothly_at_the_cutoff(n, x_c):
    """u, u' and u'' are 0 at ``x_c sigma`` from inside (to round-off of the largest term
    ``x^-n`` near the cutoff) and exactly 0 beyond; inside, u equals the written-out form."""
    p = pot.make_potential("inverse_power_law", exponent=n, x_c=x_c)
    sigma, k = 1.3, 0.7
    pp = pp_scalar(sigma, k, 0.0)
    u = lambda r: p.pair_energy(r, pp)
    rc = x_c * sigma
    r_in = rc * (1.0 - 1e-12)
    scale = k * x_c**-n
    for order, f in enumerate([u, jax.grad(u), jax.grad(jax.grad(u))]):
        assert abs(float(f(r_in))) <= 1e-9 * scale * (n / rc) ** order, (order, float(f(r_in)))
        assert float(f(rc * 1.001)) == 0.0
    r = np.linspace(0.8 * sigma, 0.999 * rc, 500)
    c0, c2, c4 = p.coefficients()
    x = r / sigma
    want = k * (x**-n + c0 + c2 * x**2 + c4 * x**4)
    np.testing.assert_allclose(np.asarray(u(jnp.asarray(r))), want, rtol=1e-12, atol=1e-15)
    assert p.kinks(sigma) == []


def test_particle_params_nonadditive_contact_distance():
    """``sigma_ij = (l_i + l_j)/2 (1 - n_eps |l_i - l_j|)``; each particle its own species."""
    lam = np.array([1.0, 1.5, 2.2])
    params = pot.particle_params(lam, k=2.0, nonadditivity=0.2)
    i, j = jnp.array([0, 0, 1, 2]), jnp.array([1, 2, 2, 2])
    pp = pot.pair_parameters(params, jnp.arange(3), i, j)
    li, lj = lam[np.asarray(i)], lam[np.asarray(j)]
    np.testing.assert_allclose(np.asarray(pp.sigma), 0.5 * (li + lj) * (1 - 0.2 * abs(li - lj)),
                               rtol=1e-15)  # fmt: skip
    np.testing.assert_array_equal(np.asarray(pp.k), 2.0)
