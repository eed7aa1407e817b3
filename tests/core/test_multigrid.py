"""The multigrid preconditioner: Galerkin coarse operators, symmetry, and unchanged results.

A preconditioner may only change how fast CG meets its stopping rule, never what it
converges to; so the physics checks here compare elastic constants and gradients computed
with and without it. Plans are forced (``min_particles=0``) on small packings.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_packing

from tunable_solids import mechanics, multigrid
from tunable_solids.energy import hessian_operator, pair_stiffness
from tunable_solids.linalg import conjugate_gradients
from tunable_solids.parameters import theta_of
from tunable_solids.potentials import pair_parameters
from tunable_solids.studies.training import physics as T


@pytest.fixture(scope="module", params=["xplor2d_400", "soft3d_512"])
def packing(request):
    """Packings large enough for two cell levels (checked below)."""
    if request.param == "xplor2d_400":
        return make_packing("xplor2d_400", "harmonic_morse_xplor", 2, 400, [0.8, 1.0], 5.0,
                            0.1, 1, density=1.6)  # fmt: skip
    return make_packing("soft3d_512", "soft_sphere", 3, 512, [1.0, 1.4], 1.0, 0.0, 1, phi=0.70)


def _plan(s):
    rc = float(s.potential.cutoff(jnp.max(s.params.diameter)))
    return multigrid.plan(s.box, s.n, rc, min_particles=0)


def _aggregation(members: np.ndarray, n_coarse: int, dim: int) -> np.ndarray:
    """Dense piecewise-constant interpolation ``(n dim, n_coarse dim)``."""
    P = np.zeros((len(members), n_coarse))
    P[np.arange(len(members)), members] = 1.0
    return np.kron(P, np.eye(dim))


def test_plan_geometry():
    box = np.diag([40.0, 40.0])
    assert multigrid.plan(box, 1000, 2.0) is None  # below MIN_PARTICLES: plain CG
    assert multigrid.plan(np.diag([20.0] * 3), 8000, 1.4) is None  # 3D: plain CG by default
    p = multigrid.plan(box, 2048, 2.0)
    assert p.grids[0] == (20, 20) and p.reaches[0] == (1, 1)  # 5.1 particles per cell
    for fine, coarse in zip(p.grids, p.grids[1:], strict=False):
        assert all(f in (c, 2 * c) for f, c in zip(fine, coarse, strict=True))
    assert np.prod(p.grids[-1]) <= multigrid.COARSEST_CELLS
    # Denser: cells of half the range (reach 2), still at least rc / reach wide.
    p = multigrid.plan(box, 8000, 2.0)
    assert p.reaches[0] == (2, 2)
    assert all(40.0 / g >= 2.0 / r for g, r in zip(p.grids[0], p.reaches[0], strict=True))


def test_coarse_operators_are_galerkin_products(packing):
    """Level 1 equals ``P^T H P`` with the dense autodiff Hessian; every coarser level the
    Galerkin product of the one above (to round-off of summing the same blocks)."""
    s = packing
    p = _plan(s)
    assert len(p.grids) >= 2, p
    pp = pair_parameters(s.params, s.species, s.minimum.pairs.i, s.minimum.pairs.j)
    K = pair_stiffness(s.potential, s.R, jnp.asarray(s.box), s.minimum.pairs, pp)
    owner, ops, valid = multigrid.coarse_operators(p, s.R, jnp.asarray(s.box), s.minimum.pairs, K)
    assert bool(valid)
    A = s.hessian
    members = [np.asarray(owner)] + [m["parent"] for m in multigrid._level_maps(p)[:-1]]
    for op, up in zip(ops, members, strict=True):
        P = _aggregation(up, op.n_cells, s.dim)
        expected = P.T @ A @ P
        got = np.asarray(multigrid._dense(op.a, op.b, op.K, op.n_cells))
        scale = np.max(np.abs(expected))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * scale)
        A = got


def test_preconditioner_is_symmetric_and_psd(packing):
    """On the range of H, where CG's residuals live (orthogonal to translations and zero
    on rattlers): ``u.Mv = v.Mu`` to round-off, and ``w.Mw > 0``."""
    s = packing
    p = _plan(s)
    box = jnp.asarray(s.box)
    hvp = hessian_operator(s.potential, s.R, box, s.params, s.species, s.minimum.pairs)
    M = multigrid.hessian_preconditioner(p, hvp, s.potential, s.R, box, s.params, s.species,
                                         s.minimum.pairs)  # fmt: skip
    key = jax.random.split(jax.random.PRNGKey(3), 3)
    u, v, w = (hvp(jax.random.normal(k, s.R.shape)) for k in key)
    Mu, Mv = M(u), M(v)
    scale = float(jnp.sqrt(jnp.vdot(Mu, Mu) * jnp.vdot(v, v)))
    assert abs(float(jnp.vdot(v, Mu) - jnp.vdot(u, Mv))) <= 1e-12 * scale
    assert float(jnp.vdot(w, M(w))) > 0.0


def test_plan_too_small_for_the_range_falls_back_to_plain_cg(packing):
    """A plan made for a shorter range (cells narrower than rc / reach) is detected: the
    preconditioner is the identity, so CG still converges to the same answer."""
    s = packing
    rc = float(s.potential.cutoff(jnp.max(s.params.diameter)))
    p = multigrid.plan(s.box, s.n, 0.4 * rc, min_particles=0)
    box = jnp.asarray(s.box)
    hvp = hessian_operator(s.potential, s.R, box, s.params, s.species, s.minimum.pairs)
    M = multigrid.hessian_preconditioner(p, hvp, s.potential, s.R, box, s.params, s.species,
                                         s.minimum.pairs)  # fmt: skip
    r = jax.random.normal(jax.random.PRNGKey(0), s.R.shape)
    r = r - jnp.mean(r, axis=0)
    np.testing.assert_array_equal(M(r), r - jnp.mean(r, axis=0))


def _xi(s):
    _, xi = mechanics._affine_and_mixed(s.model, s.R, s.params)
    return xi


def test_preconditioned_cg_converges_faster_to_the_same_solution(packing):
    """Same stopping rule (relative residual 1e-12), far fewer iterations; the solutions
    agree on the range of H, compared through ``x.b`` (null-space parts do not enter)."""
    s = packing
    p = _plan(s)
    box = jnp.asarray(s.box)
    hvp = hessian_operator(s.potential, s.R, box, s.params, s.species, s.minimum.pairs)
    M = multigrid.hessian_preconditioner(p, hvp, s.potential, s.R, box, s.params, s.species,
                                         s.minimum.pairs)  # fmt: skip
    b = _xi(s)[0]
    plain = conjugate_gradients(hvp, b, 1e-12, 100_000)
    pre = conjugate_gradients(hvp, b, 1e-12, 100_000, M)
    assert float(plain.residual) <= 1e-12 and float(pre.residual) <= 1e-12
    assert 2 * int(pre.iterations) < int(plain.iterations), (pre.iterations, plain.iterations)
    e_plain, e_pre = float(jnp.vdot(plain.x, b)), float(jnp.vdot(pre.x, b))
    assert abs(e_pre - e_plain) <= 1e-9 * abs(e_plain)


def test_elastic_constants_and_gradient_unchanged(packing):
    """C (all components) and d nu / d theta agree with and without the preconditioner.

    Both runs solve to a relative residual of 1e-12; the quantities are quadratic forms
    at the solution (errors second order in the residual) or linear in it with condition
    numbers below 1e3 here, so 1e-8 relative to the largest entry is a safe bound.
    """
    s = packing
    p = _plan(s)
    plain = mechanics.elastic_constants(s.model, s.R, s.params)
    model = mechanics.Model(s.potential, jnp.asarray(s.box), s.species, s.minimum.pairs, p)
    pre = mechanics.elastic_constants(model, s.R, s.params)
    scale = float(jnp.max(jnp.abs(plain.voigt)))
    np.testing.assert_allclose(pre.voigt, plain.voigt, rtol=0, atol=1e-8 * scale)
    assert float(pre.residual) <= 1e-11

    if s.dim == 3:
        return  # nu of the isotropic fit is the 2D training property; C covers 3D
    names = ("D",)
    theta = theta_of(s.params, names)
    args = (theta, s.params, s.R, jnp.asarray(s.box), s.species, s.minimum.pairs)
    v0, J0 = T.property_jacobian(s.potential, ("nu",), names, 1e-12, *args)
    v1, J1 = T.property_jacobian(s.potential, ("nu",), names, 1e-12, *args, multigrid=p)
    np.testing.assert_allclose(v1, v0, rtol=1e-10)
    np.testing.assert_allclose(J1, J0, rtol=0, atol=1e-8 * float(jnp.max(jnp.abs(J0))))
    # Vectorized training (vmap + reverse mode through the preconditioned solves, with the
    # coarsest eigh looped over the batch): the same gradient per configuration, up to
    # the round-off of the vectorized arithmetic.
    batch = jax.tree.map(lambda x: jnp.stack([x, x]), (s.R, s.minimum.pairs))
    vb, Jb = T.property_jacobian_batch(s.potential, ("nu",), names, 1e-12, theta, s.params,
                                       batch[0], jnp.asarray(s.box), s.species, batch[1],
                                       multigrid=p)  # fmt: skip
    for k in range(2):
        np.testing.assert_allclose(vb[k], v1, rtol=1e-12)
        np.testing.assert_allclose(Jb[k], J1, rtol=0, atol=1e-12 * float(jnp.max(jnp.abs(J1))))


@pytest.mark.parametrize("dim", [2, 3])
def test_block_eigendecomposition_matches_lapack(dim):
    """The Jacobi eigen-decomposition of the diagonal blocks (used instead of the batched
    LAPACK kernel) reconstructs random, zero, rank-one and degenerate blocks to round-off
    (1e-14 of the largest entry: a few eps per rotation) with orthonormal vectors, and its
    eigenvalues equal numpy's."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, dim, dim))
    D = X @ X.transpose(0, 2, 1)
    D[0] = 0.0
    D[1] = np.outer(np.eye(dim)[0], np.eye(dim)[0])
    D[2] = np.eye(dim)
    w, V = multigrid._eigh_blocks(jnp.asarray(D))
    scale = np.max(np.abs(D))
    rec = np.einsum("nab,nb,ncb->nac", V, w, V)
    assert np.max(np.abs(rec - D)) <= 1e-14 * scale
    assert np.max(np.abs(np.einsum("nba,nbc->nac", V, V) - np.eye(dim))) <= 1e-14
    assert np.max(np.abs(np.sort(np.asarray(w), axis=1) - np.linalg.eigvalsh(D))) <= 1e-14 * scale


def test_vmapped_preconditioner_loops_over_the_coarsest_eigh(packing):
    """Under ``vmap`` (vectorized training) the preconditioner equals the unbatched one per
    configuration, and its coarsest ``eigh`` stays one matrix per LAPACK call (the batched
    CPU kernel can deadlock, see ``multigrid._eigh_blocks``)."""
    s = packing
    p = _plan(s)
    box = jnp.asarray(s.box)
    pairs = s.minimum.pairs
    # Two configurations: the minimum and a slightly displaced copy (same pair list).
    Rs = jnp.stack([s.R, s.R + 1e-3 * jax.random.normal(jax.random.PRNGKey(5), s.R.shape)])
    rs = jax.random.normal(jax.random.PRNGKey(6), Rs.shape)

    def apply(R, r):
        hvp = hessian_operator(s.potential, R, box, s.params, s.species, pairs)
        M = multigrid.hessian_preconditioner(p, hvp, s.potential, R, box, s.params, s.species,
                                             pairs)  # fmt: skip
        return M(r)

    batched = jax.jit(jax.vmap(apply))(Rs, rs)
    for k in range(2):
        one = jax.jit(apply)(Rs[k], rs[k])
        scale = float(jnp.max(jnp.abs(one)))
        np.testing.assert_allclose(batched[k], one, rtol=0, atol=1e-12 * scale)
    jaxpr = str(jax.make_jaxpr(jax.vmap(apply))(Rs, rs))
    eigh_lines = [line for line in jaxpr.splitlines() if "eigh" in line]
    assert eigh_lines, "the coarsest level no longer uses eigh: update this test"
    assert all("f64[2," not in line for line in eigh_lines), eigh_lines
