"""Snakemake adapter: prediction time of the trained models vs the exact solve vs N."""

from tunable_solids import jobs
from tunable_solids.studies.pruning import surrogate_stages as stages

jobs.run_stage(
    stages.timing,
    snakemake.params.settings,
    (list(snakemake.input),),
    snakemake.output[0],
    snakemake.log[0],
    "pruning_surrogate_timing",
)
