"""Snakemake adapter: the figures of the training study (results/figures/training_*)."""

import logging
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from tunable_solids import jobs
from tunable_solids.studies.training import figures as F
from tunable_solids.studies.training import tables as loaders

jobs.configure_logging(snakemake.log[0])
log = logging.getLogger("training_figures")
tables = {
    k: pd.read_csv(snakemake.input[k]) for k in ("runs", "validations", "success", "parameters")
}
inputs = snakemake.params.inputs
max_traces = snakemake.params.max_traces


def histories(fig):
    return [loaders.training_history(p) for p in inputs[fig]]


def analyses(fig):
    return [loaders.training_analysis(p) for p in inputs[fig]]


draw = {
    "training_gradient": lambda f: F.gradient(analyses(f)),
    "training_bonds": lambda f: F.bonds(analyses(f)),
    "training_individual": lambda f: F.individual(histories(f), max_traces),
    "training_success": lambda f: F.success(tables["success"]),
    "training_multi": lambda f: F.multi(tables["runs"], analyses(f)),
    "training_ensemble": lambda f: F.ensemble(
        histories(f), tables["runs"], tables["validations"], tables["parameters"], max_traces
    ),
    "training_targets": lambda f: F.targets(tables["runs"]),
    "training_joint": lambda f: F.joint(histories(f), tables["runs"]),
    "training_robustness": lambda f: F.robustness(tables["validations"]),
    "training_3d": lambda f: F.three_d(histories(f), tables["runs"]),
}
outputs = {}
for path in snakemake.output:
    outputs.setdefault(Path(path).stem, []).append(path)
for name, paths in outputs.items():
    fig = draw[name](name)
    for path in paths:
        fig.savefig(path, dpi=snakemake.params.dpi)
        log.info("wrote %s", path)
    plt.close(fig)
