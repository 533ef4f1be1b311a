"""Indexing primitives: gather (``getitem``) and its transpose ``scatter_add``; ``nonzero``.

``getitem`` and ``scatter_add`` are linear, declared by their transposes: the jvp applies the
primitive to the tangent, and each is the other's transpose (which reads only shapes).
Gathering the same position twice sends two cotangents back to it, which ``scatter_add``
accumulates (``np.add.at``).

The index param is NumPy's index in a hashable spelling (see :func:`encode_index`): a tuple of
ints, ``None``, ``Ellipsis``, ``(start, stop, step)`` tuples standing for slices, and integer
arrays (boolean masks arrive as the integer arrays of their ``nonzero()``). Only the arrays
are unhashable; an index made of ints, slices, None and Ellipsis is a valid cache key.
"""

from __future__ import annotations

import math

import numpy as np

from ..core import Primitive

__all__ = ["getitem", "scatter_add", "nonzero", "encode_index", "decode_index", "index_layout",
           "batch_position", "move_axis"]


def encode_index(idx: tuple) -> tuple:
    """NumPy's index tuple with each slice spelled as a ``(start, stop, step)`` tuple.

    Example:
        >>> encode_index((0, slice(None, 3), None))
        (0, (None, 3, None), None)
    """
    return tuple((i.start, i.stop, i.step) if isinstance(i, slice) else i for i in idx)


def decode_index(idx: tuple) -> tuple:
    """The inverse of :func:`encode_index`: an index NumPy accepts.

    Example:
        >>> decode_index((0, (None, 3, None), None))
        (0, slice(None, 3, None), None)
    """
    return tuple(slice(*i) if type(i) is tuple else i for i in idx)


def _is_basic(idx: tuple) -> bool:
    return all(i is None or i is Ellipsis or isinstance(i, (int, tuple, slice)) for i in idx)


def _getitem_impl(x, idx):
    return x[decode_index(idx)]


def _selects_once(shape: tuple, idx: tuple) -> bool:
    """Does the advanced index ``idx`` select each position of a ``shape`` array at most once?

    Slices never repeat a position, so the positions repeat exactly when the broadcast tuples
    of the integer entries (arrays, and ints mixed with them) do.
    """
    used = sum(1 for i in idx if i is not None and i is not Ellipsis)
    entries, dims = [], []
    axis = 0
    for i in idx:
        if i is None:
            continue
        if i is Ellipsis:
            axis += len(shape) - used
            continue
        if isinstance(i, np.ndarray):
            if i.dtype == bool:
                return False  # a 0-d mask: leave it to np.add.at
            entries.append(i)
            dims.append(shape[axis])
        elif isinstance(i, int):
            entries.append(i)
            dims.append(shape[axis])
        axis += 1
    arrays = np.broadcast_arrays(*entries)
    if arrays[0].size <= 1:
        return True
    dims = tuple(dims)
    flat = np.ravel_multi_index(tuple(np.mod(a, d) for a, d in zip(arrays, dims)), dims).ravel()
    total = int(np.prod(dims))
    if total <= 8 * flat.size + 1024:
        return int(np.bincount(flat, minlength=total).max()) <= 1
    return np.unique(flat).size == flat.size


def _scatter_add_impl(v, shape, idx):
    out = np.zeros(shape, dtype=np.result_type(v))
    if _is_basic(idx):
        out[decode_index(idx)] = v  # a basic index selects each position at most once
    elif np.size(v) > 4096 and _selects_once(shape, idx):
        # Assignment moves whole blocks and is much faster than np.add.at (25x for gathered
        # rows of a 1000 x 1000 array); checking for repeats costs one pass over the index.
        out[decode_index(idx)] = v
    else:
        np.add.at(out, decode_index(idx), v)  # repeated integer indices accumulate
    return out


# -- batching (vmap): the batch axis of x is one more full slice in front of the index; with
# index arrays NumPy may put it elsewhere in the result (index_layout says where). These
# helpers serve gather.py too. (Moving axes uses the arrays' transpose method: shape.py, where
# the transpose primitive lives, imports this module.)

def _is_array_entry(i) -> bool:
    return getattr(i, "k", None) is not None or isinstance(i, np.ndarray)


def index_layout(idx: tuple, ndim: int, index_shapes: tuple) -> tuple | None:
    """``(S, adjacent, pre)`` for ``x[idx]`` with ``x`` of ``ndim`` axes: the broadcast shape
    ``S`` of the advanced entries, whether they are adjacent (then their axes replace them in
    place) and the number of result axes before them. ``None`` without index arrays."""
    shapes = [index_shapes[i.k] if not isinstance(i, np.ndarray) else i.shape for i in idx
              if _is_array_entry(i)]
    if not shapes:
        return None
    adv = [k for k, i in enumerate(idx) if _is_array_entry(i) or type(i) is int]
    adjacent = adv == list(range(adv[0], adv[-1] + 1))
    used = sum(1 for i in idx if i is not None and i is not Ellipsis)
    pre = sum((ndim - used) if i is Ellipsis else 1 for i in idx[:adv[0]])
    return tuple(np.broadcast_shapes(*shapes)), adjacent, pre


def batch_position(idx: tuple, ndim: int, index_shapes: tuple) -> int:
    """Where the batch axis of ``x`` (in front) lands in ``x[(slice(None),) + idx]``."""
    layout = index_layout(idx, ndim, index_shapes)
    if layout is None or layout[1]:
        return 0
    return len(layout[0])


def move_axis(x, src: int, dst: int):
    """``np.moveaxis`` as a transpose."""
    if src == dst:
        return x
    n = len(np.shape(x))
    order = [i for i in range(n) if i != src]
    order.insert(dst, src)
    return x.transpose(tuple(order))  # a method: ndarray's, or the transpose primitive's


def _getitem_batch(args, dims, idx):
    x = move_axis(args[0], dims[0], 0)
    return (getitem(x, idx=((None, None, None),) + idx),
            batch_position(idx, len(np.shape(x)) - 1, ()))


def _scatter_add_batch(args, dims, shape, idx):
    v = move_axis(args[0], dims[0], 0)
    size = np.shape(v)[0]
    v = move_axis(v, 0, batch_position(idx, len(shape), ()))
    return scatter_add(v, shape=(size,) + tuple(shape), idx=((None, None, None),) + idx), 0


def _getitem_program(avals, out, idx):
    """The whole-program tier's plan (see ``Primitive.program_form``): the output gathers
    the operand's elements at the positions this index selects."""
    where = _getitem_impl(np.arange(math.prod(avals[0].shape)).reshape(avals[0].shape), idx)
    return ("gather", np.ascontiguousarray(where, dtype=np.int64).reshape(-1))


def _scatter_add_program(avals, out, shape, idx):
    """Each value added at the output position getitem would read it from."""
    where = _getitem_impl(np.arange(math.prod(shape)).reshape(shape), idx)
    if where.size != math.prod(avals[0].shape):
        return None  # (values broadcast over the selection: not a plan of one add each)
    where = np.ascontiguousarray(where, dtype=np.int64).reshape(-1)
    # positions selected once are assigned (the values as they are, -0.0 too); repeated
    # ones accumulate onto zeros (np.add.at)
    once = np.unique(where).size == where.size
    return ("scatter", where, "assign") if once else ("scatter", where)


getitem = Primitive(
    "getitem", _getitem_impl, batch=_getitem_batch, program_form=_getitem_program,
    linear=True, transpose=(lambda ct, out, x, idx: scatter_add(ct, shape=x.shape, idx=idx),))

# zeros(shape) with ``v`` added at ``idx``: the transpose of getitem. With a basic index of
# slices it is zero padding.
scatter_add = Primitive(
    "scatter_add", _scatter_add_impl, batch=_scatter_add_batch,
    program_form=_scatter_add_program,
    linear=True, transpose=(lambda ct, out, v, shape, idx: getitem(ct, idx=idx),))

def _nonzero_abstract(x):
    raise TypeError(
        "nonzero (also argwhere, flatnonzero and boolean masks made from traced values) has "
        "an output shape that depends on the values, which jit does not know: compute the "
        "indices outside the jitted function, or use dnp.where(mask, x, 0) to keep the shape")


# The indices of the nonzero entries: integer arrays, piecewise constant in ``x``.
nonzero = Primitive("nonzero", lambda x: tuple(np.nonzero(x)), differentiable=False,
                    multiple_results=True, abstract=_nonzero_abstract)
