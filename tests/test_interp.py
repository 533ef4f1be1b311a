"""The blocked interpreter (diffprog.kernels.interp) against eager diffprog (NumPy), op by op,
on edge values, float32, broadcasts and empty shapes."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.jit import trace_graph
from diffprog.kernels import interp
from diffprog.kernels.steps import sequence

pytest.importorskip("numba")

EDGE = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 1e-308, -1e-308, 5e-324,
                 -5e-324, 0.5, -0.5, 1.0, -1.0, 2.5, -3.75, 7.0, 30.0, -30.0, 710.0, -746.0,
                 1e7, -1e7, 3e15, 1e-5, 0.999, -0.999, 1.001])

UNARY = {"neg": lambda x: -x, "abs": dnp.abs, "exp": dnp.exp, "log": dnp.log,
         "log1p": dnp.log1p, "expm1": dnp.expm1, "sin": dnp.sin, "cos": dnp.cos,
         "tanh": dnp.tanh, "sigmoid": dp.nn.sigmoid, "sqrt": dnp.sqrt, "tan": dnp.tan,
         "sinh": dnp.sinh, "cosh": dnp.cosh, "arcsin": dnp.arcsin, "arccos": dnp.arccos,
         "arctan": dnp.arctan, "arcsinh": dnp.arcsinh, "arccosh": dnp.arccosh,
         "arctanh": dnp.arctanh, "log2": dnp.log2, "log10": dnp.log10}
BINARY = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
          "div": lambda x, y: x / y, "pow": lambda x, y: x ** y, "maximum": dnp.maximum,
          "minimum": dnp.minimum, "fmax": dnp.fmax, "fmin": dnp.fmin,
          "arctan2": dnp.arctan2, "hypot": dnp.hypot}


def interpreted(f, *args):
    """Run f's jit graph with the interpreted clusters; assert that some cluster was."""
    graph = trace_graph(f, args)
    made = interp.interp_steps(graph)
    assert made is not None, "the interpreter did not load"
    steps, n_interp = made
    assert n_interp >= 1
    assert any(isinstance(s, interp.InterpStep) for s in steps)
    return sequence(graph, steps)(list(args))


def assert_same(got, want, rtol=2e-16 * 8, signs=True):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0, equal_nan=True)
    if not signs:
        return
    zero = want == 0
    np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(want[zero]))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops_match_eager_on_edge_values(name):
    op = UNARY[name]
    ones = np.ones_like(EDGE)

    def f(x, one):
        return op(x) * one  # a cluster of two nodes

    with np.errstate(all="ignore"):
        want = f(EDGE, ones)
        got = interpreted(f, EDGE, ones)[0]
    # fast-math forms are within 1 ulp; libm forms may differ from NumPy's SIMD ones by a few
    assert_same(got, want, rtol=1e-14)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_match_eager_on_edge_values(name):
    op = BINARY[name]
    x = np.repeat(EDGE, EDGE.size)
    y = np.tile(EDGE, EDGE.size)

    def f(x, y):
        return op(x, y) * np.float64(1.0) + (-0.0)

    with np.errstate(all="ignore"):
        want = f(x, y)
        got = interpreted(f, x, y)[0]
    # fmax/fmin of +0 and -0: NumPy's SIMD and scalar loops differ (C leaves it open)
    assert_same(got, want, rtol=1e-15 if name != "pow" else 1e-14,
                signs=name not in ("fmax", "fmin"))


def test_a_long_chain_over_several_blocks_with_constants_and_reuse():
    x = np.linspace(-3.0, 3.0, 3 * interp.BLOCK + 17)
    c = np.linspace(1.0, 2.0, x.size)  # an array constant

    def f(x):
        v = dnp.sin(x) * 1.5 + x
        w = dnp.tanh(v) * v - 0.25
        return dnp.exp(-w * w) * c + dnp.cos(x) / 3.0, v * 2.0

    with np.errstate(all="ignore"):
        want = f(x)
        got = interpreted(f, x)
    for g, w in zip(got, want):
        assert_same(g, w, rtol=1e-14)


@pytest.mark.parametrize("shapes", [((4, 5), (5,)), ((4, 5), (1, 5)), ((4, 5), (4, 1)),
                                    ((3, 4, 5), (4, 5)), ((2, 3), ()), ((0, 3), (3,)),
                                    ((0,), ())])
def test_broadcast_and_empty_operands(shapes):
    xs, bs = shapes
    x = np.linspace(-1.0, 1.0, int(np.prod(xs))).reshape(xs)
    b = np.linspace(0.5, 1.5, int(np.prod(bs))).reshape(bs)

    def f(x, b):
        return dnp.tanh(x + b) * b - x

    want = f(x, b)
    got = interpreted(f, x, b)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-16)  # tanh: within 1 ulp


def test_trig_beyond_the_fast_range_uses_libm():
    x = np.array([1e7, -3e9, 1e300, 2.0, np.pi * 1e6])

    def f(x):
        return dnp.sin(x) * 2.0 + dnp.cos(x)

    assert_same(interpreted(f, x)[0], f(x), rtol=1e-14)


def test_float32_and_integer_clusters_are_not_interpreted():
    x32 = np.linspace(0.0, 1.0, 5, dtype=np.float32)
    g = trace_graph(lambda x: dnp.sin(x) * 2.0 + 1.0, (x32,))
    assert all(interp.opcode(n) is None for n in g.nodes)
    assert interp.interp_steps(g)[1] == 0
    run = dp.jit(lambda x: dnp.sin(x) * 2.0 + 1.0, executor="interp")
    out = run(x32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.sin(x32) * 2.0 + 1.0, rtol=1e-6)
    xi = np.arange(5)
    gi = trace_graph(lambda x: x * 2 + 1, (xi,))
    assert all(interp.opcode(n) is None for n in gi.nodes)


@pytest.mark.parametrize("order", ["f", "grad", "hessian"])
def test_functions_grads_and_hessians_under_the_interp_executor_match_eager(order):
    w = np.linspace(0.5, 1.5, 6)

    def f(x):
        return dnp.sum(dnp.tanh(dnp.sin(x) * w + x) * dnp.exp(-x * x) + dp.nn.sigmoid(x) ** 2)

    fn = {"f": f, "grad": dp.grad(f), "hessian": dp.hessian(f)}[order]
    x = np.linspace(-1.0, 1.2, 6)
    np.testing.assert_allclose(dp.jit(fn, executor="interp")(x), fn(x), rtol=1e-13, atol=1e-15)


def test_the_kernel_is_cached_beside_the_package_not_in_the_kernel_cache(tmp_path, monkeypatch):
    from pathlib import Path
    assert interp.load() is not None
    cache = Path(interp.__file__).with_name("__pycache__")
    import os
    if os.access(cache.parent, os.W_OK):
        assert list(cache.glob("_interp_kernel.interp-*.nbi"))
