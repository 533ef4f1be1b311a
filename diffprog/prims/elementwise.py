"""Elementwise primitives: unary and binary math, comparisons, where, casts.

Operands of a traced elementwise primitive have the output's shape: :mod:`diffprog.numpy`
broadcasts traced operands explicitly, so no rule here needs an "unbroadcast" step.

Most rules are one local derivative ``d(out, *args)``: the jvp is ``t * d`` and the vjp
``ct * d``, declared once through :func:`_unary`. The rules use diffprog operations (the
operators on traced values, and these primitives), so they are traced under outer transforms.

Complex values follow JAX's convention: a jvp rule is the ordinary (R-linear) derivative and a
vjp rule is its transpose under the real bilinear pairing ``<a, b> = Re(sum(a * b))``, with no
conjugation. For holomorphic functions the vjp is then ``ct * f'(x)`` (the same local
derivative as the jvp); ``real``, ``imag``, ``conj`` and ``abs`` have rules of their own.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import numpy as np

from .. import core as _core
from ..core import Primitive

_ndarray = np.ndarray

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "log1p", "expm1", "sin",
           "cos", "tan", "tanh", "sqrt", "abs", "sign", "maximum", "minimum", "where",
           "convert_element_type", "lt", "le", "gt", "ge", "eq", "ne", "logical_not",
           "floor", "ceil",
           "exp2", "log2", "log10", "cbrt", "arcsin", "arccos", "arctan", "sinh", "cosh",
           "arcsinh", "arccosh", "arctanh", "arctan2", "hypot", "logaddexp", "logaddexp2",
           "fmax", "fmin", "clip", "real", "imag", "conj", "mod", "fmod", "erf", "erfc",
           "logistic", "round", "trunc", "rint", "floor_divide", "logical_and", "logical_or",
           "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "invert", "isfinite",
           "isnan", "isinf", "signbit", "convert_discrete", "reciprocal",
           "reciprocal_integer"]

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _unary(name: str, impl: Callable, derivative: Callable | None,
           scalar: Callable | dict | None = None,
           reads: str | None = None, fast: str | None = None,
           fast_domain: str | None = None, rule: str | None = None,
           product: Callable | None = None) -> Primitive:
    """A unary primitive whose jvp is ``t * derivative(out, x)`` and vjp ``ct * derivative``.

    ``reads`` is ``"out"`` or ``"x"`` when the derivative reads only that value, so the reverse
    trace need not keep the other. ``fast`` and ``fast_domain`` name the vectorizable form in
    ``diffprog.kernels.fastmath`` and the predicate where it is exact (Primitive.scalar_fast).
    ``rule`` is ``t * derivative`` as a scalar expression (Primitive.rule_scalar), the same
    operations in the same order, run by the eager kernels for large float arrays.
    ``product`` (with ``derivative=None``): the jvp and vjp as one function
    ``product(t, out, x)``, one Python call per application where ``t * derivative(out, x)``
    takes two (the commonest primitives); with ``rule`` it asks for the eager kernels itself,
    as the two-function form does.
    """
    vjp_reads = None if reads is None else (((-1,) if reads == "out" else (0,)),)
    if rule is None:
        if product is None:
            jvp = (lambda t, out, x: t * derivative(out, x),)
            vjp = (lambda ct, out, x: ct * derivative(out, x),)
        else:
            jvp = vjp = (product,)
        return Primitive(name, impl, batch="elementwise", scalar=scalar, vjp_reads=vjp_reads,
                         scalar_fast=fast,
                         scalar_fast_domain=fast_domain, jvp=jvp, vjp=vjp)
    # Large float arrays may run the fast form and the fused rule through the eager kernels
    # (core.set_eager_provider); small ones pay one size comparison in the rule. The impl with
    # the hook is installed (core.eager_impl) only while the provider can run it as a kernel:
    # otherwise impl is NumPy's function itself (tanh, log: NumPy's SIMD loops are faster).
    numpy_impl = impl
    prim = None

    def fused(t, out, x):
        if t.__class__ is _ndarray and t.size >= _core.EAGER_MIN_SIZE:
            r = _core.eager(prim, 0, t, out, (x,))
            if r is not None:
                return r
        return t * derivative(out, x)

    if product is not None:
        fused = product  # it asks for the eager kernels itself

    if fast is not None:
        def impl(x):
            if x.__class__ is _ndarray and x.size >= _core.EAGER_MIN_SIZE:
                r = _core.eager(prim, -1, None, None, (x,))
                if r is not None:
                    return r
            return numpy_impl(x)

        impl.__name__ = impl.__qualname__ = name
        impl.__doc__ = f"{getattr(numpy_impl, '__name__', name)}, or a fast kernel for large arrays"
    inplace = None
    if fast is not None and isinstance(numpy_impl, np.ufunc):
        def inplace(x, out):  # Primitive.inplace: the hooked impl, NumPy's result into out
            if x.__class__ is _ndarray and x.size >= _core.EAGER_MIN_SIZE:
                r = _core.eager(prim, -1, None, None, (x,))
                if r is not None:
                    return r
            return numpy_impl(x, out=out)

    prim = Primitive(name, numpy_impl, batch="elementwise", scalar=scalar, vjp_reads=vjp_reads,
                     scalar_fast=fast, scalar_fast_domain=fast_domain, rule_scalar=(rule,),
                     jvp=(fused,), vjp=(fused,), inplace=inplace)
    if fast is not None:
        _core.eager_impl(prim, impl)
    return prim


def _binary(name: str, impl: Callable, dx: Callable, dy: Callable,
            scalar: Callable | dict | None = None) -> Primitive:
    """A binary primitive with local derivatives ``dx(out, x, y)`` and ``dy(out, x, y)``."""
    return Primitive(name, impl, batch="elementwise", scalar=scalar,
                     jvp=(lambda t, out, x, y: t * dx(out, x, y),
                          lambda t, out, x, y: t * dy(out, x, y)),
                     vjp=(lambda ct, out, x, y: ct * dx(out, x, y),
                          lambda ct, out, x, y: ct * dy(out, x, y)))


def _nondiff(name: str, impl: Callable, scalar: Callable | dict | None = None) -> Primitive:
    """A piecewise-constant primitive: computed on primal values, no derivative."""
    return Primitive(name, impl, batch="elementwise", differentiable=False, scalar=scalar)


def _same(x):
    return x  # floor, ceil, trunc and rint of an integer (NumPy keeps it exact); real of a real


def _scalar_result(out: np.ndarray) -> np.ndarray | np.generic:
    # Like a ufunc, an impl built from np.where returns a NumPy scalar for scalar input.
    return out if out.ndim else out[()]


# -- arithmetic --------------------------------------------------------------------------------

# (transpose_reads_shapes=False: these transposes take the shape of the cotangent, which an
# elementwise operand has, so the reverse trace keeps nothing of a differentiated operand)
add = Primitive("add", np.add, batch="elementwise", scalar=operator.add,
                identity={0: -0.0, 1: -0.0}, transpose_reads_shapes=False,
                linear=True, transpose=(lambda ct, out, x, y: ct, lambda ct, out, x, y: ct))

sub = Primitive("sub", np.subtract, batch="elementwise", scalar=operator.sub, identity={1: 0.0},
                transpose_reads_shapes=False,
                linear=True, transpose=(lambda ct, out, x, y: ct, lambda ct, out, x, y: -ct))

mul = Primitive("mul", np.multiply, batch="elementwise", scalar=operator.mul, identity={0: 1, 1: 1},
                linear=(0, 1),  # bilinear: linear in each operand, the other held fixed
                transpose_reads_shapes=False,
                transpose=(lambda ct, out, x, y: ct * y, lambda ct, out, x, y: x * ct))

div = Primitive("div", np.true_divide, batch="elementwise", scalar=operator.truediv,
                identity={1: 1},
                vjp_reads=((1,), (1, -1)),
                jvp=(lambda t, out, x, y: t / y, lambda t, out, x, y: -t * out / y),
                vjp=(lambda ct, out, x, y: ct / y, lambda ct, out, x, y: -ct * out / y))

neg = Primitive("neg", np.negative, batch="elementwise", scalar=operator.neg, involution=True,
                transpose_reads_shapes=False, linear=True, transpose=(lambda ct, out, x: -ct,))


def _log_base(out, x):
    # d(x**y)/dy = x**y * log(x). At x == 0 the power is 0 (for y > 0) and the limit of
    # x**y * log(x) is 0, so log is taken of 1 there instead of producing 0 * -inf = nan.
    lg = log(where(eq(x, 0), 1.0, x))
    if lg.dtype != out.dtype:  # a Python-scalar base must not upcast a float32 exponent
        lg = convert_element_type(lg, dtype=out.dtype)
    return out * lg


def _pow_signed(x, y):
    # NumPy's integer power: repeated squaring, wrapping around (negative exponents raise
    # in NumPy; here they give 1).
    r = 1
    b = x
    e = y
    while e > 0:
        if e & 1:
            r *= b
        b *= b
        e >>= 1
    return r


def _pow_unsigned(x, y):
    r = np.uint64(1)
    b = np.uint64(x)
    e = np.uint64(y)
    while e > 0:
        if e & np.uint64(1):
            r *= b
        b *= b
        e >>= np.uint64(1)
    return r


def _pow_slope(x, y):
    """d/dx x**y = y * x**(y - 1), exact at x = 0 to every order: where y = 0 the slope is 0
    (x**0 is constant), computed as 0 * x**0 rather than 0 * x**-1 = 0 * inf, so neither it nor
    any derivative of it meets 0 * inf (grad(grad(grad(lambda x: x**2)))(0.0) is 0)."""
    if isinstance(y, (int, float, complex)):  # a Python exponent stays weakly typed
        return y * x ** ((1 if y == 0 else y) - 1)
    # the safe exponent only where both are 0, so that d/dy keeps its x**(y-1) log x terms
    exponent = where(logical_and(eq(y, 0), eq(x, 0)), 1, y) - 1
    if y.dtype.kind in "biu":  # keep the exponent's own dtype: float16 ** int64 is float64
        exponent = convert_discrete(exponent, dtype=y.dtype)
    return y * x ** exponent


pow = Primitive("pow", np.power, batch="elementwise", scalar={"f": operator.pow, "i": _pow_signed,
                                         "u": _pow_unsigned}, identity={1: 1},
                jvp=(lambda t, out, x, y: t * _pow_slope(x, y),
                     lambda t, out, x, y: t * _log_base(out, x)),
                vjp=(lambda ct, out, x, y: ct * _pow_slope(x, y),
                     lambda ct, out, x, y: ct * _log_base(out, x)))


def _mod_scalar(x, y):
    return x % y  # Python's float % takes the divisor's sign, as np.remainder does


def _safe_div(a, b):
    """``a / b`` where ``b != 0``, else 0: the minimum-norm subgradient at a kink like |x|."""
    zero = eq(b, 0)
    return where(zero, 0.0, a / where(zero, 1.0, b))


# x mod y = x - k y with the integer k = floor(x / y) constant between jumps: d/dx = 1 and
# d/dy = -k. At the jumps themselves the one-sided derivative (1 in x) is used: NumPy lists
# remainder among the ufuncs, and this makes periodic wrapping (angles) differentiable.
mod = Primitive("mod", np.remainder, batch="elementwise", scalar=_mod_scalar,
                jvp=(lambda t, out, x, y: t, lambda t, out, x, y: -t * floor_divide(x, y)),
                vjp=(lambda ct, out, x, y: ct, lambda ct, out, x, y: -ct * floor_divide(x, y)))
# fmod truncates instead: k = trunc(x / y).


def _fmod_scalar(x, y):
    # C's fmod (numba has no math.fmod): the remainder with the sign of x.
    return math.copysign(math.fabs(x) % math.fabs(y), x)


def _fmod_signed(x, y):
    # C's truncated remainder; NumPy gives 0 for a zero divisor (and for MIN % -1, which
    # would trap in the division instruction).
    if y == 0 or y == -1:
        return x - x
    r = x % y  # Python's (floored) remainder, with the divisor's sign
    return r - y if r != 0 and (r < 0) != (x < 0) else r


def _fmod_unsigned(x, y):
    return x % y if y != 0 else x - x


fmod = Primitive("fmod", np.fmod, batch="elementwise",
                 scalar={"f": _fmod_scalar, "i": _fmod_signed, "bu": _fmod_unsigned},
                 jvp=(lambda t, out, x, y: t, lambda t, out, x, y: -t * trunc(x / y)),
                 vjp=(lambda ct, out, x, y: ct, lambda ct, out, x, y: -ct * trunc(x / y)))


# -- transcendental ----------------------------------------------------------------------------

# The commonest rules as one function each (_unary's product): for a large float array they ask
# the eager kernels first, as _unary's two-function form does; on a plain array the primitive a
# rule applies runs its impl (what calling it does, without Primitive.__call__).

def _exp_product(t, out, x):
    return t * out


def _log_product(t, out, x):
    if t.__class__ is _ndarray and t.size >= _core.EAGER_MIN_SIZE:
        r = _core.eager(log, 0, t, out, (x,))
        if r is not None:
            return r
    return t * (1.0 / x)


def _sin_product(t, out, x):
    if t.__class__ is _ndarray and t.size >= _core.EAGER_MIN_SIZE:
        r = _core.eager(sin, 0, t, out, (x,))
        if r is not None:
            return r
    elif x.__class__ is _ndarray and not _core.DEBUG_NANS:
        return t * cos.impl(x)
    return t * cos(x)


def _cos_product(t, out, x):
    if t.__class__ is _ndarray and t.size >= _core.EAGER_MIN_SIZE:
        r = _core.eager(cos, 0, t, out, (x,))
        if r is not None:
            return r
    elif x.__class__ is _ndarray and not _core.DEBUG_NANS:
        return t * -sin.impl(x)
    return t * -sin(x)


def _tanh_product(t, out, x):
    if t.__class__ is _ndarray and t.size >= _core.EAGER_MIN_SIZE:
        r = _core.eager(tanh, 0, t, out, (x,))
        if r is not None:
            return r
    return t * (1.0 - out * out)


def _sqrt_product(t, out, x):
    if t.__class__ is _ndarray and t.size >= _core.EAGER_MIN_SIZE:
        r = _core.eager(sqrt, 0, t, out, (x,))
        if r is not None:
            return r
    return t * (0.5 / out)


# (no rule form: exp's rule is one multiply, which a kernel does not beat, and NumPy's exp is
# a SIMD loop faster than fastmath's, see diffprog/kernels/eager_fast.py)
exp = _unary("exp", np.exp, None, math.exp, "out", fast="exp", product=_exp_product)
def _exp2_scalar(x):
    return 2.0 ** (x * 1.0)  # (numba's np.exp2 does not compile for float32)


exp2 = _unary("exp2", np.exp2, lambda out, x: out * _LN2, _exp2_scalar)
log = _unary("log", np.log, None, np.log, "x", fast="log", rule="t * (1.0 / x)",
            product=_log_product)
log2 = _unary("log2", np.log2, lambda out, x: 1.0 / (x * _LN2), math.log2)
log10 = _unary("log10", np.log10, lambda out, x: 1.0 / (x * _LN10), math.log10)
log1p = _unary("log1p", np.log1p, lambda out, x: 1.0 / (1.0 + x), np.log1p, "x", fast="log1p",
              rule="t * (1.0 / (1.0 + x))")
expm1 = _unary("expm1", np.expm1, lambda out, x: out + 1.0, math.expm1, "out", fast="expm1",
              rule="t * (out + 1.0)")
sin = _unary("sin", np.sin, None, np.sin, "x", fast="sin",
             fast_domain="trig_in_range", rule="t * cos(x)", product=_sin_product)
cos = _unary("cos", np.cos, None, np.cos, "x", fast="cos",
             fast_domain="trig_in_range", rule="t * -sin(x)", product=_cos_product)
tan = _unary("tan", np.tan, lambda out, x: 1.0 + out * out, math.tan, "out",
             rule="t * (1.0 + out * out)")
# (1 - x)(1 + x) rather than 1 - x*x: accurate near |x| = 1, where the derivative blows up.
arcsin = _unary("arcsin", np.arcsin, lambda out, x: 1.0 / sqrt((1.0 - x) * (1.0 + x)),
                math.asin)
arccos = _unary("arccos", np.arccos, lambda out, x: -1.0 / sqrt((1.0 - x) * (1.0 + x)),
                math.acos)
arctan = _unary("arctan", np.arctan, lambda out, x: 1.0 / (1.0 + x * x), math.atan,
                rule="t * (1.0 / (1.0 + x * x))")
sinh = _unary("sinh", np.sinh, lambda out, x: cosh(x), math.sinh)
cosh = _unary("cosh", np.cosh, lambda out, x: sinh(x), math.cosh)
tanh = _unary("tanh", np.tanh, None, math.tanh, "out", fast="tanh",
              rule="t * (1.0 - out * out)", product=_tanh_product)
arcsinh = _unary("arcsinh", np.arcsinh, lambda out, x: 1.0 / sqrt(x * x + 1.0), math.asinh)
arccosh = _unary("arccosh", np.arccosh, lambda out, x: 1.0 / (sqrt(x - 1.0) * sqrt(x + 1.0)),
                 math.acosh)
arctanh = _unary("arctanh", np.arctanh, lambda out, x: 1.0 / ((1.0 - x) * (1.0 + x)),
                 math.atanh)
# sqrt'(0) = inf, as NumPy computes 0.5 / sqrt(0): documented, not patched over. Same for cbrt.
sqrt = _unary("sqrt", np.sqrt, None, math.sqrt, "out", rule="t * (0.5 / out)",
              product=_sqrt_product)


def _cbrt_scalar(x):
    # numba has no math.cbrt: a power, then one Newton step to undo its rounding.
    a = math.fabs(x)
    if a == 0.0 or a == math.inf or a != a:
        return x
    tiny = a < 2.2250738585072014e-308  # subnormal: scaled by 2**54 (exact), cube root 2**18
    a = a * 18014398509481984.0 if tiny else a
    r = a ** (1.0 / 3.0)
    r -= (r * r * r - a) / (3.0 * r * r)
    r = r / 262144.0 if tiny else r
    return math.copysign(r, x)


cbrt = _unary("cbrt", np.cbrt, lambda out, x: 1.0 / (3.0 * out * out), _cbrt_scalar)

# atan2(y, x): d/dy = x / (x² + y²), d/dx = -y / (x² + y²); nan at the origin, where atan2
# jumps (as NumPy computes 0 / 0).
arctan2 = _binary("arctan2", np.arctan2,
                  lambda out, y, x: x / (x * x + y * y),
                  lambda out, y, x: -y / (x * x + y * y), math.atan2)
# hypot(x, y) = |(x, y)|: d/dx = x / hypot. At the origin the derivative is 0, the
# minimum-norm subgradient, as for abs.
hypot = _binary("hypot", np.hypot,
                lambda out, x, y: _safe_div(x, out),
                lambda out, x, y: _safe_div(y, out), np.hypot)


def _logaddexp2_scalar(x, y):
    # NumPy's npy_logaddexp2: equal arguments (also infinities of one sign) give x + 1.
    # Self-contained: a fused kernel compiles the scalar form alone, not the functions it calls.
    # Computed in float64: integer operands must not wrap in x - y.
    x = x * 1.0
    y = y * 1.0
    if x == y:
        return x + 1.0
    d = x - y
    if d > 0:
        return x + 1.4426950408889634 * np.log1p(2.0 ** -d)
    if d <= 0:
        return y + 1.4426950408889634 * np.log1p(2.0 ** d)
    return d  # nan


def _logaddexp_scalar(x, y):
    # NumPy's npy_logaddexp: equal arguments (also infinities of one sign) give x + log 2.
    x = x * 1.0  # in float64: integer operands must not wrap in x - y
    y = y * 1.0
    if x == y:
        return x + 0.6931471805599453
    d = x - y
    if d > 0:
        return x + np.log1p(np.exp(-d))
    if d <= 0:
        return y + np.log1p(np.exp(d))
    return d  # nan


# d/dx log(e^x + e^y) = e^(x - out): the exponent is <= 0, so it never overflows.
logaddexp = _binary("logaddexp", np.logaddexp,
                    lambda out, x, y: exp(x - out),
                    lambda out, x, y: exp(y - out), _logaddexp_scalar)
logaddexp2 = _binary("logaddexp2", np.logaddexp2,
                     lambda out, x, y: exp2(x - out),
                     lambda out, x, y: exp2(y - out),
                     _logaddexp2_scalar)


# -- special functions (not in NumPy; used by diffprog.nn) -------------------------------------

# W. J. Cody's rational approximations (Math. Comp. 23, 1969), the ones behind many libm
# erf/erfc: |x| <= 0.46875 for erf, 0.46875 < |x| <= 4 and |x| > 4 for erfc. Evaluated in
# float64 they agree with math.erf/math.erfc to a few ulp (checked in the tests).
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
_RSQRTPI = 1.0 / math.sqrt(math.pi)


def _exp_minus_square(y):
    # exp(-y²) with y² split as hi² + (y - hi)(y + hi), hi = y rounded down to 1/16: the
    # rounding error of y*y would otherwise be amplified by the exponential.
    hi = np.trunc(y * 16.0) / 16.0
    return np.exp(-hi * hi) * np.exp(-(y - hi) * (y + hi))


def _erf_parts(x):
    """``erf(|x|)`` where ``|x| <= 0.46875`` (the mask returned), ``erfc(|x|)`` elsewhere."""
    y = np.abs(x)
    small = y <= 0.46875
    mid = ~small & (y <= 4.0)
    big = ~(small | mid)  # also nan
    out = np.empty_like(y)
    ys = y[small]
    z = ys * ys
    num, den = _ERF_A[4] * z, z
    for i in range(3):
        num = (num + _ERF_A[i]) * z
        den = (den + _ERF_B[i]) * z
    out[small] = ys * (num + _ERF_A[3]) / (den + _ERF_B[3])
    ym = y[mid]
    num, den = _ERF_C[8] * ym, ym
    for i in range(7):
        num = (num + _ERF_C[i]) * ym
        den = (den + _ERF_D[i]) * ym
    out[mid] = _exp_minus_square(ym) * (num + _ERF_C[7]) / (den + _ERF_D[7])
    # erfc(40) underflows to 0; clipping there keeps inf out of the arithmetic (nan stays).
    yb = np.minimum(y[big], 40.0)
    z = 1.0 / (yb * yb)
    num, den = _ERF_P[5] * z, z
    for i in range(4):
        num = (num + _ERF_P[i]) * z
        den = (den + _ERF_Q[i]) * z
    r = z * (num + _ERF_P[4]) / (den + _ERF_Q[4])
    out[big] = _exp_minus_square(yb) * (_RSQRTPI - r) / yb
    return out, small


def _float_dtype(x) -> np.dtype:
    dtype = np.asarray(x).dtype
    if dtype.kind in "biu":
        return np.dtype(np.float64)  # as NumPy's float ufuncs compute integers
    if dtype.kind != "f":
        raise TypeError(f"erf and erfc are implemented for real arguments, not {dtype}")
    return dtype


def _erf_impl(x):
    dtype = _float_dtype(x)
    xf = np.asarray(x, dtype=np.float64)
    parts, small = _erf_parts(xf)
    out = np.copysign(np.where(small, parts, 1.0 - parts), xf)
    return _scalar_result(out.astype(dtype, copy=False))


def _erfc_impl(x):
    dtype = _float_dtype(x)
    xf = np.asarray(x, dtype=np.float64)
    parts, small = _erf_parts(xf)
    out = np.where(small, 1.0 - np.copysign(parts, xf), np.where(xf < 0, 2.0 - parts, parts))
    return _scalar_result(out.astype(dtype, copy=False))


erf = _unary("erf", _erf_impl, lambda out, x: _TWO_OVER_SQRT_PI * exp(-x * x), math.erf)
erfc = _unary("erfc", _erfc_impl, lambda out, x: -_TWO_OVER_SQRT_PI * exp(-x * x), math.erfc)


def _logistic_impl(x):
    # 1 / (1 + e^-x) overflows in e^-x for x << 0; with e = e^-|x| <= 1 both branches are
    # safe, and the tail e / (1 + e) keeps full relative precision for large negative x.
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return _scalar_result(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))


def _logistic_scalar(x):
    e = math.exp(-math.fabs(x))
    return 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)


# sigmoid: a primitive because the composition needs a branch on the sign for stability, and
# its derivative y (1 - y) is pure arithmetic on the output.
# (not fused for unsigned integers: the NumPy implementation negates them, which wraps)
logistic = _unary("logistic", _logistic_impl, lambda out, x: out * (1.0 - out),
                  {"bif": _logistic_scalar}, fast="sigmoid", rule="t * (out * (1.0 - out))")


# -- complex parts -----------------------------------------------------------------------------
# As in JAX, the vjp of real is ct -> ct + 0j, of imag ct -> -1j * ct, and conj is its own
# transpose: transposes under Re(sum(a * b)).

def _zero(x):
    return 0  # the imaginary part of a real number (complex operands are not fused)


real = Primitive("real", np.real, batch="elementwise", scalar=_same,
                 linear=True,
                 transpose=(lambda ct, out, x: convert_element_type(ct, dtype=x.dtype),))
imag = Primitive("imag", np.imag, batch="elementwise", scalar=_zero,
                 linear=True,
                 transpose=(lambda ct, out, x: convert_element_type(ct, dtype=x.dtype) * -1j,))
conj = Primitive("conj", np.conjugate, batch="elementwise", scalar=np.conjugate,
                 involution=True, linear=True, transpose=(lambda ct, out, x: conj(ct),))


# -- piecewise constant ------------------------------------------------------------------------

sign = _nondiff("sign", np.sign)


def _round_scalar(x, decimals):
    # NumPy's algorithm: scale, round half to even, unscale (x * 10 may overflow to inf).
    if decimals >= 0:
        f = 10.0 ** decimals
        return np.rint(x * f) / f
    f = 10.0 ** -decimals
    return np.rint(x / f) * f


def _floor_divide_float(x, y):
    # NumPy's npy_floor_divide (npy_divmod): fmod, then the quotient corrected and rounded;
    # inf // y and x // 0 are nan or inf as in NumPy, signed zeros kept.
    if y == 0:
        return x / y
    mod = np.fmod(x, y)
    div = (x - mod) / y
    if mod:
        if (y < 0) != (mod < 0):
            div -= 1.0
    if div:
        fd = np.floor(div)
        if div - fd > 0.5:
            fd += 1.0
        return fd
    return math.copysign(0.0, x / y)


def _floor_divide_signed(x, y):
    # Python's floored division; NumPy gives 0 for a zero divisor and wraps MIN // -1 to MIN
    # (which would trap in the division instruction).
    if y == -1:
        return -x
    return x // y if y != 0 else x - x


round = Primitive("round", lambda x, decimals: np.round(x, decimals), differentiable=False,
                  batch="elementwise",
                  scalar={"f": _round_scalar})
# NumPy's complex reciprocal has its own edge values (1 / (-0 + 0j) is nan + nan j, where
# dividing 1.0 by it gives inf + nan j); d(1/z) = -dz / z**2 = -dz * out**2.
reciprocal = Primitive(
    "reciprocal", np.reciprocal, batch="elementwise", vjp_reads=((-1,),),
    jvp=(lambda t, out, x: t * neg(out * out),),
    vjp=(lambda ct, out, x: ct * neg(out * out),))
# NumPy's reciprocal of integers and bools is integer division, 1 // x truncated toward 0:
# piecewise constant. (Floats use div, whose rules apply.)
reciprocal_integer = _nondiff("reciprocal_integer", np.reciprocal)
floor = _nondiff("floor", np.floor, {"f": np.floor, "biu": _same})
ceil = _nondiff("ceil", np.ceil, {"f": np.ceil, "biu": _same})
trunc = _nondiff("trunc", np.trunc, {"f": np.trunc, "biu": _same})
rint = _nondiff("rint", np.rint, {"f": np.rint, "biu": _same})
floor_divide = _nondiff("floor_divide", np.floor_divide,
                        {"f": _floor_divide_float, "i": _floor_divide_signed,
                         "bu": operator.floordiv})
lt = _nondiff("lt", np.less, operator.lt)
le = _nondiff("le", np.less_equal, operator.le)
gt = _nondiff("gt", np.greater, operator.gt)
ge = _nondiff("ge", np.greater_equal, operator.ge)
eq = _nondiff("eq", np.equal, operator.eq)
ne = _nondiff("ne", np.not_equal, operator.ne)
logical_not = _nondiff("logical_not", np.logical_not, operator.not_)
logical_and = _nondiff("logical_and", np.logical_and, lambda a, b: bool(a) and bool(b))
logical_or = _nondiff("logical_or", np.logical_or, lambda a, b: bool(a) or bool(b))
logical_xor = _nondiff("logical_xor", np.logical_xor, lambda a, b: bool(a) != bool(b))
bitwise_and = _nondiff("bitwise_and", np.bitwise_and, operator.and_)
bitwise_or = _nondiff("bitwise_or", np.bitwise_or, operator.or_)
bitwise_xor = _nondiff("bitwise_xor", np.bitwise_xor, operator.xor)
invert = _nondiff("invert", np.invert, operator.invert)
isfinite = _nondiff("isfinite", np.isfinite, math.isfinite)
isnan = _nondiff("isnan", np.isnan, math.isnan)
isinf = _nondiff("isinf", np.isinf, math.isinf)
signbit = _nondiff("signbit", np.signbit, lambda x: math.copysign(1.0, x) < 0)


# -- selection ---------------------------------------------------------------------------------

def _selector(name: str, impl: Callable, first: Callable, scalar: Callable | None = None
              ) -> Primitive:
    # first(x, y): the condition under which x alone is selected (x > y for maximum).
    def wx(out, x, y):
        return _share_by(first, x, y, out)

    def wy(out, x, y):
        return _share_by(first, y, x, out)

    return Primitive(name, impl, batch="elementwise", scalar=scalar,
                     jvp=(lambda t, out, x, y: t * wx(out, x, y),
                          lambda t, out, x, y: t * wy(out, x, y)),
                     vjp=(lambda ct, out, x, y: ct * wx(out, x, y),
                          lambda ct, out, x, y: ct * wy(out, x, y)))


def _share_by(first, x, y, out):
    # At a tie each operand gets half: the derivative along (1, 1) is still 1.
    dtype = out.dtype
    return (convert_element_type(first(x, y), dtype=dtype)
            + 0.5 * convert_element_type(eq(x, y), dtype=dtype))


def _nan_ignoring(compare):
    # fmax/fmin return the operand that is not nan: x alone is chosen when it wins the
    # comparison or when only y is nan.
    def first(x, y):
        return logical_or(compare(x, y), logical_and(isnan(y), logical_not(isnan(x))))
    return first


# As NumPy's array loops: nan propagates (maximum) or is ignored (fmax), and of two equal
# values (-0.0 and 0.0) the second is returned.
def _maximum_scalar(x, y):
    return x if x > y or x != x else y


def _minimum_scalar(x, y):
    return x if x < y or x != x else y


def _fmax_scalar(x, y):
    return x if x > y or y != y else y


def _fmin_scalar(x, y):
    return x if x < y or y != y else y


maximum = _selector("maximum", np.maximum, lambda x, y: gt(x, y), _maximum_scalar)
minimum = _selector("minimum", np.minimum, lambda x, y: lt(x, y), _minimum_scalar)
fmax = _selector("fmax", np.fmax, _nan_ignoring(gt), _fmax_scalar)
fmin = _selector("fmin", np.fmin, _nan_ignoring(lt), _fmin_scalar)


# clip(a, lo, hi) = min(max(a, lo), hi), NumPy's definition (hi wins when lo > hi). The
# derivative goes to the operand that is returned: to a where lo <= a <= hi (boundaries
# included, so clip(x, 0, 1) passes the derivative at x = 0 and x = 1), to lo where a < lo,
# to hi where a > hi or lo > hi.
def _clip_weight(which):
    def weight(out, a, lo, hi):
        if which == 0:
            chosen = logical_and(ge(a, lo), le(a, hi))
        elif which == 1:
            chosen = logical_and(lt(a, lo), le(lo, hi))
        else:
            chosen = logical_or(gt(a, hi), gt(lo, hi))
        return convert_element_type(chosen, dtype=out.dtype)
    return weight


_clip_w = [_clip_weight(i) for i in range(3)]


def _clip_scalar(a, lo, hi):
    # NumPy's loop for array bounds: minimum(maximum(a, lo), hi), nan from any operand, and
    # of two equal values the second (NumPy's loop for scalar bounds differs in that)
    m = a if a > lo or a != a else lo
    return m if m < hi or m != m else hi


clip = Primitive(
    "clip", np.clip, batch="elementwise", scalar=_clip_scalar,
    jvp=tuple((lambda t, out, a, lo, hi, w=w: t * w(out, a, lo, hi)) for w in _clip_w),
    vjp=tuple((lambda ct, out, a, lo, hi, w=w: ct * w(out, a, lo, hi)) for w in _clip_w))


def _no_tangent(*args, **kwargs):
    raise TypeError("the condition of where has no derivative")


where = Primitive("where", np.where, batch="elementwise",
                  jvp=(_no_tangent,
                       lambda t, out, c, x, y: where(c, t, 0.0),
                       lambda t, out, c, x, y: where(c, 0.0, t)),
                  vjp=(_no_tangent,
                       lambda ct, out, c, x, y: where(c, ct, 0.0),
                       lambda ct, out, c, x, y: where(c, 0.0, ct)))


# -- abs ---------------------------------------------------------------------------------------

def _abs_direction(out, x):
    # d|x| = Re(conj(s) dx) with s = x / |x|: sign(x) for reals. At 0 the derivative is 0, the
    # subgradient of minimum norm. For complex x the rules below divide conj(x) by out (not
    # sign, which has no derivative), so that second derivatives are right.
    return convert_element_type(sign(x), dtype=x.dtype)


def _abs_jvp(t, out, x):
    if x.dtype.kind == "c":  # Re(conj(x) t) / |x|: divided last, so 2 conj(z) is exact for |z|²
        return _safe_div(real(conj(x) * t), out)
    return t * _abs_direction(out, x)


def _abs_vjp(ct, out, x):
    if x.dtype.kind == "c":  # ct conj(x) / |x|, JAX's transpose of the jvp
        return _safe_div(ct * conj(x), convert_element_type(out, dtype=x.dtype))
    return ct * _abs_direction(out, x)


def _abs_int(x):
    return -x if x < 0 else x  # wraps at MIN, as np.abs does


abs = Primitive("abs", np.abs, batch="elementwise", scalar={"f": math.fabs, "biu": _abs_int},
                jvp=(_abs_jvp,),
                vjp=(_abs_vjp,))


# -- casts -------------------------------------------------------------------------------------

def _convert(x, dtype):
    x = np.asarray(x)
    # complex -> real keeps the real part (what astype does, without its ComplexWarning); it is
    # also the transpose of the real -> complex embedding, so the vjp below is right for both.
    if x.dtype.kind == "c" and dtype.kind == "b":
        return x != 0  # NumPy: a complex number is true unless both parts are 0
    if x.dtype.kind == "c" and dtype.kind != "c":
        x = x.real
    return x.astype(dtype, copy=False)


def _convert_program(avals, out, dtype):
    """The whole-program tier's plan (see ``Primitive.program_form``): a cast of float64,
    an integer or a bool to float64 keeps the elements (the tier holds those as float64)."""
    kind = avals[0].dtype.kind
    if out.dtype == np.float64 and (avals[0].dtype == np.float64 or kind in "biu"):
        return ("same",)
    return None


convert_element_type = Primitive(
    "convert_element_type", _convert, batch="elementwise",
    linear=True,  # over the reals: a rounding, the real part, or the embedding in complex
    transpose=(lambda ct, out, x, dtype: convert_element_type(ct, dtype=x.dtype),),
    program_form=_convert_program)

# A cast to bool or an integer type is piecewise constant: no derivative flows through it.
convert_discrete = Primitive("convert_discrete", _convert, batch="elementwise",
                             differentiable=False)
