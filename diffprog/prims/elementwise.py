"""Elementwise primitives: unary and binary math, comparisons, where, casts.

Operands of a traced elementwise primitive have the output's shape: :mod:`diffprog.numpy`
broadcasts traced operands explicitly, so no rule here needs an "unbroadcast" step.

Most rules are one local derivative ``d(out, *args)``: the jvp is ``t * d`` and the vjp
``ct * d``, declared once through :func:`_unary`. The rules use diffprog operations (the
operators on traced values, and these primitives), so they are traced under outer transforms.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import numpy as np

from ..core import Primitive

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "log1p", "expm1", "sin",
           "cos", "tan", "tanh", "sqrt", "abs", "sign", "maximum", "minimum", "where",
           "convert_element_type", "lt", "le", "gt", "ge", "eq", "ne", "logical_not",
           "floor", "ceil"]


def _unary(name: str, impl: Callable, derivative: Callable, scalar: Callable | None = None
           ) -> Primitive:
    """A unary primitive whose jvp is ``t * derivative(out, x)`` and vjp ``ct * derivative``."""
    return Primitive(name, impl, scalar=scalar,
                     jvp=(lambda t, out, x: t * derivative(out, x),),
                     vjp=(lambda ct, out, x: ct * derivative(out, x),))


def _nondiff(name: str, impl: Callable, scalar: Callable | None = None) -> Primitive:
    """A piecewise-constant primitive: computed on primal values, no derivative."""
    return Primitive(name, impl, differentiable=False, scalar=scalar)


# -- arithmetic --------------------------------------------------------------------------------

add = Primitive("add", np.add, scalar=operator.add,
                jvp=(lambda t, out, x, y: t, lambda t, out, x, y: t),
                vjp=(lambda ct, out, x, y: ct, lambda ct, out, x, y: ct))

sub = Primitive("sub", np.subtract, scalar=operator.sub,
                jvp=(lambda t, out, x, y: t, lambda t, out, x, y: -t),
                vjp=(lambda ct, out, x, y: ct, lambda ct, out, x, y: -ct))

mul = Primitive("mul", np.multiply, scalar=operator.mul,
                jvp=(lambda t, out, x, y: t * y, lambda t, out, x, y: x * t),
                vjp=(lambda ct, out, x, y: ct * y, lambda ct, out, x, y: x * ct))

div = Primitive("div", np.true_divide, scalar=operator.truediv,
                jvp=(lambda t, out, x, y: t / y, lambda t, out, x, y: -t * out / y),
                vjp=(lambda ct, out, x, y: ct / y, lambda ct, out, x, y: -ct * out / y))

neg = Primitive("neg", np.negative, scalar=operator.neg,
                jvp=(lambda t, out, x: -t,),
                vjp=(lambda ct, out, x: -ct,))


def _log_base(out, x):
    # d(x**y)/dy = x**y * log(x). At x == 0 the power is 0 (for y > 0) and the limit of
    # x**y * log(x) is 0, so log is taken of 1 there instead of producing 0 * -inf = nan.
    return out * log(where(eq(x, 0), 1.0, x))


pow = Primitive("pow", np.power, scalar=operator.pow,
                jvp=(lambda t, out, x, y: t * (y * x ** (y - 1)),
                     lambda t, out, x, y: t * _log_base(out, x)),
                vjp=(lambda ct, out, x, y: ct * (y * x ** (y - 1)),
                     lambda ct, out, x, y: ct * _log_base(out, x)))

# -- transcendental ----------------------------------------------------------------------------

exp = _unary("exp", np.exp, lambda out, x: out, math.exp)
log = _unary("log", np.log, lambda out, x: 1.0 / x, math.log)
log1p = _unary("log1p", np.log1p, lambda out, x: 1.0 / (1.0 + x), math.log1p)
expm1 = _unary("expm1", np.expm1, lambda out, x: out + 1.0, math.expm1)
sin = _unary("sin", np.sin, lambda out, x: cos(x), math.sin)
cos = _unary("cos", np.cos, lambda out, x: -sin(x), math.cos)
tan = _unary("tan", np.tan, lambda out, x: 1.0 + out * out, math.tan)
tanh = _unary("tanh", np.tanh, lambda out, x: 1.0 - out * out, math.tanh)
# sqrt'(0) = inf, as NumPy computes 0.5 / sqrt(0): documented, not patched over.
sqrt = _unary("sqrt", np.sqrt, lambda out, x: 0.5 / out, math.sqrt)


def _sign_like(x):
    return convert_element_type(sign(x), dtype=x.dtype)


# abs'(0) = sign(0) = 0: the subgradient of minimum norm.
abs = _unary("abs", np.abs, lambda out, x: _sign_like(x), math.fabs)

# -- piecewise constant ------------------------------------------------------------------------

sign = _nondiff("sign", np.sign)
floor = _nondiff("floor", np.floor, math.floor)
ceil = _nondiff("ceil", np.ceil, math.ceil)
lt = _nondiff("lt", np.less, operator.lt)
le = _nondiff("le", np.less_equal, operator.le)
gt = _nondiff("gt", np.greater, operator.gt)
ge = _nondiff("ge", np.greater_equal, operator.ge)
eq = _nondiff("eq", np.equal, operator.eq)
ne = _nondiff("ne", np.not_equal, operator.ne)
logical_not = _nondiff("logical_not", np.logical_not, operator.not_)


# -- selection ---------------------------------------------------------------------------------

def _selector(name: str, impl: Callable, first: Callable) -> Primitive:
    # first(x, y): the comparison under which x is selected (x > y for maximum).
    def wx(out, x, y):
        return _share_by(first, x, y, out)

    def wy(out, x, y):
        return _share_by(first, y, x, out)

    return Primitive(name, impl,
                     jvp=(lambda t, out, x, y: t * wx(out, x, y),
                          lambda t, out, x, y: t * wy(out, x, y)),
                     vjp=(lambda ct, out, x, y: ct * wx(out, x, y),
                          lambda ct, out, x, y: ct * wy(out, x, y)))


def _share_by(first, x, y, out):
    dtype = out.dtype
    return (convert_element_type(first(x, y), dtype=dtype)
            + 0.5 * convert_element_type(eq(x, y), dtype=dtype))


maximum = _selector("maximum", np.maximum, lambda x, y: gt(x, y))
minimum = _selector("minimum", np.minimum, lambda x, y: lt(x, y))


def _no_tangent(*args, **kwargs):
    raise TypeError("the condition of where has no derivative")


where = Primitive("where", np.where,
                  jvp=(_no_tangent,
                       lambda t, out, c, x, y: where(c, t, 0.0),
                       lambda t, out, c, x, y: where(c, 0.0, t)),
                  vjp=(_no_tangent,
                       lambda ct, out, c, x, y: where(c, ct, 0.0),
                       lambda ct, out, c, x, y: where(c, 0.0, ct)))


# -- casts -------------------------------------------------------------------------------------

def _convert(x, dtype):
    return np.asarray(x).astype(dtype, copy=False)


convert_element_type = Primitive(
    "convert_element_type", _convert,
    jvp=(lambda t, out, x, dtype: convert_element_type(t, dtype=dtype),),
    vjp=(lambda ct, out, x, dtype: convert_element_type(ct, dtype=x.dtype),))
