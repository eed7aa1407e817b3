"""Config validation: bad values fail before any job runs, naming the key and what is allowed."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tunable_solids.config import ConfigError, batches, scenario_settings, stage_settings, validate

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "scenarios": {
        "s": {
            "dim": 2,
            "N": 32,
            "structure": "disordered",
            "potential": "soft_sphere",
            "species": {"n_species": 2, "diameters": [1.0, 1.4]},
            "packing_fraction": 0.9,
            "pressure": 0.1,
            "seeds": {"count": 3, "per_job": 2},
        }
    }
}


def _bad(mutate):
    cfg = copy.deepcopy(BASE)
    mutate(cfg["scenarios"]["s"])
    with pytest.raises(ConfigError) as exc:
        validate(cfg)
    return str(exc.value)


def test_valid_base_and_shipped_configs():
    validate(BASE)
    for path in [*ROOT.glob("config/*.yaml"), *ROOT.glob("config/paper/*.yaml")]:
        validate(yaml.safe_load(path.read_text()))


def test_negative_N():
    msg = _bad(lambda s: s.update(N=-5))
    assert "scenarios.s.N: -5 is not allowed; must be >= 4" in msg


def test_dim_4():
    msg = _bad(lambda s: s.update(dim=4))
    assert "scenarios.s.dim: 4 is not allowed; allowed values: [2, 3]" in msg


def test_unknown_potential():
    msg = _bad(lambda s: s.update(potential="lennard_jones"))
    assert "scenarios.s.potential: 'lennard_jones' is not allowed" in msg
    assert "soft_sphere" in msg and "harmonic_morse_xplor" in msg


def test_missing_key():
    msg = _bad(lambda s: s.pop("seeds"))
    assert "scenarios.s.seeds: required key is missing" in msg


def test_unknown_key_lists_allowed():
    msg = _bad(lambda s: s.update(temperature=1.0))
    assert "scenarios.s" in msg and "temperature" in msg and "allowed:" in msg


def test_pressure_target_for_crystal():
    def crystal(s):
        s.update(structure="crystal", density=1.25, species={"n_species": 1, "diameters": [1.0]})
        s.pop("packing_fraction")

    msg = _bad(crystal)
    assert "scenarios.s.pressure: a pressure target is not allowed for structure 'crystal'" in msg


def test_crystal_size_that_does_not_tile():
    def crystal(s):
        s.update(
            structure="crystal", density=1.25, N=34, species={"n_species": 1, "diameters": [1.0]}
        )
        s.pop("packing_fraction")
        s.pop("pressure")

    assert "scenarios.s.N:" in _bad(crystal)


def test_both_density_and_packing_fraction():
    assert "exactly one of `density`" in _bad(lambda s: s.update(density=1.0))


def test_settings_batches_and_stage_params():
    st = scenario_settings(BASE, "s")
    assert st["minimize"]["force_tol"] == 1e-12
    assert batches(st) == [[0, 1], [2]]
    assert "minimize" not in stage_settings(st, "generate")
    assert "measure" not in stage_settings(st, "minimize")
    assert "measure" in stage_settings(st, "measure")


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("N", -5, "scenarios.bad.N: -5 is not allowed"),
        ("dim", 4, "scenarios.bad.dim: 4 is not allowed"),
    ],
)
def test_snakemake_rejects_before_any_job(tmp_path, key, value, expected):
    cfg = {
        "results": str(tmp_path / "results"),
        "scenarios": {"bad": copy.deepcopy(BASE["scenarios"]["s"])},
    }
    cfg["scenarios"]["bad"][key] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path), "--cores", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0
    assert expected in out.stdout + out.stderr
    assert not (tmp_path / "results").exists()
