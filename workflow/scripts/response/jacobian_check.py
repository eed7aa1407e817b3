"""Snakemake adapter: finite-difference check of the Jacobians of one scenario batch."""

from tunable_solids import jobs
from tunable_solids.studies.response import stages

arrays, dims = jobs.read_with_dims(snakemake.input.minimized)
jac, jac_dims = jobs.read_with_dims(snakemake.input.jacobian)
jobs.run_stage(
    stages.jacobian_check_batch,
    snakemake.params.settings,
    (arrays, dims, jac, jac_dims),
    snakemake.output[0],
    snakemake.log[0],
    "jacobian_check",
)
