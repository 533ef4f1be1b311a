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


_SEQUENCES = (list, tuple)


def _holds_tracer(obj: Any) -> bool:
    """Whether a (nested) list or tuple has a traced value somewhere inside."""
    for o in obj:
        if isinstance(o, Tracer) or (isinstance(o, _SEQUENCES) and _holds_tracer(o)):
            return True
    return False


def _stacked(obj: Any) -> Any:
    """A nested list or tuple with traced entries as one traced array, as ``np.array`` would
    build it: the entries' dtypes promote as array entries do (a Python float is float64
    there, not weak), then they are stacked along new leading axes by primitives."""
    if not isinstance(obj, _SEQUENCES):
        return obj if isinstance(obj, (Tracer, np.ndarray)) else np.asarray(obj)
    items = [_stacked(o) for o in obj]
    if not any(isinstance(i, Tracer) for i in items):
        return np.asarray(items) if items else np.asarray(obj)
    shape = items[0].shape
    if any(i.shape != shape for i in items):
        raise ValueError("setting an array element with a sequence. The requested array has "
                         "an inhomogeneous shape: the entries of a list holding traced values "
                         f"have the shapes {[i.shape for i in items]}")
    dtype = np.result_type(*[i.dtype for i in items])
    parts = []
    for i in items:
        if i.dtype != dtype:
            i = (bind(P.convert_element_type, i, dtype=dtype) if isinstance(i, Tracer)
                 else i.astype(dtype))
        parts.append(bind(P.reshape, i, shape=(1,) + shape) if isinstance(i, Tracer)
                     else i.reshape((1,) + shape))
    if len(parts) == 1:
        return parts[0]
    return bind(P.concatenate, *parts, axis=0)


def as_operand(x: Any) -> Any:
    """``x`` as an operand of a diffprog.numpy function, for NumPy's array_like arguments.

    A traced value or an ndarray is returned as it is (checked first: the hot path); a (nested)
    list or tuple that holds traced values becomes one traced array, stacked as ``np.array``
    would build it; another list or tuple becomes an ndarray; anything else (Python and NumPy
    scalars, which NumPy 2 promotes weakly) is returned as it is, for NumPy or the weak-scalar
    rules to handle.

    NumPy itself cannot do this: ``np.sin([x, y])`` converts the list with ``np.asarray``,
    which never looks for ``__array_function__`` inside a list, so it stops at the traced
    value's conversion error; ``dnp.sin([x, y])`` works.

    Example:
        >>> import diffprog as dp
        >>> dp.jvp(lambda t: as_operand([t, 2.0]), (1.0,), (1.0,))[1]
        array([1., 0.])
    """
    if isinstance(x, (Tracer, np.ndarray)):
        return x
    if isinstance(x, _SEQUENCES):
        return _stacked(x) if _holds_tracer(x) else np.asarray(x)
    return x


def _as_array(x: Any) -> Any:
    """``x`` as a traced value or an ndarray: :func:`as_operand`, and scalars as 0-d arrays."""
    if isinstance(x, (Tracer, np.ndarray)):
        return x
    x = as_operand(x)
    return x if isinstance(x, Tracer) else np.asarray(x)


def _any_traced(*args: Any) -> bool:
    """Whether any argument is traced or is a (nested) list or tuple holding a traced value."""
    return _holds_tracer(args)


def _traced(*args: Any) -> bool:
    for a in args:
        if isinstance(a, Tracer):
            return True
    return False


