"""Indexing of traced values: ``x[idx]``, the functional updates ``x.at[idx].add/set/...``,
``take``, ``take_along_axis`` and the index-valued ``nonzero``, ``argwhere``, ``flatnonzero``.

Gathers use the ``getitem`` primitive (its transpose is ``scatter_add``), and the updates the
``scatter_apply`` primitive; all use NumPy's own indexing, so mixed basic and advanced indices
mean exactly what they mean in NumPy, and updates round and sign zeros as ``ufunc.at`` does.
Under jit an index may hold integer arrays whose values are unknown while tracing (arguments of
the jitted function): they become operands of the ``gather`` primitives
(:mod:`diffprog.prims.gather`) instead of params.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from .. import prims as P
from ..core import Tracer, bind, concrete
from ..prims import gather as G
from ._core import _dtype, _shape, as_operand, implements
from ._elementwise import astype, multiply, where

__all__ = ["take", "take_along_axis", "nonzero", "argwhere", "flatnonzero"]


def _int_or_none(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, Tracer):
        v = _index_array(v, traced_ok=True)
        if isinstance(v, Tracer):
            raise TypeError(
                "a slice bound computed from values traced by jit has no concrete value (only "
                "its shape and dtype are known), and a slice's length must be known: pass the "
                "bound as a static argument, or index with an integer array (np.arange(n) + "
                "start works under jit)")
    return int(v)  # a NumPy integer, or anything with __index__, becomes a plain int


def _index_array(item: Any, traced_ok: bool = False) -> Any:
    """The concrete integer or boolean array an index item stands for.

    With ``traced_ok``, an integer array traced by jit (its values unknown until the program
    runs) is returned as it is: it becomes an operand of the ``gather`` primitive.
    """
    if isinstance(item, Tracer):
        if item.dtype.kind not in "iub":
            raise TypeError(
                "a traced float value cannot be used as an index; indices must be ints, "
                "slices, or integer/boolean arrays that do not depend on the differentiated "
                "inputs")
        # Integer values are piecewise constant in the inputs: no derivative is lost.
        value = concrete(item)
        if isinstance(value, (np.ndarray, np.generic)):
            item = value
        elif item.dtype.kind == "b":
            raise TypeError(
                "a boolean mask traced by jit selects a number of entries that depends on its "
                "values, which jit does not know: use dnp.where(mask, x, 0) to keep the "
                "shape, or compute the mask outside the jitted function")
        elif traced_ok:
            return item
        else:
            raise TypeError(
                "an index computed from traced values has no concrete value here (under jit "
                "only shapes and dtypes are known): compute integer indices and boolean masks "
                "from values that are not traced, or use dnp.where to keep the shape")
    arr = np.asarray(item)
    if arr.size == 0 and not isinstance(item, np.ndarray):
        arr = arr.astype(np.intp)  # x[[]] selects nothing, as in NumPy
    return arr


def normalize_index(idx: Any) -> tuple:
    """NumPy's index as a tuple of ints, slices, None, Ellipsis and integer arrays.

    Boolean masks become the integer arrays of their ``nonzero()`` (NumPy defines them so);
    0-d boolean arrays stay as they are.

    Example:
        >>> normalize_index((np.array([True, False, True]), slice(1, None)))
        (array([0, 2]), slice(1, None, None))
    """
    items = idx if isinstance(idx, tuple) else (idx,)
    out: list[Any] = []
    for item in items:
        if item is None or item is Ellipsis:
            out.append(item)
        elif isinstance(item, slice):
            out.append(slice(_int_or_none(item.start), _int_or_none(item.stop),
                             _int_or_none(item.step)))
        elif isinstance(item, (bool, np.bool_)):
            out.append(np.asarray(item))
        elif isinstance(item, (int, np.integer)):
            out.append(int(item))
        else:
            arr = _index_array(item, traced_ok=True)
            if isinstance(arr, Tracer):
                out.append(arr)  # an integer array known only by shape and dtype (jit)
            elif arr.dtype == bool:
                if arr.ndim == 0:
                    out.append(arr)
                else:
                    out.extend(np.nonzero(arr))
            elif arr.dtype.kind in "iu":
                out.append(int(arr) if arr.ndim == 0 else arr)
            else:
                raise IndexError(f"only integers, slices, None, Ellipsis and integer or "
                                 f"boolean arrays are valid indices, got dtype {arr.dtype}")
    return tuple(out)


def _plain_slice(s: slice) -> bool:
    for v in (s.start, s.stop, s.step):
        if v is not None and type(v) is not int:
            return False
    return True


def getitem(x: Any, idx: Any) -> Any:
    """``x[idx]`` with NumPy's indexing; the derivative scatters back into the indexed
    positions, and positions selected more than once accumulate their cotangents.

    Example:
        >>> import diffprog as dp
        >>> dp.grad(lambda x: (x[np.array([0, 0, 2])] * 1.0).sum())(np.zeros(3))
        array([2., 0., 1.])
    """
    if not isinstance(x, Tracer):
        if not _holds_tracer(idx):
            return x[idx]
        x = np.asarray(x)  # a constant gathered at traced indices
    # Fast paths for x[i] and x[a:b] (loops over rows index like this).
    kind = type(idx)
    if kind is int:
        return bind(P.getitem, x, idx=(idx,))
    if kind is slice and _plain_slice(idx):
        return bind(P.getitem, x, idx=((idx.start, idx.stop, idx.step),))
    norm = normalize_index(idx)
    if not norm or (len(norm) == 1 and norm[0] is Ellipsis):
        return x
    if _has_traced(norm):
        template, operands = _operands(norm)
        return bind(G.gather, x, *operands, idx=template)
    return bind(P.getitem, x, idx=P.encode_index(norm))


def _holds_tracer(idx: Any) -> bool:
    return isinstance(idx, Tracer) or (type(idx) is tuple and any(
        isinstance(i, Tracer) for i in idx))


def _has_traced(norm: tuple) -> bool:
    return any(isinstance(i, Tracer) for i in norm)


def _operands(norm: tuple) -> tuple[tuple, list]:
    """A normalized index holding traced integer arrays (their values unknown under jit) as
    the encoded index of the ``gather`` primitives, every array replaced by a ``Slot``, and
    the arrays, which become operands."""
    template: list[Any] = []
    operands: list[Any] = []
    for i in norm:
        if isinstance(i, (Tracer, np.ndarray)):
            template.append(G.Slot(len(operands)))
            operands.append(i)
        elif isinstance(i, slice):
            template.append((i.start, i.stop, i.step))
        else:
            template.append(i)
    return tuple(template), operands


# ----------------------------------------------------------------------------------------------
# Functional updates: x.at[idx].add / set / multiply / min / max


def _update_args(x: Any, idx: Any, values: Any) -> tuple:
    """The normalized index, the shape and dtype of ``x``, and ``values`` cast to that dtype
    and broadcast to the shape of ``x[idx]``."""
    norm = normalize_index(idx)
    shape = tuple(_shape(x))
    dtype = np.dtype(_dtype(x))
    if _has_traced(norm):
        template, operands = _operands(norm)
        target = G.gather_shape(shape, template, tuple(tuple(_shape(i)) for i in operands))
    else:
        target = np.empty(shape, dtype=np.bool_)[norm].shape  # NumPy's IndexError if out of range
    if isinstance(values, Tracer):
        values = astype(values, dtype)
        if values.shape != target:
            np.broadcast_shapes(values.shape, target)  # NumPy's error for a shape mismatch
            values = bind(P.broadcast_to, values, shape=target)
    else:
        values = np.broadcast_to(np.asarray(values).astype(dtype, copy=False), target)
    return norm, shape, dtype, values


def _writes(shape: tuple, norm: tuple, values: Any):
    """The writes of ``x[norm] = values`` as rounds ``(hit, placed)``, in NumPy's order.

    Within a round every position is written at most once: ``hit`` marks the positions and
    ``placed`` holds the written values (zeros elsewhere). The k-th write to a position goes
    to round k, so with repeated indices later writes come in later rounds.
    """
    if all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in norm):
        hit = np.zeros(shape, dtype=bool)
        hit[norm] = True
        yield hit, bind(P.scatter_add, values, shape=shape, idx=P.encode_index(norm))
        return
    counts = np.zeros(shape, dtype=np.intp)
    np.add.at(counts, norm, 1)
    if counts.max(initial=0) <= 1:
        yield counts > 0, bind(P.scatter_add, values, shape=shape, idx=P.encode_index(norm))
        return
    flat = np.arange(counts.size).reshape(shape)[norm].ravel()
    # rank[i]: how many earlier entries of the index write to the same position as entry i
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    n = flat.size
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.empty(n, dtype=np.intp)
    rank[order] = np.arange(n) - group_start
    flat_values = values.reshape(-1) if not isinstance(values, Tracer) else \
        bind(P.reshape, values, shape=(n,))
    for k in range(int(rank.max()) + 1):
        entries = np.flatnonzero(rank == k)
        positions = np.unravel_index(flat[entries], shape)
        hit = np.zeros(shape, dtype=bool)
        hit[positions] = True
        v = bind(P.getitem, flat_values, idx=(entries,))
        yield hit, bind(P.scatter_add, v, shape=shape, idx=positions)


def _combine_at(x: Any, idx: Any, values: Any, ufunc: np.ufunc) -> Any:
    """``x`` with each write of ``values`` at ``idx`` combined in turn, like ``ufunc.at``."""
    norm, shape, dtype, values = _update_args(x, idx, values)
    if not isinstance(x, Tracer) and not isinstance(values, Tracer):
        out = np.array(x, dtype=dtype)
        ufunc.at(out, norm, values)
        return out
    if ufunc is np.multiply and not _has_traced(norm):
        # The weights of a product are values, not constants: scatter_apply's derivative
        # (first order) would lose the second. With a concrete index the writes come in
        # rounds of distinct positions, each a differentiable multiply.
        result = x
        for hit, placed in _writes(shape, norm, values):
            result = where(hit, multiply(result, placed), result)
        return result
    return _apply(x, norm, values, ufunc.__name__)


def _apply(x: Any, norm: tuple, values: Any, op: str) -> Any:
    """The update ``op`` of traced values: one ``scatter_apply`` primitive writes in NumPy's
    order with NumPy's own ``ufunc.at`` (or assignment), so values, rounding and signs of zero
    are NumPy's; its derivative weighs the writes (see :mod:`diffprog.prims.gather`). Index
    arrays are its operands: under jit they may be traced integer arrays, whose repeated
    positions are known only when the program runs."""
    template, operands = _operands(norm)
    if not isinstance(x, Tracer):
        x = np.asarray(x)
    return bind(G.scatter_apply, x, values, *operands, idx=template, op=op)


def at_add(x: Any, idx: Any, values: Any) -> Any:
    """``x`` with ``values`` added at ``idx`` (``x.at[idx].add(values)``); repeated indices
    accumulate, like ``np.add.at``. The result has the dtype of ``x``.

    Example:
        >>> at_add(np.zeros(3), np.array([0, 0, 2]), 1.0)
        array([2., 0., 1.])
    """
    return _combine_at(x, idx, values, np.add)


def at_set(x: Any, idx: Any, values: Any) -> Any:
    """``x`` with the entries at ``idx`` replaced by ``values`` (``x.at[idx].set(values)``).

    With repeated indices the last write wins, which is what NumPy's ``x[idx] = values`` does
    in practice; the overwritten values get a zero derivative.

    Example:
        >>> at_set(np.zeros(3), np.array([1, 1]), np.array([5.0, 7.0]))
        array([0., 7., 0.])
    """
    norm, shape, dtype, values = _update_args(x, idx, values)
    if not isinstance(x, Tracer) and not isinstance(values, Tracer):
        out = np.array(x, dtype=dtype)
        out[norm] = values
        return out
    return _apply(x, norm, values, "set")


def at_multiply(x: Any, idx: Any, values: Any) -> Any:
    """``x`` with the entries at ``idx`` multiplied by ``values``; repeated indices multiply
    in turn, like ``np.multiply.at``. (With an index holding integer arrays traced by jit, the
    derivative is right to first order only.)

    Example:
        >>> at_multiply(np.ones(3), np.array([0, 0]), np.array([2.0, 3.0]))
        array([6., 1., 1.])
    """
    return _combine_at(x, idx, values, np.multiply)


def at_min(x: Any, idx: Any, values: Any) -> Any:
    """``x`` with the entries at ``idx`` replaced by ``minimum(x[idx], values)``, like
    ``np.minimum.at``; at a tie the derivative is shared evenly, as for ``minimum``.

    Example:
        >>> at_min(np.zeros(3), 1, -2.0)
        array([ 0., -2.,  0.])
    """
    return _combine_at(x, idx, values, np.minimum)


def at_max(x: Any, idx: Any, values: Any) -> Any:
    """``x`` with the entries at ``idx`` replaced by ``maximum(x[idx], values)``, like
    ``np.maximum.at``; at a tie the derivative is shared evenly, as for ``maximum``.

    Example:
        >>> at_max(np.zeros(3), 1, 2.0)
        array([0., 2., 0.])
    """
    return _combine_at(x, idx, values, np.maximum)


# ----------------------------------------------------------------------------------------------
# Gathers with NumPy names


@implements(np.take)
def take(a: Any, indices: Any, axis: int | None = None, out: Any = None,
         mode: str = "raise") -> Any:
    """``np.take``: entries of ``a`` at ``indices`` along ``axis`` (of the flattened array
    when ``axis`` is None). Entries taken more than once accumulate their cotangents.

    Example:
        >>> take(np.array([[1.0, 2.0], [3.0, 4.0]]), [1, 1], axis=1)
        array([[2., 2.],
               [4., 4.]])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        if not isinstance(indices, Tracer):
            return np.take(a, indices, axis=axis, out=out, mode=mode)
        a = np.asarray(a)  # a constant gathered at traced indices
    if out is not None:
        raise TypeError("take(..., out=...) writes into an array in place, which traced values "
                        "do not support; use the returned value instead")
    if axis is None:
        a = bind(P.reshape, a, shape=(a.size,)) if a.ndim != 1 else a
        axis = 0
    axis = normalize_axis_index(axis, a.ndim)
    idx = _index_array(indices, traced_ok=True)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"take: indices must be integers, got dtype {idx.dtype}")
    n = a.shape[axis]
    if mode in ("wrap", "clip") and n == 0 and idx.size:
        raise IndexError("cannot do a non-empty take from an empty axes.")
    # (the same NumPy functions for traced indices: they dispatch to diffprog.numpy)
    if mode == "wrap":
        idx = np.mod(idx, n)
    elif mode == "clip":
        idx = np.clip(idx, 0, max(n - 1, 0))
    elif mode != "raise":
        raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    return getitem(a, (slice(None),) * axis + (idx,))


@implements(np.take_along_axis)
def take_along_axis(arr: Any, indices: Any, axis: int | None = -1) -> Any:
    """``np.take_along_axis``: ``arr`` gathered at ``indices`` along ``axis``, the other axes
    matched by broadcasting (``indices`` usually comes from ``argsort``/``argmax`` with
    ``keepdims``). Entries gathered more than once accumulate their cotangents.

    Example:
        >>> take_along_axis(np.array([[3.0, 1.0], [0.0, 2.0]]), np.array([[1], [0]]), axis=1)
        array([[1.],
               [0.]])
    """
    if not isinstance(arr, Tracer) and not isinstance(arr := as_operand(arr), Tracer):
        if not isinstance(indices, Tracer):
            return np.take_along_axis(arr, indices, axis=axis)
        arr = np.asarray(arr)  # a constant gathered at traced indices
    idx = _index_array(indices, traced_ok=True)
    if axis is None:
        if idx.ndim != 1:
            raise ValueError("when axis=None, `indices` must have a single dimension.")
        arr = bind(P.reshape, arr, shape=(arr.size,)) if arr.ndim != 1 else arr
        axis = 0
    if idx.dtype.kind not in "iu":
        raise IndexError("`indices` must be an integer array")
    if idx.ndim != arr.ndim:
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    axis = normalize_axis_index(axis, arr.ndim)
    fancy = []
    for dim, n in enumerate(arr.shape):
        if dim == axis:
            fancy.append(idx)
        else:
            shape = [1] * arr.ndim
            shape[dim] = n
            fancy.append(np.arange(n).reshape(shape))
    return getitem(arr, tuple(fancy))


# ----------------------------------------------------------------------------------------------
# Index-valued functions: integer results, no derivative


@implements(np.nonzero)
def nonzero(a: Any) -> tuple:
    """``np.nonzero``: the indices of the nonzero entries, one integer array per axis. They are
    piecewise constant in ``a``, so they carry no derivative."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.nonzero(a)
    return bind(P.nonzero, a)


@implements(np.argwhere)
def argwhere(a: Any) -> np.ndarray:
    """``np.argwhere``: the indices of the nonzero entries as rows (no derivative)."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.argwhere(a)
    if a.ndim == 0:
        return argwhere(bind(P.reshape, a, shape=(1,)))[:, :0]
    return np.stack(bind(P.nonzero, a), axis=-1)


@implements(np.flatnonzero)
def flatnonzero(a: Any) -> np.ndarray:
    """``np.flatnonzero``: the indices of the nonzero entries of the flattened ``a`` (no
    derivative)."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.flatnonzero(a)
    return bind(P.nonzero, bind(P.reshape, a, shape=(a.size,)))[0]
