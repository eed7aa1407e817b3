"""SWAP Monte Carlo sweeps per second: 3D polydisperse IPL glass former, N = 2000, T = 0.5.

No baseline (nothing comparable is installed): prints sweeps per second (wall and process CPU
time) of ``swap_mc.run`` with p_swap = 0.2 and moves_per_cell = 1 and 4, and writes
``results/benchmarks/swap_mc.json`` with the machine and its load. Start: random positions,
20 plain-MC sweeps at T = 5 to relax the overlaps, then a fresh state (energy recomputed) and
a warm-up at T = 0.5 (adaptive delta; also compiles); then ``SWEEPS`` timed sweeps. The
tracked energy is checked against a fresh evaluation at the end.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from _common import OUT, QUICK, machine  # noqa: E402

from tunable_solids import swap_mc as sm  # noqa: E402
from tunable_solids import systems  # noqa: E402
from tunable_solids.studies.modes.glasses import ipl_glass  # noqa: E402

N, DIM, T, P_SWAP = 2000, 3, 0.5, 0.2
SWEEPS = 10 if QUICK else 50


def main():
    load_before = list(os.getloadavg())
    rng = np.random.default_rng(0)
    glass = ipl_glass(rng, N, DIM)
    R = systems.random_positions(rng, N, glass.box)
    args = (glass.potential, glass.box, glass.params)
    state = sm.run(sm.init_state(glass.potential, R, *args[1:], 0), 20, *args, 5.0, 0.0)
    results = {}
    for moves in (1, 4):
        s = sm.init_state(glass.potential, state.positions, *args[1:], 1)
        s = sm.run(s, 20, *args, T, P_SWAP, warmup_sweeps=20, moves_per_cell=moves)
        wall, cpu = time.perf_counter(), time.process_time()
        s = sm.run(s, SWEEPS, *args, T, P_SWAP, moves_per_cell=moves, block_sweeps=SWEEPS)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        acc = sm.acceptance(s)
        results[f"moves_per_cell_{moves}"] = {
            "sweeps_per_s": SWEEPS / wall,
            "sweeps_per_cpu_s": SWEEPS / cpu,
            "energy_per_particle": float(s.energy) / N,
            "acceptance_displacement": acc[0],
            "acceptance_swap": acc[1],
            "delta": float(s.delta),
            "cell_capacity": int(s.cell_capacity),
            "energy_error": sm.energy_error(s, *args),
        }
        print(
            f"[swap_mc] 3D IPL N = {N}, T = {T}, p_swap = {P_SWAP}, moves_per_cell = {moves}: "
            f"{SWEEPS / wall:.2f} sweeps/s wall ({SWEEPS / cpu:.2f} per CPU s), "
            f"E/N = {float(s.energy) / N:.4f}, acceptance {acc[0]:.3f} / {acc[1]:.3f}"
        )
    m = machine()
    m["loadavg_before"] = load_before
    m["loadavg_after"] = m.pop("loadavg")
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"name": "swap_mc", "n": N, "dim": DIM, "temperature": T, "sweeps": SWEEPS}
    record.update(results=results, machine=m)
    path = OUT / "swap_mc.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"[swap_mc] wrote {path}")


if __name__ == "__main__":
    main()
