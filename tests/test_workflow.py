"""Workflow: dry-runs of every shipped config, and a smoke run whose stores meet the contract."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tunable_solids import store
from tunable_solids.config import batches, scenario_settings
from tunable_solids.store import PROVENANCE_KEYS
from tunable_solids.studies.packings.stages import CONTRACT, NETWORK_ARRAYS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted([*ROOT.glob("config/*.yaml"), *ROOT.glob("config/paper/*.yaml")])


def snakemake(*args, timeout=300):
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_dry_run_lists_every_batch(config, tmp_path):
    out = snakemake("-n", "--configfile", str(config), "--config", f"results={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    cfg = yaml.safe_load(config.read_text())
    text = out.stdout + out.stderr
    for name in cfg["scenarios"]:
        for b in range(len(batches(scenario_settings(cfg, name)))):
            assert f"{tmp_path}/{name}/batch{b}/measured.zarr" in text


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    results = tmp_path_factory.mktemp("smoke")
    out = snakemake(
        "--configfile", "config/smoke.yaml", "--config", f"results={results}", timeout=1500
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    return results, yaml.safe_load((ROOT / "config/smoke.yaml").read_text())


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


def test_snakemake_lint_is_clean():
    """`snakemake --lint` (CI runs it through this test) reports nothing to fix."""
    out = snakemake("--lint")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "Congratulations, your workflow is in a good condition!" in out.stdout + out.stderr
    assert "Lints for" not in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]


def test_ruff_is_clean():
    """The code style gate of `make lint`, also in CI."""
    paths = ["src", "tests", "workflow/scripts", "benchmarks"]
    out = subprocess.run([sys.executable, "-m", "ruff", "check", *paths], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:]


def _planned_resources(stdout: str) -> dict[str, set[str]]:
    """rule -> the set of resource lists (without tmpdir) of its planned jobs in a dry-run."""
    out, rule = {}, None
    for line in stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif rule and line.strip().startswith("resources:"):
            items = line.strip().removeprefix("resources:").split(",")
            # tmpdir is the machine's temporary directory: not what is checked here
            kept = [i.strip() for i in items if not i.strip().startswith("tmpdir=")]
            out.setdefault(rule, set()).add(", ".join(kept))
    return out


@pytest.mark.parametrize("gpus", [0, 1])
def test_gpu_requests_follow_the_config(tmp_path, gpus):
    """Heavy JAX rules ask for `gpus_per_job` GPUs of `gpu_model` (the SLURM plugin's `gpu`
    and `gpu_model` resources); tables and figures never; no model without GPUs."""
    extra = tmp_path / "gpu.yaml"
    extra.write_text(yaml.safe_dump({"cluster": {"gpus_per_job": gpus, "gpu_model": "a100"}}))
    out = snakemake("-n", "--configfile", "config/smoke.yaml", str(extra),
                    "--config", f"results={tmp_path}")  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    res = _planned_resources(out.stdout)
    want = f"gpu={gpus}, gpu_model={'a100' if gpus else ''}"
    for rule in ("minimize", "measure", "jacobian", "sweeps", "train", "validate_training"):
        assert res[rule] == {want}, (rule, res[rule])
    for rule in ("states_table", "overview_figure", "response_figures", "training_figures"):
        assert not any("gpu" in line for line in res[rule]), (rule, res[rule])
    # generation runs on the CPU, except for spring networks (minimized while generated)
    assert "gpu=0, gpu_model=" in res["generate"]
