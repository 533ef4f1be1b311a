"""Shape primitives: reshape, broadcast_to and its transpose reduce_sum, transpose,
concatenate, split.

All are linear, so each is declared by its transpose alone (``linear=True``): the jvp applies
the primitive itself to the tangent, and the vjp is the transposed movement: reshape back, sum
over broadcast axes (broadcasting back over summed ones), inverse permutation, and the pieces of
``concatenate`` and ``split``, which are each other's transposes. The transposes read only the
shapes of the operands, never their values, so the reverse trace keeps no operand alive.
"""

from __future__ import annotations

import math

import numpy as np

from ..core import Primitive, ShapedArray
from .index import getitem

__all__ = ["reshape", "broadcast_to", "reduce_sum", "transpose", "concatenate", "split",
           "batch_size", "to_front", "bring_front", "axis_batch_rule"]


# -- batching helpers (vmap): the rules of every family use these ----------------------------

def batch_size(args: tuple, dims: tuple) -> int:
    """The size of the batch axis, from the first batched argument."""
    return next(np.shape(a)[d] for a, d in zip(args, dims) if d is not None)


def to_front(x, d):
    """``x`` with its axis ``d`` moved to position 0 (a transpose; none when ``d`` is 0)."""
    if d == 0:
        return x
    n = len(np.shape(x))
    return transpose(x, perm=(d,) + tuple(i for i in range(n) if i != d))


def bring_front(x, d, size):
    """``x`` with a batch axis of ``size`` at position 0: moved there if ``x`` is batched
    (``d`` an int), broadcast along a new leading axis if not (``d`` None)."""
    if d is None:
        return broadcast_to(x, shape=(size,) + tuple(np.shape(x)))
    return to_front(x, d)


def _shift(v):
    if v is None:
        return None
    if isinstance(v, tuple):
        return tuple(i + 1 for i in v)
    return v + 1


def axis_batch_rule(prim_ref, *names, multiple_results=False):
    """The batching rule of a primitive whose operands all have the per-example shape of its
    axes' params ``names`` (ints or tuples of non-negative ints): the batch axis goes to the
    front of every operand and the axes shift by one. ``prim_ref()`` gives the primitive (it
    is declared after its rule)."""
    def rule(args, dims, **params):
        size = batch_size(args, dims)
        ops = [a if d is None and isinstance(a, (bool, int, float, complex))
               else bring_front(a, d, size) for a, d in zip(args, dims)]
        for n in names:
            params[n] = _shift(params[n])
        out = prim_ref()(*ops, **params)
        return out, ((0,) * len(out) if multiple_results else 0)
    return rule


def _same_dtype(x, shape):
    """Shape rule of a primitive that only changes the shape (for jit)."""
    return ShapedArray(shape, x.dtype)


def _reshape_batch(args, dims, shape):
    x = to_front(args[0], dims[0])
    return reshape(x, shape=(x.shape[0],) + tuple(shape)), 0


def _reshape_program(avals, out, shape):
    """The whole-program tier's plan (see ``Primitive.program_form``): the same elements in
    the same (C) order."""
    return ("same",)


reshape = Primitive(
    "reshape", lambda x, shape: x.reshape(shape), abstract=_same_dtype, collapse=True,
    program_form=_reshape_program,
    batch=_reshape_batch,
    linear=True, transpose=(lambda ct, out, x, shape: reshape(ct, shape=x.shape),))


def _kept_shape(shape: tuple, axis: tuple) -> tuple:
    return tuple(1 if i in axis else d for i, d in enumerate(shape))


# reduce_sum lives with broadcast_to: each is the other's transpose.
def _sum_impl(x, axis, keepdims):
    return np.add.reduce(x, axis=axis, keepdims=keepdims)


def _sum_transpose(ct, x, axis, keepdims):
    """Broadcast ``ct`` back over the summed axes (restored as size 1 first)."""
    kept = ct if keepdims else reshape(ct, shape=_kept_shape(x.shape, axis))
    return broadcast_to(kept, shape=x.shape)


def _sum_program(avals, out, axis, keepdims):
    """Each element added into the output position its index keeps (the summed axes at 0)."""
    shape = avals[0].shape
    axis = tuple(a % len(shape) for a in axis) if shape else ()
    kept = _kept_shape(shape, axis)
    where = np.broadcast_to(np.arange(math.prod(kept)).reshape(kept), shape)
    return ("scatter", np.ascontiguousarray(where, dtype=np.int64).reshape(-1))


reduce_sum = Primitive(
    "reduce_sum", _sum_impl, batch=axis_batch_rule(lambda: reduce_sum, "axis"),
    program_form=_sum_program,
    linear=True,
    transpose=(lambda ct, out, x, axis, keepdims: _sum_transpose(ct, x, axis, keepdims),))


def _unbroadcast(ct, x, shape):
    """Sum ``ct`` (of ``shape``) over the axes along which ``x`` was broadcast."""
    lead = len(shape) - len(x.shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(x.shape) if d == 1 and shape[lead + i] != 1)
    if axes:
        ct = reduce_sum(ct, axis=axes, keepdims=False)
    return reshape(ct, shape=x.shape) if ct.shape != x.shape else ct


def _broadcast_batch(args, dims, shape):
    x = to_front(args[0], dims[0])
    size, inner = x.shape[0], tuple(x.shape[1:])
    lead = len(shape) - len(inner)
    if lead:  # NumPy's broadcasting adds axes on the left of the example, not of the batch
        x = reshape(x, shape=(size,) + (1,) * lead + inner)
    return broadcast_to(x, shape=(size,) + tuple(shape)), 0


# Its scalar form is the identity: a fused kernel reads the input with broadcast indexing.
broadcast_to = Primitive(
    "broadcast_to", lambda x, shape: np.broadcast_to(x, shape), abstract=_same_dtype,
    collapse=True, scalar=lambda x, shape: x, batch=_broadcast_batch,
    linear=True, transpose=(lambda ct, out, x, shape: _unbroadcast(ct, x, shape),))


def _inverse(perm: tuple) -> tuple:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def _transpose_batch(args, dims, perm):
    return transpose(to_front(args[0], dims[0]), perm=(0,) + tuple(p + 1 for p in perm)), 0


def _transpose_program(avals, out, perm):
    shape = avals[0].shape
    where = np.transpose(np.arange(math.prod(shape)).reshape(shape), perm)
    return ("gather", np.ascontiguousarray(where, dtype=np.int64).reshape(-1))


transpose = Primitive(
    "transpose", lambda x, perm: np.transpose(x, perm), batch=_transpose_batch,
    program_form=_transpose_program,
    linear=True, transpose=(lambda ct, out, x, perm: transpose(ct, perm=_inverse(perm)),))


# ``concatenate(*xs, axis)`` joins operands of one dtype and rank along ``axis`` (normalized to
# a non-negative int by diffprog.numpy). The transpose for operand k is the cotangent's block at
# that operand's offset (a basic slice, so a view); the jvp fills a constant operand's block with
# zeros, keeping the output's layout.
def _concatenate_impl(*xs, axis):
    return np.concatenate(xs, axis=axis)


def _block(k, ct, out, *xs, axis):
    start = sum(x.shape[axis] for x in xs[:k])
    idx = ((None, None, None),) * axis + ((start, start + xs[k].shape[axis], None),)
    return getitem(ct, idx=idx)


def _concatenate_program(avals, out, axis):
    """A gather from the operands' elements laid end to end."""
    starts = np.cumsum([0] + [math.prod(a.shape) for a in avals])
    pieces = [np.arange(s, s + math.prod(a.shape)).reshape(a.shape)
              for s, a in zip(starts, avals)]
    where = np.concatenate(pieces, axis=axis)
    return ("gather", np.ascontiguousarray(where, dtype=np.int64).reshape(-1))


concatenate = Primitive("concatenate", _concatenate_impl, linear=True, transpose=_block,
                        program_form=_concatenate_program,
                        batch=axis_batch_rule(lambda: concatenate, "axis"))


# ``split(x, indices, axis)``: the pieces of ``x`` between the increasing offsets ``indices``
# (a tuple of ints within the axis) along ``axis``; one result per piece.
def _split_impl(x, indices, axis):
    return tuple(np.split(x, indices, axis=axis))


split = Primitive(
    "split", _split_impl, multiple_results=True, linear=True,
    batch=axis_batch_rule(lambda: split, "axis", multiple_results=True),
    # Unused pieces arrive as zeros, so the cotangent is the pieces joined back.
    transpose=(lambda ct, out, x, indices, axis: concatenate(*ct, axis=axis),))
