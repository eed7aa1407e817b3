"""Snakemake adapter: surrogate-screened vs plain simulated annealing."""

from tunable_solids import jobs
from tunable_solids.studies.pruning import surrogate_stages as stages

jobs.run_stage(
    stages.screening,
    snakemake.params.settings,
    (snakemake.input[0],),
    snakemake.output[0],
    snakemake.log[0],
    "pruning_surrogate_screening",
)
