"""Analyses of training runs, as workflow stages (plain functions; no file I/O).

- :func:`gradient_check` (paper Fig. 1c): is the AD gradient predictive? Along a random unit
  direction ``u`` in parameter space, the measured change ``q(theta + eps u) - q(theta)``
  (re-minimizing from the reference minimum each time) against the linear prediction
  ``(grad q . u) eps``, for log-spaced ``eps``, at theta0 and at the trained theta.
- :func:`bond_analysis` (Fig. 1f): bond-level contributions ``K_ij``, ``G_ij``
  (:func:`mechanics.bond_contributions`, summing to B and G) of the tracked configurations
  before and after training.
- :func:`untrained_ensemble`: the ensemble average of the properties at theta0 over fresh
  configurations (the reference every trained ``<q>`` is compared with); also a command line,
  ``python -m tunable_solids.studies.training.analysis --help``.

Minimizations that do not converge are kept in the stores as NaN with a ``converged`` flag,
counted in the summaries and excluded from every average, never replaced.
"""

from __future__ import annotations

import argparse
import logging
import math
import time

import jax.numpy as jnp
import numpy as np

from tunable_solids import mechanics as mech
from tunable_solids import systems
from tunable_solids.minimize import minimize, polish
from tunable_solids.parameters import params_of, theta_labels, theta_of
from tunable_solids.preparation import State, contact_set, interacting_pairs
from tunable_solids.progress import Progress
from tunable_solids.store import Arrays

from . import physics as T
from .stages import initial_starts, train_spec, train_system

log = logging.getLogger(__name__)

REFERENCES = ("initial", "trained")


def _minimum(system: T.System, params, start) -> object:
    """FIRE from ``start`` at ``params``, then Newton-polished to the round-off floor (finite
    differences of minimized quantities need positions far below FIRE's force tolerance)."""
    species, box = jnp.asarray(system.species), jnp.asarray(system.box)
    m = minimize(system.potential, jnp.asarray(start), box, params, species, system.options)
    if not bool(m.converged):
        return m
    return polish(system.potential, m, box, params, species)


def _contacts(system: T.System, params, m) -> frozenset:
    n = len(system.species)
    state = State(
        m.positions,
        jnp.asarray(system.box),
        jnp.asarray(system.species),
        m.pairs,
        jnp.zeros(n, bool),
    )
    return contact_set(system.potential, params, state)


def _references(run: dict, arrays: dict, system: T.System, names) -> dict:
    """Parameters and starting positions ``(m, N, d)`` of the two reference states: theta0
    from the run's initial configurations, and the trained theta from its final ones."""
    theta0 = np.asarray(theta_of(system.params0, names))
    return {
        "initial": (theta0, initial_starts(run, system)),
        "trained": (np.asarray(arrays["final_theta"]), np.asarray(arrays["positions"])),
    }


# --------------------------------------------------------------------------- gradient check
def gradient_check(run: dict, arrays: dict, dims: dict) -> tuple[Arrays, dict]:
    """Measured vs predicted property change along a random direction (Fig. 1c).

    ``run["gradient_check"]``: ``eps_min``, ``eps_max``, ``n_eps`` (log-spaced step sizes),
    ``direction_seed`` (the unit direction ``u`` is drawn from (run seed, direction_seed) and
    is the same at both references). Configuration 0 of the run is checked.
    """
    gc = run["gradient_check"]
    spec = train_spec(run)
    system = train_system(run)
    names, props = spec.names, spec.props
    eps = np.logspace(math.log10(gc["eps_min"]), math.log10(gc["eps_max"]), gc["n_eps"])
    refs = _references(run, arrays, system, names)
    n_theta = len(refs["initial"][0])
    rng = np.random.default_rng([run["seed"], gc["direction_seed"]])
    u = rng.standard_normal(n_theta)
    u /= np.linalg.norm(u)
    n_ref, n_eps, n_q = len(REFERENCES), len(eps), len(props)
    out = {
        "theta_ref": np.full((n_ref, n_theta), np.nan),
        "value_ref": np.full((n_ref, n_q), np.nan),
        "gradient": np.full((n_ref, n_q, n_theta), np.nan),
        "reference_converged": np.zeros(n_ref, bool),
        "delta": np.full((n_ref, n_eps, n_q), np.nan),
        "linear": np.full((n_ref, n_eps, n_q), np.nan),
        "converged": np.zeros((n_ref, n_eps), bool),
        "contact_change": np.zeros((n_ref, n_eps), bool),
        "max_force": np.full((n_ref, n_eps), np.nan),
    }
    species, box = jnp.asarray(system.species), jnp.asarray(system.box)
    progress = Progress(f"gradient check {run['id']}", n_ref * n_eps)
    for r, label in enumerate(REFERENCES):
        theta, starts = refs[label]
        out["theta_ref"][r] = theta
        params = params_of(jnp.asarray(theta), system.params0, names)
        m0 = _minimum(system, params, starts[0])
        if not bool(m0.converged):
            log.warning("%s reference did not converge: no check", label)
            for _ in eps:
                progress.step(f"{label}: reference not converged")
            continue
        v0, J = T.property_jacobian(
            system.potential,
            props,
            names,
            spec.cg_tol,
            jnp.asarray(theta),
            system.params0,
            m0.positions,
            box,
            species,
            m0.pairs,
        )
        v0, J = np.asarray(v0), np.asarray(J)
        out["reference_converged"][r] = True
        out["value_ref"][r], out["gradient"][r] = v0, J
        slope = J @ u
        contacts0 = _contacts(system, params, m0)
        for k, e in enumerate(eps):
            p = params_of(jnp.asarray(theta + e * u), system.params0, names)
            m = _minimum(system, p, m0.positions)
            out["max_force"][r, k] = float(m.max_force)
            out["linear"][r, k] = slope * e
            if bool(m.converged):
                v = T.property_values(
                    system.potential, props, spec.cg_tol, p, m.positions, box, species, m.pairs
                )
                out["delta"][r, k] = np.asarray(v) - v0
                out["converged"][r, k] = True
                out["contact_change"][r, k] = _contacts(system, p, m) != contacts0
            progress.step(
                f"{label} eps = {e:.1e}: measured {np.abs(out['delta'][r, k])}, "
                f"predicted {np.abs(out['linear'][r, k])}"
                + (", contacts changed" if out["contact_change"][r, k] else "")
                + ("" if out["converged"][r, k] else ", NOT converged (excluded)")
            )
    result: Arrays = {
        "eps": (("eps",), eps),
        "direction": (("parameter",), u),
        "theta_ref": (("reference", "parameter"), out["theta_ref"]),
        "value_ref": (("reference", "property"), out["value_ref"]),
        "gradient": (("reference", "property", "parameter"), out["gradient"]),
        "reference_converged": (("reference",), out["reference_converged"]),
        "delta": (("reference", "eps", "property"), out["delta"]),
        "linear": (("reference", "eps", "property"), out["linear"]),
        "converged": (("reference", "eps"), out["converged"]),
        "contact_change": (("reference", "eps"), out["contact_change"]),
        "max_force": (("reference", "eps"), out["max_force"]),
    }
    rel = np.abs(out["delta"] - out["linear"]) / np.abs(out["linear"])
    summary = {
        "run": run["id"],
        "references": list(REFERENCES),
        "properties": list(props),
        "parameters": theta_labels(system.params0, names),
        "n_excluded": int((~out["converged"]).sum()),
        "n_contact_change": int(out["contact_change"].sum()),
        # relative deviation from the linear prediction at the smallest step, per reference
        "rel_deviation_smallest_eps": [
            None if not np.isfinite(rel[r, 0]).all() else rel[r, 0].tolist() for r in range(n_ref)
        ],
    }
    return result, summary


# --------------------------------------------------------------------------- bonds
def _bonds_of(system: T.System, params, start, cg_tol: float) -> dict | None:
    """Minimum from ``start`` and its bond-level contributions (None if not converged)."""
    m = _minimum(system, params, start)
    if not bool(m.converged):
        return None
    box = jnp.asarray(system.box)
    species = jnp.asarray(system.species)
    R = m.positions
    n, dim = R.shape
    pairs = interacting_pairs(system.potential, R, box, params)
    model = mech.Model(system.potential, box, species, pairs)
    el = mech.elastic_constants(model, R, params, cg_tol=cg_tol)
    B, G, nu = mech.isotropic_moduli(el.voigt, dim)
    K, Gb = mech.bond_contributions(model, R, params, el.nonaffine)
    valid = np.asarray(pairs.mask)
    contact = np.asarray(mech.contact_mask(model, R, params))[valid]
    return {
        "positions": np.asarray(R),
        "pair_i": np.asarray(pairs.i)[valid],
        "pair_j": np.asarray(pairs.j)[valid],
        "pair_contact": contact,
        "bond_K": np.asarray(K)[valid],
        "bond_G": np.asarray(Gb)[valid],
        "B": float(B),
        "G": float(G),
        "nu": float(nu),
        "max_force": float(m.max_force),
    }


def bond_analysis(run: dict, arrays: dict, dims: dict) -> tuple[Arrays, dict]:
    """``K_ij``, ``G_ij`` of every tracked configuration at theta0 and after training.

    Dimensions ``(reference, config, pair)``, padded (pair index -1, values NaN); a reference
    state that did not converge is all padding and ``converged`` False.
    """
    spec = train_spec(run)
    system = train_system(run)
    refs = _references(run, arrays, system, spec.names)
    n_cfg = len(refs["trained"][1])
    n, dim = len(system.species), system.box.shape[0]
    rows: dict[str, list] = {k: [] for k in ("pair_i", "pair_j", "pair_contact", "K", "G")}
    shape = (len(REFERENCES), n_cfg)
    scal = {k: np.full(shape, np.nan) for k in ("B", "G", "nu", "sum_K", "sum_G", "max_force")}
    positions = np.full(shape + (n, dim), np.nan)
    converged = np.zeros(shape, bool)
    diameters = np.full((len(REFERENCES), len(system.params0.diameter)), np.nan)
    binding = np.full((len(REFERENCES),) + tuple(system.params0.binding.shape), np.nan)
    progress = Progress(f"bonds {run['id']}", len(REFERENCES) * n_cfg)
    for r, label in enumerate(REFERENCES):
        theta, starts = refs[label]
        params = params_of(jnp.asarray(theta), system.params0, spec.names)
        diameters[r], binding[r] = np.asarray(params.diameter), np.asarray(params.binding)
        for c in range(n_cfg):
            b = _bonds_of(system, params, starts[c], spec.cg_tol)
            if b is None:
                for k in rows:
                    rows[k].append(np.zeros(0))
                progress.step(f"{label} config {c}: NOT converged (excluded)")
                continue
            converged[r, c] = True
            positions[r, c] = b["positions"]
            for k in ("B", "G", "nu", "max_force"):
                scal[k][r, c] = b[k]
            scal["sum_K"][r, c] = float(np.sum(b["bond_K"]))
            scal["sum_G"][r, c] = float(np.sum(b["bond_G"]))
            for k, src in (
                ("pair_i", "pair_i"),
                ("pair_j", "pair_j"),
                ("pair_contact", "pair_contact"),
                ("K", "bond_K"),
                ("G", "bond_G"),
            ):
                rows[k].append(b[src])
            progress.step(
                f"{label} config {c}: B = {b['B']:.6g} (sum K = {scal['sum_K'][r, c]:.6g}), "
                f"G = {b['G']:.6g} (sum G = {scal['sum_G'][r, c]:.6g}), nu = {b['nu']:.6f}"
            )
    width = max((len(x) for x in rows["K"]), default=0)

    def pad(key, fill, dtype):
        out = np.full(shape + (width,), fill, dtype=dtype)
        for idx, row in enumerate(rows[key]):
            out[idx // n_cfg, idx % n_cfg, : len(row)] = row
        return out

    result: Arrays = {
        "species": (("particle",), np.asarray(system.species)),
        "box": (("axis", "lattice_vector"), np.asarray(system.box)),
        "diameter": (("reference", "species"), diameters),
        "binding": (("reference", "species", "species_b"), binding),
        "positions": (("reference", "config", "particle", "axis"), positions),
        "converged": (("reference", "config"), converged),
        "pair_i": (("reference", "config", "pair"), pad("pair_i", -1, np.int32)),
        "pair_j": (("reference", "config", "pair"), pad("pair_j", -1, np.int32)),
        "pair_contact": (("reference", "config", "pair"), pad("pair_contact", False, bool)),
        "bond_K": (("reference", "config", "pair"), pad("K", np.nan, float)),
        "bond_G": (("reference", "config", "pair"), pad("G", np.nan, float)),
        **{k: (("reference", "config"), v) for k, v in scal.items()},
    }
    ok = converged
    summary = {
        "run": run["id"],
        "references": list(REFERENCES),
        "target": run["target"],
        "top": run["bonds"]["top"],
        "n_excluded": int((~ok).sum()),
        "nu": [scal["nu"][r][ok[r]].tolist() for r in range(len(REFERENCES))],
        "sum_rule_max_rel_error": float(
            np.nanmax(
                [
                    np.abs(scal["sum_K"] - scal["B"]) / np.abs(scal["B"]),
                    np.abs(scal["sum_G"] - scal["G"]) / np.abs(scal["G"]),
                ]
            )
        )
        if ok.any()
        else None,
    }
    return result, summary


# --------------------------------------------------------------------------- untrained ensemble
def untrained_ensemble(
    run: dict, configs: int | None = None, seconds: float | None = None, seed: int = 0
) -> tuple[Arrays, dict]:
    """Properties of fresh random configurations at the untrained parameters theta0.

    Runs ``configs`` configurations, or as many as fit in ``seconds`` of wall time (the
    first, which includes compilation, counts). Non-converged states are excluded and
    counted. Seeds ``(seed, 2_000_003, i)`` are disjoint from training and validation.
    """
    spec = train_spec(run)
    system = train_system(run)
    theta0 = np.asarray(theta_of(system.params0, spec.names))
    n = len(system.species)
    start = time.perf_counter()
    values, ok = [], []
    i = 0
    while (configs is None or i < configs) and (
        seconds is None or time.perf_counter() - start < seconds
    ):
        rng = np.random.default_rng([seed, 2_000_003, i])
        R0 = systems.random_positions(rng, n, system.box)[None]
        v, c = T.validate(system, spec.names, theta0, R0, spec.props)
        values.append(v[0])
        ok.append(bool(c[0]))
        i += 1
        good = np.asarray(values)[np.asarray(ok)]
        log.info(
            "untrained config %d: %s%s | running mean %s, %.1f s",
            i,
            v[0],
            "" if c[0] else " NOT converged (excluded)",
            good.mean(0) if len(good) else "-",
            time.perf_counter() - start,
        )
    values, ok = np.asarray(values), np.asarray(ok)
    good = values[ok]
    summary = {
        "properties": list(spec.props),
        "n": int(ok.sum()),
        "n_excluded": int((~ok).sum()),
        "mean": good.mean(0).tolist() if len(good) else None,
        "sem": (good.std(0, ddof=1) / np.sqrt(len(good))).tolist() if len(good) > 1 else None,
        "std": good.std(0, ddof=1).tolist() if len(good) > 1 else None,
        "wall_time_s": time.perf_counter() - start,
    }
    arrays: Arrays = {
        "values": (("config", "property"), values),
        "converged": (("config",), ok),
    }
    return arrays, summary


def main(argv: list[str] | None = None) -> None:
    """Command line: ``untrained`` measures the untrained ensemble average of a group's model."""
    import yaml

    from tunable_solids.config import validate

    from .config import training_runs

    parser = argparse.ArgumentParser(prog="python -m tunable_solids.studies.training.analysis")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("untrained", help="ensemble average at theta0 of a training group's model")
    p.add_argument("--configfile", required=True)
    p.add_argument("--group", required=True, help="training.runs group whose system is used")
    p.add_argument("--n-species", type=int, default=None, help="n_species (default: the first)")
    p.add_argument("--properties", default="nu,pressure", help="comma-separated properties")
    p.add_argument("--configs", type=int, default=None, help="number of configurations")
    p.add_argument("--minutes", type=float, default=None, help="or: wall-time budget")
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("jax").setLevel(logging.WARNING)
    with open(args.configfile) as f:
        config = yaml.safe_load(f)
    validate(config)
    run = next(
        r
        for r in training_runs(config).values()
        if r["group"] == args.group
        and args.n_species in (None, r["system"]["species"]["n_species"])
    )
    run = {**run, "target": {q: 0.0 for q in args.properties.split(",")}}
    if args.configs is None and args.minutes is None:
        parser.error("give --configs or --minutes")
    seconds = None if args.minutes is None else 60.0 * args.minutes
    _, s = untrained_ensemble(run, args.configs, seconds, args.seed)
    sysc = run["system"]
    print(
        f"untrained ensemble of {args.group}: N = {sysc['N']}, dim = {sysc['dim']}, "
        f"density = {sysc['density']}, n_species = {sysc['species']['n_species']}"
    )
    for i, q in enumerate(s["properties"]):
        mean = s["mean"][i] if s["mean"] else math.nan
        sem = s["sem"][i] if s["sem"] else math.nan
        std = s["std"][i] if s["std"] else math.nan
        print(f"  <{q}> = {mean:.4f} +- {sem:.4f} (SEM; std {std:.4f})")
    print(f"  n = {s['n']} configurations, {s['n_excluded']} excluded, {s['wall_time_s']:.0f} s")


if __name__ == "__main__":
    main()
