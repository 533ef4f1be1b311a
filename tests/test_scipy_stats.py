"""diffprog.scipy.stats against scipy.stats: values on tables of points (inside and outside the
support, nan, ±inf, invalid parameters), dtypes, call forms (positional, keyword, frozen) and
broadcasting; derivatives in the data and every continuous parameter against central
differences (both modes, order 2, float64 and float32); jit(grad) against grad; no NaN in the
gradient of a valid point; the cdf family of the incomplete gamma and beta distributions in
the tails (where SciPy's log of an underflowed cdf is -inf) against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as ss

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.scipy import stats as ds
from diffprog.testing import check_grads
from tests.domains import tol_for

# SciPy's own inf - inf and log(0) warnings on the edge tables
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning:scipy")

INF, NAN = math.inf, math.nan
RTOL = 1e-12
CDFS = ("cdf", "logcdf", "sf", "logsf")

# x tables: |x| <= 6 keeps SciPy's log(1 - tiny) forms accurate (see test_tails for beyond)
X = np.array([-INF, -6.0, -2.0, -1.0, -0.5, -0.0, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 6.0,
              INF, NAN])
K = np.array([-INF, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.5, 5.0, 7.0, 10.0, 20.0, INF, NAN])

# name: (shape names, parameter sets incl. invalid ones, has a differentiable cdf)
CONTINUOUS = {
    "norm": ((), [{}, {"loc": 1.0, "scale": 2.0}, {"loc": -1.0, "scale": 0.5},
                  {"scale": 0.0}, {"scale": -1.0}, {"loc": NAN}], True),
    "t": (("df",), [{"df": 1.0}, {"df": 3.5, "loc": 1.0, "scale": 2.0}, {"df": INF},
                    {"df": 30.0}, {"df": 0.0}, {"df": -1.0}, {"df": 2.0, "scale": 0.0}], True),
    "cauchy": ((), [{}, {"loc": 0.5, "scale": 2.0}, {"scale": 0.0}], True),
    "laplace": ((), [{}, {"loc": 0.5, "scale": 2.0}, {"scale": -2.0}], True),
    "logistic": ((), [{}, {"loc": 0.5, "scale": 2.0}, {"scale": 0.0}], True),
    "expon": ((), [{}, {"loc": -1.0, "scale": 2.0}, {"scale": -1.0}], True),
    "uniform": ((), [{}, {"loc": -1.0, "scale": 3.0}, {"scale": 0.0}], True),
    "gamma": (("a",), [{"a": 0.5}, {"a": 1.0}, {"a": 3.5, "loc": -1.0, "scale": 2.0},
                       {"a": 0.0}, {"a": -1.0}], True),
    "beta": (("a", "b"), [{"a": 0.5, "b": 0.5}, {"a": 2.0, "b": 3.0}, {"a": 1.0, "b": 1.0},
                          {"a": 2.5, "b": 0.7, "loc": -1.0, "scale": 3.0}, {"a": 0.0, "b": 1.0},
                          {"a": 1.0, "b": -1.0}], True),
    "chi2": (("df",), [{"df": 1.0}, {"df": 2.0}, {"df": 5.5, "scale": 2.0}, {"df": 0.0}],
             True),
}
DISCRETE = {
    "poisson": (("mu",), [{"mu": 0.0}, {"mu": 0.5}, {"mu": 3.5}, {"mu": 3.0, "loc": 1.0},
                          {"mu": -1.0}], True),
    "bernoulli": (("p",), [{"p": 0.0}, {"p": 0.3}, {"p": 1.0}, {"p": 1.5}, {"p": -0.1},
                           {"p": 0.4, "loc": 2.0}], True),
    "binom": (("n", "p"), [{"n": 5.0, "p": 0.3}, {"n": 10.0, "p": 0.0}, {"n": 10.0, "p": 1.0},
                           {"n": 0.0, "p": 0.5}, {"n": 5.5, "p": 0.5}, {"n": -1.0, "p": 0.5},
                           {"n": 5.0, "p": 1.2}], True),
    "nbinom": (("n", "p"), [{"n": 2.5, "p": 0.4}, {"n": 1.0, "p": 1.0},
                            {"n": 3.0, "p": 0.9, "loc": 1.0}, {"n": 0.0, "p": 0.5},
                            {"n": 1.0, "p": 0.0}], True),
    "geom": (("p",), [{"p": 0.3}, {"p": 1.0}, {"p": 0.05, "loc": -1.0}, {"p": 0.0},
                      {"p": 1.1}], True),
}


def _methods(table, name, dens):
    shapes, _, has_cdf = table[name]
    return (dens, dens[3:]) + (CDFS if has_cdf else ())


def _cases(table, dens):
    return [(name, m, i) for name in table for m in _methods(table, name, dens)
            for i in range(len(table[name][1]))]


def _assert_values(got, want, log=False):
    assert np.shape(got) == np.shape(want)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    # logcdf/logsf near 0: SciPy's log(1 - tiny) is exact only to an absolute ~1e-16 (this
    # module's log1p(-tiny) is exact; test_incomplete_tails checks it against -tiny)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=4e-16 if log else 1e-300)
    # the sign of ±inf and where the nans are
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


@pytest.mark.parametrize("name,method,i", _cases(CONTINUOUS, "logpdf"))
def test_continuous_values(name, method, i):
    shapes, params, _ = CONTINUOUS[name]
    kw = params[i]
    want = getattr(getattr(ss, name), method)(X, **kw)
    log = method in ("logcdf", "logsf")
    _assert_values(getattr(getattr(ds, name), method)(X, **kw), want, log)
    # positional form: shapes, loc, scale
    pos = [kw[s] for s in shapes] + [kw.get("loc", 0.0), kw.get("scale", 1.0)]
    _assert_values(getattr(getattr(ds, name), method)(X, *pos), want, log)


@pytest.mark.parametrize("name,method,i", _cases(DISCRETE, "logpmf"))
def test_discrete_values(name, method, i):
    shapes, params, _ = DISCRETE[name]
    kw = params[i]
    want = getattr(getattr(ss, name), method)(K, **kw)
    log = method in ("logcdf", "logsf")
    _assert_values(getattr(getattr(ds, name), method)(K, **kw), want, log)
    pos = [kw[s] for s in shapes] + [kw.get("loc", 0.0)]
    _assert_values(getattr(getattr(ds, name), method)(K, *pos), want, log)


def test_scalars_and_dtypes():
    # scalar in: a NumPy float64 scalar out; float32 in: float64 out (as SciPy)
    for x in (0.5, np.float32(0.5), np.array(0.5, np.float32), np.array([0.5], np.float32)):
        got, want = ds.gamma.logpdf(x, 2.0), ss.gamma.logpdf(x, 2.0)
        assert type(got) is type(want) and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=RTOL)
    got, want = ds.poisson.pmf(3, 2.5), ss.poisson.pmf(3, 2.5)
    assert type(got) is type(want)
    np.testing.assert_allclose(got, want, rtol=RTOL)
    # the cdf family of the incomplete gamma and beta distributions on float32 data and
    # parameters, and scalars: SciPy's float64 results for those values (SciPy's own
    # nbinom.logcdf computes 1 - p in float32 and is off by ~1e-6 there)
    x32, k32 = X.astype(np.float32), K.astype(np.float32)
    cases = [("t", x32, (np.float32(3.5),)), ("gamma", x32, (np.float32(2.5),)),
             ("beta", x32 / 4 + np.float32(0.5), (np.float32(0.7), np.float32(2.5))),
             ("chi2", x32, (np.float32(5.5),)), ("poisson", k32, (np.float32(3.5),)),
             ("binom", k32, (np.float32(10.0), np.float32(0.3))),
             ("nbinom", k32, (np.float32(2.5), np.float32(0.4)))]
    for name, x, params in cases:
        for m in CDFS:
            with np.errstate(all="ignore"):
                want = getattr(getattr(ss, name), m)(x.astype(np.float64),
                                                     *[float(v) for v in params])
                got = getattr(getattr(ds, name), m)(x, *params)
            _assert_values(got, want, m in ("logcdf", "logsf"))
            one, want1 = getattr(getattr(ds, name), m)(x[9], *params), getattr(
                getattr(ss, name), m)(float(x[9]), *[float(v) for v in params])
            assert type(one) is type(want1)
            _assert_values(one, want1, m in ("logcdf", "logsf"))


def test_broadcasting():
    x = np.linspace(-1, 2, 3)[:, None]
    loc, scale = np.array([0.0, 1.0, 2.0, 3.0]), np.array([[[0.5], [1.0], [2.0]]])
    for m in ("logpdf", "cdf", "logsf"):
        want = getattr(ss.norm, m)(x, loc, scale)
        assert want.shape == (1, 3, 4)
        _assert_values(getattr(ds.norm, m)(x, loc, scale), want)
    a, b = np.array([0.5, 2.0]), np.array([[1.0], [3.0]])
    _assert_values(ds.beta.logpdf(0.3, a, b), ss.beta.logpdf(0.3, a, b))
    n, p = np.array([[3.0], [7.0]]), np.array([0.2, 0.5, 0.9])
    _assert_values(ds.nbinom.logpmf(np.arange(3.0)[:, None, None], n, p),
                   ss.nbinom.logpmf(np.arange(3.0)[:, None, None], n, p))


def test_frozen():
    x = np.linspace(-3, 3, 7)
    _assert_values(ds.norm(1.0, 2.0).logpdf(x), ss.norm(1.0, 2.0).logpdf(x))
    _assert_values(ds.norm(loc=1.0, scale=2.0).logcdf(x), ss.norm.logcdf(x, 1.0, 2.0))
    _assert_values(ds.gamma(2.5, scale=3.0).pdf(x), ss.gamma(2.5, scale=3.0).pdf(x))
    _assert_values(ds.geom(0.3).sf(x), ss.geom(0.3).sf(x))
    mean, cov = np.array([1.0, -1.0]), np.array([[2.0, 0.5], [0.5, 1.0]])
    pts = np.array([[0.0, 0.0], [1.0, 2.0]])
    _assert_values(ds.multivariate_normal(mean, cov).logpdf(pts),
                   ss.multivariate_normal(mean, cov).logpdf(pts))
    _assert_values(ds.dirichlet(np.array([1.5, 2.0, 3.0])).pdf(np.array([0.2, 0.3, 0.5])),
                   ss.dirichlet(np.array([1.5, 2.0, 3.0])).pdf(np.array([0.2, 0.3, 0.5])))
    # the frozen form differentiates in its parameters too
    g = dp.grad(lambda s: ds.norm(0.0, s).logpdf(2.0))(1.0)
    assert g == pytest.approx(3.0, rel=1e-14)  # (z**2 - 1) / scale
    with pytest.raises(TypeError, match="unexpected keyword"):
        ds.norm(scael=1.0)
    with pytest.raises(AttributeError):
        ds.norm(0.0, 1.0).logpmf  # noqa: B018


def test_call_errors():
    with pytest.raises(TypeError, match="missing"):
        ds.gamma.logpdf(1.0)
    with pytest.raises(TypeError, match="multiple values"):
        ds.norm.logpdf(1.0, 0.0, loc=1.0)
    with pytest.raises(TypeError, match="at most"):
        ds.norm.logpdf(1.0, 0.0, 1.0, 2.0)


def test_tails():
    # beyond |x| ~ 745 SciPy's laplace.logpdf is log(0) and its laplace/expon log(1 - tiny)
    # forms lose all digits; these are exact
    assert ds.laplace.logpdf(800.0) == -800.0 - math.log(2)
    assert ds.laplace.logsf(40.0) == -40.0 - math.log(2)
    assert ds.laplace.logcdf(40.0) == pytest.approx(-0.5 * math.exp(-40.0), rel=1e-15)
    assert ds.expon.logcdf(40.0) == pytest.approx(-math.exp(-40.0), rel=1e-15)
    assert ds.norm.logcdf(-40.0) == pytest.approx(ss.norm.logcdf(-40.0), rel=RTOL)
    assert ds.cauchy.logpdf(1e200) == pytest.approx(ss.cauchy.logpdf(1e200), rel=RTOL)


def test_incomplete_tails():
    import scipy.special as sc
    # where the cdf underflows SciPy's logcdf is log(0) = -inf; these are finite and exact
    for k, n, p in [(0.0, 2000.0, 0.5), (0.0, 5000.0, 0.3)]:
        want = n * math.log1p(-p)  # binom.cdf(0) = (1 - p)**n
        assert ds.binom.logcdf(k, n, p) == pytest.approx(want, rel=1e-13)
        # (the density over the cdf as exp of a difference of logs ~ -1e3: ~1e-12 relative)
        assert dp.grad(ds.binom.logcdf, argnums=2)(k, n, p) == pytest.approx(-n / (1 - p),
                                                                             rel=1e-11)
        want = n * math.log(p)  # nbinom.cdf(0) = p**n
        assert ds.nbinom.logcdf(k, n, p) == pytest.approx(want, rel=1e-13)
        gn, gp = dp.grad(ds.nbinom.logcdf, argnums=(1, 2))(k, n, p)
        assert gn == pytest.approx(math.log(p), rel=1e-11) and gp == pytest.approx(n / p,
                                                                                   rel=1e-11)
    assert ds.poisson.logcdf(0.0, 800.0) == -800.0  # exp(-800) underflows
    assert dp.grad(ds.poisson.logcdf, argnums=1)(0.0, 800.0) == pytest.approx(-1.0, rel=1e-13)
    # gamma: log P(a, x) for x << a from its series, P(a, x) ~ x**a / Gamma(a + 1)
    x, a = 1e-3, 200.0
    want = a * math.log(x) - x - math.lgamma(a + 1) + math.log1p(x / (a + 1) + x * x / (
        (a + 1) * (a + 2)))
    assert ds.gamma.logcdf(x, a) == pytest.approx(want, rel=1e-14)
    assert ds.chi2.logcdf(2 * x, 2 * a) == pytest.approx(want, rel=1e-14)
    assert ds.gamma.logsf(1000.0, 2.0) == pytest.approx(-1000.0 + math.log1p(1000.0), rel=1e-15)
    # t: F(t) ~ c nu**((nu - 1)/2) |t|**-nu for t -> -inf, c the density's constant
    for df in (1.0, 3.0, 7.5):
        t = -1e120
        logc = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
        want = logc + (df - 1) / 2 * math.log(df) - df * math.log(-t)
        assert ds.t.logcdf(t, df) == pytest.approx(want, rel=1e-13)
        assert ds.t.logsf(-t, df) == pytest.approx(want, rel=1e-13)
        assert dp.grad(ds.t.logcdf)(t, df) == pytest.approx(-df / t, rel=1e-12)
    # beta: I_x(a, b) ~ x**a / (a B(a, b)) for tiny x
    a, b, x = 4.0, 2.5, 1e-100
    want = a * math.log(x) - math.log(a) - sc.betaln(a, b)
    assert ds.beta.logcdf(x, a, b) == pytest.approx(want, rel=1e-13)
    assert ds.beta.logsf(1 - 2.0 ** -50, b, a) == pytest.approx(
        a * math.log(2.0 ** -50) - math.log(a) - sc.betaln(a, b), rel=1e-12)
    # near 1: logcdf = log1p(-sf), where SciPy's log(1 - sf) keeps no digit of sf
    for f, sf, args in [(ds.poisson.logcdf, ss.poisson.sf, (20.0, 0.5)),
                        (ds.gamma.logcdf, ss.gamma.sf, (60.0, 2.0)),
                        (ds.t.logcdf, ss.t.sf, (1e8, 3.0)),
                        (ds.beta.logsf, ss.beta.cdf, (1e-30, 2.0, 3.0)),
                        (ds.binom.logsf, ss.binom.cdf, (0.0, 500.0, 0.1)),
                        (ds.nbinom.logsf, ss.nbinom.cdf, (0.0, 40.0, 0.1))]:
        tiny = sf(*args)
        assert 0 < tiny < 1e-20
        assert f(*args) == pytest.approx(-tiny, rel=1e-12), f


# -- derivatives ---------------------------------------------------------------------------------

# name: [(interior x points, parameter values by shape, loc, scale), ...]; kinks and jumps
# avoided, parameters below and above 1 where the shape changes there
GRAD_CONT = {
    "norm": [([-1.3, 0.4, 2.2], [], 0.3, 1.7), ([-40.0, 0.0, 9.0], [], -1.0, 0.5)],
    "t": [([-1.3, 0.4, 2.2], [3.5], 0.3, 1.7), ([-3.0, 0.1, 25.0], [0.6], -1.0, 0.5)],
    "cauchy": [([-1.3, 0.4, 2.2], [], 0.3, 1.7), ([-30.0, 0.1, 1e3], [], -1.0, 0.5)],
    "laplace": [([-1.3, 0.7, 2.2], [], 0.3, 1.7), ([-30.0, -0.5, 8.0], [], -1.0, 0.5)],
    "logistic": [([-1.3, 0.4, 2.2], [], 0.3, 1.7), ([-40.0, 0.0, 30.0], [], -1.0, 0.5)],
    "expon": [([0.4, 1.1, 3.0], [], 0.3, 1.7), ([-0.9, 2.0, 8.0], [], -1.0, 0.5)],
    "uniform": [([0.4, 1.1, 1.8], [], 0.3, 1.7), ([-0.8, -0.7, -0.6], [], -1.0, 0.5)],
    "gamma": [([0.4, 1.1, 3.0], [2.5], 0.3, 1.7), ([-0.9, 0.0, 8.0], [0.4], -1.0, 0.5)],
    "beta": [([0.4, 0.9, 1.8], [2.5, 1.5], 0.3, 1.7),
             ([-0.9, -0.75, -0.6], [0.4, 0.7], -1.0, 0.5)],
    "chi2": [([0.4, 1.1, 3.0], [3.5], 0.3, 1.7), ([-0.9, 0.0, 8.0], [0.8], -1.0, 0.5)],
}
# discrete: derivatives in the continuous parameters (binom's n is an integer: p only)
GRAD_DISC = {
    "poisson": ([0.0, 2.0, 5.0], {"mu": 2.5}),
    "bernoulli": ([0.0, 1.0, 0.0], {"p": 0.3}),  # the tails at [0, 0.5, 0]
    "binom": ([0.0, 2.0, 5.0], {"p": 0.3}),
    "nbinom": ([0.0, 2.0, 5.0], {"n": 2.5, "p": 0.4}),
    "geom": ([1.0, 2.0, 5.0], {"p": 0.3}),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(GRAD_CONT))
def test_continuous_grads(name, dtype):
    dist = getattr(ds, name)
    for xs, shapes, loc, scale in GRAD_CONT[name]:
        args = (np.array(xs, dtype), *[np.array(s, dtype) for s in shapes],
                np.array(loc, dtype), np.array(scale, dtype))
        for m in _methods(CONTINUOUS, name, "logpdf"):
            check_grads(getattr(dist, m), args, order=2, modes=("fwd", "rev"),
                        **tol_for(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(GRAD_DISC))
def test_discrete_grads(name, dtype):
    ks, params = GRAD_DISC[name]
    shapes = DISCRETE[name][0]
    fixed = {"n": 5.0} if name == "binom" else {}
    dist, names = getattr(ds, name), list(params)
    for m in _methods(DISCRETE, name, "logpmf"):
        # the sf of a Bernoulli is 0 (log -inf) at k = 1, a binomial's at k = n
        k = np.array([0.0, 0.5, 0.0] if name == "bernoulli" and m in CDFS
                     else [0.0, 2.5, 4.0] if name == "binom" and m in CDFS else ks)

        def f(*vals, m=m, k=k):
            kw = {**fixed, **dict(zip(names, vals))}
            return getattr(dist, m)(k, *[kw[s] for s in shapes])
        check_grads(f, tuple(np.array(params[n], dtype) for n in names), order=2,
                    modes=("fwd", "rev"), **tol_for(dtype))


def test_grad_closed_forms():
    # d/dx norm.logcdf = pdf / cdf; d/da gamma.logpdf = log x - digamma(a);
    # d/dp geom.logsf = k / (p - 1)
    g = dp.grad(ds.norm.logcdf)(-3.0)
    assert g == pytest.approx(ss.norm.pdf(-3.0) / ss.norm.cdf(-3.0), rel=1e-13)
    import scipy.special as sc
    g = dp.grad(ds.gamma.logpdf, argnums=1)(2.0, 3.5)
    assert g == pytest.approx(math.log(2.0) - sc.digamma(3.5), rel=1e-13)
    g = dp.grad(ds.geom.logsf, argnums=1)(4.0, 0.3)
    assert g == pytest.approx(4.0 / (0.3 - 1.0), rel=1e-13)


def test_hessian():
    # gamma.logpdf(x, a, scale=s) = (a-1) log(x/s) - x/s - gammaln(a) - log s
    import scipy.special as sc
    a, sc_, x = 2.5, 1.3, 2.0
    h = dp.hessian(lambda p: ds.gamma.logpdf(x, p[0], scale=p[1]))(np.array([a, sc_]))
    want = [[-sc.polygamma(1, a), -1 / sc_], [-1 / sc_, a / sc_**2 - 2 * x / sc_**3]]
    np.testing.assert_allclose(h, want, rtol=1e-12)


@pytest.mark.parametrize("name", list(CONTINUOUS) + list(DISCRETE))
def test_jit_values(name):
    # every method under jit, on the x table against a row of parameter sets (invalid ones
    # included): SciPy's values and broadcasting
    table = CONTINUOUS if name in CONTINUOUS else DISCRETE
    shapes, params, _ = table[name]
    extra = ("loc", "scale") if table is CONTINUOUS else ("loc",)
    default = {"loc": 0.0, "scale": 1.0}
    cols = [np.array([kw.get(n, default.get(n)) for kw in params]) for n in shapes + extra]
    x = (X if table is CONTINUOUS else K)[:, None]
    methods = _methods(table, name, "logpdf" if table is CONTINUOUS else "logpmf")
    f = dp.jit(lambda x, *cols: [getattr(getattr(ds, name), m)(x, *cols) for m in methods])
    with np.errstate(all="ignore"):
        got = f(x, *cols)
        for m, g in zip(methods, got):
            _assert_values(g, getattr(getattr(ss, name), m)(x, *cols), m in ("logcdf", "logsf"))


def test_no_nan_in_valid_gradients():
    # points outside the support, at invalid parameters and at nan sit beside valid points:
    # the valid entries' derivatives are right, the others 0, none nan
    x = np.array([-1.0, 0.5, 2.0, NAN, INF])
    for f in (lambda x: dnp.sum(dnp.where(dnp.isfinite(ds.gamma.logpdf(x, 2.0)),
                                          ds.gamma.logpdf(x, 2.0), 0.0)),
              lambda x: dnp.sum(ds.beta.pdf(x, 2.0, 3.0)),
              lambda x: dnp.sum(ds.expon.logsf(x))):
        with np.errstate(invalid="ignore"):  # gamma.logpdf(inf) is inf - inf = nan, as SciPy's
            gs = (dp.grad(f)(x), dp.jit(dp.grad(f))(x))
        for g in gs:
            assert not np.isnan(g).any(), g
            assert g[0] == 0.0 and g[3] == 0.0 and g[4] == 0.0
    g = dp.grad(lambda x: dnp.sum(dnp.where(dnp.isnan(ds.gamma.logpdf(x, 2.0)), 0.0,
                                            ds.gamma.logpdf(x, 2.0))))(np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, 1.0 / np.array([1.0, 2.0]) - 1.0, rtol=1e-14)
    # a vector of scales, one invalid: the others' gradients are finite
    s = np.array([-1.0, 1.0, 2.0])
    g = dp.grad(lambda s: dnp.sum(dnp.where(s > 0, ds.norm.logpdf(1.0, 0.0, s), 0.0)))(s)
    np.testing.assert_allclose(g, [0.0, 0.0, (0.25 - 1.0) / 2.0], rtol=1e-14)
    # discrete: p = 1 for nbinom is valid, p = 0 not; the gradient in p at p = 0.5 is finite
    p = np.array([0.0, 0.5, 1.5])
    g = dp.grad(lambda p: dnp.sum(dnp.where(p == 0.5, ds.nbinom.logpmf(2.0, 3.0, p), 0.0)))(p)
    assert np.isfinite(g).all() and g[0] == 0.0 and g[2] == 0.0


@pytest.mark.parametrize("name,params", [("gamma", (2.0,)), ("chi2", (3.0,)), ("beta", (2.0, 3.0)),
                                         ("t", (3.0,)), ("poisson", (2.0,)),
                                         ("binom", (5.0, 0.3)), ("nbinom", (2.5, 0.4))])
def test_cdf_family_gradients_beside_invalid_points(name, params):
    # points outside the support, nan and inf beside valid ones: the gradients in the data and
    # the parameters are finite, 0 at the constant points, and jit agrees
    discrete = name in DISCRETE
    x = np.array([-1.0, 0.0, 2.0, 2.5, NAN, INF]) if discrete else np.array(
        [-1.0, 0.5, 0.25, 2.0, NAN, INF])
    dist = getattr(ds, name)
    for m in CDFS:
        def f(x, *p, m=m):
            v = getattr(dist, m)(x, *p)
            return dnp.sum(dnp.where(dnp.isfinite(v), v, 0.0))
        argnums = tuple(range(1 if discrete else 0, 1 + len(params)))
        with np.errstate(invalid="ignore"):
            g = dp.grad(f, argnums=argnums)(x, *params)
            gj = dp.jit(dp.grad(f, argnums=argnums))(x, *params)
        for a, b in zip(g, gj):
            assert np.isfinite(a).all(), (m, g)
            np.testing.assert_allclose(a, b, rtol=1e-13)
        if not discrete:  # nan, inf and (outside the support but for t's) x = -1
            assert g[0][4] == 0.0 and g[0][5] == 0.0 and (name == "t" or g[0][0] == 0.0)


def test_jit_grad_equals_grad():
    cases = [
        (lambda loc, s: dnp.sum(ds.norm.logcdf(np.array([-2.0, 0.5]), loc, s)), (0.3, 1.7)),
        (lambda a, s: dnp.sum(ds.gamma.logpdf(np.array([-1.0, 0.5, 2.0]), a, scale=s)),
         (2.5, 1.3)),
        (lambda n, p: dnp.sum(ds.nbinom.logpmf(np.array([0.0, 2.0, 2.5]), n, p)), (2.5, 0.4)),
        (lambda p: dnp.sum(ds.geom.logcdf(np.array([0.0, 1.0, 3.5]), p)), (0.3,)),
        (lambda df, x: ds.t.logpdf(x, df), (3.5, 0.7)),
    ]
    for f, args in cases:
        argnums = tuple(range(len(args)))
        want = dp.grad(f, argnums=argnums)(*args)
        got = dp.jit(dp.grad(f, argnums=argnums))(*args)
        np.testing.assert_allclose(got, want, rtol=1e-13)
        assert np.isfinite(want).all()


# -- multivariate normal -------------------------------------------------------------------------

MEAN = np.array([1.0, -1.0, 0.5])
COV = np.array([[2.0, 0.5, 0.1], [0.5, 1.0, -0.2], [0.1, -0.2, 0.8]])


def test_mvn_values():
    rng = np.random.default_rng(0)
    for x in (rng.normal(size=3), rng.normal(size=(4, 3)), rng.normal(size=(2, 5, 3)),
              np.array([[1.0, -1.0, 0.5]])):
        for m in ("logpdf", "pdf"):
            for allow in (False, True):
                want = getattr(ss.multivariate_normal, m)(x, MEAN, COV, allow_singular=allow)
                _assert_values(getattr(ds.multivariate_normal, m)(x, MEAN, COV,
                                                                  allow_singular=allow), want)
                _assert_values(getattr(ds.multivariate_normal, m)(x, mean=MEAN, cov=COV,
                                                                  allow_singular=allow), want)
    # one dimension (x a vector of samples), scalar and diagonal covariances, default mean
    x = np.array([-1.0, 0.0, 2.5])
    _assert_values(ds.multivariate_normal.logpdf(x, 0.5, 2.0),
                   ss.multivariate_normal.logpdf(x, 0.5, 2.0))
    _assert_values(ds.multivariate_normal.logpdf(x, np.zeros(3), np.array([1.0, 2.0, 3.0])),
                   ss.multivariate_normal.logpdf(x, np.zeros(3), np.array([1.0, 2.0, 3.0])))
    # SciPy takes a vector cov without a mean for one dimension, and refuses it
    with pytest.raises(ValueError):
        ss.multivariate_normal.logpdf(x, cov=np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError):
        ds.multivariate_normal.logpdf(x, cov=np.array([1.0, 2.0, 3.0]))
    _assert_values(ds.multivariate_normal.logpdf(x, MEAN, 1.5),
                   ss.multivariate_normal.logpdf(x, MEAN, 1.5))
    _assert_values(ds.multivariate_normal.logpdf(0.3), ss.multivariate_normal.logpdf(0.3))
    _assert_values(ds.multivariate_normal.pdf(np.float32(0.3)),
                   ss.multivariate_normal.pdf(np.float32(0.3)))


def test_mvn_singular():
    # rank 2 in 3-D: raises unless allow_singular; then the pseudo-determinant, -inf off the
    # subspace mean + range(cov)
    b = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    cov = b @ b.T
    on = MEAN + np.array([[0.3, -1.0], [1.2, 0.4]]) @ b.T
    off = on + np.array([[1.0, -1.0, 0.5]]) * 0.1
    for exc, c in ((np.linalg.LinAlgError, cov), (ValueError, -COV)):
        with pytest.raises(exc):
            ss.multivariate_normal.logpdf(on, MEAN, c)
        with pytest.raises(exc):
            ds.multivariate_normal.logpdf(on, MEAN, c)
        with pytest.raises(exc):
            dp.grad(lambda m, c=c: dnp.sum(ds.multivariate_normal.logpdf(on, m, c)))(MEAN)
    # under jit the value is unknown at trace time: the Cholesky factorization raises
    with pytest.raises(np.linalg.LinAlgError):
        dp.jit(lambda x, c: ds.multivariate_normal.logpdf(x, MEAN, c))(on, cov)
    pts = np.concatenate([on, off])
    want = ss.multivariate_normal.logpdf(pts, MEAN, cov, allow_singular=True)
    assert np.isinf(want[2:]).all()
    _assert_values(ds.multivariate_normal.logpdf(pts, MEAN, cov, allow_singular=True), want)
    f = dp.jit(lambda x, m, c: ds.multivariate_normal.logpdf(x, m, c, allow_singular=True))
    _assert_values(f(pts, MEAN, cov), want)
    # derivatives in the subspace: x = mean + bb c (c in R^2) for cov = bb bb^T: in c and the
    # mean to order 2; in the factor bb (the point moves with the range of cov) to order 1,
    # as the projector onto the range is held constant (see the class docstring)
    def along(c, m, bb):
        return ds.multivariate_normal.logpdf(m + bb @ c, m, bb @ bb.T, allow_singular=True)
    check_grads(lambda c, m: along(c, m, b), (np.array([0.7, -0.2]), MEAN), order=2,
                modes=("fwd", "rev"))
    check_grads(along, (np.array([0.7, -0.2]), MEAN, b), order=1, modes=("fwd", "rev"))
    # the pseudo-determinant's closed form: rank 2, log det(b^T b), maha = c^T (b^T b)^-1 c...
    c = np.array([0.7, -0.2])
    btb = b.T @ b
    want = -0.5 * (2 * math.log(2 * math.pi) + np.linalg.slogdet(btb)[1]
                   + c @ btb @ np.linalg.solve(btb @ btb, btb @ c))
    assert along(c, MEAN, b) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mvn_grads(dtype):
    x = np.array([[0.3, -0.4, 1.0], [1.5, 0.2, -0.3]], dtype)
    args = (x, MEAN.astype(dtype), COV.astype(dtype))
    for allow in (False, True):
        for m in ("logpdf", "pdf"):
            def f(x, mean, cov, m=m, allow=allow):
                return getattr(ds.multivariate_normal, m)(x, mean, cov, allow_singular=allow)
            check_grads(f, args, order=2, modes=("fwd", "rev"), **tol_for(dtype))
    # the gradient in cov against the closed form (inv(C) d d^T inv(C) - inv(C)) / 2
    d = np.array([0.3, -0.4, 1.0]) - MEAN
    ci = np.linalg.inv(COV)
    want = 0.5 * (ci @ np.outer(d, d) @ ci - ci)
    for allow in (False, True):
        g = dp.grad(lambda c, allow=allow: ds.multivariate_normal.logpdf(
            d + MEAN, MEAN, c, allow_singular=allow))(COV)
        # the symmetric part (cholesky reads one triangle, eigh-based P C P both)
        np.testing.assert_allclose((g + g.T) / 2, want, rtol=1e-10, atol=1e-12)
        gj = dp.jit(dp.grad(lambda c, allow=allow: ds.multivariate_normal.logpdf(
            d + MEAN, MEAN, c, allow_singular=allow)))(COV)
        np.testing.assert_allclose(gj, g, rtol=1e-12, atol=1e-14)


# -- dirichlet -----------------------------------------------------------------------------------

ALPHA = np.array([1.5, 0.7, 3.0])


def test_dirichlet_values():
    x = np.array([0.2, 0.3, 0.5])
    xs = np.array([[0.2, 0.1, 0.6], [0.3, 0.8, 0.1], [0.5, 0.1, 0.3]])
    for m in ("logpdf", "pdf"):
        for pts in (x, x[:2], xs, xs[:2]):
            _assert_values(getattr(ds.dirichlet, m)(pts, ALPHA),
                           getattr(ss.dirichlet, m)(pts, ALPHA))
    _assert_values(ds.dirichlet.logpdf([0.2, 0.3], [1.5, 0.7, 3.0]),  # lists, as SciPy
                   ss.dirichlet.logpdf([0.2, 0.3], [1.5, 0.7, 3.0]))
    _assert_values(ds.dirichlet.logpdf(np.array([0.0, 0.3, 0.7]), np.array([1.0, 2.0, 2.0])),
                   ss.dirichlet.logpdf(np.array([0.0, 0.3, 0.7]), np.array([1.0, 2.0, 2.0])))
    bad = [(np.array([0.2, 0.3, 0.6]), ALPHA), (np.array([-0.2, 0.6, 0.6]), ALPHA),
           (np.array([0.5, 0.0, 0.5]), ALPHA), (x, np.array([1.0, 0.0, 2.0])),
           (x, ALPHA[:2]), (x, ALPHA[None])]
    for pts, a in bad:
        with pytest.raises(ValueError):
            ss.dirichlet.logpdf(pts, a)
        with pytest.raises(ValueError):
            ds.dirichlet.logpdf(pts, a)
    # float32 x and alpha give float32, as SciPy's (computed here in float64, then rounded)
    x32, a32 = np.array([0.25, 0.25, 0.5], np.float32), ALPHA.astype(np.float32)
    for m in ("logpdf", "pdf"):
        got, want = getattr(ds.dirichlet, m)(x32, a32), getattr(ss.dirichlet, m)(x32, a32)
        assert type(got) is type(want) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert getattr(ds.dirichlet, m)(x32, ALPHA).dtype == np.float64
    # under jit the values are unknown: -inf off the simplex, nan for invalid alpha
    f = dp.jit(ds.dirichlet.logpdf)
    np.testing.assert_allclose(f(x, ALPHA), ss.dirichlet.logpdf(x, ALPHA), rtol=RTOL)
    assert f(np.array([0.2, 0.3, 0.6]), ALPHA) == -INF
    assert np.isnan(f(x, np.array([1.0, 0.0, 2.0])))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dirichlet_grads(dtype):
    # x by its first K - 1 entries, so perturbations stay on the simplex
    xs = np.array([[0.2, 0.1, 0.6], [0.3, 0.5, 0.1]], dtype)
    for m in ("logpdf", "pdf"):
        check_grads(getattr(ds.dirichlet, m), (xs, ALPHA.astype(dtype)), order=2,
                    modes=("fwd", "rev"), **tol_for(dtype))
    g = dp.grad(ds.dirichlet.logpdf, argnums=1)(xs[:, 0].astype(np.float64), ALPHA)
    gj = dp.jit(dp.grad(ds.dirichlet.logpdf, argnums=1))(xs[:, 0].astype(np.float64), ALPHA)
    np.testing.assert_allclose(gj, g, rtol=1e-13)
