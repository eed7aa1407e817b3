"""The metamaterials study as a workflow on a tiny case: structures of two initial packing
fractions, one sample cut short (flagged, excluded, counted), measure stores, both tables with
the issue's columns, the figures; and a Snakemake dry run of the toy config's jobs."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tunable_solids.store import write_store
from tunable_solids.studies.metamaterials import config as mc
from tunable_solids.studies.metamaterials import figures, stages, tables

ROOT = Path(__file__).resolve().parents[2]
COMMON = {
    "atoms": 128,
    "crystal_cells": 2,
    "seeds": {"first": 0},
    "md": {**mc.DEFAULT_MD, "melt_time": 1.0, "quench_time": 1.0, "checkpoint_every": 100},
    "minimize": {**mc.DEFAULT_MINIMIZE, "force_tol": 1e-10, "chunk": 20_000},
    "measure": {**mc.DEFAULT_MEASURE, "rdf_bins": 44},
}
FF = {"name": "optimum", "lambda_over_A": 2.094, "gamma": 1.206, "theta0": 109.7}
COLUMNS = ["name", "lambda_over_A", "gamma", "theta0", "structure", "n", "n_err", "E_50",
           "n_densities", "n_seeds", "coordination", "S2"]  # fmt: skip


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = tmp_path_factory.mktemp("mm")
    jobs = []
    for structure, seeds in (("disordered-phi0.26", [0]), ("disordered-phi0.40", [0, 1])):
        s = mc.job_settings(COMMON, FF, structure)
        arrays, summary = stages.make_structures(mc.stage_settings(s, "structure"), seeds)
        if structure.endswith("0.40"):  # a second sample whose minimization is cut short
            short = copy.deepcopy(mc.stage_settings(s, "structure"))
            short["minimize"]["max_steps"] = 3
            bad, _ = stages.make_structures(short, [2])
            arrays = {k: (v[0], np.concatenate([v[1], bad[k][1]])) for k, v in arrays.items()}
        out, _ = stages.measure(
            mc.stage_settings(s, "measure"), {k: v[1] for k, v in arrays.items()}
        )
        path = root / structure / "measure.zarr"
        write_store(path, out, {})
        jobs.append((mc.stage_settings(s, "measure"), str(path)))
    return jobs, root


def test_tables_and_figures(measured):
    jobs, root = measured
    samples = tables.samples_table(jobs)
    assert len(samples) == 4 and samples["used"].sum() == 3
    bad = samples[~samples["converged"]]
    assert len(bad) == 1 and not bad["used"].any() and np.isnan(bad["young"]).all()
    fits = tables.forcefields_table(samples)
    assert list(fits.columns[: len(COLUMNS)]) == COLUMNS
    row = fits.iloc[0]
    assert row["n_densities"] == 2 and row["n_seeds"] == 2 and row["excluded"] == 1
    assert np.isfinite(row["n"]) and np.isfinite(row["n_err"]) and row["E_50"] > 0
    used = samples[samples["used"]]
    assert (used["phi"] > 0.1).all() and (used["young"] > 0).all()
    # a melt-quenched SW network: 3..8 neighbours on average, ordered beyond an ideal gas
    assert 3 < row["coordination"] < 8 and row["S2"] < 0
    samples.to_csv(root / "samples.csv", index=False)
    fits.to_csv(root / "fits.csv", index=False)
    outs = [str(root / f"{n}.png") for n in ("metamaterials_scaling", "metamaterials_disorder")]
    figures.draw_all(str(root / "samples.csv"), str(root / "fits.csv"), outs, dpi=60)
    assert all(Path(p).stat().st_size > 1000 for p in outs)
    assert pd.read_csv(root / "fits.csv").shape[0] == 1


def test_dry_run_of_the_toy_jobs(tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    small = {"results": str(tmp_path / "results"), "metamaterials": cfg["metamaterials"]}
    path = tmp_path / "mm.yaml"
    path.write_text(yaml.safe_dump(small))
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(path)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    m = cfg["metamaterials"]
    n_structures = sum(
        len(m["phi0"]) if fam == "disordered" else len(m["vacancies"])
        for f in m["forcefields"].values()
        for fam in f["structures"]
    )
    batches = -(-m["seeds"]["count"] // m["seeds"]["per_job"])
    for rule in ("metamaterials_structure", "metamaterials_measure"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(rule + " "))
        assert int(line.split()[-1]) == n_structures * batches
    assert "metamaterials_tables" in out and "metamaterials_figures" in out
