"""Stages of the independent-response study, as plain functions over one seed batch.

Like the packings stages, every stage takes the resolved scenario settings
(:func:`config.scenario_settings`, with its ``response`` block) and the arrays of earlier
stores, and returns ``{name: (dims, array)}`` plus a summary; no file I/O happens here.

- :func:`jacobian_batch` (store ``jacobian.zarr``): for every minimized state and every
  parameterization (one random species reassignment per entry of ``response.n_theta``;
  the bond stiffnesses for spring networks) the AD Jacobian of the union of all requested
  feature groups, and per feature set its row block's SVD, rank and ``fully_independent``.
- :func:`jacobian_check_batch` (``jacobian_check.zarr``): central finite differences of
  re-minimized features (:func:`physics.jacobian_fd`) for the first ``fd_check.seeds``
  seeds, and the max relative error per feature group.
- :func:`sweeps_batch` (``sweeps.zarr``): linear-regime sweeps along the first right
  singular vectors (``gamma_tilde``, ``gamma_r``, ``gamma_star``, ``zeta = gamma_star s``)
  and the one-step inverse design test, at the reference parameterization.

The Jacobian of a feature set is a row block of the Jacobian of the union of the groups:
the features are computed together, and ``dy/dtheta`` of one entry does not depend on
which other entries are computed alongside, so this is the same matrix as computing the
set on its own, at the cost of one Jacobian per parameterization. Likewise all
parameterizations of a scenario are padded to the largest species count
(:func:`pad_species`; the padding species hold no particle and their zero columns are
dropped), so the Jacobian compiles once per scenario; forward or reverse mode is chosen by
the padded shape.
"""

from __future__ import annotations

import logging

import jax.numpy as jnp
import numpy as np

from tunable_solids import mechanics as mech
from tunable_solids import systems
from tunable_solids.parameters import params_of, species_for_n_theta, theta_labels, theta_of
from tunable_solids.potentials import SpeciesParams
from tunable_solids.preparation import (
    State,
    contact_set,
    interacting_pairs,
    minimize_options,
    network_of,
    potential_of,
)
from tunable_solids.progress import Progress
from tunable_solids.store import Arrays

from . import physics as resp

log = logging.getLogger(__name__)

FEATURE_ORDER = resp.FEATURE_GROUPS  # ("C", "Sigma", "omega"): canonical order of the union

# Relative gap between consecutive returned frequencies below which the spectrum counts as
# degenerate (perfect crystals: exactly 0 to round-off; the disordered toy states, N = 32-128:
# >= 7e-3).
# Derivatives of degenerate frequencies are finite (first-order perturbation theory) but
# depend on the basis inside the degenerate subspace, so such states are flagged.
DEGENERATE_GAP = 1e-8

#: Per-mode results of a sweep (arrays ``(seed, mode)`` of sweeps.zarr, columns of
#: linear_regime.csv); ``*_lo``: the grid point before (the value lies in ``(lo, value]``).
SWEEP_MODE_QUANTITIES = (
    "s",
    "gamma_tilde",
    "gamma_r",
    "gamma_star",
    "zeta",
    "gamma_r_lo",
    "gamma_star_lo",
)


# --------------------------------------------------------------------------- parameterization
def feature_groups(feature_sets) -> tuple[str, ...]:
    """Union of the groups of all feature sets, in the canonical order C, Sigma, omega."""
    used = {g for fs in feature_sets for g in fs}
    return tuple(g for g in FEATURE_ORDER if g in used)


def feature_set_name(fs) -> str:
    return "+".join(fs)


def n_frequencies(settings: dict) -> int:
    n, dim = settings["N"], settings["dim"]
    return int(min(settings["response"]["n_frequencies"], n * dim - dim))


def union_spec(settings: dict) -> resp.FeatureSpec:
    return resp.FeatureSpec(
        feature_groups(settings["response"]["feature_sets"]), n_frequencies(settings)
    )


def feature_set_rows(settings: dict) -> np.ndarray:
    """``(n_sets, n_y_union)`` mask: the union rows that make up each feature set."""
    spec = union_spec(settings)
    groups = resp.feature_group_of(spec, settings["dim"])
    return np.stack([np.isin(groups, fs) for fs in settings["response"]["feature_sets"]])


def is_network(settings: dict) -> bool:
    return settings["potential"] == "spring_network"


def parameterizations(settings: dict) -> list[tuple[int, int]]:
    """``(n_theta, n_species)`` of each parameterization; ``(-1, 0)`` for a spring network
    (one parameterization: every bond stiffness, ``n_theta`` = number of bonds)."""
    r = settings["response"]
    if is_network(settings):
        return [(-1, 0)]
    return [(int(n), species_for_n_theta(r["params"], int(n))) for n in r["n_theta"]]


def reference_index(settings: dict) -> int:
    """Parameterization used by sweeps, one-step design and the susceptibility figure."""
    if is_network(settings):
        return 0
    r = settings["response"]
    return [int(n) for n in r["n_theta"]].index(int(r["reference_n_theta"]))


def reassignment_rng(seed: int, n_species: int) -> np.random.Generator:
    """The random species reassignment of state ``seed`` into ``n_species`` species."""
    return np.random.default_rng((int(seed), int(n_species)))


def design_rng(seed: int, feature_set: int) -> np.random.Generator:
    """Random direction of the requested change of the one-step design test."""
    return np.random.default_rng((int(seed), int(feature_set), 1))


# --------------------------------------------------------------------------- states
def base_state(settings: dict, arrays: dict, s: int):
    """``(State, params)`` of minimized state ``s`` with the scenario's own species.

    Pairs: every interacting pair at the minimum (bonds for networks); rattlers by the
    contact rule of the potential (attractive potentials: particles without contacts).
    """
    pot = potential_of(settings)
    R, box = jnp.asarray(arrays["positions"][s]), jnp.asarray(arrays["box"][s])
    n, dim = R.shape
    if is_network(settings):
        pairs, params = network_of(arrays, s)
        species = None
    else:
        params = SpeciesParams(*(jnp.asarray(arrays[k]) for k in ("diameter", "k", "binding")))
        species = jnp.asarray(arrays["species"])
        pairs = interacting_pairs(pot, R, box, params)
    model = mech.Model(pot, box, species, pairs)
    valid = np.asarray(pairs.mask)
    contact = np.asarray(mech.contact_mask(model, R, params))[valid]
    i, j = np.asarray(pairs.i)[valid], np.asarray(pairs.j)[valid]
    ratt = mech.rattlers(n, dim, i, j, contact, attractive=pot.attractive)
    return State(R, box, species, pairs, jnp.asarray(ratt)), params


def pad_species(params, n_total: int) -> SpeciesParams:
    """``params`` of ``n`` species extended by ``n_total - n`` species that no particle
    belongs to (copies of species 0).

    Every parameterization of a scenario then has the same shapes, so the Jacobian is
    compiled once per scenario instead of once per n_theta. The extra species take part in
    no pair, so their columns of J are exactly zero and :func:`used_columns` drops them:
    the kept columns are the Jacobian of the unpadded parameterization.
    """
    d, k, b = (np.asarray(x) for x in params)
    idx = np.concatenate([np.arange(len(d)), np.zeros(n_total - len(d), int)])
    return SpeciesParams(
        jnp.asarray(d[idx]), jnp.asarray(k[np.ix_(idx, idx)]), jnp.asarray(b[np.ix_(idx, idx)])
    )


def used_columns(names, n_species: int, n_total: int) -> np.ndarray:
    """Columns of a padded theta (:func:`pad_species`) that belong to the first
    ``n_species`` species, in the order of the unpadded theta."""
    keep = []
    for name in names:
        if name == "D":
            keep.append(np.arange(n_total) < n_species)
        else:
            i, j = np.triu_indices(n_total)
            keep.append((i < n_species) & (j < n_species))
    return np.flatnonzero(np.concatenate(keep))


def stored_parameterization(settings, arrays, jac, s: int, k: int, state, params0):
    """``(state, params)`` of parameterization ``k`` of state ``s`` as recorded in the
    jacobian store (species per particle and parent map), never re-drawn."""
    if is_network(settings):
        return state, params0
    species = np.asarray(jac["reassigned_species"][s, k])
    parent = np.asarray(jac["parent_species"][s, k])
    parent = parent[parent >= 0]
    d, kk, b = (np.asarray(arrays[x]) for x in ("diameter", "k", "binding"))
    params = SpeciesParams(
        jnp.asarray(d[parent]),
        jnp.asarray(kk[np.ix_(parent, parent)]),
        jnp.asarray(b[np.ix_(parent, parent)]),
    )
    return state._replace(species=jnp.asarray(species, jnp.int32)), params


def _seed_index(settings: dict, seed: int) -> int:
    """Position of ``seed`` in the scenario's seed list (0 for its first seed)."""
    return int(seed) - int(settings["seeds"]["first"])


def batches_with(settings: dict, batches: list[list[int]], stage: str) -> list[int]:
    """Batches of a scenario that the ``jacobian_check`` or ``sweeps`` stage has work in:
    those holding one of the first ``fd_check.seeds`` (``sweeps.seeds``,
    ``inverse_design.seeds``) seeds."""
    r = settings["response"]
    if stage == "jacobian_check":
        count = r["fd_check"]["seeds"]
    else:
        count = max(r.get(block, {}).get("seeds", 0) for block in ("sweeps", "inverse_design"))
    return [b for b, seeds in enumerate(batches) if _seed_index(settings, seeds[0]) < count]


# --------------------------------------------------------------------------- jacobian
def jacobian_batch(settings: dict, arrays: dict, dims: dict) -> tuple[Arrays, dict]:
    """AD Jacobians, SVDs and ranks of every state of a batch (store ``jacobian.zarr``).

    ``arrays`` are those of the batch's ``minimized.zarr``. States that did not converge
    are skipped (NaN entries, rank -1).
    """
    r = settings["response"]
    pot = potential_of(settings)
    n, dim = settings["N"], settings["dim"]
    names = tuple(r["params"])
    spec = union_spec(settings)
    rows = feature_set_rows(settings)
    n_sets, n_y = rows.shape
    labels = resp.feature_labels(spec, dim)
    plist = parameterizations(settings)
    n_par = len(plist)
    seeds = np.asarray(arrays["seed"])
    n_seeds = len(seeds)
    network = is_network(settings)
    if network:
        n_bonds = int(np.max(np.sum(arrays["bond_i"] >= 0, axis=1))) if n_seeds else 0
        max_theta = n_bonds
    else:
        max_theta = max(nt for nt, _ in plist)
    max_sp = max((nsp for _, nsp in plist), default=0)
    n_sing = min(n_y, max_theta)
    rtol = float(r["rank_rtol"])

    out = {
        "n_theta": np.full((n_seeds, n_par), -1, np.int64),
        "reassigned_species": np.full((n_seeds, n_par, n), -1, np.int32),
        "parent_species": np.full((n_seeds, n_par, max(max_sp, 1)), -1, np.int32),
        "theta0": np.full((n_seeds, n_par, max_theta), np.nan),
        "y0": np.full((n_seeds, n_y), np.nan),
        "jacobian": np.full((n_seeds, n_par, n_y, max_theta), np.nan),
        "jacobian_finite": np.zeros((n_seeds, n_par), bool),
        "rank": np.full((n_seeds, n_par, n_sets), -1, np.int64),
        "fully_independent": np.zeros((n_seeds, n_par, n_sets), bool),
        "singular_values": np.full((n_seeds, n_par, n_sets, n_sing), np.nan),
        "left_vectors": np.full((n_seeds, n_par, n_sets, n_y, n_y), np.nan),
        "right_vectors": np.full((n_seeds, n_par, n_sets, max_theta, n_sing), np.nan),
        "rattler": np.zeros((n_seeds, n), bool),
        "n_rattlers": np.full(n_seeds, -1, np.int64),
        "frequency_min_gap": np.full(n_seeds, np.nan),
        "omega_degenerate": np.zeros(n_seeds, bool),
    }
    modes, y0_spread = set(), 0.0
    progress = Progress(f"jacobian {settings['name']}", n_seeds * n_par)
    for s, seed in enumerate(seeds):
        if not arrays["converged"][s]:
            for _ in plist:
                progress.step(f"seed {seed}: not converged, skipped")
            continue
        state, params0 = base_state(settings, arrays, s)
        out["rattler"][s] = np.asarray(state.rattler)
        out["n_rattlers"][s] = int(np.sum(out["rattler"][s]))
        if "omega" in spec.groups:
            model = mech.Model(pot, state.box, state.species, state.pairs)
            sp = mech.vibrational_spectrum(
                model, state.positions, params0, state.rattler, spec.n_frequencies
            )
            gap = float(sp.min_gap)
            out["frequency_min_gap"][s] = gap
            out["omega_degenerate"][s] = gap < DEGENERATE_GAP
        for k, (_, n_sp) in enumerate(plist):
            if network:
                st, params = state, params0
            else:
                ra = systems.reassign_species(
                    reassignment_rng(seed, n_sp), np.asarray(arrays["species"]), params0, n_sp
                )
                out["reassigned_species"][s, k] = ra.species
                out["parent_species"][s, k, :n_sp] = ra.parent
                st = state._replace(species=jnp.asarray(ra.species))
                params = pad_species(ra.params, max_sp)
            jac = resp.jacobian(pot, spec, names, params, st, r["cg_tol"])
            cols = slice(None) if network else used_columns(names, n_sp, max_sp)
            J = np.asarray(jac.J)[:, cols]
            nt = J.shape[1]
            modes.add(jac.mode)
            y0 = np.asarray(jac.y0)
            if np.all(np.isnan(out["y0"][s])):
                out["y0"][s] = y0
            else:  # the reassignment must leave the state (hence y0) unchanged
                y0_spread = max(
                    y0_spread,
                    float(np.max(np.abs(y0 - out["y0"][s])) / max(np.max(np.abs(y0)), 1e-300)),
                )
            out["n_theta"][s, k] = nt
            out["theta0"][s, k, :nt] = np.asarray(jac.theta0)[cols]
            out["jacobian"][s, k, :, :nt] = J
            out["jacobian_finite"][s, k] = bool(np.all(np.isfinite(J)))
            ranks = []
            for f in range(n_sets):
                Jf = J[rows[f]]
                if not np.all(np.isfinite(Jf)):
                    ranks.append("nan")
                    continue
                sv = resp.svd(Jf, rtol)
                ny_f = Jf.shape[0]
                ns = len(sv.s)
                out["rank"][s, k, f] = sv.rank
                out["fully_independent"][s, k, f] = sv.fully_independent
                out["singular_values"][s, k, f, :ns] = sv.s
                out["left_vectors"][s, k, f, :ny_f, :ny_f] = sv.U
                out["right_vectors"][s, k, f, :nt, :ns] = sv.W[:, :ns]
                ranks.append(f"{sv.rank}/{min(Jf.shape)}")
            progress.step(
                f"seed {seed}, n_theta = {nt} ({jac.mode}): rank "
                + ", ".join(
                    f"{feature_set_name(fs)} {rk}"
                    for fs, rk in zip(r["feature_sets"], ranks, strict=True)
                )
            )

    result: Arrays = {
        "seed": (("seed",), seeds.astype(np.int64)),
        "converged": (("seed",), np.asarray(arrays["converged"], bool)),
        "n_species": (("parameterization",), np.asarray([p[1] for p in plist], np.int64)),
        "n_theta": (("seed", "parameterization"), out["n_theta"]),
        "reassigned_species": (("seed", "parameterization", "particle"), out["reassigned_species"]),
        "parent_species": (("seed", "parameterization", "new_species"), out["parent_species"]),
        "theta0": (("seed", "parameterization", "parameter"), out["theta0"]),
        "y0": (("seed", "feature"), out["y0"]),
        "feature_set_rows": (("feature_set", "feature"), rows),
        "jacobian": (("seed", "parameterization", "feature", "parameter"), out["jacobian"]),
        "jacobian_finite": (("seed", "parameterization"), out["jacobian_finite"]),
        "rank": (("seed", "parameterization", "feature_set"), out["rank"]),
        "fully_independent": (
            ("seed", "parameterization", "feature_set"),
            out["fully_independent"],
        ),
        "singular_values": (
            ("seed", "parameterization", "feature_set", "singular"),
            out["singular_values"],
        ),
        "left_vectors": (
            ("seed", "parameterization", "feature_set", "feature", "singular_left"),
            out["left_vectors"],
        ),
        "right_vectors": (
            ("seed", "parameterization", "feature_set", "parameter", "singular"),
            out["right_vectors"],
        ),
        "rattler": (("seed", "particle"), out["rattler"]),
        "n_rattlers": (("seed",), out["n_rattlers"]),
        "frequency_min_gap": (("seed",), out["frequency_min_gap"]),
        "omega_degenerate": (("seed",), out["omega_degenerate"]),
    }
    ranks = out["rank"][out["rank"] >= 0]
    summary = {
        "feature_labels": labels,
        "feature_groups": list(spec.groups),
        "n_frequencies": spec.n_frequencies,
        "feature_sets": [list(fs) for fs in r["feature_sets"]],
        "params": list(names),
        "theta_labels": [
            theta_labels(
                SpeciesParams(np.zeros(n_sp), np.zeros((n_sp, n_sp)), np.zeros((n_sp, n_sp))), names
            )
            if not network
            else ["stiffness_<bond>"]
            for _, n_sp in plist
        ],
        "rank_rtol": rtol,
        "reassignment_rng": "numpy.random.default_rng((seed, n_species))",
        "jacobian_modes": sorted(modes),
        "degenerate_gap": DEGENERATE_GAP,
        "y0_reassignment_max_rel_diff": y0_spread,
        "n_jacobians": int(np.sum(out["n_theta"] >= 0)),
        "n_fully_independent": int(np.sum(out["fully_independent"])),
        "n_rank_deficient": int(np.sum(~out["fully_independent"] & (out["rank"] >= 0))),
        "n_nonfinite": int(np.sum(~out["jacobian_finite"] & (out["n_theta"] >= 0))),
        "rank_min": int(ranks.min()) if ranks.size else None,
    }
    return result, summary


# --------------------------------------------------------------------------- FD check
def check_seeds(settings: dict, seeds) -> list[int]:
    """Indices (into ``seeds``) of the states the finite-difference check covers."""
    count = settings["response"]["fd_check"]["seeds"]
    return [s for s, seed in enumerate(seeds) if _seed_index(settings, seed) < count]


def jacobian_check_batch(
    settings: dict, arrays: dict, dims: dict, jac: dict, jac_dims: dict
) -> tuple[Arrays, dict]:
    """Finite-difference check of the stored Jacobians (store ``jacobian_check.zarr``).

    Only the first ``fd_check.seeds`` seeds of the scenario and the parameterizations in
    ``fd_check.n_theta`` are checked; the other entries are NaN. Errors are per feature
    group: ``max |J - J_fd| / max |J|`` over the group's rows and the columns whose +-h
    re-minimizations kept the contact network (a column that rearranged is flagged, not
    compared).
    """
    r = settings["response"]
    fd = r["fd_check"]
    pot = potential_of(settings)
    names = tuple(r["params"])
    spec = union_spec(settings)
    options = minimize_options(settings)
    plist = parameterizations(settings)
    wanted = set(int(n) for n in fd["n_theta"]) if not is_network(settings) else None
    seeds = np.asarray(arrays["seed"])
    todo = [s for s in check_seeds(settings, seeds) if arrays["converged"][s]]
    n_seeds, n_par = len(seeds), len(plist)
    n_y, max_theta = jac["jacobian"].shape[2:]
    groups = list(spec.groups)
    J_fd = np.full((n_seeds, n_par, n_y, max_theta), np.nan)
    err = np.full((n_seeds, n_par, len(groups)), np.nan)
    rearranged = np.zeros((n_seeds, n_par, max_theta), bool)
    checked = np.zeros((n_seeds, n_par), bool)
    jobs = [
        (s, k) for s in todo for k, (nt, _) in enumerate(plist) if wanted is None or nt in wanted
    ]
    progress = Progress(f"jacobian_check {settings['name']}", len(jobs))
    for s, k in jobs:
        state, params0 = base_state(settings, arrays, s)
        st, params = stored_parameterization(settings, arrays, jac, s, k, state, params0)
        nt = int(jac["n_theta"][s, k])
        J = np.asarray(jac["jacobian"][s, k, :, :nt])
        res = resp.jacobian_fd(pot, spec, names, params, st, J, options, fd["step"], r["cg_tol"])
        J_fd[s, k, :, :nt] = res.J_fd
        rearranged[s, k, :nt] = res.rearranged
        err[s, k] = [res.max_rel_err[g] for g in groups]
        checked[s, k] = True
        progress.step(
            f"seed {seeds[s]}, n_theta = {nt}: max rel. error "
            + ", ".join(f"{g} {e:.1e}" for g, e in res.max_rel_err.items())
            + f"; {int(res.rearranged.sum())} rearranged columns"
        )
    result: Arrays = {
        "seed": (("seed",), seeds.astype(np.int64)),
        "checked": (("seed", "parameterization"), checked),
        "jacobian_fd": (("seed", "parameterization", "feature", "parameter"), J_fd),
        "fd_max_rel_err": (("seed", "parameterization", "feature_group"), err),
        "fd_rearranged": (("seed", "parameterization", "parameter"), rearranged),
    }
    finite = err[np.isfinite(err)]
    summary = {
        "feature_groups": groups,
        "step": float(fd["step"]),
        "step_rule": "h = step * max(|theta_j|, 1); Richardson over h and h/2",
        "n_checked": int(checked.sum()),
        "fd_max_rel_err_max": float(finite.max()) if finite.size else None,
        "n_rearranged_columns": int(rearranged.sum()),
    }
    return result, summary


# --------------------------------------------------------------------------- sweeps
def sweep_seeds(settings: dict, seeds, block: str) -> list[int]:
    """Indices of the states the ``sweeps`` or ``inverse_design`` block covers."""
    cfg = settings["response"].get(block)
    if not cfg:
        return []
    return [s for s, seed in enumerate(seeds) if _seed_index(settings, seed) < cfg["seeds"]]


def gamma_grid(sw: dict) -> np.ndarray:
    return np.geomspace(sw["gamma_min"], sw["gamma_max"], sw["n_gamma"])


def design_target(J: np.ndarray, y0: np.ndarray, rel: float, rng) -> np.ndarray:
    """Requested change: a random direction inside the column space of ``J`` (the part of
    feature space a linear step can reach), of norm ``rel * |y0|``."""
    U, s, _ = np.linalg.svd(J, full_matrices=False)
    keep = s > 1e-9 * s[0] if s.size and s[0] > 0 else np.zeros(0, bool)
    Ur = U[:, : int(keep.sum())]
    v = Ur @ (Ur.T @ rng.standard_normal(J.shape[0]))
    return rel * np.linalg.norm(y0) * v / np.linalg.norm(v)


def design_step(
    potential, union, names, params, state, J, rows, y0, target, options, cg_tol, contacts0
) -> resp.InverseStep:
    """:func:`physics.one_step_design` for the feature set ``rows`` of the union features:
    ``dtheta = pinv(J) dy*``, re-minimized from the reference state, ``y`` measured with the
    union spec (so one compiled feature function serves every feature set)."""
    dtheta = np.linalg.pinv(J) @ target
    theta0 = theta_of(params, names)
    p = params_of(theta0 + jnp.asarray(dtheta), params, names)
    r = resp.reminimize(potential, union, p, state, options, cg_tol)
    achieved = (r.y - y0)[rows]
    err = float(np.linalg.norm(achieved - target) / np.linalg.norm(target))
    return resp.InverseStep(dtheta, target, achieved, err, r.contacts != contacts0)


def sweeps_batch(
    settings: dict, arrays: dict, dims: dict, jac: dict, jac_dims: dict
) -> tuple[Arrays, dict]:
    """Linear-regime sweeps and one-step design at the reference parameterization.

    Sweeps (``response.sweeps``): for the first ``modes`` right singular vectors ``w_i``
    with ``s_i > 0`` of the Jacobian of feature set ``sweeps.feature_set``,
    ``theta = theta0 + gamma w_i`` on a log grid, re-minimized from the reference state
    (:func:`physics.linear_regime_sweep`). ``gamma_*_lo`` is the grid point before the
    recorded one: the true value lies in ``(lo, value]``.

    One-step design (``response.inverse_design``): per feature set, a requested change of
    norm ``relative_change * |y0|`` in a random direction of the column space of J, applied
    as ``dtheta = pinv(J) dy*`` and re-minimized (:func:`design_step`).
    """
    r = settings["response"]
    pot = potential_of(settings)
    names = tuple(r["params"])
    options = minimize_options(settings)
    rows = feature_set_rows(settings)
    n_freq = n_frequencies(settings)
    k = reference_index(settings)
    seeds = np.asarray(arrays["seed"])
    n_seeds = len(seeds)
    n_y = rows.shape[1]
    max_theta = jac["jacobian"].shape[3]
    sw = r.get("sweeps")
    idx_sweep = [s for s in sweep_seeds(settings, seeds, "sweeps") if arrays["converged"][s]]
    idx_design = [
        s for s in sweep_seeds(settings, seeds, "inverse_design") if arrays["converged"][s]
    ]
    n_modes = sw["modes"] if sw else 0
    gammas = gamma_grid(sw) if sw else np.zeros(0)
    G = len(gammas)
    f_sw = sw["feature_set"] if sw else 0
    per_mode = {key: np.full((n_seeds, n_modes), np.nan) for key in SWEEP_MODE_QUANTITIES}
    per_gamma = {
        key: np.full((n_seeds, n_modes, G), np.nan)
        for key in ("dy_norm", "linear_norm", "deviation", "quadratic_norm")
    }
    rearr = np.zeros((n_seeds, n_modes, G), bool)
    contacts_changed = np.zeros((n_seeds, n_modes, G), bool)
    jumped = np.zeros((n_seeds, n_modes, G), bool)
    conv = np.zeros((n_seeds, n_modes, G), bool)
    swept = np.zeros((n_seeds, n_modes), bool)
    direction = np.full((n_seeds, n_modes, max_theta), np.nan)
    n_sets = rows.shape[0]
    d_req = np.full((n_seeds, n_sets, n_y), np.nan)
    d_ach = np.full((n_seeds, n_sets, n_y), np.nan)
    d_theta = np.full((n_seeds, n_sets, max_theta), np.nan)
    d_err = np.full((n_seeds, n_sets), np.nan)
    d_rearr = np.zeros((n_seeds, n_sets), bool)
    rel = r["inverse_design"]["relative_change"] if r.get("inverse_design") else np.nan

    total = len(idx_sweep) * n_modes + len(idx_design) * n_sets
    progress = Progress(f"sweeps {settings['name']}", total)

    def spec_of(f):
        return resp.FeatureSpec(tuple(r["feature_sets"][f]), n_freq)

    for s in sorted(set(idx_sweep) | set(idx_design)):
        state, params0 = base_state(settings, arrays, s)
        st, params = stored_parameterization(settings, arrays, jac, s, k, state, params0)
        nt = int(jac["n_theta"][s, k])
        if s in idx_sweep:
            rank = int(jac["rank"][s, k, f_sw])
            for i in range(n_modes):
                if i >= rank:
                    progress.step(f"seed {seeds[s]}, mode {i}: s = 0 (irrelevant), skipped")
                    continue
                w = np.asarray(jac["right_vectors"][s, k, f_sw, :nt, i])
                sval = float(jac["singular_values"][s, k, f_sw, i])
                res = resp.linear_regime_sweep(
                    pot, spec_of(f_sw), names, params, st, w, gammas, options, r["cg_tol"]
                )
                swept[s, i] = True
                direction[s, i, :nt] = w
                per_mode["s"][s, i] = sval
                per_mode["gamma_tilde"][s, i] = res.gamma_tilde
                per_mode["gamma_r"][s, i] = res.gamma_r
                per_mode["gamma_star"][s, i] = res.gamma_star
                per_mode["zeta"][s, i] = res.gamma_star * sval
                for key, val in (("gamma_r", res.gamma_r), ("gamma_star", res.gamma_star)):
                    if np.isfinite(val):
                        j = int(np.argmin(np.abs(gammas - val)))
                        per_mode[f"{key}_lo"][s, i] = gammas[j - 1] if j > 0 else 0.0
                per_gamma["dy_norm"][s, i] = res.dy_norm
                per_gamma["linear_norm"][s, i] = res.linear_norm
                per_gamma["deviation"][s, i] = res.deviation
                per_gamma["quadratic_norm"][s, i] = res.quadratic_norm
                rearr[s, i] = res.rearranged
                contacts_changed[s, i] = res.contacts_changed
                jumped[s, i] = res.jumped
                conv[s, i] = res.converged
                progress.step(
                    f"seed {seeds[s]}, mode {i}: s = {sval:.4g}, gamma_tilde = "
                    f"{res.gamma_tilde:.3g}, gamma_r = {res.gamma_r:.3g}, gamma_star = "
                    f"{res.gamma_star:.3g}, zeta = {res.gamma_star * sval:.3g}"
                )
        if s in idx_design:
            union = union_spec(settings)
            y0 = np.asarray(resp.features(pot, union, params, st, r["cg_tol"]))
            contacts0 = contact_set(pot, params, st)
            for f in range(n_sets):
                J = np.asarray(jac["jacobian"][s, k][rows[f]][:, :nt])
                target = design_target(J, y0[rows[f]], rel, design_rng(seeds[s], f))
                res = design_step(
                    pot,
                    union,
                    names,
                    params,
                    st,
                    J,
                    rows[f],
                    y0,
                    target,
                    options,
                    r["cg_tol"],
                    contacts0,
                )
                m = int(rows[f].sum())
                d_req[s, f, :m] = res.requested
                d_ach[s, f, :m] = res.achieved
                d_theta[s, f, :nt] = res.dtheta
                d_err[s, f] = res.rel_error
                d_rearr[s, f] = res.rearranged
                progress.step(
                    f"seed {seeds[s]}, design {feature_set_name(r['feature_sets'][f])}: "
                    f"|dy*| = {np.linalg.norm(target):.3g}, |dtheta| = "
                    f"{np.linalg.norm(res.dtheta):.3g}, relative error {res.rel_error:.2e}, "
                    f"rearranged = {res.rearranged}"
                )
    result: Arrays = {
        "seed": (("seed",), seeds.astype(np.int64)),
        "gamma": (("gamma",), gammas),
        "swept": (("seed", "mode"), swept),
        "direction": (("seed", "mode", "parameter"), direction),
        **{key: (("seed", "mode"), v) for key, v in per_mode.items()},
        **{key: (("seed", "mode", "gamma"), v) for key, v in per_gamma.items()},
        "rearranged": (("seed", "mode", "gamma"), rearr),
        "contacts_changed": (("seed", "mode", "gamma"), contacts_changed),
        "jumped": (("seed", "mode", "gamma"), jumped),
        "sweep_converged": (("seed", "mode", "gamma"), conv),
        "design_requested": (("seed", "feature_set", "feature"), d_req),
        "design_achieved": (("seed", "feature_set", "feature"), d_ach),
        "design_dtheta": (("seed", "feature_set", "parameter"), d_theta),
        "design_rel_error": (("seed", "feature_set"), d_err),
        "design_rearranged": (("seed", "feature_set"), d_rearr),
    }
    derr = d_err[np.isfinite(d_err)]
    summary = {
        "n_theta_reference": int(settings["response"].get("reference_n_theta", -1))
        if not is_network(settings)
        else -1,
        "parameterization": k,
        "sweep_feature_set": list(r["feature_sets"][f_sw]) if sw else None,
        "feature_sets": [list(fs) for fs in r["feature_sets"]],
        "relative_change": float(rel),
        "n_sweeps": int(swept.sum()),
        "n_designs": int(derr.size),
        "design_rel_error_max": float(derr.max()) if derr.size else None,
        "definitions": {
            "gamma_tilde": "gamma where |y''| gamma^2 / 2 = 0.1 |J w| gamma",
            "gamma_r": "first grid gamma whose re-minimized contact network differs or whose "
            "features jumped (increment > 10x its second-order prediction + 1e-8 |y0|)",
            "gamma_star": "first grid gamma with |dy - gamma J w| > 0.1 gamma |J w|",
            "zeta": "gamma_star * s",
        },
    }
    return result, summary


# --------------------------------------------------------------------------- contract
# Arrays of the response stores and their dimension names (README: "Independent response
# study"); tests/response/test_response_workflow.py checks real stores against this table.
CONTRACT = {
    "jacobian": {
        "seed": ("seed",),
        "converged": ("seed",),
        "n_species": ("parameterization",),
        "n_theta": ("seed", "parameterization"),
        "reassigned_species": ("seed", "parameterization", "particle"),
        "parent_species": ("seed", "parameterization", "new_species"),
        "theta0": ("seed", "parameterization", "parameter"),
        "y0": ("seed", "feature"),
        "feature_set_rows": ("feature_set", "feature"),
        "jacobian": ("seed", "parameterization", "feature", "parameter"),
        "jacobian_finite": ("seed", "parameterization"),
        "rank": ("seed", "parameterization", "feature_set"),
        "fully_independent": ("seed", "parameterization", "feature_set"),
        "singular_values": ("seed", "parameterization", "feature_set", "singular"),
        "left_vectors": ("seed", "parameterization", "feature_set", "feature", "singular_left"),
        "right_vectors": ("seed", "parameterization", "feature_set", "parameter", "singular"),
        "rattler": ("seed", "particle"),
        "n_rattlers": ("seed",),
        "frequency_min_gap": ("seed",),
        "omega_degenerate": ("seed",),
    },
    "jacobian_check": {
        "seed": ("seed",),
        "checked": ("seed", "parameterization"),
        "jacobian_fd": ("seed", "parameterization", "feature", "parameter"),
        "fd_max_rel_err": ("seed", "parameterization", "feature_group"),
        "fd_rearranged": ("seed", "parameterization", "parameter"),
    },
    "sweeps": {
        "seed": ("seed",),
        "gamma": ("gamma",),
        "swept": ("seed", "mode"),
        "direction": ("seed", "mode", "parameter"),
        **{k: ("seed", "mode") for k in SWEEP_MODE_QUANTITIES},
        **{
            k: ("seed", "mode", "gamma")
            for k in (
                "dy_norm",
                "linear_norm",
                "deviation",
                "quadratic_norm",
                "rearranged",
                "contacts_changed",
                "jumped",
                "sweep_converged",
            )
        },
        "design_requested": ("seed", "feature_set", "feature"),
        "design_achieved": ("seed", "feature_set", "feature"),
        "design_dtheta": ("seed", "feature_set", "parameter"),
        "design_rel_error": ("seed", "feature_set"),
        "design_rearranged": ("seed", "feature_set"),
    },
}
STAGE_OF_STORE = {"jacobian": "jacobian", "jacobian_check": "jacobian_check", "sweeps": "sweeps"}
