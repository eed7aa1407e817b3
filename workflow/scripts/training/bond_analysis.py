"""Snakemake adapter: bond-level K_ij, G_ij before and after training (paper Fig. 1f)."""

from tunable_solids import jobs
from tunable_solids.studies.training import analysis

arrays, dims = jobs.read_with_dims(snakemake.input[0])
jobs.run_stage(
    analysis.bond_analysis,
    snakemake.params.run,
    (arrays, dims),
    snakemake.output[0],
    snakemake.log[0],
    "bond_analysis",
)
