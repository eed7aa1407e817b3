"""Snakemake adapter: one proposal's evaluation.csv (rule metamaterials_bo_evaluate): the fit
E ~ Phi^n over the measure stores of its disordered networks (every Phi_0 and seed batch).
One row: lambda_over_A, gamma, theta0, n, n_err, E_50, converged (a finite n from at least two
densities), coordination, S2, n_densities, n_seeds, samples, excluded."""

import logging

import numpy as np

from tunable_solids import jobs
from tunable_solids.studies.metamaterials import config, tables

jobs.configure_logging(snakemake.log[0])
ff = config.forcefield_from_proposals(snakemake.input.proposals, snakemake.params.proposal)
measured = [
    (dict(settings, forcefield=ff), path)
    for settings, path in zip(snakemake.params.jobs, snakemake.input.measures, strict=True)
]
fit = tables.forcefields_table(tables.samples_table(measured))
row = fit.iloc[[0]].drop(columns=["name", "structure", "paper_n"])
row["converged"] = bool(np.isfinite(row["n"].iloc[0]) and row["n_densities"].iloc[0] >= 2)
row.to_csv(snakemake.output[0], index=False)
logging.getLogger("metamaterials_bo_evaluate").info(
    "proposal %d %s: n = %.4g +- %.2g over %d densities, %d samples (%d excluded)",
    snakemake.params.proposal, ff, row["n"].iloc[0], row["n_err"].iloc[0],
    row["n_densities"].iloc[0], row["samples"].iloc[0], row["excluded"].iloc[0],
)  # fmt: skip
