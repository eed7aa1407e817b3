"""Making the metamaterials' structures: dynamics, checkpoints, errors.

- jax-md's NVE driven by the project's Stillinger-Weber energy through the adapter
  :func:`structures.jax_md_energy` conserves energy to O(dt^2) (forces consistent with the
  energy); the adapter's ``perturbation`` derivative (the barostat's virial) is the central
  difference of the scaled box's energy; the NPT thermostat holds the target temperature.
  (jax-md's NPT invariant was tried too: it wanders by ~0.5 eps per 200 steps independent of
  dt, for jax-md's own Stillinger-Weber energy as well, so it is no test of the adapter.)
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


def _nve_drift(R, box, dt, steps):
    """Largest deviation of the total energy from its start over ``steps`` jax-md NVE
    (velocity Verlet) steps with our energy through the adapter, from T = 0.3."""
    U = st.jax_md_energy(ENERGY, OPTIMUM)
    box = jnp.asarray(box)
    _, shift = jmd_space.periodic_general(box, fractional_coordinates=True)
    init, apply = jmd_simulate.nve(U, shift, dt)
    S = jmd_space.transform(jnp.linalg.inv(box), jnp.asarray(R))
    nb = ENERGY.allocate(R, box)
    state = st.float64(init(jax.random.PRNGKey(1), S, 0.3, box=box, neighbor=nb))

    @jax.jit
    def run(state, nb):
        def body(i, c):
            s, n = c
            s = apply(s, box=box, neighbor=n)
            return s, ENERGY.update(jmd_space.transform(box, s.position), box, n)

        return jax.lax.fori_loop(0, steps // 10, body, (state, nb))

    def total(state, nb):
        return float(U(state.position, box, neighbor=nb) + 0.5 * jnp.sum(state.momentum**2))

    E0, dev = total(state, nb), 0.0
    for _ in range(10):
        state, nb = run(state, nb)
        assert not bool(nb.overflow)
        dev = max(dev, abs(total(state, nb) - E0))
    return dev


def test_nve_energy_conservation(liquid):
    R, box = liquid
    coarse = _nve_drift(R, box, 0.004, 500)
    fine = _nve_drift(R, box, 0.002, 1000)
    # Velocity Verlet conserves a shadow energy: the deviation is O(dt^2), so halving dt
    # shrinks it ~4x (> 2.5 leaves room for the two chaotic trajectories); a force that is
    # not minus the energy's gradient (adapter, neighbour rows) would not shrink.
    assert coarse / fine > 2.5
    assert fine < 1e-3 * 128 * 0.3  # a small part of the kinetic energy scale


def test_virial_of_the_adapter(liquid):
    """jax-md's barostat takes dU/dV from the ``perturbation`` argument: it must be the
    derivative of the energy of the isotropically scaled box (central difference, fresh
    neighbour rows; step 1e-5, error O(h^2) ~ 1e-10 relative)."""
    R, box = liquid
    U = st.jax_md_energy(ENERGY, OPTIMUM)
    box = jnp.asarray(box)
    S = jmd_space.transform(jnp.linalg.inv(box), jnp.asarray(R))
    nb = ENERGY.allocate(R, box)
    g = float(jax.grad(lambda e: U(S, box, perturbation=1.0 + e, neighbor=nb))(0.0))
    h = 1e-5

    def scaled(f):
        b = f * box
        return float(ENERGY(jnp.asarray(R) * f, b, OPTIMUM, ENERGY.allocate(R * f, b)))

    fd = (scaled(1 + h) - scaled(1 - h)) / (2 * h)
    assert abs(g - fd) < 1e-7 * abs(fd)


def test_npt_thermostat_reaches_temperature(liquid):
    R, box = liquid
    md = st.MDSettings(dt=0.005, thermostat_tau=0.2, barostat_tau=2.0, checkpoint_every=100)
    seg = [st.Segment("hold", 1500, (0.3, 0.3), (0.05, 0.05))]
    _, _, hist = st.run_md(ENERGY, OPTIMUM, R, box, seg, md, 0)
    # the mean over the last 1000 steps (~25 thermostat periods) within 10% of kT; the
    # instantaneous fluctuation of 128 atoms is sqrt(2/(3N)) = 7%
    temps = [h.temperature for h in hist[5:]]
    assert abs(np.mean(temps) / 0.3 - 1) < 0.1


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


def test_md_failure_stops_or_is_a_failed_sample(monkeypatch):
    """A blow-up stops a named force field's job; a Bayesian-optimization evaluation
    (``on_md_failure: exclude``) records the sample as not converged and goes on."""
    settings = mc.stage_settings(SETTINGS, "structure")

    def blow_up(*args, **kwargs):
        raise st.NonFiniteMDError("non-finite positions during melt at step 40")

    monkeypatch.setattr(stages, "one_structure", blow_up)
    with pytest.raises(st.NonFiniteMDError, match="during melt"):
        stages.make_structures(settings, [0])
    arrays, summary = stages.make_structures({**settings, "on_md_failure": "exclude"}, [0, 1])
    assert summary == {"samples": 2, "converged": 0, "excluded": 2}
    assert arrays["positions"][1].shape == (2, settings["atoms"], 3)
    assert np.isnan(arrays["positions"][1]).all() and not arrays["converged"][1].any()


def test_bad_densities_and_blowups(liquid):
    with pytest.raises(st.DensityError, match="Phi_0 = 0.7"):
        st.random_start(np.random.default_rng(0), 128, 0.7, LIST_RANGE)
    with pytest.raises(st.DensityError, match="twice the neighbour list range"):
        st.random_start(np.random.default_rng(0), 16, 0.4, LIST_RANGE)
    R, box = liquid
    md = st.MDSettings(checkpoint_every=100)
    # a huge tension blows the box up: caught either as a volume jump or, if the box already
    # turned non-finite within the chunk, as non-finite MD; both name the segment and step
    tension = [st.Segment("melt", 300, (0.3, 0.3), (-50.0, -50.0))]
    with pytest.raises((st.BarostatError, st.NonFiniteMDError), match="during melt at step"):
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


IONIC = {"lambda_over_A": 0.0, "gamma": 1.2, "theta0": 109.5, "relax_from": "si"}


@pytest.mark.parametrize(
    "path,value,expected",
    [
        (("forcefields", "si", "theta0"), 200.0, "metamaterials.forcefields.si.theta0: 200.0"),
        (("forcefields", "si", "gamma"), 0.1, "metamaterials.forcefields.si.gamma: 0.1"),
        (("phi0",), [0.7], "metamaterials.phi0.0: 0.7 is not allowed"),
        (("atoms",), 20, "metamaterials.atoms: 20 atoms give a box"),
        (("crystal_cells",), 1, "metamaterials.crystal_cells: 1 cells of diamond"),
        (("forcefields", "si", "structures"), ["bcc"], "'bcc' is not allowed"),
        (("forcefields", "ionic"), {**IONIC, "relax_from": "nope"},
         "metamaterials.forcefields.ionic.relax_from: 'nope' is not allowed"),
        (("forcefields", "ionic"), {**IONIC, "structures": ["disordered"]},
         "metamaterials.forcefields.ionic: give either `structures` or `relax_from`, not both"),
        (("forcefields", "ionic"), {k: v for k, v in IONIC.items() if k != "relax_from"},
         "give either `structures` or `relax_from`, not neither"),
        (("measure",), {"stress_shift": {"steps": -1}},
         "metamaterials.measure.stress_shift.steps: -1"),
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
    # a relax_from force field is made in its source's disordered structures
    cfg = copy.deepcopy(CONFIG)
    cfg["metamaterials"]["forcefields"]["ionic"] = IONIC
    validate(cfg)
    assert mc.forcefield_structures(cfg, "ionic") == ["disordered-phi0.26", "disordered-phi0.40"]
    assert mc.forcefield_settings(cfg, "ionic")["relax_from"] == "si"
