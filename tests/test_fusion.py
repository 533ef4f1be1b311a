"""Fused kernels (diffprog.kernels.fuse) against eager mode: every scalar form on edge values and
dtypes, dtypes numba does not compute (fallback to NumPy), long programs (no recursion,
near-linear clustering), kernels keyed by the globals of scalar forms, shape-generic kernels
and the bound on loaded kernels."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.core import Primitive, primitives
from diffprog.kernels import fuse

EXECUTORS = ("numba", "numpy")

FLOAT_EDGES = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e300, 1e308, -1e308, 5e-324, -1e-310,
               0.5, 1.5, 2.5, -2.5, -0.5, 3.0, -7.0, 1e20, -1e20, 2.0 ** 63, 0.7, -3.3]
# primitives whose NumPy implementation is not correctly rounded: jit may differ by a few ulp
# (fastmath's bound is < 1 ulp from the exact value, NumPy's own up to ~2)
INEXACT = {"exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sin", "cos", "tan",
           "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh",
           "arctan2", "hypot", "logaddexp", "logaddexp2", "cbrt", "erf", "erfc", "logistic",
           "pow", "sqrt"}
ULPS = 4

DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
          np.uint64, np.float16, np.float32, np.float64, np.complex128]


def edge_values(dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.array([False, True])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        vals = {0, 1, 2, 3, 7, 100, info.max, info.max - 1, info.min, info.min + 1}
        if dtype.kind == "i":
            vals |= {-1, -2, -7, -100}
        return np.array(sorted(v for v in vals if info.min <= v <= info.max), dtype)
    if dtype.kind == "c":
        re = [math.nan, math.inf, -0.0, 0.0, 1.5, -2.5, 1e300]
        return np.array([complex(a, b) for a in re for b in re], dtype)
    with np.errstate(all="ignore"):
        return np.array(FLOAT_EDGES, dtype)


# NumPy's own fmax/fmin return either zero for (-0.0, 0.0), by the element's position in the
# array (vector loop or scalar tail), and clip another one for scalar bounds than for array
# bounds: the sign of a zero result is not compared for them.
ANY_ZERO_SIGN = {"fmax", "fmin", "clip"}


def same(got, want, inexact: bool, zero_sign: bool = True) -> bool:
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    if want.dtype.kind not in "fc":
        return np.array_equal(got, want)
    if want.dtype.kind == "c":
        return (same(got.real, want.real, inexact, zero_sign)
                and same(got.imag, want.imag, inexact, zero_sign))
    nan = np.isnan(want)
    if not np.array_equal(np.isnan(got), nan):
        return False
    g, w = got[~nan], want[~nan]
    if not inexact:
        return np.array_equal(g, w) and (not zero_sign
                                         or np.array_equal(np.signbit(g), np.signbit(w)))
    if not np.array_equal(np.isinf(g), np.isinf(w)) or not np.array_equal(g[np.isinf(w)],
                                                                        w[np.isinf(w)]):
        return False
    fin = np.isfinite(w)
    with np.errstate(all="ignore"):
        err = np.abs(g[fin].astype(np.float64) - w[fin].astype(np.float64))
        tol = ULPS * np.spacing(np.abs(w[fin])).astype(np.float64)
    # below the smallest normal an ulp is absolute
    tol = np.maximum(tol, ULPS * np.finfo(want.dtype).smallest_subnormal)
    return bool(np.all(err <= tol))


def elementwise_primitives() -> list[Primitive]:
    """Registered primitives with a scalar form, taking arrays only (no params)."""
    out = []
    for prim in primitives.values():
        if prim.scalar is None or prim.multiple_results or prim.name == "broadcast_to":
            continue
        out.append(prim)
    return sorted(out, key=lambda p: p.name)


def arity(prim: Primitive) -> int:
    return {"clip": 3, "round": 1}.get(prim.name, len(prim.jvp) if isinstance(prim.jvp, tuple)
                                         else prim.impl.nin if isinstance(prim.impl, np.ufunc)
                                         else 1)


def operands(dtype, n: int) -> list[np.ndarray]:
    v = edge_values(dtype)
    if n == 1:
        return [v]
    grids = np.meshgrid(*([v] * n), indexing="ij")
    return [g.reshape(-1) for g in grids]


def check_primitive(prim: Primitive, params: dict) -> list[str]:
    """jit of ``prim`` on the edge values of every dtype (one cluster: the operands of all
    dtypes have one shape, so one kernel serves them all) against eager."""
    n = arity(prim)
    cases, wants = [], []
    size = max(operands(dt, n)[0].size for dt in DTYPES)
    for dtype in DTYPES:
        xs = [np.resize(x, size) for x in operands(dtype, n)]
        with np.errstate(all="ignore"):
            try:
                want = prim.impl(*xs, **params)
            except (TypeError, ValueError, ZeroDivisionError):
                continue  # NumPy refuses these operands: nothing to compare with
        cases.append((dtype, xs))
        wants.append(want)

    def f(*args):
        return [prim(*args[k * n:(k + 1) * n], **params) for k in range(len(cases))]
    flat = [x for _, xs in cases for x in xs]
    problems = []
    inexact = prim.name in INEXACT
    zero_sign = prim.name not in ANY_ZERO_SIGN
    for executor in EXECUTORS:
        before = fuse.stats["fallbacks"]
        with np.errstate(all="ignore"):
            got = dp.jit(f, executor=executor)(*flat)
        if fuse.stats["fallbacks"] != before:
            problems.append(f"{prim.name}: numba could not compile the cluster")
        for g, w, (dtype, ops) in zip(got, wants, cases):
            if not same(g, w, inexact, zero_sign):
                g, w = np.asarray(g), np.asarray(w)
                bad = ([i for i in range(w.size)
                        if not same(g[i:i + 1], w[i:i + 1], inexact, zero_sign)]
                       if g.shape == w.shape and g.dtype == w.dtype else [0])
                problems.append(f"{prim.name}{params or ''} {np.dtype(dtype)} {executor}: "
                                f"dtype {g.dtype} vs {w.dtype}; at "
                                + "; ".join(f"{tuple(o[i] for o in ops)} -> "
                                            f"{g.reshape(-1)[i]!r} vs {w.reshape(-1)[i]!r}"
                                            for i in bad[:4]))
    return problems


@pytest.mark.parametrize("prim", elementwise_primitives(), ids=lambda p: p.name)
def test_every_scalar_form_equals_eager_on_edge_values_and_dtypes(prim):
    params_list = [{"decimals": d} for d in (0, 1, 2, -1)] if prim.name == "round" else [{}]
    problems = []
    for params in params_list:
        problems += check_primitive(prim, params)
    assert not problems, "\n".join(problems)


def test_floor_of_edge_values_is_exact_under_jit():
    x = np.array([np.nan, np.inf, -np.inf, 1e20, -0.0, 2.5, -2.5])
    for op in (dnp.floor, dnp.ceil, dnp.trunc, dnp.rint, dnp.round):
        want = op(x) * 2
        for executor in EXECUTORS:
            got = dp.jit(lambda x, op=op: op(x) * 2, executor=executor)(x)
            assert got.dtype == want.dtype
            assert np.array_equal(got.view(np.int64), want.view(np.int64)), (op, executor, got)


def test_logaddexp_of_infinities_and_int64_abs():
    x = np.array([np.inf, -np.inf, np.inf, 1.0, np.nan])
    y = np.array([np.inf, -np.inf, -np.inf, -np.inf, 1.0])
    for op in (dnp.logaddexp, dnp.logaddexp2):
        want = op(x, y) + 1.0
        for executor in EXECUTORS:
            got = dp.jit(lambda a, b, op=op: op(a, b) + 1.0, executor=executor)(x, y)
            np.testing.assert_array_equal(got, want)
    i = np.array([2 ** 62 + 1, -(2 ** 62) - 1, np.iinfo(np.int64).min], np.int64)
    for executor in EXECUTORS:
        got = dp.jit(lambda a: dnp.abs(a) + 1, executor=executor)(i)
        np.testing.assert_array_equal(got, np.abs(i) + 1)
        assert got.dtype == np.int64


# -- dtypes numba does not compute like NumPy: each cluster falls back or casts --------------

@pytest.mark.parametrize("dtype", [np.float16, np.bool_, ">f8", np.longdouble, np.complex128,
                                   "<f4", ">i4"], ids=str)
def test_unsupported_dtypes_run_and_equal_eager(dtype):
    x = (np.arange(12).reshape(3, 4) % 3).astype(dtype)

    def f(x):
        a = dnp.abs(x)
        return a * a + a, dnp.logical_not(x == x), -a if a.dtype != np.bool_ else a

    want = f(x)
    for executor in EXECUTORS:
        got = dp.jit(f, executor=executor)(x)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype, (executor, g.dtype, w.dtype)
            np.testing.assert_array_equal(g, w)


def test_abs_of_complex_under_jit():
    z = np.array([3 + 4j, -1j, 0j, complex(np.inf, 1), complex(np.nan, 0)])
    for executor in EXECUTORS:
        got = dp.jit(lambda z: dnp.abs(z) * 2.0 + 1.0, executor=executor)(z)
        np.testing.assert_array_equal(got, np.abs(z) * 2.0 + 1.0)


# -- long programs: iterative graph algorithms, near-linear clustering ------------------------

RNG = np.random.default_rng(11)


def tanh_loop(x, w, b, steps):
    for _ in range(steps):
        x = dnp.tanh(w @ x + b)
    return dnp.sum(x ** 2)


def rk4_loss(k, steps):
    def rhs(y):
        return dnp.stack([y[1], -k * dnp.sin(y[0]) - 0.1 * y[1]])
    y, h = dnp.array([1.0, 0.0]), 0.05
    for _ in range(steps):
        k1 = rhs(y)
        k2 = rhs(y + h / 2 * k1)
        k3 = rhs(y + h / 2 * k2)
        k4 = rhs(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return dnp.sum(y ** 2)


@pytest.mark.slow
def test_150_step_tanh_loop_under_jit_grad_equals_eager():
    w = RNG.standard_normal((4, 4)) * 0.5
    b = RNG.standard_normal(4)
    x = RNG.standard_normal(4)
    grad = dp.grad(lambda w: tanh_loop(x, w, b, 150))
    want = grad(w)
    for executor in EXECUTORS:
        np.testing.assert_allclose(dp.jit(grad, executor=executor)(w), want, rtol=1e-10,
                                   atol=1e-14)


@pytest.mark.slow
def test_40_step_rk4_under_jit_grad_equals_eager():
    grad = dp.grad(lambda k: rk4_loss(k, 40))
    want = grad(np.float64(2.0))
    for executor in EXECUTORS:
        np.testing.assert_allclose(dp.jit(grad, executor=executor)(np.float64(2.0)), want,
                                   rtol=1e-12)


@pytest.mark.slow
def test_2000_step_chain_runs_under_jit():
    def f(x):
        for i in range(2000):
            x = dnp.sin(x) * 0.999 + 0.001 if i % 2 else x @ np.eye(3) + 0.5
        return x
    x = np.linspace(0.0, 1.0, 3)
    np.testing.assert_allclose(dp.jit(f, executor="numba")(x), f(x), rtol=1e-12)


@pytest.mark.slow
def test_clusters_of_a_long_gradient_form_no_cycle_and_respect_the_cap():
    from diffprog.jit import trace_graph
    from diffprog.kernels.fuse import _schedule

    w = np.eye(3)

    def f(x):
        for i in range(3000):
            x = dnp.tanh(x) + x * 0.5 if i % 5 else x @ w
        return dnp.sum(x)
    graph = trace_graph(dp.grad(f), (np.ones(3),))
    clusters, cluster_of = fuse.cluster_graph(graph)
    big = [c for c in clusters if len(c.nodes) >= 2]
    member = {i: c for c in big for i in c.members}
    fused = {id(n) for c in big for n in c.nodes}
    # every unit's inputs come before it: the clusters form no cycle (else _schedule raises)
    order = _schedule(graph, big, member, fused)
    assert sum(len(u.nodes) if isinstance(u, fuse.Cluster) else 1 for u in order) == len(
        graph.nodes)
    assert all(len(c.nodes) <= fuse.MAX_CLUSTER_NODES for c in clusters)


# -- kernels keyed by the values their scalar forms read ---------------------------------------

SCALE = 2.0


def _scaled(x):
    return x * SCALE


class _Opaque:
    factor = 4.0


OPAQUE = _Opaque()


def _opaque(x):
    return x * OPAQUE.factor


def _closure_form(factor):
    def form(x):
        return x * factor
    return form


scaled = Primitive("test_fusion_scaled", lambda x: x * SCALE, scalar=_scaled)
opaque = Primitive("test_fusion_opaque", lambda x: x * OPAQUE.factor, scalar=_opaque)


def test_a_scalar_form_reading_a_global_sees_its_current_value():
    global SCALE
    x = np.arange(4.0)
    try:
        for value in (2.0, 3.0, 2.0):
            SCALE = value
            got = dp.jit(lambda x: scaled(x) + 1.0, executor="numba")(x)
            np.testing.assert_array_equal(got, x * value + 1.0)
    finally:
        SCALE = 2.0


def test_closure_cells_are_in_the_key_and_opaque_globals_fall_back():
    x = np.arange(4.0)
    for k, factor in enumerate((5.0, 6.0)):
        prim = Primitive(f"test_fusion_closure_{k}", lambda x, f=factor: x * f,
                         scalar=_closure_form(factor), register=False)
        # unregistered: a kernel cannot name it, so NumPy runs it
        got = dp.jit(lambda x, prim=prim: prim(x) + 1.0, executor="numba")(x)
        np.testing.assert_array_equal(got, x * factor + 1.0)
    forms = [fuse._function_key(_closure_form(f), set()) for f in (5.0, 6.0, 5.0)]
    assert forms[0] == forms[2] != forms[1]
    # a global the key cannot describe (an arbitrary object): not fused, still right
    OPAQUE.factor = 7.0
    got = dp.jit(lambda x: opaque(x) + 1.0, executor="numba")(x)
    np.testing.assert_array_equal(got, x * 7.0 + 1.0)


_GLOBAL_SCRIPT = """
import sys, numpy as np, diffprog as dp
sys.path.insert(0, {tests!r})
import test_fusion as t
t.SCALE = float(sys.argv[1])
print(dp.jit(lambda x: t.scaled(x) + 1.0, executor="numba")(np.arange(3.0)).tolist())
"""


@pytest.mark.slow
def test_a_global_changed_in_another_process_is_not_taken_from_the_disk_cache(tmp_path):
    import os
    env = dict(os.environ, DIFFPROG_CACHE_DIR=str(tmp_path / "cache"))
    script = _GLOBAL_SCRIPT.format(tests=os.path.dirname(__file__))
    out = [subprocess.run([sys.executable, "-c", script, v], env=env, capture_output=True,
                          text=True, check=True).stdout.strip() for v in ("2.0", "5.0")]
    assert out == ["[1.0, 3.0, 5.0]", "[1.0, 6.0, 11.0]"]


# -- shape-generic kernels ---------------------------------------------------------------------

def test_one_kernel_serves_every_shape_of_a_broadcast_pattern(monkeypatch):
    sources = set()
    load = fuse._load

    def spy(source):
        sources.add(source)
        return load(source)
    monkeypatch.setattr(fuse, "_load", spy)
    f = dp.jit(lambda x, b: dnp.tanh(x + b) * 2.0, executor="numba")
    for shape in ((3, 4), (5, 6), (7, 8)):
        x = RNG.standard_normal(shape)
        b = RNG.standard_normal(shape[1])
        np.testing.assert_allclose(f(x, b), np.tanh(x + b) * 2.0, rtol=1e-15, atol=1e-15)
        col = RNG.standard_normal((shape[0], 1))
        np.testing.assert_allclose(f(x, col), np.tanh(x + col) * 2.0, rtol=1e-15, atol=1e-15)
    assert len(sources) == 2  # one per broadcast pattern (a row, a column), not per shape


# -- the loaded-kernel cache is bounded --------------------------------------------------------

@pytest.mark.slow
def test_loaded_kernels_stay_within_config_kernel_cache_size():
    bound = 4
    previous = dp.config.kernel_cache_size
    dp.config.kernel_cache_size = bound
    x = np.linspace(-1.0, 1.0, 5)

    def program(k):
        def f(x):
            for i in range(k):
                x = dnp.sin(x) + float(i) if i % 2 else dnp.tanh(x) * 1.5
            return x
        return f
    try:
        jitted = []
        for k in range(2, 14):  # twelve distinct kernels
            f = dp.jit(program(k), executor="numba")
            np.testing.assert_allclose(f(x), program(k)(x), rtol=1e-14)
            assert len(fuse._loaded) <= bound
            jitted.append((k, f))
        for k, f in jitted:  # programs keep their kernels, dropped from the cache or not
            np.testing.assert_allclose(f(x), program(k)(x), rtol=1e-14)
        assert len(fuse._loaded) <= bound
    finally:
        dp.config.kernel_cache_size = previous
