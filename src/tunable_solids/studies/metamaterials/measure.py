"""Measurements of one relaxed network: elastic tensor, moduli, density, coordination,
two-body excess entropy; and the stiffness-density fit ``E ~ Phi^n``.

Conventions (the core's, :mod:`tunable_solids.mechanics`): Voigt order ``xx yy zz yz xz xy``
with engineering shear strains; stress positive in tension.

- **Elastic tensor** (:func:`elastic_tensor`): the project's exact route, relaxed constants
  ``C = (Born - Xi^T H^+ Xi) / V`` (matrix-free CG; autodiff of the three-body energy);
  :func:`strain_step_tensor` is the paper's route (homogeneous strain steps of 0.05% up to
  +-0.5% along each Voigt component, positions re-minimized at each step, ``C_IJ`` the slope
  of the stress ``sigma_I = (1/V) dU/de_I`` against ``e_J``, least squares), used as a
  cross-check in the tests.
- **Moduli**: bulk ``B`` and shear ``G`` are the isotropic (Voigt-average) projections of the
  core (:func:`mechanics.isotropic_moduli`); Young's modulus ``E = 9 B G / (3 B + G)`` and
  Poisson's ratio ``(3B - 2G) / (2(3B + G))`` of that isotropic average. (The paper takes
  ``E`` "from the stiffness tensor" of nearly isotropic networks; the axial moduli
  ``1 / S_ii`` of the compliance are stored too, ``E_axial``.)
- **Packing fraction** ``Phi = N (pi/6) d^3 / V`` with ``d = 2^(1/6)`` (structures.DIAMETER).
- **Coordination**: neighbours closer than ``coordination_cutoff`` (default 1.5 sigma, between
  the first shell at 1.12 and the second shells of FCC 1.59 and diamond 1.83); mean and the
  most frequent value (the paper's "maximum-likelihood CN").
- **Two-body excess entropy** (standard form, Baranyai and Evans, Phys. Rev. A 40, 3817
  (1989)): ``S_2 / (N k_B) = -2 pi rho int_0^{r_c} [g ln g - g + 1] r^2 dr`` with the
  paper's ``r_c = 2.2`` (its printed Eq. 1 is garbled); 0 for an ideal gas, negative with
  order.
- **Stress shifts per atom** (:func:`stress_shift`, the paper's Fig. 8): per-atom stress
  ``sigma_i = W_i / V_i`` (LAMMPS's per-atom virial over the Voronoi volume, scipy/qhull)
  under uniaxial tension, its normal and shear means (Eqs. 10-11) minus the unstrained ones.
- **Fit** (:func:`power_law_fit`): ordinary least squares of ``log E`` on ``log Phi`` over all
  samples of a force field and structure family; ``n`` the slope with its standard error,
  ``E_50 = exp(intercept) 0.5^n`` the fit extrapolated to ``Phi = 50%``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tunable_solids import mechanics
from tunable_solids import stillinger_weber as sw
from tunable_solids.general import GeneralEnergy
from tunable_solids.minimize import MinimizeOptions, minimize

from .structures import DIAMETER, packing_fraction

#: The paper's g(r) cutoff of S_2 (sigma).
S2_CUTOFF = 2.2
COORDINATION_CUTOFF = 1.5
#: The paper's reduced-unit Stillinger-Weber constants (neighbor rows of the per-atom virial).
_SW = sw.stillinger_weber_energy()


def elastic_tensor(energy: GeneralEnergy, params, R, box, cg_tol: float = 1e-10):
    """Relaxed Voigt matrix ``(6, 6)`` by the exact route and the max relative CG residual."""
    R, box = jnp.asarray(R), jnp.asarray(box)
    nb = energy.allocate(R, box)
    model = mechanics.Model(energy, box, None, nb)
    el = mechanics.elastic_constants(model, R, params, cg_tol=cg_tol)
    return np.asarray(el.voigt), float(el.residual)


def stress_voigt(energy: GeneralEnergy, params, R, box) -> np.ndarray:
    """Stress ``(6,)`` in Voigt order (tension positive)."""
    R, box = jnp.asarray(R), jnp.asarray(box)
    model = mechanics.Model(energy, box, None, energy.allocate(R, box))
    s = np.asarray(mechanics.stress(model, R, params))
    return np.array([s[a, b] for a, b in mechanics.VOIGT[3]])


def reference_stress(energy: GeneralEnergy, params, R, box, F) -> np.ndarray:
    """``s_I = (1/V_0) dU/de_I`` ``(6,)`` at the state ``(R, F box_0)`` (``box`` is the
    strained box ``F box_0``), the strain ``e`` measured from the reference box ``box_0``
    (the paper's Eq. 6): the energy's derivative in a further strain ``d`` composed as
    ``F -> F + d`` at fixed fractional coordinates. At a relaxed state (zero forces) this is
    the total derivative of ``U(e)`` (envelope theorem), so its slope in ``e`` is the relaxed
    ``C = (1/V_0) d^2 U / de^2`` of the reference even when it carries a residual stress
    (where the current-frame stress would differ by terms of that stress)."""
    R, box, F = jnp.asarray(R), jnp.asarray(box), jnp.asarray(F)
    return np.asarray(_reference_stress(energy, params, R, box, F, energy.allocate(R, box)))


@partial(jax.jit, static_argnames=("energy",))
def _reference_stress(energy, params, R, box, F, nb):
    Finv = jnp.linalg.inv(F)
    R0, box0 = R @ Finv.T, Finv @ box

    def U(e):
        Fe = F + mechanics.voigt_to_tensor(e, 3)
        return energy(R0 @ Fe.T, Fe @ box0, params, nb)

    return jax.grad(U)(jnp.zeros(6)) / jnp.abs(jnp.linalg.det(box0))


def strain_step_tensor(
    energy: GeneralEnergy,
    params,
    R,
    box,
    options: MinimizeOptions,
    max_strain: float = 0.005,
    step: float = 0.0005,
) -> np.ndarray:
    """The paper's route: for each Voigt component ``J``, strains ``e_J = k step`` for
    ``|e_J| <= max_strain`` applied to box and positions (continuing from the previous step,
    outward from 0 in both directions), positions re-minimized at the strained box, the stress
    ``(1/V_0) dU/de`` of the reference strain recorded (:func:`reference_stress`); ``C[:, J]``
    is the least-squares slope of the stress against ``e_J``.
    Raises ``RuntimeError`` if a re-minimization did not converge."""
    R0, box0 = np.asarray(R), np.asarray(box)
    k_max = int(round(max_strain / step))
    C = np.zeros((6, 6))
    for J in range(6):
        strains, stresses = [0.0], [reference_stress(energy, params, R0, box0, np.eye(3))]
        for sign in (1, -1):
            R_prev, F_prev = R0, np.eye(3)
            for k in range(1, k_max + 1):
                e = np.zeros(6)
                e[J] = sign * k * step
                F = np.eye(3) + np.asarray(mechanics.voigt_to_tensor(jnp.asarray(e), 3))
                boxe = F @ box0
                # continue from the previous relaxed step, mapped affinely to the new box
                Rstart = R_prev @ (F @ np.linalg.inv(F_prev)).T
                m = minimize(energy, Rstart, boxe, params, None, options)
                if not bool(m.converged):
                    raise RuntimeError(
                        f"strain step {e[J]:+.4%} of component {J}: minimization did not "
                        f"converge (max|F| = {float(m.max_force):.2e})"
                    )
                R_prev, F_prev = np.asarray(m.positions), F
                strains.append(e[J])
                stresses.append(reference_stress(energy, params, R_prev, boxe, F))
        x = np.asarray(strains)
        y = np.stack(stresses)
        A = np.stack([x, np.ones_like(x)], 1)
        C[:, J] = np.linalg.lstsq(A, y, rcond=None)[0][0]
    return C


def voronoi_volumes(R, box, margin: float = 0.25) -> np.ndarray:
    """Voronoi cell volume of every atom ``(N,)`` in the periodic ``box`` (any non-singular
    box, lattice vectors as columns): scipy's Voronoi (qhull, double precision) of the atoms
    and their periodic images within ``margin`` (fractional units) of the box, cell volumes
    as convex hulls. The margin doubles until every cell is closed and the cells tile the box
    (``|sum - V| <= 1e-9 V``), the check that no image that shapes a cell was left out.

    (freud's Voronoi was the first choice; it crashed the process once in a test worker here,
    not reproducibly: a known fragility with points on the box boundary in its single
    precision, freud issue 841.)"""
    from scipy.spatial import ConvexHull, Voronoi

    R, box = np.asarray(R, float), np.asarray(box, float)
    n, d = R.shape
    V = abs(float(np.linalg.det(box)))
    s = R @ np.linalg.inv(box).T
    s -= np.floor(s)
    shifts = np.stack(np.meshgrid(*[[-1, 0, 1]] * d, indexing="ij"), -1).reshape(-1, d)
    shifts = shifts[np.argsort(np.abs(shifts).sum(1), kind="stable")]  # (0, .., 0) first
    while True:
        images = (s[None] + shifts[:, None]).reshape(-1, d)
        keep = np.all((images >= -margin) & (images <= 1 + margin), axis=1)
        keep[:n] = True
        vor = Voronoi(images[keep] @ box.T)
        vols = np.full(n, np.inf)
        for i in range(n):
            region = vor.regions[vor.point_region[i]]
            if region and -1 not in region:
                vols[i] = ConvexHull(vor.vertices[region]).volume
        if np.all(np.isfinite(vols)) and abs(vols.sum() - V) <= 1e-9 * V:
            return vols
        if margin >= 1.0:
            raise RuntimeError(f"Voronoi cells do not tile the box: sum {vols.sum()} vs V {V}")
        margin = min(2.0 * margin, 1.0)


def atom_stress(params, R, box) -> np.ndarray:
    """Per-atom stress ``sigma_i = W_i / V_i`` ``(N, 3, 3)`` (tension positive): the
    per-atom virial of LAMMPS's convention (:func:`stillinger_weber.atom_virial`) over the
    atom's Voronoi volume (the paper's Eq. 9 at zero temperature)."""
    R, box = jnp.asarray(R), jnp.asarray(box)
    nb = _SW.allocate(R, box)
    W = np.asarray(sw.atom_virial(R, box, params, nb))
    return W / voronoi_volumes(np.asarray(R), np.asarray(box))[:, None, None]


def normal_and_shear(stress: np.ndarray) -> tuple[float, float]:
    """The paper's Eqs. 10-11 over atoms: ``<(s_xx + s_yy + s_zz) / 3>`` and
    ``<sqrt(s_xy^2 + s_yz^2 + s_xz^2) / 3>`` (its "von Mises" shear, as printed)."""
    normal = np.trace(stress, axis1=1, axis2=2) / 3.0
    shear = np.sqrt(stress[:, 0, 1] ** 2 + stress[:, 1, 2] ** 2 + stress[:, 0, 2] ** 2) / 3.0
    return float(normal.mean()), float(shear.mean())


def stress_shift(
    energy: GeneralEnergy,
    params,
    R,
    box,
    options: MinimizeOptions,
    max_strain: float,
    steps: int,
) -> dict:
    """The paper's stress shifts per atom under uniaxial tension (its Fig. 8): uniaxial
    strain ``e_xx = k max_strain / steps``, ``k = 0..steps`` (the other box vectors fixed:
    uniaxial *strain*, the paper leaves the lateral condition open), positions re-minimized
    at every step from the previous one mapped affinely; at each step the per-atom normal
    and shear stress means (:func:`normal_and_shear` of :func:`atom_stress`, Voronoi volumes
    of the strained state). Returns ``strain (K,)``, ``d_sigma (K,)``, ``d_tau (K,)`` (shifts
    from the unstrained state) and ``sigma0``, ``tau0``. Raises ``RuntimeError`` if a
    re-minimization did not converge."""
    R0, box0 = np.asarray(R, float), np.asarray(box, float)
    strains = np.linspace(0.0, max_strain, steps + 1)
    sig, tau = np.zeros(steps + 1), np.zeros(steps + 1)
    sig[0], tau[0] = normal_and_shear(atom_stress(params, R0, box0))
    R_prev, F_prev = R0, np.eye(3)
    for k in range(1, steps + 1):
        F = np.diag([1.0 + strains[k], 1.0, 1.0])
        m = minimize(energy, R_prev @ (F @ np.linalg.inv(F_prev)).T, F @ box0, params, None,
                     options)  # fmt: skip
        if not bool(m.converged):
            raise RuntimeError(
                f"uniaxial strain {strains[k]:.4%}: minimization did not converge "
                f"(max|F| = {float(m.max_force):.2e})"
            )
        R_prev, F_prev = np.asarray(m.positions), F
        sig[k], tau[k] = normal_and_shear(atom_stress(params, R_prev, F @ box0))
    return {"strain": strains, "d_sigma": sig - sig[0], "d_tau": tau - tau[0],
            "sigma0": float(sig[0]), "tau0": float(tau[0])}  # fmt: skip


class Moduli(NamedTuple):
    bulk: float
    shear: float
    young: float
    poisson: float
    young_axial: np.ndarray  # (3,) 1 / S_ii


def moduli(voigt: np.ndarray) -> Moduli:
    """Isotropic (Voigt-average) moduli of a 3D Voigt matrix; see the module docstring."""
    B, G, nu = (float(x) for x in mechanics.isotropic_moduli(jnp.asarray(voigt), 3))
    E = 9.0 * B * G / (3.0 * B + G)
    try:
        S = np.linalg.inv(voigt)
        axial = 1.0 / np.diagonal(S)[:3]
    except np.linalg.LinAlgError:
        axial = np.full(3, np.nan)
    return Moduli(B, G, E, nu, axial)


def pair_distances(R: np.ndarray, box: np.ndarray, r_max: float) -> np.ndarray:
    """All minimum-image pair distances ``< r_max`` (each pair once), dense ``O(N^2)`` in
    blocks (analysis of stored states only)."""
    R = np.asarray(R)
    inv = np.linalg.inv(box)
    S = R @ inv.T
    out = []
    for i0 in range(0, len(R), 256):
        ds = S[i0 : i0 + 256, None, :] - S[None, :, :]
        ds -= np.round(ds)
        d = np.linalg.norm(ds @ box.T, axis=-1)
        ii, jj = np.nonzero(d < r_max)
        sel = (ii + i0) < jj
        out.append(d[ii[sel], jj[sel]])
    return np.concatenate(out) if out else np.zeros(0)


def coordination(R: np.ndarray, box: np.ndarray, cutoff: float = COORDINATION_CUTOFF):
    """Per-atom neighbour counts within ``cutoff`` ``(N,)``."""
    R = np.asarray(R)
    S = R @ np.linalg.inv(box).T
    counts = np.zeros(len(R), int)
    for i0 in range(0, len(R), 256):
        ds = S[i0 : i0 + 256, None, :] - S[None, :, :]
        ds -= np.round(ds)
        d = np.linalg.norm(ds @ box.T, axis=-1)
        counts[i0 : i0 + 256] = np.sum((d < cutoff) & (d > 0), axis=1)
    return counts


def radial_distribution(R, box, r_max: float, bins: int):
    """``(r_centres, g(r))`` on ``bins`` shells up to ``r_max`` (ideal-gas normalization
    ``rho 4 pi r^2 dr N / 2`` pairs per shell)."""
    n = len(R)
    V = abs(float(np.linalg.det(box)))
    d = pair_distances(R, box, r_max)
    edges = np.linspace(0.0, r_max, bins + 1)
    h, _ = np.histogram(d, edges)
    shell = 4.0 / 3.0 * math.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    ideal = 0.5 * n * (n - 1) / V * shell
    return 0.5 * (edges[1:] + edges[:-1]), h / ideal


def excess_entropy(r: np.ndarray, g: np.ndarray, rho: float, cutoff: float = S2_CUTOFF) -> float:
    """``S_2 = -2 pi rho int_0^cutoff [g ln g - g + 1] r^2 dr`` (per atom, k_B = 1) on the
    grid ``r`` (midpoint rule; ``g ln g = 0`` where ``g = 0``)."""
    sel = r <= cutoff
    r, g = r[sel], g[sel]
    dr = np.diff(r).mean() if len(r) > 1 else 0.0
    glng = np.where(g > 0, g * np.log(np.where(g > 0, g, 1.0)), 0.0)
    return float(-2.0 * math.pi * rho * np.sum((glng - g + 1.0) * r**2) * dr)


def structure_measures(R, box, rdf_bins: int, cn_cutoff: float) -> dict:
    """Packing fraction, number density, coordination (mean, mode) and S_2 of one state."""
    n = len(R)
    V = abs(float(np.linalg.det(box)))
    cn = coordination(R, box, cn_cutoff)
    r, g = radial_distribution(R, box, S2_CUTOFF, rdf_bins)
    rho = n / V
    return {
        "phi": packing_fraction(n, V, DIAMETER),
        "number_density": rho,
        "coordination": float(cn.mean()),
        "coordination_mode": int(np.bincount(cn).argmax()),
        "S2": excess_entropy(r, g, rho),
        "rdf_r": r,
        "rdf": g,
    }


class PowerLaw(NamedTuple):
    n: float
    n_err: float
    E_50: float
    intercept: float
    points: int


def power_law_fit(phi, E) -> PowerLaw:
    """OLS of ``log E = c + n log Phi`` over finite positive points: slope ``n`` with its
    standard error (NaN with fewer than 3 points), ``E_50 = exp(c + n log 0.5)``."""
    phi, E = np.asarray(phi, float), np.asarray(E, float)
    ok = np.isfinite(phi) & np.isfinite(E) & (phi > 0) & (E > 0)
    x, y = np.log(phi[ok]), np.log(E[ok])
    m = len(x)
    if m < 2 or np.ptp(x) == 0:
        return PowerLaw(np.nan, np.nan, np.nan, np.nan, m)
    A = np.stack([x, np.ones(m)], 1)
    (n, c), *_ = np.linalg.lstsq(A, y, rcond=None)
    err = np.nan
    if m > 2:
        resid = y - A @ np.array([n, c])
        s2 = float(resid @ resid) / (m - 2)
        err = math.sqrt(s2 / float(np.sum((x - x.mean()) ** 2)))
    return PowerLaw(float(n), float(err), float(math.exp(c + n * math.log(0.5))), float(c), m)
