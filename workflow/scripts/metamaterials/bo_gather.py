"""Snakemake adapter: one optimization run's evaluations.csv (rule metamaterials_bo_gather):
its proposals joined to their evaluations, best-so-far n per evaluation."""

import logging

import pandas as pd

from tunable_solids import jobs
from tunable_solids.studies.metamaterials import optimize

jobs.configure_logging(snakemake.log[0])
proposals = pd.concat([pd.read_csv(p) for p in snakemake.input.proposals], ignore_index=True)
keys = snakemake.params.evaluation_keys  # (round, proposal) of each evaluation file, in order
evaluations = optimize.read_evaluations(list(snakemake.input.evaluations)).assign(
    round=[r for r, _ in keys], proposal=[i for _, i in keys]
)
table = optimize.run_table(proposals, evaluations)
table.to_csv(snakemake.output[0], index=False)
logging.getLogger("metamaterials_bo_gather").info(
    "%d evaluations (%d valid), best n %.4g -> %s",
    len(table),
    int(table["valid"].sum()),
    table["best_so_far"].iloc[-1],
    snakemake.output[0],
)
