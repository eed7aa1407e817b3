"""Config of the bond-operator study (``modes:``, ``workflow/schemas/modes.schema.yaml``):
resolved ensemble settings, the settings each stage depends on, and the rules the schema
cannot say.

:func:`tunable_solids.config.validate` calls :func:`errors`; ``workflow/rules/modes.smk``
calls the rest.
"""

from __future__ import annotations

import copy

import numpy as np

from tunable_solids.config import DEFAULT_MINIMIZE, merge

DEFAULT_SWAP = {
    "sweeps": 2000,
    "warmup_sweeps": 200,
    "p_swap": 0.2,
    "checkpoint_every": 500,
    "block": 100,
}
DEFAULT_FIT = {
    "tail": [3.0, 1.0e9],
    "intermediate": [0.3, 3.0],
    "bins_per_decade": 5,
    "bootstrap": 200,
}


def errors(config: dict) -> list[str]:
    """Rules of the ensembles that the schema cannot express."""
    from tunable_solids.space import check_box_fits

    from .glasses import IplModel, harmonic_sphere_glass
    from .stages import HARMONIC_START_PHI

    out = []
    for name, e in config.get("modes", {}).get("ensembles", {}).items():
        key = f"modes.ensembles.{name}"
        if e.get("parent_temperature", "inf") != "inf" and e["model"] != "ipl":
            out.append(
                f"{key}.parent_temperature: {e['parent_temperature']!r} is not allowed for "
                f"model {e['model']}; allowed: inf (SWAP Monte Carlo equilibrates the "
                "polydisperse ipl model only)"
            )
        if "swap" in e and e.get("parent_temperature", "inf") == "inf":
            out.append(f"{key}.swap: only allowed with a finite parent_temperature")
        sw = {**DEFAULT_SWAP, **e.get("swap", {})}
        if sw["warmup_sweeps"] >= sw["sweeps"]:
            out.append(
                f"{key}.swap.warmup_sweeps: {sw['warmup_sweeps']} must be < sweeps = "
                f"{sw['sweeps']} (warm-up sweeps adapt the step and do not sample exactly)"
            )
        if e["model"] == "harmonic_sphere" and "pressure" not in e:
            out.append(f"{key}.pressure: required for model harmonic_sphere")
        if e["model"] == "ipl" and "pressure" in e:
            out.append(
                f"{key}.pressure: only allowed for model harmonic_sphere (ipl: fixed density)"
            )
        if e["model"] == "harmonic_sphere" and e["N"] % 2:
            out.append(f"{key}.N: {e['N']} must be even (50:50 mixture)")
        fit = {**DEFAULT_FIT, **e.get("fit", {})}
        for r in ("tail", "intermediate"):
            if fit[r][0] >= fit[r][1]:
                out.append(f"{key}.fit.{r}: {fit[r]} must be [low, high] with low < high")
        # The minimum image must hold over the interaction range (the largest pair); the
        # harmonic-sphere box is checked at the start of its pressure preparation.
        if e["model"] == "ipl":
            m = IplModel()
            n, dim = e["N"], e["dim"]
            box = np.eye(dim) * (n / m.density(dim)) ** (1.0 / dim)
            rc = m.x_c * m.size_max
        else:
            phi = HARMONIC_START_PHI[e["dim"]]
            g = harmonic_sphere_glass(e["N"] - e["N"] % 2, e["dim"], phi)
            box, rc = g.box, 1.4
        try:
            check_box_fits(box, rc)
        except ValueError as exc:
            out.append(f"{key}.N: {e['N']} is too small for the interaction range: {exc}")
    return out


def ensemble_settings(config: dict, name: str) -> dict:
    """Resolved settings of one ensemble (defaults filled in, ``name`` added)."""
    e = copy.deepcopy(config["modes"]["ensembles"][name])
    e["name"] = name
    e.setdefault("parent_temperature", "inf")
    e.setdefault("top_modes", 4)
    e.setdefault("decay_bins", 12)
    e["seeds"] = {"first": 0, "per_job": 4, **e["seeds"]}
    e["fit"] = {**DEFAULT_FIT, **e.get("fit", {})}
    if e["parent_temperature"] != "inf":
        e["swap"] = {**DEFAULT_SWAP, **e.get("swap", {})}
    e["minimize"] = merge(merge(DEFAULT_MINIMIZE, config.get("minimize")), e.get("minimize"))
    return e


def ensemble_batches(settings: dict) -> list[list[int]]:
    """Seeds of each job of an ensemble."""
    s = settings["seeds"]
    seeds = list(range(s["first"], s["first"] + s["count"]))
    return [seeds[i : i + s["per_job"]] for i in range(0, len(seeds), s["per_job"])]


def stage_settings(settings: dict, stage: str) -> dict:
    """What a stage depends on: the fit ranges only affect the tables, so changing them
    reruns no physics."""
    out = copy.deepcopy(settings)
    out["seeds"] = {"first": settings["seeds"]["first"]}
    if stage in ("prepare", "analyse"):
        out.pop("fit")
    if stage != "prepare":
        out.pop("swap", None)
    if stage == "prepare":
        out.pop("top_modes")
        out.pop("decay_bins")
    return out
