"""Bring your own energy: a jax-md energy minimized, measured and differentiated by the project.

Copy this file and replace the energy. What it does:
1. builds a 2D bidisperse packing (N = 64, two species, diameters 1.0 / 1.4) and a jax-md
   soft-sphere energy on ``space.periodic_general(box, fractional_coordinates=True)``,
   with the species-pair diameters ``sigma_ab`` as the parameters (a dict pytree);
2. wraps it with ``general.from_jax_md`` and minimizes it with the project's FIRE to
   max|F| <= 1e-12;
3. prints the relaxed elastic tensor C (Voigt xx, yy, xy), Poisson's ratio nu and
   d nu / d sigma_ab (implicit differentiation through the minimum);
4. last line: the largest relative deviation of C from the project's built-in soft-sphere
   pair path (pair-structured Hessian products) on the same state.

Run: ``.venv/bin/python examples/jax_md_energy.py`` (about half a minute on a laptop CPU).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax_md import energy, space

import tunable_solids  # noqa: F401  (enables float64)
from tunable_solids import mechanics, systems
from tunable_solids import space as space_
from tunable_solids.general import from_jax_md
from tunable_solids.implicit import ParticleEnergy, at_minimum
from tunable_solids.minimize import minimize
from tunable_solids.potentials import make_potential

# --- a state: 64 particles, half of diameter 1.0, half 1.4, packing fraction 0.9
n, dim = 64, 2
diameters = np.array([1.0, 1.4])
species = systems.assign_species(n, 2)  # (N,) ints: 0 for the small, 1 for the large
box = systems.box_for_packing_fraction(diameters[species], dim, 0.90)  # (d, d), columns
start = systems.random_positions(np.random.default_rng(0), n, box)  # (N, d) real space

# --- the jax-md energy: u = (epsilon / 2)(1 - r / sigma_ab)^2 for r < sigma_ab
displacement, _ = space.periodic_general(jnp.asarray(box), fractional_coordinates=True)
soft = energy.soft_sphere_pair(displacement, species=jnp.asarray(species), sigma=1.0)
my_energy = from_jax_md(soft, name="jax-md soft spheres")
# Parameters as keyword arguments of the jax-md energy: a dict of float arrays.
params = {"sigma": jnp.asarray(0.5 * (diameters[:, None] + diameters[None, :]))}

# --- minimize (FIRE 2.0 to max|F| <= 1e-12); Minimum.pairs holds the energy's neighbor state
m = minimize(my_energy, start, box, params, None)
print(f"minimized: converged {bool(m.converged)}, max|F| = {float(m.max_force):.2e}, "
      f"{int(m.iterations)} FIRE steps, energy {float(m.energy):.10f}")

# --- relaxed elastic tensor (Born term minus the non-affine correction, matrix-free)
model = mechanics.Model(my_energy, jnp.asarray(box), None, m.pairs)
C = mechanics.elastic_constants(model, m.positions, params).voigt
B, G, nu = mechanics.isotropic_moduli(C, dim)
np.set_printoptions(precision=8, suppress=False)
print("C (Voigt xx, yy, xy):")
print(np.asarray(C))
print(f"B = {float(B):.10f}  G = {float(G):.10f}  nu = {float(nu):.10f}")


# --- d nu / d sigma_ab through the minimum (implicit differentiation, never unrolled FIRE)
def poisson_ratio(p):
    R = at_minimum(ParticleEnergy(my_energy), m.positions, (p, model.box, None, m.pairs))
    return mechanics.isotropic_moduli(mechanics.elastic_constants(model, R, p).voigt, dim)[2]


# jax-md reads sigma_ab from the upper triangle (a <= b), so the lower one gets no gradient.
dnu = jax.grad(poisson_ratio)(params)["sigma"]
print("d nu / d sigma_ab (rows and columns: species 0, 1):")
print(np.asarray(dnu))

# --- the same state on the project's built-in soft-sphere pair path
builtin = make_potential("soft_sphere")
builtin_params = systems.default_params(2, list(diameters), 1.0, 0.0)
ref = mechanics.elastic_constants(
    mechanics.Model(builtin, jnp.asarray(box), jnp.asarray(species), space_.all_pairs(n)),
    m.positions,
    builtin_params,
).voigt
deviation = float(jnp.max(jnp.abs(C - ref)) / jnp.max(jnp.abs(ref)))
print(f"largest relative deviation of C from the built-in pair path: {deviation:.3e}")
