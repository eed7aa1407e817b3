# The two set-up commands of the README: `make run` and `make test`.
# Both create .venv on first use; nothing outside the project directory is touched.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2

.PHONY: run test test-fast test-cluster lint bench dry-run clean-results help

help:
	@echo "make run        install (if needed) and run the workflow on config/config.yaml"
	@echo "make test       install with dev extras (if needed) and run the whole test suite"
	@echo "make test-fast  tests without the slow smoke run"
	@echo "make test-cluster  (root) start a one-node SLURM with a fake GPU, run the workflow through it"
	@echo "make lint       ruff + snakemake --lint"
	@echo "make bench      run every benchmark in benchmarks/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamp files: reinstall only when pyproject.toml changes. (Not pip's --no-compile: Snakemake's
# jobs then recompiled every imported module from source; make run took 15.3 instead of 13 min.)
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

$(VENV)/.installed-cluster: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,cluster]"
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/snakemake --profile workflow/profiles/local --cores $(CORES)

# One pytest process per group: a single process over the whole suite crashed twice here
# (segfault inside XLA's compiler in tests/training, after ~230 tests' compilations), while
# every group passes in its own process (README "Tests").
TEST_GROUPS := tests/core "tests/packings tests/workflow tests/cluster" tests/response tests/training tests/modes tests/pruning tests/metamaterials
# Each group runs on TEST_WORKERS pytest-xdist workers (default: the CPU count, at most 4: every
# worker holds its own JAX/XLA process), one test file per worker (--dist loadfile) so that a
# module's fixtures (a workflow run, a glass) are built once.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)

test: $(VENV)/.installed-dev
	@for g in $(TEST_GROUPS); do echo "== pytest $$g"; \
		$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $$g || exit 1; done

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow"

# Needs root: installs slurm-wlm + munge with apt-get if missing and starts a one-node SLURM
# on loopback with a fake GPU (tests/cluster/NOTES.md). Stop it: bash tests/cluster/stop_slurm.sh
test-cluster: $(VENV)/.installed-cluster
	bash tests/cluster/start_slurm.sh
	TS_CLUSTER_TEST=1 $(BIN)/python -m pytest -m cluster -rA tests/cluster

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/snakemake --lint --cores 1

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

bench: $(VENV)/.installed-bench
	@for f in benchmarks/[!_]*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

dry-run: $(VENV)/.installed
	@for c in config/config.yaml config/smoke.yaml config/paper/*.yaml; do \
	  [ -f $$c ] || continue; echo "== $$c"; \
	  $(BIN)/snakemake -n --quiet rules --configfile $$c || exit 1; done

clean-results:
	rm -rf results/*
