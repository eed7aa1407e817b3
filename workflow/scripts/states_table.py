"""Snakemake adapter: one CSV row per minimized state."""

from tunable_solids import jobs, loaders

jobs.configure_logging(snakemake.log[0])
loaders.states_table(list(snakemake.input)).to_csv(snakemake.output[0], index=False)
