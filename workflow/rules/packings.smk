# Stage 1: packings. generate -> minimize -> measure, one job per scenario and seed batch.


rule generate:
    output:
        directory(batch_store("initial")),
    log:
        job_log("generate"),
    params:
        settings=stage_params("generate"),
        seeds=batch_seeds,
    resources:
        gpu=lambda wc: GPUS if SETTINGS[wc.scenario]["potential"] == "spring_network" else 0,
        gpu_model=lambda wc: GPU_MODEL
        if SETTINGS[wc.scenario]["potential"] == "spring_network"
        else "",
    conda:
        CONDA_ENV
    script:
        "../scripts/packings/generate.py"


rule minimize:
    input:
        batch_store("initial"),
    output:
        directory(batch_store("minimized")),
    log:
        job_log("minimize"),
    params:
        settings=stage_params("minimize"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/packings/minimize.py"


rule measure:
    input:
        batch_store("minimized"),
    output:
        directory(batch_store("measured")),
    log:
        job_log("measure"),
    params:
        settings=stage_params("measure"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/packings/measure.py"


rule states_table:
    input:
        all_batch_stores("measured"),
    output:
        f"{RESULTS}/tables/states.csv",
    log:
        f"{RESULTS}/logs/states_table.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/packings/states_table.py"
