"""Shared fixtures and numerical helpers of the test suite (tests/<area>/test_*.py).

Every packing is minimized once per test session (session-scoped fixtures) and reused by
test_mechanics, test_minimize, test_implicit and test_systems. Helpers that several test
files need (finite-strain energies, distance to the non-smooth points of a potential)
are handed out through fixtures, so the test files never import this module.

States (all N = 64, seeds fixed; the physical parameters follow the two papers):
- ``soft2d``:          2D 1:1.4 bidisperse soft spheres at packing fraction 0.90.
- ``soft2d_rattlers``: the same at 0.85 (close to jamming; has rattlers).
- ``xplor2d``:         2D harmonic_morse_xplor (a = 5, k = 5, B = 0.01), diameters
                       0.8 / 1.0 at number density 1.6 (well conditioned).
- ``morse2d``:         2D harmonic_morse (a = 50, k = 1, B = 1e-3) at packing fraction 0.90.
- ``soft3d``:          3D soft spheres at packing fraction 0.70.
- ``triangular_network`` / ``fcc_network``: perfect crystals with nearest-neighbour springs.

Workflow: ``smoke`` runs config/smoke.yaml once per session (every study, a few minutes) into
a temporary results directory; tests/packings and tests/workflow check its outputs.
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import yaml

import tunable_solids  # noqa: F401  (enables float64 before any JAX array exists)
from tunable_solids import mechanics, potentials, space, systems
from tunable_solids.jobs import enable_compilation_cache
from tunable_solids.minimize import MinimizeOptions, Minimum, minimize

# The test processes (pytest-xdist workers, one process per test group) and the workflow jobs
# they start share XLA compilations through the project's persistent cache (.cache/jax).
enable_compilation_cache()


@dataclass(eq=False)
class State:
    """A minimized configuration plus everything needed to analyse it."""

    label: str
    potential: object
    params: object
    species: jnp.ndarray | None
    box: np.ndarray
    start: np.ndarray
    minimum: Minimum

    @property
    def R(self):
        return self.minimum.positions

    @property
    def n(self) -> int:
        return int(self.R.shape[0])

    @property
    def dim(self) -> int:
        return int(self.R.shape[1])

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.box)))

    @property
    def model(self) -> mechanics.Model:
        return mechanics.Model(self.potential, jnp.asarray(self.box), self.species,
                               self.minimum.pairs)  # fmt: skip

    @cached_property
    def elasticity(self) -> mechanics.Elasticity:
        return mechanics.elastic_constants(self.model, self.R, self.params)

    @cached_property
    def hessian(self) -> np.ndarray:
        return np.asarray(mechanics.hessian_matrix(self.model, self.R, self.params))

    @cached_property
    def rattlers(self) -> np.ndarray:
        pairs = self.minimum.pairs
        contact = np.asarray(mechanics.contact_mask(self.model, self.R, self.params))
        return mechanics.rattlers(self.n, self.dim, np.asarray(pairs.i), np.asarray(pairs.j),
                                  contact)  # fmt: skip


def make_packing(label, potential_name, dim, n, diameters, k, binding, seed,
                 phi=None, density=None) -> State:  # fmt: skip
    """Random start (numpy seed ``seed``) minimized by FIRE to the default 1e-12 force."""
    potential = potentials.make_potential(potential_name)
    params = systems.default_params(2, diameters, k, binding)
    species = systems.assign_species(n, 2)
    if phi is not None:
        box = systems.box_for_packing_fraction(np.asarray(params.diameter)[species], dim, phi)
    else:
        box = systems.box_for_density(n, dim, density)
    # The minimum image must hold for the whole interaction range (what pipeline checks).
    space.check_box_fits(box, float(potential.cutoff(jnp.max(params.diameter))))
    start = systems.random_positions(np.random.default_rng(seed), n, box)
    m = minimize(potential, start, box, params, jnp.asarray(species))
    assert bool(m.converged), f"{label}: FIRE did not converge (max|F| = {float(m.max_force)})"
    return State(label, potential, params, jnp.asarray(species), box, start, m)


@pytest.fixture(scope="session")
def soft2d() -> State:
    return make_packing("soft2d", "soft_sphere", 2, 64, [1.0, 1.4], 1.0, 0.0, seed=0, phi=0.90)


@pytest.fixture(scope="session")
def soft2d_rattlers() -> State:
    # Seed 1 reaches a minimum with 2 rattlers (test_mechanics needs at least 2) whose pairs
    # stay smooth for isotropic strains up to 2.5e-5 (its finite differences need > 1e-6).
    return make_packing("soft2d_rattlers", "soft_sphere", 2, 64, [1.0, 1.4], 1.0, 0.0, seed=1,
                        phi=0.85)  # fmt: skip


@pytest.fixture(scope="session")
def xplor2d() -> State:
    return make_packing("xplor2d", "harmonic_morse_xplor", 2, 64, [0.8, 1.0], 5.0, 0.01,
                        seed=0, density=1.6)  # fmt: skip


@pytest.fixture(scope="session")
def morse2d() -> State:
    return make_packing("morse2d", "harmonic_morse", 2, 64, [1.0, 1.4], 1.0, 1e-3, seed=0,
                        phi=0.90)  # fmt: skip


@pytest.fixture(scope="session")
def soft3d() -> State:
    return make_packing("soft3d", "soft_sphere", 3, 64, [1.0, 1.4], 1.0, 0.0, seed=0, phi=0.70)


# ----------------------------------------------------------------------------- crystals


@dataclass(eq=False)
class Network:
    """A perfect crystal with identical nearest-neighbour springs at rest length."""

    R: jnp.ndarray
    box: np.ndarray
    bonds: space.Pairs
    params: potentials.NetworkParams
    spacing: float  # nearest-neighbour distance
    k: float

    @property
    def model(self) -> mechanics.Model:
        return mechanics.Model(potentials.Spring(), jnp.asarray(self.box), None, self.bonds)

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.box)))


def make_network(n: int, dim: int, density: float, k: float) -> Network:
    R, box = systems.crystal(n, dim, density)
    # nearest-neighbour distance: a (triangular) or a_cubic / sqrt(2) (FCC)
    spacing = math.sqrt(2.0 / (math.sqrt(3.0) * density)) if dim == 2 else (
        (4.0 / density) ** (1.0 / 3.0) / math.sqrt(2.0))  # fmt: skip
    z = 6 if dim == 2 else 12
    pairs, count = space.neighbor_pairs(jnp.asarray(R), jnp.asarray(box), 1.2 * spacing,
                                        capacity=z * n // 2 + 8)  # fmt: skip
    assert int(count) == z * n // 2, "crystal must have exactly z/2 nearest-neighbour bonds/site"
    valid = np.asarray(pairs.mask)
    lengths = np.linalg.norm(np.asarray(space.pair_vectors(jnp.asarray(R), jnp.asarray(box),
                                                           pairs)), axis=1)  # fmt: skip
    bonds, params = systems.spring_network(pairs.i, pairs.j, valid, lengths, stiffness=k)
    return Network(jnp.asarray(R), box, bonds, params, spacing, k)


@pytest.fixture(scope="session", params=[1.0, 2.5], ids=["k1", "k2.5"])
def triangular_network(request) -> Network:
    # 56 sites = 7 x 4 rectangular cells (box 7a x 4 sqrt(3) a, nearly square); a = 1.
    return make_network(56, 2, 2.0 / math.sqrt(3.0), request.param)


@pytest.fixture(scope="session")
def fcc_network() -> Network:
    # 108 sites = 3 x 3 x 3 cubic cells; cubic cell a_c = 1.5; k = 1.7.
    return make_network(108, 3, 4.0 / 1.5**3, 1.7)


# ------------------------------------------------------------------------ numerical helpers


def kink_window(state: State, dR, eps=None, dsigma=None) -> float:
    """Largest amplitude ``t`` of the linear path ``R + t dR``, strain ``t eps``, pair sigmas
    ``sigma + t dsigma`` along which no pair distance reaches a kink of the potential.

    Finite differences of second derivatives are only valid inside this window: beyond it a
    pair crosses a point where u'' jumps and the difference quotient picks up the jump.
    """
    pairs = state.minimum.pairs
    valid = np.asarray(pairs.mask)
    i, j = np.asarray(pairs.i)[valid], np.asarray(pairs.j)[valid]
    dr = np.asarray(space.pair_vectors(state.R, jnp.asarray(state.box), pairs))[valid]
    r = np.linalg.norm(dr, axis=1)
    n = dr / r[:, None]
    sigma = np.asarray(potentials.pair_parameters(state.params, state.species, pairs.i,
                                                  pairs.j).sigma)[valid]  # fmt: skip
    dR = np.asarray(dR)
    rate = np.sum(n * (dR[i] - dR[j]), axis=1)
    if eps is not None:
        rate = rate + np.sum(n * (dr @ np.asarray(eps).T), axis=1)
    if dsigma is not None:
        rate = rate - np.asarray(dsigma)[valid]  # kinks sit at sigma + const
    ks = state.potential.kinks(sigma)
    if not ks:
        return math.inf
    dist = np.min(np.abs(np.stack([r - kk for kk in ks])), axis=0)
    with np.errstate(divide="ignore"):
        return float(np.min(dist / np.abs(rate)))


def fd_voigt_directions(nv: int) -> list[np.ndarray]:
    """Strain directions used by the second-difference stencil: e_I and e_I +- e_J."""
    eye = np.eye(nv)
    out = [eye[a] for a in range(nv)]
    out += [eye[a] + s * eye[b] for a in range(nv) for b in range(a + 1, nv) for s in (1, -1)]
    return out


FD_OPTIONS = MinimizeOptions(force_tol=1e-12)


def relaxed_energy(state: State, e_voigt) -> float:
    """Energy after deforming box and positions by ``I + eps(e)`` and re-minimizing.

    Independent of the strain argument of :func:`energy.energy`: the box itself is deformed
    and the minimizer builds its own pair list in it. Starts from the affinely mapped
    minimum, so it stays in the same basin for small strains.
    """
    F = np.eye(state.dim) + np.asarray(mechanics.voigt_to_tensor(jnp.asarray(e_voigt),
                                                                 state.dim))  # fmt: skip
    R = np.asarray(state.R) @ F.T
    m = minimize(state.potential, R, F @ state.box, state.params, state.species, FD_OPTIONS)
    assert bool(m.converged), "re-minimization at finite strain did not converge"
    return float(m.energy)


def finite_strain_elastic(state: State, h: float) -> np.ndarray:
    """Relaxed Voigt matrix from second differences of the re-minimized energy per volume.

    Diagonal: ``(E(+h e_I) - 2 E(0) + E(-h e_I)) / h^2``; off-diagonal: the four-point
    mixed stencil ``(E(++) - E(+-) - E(-+) + E(--)) / (4 h^2)``. Both have O(h^2) error.
    """
    nv = mechanics.n_voigt(state.dim)
    eye = np.eye(nv)
    E0 = relaxed_energy(state, np.zeros(nv))
    C = np.zeros((nv, nv))
    for a in range(nv):
        C[a, a] = (relaxed_energy(state, h * eye[a]) - 2.0 * E0
                   + relaxed_energy(state, -h * eye[a])) / h**2  # fmt: skip
        for b in range(a + 1, nv):
            pp = relaxed_energy(state, h * (eye[a] + eye[b]))
            pm = relaxed_energy(state, h * (eye[a] - eye[b]))
            mp = relaxed_energy(state, h * (-eye[a] + eye[b]))
            mm = relaxed_energy(state, -h * (eye[a] + eye[b]))
            C[a, b] = C[b, a] = (pp - pm - mp + mm) / (4.0 * h**2)
    return C / state.volume


def jax_md_soft(state: State, neighbor_list: bool = False):
    """The soft spheres of a packing fixture written with jax-md (alpha = 2, epsilon = k) on
    ``periodic_general(box, fractional_coordinates=True)``, through ``general.from_jax_md``,
    with the species-pair diameters ``{"sigma": (S, S)}`` as parameters (jax-md reads the
    upper triangle). Returns ``(GeneralEnergy, params)``."""
    from jax_md import energy as jmd_energy
    from jax_md import space as jmd_space

    from tunable_solids.general import from_jax_md

    D = np.asarray(state.params.diameter)
    params = {"sigma": jnp.asarray(0.5 * (D[:, None] + D[None, :]))}
    eps = jnp.asarray(np.asarray(state.params.k))
    box = jnp.asarray(state.box)
    disp, _ = jmd_space.periodic_general(box, fractional_coordinates=True)
    species = jnp.asarray(state.species)
    if not neighbor_list:
        fn = jmd_energy.soft_sphere_pair(disp, species=species, sigma=params["sigma"], epsilon=eps)
        return from_jax_md(fn, name="jax-md soft spheres"), params
    neighbor_fn, fn = jmd_energy.soft_sphere_neighbor_list(
        disp, box, species=species, sigma=params["sigma"], epsilon=eps,
        fractional_coordinates=True, dr_threshold=0.2,
    )  # fmt: skip
    return from_jax_md(fn, neighbor_fn=neighbor_fn, name="jax-md soft spheres (nl)"), params


def sigma_to_diameter(J_sigma: np.ndarray) -> np.ndarray:
    """Chain rule for ``sigma_ab = (D_a + D_b) / 2`` with 2 species: derivatives ``(n, 4)``
    w.r.t. sigma_00, sigma_01, sigma_10, sigma_11 -> ``(n, 2)`` w.r.t. D_0, D_1."""
    J = np.asarray(J_sigma)
    off = 0.5 * (J[:, 1] + J[:, 2])
    return np.stack([J[:, 0] + off, off + J[:, 3]], axis=1)


@pytest.fixture(scope="session")
def fd_tools():
    """Numerical helpers for finite-difference cross-checks, as a namespace."""

    class Tools:
        pass

    tools = Tools()
    tools.kink_window = kink_window
    tools.fd_voigt_directions = fd_voigt_directions
    tools.relaxed_energy = relaxed_energy
    tools.finite_strain_elastic = finite_strain_elastic
    tools.make_packing = make_packing
    tools.make_network = make_network
    tools.options = FD_OPTIONS
    tools.jax_md_soft = jax_md_soft
    tools.sigma_to_diameter = sigma_to_diameter
    return tools


# ------------------------------------------------------------------------------ workflow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """``(results directory, config)`` of one finished run of config/smoke.yaml."""
    results = tmp_path_factory.mktemp("smoke")
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/smoke.yaml",
           "--config", f"results={results}"]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    return results, yaml.safe_load((ROOT / "config/smoke.yaml").read_text())
