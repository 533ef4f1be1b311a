"""The primitives behind :mod:`diffprog.scipy.special`: SciPy's ufuncs with derivative rules.

Each implementation is the ``scipy.special`` ufunc itself, so values, edge values and dtypes
are SciPy's. The rules are written with diffprog operations (these primitives and
:mod:`diffprog.numpy`), so derivatives of any order follow: ``gammaln' = digamma``,
``digamma' = polygamma(1, .)``, ``polygamma(n, .)' = polygamma(n + 1, .)`` and so on.

None has a ``scalar`` form for fused kernels: a scalar form must equal the implementation to
the bit on every dtype (tests/test_fusion.py), and numba's math.gamma, math.lgamma and
x * math.log(y) differ from SciPy's by an ulp or more (and in the sign of zero), so jit runs
these primitives as NumPy calls between kernels.

Operands reaching a primitive are aligned by :mod:`diffprog.scipy.special`: the traced ones
have the output's shape and every float operand has the output's dtype, so a rule's result
already has the dtype of the argument it differentiates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special as sc

from .. import numpy as dnp
from ..core import Primitive, ShapedArray

__all__ = ["gammaln", "gamma", "digamma", "polygamma", "beta", "betaln", "erfinv", "erfcinv",
           "ndtr", "ndtri", "log_ndtr", "erfcx", "logit", "xlogy", "xlog1py", "entr",
           "rel_entr", "i0", "i0e", "i1", "i1e", "iv", "ive"]

_SQRT_PI_OVER_2 = math.sqrt(math.pi) / 2.0
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _elementwise_abstract(impl: Callable) -> Callable:
    """The shape rule of an elementwise primitive, as jit derives it for one with a scalar
    form: operands broadcast, and the dtype is that of ``impl`` on one element of each."""
    def abstract(*args: Any) -> ShapedArray:
        shape = np.broadcast_shapes(*[np.shape(a) if not hasattr(a, "shape") else a.shape
                                      for a in args])
        ones = [np.ones((), a.dtype) if hasattr(a, "dtype") else a for a in args]
        with np.errstate(all="ignore"):
            return ShapedArray(shape, np.result_type(impl(*ones)))
    return abstract


def _unary(name: str, impl: Callable, derivative: Callable, reads: tuple = (-1, 0)
           ) -> Primitive:
    """A unary primitive whose jvp is ``t * derivative(out, x)`` and vjp ``ct * derivative``;
    ``reads`` lists what ``derivative`` reads (-1 the output, 0 the argument)."""
    return Primitive(name, impl, abstract=_elementwise_abstract(impl), vjp_reads=(reads,),
                     batch="elementwise",
                     jvp=(lambda t, out, x: t * derivative(out, x),),
                     vjp=(lambda ct, out, x: ct * derivative(out, x),))


def _binary(name: str, impl: Callable, dx: Callable, dy: Callable) -> Primitive:
    """A binary primitive with local derivatives ``dx(out, x, y)`` and ``dy(out, x, y)``."""
    return Primitive(name, impl, abstract=_elementwise_abstract(impl), batch="elementwise",
                     jvp=(lambda t, out, x, y: t * dx(out, x, y),
                          lambda t, out, x, y: t * dy(out, x, y)),
                     vjp=(lambda ct, out, x, y: ct * dx(out, x, y),
                          lambda ct, out, x, y: ct * dy(out, x, y)))


def _like(v: Any, x: Any) -> Any:
    """``v`` in the dtype of ``x`` (polygamma computes float32 arguments in float64)."""
    dtype = dnp.result_type(x)
    return v if dnp.result_type(v) == dtype else dnp.astype(v, dtype)


def _safe(cond: Any, x: Any, fill: float = 1.0) -> Any:
    """``x`` where ``cond``, else ``fill``: the operand of a branch that where() discards, kept
    finite so that its derivative (multiplied by the zero cotangent) is no 0 * inf = nan."""
    return dnp.where(cond, x, fill)


# -- gamma and its logarithm, digamma, polygamma ------------------------------------------------

def _polygamma_impl(n, x):
    return sc.polygamma(n, x)


def _no_order_derivative(call: str, order: str) -> Callable:
    def rule(*args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{call} has no derivative in its order {order}; differentiate with "
                        "respect to x only")
    return rule


def _of_order(name: str, impl: Callable, derivative: Callable, reads: tuple,
              order: str = "v") -> Primitive:
    """A primitive ``f(order, x)`` differentiable in ``x`` only, ``d/dx = derivative(out, v,
    x)``; ``reads`` lists what the derivative reads (-1 the output, 0 the order, 1 x)."""
    no = _no_order_derivative(f"{name}({order}, x)", order)
    return Primitive(name, impl, abstract=_elementwise_abstract(impl), vjp_reads=((), reads),
                     batch="elementwise",
                     jvp=(no, lambda t, out, v, x: t * derivative(out, v, x)),
                     vjp=(no, lambda ct, out, v, x: ct * derivative(out, v, x)))


polygamma = _of_order("polygamma", _polygamma_impl,
                      lambda out, n, x: polygamma(n + 1, x), reads=(0, 1), order="n")

digamma = _unary("digamma", sc.psi, lambda out, x: _like(polygamma(1, x), x), reads=(0,))
gammaln = _unary("gammaln", sc.gammaln, lambda out, x: digamma(x), reads=(0,))
gamma = _unary("gamma", sc.gamma, lambda out, x: out * digamma(x))


def _beta_da(out, a, b):
    return digamma(a) - digamma(a + b)


beta = _binary("beta", sc.beta, lambda out, a, b: out * _beta_da(out, a, b),
               lambda out, a, b: out * _beta_da(out, b, a))
betaln = _binary("betaln", sc.betaln, _beta_da, lambda out, a, b: _beta_da(out, b, a))


# -- error function inverses, normal distribution ----------------------------------------------

# erfinv' = sqrt(pi)/2 exp(erfinv²): infinite at ±1, where erfinv is.
erfinv = _unary("erfinv", sc.erfinv, lambda out, x: _SQRT_PI_OVER_2 * dnp.exp(out * out),
                reads=(-1,))
erfcinv = _unary("erfcinv", sc.erfcinv, lambda out, x: -_SQRT_PI_OVER_2 * dnp.exp(out * out),
                 reads=(-1,))
ndtr = _unary("ndtr", sc.ndtr, lambda out, x: dnp.exp(-0.5 * x * x) / _SQRT_2PI, reads=(0,))
ndtri = _unary("ndtri", sc.ndtri, lambda out, x: _SQRT_2PI * dnp.exp(0.5 * out * out),
               reads=(-1,))
# erfcx(z) = exp(z²) erfc(z), the scaled complementary error function.
erfcx = _unary("erfcx", sc.erfcx, lambda out, x: 2.0 * x * out - _TWO_OVER_SQRT_PI)

# log_ndtr' = phi(x) / Phi(x), the inverse Mills ratio. With Phi(x) = exp(-x²/2) erfcx(-x/√2)/2
# the exponentials cancel: phi / Phi = sqrt(2/pi) / erfcx(-x / √2), which neither underflows
# for x << 0 (where it tends to -x) nor cancels; for x >> 0 erfcx overflows and the ratio is 0.
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_SQRT_HALF = math.sqrt(0.5)
def _log_ndtr_slope(x):
    # x <= 0: the erfcx form above. x > 0: phi(x) / ndtr(x) directly (ndtr is in [1/2, 1]),
    # because erfcx(-x/√2) overflows there and its derivatives would be inf / inf. Each branch
    # sees a safe input where it is not used (the where-trick), so no NaN leaks into
    # derivatives of any order.
    right = dnp.greater(x, 0.0)
    xp = dnp.where(right, x, 1.0)
    xn = dnp.where(right, -1.0, x)
    return dnp.where(right, dnp.exp(-0.5 * xp * xp) / _SQRT_2PI / ndtr(xp),
                     _SQRT_2_OVER_PI / erfcx(-_SQRT_HALF * xn))


log_ndtr = _unary("log_ndtr", sc.log_ndtr, lambda out, x: _log_ndtr_slope(x), reads=(0,))
logit = _unary("logit", sc.logit, lambda out, x: 1.0 / (x * (1.0 - x)), reads=(0,))


# -- x log y and entropies ----------------------------------------------------------------------
# Where x == 0 the value is 0 (also at y == 0). d/dx is log(y) (so -inf at x = y = 0, JAX's
# convention); d/dy is x / y, taken as 0 at x = y = 0 rather than 0/0: y is replaced by 1 only
# at that point, so the mixed second derivative at x = 0, y > 0 is still 1/y.

def _xlogy_dy(out, x, y):
    return x / _safe(dnp.logical_not(dnp.logical_and(dnp.equal(x, 0), dnp.equal(y, 0))), y)


def _xlog1py_dy(out, x, y):
    one_plus = 1.0 + y
    return x / _safe(dnp.logical_not(dnp.logical_and(dnp.equal(x, 0), dnp.equal(one_plus, 0))),
                     one_plus)


xlogy = _binary("xlogy", sc.xlogy, lambda out, x, y: dnp.log(y), _xlogy_dy)
xlog1py = _binary("xlog1py", sc.xlog1py, lambda out, x, y: dnp.log1p(y), _xlog1py_dy)


# entr(x) = -x log x (0 at x = 0, -inf for x < 0). entr' = -(log x + 1): +inf at 0 (the
# one-sided limit, JAX's value), 0 for x < 0 where entr is the constant -inf.
def _entr_d(out, x):
    inside = dnp.greater_equal(x, 0)
    return dnp.where(inside, -(dnp.log(_safe(inside, x)) + 1.0), 0.0)


entr = _unary("entr", sc.entr, _entr_d, reads=(0,))


# rel_entr(x, y) = x log(x / y) for x > 0, y > 0; 0 for x = 0, y >= 0; inf elsewhere.
# d/dx = log(x / y) + 1 and d/dy = -x / y on x >= 0, y > 0 (d/dx is -inf at x = 0, the
# one-sided limit, consistent with entr(x) = -rel_entr(x, 1)); at x = y = 0 d/dx is -inf and
# d/dy 0; where the value is the constant inf both are 0.
def _rel_entr_masks(x, y):
    inside = dnp.logical_and(dnp.greater_equal(x, 0), dnp.greater(y, 0))
    corner = dnp.logical_and(dnp.equal(x, 0), dnp.equal(y, 0))
    return inside, corner


def _rel_entr_dx(out, x, y):
    inside, corner = _rel_entr_masks(x, y)
    d = dnp.log(_safe(inside, x) / _safe(inside, y)) + 1.0
    return dnp.where(inside, d, dnp.where(corner, -np.inf, 0.0))


def _rel_entr_dy(out, x, y):
    inside, _ = _rel_entr_masks(x, y)
    return dnp.where(inside, -_safe(inside, x) / _safe(inside, y), 0.0)


rel_entr = _binary("rel_entr", sc.rel_entr, _rel_entr_dx, _rel_entr_dy)


# -- modified Bessel functions ------------------------------------------------------------------
# iv' = (iv(v - 1) + iv(v + 1)) / 2, which needs no division by x: i1' = (i0 + iv(2)) / 2 is
# i0 - i1/x with its limit 1/2 at 0 built in, and every higher derivative is right at 0 too.
# The exponentially scaled ive(v, x) = exp(-|x|) iv(v, x) add -sign(x) ive; i0e has a kink at
# 0, where sign(0) = 0 gives the mean of the one-sided derivatives ±1.

def _iv_d(out, v, x):
    return _like(0.5 * (iv(v - 1, x) + iv(v + 1, x)), x)


def _ive_d(out, v, x):
    return _like(0.5 * (ive(v - 1, x) + ive(v + 1, x)), x) - dnp.sign(x) * out


iv = _of_order("iv", sc.iv, _iv_d, reads=(0, 1))
ive = _of_order("ive", sc.ive, _ive_d, reads=(-1, 0, 1))
i0 = _unary("i0", sc.i0, lambda out, x: i1(x), reads=(0,))
i1 = _unary("i1", sc.i1, lambda out, x: _like(0.5 * (i0(x) + iv(2, x)), x), reads=(0,))
i0e = _unary("i0e", sc.i0e, lambda out, x: i1e(x) - dnp.sign(x) * out)
i1e = _unary("i1e", sc.i1e,
             lambda out, x: _like(0.5 * (i0e(x) + ive(2, x)), x) - dnp.sign(x) * out)
