"""Snakemake adapter: results/figures/pruning_*.{png,pdf} from the tables and stores."""

import logging

from tunable_solids import jobs
from tunable_solids.studies.pruning import figures

jobs.configure_logging(snakemake.log[0])
figures.draw_all(
    snakemake.params.entries,
    snakemake.input.runs,
    snakemake.input.modes_table,
    list(snakemake.input.networks),
    list(snakemake.input.modes),
    list(snakemake.output),
    snakemake.params.network,
    snakemake.params.dpi,
)
logging.getLogger("pruning_figures").info("%d files -> %s", len(snakemake.output), snakemake.output)
