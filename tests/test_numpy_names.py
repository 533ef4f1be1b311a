"""The NumPy names of diffprog/numpy/_names.py (issue 12 §7): NumPy's own constructors and
dtype objects, full with a traced fill value, the NumPy 2 aliases and scans, matvec/vecmat and
the NaN-aware reductions: values against NumPy, gradients (two orders, both modes), NumPy
dispatch on traced values, all-NaN slices and zero derivatives at NaN entries.
Values on every kind of operand are compared in test_conformance.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp

X = np.array([[0.3, np.nan, 1.2, -0.4], [0.9, 0.2, np.nan, 0.7], [np.nan] * 4])
CLEAN = np.array([[0.3, 0.5, 1.2, -0.4], [0.9, 0.2, 0.6, 0.7]])


def test_numpy_objects() -> None:
    """Constructors and dtype names are NumPy's objects, so results are NumPy's exactly."""
    for name in ["zeros", "ones", "empty", "arange", "eye", "identity", "tri", "indices",
                 "diag_indices", "tril_indices", "triu_indices", "int8", "int16", "int32",
                 "int64", "uint8", "uint16", "uint32", "uint64", "float16", "complex64",
                 "complex128", "bool_", "dtype", "finfo", "iinfo", "promote_types", "can_cast",
                 "isscalar"]:
        assert getattr(dnp, name) is getattr(np, name), name
    assert dnp.zeros((2, 3), dnp.int32).dtype == np.int32
    np.testing.assert_array_equal(dnp.tril_indices(3)[1], np.tril_indices(3)[1])
    assert dnp.finfo(dnp.float16).eps == np.finfo(np.float16).eps


def test_predicates_on_traced_values() -> None:
    def f(t: object) -> object:
        assert not dnp.isscalar(t * np.ones(2))
        assert dnp.isrealobj(t) and not dnp.iscomplexobj(t)
        assert dnp.iscomplexobj(t * (1 + 1j)) and np.iscomplexobj(t * (1 + 1j))
        assert np.isrealobj(t) and dnp.iscomplexobj([t, 1j]) and not dnp.iscomplexobj([t, 1])
        return t
    dp.jvp(f, (1.0,), (1.0,))
    dp.jit(f, compile="never")(1.0)


def test_aliases_are_the_old_functions() -> None:
    for new, old in [("acos", "arccos"), ("asin", "arcsin"), ("atan", "arctan"),
                     ("acosh", "arccosh"), ("asinh", "arcsinh"), ("atanh", "arctanh"),
                     ("atan2", "arctan2"), ("pow", "power")]:
        assert getattr(dnp, new) is getattr(dnp, old)
    x = np.array([0.2, 0.5])
    np.testing.assert_allclose(dp.grad(lambda v: np.acos(v).sum())(x), -1 / np.sqrt(1 - x * x))
    np.testing.assert_allclose(dp.grad(lambda v: np.pow(v, 3.0).sum())(x), 3 * x * x)


def test_full_traced_fill_value() -> None:
    np.testing.assert_allclose(dp.grad(lambda v: dnp.full((2, 3), v).sum())(1.5), 6.0)
    g = dp.grad(lambda v: (dnp.full((2, 3), v, dtype=np.float32) ** 2).sum())(np.array(
        [1.0, 2.0, 3.0]))
    np.testing.assert_allclose(g, 4 * np.array([1.0, 2.0, 3.0]))
    dp.check_grads(lambda v: dnp.full((2, 2), v) * v, (np.array([0.5, 2.0]),), order=2)
    out = dp.jit(lambda v: dnp.full(3, v), compile="never")(2.0)
    np.testing.assert_array_equal(out, np.full(3, 2.0))


def test_cumulative_and_products_gradients() -> None:
    x = CLEAN
    for f in [lambda v: dnp.cumulative_sum(v, axis=1, include_initial=True),
              lambda v: dnp.cumulative_prod(v, axis=0, include_initial=True),
              lambda v: dnp.matvec(v, v[0]), lambda v: dnp.vecmat(v[1], v.T)]:
        dp.check_grads(f, (x,), order=2, modes=("fwd", "rev"))
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(dp.grad(lambda t: np.cumulative_sum(t).sum())(v), [3, 2, 1])
    m = CLEAN[:, :2]
    np.testing.assert_allclose(dp.grad(lambda t: np.matvec(m, t).sum())(v[:2]), m.sum(0))
    np.testing.assert_allclose(dp.grad(lambda t: np.vecmat(t, m).sum())(v[:2]), m.sum(1))
    with pytest.raises(ValueError, match="axis"):
        dp.jvp(lambda t: dnp.cumulative_sum(t * CLEAN), (1.0,), (1.0,))


NAN_FUNCS = ["nanmax", "nanmin", "nanprod", "nancumsum", "nancumprod", "nanvar", "nanstd",
             "nansum", "nanmean", "nanmedian"]


@pytest.mark.parametrize("name", NAN_FUNCS)
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_nan_reductions_values(name: str, axis: object) -> None:
    """Against NumPy with NaN entries and an all-NaN row, eagerly, traced and under jit."""
    ours, ref = getattr(dnp, name), getattr(np, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ref(X, axis=axis)
        for got in [ours(X, axis=axis), dp.jvp(lambda t: ours(t * X, axis=axis), (1.0,),
                                               (1.0,))[0],
                    dp.jit(lambda t: ours(t * X, axis=axis), compile="never")(1.0),
                    dp.jvp(lambda t: ref(t * X, axis=axis), (1.0,), (1.0,))[0]]:
            assert np.asarray(got).dtype == np.asarray(expected).dtype
            np.testing.assert_allclose(got, expected, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", NAN_FUNCS)
def test_nan_reductions_gradients(name: str) -> None:
    """Zero derivative at NaN entries; both modes, two orders, on rows that are not all NaN."""
    f = getattr(dnp, name)
    x = X[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = dp.grad(lambda v: np.sum(f(v, axis=1) ** 2))(x)
    assert np.all(g[np.isnan(x)] == 0) and np.all(np.isfinite(g))
    assert np.any(g != 0)
    dp.check_grads(lambda v: f(v, axis=1), (x,), order=2, modes=("fwd", "rev"))


def test_nan_reductions_closed_forms() -> None:
    x = np.array([1.0, np.nan, 4.0, 2.0])
    np.testing.assert_allclose(dp.grad(dnp.nanmax)(x), [0, 0, 1, 0])
    np.testing.assert_allclose(dp.grad(dnp.nanprod)(x), [8, 0, 2, 4])
    m = np.nanmean(x)
    d = np.where(np.isnan(x), 0, x - m)
    np.testing.assert_allclose(dp.grad(lambda v: dnp.nanvar(v, ddof=1))(x), 2 * d / 2)
    np.testing.assert_allclose(dp.grad(lambda v: np.nanstd(v))(x),
                               d / 3 / np.nanstd(x))


def test_nan_var_ddof_and_keepdims() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kw in [{"axis": 1, "ddof": 1, "keepdims": True}, {"axis": 0, "ddof": 2},
                   {"axis": 1, "ddof": 3}, {"axis": 1, "correction": 1}]:
            for name in ["nanvar", "nanstd"]:
                want = getattr(np, name)(X, **kw)
                got = dp.jit(lambda t: getattr(dnp, name)(t * X, **kw), compile="never")(1.0)  # noqa: B023
                assert got.shape == want.shape
                np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


def test_nanarg() -> None:
    x = X[:2]
    for name in ["nanargmax", "nanargmin"]:
        ours, ref = getattr(dnp, name), getattr(np, name)
        for axis in [None, 0, 1]:
            got = dp.jit(lambda t: ours(t * x, axis=axis), compile="never")(1.0)  # noqa: B023
            np.testing.assert_array_equal(got, ref(x, axis=axis))
            np.testing.assert_array_equal(
                dp.jvp(lambda t: ref(t * x, axis=axis), (1.0,), (1.0,))[0], ref(x, axis=axis))  # noqa: B023
        with pytest.raises(ValueError, match="All-NaN"):
            dp.jvp(lambda t: ours(t * X, axis=1), (1.0,), (1.0,))  # noqa: B023


@pytest.mark.parametrize("q, kw", [(0.3, {}), ([0.1, 0.5, 1.0], {"axis": 1}),
                                   (np.array([0.0, 0.62]), {"axis": 0, "keepdims": True})])
def test_nanquantile(q: object, kw: dict) -> None:
    """Values (an all-NaN row gives NaN) eagerly, traced, under jit and by NumPy's dispatch;
    percentile at 100 q; gradients on the rows that are not all NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = np.nanquantile(X, q, **kw)
        for got in [dnp.nanquantile(X, q, **kw),
                    dp.jit(lambda t: dnp.nanquantile(t * X, q, **kw), compile="never")(1.0),
                    dp.jvp(lambda t: np.nanquantile(t * X, q, **kw), (1.0,), (1.0,))[0],
                    dp.jvp(lambda t: np.nanpercentile(t * X, np.multiply(q, 100), **kw),
                           (1.0,), (1.0,))[0]]:
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    x = X[:2]
    g = dp.grad(lambda v: np.sum(dnp.nanquantile(v, q, axis=1)))(x)
    assert np.all(g[np.isnan(x)] == 0) and np.any(g != 0)
    dp.check_grads(lambda v: dnp.nanquantile(v, q, axis=1), (x,), order=2, modes=("fwd", "rev"))
    # closed form: the 0.5-quantile of [1, 4, 2] is 2, of [0.3, 0.7] (count 2) halfway
    np.testing.assert_allclose(dp.grad(dnp.nanmedian)(np.array([1.0, np.nan, 4.0, 2.0])),
                               [0, 0, 0, 1])


def test_elementwise_group_gradients_and_dispatch() -> None:
    """heaviside (in x2, where x1 == 0), copysign, ldexp and modf: both modes, two orders,
    closed forms, and np.<name> on traced values."""
    x = np.array([-1.5, 0.0, 0.7, 2.25])
    s = np.array([1.0, -1.0, -2.0, 3.0])
    np.testing.assert_allclose(dp.grad(lambda v: np.heaviside(x, v).sum())(s), [0, 1, 0, 0])
    np.testing.assert_allclose(dp.grad(lambda v: np.copysign(v, s).sum())(x + 3),
                               np.sign(s))
    np.testing.assert_allclose(dp.grad(lambda v: np.ldexp(v, np.array([1, 2, 3, 0])).sum())(x),
                               [2, 4, 8, 1])
    frac, whole = dp.jvp(lambda v: np.modf(v), (x,), (np.ones(4),))[1]
    np.testing.assert_array_equal(frac, np.ones(4))
    np.testing.assert_array_equal(whole, np.zeros(4))
    for f in [lambda v: dnp.heaviside(x, v) * v, lambda v: dnp.copysign(v * v, s) * v,
              lambda v: dnp.ldexp(v * v, 3), lambda v: dnp.modf(v * 3.1 + 0.05)[0] * v]:
        dp.check_grads(f, (x + 0.01,), order=2, modes=("fwd", "rev"))
    t = dp.jit(lambda v: (np.isclose(v, x), np.allclose(v, x), np.array_equal(v, x),
                          np.isposinf(dnp.where(v > 0, np.inf, -v))), compile="never")(x)
    np.testing.assert_array_equal(t[0], np.ones(4, bool))
    assert bool(t[1]) and bool(t[2])
    np.testing.assert_array_equal(t[3], x > 0)


def test_array_and_polynomial_gradients() -> None:
    """vander (exact at a zero), polynomials, cov/corrcoef, ediff1d, resize, diagflat: both
    modes, two orders; closed forms; np.<name> on traced values."""
    x = np.array([0.0, 0.5, -1.2])
    # d/dx of sum of vander(x, 3) rows [x^2, x, 1] is 2x + 1
    np.testing.assert_allclose(dp.grad(lambda v: np.vander(v, 3).sum())(x), 2 * x + 1)
    p = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(dp.grad(lambda v: np.polyder(v).sum())(p), [2, 1, 0])
    np.testing.assert_allclose(dp.grad(lambda v: np.polyint(v).sum())(p), [1 / 3, 1 / 2, 1])
    np.testing.assert_allclose(dp.grad(lambda v: np.polymul(v, [1.0, 1.0]).sum())(p), [2, 2, 2])
    m = np.array([[0.3, 0.9, 0.1, 0.5], [0.2, 0.4, 0.8, 0.6]])
    d = m - m.mean(axis=1, keepdims=True)
    # d/dm of trace(cov(m)) = 2 d / (n - 1)
    np.testing.assert_allclose(dp.grad(lambda v: np.trace(np.cov(v)))(m), 2 * d / 3)
    for f in [lambda v: dnp.vander(v, 4), lambda v: dnp.polyadd(v, v[:2] * v[1:]),
              lambda v: dnp.polysub(dnp.polymul(v, v), v), lambda v: dnp.polyint(v, 2, k=v[:2]),
              lambda v: dnp.ediff1d(v * v, to_begin=v[0]), lambda v: dnp.resize(v, (2, 2)) * v[0],
              lambda v: dnp.diagflat(v * v, 1)]:
        dp.check_grads(f, (x + 0.1,), order=2, modes=("fwd", "rev"))
    for f in [dnp.cov, dnp.corrcoef, lambda v: dnp.cov(v, rowvar=False, bias=True)]:
        dp.check_grads(f, (m,), order=2, modes=("fwd", "rev"))
    np.testing.assert_allclose(dp.jit(lambda v: np.corrcoef(v), compile="never")(m),
                               np.corrcoef(m), rtol=1e-12)


def test_put_along_axis() -> None:
    """A new array (NumPy writes in place): values as NumPy's, derivative zero at the
    overwritten entries of arr and one for the values put."""
    a = np.arange(6.0).reshape(2, 3)
    ind = np.array([[2], [0]])
    want = a.copy()
    np.put_along_axis(want, ind, np.array([[10.0], [20.0]]), axis=1)
    got = dp.jit(lambda v, w: dnp.put_along_axis(v, ind, w, axis=1), compile="never")(
        a, np.array([[10.0], [20.0]]))
    np.testing.assert_array_equal(got, want)
    ga, gv = dp.grad(lambda v, w: (dnp.put_along_axis(v, ind, w, axis=1) * a).sum(), (0, 1))(
        a, np.ones((2, 1)))
    np.testing.assert_array_equal(ga, np.array([[1, 1, 0], [0, 1, 1]]) * a)
    np.testing.assert_array_equal(gv, [[2.0], [3.0]])
    flat = want.copy()
    np.put_along_axis(flat, np.array([4]), 7.0, axis=None)
    np.testing.assert_array_equal(dnp.put_along_axis(want, np.array([4]), 7.0, None), flat)


def test_selection_and_counting_gradients() -> None:
    """bincount and histogram in weights, choose/compress/extract/piecewise in the values,
    unwrap (identity derivative): closed forms, both modes, two orders, np dispatch."""
    w = np.array([0.5, 1.5, 2.0, -1.0])
    x = np.array([0, 2, 2, 3])
    np.testing.assert_array_equal(dp.grad(lambda v: np.bincount(x, v)[2])(w), [0, 1, 1, 0])
    a = np.array([0.1, 0.4, 0.45, 0.9])
    h = dp.grad(lambda v: np.histogram(a, 2, weights=v)[0][1])(w)
    np.testing.assert_array_equal(h, [0, 0, 0, 1])  # edges 0.1, 0.5, 0.9
    c = np.array([True, False, True, True])
    for f in [lambda v: dnp.bincount(x, v * v), lambda v: dnp.histogram(a, 3, weights=v * v)[0],
              lambda v: dnp.choose(np.array([1, 0, 1, 0]), [v, v * v]),
              lambda v: dnp.compress(c, v * v), lambda v: dnp.extract(c, v * v),
              lambda v: dnp.piecewise(v, [v > 0], [lambda u: u * u, lambda u: -u]),
              lambda v: dnp.unwrap(v * 4.0) * v]:
        dp.check_grads(f, (w,), order=2, modes=("fwd", "rev"))
    p = np.array([0.0, 3.0, 6.5, 0.2])
    np.testing.assert_allclose(dp.jvp(lambda v: np.unwrap(v), (p,), (np.ones(4),))[1],
                               np.ones(4))
    np.testing.assert_array_equal(
        dp.jit(lambda v: np.digitize(v, [0.0, 1.0]), compile="never")(w), np.digitize(w, [0, 1]))
    np.testing.assert_array_equal(dp.jit(lambda v: np.isin(v, w[:2]), compile="never")(w),
                                  [True, True, False, False])
    with pytest.raises(TypeError, match="concrete"):
        dp.jit(lambda v: dnp.bincount(v.astype(int), v), compile="never")(w)


def test_i0() -> None:
    """Values as NumPy's on both expansions; the derivative is i1 (scipy), both modes."""
    import scipy.special
    x = np.array([-9.5, -0.3, 0.0, 2.0, 7.9, 8.1, 20.0])
    np.testing.assert_allclose(dp.jit(lambda v: np.i0(v), compile="never")(x), np.i0(x),
                               rtol=1e-14)
    np.testing.assert_allclose(dp.grad(lambda v: np.i0(v).sum())(x), scipy.special.i1(x),
                               rtol=1e-9, atol=1e-15)
    dp.check_grads(dnp.i0, (x,), order=2, modes=("fwd", "rev"))
    # the second and fourth derivatives at 0 are 1/2 and 3/8 (|x|'s kink gave 0)
    d = dnp.i0
    for order in range(1, 5):
        d = dp.grad(d)
        if order == 2:
            assert d(0.0) == 0.5
    assert d(0.0) == 0.375
