"""Indexing primitives: gather (``getitem``) and its transpose, ``scatter_add``.

Both are linear: the jvp applies the primitive to the tangent, and each is the other's vjp.
"""

from __future__ import annotations

import numpy as np

from ..core import Primitive

__all__ = ["getitem", "scatter_add"]


def _is_basic(idx: tuple) -> bool:
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in idx)


def _scatter_add_impl(v, shape, idx):
    out = np.zeros(shape, dtype=np.result_type(v))
    if _is_basic(idx):
        out[idx] = v  # a basic index selects each position at most once
    else:
        np.add.at(out, idx, v)  # repeated integer indices accumulate
    return out


# ``idx`` is a tuple of ints, slices, None, Ellipsis and integer arrays (normalized by
# diffprog.numpy); boolean masks arrive as integer arrays from nonzero().
getitem = Primitive(
    "getitem", lambda x, idx: x[idx],
    jvp=(lambda t, out, x, idx: getitem(t, idx=idx),),
    vjp=(lambda ct, out, x, idx: scatter_add(ct, shape=x.shape, idx=idx),))

# zeros(shape) with ``v`` added at ``idx``: the transpose of getitem.
scatter_add = Primitive(
    "scatter_add", _scatter_add_impl,
    jvp=(lambda t, out, v, shape, idx: scatter_add(t, shape=shape, idx=idx),),
    vjp=(lambda ct, out, v, shape, idx: getitem(ct, idx=idx),))
