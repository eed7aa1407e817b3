"""Per-move cost of the pruning moves: rank-one updates vs a fresh solve, N = 1024.

Network: distorted triangular lattice 32 x 32 (N = 1024 nodes, 3072 bonds), r = 0.3, seed 0.

Moves: annealing proposals (remove a random present bond with probability 0.7, else re-add
a random removed one), every valid one accepted (the most expensive case for the updates:
each accept adds a rank-one term, and an exact refresh follows every ``refresh_every`` = 128
accepts, its cost included in the per-move time).

Project: ``studies.pruning.elasticity.Updater.propose`` (+ ``accept``): one sparse solve of
the factorization at the last refresh, Woodbury terms for the accepted changes since, and the
new C from a rank-one formula.

Baseline: nu of the same proposed networks by a fresh exact solve,
``elasticity.elastic_tensor`` (sparse assembly, SuperLU factorization of the pinned
Hessian, three solves): the fastest fresh route here. For reference the core's matrix-free
``mechanics.elastic_constants`` (CG to 1e-12) is timed on one state too.

Accuracy: |nu_update - nu_fresh| over the baseline's moves and at every refresh (target
1e-10). Ratio = per-move median of the baseline / per-move median of the project.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from _common import QUICK, interleaved, write  # noqa: E402

from tunable_solids import mechanics  # noqa: E402
from tunable_solids.studies.pruning import elasticity as el  # noqa: E402
from tunable_solids.studies.pruning import networks as nw  # noqa: E402

N_SIDE = 32
REPEATS = 3 if QUICK else 8
MOVES_PER_BLOCK = 256  # project moves per timed call (~1.4 refreshes each)
FRESH_PER_BLOCK = 4  # baseline fresh solves per timed call (of that block's proposals)
REFRESH_EVERY = 128


def main():
    load_before = list(os.getloadavg())
    net = nw.distorted_triangular(N_SIDE, 0.3, np.random.default_rng(0))
    g = el.geometry(net)
    upd = el.Updater(g, np.ones(len(g.i)), REFRESH_EVERY)
    rng = np.random.default_rng(1)
    recorded: dict[int, list] = {}  # block -> [(stiffness after the move, nu by update)]

    def project(block):
        keep = np.linspace(0, MOVES_PER_BLOCK - 1, FRESH_PER_BLOCK).astype(int)
        out = []
        for m in range(MOVES_PER_BLOCK):
            present = np.flatnonzero(upd.stiffness > 0)
            removed = np.flatnonzero(upd.stiffness == 0)
            remove = rng.random() < 0.7 or len(removed) == 0
            pool = present if remove else removed
            bond = int(pool[rng.integers(len(pool))])
            move = upd.propose(bond, 0.0 if remove else 1.0)
            if m in keep and move.valid:
                k = upd.stiffness.copy()
                k[bond] = move.new_k
                out.append((k, move.nu))
            if move.valid:
                upd.accept(move)
        recorded[block] = out
        return 0

    def baseline(block):
        return [el.poisson_ratio(el.elastic_tensor(g, k)) for k, _ in recorded[block]]

    t = interleaved(project, baseline, REPEATS)
    per_move_p = [w / MOVES_PER_BLOCK for w in t["project"]["timer"].wall]
    per_move_b = [
        w / max(len(recorded[b]), 1)
        for b, w in zip(range(REPEATS), t["baseline"]["timer"].wall, strict=True)
    ]
    errs = [
        abs(nu_u - nu_f)
        for b in range(REPEATS)
        for (_, nu_u), nu_f in zip(recorded[b], t["baseline"]["results"][b], strict=True)
    ]
    accuracy = {
        "max_abs_nu_update_vs_fresh": max(errs),
        "max_abs_nu_refresh_check": max(upd.refresh_errors),
        "refreshes": len(upd.refresh_errors),
        "compared_moves": len(errs),
        "z_final": 2.0 * float(np.sum(upd.stiffness > 0)) / g.n_nodes,
    }

    # Reference: the core's matrix-free elastic constants (jit, CG 1e-12) on the final state.
    model, R, params = nw.as_core(net, upd.stiffness)
    fn = jax.jit(mechanics.elastic_constants)
    jax.block_until_ready(fn(model, R, params))
    w = time.perf_counter()
    C_core = np.asarray(jax.block_until_ready(fn(model, R, params)).voigt)
    core_s = time.perf_counter() - w
    accuracy["max_abs_C_core_vs_update"] = float(np.abs(C_core - upd.C).max())

    p_med, b_med = float(np.median(per_move_p)), float(np.median(per_move_b))
    cpu_p = float(np.median(t["project"]["timer"].cpu)) / MOVES_PER_BLOCK
    cpu_b = float(np.median(t["baseline"]["timer"].cpu)) / FRESH_PER_BLOCK
    print(
        f"[pruning] per move: update {p_med * 1e3:.3f} ms, fresh sparse solve "
        f"{b_med * 1e3:.2f} ms, core matrix-free CG {core_s * 1e3:.0f} ms (one state)"
    )
    print(f"[pruning] accuracy: {accuracy}")
    ok = (
        accuracy["max_abs_nu_update_vs_fresh"] < 1e-10
        and accuracy["max_abs_nu_refresh_check"] < 1e-10
    )
    print(
        f"[pruning] same nu to 1e-10: {ok}; ratio vs core CG: {core_s / p_med:.0f}; "
        f"ratio of CPU times: {cpu_b / cpu_p:.1f}"
    )
    write(
        "pruning",
        "fresh sparse solve of each proposed network (elasticity.elastic_tensor)",
        p_med,
        b_med,
        REPEATS,
        accuracy,
        load_before,
        n_nodes=g.n_nodes,
        n_bonds=len(g.i),
        moves_per_block=MOVES_PER_BLOCK,
        refresh_every=REFRESH_EVERY,
        project_per_move_s=per_move_p,
        baseline_per_move_s=per_move_b,
        core_cg_elastic_s=core_s,
        ratio_vs_core_cg=core_s / p_med,
        ratio_cpu_time=cpu_b / cpu_p,
    )


if __name__ == "__main__":
    main()
