"""Pruning study as a workflow: config rules, the annealing job's resume after a kill, the
paper config's dry-run, and a smoke run of the pruning rules through Snakemake (stores, one
table row per run, only rigid states, figures)."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tunable_solids import store
from tunable_solids.config import ConfigError, validate
from tunable_solids.studies.pruning import stages
from tunable_solids.studies.pruning.config import network_settings, run_settings, seeds
from tunable_solids.studies.pruning.tables import RUN_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "config" / "paper" / "network_pruning.yaml"
FIGURES = ["pruning_bonds", "pruning_networks", "pruning_spectra", "pruning_collapse",
           "pruning_frequencies", "pruning_methods"]  # fmt: skip
NETWORK = {"kind": "triangular", "N": 64, "seeds": {"count": 1}, "methods": ["anneal", "greedy"]}


def _config(**changes):
    n = copy.deepcopy(NETWORK)
    n.update(changes)
    return {"pruning": {"networks": {"t": n}}}


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({"N": 81}, "pruning.networks.t.N: 81 is not allowed for kind triangular"),
        ({"N": 72}, "pruning.networks.t.N: 72 is not allowed for kind triangular"),
        ({"kind": "packing", "N": 65}, "pruning.networks.t.N: 65 must be even"),
        ({"kind": "delaunay", "distortion": 0.2}, "pruning.networks.t.distortion: only allowed"),
        ({"distortion": 0.6}, "pruning.networks.t.distortion: 0.6 is not allowed; must be < 0.5"),
        ({"targets": [0.9, 0.9]}, "pruning.networks.t.targets: [0.9, 0.9] has repeated"),
        ({"anneal": {"T0": 1e-3, "Tf": 1e-2}}, "pruning.networks.t.anneal.Tf: 0.01 must be <"),
        ({"kind": "square"}, "pruning.networks.t.kind: 'square' is not allowed"),
        ({"methods": ["sgd"]}, "pruning.networks.t.methods.0: 'sgd' is not allowed"),
        ({"anneal": {"cooling": 1.5}}, "pruning.networks.t.anneal.cooling: 1.5 is not allowed"),
    ],
)
def test_bad_networks_are_named(changes, expected):
    with pytest.raises(ConfigError) as exc:
        validate(_config(**changes))
    assert expected in str(exc.value)


def test_settings_merge_method_options():
    cfg = _config(anneal={"T0": 0.05})
    cfg["pruning"]["anneal"] = {"T0": 0.02, "Tf": 1e-4}
    validate(cfg)
    st = network_settings(cfg, "t")
    assert st["anneal"]["T0"] == 0.05 and st["anneal"]["Tf"] == 1e-4
    assert st["anneal"]["per_temperature"] == 15 and st["distortion"] == 0.3
    assert seeds(st) == [0] and st["targets"] == [-0.9, 0.9]
    assert run_settings(st, "greedy")["options"]["n_candidates"] == 16


def test_annealing_job_resumes_after_a_kill(tmp_path, monkeypatch):
    """A method job killed at its third checkpoint (inside the first target's run) resumes
    from the checkpoint and gives exactly the arrays of an uninterrupted job (masks, nu,
    histories, snapshots); wall times aside."""
    cfg = _config(anneal={"checkpoint_every": 3, "snapshots": 2})
    validate(cfg)
    st = network_settings(cfg, "t")
    net = {k: v[1] for k, v in stages.build(st, 0)[0].items()}
    rs = {**run_settings(st, "anneal"), "seed": 0}
    whole, _ = stages.run_method(rs, net)
    out = tmp_path / "anneal.zarr"
    real_save, calls = stages._save, []

    def killed(*args):
        real_save(*args)
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(stages, "_save", killed)
    with pytest.raises(KeyboardInterrupt):
        stages.run_method(rs, net, str(out))
    assert stages.checkpoint_path(out).exists()
    assert store.read_attrs(stages.checkpoint_path(out))["done"] == 0  # killed mid-run
    monkeypatch.setattr(stages, "_save", real_save)
    resumed, summary = stages.run_method(rs, net, str(out))
    for k in whole:
        if k != "wall_s":
            np.testing.assert_array_equal(resumed[k][1], whole[k][1], err_msg=k)
    assert summary["success"] == [True, True]
    assert np.isfinite(whole["snapshot_nu"][1]).sum() >= 2
    store.write_store(out, resumed, {})
    stages.remove_checkpoint(out)
    assert not stages.checkpoint_path(out).exists()


def test_gradient_job_resumes_after_a_kill(tmp_path, monkeypatch):
    """Gradient training (12 Adam steps, checkpoint every 4) killed at its second checkpoint
    resumes from the saved theta and Adam state and gives exactly the uninterrupted job's
    training history and final network."""
    cfg = _config(methods=["gradient"], targets=[-0.5],
                  gradient={"steps": 12, "checkpoint_every": 4})  # fmt: skip
    validate(cfg)
    st = network_settings(cfg, "t")
    net = {k: v[1] for k, v in stages.build(st, 0)[0].items()}
    rs = {**run_settings(st, "gradient"), "seed": 0}
    whole, _ = stages.run_method(rs, net)
    out = tmp_path / "gradient.zarr"
    real_save, calls = stages._save, []

    def killed(*args):
        real_save(*args)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(stages, "_save", killed)
    with pytest.raises(KeyboardInterrupt):
        stages.run_method(rs, net, str(out))
    monkeypatch.setattr(stages, "_save", real_save)
    arrays, _ = store.read_store(stages.checkpoint_path(out))
    assert len(arrays["train_nus"]) == 8
    resumed, _ = stages.run_method(rs, net, str(out))
    for k in whole:
        if k != "wall_s":
            np.testing.assert_array_equal(resumed[k][1], whole[k][1], err_msg=k)
    assert np.isfinite(whole["history"][1]).sum() >= 12


def snakemake(*args, timeout=900):
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_paper_config_dry_runs(tmp_path):
    cfg = yaml.safe_load(PAPER.read_text())
    validate(cfg)
    out = snakemake("-n", "--configfile", str(PAPER), "--config", f"results={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    sizes = set()
    for name in cfg["pruning"]["networks"]:
        st = network_settings(cfg, name)
        sizes.add(st["N"])
        for s in seeds(st):
            for m in st["methods"]:
                assert f"{tmp_path}/pruning/{name}/seed{s}/{m}.zarr" in text
            assert f"{tmp_path}/pruning/{name}/seed{s}/modes.zarr" in text
    assert sizes == {144, 256, 576, 1024}


def test_smoke_run_of_the_pruning_rules(tmp_path):
    """A tiny network (8 x 8 triangular: annealing and greedy toward -0.9 and +0.9) through
    every pruning rule: one row per run with the issue's columns, every reported state
    rigid and consistent with the runs table, every figure drawn, no checkpoint left."""
    cfg = {"results": str(tmp_path / "results"),
           "pruning": {"anneal": {"snapshots": 1}, "networks": {"t": NETWORK}}}  # fmt: skip
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = snakemake("--configfile", str(path))
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    res = tmp_path / "results"
    runs = pd.read_csv(res / "tables" / "pruning_runs.csv")
    assert list(runs.columns[: len(RUN_COLUMNS)]) == RUN_COLUMNS
    assert len(runs) == 2 * 2  # (anneal, greedy) x 2 targets
    assert set(runs["method"]) == {"anneal", "greedy"}
    assert runs["success"].all()
    for _, r in runs.iterrows():
        assert np.sign(r["target"] - r["nu_initial"]) * (r["nu_final"] - r["target"]) >= 0
        assert r["z_final"] < r["z_initial"]
    modes = pd.read_csv(res / "tables" / "pruning_modes.csv")
    # the initial network, 1 snapshot + final per annealing run, final per greedy run
    assert len(modes) == 1 + 2 * 2 + 2
    final = modes[modes["stage"] == "final"].sort_values(["method", "target"])
    table = runs.sort_values(["method", "target"])
    np.testing.assert_allclose(final["nu"].to_numpy(), table["nu_final"].to_numpy(), atol=1e-10)
    np.testing.assert_allclose(modes["z_minus_zc"], modes["z"] - 4.0)
    for name in FIGURES:
        assert (res / "figures" / f"{name}.png").stat().st_size > 10_000
    a, attrs = store.read_store(res / "pruning" / "t" / "seed0" / "modes.zarr")
    assert a["valid"].all() and attrs["provenance"]["config"]["name"] == "t"
    assert not list((res / "pruning").rglob(".*.checkpoint"))
    # reruns are precise: a greedy option reruns the greedy job and what reads it, not the
    # network or the annealing
    cfg["pruning"]["greedy"] = {"n_candidates": 8}
    path.write_text(yaml.safe_dump(cfg))
    out = snakemake("-n", "--configfile", str(path))
    jobs = dict(re.findall(r"^(pruning_\w+|all)\s+(\d+)$", out.stdout, re.M))
    assert jobs == {"pruning_run": "1", "pruning_modes": "1", "pruning_tables": "1",
                    "pruning_figures": "1", "all": "1"}, out.stdout[-2000:]  # fmt: skip
    outputs = " ".join(re.findall(r"^\s+output: (.*)$", out.stdout, re.M))
    assert "greedy.zarr" in outputs and "anneal.zarr" not in outputs
