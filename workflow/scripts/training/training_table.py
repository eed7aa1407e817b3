"""Snakemake adapter: results/tables/training_runs.csv."""

import logging

from tunable_solids import jobs
from tunable_solids.studies.training import tables

jobs.configure_logging(snakemake.log[0])
table = tables.training_table(list(snakemake.input.runs), list(snakemake.input.validations))
table.to_csv(snakemake.output[0], index=False)
logging.getLogger("training_table").info("%d rows -> %s", len(table), snakemake.output[0])
