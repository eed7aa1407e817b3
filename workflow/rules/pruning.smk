# Network pruning ("A cyclical route linking fundamental mechanism and AI algorithm": spring
# networks tuned to a target Poisson's ratio by removing bonds). Per network entry and seed,
# under results/pruning/<network>/seed<seed>/:
#   network.zarr    pruning_network: the network (distorted triangular, Delaunay, packing)
#   <method>.zarr   pruning_run: one method (anneal | greedy | gradient) toward every target;
#                   annealing checkpoints beside it (.<method>.zarr.checkpoint) and resumes
#   modes.zarr      pruning_modes: mode and bond analysis of the initial, intermediate and
#                   final states of every run
# then results/tables/pruning_{runs,modes}.csv and results/figures/pruning_*.{png,pdf}.
# Stage functions: tunable_solids.studies.pruning (stages, tables, figures).

from tunable_solids.studies.pruning.config import (
    build_settings as pruning_build_settings,
    network_settings as pruning_network_settings,
    run_settings as pruning_run_settings,
    seeds as pruning_seeds,
)

PRUNING = {
    name: pruning_network_settings(config, name)
    for name in config.get("pruning", {}).get("networks", {})
}
PRUNING_DIR = f"{RESULTS}/pruning"
PRUNING_TABLES = {
    "runs": f"{RESULTS}/tables/pruning_runs.csv",
    "modes": f"{RESULTS}/tables/pruning_modes.csv",
}
PRUNING_FIGURES = ["pruning_bonds", "pruning_networks", "pruning_spectra", "pruning_collapse",
                   "pruning_frequencies", "pruning_methods"]
TARGETS += (
    [*PRUNING_TABLES.values()]
    + expand(f"{RESULTS}/figures/{{fig}}.{{ext}}", fig=PRUNING_FIGURES, ext=["png", "pdf"])
    if PRUNING
    else []
)


wildcard_constraints:
    network="|".join(PRUNING) or "no-networks",
    method="anneal|greedy|gradient",
    seed=r"\d+",


rule pruning_network:
    output:
        pruning_store("network"),
    log:
        f"{RESULTS}/logs/pruning/{{network}}/seed{{seed}}/network.log",
    params:
        settings=lambda wc: pruning_build_settings(PRUNING[wc.network]),
        seed=lambda wc: int(wc.seed),
    conda:
        CONDA_ENV
    script:
        "../scripts/pruning/network.py"


rule pruning_run:
    input:
        pruning_store("network"),
    output:
        pruning_store("{method}"),
    log:
        f"{RESULTS}/logs/pruning/{{network}}/seed{{seed}}/{{method}}.log",
    params:
        settings=lambda wc: {
            **pruning_run_settings(PRUNING[wc.network], wc.method),
            "seed": int(wc.seed),
        },
    conda:
        CONDA_ENV
    script:
        "../scripts/pruning/run.py"


rule pruning_modes:
    input:
        network=pruning_store("network"),
        runs=pruning_runs_of,
    output:
        pruning_store("modes"),
    log:
        f"{RESULTS}/logs/pruning/{{network}}/seed{{seed}}/modes.log",
    params:
        settings=lambda wc: {
            "name": wc.network,
            "kind": PRUNING[wc.network]["kind"],
            "seed": int(wc.seed),
            "methods": PRUNING[wc.network]["methods"],
        },
    conda:
        CONDA_ENV
    script:
        "../scripts/pruning/modes.py"


rule pruning_tables:
    input:
        networks=pruning_all("network"),
        runs=pruning_all_runs(),
        modes=pruning_all("modes"),
    output:
        runs=PRUNING_TABLES["runs"],
        modes=PRUNING_TABLES["modes"],
    log:
        f"{RESULTS}/logs/pruning/tables.log",
    params:
        entries=[(n, st["kind"], st["N"], pruning_seeds(st), st["methods"])
                 for n, st in PRUNING.items()],
    conda:
        CONDA_ENV
    script:
        "../scripts/pruning/pruning_tables.py"


rule pruning_figures:
    input:
        runs=PRUNING_TABLES["runs"],
        modes_table=PRUNING_TABLES["modes"],
        networks=pruning_all("network"),
        modes=pruning_all("modes"),
    output:
        figure_outputs(PRUNING_FIGURES, "Network pruning"),
    log:
        f"{RESULTS}/logs/pruning/figures.log",
    params:
        entries=[(n, st["kind"], st["N"], pruning_seeds(st), st["methods"])
                 for n, st in PRUNING.items()],
        network=config.get("pruning", {}).get("figures", {}).get("network"),
        dpi=config.get("pruning", {}).get("figures", {}).get("dpi", 150),
    conda:
        CONDA_ENV
    script:
        "../scripts/pruning/pruning_figures.py"
