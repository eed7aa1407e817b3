"""The parameter vector theta and the parameter pytrees (:mod:`tunable_solids.parameters`):
round trip, labels and counts for every parameter group, symmetric matrices kept symmetric."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from tunable_solids import parameters as par
from tunable_solids.potentials import NetworkParams, SpeciesParams


def test_theta_params_round_trip():
    rng = np.random.default_rng(0)
    d = rng.uniform(0.9, 1.4, 4)
    k = rng.uniform(0.5, 2, (4, 4))
    b = rng.uniform(0, 0.1, (4, 4))
    params = SpeciesParams(jnp.asarray(d), jnp.asarray(k + k.T), jnp.asarray(b + b.T))
    for names in (("D",), ("k",), ("B",), ("D", "k"), ("D", "B"), ("D", "k", "B")):
        theta = par.theta_of(params, names)
        assert theta.shape == (par.n_theta_of(names, 4),)
        assert len(par.theta_labels(params, names)) == theta.shape[0]
        assert par.species_for_n_theta(names, theta.shape[0]) == 4
        back = par.params_of(theta, params, names)
        for a, b_ in zip(back, params, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b_))
        new = theta + jnp.arange(theta.shape[0])
        p2 = par.params_of(new, params, names)
        np.testing.assert_array_equal(np.asarray(par.theta_of(p2, names)), np.asarray(new))
        for m in (p2.k, p2.binding):
            np.testing.assert_array_equal(np.asarray(m), np.asarray(m).T)
    net = NetworkParams(jnp.arange(5.0), jnp.ones(5))
    theta = par.theta_of(net, ("stiffness",))
    assert par.params_of(theta * 2, net, ("stiffness",)).stiffness.tolist() == [0, 2, 4, 6, 8]
    assert par.species_for_n_theta(("D", "k"), 10) is None  # 2, 5, 9, 14, ... only


def test_all_group_ravels_any_pytree():
    """``all``: every leaf of a general energy's parameter pytree, in tree order."""
    params = {"lam": jnp.asarray(21.0), "sigma": jnp.arange(4.0).reshape(2, 2)}
    theta = par.theta_of(params, ("all",))
    np.testing.assert_array_equal(np.asarray(theta), [21.0, 0.0, 1.0, 2.0, 3.0])
    assert par.theta_labels(params, ("all",)) == [
        "['lam']", "['sigma']_0", "['sigma']_1", "['sigma']_2", "['sigma']_3"
    ]  # fmt: skip
    back = par.params_of(theta + 1.0, params, ("all",))
    assert float(back["lam"]) == 22.0 and back["sigma"].shape == (2, 2)
    np.testing.assert_array_equal(np.asarray(back["sigma"]), [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="parameter group 'all' stands alone"):
        par.theta_of(params, ("all", "D"))
