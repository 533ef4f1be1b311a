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
        return core._nan_global

    @debug_nans.setter
    def debug_nans(self, value: bool) -> None:
        core.set_debug_nans(value)

    #: Log one line (logger "diffprog", level WARNING) each time jit traces a function, with the
    #: reason: first call, new shape, new dtype, new static value, new argument structure.
    log_compiles: bool = False

    #: How many compiled fused kernels a process keeps loaded for reuse (least recently used
    #: beyond it are dropped; a program still running one keeps it alive).
    kernel_cache_size: int = 256

    @property
    def jit_compile(self) -> str:
        """When jit compiles fused kernels, for ``jit(f)`` without ``compile=``:
        ``"background"`` (default: the first calls run at once on tiers that compile nothing,
        and a daemon thread compiles what pays for repeated calls), ``"eager"`` (before the
        first call) or ``"never"``. See :mod:`diffprog.kernels.tiers`."""
        return _JIT_COMPILE[0]

    @jit_compile.setter
    def jit_compile(self, value: str) -> None:
        if value not in ("background", "eager", "never"):
            raise ValueError(f"config.jit_compile must be 'background', 'eager' or 'never', "
                             f"not {value!r}")
        _JIT_COMPILE[0] = value

    @property
    def eager_kernels(self) -> bool:
        """Outside jit, large float arrays run compiled fast-math kernels for some elementwise
        operations and their rules (:mod:`diffprog.kernels.eager_fast`; loaded in a background
        thread, NumPy meanwhile). ``False``: NumPy runs everything, with no per-call check.

        Example:
            >>> import diffprog as dp
            >>> dp.config.eager_kernels = False
            >>> dp.config.eager_kernels = True
        """
        return core._eager_on[0]

    @eager_kernels.setter
    def eager_kernels(self, value: bool) -> None:
        core.set_eager_enabled(value)


_JIT_COMPILE = ["background"]

config = _Config()


@contextlib.contextmanager
def debug_nans(enabled: bool = True) -> Iterator[None]:
    """Turn NaN debugging on (or off) inside a ``with`` block, for the calling thread only.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> with dp.debug_nans():
        ...     dp.grad(lambda x: dnp.sqrt(x))(4.0)
        np.float64(0.25)
    """
    previous = core.push_debug_nans(bool(enabled))
    try:
        yield
    finally:
        core.push_debug_nans(previous)
