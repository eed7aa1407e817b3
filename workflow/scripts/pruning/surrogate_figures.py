"""Snakemake adapter: results/figures/pruning_surrogate_*.{png,pdf} from the model stores and
the timing table."""

import logging

from tunable_solids import jobs
from tunable_solids.studies.pruning import surrogate_stages as stages

jobs.configure_logging(snakemake.log[0])
stages.draw_all(
    list(snakemake.input.models),
    snakemake.input.timing,
    list(snakemake.output),
    snakemake.params.dpi,
)
logging.getLogger("pruning_surrogate_figures").info("-> %s", list(snakemake.output))
