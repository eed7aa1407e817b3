"""End-to-end run of a workflow through SLURM with workflow/profiles/slurm.

Needs a running SLURM (tests/cluster/start_slurm.sh: one node on loopback with a fake
GPU) and TS_CLUSTER_TEST=1, so plain `make test` skips it. Run with `make test-cluster`
or see tests/cluster/NOTES.md.

Knobs (environment):
  TS_CLUSTER_SNAKEFILE    workflow to run            (default tests/cluster/demo/Snakefile)
  TS_CLUSTER_CONFIGFILE   its config                  (default tests/cluster/demo/config.yaml)
  TS_CLUSTER_GPU_RULES    rules that must get a GPU when cluster.gpus_per_job > 0 (default:
                          the heavy rules of the real workflow, minimize, measure, jacobian,
                          jacobian_check, sweeps, train, validate_training,
                          gradient_check, bond_analysis)
  TS_CLUSTER_MAYBE_GPU_RULES  rules whose GPU request depends on wildcards, checked
                          only in the "cpu" variant (default: generate, which asks for
                          a GPU only for spring networks); every other rule must not
                          ask for a GPU
  TS_CLUSTER_VARIANTS     which runs to do (default "gpu,cpu"): "gpu" runs the config
                          with cluster.gpus_per_job = 1, "cpu" with 0 (a CPU-only
                          cluster: nothing may ask for a GPU); each is a separate run
  TS_CLUSTER_WORKDIR      where to run (default: a fresh pytest tmp dir); each variant
                          runs in its own subdirectory gpu/ or cpu/ of it, which must not
                          hold results yet (nothing would be submitted)
  TS_CLUSTER_TIMEOUT      seconds for the whole snakemake run (default 600)
  TS_CLUSTER_EXTRA_ARGS   extra snakemake arguments (shell-quoted string), e.g.
                          "--slurm-array-jobs minimize" (job arrays are understood too)
  TS_SLURM_PARTITION      partition (default debug, as set up by start_slurm.sh)

What is checked:
  * snakemake (under `timeout`) exits 0 and afterwards a dry run has nothing to do
    (by modification times: code edited during a long run does not count);
  * every output listed by `snakemake --summary` exists;
  * every rule with outputs was submitted through sbatch (the plugin's "sbatch call:"
    debug lines, printed with --verbose, are the record of the exact arguments);
  * sbatch calls of GPU rules carry a GPU request (--gpus / --gres=gpu) and all others
    carry none, and the partition from TS_SLURM_PARTITION is used;
  * the same seen from SLURM: `scontrol show job` (jobs stay visible for MinJobAge) or,
    where accounting works, `sacct`, shows a gres/gpu request exactly for GPU jobs;
  * for the demo workflow: the light rules went out as one group job of 2 CPUs, and the
    jobs' own probe files show that SLURM handed a GPU (CUDA_VISIBLE_DEVICES) to GPU
    rules only.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PROFILE = REPO / "workflow" / "profiles" / "slurm"
DEMO_SNAKEFILE = HERE / "demo" / "Snakefile"
DEMO_CONFIG = HERE / "demo" / "config.yaml"
DEFAULT_GPU_RULES = (
    "minimize,measure,jacobian,jacobian_check,sweeps,"
    "train,validate_training,gradient_check,bond_analysis"
)
DEFAULT_MAYBE_GPU_RULES = "generate"

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        os.environ.get("TS_CLUSTER_TEST") != "1",
        reason="SLURM end-to-end test: set TS_CLUSTER_TEST=1 after "
        "tests/cluster/start_slurm.sh (or run `make test-cluster`)",
    ),
]

# A GPU request in sbatch arguments, in any of the spellings the plugin or a
# slurm_extra could use.
GPU_ARG = re.compile(
    r"(?:^|\s)(?:--gpus(?:-per-[a-z]+)?[=\s]|-G\s*\d|--gres[=\s]\S*gpu|--tres-per-\S*gpu)"
)


@dataclass
class Submission:
    args: str  # sbatch arguments before --wrap (what SLURM is asked for)
    rules: list[str]
    comment: str
    output: str  # --output pattern with %j
    jobid: str | None = None
    scontrol: dict = field(default_factory=dict)

    @property
    def gpu_requested(self) -> bool:
        return bool(GPU_ARG.search(self.args))


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).resolve() if value else default


def _rule_set(name: str, default: str) -> set[str]:
    return {r.strip() for r in os.environ.get(name, default).split(",") if r.strip()}


def _snakemake_exe() -> str:
    exe = Path(sys.executable).with_name("snakemake")
    if exe.exists():
        return str(exe)
    found = shutil.which("snakemake")
    if not found:
        pytest.fail("snakemake not found next to the test's python nor on PATH")
    return found


def _sacct_works() -> bool:
    if not shutil.which("sacct"):
        return False
    probe = subprocess.run(
        ["sacct", "--noheader", "-X", "-S", "now"], capture_output=True, text=True, timeout=30
    )
    return probe.returncode == 0


def _require_slurm() -> None:
    for tool in ("sinfo", "sbatch", "squeue", "scontrol", "timeout"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} not found: run tests/cluster/start_slurm.sh first (as root)")
    states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    usable = {"idle", "mixed", "allocated", "completing"}
    if states.returncode != 0 or not usable & set(states.stdout.split()):
        pytest.fail(
            "no usable SLURM node (sinfo: "
            f"{(states.stdout + states.stderr).strip()!r}); run tests/cluster/start_slurm.sh"
        )


# The plugin's debug lines (snakemake --verbose) for one submission / one job array.
CALL_PREFIXES = ("sbatch call: ", "Submitting array job with sbatch call: ")
# "Job 3 has been submitted with SLURM jobid 6 (log: .../rule_minimize/0/6.log)."
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.?$")
# "Registered array job task: external_jobid=33_1, snakemake_jobid=3"
ARRAY_TASK = re.compile(r"Registered array job task: external_jobid=(\d+)_\d+")


def _parse_submissions(log: str) -> list[Submission]:
    subs: list[Submission] = []
    for line in log.splitlines():
        prefix = next((p for p in CALL_PREFIXES if line.startswith(p)), None)
        if prefix:
            args, _, wrapped = line[len(prefix) :].partition(" --wrap=")
            allowed = re.search(r"--allowed-rules ((?:[A-Za-z_]\w* ?)+)", wrapped)
            comment = re.search(r"--comment (\S+)", args)
            output = re.search(r"--output (\S+)", args)
            subs.append(
                Submission(
                    args=args,
                    rules=allowed.group(1).split() if allowed else [],
                    comment=comment.group(1) if comment else "",
                    output=output.group(1).strip("'\"") if output else "",
                )
            )
            continue
        if m := SUBMITTED.search(line):
            jobid, logfile = m.groups()
            for sub in subs:
                if sub.jobid is None and sub.output.replace("%j", jobid) == logfile:
                    sub.jobid = jobid
                    break
        elif m := ARRAY_TASK.search(line):
            for sub in reversed(subs):
                if "--array=" in sub.args:
                    if sub.jobid is None:
                        sub.jobid = m.group(1)
                    break
    return subs


def _scontrol_job(jobid: str) -> dict[str, list[str]]:
    """Fields of `scontrol show job` (a job array gives one record per task)."""
    out = subprocess.run(
        ["scontrol", "show", "job", "--oneliner", jobid], capture_output=True, text=True, timeout=30
    )
    if out.returncode != 0:
        return {}
    fields: dict[str, list[str]] = {}
    for token in out.stdout.split():
        key, sep, value = token.partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    return fields


def _summary(cmd_base: list[str], workdir: Path, env: dict) -> list[dict]:
    out = subprocess.run(
        [*cmd_base, "--summary"], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, f"snakemake --summary failed:\n{out.stdout}\n{out.stderr}"
    lines = [ln for ln in out.stdout.splitlines() if "\t" in ln]
    header = lines[0].split("\t")
    return [dict(zip(header, ln.split("\t"), strict=False)) for ln in lines[1:]]


VARIANTS = {"gpu": 1, "cpu": 0}  # variant -> cluster.gpus_per_job


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_workflow_runs_through_slurm(variant, tmp_path):
    wanted = [v.strip() for v in os.environ.get("TS_CLUSTER_VARIANTS", "gpu,cpu").split(",")]
    if variant not in wanted:
        pytest.skip(f"variant {variant!r} not in TS_CLUSTER_VARIANTS={wanted}")
    _require_slurm()

    snakefile = _env_path("TS_CLUSTER_SNAKEFILE", DEMO_SNAKEFILE)
    source_config = _env_path("TS_CLUSTER_CONFIGFILE", DEMO_CONFIG)
    workdir = _env_path("TS_CLUSTER_WORKDIR", tmp_path / "run") / variant
    timeout_s = int(os.environ.get("TS_CLUSTER_TIMEOUT", "600"))
    gpu_rules = _rule_set("TS_CLUSTER_GPU_RULES", DEFAULT_GPU_RULES)
    maybe_gpu_rules = _rule_set("TS_CLUSTER_MAYBE_GPU_RULES", DEFAULT_MAYBE_GPU_RULES)
    workdir.mkdir(parents=True, exist_ok=True)

    # the given config, with the cluster's GPUs set by the variant
    config = yaml.safe_load(source_config.read_text()) or {}
    config.setdefault("cluster", {})["gpus_per_job"] = VARIANTS[variant]
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    if VARIANTS[variant] == 0:
        gpu_rules = maybe_gpu_rules = set()  # a CPU-only cluster: nothing may ask for a GPU

    env = dict(os.environ)
    env.setdefault("TS_SLURM_PARTITION", "debug")
    # the fake GPU is /dev/null: JAX inside the jobs must not try to use it
    env.setdefault("JAX_PLATFORMS", "cpu")
    partition = env["TS_SLURM_PARTITION"]

    snakemake = _snakemake_exe()
    base = [snakemake, "--snakefile", str(snakefile), "--configfile", str(configfile)]
    # Test-only settings (real clusters keep the plugin's defaults from the profile):
    test_args = [
        "--slurm-init-seconds-before-status-checks", "5",
        "--slurm-keep-successful-logs",
        "--latency-wait", "10",
        "--verbose",
    ]  # fmt: skip
    if not _sacct_works():
        # no slurmdbd: sacct fails and the plugin would wait forever
        test_args += ["--slurm-status-command", "squeue"]
    test_args += shlex.split(os.environ.get("TS_CLUSTER_EXTRA_ARGS", ""))
    cmd = [
        "timeout", "-s", "INT", "--kill-after=60", str(timeout_s),
        *base, "--profile", str(PROFILE), *test_args,
    ]  # fmt: skip

    log_path = workdir / "cluster_run.log"
    t0 = time.monotonic()
    with open(log_path, "w") as log_file:
        log_file.write("$ " + shlex.join(cmd) + "\n")
        log_file.flush()
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            timeout=timeout_s + 120,
        )
    wall = time.monotonic() - t0
    log = log_path.read_text()
    run_id = re.search(r"SLURM run ID: (\S+)", log)
    if proc.returncode != 0 and run_id:
        # do not leave this run's jobs behind (only ours: they carry the run id as name)
        subprocess.run(["scancel", "--name", run_id.group(1)], capture_output=True, timeout=30)

    summary = (
        f"[{variant}] snakemake through SLURM: exit {proc.returncode} after {wall:.1f} s "
        f"(log: {log_path})"
    )
    print(summary)
    (workdir / "cluster_timing.txt").write_text(f"{wall:.1f}\n")
    tail = "\n".join(log.splitlines()[-40:])
    assert proc.returncode != 124, f"timed out after {timeout_s} s\n{tail}"
    assert proc.returncode == 0, f"{summary}\n{tail}"

    # ---- outputs
    # mtime only: edits of the workflow code during a long run are not what is tested
    dry = subprocess.run(
        [*base, "--dry-run", "--rerun-triggers", "mtime"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Nothing to be done" in dry.stdout + dry.stderr, (
        f"a dry run after the cluster run still has work:\n{dry.stdout}\n{dry.stderr}"
    )
    rows = _summary(base, workdir, env)
    assert rows, "snakemake --summary lists no outputs"
    missing = [r["output_file"] for r in rows if not (workdir / r["output_file"]).exists()]
    assert not missing, f"outputs missing after the run: {missing}"
    rules_with_outputs = {r["rule"] for r in rows}

    # ---- what was submitted (the exact sbatch arguments)
    subs = _parse_submissions(log)
    assert subs, "no 'sbatch call:' lines in the log: did the slurm executor run with --verbose?"
    submitted_rules = {rule for s in subs for rule in s.rules}
    assert rules_with_outputs <= submitted_rules, (
        f"rules that never went through sbatch: {rules_with_outputs - submitted_rules}"
    )
    problems = []
    for s in subs:
        assert s.rules, f"cannot tell the rules of this submission: {s.args}"
        gpu = [r for r in s.rules if r in gpu_rules]
        cpu = [r for r in s.rules if r not in gpu_rules | maybe_gpu_rules]
        if gpu and cpu:
            problems.append(f"GPU and CPU rules in one job {s.rules}: {s.args}")
        if gpu and not s.gpu_requested:
            problems.append(f"{s.comment}: GPU request missing: {s.args}")
        if cpu and s.gpu_requested:
            problems.append(f"{s.comment}: GPU request unexpected: {s.args}")
        if f"-p {partition}" not in s.args:
            problems.append(f"{s.comment}: not submitted to partition {partition}: {s.args}")
    assert not problems, "\n".join(problems)
    if gpu_rules & submitted_rules:
        assert any(s.gpu_requested for s in subs), "no submission asked for a GPU"
    print(
        "submissions: "
        + "; ".join(f"{s.comment} job {s.jobid} gpu={s.gpu_requested}" for s in subs)
    )

    # ---- the same, as SLURM saw it
    assert all(s.jobid for s in subs), "could not map every sbatch call to a SLURM job id"
    if _sacct_works():
        for s in subs:
            out = subprocess.run(
                ["sacct", "-n", "-X", "-P", "-j", s.jobid, "-o", "ReqTRES,AllocTRES"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            has_gpu = "gres/gpu" in out.stdout
            assert has_gpu == s.gpu_requested, f"sacct job {s.jobid}: {out.stdout.strip()}"
    else:
        seen = 0
        for s in subs:
            info = _scontrol_job(s.jobid)
            if not info:  # already purged (older than MinJobAge)
                continue
            seen += 1
            tres = " ".join(v for k, vs in info.items() if k.startswith("TresPer") for v in vs)
            assert ("gpu" in tres) == s.gpu_requested, (
                f"scontrol job {s.jobid} ({s.comment}): TresPer*={tres!r}, sbatch args: {s.args}"
            )
            assert set(info["JobState"]) == {"COMPLETED"}, f"job {s.jobid}: {info['JobState']}"
        assert seen, "scontrol knows none of the jobs: raise MinJobAge (start_slurm.sh)"

    # ---- the demo: light jobs grouped into one narrow submission, and the probes of
    # what each job step really got
    if snakefile == DEMO_SNAKEFILE:
        light = [s for s in subs if {"states_table", "overview_figure"} & set(s.rules)]
        assert len(light) == 1, f"light jobs not grouped into one job: {light}"
        assert set(light[0].rules) == {"states_table", "overview_figure"}, light[0].rules
        assert "--cpus-per-task=2 " in light[0].args + " ", light[0].args
        probes = [json.loads(p.read_text()) for p in workdir.rglob("*.json")]
        probes = [p for p in probes if isinstance(p, dict) and "env" in p]
        assert probes
        for p in probes:
            got_gpu = p["env"].get("CUDA_VISIBLE_DEVICES") is not None
            assert p["env"].get("SLURM_JOB_ID"), f"{p['rule']} did not run inside SLURM"
            assert got_gpu == (p["rule"] in gpu_rules), f"probe {p}"
