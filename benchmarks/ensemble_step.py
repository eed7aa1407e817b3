"""One ensemble training step with 8 fresh configurations (2D harmonic-Morse, N = 368):
8 minimizations from random positions, nu and its gradient w.r.t. theta = (D, B) at each
minimum (implicit differentiation), the ensemble loss and one RMSProp update.

Sides, interleaved on the same configurations (seeded by run seed and step):

- ``sequential`` (the project's default ``train_step`` of ``studies.training.physics``):
  configurations one by one;
- ``batched`` (``train_step`` with ``TrainSpec.vectorize``): one vectorized minimization of
  the 8 and one vectorized property/gradient pass (``minimize.minimize_batch``,
  ``studies.training.physics.property_jacobian_batch``);
- ``baseline``: the sum, over the 8 configurations, of the baselines of benchmarks/minimize.py
  (jax-md FIRE, dt_start 1e-3, dt_max 0.1) and benchmarks/gradient.py (jaxopt custom_root +
  jax-md athermal_moduli, default tolerances) on the jax-md minimum.

Headline ratio: baseline / sequential. Also reported: sequential / batched (> 1 would mean
batching pays on this machine).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import QUICK, interleaved_many, summary, write  # noqa: E402
from _systems import JaxMD, JaxoptJaxMDGradient, sticky  # noqa: E402

from tunable_solids.minimize import MinimizeOptions  # noqa: E402
from tunable_solids.studies.training import physics as T  # noqa: E402

BATCH = 2 if QUICK else 8
REPEATS = 1 if QUICK else 3


def main():
    load_before = list(os.getloadavg())
    system = sticky(368)
    tsys = T.System(system.potential, system.box, np.asarray(system.species), system.params,
                    MinimizeOptions())  # fmt: skip
    spec = T.TrainSpec("ensemble", (("nu", 0.35),), ("D", "B"), batch=BATCH)
    vectorized = replace(spec, vectorize=True)
    state0 = T.init_state(spec, tsys, np.zeros((0, system.n, 2)))
    base_min = JaxMD(system)
    base_grad = JaxoptJaxMDGradient(system, spec.names)

    def seed(k):
        return 1000 + k

    def sequential(k):
        return T.train_step(spec, tsys, state0, seed(k))

    def batched(k):
        return T.train_step(vectorized, tsys, state0, seed(k))

    def baseline(k):
        starts = T.fresh_positions(tsys, seed(k), state0.step, spec.batch)
        out = []
        for R0 in starts:
            R, its, fmax = base_min.minimize(R0)
            out.append((base_grad(R), int(its), float(fmax)))
        return out

    t = interleaved_many(
        {"sequential": sequential, "batched": batched, "baseline": baseline}, REPEATS
    )
    seq, bat, base = (summary(t[k]) for k in ("sequential", "batched", "baseline"))
    diffs = []
    for (s_state, s_rec), (b_state, b_rec) in zip(
        t["sequential"]["results"], t["batched"]["results"], strict=True
    ):
        diffs.append(
            {
                "loss_rel_diff": abs(b_rec.loss - s_rec.loss) / abs(s_rec.loss),
                "theta_max_abs_diff": float(np.max(np.abs(b_state.theta - s_state.theta))),
                "iterations_sequential": s_rec.iterations,
                "iterations_batched": b_rec.iterations,
                "n_excluded": [s_rec.n_excluded, b_rec.n_excluded],
            }
        )
    base_its = [[its for _, its, _ in r] for r in t["baseline"]["results"]]
    accuracy = {
        "batched_vs_sequential": diffs,
        "baseline_fire_iterations": base_its,
        "baseline_max_force": max(f for r in t["baseline"]["results"] for _, _, f in r),
        "note": "the baseline reaches other minima (other FIRE dynamics): its values are not "
        "compared; its gradient accuracy is in gradient.json",
    }
    ratio_batched = seq["median_s"] / bat["median_s"]
    print(
        f"  sequential {seq['median_s']:.2f} s, batched {bat['median_s']:.2f} s "
        f"(sequential / batched = {ratio_batched:.2f}), baseline {base['median_s']:.2f} s"
    )
    write(
        "ensemble_step",
        f"sum over the {BATCH} configurations of the minimize baseline (jax-md fire_descent) "
        "and the gradient baseline (jaxopt custom_root + jax-md athermal_moduli)",
        seq["median_s"],
        base["median_s"],
        REPEATS,
        accuracy,
        load_before,
        ratio_definition="baseline / sequential project (wall)",
        ratio_cpu=base["median_cpu_s"] / seq["median_cpu_s"],
        batch=BATCH,
        sequential=seq,
        batched=bat,
        baseline_timing=base,
        ratio_sequential_over_batched=ratio_batched,
        ratio_baseline_over_batched=base["median_s"] / bat["median_s"],
        compile_s={
            k: v["compile_s"]
            for k, v in (("sequential", seq), ("batched", bat), ("baseline", base))
        },  # fmt: skip
    )


if __name__ == "__main__":
    main()
