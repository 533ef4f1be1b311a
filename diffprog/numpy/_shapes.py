"""Shape manipulation and data movement: reshape, transpose, broadcasting, joining and
splitting, tiling, flipping, padding, diagonals, triangles, building arrays from traced values.

Everything here moves entries without arithmetic (or multiplies by constants), so each function
is a composition of the linear primitives ``reshape``, ``broadcast_to``, ``transpose``,
``getitem``, ``scatter_add``, ``concatenate`` and ``split``; the derivative of every function
is the same movement applied to the tangent, and its transpose to the cotangent.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from .. import prims as P
from ..core import Tracer, bind
from ._core import _any_traced, _as_array, as_operand, implements
from ._elementwise import astype, multiply, where
from ._indexing import argwhere, flatnonzero, getitem, nonzero, take, take_along_axis
from ._reductions import sum as _sum

__all__ = [
    "reshape", "ravel", "transpose", "permute_dims", "matrix_transpose", "moveaxis", "swapaxes",
    "expand_dims", "squeeze", "broadcast_to", "broadcast_arrays", "concatenate", "concat",
    "stack", "hstack", "vstack", "dstack", "column_stack", "append", "split", "array_split",
    "unstack", "tile", "repeat", "flip", "fliplr", "flipud", "roll", "rot90", "pad", "diag",
    "diagonal", "trace", "tril", "triu", "outer", "kron", "take", "take_along_axis", "select",
    "atleast_1d", "atleast_2d", "atleast_3d", "meshgrid", "array", "asarray", "copy",
    "nonzero", "argwhere", "flatnonzero",
]


def _contains_tracer(obj: Any) -> bool:
    if isinstance(obj, Tracer):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_contains_tracer(o) for o in obj)
    return False


# ----------------------------------------------------------------------------------------------
# Reshaping and axes


def _resolve_shape(newshape: Any, size: int) -> tuple:
    try:
        shape = (operator.index(newshape),)
    except TypeError:
        shape = tuple(operator.index(d) for d in newshape)
    unknown = [i for i, d in enumerate(shape) if d == -1]
    if len(unknown) > 1:
        raise ValueError("can only specify one unknown dimension")
    if any(d < -1 for d in shape):
        raise ValueError("negative dimensions not allowed")
    if unknown:
        known = 1
        for d in shape:
            if d != -1:
                known *= d
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape "
                             f"{tuple(shape)}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    return shape


@implements(np.reshape)
def reshape(a: Any, shape: Any, order: str = "C", *, copy: bool | None = None) -> Any:
    """``np.reshape``: ``a`` with a new shape (one entry may be -1).

    ``order="F"`` reads and writes in column-major order; ``"A"`` and ``"K"`` count as ``"C"``
    for traced values (their memory layout is not part of the value).

    Example:
        >>> reshape(np.arange(6.0), (2, -1))
        array([[0., 1., 2.],
               [3., 4., 5.]])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.reshape(a, shape, order=order, copy=copy)
    newshape = _resolve_shape(shape, a.size)
    size = 1
    for d in newshape:
        size *= d
    if size != a.size:
        raise ValueError(f"cannot reshape array of size {a.size} into shape {newshape}")
    if order == "F":
        return transpose(reshape(transpose(a), newshape[::-1]))
    if order not in ("C", "A", "K"):
        raise ValueError(f"order must be one of 'C', 'F', 'A', or 'K' (got {order!r})")
    if newshape == a.shape:
        return a
    return bind(P.reshape, a, shape=newshape)


@implements(np.ravel)
def ravel(a: Any, order: str = "C") -> Any:
    """``np.ravel``: ``a`` flattened to one axis (see :func:`reshape` for ``order``)."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.ravel(a, order=order)
    return reshape(a, (-1,), order=order)


@implements(np.transpose, np.permute_dims)
def transpose(a: Any, axes: Sequence[int] | None = None) -> Any:
    """``np.transpose``: permute the axes (reverse them by default)."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.transpose(a, axes)
    n = a.ndim
    if axes is None:
        perm = tuple(range(n))[::-1]
    else:
        perm = normalize_axis_tuple(axes, n)
        if len(perm) != n:
            raise ValueError("axes don't match array")
    if perm == tuple(range(n)):
        return a
    return bind(P.transpose, a, perm=perm)


permute_dims = transpose


@implements(np.matrix_transpose)
def matrix_transpose(x: Any) -> Any:
    """``np.matrix_transpose``: swap the last two axes."""
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.matrix_transpose(x)
    if x.ndim < 2:
        raise ValueError(f"Input array must be at least 2-dimensional, but it is {x.ndim}")
    return swapaxes(x, -1, -2)


@implements(np.moveaxis)
def moveaxis(a: Any, source: Any, destination: Any) -> Any:
    """``np.moveaxis``: move axes to new positions, keeping the order of the others."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.moveaxis(a, source, destination)
    source = normalize_axis_tuple(source, a.ndim, "source")
    destination = normalize_axis_tuple(destination, a.ndim, "destination")
    if len(source) != len(destination):
        raise ValueError("`source` and `destination` arguments must have the same number of "
                         "elements")
    order = [n for n in range(a.ndim) if n not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return transpose(a, order)


@implements(np.swapaxes)
def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    """``np.swapaxes``: exchange two axes."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.swapaxes(a, axis1, axis2)
    perm = list(range(a.ndim))
    i, j = normalize_axis_index(axis1, a.ndim), normalize_axis_index(axis2, a.ndim)
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


@implements(np.expand_dims)
def expand_dims(a: Any, axis: Any) -> Any:
    """``np.expand_dims``: insert size-1 axes at ``axis`` (an int or a tuple)."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.expand_dims(a, axis)
    n_new = 1 if isinstance(axis, (int, np.integer)) else len(axis)
    axes = normalize_axis_tuple(axis, a.ndim + n_new)
    dims = iter(a.shape)
    return reshape(a, tuple(1 if i in axes else next(dims) for i in range(a.ndim + n_new)))


@implements(np.squeeze)
def squeeze(a: Any, axis: Any = None) -> Any:
    """``np.squeeze``: remove size-1 axes (all of them, or those in ``axis``)."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.squeeze(a, axis)
    if axis is None:
        axes = tuple(i for i, d in enumerate(a.shape) if d == 1)
    else:
        axes = normalize_axis_tuple(axis, a.ndim)
        if any(a.shape[i] != 1 for i in axes):
            raise ValueError("cannot select an axis to squeeze out which has size not equal "
                             "to one")
    return reshape(a, tuple(d for i, d in enumerate(a.shape) if i not in axes))


@implements(np.broadcast_to)
def broadcast_to(array: Any, shape: Any, subok: bool = False) -> Any:
    """``np.broadcast_to``: ``array`` repeated along new or size-1 axes; the derivative sums
    over the broadcast axes."""
    if not isinstance(array, Tracer) and not isinstance(array := as_operand(array), Tracer):
        return np.broadcast_to(array, shape, subok=subok)
    try:
        shape = (operator.index(shape),)
    except TypeError:
        shape = tuple(operator.index(d) for d in shape)
    if shape == array.shape:
        return array
    if any(d < 0 for d in shape):
        raise ValueError("all elements of broadcast shape must be non-negative")
    # NumPy's error for incompatible shapes; a result other than ``shape`` cannot broadcast.
    if np.broadcast_shapes(array.shape, shape) != shape:
        raise ValueError(f"cannot broadcast a traced array of shape {array.shape} to shape "
                         f"{shape}")
    return bind(P.broadcast_to, array, shape=shape)


@implements(np.broadcast_arrays)
def broadcast_arrays(*args: Any, subok: bool = False) -> tuple:
    """``np.broadcast_arrays``: the arguments broadcast against each other."""
    if not _any_traced(*args):
        return np.broadcast_arrays(*args, subok=subok)
    arrays = [_as_array(a) for a in args]
    shape = np.broadcast_shapes(*[a.shape for a in arrays])
    return tuple(broadcast_to(a, shape) for a in arrays)


# ----------------------------------------------------------------------------------------------
# Joining and splitting


def _common_dtype(arrays: list, dtype: Any, casting: str) -> tuple[list, np.dtype]:
    """The operands as arrays of one dtype (NumPy's promotion, or ``dtype`` if given)."""
    arrays = [_as_array(a) for a in arrays]
    if dtype is None:
        dtype = np.result_type(*[a.dtype for a in arrays]) if arrays else np.dtype(float)
    else:
        dtype = np.dtype(dtype)
        for a in arrays:
            if not np.can_cast(a.dtype, dtype, casting=casting):
                raise TypeError(f"Cannot cast array data from {a.dtype!r} to {dtype!r} "
                                f"according to the rule {casting!r}")
    return [astype(a, dtype) for a in arrays], dtype


def _no_out(name: str, out: Any) -> None:
    if out is not None:
        raise TypeError(f"{name}(..., out=...) writes into an array in place, which traced "
                        "values do not support; use the returned value instead")


@implements(np.concatenate)
def concatenate(arrays: Sequence[Any], axis: int | None = 0, out: Any = None, *,
                dtype: Any = None, casting: str = "same_kind") -> Any:
    """``np.concatenate``: join arrays along an existing axis (flattened first if ``axis`` is
    None). The derivative splits the cotangent into the pieces.

    Example:
        >>> import diffprog as dp
        >>> dp.grad(lambda x: (concatenate([x, 2.0 * x]) ** 2).sum())(np.ones(2))
        array([10., 10.])
    """
    if isinstance(arrays, Tracer):
        # The rows of one array: move them next to the axis and merge.
        _no_out("concatenate", out)
        if arrays.ndim < 2:
            raise ValueError("zero-dimensional arrays cannot be concatenated")
        x = arrays if dtype is None else astype(arrays, dtype)
        if axis is None:
            return ravel(x)
        axis = normalize_axis_index(axis, x.ndim - 1)
        moved = moveaxis(x, 0, axis)
        shape = moved.shape
        return reshape(moved, shape[:axis] + (shape[axis] * shape[axis + 1],) + shape[axis + 2:])
    if not _any_traced(*arrays):
        return np.concatenate(arrays, axis=axis, out=out, dtype=dtype, casting=casting)
    _no_out("concatenate", out)
    arrays, dtype = _common_dtype(list(arrays), dtype, casting)
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    ndim = arrays[0].ndim
    if ndim == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    axis = normalize_axis_index(axis, ndim)
    first = arrays[0].shape
    for i, a in enumerate(arrays[1:], 1):
        if a.ndim != ndim:
            raise ValueError(
                "all the input arrays must have same number of dimensions, but the array at "
                f"index 0 has {ndim} dimension(s) and the array at index {i} has {a.ndim} "
                "dimension(s)")
        for d in range(ndim):
            if d != axis and a.shape[d] != first[d]:
                raise ValueError(
                    "all the input array dimensions except for the concatenation axis must "
                    f"match exactly, but along dimension {d}, the array at index 0 has size "
                    f"{first[d]} and the array at index {i} has size {a.shape[d]}")
    if len(arrays) == 1:
        return arrays[0]
    return bind(P.concatenate, *arrays, axis=axis)


concat = concatenate


@implements(np.stack)
def stack(arrays: Sequence[Any], axis: int = 0, out: Any = None, *, dtype: Any = None,
          casting: str = "same_kind") -> Any:
    """``np.stack``: join arrays of one shape along a new axis.

    Example:
        >>> stack([np.zeros(2), np.ones(2)], axis=1)
        array([[0., 1.],
               [0., 1.]])
    """
    if isinstance(arrays, Tracer):
        _no_out("stack", out)
        x = arrays if dtype is None else astype(arrays, dtype)
        return moveaxis(x, 0, normalize_axis_index(axis, x.ndim))
    if not _any_traced(*arrays):
        return np.stack(arrays, axis=axis, out=out, dtype=dtype, casting=casting)
    _no_out("stack", out)
    arrays, dtype = _common_dtype(list(arrays), dtype, casting)
    if len({a.shape for a in arrays}) > 1:
        raise ValueError("all input arrays must have the same shape")
    axis = normalize_axis_index(axis, arrays[0].ndim + 1)
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis)


@implements(np.hstack)
def hstack(tup: Sequence[Any], *, dtype: Any = None, casting: str = "same_kind") -> Any:
    """``np.hstack``: join along the second axis (the first for 1-D arrays)."""
    if not _any_traced(*tup):
        return np.hstack(tup, dtype=dtype, casting=casting)
    arrays = [atleast_1d(a) for a in tup]
    axis = 0 if arrays and arrays[0].ndim == 1 else 1
    return concatenate(arrays, axis=axis, dtype=dtype, casting=casting)


@implements(np.vstack)
def vstack(tup: Sequence[Any], *, dtype: Any = None, casting: str = "same_kind") -> Any:
    """``np.vstack``: join along the first axis, 1-D arrays becoming rows."""
    if not _any_traced(*tup):
        return np.vstack(tup, dtype=dtype, casting=casting)
    return concatenate([atleast_2d(a) for a in tup], axis=0, dtype=dtype, casting=casting)


@implements(np.dstack)
def dstack(tup: Sequence[Any]) -> Any:
    """``np.dstack``: join along the third axis."""
    if not _any_traced(*tup):
        return np.dstack(tup)
    return concatenate([atleast_3d(a) for a in tup], axis=2)


@implements(np.column_stack)
def column_stack(tup: Sequence[Any]) -> Any:
    """``np.column_stack``: 1-D arrays become columns, then join along the second axis."""
    if not _any_traced(*tup):
        return np.column_stack(tup)
    arrays = []
    for v in tup:
        v = _as_array(v)
        if v.ndim < 2:
            v = reshape(v, (-1, 1))
        arrays.append(v)
    return concatenate(arrays, axis=1)


@implements(np.append)
def append(arr: Any, values: Any, axis: int | None = None) -> Any:
    """``np.append``: ``arr`` followed by ``values`` (both flattened if ``axis`` is None)."""
    if not _any_traced(arr, values):
        return np.append(arr, values, axis=axis)
    if axis is None:
        return concatenate([ravel(_as_array(arr)), ravel(_as_array(values))], axis=0)
    return concatenate([arr, values], axis=axis)


def _split(ary: Tracer, div_points: list, axis: int) -> list:
    """``ary`` cut at ``div_points`` along ``axis`` with NumPy's slicing of each piece."""
    n = ary.shape[axis]
    bounds = []
    for start, stop in zip(div_points[:-1], div_points[1:]):
        a, b, _ = slice(start, stop).indices(n)
        bounds.append((a, max(a, b)))
    partition = bounds[0][0] == 0 and bounds[-1][1] == n and all(
        bounds[i + 1][0] == bounds[i][1] for i in range(len(bounds) - 1))
    if partition:
        # Consecutive pieces: one split, whose derivative is one concatenate.
        return list(bind(P.split, ary, indices=tuple(b for _, b in bounds[:-1]), axis=axis))
    # Overlapping or reordered pieces (unusual indices): slice each piece on its own.
    lead = (slice(None),) * axis
    return [getitem(ary, lead + (slice(start, stop),))
            for start, stop in zip(div_points[:-1], div_points[1:])]


def _div_points(n: int, indices_or_sections: Any) -> list:
    try:
        indices = [operator.index(i) for i in indices_or_sections]
    except TypeError:
        sections = operator.index(indices_or_sections)
        if sections <= 0:
            raise ValueError("number sections must be larger than 0.") from None
        each, extras = divmod(n, sections)
        points = [0]
        for i in range(sections):
            points.append(points[-1] + each + (1 if i < extras else 0))
        return points
    return [0] + indices + [n]


@implements(np.array_split)
def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """``np.array_split``: ``ary`` split into pieces (of nearly equal size for a count)."""
    if not isinstance(ary, Tracer) and not isinstance(ary := as_operand(ary), Tracer):
        return np.array_split(ary, indices_or_sections, axis=axis)
    axis = normalize_axis_index(axis, ary.ndim)
    return _split(ary, _div_points(ary.shape[axis], indices_or_sections), axis)


@implements(np.split)
def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """``np.split``: ``ary`` split at the given indices or into equal sections. The derivative
    concatenates the pieces' cotangents.

    Example:
        >>> [p.tolist() for p in split(np.arange(4.0), [1])]
        [[0.0], [1.0, 2.0, 3.0]]
    """
    if not isinstance(ary, Tracer) and not isinstance(ary := as_operand(ary), Tracer):
        return np.split(ary, indices_or_sections, axis=axis)
    axis = normalize_axis_index(axis, ary.ndim)
    try:
        len(indices_or_sections)
    except TypeError:
        sections = operator.index(indices_or_sections)
        if sections > 0 and ary.shape[axis] % sections:
            raise ValueError("array split does not result in an equal division") from None
    return _split(ary, _div_points(ary.shape[axis], indices_or_sections), axis)


@implements(np.unstack)
def unstack(x: Any, /, *, axis: int = 0) -> tuple:
    """``np.unstack``: the slices of ``x`` along ``axis``, as a tuple."""
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.unstack(x, axis=axis)
    if x.ndim == 0:
        raise ValueError("Input array must be at least 1-d.")
    axis = normalize_axis_index(axis, x.ndim)
    pieces = _split(x, list(range(x.shape[axis] + 1)), axis) if x.shape[axis] else []
    return tuple(squeeze(p, axis) for p in pieces)


# ----------------------------------------------------------------------------------------------
# Repetition and reordering


@implements(np.tile)
def tile(A: Any, reps: Any) -> Any:
    """``np.tile``: ``A`` repeated ``reps`` times along each axis."""
    if not isinstance(A, Tracer) and not isinstance(A := as_operand(A), Tracer):
        return np.tile(A, reps)
    reps = tuple(int(r) for r in np.atleast_1d(np.asarray(reps)))
    shape = (1,) * (len(reps) - A.ndim) + A.shape
    reps = (1,) * (len(shape) - len(reps)) + reps
    if all(r == 1 for r in reps):
        return reshape(A, shape)
    # (a0, a1) -> (1, a0, 1, a1) -> (r0, a0, r1, a1) -> (r0 * a0, r1 * a1)
    spread = reshape(A, tuple(d for s in shape for d in (1, s)))
    big = broadcast_to(spread, tuple(d for r, s in zip(reps, shape) for d in (r, s)))
    return reshape(big, tuple(r * s for r, s in zip(reps, shape)))


@implements(np.repeat)
def repeat(a: Any, repeats: Any, axis: int | None = None) -> Any:
    """``np.repeat``: each entry repeated ``repeats`` times along ``axis`` (of the flattened
    array if None); ``repeats`` is one count or one per entry."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.repeat(a, repeats, axis=axis)
    if axis is None:
        a = ravel(a)
        axis = 0
    axis = normalize_axis_index(axis, a.ndim)
    counts = np.asarray(repeats)
    if counts.dtype.kind not in "iub":
        raise TypeError(f"repeat: repeats must be integers, got dtype {counts.dtype}")
    if np.any(counts < 0):
        raise ValueError("repeats may not contain negative values.")
    n = a.shape[axis]
    if counts.size == 1 and counts.ndim <= 1:
        r = int(counts.reshape(()))
        x = expand_dims(a, axis + 1)
        x = broadcast_to(x, a.shape[:axis + 1] + (r,) + a.shape[axis + 1:])
        return reshape(x, a.shape[:axis] + (n * r,) + a.shape[axis + 1:])
    if counts.shape != (n,):
        raise ValueError(f"operands could not be broadcast together with shape ({n},) "
                         f"{counts.shape}")
    return getitem(a, (slice(None),) * axis + (np.repeat(np.arange(n), counts),))


@implements(np.flip)
def flip(m: Any, axis: Any = None) -> Any:
    """``np.flip``: reverse the order of entries along ``axis`` (all axes by default)."""
    if not isinstance(m, Tracer) and not isinstance(m := as_operand(m), Tracer):
        return np.flip(m, axis)
    axes = tuple(range(m.ndim)) if axis is None else normalize_axis_tuple(axis, m.ndim)
    if not axes:
        return m
    return getitem(m, tuple(slice(None, None, -1) if i in axes else slice(None)
                            for i in range(m.ndim)))


@implements(np.fliplr)
def fliplr(m: Any) -> Any:
    """``np.fliplr``: reverse the second axis."""
    if not isinstance(m, Tracer) and not isinstance(m := as_operand(m), Tracer):
        return np.fliplr(m)
    if m.ndim < 2:
        raise ValueError("Input must be >= 2-d.")
    return flip(m, 1)


@implements(np.flipud)
def flipud(m: Any) -> Any:
    """``np.flipud``: reverse the first axis."""
    if not isinstance(m, Tracer) and not isinstance(m := as_operand(m), Tracer):
        return np.flipud(m)
    if m.ndim < 1:
        raise ValueError("Input must be >= 1-d.")
    return flip(m, 0)


@implements(np.roll)
def roll(a: Any, shift: Any, axis: Any = None) -> Any:
    """``np.roll``: entries shifted cyclically by ``shift`` along ``axis`` (ints or tuples;
    the flattened array if None).

    Example:
        >>> roll(np.arange(4.0), 1)
        array([3., 0., 1., 2.])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.roll(a, shift, axis)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), a.shape)
    axes = normalize_axis_tuple(axis, a.ndim, allow_duplicate=True)
    pairs = np.broadcast(shift, axes)
    if pairs.ndim > 1:
        raise ValueError("'shift' and 'axis' should be scalars or 1D sequences")
    shifts = [0] * a.ndim
    for s, ax in pairs:
        shifts[ax] += int(s)
    result = a
    for ax, s in enumerate(shifts):
        n = a.shape[ax]
        if n == 0 or s % n == 0:
            continue
        head, tail = bind(P.split, result, indices=(n - s % n,), axis=ax)
        result = bind(P.concatenate, tail, head, axis=ax)
    return result


@implements(np.rot90)
def rot90(m: Any, k: int = 1, axes: Sequence[int] = (0, 1)) -> Any:
    """``np.rot90``: rotate by 90 degrees ``k`` times in the plane of ``axes``."""
    if not isinstance(m, Tracer) and not isinstance(m := as_operand(m), Tracer):
        return np.rot90(m, k, axes)
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    if axes[0] == axes[1] or abs(axes[0] - axes[1]) == m.ndim:
        raise ValueError("Axes must be different.")
    if not (-m.ndim <= axes[0] < m.ndim and -m.ndim <= axes[1] < m.ndim):
        raise ValueError(f"Axes={axes} out of range for array of ndim={m.ndim}.")
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, axes[0]), axes[1])
    perm = list(range(m.ndim))
    i, j = axes[0] % m.ndim, axes[1] % m.ndim
    perm[i], perm[j] = perm[j], perm[i]
    if k == 1:
        return transpose(flip(m, axes[1]), perm)
    return flip(transpose(m, perm), axes[1])


# ----------------------------------------------------------------------------------------------
# Padding


def _pad_pairs(pad_width: Any, ndim: int) -> list:
    """NumPy's spellings of ``pad_width`` as one (before, after) pair of ints per axis."""
    x = np.asarray(pad_width)
    if x.dtype.kind not in "iu":
        raise TypeError("`pad_width` must be of integral type.")
    if x.size and x.min() < 0:
        raise ValueError("index can't contain negative values")
    if x.ndim < 3:
        if x.size == 1:
            return [(int(x.ravel()[0]),) * 2] * ndim
        if x.size == 2 and x.shape != (2, 1):
            before, after = x.ravel()
            return [(int(before), int(after))] * ndim
    return [(int(b), int(a)) for b, a in np.broadcast_to(x, (ndim, 2))]


def _value_pairs(values: Any, ndim: int) -> Any:
    """``constant_values`` as an array of shape (ndim, 2), traced or not."""
    v = array(values) if _contains_tracer(values) else np.asarray(values)
    if v.ndim < 3 and v.size == 1:
        v = reshape(v, (1, 1))
    elif v.ndim < 3 and v.size == 2 and v.shape != (2, 1):
        v = reshape(v, (1, 2))
    return broadcast_to(v, (ndim, 2))


_INDEX_MODES = ("edge", "wrap", "reflect", "symmetric")


@implements(np.pad)
def pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Any:
    """``np.pad``: ``array`` extended along each axis.

    Supported on traced values: ``mode="constant"`` (with ``constant_values``, which may be
    traced themselves), ``"empty"`` (as zeros), and the modes that copy entries: ``"edge"``,
    ``"wrap"``, ``"reflect"`` and ``"symmetric"`` (with the default ``reflect_type="even"``).
    The derivative of the constant padding is the slice of the cotangent that holds the
    original entries; copied entries send their cotangents back to their sources.

    Example:
        >>> pad(np.ones(2), (1, 2), constant_values=5.0)
        array([5., 1., 1., 5., 5.])
    """
    if not _any_traced(array) and not _contains_tracer(kwargs.get("constant_values")):
        return np.pad(array, pad_width, mode, **kwargs)
    x = _as_array(array)
    pairs = _pad_pairs(pad_width, x.ndim)
    if callable(mode) or mode not in ("constant", "empty") + _INDEX_MODES:
        raise NotImplementedError(
            f"pad: mode={mode!r} is not supported on traced values; use mode='constant', "
            "'edge', 'wrap', 'reflect', 'symmetric' or 'empty', or build the padding from "
            "slices with dnp.concatenate")
    allowed = {"constant": {"constant_values"}, "reflect": {"reflect_type"},
               "symmetric": {"reflect_type"}}.get(mode, set())
    if set(kwargs) - allowed:
        raise ValueError(f"unsupported keyword arguments for mode '{mode}': "
                         f"{set(kwargs) - allowed}")
    if kwargs.get("reflect_type", "even") != "even":
        raise NotImplementedError("pad: reflect_type='odd' is not supported on traced values")
    if mode in _INDEX_MODES:
        # These modes copy entries, one axis after another: gather with the padded positions.
        for ax, (before, after) in enumerate(pairs):
            if before or after:
                if x.shape[ax] == 0:
                    raise ValueError(f"can't extend empty axis {ax} using modes other than "
                                     "'constant' or 'empty'")
                positions = np.pad(np.arange(x.shape[ax]), (before, after), mode=mode)
                x = getitem(x, (slice(None),) * ax + (positions,))
        return x
    if not any(b or a for b, a in pairs):
        return x
    shape = tuple(b + d + a for (b, a), d in zip(pairs, x.shape))
    inner = tuple(slice(b, b + d) for (b, _), d in zip(pairs, x.shape))
    out = bind(P.scatter_add, x, shape=shape, idx=P.encode_index(inner))
    values = kwargs.get("constant_values", 0) if mode == "constant" else 0
    if not _contains_tracer(values):
        if np.any(np.asarray(values) != 0):
            return out + np.pad(np.zeros(x.shape, x.dtype), pairs, constant_values=values)
        return out
    # Traced constants: number the padding regions as NumPy fills them (axis by axis, so the
    # later axes own the corners) and gather one value per region; 0 is the interior.
    region = np.pad(np.zeros(x.shape, np.intp), pairs,
                    constant_values=np.arange(1, 2 * x.ndim + 1).reshape(x.ndim, 2))
    table = concatenate([np.zeros(1, x.dtype), ravel(_value_pairs(values, x.ndim))],
                        dtype=x.dtype, casting="unsafe")
    return out + getitem(table, (region,))


# ----------------------------------------------------------------------------------------------
# Diagonals, triangles, products of shapes


@implements(np.diagonal)
def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """``np.diagonal``: the diagonal of the ``axis1``/``axis2`` planes, as the last axis."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.diagonal(a, offset, axis1, axis2)
    if a.ndim < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    ax1, ax2 = normalize_axis_index(axis1, a.ndim), normalize_axis_index(axis2, a.ndim)
    if ax1 == ax2:
        raise ValueError("axis1 and axis2 cannot be the same")
    n1, n2 = a.shape[ax1], a.shape[ax2]
    moved = transpose(a, [i for i in range(a.ndim) if i not in (ax1, ax2)] + [ax1, ax2])
    if offset >= 0:
        rows = np.arange(max(0, min(n1, n2 - offset)))
        cols = rows + offset
    else:
        cols = np.arange(max(0, min(n1 + offset, n2)))
        rows = cols - offset
    return getitem(moved, (Ellipsis, rows, cols))


@implements(np.diag)
def diag(v: Any, k: int = 0) -> Any:
    """``np.diag``: the ``k``-th diagonal of a matrix, or a square matrix with ``v`` on its
    ``k``-th diagonal.

    Example:
        >>> diag(np.array([1.0, 2.0]), 1)
        array([[0., 1., 0.],
               [0., 0., 2.],
               [0., 0., 0.]])
    """
    if not isinstance(v, Tracer) and not isinstance(v := as_operand(v), Tracer):
        return np.diag(v, k)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ValueError("Input must be 1- or 2-d.")
    n = v.shape[0] + abs(k)
    i = np.arange(v.shape[0])
    rows, cols = (i, i + k) if k >= 0 else (i - k, i)
    return bind(P.scatter_add, v, shape=(n, n), idx=(rows, cols))


@implements(np.trace)
def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: Any = None) -> Any:
    """``np.trace``: the sum along a diagonal."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.trace(a, offset, axis1, axis2, dtype, out)
    _no_out("trace", out)
    return _sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


@implements(np.tril)
def tril(m: Any, k: int = 0) -> Any:
    """``np.tril``: zeros above the ``k``-th diagonal of the last two axes."""
    if not isinstance(m, Tracer) and not isinstance(m := as_operand(m), Tracer):
        return np.tril(m, k)
    mask = np.tri(*m.shape[-2:], k=k, dtype=bool)
    return where(mask, m, np.zeros(1, m.dtype))


@implements(np.triu)
def triu(m: Any, k: int = 0) -> Any:
    """``np.triu``: zeros below the ``k``-th diagonal of the last two axes."""
    if not isinstance(m, Tracer) and not isinstance(m := as_operand(m), Tracer):
        return np.triu(m, k)
    mask = np.tri(*m.shape[-2:], k=k - 1, dtype=bool)
    return where(mask, np.zeros(1, m.dtype), m)


@implements(np.outer)
def outer(a: Any, b: Any, out: Any = None) -> Any:
    """``np.outer``: all products ``a[i] * b[j]`` of the flattened inputs."""
    if not _any_traced(a, b):
        return np.outer(a, b, out)
    _no_out("outer", out)
    return multiply(reshape(ravel(_as_array(a)), (-1, 1)), reshape(ravel(_as_array(b)), (1, -1)))


@implements(np.kron)
def kron(a: Any, b: Any) -> Any:
    """``np.kron``: the Kronecker product, blocks ``a[i] * b``."""
    if not _any_traced(a, b):
        return np.kron(a, b)
    a, b = _as_array(a), _as_array(b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + a.shape
    sb = (1,) * (nd - b.ndim) + b.shape
    # (a0, 1, a1, 1) * (1, b0, 1, b1) -> (a0, b0, a1, b1) -> (a0 * b0, a1 * b1)
    blocks = multiply(reshape(a, tuple(d for s in sa for d in (s, 1))),
                      reshape(b, tuple(d for s in sb for d in (1, s))))
    return reshape(blocks, tuple(p * q for p, q in zip(sa, sb)))


@implements(np.select)
def select(condlist: Sequence[Any], choicelist: Sequence[Any], default: Any = 0) -> Any:
    """``np.select``: from each choice where its condition holds, the first that holds
    winning; ``default`` elsewhere. The derivative flows only through the chosen entries."""
    if not _any_traced(*condlist, *choicelist, default):
        return np.select(condlist, choicelist, default)
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if not choicelist:
        raise ValueError("select with an empty condition list is not possible")
    for i, c in enumerate(condlist):
        if _as_array(c).dtype != bool:
            raise TypeError(f"invalid entry {i} in condlist: should be boolean ndarray")
    # Python scalars stay weakly typed, as in NumPy's select.
    dtype = np.result_type(*[c if type(c) in (int, float, complex) else _as_array(c).dtype
                             for c in (*choicelist, default)])
    result = astype(_as_array(default), dtype)
    for cond, choice in zip(condlist[::-1], choicelist[::-1]):
        result = where(cond, astype(_as_array(choice), dtype), result)
    return result


# ----------------------------------------------------------------------------------------------
# Minimum ranks, grids, building arrays


def _atleast(a: Any, n: int) -> Any:
    if a.ndim >= n:
        return a
    if n == 1 or a.ndim == 0:
        return reshape(a, (1,) * n)
    if n == 2:
        return reshape(a, (1,) + a.shape)
    return reshape(a, (1,) + a.shape + (1,) if a.ndim == 1 else a.shape + (1,))


def _atleast_all(arys: tuple, n: int, np_fn: Any) -> Any:
    arys = tuple(as_operand(a) for a in arys)
    out = tuple(_atleast(a, n) if isinstance(a, Tracer) else np_fn(a) for a in arys)
    return out[0] if len(out) == 1 else out


@implements(np.atleast_1d)
def atleast_1d(*arys: Any) -> Any:
    """``np.atleast_1d``: each input with at least one axis (a tuple for several)."""
    return _atleast_all(arys, 1, np.atleast_1d)


@implements(np.atleast_2d)
def atleast_2d(*arys: Any) -> Any:
    """``np.atleast_2d``: each input with at least two axes (1-D becomes a row)."""
    return _atleast_all(arys, 2, np.atleast_2d)


@implements(np.atleast_3d)
def atleast_3d(*arys: Any) -> Any:
    """``np.atleast_3d``: each input with at least three axes ((n,) becomes (1, n, 1))."""
    return _atleast_all(arys, 3, np.atleast_3d)


@implements(np.meshgrid)
def meshgrid(*xi: Any, copy: bool = True, sparse: bool = False, indexing: str = "xy") -> tuple:
    """``np.meshgrid``: coordinate arrays from 1-D coordinate vectors."""
    if not _any_traced(*xi):
        return np.meshgrid(*xi, copy=copy, sparse=sparse, indexing=indexing)
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    ndim = len(xi)
    ones = (1,) * ndim
    out = [reshape(_as_array(x), ones[:i] + (-1,) + ones[i + 1:]) for i, x in enumerate(xi)]
    if indexing == "xy" and ndim > 1:
        out[0] = reshape(out[0], (1, -1) + ones[2:])
        out[1] = reshape(out[1], (-1, 1) + ones[2:])
    return tuple(out) if sparse else broadcast_arrays(*out)


def _build(obj: Any) -> Any:
    if isinstance(obj, (list, tuple)) and _contains_tracer(obj):
        return stack([_build(o) for o in obj])
    return _as_array(obj)


@implements(np.array)
def array(object: Any, dtype: Any = None, *, copy: bool = True, order: str = "K",
          subok: bool = False, ndmin: int = 0, like: Any = None) -> Any:
    """``np.array``, also from (nested) lists and tuples that contain traced values.

    ``np.array([x, y])`` cannot see traced values inside a list (NumPy converts each entry
    first), so build such arrays with ``dnp.array`` or ``dnp.stack``.

    Example:
        >>> import diffprog as dp
        >>> dp.grad(lambda x: array([x, x * 2, 3.0]).sum())(1.0)
        np.float64(3.0)
    """
    if not _contains_tracer(object):
        return np.array(object, dtype=dtype, copy=copy, order=order, subok=subok, ndmin=ndmin)
    x = _build(object)
    if dtype is not None:
        x = astype(x, dtype)
    if x.ndim < ndmin:
        x = reshape(x, (1,) * (ndmin - x.ndim) + x.shape)
    return x


@implements(np.asarray, np.asanyarray)
def asarray(a: Any, dtype: Any = None, order: str | None = None, *, device: Any = None,
            copy: bool | None = None, like: Any = None) -> Any:
    """``np.asarray``, also from (nested) lists and tuples that contain traced values."""
    if not _contains_tracer(a):
        return np.asarray(a, dtype=dtype, order=order, copy=copy)
    x = _build(a)
    return x if dtype is None else astype(x, dtype)


@implements(np.copy)
def copy(a: Any, order: str = "K", subok: bool = False) -> Any:
    """``np.copy``; a traced value is immutable, so it is its own copy."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.copy(a, order=order, subok=subok)
    return a


# ----------------------------------------------------------------------------------------------
# Array methods of traced values
