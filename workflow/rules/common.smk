# Helpers shared by the rule files.

# Conda environment of every Python rule (used with --software-deployment-method conda).
CONDA_ENV = f"../../envs/{config.get('cluster', {}).get('conda_env', 'cpu')}.yaml"


def store_file(store):
    """What rules name as a store's output and input: its group metadata file
    `<store>.zarr/zarr.json`, not `directory(<store>.zarr)`. Snakemake drops a
    `.snakemake_timestamp` marker into directory outputs, which zarr reports as a foreign
    object whenever the store's members are listed; zarr.json is written with the rest of the
    store (one atomic rename, tunable_solids.store.write_store) and carries the mtime that
    decides reruns. Scripts and loaders accept either path (tunable_solids.store.store_path)."""
    return f"{store}/zarr.json"


def batch_store(stage):
    """Path pattern of a per-batch store of `stage` (generate: initial, ...), as `store_file`."""
    return store_file(f"{RESULTS}/{{scenario}}/batch{{batch}}/{stage}.zarr")


def job_log(stage):
    return f"{RESULTS}/logs/{{scenario}}/batch{{batch}}/{stage}.log"


def stage_params(stage):
    return lambda wc: stage_settings(SETTINGS[wc.scenario], stage)


def batch_seeds(wc):
    return BATCHES[wc.scenario][int(wc.batch)]


def all_batch_stores(stage, scenarios=None):
    names = SETTINGS if scenarios is None else scenarios
    return [
        store_file(f"{RESULTS}/{name}/batch{b}/{stage}.zarr")
        for name in names
        for b in range(len(BATCHES[name]))
    ]


def figure_outputs(names, category, exts=("png", "pdf")):
    """Figure files `results/figures/<name>.<ext>`, marked for `snakemake --report` with the
    caption workflow/report/<name>.rst (relative to the rule files) and labels figure, format.
    (A line may not start with `report`: the Snakefile parser takes it for the directive.)"""
    files = []
    for name in names:
        for ext in exts:
            path = f"{RESULTS}/figures/{name}.{ext}"
            labels = {"figure": name, "format": ext}
            caption = f"../report/{name}.rst"
            files.append(report(path, caption=caption, category=category, labels=labels))
    return files


def run_store(name):
    """Path pattern of a store of one training run (run, validation, ...), as `store_file`."""
    return store_file(f"{RESULTS}/training/{{group}}/{{label}}/{name}.zarr")


def run_of(wc):
    """Settings of the training run named by the wildcards group and label."""
    return TRAINING_RUNS[f"{wc.group}/{wc.label}"]


def modes_store(modes_dir, name):
    """Path pattern of a per-batch store of the bond-operator study, as `store_file`."""
    return store_file(f"{modes_dir}/{{ensemble}}/batch{{batch}}/{name}.zarr")


def modes_spectra(modes_dir, batches):
    """Every spectrum store of the bond-operator study, ensemble by ensemble."""
    return [
        store_file(f"{modes_dir}/{name}/batch{b}/spectrum.zarr")
        for name, ensemble_batches in batches.items()
        for b in range(len(ensemble_batches))
    ]


# The pruning study (PRUNING, PRUNING_DIR, pruning_seeds: workflow/rules/pruning.smk).
def pruning_store(name, network="{network}", seed="{seed}"):
    return store_file(f"{PRUNING_DIR}/{network}/seed{seed}/{name}.zarr")


def pruning_runs_of(wc):
    return [pruning_store(m, wc.network, wc.seed) for m in PRUNING[wc.network]["methods"]]


def pruning_all(name):
    """Every store `name` (network, modes) of the study, entry by entry, seed by seed."""
    return [pruning_store(name, n, s) for n, st in PRUNING.items() for s in pruning_seeds(st)]


def pruning_all_runs():
    return [pruning_store(m, n, s) for n, st in PRUNING.items() for s in pruning_seeds(st)
            for m in st["methods"]]


# The metamaterials study (workflow/rules/metamaterials.smk).
def mm_store(mm_dir, name):
    """Path pattern of a per-job store of the metamaterials study, as `store_file`."""
    return store_file(f"{mm_dir}/{{forcefield}}/{{structure}}/batch{{batch}}/{name}.zarr")


def mm_settings(common, forcefields, wc, stage):
    """Settings of a metamaterials job named by the wildcards forcefield and structure."""
    from tunable_solids.studies.metamaterials import config as mm_config

    s = mm_config.job_settings(common, forcefields[wc.forcefield], wc.structure)
    return mm_config.stage_settings(s, stage)


def bo_job_settings(common, run, round_, ff, structure, stage):
    """Settings of a Bayesian-optimization evaluation job (metamaterials_bo.smk); its force
    field is the round's proposal `ff`, which the script reads from proposals.csv."""
    from tunable_solids.studies.metamaterials import config as mm_config

    placeholder = {"name": f"{run}/round{round_}/ff{ff}"}
    s = mm_config.job_settings(common, placeholder, structure)
    s["measure"]["stress_shift"]["steps"] = 0  # an evaluation needs E and Phi only
    s["on_md_failure"] = "exclude"  # a force field whose MD blows up is a failed evaluation
    return mm_config.stage_settings(s, stage)


def mm_relax_source(mm_dir, forcefields, wc):
    """Input of a metamaterials structure job: for a force field with `relax_from`, the
    structures store of the same structure and seed batch of its source force field."""
    src = forcefields[wc.forcefield].get("relax_from")
    if not src:
        return {}
    return {"source": store_file(f"{mm_dir}/{src}/{wc.structure}/batch{wc.batch}/structures.zarr")}
