"""Snakemake adapter: train one surrogate model; checkpoints beside its store, resumes after
a kill, and removes the checkpoint once the store exists."""

from tunable_solids import jobs
from tunable_solids.studies.pruning import surrogate_stages as stages

jobs.run_stage(
    stages.train_model,
    snakemake.params.settings,
    (list(snakemake.input), snakemake.output[0]),
    snakemake.output[0],
    snakemake.log[0],
    "pruning_surrogate_train",
)
stages.remove_checkpoint(snakemake.output[0])
