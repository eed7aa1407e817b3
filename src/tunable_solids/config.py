"""Workflow configuration: validation with clear messages, and per-scenario settings.

:func:`validate` checks a config dict against ``workflow/schemas/config.schema.yaml`` (which
references each study's part, ``workflow/schemas/<study>.schema.yaml``) and then against
rules a JSON schema cannot say well (a pressure target for a crystal, odd species counts,
crystal sizes...), which each study keeps in ``studies/<study>/config.py``. Every error
names the config key, the offending value and what is allowed, and all errors are reported
at once.

Scenarios (``scenarios:``) are shared by the packings study and the studies that analyse
its states (e.g. a scenario's ``response:`` block): :func:`scenario_settings`,
:func:`batches` and :func:`stage_settings` live here and let each study's config module
complete and trim its own block (:func:`study_configs`).
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema
import yaml

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"
SCHEMA_PATH = SCHEMA_DIR / "config.schema.yaml"

DEFAULT_MINIMIZE = {
    "force_tol": 1e-12,
    "max_steps": 200_000,
    "skin": 0.3,
    "pressure_rtol": 1e-3,
    "pressure_max_rounds": 60,
    "fire": {},
}
DEFAULT_MEASURE = {"n_frequencies": 10, "cg_tol": 1e-12}


@cache
def study_configs() -> tuple[ModuleType, ...]:
    """The ``config`` module of every study package that has one (``tunable_solids.studies.
    <study>.config``), in name order. Each may define ``errors(config) -> list[str]`` (rules
    the schema cannot say), ``scenario_settings(settings)`` (complete its block of a
    scenario) and ``stage_settings(settings, stage)`` (trim what a stage depends on)."""
    from . import studies

    modules = []
    for info in sorted(pkgutil.iter_modules(studies.__path__), key=lambda m: m.name):
        if info.ispkg:
            try:
                modules.append(importlib.import_module(f"{studies.__name__}.{info.name}.config"))
            except ModuleNotFoundError as exc:
                if exc.name != f"{studies.__name__}.{info.name}.config":
                    raise
    return tuple(modules)


class ConfigError(ValueError):
    """A configuration that fails validation; the message lists every problem."""


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    """The main schema (its references to the study parts are resolved by :func:`registry`)."""
    with open(path) as f:
        return yaml.safe_load(f)


def registry(directory: Path = SCHEMA_DIR) -> referencing.Registry:
    """Resolves ``$ref: <file>.schema.yaml#/...`` to the files of the schema directory."""

    def retrieve(uri: str) -> referencing.Resource:
        name = Path(uri.split("#", 1)[0]).name
        if not name.endswith(".schema.yaml") or not (directory / name).is_file():
            raise referencing.exceptions.NoSuchResource(ref=uri)
        return referencing.Resource.from_contents(
            load_schema(directory / name), default_specification=referencing.jsonschema.DRAFT202012
        )

    return referencing.Registry(retrieve=retrieve)


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
    if not (
        config.get("scenarios")
        or config.get("training", {}).get("runs")
        or config.get("modes", {}).get("ensembles")
        or config.get("pruning", {}).get("networks")
        or config.get("pruning", {}).get("surrogate")
        or config.get("metamaterials", {}).get("forcefields")
        or config.get("metamaterials", {}).get("bo")
    ):
        errors.append(
            "<top level>: nothing to do; give `scenarios`, `training.runs`, "
            "`modes.ensembles`, `pruning.networks`, `pruning.surrogate`, "
            "`metamaterials.forcefields` and/or `metamaterials.bo`"
        )
    for study in study_configs():
        if hasattr(study, "errors"):
            errors += study.errors(config)
    return errors


def validate(config: dict, schema: dict | None = None) -> None:
    """Raise :class:`ConfigError` naming every invalid key of ``config``."""
    schema = load_schema() if schema is None else schema
    validator = jsonschema.Draft202012Validator(schema, registry=registry())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    messages = [_describe(e) for e in errors]
    if not messages:
        messages = _semantic_errors(config)
    if messages:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(messages))


def merge(base: dict, override: dict | None) -> dict:
    """``base`` with ``override`` merged in, nested dicts key by key (neither is modified)."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        out[k] = merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


def scenario_settings(config: dict, name: str) -> dict[str, Any]:
    """Fully resolved settings of one scenario (global defaults merged with overrides).

    This is the config subtree a job depends on and records as provenance.
    """
    sc = copy.deepcopy(config["scenarios"][name])
    sc["name"] = name
    sc["minimize"] = merge(merge(DEFAULT_MINIMIZE, config.get("minimize")), sc.get("minimize"))
    sc["measure"] = merge(merge(DEFAULT_MEASURE, config.get("measure")), sc.get("measure"))
    sc["interactions"] = {"k": 1.0, "binding": 0.0, **sc.get("interactions", {})}
    sc["seeds"] = {"first": 0, "per_job": 4, **sc["seeds"]}
    if sc["potential"] == "spring_network":
        sc["network"] = {
            "stiffness": 1.0,
            "packing_potential": "soft_sphere",
            **sc.get("network", {}),
        }
    for study in study_configs():
        if hasattr(study, "scenario_settings"):
            sc = study.scenario_settings(sc)
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
    for study in study_configs():
        if hasattr(study, "stage_settings"):
            out = study.stage_settings(out, stage)
    return out
