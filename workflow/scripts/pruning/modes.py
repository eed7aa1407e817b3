"""Snakemake adapter: mode and bond analysis of every state of one network's runs (modes.zarr)."""

from tunable_solids import jobs, store
from tunable_solids.studies.pruning import stages

network, _ = store.read_store(snakemake.input.network)
methods = snakemake.params.settings["methods"]
runs = [(m, store.read_store(p)[0]) for m, p in zip(methods, snakemake.input.runs, strict=True)]
jobs.run_stage(
    stages.analyse_modes,
    snakemake.params.settings,
    (network, runs),
    snakemake.output[0],
    snakemake.log[0],
    "pruning_modes",
)
