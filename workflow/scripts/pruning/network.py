"""Snakemake adapter: the network of one entry and seed (network.zarr)."""

from tunable_solids import jobs
from tunable_solids.studies.pruning import stages

jobs.run_stage(
    stages.build,
    snakemake.params.settings,
    (snakemake.params.seed,),
    snakemake.output[0],
    snakemake.log[0],
    "pruning_network",
)
