"""Snakemake adapter: results/tables/metamaterials_optimization.csv (every optimization run:
round, proposal, predicted and measured n, best so far)."""

import logging

import pandas as pd

from tunable_solids import jobs
from tunable_solids.studies.metamaterials import optimize

jobs.configure_logging(snakemake.log[0])
runs = {
    name: pd.read_csv(p) for name, p in zip(snakemake.params.runs, snakemake.input, strict=True)
}
table = optimize.optimization_table(runs, snakemake.params.settings)
table.to_csv(snakemake.output[0], index=False)
logging.getLogger("metamaterials_bo_table").info("%d runs -> %s", len(runs), snakemake.output[0])
