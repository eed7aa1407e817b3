"""Snakemake adapter: initial configurations of one scenario batch."""

from tunable_solids import jobs, pipeline

jobs.run_stage(
    pipeline.generate,
    snakemake.params.settings,
    (snakemake.params.seeds,),
    snakemake.output[0],
    snakemake.log[0],
    "generate",
)
