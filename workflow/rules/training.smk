# Design by training ("Designing athermal disordered solids with automatic differentiation").
# Run ids are <group>/<label>, see tunable_solids.studies.training.config.training_runs.
# Per run, under results/training/<group>/<label>/:
#   run.zarr                  train (checkpointed, resumable)
#   validation.zarr           validate_training: fresh configurations at the trained parameters
#   validation_<name>.zarr    validate_training_extra: the group's `extra_validations`
#                             (larger N, polydispersity / heterogeneity: robustness)
#   gradient_check.zarr       gradient_check: Fig. 1c (groups with analysis.gradient_check)
#   bonds.zarr                bond_analysis: K_ij, G_ij, Fig. 1f (groups with analysis.bonds)
# then the tables results/tables/training_{runs,validations,success,parameters}.csv and the
# figures results/figures/training_*.{png,pdf} (tunable_solids.studies.training.config.
# training_figure_inputs: which figures the config has data for, and the stores each reads).
# Figures read tables and stores only; the analysis stores are built because a figure needs
# them. Stage functions: tunable_solids.studies.training (stages, analysis, tables, figures).

from tunable_solids.studies.training.config import (
    run_stage_settings,
    training_figure_inputs,
    training_runs,
)

TRAINING_RUNS = training_runs(config)
TRAINING_DIR = f"{RESULTS}/training"
TRAINING_EXTRA = [
    store_file(f"{TRAINING_DIR}/{rid}/validation_{name}.zarr")
    for rid, r in TRAINING_RUNS.items()
    for name in r["extra_validations"]
]
TRAINING_FIGURE_CONFIG = config.get("training", {}).get("figures", {})
TRAINING_TABLES = {
    "runs": f"{RESULTS}/tables/training_runs.csv",
    "validations": f"{RESULTS}/tables/training_validations.csv",
    "success": f"{RESULTS}/tables/training_success.csv",
    "parameters": f"{RESULTS}/tables/training_parameters.csv",
}
# figure -> (stores it reads beyond the tables, whether the config has data for it)
TRAINING_FIGURE_INPUTS = {
    fig: ([f"{TRAINING_DIR}/{s}.zarr" for s in stores], wanted)
    for fig, (stores, wanted) in training_figure_inputs(TRAINING_RUNS).items()
}
TRAINING_FIGURES = [name for name, (_, wanted) in TRAINING_FIGURE_INPUTS.items() if wanted]
TARGETS += (
    [*TRAINING_TABLES.values()]
    + expand(f"{RESULTS}/figures/{{fig}}.{{ext}}", fig=TRAINING_FIGURES, ext=["png", "pdf"])
    if TRAINING_RUNS
    else []
)


wildcard_constraints:
    group=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    label=r"[^/]+",


rule train:
    output:
        run_store("run"),
    log:
        f"{RESULTS}/logs/training/{{group}}/{{label}}/train.log",
    params:
        run=lambda wc: run_stage_settings(run_of(wc), "train"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/training/train.py"


rule validate_training:
    input:
        run_store("run"),
    output:
        run_store("validation"),
    log:
        f"{RESULTS}/logs/training/{{group}}/{{label}}/validate.log",
    params:
        run=lambda wc: run_stage_settings(run_of(wc), "validate"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/training/validate_training.py"


rule validate_training_extra:
    input:
        run_store("run"),
    output:
        run_store("validation_{name}"),
    log:
        f"{RESULTS}/logs/training/{{group}}/{{label}}/validate_{{name}}.log",
    params:
        run=lambda wc: run_stage_settings(run_of(wc), "validate", wc.name),
    wildcard_constraints:
        name=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/training/validate_training.py"


rule gradient_check:
    input:
        run_store("run"),
    output:
        run_store("gradient_check"),
    log:
        f"{RESULTS}/logs/training/{{group}}/{{label}}/gradient_check.log",
    params:
        run=lambda wc: run_stage_settings(run_of(wc), "gradient_check"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/training/gradient_check.py"


rule bond_analysis:
    input:
        run_store("run"),
    output:
        run_store("bonds"),
    log:
        f"{RESULTS}/logs/training/{{group}}/{{label}}/bonds.log",
    params:
        run=lambda wc: run_stage_settings(run_of(wc), "bonds"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/training/bond_analysis.py"


rule training_table:
    input:
        runs=[store_file(f"{TRAINING_DIR}/{rid}/run.zarr") for rid in TRAINING_RUNS],
        validations=[store_file(f"{TRAINING_DIR}/{rid}/validation.zarr") for rid in TRAINING_RUNS],
    output:
        TRAINING_TABLES["runs"],
    log:
        f"{RESULTS}/logs/training_table.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/training/training_table.py"


rule training_analysis_tables:
    input:
        runs_table=TRAINING_TABLES["runs"],
        runs=[store_file(f"{TRAINING_DIR}/{rid}/run.zarr") for rid in TRAINING_RUNS],
        validations=[store_file(f"{TRAINING_DIR}/{rid}/validation.zarr") for rid in TRAINING_RUNS]
        + TRAINING_EXTRA,
    output:
        validations=TRAINING_TABLES["validations"],
        success=TRAINING_TABLES["success"],
        parameters=TRAINING_TABLES["parameters"],
    log:
        f"{RESULTS}/logs/training_analysis_tables.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/training/training_analysis_tables.py"


rule training_figures:
    input:
        **TRAINING_TABLES,
        stores=sorted(
            {store_file(p) for fig in TRAINING_FIGURES for p in TRAINING_FIGURE_INPUTS[fig][0]}
        ),
    output:
        figure_outputs(TRAINING_FIGURES, "Design by training"),
    log:
        f"{RESULTS}/logs/training_figures.log",
    params:
        inputs={fig: TRAINING_FIGURE_INPUTS[fig][0] for fig in TRAINING_FIGURES},
        dpi=TRAINING_FIGURE_CONFIG.get("dpi", 150),
        max_traces=TRAINING_FIGURE_CONFIG.get("max_traces", 40),
    conda:
        CONDA_ENV
    script:
        "../scripts/training/training_figures.py"
