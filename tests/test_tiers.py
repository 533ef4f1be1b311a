"""Execution tiers of jit (diffprog.kernels.tiers): the first call compiles nothing, compiled
tiers are swapped in from a background thread, failures fall back, results never change."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.kernels import tiers
from diffprog.kernels.executor import numpy_executor

pytest.importorskip("numba")

W = np.linspace(0.5, 1.5, 8)


def f(x):
    return dnp.sum(dnp.tanh(dnp.sin(x) * W + x) * dnp.exp(-x * x) + dp.nn.sigmoid(x) ** 2)


X = np.linspace(-1.0, 1.2, 8)
EDGE = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e308, 1e-308, 5e-324])


def program_of(jitted):
    (program,) = jitted.cache.values()
    return program


class FakeFused:
    """Stands in for the fused tier: the NumPy executor, counted (no numba compilation)."""

    def __init__(self, graph, fail=False):
        self.run = numpy_executor(graph)
        self.calls = 0
        self.fail = fail

    def __call__(self, inputs):
        self.calls += 1
        if self.fail:
            raise RuntimeError("a broken kernel")
        return self.run(inputs)


@pytest.fixture
def fake_fused(monkeypatch):
    made = []

    def fused_executor(graph, select=True):
        made.append(FakeFused(graph))
        return made[-1]

    monkeypatch.setattr(tiers, "fused_executor", fused_executor)
    return made


def test_the_first_call_runs_on_an_instant_tier_without_starting_a_compilation(fake_fused):
    jitted = dp.jit(dp.grad(f), compile="background")
    np.testing.assert_allclose(jitted(X), dp.grad(f)(X), rtol=1e-13)
    program = program_of(jitted)
    assert program.tier in ("numpy", "interp")
    assert not program.tiers._started and not fake_fused  # nothing compiles for one call
    jitted(X)  # the second call starts the background work
    assert program.tiers._started
    assert jitted.wait_compiled(timeout=120)


def test_after_the_background_compile_the_fused_tier_runs_with_the_same_results(fake_fused):
    jitted = dp.jit(dp.grad(f), compile="background")
    want = dp.grad(f)(X)
    first = jitted(X)
    assert jitted.wait_compiled(timeout=120)
    program = program_of(jitted)
    assert program.tier == "fused"
    (fused,) = fake_fused
    for _ in range(len(program.tiers.runners) * tiers.MAX_TRIALS + 2):
        np.testing.assert_allclose(jitted(X), want, rtol=1e-13)
    np.testing.assert_allclose(first, want, rtol=1e-13)
    assert fused.calls >= tiers.TRIALS
    # the choice is final: the program calls the chosen runner directly
    assert not program.tiers.timing
    assert program.run is program.tiers.runners[program.tier]


def test_a_slower_tier_is_dropped_after_its_trial(monkeypatch):
    def fused_executor(graph, select=True):
        run = numpy_executor(graph)

        def slow(inputs):
            time.sleep(0.02)
            return run(inputs)
        return slow

    monkeypatch.setattr(tiers, "fused_executor", fused_executor)
    jitted = dp.jit(f, compile="background")
    jitted(X)
    jitted(X)
    assert jitted.wait_compiled(timeout=120)
    for _ in range(3 * tiers.MAX_TRIALS + 2):
        jitted(X)
    assert program_of(jitted).tier != "fused"
    np.testing.assert_allclose(jitted(X), f(X), rtol=1e-13)


def test_a_compile_failure_keeps_the_tier_in_use(monkeypatch, caplog):
    def broken(graph, select=True):
        raise RuntimeError("numba failed")

    monkeypatch.setattr(tiers, "fused_executor", broken)
    monkeypatch.setattr(tiers, "whole_executor", lambda graph: None)  # (not this test's tier)
    jitted = dp.jit(dp.grad(f), compile="background")
    with caplog.at_level("DEBUG", logger="diffprog.jit"):
        jitted(X)
        assert jitted.wait_compiled(timeout=120)
    program = program_of(jitted)
    assert program.tier in ("numpy", "interp")
    assert "numba failed" in program.tiers.failed["compile"]
    assert any("background compilation failed" in r.message for r in caplog.records)
    np.testing.assert_allclose(jitted(X), dp.grad(f)(X), rtol=1e-13)


def test_a_tier_failing_at_run_time_is_dropped_and_the_call_rerun(monkeypatch):
    monkeypatch.setattr(tiers, "fused_executor", lambda graph, select=True: FakeFused(graph, True))
    jitted = dp.jit(dp.grad(f), compile="background")
    jitted(X)
    assert jitted.wait_compiled(timeout=120)
    program = program_of(jitted)
    assert program.tier == "fused"
    np.testing.assert_allclose(jitted(X), dp.grad(f)(X), rtol=1e-13)  # rerun on the old tier
    assert program.tier != "fused" and "fused" in program.tiers.failed


def test_never_compiles_nothing_per_program(monkeypatch):
    def forbidden(graph, select=True):
        raise AssertionError("compile='never' compiled a program")

    monkeypatch.setattr(tiers, "fused_executor", forbidden)
    jitted = dp.jit(dp.grad(f), compile="never")
    for _ in range(3):
        np.testing.assert_allclose(jitted(X), dp.grad(f)(X), rtol=1e-13)
    assert jitted.wait_compiled(timeout=120)
    assert program_of(jitted).tier in ("numpy", "interp")
    assert "compile" not in program_of(jitted).tiers.failed


def test_concurrent_callers_during_the_swap_get_right_results(monkeypatch):
    gate = threading.Event()

    def fused_executor(graph, select=True):
        gate.wait(10)  # the swap happens while the threads are calling
        return FakeFused(graph)

    monkeypatch.setattr(tiers, "fused_executor", fused_executor)
    jitted = dp.jit(dp.grad(f), compile="background")
    want = dp.grad(f)(X)
    jitted(X)
    errors = []

    def caller():
        try:
            for _ in range(60):
                np.testing.assert_allclose(jitted(X), want, rtol=1e-13)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join()
    assert not errors
    assert jitted.wait_compiled(timeout=120)
    np.testing.assert_allclose(jitted(X), want, rtol=1e-13)


@pytest.mark.parametrize("mode", ["background", "never"])
@pytest.mark.parametrize("order", ["f", "grad", "hessian"])
def test_every_instant_tier_matches_eager_on_functions_grads_hessians(order, mode, fake_fused):
    fn = {"f": f, "grad": dp.grad(f), "hessian": dp.hessian(f)}[order]
    jitted = dp.jit(fn, compile=mode)
    for x in (X, EDGE):
        with np.errstate(all="ignore"):
            want = fn(x)
            for _ in range(3):
                np.testing.assert_allclose(jitted(x), want, rtol=1e-13, atol=1e-15)
        jitted.wait_compiled(timeout=120)


def test_config_default_and_validation():
    assert dp.config.jit_compile == "background"
    with pytest.raises(ValueError, match="jit_compile"):
        dp.config.jit_compile = "later"
    with pytest.raises(ValueError, match="compile"):
        dp.jit(f, compile="sometimes")
    previous = dp.config.jit_compile
    try:
        dp.config.jit_compile = "never"
        jitted = dp.jit(f)
        jitted(X)
        assert program_of(jitted).tiers.mode == "never"
    finally:
        dp.config.jit_compile = previous


def test_an_explicit_executor_is_deterministic():
    for kind, tier in (("numpy", "numpy"), ("interp", "interp")):
        jitted = dp.jit(f, executor=kind, compile="background")
        np.testing.assert_allclose(jitted(X), f(X), rtol=1e-13)
        assert program_of(jitted).tier == tier and program_of(jitted).tiers is None


@pytest.mark.slow
def test_interpreter_exit_during_a_background_compile_is_clean(tmp_path):
    script = (
        "import numpy as np, diffprog as dp, diffprog.numpy as dnp\n"
        "f = dp.jit(lambda x: dnp.sum(dnp.tanh(dnp.sin(x) * 1.5 + x) * dnp.exp(-x)),\n"
        "           compile='background')\n"
        "x = np.linspace(0, 1, 1 << 16)\n"
        "f(x); f(x)\n"
        "print('done')\n")
    import os
    env = dict(os.environ, DIFFPROG_CACHE_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done"
    assert "Fatal" not in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow
def test_real_fused_kernels_in_the_background_match_eager(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFPROG_CACHE_DIR", str(tmp_path))
    x = np.linspace(-2.0, 2.0, 1 << 16)
    jitted = dp.jit(dp.grad(f2), compile="background")
    want = dp.grad(f2)(x)
    np.testing.assert_allclose(jitted(x), want, rtol=1e-13, atol=1e-14)
    assert jitted.wait_compiled(timeout=600)
    program = program_of(jitted)
    assert program.tier == "fused"
    assert not program.tiers.failed
    for _ in range(3 * tiers.MAX_TRIALS + 1):
        np.testing.assert_allclose(jitted(x), want, rtol=1e-13, atol=1e-14)
    eager = dp.jit(dp.grad(f2), compile="eager")
    np.testing.assert_allclose(eager(x), want, rtol=1e-13, atol=1e-14)


def f2(x):
    v = dnp.sin(x) * 1.5 + x
    return dnp.sum(dnp.tanh(v) * dnp.exp(-v * v) + dnp.cos(x) * v)


# -- memory: a dropped program is released -----------------------------------------------------

def _settled_program(scale, x):
    """A jitted gradient run until its tiers are chosen; returns weak references to its
    Program and its tiered runner, and its result (to check against eager)."""
    import weakref
    jitted = dp.jit(dp.grad(lambda x: dnp.sum(dnp.tanh(x @ np.eye(x.shape[0])) * scale
                                               + dnp.sin(x * scale) ** 2)),
                    compile="background")
    jitted(x)
    assert jitted.wait_compiled(timeout=300)
    program = program_of(jitted)
    for _ in range(400):
        out = jitted(x)
        if not program.tiers.timing:
            break
    return weakref.ref(program), weakref.ref(program.tiers), out


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropped_programs_are_released_without_a_garbage_collection(dtype):
    # The program and its tiered runner held each other (and a generated function its own
    # globals): a dropped program stayed until a collection. Now reference counting frees
    # them, with every tier (whole program and interpreter for float64, fused for float32).
    import gc
    x = np.linspace(0.1, 1.0, 6).astype(dtype)
    refs = []
    gc.collect()
    gc.disable()
    try:
        for k in range(4):
            program, runner, out = _settled_program(1.0 + k, x)
            refs += [program, runner]
        alive = [r() for r in refs if r() is not None]
    finally:
        gc.enable()
    assert not alive, [type(a).__name__ for a in alive]


@pytest.mark.slow
def test_memory_does_not_grow_with_dropped_programs():
    # tracemalloc over 20 dropped programs of ~300 nodes each, after a warm-up: a program
    # that stayed would keep its graph, runners and tables (several hundred KB each)
    import gc
    import tracemalloc
    x = np.linspace(0.1, 1.0, 6)

    def program(k):
        def loss(x):
            for _ in range(20):
                x = dnp.tanh(x * (1.0 + k)) + dnp.sin(x) * 0.5
            return dnp.sum(x * x)
        jitted = dp.jit(dp.grad(loss), compile="background")
        jitted(x)
        assert jitted.wait_compiled(timeout=300)
        for _ in range(50):
            jitted(x)
        np.testing.assert_allclose(jitted(x), dp.grad(loss)(x), rtol=1e-12)

    for k in range(3):
        program(k)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(20):
            program(10 + k)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # (Python's interned-name table may grow once, by ~2 MB, when generated code is compiled)
    assert grown < 3e6, f"{grown / 1e6:.2f} MB kept by 20 dropped programs"
