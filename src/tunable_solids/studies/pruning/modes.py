"""Why a pruned network has its Poisson's ratio: normal modes and bond statistics (the paper's
Sec. C, Figs. 1i-j, 4 and 5), for one network state (bond stiffnesses ``k``, 0 = removed).

Loading. "x-loading" is uniaxial stress along x (the other normal stress and the shear stress
zero, as the paper's nu_x), scaled to unit strain ``eps_xx = 1``: the homogeneous strain is
``e_x = S[:, 0] / S[0, 0]`` (Voigt, ``S = C^-1``), so ``e_x = (1, -nu_x, gamma_x)``; y-loading
likewise with ``e_y = S[:, 1] / S[1, 1]``. The network's response is the affine strain plus the
non-affine displacement ``u = -Y e`` (``Y = H^+ Xi``, :mod:`.elasticity`).

Projection (paper Eq. 1). The network is periodic: the affine part of the deformation is a
strain of the box, not a periodic node field, so what is expanded in the ``2N`` normal modes
of the dynamical matrix (``H = Q^T K Q``, unit masses, all modes from one dense ``eigh``) is
the non-affine field ``u`` with its mean (the two translations) removed, normalized to
``|u| = 1``. ``C_omega = <omega | u>``; weights ``|C_omega|^2`` over the ``2N - 2`` non-zero
modes sum to 1; the reported weight is the average of the x- and y-loading weights. Since
``u = -sum_i omega_i^-2 |omega_i><omega_i| Xi e``, the weights fall as ``omega^-4`` times the
mode's coupling to strain, which is why only low frequencies matter.

Per-mode Poisson's ratio ``nu'``. A mode's field ``w`` (2N,) stretches bond ``b`` by
``(Q w)_b = n_b . (w_i - w_j)`` (minimum-image bond vector, so it is defined on the torus).
Its affine strain ``e_w`` (Voigt) is the stiffness-weighted least-squares fit of these
extensions by affine ones, ``min_e sum_b k_b ((Q w)_b - E_b e)^2`` with ``E_b e =
l_b n_b^T eps n_b``, i.e. ``e_w = (E^T K E)^-1 E^T K Q w = A^-1 Xi^T w`` (``A``: the affine
Born tensor times V): the homogeneous strain whose affine stress equals the stress of the
mode's bond extensions (for a mode dominating the non-affine relaxation, ``e_w`` is the
soft direction it gives C). An exactly affine field gives back its strain. ``nu'`` is read
along the axes like the paper's nu (its Fig. 4a-b: a mode stretches the network along x and
shrinks it along y, or stretches both): with the axial strains ``a = eps_xx``,
``b = eps_yy``, ``nu' = -b / a`` if ``|a| >= |b|`` else ``-a / b``, in ``[-1, 1]``: -1 for a
dilation, +1 for ``(1, -1, *)``, and ``nu`` for the strain ``(1, -nu, 0)`` of uniaxial
loading; the shear component is ignored and the mode's sign does not matter. (Principal
strains instead were tried: on annealed networks, whose response couples to shear, they
miss the sign of nu.)

Peaks. ``omega+`` (``omega-``) is the mode of largest weight among those with ``nu' > 0``
(``nu' < 0``); ``nu_bar' = |C+|^2 nu'(omega+) + |C-|^2 nu'(omega-)`` (paper Fig. 4d).

Modes with the box (``*_box`` results). The paper's networks have boundaries: a mode's field
changes the sample's shape and the loaded deformation includes its affine part. The periodic
analogue gives the box strain to the modes: the network's Hessian extended by the three
strain coordinates, ``M = B^T K B`` with ``B = [Q, E / s]`` (``(2N + 3)``-dimensional, the
energy's exact second derivative in ``(u, s e)``), whose modes carry a strain ``phi_e / s``.
The strain coordinate is scaled by ``s = sqrt(N V / 12)``, the norm of the affine field of a
unit strain over the cell (nodes spread uniformly over a box of area V), so a strain and a
node displacement of equal size weigh the same. This is a choice (the box's "mass"); it
changes the modes and weights, not the compliance: on the toy states, the correlation of
``nu_bar'`` with nu was 0.85-0.98 for scales 1, sqrt(V) and sqrt(N V) per network. The
loaded deformation is ``M^+ F`` for the generalized force ``F = (0, V sigma / s)`` of
uniaxial stress along x (y) (its strain part is ``S sigma``: an independent route to the
compliance), normalized and projected on the ``2N + 1`` non-translation modes; ``nu'`` of
a mode is the axial-ratio rule above applied to its strain ``phi_e / s`` itself (no fit
needed), and the peaks and ``nu_bar'`` follow as above.

Bond statistics (Fig. 1i-j). Each present bond's strain ``dl_b / l_b`` under x- and under
y-loading (relaxed, ``T e`` of :mod:`.elasticity`): the points ``p_b = (s_x, s_y)``;
``sigma^2 = mean_b |p_b - mean p|^2`` (the paper's variance, over present bonds) and the
covariance ``cov(s_x, s_y)``, negative when the points fill quadrants II and IV (nu > 0) and
positive for I and III (auxetic).

A state that is not rigid (a zero mode beyond the translations, an isolated node, a dangling
bond, C not positive definite) raises ``ValueError``: it is never analysed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from . import elasticity as el
from .elasticity import Geometry

Z_C = 4.0  # isostatic coordination in 2D


class BoxModes(NamedTuple):
    """Modes of the Hessian extended by the box strain (module doc): omega ``(2N + 1,)``,
    weight ``(2N + 1,)`` (x, y averaged), nu_prime ``(2N + 1,)``, strain ``(2N + 1, 3)`` of
    each mode (unnormalized), the peaks and nu_bar_prime, and response_strain ``(2, 3)`` the
    strain parts of the x- and y-loaded deformations (proportional to ``S[:, 0]``, ``S[:, 1]``).
    """

    omega: np.ndarray
    weight: np.ndarray
    nu_prime: np.ndarray
    strain: np.ndarray
    omega_plus: float
    omega_minus: float
    weight_plus: float
    weight_minus: float
    nu_prime_plus: float
    nu_prime_minus: float
    nu_bar_prime: float
    response_strain: np.ndarray


def box_modes(geom: Geometry, stiffness: np.ndarray) -> BoxModes:
    """Modes of the network with the box strain as three more coordinates (module doc).
    Raises ``ValueError`` if there is a zero mode beyond the translations."""
    k = np.asarray(stiffness, float)
    n = geom.n_nodes
    scale = np.sqrt(n * geom.volume / 12.0)
    Q = compatibility(geom)
    E = geom.strain / scale
    KQ = Q.multiply(k[:, None]).tocsr()
    M = np.zeros((2 * n + 3, 2 * n + 3))  # B^T K B with B = [Q, E / s]
    M[: 2 * n, : 2 * n] = (Q.T @ KQ).toarray()
    M[: 2 * n, 2 * n :] = np.asarray(KQ.T @ E)
    M[2 * n :, : 2 * n] = M[: 2 * n, 2 * n :].T
    M[2 * n :, 2 * n :] = E.T @ (k[:, None] * E)
    w2, P = np.linalg.eigh(M)
    if not w2[2] > el.ZERO_TOL * w2[-1]:
        raise ValueError("the network is not rigid (zero mode beyond the translations)")
    w2, P = w2[2:], P[:, 2:]
    weights, response = [], []
    for f in np.eye(3)[:2]:
        F = np.concatenate([np.zeros(2 * n), geom.volume * f / scale])
        c = (P.T @ F) / w2
        x = P @ c
        response.append(x[2 * n :] / scale)
        weights.append(c**2 / np.sum(c**2))
    weight = 0.5 * (weights[0] + weights[1])
    strain = P[2 * n :].T / scale
    nu_prime = strain_poisson(strain)
    omega = np.sqrt(w2)
    op, wp, np_ = _peak(omega, weight, nu_prime, 1.0)
    om, wm, nm = _peak(omega, weight, nu_prime, -1.0)
    return BoxModes(omega, weight, nu_prime, strain, op, om, wp, wm, np_, nm, wp * np_ + wm * nm,
                    np.array(response))  # fmt: skip


class ModeAnalysis(NamedTuple):
    """Mode analysis of one state (see the module doc).

    omega ``(2N - 2,)`` ascending frequencies (translations dropped); weight ``(2N - 2,)``
    ``|C_omega|^2`` averaged over x- and y-loading (sums to 1); weight_x, weight_y the two;
    nu_prime ``(2N - 2,)`` per-mode Poisson's ratio; mode_strain ``(2N - 2, 3)`` the fitted
    Voigt strains; omega_plus/minus, weight_plus/minus, nu_prime_plus/minus the two peaks
    (nan if no mode has that sign); nu_bar_prime; strain_x, strain_y ``(B,)`` bond strains
    under x- and y-loading (nan for removed bonds); sigma2, cov_xy the bond statistics;
    nu (the paper's), nu_iso, z, and e_x, e_y ``(3,)`` the applied strains; box: the
    :class:`BoxModes` analysis.
    """

    omega: np.ndarray
    weight: np.ndarray
    weight_x: np.ndarray
    weight_y: np.ndarray
    nu_prime: np.ndarray
    mode_strain: np.ndarray
    omega_plus: float
    omega_minus: float
    weight_plus: float
    weight_minus: float
    nu_prime_plus: float
    nu_prime_minus: float
    nu_bar_prime: float
    strain_x: np.ndarray
    strain_y: np.ndarray
    sigma2: float
    cov_xy: float
    nu: float
    nu_iso: float
    z: float
    e_x: np.ndarray
    e_y: np.ndarray
    box: BoxModes | None = None


def compatibility(geom: Geometry) -> sp.csr_matrix:
    """Unpinned compatibility matrix ``Q`` ``(B, 2N)``: ``(Q w)_b = n_b . (w_i - w_j)``."""
    b = len(geom.i)
    rows = np.repeat(np.arange(b), 4)
    return sp.csr_matrix((geom.q_full.ravel(), (rows, geom.dofs.ravel())), (b, 2 * geom.n_nodes))


def normal_modes(geom: Geometry, stiffness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All modes of the dynamical matrix (unit masses) but the two translations: frequencies
    ``(2N - 2,)`` ascending and orthonormal eigenvectors ``(2N, 2N - 2)`` (columns).

    Raises ``ValueError`` if there is a zero mode beyond the translations."""
    H = el._dense_hessian(geom, np.asarray(stiffness, float))
    w2, V = np.linalg.eigh(H)
    if not w2[2] > el.ZERO_TOL * w2[-1]:
        raise ValueError("the network is not rigid (zero mode beyond the translations)")
    return np.sqrt(w2[2:]), V[:, 2:]


def fitted_strain(geom: Geometry, stiffness: np.ndarray, extensions: np.ndarray) -> np.ndarray:
    """Voigt strains ``(..., 3)`` of the stiffness-weighted least-squares fit of bond
    extensions ``(B,)`` or ``(B, m)`` by affine ones (module doc)."""
    k = np.asarray(stiffness, float)
    E = geom.strain
    A = E.T @ (k[:, None] * E)
    rhs = E.T @ (k[:, None] * np.asarray(extensions).reshape(len(k), -1))
    out = np.linalg.solve(A, rhs).T
    return out[0] if np.ndim(extensions) == 1 else out


def strain_poisson(e: np.ndarray) -> np.ndarray:
    """``nu'`` of Voigt strains ``(..., 3)``: minus the ratio of the smaller to the larger of
    the two axial strains ``eps_xx``, ``eps_yy`` (shear ignored, as the paper's nu is read
    along the x and y axes)."""
    e = np.asarray(e, float)
    a, b = e[..., 0], e[..., 1]
    big = np.where(np.abs(a) >= np.abs(b), a, b)
    small = np.where(np.abs(a) >= np.abs(b), b, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -small / big


def loading(geom: Geometry, stiffness: np.ndarray):
    """``(C (3, 3), e_x (3,), e_y (3,), u_x (2N,), u_y (2N,), T (B, 3))``: the relaxed tensor,
    the strains of unit x- and y-loading, their non-affine fields (pinned solve, mean not
    removed) and the relaxed bond extensions per unit strain."""
    k = np.asarray(stiffness, float)
    lu, xi = el._factor(geom, k)
    Y = el._solve(lu, xi)
    CV = geom.strain.T @ (k[:, None] * geom.strain) - xi.T @ Y
    C = 0.5 * (CV + CV.T) / geom.volume
    S = np.linalg.inv(C)
    e_x, e_y = S[:, 0] / S[0, 0], S[:, 1] / S[1, 1]
    return C, e_x, e_y, -Y @ e_x, -Y @ e_y, el.bond_extensions(geom, Y)


def unit_field(u: np.ndarray, scale: float) -> np.ndarray:
    """``u`` ``(2N,)`` with its mean displacement removed, normalized to 1; nan if its norm is
    below ``1e-9 scale`` (an affine response, e.g. the perfect lattice's, has no non-affine
    field to expand; ``scale`` ~ sqrt(N) x bond length, the norm of an O(1) field)."""
    w = u.reshape(-1, 2)
    w = (w - w.mean(axis=0)).ravel()
    norm = np.linalg.norm(w)
    if not norm > 1e-9 * scale:
        return np.full_like(w, np.nan)
    return w / norm


def bond_statistics(geom: Geometry, mask: np.ndarray, T: np.ndarray, e_x, e_y):
    """Bond strains under x- and y-loading ``(B,)`` each (nan for removed bonds), the variance
    ``sigma^2`` and covariance of the points over present bonds."""
    length = _lengths(geom)
    sx = np.where(mask, T @ e_x / length, np.nan)
    sy = np.where(mask, T @ e_y / length, np.nan)
    px, py = sx[mask], sy[mask]
    sigma2 = float(np.mean((px - px.mean()) ** 2 + (py - py.mean()) ** 2))
    cov = float(np.mean((px - px.mean()) * (py - py.mean())))
    return sx, sy, sigma2, cov


def _lengths(geom: Geometry) -> np.ndarray:
    """Bond lengths ``(B,)`` from the affine extensions: ``E_b (1, 1, 0) = l_b``."""
    return geom.strain[:, 0] + geom.strain[:, 1]


def _peak(omega, weight, nu_prime, sign):
    sel = np.flatnonzero(np.sign(nu_prime) == sign)
    if len(sel) == 0 or not np.all(np.isfinite(weight)):
        return np.nan, np.nan, np.nan
    best = sel[np.argmax(weight[sel])]
    return float(omega[best]), float(weight[best]), float(nu_prime[best])


def analyse(geom: Geometry, mask: np.ndarray) -> ModeAnalysis:
    """Full mode and bond analysis of the state ``mask`` ``(B,)`` (present bonds, unit
    stiffness). Raises ``ValueError`` if it is not rigid (:func:`elasticity.rigidity`)."""
    mask = np.asarray(mask, bool)
    k = mask.astype(float)
    # The rigidity test of elasticity.rigidity, on this state's own diagonalization: node
    # degrees, zero modes beyond the translations, C positive definite.
    n = geom.n_nodes
    deg = np.bincount(geom.i[mask], minlength=n) + np.bincount(geom.j[mask], minlength=n)
    if np.any(deg <= 1):
        raise ValueError(f"not a rigid state: {int(np.sum(deg <= 1))} isolated or dangling nodes")
    try:
        omega, V = normal_modes(geom, k)
        C, e_x, e_y, u_x, u_y, T = loading(geom, k)
    except ValueError as exc:
        raise ValueError(f"not a rigid state: {exc}") from exc
    if not el.stiffness_margin(C) > el.ZERO_TOL:
        raise ValueError("not a rigid state: C is not positive definite")
    scale = np.sqrt(geom.n_nodes) * float(np.mean(_lengths(geom)))
    cx = V.T @ unit_field(u_x, scale)
    cy = V.T @ unit_field(u_y, scale)
    weight_x, weight_y = cx**2, cy**2
    weight = 0.5 * (weight_x + weight_y)
    strains = fitted_strain(geom, k, compatibility(geom) @ V)
    nu_prime = strain_poisson(strains)
    op, wp, np_ = _peak(omega, weight, nu_prime, 1.0)
    om, wm, nm = _peak(omega, weight, nu_prime, -1.0)
    sx, sy, sigma2, cov = bond_statistics(geom, mask, T, e_x, e_y)
    ratios = el.poisson_ratios(C)
    return ModeAnalysis(
        omega, weight, weight_x, weight_y, nu_prime, strains, op, om, wp, wm, np_, nm,
        wp * np_ + wm * nm, sx, sy, sigma2, cov, float(ratios.nu), float(ratios.nu_iso),
        2.0 * float(mask.sum()) / geom.n_nodes, e_x, e_y, box_modes(geom, k),
    )  # fmt: skip
