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
    overview = config.get("figures", {}).get("overview", {})
    if "scenario" in overview and overview["scenario"] not in config.get("scenarios", {}):
        errors.append(
            f"figures.overview.scenario: {overview['scenario']!r} is not a scenario; "
            f"allowed: {sorted(config.get('scenarios', {}))}"
        )
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
    if stage in ("generate", "minimize"):
        out.pop("measure")
    if stage == "generate" and settings["potential"] != "spring_network":
        out.pop("minimize")
    return out
