"""``diffprog.scipy.signal``: ``convolve`` and ``correlate`` of n-dimensional arrays with
SciPy's signatures and modes, differentiable in both inputs.

On traced values the result is a direct sum: a gather of the sliding windows of the (padded)
first input, with a constant index array, times the flipped second input (one matrix-vector
product), so only the output positions the mode asks for are computed. Its cost is
size(output) x size(in2) multiplications and as much memory: meant for reasonable sizes.
``method`` ('auto', 'direct', 'fft') is accepted; traced values always take the direct sum
(the same values to rounding). Untraced arguments go straight to SciPy.

Example:
    >>> import numpy as np, diffprog as dp
    >>> from diffprog.scipy import signal
    >>> signal.convolve(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
    array([0. , 1. , 2.5, 4. , 1.5])
    >>> dp.grad(lambda k: signal.convolve(np.array([1.0, 2.0, 3.0]), k, "valid")[0])(
    ...     np.array([0.0, 1.0, 0.5]))
    array([3., 2., 1.])
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.signal as _ss

from .. import numpy as dnp
from ..core import Tracer

__all__ = ["convolve", "correlate"]

_MODES = ("full", "valid", "same")
_METHODS = ("auto", "direct", "fft")


def _asarray(x: Any) -> Any:
    return x if isinstance(x, Tracer) else np.asarray(x)


@functools.lru_cache(maxsize=128)
def _windows(padded: tuple, start: tuple, out: tuple, kernel: tuple) -> np.ndarray:
    """Flat indices into the padded input: row p (an output position n = start + p) holds
    the positions n + j for every kernel offset j, in C order."""
    grids = np.meshgrid(*[np.arange(s, s + o) for s, o in zip(start, out)],
                        indexing="ij") if out else []
    offs = np.meshgrid(*[np.arange(k) for k in kernel], indexing="ij") if kernel else []
    index = [g.reshape(-1, 1) + o.reshape(1, -1) for g, o in zip(grids, offs)]
    flat = np.ravel_multi_index(index, padded) if index else np.zeros((1, 1), dtype=np.intp)
    flat.flags.writeable = False
    return flat


def _check(in1: Any, in2: Any, mode: str, method: str) -> None:
    if mode not in _MODES:
        raise ValueError("acceptable mode flags are 'valid', 'same', or 'full'")
    if method not in _METHODS:
        raise ValueError(f"acceptable method flags are 'auto', 'direct', or 'fft' "
                         f"(got {method!r})")
    if in1.ndim != in2.ndim:
        raise ValueError("in1 and in2 should have the same dimensionality")


def _swap_needed(mode: str, s1: tuple, s2: tuple) -> bool:
    """SciPy's rule: in 'valid' mode the larger input goes first; one must be at least as
    large as the other in every dimension."""
    if mode != "valid":
        return False
    if all(a >= b for a, b in zip(s1, s2)):
        return False
    if all(b >= a for a, b in zip(s1, s2)):
        return True
    raise ValueError("For 'valid' mode, one must be at least as large as the other in every "
                     "dimension")


def _convolve(in1: Any, in2: Any, mode: str) -> Any:
    """The n-D linear convolution of traced (or plain) arrays of one rank, as SciPy's modes."""
    if in1.ndim == 0:
        return in1 * in2
    if in1.size == 0 or in2.size == 0:
        return np.array([])
    if _swap_needed(mode, in1.shape, in2.shape):
        in1, in2 = in2, in1
    s1, s2 = in1.shape, in2.shape
    if mode == "full":
        start, out = (0,) * len(s1), tuple(a + b - 1 for a, b in zip(s1, s2))
    elif mode == "same":
        start, out = tuple((b - 1) // 2 for b in s2), s1
    else:
        start, out = tuple(b - 1 for b in s2), tuple(a - b + 1 for a, b in zip(s1, s2))
    # out[n] = sum_j padded[n + j] * flip(in2)[j], padded[m] = in1[m - (s2 - 1)]
    padded = dnp.pad(in1, [(b - 1, b - 1) for b in s2])
    index = _windows(tuple(padded.shape), start, tuple(out), tuple(s2))
    windows = dnp.take(dnp.reshape(padded, (-1,)), index)
    flipped = dnp.reshape(in2[(slice(None, None, -1),) * in2.ndim], (-1,))
    return dnp.reshape(dnp.matmul(windows, flipped), out)


def convolve(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """``scipy.signal.convolve``: the n-dimensional convolution of ``in1`` and ``in2`` (arrays
    of the same rank), 'full' (default), 'valid' (where they overlap fully; the larger input
    is taken as the first) or 'same' (the size of ``in1``, centered on the full output).

    Example:
        >>> import numpy as np
        >>> convolve(np.eye(2), np.ones((2, 2)), mode="same")
        array([[1., 1.],
               [1., 2.]])
    """
    if not isinstance(in1, Tracer) and not isinstance(in2, Tracer):
        return _ss.convolve(in1, in2, mode=mode, method=method)
    in1, in2 = _asarray(in1), _asarray(in2)
    _check(in1, in2, mode, method)
    return _convolve(in1, in2, mode)


def correlate(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """``scipy.signal.correlate``: the n-dimensional cross-correlation, z[k] = sum_l in1[l]
    conj(in2[l - k + N - 1]) (SciPy's definition): the convolution with ``in2`` reversed (and
    conjugated), with the same modes.

    Example:
        >>> import numpy as np
        >>> correlate(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
        array([0.5, 2. , 3.5, 3. , 0. ])
    """
    if not isinstance(in1, Tracer) and not isinstance(in2, Tracer):
        return _ss.correlate(in1, in2, mode=mode, method=method)
    in1, in2 = _asarray(in1), _asarray(in2)
    _check(in1, in2, mode, method)
    if np.dtype(in2.dtype).kind == "c":
        in2 = dnp.conj(in2)
    if in2.ndim == 0:
        return in1 * in2
    return _convolve(in1, in2[(slice(None, None, -1),) * in2.ndim], mode)
