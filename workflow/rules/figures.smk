# Figures: read stores and tables only, never recompute physics.

OVERVIEW = config.get("figures", {}).get("overview", {})
OVERVIEW_SCENARIO = OVERVIEW.get("scenario", next(iter(SETTINGS), None))


rule overview_figure:
    input:
        table=f"{RESULTS}/tables/states.csv",
        store=f"{RESULTS}/{OVERVIEW_SCENARIO}/batch0/measured.zarr",
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
