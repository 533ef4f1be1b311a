"""The eager per-operation fast paths (issue 17) give exactly what the general paths give.

The reverse trace's straight-line paths (``ReverseTrace.process1``/``process2`` and their flat
records, reached from diffprog.numpy without ``bind``) are compared with its general path
(``_process``, Node-field records), and the one-function rules (``_unary(product=...)``) with
the two-function form they replace, on edge values: NaN, ±inf, -0.0, integers, float16/32,
complex, 0-d, empty and broadcast shapes, Python scalars, nested transforms. Values, dtypes
and the signs of zeros must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog import ad, core
from diffprog import prims as P

# ----------------------------------------------------------------------------------------------
# helpers


def general_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every operation of the reverse trace through its general path."""
    monkeypatch.setattr(ad.ReverseTrace, "process1",
                        lambda self, prim, a: self._general(prim, (a,)))
    monkeypatch.setattr(ad.ReverseTrace, "process2",
                        lambda self, prim, x, y: self._general(prim, (x, y)))


def same(a, b) -> None:
    """Identical results: structure, types, dtypes, shapes, values (NaN where NaN, signed
    zeros)."""
    if isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
        return
    assert type(a) is type(b), (type(a), type(b))
    if a is None:
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    np.testing.assert_array_equal(a, b)
    if a.dtype.kind == "c":
        np.testing.assert_array_equal(np.signbit(a.real), np.signbit(b.real))
        np.testing.assert_array_equal(np.signbit(a.imag), np.signbit(b.imag))
    elif a.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


def both_paths(monkeypatch, fn):
    """``fn()`` with the fast paths, then with the general path only."""
    with np.errstate(all="ignore"):
        fast = fn()
        with monkeypatch.context() as m:
            general_only(m)
            general = fn()
    return fast, general


EDGE = np.array([0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, np.nan, 1e-300, 700.0])


def _complex(re, im, dtype=np.complex128):
    z = np.empty(len(re), dtype)
    z.real, z.imag = re, im
    return z


CASES = {
    "float64": EDGE,
    "float32": EDGE.astype(np.float32),
    "float16": np.array([0.0, -0.0, 1.5, -2.0, np.inf, np.nan], np.float16),
    "complex128": _complex(EDGE[:6], EDGE[3:]),
    "complex64": _complex(EDGE[3:], -EDGE[:6], np.complex64),
    "0-d": np.array(-0.75),
    "scalar": np.float64(0.5),
    "float32 scalar": np.float32(-0.0),
    "empty": np.zeros((0, 3)),
    "2-d": np.arange(-3.0, 3.0).reshape(2, 3) / 4,
}


def chain(x):
    """W1's operations and their neighbours: unary and binary, Python scalars on either side,
    traced values on both, fan-out (v * v), then a sum (a primitive with params)."""
    v = dnp.sin(x)
    v = v * 1.01
    v = 0.5 + v
    v = dnp.tanh(v)
    w = v * v
    v = -w + v
    v = dnp.exp(v)
    v = v - 2
    v = 3.0 * dnp.cos(v) / (v * v + 1.5)
    v = dnp.sqrt(v * v) + dnp.log(v * v + 1.0)
    v = v ** 2 + 2 ** v * 0.0
    v = dnp.abs(v) - True
    return dnp.sum(v.real if np.iscomplexobj(x) else v)


# ----------------------------------------------------------------------------------------------
# the reverse trace: fast paths against the general path


@pytest.mark.parametrize("name", list(CASES))
def test_grad_fast_path_matches_general_path(monkeypatch, name):
    x = CASES[name]
    fast, general = both_paths(monkeypatch, lambda: dp.value_and_grad(chain)(x))
    same(fast, general)


@pytest.mark.parametrize("name", ["float64", "float32", "complex128", "0-d", "scalar"])
def test_vjp_fast_path_matches_general_path(monkeypatch, name):
    x = CASES[name]

    def run():
        out, f = dp.vjp(lambda x: dnp.exp(dnp.sin(x) * x) - x / 3.0, x)
        ct = np.ones_like(out) if np.ndim(out) else out.dtype.type(1)
        return out, f(ct), f(ct * 2)  # vjp_fn may be called again: nothing is consumed
    fast, general = both_paths(monkeypatch, run)
    same(fast, general)


def test_integer_and_bool_operands_and_broadcasting(monkeypatch):
    x = np.array([[1.0, -0.0, np.nan]], np.float32)
    ints = np.array([[2], [-3]], np.int64)

    def run():
        def f(x):
            v = x * ints + ints  # broadcast (2, 3), int64 promoted to float32's result type
            v = v - np.array([True, False, True])  # a bool array operand
            v = dnp.sin(v) * 2 + 1  # Python ints
            return dnp.sum(v * v)
        return dp.value_and_grad(f)(x)
    fast, general = both_paths(monkeypatch, run)
    same(fast, general)
    assert fast[1].dtype == np.float32


def test_python_scalar_operands_stay_weak(monkeypatch):
    # float32 with Python float/int/bool/complex on either side, as NumPy 2 promotes them
    x = np.array([0.5, -0.0], np.float32)

    def run():
        def f(x):
            v = 2.5 * x + x * 2 - True * x + (x - 1.5) / 3
            c = (x * 1j + 1.0) * (2 + 0.5j)  # complex64
            return dnp.sum(v) + dnp.sum(c.real * c.imag)
        return dp.value_and_grad(f)(x)
    fast, general = both_paths(monkeypatch, run)
    same(fast, general)
    assert fast[1].dtype == np.float32


@pytest.mark.parametrize("name", ["float64", "float32", "complex128", "scalar"])
def test_nested_transforms_fast_path_matches_general_path(monkeypatch, name):
    x = CASES[name]
    f = lambda x: dnp.sum(dnp.sin(x) * dnp.exp(-x * x) + dnp.tanh(x) * 0.5)
    real = not np.iscomplexobj(x)

    def run():
        results = [dp.grad(lambda x: dnp.sum(dp.grad(f)(x) * x))(x) if real else None,
                   dp.jvp(dp.grad(f), (x,), (np.ones_like(x),)) if real else None,
                   dp.grad(lambda x: dnp.sum(dp.jvp(f, (x,), (x,))[1]))(x) if real else None,
                   dp.vmap(dp.grad(f))(np.stack([x, x * 2])) if real and np.ndim(x) else None,
                   dp.jit(dp.grad(f))(x) if real else None]
        if np.iscomplexobj(x):
            results.append(dp.grad(lambda z: dnp.sum(dnp.abs(dnp.sin(z) * z)))(x))
        return results
    fast, general = both_paths(monkeypatch, run)
    same(fast, general)


def test_closed_form_on_edge_values():
    # the fast path is the one grad takes: check it against the derivative written out
    x = EDGE
    with np.errstate(all="ignore"):
        g = dp.grad(lambda x: dnp.sum(dnp.sin(x) * 2.0 + dnp.tanh(-x)))(x)
        expected = 2.0 * np.cos(x) + -(1.0 - np.tanh(-x) ** 2)
    np.testing.assert_array_equal(g, expected)


def test_records_are_flat_and_keep_what_the_plans_say():
    trace = ad.ReverseTrace("grad")
    x = trace.new_input(np.array([0.5, 2.0]))
    y = dnp.sin(x)  # keeps x (the rule reads it), not the output
    z = y * 3.0  # mul with a constant: keeps the constant, nothing of y
    w = dnp.exp(z) + z  # exp keeps its output; add keeps nothing of either operand
    s = dnp.sum(w)  # params: the general path's Node-field tuple
    trace.alive = False
    sin_rec, mul_rec, exp_rec, add_rec, sum_rec = trace.nodes
    assert sin_rec[0] is P.sin and sin_rec[1] is x.primal and sin_rec[2] is None
    assert sin_rec[3:] == (0, 1)
    assert mul_rec[:3] == (P.mul, None, 3.0) and mul_rec[3] is None and mul_rec[4:] == (1, -1, 2)
    assert exp_rec[0] is P.exp and exp_rec[1] is None and exp_rec[3:] == (2, 3)
    np.testing.assert_array_equal(exp_rec[2], np.exp(z.primal))
    assert add_rec[:4] == (P.add, None, None, None) and add_rec[4:] == (3, 2, 4)
    assert len(sum_rec) == 6 and sum_rec[0] is P.reduce_sum and sum_rec[4] == (4,)
    cts = trace.backward([(s.idx, np.float64(1.0))], consume=True)
    np.testing.assert_array_equal(cts[0], (np.exp(3 * np.sin(x.primal)) + 1) * 3
                                  * np.cos(x.primal))
    assert trace.nodes == []  # consumed: every node released


def test_unrolled_plans():
    assert P.sin.keep1 == (True, False) and P.sin.keep2 is None
    assert P.exp.keep1 == (False, True)
    assert P.neg.keep1 == (False, False)  # transpose_reads_shapes=False: nothing kept
    assert P.reduce_sum.keep1 == (core.SHAPE_ONLY, False)  # its transpose reads x's shape
    assert P.div.keep2 == (None, (False, True, False), (True, True, True), (False, True, True))
    assert P.add.keep2[3] == (False, False, False)
    assert P.lt.keep1 is None and P.lt.keep2 is None  # not differentiable: general path
    assert P.split.keep1 is None  # several results
    assert P.einsum.keep1 is None and P.einsum.keep2 is None  # a plan per mask


def test_transpose_reads_shapes_is_for_tuple_transposes():
    with pytest.raises(ValueError, match="transpose_reads_shapes=False"):
        core.Primitive("bad_trs", np.sin, jvp=(lambda t, out, x: t,),
                       vjp=(lambda ct, out, x: ct,), transpose_reads_shapes=False,
                       register=False)
    ok = core.Primitive("twice_trs", lambda x: 2 * x, linear=True, register=False,
                        transpose=(lambda ct, out, x: 2 * ct,), transpose_reads_shapes=False)
    assert ok.keep_plan[1] == ((False,), False)
    g = dp.grad(lambda x: dnp.sum(core.bind(ok, x) * x))(np.array([1.0, -0.0]))
    np.testing.assert_array_equal(g, [4.0, -0.0])


def test_escaped_tracers_raise_on_the_fast_paths():
    leaked = []
    dp.grad(lambda x: leaked.append(x) or dnp.sum(x))(np.ones(2))
    (t,) = leaked
    for op in (dnp.sin, lambda v: v * 2.0, lambda v: 1.0 + v, lambda v: v * v, lambda v: -v,
               lambda v: core.bind1(P.exp, v), lambda v: core.bind2(P.add, v, 1.0)):
        with pytest.raises(RuntimeError, match="escaped from grad"):
            op(t)


def test_bind1_bind2_match_bind():
    x = np.array([0.5, -0.0, np.inf])
    with np.errstate(all="ignore"):
        same(core.bind1(P.sin, x), core.bind(P.sin, x))
        same(core.bind2(P.mul, x, 2), core.bind(P.mul, x, 2))
        same(core.bind2(P.sub, 1.0, np.float32(2)), core.bind(P.sub, 1.0, np.float32(2)))
    # through other traces (their process1/process2 default to bind) and nested levels
    f = lambda x: core.bind2(P.mul, core.bind1(P.sin, x), x)
    g = lambda x: core.bind(P.mul, core.bind(P.sin, x), x)
    for t in (dp.jvp, lambda h, p, v: dp.vmap(h)(p[0])):
        same(t(f, (x[:2],), (np.ones(2),)), t(g, (x[:2],), (np.ones(2),)))
    same(dp.jit(dp.grad(lambda x: dnp.sum(f(x))))(x[:2]),
         dp.jit(dp.grad(lambda x: dnp.sum(g(x))))(x[:2]))
    same(dp.grad(lambda y: dnp.sum(dp.grad(lambda x: dnp.sum(f(x) * y))(x[:2])))(x[:2]),
         dp.grad(lambda y: dnp.sum(dp.grad(lambda x: dnp.sum(g(x) * y))(x[:2])))(x[:2]))


def test_debug_nans_on_the_fast_paths():
    with dp.debug_nans(), np.errstate(all="ignore"):
        with pytest.raises(dp.NanError, match=r"'log' produced NaN.*forward pass"):
            dp.grad(lambda x: dnp.sum(dnp.log(x) * 2.0))(np.array([-1.0]))
        with pytest.raises(dp.NanError, match=r"'sqrt' produced NaN.*backward pass.*"
                                              r"test_eager_path\.py"):
            dp.grad(lambda x: dnp.sum(dnp.where(x > 0, dnp.sqrt(x), 0.0)))(np.array([0.0]))
    # debug_nans turned on between recording and the sweep: the flat records are checked too
    with np.errstate(all="ignore"):
        _, f1 = dp.vjp(lambda x: dnp.where(x > 0, dnp.sqrt(x), 0.0), np.array([0.0]))
        _, f2 = dp.vjp(lambda x: x * np.array([np.inf]), np.array([1.0]))
    with dp.debug_nans(), np.errstate(all="ignore"):
        with pytest.raises(dp.NanError, match=r"'sqrt'.*backward pass.*unknown"):
            f1(np.array([1.0]))  # 1 * 0.5 / sqrt(0) = inf, then where's 0 * inf in sqrt's
        with pytest.raises(dp.NanError, match=r"'mul'.*backward pass.*unknown"):
            f2(np.array([0.0]))  # 0 * inf in mul's rule for x
    with np.errstate(all="ignore"):
        assert np.isnan(f2(np.array([0.0]))[0][0])  # without debugging: the NaN itself


# ----------------------------------------------------------------------------------------------
# one-function rules against the two-function form


TWO_FUNCTION = {  # the derivative each product replaces, as it was declared
    P.exp: lambda out, x: out,
    P.log: lambda out, x: 1.0 / x,
    P.sin: lambda out, x: P.cos(x),
    P.cos: lambda out, x: -P.sin(x),
    P.tanh: lambda out, x: 1.0 - out * out,
    P.sqrt: lambda out, x: 0.5 / out,
}


@pytest.mark.parametrize("prim", list(TWO_FUNCTION), ids=lambda p: p.name)
@pytest.mark.parametrize("name", list(CASES))
def test_product_rules_match_the_two_function_form(prim, name):
    x = CASES[name]
    derivative = TWO_FUNCTION[prim]
    with np.errstate(all="ignore"):
        out = prim.impl(x)
        for t in (np.ones_like(x), -np.asarray(x) * 0.5 if np.ndim(x) else x * 0.5,
                  np.full_like(x, np.nan)):
            assert prim.jvp[0] is prim.vjp[0]
            same(prim.vjp[0](t, out, x), t * derivative(out, x))
    # traced operands (the rule under an enclosing transform) and Python-scalar tangents
    if np.iscomplexobj(x) or np.ndim(x) == 0:
        return
    with np.errstate(all="ignore"):
        fd = dp.jvp(lambda v: prim.vjp[0](v, prim.impl(x), x), (x,), (np.ones_like(x),))
        two = dp.jvp(lambda v: v * derivative(prim.impl(x), x), (x,), (np.ones_like(x),))
        same(fd, two)
        fd = dp.grad(lambda v: dnp.sum(prim.vjp[0](x, core.bind1(prim, v), v)))(x)
        two = dp.grad(lambda v: dnp.sum(x * derivative(core.bind1(prim, v), v)))(x)
        same(fd, two)


def test_product_rules_ask_the_eager_provider_for_large_arrays():
    calls = []

    def provider(prim, i, t, out, args):
        calls.append((prim, i))
        if i == -1 or prim is P.cos:  # impls, and cos's rule: NumPy runs them
            return None
        return np.full(t.shape, 7.0)

    previous = core._eager_registered
    big = np.linspace(-1.0, 1.0, 64)
    try:
        core.set_eager_provider(provider, 16)
        for prim in (P.log, P.sin, P.cos, P.tanh, P.sqrt):
            calls.clear()
            with np.errstate(all="ignore"):
                r = prim.vjp[0](big, prim.impl(big), big)
            assert (prim, 0) in calls  # the rule asked for the kernel
            if prim is P.cos:  # the provider declined: NumPy computes the rule
                same(r, big * -P.sin(big))
            else:
                same(r, np.full(64, 7.0))
            calls.clear()
            small = big[:8]
            with np.errstate(all="ignore"):
                same(prim.vjp[0](small, prim.impl(small), small),
                     small * TWO_FUNCTION[prim](prim.impl(small), small))
            assert calls == []  # below the threshold nothing is asked
        calls.clear()
        same(P.exp.vjp[0](big, np.exp(big), big), big * np.exp(big))  # exp has no rule form
        assert all(p is not P.exp for p, _ in calls)
    finally:
        core.set_eager_provider(*previous)
