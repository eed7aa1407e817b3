"""Store writes survive a process dying at any point of an overwrite."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tunable_solids import store


def _write(path, value):
    return store.write_store(path, {"x": (("i",), np.full(3, value))}, {"v": value})


def _value(path):
    arrays, attrs = store.read_store(path)
    assert np.all(arrays["x"] == attrs["v"])
    return attrs["v"]


def test_roundtrip_keeps_dimension_names(tmp_path):
    path = _write(tmp_path / "a.zarr", 1.0)
    assert _value(path) == 1.0
    assert store.dimension_names(path) == {"x": ("i",)}
    assert [p.name for p in tmp_path.iterdir()] == ["a.zarr"]


def test_overwrite_replaces_and_leaves_no_debris(tmp_path):
    path = _write(tmp_path / "a.zarr", 1.0)
    _write(path, 2.0)
    assert _value(path) == 2.0
    assert [p.name for p in tmp_path.iterdir()] == ["a.zarr"]


def test_death_between_renames_recovers_old_store(tmp_path, monkeypatch):
    path = _write(tmp_path / "a.zarr", 1.0)
    real_replace = os.replace

    class Died(Exception):
        """Stands in for SIGKILL after the old store was moved aside."""

    def dies_on_rename_into_place(src, dst):
        # zarr itself renames chunk files; only the final rename onto ``path`` dies.
        if Path(dst) == path:
            raise Died
        real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", dies_on_rename_into_place)
    with pytest.raises(Died):
        _write(path, 2.0)
    monkeypatch.setattr(store.os, "replace", real_replace)
    assert not path.exists()  # the window the recovery exists for
    assert _value(store.recover(path)) == 1.0
    _write(path, 3.0)
    assert _value(path) == 3.0
    assert [p.name for p in tmp_path.iterdir()] == ["a.zarr"]


def test_partial_previous_copy_is_discarded(tmp_path):
    path = _write(tmp_path / "a.zarr", 1.0)
    # A copy half-deleted by a kill during cleanup coexists with a whole store.
    old = tmp_path / ".a.zarr.previous"
    shutil.copytree(path, old)
    shutil.rmtree(old / "x")
    assert _value(store.recover(path)) == 1.0
    _write(path, 2.0)
    assert _value(path) == 2.0
    assert not old.exists()


def test_gpu_memory_defaults_respect_user_settings():
    from tunable_solids.jobs import share_gpu_memory

    env = {"XLA_PYTHON_CLIENT_MEM_FRACTION": ".3"}
    assert share_gpu_memory(env) == {
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "XLA_PYTHON_CLIENT_MEM_FRACTION": ".3",
    }
    env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "true"}
    assert share_gpu_memory(env) == {"XLA_PYTHON_CLIENT_PREALLOCATE": "true"}
