# Independent response ("Fully independent response in disordered solids"): for every
# scenario with a `response:` block, per seed batch
#   minimized.zarr -> jacobian.zarr (AD Jacobians, SVD, rank)
#                  -> jacobian_check.zarr (finite differences; batches holding fd_check seeds)
#                  -> sweeps.zarr (linear-regime sweeps, one-step design; sweep/design batches)
# then the tables and figures of the study. Figures read tables and stores only. Stage
# functions: tunable_solids.studies.response (stages, tables, figures).

from tunable_solids.studies.response.stages import batches_with

RESPONSE_SCENARIOS = [name for name, s in SETTINGS.items() if "response" in s]
RESPONSE_FIGURES = [
    "response_rank",
    "response_singular_values",
    "response_linear_regime",
    "response_tunability",
]
RESPONSE_TABLES = {
    "svd": f"{RESULTS}/tables/jacobian_svd.csv",
    "singular_values": f"{RESULTS}/tables/singular_values.csv",
    "linear_regime": f"{RESULTS}/tables/linear_regime.csv",
    "inverse_design": f"{RESULTS}/tables/inverse_design.csv",
}
RESPONSE_FIGURE_CONFIG = config.get("figures", {}).get("response", {})


RESPONSE_JACOBIANS = [
    store_file(f"{RESULTS}/{name}/batch{b}/jacobian.zarr")
    for name in RESPONSE_SCENARIOS
    for b in range(len(BATCHES[name]))
]
RESPONSE_CHECKS = [
    store_file(f"{RESULTS}/{name}/batch{b}/jacobian_check.zarr")
    for name in RESPONSE_SCENARIOS
    for b in batches_with(SETTINGS[name], BATCHES[name], "jacobian_check")
]
RESPONSE_SWEEPS = [
    store_file(f"{RESULTS}/{name}/batch{b}/sweeps.zarr")
    for name in RESPONSE_SCENARIOS
    for b in batches_with(SETTINGS[name], BATCHES[name], "sweeps")
]
TARGETS += (
    [*RESPONSE_TABLES.values()]
    + expand(f"{RESULTS}/figures/{{fig}}.{{ext}}", fig=RESPONSE_FIGURES, ext=["png", "pdf"])
    if RESPONSE_SCENARIOS
    else []
)


rule jacobian:
    input:
        batch_store("minimized"),
    output:
        batch_store("jacobian"),
    log:
        job_log("jacobian"),
    params:
        settings=stage_params("jacobian"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/response/jacobian.py"


rule jacobian_check:
    input:
        minimized=batch_store("minimized"),
        jacobian=batch_store("jacobian"),
    output:
        batch_store("jacobian_check"),
    log:
        job_log("jacobian_check"),
    params:
        settings=stage_params("jacobian_check"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/response/jacobian_check.py"


rule sweeps:
    input:
        minimized=batch_store("minimized"),
        jacobian=batch_store("jacobian"),
    output:
        batch_store("sweeps"),
    log:
        job_log("sweeps"),
    params:
        settings=stage_params("sweeps"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/response/sweeps.py"


rule response_tables:
    input:
        jacobian=RESPONSE_JACOBIANS,
        check=RESPONSE_CHECKS,
        sweeps=RESPONSE_SWEEPS,
    output:
        **RESPONSE_TABLES,
    log:
        f"{RESULTS}/logs/response_tables.log",
    params:
        reference={
            name: SETTINGS[name]["response"].get("reference_n_theta")
            for name in RESPONSE_SCENARIOS
        },
    conda:
        CONDA_ENV
    script:
        "../scripts/response/response_tables.py"


rule response_figures:
    input:
        **RESPONSE_TABLES,
        sweeps=RESPONSE_SWEEPS,
    output:
        figure_outputs(RESPONSE_FIGURES, "Independent response"),
    log:
        f"{RESULTS}/logs/response_figures.log",
    params:
        sweep_scenario=RESPONSE_FIGURE_CONFIG.get("sweep_scenario"),
        dpi=RESPONSE_FIGURE_CONFIG.get("dpi", 150),
    conda:
        CONDA_ENV
    script:
        "../scripts/response/response_figures.py"
