"""SWAP Monte Carlo (tunable_solids.swap_mc): sampling the Boltzmann distribution, incremental
energy, checkpoint/resume, cell-capacity overflow, input errors, and SWAP's speed-up at low T.

Systems: the polydisperse IPL glass former of the bond-operator study (sizes on [1, 2.22],
``P(lambda) ~ lambda^-3``, non-additivity 0.2, x_c = 1.48, densities 0.86 in 2D / 0.58 in 3D),
started from an inherent state (a quench of random positions). 2D N = 64 has a 2 x 2 cell grid
(one active cell per sub-step, the other cell seen as two periodic images), 2D N = 256 a 4 x 4
grid (4 active cells per sub-step), 3D N = 250 a 2 x 2 x 2 grid.
"""

from __future__ import annotations

import io
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tunable_solids import swap_mc as sm
from tunable_solids import systems
from tunable_solids.energy import energy
from tunable_solids.potentials import PairParams, species_params
from tunable_solids.space import all_pairs
from tunable_solids.studies.modes.glasses import Glass, ipl_glass


def _glass(n: int, dim: int, seed: int) -> tuple[Glass, np.ndarray]:
    """An IPL sample and positions equilibrated for 100 plain-MC sweeps at T = 5 from random
    positions (their overlaps relax within a few sweeps; cheaper than compiling a quench)."""
    rng = np.random.default_rng(seed)
    glass = ipl_glass(rng, n, dim)
    R = systems.random_positions(rng, n, glass.box)
    state = sm.init_state(glass.potential, R, glass.box, glass.params, seed)
    state = _run(glass, state, 100, 5.0, 0.0)
    return glass, np.asarray(state.positions)


@pytest.fixture(scope="module")
def ipl64():
    return _glass(64, 2, 11)


@pytest.fixture(scope="module")
def ipl256():
    return _glass(256, 2, 12)


@pytest.fixture(scope="module")
def ipl3d():
    return _glass(250, 3, 13)


def _state(glass: Glass, R: np.ndarray, seed: int = 0, delta: float = 0.1) -> sm.SwapState:
    return sm.init_state(glass.potential, R, glass.box, glass.params, seed, delta)


def _run(glass: Glass, state, n_sweeps, temperature, p_swap, **kw) -> sm.SwapState:
    return sm.run(
        state, n_sweeps, glass.potential, glass.box, glass.params, temperature, p_swap, **kw
    )


def _sampled(glass, state, n_samples, every, temperature, p_swap):
    """Energy per particle after every ``every`` sweeps, ``n_samples`` times."""
    out = []
    _run(
        glass,
        state,
        n_samples * every,
        temperature,
        p_swap,
        block_sweeps=every,
        callback=lambda p: out.append(p.energy_per_particle),
    )
    return np.array(out)


def _mean_and_error(x: np.ndarray, n_blocks: int = 20) -> tuple[float, float]:
    """Mean and its standard error from ``n_blocks`` block averages (blocks much longer than
    the correlation time, so the block means are independent)."""
    blocks = x[: len(x) // n_blocks * n_blocks].reshape(n_blocks, -1).mean(axis=1)
    return float(blocks.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))


# ----------------------------------------------------------------------------- references


def _dense_energy(glass: Glass):
    """``E(R, sizes)`` over all pairs (minimum image), with swap_mc's integer-power IPL
    kernel (checked against energy.energy below and by the incremental-energy test)."""
    box_l = jnp.asarray(np.diag(glass.box))
    i, j = np.triu_indices(len(glass.species), k=1)
    eps = glass.params.nonadditivity

    def e(R, sizes):
        dr = R[i] - R[j]
        dr = dr - box_l * jnp.round(dr / box_l)
        sigma = 0.5 * (sizes[i] + sizes[j]) * (1.0 - eps * jnp.abs(sizes[i] - sizes[j]))
        return jnp.sum(sm._pair_energy_r2(glass.potential, jnp.sum(dr**2, -1), sigma, 1.0))

    return e


@partial(jax.jit, static_argnums=(0, 1, 2))
def _langevin(energy_fn, n_steps, every, R, sizes, key, temperature, dt, gamma):
    """BAOAB Langevin dynamics (unit masses, friction ``gamma``): the configurational
    distribution is exp(-E/T) up to O(dt^2). Returns E/N every ``every`` steps."""
    force = jax.grad(lambda R: -energy_fn(R, sizes))
    c1 = jnp.exp(-gamma * dt)
    c2 = jnp.sqrt((1.0 - c1**2) * temperature)
    n = R.shape[0]

    def step(carry, k):
        R, V, F = carry
        V = V + 0.5 * dt * F
        R = R + 0.5 * dt * V
        V = c1 * V + c2 * jax.random.normal(k, V.shape)
        R = R + 0.5 * dt * V
        F = force(R)
        V = V + 0.5 * dt * F
        return (R, V, F), None

    def sample(carry, k):
        carry, _ = jax.lax.scan(step, carry, jax.random.split(k, every))
        return carry, energy_fn(carry[0], sizes) / n

    k0, k1 = jax.random.split(key)
    V = jnp.sqrt(temperature) * jax.random.normal(k0, R.shape)
    _, e = jax.lax.scan(sample, (R, V, force(R)), jax.random.split(k1, n_steps // every))
    return e


@partial(jax.jit, static_argnums=(0, 1))
def _single_particle_mc(potential, n_sweeps, R, sizes, eps, box_l, key, temperature, delta):
    """Textbook Metropolis: N moves per sweep, each of a uniformly chosen particle by a
    uniform displacement in ``[-delta, delta]^d``, dE over all other particles with
    ``potential.pair_energy`` (independent of swap_mc's kernel). Returns dE summed per sweep
    over N (add the initial E/N for E/N)."""
    n, dim = R.shape

    def particle_energy(R, i, x):
        dr = x - R
        dr = dr - box_l * jnp.round(dr / box_l)
        r = jnp.sqrt(jnp.where(jnp.arange(n) == i, 1e12, jnp.sum(dr**2, -1)))
        li, lj = sizes[i], sizes
        sigma = 0.5 * (li + lj) * (1.0 - eps * jnp.abs(li - lj))
        return jnp.sum(potential.pair_energy(r, PairParams(sigma, jnp.ones(n), jnp.zeros(n))))

    def move(carry, k):
        R, e = carry
        ki, kd, ka = jax.random.split(k, 3)
        i = jax.random.randint(ki, (), 0, n)
        x_new = R[i] + jax.random.uniform(kd, (dim,), minval=-delta, maxval=delta)
        d_e = particle_energy(R, i, x_new) - particle_energy(R, i, R[i])
        accept = jax.random.uniform(ka) < jnp.exp(-d_e / temperature)
        R = R.at[i].set(jnp.where(accept, x_new, R[i]))
        return (R, e + jnp.where(accept, d_e, 0.0)), None

    def sweep(carry, k):
        carry, _ = jax.lax.scan(move, carry, jax.random.split(k, n))
        return carry, carry[1] / n

    _, e = jax.lax.scan(sweep, (R, 0.0), jax.random.split(key, n_sweeps))
    return e


# ----------------------------------------------------------------------------- tests


SIGMAS = 4.0  # allowed distance between two estimates, in combined standard errors


def test_mean_energy_agrees_with_langevin_and_textbook_metropolis(ipl64):
    """Detailed balance (the issue's test): at T = 5 on the 2D IPL N = 64 (2 x 2 cells, the
    hardest image bookkeeping), the mean potential energy per particle of checkerboard plain
    MC (p_swap = 0), checkerboard SWAP MC (p_swap = 0.2), a textbook single-particle
    Metropolis over all pairs and BAOAB Langevin dynamics (dt = 0.003, friction 1) agree
    pairwise within SIGMAS combined standard errors (block averages, 20 blocks each, blocks
    >= 8 correlation times: tau ~ 64 sweeps plain, ~ 24 SWAP, measured at 20,000 sweeps).
    The size assignment is fixed in the plain MC, the textbook MC and the dynamics; SWAP MC
    samples permutations too, which leaves the energy distribution unchanged (relabeling).
    Measured: see the report in the assertion message."""
    glass, R = ipl64
    n, temperature = 64, 5.0
    state = _run(glass, _state(glass, R, seed=1), 300, temperature, 0.2, warmup_sweeps=300)
    energy_fn = _dense_energy(glass)
    sizes = jnp.asarray(state.sizes)
    # The all-pairs energy of the references is energy.energy's (to round-off).
    params = glass.params._replace(diameter=sizes)
    full = energy(
        glass.potential,
        state.positions,
        jnp.asarray(glass.box),
        params,
        jnp.arange(n),
        all_pairs(n),
    )
    assert abs(float(energy_fn(state.positions, sizes)) - float(full)) < 1e-10 * abs(float(full))

    estimates = {}
    for name, p_swap in (("plain MC", 0.0), ("SWAP MC", 0.2)):
        e = _sampled(glass, state, 1000, 10, temperature, p_swap)
        estimates[name] = _mean_and_error(e)
    d_e = _single_particle_mc(
        glass.potential,
        10_000,
        state.positions,
        sizes,
        0.2,
        jnp.asarray(np.diag(glass.box)),
        jax.random.key(2),
        temperature,
        float(state.delta),
    )
    estimates["textbook MC"] = _mean_and_error(np.asarray(d_e) + float(state.energy) / n)
    e_md = _langevin(
        energy_fn, 100_000, 50, state.positions, sizes, jax.random.key(3), temperature, 0.003, 1.0
    )
    estimates["Langevin"] = _mean_and_error(np.asarray(e_md))

    report = ", ".join(f"{k}: {m:.4f} +- {s:.4f}" for k, (m, s) in estimates.items())
    names = list(estimates)
    for a, name_a in enumerate(names):
        for name_b in names[a + 1 :]:
            (m1, s1), (m2, s2) = estimates[name_a], estimates[name_b]
            assert abs(m1 - m2) < SIGMAS * np.hypot(s1, s2), f"{name_a} vs {name_b}: {report}"
    print(report)


def test_incremental_energy_matches_full_energy(ipl256, ipl3d):
    """After 300 sweeps (2D N = 256 at T = 0.5, 3D N = 250 at T = 1, both with SWAPs and a
    warm-up) the tracked energy equals a fresh energy.energy evaluation to 1e-9 relative
    (measured ~1e-14); the sizes stay a permutation of the initial sizes."""
    for (glass, R), temperature in ((ipl256, 0.5), (ipl3d, 1.0)):
        state = _run(glass, _state(glass, R), 300, temperature, 0.3, warmup_sweeps=50)
        assert sm.energy_error(state, glass.potential, glass.box, glass.params) < 1e-9
        assert np.array_equal(np.sort(state.sizes), np.sort(glass.params.diameter))
        assert np.all((state.positions >= 0) & (state.positions < np.diag(glass.box)))
        acc_d, acc_s = sm.acceptance(state)
        assert 0.05 < acc_d < 0.95 and 0.0 < acc_s < 1.0
        assert int(state.sweep) == 300


def test_resume_is_bit_identical(ipl256):
    """One run of 30 sweeps equals 13 sweeps, a numpy save/load round trip, then 17 more
    (with the delta warm-up crossing the split, and different callback blocks)."""
    glass, R = ipl256
    kw = dict(warmup_sweeps=20)
    start = _state(glass, R, seed=5)
    one = _run(glass, start, 30, 0.8, 0.2, block_sweeps=10, **kw)
    half = _run(glass, start, 13, 0.8, 0.2, block_sweeps=4, **kw)
    buffer = io.BytesIO()
    np.savez(buffer, **sm.state_arrays(half))
    buffer.seek(0)
    restored = sm.state_from_arrays(dict(np.load(buffer)))
    two = _run(glass, restored, 17, 0.8, 0.2, block_sweeps=17, **kw)
    for name, a, b in zip(sm.SwapState._fields, one, two, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b)), name
        assert np.asarray(a).dtype == np.asarray(b).dtype, name


def test_cell_overflow_is_detected_and_redone(ipl64):
    """A capacity below the occupancy is detected (never drops neighbours silently): the
    block is redone with doubled capacity, and the result is exactly the run that had the
    final capacity from the start."""
    glass, R = ipl64
    start = _state(glass, R, seed=3)
    r_c = sm.interaction_range(glass.potential, glass.params.diameter, 0.2)
    plan = sm._Plan(glass.potential, sm.cell_grid(glass.box, r_c), 8, 16, 1)
    consts = sm._Consts(
        *map(jnp.asarray, (np.diag(glass.box), np.diag(glass.box) / 2, 1.0, 0.2, 1.0, 0.2, 0, 0.4))
    )
    _, overflow = sm._block(plan, consts, start._replace(cell_capacity=jnp.asarray(8)), 1)
    assert bool(overflow)

    small = _run(glass, start._replace(cell_capacity=jnp.asarray(8, jnp.int64)), 20, 1.0, 0.2)
    capacity = int(small.cell_capacity)
    assert capacity > 8
    big = _run(glass, start._replace(cell_capacity=jnp.asarray(capacity, jnp.int64)), 20, 1.0, 0.2)
    for name, a, b in zip(sm.SwapState._fields, small, big, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b)), name
    assert sm.energy_error(small, glass.potential, glass.box, glass.params) < 1e-9


def test_bad_inputs_raise(ipl64):
    glass, R = ipl64
    state = _state(glass, R)
    with pytest.raises(ValueError, match="temperature"):
        _run(glass, state, 1, 0.0, 0.2)
    with pytest.raises(ValueError, match="temperature"):
        _run(glass, state, 1, -1.0, 0.2)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match="p_swap"):
            _run(glass, state, 1, 1.0, p)
    with pytest.raises(ValueError, match="delta"):
        _state(glass, R, delta=0.0)
    small = ipl_glass(np.random.default_rng(0), 32, 2)  # L = 6.1 < 2 r_c = 6.6
    R_small = systems.random_positions(np.random.default_rng(1), 32, small.box)
    with pytest.raises(ValueError, match="box too small"):
        sm.init_state(small.potential, R_small, small.box, small.params, 0)
    sheared = glass.box.copy()
    sheared[0, 1] = 0.5
    with pytest.raises(ValueError, match="orthorhombic"):
        sm.init_state(glass.potential, R, sheared, glass.params, 0)
    with pytest.raises(TypeError, match="ParticleParams"):
        sm.init_state(glass.potential, R, glass.box, species_params([1.0, 1.4]), 0)


def test_cell_grid_is_even():
    """floor(L / r_c) lowered to even: 5 -> 4, 3 -> 2, 2 stays; below 2 is an error."""
    assert sm.cell_grid(np.diag([10.0, 6.0, 4.0]), 1.9) == (4, 2, 2)
    with pytest.raises(ValueError, match="box"):
        sm.cell_grid(np.eye(2) * 3.0, 1.9)


def test_swap_reaches_lower_energy_at_low_temperature(ipl256):
    """Quenched to T = 0.3 from the T = 5 liquid (2D IPL, N = 256, E/N = 17.79), plain MC
    relaxes slowly (measured E/N after 300 sweeps: 10.65, 10.51 for two seeds) while SWAP MC
    (p_swap = 0.2) goes much lower (8.71, 8.60): SWAP must be lower by more than 1."""
    glass, R = ipl256
    start = _state(glass, R, seed=7)
    plain = _run(glass, start, 300, 0.3, 0.0, warmup_sweeps=50)
    swap = _run(glass, start, 300, 0.3, 0.2, warmup_sweeps=50)
    e_plain, e_swap = float(plain.energy) / 256, float(swap.energy) / 256
    assert e_swap < e_plain - 1.0, (e_plain, e_swap)
