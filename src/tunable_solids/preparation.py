"""Preparing a state for analysis: what every study needs to rebuild a minimum it reads.

- from resolved settings (:func:`config.scenario_settings`): the potential
  (:func:`potential_of`), the species parameters (:func:`species_params_of`) and the
  minimizer options (:func:`minimize_options`);
- from a store's arrays: the spring network of one state (:func:`network_of`);
- at given positions: the interacting pairs (:func:`interacting_pairs`);
- :class:`State`, a minimum with what is held fixed while it is analysed, and its structural
  fingerprint :func:`contact_set`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import mechanics as mech
from . import systems
from .minimize import FireOptions, MinimizeOptions, pair_capacity
from .potentials import NetworkParams, SpeciesParams, make_potential
from .space import Pairs, box_volume, neighbor_pairs

Array = jax.Array


def minimize_options(settings: dict) -> MinimizeOptions:
    m = settings["minimize"]
    return MinimizeOptions(m["force_tol"], m["max_steps"], m["skin"], FireOptions(**m["fire"]))


def potential_of(settings: dict):
    return make_potential(settings["potential"], **settings.get("potential_options", {}))


def species_params_of(settings: dict) -> SpeciesParams:
    sp, it = settings["species"], settings["interactions"]
    return systems.default_params(sp["n_species"], sp["diameters"], it["k"], it["binding"])


def interacting_pairs(potential, R, box, params) -> Pairs:
    """Pairs closer than the interaction range at positions ``R`` (capacity bucketed, so
    states of one scenario share compiled code; empty slots are masked)."""
    n, dim = R.shape
    rc = float(potential.cutoff(jnp.max(params.diameter)))
    capacity = pair_capacity(n, dim, n / float(box_volume(jnp.asarray(box))), rc)
    while True:
        pairs, count = neighbor_pairs(jnp.asarray(R), jnp.asarray(box), rc, capacity)
        if int(count) <= capacity:
            return pairs
        capacity = 2 * int(count)


def network_of(arrays: dict, s: int) -> tuple[Pairs, NetworkParams]:
    """Bonds and bond parameters of state ``s`` of a spring-network store (padding dropped)."""
    valid = arrays["bond_i"][s] >= 0
    bonds = Pairs(
        jnp.asarray(arrays["bond_i"][s][valid]),
        jnp.asarray(arrays["bond_j"][s][valid]),
        jnp.ones(int(valid.sum()), bool),
    )
    return bonds, NetworkParams(
        jnp.asarray(arrays["stiffness"][s][valid]), jnp.asarray(arrays["rest_length"][s][valid])
    )


class State(NamedTuple):
    """A minimum and what is held fixed while features are evaluated (a pytree).

    positions ``(N, d)`` at the minimum; box; species ``(N,)`` (None for networks); pairs
    valid at the minimum (bonds for networks); rattler ``(N,)`` mask.
    """

    positions: Array
    box: Array
    species: Array | None
    pairs: Pairs
    rattler: Array


def contact_set(potential, params, state: State) -> frozenset:
    """Contacts ``(i, j)`` of a state, excluding rattlers (its structural fingerprint)."""
    model = mech.Model(potential, state.box, state.species, state.pairs)
    c = np.asarray(mech.contact_mask(model, state.positions, params))
    i, j = np.asarray(state.pairs.i)[c], np.asarray(state.pairs.j)[c]
    ratt = np.asarray(state.rattler)
    keep = ~ratt[i] & ~ratt[j]
    return frozenset(zip(i[keep].tolist(), j[keep].tolist(), strict=True))
