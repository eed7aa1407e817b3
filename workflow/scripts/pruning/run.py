"""Snakemake adapter: one method's runs toward every target (<method>.zarr); annealing
checkpoints beside its output and resumes after a kill."""

from tunable_solids import jobs, store
from tunable_solids.studies.pruning import stages

network, _ = store.read_store(snakemake.input[0])
jobs.run_stage(
    stages.run_method,
    snakemake.params.settings,
    (network, snakemake.output[0]),
    snakemake.output[0],
    snakemake.log[0],
    "pruning_run",
)
stages.remove_checkpoint(snakemake.output[0])
