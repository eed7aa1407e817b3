"""Top-k eigenpairs of the bond-space operator A = S M^+ S^T: sparse and matrix-free routes
against the dense route, and how the sparse route scales with N.

State: a 3D polydisperse IPL glass (studies.modes.glasses.ipl_glass), T_p = infinity
(quenched from random positions to max|F| <= 1e-12), N = 2000 (500 with BENCH_QUICK).
Sides, each giving the k = 50 largest eigenvalues of A:
- ``dense`` (baseline): ``operator.bond_spectrum_dense``, the whole non-zero spectrum from
  one Cholesky and one N d x N d eigendecomposition (what a dense code does);
- ``sparse`` (project): ``operator.top_bond_modes_sparse``, sparse LU of M (one particle
  pinned) + ARPACK;
- ``matrix_free`` (only with ``BENCH_MATRIX_FREE=1``): ``operator.top_bond_modes``, LOBPCG
  with an unpreconditioned CG solve of M (1e-12) per product; measured 601 s at N = 500 (vs
  7 s dense), so it is off by default: on a CPU it is dominated by the CG iterations of the
  ill-conditioned M.
Accuracy: max relative deviation of the top-k eigenvalues from the dense route.

Scaling: the sparse route at N in ``BENCH_SIZES`` (comma-separated; default 2000,4000,
quick 500,1000), each in a fresh process (its own glass, quenched to max|F| <= 1e-10), with
wall time of the quench, the LU factorization and the eigen-solve, and the peak resident memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import QUICK, block, peak_rss_mb, write  # noqa: E402

from tunable_solids import systems  # noqa: E402
from tunable_solids.minimize import MinimizeOptions  # noqa: E402
from tunable_solids.preparation import interacting_pairs  # noqa: E402
from tunable_solids.studies.modes import operator as op  # noqa: E402
from tunable_solids.studies.modes.glasses import ipl_glass, quench  # noqa: E402

N = 500 if QUICK else 2000
K = 50
MATRIX_FREE = os.environ.get("BENCH_MATRIX_FREE", "0") == "1"
SIZES = [int(x) for x in os.environ.get("BENCH_SIZES", "500,1000" if QUICK
                                         else "2000,4000").split(",")]  # fmt: skip


def glass_network(n: int, force_tol: float):
    """A quenched 3D IPL glass of ``n`` particles as a bond network, and the quench time."""
    g = ipl_glass(np.random.default_rng(n), n, 3)
    R0 = systems.random_positions(np.random.default_rng(n + 1), n, g.box)
    t = time.perf_counter()
    m = quench(g, R0, MinimizeOptions(force_tol=force_tol))
    t_quench = time.perf_counter() - t
    if not bool(m.converged):
        raise RuntimeError(f"N = {n}: the quench did not converge (max|F| = {m.max_force})")
    pairs = interacting_pairs(g.potential, m.positions, g.box, g.params)
    net = op.bond_network(g.potential, m.positions, g.box, g.params, jnp.asarray(g.species), pairs)
    return net, t_quench


def scaling_point(n: int) -> dict:
    """One scaling measurement (run in its own process: clean peak memory)."""
    net, t_quench = glass_network(n, 1e-10)
    t = time.perf_counter()
    modes = op.top_bond_modes_sparse(net, K)
    t_top = time.perf_counter() - t
    return {"N": n, "n_bonds": net.n_bonds, "quench_s": t_quench, "top_k_s": t_top,
            "residual": modes.residual, "peak_rss_mb": peak_rss_mb(),
            "lambda_max": float(modes.eigenvalues[0])}  # fmt: skip


def main():
    load = list(os.getloadavg())
    net, t_quench = glass_network(N, 1e-12)
    print(f"[bond_operator] 3D IPL glass N = {N}: {net.n_bonds} bonds, "
          f"{net.n_rattlers} rattlers, quench {t_quench:.1f} s")  # fmt: skip
    # Compilation is timed apart (ahead-of-time lowering), so each side's time is its solve.
    t = time.perf_counter()
    dense_fn = op.bond_spectrum_dense.lower(net).compile()
    compile_dense = time.perf_counter() - t
    t = time.perf_counter()
    dense = np.asarray(block(dense_fn(net).eigenvalues))[:K]
    t_dense = time.perf_counter() - t
    t = time.perf_counter()
    sparse = op.top_bond_modes_sparse(net, K)
    t_sparse = time.perf_counter() - t
    accuracy = {
        "sparse_vs_dense_rel": float(np.max(np.abs(sparse.eigenvalues - dense) / dense)),
        "sparse_residual": sparse.residual,
    }
    extra = {}
    print(f"[bond_operator] top {K}: dense {t_dense:.2f} s (+ {compile_dense:.1f} s "
          f"compilation), sparse {t_sparse:.2f} s; sparse deviates from dense by "
          f"{accuracy['sparse_vs_dense_rel']:.1e}")  # fmt: skip
    if MATRIX_FREE:
        key = jax.random.PRNGKey(0)
        t = time.perf_counter()
        mf_fn = op.top_bond_modes.lower(net, key, K).compile()
        compile_mf = time.perf_counter() - t
        t = time.perf_counter()
        mf = mf_fn(net, key)
        block(mf.eigenvalues)
        t_mf = time.perf_counter() - t
        accuracy["matrix_free_vs_dense_rel"] = float(
            np.max(np.abs(np.asarray(mf.eigenvalues) - dense) / dense)
        )
        accuracy["matrix_free_residual"] = float(mf.residual)
        accuracy["matrix_free_lobpcg_iterations"] = int(mf.iterations)
        extra = {"matrix_free_s": t_mf, "compile_matrix_free_s": compile_mf,
                 "dense_over_matrix_free": t_dense / t_mf}  # fmt: skip
        print(f"[bond_operator] matrix-free (LOBPCG + CG) {t_mf:.2f} s (+ {compile_mf:.1f} s "
              f"compilation), deviation from dense "
              f"{accuracy['matrix_free_vs_dense_rel']:.1e}")  # fmt: skip
    points = []
    for n in SIZES:
        out = subprocess.run([sys.executable, __file__, "--point", str(n)], capture_output=True,
                             text=True, check=True)  # fmt: skip
        p = json.loads(out.stdout.strip().splitlines()[-1])
        points.append(p)
        print(
            f"[bond_operator] sparse N = {n}: top {K} in {p['top_k_s']:.2f} s, peak "
            f"{p['peak_rss_mb']:.0f} MB (quench {p['quench_s']:.0f} s, residual "
            f"{p['residual']:.1e})"
        )
    write("bond_operator", "dense route (bond_spectrum_dense), top 50 of the full spectrum",
          t_sparse, t_dense, 1, accuracy, load, N=N, k=K, compile_dense_s=compile_dense,
          scaling=points, **extra)  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--point":
        print(json.dumps(scaling_point(int(sys.argv[2]))))
    else:
        main()
