"""The parameter vector ``theta`` and the parameter pytrees it stands for.

``theta`` is a flat vector of named groups, in the order the caller lists them:

- ``D``: species diameters (``SpeciesParams.diameter``, one entry per species);
- ``k``, ``B``: upper triangles, row by row, of the symmetric species matrices k_ab and B_ab
  (``SpeciesParams.k``, ``SpeciesParams.binding``);
- ``stiffness``: every bond stiffness of a spring network (``NetworkParams.stiffness``);
- ``all``: every leaf of any parameter pytree, raveled in tree order (the parameters of a
  :class:`general.GeneralEnergy`, e.g. ``{"lam": ..., "gamma": ...}``); only on its own.

:func:`theta_of` flattens a pytree, :func:`params_of` is its inverse (differentiable in
``theta``), :func:`theta_labels` names the entries and :func:`n_theta_of` counts them. Every
study that differentiates or trains with respect to parameters uses this one mapping.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

Array = jax.Array

PARAM_GROUPS = ("D", "k", "B", "stiffness", "all")
ALL = ("all",)


def _check_all(names: tuple[str, ...]) -> bool:
    """Whether ``names`` selects every leaf (``("all",)``); ``all`` with other groups is an
    error."""
    if "all" not in names:
        return False
    if tuple(names) != ALL:
        raise ValueError(f"parameter group 'all' stands alone; got {tuple(names)}")
    return True


def _triu(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n)


def theta_of(params, names: tuple[str, ...]) -> Array:
    """Flatten the selected parameter groups into the vector ``theta``."""
    if _check_all(names):
        return ravel_pytree(params)[0]
    parts = []
    for name in names:
        if name == "D":
            parts.append(params.diameter)
        elif name in ("k", "B"):
            m = params.k if name == "k" else params.binding
            parts.append(m[_triu(m.shape[0])])
        elif name == "stiffness":
            parts.append(params.stiffness)
        else:
            raise ValueError(f"parameter group {name!r} not allowed; use {PARAM_GROUPS}")
    return jnp.concatenate(parts)


def params_of(theta: Array, params0, names: tuple[str, ...]):
    """Inverse of :func:`theta_of`: ``params0`` with the selected groups taken from ``theta``."""
    if _check_all(names):
        return ravel_pytree(params0)[1](theta)
    offset = 0
    p = params0
    for name in names:
        if name == "D":
            n = p.diameter.shape[0]
            p = p._replace(diameter=theta[offset : offset + n])
        elif name in ("k", "B"):
            m = p.k if name == "k" else p.binding
            s = m.shape[0]
            i, j = _triu(s)
            n = len(i)
            upper = jnp.zeros((s, s)).at[i, j].set(theta[offset : offset + n])
            full = upper + jnp.triu(upper, 1).T
            p = p._replace(k=full) if name == "k" else p._replace(binding=full)
        else:
            n = p.stiffness.shape[0]
            p = p._replace(stiffness=theta[offset : offset + n])
        offset += n
    return p


def theta_labels(params, names: tuple[str, ...]) -> list[str]:
    """Name of every entry of ``theta`` (e.g. ``D_3``, ``k_0_2``, ``stiffness_17``; for
    ``all`` the leaf's path and flat index, e.g. ``['sigma']_3``, or the path of a scalar)."""
    if _check_all(names):
        labels = []
        for path, leaf in jax.tree_util.tree_leaves_with_path(params):
            key = jax.tree_util.keystr(path) or "theta"
            size = int(np.size(leaf))
            labels += [key] if np.ndim(leaf) == 0 else [f"{key}_{i}" for i in range(size)]
        return labels
    labels = []
    for name in names:
        if name == "D":
            labels += [f"D_{a}" for a in range(params.diameter.shape[0])]
        elif name in ("k", "B"):
            i, j = _triu(params.k.shape[0])
            labels += [f"{name}_{a}_{b}" for a, b in zip(i, j, strict=True)]
        else:
            labels += [f"stiffness_{b}" for b in range(params.stiffness.shape[0])]
    return labels


def group_size(name: str, n_species: int) -> int:
    """Entries of one parameter group for ``n_species`` species (D: n, k/B: n(n+1)/2)."""
    return n_species if name == "D" else n_species * (n_species + 1) // 2


def n_theta_of(names, n_species: int) -> int:
    """Number of parameters of the groups ``names`` for ``n_species`` species."""
    return sum(group_size(n, n_species) for n in names)


def species_for_n_theta(names, n_theta: int, n_max: int = 4096) -> int | None:
    """Number of species giving exactly ``n_theta`` parameters (None if none)."""
    for n_sp in range(1, n_max + 1):
        got = n_theta_of(names, n_sp)
        if got == n_theta:
            return n_sp
        if got > n_theta:
            return None
    return None
