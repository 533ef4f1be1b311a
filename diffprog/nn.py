"""``diffprog.nn``: numerically stable building blocks for neural networks.

Example:
    >>> import diffprog as dp
    >>> dp.nn.__name__
    'diffprog.nn'
"""

from __future__ import annotations

__all__: list[str] = []
