"""``diffprog.numpy.fft``: NumPy's discrete Fourier transforms on traced values.

The names, arguments (``n``, ``axis``, ``s``, ``axes``, ``norm`` = ``"backward"``, ``"ortho"``
or ``"forward"``) and results (dtypes included: float32 gives complex64, float64 complex128,
as NumPy 2 does) are NumPy's. On traced values ``np.fft.fft(x)`` dispatches here. The inputs
are padded with zeros or truncated to the transform lengths first, then one primitive of
:mod:`diffprog.prims.fft` transforms them; all are linear, with transposes under the real
pairing ``Re(sum(a * b))``, so the gradient of a real loss ``L`` of a complex value ``z`` is
``conj(dL/dx + i dL/dy)`` (JAX's convention).

Example:
    >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
    >>> x = np.array([1.0, 2.0, 0.0, -1.0])
    >>> np.allclose(dnp.fft.rfft(x), np.fft.rfft(x))
    True
    >>> # Parseval: sum |fft(x)|**2 = n sum x**2, so the gradient is 2 n x
    >>> dp.grad(lambda x: dnp.sum(dnp.abs(np.fft.fft(x)) ** 2))(x)
    array([ 8., 16.,  0., -8.])
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from ..core import Tracer, bind
from ..prims import fft as F
from ._core import _any_traced, _as_array, as_operand, implements
from ._elementwise import conj
from ._indexing import getitem
from ._shapes import _no_out, pad, roll

__all__ = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2", "ifft2", "rfft2", "irfft2",
           "fftn", "ifftn", "rfftn", "irfftn", "fftshift", "ifftshift", "fftfreq", "rfftfreq"]

_NORMS = ("backward", "ortho", "forward")


def _norm(norm: Any) -> str:
    if norm is None:
        return "backward"
    if norm not in _NORMS:
        raise ValueError(f'Invalid norm value {norm}; should be "backward", "ortho" or '
                         '"forward".')
    return norm


def _length(n: Any) -> int:
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"Invalid number of FFT data points ({n}) specified.")
    return n


def _resize(x: Any, axis: int, n: int) -> Any:
    """``x`` truncated or padded with zeros at the end to length ``n`` along ``axis``, as
    numpy.fft does before transforming."""
    m = x.shape[axis]
    if n < m:
        return getitem(x, (slice(None),) * axis + (slice(0, n),))
    if n > m:
        pairs = [(0, 0)] * x.ndim
        pairs[axis] = (0, n - m)
        return pad(x, pairs)
    return x


def _real_input(x: Any, name: str) -> None:
    if x.dtype.kind == "c":
        raise TypeError(f"{name} takes a real input: numpy.fft refuses complex values here "
                        "(take dnp.real first, or use fft)")


# -- one-dimensional ---------------------------------------------------------------------------

def _c2c(a: Any, n: Any, axis: int, norm: Any, inverse: bool) -> Any:
    axis = normalize_axis_index(axis, a.ndim)
    n = _length(a.shape[axis] if n is None else n)
    return bind(F.fft, _resize(a, axis, n), axes=(axis,), inverse=inverse, norm=_norm(norm))


def _r2c(a: Any, n: Any, axis: int, norm: Any, name: str) -> Any:
    _real_input(a, name)
    axis = normalize_axis_index(axis, a.ndim)
    n = _length(a.shape[axis] if n is None else n)
    return bind(F.rfft, _resize(a, axis, n), axis=axis, norm=_norm(norm))


def _c2r(a: Any, n: Any, axis: int, norm: Any) -> Any:
    axis = normalize_axis_index(axis, a.ndim)
    n = _length((a.shape[axis] - 1) * 2 if n is None else n)
    return bind(F.irfft, _resize(a, axis, n // 2 + 1), axis=axis, n=n, norm=_norm(norm))


@implements(np.fft.fft)
def fft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
        out: Any = None) -> Any:
    """``np.fft.fft``: the discrete Fourier transform along ``axis``, of length ``n`` (the
    input truncated or zero-padded to it). Its transpose is itself.

    Example:
        >>> fft(np.array([1.0, 0.0, 0.0, 0.0]))
        array([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
    """
    if not _any_traced(a):
        return np.fft.fft(a, n, axis, norm, out)
    _no_out("fft", out)
    return _c2c(_as_array(a), n, axis, norm, False)


@implements(np.fft.ifft)
def ifft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
         out: Any = None) -> Any:
    """``np.fft.ifft``: the inverse discrete Fourier transform along ``axis``.

    Example:
        >>> ifft(np.array([4.0, 0.0, 0.0, 0.0]))
        array([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
    """
    if not _any_traced(a):
        return np.fft.ifft(a, n, axis, norm, out)
    _no_out("ifft", out)
    return _c2c(_as_array(a), n, axis, norm, True)


@implements(np.fft.rfft)
def rfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
         out: Any = None) -> Any:
    """``np.fft.rfft``: the ``n // 2 + 1`` non-negative frequencies of the transform of a real
    signal. Its transpose is not an inverse: the bins between DC and Nyquist count twice.

    Example:
        >>> rfft(np.array([1.0, 1.0, 1.0, 1.0]))
        array([4.+0.j, 0.+0.j, 0.+0.j])
    """
    if not _any_traced(a):
        return np.fft.rfft(a, n, axis, norm, out)
    _no_out("rfft", out)
    return _r2c(_as_array(a), n, axis, norm, "rfft")


@implements(np.fft.irfft)
def irfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
          out: Any = None) -> Any:
    """``np.fft.irfft``: the real signal of length ``n`` (default ``2 (m - 1)`` for ``m``
    input bins) whose ``rfft`` is ``a`` (the imaginary parts of the DC and Nyquist bins are
    ignored, as NumPy does, so their derivative is 0).

    Example:
        >>> irfft(np.array([4.0, 0.0, 0.0]))
        array([1., 1., 1., 1.])
    """
    if not _any_traced(a):
        return np.fft.irfft(a, n, axis, norm, out)
    _no_out("irfft", out)
    return _c2r(_as_array(a), n, axis, norm)


@implements(np.fft.hfft)
def hfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
         out: Any = None) -> Any:
    """``np.fft.hfft``: the (real) transform of a signal with Hermitian symmetry, given by its
    first half: ``irfft(conj(a), n)`` with the norm's direction swapped.

    Example:
        >>> hfft(np.array([1.0, 0.0, 0.0]))
        array([1., 1., 1., 1.])
    """
    if not _any_traced(a):
        return np.fft.hfft(a, n, axis, norm, out)
    _no_out("hfft", out)
    return _c2r(conj(_as_array(a)), n, axis, F.SWAP_NORM[_norm(norm)])


@implements(np.fft.ihfft)
def ihfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None,
          out: Any = None) -> Any:
    """``np.fft.ihfft``: the inverse of :func:`hfft`, ``conj(rfft(a, n))`` with the norm's
    direction swapped.

    Example:
        >>> ihfft(np.array([1.0, 1.0, 1.0, 1.0]))
        array([1.-0.j, 0.-0.j, 0.-0.j])
    """
    if not _any_traced(a):
        return np.fft.ihfft(a, n, axis, norm, out)
    _no_out("ihfft", out)
    return conj(_r2c(_as_array(a), n, axis, F.SWAP_NORM[_norm(norm)], "ihfft"))


# -- n-dimensional -----------------------------------------------------------------------------

def _cook_nd_args(a: Any, s: Any = None, axes: Any = None, invreal: bool = False) -> tuple:
    """numpy.fft's reading of ``s`` and ``axes`` (its ``_cook_nd_args``, warnings included)."""
    shapeless = s is None
    if shapeless:
        s = list(a.shape) if axes is None else [a.shape[ax] for ax in axes]
    s = list(s)
    if axes is None:
        if not shapeless:
            warnings.warn(
                "`axes` should not be `None` if `s` is not `None` (Deprecated in NumPy 2.0). "
                "In a future version of NumPy, this will raise an error and `s[i]` will "
                "correspond to the size along the transformed axis specified by `axes[i]`. To "
                "retain current behaviour, pass a sequence [0, ..., k-1] to `axes` for an "
                "array of dimension k.", DeprecationWarning, stacklevel=4)
        axes = list(range(-len(s), 0))
    axes = list(axes)
    if len(s) != len(axes):
        raise ValueError("Shape and axes have different lengths.")
    if invreal and shapeless:
        s[-1] = (a.shape[axes[-1]] - 1) * 2
    if None in s:
        warnings.warn(
            "Passing an array containing `None` values to `s` is deprecated in NumPy 2.0 and "
            "will raise an error in a future version of NumPy. To use the default behaviour "
            "of the corresponding 1-D transform, pass the value matching the default for its "
            "`n` parameter. To use the default behaviour for every axis, the `s` argument can "
            "be omitted.", DeprecationWarning, stacklevel=4)
    s = [a.shape[ax] if n == -1 else n for n, ax in zip(s, axes)]
    return s, axes


def _c2c_nd(a: Any, s: list, axes: list, norm: Any, inverse: bool, reverse: bool) -> Any:
    """The complex transforms along ``axes`` with lengths ``s``: one primitive over all of
    them when the axes differ; one at a time in NumPy's order (last axis first when
    ``reverse``) when an axis repeats, since each transform then resizes the previous one's
    output."""
    if not axes:
        return a
    axes = [normalize_axis_index(ax, a.ndim) for ax in axes]
    if len(set(axes)) < len(axes):
        order = range(len(axes) - 1, -1, -1) if reverse else range(len(axes))
        for i in order:
            a = _c2c(a, s[i], axes[i], norm, inverse)
        return a
    for n, ax in zip(s, axes):
        a = _resize(a, ax, _length(a.shape[ax] if n is None else n))
    return bind(F.fft, a, axes=tuple(axes), inverse=inverse, norm=_norm(norm))


def _fftn(a: Any, s: Any, axes: Any, norm: Any, inverse: bool) -> Any:
    s, axes = _cook_nd_args(a, s, axes)
    return _c2c_nd(a, s, axes, norm, inverse, True)


def _rfftn(a: Any, s: Any, axes: Any, norm: Any) -> Any:
    _real_input(a, "rfftn")
    s, axes = _cook_nd_args(a, s, axes)
    a = _r2c(a, s[-1], axes[-1], norm, "rfftn")
    return _c2c_nd(a, s[:-1], axes[:-1], norm, False, True)


def _irfftn(a: Any, s: Any, axes: Any, norm: Any) -> Any:
    s, axes = _cook_nd_args(a, s, axes, invreal=True)
    a = _c2c_nd(a, s[:-1], axes[:-1], norm, True, False)
    return _c2r(a, s[-1], axes[-1], norm)


@implements(np.fft.fftn)
def fftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
         norm: str | None = None, out: Any = None) -> Any:
    """``np.fft.fftn``: the transform over ``axes`` (all by default) with lengths ``s``.

    Example:
        >>> fftn(np.ones((2, 2)))
        array([[4.+0.j, 0.+0.j],
               [0.+0.j, 0.+0.j]])
    """
    if not _any_traced(a):
        return np.fft.fftn(a, s, axes, norm, out)
    _no_out("fftn", out)
    return _fftn(_as_array(a), s, axes, norm, False)


@implements(np.fft.ifftn)
def ifftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
          norm: str | None = None, out: Any = None) -> Any:
    """``np.fft.ifftn``: the inverse transform over ``axes`` (all by default).

    Example:
        >>> ifftn(np.array([[4.0, 0.0], [0.0, 0.0]])).real
        array([[1., 1.],
               [1., 1.]])
    """
    if not _any_traced(a):
        return np.fft.ifftn(a, s, axes, norm, out)
    _no_out("ifftn", out)
    return _fftn(_as_array(a), s, axes, norm, True)


@implements(np.fft.fft2)
def fft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
         norm: str | None = None, out: Any = None) -> Any:
    """``np.fft.fft2``: :func:`fftn` over the last two axes.

    Example:
        >>> fft2(np.ones((2, 2)))[0, 0]
        np.complex128(4+0j)
    """
    if not _any_traced(a):
        return np.fft.fft2(a, s, axes, norm, out)
    _no_out("fft2", out)
    return _fftn(_as_array(a), s, axes, norm, False)


@implements(np.fft.ifft2)
def ifft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
          norm: str | None = None, out: Any = None) -> Any:
    """``np.fft.ifft2``: :func:`ifftn` over the last two axes.

    Example:
        >>> ifft2(np.full((2, 2), 4.0))[0, 0]
        np.complex128(4+0j)
    """
    if not _any_traced(a):
        return np.fft.ifft2(a, s, axes, norm, out)
    _no_out("ifft2", out)
    return _fftn(_as_array(a), s, axes, norm, True)


@implements(np.fft.rfftn)
def rfftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
          norm: str | None = None, out: Any = None) -> Any:
    """``np.fft.rfftn``: :func:`rfft` over the last of ``axes``, then :func:`fft` over the
    others.

    Example:
        >>> rfftn(np.ones((2, 4))).shape
        (2, 3)
    """
    if not _any_traced(a):
        return np.fft.rfftn(a, s, axes, norm, out)
    _no_out("rfftn", out)
    return _rfftn(_as_array(a), s, axes, norm)


@implements(np.fft.irfftn)
def irfftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
           norm: str | None = None, out: Any = None) -> Any:
    """``np.fft.irfftn``: the inverse of :func:`rfftn` (``s[-1]`` is the real output's
    length along the last axis, by default ``2 (m - 1)``).

    Example:
        >>> irfftn(np.fft.rfftn(np.eye(2, 4))).round(12)
        array([[1., 0., 0., 0.],
               [0., 1., 0., 0.]])
    """
    if not _any_traced(a):
        return np.fft.irfftn(a, s, axes, norm, out)
    _no_out("irfftn", out)
    return _irfftn(_as_array(a), s, axes, norm)


@implements(np.fft.rfft2)
def rfft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
          norm: str | None = None, out: Any = None) -> Any:
    """``np.fft.rfft2``: :func:`rfftn` over the last two axes.

    Example:
        >>> rfft2(np.ones((2, 4))).shape
        (2, 3)
    """
    if not _any_traced(a):
        return np.fft.rfft2(a, s, axes, norm, out)
    _no_out("rfft2", out)
    return _rfftn(_as_array(a), s, axes, norm)


@implements(np.fft.irfft2)
def irfft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
           norm: str | None = None, out: Any = None) -> Any:
    """``np.fft.irfft2``: :func:`irfftn` over the last two axes.

    Example:
        >>> irfft2(np.fft.rfft2(np.ones((2, 4)))).round(12)
        array([[1., 1., 1., 1.],
               [1., 1., 1., 1.]])
    """
    if not _any_traced(a):
        return np.fft.irfft2(a, s, axes, norm, out)
    _no_out("irfft2", out)
    return _irfftn(_as_array(a), s, axes, norm)


# -- helpers -----------------------------------------------------------------------------------

def _shifts(x: Any, axes: Any, sign: int) -> tuple:
    if axes is None:
        return [sign * (d // 2) for d in x.shape], tuple(range(x.ndim))
    if isinstance(axes, (int, np.integer)):
        return sign * (x.shape[axes] // 2), axes
    return [sign * (x.shape[ax] // 2) for ax in axes], axes


@implements(np.fft.fftshift)
def fftshift(x: Any, axes: Any = None) -> Any:
    """``np.fft.fftshift``: the zero frequency moved to the centre (a roll by half the length
    along ``axes``, all by default).

    Example:
        >>> fftshift(np.fft.fftfreq(5))
        array([-0.4, -0.2,  0. ,  0.2,  0.4])
    """
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.fft.fftshift(x, axes)
    return roll(x, *_shifts(x, axes, 1))


@implements(np.fft.ifftshift)
def ifftshift(x: Any, axes: Any = None) -> Any:
    """``np.fft.ifftshift``: the inverse of :func:`fftshift` (they differ for odd lengths).

    Example:
        >>> ifftshift(fftshift(np.arange(5.0)))
        array([0., 1., 2., 3., 4.])
    """
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.fft.ifftshift(x, axes)
    return roll(x, *_shifts(x, axes, -1))


def _integer(n: Any) -> None:
    if not isinstance(n, (int, np.integer)):
        raise ValueError("n should be an integer")


def fftfreq(n: int, d: Any = 1.0, device: Any = None) -> Any:
    """``np.fft.fftfreq``: the sample frequencies of :func:`fft`'s bins, in cycles per unit of
    the spacing ``d`` (which may be traced: the result is then differentiable in ``d``).

    Example:
        >>> fftfreq(4, d=0.5)
        array([ 0. ,  0.5, -1. , -0.5])
    """
    if not isinstance(d, Tracer):
        return np.fft.fftfreq(n, d, device=device)
    _integer(n)
    return np.concatenate([np.arange(0, (n - 1) // 2 + 1), np.arange(-(n // 2), 0)]) * (
        1.0 / (n * d))


def rfftfreq(n: int, d: Any = 1.0, device: Any = None) -> Any:
    """``np.fft.rfftfreq``: the sample frequencies of :func:`rfft`'s bins.

    Example:
        >>> rfftfreq(4, d=0.5)
        array([0. , 0.5, 1. ])
    """
    if not isinstance(d, Tracer):
        return np.fft.rfftfreq(n, d, device=device)
    _integer(n)
    return np.arange(0, n // 2 + 1) * (1.0 / (n * d))
