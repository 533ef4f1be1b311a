"""Reductions, scans, sorting and order statistics of diffprog.numpy: a table checked with
check_grads (both modes, order 2) over shapes, axes, keepdims and dtypes, values against NumPy,
and the edge points (zeros in products, ties, NaN, constant inputs) against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp

RNG = np.random.default_rng(1)
DTYPES = [np.float64, np.float32]


def real(shape, dtype):
    return RNG.standard_normal(shape).astype(dtype)


def near_one(shape, dtype):
    # Products of up to 24 entries stay of order 1; the signs vary.
    v = RNG.uniform(0.7, 1.3, shape) * RNG.choice([-1.0, 1.0], shape)
    return np.asarray(v).astype(dtype)


def distinct(shape, dtype):
    # Well-separated values: no ties within a finite-difference step (max, sort, median).
    n = int(np.prod(shape))
    v = (RNG.permutation(n) * 0.37 - 0.2 * n + RNG.uniform(-0.05, 0.05, n)).reshape(shape)
    return np.asarray(v).astype(dtype)


def tol_for(dtype):
    return {} if dtype == np.float64 else {"atol": 3e-3, "rtol": 3e-3}


def _weights(x, axis):
    if isinstance(axis, int):
        return np.arange(1.0, x.shape[axis] + 1.0)
    return np.linspace(0.5, 1.5, x.size).reshape(x.shape)


# name, function f(x, axis, keepdims), domain, smallest reduced count it needs
REDUCTIONS = [
    ("sum", lambda x, a, k: dnp.sum(x, axis=a, keepdims=k), real, 0),
    ("mean", lambda x, a, k: dnp.mean(x, axis=a, keepdims=k), real, 1),
    ("prod", lambda x, a, k: dnp.prod(x, axis=a, keepdims=k), near_one, 0),
    ("max", lambda x, a, k: dnp.max(x, axis=a, keepdims=k), distinct, 1),
    ("min", lambda x, a, k: dnp.min(x, axis=a, keepdims=k), distinct, 1),
    ("amax", lambda x, a, k: np.amax(x, axis=a, keepdims=k), distinct, 1),
    ("amin", lambda x, a, k: np.amin(x, axis=a, keepdims=k), distinct, 1),
    ("ptp", lambda x, a, k: dnp.ptp(x, axis=a, keepdims=k), distinct, 1),
    ("var", lambda x, a, k: dnp.var(x, axis=a, keepdims=k), real, 1),
    ("var_ddof1", lambda x, a, k: dnp.var(x, axis=a, ddof=1, keepdims=k), real, 2),
    # std has a kink where the entries are equal: distinct keeps the step away from it
    ("std", lambda x, a, k: dnp.std(x, axis=a, keepdims=k), distinct, 2),
    ("std_ddof1", lambda x, a, k: dnp.std(x, axis=a, ddof=1, keepdims=k), distinct, 2),
    ("logsumexp", lambda x, a, k: dnp.logsumexp(x, axis=a, keepdims=k), real, 1),
    ("logsumexp_b", lambda x, a, k: dnp.logsumexp(x, axis=a, keepdims=k,
                                                  b=np.linspace(0.5, 2.0, x.size)
                                                  .reshape(x.shape)), real, 1),
    ("nansum", lambda x, a, k: dnp.nansum(x, axis=a, keepdims=k), real, 0),
    ("nanmean", lambda x, a, k: dnp.nanmean(x, axis=a, keepdims=k), real, 1),
    ("average", lambda x, a, k: dnp.average(x, axis=a, weights=_weights(x, a), keepdims=k),
     real, 1),
    ("median", lambda x, a, k: dnp.median(x, axis=a, keepdims=k), distinct, 1),
    ("quantile", lambda x, a, k: dnp.quantile(x, np.array([0.3, 0.85]), axis=a, keepdims=k),
     distinct, 1),
    ("percentile", lambda x, a, k: dnp.percentile(x, 40.0, axis=a, keepdims=k), distinct, 1),
]
# shape, axis
SHAPE_AXES = [((), None), ((4,), None), ((4,), 0), ((4,), -1)] + [
    (s, a) for s in [(2, 3), (2, 3, 4)] for a in [None, 0, -1, (0, 1)]]


def _count(shape, axis):
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[i] for i in axes]))


# only the (reduction, shape, axis) cases with enough entries along the axis (std with ddof=1
# of one entry is undefined): they are not generated rather than skipped
REDUCTION_CASES = [pytest.param(name, fn, domain, shape, axis, id=f"{name}-{shape}-{axis}")
                   for name, fn, domain, min_count in REDUCTIONS
                   for shape, axis in SHAPE_AXES if _count(shape, axis) >= min_count]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name,fn,domain,shape,axis", REDUCTION_CASES)
def test_reduction(name, fn, domain, shape, axis, keepdims, dtype):
    x = domain(shape, dtype)
    f = lambda x: fn(x, axis, keepdims)
    dp.check_grads(f, (x,), order=2, **tol_for(dtype))
    # The traced computation gives NumPy's value, dtype and shape.
    want = f(x)
    got, _ = dp.jvp(f, (x,), (np.ones_like(x),))
    assert got.shape == np.shape(want) and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)


SCANS = [
    ("cumsum", lambda x, a: dnp.cumsum(x, axis=a), real),
    ("cumprod", lambda x, a: dnp.cumprod(x, axis=a), near_one),
    ("sort", lambda x, a: dnp.sort(x, axis=a), distinct),
    ("sort_stable", lambda x, a: np.sort(x, axis=a, stable=True), distinct),
]
SCAN_AXES = [((), None), ((4,), None), ((4,), 0), ((4,), -1)] + [
    (s, a) for s in [(2, 3), (2, 3, 4)] for a in [None, 0, 1, -1]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", SCAN_AXES, ids=str)
@pytest.mark.parametrize("name,fn,domain", SCANS, ids=[s[0] for s in SCANS])
def test_scan(name, fn, domain, shape, axis, dtype):
    x = domain(shape, dtype)
    f = lambda x: fn(x, axis)
    dp.check_grads(f, (x,), order=2, **tol_for(dtype))
    want = f(x)
    got, _ = dp.jvp(f, (x,), (np.ones_like(x),))
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)


# -- empty arrays ------------------------------------------------------------------------------

EMPTY_OK = ["sum", "prod", "nansum"]  # reductions NumPy allows over an empty axis


@pytest.mark.parametrize("name,fn,domain,min_count", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction_of_empty_array(name, fn, domain, min_count):
    x = np.zeros((0, 3))
    # over a non-empty axis: an empty result
    f = lambda x: fn(x, 1, False)
    assert dp.grad(lambda x: dnp.sum(f(x)))(x).shape == (0, 3)
    dp.check_grads(f, (x,), order=2)
    if name in EMPTY_OK:
        # over the empty axis: the identity (0 for sums, 1 for products), gradient empty
        g = lambda x: fn(x, 0, False)
        np.testing.assert_array_equal(g(x), np.full(3, 1.0 if name == "prod" else 0.0))
        out, vjp_fn = dp.vjp(g, x)
        np.testing.assert_array_equal(out, g(x))
        assert vjp_fn(np.ones(3))[0].shape == (0, 3)
        dp.check_grads(g, (x,), order=2)


@pytest.mark.parametrize("name,fn,domain", SCANS, ids=[s[0] for s in SCANS])
def test_scan_of_empty_array(name, fn, domain):
    for axis in (0, 1, None):
        x = np.zeros((0, 3))
        f = lambda x, axis=axis: fn(x, axis)
        dp.check_grads(f, (x,), order=2)
        assert dp.vjp(f, x)[0].shape == np.shape(f(x))


# -- edge points: closed forms -----------------------------------------------------------------

def hessian(f, x):
    """Rows by reverse over reverse and columns by forward over reverse."""
    n = x.size
    rows = np.stack([dp.grad(lambda y, i=i: dp.grad(f)(y)[i])(x) for i in range(n)])
    cols = np.stack([dp.jvp(dp.grad(f), (x,), (np.eye(n)[i],))[1] for i in range(n)], axis=1)
    np.testing.assert_allclose(rows, cols, rtol=1e-12, atol=1e-12)
    return rows


def prod_gradient(x):
    return np.array([np.prod(np.delete(x, i)) for i in range(x.size)])


def prod_hessian(x):
    n = x.size
    return np.array([[0.0 if i == j else np.prod(np.delete(x, [i, j])) for j in range(n)]
                     for i in range(n)])


@pytest.mark.parametrize("x", [[0.0, 2.0, 3.0, 4.0], [2.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 5.0],
                               [1.5, -2.0, 3.0, 0.5]], ids=str)
def test_prod_with_zeros_matches_closed_forms(x):
    x = np.array(x)
    np.testing.assert_allclose(dp.grad(dnp.prod)(x), prod_gradient(x), rtol=1e-14)
    _, t = dp.jvp(dnp.prod, (x,), (np.ones(4),))
    np.testing.assert_allclose(t, prod_gradient(x).sum(), rtol=1e-14)
    np.testing.assert_allclose(hessian(dnp.prod, x), prod_hessian(x), rtol=1e-14)
    dp.check_grads(dnp.prod, (x,), order=2)


def test_prod_with_zeros_along_an_axis():
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.0, 2.0, 3.0]])
    g = dp.grad(lambda x: dnp.sum(dnp.prod(x, axis=1) * np.array([1.0, 2.0, 3.0])))(x)
    want = np.stack([prod_gradient(r) * w for r, w in zip(x, [1.0, 2.0, 3.0])])
    np.testing.assert_allclose(g, want, rtol=1e-14)
    # several axes at once, one zero among them
    y = np.array([[[1.5, 0.0], [2.0, -1.0]], [[0.5, 2.0], [1.0, 3.0]]])
    g = dp.grad(lambda y: dnp.sum(dnp.prod(y, axis=(0, 2)) ** 2))(y)
    p = np.prod(y, axis=(0, 2))
    for j in range(2):
        flat = y[:, j, :].ravel()
        np.testing.assert_allclose(g[:, j, :].ravel(), 2 * p[j] * prod_gradient(flat),
                                   rtol=1e-14)
    dp.check_grads(lambda y: dnp.prod(y, axis=(0, 2)), (y,), order=2)
    dp.check_grads(lambda x: dnp.prod(x, axis=0, keepdims=True), (x,), order=2)


def cumprod_jacobian(x):
    n = x.size
    return np.array([[np.prod(np.delete(x[:i + 1], k)) if k <= i else 0.0 for k in range(n)]
                     for i in range(n)])


@pytest.mark.parametrize("x", [[2.0, 0.0, 5.0, 3.0], [0.0, 0.0, 2.0, 1.5], [1.5, 2.0, -1.0, 0.0]],
                         ids=str)
def test_cumprod_with_zeros_matches_closed_forms(x):
    x = np.array(x)
    jac = cumprod_jacobian(x)
    rows = np.stack([dp.grad(lambda y, i=i: dnp.cumprod(y)[i])(x) for i in range(4)])
    cols = np.stack([dp.jvp(dnp.cumprod, (x,), (e,))[1] for e in np.eye(4)], axis=1)
    np.testing.assert_allclose(rows, jac, rtol=1e-14)
    np.testing.assert_allclose(cols, jac, rtol=1e-14)
    # the last entry is the product: its Hessian is prod's
    np.testing.assert_allclose(hessian(lambda y: dnp.cumprod(y)[-1], x), prod_hessian(x),
                               rtol=1e-14)
    dp.check_grads(dnp.cumprod, (x,), order=2)
    dp.check_grads(lambda y: np.cumprod(y[::-1]) * y, (x,), order=2)


def test_cumsum_closed_form():
    g = dp.grad(lambda x: dnp.sum(dnp.cumsum(x, axis=1) * np.array([1.0, 10.0, 100.0])))(
        np.ones((2, 3)))
    np.testing.assert_array_equal(g, [[111.0, 110.0, 100.0]] * 2)


def test_max_ties_share_the_gradient_evenly():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(dp.grad(lambda x: dnp.max(x))(x), [[0, 0.5, 0.5], [0, 0, 0]])
    g = dp.grad(lambda x: dnp.sum(np.max(x, axis=1, keepdims=True)))(x)
    np.testing.assert_allclose(g, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    g = dp.grad(lambda x: dnp.sum(dnp.min(x, axis=0)))(x)
    np.testing.assert_allclose(g, [[1, 0, 0], [0, 1, 1]])
    _, t = dp.jvp(lambda x: dnp.max(x, axis=1), (x,), (np.arange(6.0).reshape(2, 3),))
    np.testing.assert_allclose(t, [1.5, 4.0])
    np.testing.assert_allclose(dp.grad(lambda x: dnp.ptp(x))(np.array([1.0, 3.0, 1.0])),
                               [-0.5, 1.0, -0.5])


# The all-NaN column has a NaN mean, with NumPy's warnings.
@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value encountered")
def test_nan_entries_get_zero_derivative():
    x = np.array([[1.0, np.nan, 2.0], [np.nan, np.nan, 4.0]])
    w = np.arange(1.0, 7.0).reshape(2, 3)
    np.testing.assert_array_equal(dp.grad(lambda x: dnp.nansum(x * w))(x),
                                  [[1.0, 0.0, 3.0], [0.0, 0.0, 6.0]])
    np.testing.assert_allclose(dp.grad(lambda x: dnp.nanmean(x))(x),
                               [[1 / 3, 0.0, 1 / 3], [0.0, 0.0, 1 / 3]])
    g = dp.grad(lambda x: dnp.sum(dnp.nanmean(x, axis=1) * np.array([1.0, 3.0])))(x)
    np.testing.assert_allclose(g, [[0.5, 0.0, 0.5], [0.0, 0.0, 3.0]])
    value, t = dp.jvp(lambda x: dnp.nanmean(x, axis=0), (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(np.isnan(value), np.isnan(np.nanmean(x, axis=0)))
    np.testing.assert_array_equal(t[[0, 2]], [1.0, 1.0])
    dp.check_grads(lambda x: dnp.nansum(x, axis=1) ** 2, (x,), order=2)
    dp.check_grads(lambda x: dnp.nanmean(x, axis=1, keepdims=True) ** 2, (x,), order=2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_std_of_a_constant_has_zero_derivative(dtype):
    x = np.full((2, 3), 1.5, dtype=dtype)
    assert dnp.std(x) == 0
    g = dp.grad(lambda x: dnp.std(x))(x)
    assert g.dtype == dtype
    np.testing.assert_array_equal(g, np.zeros((2, 3)))
    np.testing.assert_array_equal(dp.grad(lambda x: dnp.sum(x.std(axis=1, ddof=1)))(x), 0.0)
    h = dp.grad(lambda x: dnp.sum(dp.grad(lambda y: dnp.std(y))(x) ** 2 + x))(x)
    np.testing.assert_array_equal(h, np.ones((2, 3)))
    _, t = dp.jvp(lambda x: dnp.std(x, axis=0), (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(t, np.zeros(3))
    # only the constant slice is special: the other keeps its derivative
    y = np.array([[1.5, 1.5, 1.5], [1.0, 2.0, 4.0]])
    g = dp.grad(lambda y: dnp.sum(dnp.std(y, axis=1)))(y)
    d = y[1] - y[1].mean()
    np.testing.assert_allclose(g, [np.zeros(3), d / (3 * np.std(y[1]))])
    # NaN is not zero: it stays NaN
    assert np.isnan(dp.jvp(dnp.std, (np.array([1.0, np.nan]),), (np.ones(2),))[0])


def test_sort_gradient_goes_back_to_original_positions():
    x = np.array([[3.0, 1.0, 2.0], [0.5, 0.7, 0.1]])
    w = np.array([1.0, 10.0, 100.0])
    g = dp.grad(lambda x: dnp.sum(dnp.sort(x, axis=1) * w))(x)
    np.testing.assert_array_equal(g, [[100.0, 1.0, 10.0], [10.0, 100.0, 1.0]])
    g = dp.grad(lambda x: dnp.sum(np.sort(x, axis=None) * np.arange(6.0)))(x)
    np.testing.assert_array_equal(g, [[5.0, 3.0, 4.0], [1.0, 2.0, 0.0]])
    _, t = dp.jvp(lambda x: dnp.sort(x, axis=0), (x,), (np.arange(6.0).reshape(2, 3),))
    np.testing.assert_array_equal(t, [[3.0, 4.0, 5.0], [0.0, 1.0, 2.0]])


def test_median_and_quantile_closed_forms():
    x = np.array([1.0, 5.0, 4.0, 0.0])
    np.testing.assert_allclose(dp.grad(dnp.median)(x), [0.5, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(dp.grad(dnp.median)(x[:3]), [0.0, 0.0, 1.0])
    # quantile 0.3 of 4 values: position 0.9 between the sorted values 0 and 1
    np.testing.assert_allclose(dp.grad(lambda x: dnp.quantile(x, 0.3))(x), [0.9, 0, 0, 0.1])
    # with respect to q: (n - 1) times the gap between the neighbours
    np.testing.assert_allclose(dp.grad(lambda q: dnp.quantile(x, q))(0.3), 3.0 * (1.0 - 0.0))
    np.testing.assert_allclose(dp.grad(lambda q: dnp.percentile(x, q))(50.0), 0.03 * (4 - 1))
    dp.check_grads(lambda q: dnp.quantile(x, q), (np.array([0.2, 0.9]),), order=2)
    np.testing.assert_allclose(dnp.quantile(x, np.array([0.25, 1.0])),
                               np.quantile(x, [0.25, 1.0]))
    got, _ = dp.jvp(lambda q: dnp.quantile(x, q), (np.array([0.25, 1.0]),), (np.ones(2),))
    np.testing.assert_allclose(got, np.quantile(x, [0.25, 1.0]), rtol=1e-15)


def test_logsumexp_weights():
    x = np.array([[0.5, 1.0, -1.0], [2.0, 0.1, 0.3]])
    b = np.array([1.0, 0.0, 2.0])
    want = np.log(np.sum(b * np.exp(x), axis=1))
    np.testing.assert_allclose(dnp.logsumexp(x, axis=1, b=b), want, rtol=1e-14)
    got, _ = dp.jvp(lambda x: dnp.logsumexp(x, axis=1, b=b), (x,), (np.ones_like(x),))
    np.testing.assert_allclose(got, want, rtol=1e-14)
    # an entry with b = 0 drops out and gets no derivative
    g = dp.grad(lambda x: dnp.sum(dnp.logsumexp(x, axis=1, b=b)))(x)
    np.testing.assert_allclose(g[:, 1], 0.0)
    dp.check_grads(lambda x: dnp.logsumexp(x, axis=1, b=b), (x,), order=2)
    dp.check_grads(lambda x, b: dnp.logsumexp(x, b=b, keepdims=True), (x, b + 0.5), order=2)
    assert dnp.logsumexp(np.zeros((0, 2)), axis=0).tolist() == [-np.inf, -np.inf]


def test_average_weights_and_returned():
    x = RNG.standard_normal((2, 3))
    w = np.array([1.0, 2.0, 3.0])
    f = lambda x, w: dnp.average(x, axis=1, weights=w, returned=True)
    want = np.average(x, axis=1, weights=w, returned=True)
    got, _ = dp.jvp(f, (x, w), (np.ones_like(x), np.ones_like(w)))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-14)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-14)
    dp.check_grads(f, (x, w), order=2)
    dp.check_grads(lambda x: dnp.average(x, axis=(0, 1), returned=True), (x,), order=2)
    with pytest.raises(TypeError, match="Axis must be specified"):
        dp.grad(lambda x: dnp.average(x, weights=w))(x)
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
        dp.grad(lambda w: dnp.average(x[0], weights=w))(np.array([1.0, -1.0, 0.0]))


def test_sum_prod_max_min_where_and_initial():
    x = RNG.standard_normal((2, 3))
    mask = np.array([True, False, True])
    cases = [
        (lambda x: dnp.sum(x, axis=1, where=mask, initial=0.5),
         lambda x: np.sum(x, axis=1, where=mask, initial=0.5)),
        (lambda x: dnp.prod(x, axis=0, where=mask, initial=2.0),
         lambda x: np.prod(x, axis=0, where=mask, initial=2.0)),
        (lambda x: dnp.max(x, axis=1, where=mask, initial=-5.0),
         lambda x: np.max(x, axis=1, where=mask, initial=-5.0)),
        (lambda x: dnp.min(x, where=mask, initial=5.0),
         lambda x: np.min(x, where=mask, initial=5.0)),
        (lambda x: dnp.mean(x, axis=1, where=mask), lambda x: np.mean(x, axis=1, where=mask)),
    ]
    for f, ref in cases:
        got, _ = dp.jvp(f, (x,), (np.ones_like(x),))
        np.testing.assert_allclose(got, ref(x), rtol=1e-14)
        dp.check_grads(f, (x,), order=2)
    g = dp.grad(lambda x: dnp.sum(dnp.sum(x, axis=1, where=mask)))(x)
    np.testing.assert_array_equal(g, [[1.0, 0.0, 1.0]] * 2)
    with pytest.raises(ValueError, match="initial"):
        dp.grad(lambda x: dnp.max(x, where=mask))(x)


def test_float32_results_stay_float32():
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    for f in [lambda x: dnp.var(x, axis=0), lambda x: dnp.std(x), lambda x: dnp.prod(x, axis=1),
              lambda x: dnp.cumprod(x), lambda x: dnp.median(x, axis=1),
              lambda x: dnp.quantile(x, 0.3), lambda x: dnp.nanmean(x, axis=0),
              lambda x: dnp.mean(x, where=np.array([True, False, True]))]:
        out, vjp_fn = dp.vjp(f, x)
        assert out.dtype == np.float32 == np.asarray(f(x)).dtype
        assert vjp_fn(np.ones_like(out))[0].dtype == np.float32


# -- functions without a derivative ------------------------------------------------------------

NONDIFF = [
    ("argmax", lambda x: np.argmax(x)), ("argmax_axis", lambda x: dnp.argmax(x, axis=-1)),
    ("argmax_keepdims", lambda x: np.argmax(x, axis=0, keepdims=True)),
    ("argmin", lambda x: dnp.argmin(x)), ("argmin_axis", lambda x: np.argmin(x, axis=1)),
    ("argmin_keepdims", lambda x: dnp.argmin(x, axis=None, keepdims=True)),
    ("argsort", lambda x: np.argsort(x)), ("argsort_axis0", lambda x: dnp.argsort(x, axis=0)),
    ("argsort_none", lambda x: np.argsort(x, axis=None, kind="stable")),
    ("searchsorted", lambda x: np.searchsorted(np.sort(x[0]), x[1])),
    ("searchsorted_right", lambda x: dnp.searchsorted(np.array([-1.0, 0.0, 1.0]), x,
                                                      side="right")),
    ("searchsorted_sorter", lambda x: np.searchsorted(x[0], 0.1, sorter=np.argsort(x[0]))),
    ("count_nonzero", lambda x: np.count_nonzero(x > 0)),
    ("count_nonzero_axis", lambda x: dnp.count_nonzero(x - x[0], axis=0, keepdims=True)),
    ("all", lambda x: np.all(x > -3.0)), ("all_axis", lambda x: dnp.all(x, axis=1)),
    ("any", lambda x: dnp.any(x > 1.0, axis=0)), ("any_method", lambda x: (x > 0.5).any()),
    ("methods", lambda x: (x.argmax(), x.argmin(axis=0), x.argsort(axis=0), x.all(),
                           x.any(keepdims=True))),
]


@pytest.mark.parametrize("name,fn", NONDIFF, ids=[n[0] for n in NONDIFF])
def test_nondifferentiable_give_numpy_values_under_transforms(name, fn):
    x = distinct((2, 3), np.float64) * 0.5
    want = fn(x)
    seen = []

    def f(x):
        seen.append(fn(x))
        return dnp.sum(dnp.sin(x))

    np.testing.assert_allclose(dp.grad(f)(x), np.cos(x))
    dp.jvp(f, (x,), (np.ones_like(x),))
    dp.grad(lambda x: dnp.sum(dp.grad(f)(x)))(x)  # also under a nested transform
    assert len(seen) == 3
    for got in seen:
        for g, w in zip(got if isinstance(want, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            assert not isinstance(g, dp.Tracer)
            np.testing.assert_array_equal(g, w)
            assert np.asarray(g).dtype == np.asarray(w).dtype
            assert np.shape(g) == np.shape(w)


def test_index_results_select_entries_under_grad():
    x = np.array([[0.3, 2.0, -1.0], [4.0, 0.1, 0.2]])
    g = dp.grad(lambda x: dnp.sum(x[np.arange(2), np.argmax(x, axis=1)]))(x)
    np.testing.assert_array_equal(g, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    g = dp.grad(lambda x: x.ravel()[x.argmin()] * 2.0)(x)
    np.testing.assert_array_equal(g, [[0.0, 0.0, 2.0], [0.0, 0.0, 0.0]])


# -- NumPy's own functions and methods on traced values ----------------------------------------

SAME_AS_DNP = [
    (lambda x: np.prod(x, axis=0), lambda x: dnp.prod(x, axis=0)),
    (lambda x: x.prod(axis=1, keepdims=True), lambda x: dnp.prod(x, axis=1, keepdims=True)),
    (lambda x: x.std(), lambda x: dnp.std(x)),
    (lambda x: x.var(axis=0, ddof=1), lambda x: dnp.var(x, axis=0, ddof=1)),
    (lambda x: np.std(x, axis=1, correction=1), lambda x: dnp.std(x, axis=1, ddof=1)),
    (lambda x: np.cumsum(x), lambda x: dnp.cumsum(x)),
    (lambda x: x.cumsum(axis=1), lambda x: dnp.cumsum(x, axis=1)),
    (lambda x: x.cumprod(0), lambda x: dnp.cumprod(x, axis=0)),
    (lambda x: np.cumprod(x, axis=-1), lambda x: dnp.cumprod(x, axis=1)),
    (lambda x: np.sort(x), lambda x: dnp.sort(x)),
    (lambda x: np.median(x, axis=0), lambda x: dnp.median(x, axis=0)),
    (lambda x: np.percentile(x, [10.0, 90.0]), lambda x: dnp.percentile(x, [10.0, 90.0])),
    (lambda x: np.quantile(x, 0.5, axis=1), lambda x: dnp.quantile(x, 0.5, axis=1)),
    (lambda x: np.nansum(x), lambda x: dnp.nansum(x)),
    (lambda x: np.nanmean(x, axis=0), lambda x: dnp.nanmean(x, axis=0)),
    (lambda x: np.average(x, axis=0, weights=[1.0, 3.0]),
     lambda x: dnp.average(x, axis=0, weights=[1.0, 3.0])),
    (lambda x: np.ptp(x, axis=1), lambda x: dnp.ptp(x, axis=1)),
    (lambda x: np.amax(x, axis=0), lambda x: dnp.amax(x, axis=0)),
    (lambda x: np.mean(x, axis=(0, 1)), lambda x: dnp.mean(x)),
]


@pytest.mark.parametrize("i", range(len(SAME_AS_DNP)))
def test_numpy_calls_give_the_same_gradients(i):
    numpy_fn, dnp_fn = SAME_AS_DNP[i]
    x = distinct((2, 3), np.float64) * 0.3
    u = RNG.standard_normal(np.shape(numpy_fn(x)))
    g_np = dp.grad(lambda x: dnp.sum(numpy_fn(x) * u))(x)
    g_dnp = dp.grad(lambda x: dnp.sum(dnp_fn(x) * u))(x)
    np.testing.assert_allclose(g_np, g_dnp, rtol=1e-14)
    np.testing.assert_allclose(numpy_fn(x), dnp_fn(x), rtol=1e-14)


# -- errors ------------------------------------------------------------------------------------

def test_sort_method_is_in_place_so_it_raises():
    with pytest.raises(TypeError, match=r"immutable.*np\.sort\(x\)"):
        dp.grad(lambda x: x.sort())(np.ones(3))


@pytest.mark.parametrize("call", [
    lambda x: np.prod(x, out=np.empty(())), lambda x: np.cumsum(x, out=np.empty(3)),
    lambda x: np.std(x, out=np.empty(())), lambda x: np.argmax(x, out=np.empty((), int)),
    lambda x: dnp.sum(x, out=np.empty(())),
])
def test_out_argument_is_refused_on_traced_values(call):
    with pytest.raises(TypeError, match=r"out=\.\.\..*in place"):
        dp.grad(call)(np.ones(3))


def test_axis_errors():
    x = np.ones((2, 3))
    with pytest.raises(np.exceptions.AxisError):
        dp.grad(lambda x: dnp.sum(dnp.prod(x, axis=2)))(x)
    with pytest.raises(ValueError, match="duplicate value in 'axis'"):
        dp.grad(lambda x: dnp.sum(dnp.var(x, axis=(1, -1))))(x)
    with pytest.raises(TypeError, match="axis must be an integer"):
        dp.grad(lambda x: dnp.sum(dnp.cumsum(x, axis=(0, 1))))(x)
    with pytest.raises(ValueError, match=r"range \[0, 1\]"):
        dp.grad(lambda x: dnp.quantile(x, 1.5))(x)
    with pytest.raises(ValueError, match=r"range \[0, 100\]"):
        dp.grad(lambda x: dnp.percentile(x, -1.0))(x)
    with pytest.raises(NotImplementedError, match="method='linear'"):
        dp.grad(lambda x: dnp.quantile(x, 0.5, method="nearest"))(x)
    with pytest.raises(ValueError, match="ddof and correction"):
        dp.grad(lambda x: dnp.var(x, ddof=1, correction=1))(x)


# Every primitive this module adds, exercised with float64 arguments (for the registry test).
_X = np.array([[0.5, -1.2, 2.0], [1.5, 0.0, -0.3]])
COVERAGE = [
    (lambda x: dnp.prod(x, axis=(0, 1)) + dnp.sum(dnp.prod(x, axis=1)), (_X,)),
    (lambda x: dnp.cumprod(x, axis=1) * dnp.cumsum(x, axis=0), (_X,)),
    (lambda x: dnp.sort(x, axis=0) * dnp.max(x) - dnp.min(x, axis=1, keepdims=True), (_X,)),
    (lambda x: dnp.logsumexp(x, axis=0) + dnp.std(x) + dnp.median(x), (_X,)),
    (lambda x: dnp.sum(x.ravel()[dnp.argmax(x)] - x.ravel()[dnp.argmin(x)]) * x[0, dnp.searchsorted(
        np.array([0.0, 1.0]), 0.5)] + dnp.sum(dnp.argsort(x, axis=0)), (_X,)),
]


def test_coverage_functions_run_under_grad():
    for fn, args in COVERAGE:
        dp.check_grads(lambda *a, fn=fn: fn(*a), args, order=2)


def test_sort_under_jit():
    # jit evaluates shapes on stand-in values, which are no permutation: sort has a shape rule.
    jit = pytest.importorskip("diffprog.jit").jit
    x = np.array([[3.0, 1.0, 2.0]])
    np.testing.assert_array_equal(jit(lambda x: dnp.sort(x, axis=0))(x), x)
    g = jit(dp.grad(lambda x: dnp.sum(dnp.sort(x, axis=1) * np.arange(3.0))))(x)
    np.testing.assert_array_equal(g, [[2.0, 0.0, 1.0]])
