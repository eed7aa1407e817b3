"""Zarr v3 stores: named arrays plus provenance, written atomically.

A store is a directory ``<name>.zarr`` holding one zarr group and nothing else (the workflow's
rules name a store by its group metadata file ``<name>.zarr/zarr.json``, so Snakemake never
drops its ``.snakemake_timestamp`` marker of directory outputs into it; every function here
accepts either path, :func:`store_path`). Every array has
``dimension_names``; the group attributes hold ``provenance`` (see :func:`provenance`)
and any stage-specific summary. :func:`write_store` builds the store under a temporary
sibling path and renames it into place, so an interrupted job never leaves a store that
looks complete. Overwriting an existing store (training checkpoints) first moves the old
copy aside with one rename; :func:`recover` restores it if the process died between the
two renames, so a SIGKILL at any moment leaves either the old or the new store, whole.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from . import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The group metadata file of a store: the file the workflow's rules name as a store's
#: output and input (workflow/rules/common.smk, ``store_file``).
STORE_FILE = "zarr.json"

#: What a stage returns for its store: ``{name: (dimension_names, array)}``.
Arrays = dict[str, tuple[tuple[str, ...], np.ndarray]]

#: Keys every store's ``provenance`` attribute carries (:func:`provenance`, ``jobs.run_stage``).
PROVENANCE_KEYS = (
    "config",
    "package_version",
    "git_commit",
    "jax_version",
    "jax_backend",
    "gpu_memory",
    "wall_time_s",
    "created",
    "host",
)


def store_path(path: str | os.PathLike) -> Path:
    """The store directory named by ``path``: ``path`` itself, or the directory of the store's
    ``zarr.json`` (the form the workflow's rules use)."""
    path = Path(path)
    return path.parent if path.name == STORE_FILE else path


def git_commit(root: Path = REPO_ROOT) -> str:
    """Commit of the project checkout (with ``-dirty`` if modified), or ``unknown``."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src", "workflow"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return rev + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(config_subtree: Mapping[str, Any], wall_time_s: float, **extra) -> dict:
    """Provenance attributes: config, versions, commit, JAX backend, timing, host."""
    import jax

    return {
        "config": _jsonable(config_subtree),
        "package": "tunable_solids",
        "package_version": __version__,
        "git_commit": git_commit(),
        "jax_version": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "wall_time_s": float(wall_time_s),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        **_jsonable(extra),
    }


def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def write_store(
    path: str | os.PathLike,
    arrays: Mapping[str, tuple[tuple[str, ...], np.ndarray]],
    attrs: Mapping[str, Any],
) -> Path:
    """Write ``{name: (dimension_names, array)}`` and ``attrs`` to ``path`` atomically.

    ``path`` is the store directory or its ``zarr.json`` (:func:`store_path`); an existing
    store (or the empty directory Snakemake creates for the ``zarr.json`` output) is replaced.
    """
    path = store_path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        for name, (dims, value) in arrays.items():
            value = np.asarray(value)
            if value.ndim != len(dims):
                raise ValueError(f"array {name!r} has shape {value.shape} but dims {dims}")
            arr = group.create_array(
                name, shape=value.shape, dtype=value.dtype, dimension_names=list(dims)
            )
            arr[...] = value
        group.attrs.update(_jsonable(dict(attrs)))
        _swap_into_place(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _previous(path: Path) -> Path:
    return path.with_name(f".{path.name}.previous")


def _swap_into_place(tmp: Path, path: Path) -> None:
    # Invariant: whenever ``path`` is missing, ``_previous(path)`` is complete. A partial
    # ``previous`` (killed while deleting it) only ever coexists with a whole ``path``.
    old = _previous(path)
    recover(path)
    if path.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def recover(path: str | os.PathLike) -> Path:
    """Restore the previous copy of a store that was being overwritten when the process
    died (see :func:`write_store`); a no-op otherwise. Returns ``path``."""
    path = Path(path)
    old = _previous(path)
    if not path.exists() and old.exists():
        os.replace(old, path)
    return path


def _arrays(path: str | os.PathLike) -> tuple[zarr.Group, list[tuple[str, zarr.Array]]]:
    group = zarr.open_group(store_path(path), mode="r")
    return group, list(group.arrays())


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """Attributes of a store without reading its arrays."""
    return dict(zarr.open_group(store_path(path), mode="r").attrs)


def read_store(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All arrays (as numpy) and attributes of a store."""
    group, members = _arrays(path)
    arrays = {name: np.asarray(arr[...]) for name, arr in members}
    return arrays, dict(group.attrs)


def dimension_names(path: str | os.PathLike) -> dict[str, tuple[str, ...]]:
    """``{array: dimension_names}`` of a store."""
    _, members = _arrays(path)
    return {name: tuple(arr.metadata.dimension_names or ()) for name, arr in members}
