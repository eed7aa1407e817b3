"""Prediction time of the CNN surrogate vs the exact solve of nu, N = 144, 256, 576, 1024.

Networks: distorted triangular lattices 12 x 12 .. 32 x 32, r = 0.3, all bonds, seed 0.

Project: the AlexNet-style matrix CNN (:class:`studies.pruning.surrogate.MatrixCNN`, the
paper-scale architecture of config/paper/network_pruning_surrogate.yaml: channels
[16, 32, 32, 32, 32], hidden 64, grid 4) **freshly initialised** (seed 0): its cost does not
depend on the weights, and its adaptive last pooling makes the parameter shapes the same at
every N. One network per call (batch of one), input ready (``project``), and with the
dynamical-matrix assembly included (reported beside it). jit compiled once per size.

Baseline: the exact solve, ``elasticity.elastic_tensor`` from the network's geometry (sparse
assembly, SuperLU of the pinned Hessian, three solves) and the paper's nu.

Ratio = baseline median / project median (> 1: the CNN is faster). The paper reports 3.5e3 at
N = 1024 (its exact solver and GPU are not described); here both run on the same CPU.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import QUICK, interleaved, summary, write  # noqa: E402

from tunable_solids.studies.pruning import elasticity as el  # noqa: E402
from tunable_solids.studies.pruning import networks as nw  # noqa: E402
from tunable_solids.studies.pruning import surrogate as sg  # noqa: E402

SIDES = (12, 16) if QUICK else (12, 16, 24, 32)
REPEATS = 3 if QUICK else 7
SETTINGS = {"channels": [16, 32, 32, 32, 32], "hidden": 64, "grid": 4}


def main():
    load_before = list(os.getloadavg())
    model = sg.build_model("matrix", SETTINGS, 0)
    norm = sg.Normalisation(0.0, 1.0, 0.0, 1.0)
    rows = {}
    for side in SIDES:
        net = nw.distorted_triangular(side, 0.3, np.random.default_rng(0))
        mask = np.ones(len(net.i))
        x = sg.matrix_image(net, mask)[None, None]

        def project(k, x=x):
            return sg.predict(model, norm, x)

        def baseline(k, net=net, mask=mask):
            return el.poisson_ratio(el.elastic_tensor(el.geometry(net), mask))

        t = interleaved(project, baseline, REPEATS)
        p, b = summary(t["project"]), summary(t["baseline"])
        inp = sg.timed(lambda net=net, mask=mask: sg.matrix_image(net, mask), REPEATS)
        rows[side * side] = {
            "cnn_s": p["median_s"],
            "exact_s": b["median_s"],
            "input_s": inp,
            "ratio": b["median_s"] / p["median_s"],
            "ratio_with_input": b["median_s"] / (p["median_s"] + inp),
            "cnn_compile_s": p["compile_s"],
        }
        print(
            f"[pruning_surrogate] N = {side * side:5d}: exact {b['median_s'] * 1e3:8.2f} ms, "
            f"CNN {p['median_s'] * 1e3:8.2f} ms (+ input {inp * 1e3:.2f} ms): ratio "
            f"exact / CNN = {rows[side * side]['ratio']:.3g} (with input "
            f"{rows[side * side]['ratio_with_input']:.3g}; paper at N = 1024: 3.5e3)"
        )
    largest = rows[max(rows)]
    write(
        "pruning_surrogate",
        "exact solve of nu (elasticity.elastic_tensor, sparse LU)",
        largest["cnn_s"],
        largest["exact_s"],
        REPEATS,
        {"note": "timing only; the CNN is freshly initialised (weights do not change cost)"},
        load_before,
        n_nodes=max(rows),
        per_size=rows,
        architecture=SETTINGS,
    )


if __name__ == "__main__":
    main()
