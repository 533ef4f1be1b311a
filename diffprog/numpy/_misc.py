"""Functions on shapes and constants: they never carry a derivative."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._core import _dtype, _shape, implements

__all__ = ["zeros_like", "ones_like", "shape", "ndim", "size", "at"]


# -----------------------------------------------------

@implements(np.zeros_like)
def zeros_like(a: Any, dtype: Any = None) -> np.ndarray:
    """Zeros with the shape and dtype of ``a`` (a constant: no derivative)."""
    return np.zeros(_shape(a), dtype=_dtype(a) if dtype is None else dtype)


@implements(np.ones_like)
def ones_like(a: Any, dtype: Any = None) -> np.ndarray:
    """Ones with the shape and dtype of ``a`` (a constant: no derivative)."""
    return np.ones(_shape(a), dtype=_dtype(a) if dtype is None else dtype)


@implements(np.shape)
def shape(a: Any) -> tuple:
    """The shape of ``a``."""
    return _shape(a)


@implements(np.ndim)
def ndim(a: Any) -> int:
    """The number of axes of ``a``."""
    return len(_shape(a))


@implements(np.size)
def size(a: Any) -> int:
    """The number of elements of ``a``."""
    return int(np.prod(_shape(a)))


def at(x: Any) -> Any:
    """Functional updates of plain or traced arrays: ``dnp.at(x)[idx].set(v)`` or ``.add(v)``.

    The same as ``x.at[idx]`` on traced values, and it also works on NumPy arrays (returning a
    new array), so one function serves both. Example:
    ``dnp.at(np.zeros(3))[1].set(5.0)`` is ``array([0., 5., 0.])``.
    """
    from ._dispatch import _At
    return _At(x)


