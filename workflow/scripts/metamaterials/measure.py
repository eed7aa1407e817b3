"""Snakemake adapter: measurements of one structures store (measure.zarr). The input named
``structures`` (or the first input) is the store; an input ``proposals`` with
``params.proposal`` gives the force field as in structure.py."""

from tunable_solids import jobs
from tunable_solids.studies.metamaterials import config, stages

settings = dict(snakemake.params.settings)
if "proposals" in snakemake.input.keys():
    settings["forcefield"] = config.forcefield_from_proposals(
        snakemake.input.proposals, snakemake.params.proposal
    )
path = snakemake.input.get("structures", snakemake.input[0])
jobs.run_stage(
    stages.measure,
    settings,
    jobs.read_with_dims(path),
    snakemake.output[0],
    snakemake.log[0],
    "metamaterials_measure",
)
