"""Shared test set-up: Hypothesis profiles, and one deterministic random stream per test."""

from __future__ import annotations

import os
import re
import sys
import zlib
from collections.abc import Callable

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


def _fft_words(item: pytest.Function) -> list[object]:
    """test_fft's cases are whole rows named "rfft-(3, 4)-ax0-n6-None": the function, the input
    shape and dtype."""
    case = item.callspec.params["case"]
    return [("fn", case[0].split("-")[0]), ("shape", case[2]), ("dtype", case[3])]


def _first_word(*others: str) -> Callable[[pytest.Function], list[object]]:
    """Cover the first word of the case's id ("solve" for solve, solve_vector, solve_batch) and
    the values of the parameters `others`."""
    def words(item: pytest.Function) -> list[object]:
        word = re.split(r"[-_ \[]", item.name.split("[", 1)[1], maxsplit=1)[0]
        return [("word", word)] + [(p, _key(item.callspec.params[p])) for p in others]
    return words


def _every(n: int) -> Callable[[pytest.Function], list[object]]:
    """Keep every n-th case (tables whose every case is another primitive and costs a kernel)."""
    count = iter(range(1 << 30))
    return lambda item: [("slot", next(count) // n)]


def _names(param: str, *values: object) -> Callable[[pytest.Function], list[object]]:
    """Cover only the listed values of `param` (a sample that shares a costly set-up, such as a
    numba loop compiled per function, across the tests that use it)."""
    return lambda item: [(param, v) for v in [item.callspec.params[param]] if v in values]


def _flags(**tests: Callable[[object], object]) -> Callable[[pytest.Function], list[object]]:
    """Cover the values tests[p](value of p): e.g. checkpointed or not rather than every length."""
    return lambda item: [(p, f(item.callspec.params[p])) for p, f in tests.items()]


# Parametrized tables whose full product only `make test` runs (it runs the slow tests too).
# `make test-fast` keeps, in collection order, the first case and each case that brings a value
# not seen before of one of the named parameters (every function, dtype, shape, axis ... of the
# table runs at least once); it marks the other cases slow. A callable gives the values to cover
# of a case; () keeps only the first case (tests that each take about a second: a subprocess, a
# cache rebuilt, an order-2 gradient in both modes).
# The order-2 gradient tables (about a second a case) cover only their dtypes here: scipy.stats
# checks norm's gradients in both dtypes; scipy.special's first derivatives of every function
# run in test_jit_of_grad_equals_grad.
_SAMPLED: dict[str, tuple[str, ...] | Callable[[pytest.Function], list[object]]] = {
    "test_conformance.py::test_conformance": ("name", "dtype", "jit"),
    "test_conformance.py::test_var_std": ("name", "dtype", "kw"),
    "test_numpy_reductions.py::test_reduction": ("name", "shape", "axis", "keepdims", "dtype"),
    "test_numpy_elementwise.py::test_binary": ("name", "shapes", "dtype"),
    "test_numpy_elementwise.py::test_unary": ("name", "shape", "dtype"),
    "test_numpy_shapes.py::test_table_grads": _first_word("dtype"),
    "test_numpy_shapes.py::test_table_values_match_numpy": _first_word("dtype"),
    "test_numpy_more.py::test_derivatives": _first_word(),
    "test_fft.py::test_values_linear_map_and_transpose": _fft_words,
    "test_scipy_stats.py::test_continuous_values": ("name", "method"),
    "test_scipy_stats.py::test_discrete_values": ("name", "method"),
    "test_scipy_stats.py::test_continuous_grads": ("dtype",),
    "test_scipy_stats.py::test_discrete_grads": ("dtype",),
    "test_scipy_stats.py::test_cdf_family_gradients_beside_invalid_points": (),
    "test_scipy_special.py::test_check_grads_both_modes_order_2": ("dtype",),
    "test_complex.py::test_check_grads": _first_word("dtype"),
    "test_complex_linalg.py::test_check_grads_complex": _first_word(),
    "test_complex_linalg.py::test_scipy_linalg_complex": _first_word(),
    "test_control.py::test_scan_grads": _flags(checkpoint_every=bool),
    "test_control.py::test_unroll_gives_the_same_values_and_derivatives": (),
    "test_transforms.py::test_every_composition_pair": ("outer", "inner"),
    # every function's scalar form runs in test_thresholds_match_numpy; the loops compiled
    # per function (half a second each) for these three tests: exp and sin (range reduction)
    "test_fastmath.py::test_special_values": _names("name", "exp", "sin"),
    "test_fastmath.py::test_vectorized_loop_matches_scalar_calls": _names("name", "exp", "sin"),
    "test_fastmath.py::test_loops_are_vectorized": _names("name", "exp", "sin"),
    "test_properties.py::test_fused_kernel_of_binary_function_matches_numpy": (),
    # each case compiles kernels (1-2.5 s on a cold cache): every 8th keeps a fresh
    # checkout's first test-fast near a minute; make test runs them all
    "test_fusion.py::test_every_scalar_form_equals_eager_on_edge_values_and_dtypes": _every(8),
    "test_prims.py::test_reduction": ("name", "axis", "keepdims", "dtype"),
    "test_numpy_reductions.py::test_scan": ("name", "shape", "axis", "dtype"),
    "test_numpy_elementwise.py::test_nondifferentiable_have_zero_derivative": ("name", "shape"),
    "test_numpy_linalg.py::test_linalg": _first_word(),
    "test_numpy_linalg.py::test_products": _first_word("dtype"),
    "test_numpy_linalg.py::test_vector_norm": ("shape", "axis", "keepdims", "ord"),
    "test_numpy_linalg.py::test_matrix_norm": ("shape", "axis", "keepdims", "ord"),
    "test_nn.py::test_elementwise": ("name", "shape", "dtype"),
    "test_nn.py::test_along_axes": ("name", "shape", "dtype"),
    "test_complex.py::test_dtypes_are_kept": _first_word("dtype"),
    "test_complex.py::test_jit_of_grad_is_eager_grad": _first_word(),
    "test_scipy_signal.py::test_values": ("name", "mode", "shapes"),
    "test_scipy_linalg.py::test_solve": ("assume_a", "lower", "transposed"),
    "test_scipy_linalg.py::test_solve_triangular": ("trans", "lower", "unit"),
    "test_scipy_linalg.py::test_expm_values": _every(3),
    "test_scipy_special.py::test_logsumexp_against_scipy": _every(3),
    "test_scipy_special.py::test_distribution_functions_check_grads_order_2": _every(3),
    "test_package_cache.py::test_an_unsafe_package_pycache_is_not_used": (),
    "test_optim.py::test_optimizers_reach_the_minimum_and_keep_static_leaves":
        _names("name", "sgd", "adam"),
    "test_complex_vmap.py::test_per_example_gradients_of_complex_losses_through_control_flow":
        (),
}
# Single cases of about a second (the doctests of a module that compile or rewrite kernels,
# round with four numbers of decimals): slow, the other cases of their tests stay in test-fast.
_SLOW_CASES = {
    "test_docs.py::test_docstring_examples[diffprog.kernels.fastmath]",
    "test_docs.py::test_docstring_examples[diffprog.kernels.cache]",
    "test_fusion.py::test_every_scalar_form_equals_eager_on_edge_values_and_dtypes[round]",
}


def _key(value: object) -> object:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark slow the cases of _SLOW_CASES and the cases of _SAMPLED's tables outside the sample
    (only marks: `make test` runs them all, `-m "not slow"` leaves them out)."""
    seen: dict[str, set] = {}
    for item in items:
        if not isinstance(item, pytest.Function) or not hasattr(item, "callspec"):
            continue
        name = f"{item.path.name}::{item.originalname}"
        if f"{item.path.name}::{item.name}" in _SLOW_CASES:
            item.add_marker(pytest.mark.slow)
            continue
        cover = _SAMPLED.get(name)
        if cover is None:
            continue
        keys = (cover(item) if callable(cover)
                else [(p, _key(item.callspec.params[p])) for p in cover])
        new = seen.get(name)
        if new is None:
            new = seen[name] = set()
        elif new.issuperset(keys):
            item.add_marker(pytest.mark.slow)
        new.update(keys)
