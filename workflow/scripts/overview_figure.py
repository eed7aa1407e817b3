"""Snakemake adapter: overview figure (packing + distributions of nu, B, G)."""

import logging

import pandas as pd

from tunable_solids import figures, jobs, loaders

jobs.configure_logging(snakemake.log[0])
table = pd.read_csv(snakemake.input.table)
state = loaders.state(snakemake.input.store, 0)
fig = figures.overview(state, table)
for path in snakemake.output:
    fig.savefig(path, dpi=snakemake.params.dpi)
    logging.getLogger("overview_figure").info("wrote %s", path)
