"""Shape manipulation: reshape, transpose, broadcasting, axes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import prims as P
from ..core import Tracer, bind
from ._core import implements
from ._reductions import _axes

__all__ = ["reshape", "transpose", "swapaxes", "broadcast_to", "squeeze", "expand_dims"]


# ------------------------------------------------------------------------------------

def _resolve_shape(newshape: Any, size: int) -> tuple:
    shape = (newshape,) if isinstance(newshape, (int, np.integer)) else tuple(newshape)
    if -1 in shape:
        known = 1
        for d in shape:
            if d != -1:
                known *= d
        shape = tuple(size // known if d == -1 and known else d for d in shape)
    return tuple(int(d) for d in shape)


@implements(np.reshape)
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


@implements(np.transpose)
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


@implements(np.swapaxes)
def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    """Exchange two axes."""
    if not isinstance(a, Tracer):
        return np.swapaxes(a, axis1, axis2)
    perm = list(range(a.ndim))
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return transpose(a, perm)


@implements(np.broadcast_to)
def broadcast_to(a: Any, shape: Any) -> Any:
    """``a`` broadcast to ``shape``; the derivative sums over the broadcast axes."""
    if not isinstance(a, Tracer):
        return np.broadcast_to(a, shape)
    shape = _resolve_shape(shape, 0)
    if shape == a.shape:
        return a
    np.broadcast_shapes(a.shape, shape)  # raises NumPy's error for incompatible shapes
    return bind(P.broadcast_to, a, shape=shape)


@implements(np.squeeze)
def squeeze(a: Any, axis: Any = None) -> Any:
    """Remove size-1 axes."""
    if not isinstance(a, Tracer):
        return np.squeeze(a, axis)
    axes = (tuple(i for i, d in enumerate(a.shape) if d == 1) if axis is None
            else _axes(axis, a.ndim))
    return reshape(a, tuple(d for i, d in enumerate(a.shape) if i not in axes))


@implements(np.expand_dims)
def expand_dims(a: Any, axis: Any) -> Any:
    """Insert size-1 axes at ``axis``."""
    if not isinstance(a, Tracer):
        return np.expand_dims(a, axis)
    axes = _axes(axis, a.ndim + (1 if isinstance(axis, int) else len(axis)))
    shape = list(a.shape)
    for i in axes:
        shape.insert(i, 1)
    return reshape(a, tuple(shape))


