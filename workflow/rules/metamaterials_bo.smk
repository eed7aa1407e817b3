# Bayesian optimization of the stiffness-density exponent n over Stillinger-Weber force fields
# (metamaterials study, paper Fig. 5 and Eq. 8), config block `metamaterials.bo`. The loop is a
# static DAG (every round's size is known in advance), under results/metamaterials/bo/<run>/:
#   round<r>/proposals.csv          metamaterials_propose: round 0 = initial design; round r
#                                   from the evaluations of rounds < r (GP + EI, q per round)
#   round<r>/ff<i>/evaluation.csv   one force field's melt-quench, moduli and n (the evaluation
#                                   rules of metamaterials.smk; one row: lambda_over_A, gamma,
#                                   theta0, n, n_err, converged)
#   evaluations.csv                 metamaterials_bo_gather: proposals joined to evaluations
# then results/tables/metamaterials_optimization.csv and results/figures/metamaterials_bo_*.
# Runs: bo-s<k> per optimizer seed, and at the same budget random-s<k> (random search) and
# lhs-s<k> (a Latin hypercube of the whole budget). An interrupted optimization resumes where
# it stopped: finished rounds are files Snakemake keeps; proposals are deterministic.
# Functions: tunable_solids.studies.metamaterials.optimize (and figures_bo).
#
# The evaluation of proposal i of a round (rules metamaterials_bo_structure, _bo_measure,
# _bo_evaluate of metamaterials_bo_evaluation.smk) runs the scripts of metamaterials.smk on that row of proposals.csv: the
# disordered networks at every `metamaterials.phi0` and seed batch, under
#   round<r>/ff<i>/disordered-phi<Phi_0>/batch<b>/{structures,measure}.zarr
# then the fit E ~ Phi^n over them in round<r>/ff<i>/evaluation.csv (one row: lambda_over_A,
# gamma, theta0, n, n_err, E_50, converged, coordination, S2, n_densities, samples, excluded).

from tunable_solids.studies.metamaterials.optimize import (
    bo_runs,
    bo_settings,
    evaluation_keys as bo_evaluation_keys,
    round_settings as bo_round_settings,
)

BO = (
    bo_settings(config["metamaterials"]["bo"])
    if config.get("metamaterials", {}).get("bo") is not None
    else None
)
BO_RUNS = bo_runs(BO) if BO else {}
BO_DIR = f"{RESULTS}/metamaterials/bo"
BO_EVALUATION = f"{BO_DIR}/{{run}}/round{{r}}/ff{{i}}/evaluation.csv"
BO_FF_DIR = f"{BO_DIR}/{{run}}/round{{round}}/ff{{ff}}"
BO_PROPOSALS = f"{BO_DIR}/{{run}}/round{{round}}/proposals.csv"
BO_TABLE = f"{RESULTS}/tables/metamaterials_optimization.csv"
BO_FIGURES = ["metamaterials_bo_trace", "metamaterials_bo_maps", "metamaterials_bo_gp_check"]
TARGETS += (
    [BO_TABLE] + expand(f"{RESULTS}/figures/{{fig}}.{{ext}}", fig=BO_FIGURES, ext=["png", "pdf"])
    if BO_RUNS
    else []
)


wildcard_constraints:
    run="|".join(BO_RUNS) or "no-runs",
    round=r"\d+",
    ff=r"\d+",


rule metamaterials_propose:
    input:
        lambda wc: [
            BO_EVALUATION.format(run=wc.run, r=r, i=i)
            for r, i in bo_evaluation_keys(BO_RUNS[wc.run], int(wc.round))
        ],
    output:
        f"{BO_DIR}/{{run}}/round{{round}}/proposals.csv",
    log:
        f"{RESULTS}/logs/metamaterials/bo/{{run}}/round{{round}}/propose.log",
    params:
        settings=lambda wc: bo_round_settings(BO, BO_RUNS[wc.run], int(wc.round)),
    conda:
        CONDA_ENV
    script:
        "../scripts/metamaterials/propose.py"


rule metamaterials_bo_gather:
    input:
        proposals=lambda wc: [
            f"{BO_DIR}/{wc.run}/round{r}/proposals.csv"
            for r in range(len(BO_RUNS[wc.run]["sizes"]))
        ],
        evaluations=lambda wc: [
            BO_EVALUATION.format(run=wc.run, r=r, i=i)
            for r, i in bo_evaluation_keys(BO_RUNS[wc.run])
        ],
    output:
        f"{BO_DIR}/{{run}}/evaluations.csv",
    log:
        f"{RESULTS}/logs/metamaterials/bo/{{run}}/gather.log",
    params:
        evaluation_keys=lambda wc: bo_evaluation_keys(BO_RUNS[wc.run]),
    conda:
        CONDA_ENV
    script:
        "../scripts/metamaterials/bo_gather.py"


rule metamaterials_bo_table:
    input:
        [f"{BO_DIR}/{run}/evaluations.csv" for run in BO_RUNS],
    output:
        BO_TABLE,
    log:
        f"{RESULTS}/logs/metamaterials/bo/table.log",
    params:
        runs=list(BO_RUNS),
        settings=BO,
    conda:
        CONDA_ENV
    script:
        "../scripts/metamaterials/bo_table.py"


rule metamaterials_bo_figures:
    input:
        BO_TABLE,
    output:
        figure_outputs(BO_FIGURES, "Metamaterials: Bayesian optimization"),
    log:
        f"{RESULTS}/logs/metamaterials/bo/figures.log",
    params:
        settings=BO,
        dpi=(BO or {}).get("figures", {}).get("dpi", 150),
    conda:
        CONDA_ENV
    script:
        "../scripts/metamaterials/bo_figures.py"
