"""Snakemake adapter: figures of the independent-response study (paper Figs. 1-4)."""

import logging

import pandas as pd

from tunable_solids import jobs
from tunable_solids.studies.response import figures
from tunable_solids.studies.response import tables as loaders

jobs.configure_logging(snakemake.log[0])
log = logging.getLogger("response_figures")
svd = pd.read_csv(snakemake.input.svd)
sv = pd.read_csv(snakemake.input.singular_values)
linear = pd.read_csv(snakemake.input.linear_regime)
examples = loaders.sweep_examples(list(snakemake.input.sweeps), snakemake.params.sweep_scenario)
figs = {
    "response_rank": figures.rank_vs_n_theta(svd),
    "response_singular_values": figures.singular_values(sv),
    "response_linear_regime": figures.linear_regime(examples),
    "response_tunability": figures.tunability(linear),
}
for path in snakemake.output:
    name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    figs[name].savefig(path, dpi=snakemake.params.dpi)
    log.info("wrote %s", path)
