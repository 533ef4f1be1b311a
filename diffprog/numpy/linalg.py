"""``diffprog.numpy.linalg``: NumPy's linear algebra namespace on traced values.

Example:
    >>> import numpy as np, diffprog.numpy as dnp
    >>> dnp.linalg.__name__
    'diffprog.numpy.linalg'
"""

from __future__ import annotations

__all__: list[str] = []
