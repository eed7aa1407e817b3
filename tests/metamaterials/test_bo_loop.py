"""The optimization loop as a Snakemake DAG (workflow/rules/metamaterials_bo.smk and the
scripts it runs), with a cheap synthetic objective in place of the melt-quench evaluation
jobs of metamaterials.smk: rounds follow one another through files, an interrupted run
resumes without recomputing what is done, and the DAG's proposals are the ones the
in-memory loop (:func:`optimize.simulate`) makes."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tunable_solids.studies.metamaterials import optimize as o

ROOT = Path(__file__).resolve().parents[2]
BO = {
    "initial_design": "lhs",
    "initial_size": 6,
    "rounds": 2,
    "batch_size": 2,
    "restarts": 1,
    "n_starts": 4,
    "n_candidates": 128,
    "optimizer_seeds": [0],
    "random_search": False,  # baselines: same rules, other proposals (test_optimize)
    "lhs_baseline": False,
}


def bowl(x):
    u = o.to_unit(x)
    return 1.0 + 4.0 * ((u - [0.3, 0.7, 0.45]) ** 2 * [4.0, 1.0, 0.25]).sum(axis=1)


SNAKEFILE = """
RESULTS = "results"
CONDA_ENV = "{env}"
TARGETS = []

include: "{rules}/common.smk"
include: "{rules}/metamaterials_bo.smk"


rule all:
    input:
        BO_TABLE,


# Stands in for the melt-quench evaluation of metamaterials.smk: the bowl of test_optimize,
# in a script that imports nothing heavy (every job is a new Python process).
rule fake_evaluation:
    input:
        f"{{BO_DIR}}/{{{{run}}}}/round{{{{round}}}}/proposals.csv",
    output:
        f"{{BO_DIR}}/{{{{run}}}}/round{{{{round}}}}/ff{{{{ff}}}}/evaluation.csv",
    shell:
        "{python} fake_evaluation.py {{input}} {{wildcards.ff}} {{output}}"
"""


FAKE_EVALUATION = """
import csv, sys

lo, hi = [0.0, 0.4, 60.0], [4.0, 2.0, 180.0]
names = ["lambda_over_A", "gamma", "theta0"]
row = [r for r in csv.DictReader(open(sys.argv[1])) if r["proposal"] == sys.argv[2]][0]
u = [(float(row[k]) - a) / (b - a) for k, a, b in zip(names, lo, hi)]
n = 1.0 + 4.0 * sum(w * (x - c) ** 2 for x, c, w in zip(u, [0.3, 0.7, 0.45], [4.0, 1.0, 0.25]))
with open(sys.argv[3], "w") as f:
    f.write(",".join(names) + ",n,n_err,converged\\n")
    f.write(",".join(row[k] for k in names) + f",{n!r},0.0,True\\n")
"""


def snakemake(workdir: Path, *targets: str) -> None:
    cmd = [sys.executable, "-m", "snakemake", *targets, "--cores", "2"]
    cmd += ["--directory", str(workdir), "--snakefile", str(workdir / "Snakefile")]
    cmd += ["--configfile", str(workdir / "c.yaml")]  # last: it takes several values
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]


def test_rounds_resume_and_match_the_in_memory_loop(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"metamaterials": {"bo": BO}}))
    text = SNAKEFILE.format(
        env=ROOT / "envs" / "cpu.yaml", rules=ROOT / "workflow" / "rules", python=sys.executable
    )
    (tmp_path / "Snakefile").write_text(textwrap.dedent(text))
    (tmp_path / "fake_evaluation.py").write_text(FAKE_EVALUATION)
    bo_dir = tmp_path / "results" / "metamaterials" / "bo"

    # "Interrupted" after round 1 of the BO run: only its proposals were asked for.
    snakemake(tmp_path, "results/metamaterials/bo/bo-s0/round1/proposals.csv")
    done = sorted(bo_dir.glob("bo-s0/round[01]/**/*.csv"))
    assert len(done) == 1 + 6 + 1  # round-0 proposals, 6 evaluations, round-1 proposals
    assert not (bo_dir / "bo-s0" / "round2").exists()
    stamps = {p: p.stat().st_mtime_ns for p in done}

    snakemake(tmp_path)  # resume: everything
    assert {p: p.stat().st_mtime_ns for p in done} == stamps  # reused, not recomputed
    table = pd.read_csv(tmp_path / "results" / "tables" / "metamaterials_optimization.csv")
    assert set(table["run"]) == {"bo-s0"}
    assert all(len(g) == o.budget(o.bo_settings(BO)) for _, g in table.groupby("run"))

    # The DAG made the proposals of the in-memory loop (same functions, same seeds).
    s = o.bo_settings(BO)
    for name, run in o.bo_runs(s).items():
        ref = o.simulate(bowl, s, run)
        got = table[table["run"] == name].reset_index(drop=True)
        for col in [*o.PARAMETERS, "n", "best_so_far"]:
            assert np.allclose(got[col], ref[col], rtol=1e-12, atol=1e-12), (name, col)
        assert np.allclose(got["predicted_n"], ref["predicted_n"], equal_nan=True), name
