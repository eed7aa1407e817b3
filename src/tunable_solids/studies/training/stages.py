"""The training study's stages: one training run (with checkpoints) and its validation.

A run's settings come from :func:`.config.training_runs`. :func:`run_training` resumes from
the run's checkpoint store when one exists, so a job killed at any moment continues from
its last checkpoint without losing or repeating steps, and ends with the same parameters as
an uninterrupted run (the training state is saved exactly and ensemble batches are seeded
by (run seed, step)).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from tunable_solids import store, systems
from tunable_solids.minimize import FireOptions, MinimizeOptions
from tunable_solids.parameters import params_of, theta_labels, theta_of
from tunable_solids.potentials import SpeciesParams, make_potential
from tunable_solids.space import check_box_fits
from tunable_solids.store import Arrays

from . import physics as T

log = logging.getLogger(__name__)

HISTORY = (
    "loss",
    "values",
    "theta",
    "grad_norm",
    "lr",
    "max_force",
    "iterations",
    "n_excluded",
    "rearranged",
)


def train_spec(run: dict) -> T.TrainSpec:
    lr = run["learning_rate"]
    return T.TrainSpec(
        mode=run["mode"],
        targets=tuple((q, float(v)) for q, v in run["target"].items()),
        names=tuple(run["params"]),
        max_steps=run["max_steps"],
        loss_threshold=run["loss_threshold"],
        batch=run["batch"],
        vectorize=run["vectorize"],
        lr=T.LearningRate(**lr),
    )


def train_system(run: dict, n: int | None = None) -> T.System:
    """Physical set-up of a run (``n`` overrides N, e.g. for large-system validation)."""
    sysc = run["system"]
    n = n or sysc["N"]
    sp = sysc["species"]
    params = systems.default_params(
        sp["n_species"], sp["diameters"], sysc["interactions"]["k"], sysc["interactions"]["binding"]
    )
    species = systems.assign_species(n, sp["n_species"])
    box = systems.box_for_density(n, sysc["dim"], sysc["density"])
    pot = make_potential(sysc["potential"], **sysc.get("potential_options", {}))
    check_box_fits(box, float(pot.cutoff(jnp.max(params.diameter))))
    mn = run["minimize"]
    options = MinimizeOptions(
        mn["force_tol"], mn["max_steps"], mn["skin"], FireOptions(**mn["fire"])
    )
    return T.System(pot, box, species, params, options)


def initial_starts(run: dict, system: T.System) -> np.ndarray:
    """Random starts ``(m, N, d)`` of the tracked configurations (``m = 0`` for ensembles)."""
    if run["mode"] == "ensemble":
        return np.zeros((0, len(system.species), system.box.shape[0]))
    m = 1 if run["mode"] == "individual" else run["m"]
    rng = np.random.default_rng([run["seed"], 0])
    return np.stack(
        [systems.random_positions(rng, len(system.species), system.box) for _ in range(m)]
    )


# --------------------------------------------------------------------------- checkpoints
def _save_checkpoint(path: Path, state: T.TrainState, history: dict) -> None:
    leaves = jax.tree_util.tree_leaves(state.opt_state)
    arrays = {
        "step": ((), np.asarray(state.step)),
        "theta": (("theta",), state.theta),
        "lr": ((), np.asarray(state.lr)),
        "prev_loss": ((), np.asarray(state.prev_loss)),
        "positions": (("config", "particle", "axis"), state.positions),
    }
    for k, leaf in enumerate(leaves):
        leaf = np.asarray(leaf)
        arrays[f"opt_{k}"] = (tuple(f"d{k}_{a}" for a in range(leaf.ndim)), leaf)
    for key in HISTORY:
        value = np.asarray(history[key])
        arrays[f"history_{key}"] = (tuple(f"h_{key}_{a}" for a in range(value.ndim)), value)
    store.write_store(path, arrays, {"n_opt_leaves": len(leaves)})


def _load_checkpoint(path: Path, template: T.TrainState):
    arrays, attrs = store.read_store(path)
    treedef = jax.tree_util.tree_structure(template.opt_state)
    leaves = [jnp.asarray(arrays[f"opt_{k}"]) for k in range(attrs["n_opt_leaves"])]
    state = T.TrainState(
        int(arrays["step"]),
        arrays["theta"],
        jax.tree_util.tree_unflatten(treedef, leaves),
        float(arrays["lr"]),
        float(arrays["prev_loss"]),
        arrays["positions"],
    )
    history = {k: list(arrays[f"history_{k}"]) for k in HISTORY}
    return state, history


def checkpoint_path(output: str | Path) -> Path:
    """Where a run's checkpoint lives: beside the final store, invisible to Snakemake. A
    checkpoint whose replacement was interrupted is restored first (:func:`store.recover`)."""
    output = store.store_path(output)
    return store.recover(output.with_name(f".{output.name}.checkpoint"))


# --------------------------------------------------------------------------- run
def run_training(run: dict, output: str) -> tuple[Arrays, dict]:
    """Train one run to success or ``max_steps``, checkpointing every ``checkpoint_every``
    steps into :func:`checkpoint_path`, resuming from it if present."""
    spec = train_spec(run)
    system = train_system(run)
    ckpt = checkpoint_path(output)
    fresh = T.init_state(spec, system, initial_starts(run, system))
    history = {k: [] for k in HISTORY}
    state = fresh
    if ckpt.exists():
        state, history = _load_checkpoint(ckpt, fresh)
        log.info("resuming %s from its checkpoint at step %d", run["id"], state.step)
    every = run["checkpoint_every"]
    success = (
        bool(history["loss"])
        and spec.mode != "ensemble"
        and history["loss"][-1] < spec.loss_threshold
    )
    start, first = time.perf_counter(), state.step
    while not success and state.step < spec.max_steps:
        state, rec = T.train_step(spec, system, state, run["seed"])
        for key in HISTORY:
            history[key].append(getattr(rec, key))
        success = spec.mode != "ensemble" and rec.loss < spec.loss_threshold
        done = state.step - first
        eta = (time.perf_counter() - start) / done * (spec.max_steps - state.step)
        values = ", ".join(
            f"{q} = {v:.6f}" for q, v in zip(spec.props, np.nanmean(rec.values, 0), strict=True)
        )
        log.info(
            "%s step %d/%d: loss = %.3e, %s, lr = %.2e, max|F| = %.1e%s%s | ETA %.0f s",
            run["id"],
            state.step,
            spec.max_steps,
            rec.loss,
            values,
            rec.lr,
            rec.max_force,
            ", rearranged" if rec.rearranged else "",
            f", excluded {rec.n_excluded}" if rec.n_excluded else "",
            eta,
        )
        if state.step % every == 0 or success or state.step == spec.max_steps:
            _save_checkpoint(ckpt, state, history)
    # Success means the evaluated parameters met the threshold: those are the result.
    final = history["theta"][-1] if success else state.theta
    params = params_of(jnp.asarray(final), system.params0, spec.names)
    arrays: Arrays = {
        "step": (("step",), np.arange(len(history["loss"]))),
        "loss": (("step",), np.asarray(history["loss"])),
        "values": (("step", "config", "property"), np.asarray(history["values"])),
        "theta": (("step", "parameter"), np.asarray(history["theta"])),
        "grad_norm": (("step",), np.asarray(history["grad_norm"])),
        "lr": (("step",), np.asarray(history["lr"])),
        "max_force": (("step",), np.asarray(history["max_force"])),
        "iterations": (("step",), np.asarray(history["iterations"], np.int64)),
        "n_excluded": (("step",), np.asarray(history["n_excluded"], np.int64)),
        "rearranged": (("step",), np.asarray(history["rearranged"], bool)),
        "final_theta": (("parameter",), np.asarray(final)),
        "diameter": (("species",), np.asarray(params.diameter)),
        "k": (("species", "species_b"), np.asarray(params.k)),
        "binding": (("species", "species_b"), np.asarray(params.binding)),
        "positions": (("config", "particle", "axis"), state.positions),
    }
    summary = {
        "run": run["id"],
        "steps": len(history["loss"]),
        "success": bool(success),
        "final_loss": float(history["loss"][-1]) if history["loss"] else math.nan,
        "properties": list(spec.props),
        "targets": spec.target_values.tolist(),
        "parameters": theta_labels(system.params0, spec.names),
        "n_rearrangements": int(np.sum(history["rearranged"])),
        "n_excluded": int(np.sum(history["n_excluded"])),
    }
    return arrays, summary


def finish(output: str) -> None:
    """Remove a run's checkpoint once its final store exists."""
    ckpt = checkpoint_path(output)
    if (store.store_path(output) / store.STORE_FILE).exists() and ckpt.exists():
        import shutil

        shutil.rmtree(ckpt)


# --------------------------------------------------------------------------- validation
def validate_run(run: dict, arrays: dict, dims: dict) -> tuple[Arrays, dict]:
    """Properties of fresh configurations at the trained parameters (and at theta0).

    Validation configurations use seeds disjoint from training (``validation.seed_offset``);
    ``validation.N`` may differ from the training N. Optional robustness perturbations:
    ``polydispersity`` (relative Gaussian spread of each particle's diameter) and
    ``heterogeneity`` (of each particle pair's binding energy) are applied per configuration
    by giving every particle its own species. Non-converged states are excluded and counted.
    """
    val = run["validation"]
    spec = train_spec(run)
    system = train_system(run, val.get("N"))
    n = len(system.species)
    rng = np.random.default_rng([run["seed"], val["seed_offset"]])
    starts = np.stack([systems.random_positions(rng, n, system.box) for _ in range(val["configs"])])
    results = {}
    for label, theta in (
        ("trained", arrays["final_theta"]),
        ("initial", np.asarray(theta_of(system.params0, spec.names))),
    ):
        params = params_of(jnp.asarray(theta), system.params0, spec.names)
        if val["polydispersity"] or val["heterogeneity"]:
            values = _perturbed_values(system, params, starts, spec.props, val, rng)
        else:
            values, _ = T.validate(system, spec.names, theta, starts, spec.props)
        results[label] = values
        log.info(
            "validation (%s): %s",
            label,
            ", ".join(f"<{q}> = {np.nanmean(values[:, i]):.6f}" for i, q in enumerate(spec.props)),
        )
    out: Arrays = {
        "values": (("config", "property"), results["trained"]),
        "values_initial": (("config", "property"), results["initial"]),
    }
    ok = np.all(np.isfinite(results["trained"]), axis=1)
    summary = {
        "properties": list(spec.props),
        "n_validation": int(len(ok)),
        "n_excluded": int((~ok).sum()),
    }
    for label in ("trained", "initial"):
        v = results[label][np.all(np.isfinite(results[label]), axis=1)]
        summary[f"mean_{label}"] = v.mean(0).tolist() if len(v) else None
        summary[f"sem_{label}"] = (
            (v.std(0, ddof=1) / np.sqrt(len(v))).tolist() if len(v) > 1 else None
        )
    return out, summary


def _perturbed_values(system, params, starts, props, val, rng):
    """Validation with per-particle diameters and per-pair binding energies perturbed."""
    n = len(system.species)
    values = []
    for R0 in starts:
        d = np.asarray(params.diameter)[system.species] * (
            1 + val["polydispersity"] * rng.standard_normal(n)
        )
        b = np.asarray(params.binding)[np.ix_(system.species, system.species)]
        noise = rng.standard_normal((n, n))
        b = b * (1 + val["heterogeneity"] * np.triu(noise, 1))
        b = np.triu(b, 1) + np.triu(b, 1).T
        k = np.asarray(params.k)[np.ix_(system.species, system.species)]
        own = SpeciesParams(jnp.asarray(d), jnp.asarray(k), jnp.asarray(b))
        sub = system._replace(species=np.arange(n, dtype=np.int32), params0=own)
        v, _ = T.validate(sub, ("D",), np.asarray(d), R0[None], props)
        values.append(v[0])
    return np.stack(values)
