"""Snakemake adapter: results/tables/pruning_{runs,modes}.csv."""

import logging

from tunable_solids import jobs
from tunable_solids.studies.pruning import tables

jobs.configure_logging(snakemake.log[0])
entries = snakemake.params.entries
tables.runs_table(entries, list(snakemake.input.runs)).to_csv(snakemake.output.runs, index=False)
tables.modes_table(entries, list(snakemake.input.modes)).to_csv(snakemake.output.modes, index=False)
logging.getLogger("pruning_tables").info("%d entries -> %s", len(entries), snakemake.output)
