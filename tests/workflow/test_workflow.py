"""Workflow: dry-runs of every shipped config, lint and style gates, GPU requests.

The stores of the smoke run (the ``smoke`` fixture of tests/conftest.py) are checked in
tests/packings/test_packings_workflow.py, the one file that uses it (so that pytest-xdist's
``--dist loadfile`` runs it once)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tunable_solids.config import batches, scenario_settings
from tunable_solids.studies.metamaterials import config as mm_config
from tunable_solids.studies.modes.config import ensemble_batches, ensemble_settings

ROOT = Path(__file__).resolve().parents[2]
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
    for name in cfg.get("scenarios", {}):
        for b in range(len(batches(scenario_settings(cfg, name)))):
            assert f"{tmp_path}/{name}/batch{b}/measured.zarr" in text
    for name in cfg.get("modes", {}).get("ensembles", {}):
        for b in range(len(ensemble_batches(ensemble_settings(cfg, name)))):
            assert f"{tmp_path}/modes/{name}/batch{b}/spectrum.zarr" in text
    if cfg.get("metamaterials"):
        n_batches = len(mm_config.seed_batches(mm_config.common_settings(cfg)))
        for name in cfg["metamaterials"]["forcefields"]:
            for s in mm_config.forcefield_structures(cfg, name):
                for b in range(n_batches):
                    assert f"{tmp_path}/metamaterials/{name}/{s}/batch{b}/measure.zarr" in text


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
