"""Helpers shared by the diffprog.numpy modules: alignment of operands, dispatch tables.

Traced operands whose shape (or dtype) differs from the result's are broadcast (or cast)
explicitly with primitives, so elementwise primitives only ever see aligned operands and no
derivative rule needs an "unbroadcast" step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import prims as P
from ..core import Tracer, bind

# NumPy ufunc -> diffprog function, and NumPy function -> diffprog function, used by the
# __array_ufunc__ / __array_function__ protocols of traced values (see _dispatch.py).
UFUNCS: dict[np.ufunc, Any] = {}
FUNCTIONS: dict[Any, Any] = {}


def implements(*numpy_functions: Any):
    """Register the decorated function as the diffprog version of NumPy functions or ufuncs."""
    def register(fn):
        for f in numpy_functions:
            (UFUNCS if isinstance(f, np.ufunc) else FUNCTIONS)[f] = fn
        return fn
    return register


# Python scalars are weakly typed in NumPy 2: they never change an array's shape or dtype (a
# complex one makes a real array complex, of the array's precision: an explicit conversion, so
# that the derivative of the real operand is real).
_PY_SCALARS = (float, int, bool, complex)


def _shape(x: Any) -> tuple:
    return x.shape if isinstance(x, (Tracer, np.ndarray, np.generic)) else np.shape(x)


def _dtype(x: Any) -> Any:
    if isinstance(x, (Tracer, np.ndarray, np.generic)):
        return x.dtype
    return x if isinstance(x, _PY_SCALARS) else np.asarray(x).dtype


# a Python value (not type: np.result_type(float) is float64) of each kind, weakly typed
_WEAK = {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}


def _promotes_as(x: Any) -> Any:
    """What stands for ``x`` in NumPy's promotion: a traced Python scalar (jit) promotes like
    the Python scalar it stands for, so float32 * 2.0 stays float32."""
    if isinstance(x, Tracer) and x.weak_type:
        return _WEAK[x.dtype.kind]
    return _dtype(x)


def _align(*args: Any) -> list:
    """Broadcast and cast the traced operands to the result's shape and dtype."""
    shapes = [_shape(a) for a in args]
    shape = shapes[0]
    if any(s != shape for s in shapes):
        shape = np.broadcast_shapes(*shapes)
    dtype = np.result_type(*[_promotes_as(a) for a in args])
    out = list(args)
    for i, a in enumerate(args):
        if isinstance(a, Tracer):
            if a.dtype != dtype and (dtype.kind in "fc" or a.weak_type):
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
        elif type(y) not in _PY_SCALARS or (type(y) is complex and x.dtype.kind != "c"):
            x, y = _align(x, y)
    elif isinstance(y, Tracer):
        if type(x) not in _PY_SCALARS or (type(x) is complex and y.dtype.kind != "c"):
            x, y = _align(x, y)
    else:
        return prim.impl(x, y)
    return bind(prim, x, y)


def _traced(*args: Any) -> bool:
    for a in args:
        if isinstance(a, Tracer):
            return True
    return False


