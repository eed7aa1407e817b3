"""Making the metamaterials' structures: dynamics, checkpoints, errors.

- jax-md's NPT Nose-Hoover driven by the project's Stillinger-Weber energy (the adapter
  :func:`structures.jax_md_energy`) conserves its extended-system invariant (the test of
  forces and virial being consistent with the energy: a wrong force or stress makes it drift);
  its thermostat holds the target temperature;
- a structure batch killed mid-MD and resumed from its checkpoint ends bit-identical to an
  uninterrupted batch; a batch killed mid-minimization likewise;
- bad inputs stop with named errors (density, blown-up barostat, NaN, config keys).
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_md import simulate as jmd_simulate
from jax_md import space as jmd_space

from tunable_solids import stillinger_weber as sw
from tunable_solids.config import ConfigError, validate
from tunable_solids.studies.metamaterials import config as mc
from tunable_solids.studies.metamaterials import stages
from tunable_solids.studies.metamaterials import structures as st

ENERGY = stages.ENERGY
OPTIMUM = sw.paper_params(2.094, 1.206, 109.7)
LIST_RANGE = ENERGY.neighbor_handler.list_range


@pytest.fixture(scope="module")
def liquid():
    """128 atoms from a random start at Phi_0 = 0.4, overlaps removed."""
    R, box = st.random_start(np.random.default_rng(0), 128, 0.4, LIST_RANGE)
    return st.remove_overlaps(R, box), box


def test_npt_invariant_and_temperature(liquid):
    R, box = liquid
    md = st.MDSettings(dt=0.002, thermostat_tau=0.2, barostat_tau=2.0)
    sim = st.simulator(ENERGY, OPTIMUM, box, md)
    U = st.jax_md_energy(ENERGY, OPTIMUM)
    S = jmd_space.transform(jnp.linalg.inv(jnp.asarray(box)), jnp.asarray(R))
    nb = ENERGY.allocate(R, box)
    kT, P = 0.3, 0.1
    state = sim.init(jax.random.PRNGKey(0), S, jnp.asarray(box), neighbor=nb, kT=kT)

    def invariant(state):
        Rr, b = st.real_positions(state)
        nbr = ENERGY.allocate(Rr, b)
        return float(jmd_simulate.npt_nose_hoover_invariant(U, state, P, kT, neighbor=nbr))

    H0 = invariant(state)
    temps, drift = [], []
    for _ in range(15):
        Rr, b = st.real_positions(state)
        nb = ENERGY.allocate(Rr, b)
        state, nb = sim.chunk(state, nb, 0.0, 200, 1.0, kT, kT, P, P)
        assert not bool(nb.overflow)
        temps.append(float(jnp.sum(state.momentum**2)) / (3 * (128 - 1)))
        drift.append(invariant(state) - H0)
    # The invariant is conserved to the integrator's O(dt^2) error: its drift over 3000
    # steps stays far below the thermal energy N kT = 38 that the thermostat exchanges.
    assert max(abs(d) for d in drift) < 0.02 * 128 * kT
    # Temperature: the mean over the last 2000 steps within 10% of kT (the instantaneous
    # fluctuation of 128 atoms is sqrt(2/(3N)) = 7%, averaged over ~10 thermostat periods).
    assert abs(np.mean(temps[5:]) / kT - 1) < 0.1


SETTINGS = mc.job_settings(
    {
        "atoms": 128,
        "crystal_cells": 2,
        "seeds": {"first": 0},
        "md": {**mc.DEFAULT_MD, "melt_time": 1.0, "quench_time": 1.0, "checkpoint_every": 50},
        "minimize": {**mc.DEFAULT_MINIMIZE, "force_tol": 1e-10, "chunk": 200},
        "measure": mc.DEFAULT_MEASURE,
    },
    {"name": "optimum", "lambda_over_A": 2.094, "gamma": 1.206, "theta0": 109.7},
    "disordered-phi0.40",
)


class Killed(Exception):
    pass


def test_resume_after_kill_is_identical(tmp_path, monkeypatch):
    settings = mc.stage_settings(SETTINGS, "structure")
    full, _ = stages.make_structures(settings, [3], str(tmp_path / "a.zarr"))
    # Kill the batch at its 3rd MD checkpoint, then at its 2nd minimization round.
    for phase, at in (("md", 3), ("minimize", 2)):
        out = str(tmp_path / f"kill_{phase}.zarr")
        real_save = stages._save
        calls = {"n": 0}

        def save(path, rows, ph, n, leaves, extra, phase=phase, at=at, real_save=real_save,
                 calls=calls):  # fmt: skip
            real_save(path, rows, ph, n, leaves, extra)
            if ph == phase and n > 0:
                calls["n"] += 1
                if calls["n"] == at:
                    raise Killed

        monkeypatch.setattr(stages, "_save", save)
        with pytest.raises(Killed):
            stages.make_structures(settings, [3], out)
        monkeypatch.setattr(stages, "_save", real_save)
        assert stages.checkpoint_path(out).exists()
        resumed, _ = stages.make_structures(settings, [3], out)
        for k in ("positions", "box", "energy", "iterations", "converged"):
            np.testing.assert_array_equal(resumed[k][1], full[k][1], err_msg=f"{phase}: {k}")
    assert bool(full["converged"][1][0])


def test_bad_densities_and_blowups(liquid):
    with pytest.raises(st.DensityError, match="Phi_0 = 0.7"):
        st.random_start(np.random.default_rng(0), 128, 0.7, LIST_RANGE)
    with pytest.raises(st.DensityError, match="twice the neighbour list range"):
        st.random_start(np.random.default_rng(0), 16, 0.4, LIST_RANGE)
    R, box = liquid
    md = st.MDSettings(checkpoint_every=100)
    tension = [st.Segment("melt", 300, (0.3, 0.3), (-50.0, -50.0))]
    with pytest.raises(st.BarostatError, match="barostat changed the volume"):
        st.run_md(ENERGY, OPTIMUM, R, box, tension, md, 0)
    fast = st.MDSettings(dt=0.5, checkpoint_every=20)
    with pytest.raises((st.NonFiniteMDError, st.BarostatError, st.DensityError)):
        st.run_md(ENERGY, OPTIMUM, R, box, [st.Segment("melt", 40, (3.0, 3.0), (0, 0))], fast, 0)


CONFIG = {
    "metamaterials": {
        "atoms": 128,
        "crystal_cells": 2,
        "phi0": [0.26, 0.4],
        "vacancies": [0.05],
        "seeds": {"count": 2},
        "forcefields": {
            "si": {
                "lambda_over_A": 3.0,
                "gamma": 1.2,
                "theta0": 109.5,
                "structures": ["disordered", "diamond"],
            },
        },  # fmt: skip
    }
}


@pytest.mark.parametrize(
    "path,value,expected",
    [
        (("forcefields", "si", "theta0"), 200.0, "metamaterials.forcefields.si.theta0: 200.0"),
        (("forcefields", "si", "gamma"), 0.1, "metamaterials.forcefields.si.gamma: 0.1"),
        (("phi0",), [0.7], "metamaterials.phi0.0: 0.7 is not allowed"),
        (("atoms",), 20, "metamaterials.atoms: 20 atoms give a box"),
        (("crystal_cells",), 1, "metamaterials.crystal_cells: 1 cells of diamond"),
        (("forcefields", "si", "structures"), ["bcc"], "'bcc' is not allowed"),
    ],
)
def test_config_errors(path, value, expected):
    cfg = copy.deepcopy(CONFIG)
    node = cfg["metamaterials"]
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as exc:
        validate(cfg)
    assert expected in str(exc.value)


def test_config_settings_and_proposals(tmp_path):
    validate(CONFIG)
    common = mc.common_settings(CONFIG)
    assert mc.seed_batches(common) == [[0, 1]]
    assert mc.structures_of(CONFIG, ["disordered", "diamond"]) == [
        "disordered-phi0.26", "disordered-phi0.40", "diamond-vac0.05"]  # fmt: skip
    s = mc.job_settings(common, mc.forcefield_settings(CONFIG, "si"), "diamond-vac0.05")
    assert s["structure"] == {"name": "diamond-vac0.05", "family": "diamond", "vacancy": 0.05}
    assert "measure" not in mc.stage_settings(s, "structure")
    csv = tmp_path / "proposals.csv"
    csv.write_text("lambda_over_A,gamma,theta0,predicted_n\n2.0,1.2,100.0,1.3\n1.0,0.5,250,1\n")
    ff = mc.forcefield_from_proposals(str(csv), 0)
    assert ff == {"name": "proposal0", "lambda_over_A": 2.0, "gamma": 1.2, "theta0": 100.0}
    with pytest.raises(ValueError, match="row 1.theta0: 250.0 is not allowed"):
        mc.forcefield_from_proposals(str(csv), 1)
