"""Glue shared by the workflow scripts: per-job logging and store provenance."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import store


def configure_logging(log_path: str | None) -> None:
    """Send INFO logs of the package to the job's log file (and stderr if no file)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(log_path, mode="w")]
    logging.basicConfig(
        level=logging.INFO,
        handlers=handlers,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("jax").setLevel(logging.WARNING)  # backend probing noise (TPU, CUDA)


def run_stage(
    stage: Callable,
    settings: dict,
    inputs: tuple,
    output: str,
    log_path: str | None,
    stage_name: str,
) -> None:
    """Run ``stage(settings, *inputs)`` and write its arrays to ``output`` with provenance."""
    configure_logging(log_path)
    log = logging.getLogger("tunable_solids.jobs")
    log.info("%s: %s -> %s", stage_name, settings.get("name", settings.get("id")), output)
    start = time.perf_counter()
    arrays, summary = stage(settings, *inputs)
    wall = time.perf_counter() - start
    attrs = {
        "stage": stage_name,
        "provenance": store.provenance(settings, wall),
        "summary": summary,
    }
    store.write_store(output, arrays, attrs)
    log.info("%s done in %.1f s: %s", stage_name, wall, summary)


def read_with_dims(path: str) -> tuple[dict, dict]:
    """Arrays and their dimension names of a store (inputs of the next stage)."""
    arrays, _ = store.read_store(path)
    return arrays, store.dimension_names(path)
