"""``diffprog.scipy.stats``: ``scipy.stats`` distributions, differentiable to any order.

Each distribution is an object with SciPy's call forms: ``norm.logpdf(x, loc=0, scale=1)``
(arguments positional or by keyword), ``poisson.logpmf(k, mu, loc=0)``, and SciPy's frozen form
``norm(loc, scale).logpdf(x)``. Values follow ``scipy.stats`` (float64 results as SciPy's, shapes
broadcast), including outside the support (``logpdf = -inf``, ``pdf = 0``, ``cdf`` 0 or 1,
``logpmf = -inf`` at non-integer k) and for invalid parameters (``scale <= 0``, ``p > 1``, ...:
nan). Everything is written with :mod:`diffprog.numpy` and :mod:`diffprog.scipy.special`, so
``grad``, ``jvp``, ``vjp``, ``hessian`` and ``jit`` work with respect to the data and every
continuous parameter; the support and the parameter checks are masks (``where`` on safe inputs),
so no Python control flow depends on values and no NaN leaks into the gradient of a valid point.

Methods: continuous distributions have ``logpdf``, ``pdf``, ``cdf``, ``logcdf``, ``sf`` and
``logsf``; discrete ones ``logpmf``, ``pmf``, ``cdf``, ``logcdf``, ``sf`` and ``logsf`` (those
of ``t``, ``gamma``, ``beta``, ``chi2``, ``poisson``, ``binom`` and ``nbinom`` through the
incomplete gamma and beta functions of :mod:`diffprog.scipy.special`, differentiable in their
shape parameters too). ``multivariate_normal`` and ``dirichlet`` have ``logpdf`` and ``pdf``.

Where SciPy's formula loses accuracy (``laplace.logpdf`` beyond |x| ~ 745, where SciPy takes
the log of an underflowed pdf; the log of 1 - tiny in ``laplace.logcdf``/``logsf`` and
``expon.logcdf``; ``logcdf``/``logsf`` of the incomplete gamma and beta families, which
SciPy computes as the log of a cdf that underflows or is 1 - tiny) this module uses the
accurate form, so it differs from SciPy there.

Example:
    >>> import diffprog as dp
    >>> from diffprog.scipy import stats
    >>> float(stats.norm.logpdf(1.0, loc=1.0, scale=1.0))  # -log(sqrt(2 pi))
    -0.9189385332046727
    >>> float(dp.grad(stats.norm.logpdf, argnums=2)(2.0, 0.0, 1.0))  # (z**2 - 1) / scale
    3.0
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core import Tracer, concrete
from ..custom import stop_gradient
from . import special as sp

__all__ = ["norm", "t", "cauchy", "laplace", "logistic", "expon", "gamma", "beta", "chi2",
           "uniform", "poisson", "bernoulli", "binom", "nbinom", "geom", "multivariate_normal",
           "dirichlet"]

_LOG_2PI = math.log(2 * math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_LOG_PI = math.log(math.pi)
_LOG2 = math.log(2.0)
_NAN = float("nan")
_INF = float("inf")


def _traced(*args: Any) -> bool:
    return any(isinstance(a, Tracer) for a in args)


def _f64(x: Any) -> Any:
    """``x`` as float64, SciPy's result dtype for every distribution here (float32 in gives
    float64 out, as in SciPy); a traced value is cast (its vjp casts back)."""
    if isinstance(x, Tracer):
        return x if x.dtype == np.float64 else dnp.astype(x, np.float64)
    return np.asarray(x, dtype=np.float64)


def _out(x: Any) -> Any:
    """A 0-d result as a NumPy scalar, as SciPy returns it."""
    return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x


def _value(x: Any) -> np.ndarray | None:
    """The concrete value of ``x`` (under eager tracers too), or None under ``jit``."""
    v = concrete(x)
    if isinstance(v, (np.ndarray, np.generic, float, int, bool)):
        return np.asarray(v)
    return None


def _and(*conds: Any) -> Any:
    out = conds[0]
    for c in conds[1:]:
        out = dnp.logical_and(out, c)
    return out


def _log_ndtr(x: Any) -> Any:
    """``log_ndtr`` whose derivatives of every order are finite: for x > 0 as
    ``log1p(-ndtr(-x))`` (accurate there), as special.log_ndtr's second derivative is nan
    beyond x ~ 37.7, where its rule's ``erfcx(-x/sqrt 2)`` overflows (inf / inf)."""
    pos = x > 0
    return dnp.where(pos, dnp.log1p(-sp.ndtr(-dnp.where(pos, x, 1.0))),
                     sp.log_ndtr(dnp.where(pos, -1.0, x)))


# -- argument parsing ----------------------------------------------------------------------------

def _bind(name: str, names: tuple[str, ...], defaults: dict[str, Any], args: tuple,
          kwds: dict) -> list[Any]:
    """SciPy's ``_parse_args``: ``args`` then ``kwds`` bound to ``names``, with defaults."""
    if len(args) > len(names):
        raise TypeError(f"{name}: takes at most {len(names)} parameters {names}, "
                        f"got {len(args)} positional")
    vals = dict(zip(names, args))
    for k, v in kwds.items():
        if k not in names:
            raise TypeError(f"{name}: unexpected keyword argument {k!r}; parameters are {names}")
        if k in vals:
            raise TypeError(f"{name}: got multiple values for argument {k!r}")
        vals[k] = v
    missing = [n for n in names if n not in vals and n not in defaults]
    if missing:
        raise TypeError(f"{name}: missing required argument(s) {missing}")
    return [vals[n] if n in vals else defaults[n] for n in names]


class _Frozen:
    """A distribution with its parameters fixed (SciPy's ``norm(loc, scale)``)."""

    def __init__(self, dist: Any, args: tuple, kwds: dict) -> None:
        self.dist, self.args, self.kwds = dist, args, kwds
        dist._params(args, kwds)  # argument errors at freezing time, as SciPy's

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_") or method not in self.dist._methods:
            raise AttributeError(f"frozen {self.dist.name} has no method {method!r}")
        fn = getattr(self.dist, method)
        return lambda x: fn(x, *self.args, **self.kwds)

    def __repr__(self) -> str:
        return f"<frozen diffprog.scipy.stats.{self.dist.name}{self.args}{self.kwds}>"


# -- continuous distributions (SciPy's rv_continuous) --------------------------------------------

class _Continuous:
    """A location-scale family on a standardized variable ``z = (x - loc) / scale``.

    Subclasses give the shape names, ``_argcheck``, the support of z, a safe interior z and
    safe shape values (where the formulas are evaluated at masked-out points) and the
    standardized ``_logpdf`` (and optionally ``_pdf``, ``_cdf``, ``_logcdf``, ``_sf``,
    ``_logsf``)."""

    name = ""
    shapes: tuple[str, ...] = ()
    safe_z = 0.0
    safe_shapes: tuple[float, ...] = ()
    _methods = ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")

    def __call__(self, *args: Any, **kwds: Any) -> _Frozen:
        return _Frozen(self, args, kwds)

    def __repr__(self) -> str:
        return f"<diffprog.scipy.stats.{self.name}>"

    def _params(self, args: tuple, kwds: dict) -> list[Any]:
        return _bind(self.name, self.shapes + ("loc", "scale"), {"loc": 0.0, "scale": 1.0},
                     args, kwds)

    def _argcheck(self, *shapes: Any) -> Any:
        return True

    def _support(self, *shapes: Any) -> tuple[Any, Any]:
        return -_INF, _INF

    def _pdf(self, z: Any, *shapes: Any) -> Any:
        return dnp.exp(self._logpdf(z, *shapes))

    def _logcdf(self, z: Any, *shapes: Any) -> Any:
        return dnp.log(self._cdf(z, *shapes))

    def _sf(self, z: Any, *shapes: Any) -> Any:
        return 1.0 - self._cdf(z, *shapes)

    def _logsf(self, z: Any, *shapes: Any) -> Any:
        return dnp.log(self._sf(z, *shapes))

    def _prepare(self, x: Any, args: tuple, kwds: dict, open_support: bool) -> tuple:
        """The standardized point, masks and safe inputs shared by every method."""
        vals = [_f64(v) for v in [x, *self._params(args, kwds)]]
        x, shapes, loc, scale = vals[0], vals[1:-2], vals[-2], vals[-1]
        valid = _and(self._argcheck(*shapes), scale > 0)
        safe_shapes = [dnp.where(valid, s, d) for s, d in zip(shapes, self.safe_shapes)]
        safe_scale = dnp.where(valid, scale, 1.0)
        z = (x - loc) / safe_scale
        a, b = self._support(*safe_shapes)
        inside = _and(valid, a < z, z < b) if open_support else _and(valid, a <= z, z <= b)
        bad = dnp.logical_or(dnp.logical_not(valid), dnp.isnan(z))
        safe_z = dnp.where(inside, z, self.safe_z)
        return safe_z, safe_shapes, safe_scale, inside, bad, valid, z, a, b

    def logpdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """Log of the probability density at ``x``: -inf outside the support, nan for
        invalid parameters (as ``scipy.stats``)."""
        with np.errstate(all="ignore"):
            z, sh, scale, inside, bad, *_ = self._prepare(x, args, kwds, False)
            val = self._logpdf(z, *sh) - dnp.log(scale)
            return _out(dnp.where(inside, val, dnp.where(bad, _NAN, -_INF)))

    def pdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """The probability density at ``x``: 0 outside the support, nan for invalid
        parameters."""
        with np.errstate(all="ignore"):
            z, sh, scale, inside, bad, *_ = self._prepare(x, args, kwds, False)
            val = self._pdf(z, *sh) / scale
            return _out(dnp.where(inside, val, dnp.where(bad, _NAN, 0.0)))

    def _tail(self, method: str, x: Any, args: tuple, kwds: dict, upper: bool, log: bool):
        with np.errstate(all="ignore"):
            z, sh, _, inside, bad, valid, zraw, a, b = self._prepare(x, args, kwds, True)
            val = getattr(self, "_" + method)(z, *sh)
            # beyond the upper end of the support the cdf is 1 (log 0); below the lower end
            # the sf is 1; elsewhere outside the open support 0 (log -inf)
            one = _and(valid, zraw >= b) if upper else _and(valid, zraw <= a)
            one_val, zero_val = (0.0, -_INF) if log else (1.0, 0.0)
            rest = dnp.where(bad, _NAN, dnp.where(one, one_val, zero_val))
            return _out(dnp.where(inside, val, rest))

    def cdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """The cumulative distribution function at ``x``."""
        return self._tail("cdf", x, args, kwds, True, False)

    def logcdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """The log of the cumulative distribution function at ``x``."""
        return self._tail("logcdf", x, args, kwds, True, True)

    def sf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """The survival function ``1 - cdf`` at ``x``."""
        return self._tail("sf", x, args, kwds, False, False)

    def logsf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """The log of the survival function at ``x``."""
        return self._tail("logsf", x, args, kwds, False, True)


class norm_gen(_Continuous):
    """The normal distribution (``scipy.stats.norm``): cdf via ``ndtr``, logcdf via
    ``log_ndtr`` (``log1p(-ndtr(-z))`` for z > 0).

    Example:
        >>> round(float(norm.cdf(1.96)), 6)
        0.975002
    """

    name = "norm"

    def _logpdf(self, z: Any) -> Any:
        return -z ** 2 / 2.0 - _LOG_SQRT_2PI

    def _pdf(self, z: Any) -> Any:
        return dnp.exp(-z ** 2 / 2.0) / math.sqrt(2 * math.pi)

    def _cdf(self, z: Any) -> Any:
        return sp.ndtr(z)

    def _logcdf(self, z: Any) -> Any:
        return _log_ndtr(z)

    def _sf(self, z: Any) -> Any:
        return sp.ndtr(-z)

    def _logsf(self, z: Any) -> Any:
        return _log_ndtr(-z)


class t_gen(_Continuous):
    """Student's t distribution (``scipy.stats.t``) with ``df > 0`` degrees of freedom (the
    normal at ``df = inf``); differentiable in ``df``. The cdf is ``special.stdtr`` (SciPy's);
    ``logcdf`` is ``log(1/2) + log I_w(df/2, 1/2)``, ``w = df / (df + z**2)``, for z < -1
    (finite where the cdf underflows) and ``log1p(-sf)`` for z > 1.

    Example:
        >>> round(float(t.pdf(0.0, 1.0)), 12)  # Cauchy: 1/pi
        0.318309886184
        >>> round(float(t.cdf(1.0, 1.0)), 12)
        0.75
    """

    name = "t"
    shapes = ("df",)
    safe_shapes = (1.0,)

    def _argcheck(self, df: Any) -> Any:
        return df > 0

    def _logpdf(self, z: Any, df: Any) -> Any:
        inf = dnp.isinf(df)
        d = dnp.where(inf, 1.0, df)
        lt = (sp.gammaln(0.5 * (d + 1)) - sp.gammaln(0.5 * d) - 0.5 * (dnp.log(d) + _LOG_PI)
              - (d + 1) / 2 * dnp.log1p(z * z / d))
        return dnp.where(inf, -z ** 2 / 2.0 - _LOG_SQRT_2PI, lt)

    def _cdf(self, z: Any, df: Any) -> Any:
        return sp.stdtr(df, z)

    def _sf(self, z: Any, df: Any) -> Any:
        return sp.stdtr(df, -z)

    def _logcdf(self, z: Any, df: Any) -> Any:
        inf = dnp.isinf(df)
        d = dnp.where(inf, 1.0, df)
        left, right = z < -1.0, z > 1.0
        zl = dnp.where(left, z, -2.0)
        tail = sp._log_betainc(0.5 * d, 0.0 * d + 0.5, d / (d + zl * zl)) - _LOG2
        zm = dnp.where(dnp.logical_or(left, right), 0.0, z)
        zr = dnp.where(right, z, 2.0)
        val = dnp.where(left, tail, dnp.where(right, dnp.log1p(-sp.stdtr(d, -zr)),
                                              dnp.log(sp.stdtr(d, zm))))
        return dnp.where(inf, _log_ndtr(z), val)

    def _logsf(self, z: Any, df: Any) -> Any:
        return self._logcdf(-z, df)


class cauchy_gen(_Continuous):
    """The Cauchy distribution (``scipy.stats.cauchy``).

    Example:
        >>> float(cauchy.cdf(1.0))
        0.75
    """

    name = "cauchy"

    def _logpdf(self, z: Any) -> Any:
        # SciPy's two forms: log1p(z**2) for |z| < 1, 2 log|z| + log1p(1/z**2) beyond
        # (no overflow of z**2); each branch evaluated on inputs safe for it
        az = dnp.abs(z)
        small = az < 1
        s = dnp.where(small, az, 0.5)
        big = dnp.where(small, 2.0, az)
        return dnp.where(small, -_LOG_PI - dnp.log1p(s ** 2),
                         -_LOG_PI - (2 * dnp.log(big) + dnp.log1p((1 / big) ** 2)))

    def _pdf(self, z: Any) -> Any:
        return 1.0 / math.pi / (1.0 + z * z)

    def _cdf(self, z: Any) -> Any:
        return dnp.arctan2(1.0, -z) / math.pi

    def _sf(self, z: Any) -> Any:
        return dnp.arctan2(1.0, z) / math.pi


class laplace_gen(_Continuous):
    """The Laplace distribution (``scipy.stats.laplace``); its derivative at ``x = loc`` is
    that of ``|x|`` at 0 (0).

    Example:
        >>> float(laplace.cdf(0.0))
        0.5
    """

    name = "laplace"

    def _logpdf(self, z: Any) -> Any:
        return -dnp.abs(z) - _LOG2

    def _pdf(self, z: Any) -> Any:
        return 0.5 * dnp.exp(-dnp.abs(z))

    def _cdf(self, z: Any) -> Any:
        pos = z > 0
        zp = dnp.where(pos, z, 0.0)
        zn = dnp.where(pos, 0.0, z)
        return dnp.where(pos, 1.0 - 0.5 * dnp.exp(-zp), 0.5 * dnp.exp(zn))

    def _logcdf(self, z: Any) -> Any:
        pos = z > 0
        zp = dnp.where(pos, z, 1.0)
        zn = dnp.where(pos, 0.0, z)
        return dnp.where(pos, dnp.log1p(-0.5 * dnp.exp(-zp)), zn - _LOG2)

    def _sf(self, z: Any) -> Any:
        return self._cdf(-z)

    def _logsf(self, z: Any) -> Any:
        return self._logcdf(-z)


class logistic_gen(_Continuous):
    """The logistic distribution (``scipy.stats.logistic``): cdf ``expit``, logcdf
    ``log_expit``.

    Example:
        >>> float(logistic.cdf(0.0))
        0.5
    """

    name = "logistic"

    def _logpdf(self, z: Any) -> Any:
        y = -dnp.abs(z)
        return y - 2.0 * dnp.log1p(dnp.exp(y))

    def _cdf(self, z: Any) -> Any:
        return sp.expit(z)

    def _logcdf(self, z: Any) -> Any:
        return sp.log_expit(z)

    def _sf(self, z: Any) -> Any:
        return sp.expit(-z)

    def _logsf(self, z: Any) -> Any:
        return sp.log_expit(-z)


class expon_gen(_Continuous):
    """The exponential distribution (``scipy.stats.expon``) on ``[loc, inf)``.

    Example:
        >>> float(expon.logsf(2.0))
        -2.0
    """

    name = "expon"
    safe_z = 1.0

    def _support(self) -> tuple[Any, Any]:
        return 0.0, _INF

    def _logpdf(self, z: Any) -> Any:
        return -z

    def _pdf(self, z: Any) -> Any:
        return dnp.exp(-z)

    def _cdf(self, z: Any) -> Any:
        return -dnp.expm1(-z)

    def _logcdf(self, z: Any) -> Any:
        # log(1 - e^-z): log(-expm1(-z)) near 0, log1p(-e^-z) in the tail (both accurate)
        small = z < _LOG2
        zs = dnp.where(small, z, 0.5)
        zb = dnp.where(small, 1.0, z)
        return dnp.where(small, dnp.log(-dnp.expm1(-zs)), dnp.log1p(-dnp.exp(-zb)))

    def _sf(self, z: Any) -> Any:
        return dnp.exp(-z)

    def _logsf(self, z: Any) -> Any:
        return -z


class uniform_gen(_Continuous):
    """The uniform distribution (``scipy.stats.uniform``) on ``[loc, loc + scale]``.

    Example:
        >>> float(uniform.cdf(3.0, loc=2.0, scale=4.0))
        0.25
    """

    name = "uniform"
    safe_z = 0.5

    def _support(self) -> tuple[Any, Any]:
        return 0.0, 1.0

    def _logpdf(self, z: Any) -> Any:
        return 0.0 * z

    def _pdf(self, z: Any) -> Any:
        return 0.0 * z + 1.0

    def _cdf(self, z: Any) -> Any:
        return z

    def _sf(self, z: Any) -> Any:
        return 1.0 - z


class gamma_gen(_Continuous):
    """The gamma distribution (``scipy.stats.gamma``) with shape ``a > 0``; differentiable
    in ``a``. cdf and sf are ``gammainc``/``gammaincc``; their logarithms stay accurate where
    they underflow or are close to 1.

    Example:
        >>> round(float(gamma.logpdf(1.0, 1.0)), 12)  # exponential: -x
        -1.0
        >>> round(float(gamma.logcdf(1e-3, 200.0)), 6)  # the cdf underflows: SciPy's is -inf
        -2244.784038
    """

    name = "gamma"
    shapes = ("a",)
    safe_z = 1.0
    safe_shapes = (1.0,)

    def _argcheck(self, a: Any) -> Any:
        return a > 0

    def _support(self, a: Any) -> tuple[Any, Any]:
        return 0.0, _INF

    def _logpdf(self, z: Any, a: Any) -> Any:
        return sp.xlogy(a - 1.0, z) - z - sp.gammaln(a)

    def _cdf(self, z: Any, a: Any) -> Any:
        return sp.gammainc(a, z)

    def _sf(self, z: Any, a: Any) -> Any:
        return sp.gammaincc(a, z)

    def _logcdf(self, z: Any, a: Any) -> Any:
        return sp._log_gammainc(a, z)

    def _logsf(self, z: Any, a: Any) -> Any:
        return sp._log_gammainc(a, z, upper=True)


class beta_gen(_Continuous):
    """The beta distribution (``scipy.stats.beta``) with ``a, b > 0`` on ``[0, 1]``;
    differentiable in ``a`` and ``b``. cdf and sf are ``betainc``/``betaincc``, their
    logarithms accurate in the tails.

    Example:
        >>> float(beta.pdf(0.5, 1.0, 1.0))
        1.0
    """

    name = "beta"
    shapes = ("a", "b")
    safe_z = 0.5
    safe_shapes = (1.0, 1.0)

    def _argcheck(self, a: Any, b: Any) -> Any:
        return dnp.logical_and(a > 0, b > 0)

    def _support(self, a: Any, b: Any) -> tuple[Any, Any]:
        return 0.0, 1.0

    def _logpdf(self, z: Any, a: Any, b: Any) -> Any:
        return sp.xlog1py(b - 1.0, -z) + sp.xlogy(a - 1.0, z) - sp.betaln(a, b)

    def _cdf(self, z: Any, a: Any, b: Any) -> Any:
        return sp.betainc(a, b, z)

    def _sf(self, z: Any, a: Any, b: Any) -> Any:
        return sp.betaincc(a, b, z)

    def _logcdf(self, z: Any, a: Any, b: Any) -> Any:
        return sp._log_betainc(a, b, z)

    def _logsf(self, z: Any, a: Any, b: Any) -> Any:
        return sp._log_betainc(a, b, z, upper=True)


class chi2_gen(_Continuous):
    """The chi-squared distribution (``scipy.stats.chi2``) with ``df > 0``; differentiable in
    ``df``. The cdf is ``gammainc(df/2, x/2)`` (SciPy's ``chdtr``).

    Example:
        >>> round(float(chi2.pdf(2.0, 2.0)), 12)  # exp(-x/2) / 2
        0.183939720586
    """

    name = "chi2"
    shapes = ("df",)
    safe_z = 1.0
    safe_shapes = (1.0,)

    def _argcheck(self, df: Any) -> Any:
        return df > 0

    def _support(self, df: Any) -> tuple[Any, Any]:
        return 0.0, _INF

    def _logpdf(self, z: Any, df: Any) -> Any:
        return (sp.xlogy(df / 2.0 - 1, z) - z / 2.0 - sp.gammaln(df / 2.0)
                - (_LOG2 * df) / 2.0)

    def _cdf(self, z: Any, df: Any) -> Any:
        return sp.gammainc(df / 2.0, z / 2.0)

    def _sf(self, z: Any, df: Any) -> Any:
        return sp.gammaincc(df / 2.0, z / 2.0)

    def _logcdf(self, z: Any, df: Any) -> Any:
        return sp._log_gammainc(df / 2.0, z / 2.0)

    def _logsf(self, z: Any, df: Any) -> Any:
        return sp._log_gammainc(df / 2.0, z / 2.0, upper=True)


norm = norm_gen()
t = t_gen()
cauchy = cauchy_gen()
laplace = laplace_gen()
logistic = logistic_gen()
expon = expon_gen()
uniform = uniform_gen()
gamma = gamma_gen()
beta = beta_gen()
chi2 = chi2_gen()


# -- discrete distributions (SciPy's rv_discrete) ------------------------------------------------

class _Discrete:
    """A discrete distribution of ``k - loc`` on the integers of ``[a, b]``; subclasses give
    the shape names, ``_argcheck``, the support, safe values and ``_logpmf`` (and optionally
    ``_cdf``, ``_logcdf``, ``_sf``, ``_logsf``, which floor k themselves)."""

    name = ""
    shapes: tuple[str, ...] = ()
    safe_k = 0.0
    safe_shapes: tuple[float, ...] = ()
    _methods = ("logpmf", "pmf", "cdf", "logcdf", "sf", "logsf")

    def __call__(self, *args: Any, **kwds: Any) -> _Frozen:
        return _Frozen(self, args, kwds)

    def __repr__(self) -> str:
        return f"<diffprog.scipy.stats.{self.name}>"

    def _params(self, args: tuple, kwds: dict) -> list[Any]:
        return _bind(self.name, self.shapes + ("loc",), {"loc": 0.0}, args, kwds)

    def _support(self, *shapes: Any) -> tuple[Any, Any]:
        return 0.0, _INF

    def _logcdf(self, k: Any, *shapes: Any) -> Any:
        return dnp.log(self._cdf(k, *shapes))

    def _sf(self, k: Any, *shapes: Any) -> Any:
        return dnp.exp(self._logsf(k, *shapes))

    def _prepare(self, k: Any, args: tuple, kwds: dict) -> tuple:
        vals = [_f64(v) for v in [k, *self._params(args, kwds)]]
        k, shapes = vals[0] - vals[-1], vals[1:-1]
        valid = self._argcheck(*shapes)
        safe_shapes = [dnp.where(valid, s, d) for s, d in zip(shapes, self.safe_shapes)]
        a, b = self._support(*safe_shapes)
        bad = dnp.logical_or(dnp.logical_not(valid), dnp.isnan(k))
        return k, safe_shapes, valid, bad, a, b

    def logpmf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """Log of the probability mass at ``k``: -inf off the support and at non-integer k,
        nan for invalid parameters (as ``scipy.stats``)."""
        with np.errstate(all="ignore"):
            k, sh, valid, bad, a, b = self._prepare(k, args, kwds)
            inside = _and(valid, k >= a, k <= b, dnp.floor(k) == k)
            val = self._logpmf(dnp.where(inside, k, self.safe_k), *sh)
            return _out(dnp.where(inside, val, dnp.where(bad, _NAN, -_INF)))

    def pmf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """The probability mass at ``k``: 0 off the support, nan for invalid parameters."""
        with np.errstate(all="ignore"):
            k, sh, valid, bad, a, b = self._prepare(k, args, kwds)
            inside = _and(valid, k >= a, k <= b, dnp.floor(k) == k)
            val = dnp.exp(self._logpmf(dnp.where(inside, k, self.safe_k), *sh))
            return _out(dnp.where(inside, val, dnp.where(bad, _NAN, 0.0)))

    def _tail(self, method: str, k: Any, args: tuple, kwds: dict, log: bool) -> Any:
        with np.errstate(all="ignore"):
            k, sh, valid, bad, a, b = self._prepare(k, args, kwds)
            inside = _and(valid, k >= a, k < b, dnp.isfinite(k))
            val = getattr(self, "_" + method)(dnp.where(inside, k, self.safe_k), *sh)
            if method == "cdf":
                val = dnp.clip(val, 0.0, 1.0)
            one_val, zero_val = (0.0, -_INF) if log else (1.0, 0.0)
            if method in ("cdf", "logcdf"):
                one = k >= b  # SciPy: the cdf is 1 at and beyond the upper end
            else:
                one = _and(valid, k < a)  # the sf is 1 below the lower end
            rest = dnp.where(bad, _NAN, dnp.where(one, one_val, zero_val))
            if method == "logcdf":
                # SciPy's logcdf writes its 0 beyond the upper end after the nan of invalid
                # parameters (its cdf the other way round), the end taken from the parameters
                # as given (binom's n = 5.5 ends at 5.5)
                _, b_raw = self._support(*[_f64(v) for v in self._params(args, kwds)[:-1]])
                rest = dnp.where(k >= b_raw, one_val, rest)
            return _out(dnp.where(inside, val, rest))

    def cdf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """The cumulative distribution function ``P(K <= k)``."""
        return self._tail("cdf", k, args, kwds, False)

    def logcdf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """The log of the cumulative distribution function."""
        return self._tail("logcdf", k, args, kwds, True)

    def sf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """The survival function ``P(K > k)``."""
        return self._tail("sf", k, args, kwds, False)

    def logsf(self, k: Any, *args: Any, **kwds: Any) -> Any:
        """The log of the survival function."""
        return self._tail("logsf", k, args, kwds, True)


class poisson_gen(_Discrete):
    """The Poisson distribution (``scipy.stats.poisson``) with mean ``mu >= 0``;
    differentiable in ``mu``. ``cdf(k) = gammaincc(k + 1, mu)`` (SciPy's ``pdtr``), ``sf``
    ``gammainc(k + 1, mu)``, their logarithms accurate in the tails.

    Example:
        >>> round(float(poisson.pmf(2, 2.0)), 12)  # 2 exp(-2)
        0.270670566473
    """

    name = "poisson"
    shapes = ("mu",)
    safe_shapes = (1.0,)

    def _argcheck(self, mu: Any) -> Any:
        return mu >= 0

    def _logpmf(self, k: Any, mu: Any) -> Any:
        return sp.xlogy(k, mu) - sp.gammaln(k + 1) - mu

    def _cdf(self, k: Any, mu: Any) -> Any:
        return sp.gammaincc(dnp.floor(k) + 1.0, mu)

    def _sf(self, k: Any, mu: Any) -> Any:
        return sp.gammainc(dnp.floor(k) + 1.0, mu)

    def _logcdf(self, k: Any, mu: Any) -> Any:
        return sp._log_gammainc(dnp.floor(k) + 1.0, mu, upper=True)

    def _logsf(self, k: Any, mu: Any) -> Any:
        return sp._log_gammainc(dnp.floor(k) + 1.0, mu)


class binom_gen(_Discrete):
    """The binomial distribution (``scipy.stats.binom``) with integer ``n >= 0`` and
    ``0 <= p <= 1``; differentiable in ``p`` (and, through ``gammaln`` and ``betainc``, in
    ``n``). ``cdf(k) = betaincc(k + 1, n - k, p)``, ``sf`` ``betainc(k + 1, n - k, p)`` (as
    SciPy's Boost-based ones), their logarithms accurate in the tails.

    Example:
        >>> round(float(binom.pmf(1, 2, 0.5)), 12)
        0.5
    """

    name = "binom"
    shapes = ("n", "p")
    safe_shapes = (1.0, 0.5)

    def _argcheck(self, n: Any, p: Any) -> Any:
        return _and(n >= 0, dnp.floor(n) == n, p >= 0, p <= 1)

    def _support(self, n: Any, p: Any) -> tuple[Any, Any]:
        return 0.0, n

    def _logpmf(self, k: Any, n: Any, p: Any) -> Any:
        k = dnp.floor(k)
        combiln = sp.gammaln(n + 1) - (sp.gammaln(k + 1) + sp.gammaln(n - k + 1))
        return combiln + sp.xlogy(k, p) + sp.xlog1py(n - k, -p)

    def _cdf(self, k: Any, n: Any, p: Any) -> Any:
        k = dnp.floor(k)
        return sp.betaincc(k + 1.0, n - k, p)

    def _sf(self, k: Any, n: Any, p: Any) -> Any:
        k = dnp.floor(k)
        return sp.betainc(k + 1.0, n - k, p)

    def _logcdf(self, k: Any, n: Any, p: Any) -> Any:
        k = dnp.floor(k)
        return sp._log_betainc(k + 1.0, n - k, p, upper=True)

    def _logsf(self, k: Any, n: Any, p: Any) -> Any:
        k = dnp.floor(k)
        return sp._log_betainc(k + 1.0, n - k, p)


class bernoulli_gen(binom_gen):
    """The Bernoulli distribution (``scipy.stats.bernoulli``) with ``0 <= p <= 1``.

    Example:
        >>> float(bernoulli.pmf(1, 0.25)), float(bernoulli.cdf(0, 0.25))
        (0.25, 0.75)
    """

    name = "bernoulli"
    shapes = ("p",)
    safe_shapes = (0.5,)

    def _argcheck(self, p: Any) -> Any:
        return dnp.logical_and(p >= 0, p <= 1)

    def _support(self, p: Any) -> tuple[Any, Any]:
        return 0.0, 1.0

    def _logpmf(self, k: Any, p: Any) -> Any:
        return binom_gen._logpmf(self, k, 1.0, p)

    # on the support's interior [0, 1) the cdf is P(K = 0)
    def _cdf(self, k: Any, p: Any) -> Any:
        return 1.0 - p + 0.0 * k

    def _logcdf(self, k: Any, p: Any) -> Any:
        return dnp.log(self._cdf(k, p))

    def _sf(self, k: Any, p: Any) -> Any:
        return p + 0.0 * k

    def _logsf(self, k: Any, p: Any) -> Any:
        return dnp.log(p) + 0.0 * k

    def _sf(self, k: Any, p: Any) -> Any:
        return p + 0.0 * k


class nbinom_gen(_Discrete):
    """The negative binomial distribution (``scipy.stats.nbinom``): failures before the n-th
    success, real ``n > 0``, ``0 < p <= 1``; differentiable in ``n`` and ``p``.
    ``cdf(k) = betainc(n, k + 1, p)``, ``sf`` ``betaincc(n, k + 1, p)``, their logarithms
    accurate in the tails.

    Example:
        >>> round(float(nbinom.pmf(0, 2.0, 0.5)), 12)  # p**n
        0.25
    """

    name = "nbinom"
    shapes = ("n", "p")
    safe_shapes = (1.0, 0.5)

    def _argcheck(self, n: Any, p: Any) -> Any:
        return _and(n > 0, p > 0, p <= 1)

    def _logpmf(self, k: Any, n: Any, p: Any) -> Any:
        coeff = sp.gammaln(n + k) - sp.gammaln(k + 1) - sp.gammaln(n)
        return coeff + n * dnp.log(p) + sp.xlog1py(k, -p)

    def _cdf(self, k: Any, n: Any, p: Any) -> Any:
        return sp.betainc(n, dnp.floor(k) + 1.0, p)

    def _sf(self, k: Any, n: Any, p: Any) -> Any:
        return sp.betaincc(n, dnp.floor(k) + 1.0, p)

    def _logcdf(self, k: Any, n: Any, p: Any) -> Any:
        return sp._log_betainc(n, dnp.floor(k) + 1.0, p)

    def _logsf(self, k: Any, n: Any, p: Any) -> Any:
        return sp._log_betainc(n, dnp.floor(k) + 1.0, p, upper=True)


class geom_gen(_Discrete):
    """The geometric distribution (``scipy.stats.geom``): trials up to the first success,
    ``k >= 1``, ``0 < p <= 1``; differentiable in ``p``.

    Example:
        >>> float(geom.cdf(2, 0.5))
        0.75
    """

    name = "geom"
    shapes = ("p",)
    safe_k = 1.0
    safe_shapes = (0.5,)

    def _argcheck(self, p: Any) -> Any:
        return dnp.logical_and(p <= 1, p > 0)

    def _support(self, p: Any) -> tuple[Any, Any]:
        return 1.0, _INF

    def _logpmf(self, k: Any, p: Any) -> Any:
        return sp.xlog1py(k - 1, -p) + dnp.log(p)

    def _cdf(self, k: Any, p: Any) -> Any:
        return -dnp.expm1(dnp.log1p(-p) * dnp.floor(k))

    def _logsf(self, k: Any, p: Any) -> Any:
        return dnp.floor(k) * dnp.log1p(-p)


poisson = poisson_gen()
binom = binom_gen()
bernoulli = bernoulli_gen()
nbinom = nbinom_gen()
geom = geom_gen()


# -- multivariate distributions ------------------------------------------------------------------

def _squeeze(out: Any) -> Any:
    """SciPy's ``_squeeze_output``: length-1 axes dropped, a 0-d result as a scalar."""
    return _out(dnp.squeeze(out))


class multivariate_normal_gen:
    """The multivariate normal distribution (``scipy.stats.multivariate_normal``): ``logpdf``
    and ``pdf`` of points ``x`` (the last axis the components) for one ``mean`` (default 0) and
    ``cov`` (a matrix, a vector of variances or a scalar variance), differentiable in ``x``,
    ``mean`` and ``cov``.

    With ``allow_singular=False`` (the default) a covariance that is not symmetric positive
    definite raises ``numpy.linalg.LinAlgError`` (not positive semidefinite: ``ValueError``), as
    in SciPy, whenever its value is known (eagerly and under grad; under ``jit``, where it is
    not, the Cholesky factorization raises ``LinAlgError`` at run time when it breaks down,
    which a numerically singular matrix may escape); the density comes from the Cholesky
    factor. With
    ``allow_singular=True`` the eigenvalues of ``cov`` at most SciPy's cutoff
    (``1e6 eps max|eig|``) count as zero: the density uses the pseudo-determinant and the
    pseudo-inverse, and is ``-inf`` off the affine subspace ``mean + range(cov)``. It is
    computed as the density of ``P cov P + (I - P)`` on ``P (x - mean)``, with the projector
    ``P`` onto the range of ``cov`` held constant, so no eigenvector is differentiated
    (diffprog's eigh derivative is not usable at repeated eigenvalues). For a nonsingular
    ``cov`` (P = I) every derivative is exact; for a singular one the derivatives in ``x`` and
    ``mean`` are exact to any order, those in ``cov`` right at first order along perturbations
    that keep the rank (the only ones along which the density is continuous) but not beyond,
    where the rotation of the range would enter.

    Example:
        >>> import numpy as np
        >>> round(float(multivariate_normal.logpdf([0.0, 0.0], cov=np.eye(2))), 12)
        -1.837877066409
        >>> round(float(multivariate_normal(np.zeros(2), 2.0).pdf([0.0, 0.0])), 12)
        0.079577471546
    """

    name = "multivariate_normal"
    _methods = ("logpdf", "pdf")

    def __call__(self, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> _Frozen:
        return _Frozen(self, (), {"mean": mean, "cov": cov, "allow_singular": allow_singular})

    def __repr__(self) -> str:
        return "<diffprog.scipy.stats.multivariate_normal>"

    def _params(self, args: tuple, kwds: dict) -> list[Any]:
        mean, cov, allow = _bind(self.name, ("mean", "cov", "allow_singular"),
                                 {"mean": None, "cov": 1.0, "allow_singular": False}, args, kwds)
        cov = _f64(cov)
        if mean is None:
            dim = 1 if cov.ndim < 2 else cov.shape[0]  # SciPy's rule: a vector cov is 1-D
            mean = np.zeros(dim)
        mean = _f64(mean)
        dim = int(np.prod(mean.shape))
        mean = dnp.reshape(mean, (dim,))
        if cov.ndim == 0:
            cov = cov * np.eye(dim)
        elif cov.ndim == 1:
            if cov.shape[0] != dim:
                raise ValueError(f"Array 'cov' must be of length {dim}, got {cov.shape}")
            cov = dnp.reshape(cov, (dim, 1)) * np.eye(dim)
        elif cov.shape != (dim, dim):
            raise ValueError(f"Array 'cov' must be of shape ({dim}, {dim}), got {cov.shape}")
        return [mean, cov, bool(allow)]

    def logpdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """Log of the density at ``x`` (``logpdf(x, mean=None, cov=1, allow_singular=False)``).

        Example:
            >>> float(multivariate_normal.logpdf(0.0, 0.0, 1.0))  # the standard normal's
            -0.9189385332046727
        """
        mean, cov, allow = self._params(args, kwds)
        dim = mean.shape[0]
        x = _f64(x)
        if x.ndim == 0:
            x = dnp.reshape(x, (1,))
        elif x.ndim == 1:
            x = dnp.reshape(x, (-1, 1) if dim == 1 else (1, -1))
        if x.shape[-1] != dim:
            raise ValueError(f"multivariate_normal: x has {x.shape[-1]} components, the "
                             f"distribution {dim}")
        dev = x - mean
        cv = _value(cov)
        with np.errstate(all="ignore"):
            if cv is not None:
                s = np.linalg.eigvalsh(cv)
                eps = 1e6 * np.finfo(np.float64).eps * np.max(np.abs(s))
                if np.min(s) < -eps:
                    raise ValueError("The input matrix must be symmetric positive "
                                     "semidefinite.")
                if not allow and np.any(s <= eps):
                    raise np.linalg.LinAlgError("When `allow_singular is False`, the input "
                                                "matrix must be symmetric positive definite.")
            if not allow:
                return _squeeze(self._chol_logpdf(dev, cov, dim))
            # the range of cov and its complement, as constants (no eigenvector derivatives)
            w, u = dnp.linalg.eigh(stop_gradient(cov))
            w, u = stop_gradient(w), stop_gradient(u)
            eps = 1e6 * np.finfo(np.float64).eps * dnp.max(dnp.abs(w))
            keep = dnp.astype(w > eps, np.float64)
            proj = dnp.matmul(u * keep, dnp.swapaxes(u, -1, -2))
            null = u * (1.0 - keep)
            m = dnp.matmul(dnp.matmul(proj, cov), proj) + dnp.matmul(
                null, dnp.swapaxes(u, -1, -2))
            out = self._chol_logpdf(dnp.matmul(dev, proj), m, dnp.sum(keep))
            residual = dnp.sqrt(dnp.sum(dnp.matmul(dev, null) ** 2, axis=-1))
            out = dnp.where(residual < 1e3 * eps, out, -_INF)
            return _squeeze(dnp.where(dnp.min(w) < -eps, _NAN, out))

    @staticmethod
    def _chol_logpdf(dev: Any, cov: Any, rank: Any) -> Any:
        low = dnp.linalg.cholesky(cov)
        logdet = 2.0 * dnp.sum(dnp.log(dnp.diagonal(low)))
        z = dnp.linalg.solve_triangular(low, dnp.expand_dims(dev, -1), lower=True)
        maha = dnp.sum(z ** 2, axis=(-2, -1))
        return -0.5 * (rank * _LOG_2PI + logdet + maha)

    def pdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """The density at ``x`` (``pdf(x, mean=None, cov=1, allow_singular=False)``)."""
        return _out(dnp.exp(self.logpdf(x, *args, **kwds)))


class dirichlet_gen:
    """The Dirichlet distribution (``scipy.stats.dirichlet``): ``logpdf(x, alpha)`` and
    ``pdf`` of ``x`` on the simplex, with SciPy's layout (the first axis of ``x`` the
    components, all K of them or K - 1, the last then ``1 - sum``); differentiable in ``x`` and
    ``alpha``.

    When the values are known (eagerly and under grad) invalid input raises ``ValueError`` as
    in SciPy (``alpha <= 0``, x off the simplex); under ``jit`` such points give nan (invalid
    alpha) or -inf (x off the simplex) instead.

    Example:
        >>> import numpy as np
        >>> round(float(dirichlet.pdf([0.2, 0.3, 0.5], np.ones(3))), 12)  # uniform: Gamma(3)
        2.0
    """

    name = "dirichlet"
    _methods = ("logpdf", "pdf")

    def __call__(self, alpha: Any) -> _Frozen:
        return _Frozen(self, (alpha,), {})

    def __repr__(self) -> str:
        return "<diffprog.scipy.stats.dirichlet>"

    def _params(self, args: tuple, kwds: dict) -> list[Any]:
        (alpha,) = _bind(self.name, ("alpha",), {}, args, kwds)
        alpha = _f64(alpha)
        if alpha.ndim != 1:
            raise ValueError("Parameter vector 'a' must be one dimensional, but "
                             f"a.shape = {alpha.shape}.")
        av = _value(alpha)
        if av is not None and np.min(av) <= 0:
            raise ValueError("All parameters must be greater than 0")
        return [alpha]

    def logpdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """Log of the density at ``x`` (``logpdf(x, alpha)``)."""
        (alpha,) = _bind(self.name, ("alpha",), {}, args, kwds)
        # SciPy computes in the inputs' precision: float32 x and alpha give float32
        single = all(getattr(v, "dtype", None) == np.float32 for v in (x, alpha))
        (alpha,) = self._params(args, kwds)
        k = alpha.shape[0]
        x = _f64(x)
        if x.ndim == 0 or x.shape[0] not in (k, k - 1):
            raise ValueError("Vector 'x' must have either the same number of entries as, or "
                             "one entry fewer than, parameter vector 'a', but alpha.shape = "
                             f"{alpha.shape} and x.shape = {x.shape}.")
        if x.shape[0] == k - 1:
            x = dnp.concatenate([x, dnp.expand_dims(1.0 - dnp.sum(x, axis=0), 0)], axis=0)
        a = dnp.reshape(alpha, (k,) + (1,) * (x.ndim - 1))
        xv, av = _value(x), _value(alpha)
        if xv is not None and av is not None:
            self._check(xv, av.reshape(a.shape))
        with np.errstate(all="ignore"):
            valid = dnp.all(alpha > 0)
            inside = _and(dnp.all(x >= 0, axis=0), dnp.all(x <= 1, axis=0),
                          dnp.abs(dnp.sum(x, axis=0) - 1.0) <= 10e-10)
            xs = dnp.where(inside, x, 1.0 / k)
            as_ = dnp.where(valid, a, 1.0)
            lnb = dnp.sum(sp.gammaln(as_)) - sp.gammaln(dnp.sum(as_))
            val = -lnb + dnp.sum(sp.xlogy(as_ - 1.0, xs), axis=0)
            out = dnp.where(valid, dnp.where(inside, val, -_INF), _NAN)
        return _squeeze(dnp.astype(out, np.float32) if single else out)

    @staticmethod
    def _check(x: np.ndarray, a: np.ndarray) -> None:
        """SciPy's checks of x, with its messages."""
        if np.min(x) < 0:
            raise ValueError("Each entry in 'x' must be greater than or equal to zero.")
        if np.max(x) > 1:
            raise ValueError("Each entry in 'x' must be smaller or equal one.")
        if np.any((x == 0) & (a < 1)):
            raise ValueError("Each entry in 'x' must be greater than zero if its alpha is "
                             "less than one.")
        if (np.abs(np.sum(x, 0) - 1.0) > 10e-10).any():
            raise ValueError("The input vector 'x' must lie within the normal simplex. but "
                             f"np.sum(x, 0) = {np.sum(x, 0)}.")

    def pdf(self, x: Any, *args: Any, **kwds: Any) -> Any:
        """The density at ``x`` (``pdf(x, alpha)``)."""
        return _out(dnp.exp(self.logpdf(x, *args, **kwds)))


multivariate_normal = multivariate_normal_gen()
dirichlet = dirichlet_gen()
