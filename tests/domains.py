"""Argument makers shared by the primitive tables: where functions are smooth.

They draw from ``RNG``, which tests/conftest.py replaces before each test with a generator seeded
from the test's node id: a test sees the same data run alone or in the full suite."""

from __future__ import annotations

import numpy as np

# Used as is only at import time (the tables' COVERAGE lists); each test gets its own.
RNG = np.random.default_rng(0)
DTYPES = [np.float64, np.float32]


def real(shape, dtype):
    return RNG.standard_normal(shape).astype(dtype)


def positive(shape, dtype):
    return RNG.uniform(0.5, 2.0, shape).astype(dtype)


def unit(shape, dtype):
    return RNG.uniform(-0.9, 0.9, shape).astype(dtype)


def away_from_zero(shape, dtype):
    v = RNG.uniform(0.3, 2.0, shape) * RNG.choice([-1.0, 1.0], shape)
    return np.asarray(v).astype(dtype)


def tol_for(dtype):
    """check_grads tolerances: the defaults for float64, looser for float32."""
    return {} if dtype == np.float64 else {"atol": 3e-3, "rtol": 3e-3}
