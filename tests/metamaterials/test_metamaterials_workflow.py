"""The metamaterials study as a workflow on a tiny case: structures of two initial packing
fractions, one sample cut short (flagged, excluded, counted), networks relaxed from them under
another force field (relax_from), measure stores with stress shifts, the tables with the
issue's columns, the figures; and a Snakemake dry run of the toy config's jobs."""

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
    "measure": {**mc.DEFAULT_MEASURE, "rdf_bins": 44,
                "stress_shift": {"max_strain": 0.02, "steps": 4}},  # fmt: skip
}
FF = {"name": "optimum", "lambda_over_A": 2.094, "gamma": 1.206, "theta0": 109.7}
IONIC = {**FF, "name": "ionic", "lambda_over_A": 0.0, "relax_from": "optimum"}
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
    # the "ionic" network relaxed from the last batch (its cut-short sample: flagged)
    s = mc.job_settings(COMMON, IONIC, "disordered-phi0.40")
    source = {k: v[1] for k, v in arrays.items()}
    relaxed, summary = stages.make_structures(mc.stage_settings(s, "structure"), [0, 1, 2],
                                              None, source)  # fmt: skip
    out, _ = stages.measure(mc.stage_settings(s, "measure"), {k: v[1] for k, v in relaxed.items()})
    path = root / "ionic" / "measure.zarr"
    write_store(path, out, {})
    jobs.append((mc.stage_settings(s, "measure"), str(path)))
    return jobs, root, source, {k: v[1] for k, v in relaxed.items()}


def test_relaxed_networks_follow_their_source(measured):
    """A relax_from force field relaxes its source's samples (same seeds), flags the one
    whose source did not converge, and with the angular term off (ionic) packs more
    closely than its source (the paper: CN 14 against 7)."""
    jobs, _, source, relaxed = measured
    np.testing.assert_array_equal(relaxed["seed"], source["seed"])
    np.testing.assert_array_equal(relaxed["converged"], source["converged"])
    assert not source["converged"][2] and np.isnan(relaxed["energy"][2])
    samples = tables.samples_table(jobs)
    ionic = samples[samples["name"] == "ionic"]
    assert (ionic["relax_from"] == "optimum").all() and ionic["used"].sum() == 2
    src = samples[(samples["name"] == "optimum") & (samples["structure_id"] ==
                                                    "disordered-phi0.40") & samples["used"]]
    assert ionic["coordination"].mean() > src["coordination"].mean() + 1.0, (
        ionic["coordination"].tolist(), src["coordination"].tolist())


def test_tables_and_figures(measured):
    jobs, root, _, _ = measured
    samples = tables.samples_table(jobs)
    samples = samples[samples["name"] == "optimum"]
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
    # stress shifts under tension: one row per used sample and strain, growing normal stress
    shifts = tables.stress_shift_table(jobs)
    steps = COMMON["measure"]["stress_shift"]["steps"]
    assert len(shifts) == 5 * (steps + 1)  # 3 optimum + 2 ionic samples
    last = shifts[shifts["strain"] == shifts["strain"].max()]
    assert (shifts.loc[shifts["strain"] == 0, ["d_sigma", "d_tau"]] == 0).all().all()
    # tension raises the mean normal stress of the optimum's networks (elastic at 2%; the
    # ionic network rearranges plastically, its shift can turn negative)
    assert (last.loc[last["name"] == "optimum", "d_sigma"] > 0).all()
    everything = tables.samples_table(jobs)
    everything.to_csv(root / "samples.csv", index=False)
    tables.forcefields_table(everything).to_csv(root / "fits.csv", index=False)
    shifts.to_csv(root / "shifts.csv", index=False)
    names = ("metamaterials_scaling", "metamaterials_disorder", "metamaterials_relaxed",
             "metamaterials_stress_shift")  # fmt: skip
    outs = [str(root / f"{n}.png") for n in names]
    figures.draw_all(str(root / "samples.csv"), str(root / "fits.csv"), str(root / "shifts.csv"),
                     outs, dpi=60)  # fmt: skip
    assert all(Path(p).stat().st_size > 1000 for p in outs)
    assert pd.read_csv(root / "fits.csv").shape[0] == 2


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
        for fam in f.get("structures", ["disordered"])  # relax_from: the source's networks
    )
    batches = -(-m["seeds"]["count"] // m["seeds"]["per_job"])
    for rule in ("metamaterials_structure", "metamaterials_measure"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(rule + " "))
        assert int(line.split()[-1]) == n_structures * batches
    assert "metamaterials_tables" in out and "metamaterials_figures" in out
