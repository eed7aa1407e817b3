"""Snakemake adapter: mechanics of the minimized states of one scenario batch."""

from tunable_solids import jobs
from tunable_solids.studies.packings import stages

arrays, dims = jobs.read_with_dims(snakemake.input[0])
jobs.run_stage(
    stages.measure_batch,
    snakemake.params.settings,
    (arrays, dims),
    snakemake.output[0],
    snakemake.log[0],
    "measure",
)
