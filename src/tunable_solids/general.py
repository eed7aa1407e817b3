"""Any energy ``E(R, box, params)``: the general path of the core.

A pair potential (:mod:`potentials`) runs on the fast paths (pair-structured Hessian products,
multigrid, the project's cell list). Any other energy, a three-body force field or an energy
built with jax-md, is wrapped in a :class:`GeneralEnergy` and passed wherever the core takes a
``potential``: :func:`minimize.minimize`, every function of :mod:`mechanics` that needs no
pair list (stress, pressure, elastic constants, Hessian and spectrum), and
:func:`implicit.at_minimum` through :class:`implicit.ParticleEnergy`. Those functions then
use autodiff Hessian-vector products and the energy's own neighbor handling; the slot that
holds the pair list of a pair potential holds the energy's neighbor state (``None`` for an
energy without one).

Conventions (the project's, :mod:`space`)
-----------------------------------------
- ``R`` ``(N, d)`` real-space positions; ``box`` ``(d, d)`` with the lattice vectors as
  columns; ``params`` a pytree of float arrays (the differentiable parameters).
- Strain ``eps`` (symmetric ``(d, d)``) deforms positions and box together:
  ``R -> R (I + eps)^T``, ``box -> (I + eps) box``, so fractional coordinates are unchanged.
  The energy must be periodic in the box it is given (it is evaluated on deformed boxes).

:func:`from_jax_md` adapts a jax-md energy built on
``space.periodic_general(box, fractional_coordinates=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .space import fractional, transform

Array = jax.Array


@dataclass(frozen=True, eq=False)
class GeneralEnergy:
    """An energy the core minimizes, measures and differentiates without pair structure.

    fn:               ``fn(R, box, params)`` (or ``fn(R, box, params, neighbors)`` with a
                      handler) -> scalar energy. Pure; closes over no traced values.
    neighbor_handler: how its neighbor state is allocated, updated and checked for overflow
                      (``allocate(R, box)``, ``update(R, box, state)``, ``overflow(state)``;
                      :class:`JaxMdNeighbors`); ``None`` for an energy that needs none.
    name:             shown in errors and logs.

    Hashed by identity (a static argument of compiled functions): build it once and reuse it,
    or every new instance compiles anew.
    """

    fn: Callable[..., Array]
    neighbor_handler: Any = None
    name: str = "general energy"

    def __call__(
        self, R: Array, box: Array, params, neighbors=None, strain: Array | None = None
    ) -> Array:
        """Energy at positions ``R`` in ``box``, optionally under the affine ``strain``."""
        if strain is not None:
            F = jnp.eye(R.shape[-1], dtype=R.dtype) + strain
            R = R @ F.T
            box = F @ box
        if self.neighbor_handler is None:
            return self.fn(R, box, params)
        return self.fn(R, box, params, neighbors)

    def allocate(self, R: Array, box: Array):
        """Neighbor state valid at ``R`` (host side: may choose capacities), or ``None``."""
        if self.neighbor_handler is None:
            return None
        nbrs = self.neighbor_handler.allocate(jnp.asarray(R), jnp.asarray(box))
        if bool(self.neighbor_handler.overflow(nbrs)):
            raise RuntimeError(f"{self.name}: the neighbor list overflowed on allocation")
        return nbrs

    def update(self, R: Array, box: Array, neighbors):
        """Neighbor state after a move to ``R`` (traceable)."""
        if self.neighbor_handler is None:
            return neighbors
        return self.neighbor_handler.update(R, box, neighbors)

    def overflow(self, neighbors) -> Array:
        """Whether the neighbor state lost neighbors (traceable bool)."""
        if self.neighbor_handler is None:
            return jnp.asarray(False)
        return jnp.asarray(self.neighbor_handler.overflow(neighbors), bool)

    def check(self, R, box, params, neighbors=None) -> None:
        """Validate the inputs, then the energy by abstract evaluation (no FLOPs), before any
        work starts: raise ``ValueError`` naming what is wrong. With a neighbor handler and
        ``neighbors=None`` only the inputs are checked (the neighbor state is allocated from
        checked inputs, then :meth:`check` runs again with it)."""
        R = np.asarray(R)
        box = np.asarray(box)
        if R.ndim != 2 or R.shape[1] not in (2, 3):
            raise ValueError(
                f"{self.name}: positions must have shape (N, d), d = 2 or 3; got {R.shape}"
            )
        d = R.shape[1]
        if box.shape != (d, d):
            raise ValueError(
                f"{self.name}: box must be a ({d}, {d}) matrix whose columns are "
                f"the lattice vectors; got shape {box.shape}"
            )
        if not np.all(np.isfinite(box)) or abs(np.linalg.det(box)) <= 0:
            raise ValueError(
                f"{self.name}: box must be finite and non-singular; got {box.tolist()}"
            )
        check_params(params, self.name)
        if self.neighbor_handler is not None and neighbors is None:
            return
        try:
            out = jax.eval_shape(lambda r, b, p: self(r, b, p, neighbors), R, box, params)
        except Exception as err:  # the user's function failed on the given inputs
            raise ValueError(f"{self.name}: evaluating the energy failed: {err}") from err
        if not isinstance(out, jax.ShapeDtypeStruct) or out.shape != ():
            shape = getattr(out, "shape", type(out).__name__)
            raise ValueError(f"{self.name}: the energy must return a scalar; it returned {shape}")
        if not jnp.issubdtype(out.dtype, jnp.floating):
            raise ValueError(f"{self.name}: the energy must be a float; it returned {out.dtype}")


def check_params(params, name: str = "energy") -> None:
    """Raise ``ValueError`` unless ``params`` is a pytree whose leaves are float arrays."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    for path, leaf in leaves:
        where = jax.tree_util.keystr(path) or "params"
        dtype = getattr(leaf, "dtype", None)
        if isinstance(leaf, float):
            continue
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            what = f"has dtype {dtype}" if dtype is not None else f"is a {type(leaf).__name__}"
            raise ValueError(f"{name}: parameters must be a pytree of float arrays; {where} {what}")


def is_general(potential) -> bool:
    """Whether ``potential`` takes the general path (no pair structure)."""
    return isinstance(potential, GeneralEnergy)


def require_pair_potential(potential, what: str) -> None:
    """Raise ``TypeError`` if ``what`` (a pair-only quantity) is asked of a general energy."""
    if is_general(potential):
        raise TypeError(
            f"{what} needs a pair potential (per-pair energies and contacts); "
            f"{potential.name} is a general energy"
        )


# --------------------------------------------------------------------------- jax-md
@dataclass(frozen=True, eq=False)
class JaxMdNeighbors:
    """Neighbor handling of a jax-md neighbor-list energy in fractional coordinates.

    neighbor_fn: ``partition.neighbor_list(displacement, box, r_cutoff, dr_threshold,
                 fractional_coordinates=True, ...)``. Allocation chooses the capacity (jax-md:
                 occupancy times ``capacity_multiplier``); an overflow during a run is
                 reported by :meth:`GeneralEnergy.overflow` and never silently truncates:
                 the minimizer reallocates, other callers raise.
    """

    neighbor_fn: Any

    def allocate(self, R: Array, box: Array):
        return self.neighbor_fn.allocate(fractional(R, box), box=box)

    def update(self, R: Array, box: Array, nbrs):
        return self.neighbor_fn.update(fractional(R, box), nbrs, box=box)

    def overflow(self, nbrs) -> Array:
        return nbrs.did_buffer_overflow


def jax_md_inputs(R: Array, box: Array) -> tuple[Array, Array, Array]:
    """``(S, box0, perturbation)`` to call a jax-md energy with, exact to every order of
    differentiation in ``R`` and ``box``.

    jax-md's ``space.transform`` (which ``periodic_general`` applies to every fractional pair
    displacement ``w``) has a custom JVP, ``d(box w) = dw + dbox w``, that passes fractional
    tangents through as real-space ones (so ``grad`` w.r.t. fractional positions returns
    real-space forces). Fed true fractional tangents, forces come out multiplied by
    ``inv(box)``, and derivatives that mix box and positions (the strain derivatives of C,
    their derivatives in R) are wrong even after rescaling. So jax-md sees only a constant
    box ``box0`` and positions ``S0 + box0 (S - S0)`` (value ``S``, tangent ``box0 dS``), for
    which its rule is exact: the pair vector is ``box0 w`` at every order. The box
    dependence enters through jax-md's ``perturbation`` argument, a plain matrix product
    ``(box inv(box0)) dR`` (the route of jax-md's own ``athermal_moduli``).
    """
    S = fractional(R, box)
    S0 = jax.lax.stop_gradient(S)
    box0 = jax.lax.stop_gradient(box)
    return S0 + transform(box0, S - S0), box0, box @ jnp.linalg.inv(box0)


def from_jax_md(
    energy_fn: Callable[..., Array] | None = None,
    *,
    build: Callable[[Any], Callable[..., Array]] | None = None,
    neighbor_fn: Any = None,
    name: str = "jax-md energy",
) -> GeneralEnergy:
    """Wrap a jax-md energy as a :class:`GeneralEnergy`.

    The energy must be built on ``space.periodic_general(box, fractional_coordinates=True)``:
    jax-md then takes positions in fractional coordinates, the box as ``box=`` and a
    deformation as ``perturbation=`` (both forwarded to its displacement function, as every
    energy of jax-md's ``energy`` module does). The project passes real-space positions; the
    adapter converts them (:func:`jax_md_inputs`).

    Give exactly one of
    - ``energy_fn(S, [neighbor,] box=box, **params)``: parameters passed as keyword
      arguments (jax-md's pair energies take ``sigma``, ``epsilon``, ``alpha`` that way);
      ``params`` must then be a dict, e.g. ``{"sigma": jnp.array([[1.0, 1.2], [1.2, 1.4]])}``.
    - ``build(params) -> energy_fn(S, [neighbor,] box=box)``: for energies whose parameters
      are fixed when they are constructed (e.g. ``energy.stillinger_weber``); the builder is
      called inside the traced function, so ``params`` stay differentiable.
    With ``neighbor_fn`` (from a jax-md ``*_neighbor_list`` energy, built with
    ``fractional_coordinates=True``) the energy takes the neighbor list as its second
    argument and the core allocates and updates it.
    """
    if (energy_fn is None) == (build is None):
        raise ValueError("from_jax_md: give exactly one of energy_fn and build")
    with_neighbors = neighbor_fn is not None

    def fn(R, box, params, neighbors=None):
        S, box0, perturbation = jax_md_inputs(R, box)
        if build is not None:
            e = build(params)
            extra = {}
        else:
            if not isinstance(params, Mapping):
                raise ValueError(
                    f"{name}: with energy_fn the parameters are passed as keyword arguments, "
                    f"so params must be a dict; got {type(params).__name__}"
                )
            e, extra = energy_fn, dict(params)
        if with_neighbors:
            return e(S, neighbors, box=box0, perturbation=perturbation, **extra)
        return e(S, box=box0, perturbation=perturbation, **extra)

    handler = JaxMdNeighbors(neighbor_fn) if with_neighbors else None
    return GeneralEnergy(fn, handler, name)
