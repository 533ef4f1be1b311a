"""Shared test set-up: Hypothesis profiles, and one deterministic random stream per test."""

from __future__ import annotations

import os
import sys
import zlib

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("default", max_examples=25, deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def seed_for(nodeid: str, stream: str = "") -> int:
    """A seed fixed by the test's node id: the same whether the test runs alone (`-k`, one
    file) or in the full suite. crc32 rather than hash(), which changes from run to run."""
    return zlib.crc32(f"{nodeid}|{stream}".encode())


@pytest.fixture(autouse=True)
def _fresh_rngs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give each test fresh generators seeded from its node id.

    The argument makers of tests/domains.py and several test files draw from a module-level
    ``RNG``; shared across tests, a generator's state would depend on which tests ran before,
    so a test would see other data alone than in the full run. The module-level generators
    stay for import-time data (which every run computes the same way) and are swapped for the
    duration of each test."""
    modules = {"tests.domains": sys.modules.get("tests.domains"), "": request.module}
    for name, module in modules.items():
        if isinstance(getattr(module, "RNG", None), np.random.Generator):
            monkeypatch.setattr(module, "RNG",
                                np.random.default_rng(seed_for(request.node.nodeid, name)))


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator of the test's own, seeded from its node id (for new tests)."""
    return np.random.default_rng(seed_for(request.node.nodeid, "rng"))
