# The bond-space operator of glasses ("Bond-space operator disentangles quasi-localized and
# phononic modes in structural glasses"). Per ensemble and seed batch, under
# results/modes/<ensemble>/batch<b>/:
#   glasses.zarr    modes_prepare: inherent states (T_p = inf: quench of random positions;
#                   harmonic spheres at their target pressure)
#   spectrum.zarr   modes_analyse: spectrum of A, e(F), Hessian frequencies, G, top modes with
#                   pseudo-harmonic partners, overlaps and decay profiles
# then results/tables/modes_{exponents,samples}.csv and results/figures/modes_*.{png,pdf}.
# Stage functions: tunable_solids.studies.modes (stages, tables, figures).

from tunable_solids.studies.modes.config import (
    ensemble_batches,
    ensemble_settings,
    stage_settings as modes_stage_settings,
)

MODES = {
    name: ensemble_settings(config, name)
    for name in config.get("modes", {}).get("ensembles", {})
}
MODES_BATCHES = {name: ensemble_batches(s) for name, s in MODES.items()}
MODES_DIR = f"{RESULTS}/modes"
MODES_TABLES = {
    "exponents": f"{RESULTS}/tables/modes_exponents.csv",
    "samples": f"{RESULTS}/tables/modes_samples.csv",
}
MODES_FIGURES = ["modes_spectra", "modes_structure", "modes_example", "modes_annealing"]
TARGETS += (
    [*MODES_TABLES.values()]
    + expand(f"{RESULTS}/figures/{{fig}}.{{ext}}", fig=MODES_FIGURES, ext=["png", "pdf"])
    if MODES
    else []
)


wildcard_constraints:
    ensemble="|".join(MODES) or "no-ensembles",


rule modes_prepare:
    output:
        modes_store(MODES_DIR, "glasses"),
    log:
        f"{RESULTS}/logs/modes/{{ensemble}}/batch{{batch}}/prepare.log",
    params:
        settings=lambda wc: modes_stage_settings(MODES[wc.ensemble], "prepare"),
        seeds=lambda wc: MODES_BATCHES[wc.ensemble][int(wc.batch)],
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/modes/prepare.py"


rule modes_analyse:
    input:
        modes_store(MODES_DIR, "glasses"),
    output:
        modes_store(MODES_DIR, "spectrum"),
    log:
        f"{RESULTS}/logs/modes/{{ensemble}}/batch{{batch}}/analyse.log",
    params:
        settings=lambda wc: modes_stage_settings(MODES[wc.ensemble], "analyse"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/modes/analyse.py"


rule modes_tables:
    input:
        modes_spectra(MODES_DIR, MODES_BATCHES),
    output:
        exponents=MODES_TABLES["exponents"],
        samples=MODES_TABLES["samples"],
    log:
        f"{RESULTS}/logs/modes/tables.log",
    params:
        ensembles=[
            (modes_stage_settings(s, "tables"), len(MODES_BATCHES[n])) for n, s in MODES.items()
        ],
    conda:
        CONDA_ENV
    script:
        "../scripts/modes/modes_tables.py"


rule modes_figures:
    input:
        spectra=modes_spectra(MODES_DIR, MODES_BATCHES),
        exponents=MODES_TABLES["exponents"],
    output:
        figure_outputs(MODES_FIGURES, "Bond-space operator"),
    log:
        f"{RESULTS}/logs/modes/figures.log",
    params:
        ensembles=[
            (modes_stage_settings(s, "tables"), len(MODES_BATCHES[n])) for n, s in MODES.items()
        ],
        dpi=config.get("modes", {}).get("figures", {}).get("dpi", 150),
    conda:
        CONDA_ENV
    script:
        "../scripts/modes/modes_figures.py"
