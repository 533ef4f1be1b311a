"""The NumPy executor's buffer plan (diffprog.kernels.pyrun): elementwise nodes computing into
the buffer of an operand that dies there give the same bits as eager code and as the executor
without the plan, and never write into an input, a constant, a returned array or a buffer that
a live view still shows."""

from __future__ import annotations

import math

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.jit import trace_graph
from diffprog.kernels import pyrun
from diffprog.kernels.steps import NodeStep
from diffprog.passes import optimize

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

BIG = 1 << 15  # elements: at least MIN_INPLACE_BYTES for every dtype below (float16 included)

FLOAT_EDGES = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e300, -1e308, 5e-324, -1e-310, 0.5,
               -2.5, 3.0, 1e20, 0.7, -3.3, 1e-300]
INT_EDGES = [0, 1, -1, 2, 7, -7, 100, -100, 2 ** 30, -(2 ** 30)]


def values(dtype, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` values of ``dtype``: the edge values (cast, so huge ones overflow to inf in float16),
    then random ones."""
    dtype = np.dtype(dtype)
    with np.errstate(all="ignore"):
        if dtype.kind in "iu":
            edges = np.array(INT_EDGES).astype(dtype)
            rand = rng.integers(-50, 50, n).astype(dtype)
        elif dtype.kind == "c":
            e = np.array(FLOAT_EDGES)
            edges = (e[:, None] + 1j * e[None, ::3]).ravel().astype(dtype)
            rand = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dtype)
        else:
            edges = np.array(FLOAT_EDGES).astype(dtype)
            rand = rng.standard_normal(n).astype(dtype)
    out = rand.copy()
    out[:min(n, edges.size)] = edges[:n]
    return out


def executors(f, args):
    """The traced and optimized graph of ``f``, run with and without the buffer plan."""
    g = optimize(trace_graph(f, args))
    steps = [NodeStep(n) for n in g.nodes]
    return g, pyrun.compile_steps(g, steps), pyrun.compile_steps(g, steps, reuse=False)


def planned(g) -> dict:
    return pyrun._buffer_plan(g, [NodeStep(n) for n in g.nodes], {})


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def float_chain(x, y):
    a = x * y + x
    a = a - y * 0.5
    a = dnp.abs(a) / (y * y + 1.0)
    a = dnp.sqrt(a) * a - dnp.sin(x)
    a = dnp.exp(a * 0.25) + dnp.tanh(a)
    return a * a - 1.5, dnp.maximum(a, y) - x


def int_chain(x, y):
    a = x * y + x
    a = (a - y) * 3
    a = a // (dnp.abs(y) + 1) + a % 7
    return dnp.maximum(a, x) - y * 2, a & 255


def complex_chain(x, y):
    a = x * y + x
    a = a / (y + 2.0) - dnp.conj(x)
    a = dnp.exp(a * 0.01) * a + dnp.sin(y)
    return a * a - 1.0j, dnp.abs(a) + 1.0


CASES = [(float_chain, t) for t in (np.float16, np.float32, np.float64)] + \
    [(int_chain, t) for t in (np.int32, np.int64)] + \
    [(complex_chain, t) for t in (np.complex64, np.complex128)]


@pytest.mark.parametrize("f,dtype", CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_edge_values_same_bits(f, dtype, rng):
    x, y = values(dtype, BIG, rng), values(dtype, BIG, rng)[::-1].copy()
    g, new, old = executors(f, (x, y))
    assert planned(g), "the plan should compute some node in place"
    want = f(x, y)
    for _ in range(2):
        got, ref = new([x, y]), old([x, y])
        for w, a, b in zip(want, got, ref):
            assert same_bits(a, w) and same_bits(b, w)


@pytest.mark.parametrize("shape", [(0,), (0, 5), (3, 0), (2, 3), (4, 1), (7,)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64, np.complex128])
def test_small_empty_and_broadcast_shapes(shape, dtype, monkeypatch, rng):
    # with no size floor, even empty and tiny results go through the plan
    monkeypatch.setattr(pyrun, "MIN_INPLACE_BYTES", 0)
    n = int(np.prod(shape))
    x = values(dtype, n, rng).reshape(shape)
    row = values(dtype, shape[-1], rng)  # broadcast against x: a row
    one = values(dtype, 1, rng).reshape((1,) * len(shape))

    def f(x, row, one):
        a = (x + row) * x
        a = a - one * 2
        b = dnp.broadcast_to(row, shape) * a
        return b + a, (a * 3) - row

    g, new, old = executors(f, (x, row, one))
    if n:
        assert planned(g)
    want = f(x, row, one)
    for w, a, b in zip(want, new([x, row, one]), old([x, row, one])):
        assert same_bits(a, w) and same_bits(b, w)


def test_inputs_and_constants_not_modified(rng):
    x = rng.standard_normal(BIG)
    c = rng.standard_normal(BIG)
    x0, c0 = x.copy(), c.copy()

    def f(x):
        a = x * 2.0 + c       # c: a constant captured by the trace
        b = a * a - c
        return b + x, x       # x also returned as it is

    g, new, old = executors(f, (x,))
    assert planned(g)
    want = f(x)
    for _ in range(3):
        got = new([x])
        assert same_bits(got[0], want[0]) and got[1] is x
    assert same_bits(x, x0) and same_bits(c, c0)
    # through jit too (its first calls run on the NumPy executor)
    jf = dp.jit(f)
    for _ in range(3):
        got = jf(x)
        assert same_bits(got[0], want[0])
    assert same_bits(x, x0) and same_bits(c, c0)


def test_returned_arrays_not_aliased(rng):
    x = rng.standard_normal(BIG)

    def f(x):
        a = x * 3.0 + 1.0
        b = a * a          # a returned and read again: never overwritten
        c = b - 2.0        # b dies here: c may take its buffer
        d = c * 0.5
        return a, d, c + d

    g, new, _ = executors(f, (x,))
    assert planned(g)
    want = f(x)
    first = new([x])
    for a, w in zip(first, want):
        assert same_bits(a, w)
    for i, a in enumerate(first):
        for b in first[i + 1:]:
            assert not np.shares_memory(a, b)
    keep = [a.copy() for a in first]
    for a in first:
        a[...] = 123.0     # the user mutates the first call's results
    second = new([x])
    for a, w in zip(second, want):
        assert same_bits(a, w)
    for a in second:
        assert not any(np.shares_memory(a, b) for b in first)
    for a, b in zip(first, keep):
        assert not same_bits(a, b)  # the mutation stuck: the second call did not write there


@pytest.mark.parametrize("view", ["reshape", "transpose", "getitem", "broadcast", "real"])
def test_views_of_temporaries_not_overwritten(view, rng):
    x = (rng.standard_normal((128, 256)) + 1j * rng.standard_normal((128, 256)))
    make = {"reshape": lambda t: dnp.reshape(t, (256, 128)),
            "transpose": lambda t: dnp.transpose(t),
            "getitem": lambda t: t[::2],
            "broadcast": lambda t: dnp.broadcast_to(t[0], (4, 256)),
            "real": lambda t: dnp.real(t)}[view]

    def f(x):
        t = x * 2.0 + 1.0
        v = make(t)             # may share t's buffer
        u = dnp.exp(t * 0.1) * t  # t's last direct read: its buffer is still v's
        w = u - 1.0
        return v * 1.5, w, make(w) + 0.0

    def g_returned(x):
        t = x * 2.0 + 1.0
        v = make(t)
        return v, t * 3.0 - 1.0  # v returned: t's buffer must stay as it is

    for fn in (f, g_returned):
        g, new, old = executors(fn, (x,))
        want = fn(x)
        for _ in range(2):
            for w, a, b in zip(want, new([x]), old([x])):
                assert same_bits(a, w) and same_bits(b, w)


def test_plan_skips_dtype_changes_and_shared_views():
    x = np.ones(BIG, np.float32)

    def f(x):
        a = x * 2.0               # float32 (a Python float is weak)
        b = a * np.float64(2.0)   # float64 from a float32 operand: not in place into a
        c = dnp.sqrt(b)           # float64, may take b's buffer
        d = c.astype(np.float32) + x  # float32
        return d + np.ones(BIG)   # float64 from a float32 operand: not in place into d

    g = optimize(trace_graph(f, (x,)))
    steps = [NodeStep(n) for n in g.nodes]
    plan = pyrun._buffer_plan(g, steps, {})
    for pos, (_, p, shape, dtype) in plan.items():
        node = g.nodes[pos]
        assert node.out.dtype == dtype
        src = next(n for n in g.nodes if n.idx == p)
        assert src.out.dtype == dtype and tuple(src.out.shape) == shape
    assert same_bits(pyrun.compile_steps(g, steps)([x])[0], f(x))


def test_scan_body_and_grad_programs(rng):
    x = rng.standard_normal(BIG)

    def loss(x):
        def body(c, _):
            c = dnp.tanh(c * 0.9 + 0.1) * c - 0.5
            return c, c * 2.0
        c, ys = dp.scan(body, x, None, length=3)
        return dnp.sum(c * c) + dnp.sum(ys[1])

    gfun = dp.grad(loss)
    g, new, old = executors(gfun, (x,))
    want = gfun(x)
    for a, b in zip(new([x]), old([x])):
        assert same_bits(a, want) and same_bits(b, want)
