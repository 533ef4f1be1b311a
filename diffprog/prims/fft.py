"""Discrete Fourier transforms: ``fft`` (complex to complex over some axes), ``rfft`` (real to
the non-negative frequencies) and ``irfft`` (its inverse, back to a real signal).

Each is linear, so each is declared by its transpose alone (``linear=True``). Transposes are
under the real pairing ``Re(sum(a * b))`` with no conjugation, as for every primitive here
(JAX's convention), and read only the operand's shape and dtype:

* ``fft``: the DFT matrix ``F[j, k] = exp(∓2πi jk / n)`` is symmetric, and so is its scaled
  inverse, so the transpose is the same transform with the same params. A real operand
  (``fft`` of a real signal) takes the real part of that (the transpose of the embedding).
* ``rfft``: ``y_k = s Σ_j x_j exp(-2πi jk/n)`` for the ``n//2 + 1`` bins ``k``, so
  ``x̄_j = s Re Σ_k ȳ_k exp(-2πi jk/n)``. ``irfft`` of ``conj(ȳ)`` computes that sum with the
  bins between DC and Nyquist counted twice (they stand for their mirror images too), so those
  bins are halved first; its scale is ``s`` when its norm is the swapped one (``backward`` and
  ``forward`` trade places, ``ortho`` stays).
* ``irfft``: ``x_j = t (Re c_0 + 2 Re Σ_{0<k<n/2} c_k exp(2πi jk/n) + Re c_{n/2} (-1)^j)``
  (the last term for even ``n`` only; the imaginary parts of the DC and Nyquist bins are
  ignored), so ``c̄_k = t w_k conj(Σ_j x̄_j exp(-2πi jk/n))`` with ``w_k = 2`` between them
  and 1 at DC and Nyquist: the conjugate of ``rfft`` with the swapped norm, doubled.

Operands arrive with the transform's sizes: :mod:`diffprog.numpy.fft` pads or truncates them
first (NumPy's ``n`` and ``s``), so here the input length along an axis is the transform length
(for ``irfft``, ``n // 2 + 1`` input bins make ``n`` outputs). ``norm`` is one of
``"backward"``, ``"ortho"``, ``"forward"``.
"""

from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray
from . import elementwise as ew
from .shape import axis_batch_rule

__all__ = ["fft", "rfft", "irfft", "SWAP_NORM"]

# the norm under which the other direction has the same scale (numpy.fft's _swap_direction)
SWAP_NORM = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _complex_dtype(dtype) -> np.dtype:
    """numpy.fft's output dtype for a complex-valued result: float32 -> complex64,
    float64 and integers -> complex128 (NumPy 2)."""
    return np.result_type(dtype, 1j)


def _real_dtype(dtype) -> np.dtype:
    """numpy.fft's output dtype of ``irfft``: the real dtype of the input's precision."""
    return np.result_type(np.empty(0, dtype).real.dtype, 1.0)


def _as(ct, dtype):
    """``ct`` in the operand's dtype: the real part for a real operand (the transpose of its
    embedding in the complex numbers), a cast for another precision."""
    return ct if ct.dtype == dtype else ew.convert_element_type(ct, dtype=np.dtype(dtype))


def _bin_weights(shape: tuple, axis: int, n: int, dtype, inner: float, edge: float):
    """A constant of ``shape`` holding ``inner`` at the bins strictly between DC and Nyquist
    along ``axis`` and ``edge`` at DC (and at Nyquist for even ``n``)."""
    m = shape[axis]
    w = np.full(m, inner, dtype=np.empty(0, dtype).real.dtype)
    w[:1] = edge
    if n % 2 == 0:
        w[n // 2:n // 2 + 1] = edge
    return np.broadcast_to(w.reshape((m,) + (1,) * (len(shape) - axis - 1)), shape)


# -- complex to complex ----------------------------------------------------------------------

def _fft_impl(x, axes, inverse, norm):
    return (np.fft.ifftn if inverse else np.fft.fftn)(x, axes=axes, norm=norm)


def _fft_transpose(ct, out, x, axes, inverse, norm):
    return _as(fft(ct, axes=axes, inverse=inverse, norm=norm), x.dtype)


fft = Primitive(
    "fft", _fft_impl,
    abstract=lambda x, axes, inverse, norm: ShapedArray(x.shape, _complex_dtype(x.dtype)),
    batch=axis_batch_rule(lambda: fft, "axes"),
    linear=True, transpose=(_fft_transpose,))


# -- real to half-spectrum and back ------------------------------------------------------------

def _rfft_impl(x, axis, norm):
    return np.fft.rfft(x, axis=axis, norm=norm)


def _rfft_abstract(x, axis, norm):
    shape = list(x.shape)
    shape[axis] = shape[axis] // 2 + 1
    return ShapedArray(shape, _complex_dtype(x.dtype))


def _rfft_transpose(ct, out, x, axis, norm):
    n = x.shape[axis]
    half = ew.mul(ew.conj(ct), _bin_weights(tuple(ct.shape), axis, n, ct.dtype, 0.5, 1.0))
    return _as(irfft(half, axis=axis, n=n, norm=SWAP_NORM[norm]), x.dtype)


rfft = Primitive(
    "rfft", _rfft_impl, abstract=_rfft_abstract, batch=axis_batch_rule(lambda: rfft, "axis"),
    linear=True, transpose=(_rfft_transpose,))


def _irfft_impl(x, axis, n, norm):
    return np.fft.irfft(x, n=n, axis=axis, norm=norm)


def _irfft_abstract(x, axis, n, norm):
    shape = list(x.shape)
    shape[axis] = n
    return ShapedArray(shape, _real_dtype(x.dtype))


def _irfft_transpose(ct, out, x, axis, n, norm):
    spectrum = ew.conj(rfft(ct, axis=axis, norm=SWAP_NORM[norm]))
    weights = _bin_weights(tuple(spectrum.shape), axis, n, spectrum.dtype, 2.0, 1.0)
    return _as(ew.mul(spectrum, weights), x.dtype)


irfft = Primitive(
    "irfft", _irfft_impl, abstract=_irfft_abstract,
    batch=axis_batch_rule(lambda: irfft, "axis"),
    linear=True, transpose=(_irfft_transpose,))
