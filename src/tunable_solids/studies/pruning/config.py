"""Config of the network pruning study (``pruning:``, ``workflow/schemas/pruning.schema.yaml``):
resolved network settings, the runs, what each stage depends on, and the rules the schema
cannot say.

:func:`tunable_solids.config.validate` calls :func:`errors`; ``workflow/rules/pruning.smk``
calls the rest.
"""

from __future__ import annotations

import copy
import math

from .surrogate_config import surrogate_errors

METHODS = ("anneal", "greedy", "gradient")
# Documented defaults (the schema repeats them); see annealing.AnnealOptions for T0 / Tf.
DEFAULT_ANNEAL = {
    "T0": 1e-2,
    "Tf": 1e-5,
    "cooling": 0.95,
    "per_temperature": 15,
    "p_remove": 0.7,
    "refresh_every": 128,
    "checkpoint_every": 20,
    "snapshots": 3,
}
DEFAULT_GREEDY = {"n_candidates": 16, "refresh_every": 128, "max_removals": None}
DEFAULT_GRADIENT = {
    "steps": 300,
    "learning_rate": 0.05,
    "k_cut": 0.5,
    "tol": 1e-3,
    "checkpoint_every": 50,
}
DEFAULTS = {"anneal": DEFAULT_ANNEAL, "greedy": DEFAULT_GREEDY, "gradient": DEFAULT_GRADIENT}


def errors(config: dict) -> list[str]:
    """Rules of the networks that the schema cannot express."""
    out = []
    p = config.get("pruning", {})
    for name, n in p.get("networks", {}).items():
        key = f"pruning.networks.{name}"
        side = math.isqrt(n["N"])
        if n["kind"] == "triangular" and (side * side != n["N"] or side % 2):
            out.append(
                f"{key}.N: {n['N']} is not allowed for kind triangular; allowed: the square of "
                "an even side (e.g. 144 = 12 x 12, 1024 = 32 x 32)"
            )
        if n["kind"] == "packing" and n["N"] % 2:
            out.append(f"{key}.N: {n['N']} must be even for kind packing (1:1 bidisperse)")
        if "distortion" in n and n["kind"] != "triangular":
            out.append(f"{key}.distortion: only allowed for kind triangular")
        if "packing_fraction" in n and n["kind"] != "packing":
            out.append(f"{key}.packing_fraction: only allowed for kind packing")
        if n["kind"] == "triangular" and n.get("distortion", 0.3) >= 0.5:
            out.append(
                f"{key}.distortion: {n['distortion']} is not allowed; must be < 0.5 (larger "
                "distortions let bonds cross)"
            )
        targets = n.get("targets", [-0.9, 0.9])
        if len(set(targets)) != len(targets):
            out.append(f"{key}.targets: {targets} has repeated values")
        a = {**DEFAULT_ANNEAL, **p.get("anneal", {}), **n.get("anneal", {})}
        if a["Tf"] >= a["T0"]:
            out.append(f"{key}.anneal.Tf: {a['Tf']} must be < T0 = {a['T0']}")
    return out + surrogate_errors(config)


def network_settings(config: dict, name: str) -> dict:
    """Resolved settings of one network entry: defaults filled, method options merged
    (global ``pruning.<method>`` then the network's own), ``name`` added."""
    p = config["pruning"]
    n = copy.deepcopy(p["networks"][name])
    n["name"] = name
    n["seeds"] = {"first": 0, **n["seeds"]}
    n.setdefault("methods", ["anneal"])
    n.setdefault("targets", [-0.9, 0.9])
    if n["kind"] == "triangular":
        n.setdefault("distortion", 0.3)
    if n["kind"] == "packing":
        n.setdefault("packing_fraction", 0.9)
    for m in METHODS:
        n[m] = {**DEFAULTS[m], **p.get(m, {}), **n.get(m, {})}
    return n


def seeds(settings: dict) -> list[int]:
    s = settings["seeds"]
    return list(range(s["first"], s["first"] + s["count"]))


def build_settings(settings: dict) -> dict:
    """What building the network depends on."""
    keys = ("name", "kind", "N", "distortion", "packing_fraction")
    return {k: settings[k] for k in keys if k in settings}


def run_settings(settings: dict, method: str) -> dict:
    """What one method's runs (all targets) depend on."""
    return {"name": settings["name"], "kind": settings["kind"], "method": method,
            "targets": list(settings["targets"]), "options": settings[method]}  # fmt: skip
