"""Reductions, scans, sorting and order statistics with NumPy's axis/keepdims conventions.

Each function sends values that are not traced straight to NumPy. On traced values the
differentiable ones are compositions of the primitives in :mod:`diffprog.prims.reduce`; the
index-valued ones (argmax, argsort, searchsorted, count_nonzero, all, any) are computed on the
concrete values and carry no derivative.
"""

from __future__ import annotations

import builtins
import warnings
from typing import Any

import numpy as np

from .. import prims as P
from ..core import ConcretizationError, Tracer, bind, concrete
from ._core import as_operand, implements
from ._elementwise import astype, isnan, log, maximum, minimum, not_equal, sqrt
from ._elementwise import floor as _floor
from ._elementwise import where as _where  # "where" is also a keyword of the reductions
from ._indexing import getitem

__all__ = ["sum", "mean", "max", "min", "amax", "amin", "prod", "var", "std", "ptp",
           "cumsum", "cumprod", "logsumexp", "nansum", "nanmean", "average", "argmax",
           "argmin", "argsort", "sort", "searchsorted", "count_nonzero", "all", "any",
           "median", "quantile", "percentile"]

_NoValue = np._NoValue  # NumPy's "argument not given" marker, passed through to NumPy


# ------------------------------------------------------------------------------------------------
# Argument handling

def _axes(axis: Any, ndim: int) -> tuple:
    """``axis`` (None, an int or a tuple, negative allowed) as a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(int(a), ndim)
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError("duplicate value in 'axis'")
    return tuple(sorted(out))


def _axis(axis: Any, ndim: int) -> int:
    """One axis (an int, negative allowed) as a non-negative int."""
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    return _axes(axis, ndim)[0]


def _count(shape: tuple, axes: tuple) -> int:
    n = 1
    for i in axes:
        n *= shape[i]
    return n


def _no_out(out: Any, name: str) -> None:
    if out is not None:
        raise TypeError(f"diffprog: np.{name}(..., out=...) writes into an array in place, "
                        "which traced values do not support; use the returned value instead")


def _as_traced_dtype(a: Any, dtype: Any) -> Any:
    return a if dtype is None else astype(a, dtype)


def _accumulating(a: Any, dtype: Any) -> Any:
    """``a`` in the dtype NumPy's sum and prod accumulate in: ``dtype`` when given, else bools
    and integers narrower than the platform's are widened (int8 sums do not wrap at 127)."""
    if dtype is not None:
        return astype(a, dtype)
    kind, size = a.dtype.kind, a.dtype.itemsize
    if kind == "b" or (kind == "i" and size < np.dtype(np.int_).itemsize):
        return astype(a, np.int_)
    if kind == "u" and size < np.dtype(np.uint).itemsize:
        return astype(a, np.uint)
    return a


# ------------------------------------------------------------------------------------------------
# Sums and products

# sum, mean, max and min keep the positional order (a, axis, dtype, keepdims) / (a, axis,
# keepdims) that the traced-value methods in _dispatch.py call them with; NumPy's other
# arguments are keyword-only here.

@implements(np.sum)
def sum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, *,
        out: Any = None, initial: Any = _NoValue, where: Any = True) -> Any:
    """Sum over ``axis`` (all axes by default), NumPy's ``np.sum``.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(lambda x: dnp.sum(x ** 2))(np.array([1.0, 2.0]))
        array([2., 4.])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.sum(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, initial=initial,
                      where=where)
    _no_out(out, "sum")
    a = _accumulating(a, dtype)
    if where is not True:
        a = _where(where, a, 0.0)
    result = bind(P.reduce_sum, a, axis=_axes(axis, a.ndim), keepdims=bool(keepdims))
    return result if initial is _NoValue else result + initial


@implements(np.mean)
def mean(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, *,
         out: Any = None, where: Any = True) -> Any:
    """Mean over ``axis`` (all axes by default), NumPy's ``np.mean``."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.mean(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, where=where)
    _no_out(out, "mean")
    axes = _axes(axis, a.ndim)
    if dtype is None and a.dtype.kind in "biu":
        dtype = np.float64  # NumPy accumulates integer means in float64
    elif dtype is None and a.dtype == np.float16:
        # NumPy accumulates float16 in float32 and rounds the mean back to float16
        return astype(mean(astype(a, np.float32), axes, None, keepdims, where=where),
                      np.float16)
    if where is not True:
        count = np.sum(np.broadcast_to(where, a.shape), axis=axes, keepdims=keepdims)
        count = count.astype(a.dtype)  # so that float32 stays float32, as in NumPy
        return sum(a, axes, dtype, keepdims, where=where) / count
    return sum(a, axes, dtype, keepdims) / _count(a.shape, axes)


@implements(np.prod)
def prod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
         initial: Any = _NoValue, where: Any = True) -> Any:
    """Product over ``axis`` (all axes by default), NumPy's ``np.prod``.

    The derivative for each entry is the product of the other entries, computed without
    dividing by the entry, so it is exact where entries are zero: the gradient of
    ``prod([0, 2, 3])`` is ``[6, 0, 0]``.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(lambda x: dnp.prod(x))(np.array([0.0, 2.0, 3.0]))
        array([6., 0., 0.])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.prod(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, initial=initial,
                       where=where)
    _no_out(out, "prod")
    a = _accumulating(a, dtype)
    if where is not True:
        a = _where(where, a, 1.0)
    axes = _axes(axis, a.ndim)
    # over no axes NumPy still multiplies by the identity: 1 * (inf + nan j) is nan + nan j
    result = (bind(P.reduce_prod, a, axis=axes, keepdims=bool(keepdims)) if axes
              else a * np.ones((), a.dtype))
    return result if initial is _NoValue else result * initial


def _scan(prim: Any, name: str, a: Any, axis: Any, dtype: Any, out: Any) -> Any:
    _no_out(out, name)
    a = _as_traced_dtype(a, dtype)
    if axis is None or a.ndim == 0:
        # NumPy scans the flattened array (a 0-d array counts as 1-d).
        a = bind(P.reshape, a, shape=(a.size,)) if a.ndim != 1 else a
        axis = 0 if axis is None else axis
    return bind(prim, a, axis=_axis(axis, a.ndim), reverse=False)


@implements(np.cumsum)
def cumsum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    """Cumulative sum along ``axis`` (of the flattened array by default), ``np.cumsum``."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.cumsum(a, axis=axis, dtype=dtype, out=out)
    return _scan(P.cumsum, "cumsum", a, axis, dtype, out)


@implements(np.cumprod)
def cumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    """Cumulative product along ``axis`` (of the flattened array by default), ``np.cumprod``.

    The derivative never divides by an entry, so it is exact where entries are zero.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(lambda x: dnp.cumprod(x)[-1])(np.array([2.0, 0.0, 5.0]))
        array([ 0., 10.,  0.])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.cumprod(a, axis=axis, dtype=dtype, out=out)
    return _scan(P.cumprod, "cumprod", a, axis, dtype, out)


@implements(np.nansum)
def nansum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
           initial: Any = _NoValue, where: Any = True) -> Any:
    """Sum treating NaN as zero, ``np.nansum``; the NaN entries get a zero derivative."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.nansum(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims,
                         initial=initial, where=where)
    _no_out(out, "nansum")
    a = _where(not_equal(a, a), 0.0, a)
    return sum(a, axis, dtype, keepdims, initial=initial, where=where)


@implements(np.nanmean)
def nanmean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: bool = False, *, where: Any = True) -> Any:
    """Mean of the entries that are not NaN, ``np.nanmean``; the NaN entries get a zero
    derivative. An all-NaN slice gives NaN (with NumPy's warning)."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.nanmean(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, where=where)
    _no_out(out, "nanmean")
    is_nan = not_equal(a, a)  # a boolean array: concrete under eager transforms
    # The count is cast to a's dtype so that the mean keeps it (float32 stays float32).
    count = sum(astype(~is_nan, a.dtype), axis, keepdims=keepdims, where=where)
    return nansum(a, axis, dtype, None, keepdims, where=where) / count


# ------------------------------------------------------------------------------------------------
# Extremes, moments, averages

@implements(np.max, np.amax)
def max(a: Any, axis: Any = None, keepdims: bool = False, *, out: Any = None,
        initial: Any = _NoValue, where: Any = True) -> Any:
    """Maximum over ``axis``, ``np.max``; tied entries share the derivative evenly."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.max(a, axis=axis, out=out, keepdims=keepdims, initial=initial, where=where)
    return _extreme(P.reduce_max, maximum, "max", a, axis, keepdims, out, initial, where)


@implements(np.min, np.amin)
def min(a: Any, axis: Any = None, keepdims: bool = False, *, out: Any = None,
        initial: Any = _NoValue, where: Any = True) -> Any:
    """Minimum over ``axis``, ``np.min``; tied entries share the derivative evenly."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.min(a, axis=axis, out=out, keepdims=keepdims, initial=initial, where=where)
    return _extreme(P.reduce_min, minimum, "min", a, axis, keepdims, out, initial, where)


def _extreme(prim, pairwise, name, a, axis, keepdims, out, initial, mask):
    _no_out(out, name)
    if mask is not True:
        if initial is _NoValue:
            raise ValueError(f"reduction operation '{pairwise.__name__}' does not have an "
                             "identity, so to use a where mask one has to specify 'initial'")
        a = _where(mask, a, initial)
    result = bind(prim, a, axis=_axes(axis, a.ndim), keepdims=bool(keepdims))
    return result if initial is _NoValue else pairwise(result, initial)


amax, amin = max, min


@implements(np.ptp)
def ptp(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:
    """``max - min`` over ``axis``, ``np.ptp``; ties share the derivative evenly."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.ptp(a, axis=axis, out=out, keepdims=keepdims)
    _no_out(out, "ptp")
    return max(a, axis, keepdims) - min(a, axis, keepdims)


def _correction(ddof: Any, correction: Any) -> Any:
    if correction is _NoValue:
        return ddof
    if ddof != 0:
        raise ValueError("ddof and correction can't be provided simultaneously.")
    return correction


def _real_part(x: Any) -> Any:
    from ._elementwise import real
    return real(x)


def _conj(x: Any) -> Any:
    from ._elementwise import conj
    return conj(x)


@implements(np.var)
def var(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0,
        keepdims: bool = False, *, where: Any = _NoValue, mean: Any = _NoValue,
        correction: Any = _NoValue) -> Any:
    """Variance ``sum(|a - mean|²) / (n - ddof)`` over ``axis``, ``np.var``.

    NumPy's result shapes and dtypes: integers and bools give float64, float32 stays float32,
    complex values give the real variance of their precision; ``keepdims``, axis tuples,
    ``where`` masks (``n`` counts the selected entries of each slice) and a precomputed
    ``mean`` (with kept dimensions) as in NumPy. ``correction`` is the Array API name of
    ``ddof``. Where ``n - ddof <= 0`` the variance is inf (NaN for a zero sum of squares) with
    NumPy's warning "Degrees of freedom <= 0 for slice", computed without dividing by zero.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(lambda x: dnp.var(x, ddof=1))(np.array([1.0, 2.0, 4.0]))
        array([-1.33333333, -0.33333333,  1.66666667])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer) and not (
            isinstance(mean, Tracer)):
        return np.var(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims,
                      where=where, mean=mean, correction=correction)
    _no_out(out, "var")
    a = a if isinstance(a, Tracer) else np.asarray(a)
    ddof = _correction(ddof, correction)
    mask = True if where is _NoValue else where
    result_dtype = None
    if dtype is None and a.dtype.kind in "biu":
        dtype = np.float64  # NumPy's variance of integers and bools is float64
    elif dtype is not None and np.dtype(dtype).kind == "c":
        result_dtype = np.dtype(dtype)  # NumPy gives the (real) variance in a complex dtype
    elif dtype is not None and a.dtype.kind == "c":
        # NumPy's variance of complex values in a real dtype takes the real part of the mean
        # (with its ComplexWarning) but the whole squared modulus of the deviations
        result_dtype = np.dtype(dtype)
        warnings.warn("Casting complex values to real discards the imaginary part",
                      np.exceptions.ComplexWarning, stacklevel=2)
        if mean is _NoValue:
            mean = astype(globals()["mean"](_real_part(a), _axes(axis, a.ndim), keepdims=True,
                                            where=mask), result_dtype)
        dtype = None
    a = _as_traced_dtype(a, dtype)
    v = _variance(a, _axes(axis, a.ndim), ddof, keepdims, mask, mean)
    return v if result_dtype is None else astype(v, result_dtype)


def _variance(a: Any, axes: tuple, ddof: Any, keepdims: bool, mask: Any, mean: Any) -> Any:
    if mean is _NoValue:
        mean = globals()["mean"](a, axes, keepdims=True, where=mask)
    d = a - mean
    if mask is not True:
        d = _where(mask, d, 0)
    sq = _real_part(d * _conj(d)) if d.dtype.kind == "c" else d * d
    total = sum(sq, axes, keepdims=keepdims)
    if mask is True:
        n = float(_count(a.shape, axes) - ddof)  # a Python number: float32 stays float32
        if n > 0:
            return total / n
        count = np.zeros(())
    else:
        count = np.sum(np.broadcast_to(mask, a.shape), axis=axes, keepdims=keepdims) - ddof
        if np.all(count > 0):
            return total / count.astype(total.dtype)
    warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=3)
    # inf where n - ddof <= 0 (NaN for a zero sum), as NumPy's division gives, without
    # dividing by zero at run time
    inf, nan = np.array(np.inf, total.dtype), np.array(np.nan, total.dtype)
    over = _where(total > 0, inf, nan) + total * 0
    if np.all(count <= 0):
        return over
    return _where(count > 0, total / np.maximum(count, 1).astype(total.dtype), over)


@implements(np.std)
def std(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0,
        keepdims: bool = False, *, where: Any = _NoValue, mean: Any = _NoValue,
        correction: Any = _NoValue) -> Any:
    """Standard deviation ``sqrt(var(a))`` over ``axis``, ``np.std`` (the arguments, shapes
    and dtypes of :func:`var`).

    Where the variance is exactly zero (a constant slice) the derivative is 0, the subgradient
    of smallest norm, instead of the NaN that ``0 / sqrt(0)`` would give; the value is 0.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(lambda x: dnp.std(x))(np.array([2.0, 2.0, 2.0]))
        array([0., 0., 0.])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer) and not (
            isinstance(mean, Tracer)):
        return np.std(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims,
                      where=where, mean=mean, correction=correction)
    _no_out(out, "std")
    v = var(a, axis, dtype, None, ddof, keepdims, where=where, mean=mean,
            correction=correction)
    # The inner where keeps sqrt away from 0, so no inf * 0 = NaN reaches the derivative;
    # NaN variances stay NaN.
    zero = v == 0
    return _where(zero, 0.0, sqrt(_where(zero, 1.0, v)))


@implements(np.average)
def average(a: Any, axis: Any = None, weights: Any = None, returned: bool = False, *,
            keepdims: bool = False) -> Any:
    """Weighted mean ``sum(a * w) / sum(w)`` over ``axis``, ``np.average``.

    1-D ``weights`` apply along one ``axis``; with ``returned`` the sum of the weights is
    returned too, broadcast to the average's shape.
    """
    a, weights = as_operand(a), as_operand(weights)
    if not isinstance(a, Tracer) and not isinstance(weights, Tracer):
        return np.average(a, axis=axis, weights=weights, returned=returned, keepdims=keepdims)
    a = a if isinstance(a, Tracer) else np.asarray(a)
    if weights is None:
        avg = mean(a, axis, keepdims=keepdims)
        total = avg.dtype.type(a.size / builtins.max(avg.size, 1))
    else:
        w = weights if isinstance(weights, Tracer) else np.asarray(weights)
        if w.shape != a.shape:
            if axis is None:
                raise TypeError("Axis must be specified when shapes of a and weights differ.")
            if w.ndim != 1:
                raise TypeError("1D weights expected when shapes of a and weights differ.")
            ax = _axis(axis, a.ndim)
            if w.shape[0] != a.shape[ax]:
                raise ValueError("Length of weights not compatible with specified axis.")
            shape = tuple(w.shape[0] if i == ax else 1 for i in range(a.ndim))
            w = bind(P.reshape, w, shape=shape) if isinstance(w, Tracer) else w.reshape(shape)
        axes = _axes(axis, a.ndim)
        total = sum(w, axes, keepdims=keepdims)
        if np.any(concrete(total) == 0):
            raise ZeroDivisionError("Weights sum to zero, can't be normalized")
        avg = sum(a * w, axes, keepdims=keepdims) / total
    if not returned:
        return avg
    if total.shape != avg.shape:
        total = (bind(P.broadcast_to, total, shape=avg.shape) if isinstance(total, Tracer)
                 else np.broadcast_to(total, avg.shape).copy())
    return avg, total


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False) -> Any:
    """``log(sum(b * exp(a)))`` over ``axis`` without overflow (``scipy.special.logsumexp``).

    ``b`` (weights, broadcast with ``a``) must be non-negative; entries with ``b == 0`` drop
    out. A traced ``b`` is differentiated through ``log(b)``, so its derivative needs b > 0.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> round(float(dnp.logsumexp(np.array([1000.0, 1000.0])) - 1000.0), 9)  # log(2)
        0.693147181
    """
    a = as_operand(a)
    if not isinstance(a, (Tracer, np.ndarray)) or a.dtype.kind not in "fc":
        a = astype(a, np.float64)  # SciPy's logsumexp works in floating point
    if b is not None:
        b = as_operand(b)
        if isinstance(b, Tracer):
            a = a + log(b)
        else:
            b = np.asarray(b)
            with np.errstate(divide="ignore"):
                a = a + np.log(b if b.dtype.kind in "fc" else b.astype(np.float64))
    return bind(P.logsumexp, a, axis=_axes(axis, a.ndim), keepdims=bool(keepdims))


# ------------------------------------------------------------------------------------------------
# Index-valued functions: computed on concrete values, no derivative

@implements(np.argmax)
def argmax(a: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
    """Index of the maximum (first one at ties), ``np.argmax``: integers, no derivative."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.argmax(a, axis=axis, out=out, keepdims=keepdims)
    _no_out(out, "argmax")
    axis = None if axis is None else _axis(axis, a.ndim)
    return bind(P.argmax, a, axis=axis, keepdims=bool(keepdims))


@implements(np.argmin)
def argmin(a: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
    """Index of the minimum (first one at ties), ``np.argmin``: integers, no derivative."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.argmin(a, axis=axis, out=out, keepdims=keepdims)
    _no_out(out, "argmin")
    axis = None if axis is None else _axis(axis, a.ndim)
    return bind(P.argmin, a, axis=axis, keepdims=bool(keepdims))


def _sort_kind(kind: Any, order: Any, stable: Any) -> Any:
    if order is not None:
        raise TypeError("diffprog: sorting with order= (structured arrays) is not supported "
                        "on traced values")
    if stable:
        if kind is not None:
            raise ValueError("`kind` and `stable` parameters can't be provided at the same "
                             "time. Use only one of them.")
        return "stable"
    return kind


def _flat_axis(a: Any, axis: Any) -> tuple:
    """``a`` and the axis to sort along: axis=None sorts the flattened array."""
    if axis is None:
        return (bind(P.reshape, a, shape=(a.size,)) if a.ndim != 1 else a), 0
    return a, _axis(axis, a.ndim)


@implements(np.argsort)
def argsort(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *,
            stable: Any = None) -> Any:
    """Indices that sort ``a`` along ``axis``, ``np.argsort``: integers, no derivative."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.argsort(a, axis=axis, kind=kind, order=order, stable=stable)
    kind = _sort_kind(kind, order, stable)
    if a.ndim == 0 and (axis is None or axis in (0, -1)):
        return np.zeros(1, np.intp)  # NumPy sorts a 0-d array as one entry
    a, axis = _flat_axis(a, axis)
    return bind(P.argsort, a, axis=axis, kind=kind)


@implements(np.sort)
def sort(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *,
         stable: Any = None) -> Any:
    """A sorted copy of ``a`` along ``axis`` (the flattened array for None), ``np.sort``.

    The derivative flows back to each value's original position. Equal values are
    interchangeable in the output, so at ties each takes the derivative of the place argsort
    gave it.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(lambda x: dnp.sort(x)[0] * 10.0 + dnp.sort(x)[2])(np.array([3.0, 1.0, 2.0]))
        array([ 1., 10.,  0.])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.sort(a, axis=axis, kind=kind, order=order, stable=stable)
    kind = _sort_kind(kind, order, stable)
    a, axis = _flat_axis(a, axis)
    perm = bind(P.argsort, a, axis=axis, kind=kind)
    return bind(P.permute_along_axis, a, perm, axis=axis)


@implements(np.searchsorted)
def searchsorted(a: Any, v: Any, side: str = "left", sorter: Any = None) -> Any:
    """Insertion indices of ``v`` into the sorted 1-D ``a``, ``np.searchsorted``: integers,
    no derivative."""
    a, v = as_operand(a), as_operand(v)
    if not isinstance(a, Tracer) and not isinstance(v, Tracer):
        return np.searchsorted(a, v, side=side, sorter=sorter)
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right' (got {side!r})")
    if sorter is not None:
        a = a[np.asarray(sorter)]
    return bind(P.searchsorted, a, v, side=side)


@implements(np.count_nonzero)
def count_nonzero(a: Any, axis: Any = None, *, keepdims: bool = False) -> Any:
    """The number of nonzero entries over ``axis``, ``np.count_nonzero``: no derivative."""
    if isinstance(a, Tracer) or isinstance(a := as_operand(a), Tracer):
        a = not_equal(a, 0)  # a boolean array: concrete under eager transforms
        if isinstance(a, Tracer):
            return sum(astype(a, np.intp), axis, keepdims=keepdims)
    return np.count_nonzero(a, axis=axis, keepdims=keepdims)


@implements(np.all)
def all(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False, *,
        where: Any = True) -> Any:
    """Whether every entry is nonzero over ``axis``, ``np.all``: booleans, no derivative."""
    if isinstance(a, Tracer) or isinstance(a := as_operand(a), Tracer):
        _no_out(out, "all")
        a = not_equal(a, 0)
        if isinstance(a, Tracer):
            n = count_nonzero(_where(where, a, True), axis, keepdims=keepdims)
            return n == _count(a.shape, _axes(axis, a.ndim))
    return np.all(a, axis=axis, out=out, keepdims=keepdims, where=where)


@implements(np.any)
def any(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False, *,
        where: Any = True) -> Any:
    """Whether some entry is nonzero over ``axis``, ``np.any``: booleans, no derivative."""
    if isinstance(a, Tracer) or isinstance(a := as_operand(a), Tracer):
        _no_out(out, "any")
        a = not_equal(a, 0)
        if isinstance(a, Tracer):
            return count_nonzero(_where(where, a, False), axis,
                                 keepdims=keepdims) > 0
    return np.any(a, axis=axis, out=out, keepdims=keepdims, where=where)


# ------------------------------------------------------------------------------------------------
# Order statistics, through sort

def _sorted_last(a: Any, axis: Any) -> tuple:
    """``a`` with the ``axis`` entries merged into a sorted last axis, and the axes."""
    axes = _axes(axis, a.ndim)
    rest = [i for i in range(a.ndim) if i not in axes]
    perm = tuple(rest) + axes
    if perm != tuple(range(a.ndim)):
        a = bind(P.transpose, a, perm=perm)
    shape = tuple(a.shape[: len(rest)]) + (_count(a.shape, tuple(range(len(rest), a.ndim))),)
    if shape != a.shape:
        a = bind(P.reshape, a, shape=shape)
    return sort(a, axis=-1), axes


def _kept(v: Any, a_shape: tuple, axes: tuple, lead: tuple = ()) -> Any:
    """``v`` (of shape lead + reduced shape) with the reduced axes back as size 1."""
    shape = lead + tuple(1 if i in axes else d for i, d in enumerate(a_shape))
    return bind(P.reshape, v, shape=shape) if isinstance(v, Tracer) else np.reshape(v, shape)


@implements(np.median)
def median(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
           keepdims: bool = False) -> Any:
    """Median over ``axis``, ``np.median``: the middle of the sorted values, or the mean of
    the two middle ones. The derivative goes to the entries at those places (at ties, to the
    ones that sorting put there)."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.median(a, axis=axis, out=out, overwrite_input=overwrite_input,
                         keepdims=keepdims)
    _no_out(out, "median")
    s, axes = _sorted_last(a, axis)
    n = s.shape[-1]
    if n == 0:
        return mean(s, -1, keepdims=False)  # NaN with NumPy's warning
    if n % 2:
        m = s[..., n // 2]
    else:
        m = mean(s[..., n // 2 - 1:n // 2 + 1], -1)
    m = _nan_if_any(s, m)
    return _kept(m, a.shape, axes) if keepdims else m


def _nan_if_any(s: Any, result: Any, q_ndim: int = 0) -> Any:
    """NumPy's median and quantile are nan where a slice holds a nan (sorting puts it last,
    complex ones too): ``result`` (of shape ``s.shape[:-1]`` + ``q_ndim`` axes) with the
    slice's last sorted value there."""
    last = s[..., -1]
    if q_ndim:
        last = bind(P.reshape, last, shape=tuple(last.shape) + (1,) * q_ndim) \
            if isinstance(last, Tracer) else np.reshape(last, np.shape(last) + (1,) * q_ndim)
    return _where(isnan(last), last, result)


@implements(np.quantile)
def quantile(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
             method: str = "linear", keepdims: bool = False, *, weights: Any = None) -> Any:
    """The ``q``-th quantiles (0 <= q <= 1) over ``axis``, ``np.quantile`` with the default
    ``method="linear"``: interpolation between neighbouring sorted values.

    The derivative goes to the two neighbours with the interpolation weights; with respect
    to ``q`` it is the slope between them, ``(n - 1) (above - below)``. Under jit a traced
    ``q`` is not checked against [0, 1] (its value is not known when tracing).

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> a = np.array([0.3, 0.1, 0.9, 0.5, 0.7])
        >>> round(float(dp.jit(lambda q: dnp.quantile(a, q))(0.3)), 12)
        0.34
    """
    a, q = as_operand(a), as_operand(q)
    if not isinstance(a, Tracer) and not isinstance(q, Tracer):
        return np.quantile(a, q, axis=axis, out=out, overwrite_input=overwrite_input,
                           method=method, keepdims=keepdims, weights=weights)
    _real_only(a)
    q_value = _q_value(q)
    if q_value is not None and not (np.all(q_value >= 0) and np.all(q_value <= 1)):
        raise ValueError("Quantiles must be in the range [0, 1]")
    return _quantile(a, q, q_value, axis, out, method, keepdims, weights, _weak(q))


@implements(np.percentile)
def percentile(a: Any, q: Any, axis: Any = None, out: Any = None,
               overwrite_input: bool = False, method: str = "linear", keepdims: bool = False,
               *, weights: Any = None) -> Any:
    """The ``q``-th percentiles (0 <= q <= 100) over ``axis``, ``np.percentile``: the quantiles
    at ``q / 100`` (see :func:`quantile`)."""
    a, q = as_operand(a), as_operand(q)
    if not isinstance(a, Tracer) and not isinstance(q, Tracer):
        return np.percentile(a, q, axis=axis, out=out, overwrite_input=overwrite_input,
                             method=method, keepdims=keepdims, weights=weights)
    _real_only(a)
    q_value = _q_value(q)
    if q_value is not None:
        q_value = q_value / 100
        if not (np.all(q_value >= 0) and np.all(q_value <= 1)):
            raise ValueError("Percentiles must be in the range [0, 100]")
    weak = _weak(q)
    q = q / 100 if isinstance(q, Tracer) else np.true_divide(q, 100)
    return _quantile(a, q, q_value, axis, out, method, keepdims, weights, weak)


def _real_only(a: Any) -> None:
    """NumPy's refusal of complex data in quantile/percentile (sorting complex values is
    lexicographic, but interpolating between them is not defined there)."""
    if np.dtype(a.dtype).kind == "c":
        raise TypeError("a must be an array of real numbers")


def _q_value(q: Any) -> Any:
    """q's value, or None under jit or vmap, where it has no one value (then q is not checked
    against [0, 1] and the positions in the sorted values are gathered at traced indices)."""
    try:
        return np.asarray(concrete(q), dtype=np.float64)
    except (ConcretizationError, TypeError):  # (vmap's refusal is a TypeError)
        return None


def _weak(q: Any) -> bool:
    """Whether q promotes as a Python scalar (also a Python scalar that jit traces)."""
    return type(q) in (int, float) or (isinstance(q, Tracer) and q.weak_type)


def _quantile(a, q, q_value, axis, out, method, keepdims, weights, weak_q):
    _no_out(out, "quantile")
    if method != "linear" or weights is not None:
        raise NotImplementedError("diffprog: quantile/percentile of traced values supports "
                                  "method='linear' without weights only")
    a = a if isinstance(a, Tracer) else np.asarray(a)
    s, axes = _sorted_last(a, axis)
    # NumPy's result type: a Python float q does not promote a float32 input; arrays do.
    dtype = s.dtype if weak_q else np.result_type(s.dtype, q.dtype if isinstance(q, Tracer)
                                                  else np.asarray(q).dtype)
    s = astype(s, dtype)
    n = s.shape[-1]
    if q_value is None:  # under jit: traced positions, gathered at traced indices
        position = astype(q, np.float64) * (n - 1)
        lo = astype(_floor(position), np.intp)
        hi = minimum(lo + 1, n - 1)
        frac = position - lo
    else:
        position = q_value * (n - 1)
        lo = np.floor(position).astype(np.intp)
        hi = np.minimum(lo + 1, n - 1)
        frac = np.asarray(position - lo)
    # gamma is traced when q is, which gives the derivative with respect to q.
    gamma = astype((q * (n - 1) - lo) if isinstance(q, Tracer) else (position - lo), dtype)
    if q_value is None:  # (a constant s gathered at traced indices, too)
        below, above = getitem(s, (Ellipsis, lo)), getitem(s, (Ellipsis, hi))
    else:
        below, above = s[..., lo], s[..., hi]
    step = above - below
    # NumPy's lerp: from the nearer end, so gamma = 1 gives `above` exactly.
    result = _where(frac >= 0.5, above - step * (1 - gamma), below + step * gamma)
    if n:
        result = _nan_if_any(s, result, result.ndim - (s.ndim - 1))
    # Result axes: q's axes first, then the kept axes (NumPy's layout).
    k = s.ndim - 1
    q_shape = q.shape if q_value is None else q_value.shape
    if q_shape:
        result = bind(P.transpose, result, perm=tuple(range(k, result.ndim)) + tuple(range(k)))
    return _kept(result, a.shape, axes, q_shape) if keepdims else result


# ------------------------------------------------------------------------------------------------
