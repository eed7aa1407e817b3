"""Export stored states to extended XYZ (OVITO) and LAMMPS data files, through ASE.

A *state* is one seed of a state store (``initial``, ``minimized`` or ``measured``; see the
README "Store contract"). :func:`state_atoms` turns it into an :class:`ase.Atoms`:

- ``positions``: the stored positions; ``cell = box.T`` (the store's box has the lattice
  vectors as columns, an ASE cell has them as rows); ``pbc`` periodic in every stored axis.
- Chemical symbols: species ``s`` is the element of atomic number ``s + 1`` (H, He, Li, ...),
  and the LAMMPS atom type of species ``s`` is ``s + 1``. The symbols are labels only (OVITO
  shows them as particle type names); nothing else about the element is meant.
- Per-atom arrays: ``species_index`` (int, the stored species index; not ``species``: in
  extended XYZ that column name is reserved for the chemical symbols), ``diameter`` (the
  particle's species diameter), ``radius = diameter / 2`` (what OVITO uses for display), and
  every per-particle array of the store for that seed (e.g. ``rattler`` of measured stores).
- ``atoms.info``: ``seed``, every per-seed scalar of the store (``energy``, ``pressure``,
  ``B``, ``G``, ``nu``, ``max_force``, ``converged``, ``iterations``, ...; whatever the stage
  wrote), ``dim`` (2 or 3), ``species_diameters`` (one per species, also species without
  particles) and ``stage`` when known. Multi-dimensional arrays (stress, elastic matrices,
  pair and bond lists of networks) are not exported.

2D states are exported as 3D, which OVITO and LAMMPS need: ``z = 0`` for every particle, a
third cell vector ``(0, 0, 1)`` (unit thickness, what LAMMPS ``dimension 2`` needs as z
extent) and ``pbc = (True, True, False)``: the third axis is not periodic and carries no
physics. ``atoms.info["dim"]`` says which axes are real.

Units are the project's reduced units, unchanged: lengths in units of the large diameter
(or the lattice scale), energies in units of the repulsion scale k, unit masses. In LAMMPS
use ``units lj``. (ASE is called with its ``metal`` unit set, whose length unit, the
angstrom, is ASE's own: it converts nothing, the numbers are written as stored.)

Command line::

    python -m tunable_solids.export STORE [--seed S | --all] --format {xyz,lammps} -o OUT
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.lammps import Prism
from ase.data import chemical_symbols
from ase.io import write as ase_write
from ase.io.extxyz import output_column_format

from .store import dimension_names, read_store

PLANE_THICKNESS = 1.0  # z extent of the cell of an exported 2D state (z = 0 for all particles)
FORMATS = ("xyz", "lammps")


# ----------------------------------------------------------------------------- reading


def species_symbols(n_species: int) -> list[str]:
    """Chemical symbols labelling species ``0 .. n_species - 1``: atomic number ``s + 1``."""
    if not 0 < n_species < len(chemical_symbols):
        raise ValueError(
            f"cannot label {n_species} species with chemical symbols "
            f"(1 to {len(chemical_symbols) - 1} are possible)"
        )
    return list(chemical_symbols[1 : n_species + 1])


def read_state_store(
    path: str | os.PathLike,
) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]], dict]:
    """``(arrays, dimension_names, attributes)`` of a state store, with clear errors for a
    missing store or a store without states (e.g. a Jacobian store)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"store not found: {path}")
    if not (path / "zarr.json").is_file():
        raise FileNotFoundError(f"not a Zarr v3 store (no zarr.json): {path}")
    arrays, attrs = read_store(path)
    dims = dimension_names(path)
    missing = [k for k in ("seed", "species", "diameter", "positions", "box") if k not in arrays]
    if missing:
        raise ValueError(
            f"{path} holds no states (missing arrays: {', '.join(missing)}); "
            "export reads initial, minimized or measured stores"
        )
    return arrays, dims, attrs


def seed_index(arrays: Mapping[str, np.ndarray], seed: int) -> int:
    """Position of ``seed`` along the store's seed axis; names the stored seeds if absent."""
    seeds = np.asarray(arrays["seed"]).tolist()
    if seed not in seeds:
        raise KeyError(
            f"seed {seed} is not in the store; available seeds: {', '.join(map(str, seeds))}"
        )
    return seeds.index(seed)


def state_atoms(
    arrays: Mapping[str, np.ndarray],
    dims: Mapping[str, Sequence[str]],
    index: int,
    stage: str | None = None,
) -> Atoms:
    """The state at position ``index`` of the seed axis as an :class:`ase.Atoms` (pure).

    ``arrays`` and ``dims`` are the store's arrays and dimension names (as returned by
    :func:`read_state_store`). See the module docstring for what goes where; 2D states
    become 3D with ``z = 0``, a unit-thickness third cell vector and a non-periodic z.
    """
    species = np.asarray(arrays["species"]).astype(np.int64)
    diameters = np.asarray(arrays["diameter"], dtype=np.float64)
    R = np.asarray(arrays["positions"][index], dtype=np.float64)
    box = np.asarray(arrays["box"][index], dtype=np.float64)
    n, dim = R.shape
    if dim not in (2, 3) or box.shape != (dim, dim):
        raise ValueError(f"positions {R.shape} and box {box.shape} are not a 2D or 3D state")
    if (
        species.shape != (n,)
        or species.min(initial=0) < 0
        or species.max(initial=0) >= len(diameters)
    ):
        raise ValueError("species indices do not match the particles or the diameters")

    positions = np.zeros((n, 3))
    positions[:, :dim] = R
    cell = np.zeros((3, 3))
    cell[:dim, :dim] = box.T  # ASE: lattice vectors are rows
    if dim == 2:
        cell[2, 2] = PLANE_THICKNESS
    symbols = species_symbols(len(diameters))
    atoms = Atoms(
        symbols=[symbols[s] for s in species],
        positions=positions,
        cell=cell,
        pbc=[True, True, dim == 3],
    )
    atoms.set_array("species_index", species)
    atoms.set_array("diameter", diameters[species])
    atoms.set_array("radius", diameters[species] / 2.0)
    reserved = {"positions", "numbers", "species", "species_index", "diameter", "radius"}
    for name in sorted(arrays):
        d = tuple(dims.get(name, ()))
        if name in reserved:
            continue
        if d[:2] == ("seed", "particle"):
            atoms.set_array(name, np.asarray(arrays[name][index]))
        elif d[:1] == ("particle",):
            atoms.set_array(name, np.asarray(arrays[name]))

    info: dict = {"seed": int(np.asarray(arrays["seed"])[index])}
    for name in sorted(arrays):
        if name != "seed" and tuple(dims.get(name, ())) == ("seed",):
            info[name] = np.asarray(arrays[name])[index].item()
    info["dim"] = dim
    info["species_diameters"] = diameters.copy()
    if stage is not None:
        info["stage"] = str(stage)
    atoms.info.update(info)
    return atoms


def store_atoms(path: str | os.PathLike, seeds: Iterable[int] | None = None) -> list[Atoms]:
    """The states of a store (all seeds, or the given seed values) as :class:`ase.Atoms`."""
    arrays, dims, attrs = read_state_store(path)
    stored = np.asarray(arrays["seed"]).tolist()
    indices = range(len(stored)) if seeds is None else [seed_index(arrays, s) for s in seeds]
    return [state_atoms(arrays, dims, i, attrs.get("stage")) for i in indices]


# ----------------------------------------------------------------------------- writers


def _column_strings(values: np.ndarray) -> list[list[str]]:
    """Text of one per-atom array, one list per file column, at full precision."""
    values = np.asarray(values)
    cols = values.reshape(len(values), -1).T
    kind = values.dtype.kind
    if kind == "f":
        return [[repr(float(x)) for x in c] for c in cols]  # shortest exact decimal
    if kind == "b":
        return [["T" if x else "F" for x in c] for c in cols]
    if kind in "iu":
        return [[str(int(x)) for x in c] for c in cols]
    return [[str(x) for x in c] for c in cols]


def write_extxyz(path: str | os.PathLike, atoms_list: Atoms | Sequence[Atoms]) -> Path:
    """Write states as the frames of one extended XYZ file (OVITO, ``ase.io.read(path, ':')``).

    Each frame: ``Lattice`` (the cell), ``Properties`` (symbols, positions and every per-atom
    array of the :class:`ase.Atoms`), ``pbc`` and ``atoms.info`` as key=value pairs. The
    header is built by ASE's extended XYZ writer; the per-atom values are written at full
    precision (ASE itself writes 8 decimals), so the file round-trips exactly. Note that
    ``ase.io.read`` moves ``energy`` from ``info`` to a single-point calculator
    (``atoms.get_potential_energy()``); OVITO shows it as a global attribute.
    """
    if isinstance(atoms_list, Atoms):
        atoms_list = [atoms_list]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for atoms in atoms_list:
        columns = ["symbols", "positions"]
        columns += [k for k in atoms.arrays if k not in ("numbers", "positions", "symbols")]
        arrays = {"symbols": np.array(atoms.get_chemical_symbols()), **atoms.arrays}
        comment, _, _, _ = output_column_format(atoms, columns, arrays, write_info=True)
        text = [col for name in columns for col in _column_strings(arrays[name])]
        lines.append(str(len(atoms)))
        lines.append(comment)
        lines.extend(" ".join(row) for row in zip(*text, strict=True))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_lammps_data(path: str | os.PathLike, atoms: Atoms) -> Path:
    """Write one state as a LAMMPS data file (``atom_style atomic``, ``read_data``).

    - Atom type of species ``s`` is ``s + 1``, for every species of the store, also those
      without particles in this state (``atoms.info["species_diameters"]`` gives the count).
    - The first line (a comment for LAMMPS) lists the state and the type -> species ->
      diameter map; a ``Masses`` section sets the project's unit masses.
    - Lengths as stored (reduced units: use ``units lj``). LAMMPS needs a box with ``a``
      along x and ``b`` in the xy plane: a general (triclinic) box is rotated rigidly into
      that form by ASE, so fractional coordinates are unchanged but Cartesian ones are
      rotated. Tilt factors are written as they are (no lattice reduction: a strongly
      sheared box may need ``box tilt large`` in older LAMMPS versions). Positions are
      wrapped into the box, with image flags.
    - 2D states: ``z = 0`` and ``zlo zhi = -0.5 0.5`` (unit thickness straddling z = 0, as
      LAMMPS ``dimension 2`` requires; the z axis must be periodic there: ``boundary p p p``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = atoms.info
    diameters = np.asarray(info.get("species_diameters", []), dtype=np.float64)
    if diameters.size:
        specorder = species_symbols(len(diameters))
    else:  # an Atoms object not built by state_atoms
        specorder = sorted(set(atoms.get_chemical_symbols()), key=chemical_symbols.index)
    dim = int(info.get("dim", 3))
    buf = io.StringIO()
    ase_write(
        buf,
        atoms,
        format="lammps-data",
        specorder=specorder,
        atom_style="atomic",
        units="metal",  # ASE's own length unit: the positions are written unconverted
        write_image_flags=True,
        masses=False,
        prismobj=Prism(np.asarray(atoms.cell), pbc=atoms.pbc),
    )
    lines = buf.getvalue().splitlines()

    types = ", ".join(
        f"{t + 1} = species {t}" + (f" (D = {float(diameters[t])!r})" if diameters.size else "")
        for t in range(len(specorder))
    )
    state = " ".join(
        f"{k} {info[k]}" for k in ("stage", "seed") if k in info
    )  # e.g. "stage measured seed 3"
    lines[0] = (
        f"tunable_solids export: {state + ', ' if state else ''}dim {dim}, "
        f"reduced units (units lj), unit masses; atom types: {types}"
    )
    out: list[str] = []
    for line in lines:
        if dim == 2 and line.rstrip().endswith("zlo zhi"):
            half = PLANE_THICKNESS / 2.0
            line = f"{-half!r} {half!r}  zlo zhi"
        if line.startswith("Atoms"):
            out += ["Masses", ""] + [f"{t + 1} 1.0" for t in range(len(specorder))] + [""]
        out.append(line)
    path.write_text("\n".join(out) + "\n")
    return path


def lammps_path(out: str | os.PathLike, seed: int) -> Path:
    """``OUT`` with ``_seed<seed>`` before its suffix (``a/b.data`` -> ``a/b_seed3.data``)."""
    out = Path(out)
    return out.with_name(f"{out.stem}_seed{seed}{out.suffix}")


# ----------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tunable_solids.export",
        description="Export stored states to extended XYZ (OVITO) or LAMMPS data files.",
    )
    p.add_argument("store", help="state store, e.g. results/soft_2d/batch0/minimized.zarr")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--seed", type=int, help="export only this seed (a value of `seed`)")
    which.add_argument("--all", action="store_true", help="export every seed (the default)")
    p.add_argument(
        "--format",
        required=True,
        choices=FORMATS,
        help="xyz: one extended XYZ file, one frame per seed; "
        "lammps: one LAMMPS data file per seed (with --all: OUT_seed<s>.<suffix>)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        arrays, dims, attrs = read_state_store(args.store)
        seeds = np.asarray(arrays["seed"]).tolist()
        chosen = seeds if args.seed is None else [args.seed]
        indices = [seed_index(arrays, s) for s in chosen]
    except (FileNotFoundError, KeyError, ValueError) as err:
        parser.error(err.args[0] if err.args else str(err))
    stage = attrs.get("stage")
    states = [state_atoms(arrays, dims, i, stage) for i in indices]
    if args.format == "xyz":
        path = write_extxyz(args.output, states)
        print(f"wrote {path} ({len(states)} frame{'s' if len(states) != 1 else ''})")
    else:
        for seed, atoms in zip(chosen, states, strict=True):
            target = Path(args.output) if args.seed is not None else lammps_path(args.output, seed)
            print(f"wrote {write_lammps_data(target, atoms)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
