# Design by training: one job per training run (checkpointed, resumable), one per validation.
# Run ids are <group>/<label>, see tunable_solids.config.training_runs.


rule train:
    output:
        directory(f"{RESULTS}/training/{{group}}/{{label}}/run.zarr"),
    log:
        f"{RESULTS}/logs/training/{{group}}/{{label}}/train.log",
    params:
        run=lambda wc: run_stage_settings(run_of(wc), "train"),
    resources:
        gpu=GPUS,
    conda:
        CONDA_ENV
    script:
        "../scripts/train.py"


rule validate_training:
    input:
        f"{RESULTS}/training/{{group}}/{{label}}/run.zarr",
    output:
        directory(f"{RESULTS}/training/{{group}}/{{label}}/validation.zarr"),
    log:
        f"{RESULTS}/logs/training/{{group}}/{{label}}/validate.log",
    params:
        run=lambda wc: run_of(wc),
    resources:
        gpu=GPUS,
    conda:
        CONDA_ENV
    script:
        "../scripts/validate_training.py"


rule training_table:
    input:
        runs=[f"{RESULTS}/training/{rid}/run.zarr" for rid in TRAINING_RUNS],
        validations=[f"{RESULTS}/training/{rid}/validation.zarr" for rid in TRAINING_RUNS],
    output:
        f"{RESULTS}/tables/training_runs.csv",
    log:
        f"{RESULTS}/logs/training_table.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/training_table.py"
