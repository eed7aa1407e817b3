"""Snakemake adapter: inherent states of one ensemble batch (glasses.zarr); a finite-T_p batch
checkpoints beside its output and resumes after a kill."""

from tunable_solids import jobs
from tunable_solids.studies.modes import stages

jobs.run_stage(
    stages.prepare,
    snakemake.params.settings,
    (list(snakemake.params.seeds), snakemake.output[0]),
    snakemake.output[0],
    snakemake.log[0],
    "modes_prepare",
)
stages.remove_checkpoint(snakemake.output[0])
