"""Snakemake adapter: bond-operator spectrum and top-mode analysis of one batch."""

from tunable_solids import jobs
from tunable_solids.studies.modes import stages

jobs.run_stage(
    stages.analyse,
    snakemake.params.settings,
    jobs.read_with_dims(snakemake.input[0]),
    snakemake.output[0],
    snakemake.log[0],
    "modes_analyse",
)
