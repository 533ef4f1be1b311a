"""Shape primitives: reshape, broadcast_to and its transpose reduce_sum, transpose,
concatenate, split.

All are linear, so each is declared by its transpose alone (``linear=True``): the jvp applies
the primitive itself to the tangent, and the vjp is the transposed movement: reshape back, sum
over broadcast axes (broadcasting back over summed ones), inverse permutation, and the pieces of
``concatenate`` and ``split``, which are each other's transposes. The transposes read only the
shapes of the operands, never their values, so the reverse trace keeps no operand alive.
"""

from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray
from .index import getitem

__all__ = ["reshape", "broadcast_to", "reduce_sum", "transpose", "concatenate", "split"]


def _same_dtype(x, shape):
    """Shape rule of a primitive that only changes the shape (for jit)."""
    return ShapedArray(shape, x.dtype)


reshape = Primitive(
    "reshape", lambda x, shape: x.reshape(shape), abstract=_same_dtype, collapse=True,
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


reduce_sum = Primitive(
    "reduce_sum", _sum_impl,
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


# Its scalar form is the identity: a fused kernel reads the input with broadcast indexing.
broadcast_to = Primitive(
    "broadcast_to", lambda x, shape: np.broadcast_to(x, shape), abstract=_same_dtype,
    collapse=True, scalar=lambda x, shape: x,
    linear=True, transpose=(lambda ct, out, x, shape: _unbroadcast(ct, x, shape),))


def _inverse(perm: tuple) -> tuple:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


transpose = Primitive(
    "transpose", lambda x, perm: np.transpose(x, perm),
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


concatenate = Primitive("concatenate", _concatenate_impl, linear=True, transpose=_block)


# ``split(x, indices, axis)``: the pieces of ``x`` between the increasing offsets ``indices``
# (a tuple of ints within the axis) along ``axis``; one result per piece.
def _split_impl(x, indices, axis):
    return tuple(np.split(x, indices, axis=axis))


split = Primitive(
    "split", _split_impl, multiple_results=True, linear=True,
    # Unused pieces arrive as zeros, so the cotangent is the pieces joined back.
    transpose=(lambda ct, out, x, indices, axis: concatenate(*ct, axis=axis),))
