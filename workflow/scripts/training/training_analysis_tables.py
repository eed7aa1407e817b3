"""Snakemake adapter: results/tables/training_{validations,success,parameters}.csv."""

import logging

import pandas as pd

from tunable_solids import jobs
from tunable_solids.studies.training import tables as loaders

jobs.configure_logging(snakemake.log[0])
log = logging.getLogger("training_analysis_tables")
tables = {
    "validations": loaders.training_validations_table(list(snakemake.input.validations)),
    "success": loaders.training_success_table(pd.read_csv(snakemake.input.runs_table)),
    "parameters": loaders.training_parameters_table(list(snakemake.input.runs)),
}
for name, table in tables.items():
    table.to_csv(snakemake.output[name], index=False)
    log.info("%d rows -> %s", len(table), snakemake.output[name])
