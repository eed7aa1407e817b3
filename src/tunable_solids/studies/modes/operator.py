"""The bond-space operator ``A = S M^+ S^T`` of a state and its modes.

"Bond-space operator disentangles quasi-localized and phononic modes in structural glasses"
(Eqs. 1-7, section III). Conventions:

- A :class:`BondNetwork` is the rattler-free part of a state: ``n`` particles, ``N_b`` bonds
  (the interacting pairs among them), each bond ``alpha = (i, j)`` with unit vector
  ``n_alpha = (R_i - R_j) / r`` (minimum image) and Hessian block ``K = a n n^T + b I``
  (``a = u'' - u'/r``, ``b = u'/r``: the stress term is included).
- ``S`` is the ``N_b x n d`` compatibility matrix, ``(S u)_alpha = n_alpha . (u_i - u_j)``
  (the extension of bond alpha); ``S^T f`` the net particle forces of bond forces ``f``.
- ``M`` is the Hessian of the network, ``M^+`` its pseudo-inverse without the ``d`` global
  translations. Fields in particle space are ``(n, d)`` arrays.

Three routes to the spectrum of ``A``:

- dense (:func:`bond_spectrum_dense`): the non-zero eigenvalues of ``A`` are those of the
  generalized problem ``S^T S u = lambda M u`` (``n d - d`` of them), solved by a Cholesky
  factor of ``M`` plus a translation shift; the ``N_b x N_b`` matrix is never formed.
  From a solution normalized as ``u^T M u = 1``: bond force mode ``f = S u / sqrt(lambda)``
  (unit), particle force mode ``F = S^T f = sqrt(lambda) M u``, displacement mode
  ``D = M^+ S^T f = sqrt(lambda) u``.
- matrix-free (:func:`top_bond_modes`): the top ``k`` eigenpairs of ``A`` by LOBPCG, each
  product with ``A`` one conjugate-gradient solve of ``M``, so no ``(n d)^2`` array exists
  (traceable: runs on a GPU);
- sparse (:func:`top_bond_modes_sparse`): the top ``k`` by ARPACK (Lanczos), each product
  with ``A`` two triangular solves with a sparse LU factor of ``M`` with one particle pinned
  (the solution then differs from ``M^+ b`` by a translation, which is removed). On a CPU
  this is the fastest route for the tail (benchmarks/bond_operator.py).

The zero modes of ``A`` are the states of self-stress; for a rigid network there are
``N_b - (n d - d)`` of them (:func:`self_stress_count`).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ...energy import stiffness_coefficients
from ...linalg import conjugate_gradients, remove_translation
from ...mechanics import rattlers
from ...potentials import pair_parameters
from ...space import Pairs, pair_vectors

Array = jax.Array


class BondNetwork(NamedTuple):
    """Rattler-free bond network of a state (see the module docstring for conventions).

    R:     ``(n, d)`` positions of the kept particles; box ``(d, d)``.
    i, j:  ``(N_b,)`` bond endpoints, indices into ``R``.
    unit:  ``(N_b, d)`` unit vectors ``(R_i - R_j) / r``.
    a, b:  ``(N_b,)`` Hessian coefficients of each bond, ``K = a n n^T + b I``.
    kept:  ``(N,)`` bool over the original particles: not a rattler.
    """

    R: Array
    box: Array
    i: Array
    j: Array
    unit: Array
    a: Array
    b: Array
    kept: np.ndarray

    @property
    def n_bonds(self) -> int:
        return int(self.i.shape[0])

    @property
    def n_rattlers(self) -> int:
        return int(np.sum(~self.kept))


def bond_network(potential, R, box, params, species, pairs: Pairs) -> BondNetwork:
    """The bonds (interacting pairs) of a state at a minimum, rattlers removed (host side).

    ``pairs`` must hold every interacting pair (e.g. ``preparation.interacting_pairs``);
    a pair is a bond while ``r`` is below the potential's contact distance. Rattlers are
    found iteratively (:func:`mechanics.rattlers`) and removed with all their bonds.
    """
    R = jnp.asarray(R)
    box = jnp.asarray(box)
    n, dim = R.shape
    pp = pair_parameters(params, species, pairs.i, pairs.j)
    r = jnp.linalg.norm(pair_vectors(R, box, pairs), axis=-1)
    contact = np.asarray(pairs.mask & (r < potential.contact_distance(pp.sigma)))
    i, j = np.asarray(pairs.i), np.asarray(pairs.j)
    rattler = rattlers(n, dim, i, j, contact, potential.attractive)
    keep_bond = contact & ~rattler[i] & ~rattler[j]
    new_index = np.cumsum(~rattler) - 1
    sel = np.flatnonzero(keep_bond)
    bonds = Pairs(jnp.asarray(i[sel]), jnp.asarray(j[sel]), jnp.ones(len(sel), bool))
    a, b, unit = stiffness_coefficients(
        potential, R, box, bonds, jax.tree_util.tree_map(lambda x: x[sel], pp)
    )
    kept = ~rattler
    return BondNetwork(
        R[kept],
        box,
        jnp.asarray(new_index[i[sel]], jnp.int32),
        jnp.asarray(new_index[j[sel]], jnp.int32),
        unit,
        a,
        b,
        kept,
    )


def self_stress_count(net: BondNetwork) -> int:
    """Expected number of zero modes of ``A`` of a rigid network: ``N_b - (n d - d)``."""
    n, dim = net.R.shape
    return net.n_bonds - (n * dim - dim)


def compatibility_apply(net: BondNetwork, u: Array) -> Array:
    """``S u``: bond extensions ``(N_b,)`` of particle displacements ``u`` ``(n, d)``."""
    return jnp.sum(net.unit * (u[net.i] - u[net.j]), axis=-1)


def equilibrium_apply(net: BondNetwork, f: Array) -> Array:
    """``S^T f``: net particle forces ``(n, d)`` of bond forces ``f`` ``(N_b,)``."""
    t = f[:, None] * net.unit
    return jnp.zeros_like(net.R).at[net.i].add(t).at[net.j].add(-t)


def compatibility_matrix(net: BondNetwork) -> Array:
    """Dense ``S``, ``(N_b, n d)``."""
    n, dim = net.R.shape
    rows = jnp.arange(net.n_bonds)
    S = jnp.zeros((net.n_bonds, n, dim), net.R.dtype)
    S = S.at[rows, net.i].add(net.unit).at[rows, net.j].add(-net.unit)
    return S.reshape(net.n_bonds, n * dim)


def hessian_apply(net: BondNetwork, v: Array) -> Array:
    """``M v`` for ``v`` of shape ``(n, d)``."""
    dv = v[net.i] - v[net.j]
    t = (net.a * jnp.sum(net.unit * dv, axis=-1))[:, None] * net.unit + net.b[:, None] * dv
    return jnp.zeros_like(v).at[net.i].add(t).at[net.j].add(-t)


def hessian_matrix(net: BondNetwork) -> Array:
    """Dense Hessian ``M``, ``(n d, n d)``, assembled from the bond blocks."""
    n, dim = net.R.shape
    eye = jnp.eye(dim, dtype=net.R.dtype)
    K = net.a[:, None, None] * net.unit[:, :, None] * net.unit[:, None, :]
    K = K + net.b[:, None, None] * eye
    H = jnp.zeros((n, dim, n, dim), net.R.dtype)
    H = H.at[net.i, :, net.i, :].add(K).at[net.j, :, net.j, :].add(K)
    H = H.at[net.i, :, net.j, :].add(-K).at[net.j, :, net.i, :].add(-K)
    return H.reshape(n * dim, n * dim)


def bond_operator_matrix(net: BondNetwork, rcond: float = 1e-10) -> Array:
    """Dense ``A = S M^+ S^T`` ``(N_b, N_b)`` by an eigendecomposition of ``M`` (small
    systems and tests only: the independent route to :func:`bond_spectrum_dense`)."""
    S = compatibility_matrix(net)
    w, U = jnp.linalg.eigh(hessian_matrix(net))
    inv = jnp.where(jnp.abs(w) > rcond * jnp.max(jnp.abs(w)), 1.0 / w, 0.0)
    SU = S @ U
    A = (SU * inv) @ SU.T
    return 0.5 * (A + A.T)


class BondSpectrum(NamedTuple):
    """All non-zero eigenvalues of ``A`` and their displacement solutions.

    eigenvalues:      ``(m,)``, ``m = n d - d``, in descending order.
    u:                ``(m, n, d)`` solutions of ``S^T S u = lambda M u`` with ``u^T M u = 1``.
    translation_eigs: ``(d,)`` the dropped eigenvalues of the translations (~0, a check).
    """

    eigenvalues: Array
    u: Array
    translation_eigs: Array


@jax.jit
def bond_spectrum_dense(net: BondNetwork) -> BondSpectrum:
    """Non-zero spectrum of ``A`` from the reduced problem ``S^T S u = lambda M u``.

    ``M`` is made positive definite by adding ``c T T^T`` (``T`` the translations, ``c``
    the mean diagonal of ``M``): this changes nothing on the complement of the translations,
    and the translations become eigenvectors with eigenvalue 0 (``S T = 0``), which are the
    ``d`` smallest and are dropped. Needs ``M`` positive definite there: a stable state.
    """
    n, dim = net.R.shape
    H = hessian_matrix(net)
    # c T T^T has entries c delta_ab / n: added by broadcasting (an explicit T @ T.T of
    # constants is constant-folded by XLA at compile time, 20 s at N d = 6000).
    c = jnp.mean(jnp.diagonal(H)) / n
    eye = jnp.eye(dim, dtype=H.dtype)
    H = (H.reshape(n, dim, n, dim) + c * eye[None, :, None, :]).reshape(n * dim, n * dim)
    S = compatibility_matrix(net)
    B = S.T @ S
    L = jnp.linalg.cholesky(H)
    X = jax.scipy.linalg.solve_triangular(L, B, lower=True)
    C = jax.scipy.linalg.solve_triangular(L, X.T, lower=True)
    w, Y = jnp.linalg.eigh(0.5 * (C + C.T))
    U = jax.scipy.linalg.solve_triangular(L.T, Y, lower=False)
    order = jnp.arange(n * dim - 1, dim - 1, -1)
    return BondSpectrum(w[order], U[:, order].T.reshape(-1, n, dim), w[:dim])


class BondModes(NamedTuple):
    """Modes of ``A`` for eigenvalues ``lambda`` ``(k,)``.

    f: ``(k, N_b)`` unit bond force modes; F: ``(k, n, d)`` particle force modes ``S^T f``;
    D: ``(k, n, d)`` displacement modes ``M^+ S^T f``.
    """

    eigenvalues: Array
    f: Array
    F: Array
    D: Array


def modes_from_spectrum(net: BondNetwork, spectrum: BondSpectrum, which: Array) -> BondModes:
    """:class:`BondModes` of the eigenvalues at indices ``which`` of a dense spectrum."""
    lam = spectrum.eigenvalues[which]
    u = spectrum.u[which]
    s = jnp.sqrt(lam)
    f = jax.vmap(partial(compatibility_apply, net))(u) / s[:, None]
    F = s[:, None, None] * jax.vmap(partial(hessian_apply, net))(u)
    return BondModes(lam, f, F, s[:, None, None] * u)


def force_participation(F: Array) -> Array:
    """Participation ``e(F) = (sum_i F_i.F_i)^2 / (n sum_i (F_i.F_i)^2)`` (paper Eq. 12) of
    particle fields ``(..., n, d)``; ``n e`` is the number of participating particles."""
    f2 = jnp.sum(F**2, axis=-1)
    return jnp.sum(f2, axis=-1) ** 2 / (F.shape[-2] * jnp.sum(f2**2, axis=-1))


@jax.jit
def dense_force_participation(net: BondNetwork, spectrum: BondSpectrum) -> Array:
    """``e(F)`` ``(m,)`` of every mode of a dense spectrum, without storing the ``F`` fields:
    ``F = sqrt(lambda) M u`` mode by mode."""

    def one(lam, u):
        return force_participation(jnp.sqrt(lam) * hessian_apply(net, u))

    return jax.lax.map(lambda x: one(*x), (spectrum.eigenvalues, spectrum.u), batch_size=64)


class MatrixFreeModes(NamedTuple):
    """Top eigenpairs of ``A`` by LOBPCG: ``eigenvalues`` ``(k,)`` descending, unit bond
    force modes ``f`` ``(k, N_b)``, LOBPCG ``iterations``, the largest CG residual of the
    last products (``cg_residual``) and the largest eigen-residual ``|A f - lambda f| /
    lambda`` (``residual``) measured after the run."""

    eigenvalues: Array
    f: Array
    iterations: Array
    cg_residual: Array
    residual: Array


def inverse_hessian_apply(
    net: BondNetwork, rhs: Array, tol: float, max_iter: int, precond=None
) -> tuple[Array, Array]:
    """``M^+ rhs`` for a translation-free ``rhs`` ``(n, d)`` by (preconditioned) CG; returns
    the solution and the relative residual."""
    res = conjugate_gradients(partial(hessian_apply, net), rhs, tol, max_iter, precond)
    return res.x, res.residual


def bond_operator_apply(net: BondNetwork, f: Array, tol: float, max_iter: int, precond=None):
    """``A f = S M^+ S^T f`` for ``f`` ``(N_b,)``; returns the product and the CG residual."""
    x, res = inverse_hessian_apply(net, equilibrium_apply(net, f), tol, max_iter, precond)
    return compatibility_apply(net, remove_translation(x)), res


@partial(jax.jit, static_argnames=("k", "max_lobpcg", "max_cg", "precond"))
def top_bond_modes(
    net: BondNetwork,
    key: Array,
    k: int,
    cg_tol: float = 1e-12,
    max_cg: int = 20_000,
    max_lobpcg: int = 400,
    lobpcg_tol: float | None = None,
    precond=None,
) -> MatrixFreeModes:
    """Largest ``k`` eigenpairs of ``A`` without forming ``A`` or ``M`` (needs ``5 k < N_b``).

    Every product with ``A`` is a CG solve of ``M`` to relative residual ``cg_tol``
    (``precond``: an optional hashable preconditioner of ``M``, e.g. the multigrid V-cycle in
    2D). The start block is random (``key``).
    """
    from jax.experimental.sparse.linalg import lobpcg_standard

    def apply_block(X):  # X: (N_b, k)
        Y, _ = jax.vmap(lambda f: bond_operator_apply(net, f, cg_tol, max_cg, precond))(X.T)
        return Y.T

    X0 = jax.random.normal(key, (net.n_bonds, k), dtype=net.R.dtype)
    theta, U, it = lobpcg_standard(apply_block, X0, m=max_lobpcg, tol=lobpcg_tol)
    AU, cg_res = jax.vmap(lambda f: bond_operator_apply(net, f, cg_tol, max_cg, precond))(U.T)
    resid = jnp.linalg.norm(AU - theta[:, None] * U.T, axis=1) / theta
    order = jnp.argsort(-theta)
    return MatrixFreeModes(theta[order], U.T[order], it, jnp.max(cg_res), jnp.max(resid))


def modes_from_bond_forces(
    net: BondNetwork, eigenvalues: Array, f: Array, tol: float = 1e-12, max_iter: int = 20_000
) -> BondModes:
    """:class:`BondModes` from unit bond force modes (matrix-free: ``D`` by CG)."""
    F = jax.vmap(partial(equilibrium_apply, net))(f)
    D = jax.vmap(lambda x: inverse_hessian_apply(net, x, tol, max_iter)[0])(F)
    return BondModes(eigenvalues, f, F, D)


def hessian_sparse(net: BondNetwork) -> sp.csr_matrix:
    """Sparse Hessian ``M`` ``(n d, n d)`` from the bond blocks (host, float64)."""
    n, dim = net.R.shape
    a, b, u = np.asarray(net.a), np.asarray(net.b), np.asarray(net.unit)
    K = a[:, None, None] * u[:, :, None] * u[:, None, :] + b[:, None, None] * np.eye(dim)
    i, j = np.asarray(net.i), np.asarray(net.j)
    ra = np.arange(dim)
    rows, cols, vals = [], [], []
    for p, q, sign in ((i, i, 1.0), (j, j, 1.0), (i, j, -1.0), (j, i, -1.0)):
        rows.append((p[:, None, None] * dim + ra[None, :, None]) + 0 * ra[None, None, :])
        cols.append((q[:, None, None] * dim + ra[None, None, :]) + 0 * ra[None, :, None])
        vals.append(sign * K)
    data = (
        np.concatenate([v.ravel() for v in vals]),
        (np.concatenate([r.ravel() for r in rows]), np.concatenate([c.ravel() for c in cols])),
    )
    return sp.csr_matrix(data, shape=(n * dim, n * dim))


def compatibility_sparse(net: BondNetwork) -> sp.csr_matrix:
    """Sparse ``S`` ``(N_b, n d)`` (host, float64)."""
    n, dim = net.R.shape
    u = np.asarray(net.unit)
    nb = net.n_bonds
    rows = np.repeat(np.arange(nb), 2 * dim)
    cols = np.concatenate(
        [np.asarray(net.i)[:, None] * dim + np.arange(dim), np.asarray(net.j)[:, None] * dim
         + np.arange(dim)], axis=1
    ).ravel()  # fmt: skip
    vals = np.concatenate([u, -u], axis=1).ravel()
    return sp.csr_matrix((vals, (rows, cols)), shape=(nb, n * dim))


class SparseTopModes(NamedTuple):
    """Top eigenpairs of ``A`` by the sparse route: ``eigenvalues`` ``(k,)`` descending, unit
    bond force modes ``f`` ``(k, N_b)`` and the largest ``|A f - lambda f| / lambda``."""

    eigenvalues: np.ndarray
    f: np.ndarray
    residual: float


def top_bond_modes_sparse(net: BondNetwork, k: int, tol: float = 0.0, seed: int = 0):
    """Largest ``k`` eigenpairs of ``A`` by ARPACK with a sparse LU factor of ``M`` (one
    particle pinned: ``M`` must have no zero modes but the translations, i.e. rattlers
    removed and a stable state). ``tol`` is ARPACK's (0: machine precision)."""
    n, dim = net.R.shape
    H = hessian_sparse(net)
    free = np.arange(dim, n * dim)  # particle 0 pinned
    lu = spla.splu(H[free][:, free].tocsc())
    S = compatibility_sparse(net)
    St = S.T.tocsr()

    def apply(f):
        rhs = St @ np.ravel(f)
        x = np.zeros(n * dim)
        x[free] = lu.solve(rhs[free])
        x = x.reshape(n, dim)
        return S @ (x - x.mean(axis=0)).ravel()

    A = spla.LinearOperator((net.n_bonds, net.n_bonds), matvec=apply, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(net.n_bonds)
    w, V = spla.eigsh(A, k=k, which="LA", tol=tol, v0=v0)
    order = np.argsort(-w)
    w, V = w[order], V[:, order]
    AV = np.stack([apply(V[:, q]) for q in range(k)], axis=1)
    resid = float(np.max(np.linalg.norm(AV - V * w, axis=0) / w))
    return SparseTopModes(w, V.T, resid)
