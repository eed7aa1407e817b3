"""Snakemake adapter: results/figures/modes_*.{png,pdf} from the spectrum stores and table."""

import logging

from tunable_solids import jobs
from tunable_solids.studies.modes import figures, tables

jobs.configure_logging(snakemake.log[0])
ensembles = tables.split_stores(snakemake.params.ensembles, list(snakemake.input.spectra))
figures.draw_all(ensembles, snakemake.input.exponents, list(snakemake.output), snakemake.params.dpi)
logging.getLogger("modes_figures").info("%d files -> %s", len(snakemake.output), snakemake.output)
