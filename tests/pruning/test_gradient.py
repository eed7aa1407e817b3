"""Gradient design: d nu / d k through the core's elastic constants, training, rounding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tunable_solids.studies.pruning import elasticity as el
from tunable_solids.studies.pruning import gradient as gd


def test_gradient_matches_central_differences(distorted8):
    """JAX d nu / d k (implicit derivative of the CG elastic constants) vs central differences
    of the independent sparse route, h = 1e-5, at random stiffnesses, every 7th bond.
    Error budget: truncation h^2 |nu'''| / 6 ~ 1e-11, round-off eps / h ~ 1e-11, CG at 1e-12
    ~ 1e-12; tolerance 1e-8 absolute (gradients here ~1e-2, so 1e-6 relative). Observed
    ~1e-11."""
    net, g = distorted8
    k = np.random.default_rng(2).uniform(0.5, 1.5, len(g.i))
    nu_fn = gd.nu_of_stiffness(net)
    nu, grad = jax.value_and_grad(nu_fn)(jnp.asarray(k))
    assert abs(float(nu) - el.poisson_ratio(el.elastic_tensor(g, k))) < 1e-11
    h = 1e-5
    bonds = np.arange(0, len(k), 7)
    fd = []
    for b in bonds:
        kp, km = k.copy(), k.copy()
        kp[b] += h
        km[b] -= h
        fd.append((el.poisson_ratio(el.elastic_tensor(g, kp)) - el.poisson_ratio(
            el.elastic_tensor(g, km))) / (2 * h))  # fmt: skip
    fd = np.array(fd)
    assert np.abs(fd).max() > 1e-3  # a real signal
    np.testing.assert_allclose(np.asarray(grad)[bonds], fd, atol=1e-8)


def test_gradient_design_reaches_target(distorted8):
    """Training to nu* = -0.5 (tolerance 1e-3) then rounding: the binary network reaches the
    target, is rigid, and removed bonds are the weakest trained ones (k < 0.5)."""
    net, g = distorted8
    r = gd.gradient_design(net, g, -0.5)
    assert abs(r.info["nu_trained"] + 0.5) <= 1e-3
    assert r.success and r.nu_final <= -0.5
    assert abs(r.info["rounding_nu"][-1] - r.nu_final) < 1e-10
    assert el.rigidity(g, r.mask.astype(float)).valid
    k = r.info["stiffness"]
    assert np.all(k[~r.mask] < 0.5) and k.min() > 0
