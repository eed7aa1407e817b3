"""The response Jacobian of a general energy (``general.GeneralEnergy``).

Two energy codes and two parameterizations of the same soft spheres: the project's pair
potential with species diameters (theta = (D_0, D_1)) and jax-md's ``soft_sphere_pair``
through ``general.from_jax_md`` with the species-pair diameters sigma_ab (theta = the ``all``
leaves of ``{"sigma": (2, 2)}``). With sigma_ab = (D_a + D_b) / 2 the chain rule
(``sigma_to_diameter`` of tests/conftest.py) links the two Jacobians. Both are implicit
derivatives with CG to 1e-12 (measured agreement ~1e-13 relative); 1e-10 is the route
tolerance of tests/core/test_general_energy.py.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from tunable_solids.preparation import State
from tunable_solids.studies.response.physics import FeatureSpec, jacobian

RTOL = 1e-10


def test_response_jacobian_of_a_jax_md_energy(soft2d, fd_tools):
    box = jnp.asarray(soft2d.box)
    rattler = jnp.asarray(soft2d.rattlers)
    spec = FeatureSpec(("C", "Sigma"))
    fast = State(soft2d.R, box, soft2d.species, soft2d.minimum.pairs, rattler)
    J_D = jacobian(soft2d.potential, spec, ("D",), soft2d.params, fast)
    gen, params = fd_tools.jax_md_soft(soft2d)
    J_s = jacobian(gen, spec, ("all",), params, State(soft2d.R, box, None, None, rattler))
    assert J_s.J.shape == (J_D.J.shape[0], 4)
    y_scale = float(jnp.max(jnp.abs(J_D.y0)))
    assert np.max(np.abs(np.asarray(J_s.y0) - np.asarray(J_D.y0))) < RTOL * y_scale
    J_scale = float(jnp.max(jnp.abs(J_D.J)))
    assert np.max(np.abs(fd_tools.sigma_to_diameter(J_s.J) - np.asarray(J_D.J))) < RTOL * J_scale
