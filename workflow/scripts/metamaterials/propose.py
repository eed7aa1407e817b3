"""Snakemake adapter: proposals.csv of round r of one optimization run (rule
metamaterials_propose) from the evaluation.csv files of its rounds < r; round 0 is the
initial design."""

import logging
import time

from tunable_solids import jobs
from tunable_solids.studies.metamaterials import optimize

jobs.configure_logging(snakemake.log[0])
log = logging.getLogger("metamaterials_propose")
start = time.perf_counter()
round_ = int(snakemake.wildcards.round)
evaluations = optimize.read_evaluations(list(snakemake.input))
log.info(
    "run %s round %d: %d evaluations before it (%d valid), settings %s",
    snakemake.wildcards.run,
    round_,
    len(evaluations),
    len(optimize.valid(evaluations)),
    snakemake.params.settings,
)
proposals = optimize.propose_round(snakemake.params.settings, round_, evaluations)
proposals.to_csv(snakemake.output[0], index=False)
log.info(
    "%d proposals in %.2f s -> %s", len(proposals), time.perf_counter() - start, snakemake.output[0]
)
