"""The NumPy-compatible API: ``import diffprog.numpy as dnp``.

Every function here is a composition of primitives with NumPy's signature and broadcasting; no
derivative rule lives in this package. On values that are not traced each function goes straight
to NumPy after one type check. On traced values, operands whose shape (or dtype) differs from
the result's are broadcast (or cast) explicitly, so primitives only see aligned operands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import prims as P
from ..core import Tracer, bind

__all__ = [
    "add", "subtract", "multiply", "divide", "true_divide", "negative", "positive", "power",
    "square", "sqrt", "exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "abs",
    "absolute", "sign", "maximum", "minimum", "where", "matmul", "dot", "sum", "mean", "max",
    "min", "amax", "amin", "logsumexp", "reshape", "transpose", "swapaxes", "broadcast_to",
    "squeeze", "expand_dims", "less", "less_equal", "greater", "greater_equal", "equal",
    "not_equal", "floor", "ceil", "logical_not", "zeros_like", "ones_like", "shape", "ndim",
    "size", "astype", "at", "float32", "float64", "pi", "e", "inf", "nan", "newaxis",
]

float32, float64, pi, e, inf, nan, newaxis = (np.float32, np.float64, np.pi, np.e, np.inf,
                                              np.nan, np.newaxis)

# Python scalars are weakly typed in NumPy 2: they never change an array's shape or dtype.
_PY_SCALARS = (float, int, bool)


def _shape(x: Any) -> tuple:
    return x.shape if isinstance(x, (Tracer, np.ndarray, np.generic)) else np.shape(x)


def _dtype(x: Any) -> Any:
    if isinstance(x, (Tracer, np.ndarray, np.generic)):
        return x.dtype
    return x if isinstance(x, _PY_SCALARS) else np.asarray(x).dtype


def _align(*args: Any) -> list:
    """Broadcast and cast the traced operands to the result's shape and dtype."""
    shapes = [_shape(a) for a in args]
    shape = shapes[0]
    if any(s != shape for s in shapes):
        shape = np.broadcast_shapes(*shapes)
    dtype = np.result_type(*[_dtype(a) for a in args])
    out = list(args)
    for i, a in enumerate(args):
        if isinstance(a, Tracer):
            if a.dtype != dtype and dtype.kind in "fc":
                a = P.convert_element_type(a, dtype=dtype)
            if shapes[i] != shape:
                a = P.broadcast_to(a, shape=shape)
            out[i] = a
    return out


def _binary(prim, x: Any, y: Any) -> Any:
    if isinstance(x, Tracer):
        if isinstance(y, Tracer):
            if x.shape != y.shape or x.dtype != y.dtype:
                x, y = _align(x, y)
        elif type(y) not in _PY_SCALARS:
            x, y = _align(x, y)
    elif isinstance(y, Tracer):
        if type(x) not in _PY_SCALARS:
            x, y = _align(x, y)
    else:
        return prim.impl(x, y)
    return bind(prim, x, y)


def _traced(*args: Any) -> bool:
    for a in args:
        if isinstance(a, Tracer):
            return True
    return False


# -- elementwise -------------------------------------------------------------------------------

def add(x1: Any, x2: Any) -> Any:
    """``x1 + x2`` with broadcasting. Example: ``dnp.add(np.ones(2), 1.0)``."""
    return _binary(P.add, x1, x2)


def subtract(x1: Any, x2: Any) -> Any:
    """``x1 - x2`` with broadcasting."""
    return _binary(P.sub, x1, x2)


def multiply(x1: Any, x2: Any) -> Any:
    """``x1 * x2`` with broadcasting."""
    return _binary(P.mul, x1, x2)


def divide(x1: Any, x2: Any) -> Any:
    """``x1 / x2`` with broadcasting."""
    return _binary(P.div, x1, x2)


true_divide = divide


def power(x1: Any, x2: Any) -> Any:
    """``x1 ** x2`` with broadcasting."""
    return _binary(P.pow, x1, x2)


def maximum(x1: Any, x2: Any) -> Any:
    """Elementwise maximum; at ties the derivative is shared evenly between the operands."""
    return _binary(P.maximum, x1, x2)


def minimum(x1: Any, x2: Any) -> Any:
    """Elementwise minimum; at ties the derivative is shared evenly between the operands."""
    return _binary(P.minimum, x1, x2)


def negative(x: Any) -> Any:
    """``-x``."""
    return bind(P.neg, x)


def positive(x: Any) -> Any:
    """``+x`` (the value itself)."""
    return x if isinstance(x, Tracer) else np.positive(x)


def square(x: Any) -> Any:
    """``x * x``."""
    return multiply(x, x)


def _unary_fn(prim, np_name: str, doc: str):
    def fn(x: Any) -> Any:
        return bind(prim, x)
    fn.__name__ = fn.__qualname__ = np_name
    fn.__doc__ = doc
    return fn


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
    return fn


less = _comparison(P.lt, "less")
less_equal = _comparison(P.le, "less_equal")
greater = _comparison(P.gt, "greater")
greater_equal = _comparison(P.ge, "greater_equal")
equal = _comparison(P.eq, "equal")
not_equal = _comparison(P.ne, "not_equal")


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


# -- reductions --------------------------------------------------------------------------------

def _axes(axis: Any, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(int(a), ndim)
        out.append(int(a) % ndim)
    return tuple(sorted(out))


def sum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """Sum over ``axis`` (all axes by default). Example: ``dnp.sum(x ** 2)``."""
    if not isinstance(a, Tracer):
        return np.sum(a, axis=axis, dtype=dtype, keepdims=keepdims)
    if dtype is not None:
        a = astype(a, dtype)
    return bind(P.reduce_sum, a, axis=_axes(axis, a.ndim), keepdims=bool(keepdims))


def mean(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (all axes by default)."""
    if not isinstance(a, Tracer):
        return np.mean(a, axis=axis, dtype=dtype, keepdims=keepdims)
    axes = _axes(axis, a.ndim)
    count = 1
    for i in axes:
        count *= a.shape[i]
    return sum(a, axes, dtype, keepdims) / count


def max(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Maximum over ``axis``; tied entries share the derivative evenly."""
    if not isinstance(a, Tracer):
        return np.max(a, axis=axis, keepdims=keepdims)
    return bind(P.reduce_max, a, axis=_axes(axis, a.ndim), keepdims=bool(keepdims))


def min(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Minimum over ``axis``; tied entries share the derivative evenly."""
    if not isinstance(a, Tracer):
        return np.min(a, axis=axis, keepdims=keepdims)
    return bind(P.reduce_min, a, axis=_axes(axis, a.ndim), keepdims=bool(keepdims))


amax, amin = max, min


def logsumexp(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(a)))`` over ``axis``, computed without overflow.

    Example: ``dnp.logsumexp(np.array([1000.0, 1000.0]))`` is ``1000 + log(2)``.
    """
    a = a if isinstance(a, (Tracer, np.ndarray)) else np.asarray(a, dtype=float)
    return bind(P.logsumexp, a, axis=_axes(axis, a.ndim), keepdims=bool(keepdims))


# -- shapes ------------------------------------------------------------------------------------

def _resolve_shape(newshape: Any, size: int) -> tuple:
    shape = (newshape,) if isinstance(newshape, (int, np.integer)) else tuple(newshape)
    if -1 in shape:
        known = 1
        for d in shape:
            if d != -1:
                known *= d
        shape = tuple(size // known if d == -1 and known else d for d in shape)
    return tuple(int(d) for d in shape)


def reshape(a: Any, newshape: Any) -> Any:
    """``a`` with a new shape (one entry may be -1)."""
    if not isinstance(a, Tracer):
        return np.reshape(a, newshape)
    shape = _resolve_shape(newshape, a.size)
    if int(np.prod(shape)) != a.size:
        raise ValueError(f"cannot reshape a traced array of shape {a.shape} into shape "
                         f"{tuple(newshape) if not isinstance(newshape, int) else newshape}")
    if shape == a.shape:
        return a
    return bind(P.reshape, a, shape=shape)


def transpose(a: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute the axes (reverse them by default)."""
    if not isinstance(a, Tracer):
        return np.transpose(a, axes)
    n = a.ndim
    perm = tuple(range(n))[::-1] if axes is None else tuple(int(i) % n for i in axes)
    if sorted(perm) != list(range(n)):
        raise ValueError(f"axes {axes} are not a permutation of the {n} axes")
    if perm == tuple(range(n)):
        return a
    return bind(P.transpose, a, perm=perm)


def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    """Exchange two axes."""
    if not isinstance(a, Tracer):
        return np.swapaxes(a, axis1, axis2)
    perm = list(range(a.ndim))
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return transpose(a, perm)


def broadcast_to(a: Any, shape: Any) -> Any:
    """``a`` broadcast to ``shape``; the derivative sums over the broadcast axes."""
    if not isinstance(a, Tracer):
        return np.broadcast_to(a, shape)
    shape = _resolve_shape(shape, 0)
    if shape == a.shape:
        return a
    np.broadcast_shapes(a.shape, shape)  # raises NumPy's error for incompatible shapes
    return bind(P.broadcast_to, a, shape=shape)


def squeeze(a: Any, axis: Any = None) -> Any:
    """Remove size-1 axes."""
    if not isinstance(a, Tracer):
        return np.squeeze(a, axis)
    axes = (tuple(i for i, d in enumerate(a.shape) if d == 1) if axis is None
            else _axes(axis, a.ndim))
    return reshape(a, tuple(d for i, d in enumerate(a.shape) if i not in axes))


def expand_dims(a: Any, axis: Any) -> Any:
    """Insert size-1 axes at ``axis``."""
    if not isinstance(a, Tracer):
        return np.expand_dims(a, axis)
    axes = _axes(axis, a.ndim + (1 if isinstance(axis, int) else len(axis)))
    shape = list(a.shape)
    for i in axes:
        shape.insert(i, 1)
    return reshape(a, tuple(shape))


# -- linear algebra ----------------------------------------------------------------------------

def matmul(x1: Any, x2: Any) -> Any:
    """Matrix product with NumPy's rules for 1-D operands and batch broadcasting."""
    if not _traced(x1, x2):
        return np.matmul(x1, x2)
    a = x1 if isinstance(x1, Tracer) else np.asarray(x1)
    b = x2 if isinstance(x2, Tracer) else np.asarray(x2)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: input operand does not have enough dimensions (scalars are "
                         "not allowed; use * for scaling)")
    vec_a, vec_b = a.ndim == 1, b.ndim == 1
    if vec_a:
        a = reshape(a, (1, a.shape[0]))
    if vec_b:
        b = reshape(b, (b.shape[0], 1))
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {_shape(x1)} and {_shape(x2)} are not aligned: "
                         f"{a.shape[-1]} (last axis of x1) != {b.shape[-2]} (second-to-last "
                         "axis of x2)")
    if a.dtype != b.dtype:
        a, b = (astype(v, np.result_type(a.dtype, b.dtype)) for v in (a, b))
    if a.ndim > 2 and b.ndim == 2:
        # A stack of matrices times one matrix is one big product: no batch to broadcast.
        lead = a.shape[:-1]
        out = bind(P.matmul, reshape(a, (-1, a.shape[-1])), b)
        out = reshape(out, lead + (b.shape[-1],))
    else:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if isinstance(a, Tracer) and a.shape[:-2] != batch:
            a = broadcast_to(a, batch + a.shape[-2:])
        if isinstance(b, Tracer) and b.shape[:-2] != batch:
            b = broadcast_to(b, batch + b.shape[-2:])
        out = bind(P.matmul, a, b)
    if vec_a and vec_b:
        return reshape(out, out.shape[:-2])
    if vec_a:
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if vec_b:
        return reshape(out, out.shape[:-1])
    return out


def dot(a: Any, b: Any) -> Any:
    """``np.dot`` for operands of rank at most 2 (scalars multiply)."""
    if not _traced(a, b):
        return np.dot(a, b)
    if len(_shape(a)) == 0 or len(_shape(b)) == 0:
        return multiply(a, b)
    if len(_shape(a)) > 2 or len(_shape(b)) > 2:
        raise NotImplementedError("dot of arrays with more than 2 dimensions is not supported "
                                  "on traced values yet; use matmul or einsum")
    return matmul(a, b)


# -- helpers that never carry a derivative -----------------------------------------------------

def zeros_like(a: Any, dtype: Any = None) -> np.ndarray:
    """Zeros with the shape and dtype of ``a`` (a constant: no derivative)."""
    return np.zeros(_shape(a), dtype=_dtype(a) if dtype is None else dtype)


def ones_like(a: Any, dtype: Any = None) -> np.ndarray:
    """Ones with the shape and dtype of ``a`` (a constant: no derivative)."""
    return np.ones(_shape(a), dtype=_dtype(a) if dtype is None else dtype)


def shape(a: Any) -> tuple:
    """The shape of ``a``."""
    return _shape(a)


def ndim(a: Any) -> int:
    """The number of axes of ``a``."""
    return len(_shape(a))


def size(a: Any) -> int:
    """The number of elements of ``a``."""
    return int(np.prod(_shape(a)))


def at(x: Any) -> Any:
    """Functional updates of plain or traced arrays: ``dnp.at(x)[idx].set(v)`` or ``.add(v)``.

    The same as ``x.at[idx]`` on traced values, and it also works on NumPy arrays (returning a
    new array), so one function serves both. Example:
    ``dnp.at(np.zeros(3))[1].set(5.0)`` is ``array([0., 5., 0.])``.
    """
    return _At(x)


from ._dispatch import _At  # noqa: E402
from ._dispatch import install as _install  # noqa: E402

_install()
