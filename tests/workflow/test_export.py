"""Export of stored states to extended XYZ and LAMMPS data files (``tunable_solids.export``).

Tiny stores are written with the project's store writer, every array of the stage's
contract (``studies.packings.stages.CONTRACT``) present: a 2D measured store (sheared box,
rattlers, a NaN modulus) and a 3D minimized store (general triclinic box, which LAMMPS needs
rotated). Both formats are read back with ``ase.io.read`` and compared with the store: extended XYZ
exactly, LAMMPS data (rigidly rotated box) through the cell metric and fractional
coordinates to 1e-12. The command line is tested through ``main(argv)`` and once as
``python -m``.
"""

from __future__ import annotations

import subprocess
import sys

import ase.io
import numpy as np
import pytest

from tunable_solids import export
from tunable_solids.store import write_store
from tunable_solids.studies.packings.stages import CONTRACT

SEEDS = [11, 42]  # seed values differ from seed indices on purpose
N = 6
DIAMETERS = [1.0, 1.4]
SPECIES = np.array([0, 1, 0, 1, 1, 0], dtype=np.int32)
INT_ARRAYS = {"iterations", "n_rattlers", "n_contacts", "pressure_rounds"}
BOOL_ARRAYS = {"converged", "rattler", "pair_contact"}
STAGE = {"minimized": "minimize", "measured": "measure"}  # the `stage` attribute
BOXES = {
    2: np.array([[3.1, 0.7], [0.0, 2.9]]),  # columns are lattice vectors (sheared square)
    3: np.array([[3.0, 0.4, -0.3], [0.2, 2.8, 0.5], [-0.1, 0.3, 3.2]]),  # general triclinic
}


def _make_store(path, stage: str, dim: int):
    """A contract-complete store of ``stage`` with N particles, 2 species and 2 seeds."""
    rng = np.random.default_rng(dim)
    nv = 3 if dim == 2 else 6
    sizes = {"seed": len(SEEDS), "particle": N, "species": 2, "species_b": 2, "axis": dim,
             "axis_b": dim, "lattice_vector": dim, "voigt": nv, "voigt_b": nv,
             "constant": nv * (nv + 1) // 2, "mode": 4, "pair": 5}  # fmt: skip
    frac = rng.uniform(0.0, 1.0, (len(SEEDS), N, dim))
    frac[0, 0] = 0.0  # a particle on the box corner: the edge of wrapping
    boxes = np.stack([BOXES[dim], 1.05 * BOXES[dim]])
    arrays = {}
    for name, dims in CONTRACT[stage].items():
        shape = tuple(sizes[d] for d in dims)
        if name in BOOL_ARRAYS:
            value = rng.uniform(size=shape) < 0.5
        elif name in INT_ARRAYS or name.startswith("pair_"):
            value = rng.integers(0, 100, size=shape)
        else:
            value = rng.normal(size=shape)
        arrays[name] = (dims, value)
    arrays["seed"] = (("seed",), np.array(SEEDS))
    arrays["species"] = (("particle",), SPECIES)
    arrays["diameter"] = (("species",), np.array(DIAMETERS))
    arrays["box"] = (("seed", "axis", "lattice_vector"), boxes)
    arrays["positions"] = (("seed", "particle", "axis"), np.einsum("spj,sij->spi", frac, boxes))
    if stage == "measured":
        arrays["B"][1][1] = np.nan  # measured entries of an unconverged state are NaN
    return write_store(path, arrays, {"stage": STAGE[stage]})


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    return {
        2: _make_store(root / "measured.zarr", "measured", 2),
        3: _make_store(root / "minimized.zarr", "minimized", 3),
    }


def _stored(path):
    arrays, dims, attrs = export.read_state_store(path)
    return arrays, dims


def _expected_cell(box):
    dim = box.shape[0]
    cell = np.zeros((3, 3))
    cell[:dim, :dim] = box.T
    if dim == 2:
        cell[2, 2] = 1.0
    return cell


def _info(atoms, key):
    # ase.io.read moves `energy` from the comment line into a single-point calculator
    if key == "energy" and key not in atoms.info:
        return atoms.get_potential_energy()
    return atoms.info[key]


def _assert_same_fractional(cell_a, pos_a, cell_b, pos_b, dim):
    fa = np.linalg.solve(np.asarray(cell_a).T, np.asarray(pos_a).T).T[:, :dim]
    fb = np.linalg.solve(np.asarray(cell_b).T, np.asarray(pos_b).T).T[:, :dim]
    d = fa - fb
    np.testing.assert_allclose(d - np.round(d), 0.0, atol=1e-12)


@pytest.mark.parametrize("dim", [2, 3])
def test_state_atoms_follows_the_store(stores, dim):
    arrays, dims = _stored(stores[dim])
    atoms = export.state_atoms(arrays, dims, 1, stage="x")
    np.testing.assert_array_equal(atoms.positions[:, :dim], arrays["positions"][1])
    np.testing.assert_array_equal(atoms.positions[:, dim:], 0.0)
    np.testing.assert_array_equal(atoms.cell[:], _expected_cell(arrays["box"][1]))
    assert list(atoms.pbc) == [True, True, dim == 3]
    np.testing.assert_array_equal(atoms.numbers, SPECIES + 1)  # H, He: labels of species 0, 1
    assert atoms.get_chemical_symbols()[:2] == ["H", "He"]
    np.testing.assert_array_equal(atoms.arrays["species_index"], SPECIES)
    np.testing.assert_array_equal(atoms.arrays["diameter"], np.array(DIAMETERS)[SPECIES])
    np.testing.assert_array_equal(atoms.arrays["radius"], np.array(DIAMETERS)[SPECIES] / 2)
    assert atoms.info["seed"] == SEEDS[1] and atoms.info["dim"] == dim
    assert atoms.info["stage"] == "x"
    per_seed = [k for k, d in dims.items() if d == ("seed",) and k != "seed"]
    assert {"energy", "max_force", "converged", "pressure"} <= set(per_seed)
    for key in per_seed:
        np.testing.assert_equal(atoms.info[key], arrays[key][1])
    per_particle = [k for k, d in dims.items() if d == ("seed", "particle")]
    assert per_particle == (["rattler"] if dim == 2 else [])
    for key in per_particle:
        np.testing.assert_array_equal(atoms.arrays[key], arrays[key][1])
    # multi-dimensional arrays (stress, elastic matrices, pair lists) are not exported
    assert not {"stress", "elastic_voigt", "pair_i", "k"} & (set(atoms.info) | set(atoms.arrays))


@pytest.mark.parametrize("dim", [2, 3])
def test_extxyz_round_trip_is_exact(stores, tmp_path, dim):
    arrays, dims = _stored(stores[dim])
    path = export.write_extxyz(tmp_path / "s.xyz", export.store_atoms(stores[dim]))
    frames = ase.io.read(path, index=":")
    assert len(frames) == len(SEEDS)
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(f.positions[:, :dim], arrays["positions"][i])
        np.testing.assert_array_equal(f.positions[:, dim:], 0.0)
        np.testing.assert_array_equal(f.cell[:], _expected_cell(arrays["box"][i]))
        assert list(f.pbc) == [True, True, dim == 3]
        np.testing.assert_array_equal(f.numbers, SPECIES + 1)
        np.testing.assert_array_equal(f.arrays["species_index"], SPECIES)
        np.testing.assert_array_equal(f.arrays["diameter"], np.array(DIAMETERS)[SPECIES])
        np.testing.assert_array_equal(f.arrays["radius"], np.array(DIAMETERS)[SPECIES] / 2)
        if dim == 2:
            assert f.arrays["rattler"].dtype == bool
            np.testing.assert_array_equal(f.arrays["rattler"], arrays["rattler"][i])
        assert f.info["seed"] == SEEDS[i]
        assert f.info["dim"] == dim
        assert f.info["stage"] == ("measure" if dim == 2 else "minimize")
        np.testing.assert_array_equal(f.info["species_diameters"], DIAMETERS)
        keys = ["energy", "max_force", "converged", "iterations", "pressure"]
        keys += ["B", "G", "nu", "n_rattlers"] if dim == 2 else ["pressure_rounds"]
        for key in keys:
            got, want = _info(f, key), arrays[key][i]
            np.testing.assert_equal(got, want)  # exact; NaN == NaN
            assert np.asarray(got).dtype.kind == want.dtype.kind, key  # bool, int, float
    if dim == 2:
        assert np.isnan(frames[1].info["B"])


@pytest.mark.parametrize("dim", [2, 3])
def test_lammps_data_round_trip(stores, tmp_path, dim):
    arrays, dims = _stored(stores[dim])
    for i, atoms in enumerate(export.store_atoms(stores[dim])):
        path = export.write_lammps_data(tmp_path / f"s{i}.data", atoms)
        text = path.read_text()
        assert text.splitlines()[0].startswith("tunable_solids export:")
        assert f"seed {SEEDS[i]}" in text.splitlines()[0]
        assert "\n2 atom types\n" in text and "\nMasses\n\n1 1.0\n2 1.0\n" in text
        back = ase.io.read(path, format="lammps-data")  # atom style from "Atoms # atomic"
        np.testing.assert_array_equal(back.arrays["type"], SPECIES + 1)
        cell = _expected_cell(arrays["box"][i])
        # LAMMPS form: a along x, b in the xy plane; a rigid rotation of the stored box
        np.testing.assert_allclose(back.cell[:] @ back.cell[:].T, cell @ cell.T,
                                   rtol=0, atol=1e-12)  # fmt: skip
        assert np.linalg.det(back.cell[:]) == pytest.approx(np.linalg.det(cell), rel=1e-12)
        assert np.allclose(np.triu(back.cell[:], 1), 0.0)
        _assert_same_fractional(back.cell, back.positions, cell, atoms.positions, dim)
        if dim == 2:
            assert "\n-0.5 0.5  zlo zhi\n" in text  # unit thickness straddling z = 0
            tilts = [ln.split()[:3] for ln in text.splitlines() if ln.endswith("xy xz yz")]
            assert [float(t) for t in tilts[0][1:]] == [0.0, 0.0]  # LAMMPS 2d: no z tilt
            np.testing.assert_array_equal(back.positions[:, 2], 0.0)


def test_lammps_types_are_stable_when_a_species_is_absent(tmp_path):
    arrays = {
        "seed": np.array([5]),
        "species": np.array([1, 1, 1]),
        "diameter": np.array(DIAMETERS),
        "positions": np.array([[[0.1, 0.2], [1.0, 1.1], [1.5, 0.3]]]),
        "box": np.array([2.0 * np.eye(2)]),
    }
    dims = {"seed": ("seed",), "species": ("particle",), "diameter": ("species",),
            "positions": ("seed", "particle", "axis"),
            "box": ("seed", "axis", "lattice_vector")}  # fmt: skip
    atoms = export.state_atoms(arrays, dims, 0)
    path = export.write_lammps_data(tmp_path / "one.data", atoms)
    assert "\n2 atom types\n" in path.read_text()
    back = ase.io.read(path, format="lammps-data")
    np.testing.assert_array_equal(back.arrays["type"], [2, 2, 2])


def test_cli_writes_the_chosen_states(stores, tmp_path, capsys):
    xyz = tmp_path / "out" / "all.xyz"
    assert export.main([str(stores[2]), "--format", "xyz", "-o", str(xyz)]) == 0
    assert [f.info["seed"] for f in ase.io.read(xyz, index=":")] == SEEDS  # default: all
    one = tmp_path / "one.xyz"
    export.main([str(stores[3]), "--seed", "42", "--format", "xyz", "-o", str(one)])
    assert [f.info["seed"] for f in ase.io.read(one, index=":")] == [42]

    data = tmp_path / "state.data"
    export.main([str(stores[3]), "--seed", "11", "--format", "lammps", "-o", str(data)])
    assert "seed 11," in data.read_text().splitlines()[0]
    export.main([str(stores[2]), "--all", "--format", "lammps", "-o", str(data)])
    for s in SEEDS:
        assert f"seed {s}," in (tmp_path / f"state_seed{s}.data").read_text().splitlines()[0]
    assert "state_seed42.data" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}", "--format", "xyz"], "store not found"),
        (["{store}", "--seed", "7", "--format", "xyz"], "available seeds: 11, 42"),
        (["{store}", "--format", "pdb"], "invalid choice: 'pdb'"),
        (["{store}", "--seed", "11", "--all", "--format", "xyz"], "not allowed with"),
        (["{nostates}", "--format", "lammps"], "holds no states"),
    ],
)
def test_cli_errors_are_clear(stores, tmp_path, capsys, args, message):
    nostates = write_store(tmp_path / "jacobian.zarr", {"seed": (("seed",), np.array([1]))}, {})
    subs = {"missing": tmp_path / "nope.zarr", "store": stores[2], "nostates": nostates}
    argv = [a.format(**subs) for a in args] + ["-o", str(tmp_path / "x.out")]
    with pytest.raises(SystemExit) as exc:
        export.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.out").exists()


def test_module_entry_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "tunable_solids.export", str(tmp_path / "nope.zarr"),
         "--format", "lammps", "-o", str(tmp_path / "x.data")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "store not found" in proc.stderr and "usage:" in proc.stderr
