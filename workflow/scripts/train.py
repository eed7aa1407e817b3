"""Snakemake adapter: one training run (resumes from its checkpoint after an interruption)."""

from tunable_solids import jobs, pipeline_training

out = snakemake.output[0]
jobs.run_stage(
    pipeline_training.run_training, snakemake.params.run, (out,), out, snakemake.log[0], "train"
)
pipeline_training.finish(out)
