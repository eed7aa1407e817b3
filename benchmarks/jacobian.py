"""Jacobian of the 21 independent elastic constants w.r.t. 32 species diameters:
automatic differentiation through the minimum vs central finite differences.

State: 3D 1:1.4 bidisperse soft spheres, N = 256, packing fraction 0.70, minimized to
max|F| <= 1e-12 and Newton-polished; particles reassigned at random to 32 species (each of
one size; ``systems.reassign_species``), theta = the 32 species diameters.

Project: ``studies.response.physics.jacobian`` (implicit differentiation, reverse mode since
32 > 21, CG 1e-12). Baseline: ``studies.response.physics.jacobian_fd``, central differences
of re-minimized (and Newton-polished) features, Richardson-extrapolated over steps h and h/2
(128 re-minimizations; step 1e-4 relative). Agreement: ``max |J_AD - J_FD| / max |J_AD|`` over
the columns whose re-minimizations kept the contact network (target <= 1e-5).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import QUICK, Timer, summary, write  # noqa: E402
from _systems import soft  # noqa: E402

from tunable_solids import mechanics as mech  # noqa: E402
from tunable_solids import systems  # noqa: E402
from tunable_solids.minimize import MinimizeOptions, minimize, polish  # noqa: E402
from tunable_solids.preparation import State  # noqa: E402
from tunable_solids.studies.response.physics import FeatureSpec, jacobian, jacobian_fd  # noqa: E402

N_THETA = 8 if QUICK else 32
AD_REPEATS = 3 if QUICK else 5
FD_REPEATS = 1 if QUICK else 2


def reference_state(seed=0):
    system = soft(3, 256)
    box = jnp.asarray(system.box)
    m = minimize(system.potential, system.start(seed), box, system.params, system.species)
    assert bool(m.converged)
    m = polish(system.potential, m, box, system.params, system.species)
    re = systems.reassign_species(
        np.random.default_rng(seed), np.asarray(system.species), system.params, N_THETA
    )
    species = jnp.asarray(re.species)
    model = mech.Model(system.potential, box, species, m.pairs)
    contact = np.asarray(mech.contact_mask(model, m.positions, re.params))
    ratt = mech.rattlers(
        system.n, 3, np.asarray(m.pairs.i), np.asarray(m.pairs.j), contact, attractive=False
    )
    state = State(m.positions, box, species, m.pairs, jnp.asarray(ratt))
    return system, re.params, state, m


def main():
    load_before = list(os.getloadavg())
    system, params, state, m = reference_state()
    spec = FeatureSpec(("C",))
    names = ("D",)
    options = MinimizeOptions()

    ad = Timer()
    J = None
    for _ in range(AD_REPEATS + 1):  # first call compiles
        J = ad(lambda: jacobian(system.potential, spec, names, params, state).J)
    fd = Timer()
    check = None
    for _ in range(FD_REPEATS + 1):  # first call compiles the re-minimization and features
        check = fd(
            lambda: jacobian_fd(
                system.potential, spec, names, params, state, np.asarray(J), options
            )
        )
    ps = summary({"first_wall": ad.wall[0], "timer": _tail(ad)})
    bs = summary({"first_wall": fd.wall[0], "timer": _tail(fd)})
    err = check.max_rel_err["C"]
    accuracy = {
        "max_rel_err_C": err,
        "target": "<= 1e-5",
        "columns_rearranged": int(np.sum(check.rearranged)),
        "n_features": int(J.shape[0]),
        "n_theta": int(J.shape[1]),
        "jacobian_mode": "reverse",
        "fd_step": check.step,
        "max_force_state": float(m.max_force),
        "n_rattlers": int(np.sum(np.asarray(state.rattler))),
    }
    print(
        f"  J {J.shape}: AD {ps['median_s']:.2f} s, FD {bs['median_s']:.2f} s; "
        f"max rel. deviation {err:.2e} ({accuracy['columns_rearranged']} columns rearranged)"
    )
    write(
        "jacobian",
        "response.jacobian_fd: central differences of re-minimized features, Richardson "
        "(4 re-minimizations per parameter)",
        ps["median_s"],
        bs["median_s"],
        AD_REPEATS,
        accuracy,
        load_before,
        baseline_repeats=FD_REPEATS,
        ratio_definition="FD median / AD median (wall)",
        ratio_cpu=bs["median_cpu_s"] / ps["median_cpu_s"],
        compile_s={"project": ps["compile_s"], "baseline": bs["compile_s"]},
        project=ps,
        baseline_timing=bs,
        system="3D soft spheres 1:1.4, N=256, phi=0.70, 32 species (diameters)",
    )


def _tail(t: Timer) -> Timer:
    out = Timer()
    out.wall, out.cpu = t.wall[1:], t.cpu[1:]
    return out


if __name__ == "__main__":
    main()
