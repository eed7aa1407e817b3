"""Snakemake adapter: results/figures/metamaterials_bo_*.{png,pdf} from the optimization
table."""

import logging

import pandas as pd

from tunable_solids import jobs
from tunable_solids.studies.metamaterials import figures_bo

jobs.configure_logging(snakemake.log[0])
table = pd.read_csv(snakemake.input[0])
figures_bo.draw_all(table, snakemake.params.settings, list(snakemake.output), snakemake.params.dpi)
logging.getLogger("metamaterials_bo_figures").info("-> %s", list(snakemake.output))
