"""Snakemake adapter: overview figure (packing + distributions of nu, B, G)."""

import logging

import pandas as pd

from tunable_solids import jobs
from tunable_solids.studies.packings import figures, tables

jobs.configure_logging(snakemake.log[0])
table = pd.read_csv(snakemake.input.table)
state = tables.state(snakemake.input.store, 0)
fig = figures.overview(state, table)
for path in snakemake.output:
    fig.savefig(path, dpi=snakemake.params.dpi)
    logging.getLogger("overview_figure").info("wrote %s", path)
