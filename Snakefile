# Inverse design of athermal disordered solids: workflow entry point.
# The config is validated (schema + physics rules) before any job is planned.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from tunable_solids.config import (
    ConfigError,
    batches,
    run_stage_settings,
    scenario_settings,
    stage_settings,
    training_runs,
    validate,
)

min_version("9.0")


# `snakemake --report report.html`: this description, and every figure with its caption
# (workflow/report/<figure>.rst, marked in the rule files by `figure_outputs`).
report: "workflow/report/workflow.rst"


# The embedded default, used only when no --configfile is given: a --configfile replaces it
# (Snakemake would otherwise merge the two, mixing their scenarios).
if "scenarios" not in config and "training" not in config:

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
TRAINING_RUNS = training_runs(config)


wildcard_constraints:
    scenario="|".join(SETTINGS) or "no-scenarios",
    batch=r"\d+",
    group=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    label=r"[^/]+",


include: "workflow/rules/common.smk"
include: "workflow/rules/packings.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/response.smk"


rule all:
    default_target: True
    input:
        [f"{RESULTS}/tables/states.csv"] if SETTINGS else [],
        expand(f"{RESULTS}/figures/overview.{{ext}}", ext=["png", "pdf"]) if SETTINGS else [],
        [f"{RESULTS}/tables/training_runs.csv"] if TRAINING_RUNS else [],
        TRAINING_TARGETS,
        RESPONSE_TARGETS,
