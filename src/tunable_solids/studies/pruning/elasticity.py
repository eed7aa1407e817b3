"""Elastic tensor, Poisson's ratios and rigidity of stress-free spring networks, with exact
rank-one updates when one bond is removed or re-added.

Model
-----
Bond ``b`` (stiffness ``k_b >= 0``, unit vector ``n_b``, length ``l_b``) has the extension
``(Q u + E e)_b`` under node displacements ``u`` ``(2N,)`` and a homogeneous strain ``e``
(Voigt ``(xx, yy, xy)``, engineering shear, as :mod:`tunable_solids.mechanics`):
``Q_b = n_b^T (e_i - e_j)`` (4 non-zeros per row) and ``E_b = l_b (n_x^2, n_y^2, n_x n_y)``.
A stress-free network's energy is ``U = 1/2 sum_b k_b (Q u + E e)_b^2``, so with
``K = diag(k)``, ``H = Q^T K Q``, ``Xi = Q^T K E`` and ``Y = H^+ Xi`` (the non-affine
displacement per unit strain is ``-Y``), the relaxed tensor is

    C V = E^T K E - Xi^T H^+ Xi = T^T K T,      T = E - Q Y   (B, 3),

``T_b`` being bond ``b``'s relaxed extension per unit strain: ``k_b T_b T_b^T / V`` are the
bond contributions, summing to ``C`` (the full-tensor version of
``mechanics.bond_contributions``). Positions never move when stiffnesses change.

Zero modes: the two global translations are removed by pinning node 0 (dropping its two
rows and columns of ``H``). Because ``Xi`` sums to zero over nodes, the pinned solve gives
the same ``C`` as the pseudo-inverse. The pinned ``H`` is non-singular exactly when the
network has no zero mode beyond the translations. Vectors in node space keep all ``2N``
entries, the pinned two being zero.

Rank-one updates (the choice made here)
---------------------------------------
Changing bond ``b``'s stiffness by ``delta`` (``-k_b``: removal, ``+k_b``: re-adding) changes
``H`` by ``delta q q^T`` (``q = Q_b``) and ``Xi`` by ``delta q E_b^T``. With
``M = H^-1`` (pinned), ``alpha = q^T M q``, ``beta = Y^T q`` and ``t = E_b - beta`` (the
bond's relaxed extension), Sherman-Morrison gives exactly

    C' V = C V + gamma t t^T,     gamma = delta / (1 + delta alpha),
    Y'   = Y + gamma u t^T,       M' = M - gamma u u^T,     u = M q.

For a removal, ``1 - k_b alpha`` is the bond's redundancy (its weight in the states of
self-stress): it is 0 exactly when the removal creates a zero mode, so the same number is
the per-move rigidity test (:data:`FLOPPY_TOL`). ``M`` is never formed: the network at the
last exact refresh is factorized sparsely (SuperLU of the pinned ``H``, symmetric ordering),
and the accepted changes since then are kept as a low-rank correction
``M = M_0 - sum_j gamma_j u_j u_j^T`` (Woodbury). A proposal costs one sparse solve
``M_0 q`` plus ``O(m)`` for the ``m`` corrections (``alpha``, ``beta`` and ``C'`` are then
``O(1)``); accepting it costs ``O(N m)``. After ``refresh_every`` accepted changes the
network is refactorized exactly and the updated and refreshed ``nu`` are compared
(:meth:`Updater.refresh` returns the difference). A fresh solve (assembly, factorization,
three solves) costs much more than a proposal; see ``benchmarks/pruning.py``.

Poisson's ratios (:func:`poisson_ratios`)
-----------------------------------------
``S = C^-1`` of the full 3x3 Voigt matrix: uniaxial stress along x (or y) with the other
normal stress and the shear stress zero, the shear strain left free. The paper's
``nu = (nu_x + nu_y) / 2`` with ``nu_x = -S_12 / S_11``, ``nu_y = -S_12 / S_22``
(indices 1 = xx, 2 = yy). For an isotropic tensor this equals ``C_12 / C_11`` and the
isotropic ``(B - G) / (B + G)`` (B, G as in :func:`mechanics.isotropic_moduli`). Shear
coupling (``C_13, C_23 != 0``, anisotropic networks) enters through the full inversion;
``nu_rect`` is the same average with the shear strain clamped instead (a rectangular box
stretched along x with y free: ``nu_x = C_12 / C_22``, ``nu_y = C_12 / C_11``), recorded for
comparison. The paper's nu drives the pruning. It does not enforce isotropy: pruned networks
can reach a target nu with ``nu_x != nu_y`` (greedy pruning does, see :mod:`.greedy`), so
``nu_iso`` and ``nu_rect`` are worth reporting beside it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .networks import Network, bond_vectors

# A removal leaving the bond redundancy 1 - k alpha below this creates a zero mode.
FLOPPY_TOL = 1e-8
# Eigenvalues below ZERO_TOL * (largest) count as zero (dense rigidity check, Hessian and
# Mandel form of C). Floppy modes sit at round-off (~1e-16 relative); the softest real modes
# of the networks studied here (N <= ~1e3) are far above 1e-10 relative.
ZERO_TOL = 1e-10
# A factorization whose smallest pivot is below PIVOT_TOL * (largest) is of a floppy network
# (a zero mode gives a round-off pivot, ~1e-16 relative; pivots are >= the smallest
# eigenvalue, far above this for rigid networks).
PIVOT_TOL = 1e-12


class Geometry(NamedTuple):
    """Fixed geometry of a network (stiffness-independent), node 0 pinned.

    n_nodes, volume (box area); i, j ``(B,)``; dofs ``(B, 4)`` the coordinates
    ``(2i, 2i+1, 2j, 2j+1)`` of each bond; q ``(B, 4)`` its compatibility row
    ``(n, -n)`` on those (zero on node 0's); q_full the same without pinning;
    strain ``(B, 3)`` the affine extensions ``E_b``; Q ``(B, 2N)`` sparse compatibility
    matrix (pinned).
    """

    n_nodes: int
    volume: float
    i: np.ndarray
    j: np.ndarray
    dofs: np.ndarray
    q: np.ndarray
    q_full: np.ndarray
    strain: np.ndarray
    Q: sp.csr_matrix


def geometry(network: Network) -> Geometry:
    """:class:`Geometry` of a network, with the pinned node's entries of ``q`` zeroed."""
    d = bond_vectors(network.positions, network.box, network.i, network.j)
    length = np.linalg.norm(d, axis=1)
    n = d / length[:, None]
    i, j = network.i, network.j
    dofs = np.stack([2 * i, 2 * i + 1, 2 * j, 2 * j + 1], axis=1)
    q_full = np.concatenate([n, -n], axis=1)
    q = np.where(dofs < 2, 0.0, q_full)  # node 0 pinned
    strain = length[:, None] * np.stack([n[:, 0] ** 2, n[:, 1] ** 2, n[:, 0] * n[:, 1]], 1)
    b, n_nodes = len(i), len(network.positions)
    Q = sp.csr_matrix((q.ravel(), (np.repeat(np.arange(b), 4), dofs.ravel())), (b, 2 * n_nodes))
    volume = float(abs(np.linalg.det(network.box)))
    return Geometry(n_nodes, volume, i, j, dofs, q, q_full, strain, Q)


# ----------------------------------------------------------------------- Poisson's ratios


class PoissonRatios(NamedTuple):
    """nu = (nu_x + nu_y)/2 (the paper's), nu_x, nu_y (shear stress free), nu_rect (shear
    strain clamped) and nu_iso = (B - G)/(B + G)."""

    nu: float
    nu_x: float
    nu_y: float
    nu_rect: float
    nu_iso: float


def poisson_ratios(C) -> PoissonRatios:
    """Poisson's ratios of 2D Voigt matrices ``(..., 3, 3)`` (numpy or jax; see module doc).

    ``S_12/S_11`` and ``S_12/S_22`` are ratios of cofactors of ``C`` (no inverse formed).
    """
    c00, c01, c02 = C[..., 0, 0], C[..., 0, 1], C[..., 0, 2]
    c11, c12, c22 = C[..., 1, 1], C[..., 1, 2], C[..., 2, 2]
    minus_cof01 = c01 * c22 - c12 * c02  # -S_12 det C
    nu_x = minus_cof01 / (c11 * c22 - c12 * c12)
    nu_y = minus_cof01 / (c00 * c22 - c02 * c02)
    bulk = (c00 + c11 + 2.0 * c01) / 4.0
    shear = (c00 + c11 + 2.0 * c22 - (c00 + c11 + 2.0 * c01) / 2.0) / 4.0
    nu_rect = 0.5 * (c01 / c11 + c01 / c00)
    nu_iso = (bulk - shear) / (bulk + shear)
    return PoissonRatios(0.5 * (nu_x + nu_y), nu_x, nu_y, nu_rect, nu_iso)


def poisson_ratio(C) -> float:
    """The paper's ``nu = (nu_x + nu_y) / 2`` of Voigt matrices ``(..., 3, 3)``."""
    c00, c01, c02 = C[..., 0, 0], C[..., 0, 1], C[..., 0, 2]
    c11, c12, c22 = C[..., 1, 1], C[..., 1, 2], C[..., 2, 2]
    minus_cof01 = c01 * c22 - c12 * c02
    return 0.5 * minus_cof01 * (1.0 / (c11 * c22 - c12 * c12) + 1.0 / (c00 * c22 - c02 * c02))


def stiffness_margin(C: np.ndarray) -> float:
    """Smallest over largest eigenvalue of ``C`` in Mandel form (shear row/column x sqrt 2):
    ``> ZERO_TOL`` means ``C`` is positive definite, so ``S`` and ``nu`` exist."""
    w = np.array([1.0, 1.0, np.sqrt(2.0)])
    ev = np.linalg.eigvalsh(np.asarray(C) * w[:, None] * w[None, :])
    return float(ev[0] / ev[-1]) if ev[-1] > 0 else -np.inf


# ------------------------------------------------------------------ exact (fresh) solves


def _factor(geom: Geometry, stiffness: np.ndarray):
    """SuperLU of the pinned Hessian ``(Q^T K Q)[2:, 2:]`` and ``Xi = Q^T K E`` ``(2N, 3)``."""
    KQ = geom.Q.multiply(stiffness[:, None]).tocsr()
    H = (geom.Q.T @ KQ).tocsc()[2:, 2:]
    xi = np.asarray(KQ.T @ geom.strain)
    try:
        lu = spla.splu(
            H, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
        )
    except RuntimeError as e:  # "Factor is exactly singular"
        raise ValueError("the network is not rigid (singular pinned Hessian)") from e
    pivots = np.abs(lu.U.diagonal())
    if not pivots.min() > PIVOT_TOL * pivots.max():
        raise ValueError("the network is not rigid (singular pinned Hessian)")
    return lu, xi


def _solve(lu, rhs: np.ndarray) -> np.ndarray:
    """``M_0 rhs`` in node space (pinned entries 0), ``rhs`` ``(2N,)`` or ``(2N, m)``."""
    out = np.zeros_like(rhs)
    out[2:] = lu.solve(np.ascontiguousarray(rhs[2:]))
    return out


def elastic_tensor(geom: Geometry, stiffness: np.ndarray) -> np.ndarray:
    """Relaxed Voigt matrix ``C`` ``(3, 3)`` by a fresh sparse solve (the exact reference).

    The network must be rigid (:func:`rigidity`); a floppy one raises ``ValueError``.
    """
    k = np.asarray(stiffness, float)
    lu, xi = _factor(geom, k)
    Y = _solve(lu, xi)
    A = geom.strain.T @ (k[:, None] * geom.strain)
    CV = A - xi.T @ Y
    return 0.5 * (CV + CV.T) / geom.volume


def bond_extensions(geom: Geometry, Y: np.ndarray) -> np.ndarray:
    """Relaxed extension ``T = E - Q Y`` of every bond per unit strain, ``(B, 3)``."""
    return geom.strain - np.asarray(geom.Q @ Y)


# --------------------------------------------------------------------------- rigidity


class Rigidity(NamedTuple):
    """Rigidity of a network state (dense check).

    valid: no extra zero mode, no isolated node, no dangling bond and ``C`` positive
    definite; extra_zero_modes: zero eigenvalues of the Hessian beyond the 2 translations;
    isolated / dangling ``(N,)``: nodes with 0 / exactly 1 present bond;
    margin: :func:`stiffness_margin` of ``C`` (``nan`` if there are extra zero modes).
    """

    valid: bool
    extra_zero_modes: int
    isolated: np.ndarray
    dangling: np.ndarray
    margin: float


def rigidity(geom: Geometry, stiffness: np.ndarray, tol: float = ZERO_TOL) -> Rigidity:
    """Dense rigidity check: eigenvalues of the full ``(2N, 2N)`` Hessian (node 0 not
    pinned), node degrees over bonds with ``k > 0``, and ``C``'s Mandel eigenvalues.

    An isolated node or a dangling bond always has a zero mode too; they are reported
    separately because they are the common ways pruning fails. A node with two collinear
    bonds has a zero mode (transverse) but neither flag. ``O(N^3)``: for tests and final
    states; the per-move test is the Sherman-Morrison denominator (:class:`Updater`).
    """
    k = np.asarray(stiffness, float)
    n = geom.n_nodes
    H = _dense_hessian(geom, k)
    w = np.linalg.eigvalsh(H)
    extra = int(np.sum(w < tol * w[-1])) - 2
    present = k > 0
    deg = np.bincount(geom.i[present], minlength=n) + np.bincount(geom.j[present], minlength=n)
    margin = stiffness_margin(elastic_tensor(geom, k)) if extra == 0 else float("nan")
    valid = extra == 0 and not np.any(deg <= 1) and margin > tol
    return Rigidity(bool(valid), extra, deg == 0, deg == 1, margin)


def _dense_hessian(geom: Geometry, k: np.ndarray) -> np.ndarray:
    """Full ``(2N, 2N)`` Hessian ``Q^T K Q`` (node 0 not pinned)."""
    n = geom.n_nodes
    H = np.zeros((2 * n, 2 * n))
    q = geom.q_full
    blocks = k[:, None, None] * q[:, :, None] * q[:, None, :]
    np.add.at(H, (geom.dofs[:, :, None], geom.dofs[:, None, :]), blocks)
    return H


# ----------------------------------------------------------------------- rank-one moves


class Move(NamedTuple):
    """A proposed change of one bond's stiffness, evaluated exactly by rank-one update.

    bond, new_k; valid: the new state is rigid (redundancy ``1 + delta alpha`` above
    :data:`FLOPPY_TOL` and ``C`` positive definite); C ``(3, 3)`` and nu (the paper's) of the
    new state (``nan`` if invalid); internals for :meth:`Updater.accept`: delta, gamma,
    t ``(3,)``, v0 = ``M_0 q`` ``(2N,)``, wq = ``u_j . q`` ``(m,)``.
    """

    bond: int
    new_k: float
    valid: bool
    C: np.ndarray
    nu: float
    redundancy: float
    delta: float
    gamma: float
    t: np.ndarray
    v0: np.ndarray
    wq: np.ndarray


class Updater:
    """Exact elastic tensor of a network under single-bond changes (see the module doc).

    Mutable workspace (not a physics state: everything in it follows from ``stiffness`` and
    the ordered list of bonds changed since the last refresh, ``pending``). ``capacity``
    accepted changes trigger an exact refresh (``refresh_every``). The start must be rigid
    (``ValueError`` otherwise); :meth:`propose` keeps it so.
    """

    def __init__(self, geom: Geometry, stiffness: np.ndarray, refresh_every: int = 128):
        self.geom = geom
        self.capacity = int(refresh_every)
        self.stiffness = np.array(stiffness, float)
        self.W = np.zeros((self.capacity, 2 * geom.n_nodes))  # row j: u_j (contiguous)
        self.c = np.zeros(self.capacity)
        self.refresh_errors: list[float] = []
        self._factorize()

    def _factorize(self):
        self.lu, xi = _factor(self.geom, self.stiffness)
        self.Y = _solve(self.lu, xi)
        A = self.geom.strain.T @ (self.stiffness[:, None] * self.geom.strain)
        CV = A - xi.T @ self.Y
        self.CV = 0.5 * (CV + CV.T)
        self.m = 0
        self.pending: list[int] = []

    @property
    def C(self) -> np.ndarray:
        return self.CV / self.geom.volume

    @property
    def nu(self) -> float:
        return float(poisson_ratio(self.C))

    def propose(self, bond: int, new_k: float) -> Move:
        """Evaluate setting bond ``bond``'s stiffness to ``new_k`` (state unchanged)."""
        g, m = self.geom, self.m
        idx, q = g.dofs[bond], g.q[bond]
        delta = float(new_k - self.stiffness[bond])
        rhs = np.zeros(2 * g.n_nodes)
        rhs[idx] = q
        v0 = _solve(self.lu, rhs)
        wq = self.W[:m, idx] @ q
        alpha = float(q @ v0[idx] - (self.c[:m] * wq) @ wq)
        t = g.strain[bond] - q @ self.Y[idx]
        redundancy = 1.0 + delta * alpha
        nan = np.full((3, 3), np.nan)
        if redundancy <= FLOPPY_TOL:
            return Move(bond, new_k, False, nan, np.nan, redundancy, delta, 0.0, t, v0, wq)
        gamma = delta / redundancy
        CV = self.CV + gamma * np.outer(t, t)
        C = CV / g.volume
        valid = stiffness_margin(C) > ZERO_TOL
        nu = float(poisson_ratio(C)) if valid else np.nan
        return Move(bond, new_k, bool(valid), C, nu, redundancy, delta, gamma, t, v0, wq)

    def accept(self, move: Move) -> float | None:
        """Apply a valid proposed move. Returns ``|nu_updated - nu_refreshed|`` if this
        accept triggered the exact refresh, else None."""
        if not move.valid:
            raise ValueError(f"bond {move.bond}: the move leaves the network floppy")
        m = self.m
        u = move.v0 - (self.c[:m] * move.wq) @ self.W[:m]
        self.W[m] = u
        self.c[m] = move.gamma
        self.m = m + 1
        self.Y += move.gamma * np.outer(u, move.t)
        self.CV = move.C * self.geom.volume
        self.stiffness[move.bond] = move.new_k
        self.pending.append(int(move.bond))
        if self.m == self.capacity:
            return self.refresh()
        return None

    def refresh(self) -> float:
        """Refactorize exactly; return ``|nu_updated - nu_refreshed|`` (recorded too)."""
        nu_updated = self.nu
        self._factorize()
        err = abs(nu_updated - self.nu)
        self.refresh_errors.append(err)
        return err

    def extensions(self) -> np.ndarray:
        """Relaxed extension of every bond per unit strain ``T`` ``(B, 3)`` (current state)."""
        return bond_extensions(self.geom, self.Y)
