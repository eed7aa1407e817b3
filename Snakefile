# Inverse design of athermal disordered solids: workflow entry point.
# The config is validated (schema + physics rules) before any job is planned.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from tunable_solids.config import (
    ConfigError,
    batches,
    scenario_settings,
    stage_settings,
    validate,
)

min_version("9.0")


# `snakemake --report report.html`: this description, and every figure with its caption
# (workflow/report/<figure>.rst, marked in the rule files by `figure_outputs`).
report: "workflow/report/workflow.rst"


# The embedded default, used only when no --configfile is given: a --configfile replaces it
# (Snakemake would otherwise merge the two, mixing their scenarios).
if not any(key in config for key in ("scenarios", "training", "modes", "pruning", "metamaterials")):

    configfile: "config/config.yaml"


try:
    validate(config)
except ConfigError as err:
    raise WorkflowError(str(err))

RESULTS = config.get("results", "results")
GPUS = config.get("cluster", {}).get("gpus_per_job", 0)
# The SLURM plugin turns gpu + gpu_model into --gpus=<model>:<n>; only set with GPUs.
GPU_MODEL = config.get("cluster", {}).get("gpu_model", "") if GPUS else ""
SETTINGS = {name: scenario_settings(config, name) for name in config.get("scenarios", {})}
BATCHES = {name: batches(s) for name, s in SETTINGS.items()}
# Every study's rule file appends the tables and figures it builds (rule all's inputs).
TARGETS = []


wildcard_constraints:
    scenario="|".join(SETTINGS) or "no-scenarios",
    batch=r"\d+",


# One rule file per study (workflow/rules/<study>.smk); common.smk holds the path helpers.
include: "workflow/rules/common.smk"
include: "workflow/rules/packings.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/response.smk"
include: "workflow/rules/modes.smk"
include: "workflow/rules/pruning.smk"
include: "workflow/rules/pruning_surrogate.smk"
include: "workflow/rules/metamaterials.smk"
include: "workflow/rules/metamaterials_bo.smk"
include: "workflow/rules/metamaterials_bo_evaluation.smk"


rule all:
    default_target: True
    input:
        TARGETS,
