# Stillinger-Weber metamaterials ("De Novo Atomistic Discovery of Disordered Mechanical
# Metamaterials by Machine Learning"). Per named force field, structure and seed batch, under
# results/metamaterials/<forcefield>/<structure>/batch<b>/:
#   structures.zarr  metamaterials_structure: melt-quenched network (disordered-phi<Phi_0>),
#                    relaxed vacancy crystal (<lattice>-vac<fraction>), or (a force field
#                    with relax_from) another force field's network relaxed; minimized;
#                    checkpointed
#   measure.zarr     metamaterials_measure: elastic tensor (Born - non-affine), E, B, G, nu,
#                    Phi, coordination, g(r), S_2, stress shifts under uniaxial tension
# then results/tables/metamaterials_{forcefields,samples,stress_shift}.csv and the figures.
# Stage functions: tunable_solids.studies.metamaterials (stages, tables, figures).
#
# The BO loop reuses workflow/scripts/metamaterials/{structure,measure}.py: a rule whose
# params carry `forcefield` (a dict lambda_over_A, gamma, theta0, name) or whose input has
# `proposals` (a CSV) with params `proposal` (its row index) runs the same jobs; see the
# docstring of workflow/scripts/metamaterials/structure.py.

from tunable_solids.studies.metamaterials import config as mm_config

MM = mm_config.block(config)
MM_COMMON = mm_config.common_settings(config) if MM else {}
MM_BATCHES = mm_config.seed_batches(MM_COMMON) if MM else []
MM_FF = {name: mm_config.forcefield_settings(config, name) for name in MM.get("forcefields", {})}
MM_STRUCTURES = {name: mm_config.forcefield_structures(config, name) for name in MM_FF}
MM_DIR = f"{RESULTS}/metamaterials"
MM_TABLES = {
    "forcefields": f"{RESULTS}/tables/metamaterials_forcefields.csv",
    "samples": f"{RESULTS}/tables/metamaterials_samples.csv",
    "stress_shift": f"{RESULTS}/tables/metamaterials_stress_shift.csv",
}
MM_FIGURES = [
    "metamaterials_scaling",
    "metamaterials_disorder",
    "metamaterials_relaxed",
    "metamaterials_stress_shift",
]
MM_JOBS = [
    (ff, s, b) for ff, structures in MM_STRUCTURES.items() for s in structures
    for b in range(len(MM_BATCHES))
]
TARGETS += (
    [*MM_TABLES.values()]
    + expand(f"{RESULTS}/figures/{{fig}}.{{ext}}", fig=MM_FIGURES, ext=["png", "pdf"])
    if MM
    else []
)


wildcard_constraints:
    forcefield="|".join(MM_FF) or "no-forcefields",
    structure=r"(disordered-phi|fcc-vac|diamond-vac|hcp-vac)[0-9.]+",


rule metamaterials_structure:
    input:
        unpack(lambda wc: mm_relax_source(MM_DIR, MM_FF, wc)),
    output:
        mm_store(MM_DIR, "structures"),
    log:
        f"{RESULTS}/logs/metamaterials/{{forcefield}}/{{structure}}/batch{{batch}}/structure.log",
    params:
        settings=lambda wc: mm_settings(MM_COMMON, MM_FF, wc, "structure"),
        seeds=lambda wc: MM_BATCHES[int(wc.batch)],
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/metamaterials/structure.py"


rule metamaterials_measure:
    input:
        mm_store(MM_DIR, "structures"),
    output:
        mm_store(MM_DIR, "measure"),
    log:
        f"{RESULTS}/logs/metamaterials/{{forcefield}}/{{structure}}/batch{{batch}}/measure.log",
    params:
        settings=lambda wc: mm_settings(MM_COMMON, MM_FF, wc, "measure"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/metamaterials/measure.py"


rule metamaterials_tables:
    input:
        [
            store_file(f"{MM_DIR}/{ff}/{s}/batch{b}/measure.zarr")
            for ff, s, b in MM_JOBS
        ],
    output:
        **MM_TABLES,
    log:
        f"{RESULTS}/logs/metamaterials/tables.log",
    params:
        jobs=[
            mm_config.stage_settings(
                mm_config.job_settings(MM_COMMON, MM_FF[ff], s), "measure"
            )
            for ff, s, b in MM_JOBS
        ],
    conda:
        CONDA_ENV
    script:
        "../scripts/metamaterials/mm_tables.py"


rule metamaterials_figures:
    input:
        **MM_TABLES,
    output:
        figure_outputs(MM_FIGURES, "Metamaterials"),
    log:
        f"{RESULTS}/logs/metamaterials/figures.log",
    params:
        dpi=MM.get("figures", {}).get("dpi", 150),
    conda:
        CONDA_ENV
    script:
        "../scripts/metamaterials/mm_figures.py"
