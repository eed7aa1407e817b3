"""Pair potentials and species-level interaction parameters.

Every potential is a frozen (hashable, hence jit-static) dataclass with
``pair_energy(r, pp)`` where ``r`` is an array of distances and ``pp`` the per-pair
parameters gathered by :func:`pair_parameters`. Energies are in units of the repulsion
scale k, lengths in units of the (large) particle diameter.

Potentials
----------
- :class:`SoftSphere`: ``u = (k/2) (1 - r/sigma)^2`` for ``r < sigma``, else 0; with
  ``repulsion="absolute"`` (config name ``harmonic_sphere``) ``u = (k/2)(r - sigma)^2``, the
  harmonic spheres of "Bond-space operator ..." Appendix B (Eq. B1).
- :class:`InversePowerLaw`: ``u = k [(sigma/r)^n + c0 + c2 (r/sigma)^2 + c4 (r/sigma)^4]`` for
  ``r < x_c sigma``, the smoothed IPL glass former (E. Lerner, J. Non-Cryst. Solids 522,
  119570 (2019)); ``c0, c2, c4`` make ``u``, ``u'`` and ``u''`` vanish at the cutoff.
- :class:`HarmonicMorse` with ``repulsion="relative"``: "Fully independent response"
  Eq. 1, ``u = (k/2)(1 - r/sigma)^2 - B`` for ``r < sigma`` and
  ``B (1 - exp(-a (r - sigma)))^2 - B`` beyond (a = 50).
- :class:`HarmonicMorse` with ``repulsion="absolute"``: "Designing athermal disordered
  solids" Methods Eq. 1, ``(k/2)(r - sigma)^2 - B`` inside, same Morse tail (k = 5, a = 5).
  Both Morse variants are multiplied by the XPLOR switch between
  ``r_on = sigma + r_on_a / a`` and ``r_cut = sigma + r_cut_a / a`` (defaults 5 and 9.9),
  so value and force vanish continuously at ``r_cut``.
- :class:`Spring`: ``u = (k_b/2)(r - l_b)^2`` on the bonds of a spring network.

Each potential names its ``cutoff``, its ``contact_distance`` and its ``kinks`` (where the
second derivative jumps, so finite differences across them are not derivatives).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class SpeciesParams(NamedTuple):
    """Species-level parameters (a pytree), all float64.

    diameter: ``(S,)`` diameters D_alpha; ``sigma_ij = (D_i + D_j) / 2``.
    k:        ``(S, S)`` symmetric repulsion scales k_alpha_beta.
    binding:  ``(S, S)`` symmetric binding energies B_alpha_beta (unused by soft spheres).
    """

    diameter: Array
    k: Array
    binding: Array


class NetworkParams(NamedTuple):
    """Bond-level parameters of a spring network: stiffness and rest length, each ``(P,)``."""

    stiffness: Array
    rest_length: Array


class ParticleParams(NamedTuple):
    """Per-particle sizes of a continuously polydisperse system (a pytree, float64).

    diameter:      ``(N,)`` size lambda_i of every particle (the ``species`` of a state is then
                   ``arange(N)``: each particle is its own species).
    k:             ``()`` energy scale shared by all pairs.
    nonadditivity: ``()`` n_eps in ``sigma_ij = (lambda_i + lambda_j)/2 (1 - n_eps |lambda_i -
                   lambda_j|)`` (0: additive).
    """

    diameter: Array
    k: Array
    nonadditivity: Array


def particle_params(diameter, k=1.0, nonadditivity=0.0) -> ParticleParams:
    """:class:`ParticleParams` with float64 leaves."""
    return ParticleParams(
        jnp.asarray(diameter, jnp.float64),
        jnp.asarray(k, jnp.float64),
        jnp.asarray(nonadditivity, jnp.float64),
    )


class PairParams(NamedTuple):
    """Per-pair parameters, each ``(P,)``: contact distance, stiffness and binding."""

    sigma: Array
    k: Array
    binding: Array


def species_params(diameter, k=1.0, binding=0.0) -> SpeciesParams:
    """Species parameters with scalar ``k``/``binding`` broadcast to symmetric matrices."""
    d = jnp.asarray(diameter, jnp.float64)
    s = d.shape[0]
    km = jnp.broadcast_to(jnp.asarray(k, jnp.float64), (s, s))
    bm = jnp.broadcast_to(jnp.asarray(binding, jnp.float64), (s, s))
    return SpeciesParams(d, 0.5 * (km + km.T), 0.5 * (bm + bm.T))


def pair_parameters(params, species: Array | None, i: Array, j: Array) -> PairParams:
    """Gather per-pair parameters for pair slots ``(i, j)``.

    For :class:`SpeciesParams`, ``species`` is the ``(N,)`` species index of each particle;
    for :class:`NetworkParams` slot ``p`` is bond ``p`` and ``species`` is ignored; for
    :class:`ParticleParams` ``species`` indexes ``diameter`` (normally ``arange(N)``).
    """
    if isinstance(params, NetworkParams):
        zero = jnp.zeros_like(params.stiffness)
        return PairParams(params.rest_length, params.stiffness, zero)
    if isinstance(params, ParticleParams):
        di, dj = params.diameter[species[i]], params.diameter[species[j]]
        sigma = 0.5 * (di + dj) * (1.0 - params.nonadditivity * jnp.abs(di - dj))
        k = jnp.broadcast_to(params.k, sigma.shape)
        return PairParams(sigma, k, jnp.zeros_like(sigma))
    si, sj = species[i], species[j]
    sigma = 0.5 * (params.diameter[si] + params.diameter[sj])
    # Symmetrised on the fly: the energy never depends on pair order, and gradients w.r.t.
    # k and B come out symmetric even when a caller perturbs only one triangle.
    k = 0.5 * (params.k[si, sj] + params.k[sj, si])
    b = 0.5 * (params.binding[si, sj] + params.binding[sj, si])
    return PairParams(sigma, k, b)


def xplor_switch(r: Array, r_on: Array, r_cut: Array) -> Array:
    """XPLOR smoothing: 1 below ``r_on``, 0 beyond ``r_cut``, C^1 in between."""
    rc2, ron2 = r_cut**2, r_on**2
    x = jnp.clip(r, r_on, r_cut) ** 2
    s = (rc2 - x) ** 2 * (rc2 + 2.0 * x - 3.0 * ron2) / (rc2 - ron2) ** 3
    return jnp.where(r < r_on, 1.0, jnp.where(r < r_cut, s, 0.0))


@dataclass(frozen=True)
class SoftSphere:
    """Finite-range harmonic repulsion: ``(k/2)(1 - r/sigma)^2`` (``repulsion="relative"``,
    O'Hern et al. 2003) or ``(k/2)(r - sigma)^2`` (``"absolute"``: a species-independent
    spring constant k, the harmonic spheres of the bond-operator paper)."""

    name: str = "soft_sphere"
    attractive: bool = False
    repulsion: str = "relative"

    def __post_init__(self):
        if self.repulsion not in ("relative", "absolute"):
            raise ValueError(f"repulsion must be 'relative' or 'absolute', got {self.repulsion!r}")

    def pair_energy(self, r: Array, pp: PairParams) -> Array:
        if self.repulsion == "relative":
            overlap = jnp.maximum(1.0 - r / pp.sigma, 0.0)
        else:
            overlap = jnp.maximum(pp.sigma - r, 0.0)
        return 0.5 * pp.k * overlap**2

    def cutoff(self, sigma: Array) -> Array:
        return sigma

    def contact_distance(self, sigma: Array) -> Array:
        return sigma

    def kinks(self, sigma: Array) -> list[Array]:
        """Distances where ``u''`` jumps (the energy is only C^1 there): contact."""
        return [sigma]


@dataclass(frozen=True)
class InversePowerLaw:
    """Smoothed inverse power law ``k [(sigma/r)^n + c0 + c2 x^2 + c4 x^4]``, ``x = r/sigma``,
    for ``x < x_c`` and 0 beyond. With ``a = x_c``: ``c0 = -(n+2)(n+4)/8 a^-n``,
    ``c2 = n(n+4)/4 a^-(n+2)``, ``c4 = -n(n+2)/8 a^-(n+4)``, so ``u``, ``u'`` and ``u''``
    vanish at the cutoff (the second derivative is continuous: no kink anywhere)."""

    exponent: float = 10.0
    x_c: float = 1.48
    name: str = "inverse_power_law"
    attractive: bool = False

    def __post_init__(self):
        if not self.exponent > 0:
            raise ValueError(f"exponent must be positive, got {self.exponent!r}")
        if not self.x_c > 0:
            raise ValueError(f"x_c must be positive, got {self.x_c!r}")

    def coefficients(self) -> tuple[float, float, float]:
        """``(c0, c2, c4)`` of the smoothing polynomial."""
        n, a = self.exponent, self.x_c
        c0 = -(n + 2.0) * (n + 4.0) / 8.0 * a**-n
        c2 = n * (n + 4.0) / 4.0 * a ** -(n + 2.0)
        c4 = -n * (n + 2.0) / 8.0 * a ** -(n + 4.0)
        return c0, c2, c4

    def pair_energy(self, r: Array, pp: PairParams) -> Array:
        c0, c2, c4 = self.coefficients()
        inside = r < self.x_c * pp.sigma
        # Clamp so the unused branch stays finite (r = 0 in empty pair slots).
        x = jnp.where(inside, r / pp.sigma, 1.0)
        x2 = x * x
        n = self.exponent
        # An integer exponent as an integer power: XLA's float power is ~30x slower on CPU.
        core = 1.0 / x ** int(n) if float(n).is_integer() else x**-n
        u = core + c0 + c2 * x2 + c4 * x2 * x2
        return pp.k * jnp.where(inside, u, 0.0)

    def cutoff(self, sigma: Array) -> Array:
        return self.x_c * sigma

    def contact_distance(self, sigma: Array) -> Array:
        return self.cutoff(sigma)

    def kinks(self, sigma: Array) -> list[Array]:
        """None: ``u''`` is continuous (it vanishes at the cutoff)."""
        return []


@dataclass(frozen=True)
class HarmonicMorse:
    """Harmonic repulsion inside ``sigma``, XPLOR-smoothed Morse attraction outside.

    ``repulsion="relative"``: ``(k/2)(1 - r/sigma)^2 - B`` (Zu, Desai, Goodrich 2024);
    ``repulsion="absolute"``: ``(k/2)(r - sigma)^2 - B`` (Zu, Goodrich 2024).
    ``r_on_a`` and ``r_cut_a`` place the switch at ``sigma + r_on_a / a`` and
    ``sigma + r_cut_a / a``. Particles count as in contact while they interact
    (``r < r_cut``), so a rattler (fewer than d + 1 contacts) has no Hessian coupling.
    """

    a: float = 50.0
    repulsion: str = "relative"
    r_on_a: float = 5.0
    r_cut_a: float = 9.9
    name: str = "harmonic_morse"
    attractive: bool = True

    def __post_init__(self):
        if self.repulsion not in ("relative", "absolute"):
            raise ValueError(f"repulsion must be 'relative' or 'absolute', got {self.repulsion!r}")
        if not 0.0 < self.r_on_a < self.r_cut_a:
            raise ValueError("need 0 < r_on_a < r_cut_a for the XPLOR switch")

    def pair_energy(self, r: Array, pp: PairParams) -> Array:
        sigma, k, b = pp.sigma, pp.k, pp.binding
        if self.repulsion == "relative":
            rep = 0.5 * k * (1.0 - r / sigma) ** 2 - b
        else:
            rep = 0.5 * k * (r - sigma) ** 2 - b
        # Clamp so the unused branch stays finite (exp(a sigma) overflows derivatives).
        x = jnp.maximum(r - sigma, 0.0)
        morse = b * (1.0 - jnp.exp(-self.a * x)) ** 2 - b
        u = jnp.where(r < sigma, rep, morse)
        return u * xplor_switch(r, sigma + self.r_on_a / self.a, sigma + self.r_cut_a / self.a)

    def cutoff(self, sigma: Array) -> Array:
        return sigma + self.r_cut_a / self.a

    def contact_distance(self, sigma: Array) -> Array:
        return self.cutoff(sigma)

    def kinks(self, sigma: Array) -> list[Array]:
        """Distances where ``u''`` jumps: contact, switch-on and cutoff."""
        return [sigma, sigma + self.r_on_a / self.a, self.cutoff(sigma)]


@dataclass(frozen=True)
class Spring:
    """Harmonic bond ``(k_b/2)(r - l_b)^2``; ``PairParams.sigma`` holds the rest length."""

    name: str = "spring_network"
    attractive: bool = True  # bonds resist stretching: they hold particles in tension too

    def pair_energy(self, r: Array, pp: PairParams) -> Array:
        return 0.5 * pp.k * (r - pp.sigma) ** 2

    def cutoff(self, sigma: Array) -> Array:
        return jnp.inf * sigma

    def contact_distance(self, sigma: Array) -> Array:
        return jnp.inf * sigma

    def kinks(self, sigma: Array) -> list[Array]:
        """None: the bond energy is smooth."""
        return []


Potential = SoftSphere | InversePowerLaw | HarmonicMorse | Spring


def make_potential(name: str, **options) -> Potential:
    """Potential by config name: ``soft_sphere``, ``harmonic_sphere`` (absolute repulsion),
    ``inverse_power_law`` (options ``exponent``, ``x_c``), ``harmonic_morse`` (a = 50,
    relative repulsion), ``harmonic_morse_xplor`` (a = 5, absolute repulsion) or
    ``spring_network``. ``options`` override ``a``, ``r_on_a``, ``r_cut_a`` of the Morse
    variants."""
    if name == "soft_sphere":
        return SoftSphere()
    if name == "harmonic_sphere":
        return SoftSphere(name="harmonic_sphere", repulsion="absolute")
    if name == "inverse_power_law":
        return InversePowerLaw(**options)
    if name == "harmonic_morse":
        return HarmonicMorse(**{"a": 50.0, "repulsion": "relative", **options})
    if name == "harmonic_morse_xplor":
        opts = {"a": 5.0, "repulsion": "absolute", **options}
        return HarmonicMorse(name="harmonic_morse_xplor", **opts)
    if name == "spring_network":
        return Spring()
    raise ValueError(
        f"unknown potential {name!r}; allowed: soft_sphere, harmonic_sphere, "
        "inverse_power_law, harmonic_morse, harmonic_morse_xplor, spring_network"
    )
