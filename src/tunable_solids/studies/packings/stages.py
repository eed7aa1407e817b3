"""Stages of the packings study as plain functions over one scenario and one batch of seeds.

Each stage takes the resolved scenario settings (:func:`config.scenario_settings`) and
the arrays of the previous stage's store, and returns ``{name: (dims, array)}`` for the
next store plus a summary for its attributes. No file I/O happens here: the Snakemake
scripts in ``workflow/scripts/packings`` read and write the stores.

- :func:`generate` (``initial.zarr``): random or crystalline positions, box, species; the
  spring network of ``spring_network`` scenarios;
- :func:`minimize_batch` (``minimized.zarr``): FIRE to ``max|F| <= force_tol``, at the target
  pressure where one is set;
- :func:`measure_batch` (``measured.zarr``): stress, elastic constants, moduli, low spectrum,
  rattlers and bond contributions.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from tunable_solids import mechanics as mech
from tunable_solids import systems
from tunable_solids.minimize import minimize
from tunable_solids.multigrid import plan_for
from tunable_solids.potentials import SpeciesParams, make_potential
from tunable_solids.preparation import (
    interacting_pairs,
    minimize_options,
    network_of,
    potential_of,
    species_params_of,
)
from tunable_solids.progress import Progress
from tunable_solids.protocols import prepare_at_pressure
from tunable_solids.space import check_box_fits, pair_vectors
from tunable_solids.store import Arrays


def _pad(rows: list[np.ndarray], fill, dtype) -> np.ndarray:
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), fill, dtype=dtype)
    for k, r in enumerate(rows):
        out[k, : len(r)] = r
    return out


# --------------------------------------------------------------------------- generate
def generate(settings: dict, seeds: list[int]) -> tuple[Arrays, dict]:
    """Initial configurations of a batch: random or crystalline positions, box, species.

    For ``spring_network`` scenarios the packing is prepared here (minimized with the
    packing potential, at the target pressure if one is set) and its contacts between
    non-rattlers become the bonds, with rest lengths equal to the contact distances.
    """
    n, dim = settings["N"], settings["dim"]
    params = species_params_of(settings)
    species = systems.assign_species(n, settings["species"]["n_species"])
    diam = np.asarray(params.diameter)[species]
    positions, boxes, bonds = [], [], []
    progress = Progress(f"generate {settings['name']}", len(seeds))
    for seed in seeds:
        rng = np.random.default_rng(seed)
        if settings["structure"] == "crystal":
            R, box = systems.crystal(n, dim, settings["density"])
        else:
            if "density" in settings:
                box = systems.box_for_density(n, dim, settings["density"])
            else:
                box = systems.box_for_packing_fraction(diam, dim, settings["packing_fraction"])
            R = systems.random_positions(rng, n, box)
        check_box_fits(box, float(potential_range(settings, params)))
        if settings["potential"] == "spring_network":
            R, box, bond = _network_from_packing(settings, R, box, params, species)
            bonds.append(bond)
        positions.append(R)
        boxes.append(box)
        progress.step(f"seed {seed}")
    arrays: Arrays = {
        "seed": (("seed",), np.asarray(seeds, np.int64)),
        "positions": (("seed", "particle", "axis"), np.stack(positions)),
        "box": (("seed", "axis", "lattice_vector"), np.stack(boxes)),
        "species": (("particle",), species.astype(np.int32)),
        "diameter": (("species",), np.asarray(params.diameter)),
        "k": (("species", "species_b"), np.asarray(params.k)),
        "binding": (("species", "species_b"), np.asarray(params.binding)),
    }
    if bonds:
        arrays["bond_i"] = (("seed", "bond"), _pad([b[0] for b in bonds], -1, np.int32))
        arrays["bond_j"] = (("seed", "bond"), _pad([b[1] for b in bonds], -1, np.int32))
        arrays["rest_length"] = (("seed", "bond"), _pad([b[2] for b in bonds], np.nan, float))
        arrays["stiffness"] = (("seed", "bond"), _pad([b[3] for b in bonds], np.nan, float))
    return arrays, {"n_seeds": len(seeds)}


def potential_range(settings: dict, params: SpeciesParams) -> float:
    """Largest interaction range of the scenario (for the network: of its packing)."""
    name = (
        settings["network"]["packing_potential"]
        if settings["potential"] == "spring_network"
        else settings["potential"]
    )
    pot = make_potential(name, **settings.get("potential_options", {}))
    return float(pot.cutoff(jnp.max(params.diameter)))


def _network_from_packing(settings, R, box, params, species):
    pot = make_potential(settings["network"]["packing_potential"])
    sp = jnp.asarray(species)
    if "pressure" in settings:
        mn = settings["minimize"]
        prep = prepare_at_pressure(
            pot,
            R,
            box,
            params,
            sp,
            settings["pressure"],
            minimize_options(settings),
            mn["pressure_rtol"],
            mn["pressure_max_rounds"],
        )
        m, box = prep.minimum, prep.box
        ok = prep.converged
    else:
        m = minimize(pot, R, box, params, sp, minimize_options(settings))
        ok = bool(m.converged)
    if not ok:
        raise RuntimeError("the packing a spring network is built from did not converge")
    pairs = interacting_pairs(pot, m.positions, box, params)
    model = mech.Model(pot, jnp.asarray(box), sp, pairs)
    valid = np.asarray(pairs.mask)
    contact = np.asarray(mech.contact_mask(model, m.positions, params))[valid]
    i, j = np.asarray(pairs.i)[valid], np.asarray(pairs.j)[valid]
    ratt = mech.rattlers(len(species), box.shape[0], i, j, contact, pot.attractive)
    contact &= ~ratt[i] & ~ratt[j]
    dr = np.asarray(pair_vectors(m.positions, jnp.asarray(box), pairs))[valid]
    lengths = np.linalg.norm(dr, axis=-1)
    keep = np.flatnonzero(contact)
    k = settings["network"]["stiffness"]
    return np.asarray(m.positions), box, (i[keep], j[keep], lengths[keep], np.full(len(keep), k))


STATIC_KEYS = (
    "seed",
    "species",
    "diameter",
    "k",
    "binding",
    "bond_i",
    "bond_j",
    "rest_length",
    "stiffness",
)


def _static(arrays: dict, dims: dict) -> Arrays:
    return {k: (dims[k], arrays[k]) for k in STATIC_KEYS if k in arrays}


# --------------------------------------------------------------------------- minimize
def minimize_batch(settings: dict, arrays: dict, dims: dict) -> tuple[Arrays, dict]:
    """Minimize every state of a batch to ``max|F| <= force_tol`` (at the target pressure
    for disordered packings that set one)."""
    pot = potential_of(settings)
    opts = minimize_options(settings)
    network = settings["potential"] == "spring_network"
    params = SpeciesParams(*(jnp.asarray(arrays[k]) for k in ("diameter", "k", "binding")))
    species = jnp.asarray(arrays["species"])
    mn = settings["minimize"]
    out = {
        k: []
        for k in (
            "positions",
            "box",
            "energy",
            "max_force",
            "iterations",
            "converged",
            "pressure",
            "pressure_rounds",
        )
    }
    progress = Progress(f"minimize {settings['name']}", len(arrays["seed"]))
    for s, seed in enumerate(arrays["seed"]):
        R, box = arrays["positions"][s], arrays["box"][s]
        rounds = 0
        if network:
            bonds, nparams = network_of(arrays, s)
            m = minimize(pot, R, box, nparams, None, opts, bonds=bonds)
            ok, iters = bool(m.converged), int(m.iterations)
            p = float(
                mech.pressure(mech.Model(pot, jnp.asarray(box), None, bonds), m.positions, nparams)
            )
        elif "pressure" in settings:
            prep = prepare_at_pressure(
                pot,
                R,
                box,
                params,
                species,
                settings["pressure"],
                opts,
                mn["pressure_rtol"],
                mn["pressure_max_rounds"],
            )
            m, box, p, rounds = prep.minimum, prep.box, prep.pressure, prep.rounds
            ok, iters = prep.converged, prep.total_iterations
        else:
            m = minimize(pot, R, box, params, species, opts)
            ok, iters = bool(m.converged), int(m.iterations)
            p = float(
                mech.pressure(
                    mech.Model(pot, jnp.asarray(box), species, m.pairs), m.positions, params
                )
            )
        for key, val in (
            ("positions", np.asarray(m.positions)),
            ("box", np.asarray(box)),
            ("energy", float(m.energy)),
            ("max_force", float(m.max_force)),
            ("iterations", iters),
            ("converged", ok),
            ("pressure", p),
            ("pressure_rounds", rounds),
        ):
            out[key].append(val)
        progress.step(
            f"seed {seed}: E = {float(m.energy):.10g}, max|F| = {float(m.max_force):.2e},"
            f" iterations = {iters}, p = {p:.6g}, converged = {ok}"
        )
    result = _static(arrays, dims)
    result["positions"] = (("seed", "particle", "axis"), np.stack(out["positions"]))
    result["box"] = (("seed", "axis", "lattice_vector"), np.stack(out["box"]))
    for key, dtype in (
        ("energy", float),
        ("max_force", float),
        ("iterations", np.int64),
        ("converged", bool),
        ("pressure", float),
        ("pressure_rounds", np.int64),
    ):
        result[key] = (("seed",), np.asarray(out[key], dtype))
    conv = np.asarray(out["converged"])
    summary = {
        "n_states": len(conv),
        "n_converged": int(conv.sum()),
        "max_force_max": float(np.max(out["max_force"])),
        "iterations_max": int(np.max(out["iterations"])),
    }
    return result, summary


# --------------------------------------------------------------------------- measure
def measure_batch(settings: dict, arrays: dict, dims: dict) -> tuple[Arrays, dict]:
    """Stress, elastic constants, moduli, low spectrum, rattlers and bond contributions.

    States that did not converge are not measured: their entries are NaN (or -1 / False).
    """
    pot = potential_of(settings)
    dim, n = settings["dim"], settings["N"]
    nv = mech.n_voigt(dim)
    n_freq = min(settings["measure"]["n_frequencies"], n * dim - dim)
    cg_tol = settings["measure"]["cg_tol"]
    network = settings["potential"] == "spring_network"
    species = None if network else jnp.asarray(arrays["species"])
    sparams = SpeciesParams(*(jnp.asarray(arrays[k]) for k in ("diameter", "k", "binding")))
    n_seeds = len(arrays["seed"])
    res = {
        "stress": np.full((n_seeds, dim, dim), np.nan),
        "elastic_voigt": np.full((n_seeds, nv, nv), np.nan),
        "elastic_independent": np.full((n_seeds, nv * (nv + 1) // 2), np.nan),
        "frequencies": np.full((n_seeds, n_freq), np.nan),
        "rattler": np.zeros((n_seeds, n), bool),
    }
    scalars = {
        k: np.full(n_seeds, np.nan)
        for k in (
            "pressure",
            "B",
            "G",
            "nu",
            "elastic_min_eig",
            "cg_residual",
            "translation_eig_max",
            "frequency_min_gap",
        )
    }
    counts = {k: np.full(n_seeds, -1, np.int64) for k in ("n_rattlers", "n_contacts")}
    pair_rows = {k: [] for k in ("pair_i", "pair_j", "pair_contact", "bond_K", "bond_G")}
    progress = Progress(f"measure {settings['name']}", n_seeds)
    for s, seed in enumerate(arrays["seed"]):
        R, box = jnp.asarray(arrays["positions"][s]), jnp.asarray(arrays["box"][s])
        if not arrays["converged"][s]:
            for k in pair_rows:
                pair_rows[k].append(np.zeros(0))
            progress.step(f"seed {seed}: not converged, skipped")
            continue
        if network:
            pairs, params = network_of(arrays, s)
        else:
            params = sparams
            pairs = interacting_pairs(pot, R, box, params)
        mg = None if network else plan_for(pot, params, np.asarray(box), R.shape[0])
        model = mech.Model(pot, box, species, pairs, mg)
        sig = mech.stress(model, R, params)
        el = mech.elastic_constants(model, R, params, cg_tol=cg_tol)
        B, G, nu = mech.isotropic_moduli(el.voigt, dim)
        valid = np.asarray(pairs.mask)
        contact = np.asarray(mech.contact_mask(model, R, params))[valid]
        i, j = np.asarray(pairs.i)[valid], np.asarray(pairs.j)[valid]
        ratt = mech.rattlers(n, dim, i, j, contact, pot.attractive)
        spec = mech.vibrational_spectrum(model, R, params, jnp.asarray(ratt), n_freq)
        K, Gb = mech.bond_contributions(model, R, params, el.nonaffine)
        res["stress"][s] = np.asarray(sig)
        res["elastic_voigt"][s] = np.asarray(el.voigt)
        res["elastic_independent"][s] = np.asarray(mech.independent_constants(el.voigt))
        res["frequencies"][s] = np.asarray(spec.frequencies)
        res["rattler"][s] = ratt
        for key, val in (
            ("pressure", -np.trace(np.asarray(sig)) / dim),
            ("B", B),
            ("G", G),
            ("nu", nu),
            ("elastic_min_eig", mech.elastic_stability(el.voigt, dim)),
            ("cg_residual", el.residual),
            ("translation_eig_max", jnp.max(jnp.abs(spec.translation_eigs))),
            ("frequency_min_gap", spec.min_gap),
        ):
            scalars[key][s] = float(val)
        counts["n_rattlers"][s] = int(ratt.sum())
        counts["n_contacts"][s] = int((contact & ~ratt[i] & ~ratt[j]).sum())
        for key, val in (
            ("pair_i", i),
            ("pair_j", j),
            ("pair_contact", contact),
            ("bond_K", np.asarray(K)[valid]),
            ("bond_G", np.asarray(Gb)[valid]),
        ):
            pair_rows[key].append(np.asarray(val))
        progress.step(
            f"seed {seed}: B = {float(B):.6g}, G = {float(G):.6g}, nu = {float(nu):.6f},"
            f" rattlers = {int(ratt.sum())}, CG residual = {float(el.residual):.1e}"
        )
    result = _static(arrays, dims)
    for key in ("positions", "box", "energy", "max_force", "iterations", "converged"):
        result[key] = (dims[key], arrays[key])
    result["stress"] = (("seed", "axis", "axis_b"), res["stress"])
    result["elastic_voigt"] = (("seed", "voigt", "voigt_b"), res["elastic_voigt"])
    result["elastic_independent"] = (("seed", "constant"), res["elastic_independent"])
    result["frequencies"] = (("seed", "mode"), res["frequencies"])
    result["rattler"] = (("seed", "particle"), res["rattler"])
    for key, val in {**scalars, **counts}.items():
        result[key] = (("seed",), val)
    result["pair_i"] = (("seed", "pair"), _pad(pair_rows["pair_i"], -1, np.int32))
    result["pair_j"] = (("seed", "pair"), _pad(pair_rows["pair_j"], -1, np.int32))
    result["pair_contact"] = (("seed", "pair"), _pad(pair_rows["pair_contact"], False, bool))
    result["bond_K"] = (("seed", "pair"), _pad(pair_rows["bond_K"], np.nan, float))
    result["bond_G"] = (("seed", "pair"), _pad(pair_rows["bond_G"], np.nan, float))
    summary = {
        "voigt_order": mech.voigt_labels(dim),
        "independent_constants": mech.independent_labels(dim),
        "n_measured": int(np.isfinite(scalars["B"]).sum()),
        "cg_residual_max": float(np.nanmax(scalars["cg_residual"])) if n_seeds else None,
    }
    return result, summary


# --------------------------------------------------------------------------- contract
# Arrays every store of a stage carries, with their dimension names. Spring-network
# scenarios add NETWORK_ARRAYS to every stage. The README's "Store contract" documents
# the meaning of each; tests/packings/test_packings_workflow.py checks real stores against
# this table.
_STATIC = {
    "seed": ("seed",),
    "species": ("particle",),
    "diameter": ("species",),
    "k": ("species", "species_b"),
    "binding": ("species", "species_b"),
}
_STATE = {
    "positions": ("seed", "particle", "axis"),
    "box": ("seed", "axis", "lattice_vector"),
}
_MINIMUM = {k: ("seed",) for k in ("energy", "max_force", "iterations", "converged")}
NETWORK_ARRAYS = {k: ("seed", "bond") for k in ("bond_i", "bond_j", "rest_length", "stiffness")}
CONTRACT = {
    "initial": {**_STATIC, **_STATE},
    "minimized": {
        **_STATIC,
        **_STATE,
        **_MINIMUM,
        "pressure": ("seed",),
        "pressure_rounds": ("seed",),
    },
    "measured": {
        **_STATIC,
        **_STATE,
        **_MINIMUM,
        "stress": ("seed", "axis", "axis_b"),
        "elastic_voigt": ("seed", "voigt", "voigt_b"),
        "elastic_independent": ("seed", "constant"),
        "frequencies": ("seed", "mode"),
        "rattler": ("seed", "particle"),
        **{
            k: ("seed",)
            for k in (
                "pressure",
                "B",
                "G",
                "nu",
                "elastic_min_eig",
                "cg_residual",
                "translation_eig_max",
                "frequency_min_gap",
                "n_rattlers",
                "n_contacts",
            )
        },
        **{k: ("seed", "pair") for k in ("pair_i", "pair_j", "pair_contact", "bond_K", "bond_G")},
    },
}
