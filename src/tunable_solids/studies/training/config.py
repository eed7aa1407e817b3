"""Config of the training study (``training:``, ``workflow/schemas/training.schema.yaml``):
expansion of the run groups into runs, the settings each training stage depends on, the
figures the config has data for, and the rules the schema cannot say.

:func:`tunable_solids.config.validate` calls :func:`errors` after the schema check; the rule
file ``workflow/rules/training.smk`` calls the rest.
"""

from __future__ import annotations

import copy
from typing import Any

from tunable_solids import systems
from tunable_solids.config import DEFAULT_MINIMIZE, merge


def errors(config: dict) -> list[str]:
    """Rules of the training groups that the schema cannot express."""
    errors = []
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
        errors += _analysis_errors(key, g)
        errors += _box_errors(key, g)
        for n_sp in g.get("n_species", [g["system"]["species"]["n_species"]]):
            if n_sp != 1 and n_sp % 2:
                errors.append(f"{key}.n_species: {n_sp} is not allowed; must be 1 or even")
            elif g["system"]["N"] % n_sp:
                errors.append(
                    f"{key}.system.N: {g['system']['N']} does not divide into {n_sp} species"
                )
    return errors


def _analysis_errors(key: str, g: dict) -> list[str]:
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


def _box_errors(key: str, g: dict) -> list[str]:
    """Every system of a group (training N, validation N's) must hold the interaction range
    at theta0 under the minimum-image convention (training may grow diameters further; the
    margin is the user's choice)."""
    from tunable_solids.potentials import make_potential
    from tunable_solids.space import check_box_fits

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
# Optional per-group analyses (workflow/rules/training.smk; studies/training/analysis.py).
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
                        "minimize": merge(
                            merge(DEFAULT_MINIMIZE, config.get("minimize")), g.get("minimize")
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
