"""Snakemake adapter: one batch of the surrogate's data set (networks + exact nu)."""

from tunable_solids import jobs
from tunable_solids.studies.pruning import surrogate_stages as stages

jobs.run_stage(
    stages.dataset,
    snakemake.params.settings,
    (list(snakemake.params.indices),),
    snakemake.output[0],
    snakemake.log[0],
    "pruning_surrogate_dataset",
)
