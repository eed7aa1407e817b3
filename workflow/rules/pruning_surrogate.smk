# The CNN surrogate of the pruning study (Zhu et al. 2024, Sec. II D): under
# results/pruning/surrogate/:
#   data/batch<b>.zarr  pruning_surrogate_dataset: distorted lattices (some annealed) with
#                       exact Poisson's ratios
#   <model>.zarr        pruning_surrogate_train: one job per model (matrix: AlexNet-style CNN
#                       on the dynamical matrix; image: small CNN on rendered networks),
#                       checkpointed beside the store and resumed after a kill
#   timing.zarr         pruning_surrogate_timing: prediction vs exact solve time vs N
#   screening.zarr      pruning_surrogate_screening: surrogate-screened vs plain annealing
# then results/tables/pruning_surrogate*.csv and results/figures/pruning_surrogate_*.
# Stage functions: tunable_solids.studies.pruning.surrogate_stages.

from tunable_solids.studies.pruning.surrogate_config import (
    data_batches as surrogate_data_batches,
    stage_settings as surrogate_stage_settings,
    surrogate_settings,
)

SURROGATE = surrogate_settings(config)
SURROGATE_DIR = f"{RESULTS}/pruning/surrogate"
SURROGATE_BATCHES = surrogate_data_batches(SURROGATE) if SURROGATE else []
SURROGATE_MODELS = list(SURROGATE["models"]) if SURROGATE else []
SURROGATE_TABLES = {
    "metrics": f"{RESULTS}/tables/pruning_surrogate.csv",
    "timing": f"{RESULTS}/tables/pruning_surrogate_timing.csv",
}
if SURROGATE and "screening" in SURROGATE:
    SURROGATE_TABLES["screening"] = f"{RESULTS}/tables/pruning_surrogate_screening.csv"
SURROGATE_FIGURES = [
    "pruning_surrogate_loss",
    "pruning_surrogate_parity",
    "pruning_surrogate_timing",
]
TARGETS += (
    [*SURROGATE_TABLES.values()]
    + expand(f"{RESULTS}/figures/{{fig}}.{{ext}}", fig=SURROGATE_FIGURES, ext=["png", "pdf"])
    if SURROGATE
    else []
)


SURROGATE_DATA_STORES = [
    store_file(f"{SURROGATE_DIR}/data/batch{b}.zarr") for b in range(len(SURROGATE_BATCHES))
]
SURROGATE_MODEL_STORES = [store_file(f"{SURROGATE_DIR}/{m}.zarr") for m in SURROGATE_MODELS]


wildcard_constraints:
    surrogate_model="|".join(SURROGATE_MODELS) or "no-models",


rule pruning_surrogate_dataset:
    output:
        store_file(f"{SURROGATE_DIR}/data/batch{{batch}}.zarr"),
    log:
        f"{RESULTS}/logs/pruning/surrogate/data/batch{{batch}}.log",
    params:
        settings=lambda wc: surrogate_stage_settings(SURROGATE, "dataset"),
        indices=lambda wc: SURROGATE_BATCHES[int(wc.batch)],
    conda:
        CONDA_ENV
    script:
        "../scripts/pruning/surrogate_dataset.py"


rule pruning_surrogate_train:
    input:
        SURROGATE_DATA_STORES,
    output:
        store_file(f"{SURROGATE_DIR}/{{surrogate_model}}.zarr"),
    log:
        f"{RESULTS}/logs/pruning/surrogate/train_{{surrogate_model}}.log",
    params:
        settings=lambda wc: surrogate_stage_settings(SURROGATE, "train", wc.surrogate_model),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/pruning/surrogate_train.py"


rule pruning_surrogate_timing:
    input:
        SURROGATE_MODEL_STORES,
    output:
        store_file(f"{SURROGATE_DIR}/timing.zarr"),
    log:
        f"{RESULTS}/logs/pruning/surrogate/timing.log",
    params:
        settings=lambda wc: surrogate_stage_settings(SURROGATE, "timing"),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/pruning/surrogate_timing.py"


rule pruning_surrogate_screening:
    input:
        store_file(f"{SURROGATE_DIR}/matrix.zarr"),
    output:
        store_file(f"{SURROGATE_DIR}/screening.zarr"),
    log:
        f"{RESULTS}/logs/pruning/surrogate/screening.log",
    params:
        settings=lambda wc: surrogate_stage_settings(SURROGATE, "screening"),
    conda:
        CONDA_ENV
    script:
        "../scripts/pruning/surrogate_screening.py"


rule pruning_surrogate_tables:
    input:
        models=SURROGATE_MODEL_STORES,
        timing=store_file(f"{SURROGATE_DIR}/timing.zarr"),
        screening=(
            [store_file(f"{SURROGATE_DIR}/screening.zarr")]
            if "screening" in SURROGATE_TABLES
            else []
        ),
    output:
        **SURROGATE_TABLES,
    log:
        f"{RESULTS}/logs/pruning/surrogate/tables.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/pruning/surrogate_tables.py"


rule pruning_surrogate_figures:
    input:
        models=SURROGATE_MODEL_STORES,
        timing=SURROGATE_TABLES["timing"],
    output:
        figure_outputs(SURROGATE_FIGURES, "Network pruning: CNN surrogate"),
    log:
        f"{RESULTS}/logs/pruning/surrogate/figures.log",
    params:
        dpi=(SURROGATE or {}).get("figures", {}).get("dpi", 150),
    conda:
        CONDA_ENV
    script:
        "../scripts/pruning/surrogate_figures.py"
