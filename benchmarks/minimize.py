"""Minimization from random positions to max|F| <= 1e-12: project FIRE vs jax-md FIRE.

System: 2D harmonic_morse_xplor, N = 368 (k = 5, a = 5, B = 0.1, diameters 0.8 / 1.0,
density 1.6), the training-paper settings. Baseline: jax-md ``minimize.fire_descent`` with
``dt_start = 1e-3``, ``dt_max = 0.1`` on the same potential written with jax-md's
space / smap / partition API (benchmarks/_systems.py), Dense neighbor list updated every
step, in one ``lax.while_loop``. Both start from the same random positions (one seed per
repeat) and stop at the same criterion.

Headline: the project's ``minimize`` with its default options (step cap adapted to the
stiffness, ``FireOptions.dt_auto``). Also measured, interleaved with the same baseline: the
fixed cap ``dt_max = 0.1`` (``dt_auto = 0``) and Newton-Krylov finishing (FIRE to 1e-6, then
Newton-CG). Minimum quality is checked independently of both codes (dense all-pairs forces
and Hessian). A second part ("fire_parameters") compares the FIRE iteration counts of the
adaptive and the fixed cap on harmonic-Morse and on 2D / 3D soft spheres, with the quality
and energy distribution of the minima reached.
"""

from __future__ import annotations

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import QUICK, interleaved, summary, write  # noqa: E402
from _systems import JaxMD, independent_check, soft, sticky  # noqa: E402

from tunable_solids.minimize import FireOptions, MinimizeOptions, minimize  # noqa: E402

FIXED_DT = FireOptions(dt_auto=0.0)

REPEATS = 3 if QUICK else 7
VARIANTS = {
    "default": MinimizeOptions(),
    "fixed_dt": MinimizeOptions(fire=FIXED_DT),
    "newton_1e-6": MinimizeOptions(newton_tol=1e-6),
}


def main():
    load_before = list(os.getloadavg())
    system = sticky(368)
    base = JaxMD(system)

    # The two energy functions are the same potential: compare at a random configuration.
    from tunable_solids import energy as en
    from tunable_solids.space import all_pairs

    R_test = jnp.asarray(system.start(999))
    e_proj = float(
        en.energy(
            system.potential,
            R_test,
            jnp.asarray(system.box),
            system.params,
            system.species,
            all_pairs(system.n),
        )
    )
    e_base = float(base.energy(R_test))
    energy_match = abs(e_proj - e_base) / abs(e_proj)

    def baseline(k):
        return base.minimize(system.start(max(k, 0) + 1000 * (k < 0)))

    variants = {}
    base_times = []
    base_out = None
    for name, opts in VARIANTS.items():
        if QUICK and name not in ("default", "fixed_dt"):
            continue

        def project(k, opts=opts):
            m = minimize(
                system.potential,
                system.start(max(k, 0) + 1000 * (k < 0)),
                system.box,
                system.params,
                system.species,
                opts,
            )
            return m

        t = interleaved(project, baseline, REPEATS)
        ps, bs = summary(t["project"]), summary(t["baseline"])
        base_times += bs["all_s"]
        if base_out is None:
            base_out = t["baseline"]["results"]
        minima = t["project"]["results"]
        variants[name] = {
            "project": ps,
            "baseline": bs,
            "ratio": bs["median_s"] / ps["median_s"],
            "ratio_cpu": bs["median_cpu_s"] / ps["median_cpu_s"],
            "iterations": [int(m.iterations) for m in minima],
            "max_force_reported": [float(m.max_force) for m in minima],
            "quality": [independent_check(system, m.positions) for m in minima],
        }
        print(
            f"  {name:24s} project {ps['median_s']:.3f} s  baseline {bs['median_s']:.3f} s  "
            f"ratio {variants[name]['ratio']:.2f} (cpu {variants[name]['ratio_cpu']:.2f})"
        )

    base_quality = [independent_check(system, R) for R, _, _ in base_out]
    head = variants["default"]
    accuracy = {
        "criterion": "max|F| <= 1e-12 (recomputed with a dense all-pairs list)",
        "energy_function_rel_diff_project_vs_jaxmd": energy_match,
        "project_max_force": max(q["max_force"] for q in head["quality"]),
        "baseline_max_force": max(q["max_force"] for q in base_quality),
        "project_all_stable": all(q["stable"] for q in head["quality"]),
        "baseline_all_stable": all(q["stable"] for q in base_quality),
        "project_energy_per_particle": _mean_std(
            [q["energy_per_particle"] for q in head["quality"]]
        ),
        "baseline_energy_per_particle": _mean_std([q["energy_per_particle"] for q in base_quality]),
        "project_iterations_median": statistics.median(head["iterations"]),
        "baseline_iterations_median": statistics.median(int(i) for _, i, _ in base_out),
    }
    print(f"  accuracy: {accuracy}")
    fire = fire_parameters()
    write(
        "minimize",
        "jax-md 0.2 minimize.fire_descent(dt_start=1e-3, dt_max=0.1), Dense neighbor list, "
        "same potential via jax-md smap; 2D harmonic_morse_xplor N=368, random starts",
        head["project"]["median_s"],
        head["baseline"]["median_s"],
        REPEATS,
        accuracy,
        load_before,
        project_options="MinimizeOptions() (defaults)",
        ratio_definition="baseline_median_s / project_median_s (wall); ratio_cpu: CPU time",
        ratio_cpu=head["ratio_cpu"],
        compile_s={
            "project": head["project"]["compile_s"],
            "baseline": head["baseline"]["compile_s"],
        },
        variants=variants,
        baseline_quality=base_quality,
        fire_parameters=fire,
    )


def _mean_std(x):
    return {"mean": float(np.mean(x)), "std": float(np.std(x)), "n": len(x)}


def fire_parameters() -> dict:
    """FIRE iterations and minimum quality, adaptive (default) vs fixed step cap, three
    systems."""
    seeds = 3 if QUICK else 8
    out = {}
    for system in (sticky(368), soft(2, 368), soft(3, 256)):
        row = {}
        for name, opts in (
            ("default", MinimizeOptions()),
            ("fixed_dt", MinimizeOptions(fire=FIXED_DT)),
        ):
            its, q = [], []
            for s in range(seeds):
                m = minimize(
                    system.potential,
                    system.start(100 + s),
                    system.box,
                    system.params,
                    system.species,
                    opts,
                )
                its.append(int(m.iterations))
                q.append(independent_check(system, m.positions))
            row[name] = {
                "iterations": its,
                "iterations_median": statistics.median(its),
                "all_converged": all(x["max_force"] <= 1e-12 for x in q),
                "all_stable": all(x["stable"] for x in q),
                "energy_per_particle": _mean_std([x["energy_per_particle"] for x in q]),
            }
        row["iteration_ratio"] = row["fixed_dt"]["iterations_median"] / max(
            row["default"]["iterations_median"], 1
        )
        out[system.name] = row
        print(
            f"  fire parameters {system.name}: iterations adaptive cap "
            f"{row['default']['iterations_median']}, fixed {row['fixed_dt']['iterations_median']}"
            f" (fixed / adaptive x{row['iteration_ratio']:.2f}); stable "
            f"{row['default']['all_stable']} / {row['fixed_dt']['all_stable']}"
        )
    return out


if __name__ == "__main__":
    main()
