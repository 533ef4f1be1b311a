"""How traced values behave like arrays: operators, methods, and NumPy's dispatch protocols.

``__array_ufunc__`` and ``__array_function__`` route NumPy calls on traced values (``np.sin(x)``,
``np.sum(x)``, ``ndarray * tracer``) to :mod:`diffprog.numpy`. Anything without an entry in the
tables raises a ``TypeError`` that names it: never a silent zero derivative, never an object
array, never a quiet conversion to a constant.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import numpy as dnp
from ..core import Tracer
from ._core import FUNCTIONS, UFUNCS


def _unsupported(kind: str, name: str) -> TypeError:
    return TypeError(
        f"diffprog: {kind} {name} is not differentiable yet: diffprog has no rule for it, so it "
        "cannot be applied to a traced value. Use a diffprog.numpy function that computes the "
        "same thing, or wrap the computation in a custom rule.")


# Ufuncs of other libraries, known by name: scipy.special's are NumPy ufuncs, so NumPy hands
# them to traced values like its own, and diffprog (which does not import scipy) has rules for
# these.
_FOREIGN_UFUNCS = {"expit": "sigmoid", "log_expit": "log_sigmoid", "erf": "erf", "erfc": "erfc"}


def _foreign_ufunc(ufunc: Any) -> Any:
    target = _FOREIGN_UFUNCS.get(getattr(ufunc, "__name__", None))
    if target is None:
        return None
    from .. import nn
    return getattr(nn, target)


def _array_ufunc(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    fn = UFUNCS.get(ufunc) or _foreign_ufunc(ufunc)
    if method != "__call__" or fn is None:
        name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
        raise _unsupported("NumPy ufunc", name)
    if kwargs:
        out = kwargs.pop("out", None)
        if out is not None:
            raise TypeError(f"diffprog: np.{ufunc.__name__}(..., out=...) writes into an "
                            "array in place, which traced values do not support; use the "
                            "returned value instead")
        dtype = kwargs.pop("dtype", None)
        if kwargs:
            raise TypeError(f"diffprog: np.{ufunc.__name__} with keyword arguments "
                            f"{sorted(kwargs)} is not supported on traced values")
        result = fn(*inputs)
        return result if dtype is None else dnp.astype(result, dtype)
    return fn(*inputs)


def _array_function(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
    fn = FUNCTIONS.get(func)
    if fn is None:
        module = getattr(func, "__module__", "numpy") or "numpy"
        module = "np" if module == "numpy" else module.replace("numpy", "np")
        raise _unsupported("NumPy function", f"{module}.{func.__name__}")
    return fn(*args, **kwargs)


class _At:
    """``x.at[idx]``: functional updates that return a new array."""

    __slots__ = ("x",)

    def __init__(self, x: Any) -> None:
        self.x = x

    def __getitem__(self, idx: Any) -> _AtIndex:
        return _AtIndex(self.x, idx)


class _AtIndex:
    __slots__ = ("x", "idx")

    def __init__(self, x: Any, idx: Any) -> None:
        self.x = x
        self.idx = idx

    def add(self, values: Any) -> Any:
        """``x`` with ``values`` added at the index (repeated indices accumulate)."""
        from . import _indexing
        return _indexing.at_add(self.x, self.idx, values)

    def set(self, values: Any) -> Any:
        """``x`` with the indexed entries replaced by ``values``."""
        from . import _indexing
        return _indexing.at_set(self.x, self.idx, values)

    def multiply(self, values: Any) -> Any:
        """``x`` with the indexed entries multiplied by ``values``."""
        from . import _indexing
        return _indexing.at_multiply(self.x, self.idx, values)

    def min(self, values: Any) -> Any:
        """``x`` with the indexed entries replaced by their minimum with ``values``."""
        from . import _indexing
        return _indexing.at_min(self.x, self.idx, values)

    def max(self, values: Any) -> Any:
        """``x`` with the indexed entries replaced by their maximum with ``values``."""
        from . import _indexing
        return _indexing.at_max(self.x, self.idx, values)


def install() -> None:
    from . import _indexing

    T = Tracer
    T.__array_ufunc__ = _array_ufunc
    T.__array_function__ = _array_function
    T.__add__ = dnp.add
    T.__radd__ = lambda self, other: dnp.add(other, self)
    T.__sub__ = dnp.subtract
    T.__rsub__ = lambda self, other: dnp.subtract(other, self)
    T.__mul__ = dnp.multiply
    T.__rmul__ = lambda self, other: dnp.multiply(other, self)
    T.__truediv__ = dnp.divide
    T.__rtruediv__ = lambda self, other: dnp.divide(other, self)
    T.__pow__ = dnp.power
    T.__rpow__ = lambda self, other: dnp.power(other, self)
    T.__matmul__ = dnp.matmul
    T.__rmatmul__ = lambda self, other: dnp.matmul(other, self)
    T.__neg__ = dnp.negative
    T.__pos__ = dnp.positive
    T.__abs__ = dnp.abs
    T.__lt__ = dnp.less
    T.__le__ = dnp.less_equal
    T.__gt__ = dnp.greater
    T.__ge__ = dnp.greater_equal
    T.__eq__ = dnp.equal
    T.__ne__ = dnp.not_equal
    T.__getitem__ = _indexing.getitem
    T.T = property(lambda self: dnp.transpose(self))
    T.mT = property(lambda self: dnp.swapaxes(self, -1, -2))
    T.at = property(_At)
    T.sum = lambda self, axis=None, dtype=None, keepdims=False: dnp.sum(self, axis, dtype,
                                                                        keepdims)
    T.mean = lambda self, axis=None, dtype=None, keepdims=False: dnp.mean(self, axis, dtype,
                                                                          keepdims)
    T.max = lambda self, axis=None, keepdims=False: dnp.max(self, axis, keepdims)
    T.min = lambda self, axis=None, keepdims=False: dnp.min(self, axis, keepdims)
    T.astype = dnp.astype
    T.dot = dnp.dot
