"""The training gradient of a general energy (``general.GeneralEnergy``): nu and the pressure
and their gradient through the minimum (``training.property_jacobian``, reverse mode) of
jax-md soft spheres (``general.from_jax_md``, parameters sigma_ab) equal the pair path's
(parameters D) after the chain rule sigma_ab = (D_a + D_b) / 2 (tests/conftest.py
``sigma_to_diameter``). Same tolerance and reason as tests/response/test_general_energy_jacobian.py.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from tunable_solids.parameters import theta_of
from tunable_solids.studies.training.physics import property_jacobian

RTOL = 1e-10


def test_training_gradient_of_a_jax_md_energy(soft2d, fd_tools):
    box = jnp.asarray(soft2d.box)
    props = ("nu", "pressure")
    theta_D = theta_of(soft2d.params, ("D",))
    q_D, g_D = property_jacobian(soft2d.potential, props, ("D",), 1e-12, theta_D, soft2d.params,
                                 soft2d.R, box, soft2d.species, soft2d.minimum.pairs)  # fmt: skip
    gen, params = fd_tools.jax_md_soft(soft2d)
    q_s, g_s = property_jacobian(gen, props, ("all",), 1e-12, theta_of(params, ("all",)),
                                 params, soft2d.R, box, None, None)  # fmt: skip
    assert np.max(np.abs(np.asarray(q_s) - np.asarray(q_D))) < RTOL * float(jnp.max(jnp.abs(q_D)))
    scale = float(jnp.max(jnp.abs(g_D)))
    assert np.max(np.abs(fd_tools.sigma_to_diameter(g_s) - np.asarray(g_D))) < RTOL * scale
