"""Linear algebra: matmul and its relatives."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import prims as P
from ..core import Tracer, bind
from ._core import _shape, _traced, implements
from ._elementwise import astype, multiply
from ._shapes import broadcast_to, reshape

__all__ = ["matmul", "dot"]


# ----------------------------------------------------------------------------

@implements(np.matmul)
def matmul(x1: Any, x2: Any) -> Any:
    """Matrix product with NumPy's rules for 1-D operands and batch broadcasting."""
    if not _traced(x1, x2):
        return np.matmul(x1, x2)
    a = x1 if isinstance(x1, Tracer) else np.asarray(x1)
    b = x2 if isinstance(x2, Tracer) else np.asarray(x2)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: input operand does not have enough dimensions (scalars are "
                         "not allowed; use * for scaling)")
    vec_a, vec_b = a.ndim == 1, b.ndim == 1
    if vec_a:
        a = reshape(a, (1, a.shape[0]))
    if vec_b:
        b = reshape(b, (b.shape[0], 1))
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {_shape(x1)} and {_shape(x2)} are not aligned: "
                         f"{a.shape[-1]} (last axis of x1) != {b.shape[-2]} (second-to-last "
                         "axis of x2)")
    if a.dtype != b.dtype:
        a, b = (astype(v, np.result_type(a.dtype, b.dtype)) for v in (a, b))
    if a.ndim > 2 and b.ndim == 2:
        # A stack of matrices times one matrix is one big product: no batch to broadcast.
        lead = a.shape[:-1]
        out = bind(P.matmul, reshape(a, (-1, a.shape[-1])), b)
        out = reshape(out, lead + (b.shape[-1],))
    else:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if isinstance(a, Tracer) and a.shape[:-2] != batch:
            a = broadcast_to(a, batch + a.shape[-2:])
        if isinstance(b, Tracer) and b.shape[:-2] != batch:
            b = broadcast_to(b, batch + b.shape[-2:])
        out = bind(P.matmul, a, b)
    if vec_a and vec_b:
        return reshape(out, out.shape[:-2])
    if vec_a:
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if vec_b:
        return reshape(out, out.shape[:-1])
    return out


@implements(np.dot)
def dot(a: Any, b: Any) -> Any:
    """``np.dot`` for operands of rank at most 2 (scalars multiply)."""
    if not _traced(a, b):
        return np.dot(a, b)
    if len(_shape(a)) == 0 or len(_shape(b)) == 0:
        return multiply(a, b)
    if len(_shape(a)) > 2 or len(_shape(b)) > 2:
        raise NotImplementedError("dot of arrays with more than 2 dimensions is not supported "
                                  "on traced values yet; use matmul or einsum")
    return matmul(a, b)


