"""Config of the surrogate part of the pruning study (``pruning.surrogate``, schema
``workflow/schemas/pruning_surrogate.schema.yaml#/$defs/surrogate``): defaults, resolved
settings per stage, and :func:`surrogate_errors`, the rules the schema cannot say (called by
the pruning study's ``config.errors``). Imports no JAX, so validation stays fast."""

from __future__ import annotations

import copy
import math

DEFAULT_DATA = {
    "seed": 0,
    "per_job": 200,
    "r_range": [0.05, 0.95],
    "pruned_fraction": 0.5,
    "target_range": [-0.9, 0.9],
    "anneal": {"T0": 1.0e-2, "Tf": 1.0e-4},
}
DEFAULT_MODEL = {
    "grid": 4,
    "hidden": 64,
    "epochs": 50,
    "batch_size": 16,
    "learning_rate": 1.0e-3,
    "checkpoint_every": 5,
    "seed": 0,
    "augment": False,
}
DEFAULT_CHANNELS = {"matrix": [16, 32, 32, 32, 32], "image": [16, 32, 32]}
DEFAULT_PIXELS = 64
DEFAULT_SPLIT = {"seed": 0, "fractions": [0.6, 0.2, 0.2]}
DEFAULT_TIMING = {"n_sides": [12, 16, 24, 32], "r": 0.3, "repeats": 5}
DEFAULT_SCREENING = {
    "r": 0.3,
    "targets": [-0.5, 0.5],
    "seeds": 2,
    "candidates": 8,
    "mode": "propose",
    "anneal": {"T0": 1.0e-2, "Tf": 1.0e-5},
}


def _max_bond(r: float) -> float:
    # Two nodes of a bond, each moved by r: length <= 1 + 2 r (lattice units).
    return 1.0 + 2.0 * r


def _fits(n_side: int, r: float) -> bool:
    # Minimum image: every bond shorter than half the box height n_side * sqrt(3) / 2.
    return _max_bond(r) < n_side * math.sqrt(3.0) / 4.0


def surrogate_settings(config: dict) -> dict | None:
    """Resolved ``pruning.surrogate`` (defaults filled in), or None if absent."""
    s = config.get("pruning", {}).get("surrogate")
    if s is None:
        return None
    s = copy.deepcopy(s)
    s["data"] = {**DEFAULT_DATA, **s["data"]}
    s["data"]["anneal"] = {**DEFAULT_DATA["anneal"], **s["data"].get("anneal", {})}
    s["split"] = {**DEFAULT_SPLIT, **s.get("split", {})}
    models = {}
    for name, m in s.get("models", {}).items():
        m = {**DEFAULT_MODEL, "channels": DEFAULT_CHANNELS[name], **m}
        if name == "image":
            m.setdefault("pixels", DEFAULT_PIXELS)
        m.setdefault("samples", s["data"]["samples"])
        models[name] = m
    s["models"] = models
    s["timing"] = {**DEFAULT_TIMING, **s.get("timing", {})}
    if "screening" in s:
        sc = {**DEFAULT_SCREENING, **s["screening"]}
        sc["anneal"] = {**DEFAULT_SCREENING["anneal"], **s["screening"].get("anneal", {})}
        s["screening"] = sc
    return s


def data_batches(settings: dict) -> list[list[int]]:
    """Sample indices of each data-set job."""
    d = settings["data"]
    idx = list(range(d["samples"]))
    return [idx[a : a + d["per_job"]] for a in range(0, len(idx), d["per_job"])]


def stage_settings(settings: dict, stage: str, model: str | None = None) -> dict:
    """What each stage depends on: the data set only on ``n_side`` and ``data`` (not on the
    model settings), a model on its own settings, the split and the data."""
    base = {"n_side": settings["n_side"], "data": settings["data"]}
    if stage == "dataset":
        return base
    if stage == "train":
        return {**base, "split": settings["split"], "model": model,
                "settings": settings["models"][model]}  # fmt: skip
    if stage == "timing":
        return {**base, "timing": settings["timing"], "models": settings["models"]}
    if stage == "screening":
        return {**base, "screening": settings["screening"], "model": settings["models"]["matrix"]}
    raise ValueError(f"unknown surrogate stage {stage!r}")


def surrogate_errors(config: dict) -> list[str]:
    """Rules of ``pruning.surrogate`` the schema cannot express (empty if it is absent)."""
    s = surrogate_settings(config)
    if s is None:
        return []
    key = "pruning.surrogate"
    out = []
    n_side, d = s["n_side"], s["data"]
    lo, hi = d["r_range"]
    if lo > hi:
        out.append(f"{key}.data.r_range: {d['r_range']} must be [low, high] with low <= high")
    if not _fits(n_side, hi):
        out.append(
            f"{key}.n_side: {n_side} is too small for r up to {hi} (bonds up to 1 + 2 r = "
            f"{_max_bond(hi):.2f} must be shorter than half the box height "
            f"{n_side * math.sqrt(3) / 4:.2f}); allowed: n_side >= "
            f"{_min_side(hi)} or a smaller data.r_range"
        )
    t0, t1 = d["target_range"]
    if t0 > t1:
        out.append(f"{key}.data.target_range: {d['target_range']} must be [low, high]")
    if d["anneal"]["Tf"] >= d["anneal"]["T0"]:
        out.append(f"{key}.data.anneal.Tf: {d['anneal']['Tf']} must be < T0 = {d['anneal']['T0']}")
    fr = s["split"]["fractions"]
    if abs(sum(fr) - 1.0) > 1e-9:
        out.append(f"{key}.split.fractions: {fr} must sum to 1 (train, validation, test)")
    if not s["models"]:
        out.append(f"{key}.models: give at least one of {', '.join(('matrix', 'image'))}")
    for name, m in s["models"].items():
        mk = f"{key}.models.{name}"
        if m["samples"] > d["samples"]:
            out.append(f"{mk}.samples: {m['samples']} must be <= data.samples = {d['samples']}")
        n_train = int(round(fr[0] * m["samples"]))
        n_val = int(round(fr[1] * m["samples"]))
        if n_train < m["batch_size"] or n_val < 1 or m["samples"] - n_train - n_val < 2:
            out.append(
                f"{mk}.samples: {m['samples']} gives {n_train} training samples (needs >= "
                f"batch_size = {m['batch_size']}), {n_val} validation (>= 1) and "
                f"{m['samples'] - n_train - n_val} test (>= 2)"
            )
        want = 5 if name == "matrix" else 3
        if len(m["channels"]) != want:
            out.append(f"{mk}.channels: {m['channels']} must list {want} conv channel counts")
        if name == "image" and m["pixels"] < 4 * m["grid"]:
            out.append(f"{mk}.pixels: {m['pixels']} must be >= 4 grid = {4 * m['grid']}")
        if name == "matrix" and 2 * n_side * n_side < 16 * m["grid"]:
            out.append(f"{mk}.grid: {m['grid']} too large for 2N = {2 * n_side * n_side}")
    tm = s["timing"]
    for n in tm["n_sides"]:
        if n % 2 or not _fits(n, tm["r"]):
            out.append(
                f"{key}.timing.n_sides: {n} is not allowed; must be even and >= "
                f"{_min_side(tm['r'])} for r = {tm['r']}"
            )
    if "screening" in s:
        sc = s["screening"]
        if "matrix" not in s["models"]:
            out.append(f"{key}.screening: needs models.matrix (the surrogate that screens)")
        if not _fits(n_side, sc["r"]):
            out.append(f"{key}.screening.r: {sc['r']} too large for n_side = {n_side}")
        if sc["anneal"]["Tf"] >= sc["anneal"]["T0"]:
            out.append(f"{key}.screening.anneal.Tf: must be < T0 = {sc['anneal']['T0']}")
    return out


def _min_side(r: float) -> int:
    n = 4
    while not _fits(n, r):
        n += 2
    return n
