"""Stages of the pruning study as plain functions over one network (entry, seed).

- :func:`build` (``network.zarr``): the network (positions, box, bonds, rest lengths), its
  initial nu, nu_iso, z and rigidity;
- :func:`run_method` (``<method>.zarr``): one method (anneal, greedy, gradient) toward every
  target of the entry, on the same starting network; per target the final bond mask, the nu
  history, snapshots of intermediate states (annealing) and the numbers of the runs table.
  Annealing checkpoints beside its output every ``checkpoint_every`` temperature levels and
  resumes after a kill with the same result;
- :func:`analyse_modes` (``modes.zarr``): the mode and bond analysis (:mod:`.modes`) of the
  initial network and of every snapshot and final state of every run.

Every final and analysed state is rigid by construction (moves that break rigidity are
rejected); :func:`analyse_modes` re-checks with the dense test and marks any that is not
(``valid = False``, NaN numbers), which the tables drop.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np

from tunable_solids import store
from tunable_solids.progress import Progress
from tunable_solids.store import Arrays

from . import annealing as an
from . import elasticity as el
from . import gradient as gd
from . import greedy as gr
from . import modes as md
from . import networks as nw
from .result import PruningResult, make_result

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ networks
def make_network(settings: dict, seed: int) -> nw.Network:
    """The network of an entry and seed (``numpy.random.default_rng([seed, 7])``)."""
    rng = np.random.default_rng([seed, 7])
    kind, n = settings["kind"], settings["N"]
    if kind == "triangular":
        return nw.distorted_triangular(int(round(n**0.5)), settings["distortion"], rng)
    if kind == "delaunay":
        return nw.periodic_delaunay(n, rng)
    return nw.jammed_contact_network(n, rng, phi=settings["packing_fraction"])


def build(settings: dict, seed: int) -> tuple[Arrays, dict]:
    net = make_network(settings, seed)
    g = el.geometry(net)
    k = np.ones(len(g.i))
    rig = el.rigidity(g, k)
    r = el.poisson_ratios(el.elastic_tensor(g, k)) if rig.valid else None
    nan = float("nan")
    arrays = {
        "positions": (("node", "dim"), net.positions),
        "box": (("dim", "dim2"), net.box),
        "i": (("bond",), net.i),
        "j": (("bond",), net.j),
        "rest_length": (("bond",), net.rest_length),
        "rigid": ((), np.asarray(rig.valid)),
        "nu": ((), np.asarray(r.nu if r else nan)),
        "nu_iso": ((), np.asarray(r.nu_iso if r else nan)),
        "z": ((), np.asarray(nw.coordination(net))),
    }
    summary = {"seed": seed, "kind": net.kind, "nodes": len(net.positions), "bonds": len(g.i),
               "rigid": rig.valid, "nu": r.nu if r else None}  # fmt: skip
    return arrays, summary


def network_of(arrays: dict, kind: str) -> nw.Network:
    return nw.Network(arrays["positions"], arrays["box"], arrays["i"].astype(np.int32),
                      arrays["j"].astype(np.int32), arrays["rest_length"], kind)  # fmt: skip


# ----------------------------------------------------------------------------- methods
def anneal_options(o: dict) -> an.AnnealOptions:
    keys = ("T0", "Tf", "cooling", "per_temperature", "p_remove", "refresh_every")
    return an.AnnealOptions(**{k: o[k] for k in keys})


def checkpoint_path(output: str | Path) -> Path:
    """A method job's checkpoint: beside its store, invisible to Snakemake."""
    output = store.store_path(output)
    return store.recover(output.with_name(f".{output.name}.checkpoint"))


def remove_checkpoint(output: str | Path) -> None:
    if store.store_path(output).exists():
        shutil.rmtree(checkpoint_path(output), ignore_errors=True)


def _flat(prefix: str, arrays: dict) -> Arrays:
    return {f"{prefix}{k}": (tuple(f"{prefix}{k}_{a}" for a in range(np.ndim(v))), np.asarray(v))
            for k, v in arrays.items()}  # fmt: skip


def _save(path: Path, done: list[dict], state, snaps: list, wall: float = 0.0,
          train: tuple | None = None) -> None:  # fmt: skip
    """Checkpoint: finished targets ``done``, the running target's state (annealing: its
    state and snapshots; gradient: ``train = (theta, Adam state leaves, nus)``) and the wall
    time spent on it so far."""
    arrays = {}
    for t, d in enumerate(done):
        arrays.update(_flat(f"done{t}_", {k: v for k, v in d.items() if k != "info"}))
    strings = {}
    if state is not None:
        # strings (RNG state JSON, stop reason) go to the attributes: zarr v3 has no stable
        # string dtype
        st = an.state_to_arrays(state)
        strings = {k: str(st.pop(k)) for k in ("rng_state", "stop")}
        arrays.update(_flat("state_", st))
        if snaps:
            arrays.update(_flat("snap_", {"mask": np.stack([m for m, _ in snaps]),
                                          "nu": np.array([v for _, v in snaps])}))  # fmt: skip
    if train is not None:
        theta, leaves, nus = train
        arrays.update(_flat("train_", {"theta": theta, "nus": np.asarray(nus, float)}))
        arrays.update(_flat("train_opt", {str(i): x for i, x in enumerate(leaves)}))
    infos = [d["info"] for d in done]
    store.write_store(path, arrays, {"done": len(done), "infos": infos, "wall": wall,
                                     "strings": strings})  # fmt: skip


def _load(path: Path):
    arrays, attrs = store.read_store(path)
    done = []
    for t in range(attrs["done"]):
        p = f"done{t}_"
        d = {k[len(p) :]: v for k, v in arrays.items() if k.startswith(p)}
        d["info"] = attrs["infos"][t]
        done.append(d)
    state = None
    if "state_mask" in arrays:
        st = {k[6:]: v for k, v in arrays.items() if k.startswith("state_")}
        state = an.state_from_arrays({**st, **attrs["strings"]})
    snaps = []
    if "snap_mask" in arrays:
        pairs = zip(arrays["snap_mask"], arrays["snap_nu"], strict=True)
        snaps = [(m.astype(bool), float(v)) for m, v in pairs]
    train = None
    if "train_theta" in arrays:
        leaves = [arrays[f"train_opt{i}"] for i in range(sum(k.startswith("train_opt")
                                                              for k in arrays))]  # fmt: skip
        train = (arrays["train_theta"], leaves, list(arrays["train_nus"]))
    return done, state, snaps, float(attrs["wall"]), train


def _record(result: PruningResult, history: np.ndarray, snaps: list, wall: float, info: dict):
    return {
        "target": result.target, "nu_initial": result.nu_initial, "nu_final": result.nu_final,
        "nu_iso_initial": result.nu_iso_initial, "nu_iso_final": result.nu_iso_final,
        "success": result.success, "bonds_removed_fraction": result.bonds_removed_fraction,
        "z_initial": result.z_initial, "z_final": result.z_final, "wall_s": wall,
        "mask": result.mask, "history": np.asarray(history, float),
        "snapshot_mask": (np.stack([m for m, _ in snaps]) if snaps
                          else np.zeros((0, len(result.mask)), bool)),
        "snapshot_nu": np.array([v for _, v in snaps], float),
        "info": info,
    }  # fmt: skip


def _anneal_target(g, target, seed, o, ckpt, done, state, snaps, wall0, label):
    """One annealing run, level by level, checkpointed every ``checkpoint_every`` levels
    (and at its end); snapshots: the first states past each of ``snapshots`` evenly spaced
    fractions of the way from the initial nu to the target."""
    opts = anneal_options(o)
    t0 = time.perf_counter()
    if state is None:
        state, snaps, wall0 = an.initial_state(g, target, [seed, len(done)]), [], 0.0
    marks = [state.nu_initial + (target - state.nu_initial) * (s + 1) / (o["snapshots"] + 1)
             for s in range(o["snapshots"])]  # fmt: skip
    sign = np.sign(target - state.nu_initial)
    n_levels, first = opts.n_levels(), state.level
    upd = None
    while not state.stop:
        state, upd = an.anneal(g, state, opts, max_levels=1, updater=upd)
        while len(snaps) < len(marks) and sign * (state.nu - marks[len(snaps)]) >= 0:
            snaps.append((state.mask.copy(), state.nu))
        if state.level % 10 == 0 or state.stop:
            h = state.history[-1]
            elapsed = time.perf_counter() - t0
            eta = elapsed / (state.level - first) * (n_levels - state.level)
            log.info("%s anneal to %+g: level %d/%d, T = %.3g, nu = %+.4f, bonds %d, "
                     "acceptance %.2f, stop '%s' | elapsed %.1f s, ETA (to T_f) %.1f s",
                     label, target, state.level, n_levels, h[1], state.nu, int(h[3]), h[4],
                     state.stop, elapsed, eta)  # fmt: skip
        if ckpt is not None and (state.level % o["checkpoint_every"] == 0 or state.stop):
            _save(ckpt, done, state, snaps, wall0 + time.perf_counter() - t0)
    wall = wall0 + time.perf_counter() - t0
    result = make_result("anneal", g, target, state.mask, wall)
    info = {"stop": state.stop, "proposals": state.step, "accepted": state.accepted,
            "max_refresh_error": state.max_refresh_error}  # fmt: skip
    return _record(result, state.history[:, 2], snaps, wall, info)


def _gradient_target(net, g, target, o, ckpt, done, train, wall0, label):
    """Gradient design toward one target: training checkpointed every ``checkpoint_every``
    steps (resumed from ``train``), then the rounding (fast, not checkpointed)."""
    t0 = time.perf_counter()
    wall0 = wall0 if train is not None else 0.0
    resume = None
    if train is not None:
        opt = gd.opt_state_from(train[1], len(g.i), o["learning_rate"])
        resume = (train[0], opt, train[2])

    def save(theta, opt_state, nus):
        if ckpt is not None:
            wall = wall0 + time.perf_counter() - t0
            _save(ckpt, done, None, [], wall, (np.asarray(theta), gd.opt_state_arrays(opt_state),
                                               nus))  # fmt: skip

    def report(step, nu):
        if step % 10 == 0:
            elapsed = time.perf_counter() - t0
            log.info("%s gradient to %+g: step %d/%d, nu = %+.4f | elapsed %.1f s, ETA (all "
                     "steps) %.1f s", label, target, step, o["steps"], nu, elapsed,
                     elapsed / step * (o["steps"] - step))  # fmt: skip

    k, nus = gd.train_stiffness(net, target, o["steps"], o["learning_rate"], o["tol"], resume,
                                save, o["checkpoint_every"], report)  # fmt: skip
    mask, path = gd.round_stiffness(g, k, target, o["k_cut"])
    wall = wall0 + time.perf_counter() - t0
    r = make_result("gradient", g, target, mask, wall)
    info = {"stop": "trained", "nu_trained": float(nus[-1]), "train_steps": len(nus),
            "rounding_removals": len(path) - 1}  # fmt: skip
    return _record(r, np.concatenate([nus, path]), [], wall, info)


def run_method(settings: dict, network: dict, output: str | None = None) -> tuple[Arrays, dict]:
    """Runs of one method toward each target from the same network (see the module doc)."""
    method, o = settings["method"], settings["options"]
    seed = int(settings["seed"])
    net = network_of(network, settings["kind"])
    g = el.geometry(net)
    label = f"{settings['name']} seed {seed}"
    ckpt = checkpoint_path(output) if output is not None else None
    done, state, snaps, wall0, train = [], None, [], 0.0, None
    if ckpt is not None and ckpt.exists():
        done, state, snaps, wall0, train = _load(ckpt)
        log.info("resuming from %s: %d targets done, level %s", ckpt, len(done),
                 None if state is None else state.level)  # fmt: skip
    for target in settings["targets"][len(done) :]:
        t0 = time.perf_counter()
        if method == "anneal":
            rec = _anneal_target(g, target, seed, o, ckpt, done, state, snaps, wall0, label)
            state, snaps = None, []
        elif method == "greedy":

            def report(removals, nu, evaluations, t0=t0, target=target):
                if removals % 10 == 0:
                    log.info("%s greedy to %+g: %d removals, nu = %+.4f, %d exact evaluations "
                             "| elapsed %.1f s", label, target, removals, nu, evaluations,
                             time.perf_counter() - t0)  # fmt: skip

            r = gr.greedy_pruning(g, target, o["n_candidates"], o["refresh_every"],
                                  o["max_removals"], report)  # fmt: skip
            info = {"stop": r.info["stop"], "evaluations": r.info["evaluations"]}
            rec = _record(r, r.info["nu_path"], [], time.perf_counter() - t0, info)
        else:
            rec = _gradient_target(net, g, target, o, ckpt, done, train, wall0, label)
            train = None
        done.append(rec)
        log.info("%s %s to %+g: nu %.4f -> %.4f, removed %.3f, success %s, %.1f s", label,
                 method, target, rec["nu_initial"], rec["nu_final"],
                 rec["bonds_removed_fraction"], rec["success"], rec["wall_s"])  # fmt: skip
        if ckpt is not None:
            _save(ckpt, done, None, [])
    return _stack(done, len(g.i)), {
        "method": method,
        "seed": seed,
        "nu_final": [d["nu_final"] for d in done],
        "success": [bool(d["success"]) for d in done],
        "infos": [d["info"] for d in done],
    }


SCALARS = ("target", "nu_initial", "nu_final", "nu_iso_initial", "nu_iso_final", "success",
           "bonds_removed_fraction", "z_initial", "z_final", "wall_s")  # fmt: skip


def _pad(rows: list[np.ndarray], width: int) -> np.ndarray:
    """Float rows of different lengths as ``(len(rows), width)``, NaN padded."""
    out = np.full((len(rows), width), np.nan)
    for t, r in enumerate(rows):
        out[t, : len(r)] = r
    return out


def _stack(done: list[dict], n_bonds: int) -> Arrays:
    arrays: Arrays = {k: (("run",), np.asarray([d[k] for d in done])) for k in SCALARS}
    arrays["mask"] = (("run", "bond"), np.stack([np.asarray(d["mask"], bool) for d in done]))
    h = max(len(d["history"]) for d in done)
    arrays["history"] = (("run", "step"), _pad([d["history"] for d in done], h))
    s = max(len(d["snapshot_nu"]) for d in done)
    arrays["snapshot_nu"] = (("run", "snapshot"), _pad([d["snapshot_nu"] for d in done], s))
    masks = np.zeros((len(done), s, n_bonds), bool)
    for t, d in enumerate(done):
        masks[t, : len(d["snapshot_nu"])] = np.asarray(d["snapshot_mask"], bool).reshape(
            -1, n_bonds
        )
    arrays["snapshot_mask"] = (("run", "snapshot", "bond"), masks)
    return arrays


# ------------------------------------------------------------------------------- modes
STATE_SCALARS = ("omega_plus", "omega_minus", "weight_plus", "weight_minus",
                 "nu_prime_plus", "nu_prime_minus", "nu_bar_prime", "sigma2", "cov_xy", "nu",
                 "nu_iso", "z")  # fmt: skip
# the same peaks from the modes with the box strain (modes.BoxModes)
BOX_SCALARS = ("omega_plus", "omega_minus", "weight_plus", "weight_minus", "nu_prime_plus",
               "nu_prime_minus", "nu_bar_prime")  # fmt: skip
STATE_SCALARS = STATE_SCALARS + tuple(f"{k}_box" for k in BOX_SCALARS)


# Codes of the modes store's ``method`` (-1: the initial network) and ``stage`` arrays.
METHOD_CODES = {"anneal": 0, "greedy": 1, "gradient": 2}
STAGES = ("initial", "during", "final")


def states_of(runs: list[tuple[str, dict]], n_bonds: int):
    """``(method, target, stage, mask)`` of every state to analyse: the initial network, then
    per run its snapshots ('during') and final state."""
    out = [("", np.nan, "initial", np.ones(n_bonds, bool))]
    for method, a in runs:
        for t in range(len(a["target"])):
            for s in range(np.sum(np.isfinite(a["snapshot_nu"][t]))):
                out.append((method, float(a["target"][t]), "during", a["snapshot_mask"][t, s]))
            out.append((method, float(a["target"][t]), "final", a["mask"][t]))
    return out


def analyse_modes(settings: dict, network: dict, runs: list[tuple[str, dict]]):
    """Mode and bond analysis of every state (:func:`states_of`)."""
    net = network_of(network, settings["kind"])
    g = el.geometry(net)
    states = states_of(runs, len(g.i))
    S, M, B = len(states), 2 * len(net.positions) - 2, len(g.i)
    per_mode = {k: np.full((S, M), np.nan) for k in ("omega", "weight", "nu_prime")}
    per_box_mode = {k: np.full((S, M + 3), np.nan) for k in ("omega", "weight", "nu_prime")}
    per_bond = {k: np.full((S, B), np.nan) for k in ("strain_x", "strain_y")}
    scalars = {k: np.full(S, np.nan) for k in STATE_SCALARS}
    valid = np.zeros(S, bool)
    progress = Progress(f"modes {settings['name']} seed {settings['seed']}", S)
    for s, (method, target, stage, mask) in enumerate(states):
        try:
            a = md.analyse(g, mask)
        except ValueError as exc:  # not rigid: never reported
            progress.step(f"{method} {target} {stage}: skipped ({exc})")
            continue
        valid[s] = True
        for k in per_mode:
            per_mode[k][s] = getattr(a, k)
        for k in per_bond:
            per_bond[k][s] = getattr(a, k)
        for k in per_box_mode:
            per_box_mode[k][s] = getattr(a.box, k)
        for k in scalars:
            scalars[k][s] = getattr(a.box, k[:-4]) if k.endswith("_box") else getattr(a, k)
        progress.step(f"{method or 'network'} {stage} to {target:+g}: nu = {a.nu:+.3f}, "
                      f"nu_bar' = {a.nu_bar_prime:+.3f} (with the box {a.box.nu_bar_prime:+.3f}),"
                      f" omega+- = {a.omega_plus:.3g}, {a.omega_minus:.3g}")  # fmt: skip
    arrays: Arrays = {
        "method": (("state",), np.asarray([METHOD_CODES.get(m, -1) for m, *_ in states])),
        "target": (("state",), np.asarray([t for _, t, *_ in states], float)),
        "stage": (("state",), np.asarray([STAGES.index(st) for _, _, st, _ in states])),
        "mask": (("state", "bond"), np.stack([m for *_, m in states])),
        "valid": (("state",), valid),
    }
    arrays.update({k: (("state", "mode"), v) for k, v in per_mode.items()})
    arrays.update({f"{k}_box": (("state", "box_mode"), v) for k, v in per_box_mode.items()})
    arrays.update({k: (("state", "bond"), v) for k, v in per_bond.items()})
    arrays.update({k: (("state",), v) for k, v in scalars.items()})
    return arrays, {"states": S, "valid": int(valid.sum())}
