# Inverse design of athermal disordered solids: workflow entry point.
# The config is validated (schema + physics rules) before any job is planned.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from tunable_solids.config import ConfigError, batches, scenario_settings, stage_settings, validate

min_version("9.0")


# The embedded default, used only when no --configfile is given: a --configfile replaces it
# (Snakemake would otherwise merge the two, mixing their scenarios).
if "scenarios" not in config:

    configfile: "config/config.yaml"


try:
    validate(config)
except ConfigError as err:
    raise WorkflowError(str(err))

RESULTS = config.get("results", "results")
GPUS = config.get("cluster", {}).get("gpus_per_job", 0)
SETTINGS = {name: scenario_settings(config, name) for name in config["scenarios"]}
BATCHES = {name: batches(s) for name, s in SETTINGS.items()}


wildcard_constraints:
    scenario="|".join(SETTINGS),
    batch=r"\d+",


include: "workflow/rules/common.smk"
include: "workflow/rules/packings.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/tables/states.csv",
        expand(f"{RESULTS}/figures/overview.{{ext}}", ext=["png", "pdf"]),
