"""Scaling with N of minimize + elastic tensor + gradient, and peak memory.

Systems: 2D harmonic_morse_xplor (training-paper settings, theta = (D, B)) for
N = 256 ... 16384 and 3D 1:1.4 soft spheres at packing fraction 0.70 (theta = D) for
N = 256 ... 8192. Each size runs in a fresh subprocess (``--worker dim N``), which measures:

- ``minimize``: FIRE from random positions to max|F| <= 1e-12 (project defaults; cell-list
  pair list above ``minimize.CELL_LIST_MIN_N`` particles), for ``SEEDS`` start seeds: FIRE
  iteration counts scatter by up to 2x between seeds, so the time entering the fit is the
  median over seeds (all seeds are recorded); the other phases use seed 0's minimum;
- ``elastic``: the relaxed elastic tensor (matrix-free CG to 1e-12, multigrid-preconditioned
  from ``multigrid.MIN_PARTICLES`` particles, as in the workflow), and ``elastic_plain``
  the same with plain CG (not part of the total; shows what the preconditioner gains);
- ``gradient``: nu and d nu / d theta through the minimum (``studies.training.physics.
  property_jacobian``, preconditioned like ``elastic``);
- the process's peak resident set size (``ru_maxrss``) after all three.

Compile time is measured separately (JAX monitoring events of tracing, lowering and XLA
compilation) and subtracted from each phase's wall time. Exponents are least-squares fits
of log(time) against log(N) over the sizes N >= 1024; memory is fitted the same way after
subtracting the runtime's footprint at the smallest N.

Headline ratio: the pair-list build at 2D N = 4096 (where the dense builder still fits in
memory), dense N^2 builder (the previous implementation; baseline) / cell list (project);
the lists are identical.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import QUICK, ROOT, Timer, peak_rss_mb, write  # noqa: E402

SIZES = {2: [256, 512, 1024, 2048, 4096, 8192, 16384], 3: [256, 512, 1024, 2048, 4096, 8192]}
if QUICK:
    SIZES = {2: [256, 1024, 4096], 3: [256, 1024]}
SEEDS = 1 if QUICK else 3
WORKER_TIMEOUT = float(os.environ.get("BENCH_SCALING_TIMEOUT", 3000))
MEMORY_LIMIT_MB = 4096.0


def worker(dim: int, n: int) -> dict:
    import jax
    import jax.numpy as jnp

    from tunable_solids import mechanics as mech
    from tunable_solids.minimize import minimize
    from tunable_solids.multigrid import plan_for
    from tunable_solids.parameters import theta_of
    from tunable_solids.studies.training.physics import property_jacobian

    compile_time = [0.0]

    def listener(event, duration, **kwargs):
        if event.startswith("/jax/core/compile/") or "backend_compile" in event:
            compile_time[0] += duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    from _systems import soft, sticky

    system = sticky(n) if dim == 2 else soft(3, n)
    names = ("D", "B") if dim == 2 else ("D",)
    box = jnp.asarray(system.box)
    out = {"dim": dim, "n": n, "system": system.name, "rss_start_mb": peak_rss_mb()}

    def phase(name, fn):
        c0 = compile_time[0]
        t = Timer()
        res = t(fn)
        out[name + "_wall_s"] = t.wall[0]
        out[name + "_compile_s"] = compile_time[0] - c0
        out[name + "_s"] = max(t.wall[0] - (compile_time[0] - c0), 0.0)
        out[name + "_cpu_s"] = t.cpu[0]
        return res

    def minimize_seed(seed):
        return minimize(system.potential, system.start(seed), box, system.params, system.species)

    runs = [phase(f"minimize_{k}", lambda k=k: minimize_seed(k)) for k in range(SEEDS)]
    m = runs[0]
    out["minimize_seeds"] = [
        {
            "seed": k,
            "s": out.pop(f"minimize_{k}_s"),
            "compile_s": out.pop(f"minimize_{k}_compile_s"),
            "wall_s": out.pop(f"minimize_{k}_wall_s"),
            "cpu_s": out.pop(f"minimize_{k}_cpu_s"),
            "iterations": int(x.iterations),
            "max_force": float(x.max_force),
            "converged": bool(x.converged),
        }
        for k, x in enumerate(runs)
    ]
    seeds = out["minimize_seeds"]
    out.update(
        minimize_s=statistics.median(x["s"] for x in seeds),
        minimize_compile_s=seeds[0]["compile_s"],
        iterations=int(statistics.median(x["iterations"] for x in seeds)),
        max_force=max(x["max_force"] for x in seeds),
        converged=all(x["converged"] for x in seeds),
        pair_slots=len(m.pairs.i),
        pairs=int(m.pairs.mask.sum()),
    )
    plan = plan_for(system.potential, system.params, system.box, n)
    out["multigrid"] = None if plan is None else [list(g) for g in plan.grids]
    model = mech.Model(system.potential, box, system.species, m.pairs, plan)
    el = phase("elastic", lambda: mech.elastic_constants(model, m.positions, system.params))
    out["cg_residual"] = float(el.residual)
    # The same without the multigrid preconditioner (plain CG), for the comparison.
    plain = mech.Model(system.potential, box, system.species, m.pairs)
    el0 = phase("elastic_plain", lambda: mech.elastic_constants(plain, m.positions, system.params))
    out["elastic_plain_vs_multigrid_max_rel"] = float(
        np.max(np.abs(np.asarray(el0.voigt - el.voigt))) / np.max(np.abs(np.asarray(el0.voigt)))
    )
    theta = theta_of(system.params, names)
    v, J = phase(
        "gradient",
        lambda: property_jacobian(
            system.potential,
            ("nu",),
            names,
            1e-12,
            theta,
            system.params,
            m.positions,
            box,
            system.species,
            m.pairs,
            multigrid=plan,
        ),
    )
    out["nu"] = float(v[0])
    out["grad_norm"] = float(np.linalg.norm(np.asarray(J)))
    out["total_s"] = out["minimize_s"] + out["elastic_s"] + out["gradient_s"]
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def pair_build_comparison(n: int = 4096, repeats: int = 5) -> dict:
    """Dense N^2 builder vs cell list, one pair-list build at 2D N (jitted, compiled first)."""
    from functools import partial

    import jax
    import jax.numpy as jnp
    from _systems import sticky

    from tunable_solids import space
    from tunable_solids.minimize import interaction_range, pair_capacity

    system = sticky(n)
    rc = interaction_range(system.potential, system.params) + 0.3
    box = jnp.asarray(system.box)
    cap = pair_capacity(n, 2, 1.6, rc)
    occ = space.max_row_occupancy(system.start(0), system.box, rc)
    row_cap = space.bucket(1.5 * occ + 2)
    dense = jax.jit(partial(space.dense_pairs, capacity=cap))
    cells = jax.jit(partial(space.cell_list_pairs, capacity=cap, row_capacity=row_cap))
    starts = [jnp.asarray(system.start(s)) for s in range(repeats + 1)]
    td, tc = Timer(), Timer()
    same = True
    for k, R in enumerate(starts):
        pd, cd = td(dense, R, box, rc)
        pc, cc, over = tc(cells, R, box, rc)
        same &= bool(int(cd) == int(cc) and not bool(over))
        same &= all(
            np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(pd, pc, strict=True)
        )
        if k == 0:
            compile_s = {"dense": td.wall[0], "cells": tc.wall[0]}
    return {
        "n": n,
        "dense_median_s": statistics.median(td.wall[1:]),
        "cells_median_s": statistics.median(tc.wall[1:]),
        "identical_lists": same,
        "first_call_s": compile_s,
        "repeats": repeats,
    }


def fit_exponent(ns, ys, n_min=1024):
    pts = [(n, y) for n, y in zip(ns, ys, strict=True) if n >= n_min and y > 0]
    if len(pts) < 2:
        return float("nan")
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def main():
    load_before = list(os.getloadavg())
    rows, failures = [], []
    for dim, sizes in SIZES.items():
        for n in sizes:
            t0 = time.perf_counter()
            try:
                p = subprocess.run(
                    [sys.executable, __file__, "--worker", str(dim), str(n)],
                    capture_output=True,
                    text=True,
                    timeout=WORKER_TIMEOUT,
                    cwd=ROOT,
                )
            except subprocess.TimeoutExpired:
                failures.append({"dim": dim, "n": n, "error": f"timeout {WORKER_TIMEOUT} s"})
                print(f"  {dim}D N={n}: timeout after {WORKER_TIMEOUT:.0f} s; larger sizes skipped")
                break
            if p.returncode != 0:
                failures.append({"dim": dim, "n": n, "error": p.stderr[-2000:]})
                print(f"  {dim}D N={n}: failed\n{p.stderr[-2000:]}")
                break
            row = json.loads(p.stdout.strip().splitlines()[-1])
            row["load_during"] = list(os.getloadavg())
            rows.append(row)
            its = [x["iterations"] for x in row["minimize_seeds"]]
            print(
                f"  {dim}D N={n:6d}: minimize {row['minimize_s']:8.2f} s (median; {its} it)"
                f"  elastic {row['elastic_s']:8.2f} s (plain CG {row['elastic_plain_s']:.2f} s)"
                f"  gradient {row['gradient_s']:8.2f} s"
                f"  peak RSS {row['peak_rss_mb']:7.0f} MB  (wall incl. compile "
                f"{time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    exponents, memory = {}, {}
    for dim in SIZES:
        r = [x for x in rows if x["dim"] == dim]
        if not r:
            continue
        ns = [x["n"] for x in r]
        exponents[f"{dim}d"] = {
            k: fit_exponent(ns, [x[k + "_s"] for x in r])
            for k in ("minimize", "elastic", "elastic_plain", "gradient", "total")
        }
        rss0 = r[0]["peak_rss_mb"]
        memory[f"{dim}d"] = {
            "peak_rss_mb": {x["n"]: x["peak_rss_mb"] for x in r},
            "exponent_above_smallest": fit_exponent(
                ns, [x["peak_rss_mb"] - rss0 for x in r], n_min=2048
            ),
        }
    big = [x for x in rows if x["dim"] == 2 and x["n"] == 16384]
    pb = pair_build_comparison(1024 if QUICK else 4096)
    accuracy = {
        "all_converged": all(x["converged"] for x in rows),
        "max_force_max": max(x["max_force"] for x in rows),
        "cg_residual_max": max(x["cg_residual"] for x in rows),
        "pair_lists_identical_cells_vs_dense": pb["identical_lists"],
        "time_exponents": exponents,
        "time_exponent_target": "<= 1.3",
        "memory": memory,
        "peak_rss_2d_16384_mb": big[0]["peak_rss_mb"] if big else None,
        "memory_target": f"2D N=16384 below {MEMORY_LIMIT_MB:.0f} MB peak RSS",
        "failures": failures,
    }
    print(f"  exponents {exponents}; memory {memory}")
    write(
        "scaling",
        "pair-list build with the dense N^2 builder (previous implementation) at 2D "
        f"N={pb['n']}, vs the cell list",
        pb["cells_median_s"],
        pb["dense_median_s"],
        pb["repeats"],
        accuracy,
        load_before,
        ratio_definition="dense builder / cell list (wall, one build)",
        pair_build=pb,
        sizes=rows,
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        import tunable_solids  # noqa: F401

        print(json.dumps(worker(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()
