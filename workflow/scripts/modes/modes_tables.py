"""Snakemake adapter: results/tables/modes_{exponents,samples}.csv."""

import logging

from tunable_solids import jobs
from tunable_solids.studies.modes import tables

jobs.configure_logging(snakemake.log[0])
ensembles = tables.split_stores(snakemake.params.ensembles, list(snakemake.input))
tables.exponents_table(ensembles).to_csv(snakemake.output.exponents, index=False)
tables.samples_table(ensembles).to_csv(snakemake.output.samples, index=False)
logging.getLogger("modes_tables").info("%d ensembles -> %s", len(ensembles), snakemake.output)
