"""Value and gradient of Poisson's ratio nu w.r.t. (sigma_alpha, B_alpha_beta) at a minimum.

State: a minimum (max|F| <= 1e-12, Newton-polished) of 2D harmonic_morse_xplor, N = 368
(training-paper settings, 2 species: theta = (D_0, D_1, B_00, B_01, B_11)).

Project: ``studies.training.physics.property_jacobian`` (implicit derivative of the minimum via
``implicit.at_minimum``, matrix-free elastic tensor, CG tolerance 1e-12 everywhere).

Baseline, a straightforward implementation with the libraries' defaults: the energy with
jax-md (``space.periodic_general``, ``smap.pair_neighbor_list``), the minimum made
differentiable with ``jaxopt.implicit_diff.custom_root`` (default linear solver,
``solve_normal_cg``, i.e. jax CG with tol 1e-5 on the normal equations), the elastic tensor
from ``jax_md.elasticity.athermal_moduli`` (default ``cg_tol = 1e-7``) and nu from
``jax_md.elasticity.extract_isotropic_moduli`` (the same isotropic definitions as the
project's). ``jax.value_and_grad`` of that, jitted.

Accuracy: both gradients against central finite differences of nu (re-minimized with the
project's minimizer from the reference minimum and Newton-polished, nu with CG 1e-12),
Richardson-extrapolated over steps h and h/2 (h = 1e-4 max(|theta_j|, 1)); relative error
``max_j |g_j - g_fd_j| / max_j |g_fd_j|``. A column is flagged, and left out, when one of its
re-minimized states has a pair on the other side of a point where u'' jumps (contact
distance sigma, XPLOR switch-on sigma + r_on_a / a, cutoff sigma + r_cut_a / a) than in the
reference: nu jumps there, so that difference quotient is not a derivative.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import QUICK, interleaved, summary, write  # noqa: E402
from _systems import JaxoptJaxMDGradient, sticky  # noqa: E402

from tunable_solids import mechanics as mech  # noqa: E402
from tunable_solids.minimize import minimize, polish  # noqa: E402
from tunable_solids.parameters import params_of, theta_of  # noqa: E402
from tunable_solids.potentials import pair_parameters  # noqa: E402
from tunable_solids.space import pair_vectors  # noqa: E402
from tunable_solids.studies.training.physics import property_jacobian  # noqa: E402

REPEATS = 3 if QUICK else 7
NAMES = ("D", "B")
SEED = 0


def reference_state(system, seed=SEED):
    m = minimize(system.potential, system.start(seed), system.box, system.params, system.species)
    assert bool(m.converged)
    return polish(system.potential, m, jnp.asarray(system.box), system.params, system.species)


def project_fn(system, m):
    theta0 = theta_of(system.params, NAMES)
    box = jnp.asarray(system.box)

    def run(_k):
        v, J = property_jacobian(
            system.potential,
            ("nu",),
            NAMES,
            1e-12,
            theta0,
            system.params,
            m.positions,
            box,
            system.species,
            m.pairs,
        )
        return v[0], J[0]

    return run


def baseline_fn(system, m):
    grad = JaxoptJaxMDGradient(system, NAMES)
    return lambda _k: grad(m.positions)


def nu_at(system, theta, ref):
    """nu after re-minimizing at ``theta`` from ``ref`` (polished; project code, CG 1e-12)."""
    params = params_of(jnp.asarray(theta), system.params, NAMES)
    box = jnp.asarray(system.box)
    m = minimize(system.potential, ref.positions, box, params, system.species)
    m = polish(system.potential, m, box, params, system.species)
    model = mech.Model(system.potential, box, system.species, m.pairs)
    el = mech.elastic_constants(model, m.positions, params)
    sides = _kink_sides(system, params, m)
    return float(mech.isotropic_moduli(el.voigt, system.dim)[2]), bool(m.converged), sides


def _kink_sides(system, params, m):
    """``(i, j, kink)`` of every pair closer than each kink of the potential."""
    pp = pair_parameters(params, system.species, m.pairs.i, m.pairs.j)
    dr = pair_vectors(m.positions, jnp.asarray(system.box), m.pairs)
    r = np.linalg.norm(np.asarray(dr), axis=-1)
    sigma = np.asarray(pp.sigma)
    valid = np.asarray(m.pairs.mask)
    i, j = np.asarray(m.pairs.i), np.asarray(m.pairs.j)
    out = set()
    for k, at in enumerate(system.potential.kinks(sigma)):
        below = valid & (r < at)
        out |= {(a, b, k) for a, b in zip(i[below].tolist(), j[below].tolist(), strict=True)}
    return frozenset(out)


def fd_gradient(system, ref, step=1e-4):
    theta0 = np.asarray(theta_of(system.params, NAMES))
    c0 = _kink_sides(system, system.params, ref)
    g = np.zeros_like(theta0)
    g_h = np.zeros_like(theta0)
    flagged = np.zeros(len(theta0), bool)
    for j in range(len(theta0)):
        h = step * max(abs(theta0[j]), 1.0)
        d = {}
        for hh in (h, h / 2):
            vals = []
            for sign in (1.0, -1.0):
                th = theta0.copy()
                th[j] += sign * hh
                v, ok, c = nu_at(system, th, ref)
                flagged[j] |= (c != c0) or not ok
                vals.append(v)
            d[hh] = (vals[0] - vals[1]) / (2 * hh)
        g[j] = (4 * d[h / 2] - d[h]) / 3
        g_h[j] = d[h / 2]
    return g, g_h, flagged


def rel_err(g, ref, ok):
    return float(np.max(np.abs(g[ok] - ref[ok])) / np.max(np.abs(ref[ok])))


def main():
    load_before = list(os.getloadavg())
    system = sticky(368)
    ref = reference_state(system)
    t = interleaved(project_fn(system, ref), baseline_fn(system, ref), REPEATS)
    ps, bs = summary(t["project"]), summary(t["baseline"])
    v_p, g_p = (np.asarray(x) for x in t["project"]["results"][-1])
    v_b, g_b = (np.asarray(x) for x in t["baseline"]["results"][-1])
    g_fd, g_fd_h2, flagged = fd_gradient(system, ref)
    ok = ~flagged
    accuracy = {
        "nu_project": float(v_p),
        "nu_baseline": float(v_b),
        "nu_abs_diff": float(abs(v_p - v_b)),
        "grad_project": g_p,
        "grad_baseline": g_b,
        "grad_fd_richardson": g_fd,
        "fd_flagged_kink_crossed": flagged,
        # FD's own error: Richardson vs the plain h/2 central difference (an upper bound).
        "fd_self_consistency": rel_err(g_fd_h2, g_fd, ok),
        "rel_err_project_vs_fd": rel_err(g_p, g_fd, ok),
        "rel_err_baseline_vs_fd": rel_err(g_b, g_fd, ok),
        "max_force_state": float(ref.max_force),
        "target": "rel_err_project_vs_fd <= 1e-6",
    }
    a = accuracy
    print(
        f"  nu {v_p:.12f} (baseline {v_b:.12f}); rel. error vs FD: project "
        f"{a['rel_err_project_vs_fd']:.2e}, baseline {a['rel_err_baseline_vs_fd']:.2e}"
        f" (FD self-consistency {a['fd_self_consistency']:.1e})"
    )
    write(
        "gradient",
        "jaxopt.implicit_diff.custom_root (default solve_normal_cg) + "
        "jax_md.elasticity.athermal_moduli (default cg_tol=1e-7), jax-md energy",
        ps["median_s"],
        bs["median_s"],
        REPEATS,
        accuracy,
        load_before,
        ratio_definition="baseline_median_s / project_median_s (wall)",
        ratio_cpu=bs["median_cpu_s"] / ps["median_cpu_s"],
        compile_s={"project": ps["compile_s"], "baseline": bs["compile_s"]},
        project=ps,
        baseline_timing=bs,
        theta=["D_0", "D_1", "B_0_0", "B_0_1", "B_1_1"],
    )


if __name__ == "__main__":
    main()
