"""Config of the independent-response study: the optional per-scenario ``response:`` block
(``workflow/schemas/response.schema.yaml`` documents every key) and ``figures.response``.

:func:`tunable_solids.config.validate` calls :func:`errors` after the schema check;
:func:`tunable_solids.config.scenario_settings` and :func:`~tunable_solids.config.stage_settings`
call :func:`scenario_settings` and :func:`stage_settings`.
"""

from __future__ import annotations

import copy
from typing import Any

from tunable_solids.parameters import n_theta_of, species_for_n_theta

DEFAULT_RESPONSE = {
    "feature_sets": [["C"]],
    "n_frequencies": 10,
    "cg_tol": 1e-12,
    "rank_rtol": 1e-9,
}
DEFAULT_RESPONSE_SPECIES = 8  # reassigned species when `n_theta` is not given
DEFAULT_FD_CHECK = {"seeds": 1, "step": 1e-4}
DEFAULT_SWEEPS = {"feature_set": 0, "modes": 3, "gamma_min": 1e-6, "gamma_max": 1e-1, "n_gamma": 16}
DEFAULT_INVERSE_DESIGN = {"relative_change": 1e-5}
# What each response stage depends on (the rest of `response` never reruns it).
RESPONSE_STAGE_KEYS = {
    "jacobian": ("feature_sets", "params", "n_theta", "n_frequencies", "cg_tol", "rank_rtol"),
    "jacobian_check": (
        "feature_sets",
        "params",
        "n_theta",
        "n_frequencies",
        "cg_tol",
        "fd_check",
    ),
    "sweeps": (
        "feature_sets",
        "params",
        "n_theta",
        "n_frequencies",
        "cg_tol",
        "rank_rtol",
        "reference_n_theta",
        "sweeps",
        "inverse_design",
    ),
}


def scenario_settings(sc: dict) -> dict[str, Any]:
    """A scenario's resolved settings with its ``response`` block (if any) completed."""
    if "response" in sc:
        sc["response"] = defaults(sc)
    return sc


def defaults(sc: dict) -> dict[str, Any]:
    """The ``response`` block of a scenario with every default filled in."""
    r = {**copy.deepcopy(DEFAULT_RESPONSE), **copy.deepcopy(sc["response"])}
    network = sc["potential"] == "spring_network"
    r.setdefault("params", ["stiffness"] if network else ["D"])
    if not network:
        r.setdefault("n_theta", [n_theta_of(r["params"], DEFAULT_RESPONSE_SPECIES)])
        r.setdefault("reference_n_theta", max(r["n_theta"]))
    if "fd_check" in r:
        r["fd_check"] = {**DEFAULT_FD_CHECK, **r["fd_check"]}
    else:
        r["fd_check"] = {**DEFAULT_FD_CHECK, "seeds": 0}
    if not network:
        r["fd_check"].setdefault("n_theta", list(r["n_theta"]))
    count = sc["seeds"]["count"]
    if "sweeps" in r:
        r["sweeps"] = {**DEFAULT_SWEEPS, "seeds": count, **r["sweeps"]}
    if "inverse_design" in r:
        r["inverse_design"] = {**DEFAULT_INVERSE_DESIGN, "seeds": count, **r["inverse_design"]}
    return r


def stage_settings(out: dict, stage: str) -> dict[str, Any]:
    """Trim :func:`tunable_solids.config.stage_settings`: the packing stages never see
    ``response``; a response stage sees only the response keys it uses (the Jacobian does not
    re-minimize, so it does not depend on ``minimize`` either) and never ``measure``."""
    if stage not in RESPONSE_STAGE_KEYS:
        out.pop("response", None)
        return out
    out.pop("measure", None)
    if stage == "jacobian":
        out.pop("minimize", None)
    out["response"] = {k: v for k, v in out["response"].items() if k in RESPONSE_STAGE_KEYS[stage]}
    return out


def errors(config: dict) -> list[str]:
    """Rules of the ``response`` blocks that the schema cannot express."""
    errors = []
    scenarios = config.get("scenarios", {})
    for name, sc in scenarios.items():
        if "response" not in sc:
            continue
        key = f"scenarios.{name}.response"
        r, potential = sc["response"], sc["potential"]
        network = potential == "spring_network"
        params = r.get("params", ["stiffness"] if network else ["D"])
        count = sc["seeds"]["count"]
        if network and params != ["stiffness"]:
            errors.append(
                f"{key}.params: {params} is not allowed for potential 'spring_network'; "
                "a network is parameterized by its bond stiffnesses: use [stiffness]"
            )
        if not network and "stiffness" in params:
            errors.append(
                f"{key}.params: stiffness is only allowed with potential 'spring_network', "
                f"got potential {potential!r}"
            )
        if "B" in params and not potential.startswith("harmonic_morse"):
            errors.append(
                f"{key}.params: B (binding) is only allowed for harmonic_morse potentials, "
                f"got potential {potential!r}"
            )
        if network:
            for k in ("n_theta", "reference_n_theta"):
                if k in r:
                    errors.append(
                        f"{key}.{k}: not allowed for a spring_network; every bond stiffness "
                        "is a parameter (n_theta = number of bonds)"
                    )
            if "n_theta" in r.get("fd_check", {}):
                errors.append(f"{key}.fd_check.n_theta: not allowed for a spring_network")
        elif "stiffness" not in params:
            sp = sc["species"]
            old = sp["n_species"]  # every reassigned species is a subset of one old species
            n_theta = r.get("n_theta", [n_theta_of(params, DEFAULT_RESPONSE_SPECIES)])
            allowed = [n_theta_of(params, m) for m in range(old, old + 8)]
            for n in n_theta:
                n_sp = species_for_n_theta(params, n)
                if n_sp is None or n_sp < old:
                    errors.append(
                        f"{key}.n_theta: {n} is not allowed for params {params} with {old} "
                        f"species (each reassigned species is part of one of them); allowed: "
                        f"{', '.join(map(str, allowed))}, ..."
                    )
                elif n_sp > sc["N"]:
                    errors.append(
                        f"{key}.n_theta: {n} needs {n_sp} species, more than N = {sc['N']}"
                    )
            ref = r.get("reference_n_theta")
            if ref is not None and ref not in n_theta:
                errors.append(f"{key}.reference_n_theta: {ref} is not in n_theta {n_theta}")
            extra = sorted(set(r.get("fd_check", {}).get("n_theta", [])) - set(n_theta))
            if extra:
                errors.append(f"{key}.fd_check.n_theta: {extra} not in n_theta {n_theta}")
        if any("omega" in fs for fs in r.get("feature_sets", [])):
            n_modes = sc["N"] * sc["dim"] - sc["dim"]
            if r.get("n_frequencies", DEFAULT_RESPONSE["n_frequencies"]) > n_modes:
                errors.append(
                    f"{key}.n_frequencies: {r['n_frequencies']} exceeds the {n_modes} non-zero "
                    "modes (N d - d)"
                )
        for block in ("fd_check", "sweeps", "inverse_design"):
            n = r.get(block, {}).get("seeds")
            if n is not None and n > count:
                errors.append(f"{key}.{block}.seeds: {n} exceeds seeds.count = {count}")
        sw = r.get("sweeps", {})
        n_sets = len(r.get("feature_sets", DEFAULT_RESPONSE["feature_sets"]))
        if sw.get("feature_set", 0) >= n_sets:
            errors.append(
                f"{key}.sweeps.feature_set: {sw['feature_set']} is not allowed; must be < "
                f"{n_sets} (an index into feature_sets)"
            )
        lo = sw.get("gamma_min", DEFAULT_SWEEPS["gamma_min"])
        hi = sw.get("gamma_max", DEFAULT_SWEEPS["gamma_max"])
        if lo >= hi:
            errors.append(f"{key}.sweeps.gamma_min: {lo} must be < gamma_max = {hi}")
    fig = config.get("figures", {}).get("response", {})
    if "sweep_scenario" in fig:
        with_sweeps = sorted(n for n, sc in scenarios.items() if "sweeps" in sc.get("response", {}))
        if fig["sweep_scenario"] not in with_sweeps:
            errors.append(
                f"figures.response.sweep_scenario: {fig['sweep_scenario']!r} is not a scenario "
                f"with response.sweeps; allowed: {with_sweeps}"
            )
    return errors
