"""Elementwise functions: ufunc math, comparisons, where, casts."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import prims as P
from ..core import Tracer, bind
from ._core import _PY_SCALARS, _align, _binary, _traced, implements  # noqa: F401

__all__ = [
    "add", "subtract", "multiply", "divide", "true_divide", "power", "maximum", "minimum",
    "negative", "positive", "square", "sqrt", "exp", "log", "log1p", "expm1", "sin", "cos",
    "tan", "tanh", "abs", "absolute", "sign", "floor", "ceil", "logical_not", "less",
    "less_equal", "greater", "greater_equal", "equal", "not_equal", "where", "astype",
]


# -------------------------------------------------------------------------------

@implements(np.add)
def add(x1: Any, x2: Any) -> Any:
    """``x1 + x2`` with broadcasting. Example: ``dnp.add(np.ones(2), 1.0)``."""
    return _binary(P.add, x1, x2)


@implements(np.subtract)
def subtract(x1: Any, x2: Any) -> Any:
    """``x1 - x2`` with broadcasting."""
    return _binary(P.sub, x1, x2)


@implements(np.multiply)
def multiply(x1: Any, x2: Any) -> Any:
    """``x1 * x2`` with broadcasting."""
    return _binary(P.mul, x1, x2)


@implements(np.divide)
def divide(x1: Any, x2: Any) -> Any:
    """``x1 / x2`` with broadcasting."""
    return _binary(P.div, x1, x2)


true_divide = divide


@implements(np.power)
def power(x1: Any, x2: Any) -> Any:
    """``x1 ** x2`` with broadcasting."""
    return _binary(P.pow, x1, x2)


@implements(np.maximum)
def maximum(x1: Any, x2: Any) -> Any:
    """Elementwise maximum; at ties the derivative is shared evenly between the operands."""
    return _binary(P.maximum, x1, x2)


@implements(np.minimum)
def minimum(x1: Any, x2: Any) -> Any:
    """Elementwise minimum; at ties the derivative is shared evenly between the operands."""
    return _binary(P.minimum, x1, x2)


@implements(np.negative)
def negative(x: Any) -> Any:
    """``-x``."""
    return bind(P.neg, x)


@implements(np.positive)
def positive(x: Any) -> Any:
    """``+x`` (the value itself)."""
    return x if isinstance(x, Tracer) else np.positive(x)


@implements(np.square)
def square(x: Any) -> Any:
    """``x * x``."""
    return multiply(x, x)


def _unary_fn(prim, np_name: str, doc: str):
    def fn(x: Any) -> Any:
        return bind(prim, x)
    fn.__name__ = fn.__qualname__ = np_name
    fn.__doc__ = doc
    return implements(getattr(np, np_name))(fn)


sqrt = _unary_fn(P.sqrt, "sqrt", "Square root; its derivative at 0 is inf, as NumPy computes.")
exp = _unary_fn(P.exp, "exp", "Exponential. Example: ``dnp.exp(0.0) == 1.0``.")
log = _unary_fn(P.log, "log", "Natural logarithm.")
log1p = _unary_fn(P.log1p, "log1p", "``log(1 + x)``, accurate for small x.")
expm1 = _unary_fn(P.expm1, "expm1", "``exp(x) - 1``, accurate for small x.")
sin = _unary_fn(P.sin, "sin", "Sine.")
cos = _unary_fn(P.cos, "cos", "Cosine.")
tan = _unary_fn(P.tan, "tan", "Tangent.")
tanh = _unary_fn(P.tanh, "tanh", "Hyperbolic tangent.")
abs = _unary_fn(P.abs, "abs", "Absolute value; its derivative at 0 is 0.")
absolute = abs
sign = _unary_fn(P.sign, "sign", "Sign (-1, 0, 1); piecewise constant, no derivative.")
floor = _unary_fn(P.floor, "floor", "Floor; piecewise constant, no derivative.")
ceil = _unary_fn(P.ceil, "ceil", "Ceiling; piecewise constant, no derivative.")
logical_not = _unary_fn(P.logical_not, "logical_not", "Logical not; no derivative.")


def _comparison(prim, np_name: str):
    def fn(x1: Any, x2: Any) -> Any:
        return _binary(prim, x1, x2)
    fn.__name__ = fn.__qualname__ = np_name
    fn.__doc__ = f"Elementwise ``{np_name}`` comparison: a boolean array with no derivative."
    return implements(getattr(np, np_name))(fn)


less = _comparison(P.lt, "less")
less_equal = _comparison(P.le, "less_equal")
greater = _comparison(P.gt, "greater")
greater_equal = _comparison(P.ge, "greater_equal")
equal = _comparison(P.eq, "equal")
not_equal = _comparison(P.ne, "not_equal")


@implements(np.where)
def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    """Choose ``x`` where ``condition`` holds, else ``y``, with broadcasting.

    The derivative flows only through the chosen entries. Example:
    ``dnp.where(x > 0, x, 0.0)`` is relu.
    """
    if x is None or y is None:
        raise TypeError("where(condition) with one argument is not supported yet; pass x and y")
    if isinstance(condition, Tracer):
        condition = not_equal(condition, 0)
    if not _traced(x, y):
        return np.where(condition, x, y)
    condition, x, y = _align(condition, x, y)
    return bind(P.where, condition, x, y)


def astype(x: Any, dtype: Any) -> Any:
    """``x`` converted to ``dtype``; the derivative is converted back."""
    if not isinstance(x, Tracer):
        return np.asarray(x).astype(dtype)
    if x.dtype == np.dtype(dtype):
        return x
    return bind(P.convert_element_type, x, dtype=np.dtype(dtype))


