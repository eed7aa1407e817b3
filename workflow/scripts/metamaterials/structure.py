"""Snakemake adapter: structures of one force field, structure and seed batch
(structures.zarr); the batch checkpoints beside its output and resumes after a kill.

Interface (also for the Bayesian-optimization rules): ``params.settings`` are the job
settings of ``tunable_solids.studies.metamaterials.config.job_settings`` (stage
"structure"); ``params.seeds`` the seeds. The force field is ``settings["forcefield"]``
unless the rule has an input named ``proposals`` (a round's proposals.csv with columns
lambda_over_A, gamma, theta0) and ``params.proposal`` (the row index): then that row is the
force field (``config.forcefield_from_proposals``), named ``proposal<index>``. An input
named ``source`` (the structures store of another force field) is what a force field with
``relax_from`` relaxes.
"""

from tunable_solids import jobs
from tunable_solids.studies.metamaterials import config, stages

settings = dict(snakemake.params.settings)
if "proposals" in snakemake.input.keys():
    settings["forcefield"] = config.forcefield_from_proposals(
        snakemake.input.proposals, snakemake.params.proposal
    )
source = None
if "source" in snakemake.input.keys():  # a force field with relax_from
    source = jobs.read_with_dims(snakemake.input.source)[0]
jobs.run_stage(
    stages.make_structures,
    settings,
    (list(snakemake.params.seeds), snakemake.output[0], source),
    snakemake.output[0],
    snakemake.log[0],
    "metamaterials_structure",
)
stages.remove_checkpoint(snakemake.output[0])
