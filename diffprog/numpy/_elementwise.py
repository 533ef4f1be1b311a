"""Elementwise functions: ufunc math, comparisons, where, casts.

Every function takes NumPy's arguments and broadcasting. Values that are not traced go straight
to NumPy; traced operands are aligned (broadcast and cast) and bound to one primitive. The
derivative conventions at edge points are stated in each docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import prims as P
from ..core import Tracer, bind, bind1, bind2, concrete
from ._core import _PY_SCALARS, _SEQUENCES, _align, _shape, _traced, as_operand, implements  # noqa: F401

__all__ = [
    "add", "subtract", "multiply", "divide", "true_divide", "power", "float_power", "maximum",
    "minimum", "fmax", "fmin", "negative", "positive", "square", "sqrt", "cbrt", "reciprocal",
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "logaddexp", "logaddexp2", "sin",
    "cos", "tan", "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "arcsinh",
    "arccosh", "arctanh", "hypot", "deg2rad", "rad2deg", "radians", "degrees", "abs",
    "absolute", "fabs", "sign", "clip", "real", "imag", "conj", "conjugate", "angle",
    "real_if_close", "mod",
    "remainder", "fmod", "floor_divide", "divmod", "floor", "ceil", "round", "around", "trunc",
    "rint", "logical_not", "logical_and", "logical_or", "logical_xor", "bitwise_and",
    "bitwise_or", "bitwise_xor", "invert", "bitwise_not", "isfinite", "isnan", "isinf",
    "signbit", "less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "where",
    "astype",
]


# -- binary functions ------------------------------------------------------------------------

def _binary_function(prim) -> Any:
    """The function ``fn(x1, x2)`` applying ``prim`` to two operands with NumPy's broadcasting
    and type promotion: traced operands are aligned (broadcast and cast, ``_align``); untraced
    ones go straight to NumPy. A traced value with a Python scalar, or two traced values of one
    trace, go straight to the trace (``process2``, what ``core.bind2`` calls); the rest through
    ``bind2``. One function per primitive with its dispatch written out, as these are Tracer's
    operators: one Python call per operation."""
    def fn(x1: Any, x2: Any) -> Any:
        if isinstance(x1, Tracer):
            if isinstance(x2, Tracer):
                if x1 is not x2 and (x1.shape != x2.shape or x1.dtype != x2.dtype):
                    x1, x2 = _align(x1, x2)  # (x * x is aligned)
                top = x1._trace
                if x2._trace is top:
                    return top.process2(prim, x1, x2)
            elif (t := type(x2)) is float or t is int or t is bool or (
                    t is complex and x1.dtype.kind == "c"):
                return x1._trace.process2(prim, x1, x2)  # a weak Python scalar: aligned
            else:
                x1, x2 = _align(x1, as_operand(x2))
        elif isinstance(x2, Tracer):
            if (t := type(x1)) is float or t is int or t is bool or (
                    t is complex and x2.dtype.kind == "c"):
                return x2._trace.process2(prim, x1, x2)
            x1, x2 = _align(as_operand(x1), x2)
        elif isinstance(x1, _SEQUENCES) or isinstance(x2, _SEQUENCES):
            # lists may hold traced values (NumPy's own ufunc would stop at their conversion)
            x1, x2 = as_operand(x1), as_operand(x2)
            return fn(x1, x2) if _traced(x1, x2) else prim.impl(x1, x2)
        else:
            return prim.impl(x1, x2)
        return bind2(prim, x1, x2)

    return fn


def _binary_ufunc(prim, numpy_function: Any):
    """Decorator: the decorated stub (its name, signature and docstring; its body is not run)
    becomes ``_binary_function(prim)``, registered for ``numpy_function``."""
    def make(stub: Any) -> Any:
        fn = _binary_function(prim)
        fn.__name__, fn.__qualname__, fn.__doc__ = stub.__name__, stub.__qualname__, stub.__doc__
        fn.__annotations__ = stub.__annotations__
        return implements(numpy_function)(fn)
    return make


# -- arithmetic ------------------------------------------------------------------------------

@_binary_ufunc(P.add, np.add)
def add(x1: Any, x2: Any) -> Any:
    """``x1 + x2`` with broadcasting (NumPy's ``add``).

    Example:
        >>> add(np.ones(2), 1.0)
        array([2., 2.])
    """


@_binary_ufunc(P.sub, np.subtract)
def subtract(x1: Any, x2: Any) -> Any:
    """``x1 - x2`` with broadcasting (NumPy's ``subtract``)."""


@_binary_ufunc(P.mul, np.multiply)
def multiply(x1: Any, x2: Any) -> Any:
    """``x1 * x2`` with broadcasting (NumPy's ``multiply``)."""


@_binary_ufunc(P.div, np.divide)
def divide(x1: Any, x2: Any) -> Any:
    """``x1 / x2`` with broadcasting (NumPy's ``divide``, also ``true_divide``)."""


true_divide = divide


@_binary_ufunc(P.pow, np.power)
def power(x1: Any, x2: Any) -> Any:
    """``x1 ** x2`` with broadcasting (NumPy's ``power``).

    The derivative in the exponent, ``x1 ** x2 * log(x1)``, is taken as 0 at ``x1 = 0``.
    """


@implements(np.float_power)
def float_power(x1: Any, x2: Any) -> Any:
    """``x1 ** x2`` computed in float64 (or complex128), NumPy's ``float_power``.

    Example:
        >>> float_power(np.float32(2.0), 3).dtype
        dtype('float64')
    """
    x1, x2 = as_operand(x1), as_operand(x2)
    if not _traced(x1, x2):
        return np.float_power(x1, x2)
    dtype = np.result_type(_dtype_of(x1), _dtype_of(x2), np.float64)
    return power(astype(x1, dtype), astype(x2, dtype))


def _dtype_of(x: Any) -> Any:
    if isinstance(x, (Tracer, np.ndarray, np.generic)):
        return x.dtype
    return np.asarray(x).dtype


@implements(np.negative)
def negative(x: Any) -> Any:
    """``-x`` (NumPy's ``negative``)."""
    if isinstance(x, Tracer):  # bind1, without its frame
        return x._trace.process1(P.neg, x)
    try:
        return bind1(P.neg, x)
    except TypeError:
        return _unary_retry(P.neg, x)


def _unary_retry(prim: Any, x: Any) -> Any:
    """``bind(prim, x)`` once more after ``bind(prim, x)`` raised TypeError: a list holding
    traced values fails NumPy's conversion, so it is stacked first. Retrying instead of
    checking beforehand keeps the check off the hot path (a try costs nothing in 3.11)."""
    if isinstance(x, (list, tuple)):
        y = as_operand(x)
        if isinstance(y, Tracer):
            return bind(prim, y)
    raise


@implements(np.positive)
def positive(x: Any) -> Any:
    """``+x``: the value itself (NumPy's ``positive``)."""
    return x if isinstance(x, Tracer) or isinstance(x := as_operand(x), Tracer) \
        else np.positive(x)


@implements(np.square)
def square(x: Any) -> Any:
    """``x * x`` (NumPy's ``square``)."""
    return multiply(x, x)


@implements(np.reciprocal)
def reciprocal(x: Any) -> Any:
    """``1 / x`` (NumPy's ``reciprocal``); the derivative at 0 is -inf as NumPy computes it."""
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.reciprocal(x)
    if x.dtype.kind in "biu":
        return bind(P.reciprocal_integer, x)  # integer results, as NumPy's
    if x.dtype.kind == "c":
        return bind(P.reciprocal, x)  # NumPy's complex edge values (1 / 0j)
    return divide(1.0, x)


# -- selection -------------------------------------------------------------------------------

@_binary_ufunc(P.maximum, np.maximum)
def maximum(x1: Any, x2: Any) -> Any:
    """Elementwise maximum (NumPy's ``maximum``; nan propagates).

    The derivative goes to the larger operand; at ties it is shared evenly (half each), so the
    derivative of ``maximum(x, x)`` is 1.
    """


@_binary_ufunc(P.minimum, np.minimum)
def minimum(x1: Any, x2: Any) -> Any:
    """Elementwise minimum (NumPy's ``minimum``); ties share the derivative evenly."""


@_binary_ufunc(P.fmax, np.fmax)
def fmax(x1: Any, x2: Any) -> Any:
    """Elementwise maximum ignoring nan (NumPy's ``fmax``): where one operand is nan the other
    is returned, and gets the derivative. Ties share the derivative evenly.

    Example:
        >>> fmax(np.array([1.0, np.nan]), np.array([np.nan, 2.0]))
        array([1., 2.])
    """


@_binary_ufunc(P.fmin, np.fmin)
def fmin(x1: Any, x2: Any) -> Any:
    """Elementwise minimum ignoring nan (NumPy's ``fmin``); the derivative goes to the
    returned operand, ties share it evenly."""


@implements(np.clip)
def clip(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None, *, min: Any = None,
         max: Any = None) -> Any:
    """``a`` limited to ``[a_min, a_max]`` (NumPy's ``clip``; ``min``/``max`` are aliases).

    As in NumPy the result is ``minimum(maximum(a, a_min), a_max)``: ``a_max`` wins when
    ``a_min > a_max``. The derivative goes to whichever operand is returned: 1 for ``a`` inside
    the interval *including its end points*, 0 outside, where the bound that was returned gets
    it (bounds may be traced too).

    Example:
        >>> import diffprog as dp
        >>> dp.grad(lambda x: clip(x, 0.0, 1.0).sum())(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]))
        array([0., 1., 1., 1., 0.])
    """
    if out is not None:
        raise TypeError("clip(..., out=...) writes in place; use the returned value instead")
    if min is not None:
        a_min = min
    if max is not None:
        a_max = max
    a, a_min, a_max = as_operand(a), as_operand(a_min), as_operand(a_max)
    if not _traced(a, a_min, a_max):
        return np.clip(a, a_min, a_max)
    lo = -np.inf if a_min is None else a_min
    hi = np.inf if a_max is None else a_max
    a, lo, hi = _align(a, lo, hi)
    return bind(P.clip, a, lo, hi)


# -- unary math ------------------------------------------------------------------------------

def _unary_fn(prim, np_name: str, doc: str, name: str | None = None):
    def fn(x: Any) -> Any:
        if isinstance(x, Tracer):  # bind1, without its frame
            return x._trace.process1(prim, x)
        try:
            return bind1(prim, x)
        except TypeError:
            return _unary_retry(prim, x)
    fn.__name__ = fn.__qualname__ = name or np_name
    fn.__doc__ = doc
    fn.__annotations__ = {"x": "Any", "return": "Any"}
    return implements(getattr(np, np_name))(fn)


sqrt = _unary_fn(P.sqrt, "sqrt", "Square root (NumPy's ``sqrt``). Its derivative at 0 is inf, "
                 "as NumPy computes ``0.5 / sqrt(0)``.")
cbrt = _unary_fn(P.cbrt, "cbrt", "Cube root (NumPy's ``cbrt``), real for negative x too; its "
                 "derivative at 0 is inf.")
exp = _unary_fn(P.exp, "exp", "Exponential (NumPy's ``exp``).")
exp2 = _unary_fn(P.exp2, "exp2", "``2 ** x`` (NumPy's ``exp2``).")
expm1 = _unary_fn(P.expm1, "expm1", "``exp(x) - 1``, accurate for small x (NumPy's ``expm1``).")
log = _unary_fn(P.log, "log", "Natural logarithm (NumPy's ``log``); derivative ``1 / x``.")
log2 = _unary_fn(P.log2, "log2", "Base-2 logarithm (NumPy's ``log2``).")
log10 = _unary_fn(P.log10, "log10", "Base-10 logarithm (NumPy's ``log10``).")
log1p = _unary_fn(P.log1p, "log1p", "``log(1 + x)``, accurate for small x (NumPy's ``log1p``).")
sin = _unary_fn(P.sin, "sin", "Sine (NumPy's ``sin``).")
cos = _unary_fn(P.cos, "cos", "Cosine (NumPy's ``cos``).")
tan = _unary_fn(P.tan, "tan", "Tangent (NumPy's ``tan``).")
arcsin = _unary_fn(P.arcsin, "arcsin", "Inverse sine (NumPy's ``arcsin``); the derivative is "
                   "inf at x = ±1.")
arccos = _unary_fn(P.arccos, "arccos", "Inverse cosine (NumPy's ``arccos``); the derivative is "
                   "-inf at x = ±1.")
arctan = _unary_fn(P.arctan, "arctan", "Inverse tangent (NumPy's ``arctan``).")
sinh = _unary_fn(P.sinh, "sinh", "Hyperbolic sine (NumPy's ``sinh``).")
cosh = _unary_fn(P.cosh, "cosh", "Hyperbolic cosine (NumPy's ``cosh``).")
tanh = _unary_fn(P.tanh, "tanh", "Hyperbolic tangent (NumPy's ``tanh``).")
arcsinh = _unary_fn(P.arcsinh, "arcsinh", "Inverse hyperbolic sine (NumPy's ``arcsinh``).")
arccosh = _unary_fn(P.arccosh, "arccosh", "Inverse hyperbolic cosine (NumPy's ``arccosh``); "
                    "the derivative is inf at x = 1.")
arctanh = _unary_fn(P.arctanh, "arctanh", "Inverse hyperbolic tangent (NumPy's ``arctanh``); "
                    "the derivative is inf at x = ±1.")


@implements(np.abs)
def abs(x: Any) -> Any:
    """Absolute value (NumPy's ``abs``/``absolute``), also of complex numbers.

    The derivative at 0 is 0 (the subgradient of minimum norm); elsewhere it is ``sign(x)``,
    for complex x the real-valued ``Re(conj(x / |x|) dx)``.

    Example:
        >>> import diffprog as dp
        >>> dp.grad(lambda x: abs(x).sum())(np.array([-2.0, 0.0, 3.0]))
        array([-1.,  0.,  1.])
    """
    if isinstance(x, Tracer):  # bind1, without its frame
        return x._trace.process1(P.abs, x)
    try:
        return bind1(P.abs, x)
    except TypeError:
        return _unary_retry(P.abs, x)


absolute = abs


@implements(np.fabs)
def fabs(x: Any) -> Any:
    """Absolute value of real numbers (NumPy's ``fabs``); its derivative at 0 is 0."""
    x = as_operand(x)
    if isinstance(x, Tracer) and x.dtype.kind == "c":
        raise TypeError("ufunc 'fabs' not supported for complex input; use abs")
    return np.fabs(x) if not isinstance(x, Tracer) else bind(P.abs, x)


_DEG = float(np.pi / 180.0)  # np.deg2rad(x) is exactly x * (pi / 180)


@implements(np.deg2rad, np.radians)
def deg2rad(x: Any) -> Any:
    """Degrees to radians, ``x * pi / 180`` (NumPy's ``deg2rad``/``radians``)."""
    x = as_operand(x)
    _no_complex_angle(x, "deg2rad")
    return np.deg2rad(x) if not isinstance(x, Tracer) else multiply(x, _DEG)


@implements(np.rad2deg, np.degrees)
def rad2deg(x: Any) -> Any:
    """Radians to degrees, ``x * 180 / pi`` (NumPy's ``rad2deg``/``degrees``)."""
    x = as_operand(x)
    _no_complex_angle(x, "rad2deg")
    return np.rad2deg(x) if not isinstance(x, Tracer) else multiply(x, float(180.0 / np.pi))


radians, degrees = deg2rad, rad2deg


def _no_complex_angle(x: Any, name: str) -> None:
    """NumPy's deg2rad/rad2deg have no complex loops; the multiplication would accept them."""
    if isinstance(x, Tracer) and np.dtype(x.dtype).kind == "c":
        raise TypeError(f"ufunc '{name}' not supported for the input types, and the inputs "
                        "could not be safely coerced to any supported types according to the "
                        "casting rule ''safe''")


# -- binary math -----------------------------------------------------------------------------

def _binary_fn(prim, np_name: str, doc: str):
    fn = _binary_function(prim)
    fn.__name__ = fn.__qualname__ = np_name
    fn.__doc__ = doc
    fn.__annotations__ = {"x1": "Any", "x2": "Any", "return": "Any"}
    return implements(getattr(np, np_name))(fn)


arctan2 = _binary_fn(P.arctan2, "arctan2", "The angle of the point ``(x2, x1)``, "
                     "``atan(x1 / x2)`` in the right quadrant (NumPy's ``arctan2``). The "
                     "derivative is nan at the origin, where the angle jumps.")
hypot = _binary_fn(P.hypot, "hypot", "``sqrt(x1**2 + x2**2)`` without overflow (NumPy's "
                   "``hypot``). The derivative at the origin is 0, as for ``abs``.")
logaddexp = _binary_fn(P.logaddexp, "logaddexp", "``log(exp(x1) + exp(x2))`` without "
                       "overflow (NumPy's ``logaddexp``); the derivative in x1 is "
                       "``exp(x1 - out)``.")
logaddexp2 = _binary_fn(P.logaddexp2, "logaddexp2", "``log2(2**x1 + 2**x2)`` without "
                        "overflow (NumPy's ``logaddexp2``).")


@_binary_ufunc(P.mod, np.remainder)
def mod(x1: Any, x2: Any) -> Any:
    """``x1 mod x2`` with the sign of ``x2`` (NumPy's ``mod``/``remainder``, Python's ``%``).

    Unlike a pure step function it is differentiable almost everywhere: ``x1 - k * x2`` with
    the integer ``k = floor(x1 / x2)`` locally constant, so the derivative is 1 in ``x1`` and
    ``-k`` in ``x2``. At the jumps the same formula (the one-sided derivative) is used.

    Example:
        >>> import diffprog as dp
        >>> float(dp.grad(lambda x: mod(x, 2.0))(5.5)), float(dp.grad(mod, 1)(5.5, 2.0))
        (1.0, -2.0)
    """


remainder = mod


@_binary_ufunc(P.fmod, np.fmod)
def fmod(x1: Any, x2: Any) -> Any:
    """C's ``fmod``: the remainder with the sign of ``x1`` (NumPy's ``fmod``). Derivatives:
    1 in ``x1``, ``-trunc(x1 / x2)`` in ``x2``."""


@_binary_ufunc(P.floor_divide, np.floor_divide)
def floor_divide(x1: Any, x2: Any) -> Any:
    """``floor(x1 / x2)`` (NumPy's ``floor_divide``, Python's ``//``); piecewise constant, so
    its derivative is zero."""


@implements(np.divmod)
def divmod(x1: Any, x2: Any) -> tuple:
    """``(floor_divide(x1, x2), mod(x1, x2))`` (NumPy's ``divmod``)."""
    x1, x2 = as_operand(x1), as_operand(x2)
    if not _traced(x1, x2):
        return np.divmod(x1, x2)
    return floor_divide(x1, x2), mod(x1, x2)


# -- complex parts ---------------------------------------------------------------------------

@implements(np.real)
def real(val: Any) -> Any:
    """The real part (NumPy's ``real``); a real value is returned as it is.

    Derivatives follow JAX: the vjp maps a cotangent ``c`` to ``c + 0j``.

    Example:
        >>> import diffprog as dp
        >>> float(dp.grad(lambda x: real(x * (1 + 2j)) ** 2)(1.5))
        3.0
    """
    if not isinstance(val, Tracer) and not isinstance(val := as_operand(val), Tracer):
        return np.real(val)
    return bind(P.real, val) if val.dtype.kind == "c" else val


@implements(np.imag)
def imag(val: Any) -> Any:
    """The imaginary part (NumPy's ``imag``): zeros, without derivative, for a real value.

    Derivatives follow JAX: the vjp maps a cotangent ``c`` to ``-1j * c``, so the gradient of a
    real function of complex ``z`` is ``df/dRe(z) - 1j * df/dIm(z)``.
    """
    if not isinstance(val, Tracer) and not isinstance(val := as_operand(val), Tracer):
        return np.imag(val)
    if val.dtype.kind == "c":
        return bind(P.imag, val)
    return np.zeros(val.shape, val.dtype)


@implements(np.conj)
def conj(x: Any) -> Any:
    """The complex conjugate (NumPy's ``conj``/``conjugate``); a real value is returned as it is.
    The vjp of conj is conj, as in JAX."""
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.conj(x)
    return bind(P.conj, x) if x.dtype.kind == "c" else x


conjugate = conj


@implements(np.angle)
def angle(z: Any, deg: bool = False) -> Any:
    """The argument of ``z``, ``arctan2(imag(z), real(z))``, in radians or with ``deg=True`` in
    degrees (NumPy's ``angle``); real, in the precision of ``z``.

    For a real function of complex ``z`` the gradient follows JAX:
    ``d/dRe - 1j d/dIm``, here ``-1j / z``. Like ``arctan2``, the derivative is nan at 0.

    Example:
        >>> import diffprog as dp
        >>> complex(dp.grad(angle)(np.complex128(1j)))
        (-1+0j)
    """
    z = as_operand(z)
    if not isinstance(z, Tracer):
        return np.angle(z, deg=deg)
    a = arctan2(imag(z), real(z))  # imag of a real z is zeros: 0 or pi, no derivative
    return multiply(a, float(180.0 / np.pi)) if deg else a


@implements(np.real_if_close)
def real_if_close(a: Any, tol: float = 100) -> Any:
    """The real part of ``a`` when every imaginary part is below ``tol`` machine epsilons (an
    absolute ``tol`` if ``tol <= 1``), else ``a`` unchanged (NumPy's ``real_if_close``).

    The result's dtype depends on the values, as in NumPy, so it is decided on the concrete
    values (under ``jit`` that raises ``ConcretizationError``). Where the real part is taken,
    the derivative is that of ``real``: the imaginary direction is dropped.

    Example:
        >>> import diffprog as dp
        >>> float(dp.grad(lambda z: real_if_close(z * z))(np.complex128(3.0)))
        6.0
    """
    a = as_operand(a)
    if not isinstance(a, Tracer):
        return np.real_if_close(a, tol=tol)
    if a.dtype.kind != "c":
        return a
    if tol > 1:
        tol = np.finfo(a.dtype).eps * tol
    if np.all(np.abs(np.imag(concrete(a))) < tol):
        return real(a)
    return a


# -- piecewise constant: computed on primal values, zero derivative --------------------------

@implements(np.sign)
def sign(x: Any) -> Any:
    """Sign, -1, 0 or 1 (NumPy's ``sign``): piecewise constant, zero derivative. For complex
    ``x`` it is ``x / |x|`` (0 at 0), as in NumPy 2, and differentiable away from 0 (JAX gives
    a zero derivative there; the derivative here is the true one).

    Example:
        >>> import diffprog as dp
        >>> float(dp.grad(lambda x: sign(x) * x)(-2.0))
        -1.0
    """
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.sign(x)
    if x.dtype.kind == "c":
        return _complex_sign(x)
    return bind(P.sign, x)


def _complex_sign(x: Any) -> Any:
    """NumPy 2's complex sign to the bit: ``re / hypot(re, im)`` and ``im / hypot(re, im)``
    (real divisions: ``x / |x|`` as a complex division rounds differently), 0 at 0, and the
    unit along an infinite part whose partner is finite or nan."""
    re, im = real(x), imag(x)
    zero = equal(x, 0)
    a = where(zero, 1, hypot(re, im))  # (a safe divisor at 0, where the result is 0)
    r, i = divide(re, a), divide(im, a)

    def assemble(r: Any, i: Any) -> Any:
        # exact wherever a part is nonzero; a zero part may come out as +0.0 where r or i
        # is -0.0 (r + (i * 0 - 0), 0 + i), which the two flips below repair
        return add(astype(r, x.dtype), multiply(astype(i, x.dtype), 1j))
    out = assemble(r, i)
    # -conj flips the real part's sign only, conj the imaginary part's: both exact, and with
    # the parts negated inside, their derivatives are those of (r, i)
    out = where(not_equal(signbit(real(out)), signbit(r)), negative(conj(assemble(-r, i))),
                where(not_equal(signbit(imag(out)), signbit(i)), conj(assemble(r, -i)), out))
    out = where(zero, 0, out)
    # one infinite part (the other finite or nan): the unit along it, where the divisions give
    # nan; both infinite stay nan (complex(0, -1), not -1j, whose real part is -0.0)
    re_inf, im_inf = isinf(re), isinf(im)
    one, minus_one, j, minus_j = (np.array(c, x.dtype) for c in (1, -1, 1j, complex(0, -1)))
    along_re = where(greater(re, 0), one, minus_one)
    along_im = where(greater(im, 0), j, minus_j)
    out = where(logical_and(re_inf, logical_not(im_inf)), along_re, out)
    return where(logical_and(im_inf, logical_not(re_inf)), along_im, out)


floor = _unary_fn(P.floor, "floor", "Floor (NumPy's ``floor``); zero derivative.")
ceil = _unary_fn(P.ceil, "ceil", "Ceiling (NumPy's ``ceil``); zero derivative.")
trunc = _unary_fn(P.trunc, "trunc", "Rounding towards zero (NumPy's ``trunc``); zero "
                  "derivative.")
rint = _unary_fn(P.rint, "rint", "Rounding to the nearest integer, halves to even (NumPy's "
                 "``rint``); zero derivative.")
logical_not = _unary_fn(P.logical_not, "logical_not", "Logical not (NumPy's "
                        "``logical_not``); no derivative.")
invert = _unary_fn(P.invert, "invert", "Bitwise not, logical not for booleans (NumPy's "
                   "``invert``/``bitwise_not``); no derivative.")
bitwise_not = invert
isfinite = _unary_fn(P.isfinite, "isfinite", "Whether each entry is finite (NumPy's "
                     "``isfinite``); no derivative.")
isnan = _unary_fn(P.isnan, "isnan", "Whether each entry is nan (NumPy's ``isnan``); no "
                  "derivative.")
isinf = _unary_fn(P.isinf, "isinf", "Whether each entry is ±inf (NumPy's ``isinf``); no "
                  "derivative.")
signbit = _unary_fn(P.signbit, "signbit", "Whether the sign bit is set (NumPy's ``signbit``); "
                    "no derivative.")


@implements(np.round, np.around)
def round(a: Any, decimals: int = 0, out: Any = None) -> Any:
    """Rounding to ``decimals`` digits, halves to even (NumPy's ``round``/``around``);
    piecewise constant, zero derivative."""
    if out is not None:
        raise TypeError("round(..., out=...) writes in place; use the returned value instead")
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.round(a, decimals)
    return bind(P.round, a, decimals=int(decimals))


around = round


def _logical_fn(prim, np_name: str, doc: str):
    fn = _binary_function(prim)
    fn.__name__ = fn.__qualname__ = np_name
    fn.__doc__ = doc + " A boolean result, no derivative."
    fn.__annotations__ = {"x1": "Any", "x2": "Any", "return": "Any"}
    return implements(getattr(np, np_name))(fn)


logical_and = _logical_fn(P.logical_and, "logical_and", "Elementwise ``x1 and x2``.")
logical_or = _logical_fn(P.logical_or, "logical_or", "Elementwise ``x1 or x2``.")
logical_xor = _logical_fn(P.logical_xor, "logical_xor", "Elementwise ``x1 xor x2``.")
bitwise_and = _logical_fn(P.bitwise_and, "bitwise_and", "``x1 & x2`` (bools and integers).")
bitwise_or = _logical_fn(P.bitwise_or, "bitwise_or", "``x1 | x2`` (bools and integers).")
bitwise_xor = _logical_fn(P.bitwise_xor, "bitwise_xor", "``x1 ^ x2`` (bools and integers).")


def _comparison(prim, np_name: str):
    fn = _binary_function(prim)
    fn.__name__ = fn.__qualname__ = np_name
    fn.__doc__ = f"Elementwise ``{np_name}`` comparison: a boolean array with no derivative."
    fn.__annotations__ = {"x1": "Any", "x2": "Any", "return": "Any"}
    return implements(getattr(np, np_name))(fn)


less = _comparison(P.lt, "less")
less_equal = _comparison(P.le, "less_equal")
greater = _comparison(P.gt, "greater")
greater_equal = _comparison(P.ge, "greater_equal")
equal = _comparison(P.eq, "equal")
not_equal = _comparison(P.ne, "not_equal")


@implements(np.where)
def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    """Choose ``x`` where ``condition`` holds, else ``y``, with broadcasting (NumPy's ``where``).

    The derivative flows only through the chosen entries; the condition has none. With only a
    condition it is ``nonzero(condition)``: a tuple of index arrays, without derivative.

    Example:
        >>> import diffprog as dp
        >>> dp.grad(lambda x: where(x > 0, x, 0.0).sum())(np.array([-1.0, 2.0]))
        array([0., 1.])
    """
    if x is None and y is None:
        # The indices depend only on the values, never differentiably.
        return np.nonzero(concrete(condition))
    if x is None or y is None:
        raise ValueError("either both or neither of x and y should be given")
    condition, x, y = as_operand(condition), as_operand(x), as_operand(y)
    if isinstance(condition, Tracer) and condition.dtype != np.bool_:
        condition = not_equal(condition, 0)
    # A traced condition with untraced branches is still traced: handing it to np.where would
    # come straight back here through __array_function__ (under jit, forever).
    if not _traced(condition, x, y):
        return np.where(condition, x, y)
    # The branches share one dtype (NumPy's result_type of x and y); the condition stays bool.
    x, y = _align(x, y)
    shapes = (_shape(condition), _shape(x), _shape(y))
    if shapes[0] != shapes[1] or shapes[1] != shapes[2]:
        shape = np.broadcast_shapes(*shapes)
        condition, x, y = (P.broadcast_to(a, shape=shape)
                           if isinstance(a, Tracer) and s != shape else a
                           for a, s in zip((condition, x, y), shapes))
    return bind(P.where, condition, x, y)


def astype(x: Any, dtype: Any) -> Any:
    """``x`` converted to ``dtype``; the derivative is converted back.

    A cast to bool or an integer type is piecewise constant: the result carries no derivative.
    A cast from complex to real keeps the real part.
    """
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.asarray(x).astype(dtype)
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if dtype.kind not in "fc":
        return bind(P.convert_discrete, x, dtype=dtype)
    return bind(P.convert_element_type, x, dtype=dtype)
