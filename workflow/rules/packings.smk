# Packings: generate -> minimize -> measure, one job per scenario and seed batch, then the
# states table and the overview figure (figures read stores and tables only, never recompute
# physics). Stage functions: tunable_solids.studies.packings (stages, tables, figures).

OVERVIEW = config.get("figures", {}).get("overview", {})
OVERVIEW_SCENARIO = OVERVIEW.get("scenario", next(iter(SETTINGS), None))
TARGETS += (
    [f"{RESULTS}/tables/states.csv"]
    + expand(f"{RESULTS}/figures/overview.{{ext}}", ext=["png", "pdf"])
    if SETTINGS
    else []
)


rule generate:
    output:
        batch_store("initial"),
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
        batch_store("minimized"),
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
        batch_store("measured"),
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


rule overview_figure:
    input:
        table=f"{RESULTS}/tables/states.csv",
        store=store_file(f"{RESULTS}/{OVERVIEW_SCENARIO}/batch0/measured.zarr"),
    output:
        figure_outputs(["overview"], "Packings"),
    log:
        f"{RESULTS}/logs/overview_figure.log",
    params:
        dpi=OVERVIEW.get("dpi", 150),
    conda:
        CONDA_ENV
    script:
        "../scripts/packings/overview_figure.py"
