"""Shared networks of the pruning tests (small: 6x6 .. 8x8 nodes)."""

from __future__ import annotations

import numpy as np
import pytest

import tunable_solids  # noqa: F401  (float64)
from tunable_solids.studies.pruning import elasticity as el
from tunable_solids.studies.pruning import networks as nw


@pytest.fixture(scope="session")
def distorted8():
    """8 x 8 distorted triangular lattice, r = 0.3, seed 0 (nu ~ 0.23)."""
    net = nw.distorted_triangular(8, 0.3, np.random.default_rng(0))
    return net, el.geometry(net)
