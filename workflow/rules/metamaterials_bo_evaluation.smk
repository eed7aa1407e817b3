# How the Bayesian optimization (metamaterials_bo.smk, included before this file) evaluates a
# proposal by MD: the disordered networks of the proposed force field at every
# `metamaterials.phi0` and seed batch, made and measured by the scripts of metamaterials.smk
# (also included before), then the fit E ~ Phi^n in round<r>/ff<i>/evaluation.csv. Kept apart
# from the loop so the loop can run on another evaluation (tests/metamaterials/test_bo_loop.py).

# What one evaluation measures: the disordered networks at every Phi_0, every seed batch.
BO_STRUCTURES = mm_config.structures_of(config, ["disordered"]) if BO_RUNS else []


rule metamaterials_bo_structure:
    input:
        proposals=BO_PROPOSALS,
    output:
        store_file(f"{BO_FF_DIR}/{{structure}}/batch{{batch}}/structures.zarr"),
    log:
        f"{RESULTS}/logs/metamaterials/bo/{{run}}/round{{round}}/ff{{ff}}/{{structure}}/batch{{batch}}/structure.log",
    params:
        settings=lambda wc: bo_job_settings(MM_COMMON, wc.run, wc.round, wc.ff, wc.structure, "structure"),
        seeds=lambda wc: MM_BATCHES[int(wc.batch)],
        proposal=lambda wc: int(wc.ff),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/metamaterials/structure.py"


rule metamaterials_bo_measure:
    input:
        structures=store_file(f"{BO_FF_DIR}/{{structure}}/batch{{batch}}/structures.zarr"),
        proposals=BO_PROPOSALS,
    output:
        store_file(f"{BO_FF_DIR}/{{structure}}/batch{{batch}}/measure.zarr"),
    log:
        f"{RESULTS}/logs/metamaterials/bo/{{run}}/round{{round}}/ff{{ff}}/{{structure}}/batch{{batch}}/measure.log",
    params:
        settings=lambda wc: bo_job_settings(MM_COMMON, wc.run, wc.round, wc.ff, wc.structure, "measure"),
        proposal=lambda wc: int(wc.ff),
    resources:
        gpu=GPUS,
        gpu_model=GPU_MODEL,
    conda:
        CONDA_ENV
    script:
        "../scripts/metamaterials/measure.py"


rule metamaterials_bo_evaluate:
    input:
        measures=lambda wc: [
            store_file(
                f"{BO_DIR}/{wc.run}/round{wc.round}/ff{wc.ff}/{s}/batch{b}/measure.zarr"
            )
            for s in BO_STRUCTURES
            for b in range(len(MM_BATCHES))
        ],
        proposals=BO_PROPOSALS,
    output:
        f"{BO_FF_DIR}/evaluation.csv",
    log:
        f"{RESULTS}/logs/metamaterials/bo/{{run}}/round{{round}}/ff{{ff}}/evaluate.log",
    params:
        jobs=lambda wc: [
            bo_job_settings(MM_COMMON, wc.run, wc.round, wc.ff, s, "measure")
            for s in BO_STRUCTURES
            for b in range(len(MM_BATCHES))
        ],
        proposal=lambda wc: int(wc.ff),
    conda:
        CONDA_ENV
    script:
        "../scripts/metamaterials/bo_evaluate.py"
