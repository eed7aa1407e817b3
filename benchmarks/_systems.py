"""Benchmark systems and the jax-md baseline (written here with jax-md's space / smap /
partition / minimize API; no code copied from elsewhere).

- ``sticky``: 2D harmonic_morse_xplor of "Designing athermal disordered solids" (k = 5,
  a = 5, B = 0.1, diameters 0.8 / 1.0, two species, number density 1.6);
- ``soft2d``: 2D 1:1.4 bidisperse soft spheres at packing fraction 0.90;
- ``soft3d``: 3D 1:1.4 bidisperse soft spheres at packing fraction 0.70.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from tunable_solids import systems
from tunable_solids.potentials import make_potential
from tunable_solids.space import Pairs


class System(NamedTuple):
    name: str
    potential: object
    params: object
    species: jnp.ndarray
    box: np.ndarray
    n: int
    dim: int

    def start(self, seed: int) -> np.ndarray:
        """Uniformly random start positions of seed ``seed``."""
        return systems.random_positions(np.random.default_rng([7, seed]), self.n, self.box)


def sticky(n: int = 368, n_species: int = 2) -> System:
    params = systems.default_params(n_species, [0.8, 1.0], 5.0, 0.1)
    species = systems.assign_species(n, n_species)
    box = systems.box_for_density(n, 2, 1.6)
    pot = make_potential("harmonic_morse_xplor")
    return System("sticky", pot, params, jnp.asarray(species), box, n, 2)


def soft(dim: int, n: int, phi: float | None = None) -> System:
    phi = phi or (0.90 if dim == 2 else 0.70)
    params = systems.default_params(2, [1.0, 1.4], 1.0, 0.0)
    species = systems.assign_species(n, 2)
    box = systems.box_for_packing_fraction(np.asarray(params.diameter)[species], dim, phi)
    pot = make_potential("soft_sphere")
    return System(f"soft{dim}d", pot, params, jnp.asarray(species), box, n, dim)


# --------------------------------------------------------------------------- jax-md baseline
def _harmonic_morse_xplor(dr, sigma, k, B, a=5.0, r_on_a=5.0, r_cut_a=9.9, **unused):
    """The harmonic_morse_xplor pair energy as a jax-md pair function of distance."""
    rep = 0.5 * k * (dr - sigma) ** 2 - B
    x = jnp.maximum(dr - sigma, 0.0)
    morse = B * (1.0 - jnp.exp(-a * x)) ** 2 - B
    u = jnp.where(dr < sigma, rep, morse)
    r_on, r_cut = sigma + r_on_a / a, sigma + r_cut_a / a
    rc2, ron2 = r_cut**2, r_on**2
    y = jnp.clip(dr, r_on, r_cut) ** 2
    s = (rc2 - y) ** 2 * (rc2 + 2.0 * y - 3.0 * ron2) / (rc2 - ron2) ** 3
    return u * jnp.where(dr < r_on, 1.0, jnp.where(dr < r_cut, s, 0.0))


def _soft_sphere(dr, sigma, k, B, **unused):
    del B, unused
    return 0.5 * k * jnp.maximum(1.0 - dr / sigma, 0.0) ** 2


def jaxmd_pair_fn(system: System):
    return (
        _harmonic_morse_xplor if system.potential.name == "harmonic_morse_xplor" else _soft_sphere
    )


def species_matrices(params):
    """``sigma_ab``, ``k_ab``, ``B_ab`` matrices (what jax-md's smap takes per species pair)."""
    d = params.diameter
    return 0.5 * (d[:, None] + d[None, :]), params.k, params.binding


class JaxMD:
    """The baseline: jax-md energy (Dense neighbor list) + ``minimize.fire_descent``.

    ``dt_start = 1e-3``, ``dt_max = 0.1`` (the settings of the public implementation of
    the training paper), everything else jax-md's defaults; stopped at ``max|F| <= tol``
    inside one ``lax.while_loop`` with the neighbor list updated every step.
    """

    def __init__(self, system: System, skin: float = 0.3, tol: float = 1e-12):
        from jax_md import minimize as jmin
        from jax_md import partition, smap
        from jax_md import space as jspace

        self.system = system
        L = float(system.box[0, 0])
        assert np.allclose(system.box, L * np.eye(system.dim)), "cubic boxes only"
        disp, self.shift = jspace.periodic(L)
        sigma, k, B = species_matrices(system.params)
        dmax = float(jnp.max(system.params.diameter))
        r_cut = float(system.potential.cutoff(jnp.asarray(dmax)))
        self.neighbor_fn = partition.neighbor_list(
            disp,
            L,
            r_cut,
            dr_threshold=skin * dmax,
            format=partition.NeighborListFormat.Dense,
        )
        metric = jspace.canonicalize_displacement_or_metric(disp)
        self.energy_fn = smap.pair_neighbor_list(
            jaxmd_pair_fn(system), metric, species=system.species, sigma=sigma, k=k, B=B
        )
        init, apply = jmin.fire_descent(self.energy_fn, self.shift, dt_start=1e-3, dt_max=0.1)

        def fmax(st):
            return jnp.sqrt(jnp.max(jnp.sum(st.force**2, axis=1)))

        @jax.jit
        def run(R, nbrs):
            st = init(R, neighbor=nbrs)

            def cond(c):
                st, nb, i = c
                ok = jnp.asarray(nb.did_buffer_overflow) == 0
                return (i < 200_000) & (fmax(st) > tol) & ok

            def body(c):
                st, nb, i = c
                nb = nb.update(st.position)
                return apply(st, neighbor=nb), nb, i + 1

            st, nb, i = jax.lax.while_loop(cond, body, (st, nbrs, 0))
            return st.position, i, fmax(st), nb.did_buffer_overflow

        self._run = run
        self._template = None

    def minimize(self, R0, reuse: bool = True):
        """Returns ``(positions, iterations, max|F|)``.

        ``reuse``: build this start's neighbor list in the buffer of the previous one
        (``neighbor_fn.update``), so its capacity, hence the compiled loop, is reused (the
        usual jax-md practice); ``False`` allocates a fresh list per start (its capacity
        follows the start, and a new capacity means a new compilation).
        """
        R0 = jnp.asarray(R0)
        if reuse and self._template is not None:
            nbrs = self.neighbor_fn.update(R0, self._template)
        else:
            # (passed through update once so that later updates have the same pytree)
            nbrs = self.neighbor_fn.update(R0, self.neighbor_fn.allocate(R0, extra_capacity=16))
        while True:
            if not bool(nbrs.did_buffer_overflow):
                R, its, fm, overflow = self._run(R0, nbrs)
                if not bool(overflow):
                    if reuse and self._template is None:
                        self._template = nbrs
                    return R, its, fm
            nbrs = self.neighbor_fn.allocate(R0, extra_capacity=nbrs.idx.shape[1] // 4)
            self._template = nbrs if reuse else None

    def energy(self, R):
        nbrs = self.neighbor_fn.allocate(jnp.asarray(R))
        return self.energy_fn(jnp.asarray(R), neighbor=nbrs)


def independent_check(system: System, R) -> dict:
    """Quality of a minimum, computed independently of both minimizers: ``max|F|`` and the
    energy with a dense all-pairs list, and stability from the dense Hessian (eigenvalues
    below ``1e-10 lambda_max`` in magnitude count as zero; ``stable``: none negative)."""
    from tunable_solids import energy as en
    from tunable_solids import mechanics
    from tunable_solids.space import all_pairs

    R = jnp.asarray(R)
    box = jnp.asarray(system.box)
    pairs: Pairs = all_pairs(system.n)
    F = en.forces(system.potential, R, box, system.params, system.species, pairs)
    E = en.energy(system.potential, R, box, system.params, system.species, pairs)
    model = mechanics.Model(system.potential, box, system.species, pairs)
    w = np.linalg.eigvalsh(np.asarray(mechanics.hessian_matrix(model, R, system.params)))
    zero = np.abs(w) < 1e-10 * w[-1]
    return {
        "max_force": float(en.max_force(F)),
        "energy_per_particle": float(E) / system.n,
        "stable": bool(np.all(w[~zero] > 0)),
        "n_zero_modes": int(zero.sum()),
        "lowest_nonzero_eig": float(w[~zero][0]),
    }


class JaxoptJaxMDGradient:
    """The gradient baseline: value and gradient of nu w.r.t. theta = (D, B) at a minimum.

    Energy with jax-md (``space.periodic_general``, ``smap.pair_neighbor_list``); the
    minimum made differentiable by ``jaxopt.implicit_diff.custom_root`` with its default
    linear solver (``solve_normal_cg``: jax CG, tol 1e-5, on the normal equations); the
    elastic tensor from ``jax_md.elasticity.athermal_moduli`` (default ``cg_tol = 1e-7``);
    nu from ``jax_md.elasticity.extract_isotropic_moduli`` (the project's definitions).
    One jitted ``value_and_grad``; the minimum and its neighbor list are arguments, and
    lists of later states are built in the first one's buffer, so new states of one shape
    do not recompile.
    """

    def __init__(self, system: System, names=("D", "B")):
        from jax_md import elasticity, partition, smap
        from jax_md import space as jspace
        from jaxopt.implicit_diff import custom_root

        from tunable_solids.parameters import params_of, theta_of

        self.system = system
        box = jnp.asarray(system.box)
        disp, _ = jspace.periodic_general(box, fractional_coordinates=False)
        metric = jspace.canonicalize_displacement_or_metric(disp)
        dmax = float(jnp.max(system.params.diameter))
        r_cut = float(system.potential.cutoff(jnp.asarray(dmax)))
        self.neighbor_fn = partition.neighbor_list(
            disp, box, r_cut, format=partition.NeighborListFormat.Dense, disable_cell_list=True
        )
        pair_fn = jaxmd_pair_fn(system)
        self.theta0 = theta_of(system.params, names)

        def energy_fn(R, theta, nbrs, **kwargs):
            sigma, k, B = species_matrices(params_of(theta, system.params, names))
            e = smap.pair_neighbor_list(
                pair_fn, metric, species=system.species, sigma=sigma, k=k, B=B
            )
            return e(R, neighbor=nbrs, **kwargs)

        def optimality(R, theta, nbrs):
            return jax.grad(energy_fn)(R, theta, nbrs)

        @custom_root(optimality)
        def minimum(R_init, theta, nbrs):
            del theta, nbrs
            return jax.lax.stop_gradient(R_init)  # the minimizer already ran (not timed)

        def nu(theta, R_star, nbrs):
            R = minimum(R_star, theta, nbrs)
            emt = elasticity.athermal_moduli(lambda R, **kw: energy_fn(R, theta, nbrs, **kw))
            return elasticity.extract_isotropic_moduli(emt(R, box))["nu"]

        self._vg = jax.jit(jax.value_and_grad(nu))
        self._template = None

    def __call__(self, R_star, theta=None):
        R_star = jnp.asarray(R_star)
        if self._template is None:
            nbrs = self.neighbor_fn.allocate(R_star, extra_capacity=8)
            nbrs = self._template = self.neighbor_fn.update(R_star, nbrs)
        else:
            nbrs = self.neighbor_fn.update(R_star, self._template)
            if bool(nbrs.did_buffer_overflow):
                nbrs = self._template = self.neighbor_fn.allocate(R_star, extra_capacity=8)
        return self._vg(self.theta0 if theta is None else theta, R_star, nbrs)
