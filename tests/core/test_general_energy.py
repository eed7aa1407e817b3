"""The general energy path (``general.GeneralEnergy``): any ``E(R, box, params)``.

Checks, each against an independent route:
- every built-in pair potential taken through the general path (autodiff Hessian products,
  fixed all-pairs list) equals its fast path: energy, forces, stress, C, lowest
  frequencies and the implicit Jacobian dC/dD (or dC/d stiffness);
- a jax-md soft-sphere energy through :func:`general.from_jax_md` (all pairs and with a
  jax-md neighbor list) gives the built-in soft sphere's C; jax-md's own
  ``elasticity.athermal_moduli`` agrees with the project's C (an external code);
- a three-body energy (jax-md's Stillinger-Weber on a diamond crystal with vacancies):
  relaxed C against finite-strain re-minimization, a parameter derivative of C against
  central finite differences;
- neighbor overflow is reallocated, never truncated; bad inputs stop with named errors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_md import elasticity
from jax_md import energy as jmd_energy
from jax_md import space as jmd_space

from tunable_solids import mechanics as M
from tunable_solids import space
from tunable_solids.energy import as_general, energy
from tunable_solids.general import GeneralEnergy, from_jax_md
from tunable_solids.implicit import ParticleEnergy, at_minimum
from tunable_solids.minimize import minimize

# Same quantity through two linear-algebra routes (pair-structured vs autodiff Hessian
# products, CG to 1e-12 on both): measured agreement 1e-15 .. 1e-13; 1e-10 leaves the
# margin of a CG stopping at a different iteration, nothing more.
ROUTE_RTOL = 1e-10


def rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _packing_views(state):
    """(fast model, general model, general energy) of a packing fixture. The general energy
    sums over the minimum's pair list (every pair within the cutoff plus a skin), which holds
    every interacting pair at the state and keeps the autodiff third derivatives small."""
    gen = as_general(state.potential, state.species, state.minimum.pairs)
    box = jnp.asarray(state.box)
    return state.model, M.Model(gen, box, None, None), gen


# Every built-in pair potential: soft spheres (3D), both harmonic-Morse forms (2D); the
# spring network below. (2D soft spheres: the jax-md tests.)
@pytest.mark.parametrize("label", ["soft3d", "xplor2d", "morse2d"])
def test_general_path_equals_fast_path(label, request):
    state = request.getfixturevalue(label)
    fast, general, gen = _packing_views(state)
    R, p = state.R, state.params
    assert rel(gen(R, fast.box, p), energy(state.potential, R, fast.box, p, state.species,
                                           state.minimum.pairs)) < ROUTE_RTOL  # fmt: skip
    # Forces away from the minimum (at it they are ~1e-12 and a relative test says nothing).
    Rp = R + 0.01 * jax.random.normal(jax.random.PRNGKey(1), R.shape)
    f_gen = -jax.grad(gen)(Rp, fast.box, p)
    f_fast = -jax.grad(energy, argnums=1)(
        state.potential, Rp, fast.box, p, state.species, space.all_pairs(state.n)
    )
    assert rel(f_gen, f_fast) < ROUTE_RTOL
    assert rel(M.stress(general, R, p), M.stress(fast, R, p)) < ROUTE_RTOL
    el_g = M.elastic_constants(general, R, p)
    assert rel(el_g.voigt, state.elasticity.voigt) < ROUTE_RTOL
    assert float(el_g.residual) <= 1e-12
    rattler = jnp.asarray(state.rattlers)
    w_g = M.vibrational_spectrum(general, R, p, rattler, 6).frequencies
    w_f = M.vibrational_spectrum(fast, R, p, rattler, 6).frequencies
    assert rel(w_g, w_f) < ROUTE_RTOL

    def dC_dD(model, energy_fn, args):
        def C(D):
            q = p._replace(diameter=D)
            Rs = at_minimum(energy_fn, R, args(q))
            return M.independent_constants(M.elastic_constants(model, Rs, q).voigt)

        return jax.jacfwd(C)(p.diameter)

    J_fast = dC_dD(fast, ParticleEnergy(state.potential),
                   lambda q: (q, fast.box, state.species, state.minimum.pairs))  # fmt: skip
    J_gen = dC_dD(general, ParticleEnergy(gen), lambda q: (q, fast.box, None, None))
    assert rel(J_gen, J_fast) < ROUTE_RTOL


def test_general_path_spring_network(triangular_network):
    net = triangular_network
    gen = as_general(net.model.potential, None, net.bonds)
    general = M.Model(gen, jnp.asarray(net.box), None, None)
    R, p = net.R, net.params
    assert rel(M.elastic_constants(general, R, p).voigt,
               M.elastic_constants(net.model, R, p).voigt) < ROUTE_RTOL  # fmt: skip

    def dC(model, args):
        def C(k):
            q = p._replace(stiffness=k)
            Rs = at_minimum(ParticleEnergy(model.potential), R, args(q))
            return M.independent_constants(M.elastic_constants(model, Rs, q).voigt)

        return jax.jacrev(C)(p.stiffness)

    J_fast = dC(net.model, lambda q: (q, net.model.box, None, net.bonds))
    J_gen = dC(general, lambda q: (q, general.box, None, None))
    assert rel(J_gen, J_fast) < ROUTE_RTOL


def test_general_minimization_matches_fast_path(soft2d):
    """Same FIRE steps on the same energy: the same minimum, iteration for iteration."""
    gen = as_general(soft2d.potential, soft2d.species, space.all_pairs(soft2d.n))
    m = minimize(gen, soft2d.start, soft2d.box, soft2d.params, None)
    assert bool(m.converged) and float(m.max_force) <= 1e-12
    assert int(m.iterations) == int(soft2d.minimum.iterations)
    # Round-off of the two force kernels (scatter vs autodiff order) stays far below the
    # distance over which FIRE would pick another minimum.
    assert float(jnp.max(jnp.abs(m.positions - soft2d.R))) < 1e-9


# ------------------------------------------------------------------------------ jax-md


@pytest.mark.parametrize("neighbor_list", [False, True], ids=["all-pairs", "neighbor-list"])
def test_jax_md_soft_sphere_gives_builtin_C(soft2d, neighbor_list, fd_tools):
    gen, p = fd_tools.jax_md_soft(soft2d, neighbor_list)
    box = jnp.asarray(soft2d.box)
    nbrs = gen.allocate(soft2d.R, box)
    model = M.Model(gen, box, None, nbrs)
    el = M.elastic_constants(model, soft2d.R, p)
    assert rel(el.voigt, soft2d.elasticity.voigt) < ROUTE_RTOL
    # Forces (real-space, despite jax-md's fractional tangent convention: general.
    # jax_md_fractional) and the stress (box derivative, periodic images included).
    Rp = soft2d.R + 0.01 * jax.random.normal(jax.random.PRNGKey(2), soft2d.R.shape)
    f_fast = -jax.grad(energy, argnums=1)(soft2d.potential, Rp, box, soft2d.params,
                                          soft2d.species, space.all_pairs(soft2d.n))  # fmt: skip
    assert rel(-jax.grad(gen)(Rp, box, p, gen.allocate(Rp, box)), f_fast) < ROUTE_RTOL
    assert rel(M.stress(model, soft2d.R, p), M.stress(soft2d.model, soft2d.R, soft2d.params)) < (
        ROUTE_RTOL
    )
    # The derivative w.r.t. sigma_ab flows through the adapter: d E / d sigma is finite and
    # its contraction with the sigma of every pair equals r-weighted forces (virial-like
    # identity for u(r / sigma): sum_ab sigma_ab dE/dsigma_ab = -sum_pairs r u'(r)).
    g = jax.grad(lambda q: gen(soft2d.R, box, q, nbrs))(p)["sigma"]
    pairs = soft2d.minimum.pairs
    dr = space.pair_vectors(soft2d.R, box, pairs)
    r = jnp.linalg.norm(jnp.where(pairs.mask[:, None], dr, 1.0), axis=1)
    pp_sigma = 0.5 * (soft2d.params.diameter[soft2d.species[pairs.i]]
                      + soft2d.params.diameter[soft2d.species[pairs.j]])  # fmt: skip
    u_prime = jnp.where(pairs.mask & (r < pp_sigma), -(1.0 - r / pp_sigma) / pp_sigma, 0.0)
    assert rel(jnp.sum(g * p["sigma"]), -jnp.sum(r * u_prime)) < 1e-12


def test_jax_md_neighbor_list_minimization(soft2d, fd_tools):
    """Minimized with a jax-md neighbor list (allocated and updated by the core): converged to
    1e-12, and C at that minimum equals the built-in fast path's C at the same positions."""
    gen, p = fd_tools.jax_md_soft(soft2d, neighbor_list=True)
    m = minimize(gen, soft2d.start, soft2d.box, p, None)
    assert bool(m.converged) and float(m.max_force) <= 1e-12
    box = jnp.asarray(soft2d.box)
    el = M.elastic_constants(M.Model(gen, box, None, m.pairs), m.positions, p)
    fast = M.Model(soft2d.potential, box, soft2d.species, space.all_pairs(soft2d.n))
    ref = M.elastic_constants(fast, m.positions, soft2d.params)
    assert rel(el.voigt, ref.voigt) < ROUTE_RTOL


def test_jax_md_athermal_moduli_agrees(soft2d):
    """External reference: jax-md's elasticity.athermal_moduli on the same state.

    jax-md solves ``(H + t I) x = Xi`` with a tether t = 1e-10 (its default) to remove the
    zero modes, which biases every non-affine term by about t / lambda_min (lambda_min ~ 1e-3
    for this packing's lowest non-zero Hessian eigenvalue): 1e-6 relative covers that bias.
    """
    D = np.asarray(soft2d.params.diameter)
    sigma = jnp.asarray(0.5 * (D[:, None] + D[None, :]))
    disp, _ = jmd_space.periodic_general(jnp.asarray(soft2d.box), fractional_coordinates=True)
    fn = jmd_energy.soft_sphere_pair(disp, species=jnp.asarray(soft2d.species), sigma=sigma)
    box = jnp.asarray(soft2d.box)
    S = space.fractional(soft2d.R, box)
    C4, ok = elasticity.athermal_moduli(fn, cg_tol=1e-12, check_convergence=True)(S, box=box)
    voigt = np.array([[C4[a, b, c, d] for (c, d) in M.VOIGT[2]] for (a, b) in M.VOIGT[2]])
    assert bool(ok)
    assert rel(voigt, soft2d.elasticity.voigt) < 1e-6


# -------------------------------------------------------------------------- three-body


def _diamond_with_vacancies(cells: int = 2, vacancies=(0, 13)):
    """Diamond lattice (a = 5.431, jax-md's silicon units) with atoms removed."""
    basis = np.array([[0, 0, 0], [0, 2, 2], [2, 0, 2], [2, 2, 0],
                      [1, 1, 1], [1, 3, 3], [3, 1, 3], [3, 3, 1]]) / 4.0  # fmt: skip
    cells_idx = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), -1).reshape(-1, 3)
    a = 5.431
    R = ((cells_idx[:, None, :] + basis[None]) * a).reshape(-1, 3)
    keep = np.setdiff1d(np.arange(len(R)), vacancies)
    box = np.eye(3) * a * cells
    # A small random displacement so the vacancy relaxation is not symmetric by accident.
    R = R[keep] + 0.02 * np.random.default_rng(3).standard_normal((len(keep), 3))
    return R, box


@pytest.fixture(scope="module")
def sw_state():
    R0, box = _diamond_with_vacancies()
    disp, _ = jmd_space.periodic_general(jnp.asarray(box), fractional_coordinates=True)
    gen = from_jax_md(
        build=lambda p: jmd_energy.stillinger_weber(disp, lam=p["lam"], gamma=p["gamma"]),
        name="jax-md Stillinger-Weber",
    )
    params = {"lam": jnp.asarray(21.0), "gamma": jnp.asarray(1.2)}
    m = minimize(gen, R0, box, params, None)
    assert bool(m.converged) and float(m.max_force) <= 1e-12
    return gen, params, box, m


def _stress_at_strain(gen, params, box, R, e_voigt):
    """Stress after deforming box and positions by I + eps and re-minimizing at fixed box."""
    F = np.eye(3) + np.asarray(M.voigt_to_tensor(jnp.asarray(e_voigt), 3))
    m = minimize(gen, np.asarray(R) @ F.T, F @ box, params, None)
    assert bool(m.converged)
    return np.asarray(M.stress(M.Model(gen, jnp.asarray(F @ box), None, None), m.positions,
                               params))  # fmt: skip


def test_three_body_elastic_constants_vs_finite_strain(sw_state):
    """C_IJ = d sigma_I / d eps_J by central differences of the re-minimized stress.

    h = 1e-5: the O(h^2) truncation (~1e-10 relative) and the force-tolerance noise of the
    re-minimized states (1e-12 / (h * C) ~ 1e-7 relative) are both below the 1e-6
    tolerance. Note: the stress here is the derivative per current volume, so the finite-
    difference slope carries the pre-stress term sigma_I delta_J-like corrections; the
    relaxed state is stress-free to 1e-12 x C here (checked), which makes them negligible.
    """
    gen, params, box, m = sw_state
    model = M.Model(gen, jnp.asarray(box), None, None)
    el = M.elastic_constants(model, m.positions, params)
    s0 = np.asarray(M.stress(model, m.positions, params))
    assert np.max(np.abs(s0)) < 1e-4 * np.max(np.abs(el.voigt))
    h = 1e-5
    C_fd = np.zeros((6, 6))
    for J in range(6):
        e = np.zeros(6)
        e[J] = h
        sp = _stress_at_strain(gen, params, box, m.positions, e)
        sm = _stress_at_strain(gen, params, box, m.positions, -e)
        ds = (sp - sm) / (2 * h)
        C_fd[:, J] = [ds[a, b] for a, b in M.VOIGT[3]]
    # Pre-stress terms are O(|sigma_0|), so the tolerance is 1e-6 + |sigma_0| / |C|.
    tol = 1e-6 + np.max(np.abs(s0)) / np.max(np.abs(el.voigt))
    assert rel(C_fd, el.voigt) < tol


def test_three_body_parameter_derivative_vs_fd(sw_state):
    """dC/d lambda (implicit, through the minimum) vs central differences of re-minimized C.

    Richardson over h and h/2 (h = 1e-3 relative): O(h^4) truncation ~ 1e-12; the
    re-minimized C carry the CG (1e-12) and force (1e-12) noise divided by h: ~1e-9. So 1e-7.
    """
    gen, params, box, m = sw_state
    model = M.Model(gen, jnp.asarray(box), None, None)

    def C_of(lam):
        q = {**params, "lam": lam}
        R = at_minimum(ParticleEnergy(gen), m.positions, (q, model.box, None, None))
        return M.independent_constants(M.elastic_constants(model, R, q).voigt)

    dC = np.asarray(jax.jacfwd(C_of)(params["lam"]))

    def C_fd(lam):
        q = {**params, "lam": jnp.asarray(lam)}
        mm = minimize(gen, m.positions, box, q, None)
        assert bool(mm.converged)
        return np.asarray(M.independent_constants(M.elastic_constants(model, mm.positions,
                                                                      q).voigt))  # fmt: skip

    lam0 = float(params["lam"])
    h = 1e-3 * lam0
    d1 = (C_fd(lam0 + h) - C_fd(lam0 - h)) / (2 * h)
    d2 = (C_fd(lam0 + h / 2) - C_fd(lam0 - h / 2)) / h
    fd = (4 * d2 - d1) / 3
    assert rel(dC, fd) < 1e-7


# ---------------------------------------------------------------------- neighbor overflow


class _CountingNeighbors:
    """A fake neighbor state (a step counter) that overflows ``overflow_at`` updates after an
    allocation: only after the first one (``once``) or after every one."""

    def __init__(self, overflow_at: int, once: bool):
        self.overflow_at = overflow_at
        self.once = once
        self.allocations = 0

    def allocate(self, R, box):
        self.allocations += 1
        fresh = self.allocations == 1 or not self.once
        return jnp.asarray(0 if fresh else -(10**9))

    def update(self, R, box, count):
        return count + 1

    def overflow(self, count):
        return count == self.overflow_at


def _counting_energy(state, handler, name):
    pairs = space.all_pairs(state.n)
    fn = lambda R, box, p, _: energy(state.potential, R, box, p, state.species, pairs)
    return GeneralEnergy(fn, handler, name)


def test_overflow_is_reallocated_not_truncated(soft2d):
    plain = minimize(as_general(soft2d.potential, soft2d.species, space.all_pairs(soft2d.n)),
                     soft2d.start, soft2d.box, soft2d.params, None)  # fmt: skip
    handler = _CountingNeighbors(overflow_at=50, once=True)
    gen = _counting_energy(soft2d, handler, "counting")
    m = minimize(gen, soft2d.start, soft2d.box, soft2d.params, None)
    assert handler.allocations == 2  # the first, and one after the overflow at step 50
    # The energy ignores the neighbor state, so the trajectory is the one without overflow, up
    # to round-off: after the reallocation the forces are recomputed outside the compiled loop
    # (another fusion of the same arithmetic). Same minimum: positions within 1e-9.
    assert int(m.iterations) == int(plain.iterations)
    assert float(jnp.max(jnp.abs(m.positions - plain.positions))) < 1e-9


def test_overflow_that_persists_is_an_error(soft2d):
    gen = _counting_energy(soft2d, _CountingNeighbors(overflow_at=3, once=False), "always")
    with pytest.raises(RuntimeError, match="always: the neighbor list overflowed 9 times"):
        minimize(gen, soft2d.start, soft2d.box, soft2d.params, None)


def test_jax_md_overflow_is_reported(soft2d, fd_tools):
    """A real jax-md list allocated in a dilute state overflows once particles crowd: the
    adapter reports it (the core then reallocates or raises)."""
    gen, p = fd_tools.jax_md_soft(soft2d, neighbor_list=True)
    box = jnp.asarray(soft2d.box)
    nbrs = gen.allocate(soft2d.R, box)
    crowded = 0.5 * soft2d.R  # every particle in one quarter of the box: more neighbors
    assert bool(gen.overflow(gen.update(crowded, box, nbrs)))
    assert not bool(gen.overflow(gen.update(soft2d.R, box, nbrs)))


# --------------------------------------------------------------------------- bad input


def _good(soft2d):
    pairs = space.all_pairs(soft2d.n)
    return lambda R, box, p: energy(soft2d.potential, R, box, p, soft2d.species, pairs)


def test_non_scalar_energy_is_rejected(soft2d):
    gen = GeneralEnergy(lambda R, box, p: jnp.sum(R**2, axis=1), name="per-particle")
    with pytest.raises(ValueError, match=r"per-particle: the energy must return a scalar; "
                                         r"it returned \(64,\)"):  # fmt: skip
        minimize(gen, soft2d.start, soft2d.box, soft2d.params, None)


def test_wrong_box_shape_is_rejected(soft2d):
    gen = GeneralEnergy(_good(soft2d), name="soft")
    with pytest.raises(ValueError, match=r"soft: box must be a \(2, 2\) matrix.*got shape \(2,\)"):
        minimize(gen, soft2d.start, np.diag(soft2d.box), soft2d.params, None)


def test_integer_parameters_are_rejected(soft2d):
    gen = GeneralEnergy(lambda R, box, p: jnp.sum(R**2) * p["k"], name="toy")
    with pytest.raises(ValueError, match=r"toy: parameters must be a pytree of float arrays; "
                                         r"\['k'\] has dtype int"):  # fmt: skip
        minimize(gen, soft2d.start, soft2d.box, {"k": jnp.asarray(2)}, None)


def test_nan_energy_during_minimization_is_an_error(soft2d):
    # Finite at the start, NaN once any particle has moved by more than 1e-3.
    R0 = jnp.asarray(soft2d.start)
    good = _good(soft2d)
    fn = lambda R, box, p: jnp.where(jnp.max(jnp.abs(R - R0)) > 1e-3, jnp.nan, good(R, box, p))
    gen = GeneralEnergy(fn, name="breaks")
    with pytest.raises(FloatingPointError, match="breaks: the energy or the forces became "
                                                 "non-finite during minimization"):  # fmt: skip
        minimize(gen, soft2d.start, soft2d.box, soft2d.params, None)


@pytest.mark.slow
def test_example_runs_and_matches_the_pair_path():
    """examples/jax_md_energy.py (what README "Your own energy" walks through) runs and its
    last line, the deviation of C from the built-in pair path, is at most 1e-10."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "jax_md_energy.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True, timeout=600).stdout.strip().splitlines()  # fmt: skip
    assert out[-1].startswith("largest relative deviation of C from the built-in pair path:")
    assert float(out[-1].rsplit(":", 1)[1]) <= 1e-10
