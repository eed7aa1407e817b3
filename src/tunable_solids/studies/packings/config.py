"""Config rules of the packings study: what the schema cannot say about ``scenarios``
(``workflow/schemas/packings.schema.yaml``) and ``figures.overview``.

:func:`tunable_solids.config.validate` calls :func:`errors` after the schema check.
"""

from __future__ import annotations

from tunable_solids import systems


def errors(config: dict) -> list[str]:
    """Rules of the scenarios and of the overview figure that the schema cannot express."""
    errors = []
    for name, sc in config.get("scenarios", {}).items():
        key = f"scenarios.{name}"
        structure, potential = sc["structure"], sc["potential"]
        n_sp = sc["species"]["n_species"]
        if n_sp != 1 and n_sp % 2:
            errors.append(f"{key}.species.n_species: {n_sp} is not allowed; must be 1 or even")
        if sc["N"] % n_sp:
            errors.append(f"{key}.N: {sc['N']} does not divide evenly into {n_sp} species")
        if "pressure" in sc and structure == "crystal":
            errors.append(
                f"{key}.pressure: a pressure target is not allowed for structure 'crystal'; "
                "crystals are built at a fixed `density`"
            )
        has_density, has_phi = "density" in sc, "packing_fraction" in sc
        if has_density == has_phi:
            errors.append(
                f"{key}: give exactly one of `density` (number density) or `packing_fraction`"
            )
        if structure == "crystal":
            if not has_density:
                errors.append(f"{key}.density: required for structure 'crystal'")
            if n_sp != 1:
                errors.append(f"{key}.species.n_species: a crystal has 1 species, got {n_sp}")
            if potential == "spring_network":
                errors.append(f"{key}.potential: spring_network is built from disordered packings")
            if has_density:
                try:
                    systems.crystal(sc["N"], sc["dim"], sc["density"])
                except ValueError as exc:
                    errors.append(f"{key}.N: {exc}")
        if "network" in sc and potential != "spring_network":
            errors.append(f"{key}.network: only allowed with potential 'spring_network'")
        if "potential_options" in sc and not potential.startswith("harmonic_morse"):
            errors.append(f"{key}.potential_options: only allowed for harmonic_morse potentials")
        if has_phi and sc["packing_fraction"] >= 1.0 and "pressure" not in sc:
            errors.append(f"{key}.packing_fraction: {sc['packing_fraction']} must be < 1")
    overview = config.get("figures", {}).get("overview", {})
    if "scenario" in overview and overview["scenario"] not in config.get("scenarios", {}):
        errors.append(
            f"figures.overview.scenario: {overview['scenario']!r} is not a scenario; "
            f"allowed: {sorted(config.get('scenarios', {}))}"
        )
    return errors
