"""Snakemake adapter: results/tables/metamaterials_{forcefields,samples,stress_shift}.csv."""

import logging

from tunable_solids import jobs
from tunable_solids.studies.metamaterials import tables

jobs.configure_logging(snakemake.log[0])
jobs_ = list(zip(snakemake.params.jobs, snakemake.input, strict=True))
samples = tables.samples_table(jobs_)
samples.to_csv(snakemake.output.samples, index=False)
tables.forcefields_table(samples).to_csv(snakemake.output.forcefields, index=False)
tables.stress_shift_table(jobs_).to_csv(snakemake.output.stress_shift, index=False)
logging.getLogger("metamaterials_tables").info("%d samples -> %s", len(samples), snakemake.output)
