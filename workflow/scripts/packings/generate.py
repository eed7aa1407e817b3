"""Snakemake adapter: initial configurations of one scenario batch."""

from tunable_solids import jobs
from tunable_solids.studies.packings import stages

jobs.run_stage(
    stages.generate,
    snakemake.params.settings,
    (snakemake.params.seeds,),
    snakemake.output[0],
    snakemake.log[0],
    "generate",
)
