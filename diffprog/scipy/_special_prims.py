"""The primitives behind :mod:`diffprog.scipy.special`: SciPy's ufuncs with derivative rules.

Each implementation is the ``scipy.special`` ufunc itself, so values, edge values and dtypes
are SciPy's (``incgamma`` and ``incbeta`` evaluate their derivatives in the shape parameters,
and logarithms where the functions underflow, by their own series and continued fractions:
see the section on them below). The rules are written with diffprog operations (these primitives and
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
           "rel_entr", "i0", "i0e", "i1", "i1e", "iv", "ive", "incgamma", "incbeta",
           "gammaincinv", "gammainccinv", "betaincinv", "betainccinv", "stdtr"]

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
# i0e' = i1e - sign(x) i0e jumps from +1 to -1 at 0 (i0e has a kink there), where it is taken
# as the mean, 0. The product rule would make the second derivative at 0 i1e'(0) - sign(0)**2
# i0e(0) = 1/2, while i0e'' (even away from 0) tends to 1/2 + 1 = 3/2 from both sides: at 0
# the rule is 3/2 x instead, whose value is 0 and whose derivatives are those limits (3/2,
# then 0 for the odd third derivative).
def _i0e_d(out, x):
    zero = dnp.equal(x, 0)
    return dnp.where(zero, 1.5 * x + 0.0, i1e(x) - dnp.sign(x) * out)  # + 0.0: no -0.0


i0e = _unary("i0e", sc.i0e, _i0e_d)
i1e = _unary("i1e", sc.i1e,
             lambda out, x: _like(0.5 * (i0e(x) + ive(2, x)), x) - dnp.sign(x) * out)


# -- incomplete gamma and beta functions --------------------------------------------------------
# The values are SciPy's ufuncs. The derivatives in x are closed forms (the densities). The
# derivatives in the shape parameters have no closed form: they are computed by running the
# classical series and continued fractions in truncated Taylor arithmetic ("jets") in the shape
# parameters, i.e. by differentiating the series / continued fraction term by term, which is
# the approach of
#   R. J. Moore, "Algorithm AS 187: Derivatives of the incomplete gamma integral", Applied
#     Statistics 31 (1982) 330-335 (the series x^a e^-x sum x^k / Gamma(a + k + 1) for
#     x < a + 1 and Legendre's continued fraction for Gamma(a, x) beyond, both differentiated
#     in a), and
#   R. J. Boik, J. F. Robison-Cox, "Derivatives of the incomplete beta function", Journal of
#     Statistical Software 3(1) (1998) (the continued fraction of Numerical Recipes' betacf,
#     evaluated by forward recurrence of its numerators and denominators, differentiated in a
#     and b; I_x(a, b) = 1 - I_{1-x}(b, a) beyond x = (a + 1) / (a + b + 2)).
# Those papers carry first and second derivatives by hand; a jet carries every mixed derivative
# up to the order asked for, so one routine serves every order (d^n/da^n, d^i/da^i d^j/db^j).
# The jets are kept in log form where the function is tiny, so log P, log Q and log I_x are
# accurate (with their derivatives) far in the tails, where P, Q or I_x underflow.
#
# One primitive per family, ``incgamma(a, x, da, upper, log)`` and
# ``incbeta(a, b, x, da, db, upper, log)``: the value (da = db = 0, SciPy's gammainc,
# gammaincc, betainc, betaincc, or their logarithms) or the derivative d^da/da^da d^db/db^db of
# it. The rule of a shape parameter is the same primitive with that order raised by one (so
# every order in a, b exists); the rule of x is the x-derivative of the density, differentiated
# in a and b by Leibniz's rule over the derivatives of the log density (polygamma, and for the
# log forms the primitive itself), written with diffprog operations.

_JET_EPS = 1e-15
_JET_MAXITER = 20000


def _jet_index(order: tuple[int, int]) -> list[tuple[int, int]]:
    return [(p, q) for p in range(order[0] + 1) for q in range(order[1] + 1)]


_MUL_PLANS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _mul_plan(order: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For jets truncated at ``order`` (flattened as _jet_index): the pairs (i, j) of factors'
    coefficients and the matrix summing their products into the product's coefficients."""
    plan = _MUL_PLANS.get(order)
    if plan is None:
        idx = _jet_index(order)
        pos = {pq: k for k, pq in enumerate(idx)}
        left, right, dest = [], [], []
        for (p, q), k in pos.items():
            for p2 in range(p + 1):
                for q2 in range(q + 1):
                    left.append(pos[(p2, q2)])
                    right.append(pos[(p - p2, q - q2)])
                    dest.append(k)
        summ = np.zeros((len(idx), len(dest)))
        summ[dest, np.arange(len(dest))] = 1.0
        plan = _MUL_PLANS[order] = (np.array(left), np.array(right), summ)
    return plan


class _Jet:
    """A truncated bivariate Taylor series in (a, b), coefficients ``c[k]`` for the pairs
    ``_jet_index(order)`` (``c[k]`` is d^p/da^p d^q/db^q / (p! q!)), each an array over the
    evaluation points. Only what the series and continued fractions need."""

    __slots__ = ("c", "order")

    def __init__(self, c: np.ndarray, order: tuple[int, int]) -> None:
        self.c, self.order = c, order

    @classmethod
    def const(cls, v: Any, order: tuple[int, int], m: int) -> _Jet:
        c = np.zeros((len(_jet_index(order)), m))
        c[0] = v
        return cls(c, order)

    @classmethod
    def var(cls, v: Any, which: int, order: tuple[int, int], m: int) -> _Jet:
        """The variable a (which = 0) or b (which = 1) at the value ``v``."""
        out = cls.const(v, order, m)
        unit = (1, 0) if which == 0 else (0, 1)
        if unit[0] <= order[0] and unit[1] <= order[1]:
            out.c[_jet_index(order).index(unit)] = 1.0
        return out

    def __add__(self, other: Any) -> _Jet:
        if isinstance(other, _Jet):
            return _Jet(self.c + other.c, self.order)
        c = self.c.copy()
        c[0] = c[0] + other
        return _Jet(c, self.order)

    __radd__ = __add__

    def __neg__(self) -> _Jet:
        return _Jet(-self.c, self.order)

    def __sub__(self, other: Any) -> _Jet:
        return self + (-other)

    def __mul__(self, other: Any) -> _Jet:
        if not isinstance(other, _Jet):
            return _Jet(self.c * other, self.order)
        if self.c.shape[0] == 1:
            return _Jet(self.c * other.c, self.order)
        left, right, summ = _mul_plan(self.order)
        return _Jet(summ @ (self.c[left] * other.c[right]), self.order)

    __rmul__ = __mul__

    def _nilpotent_series(self, coeffs: list) -> _Jet:
        """sum_k coeffs[k] N^k for N = self minus its constant term (N^k = 0 beyond the
        total order)."""
        n = _Jet(self.c.copy(), self.order)
        n.c[0] = 0.0
        out = _Jet.const(coeffs[0], self.order, self.c.shape[1])
        power = _Jet.const(1.0, self.order, self.c.shape[1])
        for ck in coeffs[1:]:
            power = power * n
            out = out + power * ck
        return out

    def _degree(self) -> int:
        return self.order[0] + self.order[1]

    def exp(self) -> _Jet:
        e0 = np.exp(self.c[0])
        k = self._degree()
        return self._nilpotent_series([1.0 / math.factorial(j) for j in range(k + 1)]) * e0

    def log(self) -> _Jet:
        c0 = self.c[0]
        k = self._degree()
        scaled = _Jet(self.c / c0, self.order)
        out = scaled._nilpotent_series([0.0] + [(-1.0) ** (j + 1) / j for j in range(1, k + 1)])
        out.c[0] = np.log(c0)
        return out

    def recip(self) -> _Jet:
        c0 = self.c[0]
        k = self._degree()
        scaled = _Jet(self.c / c0, self.order)
        return scaled._nilpotent_series([(-1.0) ** j for j in range(k + 1)]) * (1.0 / c0)

    def __truediv__(self, other: _Jet) -> _Jet:
        return self * other.recip()


def _lgamma_jet(v: np.ndarray, which: int, order: tuple[int, int], sign: float = 1.0) -> _Jet:
    """The jet of ``sign * gammaln(a)`` (which = 0), ``gammaln(b)`` (1) or ``gammaln(a + b)``
    (2) at ``v``: the coefficients are polygamma(k - 1, v) / k! along the right directions."""
    m = v.shape[0]
    out = _Jet.const(sign * sc.gammaln(v), order, m)
    for k, (p, q) in enumerate(_jet_index(order)):
        if (p, q) == (0, 0) or (which == 0 and q) or (which == 1 and p):
            continue
        n = p + q
        d = sc.psi(v) if n == 1 else sc.polygamma(n - 1, v)
        out.c[k] = sign * d / (math.factorial(p) * math.factorial(q))
    return out


class _Convergence:
    """The successive convergents of a continued fraction (jets), each point's kept from the
    first iteration where every coefficient changed by at most _JET_EPS relatively: points
    converge at different iterations, and a converged one then wanders at the rounding level,
    so waiting for all of them to be still at once may never end."""

    def __init__(self, first: _Jet) -> None:
        self.last = first
        self.final = first.c.copy()
        self.done = np.zeros(first.c.shape[1], bool)

    def update(self, new: _Jet) -> bool:
        """Take the next convergent; True once every point has converged."""
        change = np.abs(new.c - self.last.c)
        still = np.all((change <= _JET_EPS * np.abs(new.c)) | ~np.isfinite(new.c), axis=0)
        fresh = still & ~self.done
        self.final[:, fresh] = new.c[:, fresh]
        self.done |= still
        self.last = new
        return bool(np.all(self.done))

    def result(self) -> _Jet:
        """The converged values (the last convergent where the iterations ran out)."""
        return _Jet(np.where(self.done, self.final, self.last.c), self.last.order)


def _gamma_log_jet(a: np.ndarray, x: np.ndarray, n: int) -> tuple[np.ndarray, _Jet]:
    """For 0 < x < inf, 0 < a < inf (1-d arrays): ``(series, L)`` with ``L`` the jet in a, to
    order ``n``, of log P(a, x) where ``series`` (x < a + 1) and of log Q(a, x) elsewhere."""
    order = (n, 0)
    m = a.shape[0]
    series = x < a + 1.0
    logx = np.log(x)
    out = _Jet.const(np.nan, order, m)
    # P = exp(a log x - x - gammaln(a + 1)) sum_k x^k / ((a + 1) ... (a + k))
    idx = np.flatnonzero(series)
    if idx.size:
        aa, xx, lx = a[idx], x[idx], logx[idx]
        ja = _Jet.var(aa, 0, order, idx.size)
        expo = ja * lx + (-xx) + _lgamma_jet(aa + 1.0, 0, order, -1.0)
        term = _Jet.const(1.0, order, idx.size)
        total = term
        for k in range(1, _JET_MAXITER):
            # 1 / (a + k) as a jet: (-1)^p / (a + k)^(p + 1)
            r = _Jet(np.array([(-1.0) ** p / (aa + k) ** (p + 1) for p in range(n + 1)]), order)
            term = term * r * xx
            total = total + term
            if np.all(np.abs(term.c) <= _JET_EPS * np.abs(total.c)):
                break
        lj = expo + total.log()
        out.c[:, idx] = lj.c
    # Q = exp(a log x - x - gammaln(a)) / (b0 + a1 / (b1 + a2 / (b2 + ...))),
    # b_i = x + 2i + 1 - a, a_i = -i (i - a), by forward recurrence of numerators (A) and
    # denominators (B), rescaled as it goes
    idx = np.flatnonzero(~series)
    if idx.size:
        aa, xx, lx = a[idx], x[idx], logx[idx]
        mm = idx.size
        ja = _Jet.var(aa, 0, order, mm)
        expo = ja * lx + (-xx) + _lgamma_jet(aa, 0, order, -1.0)
        a_prev, b_prev = _Jet.const(1.0, order, mm), _Jet.const(0.0, order, mm)
        a_cur, b_cur = (-ja) + (xx + 1.0), _Jet.const(1.0, order, mm)
        h = b_cur / a_cur
        conv = _Convergence(h)
        for i in range(1, _JET_MAXITER):
            bi = (-ja) + (xx + 2.0 * i + 1.0)
            ai = ja * float(i) + float(-i * i)
            a_prev, a_cur = a_cur, bi * a_cur + ai * a_prev
            b_prev, b_cur = b_cur, bi * b_cur + ai * b_prev
            scale = 1.0 / np.abs(a_cur.c[0])
            a_prev, a_cur, b_prev, b_cur = (j * scale for j in (a_prev, a_cur, b_prev, b_cur))
            if conv.update(b_cur / a_cur):
                break
        out.c[:, idx] = (expo + conv.result().log()).c
    return series, out


def _beta_cf_log_jet(a: np.ndarray, b: np.ndarray, x: np.ndarray, logx: np.ndarray,
                     log1mx: np.ndarray, order: tuple[int, int]) -> _Jet:
    """The jet of log I_x(a, b) in (a, b) by the continued fraction (x below the switch)."""
    m = a.shape[0]
    ja, jb = _Jet.var(a, 0, order, m), _Jet.var(b, 1, order, m)
    # front: x^a (1 - x)^b / (a B(a, b))
    expo = (ja * logx + jb * log1mx + _lgamma_jet(a, 0, order, -1.0)
            + _lgamma_jet(b, 1, order, -1.0) + _lgamma_jet(a + b, 2, order) - ja.log())
    # 1 / (1 + d1 / (1 + d2 / (1 + ...))), d_{2k+1} = -(a + k)(a + b + k) x / ((a + 2k)
    # (a + 2k + 1)), d_{2k} = k (b - k) x / ((a + 2k - 1)(a + 2k)). With d = num / den the
    # step (A_{n-1}, A_n) -> (A_n, A_n + d A_{n-1}) is run scaled by den, as
    # (den A_n, den A_n + num A_{n-1}), and B alike: the convergents B_n / A_n are the same
    # without a division of jets.
    one = _Jet.const(1.0, order, m)
    a_prev, a_cur = one, one
    b_prev, b_cur = _Jet.const(0.0, order, m), one
    conv = _Convergence(one)
    # the quadratics in a and b expanded, so that each step costs no product of jets
    aa, ab = ja * ja, ja * jb
    for i in range(1, 2 * _JET_MAXITER):
        k = i // 2
        if i % 2:  # (a + k)(a + b + k) and (a + 2k)(a + 2k + 1)
            num = (aa + ab + ja * (2.0 * k) + jb * float(k) + float(k * k)) * (-x)
            den = aa + ja * (4.0 * k + 1.0) + float(2 * k * (2 * k + 1))
        else:  # k (b - k) and (a + 2k - 1)(a + 2k)
            num = (jb - float(k)) * (k * x)
            den = aa + ja * (4.0 * k - 1.0) + float((2 * k - 1) * 2 * k)
        a_scaled, b_scaled = den * a_cur, den * b_cur
        a_prev, a_cur = a_scaled, a_scaled + num * a_prev
        b_prev, b_cur = b_scaled, b_scaled + num * b_prev
        scale = 1.0 / np.abs(a_cur.c[0])
        a_prev, a_cur, b_prev, b_cur = (j * scale for j in (a_prev, a_cur, b_prev, b_cur))
        if conv.update(b_cur / a_cur) and i > 2:
            break
    return expo + conv.result().log()


def _swap(j: _Jet) -> _Jet:
    """The jet in (b, a) of one in (a, b)."""
    order = (j.order[1], j.order[0])
    src = {pq: k for k, pq in enumerate(_jet_index(j.order))}
    return _Jet(j.c[[src[(q, p)] for p, q in _jet_index(order)]], order)


def _beta_log_jet(a: np.ndarray, b: np.ndarray, x: np.ndarray, order: tuple[int, int]
                  ) -> tuple[np.ndarray, _Jet]:
    """For 0 < x < 1, 0 < a, b < inf: ``(lower, L)``, ``L`` the jet of log I_x(a, b) where
    ``lower`` and of log(1 - I_x(a, b)) = log I_{1-x}(b, a) elsewhere."""
    lower = x < (a + 1.0) / (a + b + 2.0)
    out = _Jet.const(np.nan, order, a.shape[0])
    logx, log1mx = np.log(x), np.log1p(-x)
    idx = np.flatnonzero(lower)
    if idx.size:
        out.c[:, idx] = _beta_cf_log_jet(a[idx], b[idx], x[idx], logx[idx], log1mx[idx],
                                         order).c
    idx = np.flatnonzero(~lower)
    if idx.size:
        swapped = _beta_cf_log_jet(b[idx], a[idx], 1.0 - x[idx], log1mx[idx], logx[idx],
                                   (order[1], order[0]))
        out.c[:, idx] = _swap(swapped).c
    return lower, out


def _from_log_jets(own: np.ndarray, lj: _Jet, value: np.ndarray, upper: bool, log: bool
                   ) -> _Jet:
    """The jet of F = P or Q (I or 1 - I), or of log F, from the log jets of the computed
    side (``own`` true where that side is F itself, else its complement), the constant term
    replaced by ``value`` (SciPy's value of F, or its log)."""
    mine = own != upper  # where the jet is of F itself
    order = lj.order
    if log:
        # log F from the other side: log(1 - exp(L)); the constant term is SciPy's
        other = lj.exp()
        comp = -other
        comp.c[0] = np.exp(value)  # F itself, accurate (1 - exp(L) would cancel)
        lcomp = comp.log()
        out = _Jet(np.where(mine, lj.c, lcomp.c), order)
    else:
        e = lj.exp()
        out = _Jet(np.where(mine, e.c, -e.c), order)
    out.c[0] = value
    return out


def _flat_float(*args: Any) -> tuple[list[np.ndarray], tuple[int, ...]]:
    arrs = np.broadcast_arrays(*[np.asarray(v, np.float64) for v in args])
    return [v.ravel() for v in arrs], arrs[0].shape


def _result(vals: np.ndarray, shape: tuple, dtype: Any) -> Any:
    out = vals.reshape(shape).astype(dtype, copy=False)
    return out if out.ndim else out[()]


def _incgamma_value(a: np.ndarray, x: np.ndarray, upper: bool, log: bool) -> np.ndarray:
    """P or Q (or its log, accurate also where it underflows) in float64, flat."""
    with np.errstate(all="ignore"):
        v = sc.gammaincc(a, x) if upper else sc.gammainc(a, x)
        if not log:
            return v
        comp = sc.gammainc(a, x) if upper else sc.gammaincc(a, x)
        out = np.where(comp < 0.5, np.log1p(-comp), np.log(v))
        tiny = (v < 1e-290) & (x > 0) & (x < np.inf) & (a > 0) & (a < np.inf)
        if np.any(tiny):
            own, lj = _gamma_log_jet(a[tiny], x[tiny], 0)
            out[tiny] = np.where(own != upper, lj.c[0], np.log1p(-np.exp(lj.c[0])))
        return out


def _incgamma_impl(a, x, *, da, upper, log):
    if da == 0 and not log:  # SciPy's ufunc itself: its values, dtype and scalars
        return sc.gammaincc(a, x) if upper else sc.gammainc(a, x)
    dtype = np.result_type(sc.gammainc(np.ones((), np.result_type(a)),
                                       np.ones((), np.result_type(x))))
    (a, x), shape = _flat_float(a, x)
    value = _incgamma_value(a, x, upper, log)
    if da == 0:
        return _result(value, shape, dtype)
    out = np.full(a.shape, np.nan)
    with np.errstate(all="ignore"):
        ok = (a > 0) & (a < np.inf)
        inside = ok & (x > 0) & (x < np.inf)
        # F is constant in a at x = 0 and x = inf (except a log F that is -inf there: nan)
        out[ok & (x == 0) & (not log or upper)] = 0.0
        out[ok & (x == np.inf) & (not log or not upper)] = 0.0
        idx = np.flatnonzero(inside)
        if idx.size:
            own, lj = _gamma_log_jet(a[idx], x[idx], da)
            jet = _from_log_jets(own, lj, value[idx], upper, log)
            out[idx] = jet.c[da] * math.factorial(da)
    return _result(out, shape, dtype)


def _incbeta_value(a, b, x, upper, log):
    with np.errstate(all="ignore"):
        v = sc.betaincc(a, b, x) if upper else sc.betainc(a, b, x)
        if not log:
            return v
        comp = sc.betainc(a, b, x) if upper else sc.betaincc(a, b, x)
        out = np.where(comp < 0.5, np.log1p(-comp), np.log(v))
        tiny = ((v < 1e-290) & (x > 0) & (x < 1) & (a > 0) & (a < np.inf) & (b > 0)
                & (b < np.inf))
        if np.any(tiny):
            own, lj = _beta_log_jet(a[tiny], b[tiny], x[tiny], (0, 0))
            out[tiny] = np.where(own != upper, lj.c[0], np.log1p(-np.exp(lj.c[0])))
        return out


def _incbeta_impl(a, b, x, *, da, db, upper, log):
    if da == db == 0 and not log:
        return sc.betaincc(a, b, x) if upper else sc.betainc(a, b, x)
    dtype = np.result_type(sc.betainc(*[np.ones((), np.result_type(v)) for v in (a, b, x)]))
    (a, b, x), shape = _flat_float(a, b, x)
    value = _incbeta_value(a, b, x, upper, log)
    if da == db == 0:
        return _result(value, shape, dtype)
    out = np.full(a.shape, np.nan)
    with np.errstate(all="ignore"):
        ok = (a > 0) & (a < np.inf) & (b > 0) & (b < np.inf)
        inside = ok & (x > 0) & (x < 1)
        # F constant in (a, b) at the ends (except a log F that is -inf there)
        out[ok & (x == 0) & (not log or upper)] = 0.0
        out[ok & (x == 1) & (not log or not upper)] = 0.0
        idx = np.flatnonzero(inside)
        if idx.size:
            order = (da, db)
            own, lj = _beta_log_jet(a[idx], b[idx], x[idx], order)
            jet = _from_log_jets(own, lj, value[idx], upper, log)
            k = _jet_index(order).index((da, db))
            out[idx] = jet.c[k] * (math.factorial(da) * math.factorial(db))
    return _result(out, shape, dtype)


def _exp_partials(lderiv: Callable, i: int, j: int) -> Any:
    """d^i/da^i d^j/db^j exp(L), given ``lderiv(p, q)`` = d^p/da^p d^q/db^q L, by Leibniz's
    rule on d/da e^L = L_a e^L (and d/db alike), with diffprog operations."""
    memo: dict[tuple[int, int], Any] = {}

    def g(p: int, q: int) -> Any:
        if (p, q) not in memo:
            if p == q == 0:
                memo[(p, q)] = dnp.exp(lderiv(0, 0))
            elif p > 0:
                memo[(p, q)] = sum(math.comb(p - 1, r) * math.comb(q, s) * lderiv(r + 1, s)
                                   * g(p - 1 - r, q - s)
                                   for r in range(p) for s in range(q + 1))
            else:
                memo[(p, q)] = sum(math.comb(q - 1, s) * lderiv(0, s + 1) * g(0, q - 1 - s)
                                   for s in range(q))
        return memo[(p, q)]
    return g(i, j)


def _psi(k: int, v: Any) -> Any:
    """polygamma(k, v) in the dtype of v (digamma for k = 0)."""
    return digamma(v) if k == 0 else _like(polygamma(k, v), v)


def _incgamma_dx(a, x, da, upper, log):
    """d^da/da^da of d/dx F for F = P or Q (or log F): the density
    g = x^(a-1) e^-x / Gamma(a) (over F for the logarithms), differentiated in a."""
    sign = -1.0 if upper else 1.0
    if da == 0:
        lg = xlogy(a - 1.0, x) - x - gammaln(a)
        if log:
            lg = lg - incgamma(a, x, da=0, upper=upper, log=True)
        return sign * dnp.exp(lg)
    pos = dnp.greater(x, 0)
    xs = _safe(pos, x)

    def lderiv(p: int, q: int) -> Any:
        if p == 0:
            v = xlogy(a - 1.0, xs) - xs - gammaln(a)
        elif p == 1:
            v = dnp.log(xs) - digamma(a)
        else:
            v = -_psi(p - 1, a)
        if log:
            v = v - incgamma(a, xs, da=p, upper=upper, log=True)
        return v
    return dnp.where(pos, sign * _exp_partials(lderiv, da, 0), 0.0)


def _incbeta_dx(a, b, x, da, db, upper, log):
    """d^da/da^da d^db/db^db of d/dx F for F = I_x(a, b) or 1 - I_x(a, b) (or log F): the
    density x^(a-1) (1-x)^(b-1) / B(a, b) (over F for the logarithms), differentiated."""
    sign = -1.0 if upper else 1.0
    if da == db == 0:
        lf = xlogy(a - 1.0, x) + xlog1py(b - 1.0, -x) - betaln(a, b)
        if log:
            lf = lf - incbeta(a, b, x, da=0, db=0, upper=upper, log=True)
        return sign * dnp.exp(lf)
    inside = dnp.logical_and(dnp.greater(x, 0), dnp.less(x, 1))
    xs = _safe(inside, x, 0.5)

    def lderiv(p: int, q: int) -> Any:
        if p == q == 0:
            v = xlogy(a - 1.0, xs) + xlog1py(b - 1.0, -xs) - betaln(a, b)
        elif (p, q) == (1, 0):
            v = dnp.log(xs) - digamma(a) + digamma(a + b)
        elif (p, q) == (0, 1):
            v = dnp.log1p(-xs) - digamma(b) + digamma(a + b)
        else:
            v = _psi(p + q - 1, a + b)
            if q == 0:
                v = v - _psi(p - 1, a)
            if p == 0:
                v = v - _psi(q - 1, b)
        if log:
            v = v - incbeta(a, b, xs, da=p, db=q, upper=upper, log=True)
        return v
    return dnp.where(inside, sign * _exp_partials(lderiv, da, db), 0.0)


def _incgamma_abstract(a, x, **params):
    return _elementwise_abstract(lambda a, x: sc.gammainc(a, x))(a, x)


def _incbeta_abstract(a, b, x, **params):
    return _elementwise_abstract(lambda a, b, x: sc.betainc(a, b, x))(a, b, x)


def _incgamma_da(a, x, da, upper, log):
    return incgamma(a, x, da=da + 1, upper=upper, log=log)


# incgamma(a, x, da=, upper=, log=): d^da/da^da of P(a, x) (upper: Q(a, x)), or of its
# logarithm (log); da = 0 is SciPy's gammainc / gammaincc (or their accurate logarithms).
incgamma = Primitive(
    "incgamma", _incgamma_impl, abstract=_incgamma_abstract, batch="elementwise",
    jvp=(lambda t, out, a, x, **p: t * _incgamma_da(a, x, **p),
         lambda t, out, a, x, **p: t * _incgamma_dx(a, x, **p)),
    vjp=(lambda ct, out, a, x, **p: ct * _incgamma_da(a, x, **p),
         lambda ct, out, a, x, **p: ct * _incgamma_dx(a, x, **p)),
    vjp_reads=((0, 1), (0, 1)))


def _incbeta_shift(a, b, x, da, db, upper, log, which):
    if which == 0:
        return incbeta(a, b, x, da=da + 1, db=db, upper=upper, log=log)
    return incbeta(a, b, x, da=da, db=db + 1, upper=upper, log=log)


# incbeta(a, b, x, da=, db=, upper=, log=): d^da/da^da d^db/db^db of I_x(a, b) (upper:
# 1 - I_x(a, b)), or of its logarithm; da = db = 0 is SciPy's betainc / betaincc (or logs).
incbeta = Primitive(
    "incbeta", _incbeta_impl, abstract=_incbeta_abstract, batch="elementwise",
    jvp=(lambda t, out, a, b, x, **p: t * _incbeta_shift(a, b, x, **p, which=0),
         lambda t, out, a, b, x, **p: t * _incbeta_shift(a, b, x, **p, which=1),
         lambda t, out, a, b, x, **p: t * _incbeta_dx(a, b, x, **p)),
    vjp=(lambda ct, out, a, b, x, **p: ct * _incbeta_shift(a, b, x, **p, which=0),
         lambda ct, out, a, b, x, **p: ct * _incbeta_shift(a, b, x, **p, which=1),
         lambda ct, out, a, b, x, **p: ct * _incbeta_dx(a, b, x, **p)),
    vjp_reads=((0, 1, 2), (0, 1, 2), (0, 1, 2)))


# -- their inverses: derivatives by the implicit function theorem -------------------------------
# x(theta, y) solves F(theta, x) = y: dx/dy = 1 / F_x, dx/dtheta = -F_theta / F_x, with F_x the
# density (negated for the complements) and F_theta the primitives above at x = out.

def _gamma_inverse(name: str, impl: Callable, upper: bool) -> Primitive:
    def fx(a, out):
        return _incgamma_dx(a, out, 0, upper, False)

    return Primitive(
        name, impl, abstract=_elementwise_abstract(impl), batch="elementwise",
        jvp=(lambda t, out, a, y: t * (-incgamma(a, out, da=1, upper=upper, log=False)
                                       / fx(a, out)),
             lambda t, out, a, y: t / fx(a, out)),
        vjp=(lambda ct, out, a, y: ct * (-incgamma(a, out, da=1, upper=upper, log=False)
                                         / fx(a, out)),
             lambda ct, out, a, y: ct / fx(a, out)),
        vjp_reads=((-1, 0), (-1, 0)))


def _beta_inverse(name: str, impl: Callable, upper: bool) -> Primitive:
    def fx(a, b, out):
        return _incbeta_dx(a, b, out, 0, 0, upper, False)

    def dtheta(which):
        def rule(t, out, a, b, y):
            da, db = (1, 0) if which == 0 else (0, 1)
            return t * (-incbeta(a, b, out, da=da, db=db, upper=upper, log=False)
                        / fx(a, b, out))
        return rule

    return Primitive(
        name, impl, abstract=_elementwise_abstract(impl), batch="elementwise",
        jvp=(dtheta(0), dtheta(1), lambda t, out, a, b, y: t / fx(a, b, out)),
        vjp=(dtheta(0), dtheta(1), lambda ct, out, a, b, y: ct / fx(a, b, out)),
        vjp_reads=((-1, 0, 1), (-1, 0, 1), (-1, 0, 1)))


gammaincinv = _gamma_inverse("gammaincinv", sc.gammaincinv, False)
gammainccinv = _gamma_inverse("gammainccinv", sc.gammainccinv, True)
betaincinv = _beta_inverse("betaincinv", sc.betaincinv, False)
betainccinv = _beta_inverse("betainccinv", sc.betainccinv, True)


# -- Student's t distribution function ------------------------------------------------------------
# stdtr(df, t) = 1/2 + sign(t)/2 I_u(1/2, df/2) with u = t^2 / (df + t^2) (used for t^2 < df),
#              = I_w(df/2, 1/2) / 2 for t < 0 and 1 - I_w(df/2, 1/2) / 2 for t > 0, w = 1 - u
# (Boost's students_t cdf makes the same choice). d/dt is the density; d/ddf follows from the
# incbeta primitives and the density of the beta distribution at u or w (with log u and log w
# computed directly, not as log(1 - w)).
_LOG_PI = math.log(math.pi)


def _stdtr_dt(out, df, t):
    infinite = dnp.isinf(df)
    d = _safe(dnp.logical_not(infinite), df)
    logpdf = (gammaln(0.5 * (d + 1.0)) - gammaln(0.5 * d) - 0.5 * (dnp.log(d) + _LOG_PI)
              - 0.5 * (d + 1.0) * dnp.log1p(t * t / d))
    return dnp.where(infinite, dnp.exp(-0.5 * t * t) / _SQRT_2PI, dnp.exp(logpdf))


def _stdtr_ddf(out, df, t):
    valid = dnp.logical_and(dnp.logical_and(dnp.isfinite(t), dnp.not_equal(t, 0)),
                            dnp.logical_and(dnp.isfinite(df), dnp.greater(df, 0)))
    ts, d = _safe(valid, t), _safe(valid, df)
    t2 = ts * ts
    s = d + t2
    u, w = t2 / s, d / s
    logu, logw = dnp.log(t2) - dnp.log(s), dnp.log(d) - dnp.log(s)
    half, hd = 0.0 * d + 0.5, 0.5 * d
    sgn = dnp.sign(ts)
    # t^2 < df: F = 1/2 + sgn/2 I_u(1/2, df/2)
    dens_u = dnp.exp(-0.5 * logu + (hd - 1.0) * logw - betaln(half, hd))
    branch_a = 0.5 * sgn * (0.5 * incbeta(half, hd, u, da=0, db=1, upper=False, log=False)
                            - dens_u * u / s)
    # otherwise: F = (1 - sgn)/2 - sgn/2 I_w(df/2, 1/2)
    dens_w = dnp.exp((hd - 1.0) * logw - 0.5 * logu - betaln(hd, half))
    branch_b = -0.5 * sgn * (0.5 * incbeta(hd, half, w, da=1, db=0, upper=False, log=False)
                             + dens_w * u / s)
    val = dnp.where(dnp.less(t2, d), branch_a, branch_b)
    return dnp.where(valid, val, dnp.where(dnp.greater(df, 0), 0.0, np.nan))


stdtr = _binary("stdtr", sc.stdtr, _stdtr_ddf, _stdtr_dt)
