"""Snakemake adapter: validate a training run's parameters on fresh configurations (the plain
validation, or one of the group's extra validations: the params carry the settings)."""

from tunable_solids import jobs
from tunable_solids.studies.training import stages

arrays, dims = jobs.read_with_dims(snakemake.input[0])
jobs.run_stage(
    stages.validate_run,
    snakemake.params.run,
    (arrays, dims),
    snakemake.output[0],
    snakemake.log[0],
    snakemake.rule,
)
