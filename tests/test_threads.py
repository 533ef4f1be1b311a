"""Transforms in several threads at once give exactly the single-threaded results.

Trace state lives in the trace objects a transform creates (levels come from one atomic
counter), so threads never see each other's tracers; jit compiles a signature once under a
lock and runs cached programs concurrently.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp

RNG = np.random.default_rng(7)
W = RNG.standard_normal((4, 4))
X = RNG.standard_normal(4)
V = RNG.standard_normal(4)
ITERATIONS = 1000


def mlp_loss(x):
    return dnp.sum(dnp.tanh(x @ W) ** 2)


def wave(x):
    return dnp.sin(x) * dnp.exp(-x * x) + dnp.cumsum(x)


def softplus_sum(x):
    return dnp.sum(dnp.logaddexp(x, 0.0) * dnp.cos(x))


def cubic(x):
    return dnp.sum(x ** 3 * dnp.sin(x))


def same(a: Any, b: Any) -> bool:
    """Bitwise equality of (trees of) results."""
    la, ta = dp.tree_flatten(a)
    lb, tb = dp.tree_flatten(b)
    return ta == tb and all(np.array_equal(np.asarray(p), np.asarray(q)) and
                            np.asarray(p).dtype == np.asarray(q).dtype for p, q in zip(la, lb))


def run_concurrently(works: dict[str, Callable[[], Any]], expected: dict[str, Any],
                     iterations: int) -> None:
    """Run each work in its own thread ``iterations`` times; every result must equal its
    single-threaded ``expected`` value exactly."""
    barrier = threading.Barrier(len(works))
    failures: list[str] = []
    done = dict.fromkeys(works, 0)

    def worker(name: str) -> None:
        try:
            barrier.wait()
            work, want = works[name], expected[name]
            for i in range(iterations):
                got = work()
                if not same(got, want):
                    failures.append(f"{name}, iteration {i}: {got!r} != {want!r}")
                    return
                done[name] += 1
        except BaseException as e:  # reported in the main thread
            failures.append(f"{name}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(name,)) for name in works]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: more interleavings per iteration
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(old)
    assert not any(t.is_alive() for t in threads), "a worker did not finish"
    assert not failures, failures
    assert done == dict.fromkeys(works, iterations)


@pytest.mark.slow
def test_different_transforms_in_four_threads():
    # compile="eager": results compared bit for bit must not change tier (tiers agree to ulps)
    jitted = dp.jit(softplus_sum, compile="eager")
    jitted_grad = dp.jit(dp.grad(mlp_loss), compile="eager")
    works = {
        "grad": lambda: dp.grad(mlp_loss)(X),
        "jvp": lambda: dp.jvp(wave, (X,), (V,)),
        "jit and jit(grad)": lambda: (jitted(X), jitted_grad(X)),
        "hessian": lambda: dp.hessian(cubic)(X[:3]),
    }
    expected = {name: work() for name, work in works.items()}  # single-threaded, beforehand
    # The expected values are right, not just repeatable.
    np.testing.assert_allclose(expected["jvp"][1], dp.jacfwd(wave)(X) @ V, rtol=1e-12)
    np.testing.assert_allclose(expected["hessian"], dp.jacrev(dp.grad(cubic))(X[:3]),
                               rtol=1e-12)
    np.testing.assert_allclose(expected["jit and jit(grad)"][1], expected["grad"], rtol=1e-12)
    run_concurrently(works, expected, ITERATIONS)
    assert jitted.traces == 1 and jitted_grad.traces == 1


@pytest.mark.slow
def test_nested_transforms_in_threads():
    # Each thread nests transforms of its own (levels interleave between threads).
    works = {
        "grad of grad": lambda: dp.grad(lambda x: dp.grad(cubic)(x).sum())(X),
        "jvp of grad": lambda: dp.jvp(dp.grad(mlp_loss), (X,), (V,)),
        "vjp of jvp": lambda: dp.vjp(lambda x: dp.jvp(wave, (x,), (V,))[1], X)[1](V),
        "hvp": lambda: dp.hvp(softplus_sum, (X,), (V,)),
    }
    expected = {name: work() for name, work in works.items()}
    run_concurrently(works, expected, ITERATIONS // 4)


@pytest.mark.slow
def test_threads_share_one_jitted_function_compiled_concurrently():
    # A fresh jitted function: the first calls, in all threads at once, race to compile.
    def f(x):
        return dnp.sum(dnp.tanh(x @ W) * dnp.exp(x * 0.5)) + dnp.sum(x ** 2)

    # compile="eager": every call on the same (fused) code, so results repeat bit for bit (the
    # tiers of compile="background" agree to fast-math's ulp bounds, not bitwise)
    reference = dp.jit(f, compile="eager")(X)  # another jit object: the same compiled result
    shared = dp.jit(f, compile="eager")
    shared_grad = dp.jit(dp.grad(f), compile="eager")
    reference_grad = dp.jit(dp.grad(f), compile="eager")(X)
    works = {f"thread {i}": (lambda: (shared(X), shared_grad(X))) for i in range(4)}
    expected = {name: (reference, reference_grad) for name in works}
    run_concurrently(works, expected, ITERATIONS)
    assert shared.traces == 1 and shared_grad.traces == 1
    assert len(shared.cache) == 1


def test_threads_compile_different_signatures_of_one_jitted_function():
    # compile="eager": results compared bit for bit must not change tier (tiers agree to ulps)
    shared = dp.jit(lambda x: dnp.sum(dnp.sin(x) * x), compile="eager")
    shapes = [(2,), (3,), (2, 2), (5,)]
    inputs = [RNG.standard_normal(s) for s in shapes]
    expected_values = [dp.jit(lambda x: dnp.sum(dnp.sin(x) * x), compile="eager")(x)
                       for x in inputs]
    works = {str(s): (lambda x=x: shared(x)) for s, x in zip(shapes, inputs)}
    expected = {str(s): e for s, e in zip(shapes, expected_values)}
    run_concurrently(works, expected, ITERATIONS // 4)
    assert shared.traces == len(shapes) and len(shared.cache) == len(shapes)


def test_a_transform_paused_in_one_thread_does_not_affect_another():
    # Thread A stops in the middle of its traced function; the main thread runs transforms
    # meanwhile; then A finishes. Neither sees the other's trace.
    inside, resume = threading.Event(), threading.Event()
    result: dict[str, Any] = {}

    def paused(x):
        y = dnp.sin(x) * x
        inside.set()
        assert resume.wait(30)
        return dnp.sum(y * y)

    def thread_a():
        try:
            result["grad"] = dp.grad(paused)(X)
        except BaseException as e:  # reported in the main thread
            result["error"] = e

    a = threading.Thread(target=thread_a)
    a.start()
    try:
        assert inside.wait(30)
        np.testing.assert_array_equal(dp.grad(mlp_loss)(X), dp.grad(mlp_loss)(X))
        out, t = dp.jvp(dnp.sin, (X,), (V,))
        np.testing.assert_allclose(t, np.cos(X) * V, rtol=1e-15)
        np.testing.assert_allclose(dp.jit(dp.grad(cubic))(X), dp.grad(cubic)(X), rtol=1e-12)
    finally:
        resume.set()
        a.join(30)
    assert "error" not in result, result.get("error")
    y = np.sin(X) * X
    np.testing.assert_allclose(result["grad"], 2 * y * (np.cos(X) * X + np.sin(X)), rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("transform", ["grad", "jvp", "jit"])
def test_errors_in_one_thread_leave_other_threads_correct(transform):
    # One thread keeps misusing a transform while another uses it correctly.
    def bad(x):
        if transform == "jit":
            return x if dnp.sum(x) > 0 else -x  # ConcretizationError
        return float(x[0]) * x  # TypeError: float() of a traced value

    calls = {"grad": lambda f: dp.grad(lambda x: dnp.sum(f(x)))(X),
             "jvp": lambda f: dp.jvp(f, (X,), (V,)),
             "jit": lambda f: dp.jit(f)(X)}
    good = {"grad": mlp_loss, "jvp": wave, "jit": wave}[transform]

    def misuse():
        try:
            calls[transform](bad)
        except TypeError:
            return "raised"
        return "did not raise"

    works = {"misuse": misuse, "correct": lambda: calls[transform](good)}
    expected = {"misuse": "raised", "correct": calls[transform](good)}
    run_concurrently(works, expected, ITERATIONS // 4)


@pytest.mark.slow
def test_threads_compile_the_same_new_kernels_in_a_fresh_cache(monkeypatch, tmp_path):
    # Each thread has its own jit objects for the same functions, so every kernel is generated,
    # written and loaded by all threads at once. The kernel cache starts empty.
    monkeypatch.setenv("DIFFPROG_CACHE_DIR", str(tmp_path))

    def make(i):
        def f(x):
            v = dnp.arcsinh(x * 0.5)
            for bit in range(5):  # a distinct chain, hence a distinct kernel, per i
                v = dnp.sin(v) if (i >> bit) & 1 else dnp.cos(v)
            return dnp.arctan(v)
        return f

    functions = [make(i) for i in range(10)]
    x = np.linspace(0.0, 1.0, 16)
    expected = [dp.jit(f, executor="numpy")(x) for f in functions]

    def work():
        return [dp.jit(f, executor="numba")(x) for f in functions]

    works = {f"thread {i}": work for i in range(8)}
    # The numba kernels match the NumPy executor to rounding, not bitwise: compare the
    # threads' results with each other exactly and with NumPy closely.
    results: dict[str, Any] = {}
    barrier = threading.Barrier(len(works))
    errors: list[str] = []

    def worker(name: str) -> None:
        try:
            barrier.wait()
            results[name] = works[name]()
        except BaseException as e:  # reported in the main thread
            errors.append(f"{name}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(name,)) for name in works]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    first = results["thread 0"]
    for name, got in results.items():
        assert same(got, first), name
    for got, want in zip(first, expected):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
