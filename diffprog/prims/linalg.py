"""Linear algebra primitives.

``matmul`` takes operands of rank >= 2 whose traced batch dimensions already equal the output's
(diffprog.numpy promotes 1-D operands and broadcasts batches), so its rules are the textbook
ones: d(x @ y) = dx @ y + x @ dy, and the cotangents ct @ y^T and x^T @ ct.
"""

from __future__ import annotations

import numpy as np

from ..core import Primitive
from .shape import transpose

__all__ = ["matmul", "mT"]


def mT(a):
    """Swap the last two axes (the matrix transpose of a stack of matrices)."""
    n = len(a.shape)
    return transpose(a, perm=tuple(range(n - 2)) + (n - 1, n - 2))


matmul = Primitive(
    "matmul", np.matmul,
    jvp=(lambda t, out, x, y: matmul(t, y), lambda t, out, x, y: matmul(x, t)),
    vjp=(lambda ct, out, x, y: matmul(ct, mT(y)), lambda ct, out, x, y: matmul(mT(x), ct)))
