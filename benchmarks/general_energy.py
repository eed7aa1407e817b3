"""Relaxed elastic tensor on the general energy path, against the fast path and jax-md.

State: a minimum (max|F| <= 1e-12, Newton-polished) of 2D soft spheres, 1:1.4 bidisperse,
packing fraction 0.90, N = 512 (N = 128 with BENCH_QUICK).

Three sides, each computing the relaxed Voigt matrix C of that state, CG tolerance 1e-12:
- ``fast``: the built-in pair potential (pair-structured Hessian products, project cell
  list): ``mechanics.elastic_constants`` on ``potentials.SoftSphere``;
- ``general``: the same energy written with jax-md (``energy.soft_sphere_neighbor_list`` on
  ``space.periodic_general(box, fractional_coordinates=True)``), wrapped by
  ``general.from_jax_md`` (autodiff Hessian-vector products, jax-md's neighbor list);
- ``jax_md``: jax-md's own ``elasticity.athermal_moduli`` on that same jax-md energy and
  neighbor list, with ``cg_tol = 1e-12`` (its default is 1e-7) and its default tether.

Ratios: general / fast time (what the pair structure buys, or not, for this quantity), and
jax-md / general (the headline; target: the general path at least as fast, ratio >= 1).
Accuracy: max relative deviation of each C from the fast path's.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import QUICK, interleaved_many, summary, write  # noqa: E402
from jax_md import elasticity, energy, space  # noqa: E402

from tunable_solids import mechanics as M  # noqa: E402
from tunable_solids import systems  # noqa: E402
from tunable_solids.general import from_jax_md  # noqa: E402
from tunable_solids.minimize import minimize, polish  # noqa: E402
from tunable_solids.potentials import make_potential  # noqa: E402
from tunable_solids.space import fractional  # noqa: E402

N = 128 if QUICK else 512
REPEATS = 3 if QUICK else 7
CG_TOL = 1e-12


def state():
    diameters = [1.0, 1.4]
    pot = make_potential("soft_sphere")
    params = systems.default_params(2, diameters, 1.0, 0.0)
    species = jnp.asarray(systems.assign_species(N, 2))
    box = systems.box_for_packing_fraction(np.asarray(diameters)[np.asarray(species)], 2, 0.90)
    start = systems.random_positions(np.random.default_rng(0), N, box)
    m = minimize(pot, start, box, params, species)
    assert bool(m.converged)
    m = polish(pot, m, jnp.asarray(box), params, species)
    return pot, params, species, jnp.asarray(box), m


def main():
    pot, params, species, box, m = state()
    D = np.asarray(params.diameter)
    sigma = jnp.asarray(0.5 * (D[:, None] + D[None, :]))
    disp, _ = space.periodic_general(box, fractional_coordinates=True)
    neighbor_fn, jmd_energy = energy.soft_sphere_neighbor_list(
        disp, box, species=species, sigma=sigma, fractional_coordinates=True
    )
    gen = from_jax_md(jmd_energy, neighbor_fn=neighbor_fn, name="jax-md soft spheres")
    jparams = {"sigma": sigma}
    nbrs = gen.allocate(m.positions, box)
    fast_model = M.Model(pot, box, species, m.pairs)
    gen_model = M.Model(gen, box, None, nbrs)
    S = fractional(m.positions, box)
    emt = jax.jit(elasticity.athermal_moduli(jmd_energy, cg_tol=CG_TOL, check_convergence=True))

    def fast(_k):
        return M.elastic_constants(fast_model, m.positions, params, cg_tol=CG_TOL).voigt

    def general(_k):
        return M.elastic_constants(gen_model, m.positions, jparams, cg_tol=CG_TOL).voigt

    def jax_md(_k):
        return emt(S, box, neighbor=nbrs)

    load = list(os.getloadavg())
    t = interleaved_many({"fast": fast, "general": general, "jax_md": jax_md}, REPEATS)
    s = {k: summary(v) for k, v in t.items()}
    C_fast = np.asarray(t["fast"]["results"][-1])
    C_gen = np.asarray(t["general"]["results"][-1])
    C4, converged = t["jax_md"]["results"][-1]
    C_jmd = np.array([[C4[a, b, c, d] for (c, d) in M.VOIGT[2]] for (a, b) in M.VOIGT[2]])
    scale = np.max(np.abs(C_fast))
    accuracy = {
        "general_vs_fast_rel": float(np.max(np.abs(C_gen - C_fast)) / scale),
        "jax_md_vs_fast_rel": float(np.max(np.abs(C_jmd - C_fast)) / scale),
        "jax_md_cg_converged": bool(converged),
        "max_force": float(m.max_force),
    }
    print(f"[general_energy] N = {N}: fast {s['fast']['median_s']:.4g} s, general "
          f"{s['general']['median_s']:.4g} s, jax-md athermal_moduli "
          f"{s['jax_md']['median_s']:.4g} s")  # fmt: skip
    print(f"[general_energy] general / fast time: "
          f"{s['general']['median_s'] / s['fast']['median_s']:.2f} (> 1: the pair path is faster)")
    print(f"[general_energy] C deviation from the fast path: general "
          f"{accuracy['general_vs_fast_rel']:.2e}, jax-md {accuracy['jax_md_vs_fast_rel']:.2e}")
    write(
        "general_energy",
        "jax-md elasticity.athermal_moduli (cg_tol 1e-12) on the same jax-md energy",
        s["general"]["median_s"],
        s["jax_md"]["median_s"],
        REPEATS,
        accuracy,
        load,
        N=N,
        sides=s,
        general_over_fast=s["general"]["median_s"] / s["fast"]["median_s"],
    )


if __name__ == "__main__":
    main()
