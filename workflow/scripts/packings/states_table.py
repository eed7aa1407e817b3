"""Snakemake adapter: one CSV row per minimized state."""

import logging

from tunable_solids import jobs
from tunable_solids.studies.packings import tables

jobs.configure_logging(snakemake.log[0])
table = tables.states_table(list(snakemake.input))
table.to_csv(snakemake.output[0], index=False)
logging.getLogger("states_table").info(
    "%d states (%d converged) from %d stores -> %s",
    len(table),
    int(table["converged"].sum()),
    len(snakemake.input),
    snakemake.output[0],
)
