"""Reductions over axes with NumPy's axis/keepdims conventions."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import prims as P
from ..core import Tracer, bind
from ._core import implements
from ._elementwise import astype

__all__ = ["sum", "mean", "max", "min", "amax", "amin", "logsumexp"]


# --------------------------------------------------------------------------------

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


@implements(np.sum)
def sum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """Sum over ``axis`` (all axes by default). Example: ``dnp.sum(x ** 2)``."""
    if not isinstance(a, Tracer):
        return np.sum(a, axis=axis, dtype=dtype, keepdims=keepdims)
    if dtype is not None:
        a = astype(a, dtype)
    return bind(P.reduce_sum, a, axis=_axes(axis, a.ndim), keepdims=bool(keepdims))


@implements(np.mean)
def mean(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (all axes by default)."""
    if not isinstance(a, Tracer):
        return np.mean(a, axis=axis, dtype=dtype, keepdims=keepdims)
    axes = _axes(axis, a.ndim)
    count = 1
    for i in axes:
        count *= a.shape[i]
    return sum(a, axes, dtype, keepdims) / count


@implements(np.max, np.amax)
def max(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Maximum over ``axis``; tied entries share the derivative evenly."""
    if not isinstance(a, Tracer):
        return np.max(a, axis=axis, keepdims=keepdims)
    return bind(P.reduce_max, a, axis=_axes(axis, a.ndim), keepdims=bool(keepdims))


@implements(np.min, np.amin)
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


