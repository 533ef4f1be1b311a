"""Global switches. ``diffprog.config.debug_nans = True`` (or ``with debug_nans():``).

Example:
    >>> import diffprog as dp
    >>> dp.config.debug_nans
    False
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from . import core

__all__ = ["config", "debug_nans"]


class _Config:
    """diffprog's switches as attributes."""

    @property
    def debug_nans(self) -> bool:
        """Raise at the first primitive that makes a NaN from non-NaN inputs, forward or
        backward, naming it and the user's source line. Off by default; free when off."""
        return core.DEBUG_NANS

    @debug_nans.setter
    def debug_nans(self, value: bool) -> None:
        core.DEBUG_NANS = bool(value)


config = _Config()


@contextlib.contextmanager
def debug_nans(enabled: bool = True) -> Iterator[None]:
    """Turn NaN debugging on (or off) inside a ``with`` block.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> with dp.debug_nans():
        ...     dp.grad(lambda x: dnp.sqrt(x))(4.0)
        np.float64(0.25)
    """
    previous = core.DEBUG_NANS
    core.DEBUG_NANS = bool(enabled)
    try:
        yield
    finally:
        core.DEBUG_NANS = previous
