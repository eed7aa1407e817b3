# Helpers shared by the rule files.

# Conda environment of every Python rule (used with --software-deployment-method conda).
CONDA_ENV = f"../../envs/{config.get('cluster', {}).get('conda_env', 'cpu')}.yaml"


def batch_store(stage):
    """Path pattern of a per-batch store of `stage` (generate: initial, ...)."""
    return f"{RESULTS}/{{scenario}}/batch{{batch}}/{stage}.zarr"


def job_log(stage):
    return f"{RESULTS}/logs/{{scenario}}/batch{{batch}}/{stage}.log"


def stage_params(stage):
    return lambda wc: stage_settings(SETTINGS[wc.scenario], stage)


def batch_seeds(wc):
    return BATCHES[wc.scenario][int(wc.batch)]


def all_batch_stores(stage, scenarios=None):
    names = SETTINGS if scenarios is None else scenarios
    return [
        f"{RESULTS}/{name}/batch{b}/{stage}.zarr"
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


def run_of(wc):
    """Settings of the training run named by the wildcards group and label."""
    return TRAINING_RUNS[f"{wc.group}/{wc.label}"]
