"""Mechanical response at an energy minimum: stress, elastic constants, spectra, bonds.

Conventions
-----------
- Strain: the box and all pair vectors deform as ``dr -> (I + eps) dr`` with symmetric
  ``eps``. Energy expansion ``dU / V = sigma_ij eps_ij + 1/2 C_ijkl eps_ij eps_kl``, with
  ``C`` the *relaxed* (non-affine) second derivative of the energy at fixed particle number.
- Voigt order ``(xx, yy, xy)`` in 2D and ``(xx, yy, zz, yz, xz, xy)`` in 3D with
  engineering shear strains (``eps_I = 2 eps_ab`` for shear), so ``C_IJ = C_ijkl`` (plain
  Voigt, no Mandel sqrt(2) factors). The independent constants are the upper triangle of
  the symmetric Voigt matrix read row by row: 6 in 2D, 21 in 3D.
- Stress is positive in tension; pressure ``p = -tr(sigma) / d``.
- Isotropic projections: ``B = sum_ij C_iijj / d^2`` and
  ``G = (sum_ij C_ijij - sum_ij C_iijj / d) / (d^2 + d - 2)``; Poisson's ratio
  ``(B - G)/(B + G)`` in 2D and ``(3B - 2G) / (2 (3B + G))`` in 3D.
- Unit masses: vibrational frequencies are square roots of Hessian eigenvalues.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .energy import energy, hessian_operator, pair_energies, strained
from .general import require_pair_potential
from .linalg import eigvalsh, hessian_vp, relative_residual, solve_psd
from .multigrid import Plan, hessian_preconditioner
from .space import Pairs, box_volume, pair_vectors

Array = jax.Array

VOIGT = {2: ((0, 0), (1, 1), (0, 1)), 3: ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))}


def n_voigt(dim: int) -> int:
    return len(VOIGT[dim])


def voigt_labels(dim: int) -> list[str]:
    axes = "xyz"
    return [axes[a] + axes[b] for a, b in VOIGT[dim]]


def independent_labels(dim: int) -> list[str]:
    """Names ``C_xxyy`` ... of the independent constants, in :func:`independent_constants` order."""
    lab = voigt_labels(dim)
    n = len(lab)
    return [f"C_{lab[a]}{lab[b]}" for a in range(n) for b in range(a, n)]


def voigt_to_tensor(e: Array, dim: int) -> Array:
    """Symmetric ``(d, d)`` strain from Voigt components (engineering shear)."""
    eps = jnp.zeros((dim, dim), e.dtype)
    for idx, (a, b) in enumerate(VOIGT[dim]):
        if a == b:
            eps = eps.at[a, a].set(e[idx])
        else:
            eps = eps.at[a, b].set(0.5 * e[idx]).at[b, a].set(0.5 * e[idx])
    return eps


def tensor_to_voigt(eps: np.ndarray, dim: int) -> np.ndarray:
    """Voigt components (engineering shear) of a symmetric strain tensor."""
    return np.array([eps[a, b] if a == b else 2.0 * eps[a, b] for a, b in VOIGT[dim]])


def stress_voigt_to_tensor(s: Array, dim: int) -> Array:
    """Symmetric ``(d, d)`` stress from Voigt components (no factor 2 on shear)."""
    sig = jnp.zeros((dim, dim), s.dtype)
    for idx, (a, b) in enumerate(VOIGT[dim]):
        sig = sig.at[a, b].set(s[idx]).at[b, a].set(s[idx])
    return sig


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["box", "species", "pairs"],
    meta_fields=["potential", "multigrid"],
)
@dataclass(frozen=True)
class Model:
    """Everything fixed while a state is analysed (a pytree; ``potential`` and
    ``multigrid`` are static).

    potential: a pair potential or a :class:`general.GeneralEnergy` (then ``species`` is
    None and ``pairs`` its neighbor state, e.g. ``Minimum.pairs``; no multigrid);
    box ``(d, d)``; species ``(N,)`` int or None (networks); pairs valid at the state;
    multigrid: plan of the CG preconditioner (:func:`multigrid.plan_for`; None: plain CG).
    """

    potential: object
    box: Array
    species: Array | None
    pairs: Pairs
    multigrid: Plan | None = None


def _energy_of_voigt(model: Model, R: Array, params, e: Array) -> Array:
    dim = R.shape[1]
    return energy(
        model.potential, R, model.box, params, model.species, model.pairs, voigt_to_tensor(e, dim)
    )


@jax.jit
def stress(model: Model, R: Array, params) -> Array:
    """Stress tensor ``(d, d)``: ``sigma = (1/V) dE/d eps`` at the given positions."""
    dim = R.shape[1]
    g = jax.grad(partial(_energy_of_voigt, model, R, params))(jnp.zeros(n_voigt(dim)))
    return stress_voigt_to_tensor(g, dim) / box_volume(model.box)


@jax.jit
def pressure(model: Model, R: Array, params) -> Array:
    """Pressure ``-tr(sigma) / d``."""
    return -jnp.trace(stress(model, R, params)) / R.shape[1]


def _affine_and_mixed(model: Model, R: Array, params):
    """Affine second derivative ``(nv, nv)`` and mixed term Xi ``(nv, N, d)`` of the energy."""
    nv = n_voigt(R.shape[1])
    e0 = jnp.zeros(nv)
    f = partial(_energy_of_voigt, model)
    affine = jax.hessian(f, argnums=2)(R, params, e0)
    mixed = jax.jacfwd(jax.grad(f, argnums=0), argnums=2)(R, params, e0)
    return affine, jnp.moveaxis(mixed, -1, 0)


class Elasticity(NamedTuple):
    """Relaxed elastic constants and what went into them.

    voigt:      ``(nv, nv)`` relaxed Voigt matrix C_IJ.
    affine:     ``(nv, nv)`` Born (affine) part.
    nonaffine:  ``(nv, N, d)`` non-affine velocities dR/d eps_I (reference frame).
    residual:   max relative CG residual of the non-affine solves.
    """

    voigt: Array
    affine: Array
    nonaffine: Array
    residual: Array


def _hessian_times(model: Model, R: Array, params, v: Array) -> Array:
    """``H(model, R, params) v`` as a function of all three (for its derivative)."""
    return hessian_operator(model.potential, R, model.box, params, model.species, model.pairs)(v)


@jax.custom_jvp
def _relaxation(model: Model, R: Array, params, xi: Array, x: Array) -> Array:
    """Non-affine correction ``Xi^T H^+ Xi`` ``(nv, nv)`` given the solves ``x = H^+ Xi``.

    Only valid with ``x`` from those solves. Its derivative uses the solutions instead of
    differentiating them: ``dQ_IJ = dXi_I.x_J + x_I.dXi_J - x_I.dH x_J``, so reverse mode
    costs no linear solve beyond the forward ones (differentiating through ``x`` would add
    one per strain component). Higher orders stay exact, since this rule is differentiated
    with ``x``'s own (implicit) derivatives.
    """
    return jnp.einsum("iad,jad->ij", xi, x)


@_relaxation.defjvp
def _relaxation_jvp(primals, tangents):
    model, R, params, xi, x = primals
    d_model, dR, d_params, d_xi, _ = tangents  # x's tangent is accounted for analytically

    def dH_times(v):
        return jax.jvp(
            lambda m, r, p: _hessian_times(m, r, p, v), (model, R, params), (d_model, dR, d_params)
        )[1]

    dHx = jax.lax.map(dH_times, x)
    cross = jnp.einsum("iad,jad->ij", d_xi, x)
    return (
        _relaxation(model, R, params, xi, x),
        cross + cross.T - jnp.einsum("iad,jad->ij", x, dHx),
    )


@partial(jax.jit, static_argnames=("cg_tol", "cg_max_iter"))
def elastic_constants(
    model: Model, R: Array, params, cg_tol: float = 1e-12, cg_max_iter: int = 100_000
) -> Elasticity:
    """Relaxed elastic constants, matrix-free: ``C = (A - Xi^T H^+ Xi) / V``.

    Differentiable in ``params`` and ``R``; the solves differentiate implicitly.
    """
    affine, xi = _affine_and_mixed(model, R, params)
    hvp = hessian_operator(model.potential, R, model.box, params, model.species, model.pairs)
    precond = hessian_preconditioner(
        model.multigrid, hvp, model.potential, R, model.box, params, model.species, model.pairs
    )
    solve = partial(solve_psd, hvp, tol=cg_tol, max_iter=cg_max_iter, precond=precond)
    x = jax.lax.map(solve, xi)
    # The residual is checked with the autodiff Hessian: independent of the solver's operator.
    check = hessian_vp(
        lambda x: energy(model.potential, x, model.box, params, model.species, model.pairs), R
    )
    res = jnp.max(jax.vmap(partial(relative_residual, check))(jax.lax.stop_gradient(x), xi))
    correction = _relaxation(model, R, params, xi, x)
    V = box_volume(model.box)
    c = (affine - correction) / V
    return Elasticity(0.5 * (c + c.T), affine / V, -x, res)


@jax.jit
def hessian_matrix(model: Model, R: Array, params) -> Array:
    """Dense Hessian ``(N d, N d)`` (for spectra and small-N cross-checks only)."""
    n, dim = R.shape
    f = lambda x: energy(
        model.potential, x.reshape(n, dim), model.box, params, model.species, model.pairs
    )
    return jax.hessian(f)(R.reshape(-1))


@partial(jax.jit, static_argnames=("rcond",))
def elastic_constants_dense(model: Model, R: Array, params, rcond: float = 1e-10) -> Array:
    """Relaxed Voigt matrix via a dense pseudo-inverse of the Hessian (independent route)."""
    affine, xi = _affine_and_mixed(model, R, params)
    H = hessian_matrix(model, R, params)
    w, U = jnp.linalg.eigh(H)
    inv = jnp.where(jnp.abs(w) > rcond * jnp.max(jnp.abs(w)), 1.0 / w, 0.0)
    X = xi.reshape(xi.shape[0], -1) @ U
    return (affine - (X * inv) @ X.T) / box_volume(model.box)


def independent_constants(voigt: Array) -> Array:
    """Upper triangle of the Voigt matrix, row by row: ``(6,)`` in 2D, ``(21,)`` in 3D."""
    i, j = np.triu_indices(voigt.shape[-1])
    return voigt[..., i, j]


def elastic_stability(voigt: Array, dim: int) -> Array:
    """Smallest eigenvalue of the stiffness in Mandel form (shear rows/columns times sqrt 2).

    Positive means the state is stable against every homogeneous deformation of the box;
    small jammed packings near unjamming can be unstable to shear (negative G).
    """
    w = jnp.concatenate([jnp.ones(dim), jnp.full(voigt.shape[-1] - dim, jnp.sqrt(2.0))])
    return jnp.linalg.eigvalsh(voigt * w[:, None] * w[None, :])[0]


def isotropic_moduli(voigt: Array, dim: int) -> tuple[Array, Array, Array]:
    """Bulk modulus B, shear modulus G and Poisson's ratio nu from a Voigt matrix."""
    normal = voigt[:dim, :dim]
    shear_diag = jnp.diagonal(voigt)[dim:]
    sum_iijj = jnp.sum(normal)
    sum_ijij = jnp.sum(jnp.diagonal(normal)) + 2.0 * jnp.sum(shear_diag)
    B = sum_iijj / dim**2
    G = (sum_ijij - sum_iijj / dim) / (dim**2 + dim - 2)
    nu = poisson_ratio(B, G, dim)
    return B, G, nu


def poisson_ratio(B: Array, G: Array, dim: int) -> Array:
    if dim == 2:
        return (B - G) / (B + G)
    return (3.0 * B - 2.0 * G) / (2.0 * (3.0 * B + G))


@jax.jit
def contact_mask(model: Model, R: Array, params) -> Array:
    """Pair slots in contact (interacting: ``r`` below the potential's contact distance)."""
    from .potentials import pair_parameters

    require_pair_potential(model.potential, "contact_mask")

    dr = pair_vectors(R, model.box, model.pairs)
    r = jnp.linalg.norm(dr, axis=-1)
    pp = pair_parameters(params, model.species, model.pairs.i, model.pairs.j)
    return model.pairs.mask & (r < model.potential.contact_distance(pp.sigma))


def rattlers(
    n: int, dim: int, i: np.ndarray, j: np.ndarray, contact: np.ndarray, attractive: bool = False
) -> np.ndarray:
    """Rattler mask ``(N,)``, found iteratively (removing a rattler can make its neighbours
    rattlers).

    Purely repulsive contacts can only hold a particle with at least ``d + 1`` of them, so a
    particle with fewer is a rattler. Attractive (tensile) bonds can hold a particle with fewer
    (``attractive=True``): then only particles without any contact are rattlers, which are
    exactly the particles whose Hessian rows vanish.
    """
    i, j, contact = np.asarray(i), np.asarray(j), np.asarray(contact, bool)
    needed = 1 if attractive else dim + 1
    rattler = np.zeros(n, bool)
    while True:
        live = contact & ~rattler[i] & ~rattler[j]
        z = np.bincount(i[live], minlength=n) + np.bincount(j[live], minlength=n)
        new = ~rattler & (z < needed)
        if not new.any():
            return rattler
        rattler |= new


class Spectrum(NamedTuple):
    """Low vibrational spectrum with zero modes removed.

    frequencies:      ``(n,)`` lowest non-zero frequencies (negative sign marks an unstable
                      mode: ``sign(lambda) sqrt(|lambda|)``).
    translation_eigs: ``(d,)`` eigenvalues dropped as global translations (should be ~0).
    min_gap:          smallest relative spacing between consecutive returned frequencies
                      (near 0 means degenerate modes, whose derivatives are ill-defined).
    """

    frequencies: Array
    translation_eigs: Array
    min_gap: Array


@partial(jax.jit, static_argnames=("n_modes",))
def vibrational_spectrum(model: Model, R: Array, params, rattler: Array, n_modes: int) -> Spectrum:
    """Lowest ``n_modes`` non-zero frequencies of the non-rattler subsystem.

    Rattler coordinates are shifted out of the low spectrum by a large diagonal constant
    (their Hessian rows vanish, so this changes no other eigenvalue); the ``d`` lowest
    remaining eigenvalues are the global translations and are dropped.
    """
    n, dim = R.shape
    H = hessian_matrix(model, R, params)
    # Gershgorin-style bound: far above every physical eigenvalue.
    shift = jax.lax.stop_gradient(10.0 * (jnp.max(jnp.sum(jnp.abs(H), axis=1)) + 1.0))
    diag = jnp.repeat(jnp.asarray(rattler, H.dtype), dim) * shift
    w = eigvalsh(H + jnp.diag(diag))
    trans = w[:dim]
    low = w[dim : dim + n_modes]
    freqs = jnp.sign(low) * jnp.sqrt(jnp.abs(low))
    gaps = jnp.diff(freqs) / jnp.maximum(jnp.abs(freqs[1:]), 1e-300)
    return Spectrum(freqs, trans, jnp.min(gaps) if n_modes > 1 else jnp.asarray(jnp.inf))


@jax.jit
def bond_contributions(model: Model, R: Array, params, nonaffine: Array) -> tuple[Array, Array]:
    """Per-pair contributions ``K_p``, ``G_p``, each ``(P,)``: ``sum K_p = B``, ``sum G_p = G``.

    ``K_p`` (``G_p``) is the second derivative of pair energy ``p`` along the relaxed
    deformation path for a volumetric strain (averaged over an orthonormal basis of
    traceless strains), normalised as B (G). ``nonaffine`` is ``Elasticity.nonaffine``.
    The sums are exact because the force-weighted curvature of the path cancels at a minimum.
    """
    require_pair_potential(model.potential, "bond_contributions")
    n, dim = R.shape
    dr0 = pair_vectors(R, model.box, model.pairs)
    V = box_volume(model.box)

    def curvature(c):  # c: Voigt components of the strain direction
        u = jnp.tensordot(c, nonaffine, axes=1)
        du = u[model.pairs.i] - u[model.pairs.j]
        eps = voigt_to_tensor(c, dim)

        def f(g):
            dr = strained(dr0 + g * du, g * eps)
            return pair_energies(model.potential, dr, params, model.species, model.pairs)

        return jax.jacfwd(jax.jacfwd(f))(0.0)

    volumetric = tensor_to_voigt(np.eye(dim), dim)
    K = curvature(jnp.asarray(volumetric)) / (dim**2 * V)
    G = sum(curvature(jnp.asarray(tensor_to_voigt(b, dim))) for b in traceless_basis(dim))
    n_shear = (dim**2 + dim - 2) // 2
    return K, G / (2 * n_shear * V)


def traceless_basis(dim: int) -> list[np.ndarray]:
    """Orthonormal (Frobenius) basis of symmetric traceless ``(d, d)`` tensors."""
    basis = []
    for k in range(1, dim):  # diagonal, Gell-Mann-like
        m = np.zeros((dim, dim))
        m[np.arange(k), np.arange(k)] = 1.0
        m[k, k] = -float(k)
        basis.append(m / np.linalg.norm(m))
    for a in range(dim):
        for b in range(a + 1, dim):
            m = np.zeros((dim, dim))
            m[a, b] = m[b, a] = 1.0 / np.sqrt(2.0)
            basis.append(m)
    return basis
