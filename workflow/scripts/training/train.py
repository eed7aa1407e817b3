"""Snakemake adapter: one training run (resumes from its checkpoint after an interruption)."""

from tunable_solids import jobs
from tunable_solids.studies.training import stages

out = snakemake.output[0]
jobs.run_stage(stages.run_training, snakemake.params.run, (out,), out, snakemake.log[0], "train")
stages.finish(out)
