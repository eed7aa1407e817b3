"""The glass models of the bond-operator study and their instantaneous quench (T_p = infinity).

- Polydisperse inverse-power-law glass (the paper's main model; constants of E. Lerner,
  J. Non-Cryst. Solids 522, 119570 (2019), as this project recalls them; the paper itself
  defers them to that reference, which is not in ../shared): ``u = k (lambda_ij / r)^10``
  smoothed at ``x_c = 1.48 lambda_ij`` (:class:`potentials.InversePowerLaw`), sizes from
  ``P(lambda) ~ lambda^-3`` on ``[1, 2.22]``, ``lambda_ij = (lambda_i + lambda_j)/2
  (1 - 0.2 |lambda_i - lambda_j|)``, number density 0.58 (3D) and 0.86 (2D).
- Harmonic spheres (Appendix B): 50:50, diameters 1 and 1.4, ``(k/2)(r - l_ij)^2``, k = 1,
  prepared at a target pressure (the core's pressure protocol).

Units: lengths in units of the smallest size lambda_min (IPL) or the small diameter
(harmonic spheres), energies in k.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from ... import potentials, systems
from ...minimize import MinimizeOptions, Minimum, minimize

# Force at which the overlap removal hands over to the glass's own potential: far below any
# force of a random start (overlaps r << lambda give r^-11 forces), far above 1e-12.
OVERLAP_FORCE = 1e-3


class IplModel(NamedTuple):
    """Constants of the polydisperse IPL glass former (defaults: see the module docstring)."""

    exponent: float = 10.0
    x_c: float = 1.48
    size_min: float = 1.0
    size_max: float = 2.22
    nonadditivity: float = 0.2
    density_2d: float = 0.86
    density_3d: float = 0.58

    def density(self, dim: int) -> float:
        return self.density_2d if dim == 2 else self.density_3d


class Glass(NamedTuple):
    """What defines one sample before positions: potential, params, species ``(N,)``, box."""

    potential: object
    params: object
    species: np.ndarray
    box: np.ndarray


def ipl_glass(rng: np.random.Generator, n: int, dim: int, model: IplModel | None = None) -> Glass:
    """An IPL sample: ``n`` sizes drawn from ``P(lambda) ~ lambda^-3`` (each particle its own
    species) in the box of the model's number density (``model``: default constants)."""
    model = IplModel() if model is None else model
    sizes = systems.power_law_sizes(rng, n, model.size_min, model.size_max, 3.0)
    potential = potentials.InversePowerLaw(exponent=model.exponent, x_c=model.x_c)
    params = potentials.particle_params(sizes, 1.0, model.nonadditivity)
    box = systems.box_for_density(n, dim, model.density(dim))
    return Glass(potential, params, np.arange(n), box)


def harmonic_sphere_glass(n: int, dim: int, phi: float) -> Glass:
    """A 50:50 harmonic-sphere sample (diameters 1 and 1.4) at packing fraction ``phi``."""
    params = systems.default_params(2, [1.0, 1.4], 1.0, 0.0)
    species = systems.assign_species(n, 2)
    box = systems.box_for_packing_fraction(np.asarray(params.diameter)[species], dim, phi)
    return Glass(potentials.make_potential("harmonic_sphere"), params, species, box)


def remove_overlaps(glass: Glass, R0: np.ndarray, max_steps: int = 200_000) -> np.ndarray:
    """Positions with the overlaps of ``R0`` relaxed: harmonic spheres of the same contact
    distances minimized to ``OVERLAP_FORCE`` (the IPL forces of a random start, ~r^-11, would
    take FIRE tens of thousands of steps: measured, a 3D N = 250 random start had not
    converged after 200,000 steps; after this it converges in ~10,000)."""
    pre = MinimizeOptions(force_tol=OVERLAP_FORCE, max_steps=max_steps)
    soft = potentials.SoftSphere(name="harmonic_sphere", repulsion="absolute")
    m = minimize(soft, R0, glass.box, glass.params, jnp.asarray(glass.species), pre)
    return np.asarray(m.positions)


def quench(glass: Glass, R0: np.ndarray, options: MinimizeOptions | None = None) -> Minimum:
    """Instantaneous quench of positions ``R0`` to the inherent state (max|F| <= the option's
    tolerance); for soft potentials other than harmonic spheres the overlaps are removed
    first (:func:`remove_overlaps`)."""
    options = MinimizeOptions() if options is None else options
    R = R0
    if not isinstance(glass.potential, potentials.SoftSphere):
        R = remove_overlaps(glass, R0, options.max_steps)
    species = jnp.asarray(glass.species)
    return minimize(glass.potential, R, glass.box, glass.params, species, options)


def with_sizes(glass: Glass, sizes: np.ndarray) -> Glass:
    """The IPL sample with its particles' sizes replaced (SWAP moves permute them)."""
    p = glass.params
    return glass._replace(params=potentials.particle_params(sizes, p.k, p.nonadditivity))
