"""Stages of the metamaterials study over one force field, one structure and one seed batch.

Each takes the job settings (:func:`.config.job_settings`) and returns ``{name: (dims,
array)}`` plus a summary; ``workflow/scripts/metamaterials`` writes the stores.

- :func:`make_structures` (``structures.zarr``): per seed, the melt-quenched network or the
  relaxed vacancy crystal (:mod:`.structures`), minimized; a batch checkpoints beside its
  output (finished samples, the running MD state or minimization positions) and resumes.
- :func:`measure` (``measure.zarr``): per converged sample, the relaxed elastic tensor, moduli,
  packing fraction, coordination, g(r) and S_2 (:mod:`.measure`), and the stress shifts
  under uniaxial tension (``shift_sigma``, ``shift_tau`` over ``shift_strain``; none when
  ``measure.stress_shift.steps`` is 0). Samples whose minimization
  did not converge are kept with ``converged = False``, never measured (``used = False``),
  and counted by the tables.

Interface for other workflows (the Bayesian optimization): the force field is
``settings["forcefield"] = {"name", "lambda_over_A", "gamma", "theta0"}``, from
:func:`.config.forcefield_settings` or :func:`.config.forcefield_from_proposals`; nothing
else in a job depends on where it came from.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from tunable_solids import stillinger_weber as sw
from tunable_solids import store
from tunable_solids.minimize import FireOptions, MinimizeOptions
from tunable_solids.progress import Progress
from tunable_solids.store import Arrays

from . import measure as ms
from . import structures as st

log = logging.getLogger(__name__)

ROWS = ("positions", "box", "converged", "max_force", "iterations", "energy", "p0")


def md_settings(settings: dict) -> st.MDSettings:
    return st.MDSettings(**settings["md"])


def minimize_options(settings: dict) -> MinimizeOptions:
    m = settings["minimize"]
    return MinimizeOptions(force_tol=m["force_tol"], max_steps=m["max_steps"], fire=FireOptions())


def energy_and_params(settings: dict):
    f = settings["forcefield"]
    return ENERGY, sw.paper_params(f["lambda_over_A"], f["gamma"], f["theta0"])


#: One energy object for every job of a process (a static argument of compiled functions).
ENERGY = sw.stillinger_weber_energy()


def checkpoint_path(output: str | Path) -> Path:
    output = store.store_path(output)
    return store.recover(output.with_name(f".{output.name}.checkpoint"))


def _save(path: Path, rows: dict, phase: str, steps: int, leaves: list, extra: dict) -> None:
    arrays = {}
    for k in ROWS:
        if rows[k]:
            v = np.stack([np.asarray(x) for x in rows[k]])
            arrays[f"row_{k}"] = (tuple(f"{k}_{a}" for a in range(v.ndim)), v)
    for i, x in enumerate(leaves):
        x = np.asarray(x)
        arrays[f"leaf_{i}"] = (tuple(f"leaf{i}_{a}" for a in range(x.ndim)), x)
    for k, x in extra.items():
        x = np.asarray(x)
        arrays[f"extra_{k}"] = (tuple(f"extra{k}_{a}" for a in range(x.ndim)), x)
    store.write_store(path, arrays, {"phase": phase, "steps": steps, "n_leaves": len(leaves)})


def _load(path: Path):
    arrays, attrs = store.read_store(path)
    rows = {k: list(arrays[f"row_{k}"]) if f"row_{k}" in arrays else [] for k in ROWS}
    leaves = [arrays[f"leaf_{i}"] for i in range(attrs["n_leaves"])]
    extra = {k[6:]: v for k, v in arrays.items() if k.startswith("extra_")}
    return rows, attrs["phase"], attrs["steps"], leaves, extra


def start_state(settings: dict, seed: int, source=None):
    """``(R, box, kind)`` before MD: the overlap-relaxed random start (``disordered``), the
    vacancy crystal (``crystal``), or with ``source = (R, box)`` that state (``relaxed``: a
    force field with ``relax_from``); the last two are minimized, then relaxed by MD."""
    s = settings["structure"]
    if source is not None:
        return np.asarray(source[0]), np.asarray(source[1]), "relaxed"
    rng = np.random.default_rng([seed, 17])
    lr = ENERGY.neighbor_handler.list_range
    if s["family"] == "disordered":
        R, box = st.random_start(rng, settings["atoms"], s["phi0"], lr)
        return st.remove_overlaps(R, box), box, "disordered"
    R, box = st.lattice(s["family"], settings["crystal_cells"])
    st.check_box(box, lr, f"{s['family']} crystal of {settings['crystal_cells']} cells")
    return st.remove_atoms(rng, R, s["vacancy"]), box, "crystal"


def one_structure(settings: dict, seed: int, resume=None, save=None, source=None) -> dict:
    """Melt-quench (or relax) and minimize one sample. ``resume`` is ``(phase, steps,
    leaves, extra)`` of a checkpoint; ``save(phase, steps, leaves, extra)`` checkpoints;
    ``source = (R, box)`` the state a ``relax_from`` force field relaxes."""
    energy, params = energy_and_params(settings)
    md = md_settings(settings)
    options = minimize_options(settings)
    label = f"{settings['name']} seed {seed}"
    phase, steps, leaves, extra = resume or ("start", 0, [], {})
    if phase == "start":
        R, box, kind = start_state(settings, seed, source)
        if kind != "disordered":  # the paper: remove atoms (or switch force field), minimize
            r = st.minimize_rounds(energy, params, R, box, options, settings["minimize"]["chunk"])
            R = r.positions
        T0 = md.melt_temperature if kind == "disordered" else md.crystal_temperature
        p0 = st.initial_pressure(energy, params, R, box, T0) if kind == "disordered" else 0.0
        extra = {"R0": R, "box0": box, "p0": np.asarray(p0),
                 "kind": np.asarray(kind != "disordered")}  # fmt: skip
        phase, steps, leaves = "md", 0, []
        if save:
            save(phase, 0, [], extra)
    kind = "crystal" if bool(extra["kind"]) else "disordered"
    p0 = float(extra["p0"])
    if phase == "md":
        segments = st.protocol(md, kind, p0)
        ckpt = (lambda n, lv: save("md", n, lv, extra)) if save else None
        R, box, _ = st.run_md(
            energy, params, np.asarray(extra["R0"]), np.asarray(extra["box0"]), segments, md,
            seed, label, resume=(steps, leaves) if steps else None, checkpoint=ckpt,
        )  # fmt: skip
        extra = {**extra, "R_md": R, "box_md": box}
        phase, steps = "minimize", 0
        if save:
            save(phase, 0, [], extra)
    R_md, box = np.asarray(extra["R_md"]), np.asarray(extra["box_md"])
    resume_min = (steps, np.asarray(extra["R_min"])) if steps else None

    def ckpt_min(n, R):
        if save:
            save("minimize", n, [], {**extra, "R_min": R})

    r = st.minimize_rounds(energy, params, R_md, box, options, settings["minimize"]["chunk"],
                           f"{label} minimize", resume=resume_min, checkpoint=ckpt_min)  # fmt: skip
    return {
        "positions": r.positions, "box": box, "converged": r.converged, "max_force": r.max_force,
        "iterations": r.iterations, "energy": r.energy, "p0": p0,
    }  # fmt: skip


def _not_made(R, box) -> dict:
    """The row of a sample that could not be made (its relax_from source did not converge, or
    its MD blew up in a Bayesian-optimization evaluation):
    kept, flagged, never measured."""
    return {"positions": np.asarray(R), "box": np.asarray(box), "converged": False,
            "max_force": np.nan, "iterations": 0, "energy": np.nan, "p0": 0.0}  # fmt: skip


def make_structures(
    settings: dict, seeds: list[int], output: str | None = None, source: dict | None = None
):
    """Structures of a batch (checkpointed beside ``output`` when given). ``source``: the
    structures arrays a ``relax_from`` force field relaxes (same seeds); a source sample that
    did not converge gives a sample flagged ``converged = False``. MD that blows up
    (``BarostatError``, ``NonFiniteMDError``) stops the job, or with ``settings
    ["on_md_failure"] = "exclude"`` (the Bayesian optimization's evaluations) gives a
    disordered sample flagged ``converged = False`` with NaN positions."""
    src_of = {}
    if source is not None:
        src_of = {int(sd): k for k, sd in enumerate(source["seed"])}
        missing = [sd for sd in seeds if sd not in src_of]
        if missing:
            raise ValueError(f"{settings['name']}: seeds {missing} are not in the source "
                             f"structures (seeds {sorted(src_of)})")  # fmt: skip
    ckpt = checkpoint_path(output) if output is not None else None
    rows, resume = {k: [] for k in ROWS}, None
    if ckpt is not None and ckpt.exists():
        rows, phase, steps, leaves, extra = _load(ckpt)
        resume = (phase, steps, leaves, extra) if extra else None
        log.info("resuming %s: %d samples done, phase %s step %d", ckpt, len(rows["converged"]),
                 phase, steps)  # fmt: skip
    progress = Progress(f"structures {settings['name']}", len(seeds))
    for seed in seeds[len(rows["converged"]) :]:
        save = None
        if ckpt is not None:
            save = lambda ph, n, lv, ex: _save(ckpt, rows, ph, n, lv, ex)  # noqa: E731
        src = None
        if source is not None:
            k = src_of[seed]
            src = (source["positions"][k], source["box"][k])
        if source is not None and not bool(source["converged"][k]):
            log.warning("seed %d: the source network did not converge; excluded", seed)
            out = _not_made(*src)
        else:
            try:
                out = one_structure(settings, seed, resume, save, src)
            except (st.BarostatError, st.NonFiniteMDError) as err:
                if settings.get("on_md_failure", "stop") != "exclude":
                    raise
                # a proposed force field whose MD blows up is a failed evaluation, not a
                # stop of the optimization: the sample is kept, flagged and excluded
                log.warning("seed %d: MD failed, sample excluded: %s", seed, err)
                n = settings["atoms"]
                out = _not_made(np.full((n, 3), np.nan), np.full((3, 3), np.nan))
        resume = None
        for k in ROWS:
            rows[k].append(out[k])
        if ckpt is not None:
            _save(ckpt, rows, "start", 0, [], {})
        n = out["positions"].shape[0]
        if not np.all(np.isfinite(out["box"])):
            progress.step(f"seed {seed}: not made (MD failed), excluded")
            continue
        progress.step(
            f"seed {seed}: Phi = {st.packing_fraction(n, abs(np.linalg.det(out['box']))):.4f}, "
            f"E/N = {out['energy'] / n:.6f}, max|F| = {out['max_force']:.2e}, "
            f"converged {out['converged']}"
        )
    arrays = {
        "seed": (("sample",), np.asarray(seeds, np.int64)),
        "positions": (("sample", "atom", "dim"), np.stack(rows["positions"])),
        "box": (("sample", "dim", "dim2"), np.stack(rows["box"])),
        "converged": (("sample",), np.asarray(rows["converged"], bool)),
        "max_force": (("sample",), np.asarray(rows["max_force"], float)),
        "iterations": (("sample",), np.asarray(rows["iterations"], np.int64)),
        "energy": (("sample",), np.asarray(rows["energy"], float)),
        "initial_pressure": (("sample",), np.asarray(rows["p0"], float)),
    }
    conv = int(np.sum(rows["converged"]))
    return arrays, {"samples": len(seeds), "converged": conv, "excluded": len(seeds) - conv}


def remove_checkpoint(output: str | Path) -> None:
    if store.store_path(output).exists():
        shutil.rmtree(checkpoint_path(output), ignore_errors=True)


def measure(settings: dict, arrays: dict, dims: dict | None = None) -> tuple[Arrays, dict]:
    """Elastic tensor, moduli and structure measures of every converged sample."""
    energy, params = energy_and_params(settings)
    mset = settings["measure"]
    S = len(arrays["seed"])
    nan = lambda *shape: np.full((S, *shape), np.nan)  # noqa: E731
    out = {"voigt": nan(6, 6), "bulk": nan(), "shear": nan(), "young": nan(), "poisson": nan(),
           "young_axial": nan(3), "phi": nan(), "number_density": nan(), "coordination": nan(),
           "coordination_mode": nan(), "S2": nan(), "cg_residual": nan(),
           "rdf": nan(mset["rdf_bins"])}  # fmt: skip
    shift = mset["stress_shift"]
    K = shift["steps"] + 1 if shift["steps"] > 0 else 0
    out.update({"shift_sigma": nan(K), "shift_tau": nan(K), "sigma0": nan(), "tau0": nan()})
    used = np.zeros(S, bool)
    r_grid = None
    progress = Progress(f"measure {settings['name']}", S)
    for s in range(S):
        if not arrays["converged"][s]:
            progress.step(f"seed {arrays['seed'][s]}: not converged, excluded")
            continue
        R, box = arrays["positions"][s], arrays["box"][s]
        C, res = ms.elastic_tensor(energy, params, R, box, mset["cg_tol"])
        mod = ms.moduli(C)
        sm = ms.structure_measures(R, box, mset["rdf_bins"], mset["coordination_cutoff"])
        r_grid = sm["rdf_r"]
        out["voigt"][s], out["cg_residual"][s] = C, res
        for k, v in (("bulk", mod.bulk), ("shear", mod.shear), ("young", mod.young),
                     ("poisson", mod.poisson), ("young_axial", mod.young_axial)):  # fmt: skip
            out[k][s] = v
        for k in ("phi", "number_density", "coordination", "coordination_mode", "S2", "rdf"):
            out[k][s] = sm[k]
        used[s] = True
        note = ""
        if K:
            try:
                sh = ms.stress_shift(energy, params, R, box, minimize_options(settings),
                                     shift["max_strain"], shift["steps"])  # fmt: skip
            except RuntimeError as err:  # kept as NaN, the sample's moduli stay valid
                log.warning("seed %d: stress shift not measured: %s", arrays["seed"][s], err)
            else:
                out["shift_sigma"][s], out["shift_tau"][s] = sh["d_sigma"], sh["d_tau"]
                out["sigma0"][s], out["tau0"][s] = sh["sigma0"], sh["tau0"]
                note = (f", stress shifts at {shift['max_strain']:.2%}: "
                        f"{sh['d_sigma'][-1]:.4g} / {sh['d_tau'][-1]:.4g}")  # fmt: skip
        progress.step(
            f"seed {arrays['seed'][s]}: Phi = {sm['phi']:.4f}, E = {mod.young:.4g}, "
            f"B = {mod.bulk:.4g}, G = {mod.shear:.4g}, CN = {sm['coordination']:.2f}, "
            f"S2 = {sm['S2']:.3f}{note}"
        )
    if r_grid is None:
        r_grid = np.linspace(0, ms.S2_CUTOFF, mset["rdf_bins"] + 1)[:-1]
    dims_of = {"voigt": ("sample", "voigt", "voigt2"), "young_axial": ("sample", "axis"),
               "rdf": ("sample", "r"), "shift_sigma": ("sample", "strain"),
               "shift_tau": ("sample", "strain")}  # fmt: skip
    res = {k: (dims_of.get(k, ("sample",)), v) for k, v in out.items()}
    res["seed"] = (("sample",), np.asarray(arrays["seed"], np.int64))
    res["used"] = (("sample",), used)
    res["converged"] = (("sample",), np.asarray(arrays["converged"], bool))
    res["rdf_r"] = (("r",), r_grid)
    res["shift_strain"] = (("strain",), np.linspace(0.0, shift["max_strain"], K))
    return res, {"samples": S, "used": int(used.sum())}
