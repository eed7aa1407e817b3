"""Stages of the bond-operator study as plain functions over one ensemble and one seed batch.

Each stage takes the resolved ensemble settings (:func:`.config.ensemble_settings`) and
returns ``{name: (dims, array)}`` plus a summary; the Snakemake scripts in
``workflow/scripts/modes`` read and write the stores.

- :func:`prepare` (``glasses.zarr``): inherent states (T_p = infinity: instantaneous quench
  of random positions; finite T_p: SWAP Monte Carlo at T_p from the overlap-relaxed random
  start, then the instantaneous quench, checkpointed; harmonic spheres at the target
  pressure);
- :func:`analyse` (``spectrum.zarr``): per glass, rattlers removed, the whole non-zero
  spectrum of ``A`` (dense reduced route), ``e(F)`` of every mode, the Hessian's
  frequencies, the shear modulus, and for the ``top_modes`` highest-lambda modes their
  pseudo-harmonic partners, overlaps and radial decay profiles; the fields of the top mode of
  the batch's first analysed glass (``example_*``) for drawing.

Samples whose minimization did not converge are kept in ``glasses.zarr`` with
``converged = False`` and skipped by :func:`analyse` (their rows are NaN, ``used = False``);
tables count them.
"""

from __future__ import annotations

import logging
import shutil
from functools import partial
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from tunable_solids import mechanics, store, swap_mc, systems
from tunable_solids.mechanics import Model
from tunable_solids.preparation import interacting_pairs, minimize_options
from tunable_solids.progress import Progress
from tunable_solids.protocols import prepare_at_pressure
from tunable_solids.space import box_volume
from tunable_solids.store import Arrays

from . import operator as op
from .glasses import Glass, harmonic_sphere_glass, ipl_glass, quench, remove_overlaps, with_sizes
from .pseudo_harmonic import pseudo_harmonic_mode
from .tables import MC_COLUMNS  # SWAP diagnostics carried from glasses.zarr to spectrum.zarr

log = logging.getLogger(__name__)

# Start packing fraction of the harmonic-sphere pressure preparation (the protocol then
# rescales the box to the target pressure).
HARMONIC_START_PHI = {2: 0.88, 3: 0.68}


def glass_of(settings: dict, seed: int) -> Glass:
    """The sample definition (sizes, box) of ``seed`` in an ensemble."""
    n, dim = settings["N"], settings["dim"]
    if settings["model"] == "ipl":
        return ipl_glass(np.random.default_rng([seed, 1]), n, dim)
    return harmonic_sphere_glass(n, dim, HARMONIC_START_PHI[dim])


# ----------------------------------------------------------------------------- prepare
ROWS = ("positions", "box", "sizes", "converged", "max_force", "pressure", "mc_energy",
        "acceptance_swap", "mc_drift", "mc_drift_z")  # fmt: skip
# Batches per half of a chain's production trace in :func:`energy_drift`.
DRIFT_BATCHES = 4


def checkpoint_path(output: str | Path) -> Path:
    """Where a batch's SWAP checkpoint lives: beside the final store, invisible to Snakemake
    (an interrupted replacement is restored first, :func:`store.recover`)."""
    output = store.store_path(output)
    return store.recover(output.with_name(f".{output.name}.checkpoint"))


def _save_checkpoint(
    path: Path, rows: dict, seed: int, mc: swap_mc.SwapState | None, trace=()
) -> None:
    """Finished samples ``rows`` and, mid-chain, the SWAP state of sample ``seed`` with its
    production energy trace ``trace`` (E/N after each block past the warm-up)."""
    arrays = {}
    for k in ROWS:
        if rows[k]:
            v = np.stack([np.asarray(x) for x in rows[k]])
            arrays[f"row_{k}"] = (tuple(f"{k}_{a}" for a in range(v.ndim)), v)
    if mc is not None:
        for k, v in swap_mc.state_arrays(mc).items():
            arrays[f"mc_{k}"] = (tuple(f"mc_{k}_{a}" for a in range(v.ndim)), v)
        arrays["trace"] = (("block",), np.asarray(trace, float))
    store.write_store(path, arrays, {"seed": seed})


def _load_checkpoint(path: Path):
    arrays, attrs = store.read_store(path)
    rows = {k: list(arrays[f"row_{k}"]) if f"row_{k}" in arrays else [] for k in ROWS}
    mc = {k[3:]: v for k, v in arrays.items() if k.startswith("mc_")}
    trace = list(arrays.get("trace", []))
    return rows, attrs["seed"], (swap_mc.state_from_arrays(mc) if mc else None), trace


def energy_drift(trace, n_batches: int = DRIFT_BATCHES) -> tuple[float, float]:
    """Equilibration check of a SWAP chain from its production trace of E/N (one value per
    block of sweeps, past the warm-up): ``(drift, z)``. ``drift`` is the mean E/N of the
    second half minus that of the first; ``z`` is the t statistic of the slope of a straight
    line fitted to ``2 n_batches`` batch means (batch means absorb the autocorrelation within
    a batch; under stationarity ``z`` follows Student's t with ``2 n_batches - 2`` degrees of
    freedom, and a steady trend makes it grow without bound, unlike a half-vs-half test whose
    batch errors the trend itself inflates). A chain still ageing has ``z`` large and
    negative. NaN with fewer than ``2 n_batches`` values."""
    x = np.asarray(trace, float)
    if x.size < 2 * n_batches:
        return float("nan"), float("nan")
    half = x.size // 2
    drift = float(x[x.size - half :].mean() - x[:half].mean())
    b = np.array([c.mean() for c in np.array_split(x, 2 * n_batches)])
    t = np.arange(b.size) - 0.5 * (b.size - 1)
    slope = float(t @ (b - b.mean()) / (t @ t))
    resid = b - b.mean() - slope * t
    se = float(np.sqrt(resid @ resid / (b.size - 2) / (t @ t)))
    return drift, (slope / se if se > 0 else float("nan"))


def equilibrate(glass: Glass, R0, settings: dict, seed: int, state=None, checkpoint=None, trace=()):
    """SWAP Monte Carlo of an IPL sample at ``parent_temperature`` for ``swap.sweeps`` sweeps
    (the first ``swap.warmup_sweeps`` adapt the step), from ``state`` if given (a resumed
    chain, whose production trace so far is ``trace``) else from ``R0``;
    ``checkpoint(state, trace)`` is called every ``swap.checkpoint_every`` sweeps. Returns
    the final :class:`swap_mc.SwapState` and the production trace (E/N after each block
    past the warm-up, for :func:`energy_drift`)."""
    sw, T = settings["swap"], float(settings["parent_temperature"])
    if state is None:
        state = swap_mc.init_state(glass.potential, R0, glass.box, glass.params, seed)
    progress = Progress(f"SWAP MC T_p = {T} seed {seed}", -(-sw["sweeps"] // sw["block"]))

    trace = list(trace)

    def report(p: swap_mc.Progress):
        if p.sweep > sw["warmup_sweeps"]:
            trace.append(p.energy_per_particle)
        progress.step(
            f"sweep {p.sweep}: E/N = {p.energy_per_particle:.6f}, acceptance displacement "
            f"{p.acceptance_displacement:.3f}, swap {p.acceptance_swap:.3f}, delta {p.delta:.4f}"
        )

    while int(state.sweep) < sw["sweeps"]:
        n = min(sw["checkpoint_every"], sw["sweeps"] - int(state.sweep))
        state = swap_mc.run(state, n, glass.potential, glass.box, glass.params, T, sw["p_swap"],
                            warmup_sweeps=sw["warmup_sweeps"], block_sweeps=sw["block"],
                            callback=report)  # fmt: skip
        if checkpoint is not None:
            checkpoint(state, trace)
    return state, trace


def prepare(settings: dict, seeds: list[int], output: str | None = None) -> tuple[Arrays, dict]:
    """Inherent states of a batch. At a finite ``parent_temperature`` each IPL sample is
    equilibrated by SWAP Monte Carlo first; the batch then checkpoints (finished samples and
    the running chain) beside ``output`` and resumes from it after a kill."""
    options = minimize_options(settings)
    finite = settings["parent_temperature"] != "inf"
    ckpt = checkpoint_path(output) if (finite and output is not None) else None
    rows, resume_seed, resume_state, resume_trace = {k: [] for k in ROWS}, None, None, []
    if ckpt is not None and ckpt.exists():
        rows, resume_seed, resume_state, resume_trace = _load_checkpoint(ckpt)
        log.info("resuming from %s: %d samples done", ckpt, len(rows["converged"]))
    progress = Progress(f"prepare {settings['name']}", len(seeds))
    for seed in seeds[len(rows["converged"]) :]:
        g = glass_of(settings, seed)
        R0 = systems.random_positions(np.random.default_rng([seed, 2]), settings["N"], g.box)
        species = jnp.asarray(g.species)
        mc_energy, acc_swap, drift, drift_z = np.nan, np.nan, np.nan, np.nan
        if settings["model"] == "harmonic_sphere":
            p = prepare_at_pressure(
                g.potential, R0, g.box, g.params, species, settings["pressure"], options
            )
            m, box, ok = p.minimum, np.asarray(p.box), p.converged
        else:
            if finite:
                save = None
                if ckpt is not None:
                    save = partial(_save_checkpoint, ckpt, rows, seed)
                start = resume_state if resume_seed == seed else None
                trace = resume_trace if start is not None else []
                R_start = None if start is not None else remove_overlaps(g, R0, options.max_steps)
                mc, trace = equilibrate(g, R_start, settings, seed, start, save, trace)
                drift, drift_z = energy_drift(trace)
                if abs(drift_z) > 3:
                    log.warning(
                        "seed %d: E/N still drifts at T_p = %s (second half - first half = "
                        "%.3g, z = %.1f): the chain is not equilibrated; more swap.sweeps",
                        seed, settings["parent_temperature"], drift, drift_z,
                    )  # fmt: skip
                g = with_sizes(g, np.asarray(mc.sizes))
                R0 = np.asarray(mc.positions)
                mc_energy = float(mc.energy) / settings["N"]
                acc_swap = swap_mc.acceptance(mc)[1]
            m, box = quench(g, R0, options), g.box
            ok = bool(m.converged)
        model = Model(g.potential, jnp.asarray(box), species, m.pairs)
        pressure = float(mechanics.pressure(model, m.positions, g.params))
        sizes = np.asarray(g.params.diameter)[g.species]
        values = (np.asarray(m.positions), box, sizes, ok, float(m.max_force), pressure,
                  mc_energy, acc_swap, drift, drift_z)  # fmt: skip
        for k, v in zip(ROWS, values, strict=True):
            rows[k].append(v)
        if ckpt is not None:
            _save_checkpoint(ckpt, rows, seed, None)
        progress.step(
            f"seed {seed}: max|F| = {float(m.max_force):.2e}, p = {pressure:.4g}, converged {ok}"
        )
    arrays = {
        "seed": (("sample",), np.asarray(seeds, np.int64)),
        "positions": (("sample", "particle", "dim"), np.stack(rows["positions"])),
        "box": (("sample", "dim", "dim2"), np.stack(rows["box"])),
        "sizes": (("sample", "particle"), np.stack(rows["sizes"])),
        "converged": (("sample",), np.asarray(rows["converged"], bool)),
        "max_force": (("sample",), np.asarray(rows["max_force"], float)),
        "pressure": (("sample",), np.asarray(rows["pressure"], float)),
        "mc_energy_per_particle": (("sample",), np.asarray(rows["mc_energy"], float)),
        "mc_acceptance_swap": (("sample",), np.asarray(rows["acceptance_swap"], float)),
        "mc_energy_drift": (("sample",), np.asarray(rows["mc_drift"], float)),
        "mc_drift_z": (("sample",), np.asarray(rows["mc_drift_z"], float)),
    }
    return arrays, {"samples": len(seeds), "converged": int(np.sum(rows["converged"]))}


def glass_in_store(settings: dict, arrays: dict, s: int) -> Glass:
    """Sample ``s`` of a ``glasses.zarr`` as a :class:`Glass` (its stored box and, for IPL,
    its stored sizes, which SWAP moves permuted)."""
    g = glass_of(settings, int(arrays["seed"][s]))._replace(box=arrays["box"][s])
    return with_sizes(g, arrays["sizes"][s]) if settings["model"] == "ipl" else g


# ----------------------------------------------------------------------------- analyse
def radial_profile(R: np.ndarray, box: np.ndarray, field: np.ndarray, bins: np.ndarray):
    """Median of ``|field_i|`` (normalized by its maximum) over particles in distance shells
    ``bins`` around the particle of largest ``|field|`` (the mode's core); NaN for empty
    shells. ``R`` ``(n, d)``, ``field`` ``(n, d)``."""
    mag = np.linalg.norm(field, axis=1)
    core = int(np.argmax(mag))
    s = np.linalg.solve(box, (R - R[core]).T).T
    dr = (s - np.round(s)) @ box.T
    dist = np.linalg.norm(dr, axis=1)
    which = np.digitize(dist, bins) - 1
    out = np.full(len(bins) - 1, np.nan)
    for b in range(len(bins) - 1):
        sel = which == b
        if sel.any():
            out[b] = np.median(mag[sel]) / mag.max()
    return out


def _unit(x):
    return x / jnp.linalg.norm(x)


def analyse(settings: dict, arrays: dict, dims: dict) -> tuple[Arrays, dict]:
    """Spectrum of ``A``, participations, Hessian frequencies and top-mode analysis."""
    n, dim = settings["N"], settings["dim"]
    n_top = settings["top_modes"]
    m_max = n * dim - dim
    seeds = arrays["seed"]
    S = len(seeds)
    out = {
        "used": np.zeros(S, bool),
        "eigenvalues": np.full((S, m_max), np.nan),
        "participation": np.full((S, m_max), np.nan),
        "omega": np.full((S, m_max), np.nan),
        "n_bonds": np.zeros(S, np.int64),
        "n_rattlers": np.zeros(S, np.int64),
        "self_stress": np.zeros(S, np.int64),
        "shear_modulus": np.full(S, np.nan),
        "density": np.full(S, np.nan),
        "a0": np.full(S, np.nan),
        "overlap_loss": np.full((S, n_top), np.nan),
        "ph_cost_ratio": np.full((S, n_top), np.nan),
        "ph_gradient": np.full((S, n_top), np.nan),
    }
    example = {}  # the highest-lambda mode of the first analysed glass, fields for drawing
    L = float(np.min(np.abs(np.linalg.eigvalsh(arrays["box"][0]))))
    bins = np.linspace(0.0, 0.5 * L, settings["decay_bins"] + 1)
    profiles = np.full((S, n_top, 4, len(bins) - 1), np.nan)
    progress = Progress(f"analyse {settings['name']}", S)
    for s in range(S):
        if not arrays["converged"][s]:
            progress.step(f"seed {seeds[s]}: not converged, skipped")
            continue
        g = glass_in_store(settings, arrays, s)
        box = g.box
        R = jnp.asarray(arrays["positions"][s])
        species = jnp.asarray(g.species)
        pairs = interacting_pairs(g.potential, R, box, g.params)
        net = op.bond_network(g.potential, R, box, g.params, species, pairs)
        spec = op.bond_spectrum_dense(net)
        m = spec.eigenvalues.shape[0]
        out["eigenvalues"][s, :m] = np.asarray(spec.eigenvalues)
        out["participation"][s, :m] = np.asarray(op.dense_force_participation(net, spec))
        w2 = np.linalg.eigvalsh(np.asarray(op.hessian_matrix(net)))[dim:]
        out["omega"][s, :m] = np.sign(w2) * np.sqrt(np.abs(w2))
        model = Model(g.potential, jnp.asarray(box), species, pairs)
        C = np.asarray(mechanics.elastic_constants(model, R, g.params).voigt)
        _, G, _ = mechanics.isotropic_moduli(jnp.asarray(C), dim)
        V = float(box_volume(jnp.asarray(box)))
        out["shear_modulus"][s] = float(G)
        out["density"][s] = n / V
        out["a0"][s] = (V / n) ** (1.0 / dim)
        out["n_bonds"][s] = net.n_bonds
        out["n_rattlers"][s] = net.n_rattlers
        out["self_stress"][s] = op.self_stress_count(net)
        top = op.modes_from_spectrum(net, spec, jnp.arange(min(n_top, m)))
        Rk = np.asarray(net.R)
        for q in range(top.eigenvalues.shape[0]):
            ph_D = pseudo_harmonic_mode(net, top.D[q])
            ph_F = op.hessian_apply(net, ph_D.z)
            out["overlap_loss"][s, q] = 1.0 - abs(float(jnp.vdot(_unit(top.D[q]), ph_D.z)))
            out["ph_cost_ratio"][s, q] = float(ph_D.cost / ph_D.cost_start)
            out["ph_gradient"][s, q] = float(ph_D.gradient)
            for c, field in enumerate((top.D[q], ph_D.z, top.F[q], ph_F)):
                profiles[s, q, c] = radial_profile(Rk, box, np.asarray(field), bins)
            if q == 0 and not example:
                example = {
                    "example_positions": (("example_particle", "dim"), Rk),
                    "example_bonds": (("example_bond", "end"),
                                      np.stack([np.asarray(net.i), np.asarray(net.j)], 1)),
                    "example_f": (("example_bond",), np.asarray(top.f[0])),
                    "example_F": (("example_particle", "dim"), np.asarray(top.F[0])),
                    "example_F_PH": (("example_particle", "dim"), np.asarray(ph_F)),
                    "example_D": (("example_particle", "dim"), np.asarray(top.D[0])),
                    "example_D_PH": (("example_particle", "dim"), np.asarray(ph_D.z)),
                    "example_lambda": ((), np.asarray(float(top.eigenvalues[0]))),
                    "example_box": (("dim", "dim2"), np.asarray(box)),
                }  # fmt: skip
        out["used"][s] = True
        progress.step(
            f"seed {seeds[s]}: N_b = {net.n_bonds}, rattlers {net.n_rattlers}, "
            f"lambda_max = {float(spec.eigenvalues[0]):.4g}, G = {float(G):.4g}"
        )
    arrays_out = {
        "seed": (("sample",), np.asarray(seeds, np.int64)),
        "used": (("sample",), out["used"]),
        "eigenvalues": (("sample", "mode"), out["eigenvalues"]),
        "participation": (("sample", "mode"), out["participation"]),
        "omega": (("sample", "mode"), out["omega"]),
        "n_bonds": (("sample",), out["n_bonds"]),
        "n_rattlers": (("sample",), out["n_rattlers"]),
        "self_stress": (("sample",), out["self_stress"]),
        "shear_modulus": (("sample",), out["shear_modulus"]),
        "density": (("sample",), out["density"]),
        "a0": (("sample",), out["a0"]),
        **{k: (("sample",), np.asarray(arrays[k], float)) for k in MC_COLUMNS if k in arrays},
        "overlap_loss": (("sample", "top_mode"), out["overlap_loss"]),
        "ph_cost_ratio": (("sample", "top_mode"), out["ph_cost_ratio"]),
        "ph_gradient": (("sample", "top_mode"), out["ph_gradient"]),
        "decay_bins": (("bin_edge",), bins),
        "decay": (("sample", "top_mode", "field", "bin"), profiles),
    }
    arrays_out.update(example)
    return arrays_out, {"samples": S, "used": int(out["used"].sum())}


def remove_checkpoint(output: str | Path) -> None:
    """Delete a batch's checkpoint once its store exists (nothing left to resume)."""
    if store.store_path(output).exists():
        shutil.rmtree(checkpoint_path(output), ignore_errors=True)
