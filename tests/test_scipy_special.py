"""diffprog.scipy.special against scipy.special: values, edge values, dtypes and shapes; the
derivatives against closed forms and central differences (both modes, order 2, float64 and
float32); jit; SciPy's own ufuncs on traced values; and the import boundaries."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.special as sc

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.scipy import special as ds
from tests.domains import tol_for

# Edge values (zeros of both signs, poles of gamma and digamma, tiny, subnormal, huge, ±inf,
# nan) and ordinary points; every function is compared with SciPy on all of them.
EDGES = [0.0, -0.0, -1.0, -2.0, -2.5, -0.5, 1e-300, 5e-324, 1e-8, 0.3, 0.5, 1.0, 1.5, 2.0, 2.5,
         30.0, 171.5, 1e300, math.inf, -math.inf, math.nan, -40.0, 40.0, 0.999999, -0.999,
         1.999, 1e-20]


def edges(dtype):
    with np.errstate(over="ignore"):  # 1e300 is inf in float32
        return np.array(EDGES, dtype)


UNARY = ["gammaln", "gamma", "digamma", "psi", "erf", "erfc", "erfinv", "erfcinv", "erfcx",
         "ndtr", "ndtri", "log_ndtr", "expit", "logit", "log_expit", "entr", "i0", "i0e", "i1",
         "i1e"]
BINARY = ["xlogy", "xlog1py", "rel_entr", "beta", "betaln", "gammainc", "gammaincc",
          "gammaincinv", "gammainccinv", "stdtr"]
# erf, erfc and expit are diffprog's own primitives (a few ulp from SciPy); the others run
# SciPy's ufunc and are compared to the last bit with this tolerance too.
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): float(np.finfo(np.float32).eps)}


def assert_like_scipy(got, want, dtype=np.float64):
    assert type(got) is type(want), (type(got), type(want))
    assert np.shape(got) == np.shape(want)
    assert np.result_type(got) == np.result_type(want)
    np.testing.assert_allclose(got, want, rtol=RTOL[np.dtype(dtype)], atol=0, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", UNARY)
def test_unary_values_dtypes_and_edges_equal_scipy(name, dtype):
    x = edges(dtype)
    with np.errstate(all="ignore"):
        assert_like_scipy(getattr(ds, name)(x), getattr(sc, name)(x), dtype)
        # integers compute in float64; a Python scalar gives a NumPy scalar; shapes are kept
        i = np.array([[-2, 0, 1], [3, 5, 40]])
        assert_like_scipy(getattr(ds, name)(i), getattr(sc, name)(i))
        assert_like_scipy(getattr(ds, name)(0.5), getattr(sc, name)(0.5))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", BINARY)
def test_binary_values_dtypes_and_edges_equal_scipy(name, dtype):
    grid = np.array([0.0, -0.0, -1.0, -2.5, 1e-300, 0.3, 1.0, 2.5, 171.5, math.inf, -math.inf,
                     math.nan, -0.5], dtype)
    x, y = np.meshgrid(grid, grid)
    with np.errstate(all="ignore"):
        assert_like_scipy(getattr(ds, name)(x, y), getattr(sc, name)(x, y), dtype)
        # broadcasting, a Python scalar operand (SciPy's loop order decides the dtype), scalars
        assert_like_scipy(getattr(ds, name)(x[:1], y[:, :1]), getattr(sc, name)(x[:1], y[:, :1]),
                          dtype)
        assert_like_scipy(getattr(ds, name)(x, 2.0), getattr(sc, name)(x, 2.0), dtype)
        assert_like_scipy(getattr(ds, name)(0.5, 2.0), getattr(sc, name)(0.5, 2.0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["iv", "ive"])
def test_bessel_of_real_order_equals_scipy(name, dtype):
    x = edges(dtype)
    v = np.array([[0], [1], [2.5], [-1], [-0.5]], dtype)
    with np.errstate(all="ignore"):
        assert_like_scipy(getattr(ds, name)(v, x), getattr(sc, name)(v, x), dtype)
        assert_like_scipy(getattr(ds, name)(2, x), getattr(sc, name)(2, x), dtype)
        assert_like_scipy(getattr(ds, name)(1, 0.5), getattr(sc, name)(1, 0.5))


def test_named_edge_values():
    with np.errstate(all="ignore"):
        assert ds.ndtri(0.0) == -np.inf and ds.ndtri(1.0) == np.inf
        assert ds.erfinv(-1.0) == -np.inf and ds.erfinv(1.0) == np.inf
        assert ds.erfcinv(0.0) == np.inf and ds.erfcinv(2.0) == -np.inf
        assert ds.xlogy(0.0, 0.0) == 0.0 and ds.xlog1py(0.0, -1.0) == 0.0
        assert ds.entr(0.0) == 0.0 and ds.rel_entr(0.0, 0.0) == 0.0
        assert ds.gamma(0.0) == np.inf and np.isnan(ds.gamma(-1.0))
        assert ds.gammaln(0.0) == np.inf and ds.gammaln(-2.0) == np.inf
    np.testing.assert_allclose(ds.log_ndtr(-40.0), sc.log_ndtr(-40.0), rtol=1e-15)
    assert ds.log_ndtr(-40.0) < -800  # not log(0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_polygamma_and_multigammaln_equal_scipy(dtype):
    x = edges(dtype)
    with np.errstate(all="ignore"):
        for n in range(4):
            assert_like_scipy(ds.polygamma(n, x), sc.polygamma(n, x), dtype)
        n = np.array([[0], [1], [2]])
        assert_like_scipy(ds.polygamma(n, x), sc.polygamma(n, x), dtype)
        assert_like_scipy(ds.polygamma(1, 0.5), sc.polygamma(1, 0.5))  # SciPy: a 0-d array
    a = np.array([1.6, 2.0, 7.5, 40.0], dtype)
    for d in (1, 2, 3, 5):
        assert_like_scipy(ds.multigammaln(a + d / 2, d), sc.multigammaln(a + d / 2, d))
    assert_like_scipy(ds.multigammaln(3.0, 2), sc.multigammaln(3.0, 2))
    with pytest.raises(ValueError, match="not met"):
        ds.multigammaln(np.array([0.4, 2.0]), 2)
    with pytest.raises(ValueError, match="positive integer"):
        ds.multigammaln(3.0, 1.5)


# -- derivatives ---------------------------------------------------------------------------------

# (name, function of arrays, argument makers): the points are where each function is smooth.
def _pts(*v):
    return np.array(v)


SMOOTH = [
    ("gammaln", ds.gammaln, [_pts(0.3, 1.7, 4.2, -0.5, -2.3)]),
    ("gamma", ds.gamma, [_pts(0.3, 1.7, 4.2, -0.5, -2.3)]),
    ("digamma", ds.digamma, [_pts(0.3, 1.7, 4.2, -0.5, -2.3)]),
    ("polygamma1", lambda x: ds.polygamma(1, x), [_pts(0.3, 1.7, 4.2)]),
    ("polygamma_n", lambda x: ds.polygamma(np.array([0, 1, 2]), x), [_pts(0.6, 1.7, 4.2)]),
    ("multigammaln", lambda a: ds.multigammaln(a, 3), [_pts(1.3, 2.0, 6.5)]),
    ("beta", ds.beta, [_pts(0.7, 1.5, 3.2), _pts(2.5, 0.6, 1.1)]),
    ("betaln", ds.betaln, [_pts(0.7, 1.5, 3.2), _pts(2.5, 0.6, 1.1)]),
    ("erf", ds.erf, [_pts(-2.0, -0.3, 0.4, 1.5)]),
    ("erfc", ds.erfc, [_pts(-2.0, -0.3, 0.4, 1.5)]),
    ("erfinv", ds.erfinv, [_pts(-0.9, -0.2, 0.3, 0.95)]),
    ("erfcinv", ds.erfcinv, [_pts(0.05, 0.7, 1.3, 1.9)]),
    ("erfcx", ds.erfcx, [_pts(-1.0, 0.2, 3.0, 30.0)]),
    ("ndtr", ds.ndtr, [_pts(-3.0, -0.5, 0.7, 2.0)]),
    ("ndtri", ds.ndtri, [_pts(0.05, 0.3, 0.8, 0.95)]),
    ("log_ndtr", ds.log_ndtr, [_pts(-40.0, -10.0, -1.0, 0.5, 3.0)]),
    ("expit", ds.expit, [_pts(-30.0, -2.0, 0.5, 20.0)]),
    ("logit", ds.logit, [_pts(0.05, 0.3, 0.9)]),
    ("log_expit", ds.log_expit, [_pts(-30.0, -2.0, 0.5, 20.0)]),
    ("xlogy", ds.xlogy, [_pts(-1.5, 0.5, 2.0), _pts(0.3, 1.2, 5.0)]),
    ("xlog1py", ds.xlog1py, [_pts(-1.5, 0.5, 2.0), _pts(-0.5, 0.2, 3.0)]),
    ("entr", ds.entr, [_pts(0.1, 0.7, 2.5)]),
    ("rel_entr", ds.rel_entr, [_pts(0.2, 1.3, 0.6), _pts(0.5, 2.0, 0.6)]),
    ("i0", ds.i0, [_pts(-3.0, -0.5, 0.2, 1.5, 12.0)]),
    ("i0e", ds.i0e, [_pts(-3.0, -0.5, 0.2, 1.5, 12.0)]),
    ("i1", ds.i1, [_pts(-3.0, -0.5, 0.2, 1.5, 12.0)]),
    ("i1e", ds.i1e, [_pts(-3.0, -0.5, 0.2, 1.5, 12.0)]),
    ("iv", lambda x: ds.iv(np.array([0, 1, 2.5]), x), [_pts(0.5, 1.5, 7.0)]),
    ("ive", lambda x: ds.ive(np.array([0, 1, 2.5]), x), [_pts(-0.5, 1.5, 7.0)]),
    ("iv_int", lambda x: ds.iv(2, x), [_pts(-2.0, 0.3, 4.0)]),
    ("logsumexp", lambda a: ds.logsumexp(a), [_pts(0.3, -1.2, 2.0, 0.7)]),
    ("logsumexp_b", lambda a, b: ds.logsumexp(a, b=b), [_pts(0.3, -1.2, 2.0),
                                                       _pts(0.5, 2.0, 1.5)]),
    ("logsumexp_sign", lambda a, b: ds.logsumexp(a, b=b, return_sign=True)[0],
     [_pts(0.3, -1.2, 2.0), _pts(0.5, -2.0, -1.5)]),
    ("softmax", lambda x: ds.softmax(x), [_pts(0.3, -1.2, 2.0, 0.7)]),
    # the incomplete gamma and beta functions in every argument: both sides of the switch
    # between series and continued fraction (x = a + 1; x = (a + 1) / (a + b + 2)), a and b
    # below and above 1
    ("gammainc", ds.gammainc, [_pts(0.4, 2.5, 7.0, 1.3), _pts(0.3, 4.0, 5.5, 3.1)]),
    ("gammaincc", ds.gammaincc, [_pts(0.4, 2.5, 7.0, 1.3), _pts(0.3, 4.0, 5.5, 3.1)]),
    ("log_gammainc", ds._log_gammainc, [_pts(0.4, 2.5, 7.0, 1.3), _pts(0.3, 4.0, 5.5, 3.1)]),
    ("log_gammaincc", lambda a, x: ds._log_gammainc(a, x, upper=True),
     [_pts(0.4, 2.5, 7.0, 1.3), _pts(0.3, 4.0, 5.5, 3.1)]),
    ("betainc", ds.betainc, [_pts(0.6, 2.5, 4.0), _pts(1.5, 0.7, 3.0), _pts(0.3, 0.8, 0.55)]),
    ("betaincc", ds.betaincc, [_pts(0.6, 2.5, 4.0), _pts(1.5, 0.7, 3.0),
                               _pts(0.3, 0.8, 0.55)]),
    ("log_betainc", ds._log_betainc, [_pts(0.6, 2.5, 4.0), _pts(1.5, 0.7, 3.0),
                                      _pts(0.3, 0.8, 0.55)]),
    ("log_betaincc", lambda a, b, x: ds._log_betainc(a, b, x, upper=True),
     [_pts(0.6, 2.5, 4.0), _pts(1.5, 0.7, 3.0), _pts(0.3, 0.8, 0.55)]),
    ("gammaincinv", ds.gammaincinv, [_pts(0.4, 2.5, 7.0), _pts(0.2, 0.6, 0.9)]),
    ("gammainccinv", ds.gammainccinv, [_pts(0.4, 2.5, 7.0), _pts(0.2, 0.6, 0.9)]),
    ("betaincinv", ds.betaincinv, [_pts(0.6, 2.5, 4.0), _pts(1.5, 0.7, 3.0),
                                   _pts(0.2, 0.6, 0.9)]),
    ("betainccinv", ds.betainccinv, [_pts(0.6, 2.5, 4.0), _pts(1.5, 0.7, 3.0),
                                     _pts(0.2, 0.6, 0.9)]),
    ("stdtr", ds.stdtr, [_pts(0.7, 3.5, 30.0, 2.0), _pts(-2.0, 0.3, 1.5, 8.0)]),
    ("log_softmax", lambda x: ds.log_softmax(x), [_pts(0.3, -1.2, 2.0, 0.7)]),
]
SMOOTH_IDS = [s[0] for s in SMOOTH]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,fn,points", SMOOTH, ids=SMOOTH_IDS)
def test_check_grads_both_modes_order_2(name, fn, points, dtype):
    args = tuple(p.astype(dtype) for p in points)
    tol = tol_for(dtype)
    dp.check_grads(fn, args, order=2, modes=("fwd", "rev"), **tol)
    # the derivative has the argument's dtype (also where SciPy computes float32 in float64)
    g = dp.grad(lambda *a: dnp.sum(fn(*a)))(*args)
    assert g.dtype == np.dtype(dtype)


def _grad(f, x):
    """Elementwise derivative of an elementwise f."""
    return dp.grad(lambda x: dnp.sum(f(x)))(x)


def _x(*v):
    return np.array(v)


# derivative = closed form from SciPy (first and second derivatives of the rules)
CLOSED = [
    (ds.gammaln, lambda x: sc.digamma(x), _x(0.3, 1.7, -0.5, 50.0)),
    (ds.digamma, lambda x: sc.polygamma(1, x), _x(0.3, 1.7, -0.5, 50.0)),
    (lambda x: ds.polygamma(2, x), lambda x: sc.polygamma(3, x), _x(0.3, 1.7, 50.0)),
    (lambda x: _grad(ds.gammaln, x), lambda x: sc.polygamma(1, x), _x(0.3, 1.7, 50.0)),
    (lambda x: _grad(ds.digamma, x), lambda x: sc.polygamma(2, x), _x(0.3, 1.7, 50.0)),
    (ds.gamma, lambda x: sc.gamma(x) * sc.digamma(x), _x(0.3, 1.7, -0.5, 20.0)),
    (ds.erfinv, lambda x: np.sqrt(np.pi) / 2 * np.exp(sc.erfinv(x) ** 2), _x(-0.99, 0.1, 0.7)),
    (ds.erfcinv, lambda x: -np.sqrt(np.pi) / 2 * np.exp(sc.erfcinv(x) ** 2), _x(1e-10, 1.5)),
    (ds.ndtri, lambda x: np.sqrt(2 * np.pi) * np.exp(sc.ndtri(x) ** 2 / 2), _x(1e-10, 0.4)),
    (ds.ndtr, lambda x: np.exp(-x * x / 2) / np.sqrt(2 * np.pi), _x(-3.0, 0.0, 1.0)),
    (ds.log_ndtr, lambda x: np.exp(-x * x / 2) / np.sqrt(2 * np.pi) / sc.ndtr(x),
     _x(-5.0, -1.0, 0.0, 2.0)),
    (ds.i0, lambda x: sc.i1(x), _x(-3.0, 0.0, 0.2, 12.0)),
    (ds.i1, lambda x: sc.i0(x) - sc.i1(x) / x, _x(-3.0, 0.2, 12.0)),
    (ds.i0e, lambda x: sc.i1e(x) - np.sign(x) * sc.i0e(x), _x(-3.0, 0.2, 12.0)),
    # i0e'' = (i0e + ive(2, .)) / 2 - 2 sign(x) i1e + i0e, at 0 its limit from both sides 3/2
    (lambda x: _grad(ds.i0e, x),
     lambda x: (sc.i0e(x) + sc.ive(2, x)) / 2 - 2 * np.sign(x) * sc.i1e(x) + sc.i0e(x),
     _x(-3.0, -1e-300, 0.0, -0.0, 1e-300, 0.2, 12.0)),
    (ds.i1e, lambda x: sc.i0e(x) - sc.i1e(x) * (np.sign(x) + 1 / x), _x(-3.0, 0.2, 12.0)),
    (lambda x: ds.iv(2.5, x), lambda x: (sc.iv(1.5, x) + sc.iv(3.5, x)) / 2, _x(0.2, 3.0)),
    (lambda x: ds.ive(1, x), lambda x: sc.i0e(x) - sc.i1e(x) * (np.sign(x) + 1 / x),
     _x(-3.0, 0.2, 12.0)),
    (ds.logit, lambda x: 1 / (x * (1 - x)), _x(1e-5, 0.5, 0.99)),
    (ds.entr, lambda x: -(np.log(x) + 1), _x(1e-5, 0.5, 3.0)),
    (ds.erfcx, lambda x: 2 * x * sc.erfcx(x) - 2 / np.sqrt(np.pi), _x(-1.0, 0.5, 3.0)),
]


@pytest.mark.parametrize("k", range(len(CLOSED)))
def test_derivatives_equal_closed_forms(k):
    fn, want, x = CLOSED[k]
    np.testing.assert_allclose(_grad(fn, x), want(x), rtol=1e-12)


def test_log_ndtr_derivative_in_the_far_left_tail():
    # phi/ndtr = t / (1 - 1/t² + 3/t⁴ - 15/t⁶ + ...) for x = -t: where phi and ndtr underflow
    for t in (40.0, 1e3, 1e5, 1e150):
        u = 1.0 / (t * t)
        want = t / (1 - u + 3 * u * u - 15 * u ** 3 + 105 * u ** 4)
        np.testing.assert_allclose(dp.grad(ds.log_ndtr)(-t), want, rtol=1e-12)
    assert dp.grad(ds.log_ndtr)(40.0) == 0.0  # phi underflows, no nan
    np.testing.assert_allclose(dp.grad(dp.grad(ds.log_ndtr))(-1e3), -1.0, rtol=1e-5)
    g = dp.grad(ds.log_ndtr)(np.float32(-40.0))
    assert g.dtype == np.float32 and abs(g - 40.025) < 1e-3


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_edge_derivatives():
    gx, gy = dp.grad(ds.xlogy, argnums=(0, 1))(0.0, 0.0)
    assert gx == -np.inf and gy == 0.0  # d/dx = log(y) (JAX's value), d/dy = 0 at x = 0
    gx, gy = dp.grad(ds.xlogy, argnums=(0, 1))(0.0, 2.0)
    assert gx == np.log(2.0) and gy == 0.0
    # the mixed second derivative at x = 0 is still 1/y
    np.testing.assert_allclose(dp.grad(dp.grad(ds.xlogy, argnums=1))(0.0, 2.0), 0.5)
    gx, gy = dp.grad(ds.xlog1py, argnums=(0, 1))(0.0, -1.0)
    assert gx == -np.inf and gy == 0.0
    gx, gy = dp.grad(ds.xlog1py, argnums=(0, 1))(0.0, 1.0)
    assert gx == np.log(2.0) and gy == 0.0
    assert dp.grad(ds.entr)(0.0) == np.inf and dp.grad(ds.entr)(-1.0) == 0.0
    gx, gy = dp.grad(ds.rel_entr, argnums=(0, 1))(0.0, 2.0)
    assert gx == -np.inf and gy == 0.0
    gx, gy = dp.grad(ds.rel_entr, argnums=(0, 1))(0.0, 0.0)
    assert gx == -np.inf and gy == 0.0
    gx, gy = dp.grad(ds.rel_entr, argnums=(0, 1))(-1.0, 2.0)
    assert gx == 0.0 and gy == 0.0
    assert dp.grad(ds.i1)(0.0) == 0.5 and dp.grad(ds.i1e)(0.0) == 0.5
    assert dp.grad(ds.i0e)(0.0) == 0.0 and dp.grad(ds.i0)(0.0) == 0.0
    # i0e'' is 3/2 on both sides of 0 and at 0 (the product rule's sign(0)**2 = 0 gave 1/2);
    # the odd third derivative is 0 there
    order2 = dp.grad(lambda x: dnp.sum(_grad(ds.i0e, x)))
    for f in (order2, dp.jit(order2)):
        np.testing.assert_allclose(f(np.array([-1e-9, 0.0, 1e-9])), 1.5, rtol=1e-8)
    assert dp.grad(dp.grad(dp.grad(ds.i0e)))(0.0) == 0.0
    assert dp.grad(dp.grad(ds.i1))(0.0) == 0.0  # i1 is odd
    assert dp.grad(ds.erfinv)(1.0) == np.inf and dp.grad(ds.ndtri)(0.0) == np.inf
    x = np.array([1e-8, 0.0, -1e-8])
    np.testing.assert_allclose(_grad(ds.i1, x), [0.5, 0.5, 0.5], rtol=1e-12)
    np.testing.assert_allclose(_grad(ds.i1e, x), [0.5 - 1e-8, 0.5, 0.5 - 1e-8], rtol=1e-12)
    with pytest.raises(TypeError, match=r"polygamma\(n, x\) has no derivative in its order n"):
        dp.grad(lambda n: ds.polygamma(n, 2.0))(1.0)
    with pytest.raises(TypeError, match=r"iv\(v, x\) has no derivative in its order v"):
        dp.grad(ds.iv)(1.5, 2.0)
    # i1 = x/2 + x³/16 + ...: every derivative at 0 is right, with no division by x
    d3 = dp.grad(dp.grad(dp.grad(ds.i1)))
    np.testing.assert_allclose(d3(0.0), 3 / 8, rtol=1e-14)
    np.testing.assert_allclose(dp.grad(dp.grad(dp.grad(lambda x: ds.iv(2, x))))(0.0), 0.0)
    np.testing.assert_allclose(dp.grad(dp.grad(lambda x: ds.iv(2, x)))(0.0), 0.25, rtol=1e-14)


@pytest.mark.parametrize("name,fn,points", SMOOTH, ids=SMOOTH_IDS)
def test_jit_of_grad_equals_grad(name, fn, points):
    def loss(*a):
        return dnp.sum(fn(*a) ** 2)
    argnums = tuple(range(len(points)))
    want = dp.grad(loss, argnums=argnums)(*points)
    got = dp.jit(dp.grad(loss, argnums=argnums))(*points)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-300)
    # the forward value under jit: SciPy's dtype and shape, also for float32
    args32 = tuple(p.astype(np.float32) for p in points)
    out, want = dp.jit(fn)(*args32), fn(*args32)
    assert np.result_type(out) == np.result_type(want) and np.shape(out) == np.shape(want)
    np.testing.assert_allclose(out, want, rtol=1e-6)


# -- SciPy's ufuncs on traced values ---------------------------------------------------------------

UFUNC_POINTS = {"erfinv": _x(-0.5, 0.3), "erfcinv": _x(0.5, 1.3), "ndtri": _x(0.2, 0.7),
                "logit": _x(0.2, 0.7), "entr": _x(0.2, 0.7)}


@pytest.mark.parametrize("name", UNARY + BINARY)
def test_scipy_ufuncs_on_traced_values_use_the_same_rules(name):
    ufunc, mine = getattr(sc, name), getattr(ds, name)
    x = UFUNC_POINTS.get(name, _x(0.7, 1.6))
    args = (x,) if ufunc.nin == 1 else (x, x[::-1] + 0.5)
    argnums = tuple(range(len(args)))

    def with_scipy(*a):
        return np.sum(ufunc(*a) * np.cos(a[0]))

    def with_diffprog(*a):
        return dnp.sum(mine(*a) * dnp.cos(a[0]))
    want = dp.grad(with_diffprog, argnums=argnums)(*args)
    for got in (dp.grad(with_scipy, argnums=argnums)(*args),
                dp.jit(dp.grad(with_scipy, argnums=argnums))(*args)):
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-14)
    # second order through the ufunc, and a constant operand first (ndarray.__array_ufunc__)
    h = dp.grad(lambda x: dp.grad(lambda x: np.sum(ufunc(*((x,) + args[1:]))))(x).sum())(x)
    np.testing.assert_allclose(
        h, dp.grad(lambda x: dp.grad(lambda x: dnp.sum(mine(*((x,) + args[1:]))))(x).sum())(x),
        rtol=1e-13)
    if ufunc.nin == 2:
        g = dp.grad(lambda y: np.sum(ufunc(args[0], y)))(args[1])
        np.testing.assert_allclose(g, dp.grad(lambda y: dnp.sum(mine(args[0], y)))(args[1]),
                                   rtol=1e-14)


@pytest.mark.parametrize("name", ["iv", "ive"])
def test_scipy_bessel_ufuncs_of_real_order_on_traced_values(name):
    ufunc, mine = getattr(sc, name), getattr(ds, name)
    x, v = _x(-0.7, 1.6, 5.0), _x(0.0, 1.0, 2.5)
    g = dp.grad(lambda x: np.sum(ufunc(v, x) ** 2))(x)
    np.testing.assert_allclose(g, dp.grad(lambda x: dnp.sum(mine(v, x) ** 2))(x), rtol=1e-14)
    h = dp.jit(dp.grad(lambda x: np.sum(dp.grad(lambda x: np.sum(ufunc(1, x)))(x))))(x)
    np.testing.assert_allclose(h, dp.grad(lambda x: dnp.sum(
        dp.grad(lambda x: dnp.sum(mine(1, x)))(x)))(x), rtol=1e-13)


def test_scipy_ufuncs_with_dtype_and_jvp():
    x = np.array([0.5, 1.5], np.float32)
    out, t = dp.jvp(lambda x: sc.gammaln(x), (x,), (np.ones(2, np.float32),))
    assert out.dtype == np.float32 and t.dtype == np.float32
    np.testing.assert_allclose(t, sc.digamma(x), rtol=1e-6)
    g = dp.grad(lambda x: np.sum(sc.psi(x, dtype=np.float64)))(np.array([0.5, 1.5]))
    np.testing.assert_allclose(g, sc.polygamma(1, [0.5, 1.5]), rtol=1e-12)
    assert sc.digamma is sc.psi  # one ufunc, two names: both reach the rule


def test_unsupported_scipy_ufunc_raises_a_type_error_naming_it():
    with pytest.raises(TypeError, match=r"scipy\.special\.jv is not differentiable"):
        dp.grad(lambda x: np.sum(sc.jv(1.0, x)))(np.array([0.5, 1.0]))
    with pytest.raises(TypeError, match=r"scipy\.special\.kv is not differentiable"):
        dp.jit(lambda x: sc.kv(1.0, x))(np.array([0.5, 1.0]))
    # a ufunc of neither NumPy nor SciPy is named as such
    other = np.frompyfunc(lambda x: x, 1, 1)
    with pytest.raises(TypeError, match=r"diffprog: ufunc <lambda> \(vectorized\) is not"):
        dp.grad(lambda x: np.sum(other(x)))(np.array([0.5]))


def test_ufunc_rule_is_none_for_other_ufuncs():
    assert ds.ufunc_rule(np.sin) is None and ds.ufunc_rule(sc.gammaln) is ds.gammaln
    assert ds.ufunc_rule(object()) is None


# -- logsumexp, softmax, log_softmax -------------------------------------------------------------

def _lse_close(got, want, a):
    # diffprog's logsumexp is log(sum(exp(a - max))) + max; SciPy's splits off the largest
    # term with log1p: both are within a few ulp of max|a| of the exact value.
    scale = np.max(np.abs(np.asarray(a)[np.isfinite(a)]), initial=1.0)
    atol = 8 * np.finfo(np.result_type(want)).eps * scale
    assert np.result_type(got) == np.result_type(want) and np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=RTOL[np.dtype(np.result_type(want))], atol=atol,
                               equal_nan=True)


LSE_CASES = [
    dict(),
    dict(axis=1),
    dict(axis=(0, 2)),
    dict(axis=-1, keepdims=True),
    dict(axis=None, keepdims=True),
    dict(b="pos"),
    dict(b="pos", axis=1, keepdims=True),
    dict(b="signed", return_sign=True),
    dict(b="signed", axis=2, return_sign=True),
    dict(b="signed", axis=2),  # negative sums: nan without return_sign
    dict(b="zeros", axis=0),
    dict(return_sign=True, axis=1, keepdims=True),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(LSE_CASES)))
def test_logsumexp_against_scipy(case, dtype, rng):
    kw = dict(LSE_CASES[case])
    a = (3 * rng.standard_normal((2, 3, 4))).astype(dtype)
    b = kw.pop("b", None)
    if b == "pos":
        kw["b"] = rng.uniform(0.1, 2.0, (3, 4))
    elif b == "signed":
        kw["b"] = rng.uniform(-1.0, 1.0, (2, 3, 4))
    elif b == "zeros":
        kw["b"] = (rng.uniform(size=(2, 3, 4)) > 0.5).astype(dtype)
        a[0, 0, 0], kw["b"][0, 0, 0] = np.inf, 0.0  # a zero weight drops an infinite entry
    want = sc.logsumexp(a, **kw)
    got = ds.logsumexp(a, **kw)
    if kw.get("return_sign"):
        _lse_close(got[0], want[0], a)
        np.testing.assert_array_equal(got[1], want[1])
        assert np.result_type(got[1]) == np.result_type(want[1])
    else:
        _lse_close(got, want, a)
    # and differentiated in a (and b): both modes, order 2
    def f(a, b=None):
        out = ds.logsumexp(a, **{**kw, "b": b})
        return out[0] if kw.get("return_sign") else out
    if b != "zeros" and not (b == "signed" and not kw.get("return_sign")):
        dp.check_grads(f, (a,) if b is None else (a, kw["b"]), order=2, **tol_for(dtype))


def test_logsumexp_edges_against_scipy():
    cases = [([1000.0, 1000.0], {}), ([-np.inf, -np.inf], {}), ([np.inf, 1.0], {}),
             ([np.nan, 1.0], {}), ([], {}), (3.0, {}), ([1, 2, 3], {}),
             ([1.0, 2.0], dict(b=[1.0, -1.0], return_sign=True)),
             ([1.0, 1.0], dict(b=[1.0, -1.0], return_sign=True)),
             ([1.0, 2.0], dict(b=[0.0, 0.0])),
             ([0.0, -40.0], {}), ([[0.0, 1.0]], dict(axis=0))]
    for a, kw in cases:
        with np.errstate(all="ignore"):
            want, got = sc.logsumexp(a, **kw), ds.logsumexp(a, **kw)
        if kw.get("return_sign"):
            _lse_close(got[0], want[0], a)
            np.testing.assert_array_equal(got[1], want[1])
        else:
            _lse_close(got, want, np.asarray(a, float))
            assert type(got) is type(want), (a, kw)


def test_logsumexp_derivative_in_b_where_b_is_zero():
    a, b = np.array([0.5, 1.0, -2.0]), np.array([1.0, 0.0, 2.0])
    g = dp.grad(lambda b: ds.logsumexp(a, b=b))(b)
    np.testing.assert_allclose(g, np.exp(a) / np.sum(b * np.exp(a)), rtol=1e-14)
    ga = dp.grad(lambda a: ds.logsumexp(a, b=b))(a)
    np.testing.assert_allclose(ga, b * np.exp(a) / np.sum(b * np.exp(a)), rtol=1e-14)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_against_scipy(name, axis, rng):
    x = 5 * rng.standard_normal((3, 4))
    for v in (x, x.astype(np.float32), np.array([[1000.0, -1000.0]]), [[1, 2], [3, 4]]):
        want, got = getattr(sc, name)(v, axis=axis), getattr(ds, name)(v, axis=axis)
        assert_like_scipy(got, want, np.result_type(want))
    assert_like_scipy(ds.log_softmax(2.0), sc.log_softmax(2.0))
    dp.check_grads(lambda x: getattr(ds, name)(x, axis=axis), (x,), order=2)
    assert_like_scipy(getattr(ds, name)(x), getattr(sc, name)(x))  # axis=None by default


# -- imports --------------------------------------------------------------------------------------

def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_import_diffprog_does_not_import_scipy():
    r = _run("import sys, numpy as np, diffprog as dp\n"
             "dp.grad(lambda x: np.sum(np.sin(x)))(np.ones(2))\n"
             "assert 'scipy' not in sys.modules, 'scipy imported'\n"
             "import scipy.special as sc\n"
             "assert 'diffprog.scipy' not in sys.modules\n"
             "g = dp.grad(lambda x: np.sum(sc.gammaln(x)))(np.array([2.0]))\n"
             "assert abs(g[0] - (1 - 0.5772156649015329)) < 1e-14\n")
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_import_without_scipy_says_how_to_install_it():
    r = _run("import sys\nsys.modules['scipy'] = None\nsys.modules['scipy.special'] = None\n"
             "import diffprog\nimport diffprog.scipy\n")
    assert r.returncode != 0 and "pip install diffprog[scipy]" in r.stderr, r.stderr


# What exercises every primitive of diffprog.scipy (for test_prims' registry test).
COVERAGE = [(fn, tuple(np.resize(p, (2, 3)) for p in points))
            for name, fn, points in SMOOTH
            if name not in ("logsumexp", "logsumexp_b", "logsumexp_sign", "softmax",
                            "log_softmax", "multigammaln")]


def test_log_ndtr_higher_derivatives_stay_finite_far_right():
    import diffprog as dp
    from diffprog.scipy import special as dsp
    for x in (37.7, 40.0, 78.0, 1e3):
        assert np.isfinite(float(dp.grad(dp.grad(dsp.log_ndtr))(x)))
        assert np.isfinite(float(dp.grad(dp.grad(dp.grad(dsp.log_ndtr)))(x)))


# -- incomplete gamma and beta functions -----------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_betainc_family_values_equal_scipy(dtype):
    grid = np.array([0.0, 1e-300, 0.3, 1.0, 2.5, 171.5, math.inf, math.nan, -0.5], dtype)
    xs = np.array([-0.1, 0.0, 1e-300, 0.2, 0.5, 0.999, 1.0, 1.5, math.nan], dtype)
    a, b, x = np.meshgrid(grid, grid, xs, indexing="ij")
    with np.errstate(all="ignore"):
        for name in ("betainc", "betaincc", "betaincinv", "betainccinv"):
            assert_like_scipy(getattr(ds, name)(a, b, x), getattr(sc, name)(a, b, x), dtype)
            assert_like_scipy(getattr(ds, name)(2.0, 3.0, 0.4), getattr(sc, name)(2.0, 3.0, 0.4))
            assert_like_scipy(getattr(ds, name)(a[:, :1, :1], 2.0, x[:1, :1]),
                              getattr(sc, name)(a[:, :1, :1], 2.0, x[:1, :1]), dtype)


def _lower_gamma_d(a, x, n):
    """d^n/da^n of gamma(a, x) = int_0^x log(t)^n t^(a-1) e^-t dt by quadrature (the t^(a-1)
    and log t singularities at 0 in QUADPACK's weights for n = 1)."""
    from scipy import integrate
    if n == 1:
        return integrate.quad(lambda t: np.exp(-t), 0, x, weight="alg-loga", wvar=(a - 1, 0),
                              epsabs=0, epsrel=1e-13, limit=200)[0]
    return integrate.quad(lambda t: np.log(t) ** n * t ** (a - 1) * np.exp(-t), 0, x,
                          epsabs=0, epsrel=1e-13, limit=500, points=[min(1.0, x / 2)])[0]


def _beta_da(a, b, x):
    """d/da I_x(a, b) from int_0^x log(t) t^(a-1) (1-t)^(b-1) dt by quadrature."""
    from scipy import integrate
    lb = integrate.quad(lambda t: (1 - t) ** (b - 1), 0, x, weight="alg-loga",
                        wvar=(a - 1, 0), epsabs=0, epsrel=1e-13, limit=200)[0]
    whole = sc.beta(a, b)
    return (lb - sc.betainc(a, b, x) * whole * (sc.digamma(a) - sc.digamma(a + b))) / whole


def test_incomplete_gamma_shape_derivatives_against_quadrature_and_closed_forms():
    # P = gamma(a, x) / Gamma(a): P_a = (gamma_a - psi gamma) / Gamma,
    # P_aa = (gamma_aa - 2 psi gamma_a + (psi**2 - psi') gamma) / Gamma
    for a, x in [(0.05, 0.01), (0.5, 0.3), (2.5, 1.0), (10.0, 12.0), (0.1, 5.0), (50.0, 45.0),
                 (1.0, 2.0), (3.0, 2.0)]:
        g0, g1 = sc.gammainc(a, x) * sc.gamma(a), _lower_gamma_d(a, x, 1)
        psi, gam = sc.digamma(a), sc.gamma(a)
        want = (g1 - psi * g0) / gam
        got = dp.grad(ds.gammainc)(a, x)
        np.testing.assert_allclose(got, want, rtol=1e-11)
        np.testing.assert_allclose(dp.grad(ds.gammaincc)(a, x), -want, rtol=1e-11)
        if a >= 1:  # the quadrature of log(t)**2 t**(a-1) needs no singular weight
            g2 = _lower_gamma_d(a, x, 2)
            want2 = (g2 - 2 * psi * g1 + (psi ** 2 - sc.polygamma(1, a)) * g0) / gam
            np.testing.assert_allclose(dp.grad(dp.grad(ds.gammainc))(a, x), want2, rtol=1e-10)
    # P(1, x) = 1 - exp(-x): d/da P(a, x) at a = 1 is -(log x + E1(x) e^x + euler) e^-x
    x = np.array([1e-3, 0.5, 1.0, 3.0, 20.0])
    want = -(np.log(x) * np.exp(-x) + sc.exp1(x) + np.euler_gamma * np.exp(-x))
    np.testing.assert_allclose(_grad(lambda a: ds.gammainc(a, x), np.ones(5)), want, rtol=1e-13)
    # where Q is tiny (a = 3, x = 30) P_a = -Q_a is computed as such, not as a difference
    q_a = dp.grad(ds._log_gammainc, argnums=0)(3.0, 30.0, True) * sc.gammaincc(3.0, 30.0)
    assert dp.grad(ds.gammainc)(3.0, 30.0) == pytest.approx(-q_a, rel=1e-12)
    # d/dx and edges: the density; 0 where P is constant (x = 0, inf); nan for a <= 0
    np.testing.assert_allclose(dp.grad(ds.gammainc, argnums=1)(2.5, 1.5),
                               1.5 ** 1.5 * np.exp(-1.5) / sc.gamma(2.5), rtol=1e-14)
    g = _grad(lambda a: ds.gammainc(a, np.array([0.0, np.inf, 1.0, 1.0])),
              np.array([2.0, 2.0, 0.0, -1.0]))
    assert g[0] == 0.0 and g[1] == 0.0 and np.isnan(g[2:]).all()


@pytest.mark.slow
def test_incomplete_beta_shape_derivatives_against_quadrature_and_closed_forms():
    for a, b, x in [(0.5, 0.5, 0.3), (2.0, 3.0, 0.4), (2.5, 0.7, 0.9), (0.1, 5.0, 0.05),
                    (30.0, 20.0, 0.6), (5.0, 0.5, 0.99), (0.7, 40.0, 0.001),
                    (200.0, 300.0, 0.41)]:
        ga, gb = dp.grad(ds.betainc, argnums=(0, 1))(a, b, x)
        np.testing.assert_allclose(ga, _beta_da(a, b, x), rtol=1e-10)
        # I_x(a, b) = 1 - I_{1-x}(b, a)
        np.testing.assert_allclose(gb, -_beta_da(b, a, 1 - x), rtol=1e-10)
        gca, gcb = dp.grad(ds.betaincc, argnums=(0, 1))(a, b, x)
        assert gca == -ga and gcb == -gb
    # I_x(a, 1) = x**a and I_x(1, b) = 1 - (1 - x)**b: every order in a (b) in closed form
    x = np.array([0.05, 0.3, 0.5, 0.8, 0.97])  # both sides of the switch to 1 - I_{1-x}(b, a)
    for a in (0.5, 2.0, 7.0):
        da = _grad(lambda a: ds.betainc(a, np.ones(5), x), np.full(5, a))
        np.testing.assert_allclose(da, x ** a * np.log(x), rtol=1e-12)
        daa = _grad(lambda a: _grad(lambda a: ds.betainc(a, np.ones(5), x), a), np.full(5, a))
        np.testing.assert_allclose(daa, x ** a * np.log(x) ** 2, rtol=1e-11)
        db = _grad(lambda b: ds.betainc(np.ones(5), b, x), np.full(5, a))
        np.testing.assert_allclose(db, -(1 - x) ** a * np.log1p(-x), rtol=1e-12)
        dbb = _grad(lambda b: _grad(lambda b: ds.betainc(np.ones(5), b, x), b), np.full(5, a))
        np.testing.assert_allclose(dbb, -(1 - x) ** a * np.log1p(-x) ** 2, rtol=1e-11)
    # d/dx is the beta density; derivatives in a, b are 0 at x = 0 and 1, nan for b <= 0
    np.testing.assert_allclose(dp.grad(ds.betainc, argnums=2)(2.0, 3.0, 0.25),
                               12 * 0.25 * 0.75 ** 2, rtol=1e-14)
    g = _grad(lambda a: ds.betainc(a, np.array([2.0, 2.0, -1.0]), np.array([0.0, 1.0, 0.5])),
              np.full(3, 1.5))
    assert g[0] == 0.0 and g[1] == 0.0 and np.isnan(g[2])


def test_inverses_by_the_implicit_function_theorem():
    a, y = 2.5, 0.3
    x = ds.gammaincinv(a, y)
    gy = dp.grad(ds.gammaincinv, argnums=1)(a, y)
    assert gy == pytest.approx(1 / dp.grad(ds.gammainc, argnums=1)(a, x), rel=1e-13)
    ga = dp.grad(ds.gammaincinv)(a, y)
    assert ga == pytest.approx(-dp.grad(ds.gammainc)(a, x) / (1 / gy), rel=1e-13)
    # round trips: P(a, P^-1(a, y)) = y has derivative 0 in a and 1 in y, to order 2
    for inv, fwd in ((ds.gammaincinv, ds.gammainc), (ds.gammainccinv, ds.gammaincc)):
        def f(a, y, inv=inv, fwd=fwd):
            return fwd(a, inv(a, y))
        assert abs(dp.grad(f)(a, y)) < 1e-13 and abs(dp.grad(dp.grad(f))(a, y)) < 1e-12
        assert dp.grad(f, argnums=1)(a, y) == pytest.approx(1.0, rel=1e-13)
    for inv, fwd in ((ds.betaincinv, ds.betainc), (ds.betainccinv, ds.betaincc)):
        def f(a, b, y, inv=inv, fwd=fwd):
            return fwd(a, b, inv(a, b, y))
        ga, gb, gy = dp.grad(f, argnums=(0, 1, 2))(2.0, 0.7, y)
        assert abs(ga) < 1e-13 and abs(gb) < 1e-13 and gy == pytest.approx(1.0, rel=1e-13)
        assert abs(dp.grad(dp.grad(f, argnums=1), argnums=0)(2.0, 0.7, y)) < 1e-11


def _log_p_series(a, x):
    """log P(a, x) and d/da of it for small x from the series, in Python floats."""
    term, total, dterm, dtotal = 1.0, 1.0, 0.0, 0.0
    k = 0
    while term > 1e-30 * total:
        k += 1
        dterm = dterm * x / (a + k) - term * x / (a + k) ** 2
        term *= x / (a + k)
        total, dtotal = total + term, dtotal + dterm
    logp = a * math.log(x) - x - math.lgamma(a + 1) + math.log(total)
    return logp, math.log(x) - sc.digamma(a + 1) + dtotal / total


def test_log_forms_in_the_tails():
    # where P, Q or I_x underflow (SciPy: log(0) = -inf), the logarithms and their
    # derivatives are finite and right
    for a, x in [(200.0, 1e-3), (30.0, 1e-12), (5.0, 1e-80)]:
        want, want_a = _log_p_series(a, x)
        assert sc.gammainc(a, x) == 0.0
        np.testing.assert_allclose(ds._log_gammainc(a, x), want, rtol=1e-14)
        np.testing.assert_allclose(dp.grad(ds._log_gammainc)(a, x), want_a, rtol=1e-12)
        # d/dx log P = a/x - 1 + d/dx log(1 + x/(a+1) + ...) = a/x - 1 + 1/(a+1) + O(x)
        np.testing.assert_allclose(dp.grad(ds._log_gammainc, argnums=1)(a, x),
                                   a / x - 1 + 1 / (a + 1), rtol=1e-12)
    # Q(1, x) = e^-x, Q(2, x) = (1 + x) e^-x
    x = 1000.0
    assert ds._log_gammainc(1.0, x, True) == pytest.approx(-x, rel=1e-15)
    assert ds._log_gammainc(2.0, x, True) == pytest.approx(-x + math.log1p(x), rel=1e-15)
    assert dp.grad(ds._log_gammainc, argnums=1)(2.0, x, True) == pytest.approx(
        -1.0 + 1.0 / (1.0 + x), rel=1e-13)
    # near 1: log P = log1p(-Q), not log(1 - Q)
    assert ds._log_gammainc(1.0, 40.0) == pytest.approx(-math.exp(-40.0), rel=1e-14)
    # I_x(a, 1) = x**a, 1 - I_x(1, b) = (1 - x)**b
    a, x = 3.0, 1e-200
    assert ds._log_betainc(a, 1.0, x) == pytest.approx(a * math.log(x), rel=1e-14)
    ga, gx = dp.grad(ds._log_betainc, argnums=(0, 2))(a, 1.0, x)
    assert ga == pytest.approx(math.log(x), rel=1e-12) and gx == pytest.approx(a / x, rel=1e-12)
    b, x = 500.0, 1.0 - 2.0 ** -30
    want = b * math.log1p(-x)
    assert ds._log_betainc(1.0, b, x, True) == pytest.approx(want, rel=1e-14)
    gb, gx = dp.grad(ds._log_betainc, argnums=(1, 2))(1.0, b, x, True)
    assert gb == pytest.approx(math.log1p(-x), rel=1e-12)
    assert gx == pytest.approx(-b / (1 - x), rel=1e-10)


@pytest.mark.slow
def test_incomplete_functions_under_jit_and_as_scipy_ufuncs():
    a, b, x = _x(0.6, 2.5, 4.0), _x(1.5, 0.7, 3.0), _x(0.3, 0.8, 0.55)

    def loss(a, b, x):
        return dnp.sum(ds.betainc(a, b, x) ** 2 + ds.gammainc(a, 4 * x) * ds.stdtr(b, x))

    def with_scipy(a, b, x):
        return np.sum(sc.betainc(a, b, x) ** 2 + sc.gammainc(a, 4 * x) * sc.stdtr(b, x))
    want = dp.grad(loss, argnums=(0, 1, 2))(a, b, x)
    for f in (dp.jit(dp.grad(loss, argnums=(0, 1, 2))), dp.grad(with_scipy, argnums=(0, 1, 2)),
              dp.jit(dp.grad(with_scipy, argnums=(0, 1, 2)))):
        for g, w in zip(f(a, b, x), want):
            np.testing.assert_allclose(g, w, rtol=1e-13)
    # a derivative in the shape parameters of second order, through SciPy's ufunc
    h = dp.hessian(lambda p: np.sum(sc.betainc(p[0], p[1], x)))(np.array([2.0, 3.0]))
    h2 = dp.hessian(lambda p: dnp.sum(ds.betainc(p[0], p[1], x)))(np.array([2.0, 3.0]))
    np.testing.assert_allclose(h, h2, rtol=1e-14)
    np.testing.assert_allclose(h, h.T, rtol=1e-10)  # mixed partials agree
    # vmap against a loop
    rows = np.stack([a, b, x])
    got = dp.vmap(lambda r: dp.grad(lambda a: ds.betainc(a, r[1], r[2]))(r[0]), in_axes=1)(rows)
    np.testing.assert_allclose(got, [dp.grad(ds.betainc)(*r) for r in rows.T], rtol=1e-14)


# -- distribution functions built on the incomplete gamma and beta functions ----------------------

_COUNTS = np.array([-1.0, -0.5, 0.0, 0.7, 2.0, 3.0, 5.0, 6.0, math.nan])
_MEANS = np.array([-1.0, 0.0, 1e-300, 0.5, 3.0, 40.0, math.inf, math.nan])
_PROBS = np.array([-0.1, 0.0, 1e-300, 0.25, 0.5, 0.999, 1.0, 1.5, math.nan])
_TRIALS = np.array([-1.0, 0.0, 1.0, 3.0, 5.0, 7.0])
_GAMMA = np.array([-1.0, 0.0, 0.5, 2.0, 30.0, math.inf, math.nan])
DIST = {"chdtr": 2, "chdtrc": 2, "pdtr": 2, "pdtrc": 2, "bdtr": 3, "bdtrc": 3, "nbdtr": 3,
        "nbdtrc": 3, "gdtr": 3, "gdtrc": 3}


def _dist_grid(name, dtype):
    axes = {"chdtr": (_COUNTS, _MEANS), "pdtr": (np.append(_COUNTS, math.inf), _MEANS),
            "bdtr": (_COUNTS[:-1], _TRIALS, _PROBS), "nbdtr": (_COUNTS[:-1], _TRIALS, _PROBS),
            "gdtr": (_GAMMA, _GAMMA, _MEANS)}[name.rstrip("c") if name != "chdtrc" else "chdtr"]
    return [g.astype(dtype) for g in np.meshgrid(*axes, indexing="ij")]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(DIST))
def test_distribution_functions_equal_scipy_eager_jit_and_as_ufuncs(name, dtype):
    args = _dist_grid(name, dtype)
    mine, theirs = getattr(ds, name), getattr(sc, name)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy warns when it truncates the counts
        want = theirs(*args)
        assert_like_scipy(mine(*args), want, dtype)  # untraced: SciPy's ufunc
        for got in (dp.jit(mine)(*args), dp.jit(lambda *a: theirs(*a))(*args)):
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=RTOL[np.dtype(dtype)], atol=0,
                                       equal_nan=True)
        # the value of a traced evaluation (the forward pass of jvp) is the composition's
        got = dp.jvp(lambda *a: mine(*a), tuple(args), tuple(np.zeros_like(a) for a in args))[0]
        np.testing.assert_allclose(got, want, rtol=RTOL[np.dtype(dtype)], atol=0,
                                   equal_nan=True)
    assert ds.ufunc_rule(theirs) is mine


# the continuous arguments (the counts k and n are fixed, as SciPy floors/truncates them)
DIST_GRADS = [
    ("chdtr", lambda v, x: ds.chdtr(v, x), (_x(0.7, 3.0, 9.5), _x(0.4, 2.5, 12.0))),
    ("chdtrc", lambda v, x: ds.chdtrc(v, x), (_x(0.7, 3.0, 9.5), _x(0.4, 2.5, 12.0))),
    ("pdtr", lambda m: ds.pdtr(_x(0.0, 2.0, 7.3), m), (_x(0.3, 2.5, 6.0),)),
    ("pdtrc", lambda m: ds.pdtrc(_x(0.0, 2.0, 7.3), m), (_x(0.3, 2.5, 6.0),)),
    ("bdtr", lambda p: ds.bdtr(_x(0.0, 2.0, 4.5), 6, p), (_x(0.1, 0.45, 0.8),)),
    ("bdtrc", lambda p: ds.bdtrc(_x(0.0, 2.0, 4.5), 6, p), (_x(0.1, 0.45, 0.8),)),
    ("nbdtr", lambda p: ds.nbdtr(_x(0.0, 2.0, 4.0), 3, p), (_x(0.1, 0.45, 0.8),)),
    ("nbdtrc", lambda p: ds.nbdtrc(_x(0.0, 2.0, 4.0), 3, p), (_x(0.1, 0.45, 0.8),)),
    ("gdtr", lambda a, b, x: ds.gdtr(a, b, x),
     (_x(0.5, 1.5, 3.0), _x(0.8, 2.0, 5.5), _x(0.7, 1.2, 2.0))),
    ("gdtrc", lambda a, b, x: ds.gdtrc(a, b, x),
     (_x(0.5, 1.5, 3.0), _x(0.8, 2.0, 5.5), _x(0.7, 1.2, 2.0))),
]


@pytest.mark.parametrize("name, fn, args", DIST_GRADS, ids=[c[0] for c in DIST_GRADS])
def test_distribution_functions_check_grads_order_2(name, fn, args):
    dp.check_grads(fn, args, order=2, modes=("fwd", "rev"))


def test_distribution_function_derivatives_equal_densities():
    k, m = _x(0.0, 1.0, 4.0), _x(0.5, 2.0, 7.0)
    # d/dm P(N <= k) = -pmf(k; m); d/dm P(N > k) = pmf(k; m)
    pmf = np.exp(k * np.log(m) - m - sc.gammaln(k + 1))
    np.testing.assert_allclose(dp.vmap(dp.grad(ds.pdtr, argnums=1))(k, m), -pmf, rtol=1e-13)
    np.testing.assert_allclose(dp.vmap(dp.grad(ds.pdtrc, argnums=1))(k, m), pmf, rtol=1e-13)
    # d/dp P(N <= k) for n trials = -n C(n-1, k) p^k (1-p)^(n-1-k)
    n, p = 6.0, _x(0.1, 0.45, 0.8)
    want = -n * sc.comb(n - 1, k) * p ** k * (1 - p) ** (n - 1 - k)
    np.testing.assert_allclose(dp.vmap(dp.grad(ds.bdtr, argnums=2), (0, None, 0))(k, n, p),
                               want, rtol=1e-12)
    np.testing.assert_allclose(dp.vmap(dp.grad(ds.bdtrc, argnums=2), (0, None, 0))(k, n, p),
                               -want, rtol=1e-12)
    # chi-square: d/dx is the chi-square density; gamma: d/dx is a times the gamma density
    v, x = _x(1.0, 3.0, 8.0), _x(0.5, 2.0, 9.0)
    dens = np.exp((v / 2 - 1) * np.log(x) - x / 2 - v / 2 * np.log(2) - sc.gammaln(v / 2))
    np.testing.assert_allclose(dp.vmap(dp.grad(ds.chdtr, argnums=1))(v, x), dens, rtol=1e-13)
    a, b = 2.5, _x(0.5, 2.0, 4.0)
    dens = a * np.exp((b - 1) * np.log(a * x) - a * x - sc.gammaln(b))
    np.testing.assert_allclose(dp.vmap(dp.grad(ds.gdtr, argnums=2), (None, 0, 0))(a, b, x),
                               dens, rtol=1e-13)


def test_distribution_function_derivatives_where_the_value_is_a_constant():
    # at k = n bdtr is 1 and bdtrc 0 for every p: derivative 0 (no nan from the unused branch)
    for f in (ds.bdtr, ds.bdtrc):
        assert float(dp.grad(f, argnums=2)(4.0, 4.0, 0.3)) == 0.0
    assert float(dp.grad(ds.bdtrc, argnums=2)(-1.0, 4.0, 0.3)) == 0.0
    # the counts have no derivative
    assert float(dp.grad(ds.pdtr)(2.5, 3.0)) == 0.0
    assert dp.grad(ds.nbdtr, argnums=(0, 1))(2.0, 3.0, 0.4) == (0.0, 0.0)


def test_scipy_distribution_ufuncs_on_traced_values_use_the_rules():
    p, m = _x(0.2, 0.6), _x(0.5, 3.0)

    def loss(p, m):
        return np.sum(sc.bdtr(2, 5, p) * sc.pdtrc(1, m) + sc.chdtr(3.0, m) * sc.gdtr(1.5, 2.0, p))

    def mine(p, m):
        return dnp.sum(ds.bdtr(2, 5, p) * ds.pdtrc(1, m) + ds.chdtr(3.0, m)
                       * ds.gdtr(1.5, 2.0, p))
    want = dp.grad(mine, argnums=(0, 1))(p, m)
    for f in (dp.grad(loss, argnums=(0, 1)), dp.jit(dp.grad(loss, argnums=(0, 1)))):
        for g, w in zip(f(p, m), want):
            np.testing.assert_allclose(g, w, rtol=1e-14)
    np.testing.assert_allclose(dp.hessian(loss)(p, m), dp.hessian(mine)(p, m), rtol=1e-13)
