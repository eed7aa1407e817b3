"""Packings study through the workflow: the stores, table, figure and logs of the smoke run
(config/smoke.yaml, the ``smoke`` fixture of tests/conftest.py) meet the contract
(:data:`tunable_solids.studies.packings.stages.CONTRACT`, README "Store contract"), and every
store of that run, of every study, opens cleanly with plain zarr. This is the one file that
uses the session's smoke run, so that pytest-xdist's ``--dist loadfile`` builds it once."""

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from tunable_solids import store
from tunable_solids.config import scenario_settings
from tunable_solids.store import PROVENANCE_KEYS
from tunable_solids.studies.packings.stages import CONTRACT, NETWORK_ARRAYS


@pytest.mark.slow
def test_smoke_stores_meet_contract(smoke):
    results, cfg = smoke
    for name in cfg["scenarios"]:
        network = cfg["scenarios"][name]["potential"] == "spring_network"
        for stage, expected in CONTRACT.items():
            path = results / name / "batch0" / f"{stage}.zarr"
            dims = store.dimension_names(path)
            arrays, attrs = store.read_store(path)
            want = {**expected, **(NETWORK_ARRAYS if network else {})}
            for key, d in want.items():
                assert dims.get(key) == d, f"{path}: {key} has dims {dims.get(key)}, want {d}"
                assert arrays[key].ndim == len(d)
            assert (
                attrs["stage"]
                == {"initial": "generate", "minimized": "minimize", "measured": "measure"}[stage]
            )
            prov = attrs["provenance"]
            for key in PROVENANCE_KEYS:
                assert key in prov, f"{path}: provenance lacks {key}"
            assert prov["config"]["name"] == name
            assert prov["x64"] is True
            # jobs.share_gpu_memory: no preallocation unless the user set it
            assert prov["gpu_memory"]["XLA_PYTHON_CLIENT_PREALLOCATE"] == os.environ.get(
                "XLA_PYTHON_CLIENT_PREALLOCATE", "false"
            )
        assert not list((results / name / "batch0").glob(".*tmp*")), "temporary store left"


@pytest.mark.slow
def test_smoke_table_and_figure(smoke):
    results, cfg = smoke
    table = pd.read_csv(results / "tables" / "states.csv")
    required = [
        "scenario",
        "dim",
        "N",
        "seed",
        "potential",
        "energy",
        "pressure",
        "max_force",
        "iterations",
        "converged",
        "n_rattlers",
        "B",
        "G",
        "nu",
    ]
    assert set(required) <= set(table.columns)
    n_states = sum(scenario_settings(cfg, s)["seeds"]["count"] for s in cfg["scenarios"])
    assert len(table) == n_states
    assert table["converged"].all()
    assert (table["max_force"] <= 1e-12).all()
    assert ((table["nu"] > -1) & (table["nu"] < 1)).all()
    for ext in ("png", "pdf"):
        assert (results / "figures" / f"overview.{ext}").stat().st_size > 10_000
    for path in (results / "logs").rglob("*.log"):
        assert path.stat().st_size > 0, f"empty job log {path}"


@pytest.mark.slow
def test_smoke_pressure_targets_met(smoke):
    results, cfg = smoke
    for name, sc in cfg["scenarios"].items():
        if "pressure" not in sc or sc["potential"] == "spring_network":
            continue
        arrays, _ = store.read_store(results / name / "batch0" / "measured.zarr")
        rtol = scenario_settings(cfg, name)["minimize"]["pressure_rtol"]
        np.testing.assert_allclose(arrays["pressure"], sc["pressure"], rtol=rtol)


def _stores(results: Path) -> list[Path]:
    """Every store (``*.zarr`` directory, not inside another store) under ``results``."""
    return sorted(
        p
        for p in results.rglob("*.zarr")
        if p.is_dir() and not any(q.endswith(".zarr") for q in p.relative_to(results).parts[:-1])
    )


@pytest.mark.slow
def test_smoke_stores_open_without_warnings(smoke):
    """Every store of the smoke run (all studies) opens and lists its members with plain zarr
    without any warning, and holds nothing but zarr's own files: no foreign object such as
    the `.snakemake_timestamp` marker Snakemake drops into `directory()` outputs (the rules
    name a store by its zarr.json instead, workflow/rules/common.smk). The project's loaders
    read it without warnings too."""
    results, _ = smoke
    paths = _stores(results)
    assert len(paths) >= 10, paths
    for path in paths:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            group = zarr.open_group(path, mode="r")
            members = dict(group.members())
            attrs = dict(group.attrs)
            arrays, _ = store.read_store(path)
            store.read_attrs(path / "zarr.json")
        assert not caught, f"{path}: {[str(w.message) for w in caught]}"
        assert members and attrs["provenance"] and set(arrays) == set(members), path
        foreign = sorted(p.name for p in path.iterdir() if p.name not in {*members, "zarr.json"})
        assert not foreign, f"{path}: {foreign}"
