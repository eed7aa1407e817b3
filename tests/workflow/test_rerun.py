"""What reruns when something changes, and `snakemake --report` with a caption per figure.

One finished workflow for the whole module: Snakefile, workflow/, config/ and envs/ copied into
a temporary directory and run once on a tiny config (two 2D soft-sphere scenarios, one seed
each, the overview figure). Each case then makes one change (a variant config file, or an edit
of the copied figure script that is undone afterwards, mtime included), dry-runs, and compares
the planned jobs, as (rule, output) pairs, with exactly the expected set:

- nothing changed: nothing planned;
- a figure's script or style param (figures.overview.dpi): that figure only;
- a minimization param: minimize, measure, table and figure, never generate; a global one
  for every scenario, a scenario's own override for that scenario only;
- a scenario's definition (N): that scenario from generate on, the others untouched;
- more seeds for a scenario: only the new batch (existing batches are not recomputed).

Snakemake's triggers: script edits by mtime, settings by `params` (each stage receives only
its scenario's relevant settings, `config.stage_settings`), downstream jobs by their inputs.
The report test reuses the finished workflow. The repository itself is never modified.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tunable_solids.studies.training.config import training_figure_inputs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REPORT_DIR = ROOT / "workflow" / "report"

BASE = {
    "results": "results",
    "minimize": {"force_tol": 1.0e-12, "fire": {"dt_start": 0.01, "dt_max": 0.1}},
    "measure": {"n_frequencies": 4},
    "figures": {"overview": {"scenario": "soft_a", "dpi": 60}},
    "scenarios": {
        name: {
            "dim": 2,
            "N": n,
            "structure": "disordered",
            "potential": "soft_sphere",
            "species": {"n_species": 2, "diameters": [1.0, 1.4]},
            "packing_fraction": 0.9,
            "seeds": {"count": 1, "per_job": 1},
        }
        for name, n in (("soft_a", 16), ("soft_b", 24))
    },
}

STORES = {"generate": "initial", "minimize": "minimized", "measure": "measured"}
TABLE = {("states_table", "results/tables/states.csv")}
FIGURE = {("overview_figure", f"results/figures/overview.{ext}") for ext in ("png", "pdf")}


def batch_jobs(scenario: str, *stages: str, batch: int = 0) -> set[tuple[str, str]]:
    return {(s, f"results/{scenario}/batch{batch}/{STORES[s]}.zarr/zarr.json") for s in stages}


def snakemake(workdir: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def planned_jobs(stdout: str) -> set[tuple[str, str]]:
    """(rule, output) of every job a dry-run lists; the output-less target rule `all` (planned
    whenever anything else is) is left out. Fails on any other job without outputs."""
    jobs, rule, outputs = [], None, None
    for line in [*stdout.splitlines(), ""]:
        m = re.fullmatch(r"(?:local)?rule (\w+):", line)
        if m or not line.startswith("    "):
            if rule is not None:
                jobs.append((rule, outputs))
            rule, outputs = (m.group(1), []) if m else (None, None)
        elif rule is not None and line.startswith("    output: "):
            outputs = line.removeprefix("    output: ").split(", ")
    assert all(outs for rule, outs in jobs if rule != "all"), jobs
    return {(rule, path) for rule, outs in jobs if rule != "all" for path in outs}


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """A finished run of the tiny config in a copy of the workflow: (directory, run)."""
    work = tmp_path_factory.mktemp("rerun")
    shutil.copy2(ROOT / "Snakefile", work)
    for sub in ("workflow", "config", "envs"):
        shutil.copytree(ROOT / sub, work / sub, ignore=shutil.ignore_patterns("__pycache__"))
    (work / "base.yaml").write_text(yaml.safe_dump(BASE))
    out = snakemake(work, "--cores", "2", "--configfile", "base.yaml", timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]

    def dry_run(config: dict, name: str) -> set[tuple[str, str]]:
        (work / f"{name}.yaml").write_text(yaml.safe_dump(config))
        res = snakemake(work, "-n", "--cores", "1", "--configfile", f"{name}.yaml")
        assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
        return planned_jobs(res.stdout)

    return SimpleNamespace(dir=work, dry_run=dry_run)


def test_no_change_plans_nothing(workflow):
    assert workflow.dry_run(BASE, "unchanged") == set()


def test_figure_script_edit_reruns_only_that_figure(workflow):
    script = workflow.dir / "workflow" / "scripts" / "packings" / "overview_figure.py"
    text, st = script.read_text(), script.stat()
    try:
        script.write_text(text + "# edited: only this figure reruns\n")
        now = time.time() + 1
        os.utime(script, (now, now))
        assert workflow.dry_run(BASE, "script_edit") == FIGURE
    finally:
        script.write_text(text)
        os.utime(script, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert workflow.dry_run(BASE, "script_restored") == set()


def _changed(edit):
    cfg = copy.deepcopy(BASE)
    edit(cfg)
    return cfg


CASES = {
    "figure_style_dpi": (
        lambda c: c["figures"]["overview"].update(dpi=72),
        FIGURE,
    ),
    "global_minimize_force_tol": (
        lambda c: c["minimize"].update(force_tol=1.0e-11),
        batch_jobs("soft_a", "minimize", "measure")
        | batch_jobs("soft_b", "minimize", "measure")
        | TABLE
        | FIGURE,
    ),
    "scenario_minimize_fire": (
        lambda c: c["scenarios"]["soft_b"].update(minimize={"fire": {"dt_max": 0.2}}),
        batch_jobs("soft_b", "minimize", "measure") | TABLE | FIGURE,
    ),
    "scenario_N": (
        lambda c: c["scenarios"]["soft_b"].update(N=20),
        batch_jobs("soft_b", "generate", "minimize", "measure") | TABLE | FIGURE,
    ),
    "scenario_more_seeds": (
        lambda c: c["scenarios"]["soft_b"]["seeds"].update(count=2),
        batch_jobs("soft_b", "generate", "minimize", "measure", batch=1) | TABLE | FIGURE,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_change_reruns_exactly_what_depends_on_it(workflow, case):
    edit, expected = CASES[case]
    assert workflow.dry_run(_changed(edit), case) == expected


# ----------------------------------------------------------------------------------- report

# Every figure the workflow can draw (response.smk: RESPONSE_FIGURES, modes.smk: MODES_FIGURES;
# config: training).
RESPONSE_FIGURES = ["response_rank", "response_singular_values", "response_linear_regime",
                    "response_tunability"]  # fmt: skip
MODES_FIGURES = ["modes_spectra", "modes_structure", "modes_example", "modes_annealing"]
PRUNING_FIGURES = ["pruning_bonds", "pruning_networks", "pruning_spectra", "pruning_collapse",
                   "pruning_frequencies", "pruning_methods"]  # fmt: skip
SURROGATE_FIGURES = ["pruning_surrogate_loss", "pruning_surrogate_parity",
                     "pruning_surrogate_timing"]  # fmt: skip
MM_FIGURES = ["metamaterials_scaling", "metamaterials_disorder", "metamaterials_relaxed",
              "metamaterials_stress_shift"]  # fmt: skip
BO_FIGURES = ["metamaterials_bo_trace", "metamaterials_bo_maps", "metamaterials_bo_gp_check"]
FIGURES = ["overview", *RESPONSE_FIGURES, *training_figure_inputs({}), *MODES_FIGURES,
           *PRUNING_FIGURES, *SURROGATE_FIGURES, *MM_FIGURES, *BO_FIGURES]  # fmt: skip


def _caption_title(name: str) -> str:
    """First line of a caption: one plain sentence, found verbatim in the rendered report."""
    return (REPORT_DIR / f"{name}.rst").read_text().splitlines()[0]


def test_response_figure_list_matches_rule_file():
    """Each rule file's figure list equals the one this test module checks captions for."""
    lists = (("response", "RESPONSE_FIGURES", RESPONSE_FIGURES),
             ("modes", "MODES_FIGURES", MODES_FIGURES),
             ("pruning", "PRUNING_FIGURES", PRUNING_FIGURES),
             ("pruning_surrogate", "SURROGATE_FIGURES", SURROGATE_FIGURES),
             ("metamaterials", "MM_FIGURES", MM_FIGURES),
             ("metamaterials_bo", "BO_FIGURES", BO_FIGURES))  # fmt: skip
    for rules, name, names in lists:
        text = (ROOT / "workflow" / "rules" / f"{rules}.smk").read_text()
        listed = re.search(rf"{name} = \[(.*?)\]", text, re.S).group(1)
        assert re.findall(r'"(\w+)"', listed) == names, rules


# What each figure rule hands its caption template (as `snakemake.params` / `.input`).
CAPTION_CONTEXT = {
    "overview": ({"dpi": 150}, {"table": "t.csv", "store": "results/s/batch0/measured.zarr"}),
    "response": ({"sweep_scenario": None, "dpi": 150}, {"svd": "t.csv", "sweeps": []}),
    "training": ({"inputs": {}, "dpi": 150, "max_traces": 40}, {"runs": "t.csv", "stores": []}),
    "modes": ({"ensembles": [], "dpi": 150}, {"spectra": [], "exponents": "t.csv"}),
    "metamaterials": ({"dpi": 150, "settings": {}}, {"forcefields": "t.csv", "samples": "t.csv"}),
    "pruning": ({"entries": [], "network": None, "dpi": 150},
                {"runs": "t.csv", "modes_table": "t.csv", "networks": [], "modes": []}),
}


def test_every_figure_has_a_caption_that_renders_cleanly():
    """A caption per figure and nothing else; each is a Jinja template (Snakemake renders it
    with the job's params, input and config: only the ones its rule has may be used) and must
    give reStructuredText without warnings."""
    from docutils.core import publish_parts
    from jinja2 import Environment, StrictUndefined

    assert {p.stem for p in REPORT_DIR.glob("*.rst")} == {*FIGURES, "workflow"}
    env = Environment(undefined=StrictUndefined)
    for name in [*FIGURES, "workflow"]:
        params, inputs = CAPTION_CONTEXT.get(name.split("_")[0], ({}, {}))
        fake = SimpleNamespace(params=SimpleNamespace(**params), input=SimpleNamespace(**inputs),
                               config=BASE)  # fmt: skip
        text = env.from_string((REPORT_DIR / f"{name}.rst").read_text()).render(snakemake=fake)
        title = _caption_title(name)
        assert title.endswith(".") and "``" not in title and "{" not in title, name
        publish_parts(text, writer="html", settings_overrides={"halt_level": 2})


def _js_data(html: str, name: str, script_id: str | None = None):
    """The JSON the report embeds as `<script id="script_id"> var name = ...;`."""
    start = html.index(f'<script id="{script_id or name}">')
    start = html.index(f"var {name} = ", start) + len(f"var {name} = ")
    return json.JSONDecoder().raw_decode(html, start)[0]


def test_report_has_every_figure_with_its_caption(workflow):
    out = snakemake(workflow.dir, "--cores", "1", "--configfile", "base.yaml", "--report",
                    "report.html")  # fmt: skip
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    html = (workflow.dir / "report.html").read_text(encoding="utf-8")
    results = _js_data(html, "results")
    assert set(results) == {path for _, path in FIGURE}
    assert _js_data(html, "categories") == {"Packings": {"Other": sorted(results)}}
    for path, res in results.items():
        ext = path.rsplit(".", 1)[1]
        assert res["name"] == f"overview.{ext}" and res["name"] in html
        assert res["labels"] == {"figure": "overview", "format": ext}
        assert res["job_properties"]["rule"] == "overview_figure"
        caption = " ".join(res["caption"].split())
        assert _caption_title("overview") in caption
        # rendered with the job's values, not the template
        assert "results/soft_a/batch0/measured.zarr" in caption
        assert "this file: 60 dpi" in caption
        assert "{{" not in caption
    description = " ".join(_js_data(html, "workflow_desc", "workflow-desc").split())
    assert _caption_title("workflow") in description
    assert "scenarios: soft_a, soft_b; training groups: none." in description
