"""Snakemake adapter: linear-regime sweeps and one-step design of one scenario batch."""

from tunable_solids import jobs
from tunable_solids.studies.response import stages

arrays, dims = jobs.read_with_dims(snakemake.input.minimized)
jac, jac_dims = jobs.read_with_dims(snakemake.input.jacobian)
jobs.run_stage(
    stages.sweeps_batch,
    snakemake.params.settings,
    (arrays, dims, jac, jac_dims),
    snakemake.output[0],
    snakemake.log[0],
    "sweeps",
)
