"""Shape primitives: reshape, broadcast_to, transpose.

All are linear, so each jvp applies the primitive itself to the tangent, and each vjp is the
transposed movement (reshape back, sum over broadcast axes, inverse permutation, scatter).
"""

from __future__ import annotations

import numpy as np

from ..core import Primitive
from . import reduce as rd

__all__ = ["reshape", "broadcast_to", "transpose"]


reshape = Primitive(
    "reshape", lambda x, shape: x.reshape(shape),
    jvp=(lambda t, out, x, shape: reshape(t, shape=shape),),
    vjp=(lambda ct, out, x, shape: reshape(ct, shape=x.shape),))


def _unbroadcast(ct, x, shape):
    """Sum ``ct`` (of ``shape``) over the axes along which ``x`` was broadcast."""
    lead = len(shape) - len(x.shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(x.shape) if d == 1 and shape[lead + i] != 1)
    if axes:
        ct = rd.reduce_sum(ct, axis=axes, keepdims=False)
    return reshape(ct, shape=x.shape) if ct.shape != x.shape else ct


broadcast_to = Primitive(
    "broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
    jvp=(lambda t, out, x, shape: broadcast_to(t, shape=shape),),
    vjp=(lambda ct, out, x, shape: _unbroadcast(ct, x, shape),))


def _inverse(perm: tuple) -> tuple:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


transpose = Primitive(
    "transpose", lambda x, perm: np.transpose(x, perm),
    jvp=(lambda t, out, x, perm: transpose(t, perm=perm),),
    vjp=(lambda ct, out, x, perm: transpose(ct, perm=_inverse(perm)),))
