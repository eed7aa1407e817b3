"""Config of the metamaterials study (``metamaterials:``, ``workflow/schemas/metamaterials.
schema.yaml``): named force fields (the paper's Table 1 as a config group), the structures
each is made in, and the MD, minimization and measurement settings.

Jobs are keyed by force field, structure and seed batch. A **structure** is a string:
``disordered-phi<Phi_0>`` (melt-quench from initial packing fraction ``Phi_0``) or
``<lattice>-vac<fraction>`` (``fcc``, ``diamond``, ``hcp`` with that fraction of atoms
removed), e.g. ``disordered-phi0.26``, ``diamond-vac0.10``; its **family** (``disordered`` or
the lattice) groups the densities of one ``E ~ Phi^n`` fit.

The force field of a job comes from :func:`forcefield_settings` (a named force field of the
config) or from :func:`forcefield_from_proposals` (row ``index`` of a proposals CSV with
columns ``lambda_over_A, gamma, theta0``: the Bayesian-optimization loop). Either way the
stages receive :func:`job_settings` ``(common, forcefield, structure)`` and nothing else.
"""

from __future__ import annotations

import copy
import math

from tunable_solids.config import merge

DEFAULT_MD = {
    "dt": 0.01,
    "melt_time": 100.0,
    "quench_time": 100.0,
    "melt_temperature": 0.3,
    "crystal_temperature": 0.03,
    "thermostat_tau": 1.0,
    "barostat_tau": 10.0,
    "chain_length": 5,
    "temperature_floor": 0.01,
    "checkpoint_every": 1000,
}
DEFAULT_MINIMIZE = {"force_tol": 1e-10, "max_steps": 200_000, "chunk": 20_000}
DEFAULT_MEASURE = {"coordination_cutoff": 1.5, "rdf_bins": 110, "cg_tol": 1e-10,
                   "stress_shift": {"max_strain": 0.02, "steps": 10}}  # fmt: skip
FAMILIES = ("disordered", "fcc", "diamond", "hcp")
#: The paper's search space (Table 1 lies inside it except lambda/A = 4 exactly, included).
BOUNDS = {"lambda_over_A": (0.0, 4.0), "gamma": (0.4, 2.0), "theta0": (60.0, 180.0)}


def block(config: dict) -> dict:
    return config.get("metamaterials", {}) or {}


def forcefield_structures(config: dict, name: str) -> list[str]:
    """Structure names a named force field is made in: its ``structures`` families, or for
    one with ``relax_from`` the disordered networks of that force field."""
    f = block(config)["forcefields"][name]
    if f.get("relax_from"):
        return structures_of(config, ["disordered"])
    return structures_of(config, f["structures"])


def structures_of(config: dict, families) -> list[str]:
    """Structure names of ``families`` with the config's ``phi0`` and ``vacancies`` lists."""
    m = block(config)
    out = []
    for fam in families:
        if fam == "disordered":
            out += [f"disordered-phi{p:.2f}" for p in m["phi0"]]
        else:
            out += [f"{fam}-vac{v:.2f}" for v in m["vacancies"]]
    return out


def parse_structure(name: str) -> dict:
    """``{"family", "phi0"}`` or ``{"family", "vacancy"}`` of a structure name."""
    fam, _, value = name.partition("-")
    if fam == "disordered" and value.startswith("phi"):
        return {"family": fam, "phi0": float(value[3:])}
    if fam in FAMILIES[1:] and value.startswith("vac"):
        return {"family": fam, "vacancy": float(value[3:])}
    raise ValueError(f"structure {name!r}: expected disordered-phi<x> or <lattice>-vac<x>")


def common_settings(config: dict) -> dict:
    """Settings shared by every job (defaults filled in)."""
    m = block(config)
    return {
        "atoms": m["atoms"],
        "crystal_cells": m["crystal_cells"],
        "seeds": {"first": 0, "per_job": 2, **m["seeds"]},
        "md": {**DEFAULT_MD, **m.get("md", {})},
        "minimize": merge(DEFAULT_MINIMIZE, m.get("minimize")),
        "measure": merge(DEFAULT_MEASURE, m.get("measure")),
    }


def forcefield_settings(config: dict, name: str) -> dict:
    f = block(config)["forcefields"][name]
    out = {"name": name, **{k: float(f[k]) for k in BOUNDS}}
    if f.get("relax_from"):
        out["relax_from"] = str(f["relax_from"])
    if "paper_n" in f:  # the paper's exponents (Table 1), carried to the tables
        out["paper_n"] = {k: float(v) for k, v in f["paper_n"].items()}
    return out


def forcefield_from_proposals(path: str, index: int, name: str | None = None) -> dict:
    """Force field of row ``index`` of a proposals CSV (columns ``lambda_over_A, gamma,
    theta0``; other columns ignored): the input of a BO round's jobs."""
    import pandas as pd

    row = pd.read_csv(path).iloc[int(index)]
    ff = {k: float(row[k]) for k in BOUNDS}
    errs = forcefield_errors(ff, f"{path} row {index}")
    if errs:
        raise ValueError("; ".join(errs))
    return {"name": name or f"proposal{index}", **ff}


def forcefield_errors(ff: dict, key: str) -> list[str]:
    out = []
    for k, (lo, hi) in BOUNDS.items():
        v = ff.get(k)
        if not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
            out.append(f"{key}.{k}: {v!r} is not allowed; must be in [{lo}, {hi}]")
    return out


def job_settings(common: dict, forcefield: dict, structure: str) -> dict:
    """What a structure or measure job depends on."""
    out = copy.deepcopy(common)
    out["forcefield"] = dict(forcefield)
    out["structure"] = {"name": structure, **parse_structure(structure)}
    out["name"] = f"{forcefield['name']}/{structure}"
    return out


def stage_settings(settings: dict, stage: str) -> dict:
    """Measure settings do not rerun the structures; seed counts rerun nothing."""
    out = copy.deepcopy(settings)
    out["seeds"] = {"first": settings["seeds"]["first"]}
    if stage == "structure":
        out.pop("measure")
    return out


def seed_batches(common: dict) -> list[list[int]]:
    s = common["seeds"]
    seeds = list(range(s["first"], s["first"] + s["count"]))
    return [seeds[i : i + s["per_job"]] for i in range(0, len(seeds), s["per_job"])]


def errors(config: dict) -> list[str]:
    """Rules the schema cannot say: a box large enough for the interaction range, crystal
    boxes likewise, force fields inside the search space."""
    from tunable_solids.stillinger_weber import DEFAULT_SKIN, SW_A_CUT

    from .optimize import bo_errors
    from .structures import DIAMETER, lattice, number_density

    m = block(config)
    if not m:
        return []
    out = []
    list_range = SW_A_CUT + DEFAULT_SKIN
    forcefields = m.get("forcefields", {})
    for name, f in forcefields.items():
        key = f"metamaterials.forcefields.{name}"
        out += forcefield_errors(f, key)
        src = f.get("relax_from")
        sources = sorted(k for k, v in forcefields.items()
                         if "disordered" in v.get("structures", []))  # fmt: skip
        if (src is None) == ("structures" not in f):
            out.append(f"{key}: give either `structures` or `relax_from`, not "
                       f"{'both' if src is not None else 'neither'}")  # fmt: skip
        if src is not None and not (
            src in forcefields and src != name and "relax_from" not in forcefields[src]
            and "disordered" in forcefields[src].get("structures", [])
        ):  # fmt: skip
            out.append(
                f"{key}.relax_from: {src!r} is not allowed; it must name another force field "
                f"of metamaterials.forcefields made in `disordered` structures (one of {sources})"
            )
    # The melt can compress the network: require the box at the densest allowed packing
    # (Phi = 0.55, beyond any zero-pressure SW network) to fit twice the list range.
    n = m.get("atoms", 0)
    for phi in m.get("phi0", []):
        L = (n / number_density(max(phi, 0.55), DIAMETER)) ** (1 / 3)
        if L <= 2 * list_range:
            out.append(
                f"metamaterials.atoms: {n} atoms give a box of {L:.2f} sigma at Phi = 0.55 "
                f"(Phi_0 = {phi}); it must exceed {2 * list_range:.2f} sigma (twice the "
                "neighbour range): use more atoms"
            )
            break
    cells = m.get("crystal_cells", 0)
    fams = {fam for f in forcefields.values() for fam in f.get("structures", [])}
    for fam in sorted(fams - {"disordered"}):
        _, box = lattice(fam, cells)
        if min(box.diagonal()) <= 2 * list_range:
            out.append(
                f"metamaterials.crystal_cells: {cells} cells of {fam} give a box side "
                f"{min(box.diagonal()):.2f} sigma; it must exceed {2 * list_range:.2f} sigma"
            )
    return out + bo_errors(config)
