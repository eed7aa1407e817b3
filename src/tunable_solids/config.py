"""Workflow configuration: validation with clear messages, and per-scenario settings.

:func:`validate` checks a config dict against ``workflow/schemas/config.schema.yaml`` and
then against rules a JSON schema cannot say well (a pressure target for a crystal, odd
species counts, crystal sizes...). Every error names the config key, the offending value
and what is allowed, and all errors are reported at once.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import systems

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

DEFAULT_MINIMIZE = {
    "force_tol": 1e-12,
    "max_steps": 200_000,
    "skin": 0.3,
    "pressure_rtol": 1e-3,
    "pressure_max_rounds": 60,
    "fire": {},
}
DEFAULT_MEASURE = {"n_frequencies": 10, "cg_tol": 1e-12}


class ConfigError(ValueError):
    """A configuration that fails validation; the message lists every problem."""


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(err: jsonschema.ValidationError) -> str:
    key = _key(err.absolute_path)
    v = err.validator
    if v == "required":
        missing = err.message.split("'")[1]
        return f"{_key([*err.absolute_path, missing])}: required key is missing"
    if v == "additionalProperties":
        return f"{key}: {err.message} (allowed: {', '.join(sorted(err.schema['properties']))})"
    if v == "enum":
        return f"{key}: {err.instance!r} is not allowed; allowed values: {err.validator_value}"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        rel = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        return f"{key}: {err.instance!r} is not allowed; must be {rel[v]} {err.validator_value}"
    if v == "type":
        return f"{key}: {err.instance!r} has the wrong type; expected {err.validator_value}"
    return f"{key}: {err.message}"


def _semantic_errors(config: dict) -> list[str]:
    errors = []
    if not config.get("scenarios") and not config.get("training", {}).get("runs"):
        errors.append("<top level>: nothing to do; give `scenarios` and/or `training.runs`")
    for name, sc in config.get("scenarios", {}).items():
        key = f"scenarios.{name}"
        structure, potential = sc["structure"], sc["potential"]
        n_sp = sc["species"]["n_species"]
        if n_sp != 1 and n_sp % 2:
            errors.append(f"{key}.species.n_species: {n_sp} is not allowed; must be 1 or even")
        if sc["N"] % n_sp:
            errors.append(f"{key}.N: {sc['N']} does not divide evenly into {n_sp} species")
        if "pressure" in sc and structure == "crystal":
            errors.append(
                f"{key}.pressure: a pressure target is not allowed for structure 'crystal'; "
                "crystals are built at a fixed `density`"
            )
        has_density, has_phi = "density" in sc, "packing_fraction" in sc
        if has_density == has_phi:
            errors.append(
                f"{key}: give exactly one of `density` (number density) or `packing_fraction`"
            )
        if structure == "crystal":
            if not has_density:
                errors.append(f"{key}.density: required for structure 'crystal'")
            if n_sp != 1:
                errors.append(f"{key}.species.n_species: a crystal has 1 species, got {n_sp}")
            if potential == "spring_network":
                errors.append(f"{key}.potential: spring_network is built from disordered packings")
            if has_density:
                try:
                    systems.crystal(sc["N"], sc["dim"], sc["density"])
                except ValueError as exc:
                    errors.append(f"{key}.N: {exc}")
        if "network" in sc and potential != "spring_network":
            errors.append(f"{key}.network: only allowed with potential 'spring_network'")
        if "potential_options" in sc and not potential.startswith("harmonic_morse"):
            errors.append(f"{key}.potential_options: only allowed for harmonic_morse potentials")
        if has_phi and sc["packing_fraction"] >= 1.0 and "pressure" not in sc:
            errors.append(f"{key}.packing_fraction: {sc['packing_fraction']} must be < 1")
    for group, g in config.get("training", {}).get("runs", {}).items():
        key = f"training.runs.{group}"
        lengths = {q: len(v) for q, v in g["targets"].items()}
        if len(set(lengths.values())) > 1:
            errors.append(f"{key}.targets: lists must have equal lengths (zipped), got {lengths}")
        if "q8" in g["targets"] and g["system"]["dim"] != 2:
            errors.append(f"{key}.targets.q8: q8 is defined for dim 2 only")
        if g["mode"] == "multi" and g.get("m", 1) < 2:
            errors.append(f"{key}.m: a multi run needs m >= 2, got {g.get('m', 1)}")
        if "B" in g.get("params", ["D", "B"]) and g["system"]["potential"] == "soft_sphere":
            errors.append(f"{key}.params: B (binding) has no effect for soft_sphere")
        errors += _training_analysis_errors(key, g)
        errors += _training_box_errors(key, g)
        for n_sp in g.get("n_species", [g["system"]["species"]["n_species"]]):
            if n_sp != 1 and n_sp % 2:
                errors.append(f"{key}.n_species: {n_sp} is not allowed; must be 1 or even")
            elif g["system"]["N"] % n_sp:
                errors.append(
                    f"{key}.system.N: {g['system']['N']} does not divide into {n_sp} species"
                )
    overview = config.get("figures", {}).get("overview", {})
    if "scenario" in overview and overview["scenario"] not in config.get("scenarios", {}):
        errors.append(
            f"figures.overview.scenario: {overview['scenario']!r} is not a scenario; "
            f"allowed: {sorted(config.get('scenarios', {}))}"
        )
    errors += response_errors(config)
    return errors


def _training_analysis_errors(key: str, g: dict) -> list[str]:
    """Rules of a training group's ``analysis`` / ``extra_validations`` the schema cannot say."""
    errors = []
    a = g.get("analysis", {})
    for block, modes in (("gradient_check", ("individual",)), ("bonds", ("individual", "multi"))):
        if block in a and g["mode"] not in modes:
            errors.append(
                f"{key}.analysis.{block}: not allowed for mode {g['mode']!r}; allowed modes: "
                f"{list(modes)} (it analyses the tracked configurations)"
            )
        n = a.get(block, {}).get("seeds")
        if n is not None and n > g["seeds"]["count"]:
            errors.append(f"{key}.analysis.{block}.seeds: {n} exceeds seeds.count")
    gc = {**DEFAULT_GRADIENT_CHECK, **a.get("gradient_check", {})}
    if gc["eps_min"] >= gc["eps_max"]:
        errors.append(
            f"{key}.analysis.gradient_check.eps_min: {gc['eps_min']} must be < eps_max = "
            f"{gc['eps_max']}"
        )
    for name, v in g.get("extra_validations", {}).items():
        n = v.get("N", g.get("validation", {}).get("N", g["system"]["N"]))
        for n_sp in g.get("n_species", [g["system"]["species"]["n_species"]]):
            if n % n_sp:
                errors.append(
                    f"{key}.extra_validations.{name}.N: {n} does not divide into {n_sp} species"
                )
    return errors


def _training_box_errors(key: str, g: dict) -> list[str]:
    """Every system of a group (training N, validation N's) must hold the interaction range
    at theta0 under the minimum-image convention (training may grow diameters further; the
    margin is the user's choice)."""
    from .potentials import make_potential
    from .space import check_box_fits

    sysc = g["system"]
    try:
        pot = make_potential(sysc["potential"], **sysc.get("potential_options", {}))
    except (TypeError, ValueError) as exc:
        return [f"{key}.system.potential_options: {exc}"]
    sizes = {("system.N", sysc["N"])}
    if "N" in g.get("validation", {}):
        sizes.add(("validation.N", g["validation"]["N"]))
    for name, v in g.get("extra_validations", {}).items():
        if "N" in v:
            sizes.add((f"extra_validations.{name}.N", v["N"]))
    errors = []
    dmax = max(sysc["species"]["diameters"])
    rc = float(pot.cutoff(dmax))
    for where, n in sorted(sizes):
        box = systems.box_for_density(n, sysc["dim"], sysc["density"])
        try:
            check_box_fits(box, rc)
        except ValueError as exc:
            errors.append(f"{key}.{where}: {n} is too small: {exc}")
    return errors


def validate(config: dict, schema: dict | None = None) -> None:
    """Raise :class:`ConfigError` naming every invalid key of ``config``."""
    schema = load_schema() if schema is None else schema
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    messages = [_describe(e) for e in errors]
    if not messages:
        messages = _semantic_errors(config)
    if messages:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(messages))


def _merge(base: dict, override: dict | None) -> dict:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        out[k] = _merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


def scenario_settings(config: dict, name: str) -> dict[str, Any]:
    """Fully resolved settings of one scenario (global defaults merged with overrides).

    This is the config subtree a job depends on and records as provenance.
    """
    sc = copy.deepcopy(config["scenarios"][name])
    sc["name"] = name
    sc["minimize"] = _merge(_merge(DEFAULT_MINIMIZE, config.get("minimize")), sc.get("minimize"))
    sc["measure"] = _merge(_merge(DEFAULT_MEASURE, config.get("measure")), sc.get("measure"))
    sc["interactions"] = {"k": 1.0, "binding": 0.0, **sc.get("interactions", {})}
    sc["seeds"] = {"first": 0, "per_job": 4, **sc["seeds"]}
    if sc["potential"] == "spring_network":
        sc["network"] = {
            "stiffness": 1.0,
            "packing_potential": "soft_sphere",
            **sc.get("network", {}),
        }
    if "response" in sc:
        sc["response"] = response_defaults(sc)
    return sc


def batches(settings: dict) -> list[list[int]]:
    """Seeds of each job of a scenario: ``count`` seeds from ``first``, ``per_job`` a batch."""
    s = settings["seeds"]
    seeds = list(range(s["first"], s["first"] + s["count"]))
    return [seeds[i : i + s["per_job"]] for i in range(0, len(seeds), s["per_job"])]


def stage_settings(settings: dict, stage: str) -> dict[str, Any]:
    """The part of a scenario's settings a stage depends on (its Snakemake ``params``).

    Keeping each stage's params minimal is what makes reruns precise: changing a
    ``measure`` option reruns only ``measure``; a ``minimize`` option reruns ``minimize``
    and what follows, never ``generate`` (except for spring networks, whose packing is
    minimized while generating).
    """
    out = copy.deepcopy(settings)
    # A batch's jobs get their seeds as inputs; only ``first`` (the seed-index origin of
    # the response stages) is a setting, so adding seeds never reruns existing batches.
    out["seeds"] = {"first": settings["seeds"]["first"]}
    if stage in ("generate", "minimize"):
        out.pop("measure")
    if stage == "generate" and settings["potential"] != "spring_network":
        out.pop("minimize")
    return response_stage_settings(out, stage)


DEFAULT_LEARNING_RATE = {
    "individual": {"schedule": "adaptive", "lr0": 2e-3},
    "multi": {"schedule": "adaptive", "lr0": 2e-3},
    "ensemble": {"schedule": "inverse_sqrt", "lr0": 2e-3, "decay_steps": 500.0},
}
DEFAULT_VALIDATION = {
    "configs": 16,
    "seed_offset": 1_000_003,
    "polydispersity": 0.0,
    "heterogeneity": 0.0,
}
# Optional per-group analyses (workflow/rules/training.smk; pipeline_training_analysis).
DEFAULT_GRADIENT_CHECK = {
    "seeds": 1,
    "eps_min": 1e-8,
    "eps_max": 1e-1,
    "n_eps": 15,
    "direction_seed": 0,
}
DEFAULT_BONDS = {"seeds": 1, "top": 10}
# Keys of a run that only its analyses / extra validations depend on (never rerun training).
RUN_ANALYSIS_KEYS = ("analysis", "extra_validations")


def _fmt(v: float) -> str:
    return f"{v:g}"


def training_runs(config: dict) -> dict[str, dict[str, Any]]:
    """Every training run of the config, by run id ``<group>/<label>``.

    A group's ``targets`` (lists per property, zipped: the i-th run targets the i-th value of
    every property), ``n_species`` (list) and seeds expand into one run each; run settings
    are fully resolved (defaults merged), and are the provenance of the run's stores.
    """
    tr = config.get("training", {})
    runs = {}
    for group, g in tr.get("runs", {}).items():
        sysc = copy.deepcopy(g["system"])
        sysc["interactions"] = {"k": 1.0, "binding": 0.0, **sysc.get("interactions", {})}
        targets = g["targets"]
        n_targets = len(next(iter(targets.values())))
        n_species_list = g.get("n_species", [sysc["species"]["n_species"]])
        seeds = {"first": 0, **g["seeds"]}
        for n_sp in n_species_list:
            for t in range(n_targets):
                target = {q: float(v[t]) for q, v in targets.items()}
                for seed in range(seeds["first"], seeds["first"] + seeds["count"]):
                    label = "-".join(
                        [f"nsp{n_sp}", *(f"{q}{_fmt(v)}" for q, v in target.items()), f"s{seed}"]
                    )
                    s = copy.deepcopy(sysc)
                    s["species"]["n_species"] = n_sp
                    run = {
                        "id": f"{group}/{label}",
                        "group": group,
                        "label": label,
                        "mode": g["mode"],
                        "system": s,
                        "target": target,
                        "params": list(g.get("params", ["D", "B"])),
                        "seed": seed,
                        "m": g.get("m", 1),
                        "batch": g.get("batch", 8),
                        "vectorize": g.get("vectorize", False),
                        "max_steps": g.get("max_steps", 10_000),
                        "loss_threshold": g.get("loss_threshold", 1e-6),
                        "learning_rate": {
                            **DEFAULT_LEARNING_RATE[g["mode"]],
                            **g.get("learning_rate", {}),
                        },
                        "checkpoint_every": g.get(
                            "checkpoint_every", tr.get("checkpoint_every", 10)
                        ),
                        "minimize": _merge(
                            _merge(DEFAULT_MINIMIZE, config.get("minimize")), g.get("minimize")
                        ),
                        "validation": {**DEFAULT_VALIDATION, **g.get("validation", {})},
                    }
                    run["analysis"] = _run_analysis(g, seed - seeds["first"])
                    run["extra_validations"] = {
                        name: {**run["validation"], **v}
                        for name, v in g.get("extra_validations", {}).items()
                    }
                    runs[run["id"]] = run
    return runs


def _run_analysis(group: dict, seed_index: int) -> dict[str, Any]:
    """The analyses of one run: a block applies to the group's first ``seeds`` seeds."""
    a = group.get("analysis", {})
    out: dict[str, Any] = {"traces": bool(a.get("traces", False))}
    for key, default in (("gradient_check", DEFAULT_GRADIENT_CHECK), ("bonds", DEFAULT_BONDS)):
        block = {**default, **a[key]} if key in a else None
        out[key] = block if block is not None and seed_index < block["seeds"] else None
    return out


def run_stage_settings(run: dict, stage: str, name: str | None = None) -> dict[str, Any]:
    """The part of a run's settings a stage depends on: validation options do not rerun
    training, and analysis options rerun only their own analysis.

    Stages: ``train``, ``validate`` (``name`` = None: the plain validation, else the extra
    validation ``name``, whose settings replace ``validation``), ``gradient_check``, ``bonds``.
    """
    out = copy.deepcopy(run)
    analysis = out.pop("analysis", {})
    extra = out.pop("extra_validations", {})
    if stage == "train":
        out.pop("validation")
    elif stage == "validate":
        if name is not None:
            out["validation"] = extra[name]
            out["validation_name"] = name
    elif stage in ("gradient_check", "bonds"):
        out.pop("validation")
        out[stage] = analysis[stage]
    else:
        raise ValueError(f"unknown training stage {stage!r}")
    return out


def training_figure_inputs(runs: dict[str, dict]) -> dict[str, tuple[list[str], bool]]:
    """Figures of the training study: ``{figure: (stores, wanted)}``.

    ``stores`` are the per-run stores the figure reads beyond the tables, as
    ``<run id>/<store>`` (e.g. ``g/nsp2-nu0.4-s0/run``); trace panels read only runs of groups
    with ``analysis.traces``. ``wanted``: the config has data for the figure.
    """
    rs = list(runs.values())

    def single(r, q):
        return list(r["target"]) == [q]

    def traced(select, stem="run"):
        return [f"{r['id']}/{stem}" for r in rs if r["analysis"]["traces"] and select(r)]

    def ind_nu(r):
        return r["mode"] == "individual" and single(r, "nu")

    def dim2(r):
        return r["system"]["dim"] == 2

    return {
        "training_gradient": (
            [f"{r['id']}/gradient_check" for r in rs if r["analysis"]["gradient_check"]],
            any(r["analysis"]["gradient_check"] for r in rs),
        ),
        "training_bonds": (
            [f"{r['id']}/bonds" for r in rs if r["analysis"]["bonds"]],
            any(r["analysis"]["bonds"] for r in rs),
        ),
        "training_individual": (
            traced(lambda r: ind_nu(r) and dim2(r)),
            bool(traced(lambda r: ind_nu(r) and dim2(r))),
        ),
        "training_success": ([], any(r["mode"] in ("individual", "multi") for r in rs)),
        "training_multi": (
            traced(
                lambda r: r["mode"] in ("individual", "multi") and single(r, "nu") and dim2(r),
                "validation",
            ),
            any(r["mode"] in ("individual", "multi") and single(r, "nu") for r in rs),
        ),
        "training_ensemble": (
            traced(lambda r: r["mode"] == "ensemble" and single(r, "nu") and dim2(r)),
            any(r["mode"] == "ensemble" and single(r, "nu") for r in rs),
        ),
        "training_targets": ([], any(single(r, "pressure") or single(r, "q8") for r in rs)),
        "training_joint": (
            traced(lambda r: len(r["target"]) > 1),
            any(len(r["target"]) > 1 for r in rs),
        ),
        "training_robustness": (
            [],
            any(
                v["polydispersity"] or v["heterogeneity"]
                for r in rs
                for v in r["extra_validations"].values()
            ),
        ),
        "training_3d": (
            traced(lambda r: r["system"]["dim"] == 3),
            any(r["system"]["dim"] == 3 for r in rs),
        ),
    }


# --------------------------------------------------------------------------- independent response
# Optional per-scenario `response:` block (workflow/schemas/config.schema.yaml documents every
# key; tunable_solids.pipeline_response runs it).
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


def response_defaults(sc: dict) -> dict[str, Any]:
    """The ``response`` block of a scenario with every default filled in."""
    from .parameters import n_theta_of

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


def response_stage_settings(out: dict, stage: str) -> dict[str, Any]:
    """Trim ``stage_settings``: the packing stages never see ``response``; a response stage
    sees only the response keys it uses (the Jacobian does not re-minimize, so it does not
    depend on ``minimize`` either) and never ``measure``."""
    if stage not in RESPONSE_STAGE_KEYS:
        out.pop("response", None)
        return out
    out.pop("measure", None)
    if stage == "jacobian":
        out.pop("minimize", None)
    out["response"] = {k: v for k, v in out["response"].items() if k in RESPONSE_STAGE_KEYS[stage]}
    return out


def response_errors(config: dict) -> list[str]:
    """Rules of the ``response`` blocks that the schema cannot express."""
    errors = []
    scenarios = config.get("scenarios", {})
    for name, sc in scenarios.items():
        if "response" not in sc:
            continue
        from .parameters import n_theta_of, species_for_n_theta

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
