"""Functions on shapes, dtypes and constants: they never carry a derivative.

They read only the shape and dtype of a traced value, never its derivative, so they work on
traced values at any nesting depth and return plain NumPy values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Tracer
from ._core import _shape, as_operand, implements

__all__ = ["zeros_like", "ones_like", "full_like", "empty_like", "shape", "ndim", "size",
           "result_type", "at"]


def _array_shape(a: Any) -> tuple:
    """NumPy's ``np.shape(a)``, also of lists holding traced values."""
    if isinstance(a, (Tracer, np.ndarray, np.generic)):
        return a.shape
    return _shape(as_operand(a))


def _array_dtype(a: Any) -> np.dtype:
    """The dtype ``np.asarray(a)`` would have (a Python float is float64 here, not weak)."""
    if isinstance(a, (Tracer, np.ndarray, np.generic)):
        return a.dtype
    a = as_operand(a)
    return a.dtype if isinstance(a, (Tracer, np.ndarray)) else np.asarray(a).dtype


def _like(a: Any, dtype: Any, shape: Any) -> tuple[tuple, Any]:
    out_shape = _array_shape(a) if shape is None else shape
    if isinstance(out_shape, (int, np.integer)):
        out_shape = (int(out_shape),)
    return tuple(out_shape), (_array_dtype(a) if dtype is None else dtype)


@implements(np.zeros_like)
def zeros_like(a: Any, dtype: Any = None, order: str = "K", subok: bool = True,
               shape: Any = None) -> np.ndarray:
    """Zeros with the shape and dtype of ``a`` (NumPy's ``zeros_like``): a constant.

    Example:
        >>> zeros_like(np.ones((2, 1)), shape=3)
        array([0., 0., 0.])
    """
    s, d = _like(a, dtype, shape)
    return np.zeros(s, dtype=d)


@implements(np.ones_like)
def ones_like(a: Any, dtype: Any = None, order: str = "K", subok: bool = True,
              shape: Any = None) -> np.ndarray:
    """Ones with the shape and dtype of ``a`` (NumPy's ``ones_like``): a constant."""
    s, d = _like(a, dtype, shape)
    return np.ones(s, dtype=d)


@implements(np.full_like)
def full_like(a: Any, fill_value: Any, dtype: Any = None, order: str = "K", subok: bool = True,
              shape: Any = None) -> np.ndarray:
    """``fill_value`` with the shape and dtype of ``a`` (NumPy's ``full_like``).

    Only the shape and dtype of ``a`` are used, so the result has no derivative with respect to
    ``a``; a traced ``fill_value`` is broadcast, and the derivative flows back to it.

    Example:
        >>> full_like(np.zeros(2, dtype=np.float32), 7)
        array([7., 7.], dtype=float32)
    """
    s, d = _like(a, dtype, shape)
    fill_value = as_operand(fill_value)
    if isinstance(fill_value, Tracer):
        from ._elementwise import astype
        from ._shapes import broadcast_to
        return broadcast_to(astype(fill_value, d), s)
    return np.full(s, fill_value, dtype=d)


@implements(np.empty_like)
def empty_like(a: Any, dtype: Any = None, order: str = "K", subok: bool = True,
               shape: Any = None) -> np.ndarray:
    """An uninitialized array with the shape and dtype of ``a`` (NumPy's ``empty_like``)."""
    s, d = _like(a, dtype, shape)
    return np.empty(s, dtype=d)


@implements(np.shape)
def shape(a: Any) -> tuple:
    """The shape of ``a`` (NumPy's ``shape``)."""
    return _array_shape(a)


@implements(np.ndim)
def ndim(a: Any) -> int:
    """The number of axes of ``a`` (NumPy's ``ndim``)."""
    return len(_array_shape(a))


@implements(np.size)
def size(a: Any, axis: int | None = None) -> int:
    """The number of elements of ``a``, or its length along ``axis`` (NumPy's ``size``)."""
    s = _array_shape(a)
    if axis is None:
        return int(np.prod(s))
    return s[axis]


@implements(np.result_type)
def result_type(*arrays_and_dtypes: Any) -> np.dtype:
    """The dtype NumPy's promotion gives these arrays and dtypes (NumPy's ``result_type``).

    Example:
        >>> result_type(np.float32, 1.0)
        dtype('float32')
    """
    return np.result_type(*[a.dtype if isinstance(a, Tracer) else a
                            for a in arrays_and_dtypes])


def at(x: Any) -> Any:
    """Functional updates of plain or traced arrays: ``dnp.at(x)[idx].set(v)`` or ``.add(v)``.

    The same as ``x.at[idx]`` on traced values, and it also works on NumPy arrays (returning a
    new array), so one function serves both. Example:
    ``dnp.at(np.zeros(3))[1].set(5.0)`` is ``array([0., 5., 0.])``.
    """
    from ._dispatch import _At
    return _At(x)
