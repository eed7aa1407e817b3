"""Snakemake adapter: results/figures/metamaterials_*.{png,pdf} from the tables."""

import logging

from tunable_solids import jobs
from tunable_solids.studies.metamaterials import figures

jobs.configure_logging(snakemake.log[0])
figures.draw_all(
    snakemake.input.samples,
    snakemake.input.forcefields,
    snakemake.input.stress_shift,
    list(snakemake.output),
    snakemake.params.dpi,
)
logging.getLogger("metamaterials_figures").info("-> %s", snakemake.output)
