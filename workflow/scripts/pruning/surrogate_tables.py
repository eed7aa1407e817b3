"""Snakemake adapter: results/tables/pruning_surrogate{,_timing,_screening}.csv."""

import logging

from tunable_solids import jobs
from tunable_solids.studies.pruning import surrogate_stages as stages

jobs.configure_logging(snakemake.log[0])
stages.metrics_table(list(snakemake.input.models)).to_csv(snakemake.output.metrics, index=False)
stages.timing_table(snakemake.input.timing).to_csv(snakemake.output.timing, index=False)
if snakemake.input.screening:
    table = stages.screening_table(snakemake.input.screening[0])
    table.to_csv(snakemake.output.screening, index=False)
logging.getLogger("pruning_surrogate_tables").info("-> %s", list(snakemake.output))
