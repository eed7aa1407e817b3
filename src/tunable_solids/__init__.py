"""tunable_solids: inverse design of athermal disordered solids with JAX.

Importing the package enables float64 in JAX: every quantity the project reports
(forces to 1e-12, elastic constants, derivatives through minima) needs it.
"""

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
