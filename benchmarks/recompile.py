"""Repeated seeds of one shape do not recompile: measured compilation counts.

Compilations are counted with ``jax.monitoring`` (one ``backend_compile`` event per XLA
compilation; tracing and lowering durations are summed as compile time too).

Project, 2D harmonic-Morse N = 368 (training-paper settings), one call per seed:

- ``minimize`` from random positions, seeds 0..K-1;
- ``studies.training.physics.evaluate`` (minimize + nu + gradient), seeds 0..K-1;
- ``minimize.minimize_batch`` of 4 configurations, batches 0..2;
- ``protocols.prepare_at_pressure`` (2D soft spheres, N = 128, p = 0.1: the box is
  rescaled several times per seed), seeds 0..2.

Baseline: jax-md ``fire_descent`` (benchmarks/minimize.py settings) as commonly used, with
``neighbor_fn.allocate`` per start: the list's capacity follows each start, and every new
capacity is a new compilation. (Reusing one buffer with ``neighbor_fn.update`` avoids that;
measured too, as ``baseline_reuse``.)

Headline ratio: median time per seed after the first (seeds 1..K-1), baseline (allocate
per seed) / project ``minimize``.
"""

from __future__ import annotations

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from _common import QUICK, Timer, write  # noqa: E402
from _systems import JaxMD, soft, sticky  # noqa: E402

from tunable_solids import systems  # noqa: E402
from tunable_solids.minimize import MinimizeOptions, minimize, minimize_batch  # noqa: E402
from tunable_solids.protocols import prepare_at_pressure  # noqa: E402
from tunable_solids.studies.training import physics as T  # noqa: E402

K = 3 if QUICK else 5


class Counter:
    def __init__(self):
        self.compiles = 0
        self.compile_s = 0.0
        jax.monitoring.register_event_duration_secs_listener(self)

    def __call__(self, event, duration, **kwargs):
        if "backend_compile" in event:
            self.compiles += 1
        if event.startswith("/jax/core/compile/") or "backend_compile" in event:
            self.compile_s += duration


COUNTER = Counter()


def per_call(fn, args_list) -> dict:
    counts, comp, t = [], [], Timer()
    for a in args_list:
        c0, s0 = COUNTER.compiles, COUNTER.compile_s
        t(fn, a)
        counts.append(COUNTER.compiles - c0)
        comp.append(COUNTER.compile_s - s0)
    return {
        "compilations_per_call": counts,
        "compile_s_per_call": comp,
        "wall_s_per_call": t.wall,
        "recompiles_after_first": int(sum(counts[1:])),
        "median_after_first_s": statistics.median(t.wall[1:]),
    }


def main():
    load_before = list(os.getloadavg())
    system = sticky(368)
    seeds = list(range(K))

    def proj_min(k):
        return minimize(system.potential, system.start(k), system.box, system.params,
                        system.species)  # fmt: skip

    project = per_call(proj_min, seeds)
    base_alloc = JaxMD(system)
    baseline = per_call(lambda k: base_alloc.minimize(system.start(k), reuse=False), seeds)
    base_reuse = JaxMD(system)
    baseline_reuse = per_call(lambda k: base_reuse.minimize(system.start(k)), seeds)

    tsys = T.System(system.potential, system.box, np.asarray(system.species), system.params,
                    MinimizeOptions())  # fmt: skip
    spec = T.TrainSpec("ensemble", (("nu", 0.35),), ("D", "B"), batch=1)
    theta = np.asarray(T.theta_of(system.params, spec.names))
    evaluate = per_call(
        lambda k: T.evaluate(spec, tsys, theta, T.fresh_positions(tsys, 50 + k, 0, 1))[1],
        seeds,
    )
    batch = per_call(
        lambda k: minimize_batch(
            system.potential,
            np.stack([system.start(100 + 4 * k + b) for b in range(4)]),
            system.box,
            system.params,
            system.species,
        ),
        list(range(3)),
    )
    s2 = soft(2, 128)

    def pressure(k):
        R0 = systems.random_positions(np.random.default_rng([3, k]), s2.n, s2.box)
        out = prepare_at_pressure(s2.potential, R0, s2.box, s2.params, s2.species, 0.1,
                                  MinimizeOptions())  # fmt: skip
        return out.minimum.positions

    pressure_prep = per_call(pressure, list(range(3)))
    results = {
        "minimize": project,
        "evaluate": evaluate,
        "minimize_batch": batch,
        "prepare_at_pressure": pressure_prep,
        "baseline_allocate_per_seed": baseline,
        "baseline_reuse": baseline_reuse,
    }
    for name, r in results.items():
        print(f"  {name:28s} compilations per call {r['compilations_per_call']}")
    accuracy = {
        "project_recompiles_after_first": {
            k: results[k]["recompiles_after_first"]
            for k in ("minimize", "evaluate", "minimize_batch", "prepare_at_pressure")
        },
        "baseline_recompiles_after_first": baseline["recompiles_after_first"],
        "target": "0 recompilations for repeated seeds of one shape",
    }
    write(
        "recompile",
        "jax-md fire_descent with neighbor_fn.allocate per seed (capacity follows the start)",
        project["median_after_first_s"],
        baseline["median_after_first_s"],
        K - 1,
        accuracy,
        load_before,
        ratio_definition="baseline / project, median wall time per seed after the first",
        results=results,
    )


if __name__ == "__main__":
    main()
