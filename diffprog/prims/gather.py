"""Gathers and scatters whose integer index arrays are operands, not params.

``getitem`` and ``scatter_add`` (:mod:`.index`) keep the whole index in their params, so its
values must be known when the primitive is bound. Under jit an integer array argument (labels,
index arrays) is abstract: only its shape and dtype are known. These primitives take such
arrays as operands instead, as JAX's gather and scatter do:

* ``gather(x, *indices, idx)``: ``x[index]``, where ``idx`` is NumPy's index in the encoded
  spelling of :func:`.index.encode_index` with each integer array replaced by ``Slot(k)``,
  standing for ``indices[k]``. Linear in ``x`` alone: its jvp is the same gather of the tangent
  and its transpose is ``scatter_add_at``.
* ``scatter_add_at(v, *indices, shape, idx)``: ``zeros(shape)`` with ``v`` added at the index
  (``np.add.at``: repeated positions accumulate). Linear in ``v``; its transpose is ``gather``.
* ``scatter_apply(x, v, *indices, idx, op)``: ``x`` with ``v`` written at the index by
  ``op`` (``"add"``, ``"set"``, ``"multiply"``, ``"minimum"``, ``"maximum"``), the writes to a
  repeated position applied in NumPy's order (``ufunc.at``; for ``"set"`` the last write
  wins). Its derivative is a weighted sum, ``dout = wx * dx + scatter_add_at(wv * dv)``, with
  the piecewise constant weights of ``scatter_apply_weights``; they equal what the
  write-by-write formulation of :mod:`diffprog.numpy._indexing` gives on concrete indices
  (ties share evenly, like ``minimum``; overwritten values get zero).

The index operands are integers: they have no derivative. Negative indices count from the end,
as in NumPy. Out-of-bounds indices raise NumPy's ``IndexError`` when the program runs (JAX
clips or drops them instead; here eager and jit agree).

These primitives are not registered by name (gather and scatter_add_at are bound only with
traced integer indices, under jit; scatter_apply also by every ``.at[...]`` update of a traced
value); tests/test_jit_gather.py checks them against eager indexing.

Example:
    >>> import numpy as np
    >>> gather(np.array([1.0, 2.0, 3.0]), np.array([2, -1, 0]), idx=(Slot(0),))
    array([3., 3., 1.])
    >>> scatter_add_at(np.ones(2), np.array([1, 1]), shape=(3,), idx=(Slot(0),))
    array([0., 2., 0.])
"""

from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray
from . import elementwise as ew
from .index import batch_position, index_layout, move_axis

__all__ = ["Slot", "gather", "scatter_add_at", "scatter_apply", "scatter_apply_weights",
           "fill_index", "gather_shape"]


class Slot:
    """The place of the ``k``-th index operand in an encoded index (hashable, so an index
    made of slots, ints, slices, None and Ellipsis is a valid cache key)."""

    __slots__ = ("k",)

    def __init__(self, k: int) -> None:
        self.k = k

    def __eq__(self, other: object) -> bool:
        return type(other) is Slot and other.k == self.k

    def __hash__(self) -> int:
        return hash(("Slot", self.k))

    def __repr__(self) -> str:
        return f"Slot({self.k})"


def fill_index(idx: tuple, indices: tuple) -> tuple:
    """The NumPy index that ``idx`` encodes, with ``indices[k]`` in place of ``Slot(k)``.

    Example:
        >>> fill_index((Slot(0), (None, 2, None)), (np.array([1, 0]),))
        (array([1, 0]), slice(None, 2, None))
    """
    return tuple(indices[i.k] if type(i) is Slot else slice(*i) if type(i) is tuple else i
                 for i in idx)


def gather_shape(shape: tuple, idx: tuple, index_shapes: tuple) -> tuple:
    """The shape of ``x[index]`` for ``x`` of ``shape`` and index operands of ``index_shapes``
    (NumPy's rules, NumPy's errors: no values are needed, only a boolean result is allocated).

    Example:
        >>> gather_shape((5, 4, 3), ((None, None, None), Slot(0)), ((2, 6),))
        (5, 2, 6, 3)
    """
    dummy = np.broadcast_to(np.zeros((), np.bool_), shape)
    zeros = tuple(np.broadcast_to(np.zeros((), np.intp), s) for s in index_shapes)
    return dummy[fill_index(idx, zeros)].shape


def _gather_impl(x, *indices, idx):
    return np.asarray(x)[fill_index(idx, indices)]


def _gather_abstract(x, *indices, idx):
    return ShapedArray(gather_shape(tuple(x.shape), idx, tuple(tuple(i.shape) for i in indices)),
                       x.dtype)


def _scatter_add_impl(v, *indices, shape, idx):
    out = np.zeros(shape, dtype=np.result_type(v))
    np.add.at(out, fill_index(idx, indices), v)  # repeated positions accumulate
    return out


def _gather_transpose(k, ct, out, x, *indices, idx):
    return scatter_add_at(ct, *indices, shape=tuple(x.shape), idx=idx)


def _scatter_add_transpose(k, ct, out, v, *indices, shape, idx):
    return gather(ct, *indices, idx=idx)


# -- batching (vmap) ---------------------------------------------------------------------------
#
# With unbatched index arrays the batch axis of ``x`` is one more full slice in front of the
# index. With batched index arrays each example must read its own row: an ``arange`` over the
# batch joins the index arrays as one more advanced index in front, and the result's axes are
# then permuted into the per-example layout NumPy gives (the advanced axes stay in place when
# the advanced entries are adjacent, and go first otherwise).

_FULL = (None, None, None)




def _batched_indices(args_idx, dims_idx, idx, x_shape, size):
    """The index operands and encoded index reading row ``b`` of each index array for example
    ``b``, and the permutation from the result's axes to ``(batch,) + per-example layout``."""
    from .shape import bring_front, reshape
    shapes = tuple(tuple(np.shape(a)) if d is None else
                   tuple(s for j, s in enumerate(np.shape(a)) if j != d)
                   for a, d in zip(args_idx, dims_idx))
    S, adjacent, pre = index_layout(idx, len(x_shape), shapes)
    r = len(S)
    ops = []
    for a, d, sh in zip(args_idx, dims_idx, shapes):
        a = bring_front(a, d, size)
        ops.append(reshape(a, shape=(size,) + (1,) * (r - len(sh)) + sh))
    ops.append(np.arange(size).reshape((size,) + (1,) * r))
    new_idx = (Slot(len(args_idx)),) + tuple(
        i.reshape((1,) * (r + 1 - i.ndim) + i.shape) if isinstance(i, np.ndarray) else i
        for i in idx)
    target = gather_shape((size,) + tuple(x_shape), new_idx,
                          tuple(tuple(np.shape(o)) for o in ops))
    n_out = len(target)
    if adjacent and pre:  # the per-example layout has `pre` axes before the advanced ones
        perm = (0,) + tuple(range(1 + r, 1 + r + pre)) + tuple(range(1, 1 + r)) + tuple(
            range(1 + r + pre, n_out))
    else:
        perm = tuple(range(n_out))
    return ops, new_idx, perm


def _inverse_perm(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _gather_batch(args, dims, idx):
    from .shape import batch_size, bring_front, to_front, transpose
    x, indices = args[0], args[1:]
    size = batch_size(args, dims)
    x_shape = tuple(s for j, s in enumerate(np.shape(x)) if j != dims[0])
    if all(d is None for d in dims[1:]):
        shapes = tuple(tuple(np.shape(i)) for i in indices)
        return (gather(to_front(x, dims[0]), *indices, idx=(_FULL,) + idx),
                batch_position(idx, len(x_shape), shapes))
    ops, new_idx, perm = _batched_indices(indices, dims[1:], idx, x_shape, size)
    out = gather(bring_front(x, dims[0], size), *ops, idx=new_idx)
    return (out if perm == tuple(range(len(perm))) else transpose(out, perm=perm)), 0


def _updates_batch(v, dv, x_shape, idx, index_ops, index_dims, size):
    """The update ``v`` laid out for the batched index, with the batched index itself:
    ``(v, index operands, encoded index)``; ``x_shape`` is the per-example shape of x."""
    from .shape import bring_front, broadcast_to, reshape, transpose
    ndim = len(x_shape)
    v = bring_front(v, dv, size)
    vs = tuple(v.shape[1:])
    if all(d is None for d in index_dims):
        shapes = tuple(tuple(np.shape(i)) for i in index_ops)
        target = gather_shape(x_shape, idx, shapes)
        if vs != target:
            v = broadcast_to(reshape(v, shape=(size,) + (1,) * (len(target) - len(vs)) + vs),
                             shape=(size,) + target)
        return move_axis(v, 0, batch_position(idx, ndim, shapes)), list(index_ops), \
            (_FULL,) + idx
    ops, new_idx, perm = _batched_indices(index_ops, index_dims, idx, x_shape, size)
    target = gather_shape((size,) + tuple(x_shape), new_idx,
                          tuple(tuple(np.shape(o)) for o in ops))
    full = tuple(target[p] for p in perm)  # (size,) + the per-example layout
    if tuple(v.shape) != full:
        v = broadcast_to(reshape(v, shape=(size,) + (1,) * (len(full) - 1 - len(vs)) + vs),
                         shape=full)
    inv = _inverse_perm(perm)
    return (v if perm == tuple(range(len(perm))) else transpose(v, perm=inv)), ops, new_idx


def _scatter_add_at_batch(args, dims, shape, idx):
    from .shape import batch_size
    size = batch_size(args, dims)
    v, ops, new_idx = _updates_batch(args[0], dims[0], tuple(shape), idx, args[1:], dims[1:],
                                     size)
    return scatter_add_at(v, *ops, shape=(size,) + tuple(shape), idx=new_idx), 0


gather = Primitive(
    "gather", _gather_impl, linear=(0,), transpose=_gather_transpose, abstract=_gather_abstract,
    register=False, batch=_gather_batch)

scatter_add_at = Primitive(
    "scatter_add_at", _scatter_add_impl, linear=(0,), transpose=_scatter_add_transpose,
    abstract=lambda v, *indices, shape, idx: ShapedArray(shape, v.dtype), register=False,
    batch=_scatter_add_at_batch)


# ----------------------------------------------------------------------------------------------
# Writes other than add: set, multiply, minimum, maximum


def _scatter_apply_impl(x, v, *indices, idx, op):
    out = np.array(x, copy=True)
    index = fill_index(idx, indices)
    if op == "set":
        out[index] = v  # with repeated positions the last write wins
    else:
        getattr(np, op).at(out, index, v)
    return out


def _local_weights(op: str, r: np.ndarray, v: np.ndarray) -> tuple:
    """d op(r, v) = a dr + b dv for one write, as ``minimum``'s and ``multiply``'s rules say."""
    if op == "set":
        return np.zeros_like(r), np.ones_like(v)
    if op == "add":
        return np.ones_like(r), np.ones_like(v)
    if op == "multiply":
        return v, r
    first = np.less if op == "minimum" else np.greater
    tie = 0.5 * (r == v)
    return first(r, v) + tie, first(v, r) + tie


def _scatter_apply_weights_impl(x, v, *indices, idx, op):
    """``(wx, wv)``: the derivative of ``scatter_apply`` in ``x`` (shape of x) and in ``v``
    (shape of the index's selection), composing the writes in NumPy's order."""
    x = np.asarray(x)
    dtype = x.dtype
    v = np.asarray(v, dtype=dtype)
    position = np.arange(x.size).reshape(x.shape)[fill_index(idx, indices)]
    target = position.shape
    flat = position.ravel()
    values = np.broadcast_to(v, target).ravel()
    n = flat.size
    # rank[i]: how many earlier writes go to the same position as write i; writes of one rank
    # touch distinct positions, so each rank is one vectorized step (as in the eager rounds)
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if n else np.zeros(0, int)
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.empty(n, dtype=np.intp)
    rank[order] = np.arange(n) - group_start
    rounds = [np.flatnonzero(rank == k) for k in range(int(rank.max(initial=-1)) + 1)]
    current = x.ravel().copy()
    carry = np.empty(n, dtype=dtype)  # d(after write i) / d(before write i)
    local = np.empty(n, dtype=dtype)  # d(after write i) / d v_i
    with np.errstate(all="ignore"):
        for entries in rounds:
            p = flat[entries]
            a, b = _local_weights(op, current[p], values[entries])
            carry[entries], local[entries] = a, b
            if op == "set":
                current[p] = values[entries]
            else:
                current[p] = getattr(np, op)(current[p], values[entries])
        # backwards through the writes: wx is the product of the carries at each position
        wx = np.ones(x.size, dtype=dtype)
        wv = np.empty(n, dtype=dtype)
        for entries in reversed(rounds):
            p = flat[entries]
            wv[entries] = local[entries] * wx[p]
            wx[p] = wx[p] * carry[entries]
    return wx.reshape(x.shape), wv.reshape(target)


def _scatter_apply_weights_abstract(x, v, *indices, idx, op):
    target = gather_shape(tuple(x.shape), idx, tuple(tuple(i.shape) for i in indices))
    return ShapedArray(x.shape, x.dtype), ShapedArray(target, x.dtype)


# The weights are piecewise constant in x and v: no derivative (second derivatives are zero,
# as for minimum and where).
scatter_apply_weights = Primitive(
    "scatter_apply_weights", _scatter_apply_weights_impl, differentiable=False,
    multiple_results=True, abstract=_scatter_apply_weights_abstract, register=False,
    batch=lambda args, dims, idx, op: _scatter_apply_weights_batch(args, dims, idx, op))


def _scatter_apply_jvp(tangents, out, x, v, *indices, idx, op):
    tx, tv = tangents[0], tangents[1]
    if tx is None and tv is None:
        return None
    if op == "add":  # linear: the weights are ones
        wx = wv = None
    else:
        wx, wv = scatter_apply_weights(x, v, *indices, idx=idx, op=op)
    total = None
    if tx is not None:
        total = tx if wx is None else _weigh(op, wx, tx)
    if tv is not None:
        tv = tv if wv is None else _weigh(op, wv, tv)
        part = scatter_add_at(tv, *indices, shape=tuple(x.shape), idx=idx)
        total = part if total is None else ew.add(total, part)
    return total


def _scatter_apply_vjp(ct, out, x, v, *indices, idx, op):
    ct_v = gather(ct, *indices, idx=idx)
    if op == "add":
        return (ct, ct_v) + (None,) * len(indices)
    wx, wv = scatter_apply_weights(x, v, *indices, idx=idx, op=op)
    return (_weigh(op, wx, ct), _weigh(op, wv, ct_v)) + (None,) * len(indices)


def _weigh(op, w, t):
    # set: the weights are 0 or 1 and select, as where does (an inf or nan overwritten
    # gets 0, not nan); the others multiply, as minimum's and multiply's rules do
    if op == "set":
        return ew.where(ew.ne(w, 0), t, 0.0)
    return ew.mul(w, t)


def _scatter_apply_abstract(x, v, *indices, idx, op):
    return ShapedArray(x.shape, x.dtype)


def _scatter_apply_batch(args, dims, idx, op):
    from .shape import batch_size, bring_front
    size = batch_size(args, dims)
    x = bring_front(args[0], dims[0], size)
    v, ops, new_idx = _updates_batch(args[1], dims[1], tuple(x.shape[1:]), idx, args[2:],
                                     dims[2:], size)
    return scatter_apply(x, v, *ops, idx=new_idx, op=op), 0


def _scatter_apply_weights_batch(args, dims, idx, op):
    from .shape import batch_size, bring_front
    size = batch_size(args, dims)
    x = bring_front(args[0], dims[0], size)
    x_shape = tuple(x.shape[1:])
    v, ops, new_idx = _updates_batch(args[1], dims[1], x_shape, idx, args[2:], dims[2:], size)
    wx, wv = scatter_apply_weights(x, v, *ops, idx=new_idx, op=op)
    # wv has v's batched layout: back to (batch,) + the per-example selection's shape
    if all(d is None for d in dims[2:]):
        shapes = tuple(tuple(np.shape(i)) for i in args[2:])
        return (wx, wv), (0, batch_position(idx, len(x_shape), shapes))
    _, _, perm = _batched_indices(args[2:], dims[2:], idx, x_shape, size)
    from .shape import transpose
    return (wx, wv if perm == tuple(range(len(perm))) else transpose(wv, perm=perm)), (0, 0)


scatter_apply = Primitive(
    "scatter_apply", _scatter_apply_impl, jvp=_scatter_apply_jvp, vjp=_scatter_apply_vjp,
    abstract=_scatter_apply_abstract, register=False, batch=_scatter_apply_batch)

