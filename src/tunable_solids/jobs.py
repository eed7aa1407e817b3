"""Glue shared by the workflow scripts: per-job logging, JAX set-up and store provenance.

Every workflow script imports this module before any JAX computation, so importing it
applies :func:`share_gpu_memory` while the JAX backend is still uninitialized.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import store
from .store import REPO_ROOT

#: JAX GPU memory settings applied to every job unless already set in the environment.
GPU_MEMORY_DEFAULTS = {
    # JAX would otherwise reserve 75% of the GPU at start-up: two jobs granted the same
    # (shared or MIG) GPU would then fail, and the one job gets no more speed from it.
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
}
GPU_MEMORY_VARIABLES = (
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",
    "XLA_PYTHON_CLIENT_ALLOCATOR",
)


def share_gpu_memory(environ: dict | None = None) -> dict[str, str]:
    """Apply :data:`GPU_MEMORY_DEFAULTS` to ``environ`` (default ``os.environ``) where the
    user has not set them; returns the resulting GPU memory settings (for provenance).
    Must run before JAX initializes its backend; it has no effect on CPU."""
    environ = os.environ if environ is None else environ
    for key, value in GPU_MEMORY_DEFAULTS.items():
        environ.setdefault(key, value)
    return {k: environ[k] for k in GPU_MEMORY_VARIABLES if k in environ}


share_gpu_memory()


def enable_compilation_cache(path: str | os.PathLike | None = None) -> None:
    """Persist XLA compilations across jobs (``$JAX_COMPILATION_CACHE_DIR`` or
    ``.cache/jax`` in the project): the many short jobs of a study compile the same
    functions for the same shapes, which otherwise dominates their run time. Every
    compilation is kept, however short: a metamaterials structure job with a warm cache took
    12.6 s this way against 39.7 s when only compilations over 0.5 s were kept (its many
    short ones add up)."""
    import jax

    path = path or os.environ.get("JAX_COMPILATION_CACHE_DIR") or REPO_ROOT / ".cache" / "jax"
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


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
    enable_compilation_cache()


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
        "provenance": store.provenance(settings, wall, gpu_memory=share_gpu_memory()),
        "summary": summary,
    }
    store.write_store(output, arrays, attrs)
    log.info("%s done in %.1f s: %s", stage_name, wall, summary)


def read_with_dims(path: str) -> tuple[dict, dict]:
    """Arrays and their dimension names of a store (inputs of the next stage)."""
    arrays, _ = store.read_store(path)
    return arrays, store.dimension_names(path)
