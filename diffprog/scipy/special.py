"""``diffprog.scipy.special``: ``scipy.special``'s functions, differentiable to any order.

Each function has SciPy's name, signature, values, edge values and dtypes (float32 stays
float32 where SciPy's does; integers compute in float64; Python scalars give NumPy scalars),
and works on traced values under ``grad``, ``jvp``, ``vjp`` and ``jit``. The elementwise ones
are primitives whose implementation is the SciPy ufunc (:mod:`._special_prims`); ``erf``,
``erfc`` and ``expit`` are diffprog's own primitives, and ``log_expit``, ``multigammaln``,
``logsumexp``, ``softmax`` and ``log_softmax`` are compositions.

SciPy's own ufuncs work on traced values too: ``scipy.special.gammaln(x)`` inside
``diffprog.grad`` is differentiated by the same rules, through NumPy's ``__array_ufunc__``
(see :func:`ufunc_rule`). SciPy's Python functions (``polygamma``, ``logsumexp``,
``softmax``) convert their argument to an array first, so for those use this module's.

Derivative conventions at edge points:

- ``xlogy(x, y)``, ``xlog1py(x, y)``: 0 where ``x == 0``; d/dy is 0 there (also at ``y = 0``,
  where x / y would be 0/0); d/dx is ``log(y)`` (``-inf`` at ``x = y = 0``, as in JAX, whose
  custom jvp is ``x_dot * log(y) + y_dot * x / y``).
- ``entr'(0) = +inf`` and ``d/dx rel_entr(0, y) = -inf`` (the one-sided limits); 0 where the
  value is the constant ±inf outside the domain.
- ``i1'(0) = i1e'(0) = 1/2`` (the limits); ``i0e'(0) = 0``, the mean of the one-sided ±1.
- ``i0e'(0) = 0`` (the mean of ±1 at its kink) and ``i0e''(0) = 3/2``, the limit from both
  sides.
- ``polygamma(n, x)``, ``iv(v, x)`` and ``ive(v, x)`` have no derivative in the order.
- ``gammainc``, ``gammaincc``, ``betainc``, ``betaincc`` (and their inverses, and ``stdtr``)
  are differentiable in every argument to any order: in ``x`` by the density, in the shape
  parameters by series and continued fractions differentiated term by term; those derivatives
  are 0 where the function is constant in them (``x`` at the ends of its range) and nan for
  shape parameters outside the domain (``a <= 0``).

Example:
    >>> import numpy as np, diffprog as dp
    >>> from diffprog.scipy import special
    >>> float(dp.grad(special.gammaln)(3.0))  # digamma(3) = 3/2 - Euler's gamma
    0.9227843350984671
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.special as sc

from .. import nn
from .. import numpy as dnp
from .. import prims as P
from ..core import Primitive, ShapedArray, Tracer, bind, concrete
from ..custom import stop_gradient
from . import _special_prims as S

__all__ = ["gammaln", "gamma", "digamma", "psi", "polygamma", "multigammaln", "beta", "betaln",
           "erf", "erfc", "erfinv", "erfcinv", "erfcx", "ndtr", "ndtri", "log_ndtr", "expit",
           "logit", "log_expit", "xlogy", "xlog1py", "entr", "rel_entr", "i0", "i0e", "i1",
           "i1e", "iv", "ive", "gammainc", "gammaincc", "betainc", "betaincc", "gammaincinv",
           "gammainccinv", "betaincinv", "betainccinv", "stdtr", "chdtr", "chdtrc", "pdtr",
           "pdtrc", "bdtr", "bdtrc", "nbdtr", "nbdtrc", "gdtr", "gdtrc", "logsumexp", "softmax",
           "log_softmax", "ufunc_rule"]


def _traced(*args: Any) -> bool:
    return any(isinstance(a, Tracer) for a in args)


def _apply(prim: Primitive, *args: Any, keep: tuple[int, ...] = (), **params: Any) -> Any:
    """``prim`` on ``args`` (with static ``params``) with SciPy's broadcasting and dtype:
    untraced, the SciPy ufunc itself; traced, the float operands cast to the result's dtype
    (except at positions ``keep``) and the traced ones broadcast to its shape, as the rules
    expect."""
    if not _traced(*args):
        return prim.impl(*args, **params)
    args = tuple(a if isinstance(a, (Tracer, float, int, bool)) else np.asarray(a)
                 for a in args)
    with np.errstate(all="ignore"):
        dtype = np.result_type(prim.impl(*[np.ones((), a.dtype) if hasattr(a, "dtype") else a
                                           for a in args], **params))
    shape = np.broadcast_shapes(*[np.shape(a) if not hasattr(a, "shape") else a.shape
                                  for a in args])
    ops = []
    for i, a in enumerate(args):
        if i not in keep and dtype.kind == "f" and hasattr(a, "dtype") and a.dtype != dtype:
            a = dnp.astype(a, dtype)  # on a traced value: a cast whose vjp casts back
        if isinstance(a, Tracer) and a.shape != shape:
            a = P.broadcast_to(a, shape=shape)
        ops.append(a)
    return bind(prim, *ops, **params)


def _scalar(out: Any) -> Any:
    """A 0-d array as a NumPy scalar, as SciPy returns for scalar input."""
    return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out


# -- gamma family --------------------------------------------------------------------------------

def gammaln(x: Any) -> Any:
    """``log|Gamma(x)|`` (``scipy.special.gammaln``); derivative ``digamma(x)``.

    Example:
        >>> float(gammaln(5.0))  # log(4!)
        3.1780538303479458
    """
    return _apply(S.gammaln, x)


def gamma(x: Any) -> Any:
    """The gamma function (``scipy.special.gamma``); derivative ``gamma(x) digamma(x)``.

    Example:
        >>> float(gamma(5.0))
        24.0
    """
    return _apply(S.gamma, x)


def digamma(x: Any) -> Any:
    """``d/dx log Gamma(x)`` (``scipy.special.digamma``, also ``psi``); derivative
    ``polygamma(1, x)``.

    Example:
        >>> round(float(digamma(1.0)), 12)  # -Euler's gamma
        -0.577215664902
    """
    return _apply(S.digamma, x)


psi = digamma


def polygamma(n: Any, x: Any) -> Any:
    """The n-th derivative of digamma (``scipy.special.polygamma``); ``n`` is a non-negative
    integer (array) without derivative, and ``d/dx polygamma(n, x) = polygamma(n + 1, x)``.

    Like SciPy's, the result is float64 (also for float32 ``x``) and an array.

    Example:
        >>> round(float(polygamma(1, 1.0)), 12)  # pi**2 / 6
        1.644934066848
    """
    return _apply(S.polygamma, n, x, keep=(0,))


def multigammaln(a: Any, d: int) -> Any:
    """The log of the multivariate gamma function of dimension ``d``
    (``scipy.special.multigammaln``): ``d(d-1)/4 log(pi) + sum_j gammaln(a - j/2)``,
    ``j = 0 .. d-1``; ``a`` must exceed ``(d - 1) / 2``.

    Example:
        >>> round(float(multigammaln(3.0, 2)), 12)
        1.550194993958
    """
    if not np.isscalar(d) or math.floor(d) != d:
        raise ValueError("d should be a positive integer (dimension)")
    value = concrete(a)
    if not isinstance(value, ShapedArray) and np.any(np.asarray(value) <= 0.5 * (d - 1)):
        raise ValueError(f"condition a ({value}) > 0.5 * (d-1) ({0.5 * (d - 1)}) not met")
    if not _traced(a):
        a = np.asarray(a)
    res = np.float64(d * (d - 1) * 0.25) * np.log(np.pi)  # a NumPy float64, as SciPy's
    terms = [gammaln(a - (j - 1.0) / 2) for j in range(1, d + 1)]
    return _scalar(res + dnp.sum(dnp.stack(terms), axis=0))


def beta(a: Any, b: Any) -> Any:
    """``Gamma(a) Gamma(b) / Gamma(a + b)`` (``scipy.special.beta``); d/da is
    ``beta(a, b) (digamma(a) - digamma(a + b))``.

    Example:
        >>> round(float(beta(2.0, 3.0)), 15)
        0.083333333333333
    """
    return _apply(S.beta, a, b)


def betaln(a: Any, b: Any) -> Any:
    """``log|beta(a, b)|`` (``scipy.special.betaln``); d/da is ``digamma(a) - digamma(a+b)``.

    Example:
        >>> round(float(betaln(2.0, 3.0)), 12)  # log(1/12)
        -2.484906649788
    """
    return _apply(S.betaln, a, b)


# -- error functions and the normal distribution -------------------------------------------------

# erf and erfc are diffprog.nn's (the same primitives, with scipy.special's names)
erf = nn.erf
erfc = nn.erfc


def erfinv(x: Any) -> Any:
    """The inverse of ``erf`` (``scipy.special.erfinv``); ``±inf`` at ``±1``; derivative
    ``sqrt(pi)/2 exp(erfinv(x)**2)``.

    Example:
        >>> round(float(erfinv(erf(0.3))), 12)
        0.3
    """
    return _apply(S.erfinv, x)


def erfcinv(x: Any) -> Any:
    """The inverse of ``erfc`` (``scipy.special.erfcinv``); derivative
    ``-sqrt(pi)/2 exp(erfcinv(x)**2)``.

    Example:
        >>> round(float(erfcinv(erfc(0.3))), 12)
        0.3
    """
    return _apply(S.erfcinv, x)


def erfcx(x: Any) -> Any:
    """``exp(x**2) erfc(x)`` (``scipy.special.erfcx``); derivative ``2 x erfcx(x) - 2/sqrt(pi)``.

    Example:
        >>> float(erfcx(0.0))
        1.0
    """
    return _apply(S.erfcx, x)


def ndtr(x: Any) -> Any:
    """The standard normal CDF (``scipy.special.ndtr``); derivative the normal density.

    Example:
        >>> float(ndtr(0.0))
        0.5
    """
    return _apply(S.ndtr, x)


def ndtri(y: Any) -> Any:
    """The inverse of ``ndtr`` (``scipy.special.ndtri``): ``-inf`` at 0, ``inf`` at 1;
    derivative ``sqrt(2 pi) exp(ndtri(y)**2 / 2)``.

    Example:
        >>> float(ndtri(0.5))
        0.0
    """
    return _apply(S.ndtri, y)


def log_ndtr(x: Any) -> Any:
    """``log(ndtr(x))``, accurate for very negative x (``scipy.special.log_ndtr``). The
    derivative ``phi(x) / ndtr(x)`` is computed as ``sqrt(2/pi) / erfcx(-x/sqrt(2))``, which
    stays accurate where both phi and ndtr underflow (it tends to ``-x``).

    Example:
        >>> import diffprog as dp
        >>> round(float(dp.grad(log_ndtr)(-40.0)), 9)
        40.024968847
    """
    return _apply(S.log_ndtr, x)


# -- logistic ------------------------------------------------------------------------------------

def expit(x: Any) -> Any:
    """The logistic sigmoid ``1 / (1 + exp(-x))`` (``scipy.special.expit``); diffprog's
    ``logistic`` primitive.

    Example:
        >>> float(expit(0.0))
        0.5
    """
    return bind(P.logistic, x)


def logit(p: Any) -> Any:
    """``log(p / (1 - p))``, the inverse of ``expit`` (``scipy.special.logit``); derivative
    ``1 / (p (1 - p))``.

    Example:
        >>> float(logit(0.5))
        0.0
    """
    return _apply(S.logit, p)


def log_expit(x: Any) -> Any:
    """``log(expit(x)) = -logaddexp(-x, 0)``, finite for any x (``scipy.special.log_expit``).

    Example:
        >>> float(log_expit(-1000.0))
        -1000.0
    """
    if not _traced(x) and not isinstance(x, (float, int)):
        x = np.asarray(x)
    return dnp.negative(dnp.logaddexp(dnp.negative(x), 0.0))


# -- x log y, entropies --------------------------------------------------------------------------

def xlogy(x: Any, y: Any) -> Any:
    """``x * log(y)``, 0 where ``x == 0`` (``scipy.special.xlogy``). d/dx is ``log(y)``;
    d/dy is ``x / y``, 0 where ``x == 0``.

    Example:
        >>> import diffprog as dp
        >>> float(xlogy(0.0, 0.0)), float(dp.grad(xlogy, argnums=1)(0.0, 0.0))
        (0.0, 0.0)
    """
    return _apply(S.xlogy, x, y)


def xlog1py(x: Any, y: Any) -> Any:
    """``x * log1p(y)``, 0 where ``x == 0`` (``scipy.special.xlog1py``); derivatives as for
    :func:`xlogy`.

    Example:
        >>> float(xlog1py(0.0, -1.0))
        0.0
    """
    return _apply(S.xlog1py, x, y)


def entr(x: Any) -> Any:
    """``-x log x`` for x > 0, 0 at 0, ``-inf`` for x < 0 (``scipy.special.entr``).

    Example:
        >>> float(entr(1.0)), float(entr(0.0))
        (-0.0, 0.0)
    """
    return _apply(S.entr, x)


def rel_entr(x: Any, y: Any) -> Any:
    """``x log(x / y)`` for x, y > 0; 0 at x = 0, y >= 0; inf elsewhere
    (``scipy.special.rel_entr``).

    Example:
        >>> float(rel_entr(0.0, 2.0))
        0.0
    """
    return _apply(S.rel_entr, x, y)


# -- Bessel --------------------------------------------------------------------------------------

def i0(x: Any) -> Any:
    """The modified Bessel function of order 0 (``scipy.special.i0``); derivative ``i1``.

    Example:
        >>> float(i0(0.0))
        1.0
    """
    return _apply(S.i0, x)


def i0e(x: Any) -> Any:
    """``exp(-|x|) i0(x)`` (``scipy.special.i0e``); derivative ``i1e - sign(x) i0e``.

    Example:
        >>> float(i0e(0.0))
        1.0
    """
    return _apply(S.i0e, x)


def i1(x: Any) -> Any:
    """The modified Bessel function of order 1 (``scipy.special.i1``); derivative
    ``i0 - i1 / x``, computed as ``(i0 + iv(2, .)) / 2`` (1/2 at 0, and right at 0 to any order).

    Example:
        >>> import diffprog as dp
        >>> float(dp.grad(i1)(0.0))
        0.5
    """
    return _apply(S.i1, x)


def i1e(x: Any) -> Any:
    """``exp(-|x|) i1(x)`` (``scipy.special.i1e``); derivative ``i0e - i1e (sign(x) + 1/x)``,
    computed as ``(i0e + ive(2, .)) / 2 - sign(x) i1e`` (1/2 at 0).

    Example:
        >>> float(i1e(0.0))
        0.0
    """
    return _apply(S.i1e, x)


def iv(v: Any, x: Any) -> Any:
    """The modified Bessel function of real order ``v`` (``scipy.special.iv``);
    ``d/dx iv(v, x) = (iv(v - 1, x) + iv(v + 1, x)) / 2``, no derivative in ``v``.

    Example:
        >>> import diffprog as dp
        >>> float(dp.grad(iv, argnums=1)(1, 0.0))
        0.5
    """
    return _apply(S.iv, v, x, keep=(0,))


def ive(v: Any, x: Any) -> Any:
    """``exp(-|x|) iv(v, x)`` (``scipy.special.ive``); derivative in ``x``
    ``(ive(v - 1, x) + ive(v + 1, x)) / 2 - sign(x) ive(v, x)``, none in ``v``.

    Example:
        >>> float(ive(0, 0.0))
        1.0
    """
    return _apply(S.ive, v, x, keep=(0,))


# -- incomplete gamma and beta functions ----------------------------------------------------------

def gammainc(a: Any, x: Any) -> Any:
    """The regularized lower incomplete gamma function
    ``P(a, x) = gamma(a, x) / Gamma(a)`` (``scipy.special.gammainc``), differentiable in
    both arguments to any order.

    ``d/dx = x**(a-1) exp(-x) / Gamma(a)``; the derivatives in ``a`` (no closed form) come from
    the series and continued fraction of P and Q differentiated term by term (AS 187, see
    ``_special_prims``), accurate to about 1e-13 for ``a`` up to a few thousand. At ``x = 0``
    and ``x = inf`` (where P is constant) they are 0; for ``a <= 0`` nan.

    Example:
        >>> import diffprog as dp
        >>> round(float(gammainc(1.0, 2.0)), 12)  # 1 - exp(-2)
        0.864664716763
        >>> round(float(dp.grad(gammainc)(1.0, 2.0)), 12)  # -(log 2 + e^2 E1(2) + euler) e^-2
        -0.220825426212
    """
    return _apply(S.incgamma, a, x, da=0, upper=False, log=False)


def gammaincc(a: Any, x: Any) -> Any:
    """The regularized upper incomplete gamma function ``Q(a, x) = 1 - P(a, x)``
    (``scipy.special.gammaincc``), accurate where Q is tiny; derivatives as
    :func:`gammainc`'s, negated.

    Example:
        >>> round(float(gammaincc(2.0, 600.0) / (601 * np.exp(-600.0))), 12)  # (1 + x) e^-x
        1.0
    """
    return _apply(S.incgamma, a, x, da=0, upper=True, log=False)


def betainc(a: Any, b: Any, x: Any) -> Any:
    """The regularized incomplete beta function ``I_x(a, b)`` (``scipy.special.betainc``),
    differentiable in ``a``, ``b`` and ``x`` to any order.

    ``d/dx = x**(a-1) (1-x)**(b-1) / B(a, b)``; the derivatives in ``a`` and ``b`` come from the
    continued fraction differentiated term by term (Boik and Robison-Cox 1998, see
    ``_special_prims``). At ``x = 0`` and ``x = 1`` they are 0; for ``a <= 0`` or ``b <= 0``
    nan.

    Example:
        >>> import diffprog as dp
        >>> float(betainc(1.0, 1.0, 0.25))  # the uniform distribution
        0.25
        >>> round(float(dp.grad(betainc, argnums=2)(2.0, 3.0, 0.5)), 12)  # 12 x (1-x)**2
        1.5
    """
    return _apply(S.incbeta, a, b, x, da=0, db=0, upper=False, log=False)


def betaincc(a: Any, b: Any, x: Any) -> Any:
    """``1 - I_x(a, b)`` (``scipy.special.betaincc``), accurate where it is tiny; derivatives
    as :func:`betainc`'s, negated.

    Example:
        >>> round(float(betaincc(2.0, 3.0, 0.2)), 12)
        0.8192
    """
    return _apply(S.incbeta, a, b, x, da=0, db=0, upper=True, log=False)


def gammaincinv(a: Any, y: Any) -> Any:
    """The inverse of :func:`gammainc` in ``x`` (``scipy.special.gammaincinv``): the ``x``
    with ``P(a, x) = y``. Derivatives by the implicit function theorem:
    ``dx/dy = 1 / P_x(a, x)``, ``dx/da = -P_a(a, x) / P_x(a, x)``.

    Example:
        >>> round(float(gammaincinv(1.0, 0.5)), 12)  # log 2
        0.69314718056
    """
    return _apply(S.gammaincinv, a, y)


def gammainccinv(a: Any, y: Any) -> Any:
    """The inverse of :func:`gammaincc` in ``x`` (``scipy.special.gammainccinv``);
    derivatives as :func:`gammaincinv`'s.

    Example:
        >>> round(float(gammainccinv(1.0, 0.5)), 12)
        0.69314718056
    """
    return _apply(S.gammainccinv, a, y)


def betaincinv(a: Any, b: Any, y: Any) -> Any:
    """The inverse of :func:`betainc` in ``x`` (``scipy.special.betaincinv``); derivatives
    by the implicit function theorem, as :func:`gammaincinv`'s.

    Example:
        >>> float(betaincinv(1.0, 1.0, 0.25))
        0.25
    """
    return _apply(S.betaincinv, a, b, y)


def betainccinv(a: Any, b: Any, y: Any) -> Any:
    """The inverse of :func:`betaincc` in ``x`` (``scipy.special.betainccinv``).

    Example:
        >>> round(float(betainccinv(1.0, 1.0, 0.25)), 12)
        0.75
    """
    return _apply(S.betainccinv, a, b, y)


def stdtr(df: Any, t: Any) -> Any:
    """Student's t distribution function (``scipy.special.stdtr``); ``d/dt`` is the t density,
    ``d/ddf`` follows from :func:`betainc`'s derivatives (0 at ``t = 0`` and ``df = inf``).

    Example:
        >>> round(float(stdtr(1.0, 1.0)), 12)  # Cauchy: 1/2 + atan(1)/pi
        0.75
    """
    return _apply(S.stdtr, df, t)


# -- distribution functions: compositions of the incomplete gamma and beta functions -------------

def _whole(k: Any, trunc: bool = False) -> Any:
    """A count argument as SciPy reads it: ``floor(k)`` (``trunc``: rounded toward 0, as a
    C cast to ``long``), float, with no derivative."""
    if isinstance(k, Tracer):
        return stop_gradient(dnp.trunc(k) if trunc else dnp.floor(k))
    k = np.asarray(k)
    k = k if k.dtype.kind == "f" else k.astype(np.float64)
    return np.trunc(k) if trunc else np.floor(k)


def _or(*conds: Any) -> Any:
    out = conds[0]
    for c in conds[1:]:
        out = dnp.logical_or(out, c)
    return out


def _outside_unit(p: Any) -> Any:
    """``p`` outside ``[0, 1]`` or nan (where SciPy's binomial family returns nan)."""
    return dnp.logical_not(dnp.logical_and(dnp.greater_equal(p, 0), dnp.less_equal(p, 1)))


def chdtr(v: Any, x: Any) -> Any:
    """The chi-square distribution function with ``v`` degrees of freedom
    (``scipy.special.chdtr``): ``gammainc(v / 2, x / 2)``, differentiable in ``v`` and ``x``.

    Example:
        >>> import diffprog as dp
        >>> round(float(chdtr(2.0, 2.0)), 12)  # 1 - exp(-x/2)
        0.632120558829
        >>> round(float(dp.grad(chdtr, argnums=1)(2.0, 2.0)), 12)  # exp(-x/2) / 2
        0.183939720586
    """
    if not _traced(v, x):
        return sc.chdtr(v, x)
    return gammainc(dnp.divide(v, 2), dnp.divide(x, 2))


def chdtrc(v: Any, x: Any) -> Any:
    """The chi-square survival function (``scipy.special.chdtrc``):
    ``gammaincc(v / 2, x / 2)``.

    Example:
        >>> round(float(chdtrc(2.0, 2.0)), 12)  # exp(-x/2)
        0.367879441171
    """
    if not _traced(v, x):
        return sc.chdtrc(v, x)
    return gammaincc(dnp.divide(v, 2), dnp.divide(x, 2))


def _pdtr(k: Any, m: Any, upper: bool) -> Any:
    fk = _whole(k)
    bad = dnp.less(fk, 0)  # SciPy: nan for k < 0 (m < 0 is nan in gammainc itself)
    a = dnp.where(bad, 1.0, fk + 1)
    out = gammainc(a, m) if upper else gammaincc(a, m)
    # SciPy answers m = 0 before it looks at k, so also for k = nan
    out = dnp.where(dnp.logical_and(dnp.isnan(fk), dnp.equal(m, 0)), 0.0 if upper else 1.0, out)
    return dnp.where(bad, np.nan, out)


def pdtr(k: Any, m: Any) -> Any:
    """The Poisson distribution function, ``P(N <= k)`` for mean ``m``
    (``scipy.special.pdtr``): ``gammaincc(floor(k) + 1, m)``, differentiable in ``m``
    (``k`` is a count: no derivative).

    Example:
        >>> import diffprog as dp
        >>> round(float(pdtr(0, 2.0)), 12)  # exp(-m)
        0.135335283237
        >>> round(float(dp.grad(pdtr, argnums=1)(1, 2.0)), 12)  # -m exp(-m)
        -0.270670566473
    """
    if not _traced(k, m):
        return sc.pdtr(k, m)
    return _pdtr(k, m, upper=False)


def pdtrc(k: Any, m: Any) -> Any:
    """The Poisson survival function, ``P(N > k)`` (``scipy.special.pdtrc``):
    ``gammainc(floor(k) + 1, m)``.

    Example:
        >>> round(float(pdtrc(0, 2.0)), 12)  # 1 - exp(-m)
        0.864664716763
    """
    if not _traced(k, m):
        return sc.pdtrc(k, m)
    return _pdtr(k, m, upper=True)


def bdtr(k: Any, n: Any, p: Any) -> Any:
    """The binomial distribution function, ``P(N <= k)`` for ``n`` trials of probability ``p``
    (``scipy.special.bdtr``): ``betaincc(floor(k) + 1, n - floor(k), p)``, 1 at ``k = n``, nan
    for ``k < 0``, ``k > n`` or ``p`` outside ``[0, 1]``; differentiable in ``p``.

    Example:
        >>> import diffprog as dp
        >>> round(float(bdtr(0, 3, 0.25)), 12)  # (1 - p)**3
        0.421875
        >>> round(float(dp.grad(bdtr, argnums=2)(0, 3, 0.25)), 12)  # -3 (1 - p)**2
        -1.6875
    """
    if not _traced(k, n, p):
        return sc.bdtr(k, n, p)
    fk, n = _whole(k), _whole(n, trunc=True)
    top = dnp.equal(fk, n)
    bad = _or(dnp.less(fk, 0), dnp.greater(fk, n), _outside_unit(p))
    # safe shape parameters where the value is a constant, so no nan reaches d/dp there
    off = _or(bad, top)
    fk, n = dnp.where(off, 0.0, fk), dnp.where(off, 1.0, n)
    out = dnp.where(top, 1.0, betaincc(fk + 1, n - fk, p))
    return dnp.where(bad, np.nan, out)


def bdtrc(k: Any, n: Any, p: Any) -> Any:
    """The binomial survival function, ``P(N > k)`` (``scipy.special.bdtrc``):
    ``betainc(floor(k) + 1, n - floor(k), p)``; 1 for ``k < 0``, 0 at ``k = n``, nan for
    ``k > n`` or ``p`` outside ``[0, 1]``; differentiable in ``p``.

    Example:
        >>> round(float(bdtrc(0, 3, 0.25)), 12)  # 1 - (1 - p)**3
        0.578125
    """
    if not _traced(k, n, p):
        return sc.bdtrc(k, n, p)
    fk, n = _whole(k), _whole(n, trunc=True)
    low, top = dnp.less(fk, 0), dnp.equal(fk, n)
    bad = _or(dnp.logical_and(dnp.logical_not(low), dnp.greater(fk, n)), _outside_unit(p))
    off = _or(bad, low, top)
    fk, n = dnp.where(off, 0.0, fk), dnp.where(off, 1.0, n)
    out = dnp.where(low, 1.0, dnp.where(top, 0.0, betainc(fk + 1, n - fk, p)))
    return dnp.where(bad, np.nan, out)


def _nbdtr(k: Any, n: Any, p: Any, upper: bool) -> Any:
    k, n = _whole(k, trunc=True), _whole(n, trunc=True)  # C casts to long
    bad = _or(dnp.less(k, 0), dnp.less_equal(n, 0), _outside_unit(p))
    k, n = dnp.where(bad, 0.0, k), dnp.where(bad, 1.0, n)
    out = betaincc(n, k + 1, p) if upper else betainc(n, k + 1, p)
    return dnp.where(bad, np.nan, out)


def nbdtr(k: Any, n: Any, p: Any) -> Any:
    """The negative binomial distribution function (``scipy.special.nbdtr``): the probability
    of at most ``k`` failures before the ``n``-th success, ``betainc(n, k + 1, p)``; nan for
    ``k < 0``, ``n <= 0`` or ``p`` outside ``[0, 1]``; differentiable in ``p``.

    Example:
        >>> round(float(nbdtr(0, 3, 0.5)), 12)  # p**n
        0.125
    """
    if not _traced(k, n, p):
        return sc.nbdtr(k, n, p)
    return _nbdtr(k, n, p, upper=False)


def nbdtrc(k: Any, n: Any, p: Any) -> Any:
    """The negative binomial survival function (``scipy.special.nbdtrc``):
    ``betaincc(n, k + 1, p)``.

    Example:
        >>> round(float(nbdtrc(0, 3, 0.5)), 12)  # 1 - p**n
        0.875
    """
    if not _traced(k, n, p):
        return sc.nbdtrc(k, n, p)
    return _nbdtr(k, n, p, upper=True)


def _gdtr(a: Any, b: Any, x: Any, upper: bool) -> Any:
    ax = dnp.multiply(a, x)
    out = gammaincc(b, ax) if upper else gammainc(b, ax)
    return dnp.where(dnp.less(x, 0), np.nan, out)  # SciPy: nan for x < 0 whatever a's sign


def gdtr(a: Any, b: Any, x: Any) -> Any:
    """The gamma distribution function of rate ``a`` and shape ``b`` (``scipy.special.gdtr``):
    ``gammainc(b, a * x)``, nan for ``x < 0``; differentiable in ``a``, ``b`` and ``x``.

    Example:
        >>> import diffprog as dp
        >>> round(float(gdtr(2.0, 1.0, 0.5)), 12)  # 1 - exp(-a x)
        0.632120558829
        >>> round(float(dp.grad(gdtr)(2.0, 1.0, 0.5)), 12)  # x exp(-a x)
        0.183939720586
    """
    if not _traced(a, b, x):
        return sc.gdtr(a, b, x)
    return _gdtr(a, b, x, upper=False)


def gdtrc(a: Any, b: Any, x: Any) -> Any:
    """The gamma survival function (``scipy.special.gdtrc``): ``gammaincc(b, a * x)``.

    Example:
        >>> round(float(gdtrc(2.0, 1.0, 0.5)), 12)  # exp(-a x)
        0.367879441171
    """
    if not _traced(a, b, x):
        return sc.gdtrc(a, b, x)
    return _gdtr(a, b, x, upper=True)


def _log_gammainc(a: Any, x: Any, upper: bool = False) -> Any:
    """``log P(a, x)`` (``upper``: ``log Q(a, x)``), accurate where P (Q) underflows and where
    it is close to 1, with derivatives of every order; for ``stats``."""
    return _apply(S.incgamma, a, x, da=0, upper=upper, log=True)


def _log_betainc(a: Any, b: Any, x: Any, upper: bool = False) -> Any:
    """``log I_x(a, b)`` (``upper``: ``log(1 - I_x(a, b))``), accurate in the tails."""
    return _apply(S.incbeta, a, b, x, da=0, db=0, upper=upper, log=True)


# -- reductions ----------------------------------------------------------------------------------

def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False) -> Any:
    """``log(sum(b * exp(a)))`` over ``axis`` without overflow (``scipy.special.logsumexp``).

    ``b`` may be negative; with ``return_sign`` the result is ``(log|s|, sign(s))`` for the
    sum ``s``, without it a negative sum gives nan. Entries with ``b == 0`` drop out (even
    where ``a`` is inf or nan). As SciPy's, the largest term is split off and the rest added
    with ``log1p``, so results near 0 are accurate (``logsumexp([0, -40]) = 4.25e-18``, not
    0). A composition (not diffprog's ``logsumexp`` primitive, which is ``log(sum(exp(a -
    max))) + max``) whose derivative in ``b`` is ``exp(a) / s``, finite also where ``b == 0``.

    Example:
        >>> out, sign = logsumexp(np.array([1.0, 2.0]), b=np.array([1.0, -1.0]),
        ...                       return_sign=True)
        >>> round(float(out), 12), float(sign)
        (1.541324854613, -1.0)
    """
    if not isinstance(a, Tracer):
        a = np.asarray(a)
        if a.dtype.kind not in "fc":
            a = a.astype(np.float64)
    if b is not None and not isinstance(b, Tracer):
        b = np.asarray(b)
    if b is None and not return_sign and int(np.prod(dnp.shape(a))) == 0:
        out = dnp.logsumexp(a, axis=axis, keepdims=keepdims)  # -inf, the log of an empty sum
        return _scalar(out) if not isinstance(out, Tracer) else out
    if b is None:
        b = np.ones((), a.dtype)
    # a and b in one float dtype and shape, as SciPy promotes them
    dtype = dnp.result_type(a, b, np.float16)
    a, b = (x if dnp.result_type(x) == dtype else dnp.astype(x, dtype) for x in (a, b))
    if dnp.shape(a) != dnp.shape(b):
        shape = np.broadcast_shapes(dnp.shape(a), dnp.shape(b))
        a, b = dnp.broadcast_to(a, shape), dnp.broadcast_to(b, shape)
    out, sign = _logsumexp_signed(a, axis, b)
    if not return_sign:  # a negative sum has no logarithm
        out = dnp.where(dnp.less(sign, 0), np.nan, out)
        sign = None
    # Where the result is not finite SciPy returns log(sum(b * exp(a))) as computed directly
    # (nan for 0 * inf); a constant, read only there.
    with np.errstate(all="ignore"):
        direct = stop_gradient(dnp.sum(b * dnp.exp(stop_gradient(a)), axis=axis,
                                       keepdims=True))
        finite = dnp.isfinite(out)
        out = dnp.where(finite, out, dnp.log(dnp.abs(direct) if return_sign else direct))
    if sign is not None:
        sign = dnp.where(finite, sign, dnp.sign(direct))
    if not keepdims:
        axes = tuple(range(dnp.ndim(out))) if axis is None else axis
        out = dnp.squeeze(out, axis=axes)
        sign = None if sign is None else dnp.squeeze(sign, axis=axes)
    out, sign = _scalar(out), _scalar(sign)
    return (out, sign) if return_sign else out


def _logsumexp_signed(a: Any, axis: Any, b: Any) -> tuple[Any, Any]:
    """``log|s|`` and ``sign(s)`` for ``s = sum(b * exp(a))`` over ``axis``, axes kept.

    As SciPy's: the terms at the largest ``a`` (``M``, their weights' sum) are split off the
    rest (``R``), ``log|s| = log|1 + R/M| + log|M| + max a``, with ``log1p``, so a result
    near 0 keeps its digits (``logsumexp([0, -40]) = log1p(exp(-40))``, not ``log(1.0)``).
    The shift and the mask of the largest entries are constants (the value does not depend
    on them); ``M`` and ``R`` carry the derivatives (of ``log(M + R)``, by the chain rule)."""
    # an entry with b == 0 and a non-finite a drops out (no 0 * inf)
    counts = dnp.not_equal(b, 0)
    a = dnp.where(dnp.logical_or(counts, dnp.isfinite(a)), a, -np.inf)
    top = stop_gradient(dnp.where(counts, a, -np.inf))
    m = dnp.max(top, axis=axis, keepdims=True)
    at_max = dnp.logical_and(counts, dnp.equal(top, m))
    m = stop_gradient(dnp.where(dnp.isfinite(m), m, 0.0))
    terms = b * dnp.exp(a - m)
    big = dnp.sum(dnp.where(at_max, terms, 0.0), axis=axis, keepdims=True)
    rest = dnp.sum(dnp.where(at_max, 0.0, terms), axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        nonzero = dnp.not_equal(big, 0)
        big_s = dnp.where(nonzero, big, 1.0)
        r = dnp.where(nonzero, rest / big_s, rest)
        # log|1 + r|: log1p(r) for r > -1, log1p(-r - 2) below (each on a safe input)
        below = dnp.less(r, -1)
        log1 = dnp.where(below, dnp.log1p(-dnp.where(below, r, -2.0) - 2.0),
                         dnp.log1p(dnp.where(below, 0.0, r)))
        out = log1 + dnp.log(dnp.abs(big_s)) + m
        out = dnp.where(nonzero, out, dnp.log(dnp.abs(rest)) + m)
        return out, dnp.sign(big_s) * dnp.sign(1.0 + r)


def softmax(x: Any, axis: Any = None) -> Any:
    """``exp(x) / sum(exp(x))`` over ``axis`` (all axes by default), without overflow
    (``scipy.special.softmax``); diffprog.nn's softmax.

    Example:
        >>> softmax(np.array([0.0, np.log(3.0)])).round(3)
        array([0.25, 0.75])
    """
    if not isinstance(x, Tracer):
        x = np.asarray(x)
    return nn.softmax(x, axis=axis)


def log_softmax(x: Any, axis: Any = None) -> Any:
    """``x - logsumexp(x)`` over ``axis`` (all axes by default) (``scipy.special.log_softmax``);
    diffprog.nn's log_softmax.

    Example:
        >>> log_softmax(np.array([1000.0, 1.0]))
        array([   0., -999.])
    """
    if not isinstance(x, Tracer):
        x = np.asarray(x)
    return _scalar(nn.log_softmax(x, axis=axis))


# -- scipy.special's ufuncs on traced values -----------------------------------------------------

_UFUNC_RULES: dict[np.ufunc, Any] = {
    sc.gammaln: gammaln, sc.gamma: gamma, sc.psi: digamma, sc.beta: beta, sc.betaln: betaln,
    sc.erf: erf, sc.erfc: erfc, sc.erfinv: erfinv, sc.erfcinv: erfcinv, sc.erfcx: erfcx,
    sc.ndtr: ndtr, sc.ndtri: ndtri, sc.log_ndtr: log_ndtr, sc.expit: expit, sc.logit: logit,
    sc.log_expit: log_expit, sc.xlogy: xlogy, sc.xlog1py: xlog1py, sc.entr: entr,
    sc.rel_entr: rel_entr, sc.i0: i0, sc.i0e: i0e, sc.i1: i1, sc.i1e: i1e, sc.iv: iv,
    sc.ive: ive, sc.gammainc: gammainc, sc.gammaincc: gammaincc, sc.betainc: betainc,
    sc.betaincc: betaincc, sc.gammaincinv: gammaincinv, sc.gammainccinv: gammainccinv,
    sc.betaincinv: betaincinv, sc.betainccinv: betainccinv, sc.stdtr: stdtr,
    sc.chdtr: chdtr, sc.chdtrc: chdtrc, sc.pdtr: pdtr, sc.pdtrc: pdtrc, sc.bdtr: bdtr,
    sc.bdtrc: bdtrc, sc.nbdtr: nbdtr, sc.nbdtrc: nbdtrc, sc.gdtr: gdtr, sc.gdtrc: gdtrc,
}


def ufunc_rule(ufunc: Any) -> Any:
    """The diffprog function for one of ``scipy.special``'s ufuncs, which NumPy hands to traced
    values through ``__array_ufunc__``; for a SciPy ufunc without one, a function raising a
    ``TypeError`` that names it; ``None`` for anything else.

    Example:
        >>> ufunc_rule(sc.gammaln) is gammaln, ufunc_rule(np.sin)
        (True, None)
    """
    fn = _UFUNC_RULES.get(ufunc)
    if fn is not None:
        return fn
    name = getattr(ufunc, "__name__", None)
    if not isinstance(ufunc, np.ufunc) or getattr(sc, str(name), None) is not ufunc:
        return None

    def unsupported(*args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"diffprog: scipy.special.{name} is not differentiable yet: diffprog.scipy.special "
            "has no rule for it, so it cannot be applied to a traced value. Use a function of "
            "diffprog.scipy.special or diffprog.numpy that computes the same thing, or wrap the "
            "computation in a custom rule (diffprog.custom_jvp / custom_vjp).")
    return unsupported
