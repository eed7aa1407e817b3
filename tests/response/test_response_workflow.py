"""Independent-response workflow: config validation, the paper config's dry-run, and a smoke
run of the response rules of config/smoke.yaml (stores, tables, figures, rerun triggers).

tests/workflow/test_workflow.py already dry-runs every config, and the ``smoke`` fixture
(tests/conftest.py) runs config/smoke.yaml as a whole; here only the response targets are built
(in their own results directory), so the checks below do not depend on test order.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tunable_solids import store
from tunable_solids.config import (
    ConfigError,
    batches,
    scenario_settings,
    stage_settings,
    validate,
)
from tunable_solids.store import PROVENANCE_KEYS
from tunable_solids.studies.response.stages import CONTRACT
from tunable_solids.studies.response.tables import (
    DESIGN_COLUMNS,
    LINEAR_COLUMNS,
    SINGULAR_COLUMNS,
    SVD_COLUMNS,
)

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "config" / "paper" / "independent_response.yaml"
SMOKE = ROOT / "config" / "smoke.yaml"
TABLES = ["jacobian_svd", "singular_values", "linear_regime", "inverse_design"]
FIGURES = [
    "response_rank",
    "response_singular_values",
    "response_linear_regime",
    "response_tunability",
]


def snakemake(*args, timeout=600):
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------------ config
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
            "response": {"feature_sets": [["C"], ["C", "Sigma"]], "n_theta": [2, 4]},
        }
    }
}


def _bad(mutate) -> str:
    cfg = copy.deepcopy(BASE)
    mutate(cfg["scenarios"]["s"])
    with pytest.raises(ConfigError) as exc:
        validate(cfg)
    return str(exc.value)


def test_response_defaults_and_stage_settings():
    validate(BASE)
    st = scenario_settings(BASE, "s")
    r = st["response"]
    assert r["params"] == ["D"] and r["reference_n_theta"] == 4 and r["rank_rtol"] == 1e-9
    assert r["fd_check"]["seeds"] == 0 and "sweeps" not in r
    for stage in ("generate", "minimize", "measure"):
        assert "response" not in stage_settings(st, stage)
    jac = stage_settings(st, "jacobian")
    assert "minimize" not in jac and "measure" not in jac
    assert set(jac["response"]) == {
        "feature_sets",
        "params",
        "n_theta",
        "n_frequencies",
        "cg_tol",
        "rank_rtol",
    }
    assert "fd_check" in stage_settings(st, "jacobian_check")["response"]
    sw = stage_settings(st, "sweeps")
    assert "minimize" in sw and "reference_n_theta" in sw["response"]
    st2 = copy.deepcopy(BASE)
    st2["scenarios"]["s"]["response"]["sweeps"] = {"modes": 2}
    st2["scenarios"]["s"]["response"]["params"] = ["D", "k"]
    st2["scenarios"]["s"]["response"]["n_theta"] = [5, 9]
    validate(st2)
    r2 = scenario_settings(st2, "s")["response"]
    assert r2["sweeps"]["seeds"] == 3 and r2["sweeps"]["n_gamma"] == 16


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (
            lambda r: r.update(params=["stiffness"]),
            "scenarios.s.response.params: stiffness is only allowed with potential",
        ),
        (
            lambda r: r.update(params=["D", "B"], n_theta=[5]),
            "scenarios.s.response.params: B (binding) is only allowed for harmonic_morse",
        ),
        (
            lambda r: r.update(n_theta=[1]),
            "scenarios.s.response.n_theta: 1 is not allowed for params ['D'] with 2 species",
        ),
        (
            lambda r: r.update(params=["D", "k"], n_theta=[6]),
            "scenarios.s.response.n_theta: 6 is not allowed for params ['D', 'k']",
        ),
        (lambda r: r.update(n_theta=[40]), "scenarios.s.response.n_theta: 40 needs 40 species"),
        (
            lambda r: r.update(reference_n_theta=8),
            "scenarios.s.response.reference_n_theta: 8 is not in n_theta [2, 4]",
        ),
        (
            lambda r: r.update(feature_sets=[["C", "stress"]]),
            "scenarios.s.response.feature_sets.0.1: 'stress' is not allowed",
        ),
        (
            lambda r: r.update(sweeps={"feature_set": 2}),
            "scenarios.s.response.sweeps.feature_set: 2 is not allowed; must be < 2",
        ),
        (
            lambda r: r.update(sweeps={"gamma_min": 1.0, "gamma_max": 0.1}),
            "scenarios.s.response.sweeps.gamma_min: 1.0 must be < gamma_max = 0.1",
        ),
        (
            lambda r: r.update(fd_check={"seeds": 5}),
            "scenarios.s.response.fd_check.seeds: 5 exceeds seeds.count = 3",
        ),
        (
            lambda r: r.update(fd_check={"n_theta": [8]}),
            "scenarios.s.response.fd_check.n_theta: [8] not in n_theta [2, 4]",
        ),
        (
            lambda r: r.update(feature_sets=[["omega"]], n_frequencies=100),
            "scenarios.s.response.n_frequencies: 100 exceeds the 62 non-zero modes",
        ),
        (
            lambda r: r.update(rank_rtol=0),
            "scenarios.s.response.rank_rtol: 0 is not allowed; must be > 0",
        ),
    ],
)
def test_response_config_errors_name_the_key(mutate, expected):
    assert expected in _bad(lambda s: mutate(s["response"]))


def test_network_response_rules():
    def network(s):
        s.update(potential="spring_network")
        s["response"] = {"params": ["D"], "n_theta": [4]}

    msg = _bad(network)
    assert "scenarios.s.response.params: ['D'] is not allowed for potential 'spring_network'" in msg
    assert "scenarios.s.response.n_theta: not allowed for a spring_network" in msg


def test_paper_config_has_all_34_scenarios():
    cfg = yaml.safe_load(PAPER.read_text())
    validate(cfg)
    sc = cfg["scenarios"]
    assert len(sc) == 34 and all("response" in s for s in sc.values())
    assert sorted(sc) == sorted(f"s{r:02d}_{d}d" for r in range(1, 18) for d in (2, 3))
    for name, s in sc.items():
        assert s["seeds"]["count"] == 10, name
        assert s["N"] in (256, 1024), name
    # a few table entries (2D (3D)): n_theta, params, features
    rt = {n: scenario_settings(cfg, n)["response"] for n in sc}
    assert rt["s07_2d"]["n_theta"] == [6] and rt["s07_3d"]["n_theta"] == [21]
    assert rt["s10_2d"]["params"] == ["D", "k"] and rt["s10_3d"]["n_theta"] == [44]
    assert rt["s13_2d"]["params"] == ["D", "B"] and rt["s13_2d"]["n_theta"] == [44]
    assert rt["s14_3d"]["params"] == ["stiffness"]
    assert rt["s17_3d"]["n_frequencies"] == 40 and rt["s17_3d"]["reference_n_theta"] == 40
    assert rt["s05_3d"]["feature_sets"] == [["C", "Sigma", "omega"]]
    assert sc["s09_2d"]["pressure"] == 1e-6 and sc["s11_3d"]["N"] == 1024
    assert sc["s12_2d"]["density"] == 1.0 and sc["s12_3d"]["density"] == 1.08
    assert sc["s15_3d"]["density"] == 1.57 and sc["s15_2d"]["structure"] == "crystal"


@pytest.mark.slow
def test_paper_config_dry_run_lists_every_scenario(tmp_path):
    out = snakemake("-n", "--configfile", str(PAPER), "--config", f"results={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    cfg = yaml.safe_load(PAPER.read_text())
    for name in cfg["scenarios"]:
        for b in range(len(batches(scenario_settings(cfg, name)))):
            assert f"{tmp_path}/{name}/batch{b}/jacobian.zarr" in text, name
    for table in TABLES:
        assert f"{tmp_path}/tables/{table}.csv" in text
    assert "jacobian_check" in text and "rule sweeps" in text


# ------------------------------------------------------------------------------ smoke run
@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    results = tmp_path_factory.mktemp("response_smoke")
    targets = [str(results / "tables" / f"{t}.csv") for t in TABLES]
    targets += [str(results / "figures" / f"{f}.png") for f in FIGURES]
    out = snakemake(
        *targets, "--configfile", str(SMOKE), "--config", f"results={results}", timeout=1500
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    return results, yaml.safe_load(SMOKE.read_text())


@pytest.mark.slow
def test_response_stores_meet_contract(smoke):
    results, cfg = smoke
    for name, sc in cfg["scenarios"].items():
        if "response" not in sc:
            continue
        settings = scenario_settings(cfg, name)
        stages = ["jacobian"]
        if settings["response"]["fd_check"]["seeds"]:
            stages.append("jacobian_check")
        if "sweeps" in settings["response"] or "inverse_design" in settings["response"]:
            stages.append("sweeps")
        for stage in stages:
            path = results / name / "batch0" / f"{stage}.zarr"
            dims = store.dimension_names(path)
            arrays, attrs = store.read_store(path)
            for key, d in CONTRACT[stage].items():
                assert dims.get(key) == d, f"{path}: {key} has dims {dims.get(key)}, want {d}"
                assert arrays[key].ndim == len(d)
            assert attrs["stage"] == stage
            for key in PROVENANCE_KEYS:
                assert key in attrs["provenance"], f"{path}: provenance lacks {key}"
            assert attrs["provenance"]["config"]["name"] == name
        jac, _ = store.read_store(results / name / "batch0" / "jacobian.zarr")
        if sc["potential"] != "spring_network":  # the reassignment is recorded
            sp, parent = jac["reassigned_species"], jac["parent_species"]
            for k, n_sp in enumerate(jac["n_species"]):
                assert sorted(np.unique(sp[0, k])) == list(range(n_sp))
                assert (parent[0, k, :n_sp] >= 0).all()


@pytest.mark.slow
def test_response_tables(smoke):
    results, cfg = smoke
    svd = pd.read_csv(results / "tables" / "jacobian_svd.csv")
    assert list(svd.columns) == SVD_COLUMNS
    n_rows = 0
    for name, sc in cfg["scenarios"].items():
        if "response" not in sc:
            continue
        r = scenario_settings(cfg, name)["response"]
        n_par = 1 if sc["potential"] == "spring_network" else len(r["n_theta"])
        n_rows += sc["seeds"]["count"] * n_par * len(r["feature_sets"])
    assert len(svd) == n_rows
    assert svd["converged"].all()
    disordered = svd[svd["structure"] == "disordered"]
    assert disordered["fully_independent"].all(), disordered.to_string()
    assert (disordered["rank"] == np.minimum(disordered["n_y"], disordered["n_theta"])).all()
    crystal = svd[svd["structure"] == "crystal"]
    assert (crystal["rank"] < np.minimum(crystal["n_y"], crystal["n_theta"])).all()
    checked = svd[svd["fd_max_rel_err"].notna()]
    assert len(checked) == 2 and (checked["fd_max_rel_err"] <= 1e-5).all()
    assert (checked["n_theta"] == 2).all()
    sv = pd.read_csv(results / "tables" / "singular_values.csv")
    assert list(sv.columns) == SINGULAR_COLUMNS
    assert len(sv) == int(np.minimum(svd["n_y"], svd["n_theta"]).sum())
    lin = pd.read_csv(results / "tables" / "linear_regime.csv")
    assert list(lin.columns) == LINEAR_COLUMNS and len(lin) == 2
    assert np.allclose(lin["zeta"], lin["gamma_star"] * lin["s"], equal_nan=True)
    assert (lin["gamma_tilde"] > 0).all()
    design = pd.read_csv(results / "tables" / "inverse_design.csv")
    assert list(design.columns) == DESIGN_COLUMNS and len(design) == 2
    assert (design["rel_error"] < 1e-2).all(), design.to_string()  # measured 2.2e-3


@pytest.mark.slow
def test_response_figures_exist(smoke):
    results, _ = smoke
    for fig in FIGURES:
        for ext in ("png", "pdf"):
            assert (results / "figures" / f"{fig}.{ext}").stat().st_size > 10_000


@pytest.mark.slow
def test_editing_response_options_reruns_only_response_rules(smoke, tmp_path):
    results, cfg = smoke
    cfg = copy.deepcopy(cfg)
    cfg["results"] = str(results)
    cfg["scenarios"]["soft_2d"]["response"]["sweeps"]["n_gamma"] = 7
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))  # key order is part of the params
    targets = [str(results / "tables" / f"{t}.csv") for t in TABLES]
    out = snakemake("-n", *targets, "--configfile", str(path))
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert "rule sweeps:" in text
    for rule in ("generate", "minimize", "measure", "jacobian", "jacobian_check"):
        assert f"rule {rule}:" not in text, f"{rule} would rerun:\n{text[-3000:]}"
