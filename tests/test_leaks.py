"""No leaks: traced graphs are freed once a transform is done with them.

Two kinds of evidence. Weak references to the intermediate arrays a traced function computes
(the values a recorded graph would keep alive) must be dead after the transform returns, and a
scan of the garbage collector's objects must find no trace, tracer or graph node created by
this file. Then tracemalloc: between iteration 100 and 1,000 of a loop of gradients of a
10^5-element function, traced memory grows by less than 1 MB.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.ad import JVPTrace, JVPTracer, ReverseTrace, ReverseTracer
from diffprog.core import Primitive, Trace, Tracer
from diffprog.graph import Node
from diffprog.jit import JitTrace, JitTracer

N = 10 ** 5
ITERATIONS = 1000
WARMUP = 100
MAX_GROWTH = 1 << 20  # bytes
X = np.random.default_rng(0).standard_normal(N)


class Probe:
    """Weak references to the arrays under a traced function's intermediate values."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref] = []
        self.active = False

    def watch(self, *values: Any) -> None:
        if self.active:
            for v in values:
                while isinstance(v, Tracer):  # the array under any number of tracers
                    v = v.primal
                if isinstance(v, np.ndarray):
                    self.refs.append(weakref.ref(v))

    def alive(self) -> int:
        gc.collect()
        return sum(r() is not None for r in self.refs)


def make_loss(probe: Probe) -> Callable:
    def loss(x):
        a = dnp.sin(x) * x
        b = dnp.tanh(a)
        c = b * b + dnp.exp(-x * x)
        probe.watch(a, b, c)
        return dnp.sum(c)
    return loss


def expected_grad(x: np.ndarray) -> np.ndarray:
    a = np.sin(x) * x
    b = np.tanh(a)
    return 2 * b * (1 - b * b) * (np.cos(x) * x + np.sin(x)) - 2 * x * np.exp(-x * x)


def created_here(types: tuple[type, ...]) -> list:
    """Live traces (and tracers and nodes, found through traces) created by this file."""
    gc.collect()
    found = []
    for obj in gc.get_objects():
        if type(obj) in types:
            trace = obj if isinstance(obj, Trace) else getattr(obj, "_trace", None)
            if trace is not None and __file__ in trace.where:
                found.append(obj)
        elif is_node(obj):
            found.append(obj)  # a node does not know its trace: counted against a baseline
    return found


def is_node(obj: Any) -> bool:
    """A recorded node: a Node, or the plain tuple of its six fields that grad and vjp record
    (``(prim, args, params, out, parents, idx)``)."""
    return type(obj) is Node or (type(obj) is tuple and len(obj) == 6
                                 and isinstance(obj[0], Primitive))


def live_nodes() -> int:
    gc.collect()
    return sum(is_node(o) for o in gc.get_objects())


TRACE_TYPES = (ReverseTrace, ReverseTracer, JVPTrace, JVPTracer, JitTrace, JitTracer)


def assert_freed(nodes_before: int) -> None:
    leftovers = [o for o in created_here(TRACE_TYPES) if not is_node(o)]
    assert not leftovers, f"{len(leftovers)} traces/tracers survived: {leftovers[:3]}"
    assert live_nodes() <= nodes_before, "graph nodes survived"


def measure_loop(step: Callable[[int], None], iterations: int = ITERATIONS) -> int:
    """Run ``step(i)`` ``iterations`` times; the traced-memory growth from WARMUP to the end.
    The eager kernels of large arrays load in a background thread after the first call: the
    loop waits for them after its first step, so that the others run the same code (loading
    during the measured part would count as growth, and results could differ in last bits)."""
    from diffprog.kernels import eager_fast
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(WARMUP):
            step(i)
            if i == 0:
                eager_fast.wait_ready(600)
        gc.collect()
        at_warmup = tracemalloc.get_traced_memory()[0]
        for i in range(WARMUP, iterations):
            step(i)
        gc.collect()
        at_end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return at_end - at_warmup


@pytest.mark.slow
def test_a_thousand_grads_free_their_graphs():
    probe = Probe()
    grad = dp.grad(make_loss(probe))
    nodes_before = live_nodes()
    results = []

    def step(i: int) -> None:
        probe.active = i < 5 or i >= ITERATIONS - 5  # watch a few early and late iterations
        g = grad(X)
        if i in (1, ITERATIONS - 1):  # both after the eager kernels loaded
            results.append(g)

    growth = measure_loop(step)
    assert len(probe.refs) == 30
    assert probe.alive() == 0, "intermediate values of a finished grad are still referenced"
    assert_freed(nodes_before)
    assert growth < MAX_GROWTH, f"traced memory grew by {growth} bytes"
    np.testing.assert_allclose(results[0], expected_grad(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.slow
def test_dropped_vjp_functions_free_their_graphs():
    probe = Probe()
    loss = make_loss(probe)
    nodes_before = live_nodes()

    # While the caller holds vjp_fn, its graph (and some intermediate values) stay alive: that
    # is what makes the check below meaningful.
    probe.active = True
    out, vjp_fn = dp.vjp(loss, X)
    probe.active = False
    assert probe.alive() > 0
    assert any(type(o) is ReverseTrace for o in created_here((ReverseTrace,)))
    assert live_nodes() > nodes_before
    np.testing.assert_allclose(vjp_fn(1.0)[0], expected_grad(X), rtol=1e-10, atol=1e-12)
    del out, vjp_fn
    assert probe.alive() == 0
    assert_freed(nodes_before)

    def step(i: int) -> None:
        probe.active = i < 5
        out, vjp_fn = dp.vjp(loss, X)
        vjp_fn(np.float64(1.0))
        vjp_fn(np.float64(2.0))  # called twice, then dropped

    growth = measure_loop(step)
    assert probe.alive() == 0
    assert_freed(nodes_before)
    assert growth < MAX_GROWTH, f"traced memory grew by {growth} bytes"


@pytest.mark.slow
def test_jit_of_grad_runs_a_cached_program_without_growth():
    probe = Probe()
    jitted = dp.jit(dp.grad(make_loss(probe)))
    first = jitted(X)  # traces once
    # the tiers' background compilation and trials end before memory is measured
    assert jitted.wait_compiled(300)
    for _ in range(200):
        jitted(X)
    nodes_before = live_nodes()

    def step(i: int) -> None:
        jitted(X)

    growth = measure_loop(step)
    assert jitted.traces == 1 and len(jitted.cache) == 1
    assert_freed(nodes_before)
    assert growth < MAX_GROWTH, f"traced memory grew by {growth} bytes"
    np.testing.assert_allclose(first, expected_grad(X), rtol=1e-10, atol=1e-12)
    # tiers agree to fast math's ulp bound, not bit for bit
    np.testing.assert_allclose(jitted(X), first, rtol=1e-13, atol=1e-15)


@pytest.mark.slow
def test_jvps_free_their_tracers():
    probe = Probe()
    loss = make_loss(probe)
    nodes_before = live_nodes()
    tangent = np.ones(N)

    def step(i: int) -> None:
        probe.active = i < 5
        dp.jvp(loss, (X,), (tangent,))

    growth = measure_loop(step, iterations=400)  # forward mode records no graph: fewer suffice
    assert probe.alive() == 0
    assert_freed(nodes_before)
    assert growth < MAX_GROWTH, f"traced memory grew by {growth} bytes"


@pytest.mark.slow
def test_functions_that_raise_inside_transforms_leave_nothing_behind():
    # The traceback of an exception raised inside a traced function references its frames and
    # so its tracers; once the exception is handled they must go.
    probe = Probe()
    nodes_before = live_nodes()

    def failing(x):
        y = dnp.sin(x) * x
        probe.watch(y)
        raise ValueError("bad input")

    probe.active = True
    for i in range(ITERATIONS):
        probe.active = i < 5
        for transform in (lambda: dp.grad(failing)(X[:100]),
                          lambda: dp.jvp(failing, (X[:100],), (X[:100],)),
                          lambda: dp.vjp(failing, X[:100])):
            try:
                transform()
            except ValueError:
                pass
    assert probe.alive() == 0
    assert_freed(nodes_before)
