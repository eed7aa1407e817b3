"""Snakemake adapter: gradient predictiveness of a training run (paper Fig. 1c)."""

from tunable_solids import jobs
from tunable_solids.studies.training import analysis

arrays, dims = jobs.read_with_dims(snakemake.input[0])
jobs.run_stage(
    analysis.gradient_check,
    snakemake.params.run,
    (arrays, dims),
    snakemake.output[0],
    snakemake.log[0],
    "gradient_check",
)
