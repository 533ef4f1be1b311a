"""More of NumPy's names (issue 12 §7): constructors, dtype names, NumPy 2 aliases and the
NaN-aware reductions, as compositions of diffprog.numpy functions.

Constructors that take no array_like values (``zeros``, ``arange``, ``eye``, index helpers)
and dtype names are NumPy's own objects: their results are constants. ``full`` takes a traced
``fill_value``. The NaN-aware reductions replace NaN entries by the reduction's identity with
``where``, so NaN entries get a zero derivative; an all-NaN slice gives NaN as in NumPy (no
warning is emitted here).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Tracer, concrete
from . import _catalog
from ._core import as_operand, implements
from ._elementwise import (
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    astype,
    conj,
    isnan,
    power,
    real,
    where,
)
from ._linalg import matmul
from ._reductions import (
    _q_value,
    argmax,
    argmin,
    cumprod,
    cumsum,
    max,
    min,
    nanmean,
    prod,
    sum,
)
from ._shapes import broadcast_to, concatenate, expand_dims, squeeze

__all__ = list(_catalog.NAMES)

(zeros, ones, empty, arange, eye, identity, tri, indices, diag_indices, tril_indices,
 triu_indices) = (np.zeros, np.ones, np.empty, np.arange, np.eye, np.identity, np.tri,
                  np.indices, np.diag_indices, np.tril_indices, np.triu_indices)
(int8, int16, int32, int64, uint8, uint16, uint32, uint64, float16, complex64, complex128,
 bool_) = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
           np.float16, np.complex64, np.complex128, np.bool_)
dtype, finfo, iinfo, promote_types, can_cast = (np.dtype, np.finfo, np.iinfo, np.promote_types,
                                                np.can_cast)
isscalar = np.isscalar  # False for a traced value, as for an ndarray


def _kind(x: Any) -> str:
    x = as_operand(x)
    return x.dtype.kind if isinstance(x, Tracer) else np.asarray(x).dtype.kind


@implements(np.iscomplexobj)
def iscomplexobj(x: Any) -> bool:
    """Whether ``x`` has a complex dtype (NumPy's ``iscomplexobj``), read from the dtype, so
    traced values answer without their values.

    Example:
        >>> iscomplexobj([1.0, 2j]), iscomplexobj(1.0)
        (True, False)
    """
    return _kind(x) == "c"


@implements(np.isrealobj)
def isrealobj(x: Any) -> bool:
    """Whether ``x`` does not have a complex dtype (NumPy's ``isrealobj``).

    Example:
        >>> isrealobj(np.ones(2))
        True
    """
    return not iscomplexobj(x)

# NumPy 2's Array API names are the same ufuncs as the old ones (np.acos is np.arccos), so
# traced values already dispatch to these.
acos, asin, atan, acosh, asinh, atanh, atan2, pow = (arccos, arcsin, arctan, arccosh, arcsinh,
                                                     arctanh, arctan2, power)


def _traced_operand(a: Any) -> Any:
    """``a`` as a traced value, or None when it holds none (NumPy then computes)."""
    if isinstance(a, Tracer):
        return a
    a = as_operand(a)
    return a if isinstance(a, Tracer) else None


def full(shape: Any, fill_value: Any, dtype: Any = None, order: str = "C", *,
         device: Any = None, like: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value`` (NumPy's ``full``); a traced
    ``fill_value`` (scalar or broadcastable array) is differentiated. ``np.full`` itself
    converts ``fill_value`` before any dispatch, so traced fill values need ``dnp.full``.

    Example:
        >>> import diffprog as dp
        >>> float(dp.grad(lambda v: full((2, 3), v).sum())(1.5))
        6.0
    """
    v = _traced_operand(fill_value)
    if v is None:
        kw = {} if like is None else {"like": like}
        return np.full(shape, fill_value, dtype=dtype, order=order, device=device, **kw)
    if dtype is not None and np.dtype(dtype) != v.dtype:
        v = astype(v, dtype)
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    return broadcast_to(v, shape)


# -- NumPy 2 scans and matrix-vector products ----------------------------------------------

def _cumulative(scan: Any, np_fn: Any, identity_value: float, x: Any, axis: Any, dtype: Any,
                include_initial: bool) -> Any:
    a = _traced_operand(x)
    if a is None:
        return np_fn(x, axis=axis, dtype=dtype, include_initial=include_initial)
    if axis is None:
        if a.ndim > 1:
            raise ValueError("axis must be specified for multi-dimensional arrays")
        if a.ndim == 0:
            raise ValueError("axis must be specified for 0-d arrays")  # as NumPy: 1-d or axis
        axis = 0
    out = scan(a, axis=axis, dtype=dtype)
    if not include_initial:
        return out
    shape = list(out.shape)
    shape[axis] = 1
    first = np.full(shape, identity_value, dtype=out.dtype)
    return concatenate([first, out], axis=axis)


@implements(np.cumulative_sum)
def cumulative_sum(x: Any, /, *, axis: Any = None, dtype: Any = None, out: Any = None,
                   include_initial: bool = False) -> Any:
    """NumPy 2's ``cumulative_sum``: ``cumsum`` that needs ``axis`` beyond 1-D and can start
    with the initial 0.

    Example:
        >>> cumulative_sum(np.array([1.0, 2.0]), include_initial=True)
        array([0., 1., 3.])
    """
    if out is not None:
        raise NotImplementedError("cumulative_sum: out= is not supported on traced values")
    return _cumulative(cumsum, np.cumulative_sum, 0, x, axis, dtype, include_initial)


@implements(np.cumulative_prod)
def cumulative_prod(x: Any, /, *, axis: Any = None, dtype: Any = None, out: Any = None,
                    include_initial: bool = False) -> Any:
    """NumPy 2's ``cumulative_prod``: ``cumprod`` that needs ``axis`` beyond 1-D and can start
    with the initial 1.

    Example:
        >>> cumulative_prod(np.array([2.0, 3.0]), include_initial=True)
        array([1., 2., 6.])
    """
    if out is not None:
        raise NotImplementedError("cumulative_prod: out= is not supported on traced values")
    return _cumulative(cumprod, np.cumulative_prod, 1, x, axis, dtype, include_initial)


@implements(np.matvec)
def matvec(x1: Any, x2: Any, /, **kwargs: Any) -> Any:
    """Matrix-vector product over the last two axes of ``x1`` and the last of ``x2`` with
    broadcast batch axes (NumPy 2.2's ``matvec``; vectors are not conjugated).

    Example:
        >>> matvec(np.eye(2), np.array([1.0, 2.0]))
        array([1., 2.])
    """
    a, b = as_operand(x1), as_operand(x2)
    if not isinstance(a, Tracer) and not isinstance(b, Tracer):
        return np.matvec(a, b, **kwargs)
    _no_kwargs(kwargs, "matvec")
    if np.ndim(a) < 2 or np.ndim(b) < 1:
        raise ValueError("matvec: x1 must have at least 2 and x2 at least 1 dimension")
    return squeeze(matmul(a, expand_dims(b, -1)), -1)


@implements(np.vecmat)
def vecmat(x1: Any, x2: Any, /, **kwargs: Any) -> Any:
    """Vector-matrix product ``conj(v) @ M`` with broadcast batch axes (NumPy 2.2's
    ``vecmat``; the vector is conjugated).

    Example:
        >>> vecmat(np.array([1.0, 2.0]), np.eye(2))
        array([1., 2.])
    """
    a, b = as_operand(x1), as_operand(x2)
    if not isinstance(a, Tracer) and not isinstance(b, Tracer):
        return np.vecmat(a, b, **kwargs)
    _no_kwargs(kwargs, "vecmat")
    if np.ndim(a) < 1 or np.ndim(b) < 2:
        raise ValueError("vecmat: x1 must have at least 1 and x2 at least 2 dimensions")
    return squeeze(matmul(expand_dims(conj(a), -2), b), -2)


def _no_kwargs(kwargs: dict, name: str) -> None:
    if kwargs:
        raise NotImplementedError(f"{name}: ufunc keywords {sorted(kwargs)} are not supported "
                                  "on traced values")


# -- NaN-aware reductions ---------------------------------------------------------------------

def _nan_setup(a: Any, out: Any, name: str) -> Any:
    if out is not None:
        raise NotImplementedError(f"{name}: out= is not supported on traced values")
    return a


def _inexact(a: Any) -> bool:
    return a.dtype.kind in "fc"


def _all_nan_to_nan(result: Any, is_nan: Any, axis: Any, keepdims: bool) -> Any:
    """``result`` with NaN where a whole slice was NaN, as NumPy's nanmax/nanmin give."""
    from ._reductions import all as _all
    return where(_all(is_nan, axis=axis, keepdims=keepdims), np.nan, result)


@implements(np.nanmax)
def nanmax(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,
           initial: Any = np._NoValue, where: Any = True) -> Any:
    """Maximum ignoring NaN (NumPy's ``nanmax``); an all-NaN slice gives NaN and the NaN
    entries get a zero derivative.

    Example:
        >>> import diffprog as dp
        >>> dp.grad(lambda x: nanmax(x))(np.array([1.0, np.nan, 3.0]))
        array([0., 0., 1.])
    """
    return _nan_extreme(max, np.nanmax, -np.inf, a, axis, out, keepdims, initial, where)


@implements(np.nanmin)
def nanmin(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,
           initial: Any = np._NoValue, where: Any = True) -> Any:
    """Minimum ignoring NaN (NumPy's ``nanmin``); an all-NaN slice gives NaN and the NaN
    entries get a zero derivative.

    Example:
        >>> nanmin(np.array([1.0, np.nan, 3.0]))
        np.float64(1.0)
    """
    return _nan_extreme(min, np.nanmin, np.inf, a, axis, out, keepdims, initial, where)


def _nan_extreme(fn, np_fn, fill, a, axis, out, keepdims, initial, mask):
    t = _traced_operand(a)
    if t is None:
        return np_fn(a, axis=axis, out=out, keepdims=keepdims, initial=initial, where=mask)
    _nan_setup(t, out, np_fn.__name__)
    kw = {"initial": initial, "where": mask}
    if not _inexact(t):
        return fn(t, axis=axis, keepdims=keepdims, **kw)
    is_nan = isnan(t)
    result = fn(where(is_nan, fill, t), axis=axis, keepdims=keepdims, **kw)
    if initial is not np._NoValue:
        return result  # every slice has a value (NumPy's result too)
    if mask is not True:
        is_nan = is_nan | ~np.broadcast_to(mask, t.shape)
    return _all_nan_to_nan(result, is_nan, axis, keepdims)


@implements(np.nanargmax)
def nanargmax(a: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
    """Index of the maximum ignoring NaN (NumPy's ``nanargmax``). NumPy raises on an all-NaN
    slice; a traced one gives index 0 here when its values are not known.

    Example:
        >>> nanargmax(np.array([1.0, np.nan, 3.0]))
        np.int64(2)
    """
    return _nan_arg(argmax, np.nanargmax, -np.inf, a, axis, out, keepdims)


@implements(np.nanargmin)
def nanargmin(a: Any, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
    """Index of the minimum ignoring NaN (NumPy's ``nanargmin``); see :func:`nanargmax`.

    Example:
        >>> nanargmin(np.array([1.0, np.nan, 3.0]))
        np.int64(0)
    """
    return _nan_arg(argmin, np.nanargmin, np.inf, a, axis, out, keepdims)


def _nan_arg(fn, np_fn, fill, a, axis, out, keepdims):
    t = _traced_operand(a)
    if t is None:
        return np_fn(a, axis=axis, out=out, keepdims=keepdims)
    _nan_setup(t, out, np_fn.__name__)
    if _inexact(t):
        is_nan = isnan(t)
        m = concrete(is_nan)  # an ndarray eagerly; jit knows only its shape
        if isinstance(m, np.ndarray) and m.size and np.all(m, axis=axis).any():
            raise ValueError("All-NaN slice encountered")  # NumPy's refusal
        t = where(is_nan, fill, t)
    return fn(t, axis=axis, keepdims=keepdims)


@implements(np.nanprod)
def nanprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: bool = False, initial: Any = np._NoValue, where: Any = True) -> Any:
    """Product treating NaN as one (NumPy's ``nanprod``); NaN entries get a zero derivative.

    Example:
        >>> nanprod(np.array([2.0, np.nan, 3.0]))
        np.float64(6.0)
    """
    t = _traced_operand(a)
    if t is None:
        return np.nanprod(a, axis=axis, dtype=dtype, out=out, keepdims=keepdims,
                          initial=initial, where=where)
    _nan_setup(t, out, "nanprod")
    if _inexact(t):
        t = _replace_nan(t, 1.0)
    return prod(t, axis=axis, dtype=dtype, keepdims=keepdims, initial=initial, where=where)


def _replace_nan(t: Any, value: float) -> Any:
    return where(isnan(t), value, t)


@implements(np.nancumsum)
def nancumsum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    """Cumulative sum treating NaN as zero (NumPy's ``nancumsum``).

    Example:
        >>> nancumsum(np.array([1.0, np.nan, 3.0]))
        array([1., 1., 4.])
    """
    t = _traced_operand(a)
    if t is None:
        return np.nancumsum(a, axis=axis, dtype=dtype, out=out)
    _nan_setup(t, out, "nancumsum")
    return cumsum(_replace_nan(t, 0.0) if _inexact(t) else t, axis=axis, dtype=dtype)


@implements(np.nancumprod)
def nancumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    """Cumulative product treating NaN as one (NumPy's ``nancumprod``).

    Example:
        >>> nancumprod(np.array([2.0, np.nan, 3.0]))
        array([2., 2., 6.])
    """
    t = _traced_operand(a)
    if t is None:
        return np.nancumprod(a, axis=axis, dtype=dtype, out=out)
    _nan_setup(t, out, "nancumprod")
    return cumprod(_replace_nan(t, 1.0) if _inexact(t) else t, axis=axis, dtype=dtype)


@implements(np.nanvar)
def nanvar(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0,
           keepdims: bool = False, *, where: Any = np._NoValue, mean: Any = np._NoValue,
           correction: Any = np._NoValue) -> Any:
    """Variance of the entries that are not NaN (NumPy's ``nanvar``): ``sum(|a - m|²) /
    (n - ddof)`` with ``n`` the count of each slice; NaN where ``n - ddof <= 0`` (an all-NaN
    slice included), as NumPy gives. NaN entries get a zero derivative.

    Example:
        >>> nanvar(np.array([1.0, np.nan, 3.0]))
        np.float64(1.0)
    """
    t = _traced_operand(a)
    if t is None:
        kw = {k: v for k, v in (("where", where), ("mean", mean), ("correction", correction))
              if v is not np._NoValue}
        return np.nanvar(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims,
                         **kw)
    _nan_setup(t, out, "nanvar")
    if where is not np._NoValue or mean is not np._NoValue:
        raise NotImplementedError("nanvar: where= and mean= are not supported on traced values")
    if correction is not np._NoValue:
        if ddof != 0:
            raise ValueError("ddof and correction can't be provided simultaneously.")
        ddof = correction
    if not _inexact(t):
        from ._reductions import var
        return var(t, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)
    if dtype is not None:
        t = astype(t, dtype)
    is_nan = isnan(t)
    m = nanmean(t, axis=axis, keepdims=True)
    d = _replace_nan(t - m, 0.0)
    sq = real(d * conj(d)) if t.dtype.kind == "c" else d * d
    total = sum(sq, axis=axis, keepdims=keepdims)
    count = sum(astype(~is_nan, total.dtype), axis=axis, keepdims=keepdims)
    dof = count - ddof
    ok = dof > 0
    from ._elementwise import where as _w
    return _w(ok, total / _w(ok, dof, 1.0), np.nan)


@implements(np.nanstd)
def nanstd(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0,
           keepdims: bool = False, *, where: Any = np._NoValue, mean: Any = np._NoValue,
           correction: Any = np._NoValue) -> Any:
    """Standard deviation of the entries that are not NaN (NumPy's ``nanstd``): the square
    root of :func:`nanvar`, with a zero derivative where the variance is zero.

    Example:
        >>> nanstd(np.array([1.0, np.nan, 3.0]))
        np.float64(1.0)
    """
    t = _traced_operand(a)
    if t is None:
        kw = {k: v for k, v in (("where", where), ("mean", mean), ("correction", correction))
              if v is not np._NoValue}
        return np.nanstd(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims,
                         **kw)
    from ._elementwise import sqrt
    from ._elementwise import where as _w  # the argument "where" hides the function
    v = nanvar(t, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims, where=where,
               mean=mean, correction=correction)
    zero = v == 0
    return _w(zero, 0.0, sqrt(_w(zero, 1.0, v)))


# -- NaN-aware order statistics ---------------------------------------------------------------

def _nan_quantile(a: Any, q: Any, axis: Any, keepdims: bool, weak_q: bool) -> Any:
    """Linear quantiles of the entries that are not NaN: sorting puts NaN last, so each
    slice's ``n`` values come first and the positions ``q (n - 1)`` are gathered per slice
    (at indices computed from the NaN mask: traced under jit, constant eagerly)."""
    from ._indexing import take_along_axis
    from ._reductions import _kept, _sorted_last
    from ._shapes import stack
    if a.dtype.kind == "c":
        raise TypeError("a must be an array of real numbers")
    qv = _q_value(q)  # None under jit: a traced q is not checked (as quantile's)
    if qv is not None and not (np.all(qv >= 0) and np.all(qv <= 1)):
        raise ValueError("Quantiles must be in the range [0, 1]")
    traced_q = isinstance(q, Tracer)
    q_shape = tuple(q.shape) if traced_q else qv.shape
    s, axes = _sorted_last(a, axis)
    dtype = (s.dtype if weak_q and s.dtype.kind == "f"
             else np.result_type(s.dtype, q.dtype if traced_q else np.asarray(q).dtype,
                                 np.float16))
    s = astype(s, dtype)
    if s.shape[-1] == 0:  # empty slices: NaN (there is nothing to gather)
        result = broadcast_to(sum(s, axis=-1) * np.nan, q_shape + s.shape[:-1])
        return _kept(result, a.shape, axes, q_shape) if keepdims else result
    count = sum(astype(~isnan(s), np.float64), axis=-1, keepdims=True)
    top = where(count > 0, count - 1, 0.0)
    results = []
    # a traced q: its entries as traced scalars, so the derivative in q is the slope
    # top * (above - below) through frac (lo is piecewise constant)
    qs = (list(astype(q, np.float64).reshape(-1)) if traced_q and q.ndim
          else [astype(q, np.float64)] if traced_q else [float(qi) for qi in qv.flat])
    for qi in qs:
        position = top * qi
        lo = _floor_of(position)
        frac = position - lo
        hi = where(lo + 1 > top, top, lo + 1)
        below = take_along_axis(s, astype(lo, np.intp), axis=-1)
        above = take_along_axis(s, astype(hi, np.intp), axis=-1)
        step = above - below
        g = astype(frac, dtype)
        # NumPy's lerp: from the nearer end
        r = where(frac >= 0.5, above - step * (1 - g), below + step * g)
        r = where(count > 0, r, np.nan)
        results.append(squeeze(r, -1))
    result = stack(results).reshape(q_shape + results[0].shape) if q_shape else results[0]
    return _kept(result, a.shape, axes, q_shape) if keepdims else result


def _floor_of(x: Any) -> Any:
    from ._elementwise import floor
    return floor(x)


def _weak_q(q: Any) -> bool:
    return type(q) in (int, float) or (isinstance(q, Tracer) and q.weak_type)


@implements(np.nanquantile)
def nanquantile(a: Any, q: Any, axis: Any = None, out: Any = None,
                overwrite_input: bool = False, method: str = "linear", keepdims: bool = False,
                *, weights: Any = None) -> Any:
    """The ``q``-th quantiles of the entries that are not NaN (NumPy's ``nanquantile``, the
    default ``method="linear"``); an all-NaN slice gives NaN. The derivative goes to the two
    neighbouring sorted values with the interpolation weights (none to NaN entries); with
    respect to ``q`` it is the slope ``(n - 1) (above - below)`` of the slice's ``n`` values.

    Example:
        >>> float(nanquantile(np.array([1.0, np.nan, 3.0, 2.0]), 0.25))
        1.5
    """
    t, qo = _traced_operand(a), as_operand(q)
    if t is None:
        if not isinstance(qo, Tracer):
            return np.nanquantile(a, q, axis=axis, out=out, overwrite_input=overwrite_input,
                                  method=method, keepdims=keepdims, weights=weights)
        t = np.asarray(as_operand(a))
    _nan_setup(t, out, "nanquantile")
    if method != "linear" or weights is not None:
        raise NotImplementedError("nanquantile of traced values supports method='linear' "
                                  "without weights only")
    return _nan_quantile(t, qo, axis, keepdims, _weak_q(qo))


@implements(np.nanpercentile)
def nanpercentile(a: Any, q: Any, axis: Any = None, out: Any = None,
                  overwrite_input: bool = False, method: str = "linear",
                  keepdims: bool = False, *, weights: Any = None) -> Any:
    """The ``q``-th percentiles (0 <= q <= 100) of the entries that are not NaN (NumPy's
    ``nanpercentile``): :func:`nanquantile` at ``q / 100``.

    Example:
        >>> float(nanpercentile(np.array([1.0, np.nan, 3.0, 2.0]), 50))
        2.0
    """
    t, qo = _traced_operand(a), as_operand(q)
    if t is None and not isinstance(qo, Tracer):
        return np.nanpercentile(a, q, axis=axis, out=out, overwrite_input=overwrite_input,
                                method=method, keepdims=keepdims, weights=weights)
    qv = _q_value(qo)
    if qv is not None and not (np.all(qv >= 0) and np.all(qv <= 100)):
        raise ValueError("Percentiles must be in the range [0, 100]")
    if isinstance(qo, Tracer):
        q100 = qo / 100
    else:
        q100 = float(q) / 100 if _weak_q(q) else np.true_divide(q, 100)
    return nanquantile(a if t is None else t, q100, axis, out, overwrite_input, method,
                       keepdims, weights=weights)


@implements(np.nanmedian)
def nanmedian(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
              keepdims: bool = False) -> Any:
    """Median of the entries that are not NaN (NumPy's ``nanmedian``): the 0.5 quantile, the
    mean of the two middle values for an even count; an all-NaN slice gives NaN.

    Example:
        >>> float(nanmedian(np.array([1.0, np.nan, 4.0, 2.0, 3.0])))
        2.5
    """
    t = _traced_operand(a)
    if t is None:
        return np.nanmedian(a, axis=axis, out=out, overwrite_input=overwrite_input,
                            keepdims=keepdims)
    return nanquantile(t, 0.5, axis, out, keepdims=keepdims)


# -- group 4: elementwise tests and functions -------------------------------------------------

def _ops(*xs: Any) -> tuple[list, bool]:
    """The operands through :func:`as_operand`, and whether any is traced."""
    out = [as_operand(x) for x in xs]
    return out, any(isinstance(x, Tracer) for x in out)


def _promoted(*xs: Any) -> np.dtype:
    from ._core import _promotes_as
    return np.result_type(*[_promotes_as(x) for x in xs])


def _ew() -> Any:
    from . import _elementwise
    return _elementwise


@implements(np.heaviside)
def heaviside(x1: Any, x2: Any, /) -> Any:
    """The step function: 0 for ``x1 < 0``, ``x2`` at 0, 1 for ``x1 > 0`` (NumPy's
    ``heaviside``); the derivative goes to ``x2`` where ``x1 == 0``.

    Example:
        >>> heaviside(np.array([-1.0, 0.0, 2.0]), 0.5)
        array([0. , 0.5, 1. ])
    """
    (a, b), traced = _ops(x1, x2)
    if not traced:
        return np.heaviside(a, b)
    e = _ew()
    out = where(e.less(a, 0), 0.0, where(e.greater(a, 0), 1.0, b))
    out = where(isnan(a), np.nan, out)
    dt = _promoted(a, b)
    return out if out.dtype == dt else astype(out, dt)


@implements(np.copysign)
def copysign(x1: Any, x2: Any, /) -> Any:
    """``|x1|`` with the sign of ``x2`` (NumPy's ``copysign``).

    Example:
        >>> copysign(np.array([1.0, 2.0]), -0.0)
        array([-1., -2.])
    """
    (a, b), traced = _ops(x1, x2)
    if not traced:
        return np.copysign(a, b)
    e = _ew()
    dt = _promoted(a, b, 0.0)
    m = e.abs(a)
    out = where(e.signbit(b), -m, m)
    return out if out.dtype == dt else astype(out, dt)


@implements(np.isclose)
def isclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Any:
    """``|a - b| <= atol + rtol |b|`` elementwise with NumPy's treatment of inf and NaN
    (NumPy's ``isclose``); a boolean result, no derivative.

    Example:
        >>> isclose(np.array([1.0, np.inf]), [1.0 + 1e-9, np.inf])
        array([ True,  True])
    """
    (x, y), traced = _ops(a, b)
    if not traced:
        return np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)
    e = _ew()
    close = e.less_equal(e.abs(x - y), atol + rtol * e.abs(y)) & e.isfinite(y)
    out = close | e.equal(x, y)
    if equal_nan:
        out = out | (isnan(x) & isnan(y))
    return out


@implements(np.allclose)
def allclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> Any:
    """Whether every pair is :func:`isclose` (NumPy's ``allclose``); a traced 0-d boolean for
    traced operands.

    Example:
        >>> bool(allclose([1.0, 2.0], [1.0, 2.0 + 1e-9]))
        True
    """
    (x, y), traced = _ops(a, b)
    if not traced:
        return np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)
    from ._reductions import all as _all
    return _all(isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan))


@implements(np.array_equal)
def array_equal(a1: Any, a2: Any, equal_nan: bool = False) -> Any:
    """Whether the arrays have the same shape and entries (NumPy's ``array_equal``).

    Example:
        >>> bool(array_equal([1.0, 2.0], np.array([1.0, 2.0])))
        True
    """
    (x, y), traced = _ops(a1, a2)
    if not traced:
        return np.array_equal(x, y, equal_nan=equal_nan)
    if np.shape(x) != np.shape(y):
        return False
    from ._reductions import all as _all
    e = _ew()
    same = e.equal(x, y)
    if equal_nan:
        same = same | (isnan(x) & isnan(y))
    return _all(same)


@implements(np.isneginf)
def isneginf(x: Any, out: Any = None) -> Any:
    """Where ``x`` is -inf (NumPy's ``isneginf``).

    Example:
        >>> isneginf(np.array([-np.inf, np.inf, 1.0]))
        array([ True, False, False])
    """
    (a,), traced = _ops(x)
    if not traced:
        return np.isneginf(a, out=out)
    _nan_setup(a, out, "isneginf")
    e = _ew()
    return e.isinf(a) & e.signbit(a)


@implements(np.isposinf)
def isposinf(x: Any, out: Any = None) -> Any:
    """Where ``x`` is +inf (NumPy's ``isposinf``).

    Example:
        >>> isposinf(np.array([-np.inf, np.inf, 1.0]))
        array([False,  True, False])
    """
    (a,), traced = _ops(x)
    if not traced:
        return np.isposinf(a, out=out)
    _nan_setup(a, out, "isposinf")
    e = _ew()
    return e.isinf(a) & ~e.signbit(a)


@implements(np.isreal)
def isreal(x: Any) -> Any:
    """Where the imaginary part is zero (NumPy's ``isreal``).

    Example:
        >>> isreal(np.array([1.0 + 0j, 1j]))
        array([ True, False])
    """
    (a,), traced = _ops(x)
    if not traced:
        return np.isreal(a)
    return _ew().equal(_ew().imag(a), 0)


@implements(np.iscomplex)
def iscomplex(x: Any) -> Any:
    """Where the imaginary part is not zero (NumPy's ``iscomplex``).

    Example:
        >>> iscomplex(np.array([1.0 + 0j, 1j]))
        array([False,  True])
    """
    (a,), traced = _ops(x)
    if not traced:
        return np.iscomplex(a)
    return _ew().not_equal(_ew().imag(a), 0)


@implements(np.fix)
def fix(x: Any, out: Any = None) -> Any:
    """Round towards zero (NumPy's ``fix``); the derivative is zero.

    Example:
        >>> fix(np.array([-1.5, 1.5]))
        array([-1.,  1.])
    """
    (a,), traced = _ops(x)
    if not traced:
        return np.fix(a, out=out)
    _nan_setup(a, out, "fix")
    return _ew().trunc(a)


@implements(np.ldexp)
def ldexp(x1: Any, x2: Any, /) -> Any:
    """``x1 * 2**x2`` for integer ``x2`` (NumPy's ``ldexp``); differentiable in ``x1``.

    Example:
        >>> ldexp(np.array([1.5]), 3)
        array([12.])
    """
    (a, b), traced = _ops(x1, x2)
    if not traced:
        return np.ldexp(a, b)
    dt = np.ldexp(np.ones((), _promoted(a) if not isinstance(a, float) else np.float64),
                  np.ones((), np.asarray(concrete(b)).dtype if not isinstance(b, Tracer)
                          else b.dtype)).dtype
    if isinstance(b, Tracer) and b.dtype.kind not in "iub":
        raise TypeError("ldexp: the exponents must be integers")
    scale = _ew().exp2(astype(b, dt) if isinstance(b, Tracer) else np.asarray(b).astype(dt))
    out = a * scale
    return out if out.dtype == dt else astype(out, dt)


@implements(np.modf)
def modf(x: Any, /) -> tuple:
    """The fractional and integral parts, both with the sign of ``x`` (NumPy's ``modf``).

    Example:
        >>> modf(np.array([-1.5, 2.25]))
        (array([-0.5 ,  0.25]), array([-1.,  2.]))
    """
    (a,), traced = _ops(x)
    if not traced:
        return np.modf(a)
    whole = _ew().trunc(a)
    if a.dtype.kind not in "fc":
        whole = astype(whole, np.float64)
        return astype(a, np.float64) - whole, whole
    return a - whole, whole


# -- group 4: arrays and polynomials ----------------------------------------------------------

def _arr(x: Any) -> Any:
    x = as_operand(x)
    return x if isinstance(x, Tracer) else np.asarray(x)


@implements(np.diagflat)
def diagflat(v: Any, k: int = 0) -> Any:
    """A 2-D array with the flattened ``v`` on diagonal ``k`` (NumPy's ``diagflat``).

    Example:
        >>> diagflat([[1.0, 2.0]])
        array([[1., 0.],
               [0., 2.]])
    """
    (a,), traced = _ops(v)
    if not traced:
        return np.diagflat(a, k)
    from ._shapes import diag, ravel
    return diag(ravel(a), k)


@implements(np.vander)
def vander(x: Any, N: int | None = None, increasing: bool = False) -> Any:
    """The Vandermonde matrix of the 1-D ``x`` (NumPy's ``vander``), built by a cumulative
    product so the derivative is exact at zeros.

    Example:
        >>> vander(np.array([2.0, 3.0]), 3)
        array([[4., 2., 1.],
               [9., 3., 1.]])
    """
    (a,), traced = _ops(x)
    if not traced:
        return np.vander(a, N, increasing)
    if a.ndim != 1:
        raise ValueError("x must be a one-dimensional array or sequence.")
    n = a.shape[0] if N is None else int(N)
    dt = np.promote_types(a.dtype, int)  # NumPy's dtype: float32 becomes float64
    col = expand_dims(astype(a, dt) if a.dtype != dt else a, 1)
    parts = [np.ones((a.shape[0], 1), dt)] + [col] * (n - 1) if n else [np.ones((a.shape[0], 0),
                                                                               dt)]
    out = cumprod(concatenate(parts, axis=1), axis=1) if n > 1 else concatenate(parts, axis=1)
    if not n:
        return out + 0 * col[:, :0]
    if n == 1:
        out = out + 0 * col
    return out if increasing else out[:, ::-1]


@implements(np.ediff1d)
def ediff1d(ary: Any, to_end: Any = None, to_begin: Any = None) -> Any:
    """Differences of the flattened array, with values before and after (NumPy's
    ``ediff1d``).

    Example:
        >>> ediff1d([1.0, 4.0, 9.0], to_begin=0.0)
        array([0., 3., 5.])
    """
    (a, end, begin), traced = _ops(ary, to_end, to_begin)
    if not traced:
        return np.ediff1d(a, to_end=end, to_begin=begin)
    from ._shapes import ravel
    a = ravel(_arr(a))
    parts = [a[1:] - a[:-1]]
    dt = parts[0].dtype
    if begin is not None:
        parts.insert(0, astype(ravel(_arr(begin)), dt))
    if end is not None:
        parts.append(astype(ravel(_arr(end)), dt))
    return concatenate(parts) if len(parts) > 1 else parts[0]


def _poly(x: Any) -> Any:
    from ._shapes import atleast_1d
    return atleast_1d(_arr(x))


@implements(np.polyadd)
def polyadd(a1: Any, a2: Any) -> Any:
    """The sum of two polynomials (coefficients, highest power first; NumPy's ``polyadd``).

    Example:
        >>> polyadd([1.0, 2.0], [1.0])
        array([1., 3.])
    """
    (p, q), traced = _ops(a1, a2)
    if not traced:
        return np.polyadd(p, q)
    return _poly_sum(_poly(p), _poly(q))


@implements(np.polysub)
def polysub(a1: Any, a2: Any) -> Any:
    """The difference of two polynomials (NumPy's ``polysub``).

    Example:
        >>> polysub([1.0, 2.0], [1.0])
        array([1., 1.])
    """
    (p, q), traced = _ops(a1, a2)
    if not traced:
        return np.polysub(p, q)
    return _poly_sum(_poly(p), -_poly(q))


def _poly_sum(p: Any, q: Any) -> Any:
    from ._shapes import pad
    n = _builtins_max(p.shape[0], q.shape[0])
    return (pad(p, (n - p.shape[0], 0)) if p.shape[0] < n else p) + (
        pad(q, (n - q.shape[0], 0)) if q.shape[0] < n else q)


def _builtins_max(a: int, b: int) -> int:
    return a if a >= b else b


@implements(np.polymul)
def polymul(a1: Any, a2: Any) -> Any:
    """The product of two polynomials, the convolution of their coefficients (NumPy's
    ``polymul``).

    Example:
        >>> polymul([1.0, 1.0], [1.0, -1.0])
        array([ 1.,  0., -1.])
    """
    (p, q), traced = _ops(a1, a2)
    if not traced:
        return np.polymul(p, q)
    from ._more import convolve
    return convolve(_poly(p), _poly(q))


@implements(np.polyder)
def polyder(p: Any, m: int = 1) -> Any:
    """The ``m``-th derivative of a polynomial (NumPy's ``polyder``).

    Example:
        >>> polyder(np.array([1.0, 2.0, 3.0]))
        array([2., 2.])
    """
    (c,), traced = _ops(p)
    if not traced:
        return np.polyder(c, m)
    if m < 0:
        raise ValueError("Order of derivative must be positive (see polyint)")
    c = _poly(c)
    for _ in range(int(m)):
        n = c.shape[0] - 1
        c = c[:-1] * np.arange(n, 0, -1)  # a constant becomes the empty polynomial
    return c


@implements(np.polyint)
def polyint(p: Any, m: int = 1, k: Any = None) -> Any:
    """The ``m``-th antiderivative of a polynomial with integration constants ``k`` (NumPy's
    ``polyint``).

    Example:
        >>> polyint(np.array([3.0, 2.0]), k=1.0)
        array([1.5, 2. , 1. ])
    """
    (c, kk), traced = _ops(p, k)
    if not traced:
        return np.polyint(c, m, k)
    m = int(m)
    if m < 0:
        raise ValueError("Order of integral must be positive (see polyder)")
    if kk is None:
        kk = np.zeros(m)
    kk = _poly(kk)
    if kk.shape[0] == 1 and m > 1:
        kk = broadcast_to(kk, (m,))
    if kk.shape[0] < m:
        raise ValueError("k must be a scalar or a rank-1 array of length 1 or >m.")
    c = _poly(c)
    for i in range(m):
        n = c.shape[0]
        c = concatenate([c / np.arange(n, 0, -1).astype(np.float64), kk[i:i + 1]])
    return c


@implements(np.sort_complex)
def sort_complex(a: Any) -> Any:
    """The values sorted (real part first, then imaginary) as complex numbers (NumPy's
    ``sort_complex``).

    Example:
        >>> sort_complex(np.array([2.0, 1.0]))
        array([1.+0.j, 2.+0.j])
    """
    (x,), traced = _ops(a)
    if not traced:
        return np.sort_complex(x)
    from ._reductions import sort
    s = sort(x)
    if s.dtype.kind == "c":
        return s
    # NumPy's choice: complex64 for 8- and 16-bit integers, complex128 otherwise
    dt = np.complex64 if s.dtype.char in "bhBH" else np.complex128
    return astype(s, dt)


@implements(np.cov)
def cov(m: Any, y: Any = None, rowvar: bool = True, bias: bool = False, ddof: Any = None,
        fweights: Any = None, aweights: Any = None, *, dtype: Any = None) -> Any:
    """The covariance matrix of the variables (rows, or columns with ``rowvar=False``) of
    ``m`` and ``y`` (NumPy's ``cov``), differentiable in ``m``, ``y`` and the weights.

    Example:
        >>> cov([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])
        array([[1., 2.],
               [2., 4.]])
    """
    (x, yy, fw, aw), traced = _ops(m, y, fweights, aweights)
    if not traced:
        return np.cov(x, yy, rowvar, bias, ddof, fweights, aweights, dtype=dtype)
    return _cov(x, yy, rowvar, bias, ddof, dtype, fw, aw)


def _cov_weights(w: Any, n: int, name: str) -> Any:
    """A weights argument of cov as NumPy checks it: float, 1-D, one per observation,
    non-negative (and whole numbers for ``fweights``) where its value is known."""
    w = astype(_arr(w), np.float64)
    if w.ndim > 1:
        raise RuntimeError(f"cannot handle multidimensional {name}")
    if w.shape[0] != n:
        raise RuntimeError(f"incompatible numbers of samples and {name}")
    try:
        v = np.asarray(concrete(w))
    except Exception:  # under jit: not known, not checked (as quantile's q)
        return w
    if name == "fweights" and not np.all(v == np.around(v)):
        raise TypeError("fweights must be integer")
    if np.any(v < 0):
        raise ValueError(f"{name} cannot be negative")
    return w


def _cov(x: Any, yy: Any, rowvar: bool, bias: bool, ddof: Any, dtype: Any,
         fweights: Any = None, aweights: Any = None) -> Any:
    from ._reductions import mean
    from ._shapes import atleast_2d, transpose
    x = _arr(x)
    if x.ndim > 2:
        raise ValueError("m has more than 2 dimensions")
    dt = np.result_type(x.dtype, np.float64) if dtype is None else np.dtype(dtype)
    X = atleast_2d(astype(x, dt))
    if not rowvar and X.shape[0] != 1:
        X = transpose(X)
    if yy is not None:
        Y = atleast_2d(astype(_arr(yy), dt))
        if not rowvar and Y.shape[0] != 1:
            Y = transpose(Y)
        X = concatenate([X, Y], axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    n = X.shape[1]
    if fweights is None and aweights is None:
        d = X - mean(X, axis=1, keepdims=True)
        c = matmul(d, transpose(conj(d))) / (n - ddof)
        return squeeze(c) if c.shape == (1, 1) or 1 in c.shape else c
    # NumPy's weighted estimate, in its order: w = fweights * aweights, the weighted mean,
    # and the normalisation that makes it unbiased for frequency or reliability weights.
    w = aw = None
    if fweights is not None:
        w = _cov_weights(fweights, n, "fweights")
    if aweights is not None:
        aw = _cov_weights(aweights, n, "aweights")
        w = aw if w is None else w * aw
    w_sum = sum(w)
    avg = sum(X * w, axis=1, keepdims=True) / astype(w_sum, X.dtype)
    if ddof == 0:
        fact = w_sum
    elif aw is None:
        fact = w_sum - ddof
    else:
        fact = w_sum - ddof * sum(w * aw) / w_sum
    fact = _ew().where(fact <= 0, 0.0, fact)  # NumPy warns and divides by 0 there
    d = X - avg
    c = matmul(d, transpose(conj(d * w))) * astype(1.0 / fact, X.dtype)
    return squeeze(c) if c.shape == (1, 1) or 1 in c.shape else c


@implements(np.corrcoef)
def corrcoef(x: Any, y: Any = None, rowvar: bool = True, *, dtype: Any = None) -> Any:
    """The correlation coefficients ``cov / sqrt(outer(var, var))`` clipped to [-1, 1]
    (NumPy's ``corrcoef``).

    Example:
        >>> corrcoef([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
        array([[ 1., -1.],
               [-1.,  1.]])
    """
    (a, b), traced = _ops(x, y)
    if not traced:
        return np.corrcoef(a, b, rowvar, dtype=dtype)
    from ._elementwise import clip, sqrt
    from ._shapes import diagonal
    c = _cov(a, b, rowvar, False, None, dtype)
    if c.ndim == 0:
        return c / c
    d = sqrt(real(diagonal(c)))
    c = c / expand_dims(d, 1) / expand_dims(d, 0)
    if c.dtype.kind == "c":
        return c
    return clip(c, -1, 1)


@implements(np.resize)
def resize(a: Any, new_shape: Any) -> Any:
    """``a`` flattened, repeated as needed and reshaped to ``new_shape`` (NumPy's
    ``resize``).

    Example:
        >>> resize(np.array([1.0, 2.0, 3.0]), (2, 2))
        array([[1., 2.],
               [3., 1.]])
    """
    (x,), traced = _ops(a)
    if not traced:
        return np.resize(x, new_shape)
    from ._shapes import ravel, reshape, tile
    shape = (int(new_shape),) if np.ndim(new_shape) == 0 else tuple(int(s) for s in new_shape)
    size = int(np.prod(shape))
    flat = ravel(_arr(x))
    if size == 0:
        return reshape(flat[:0], shape)
    if flat.shape[0] == 0:  # NumPy fills with zeros
        return np.zeros(shape, flat.dtype)
    reps = -(-size // flat.shape[0])
    return reshape(tile(flat, reps)[:size], shape)


# -- group 4: selection, counting, phases ---------------------------------------------------

def _concrete_index(x: Any, name: str, what: str) -> np.ndarray:
    """The value of an argument that decides shapes or positions: it must be known."""
    v = concrete(as_operand(x))
    if not isinstance(v, (np.ndarray, np.generic, int, float, bool, list, tuple)):
        raise TypeError(f"{name}: {what} must be concrete (it decides the result's shape or "
                        "positions); under jit pass it as a constant")
    return np.asarray(v)


@implements(np.isin)
def isin(element: Any, test_elements: Any, assume_unique: bool = False, invert: bool = False,
         *, kind: Any = None) -> Any:
    """Whether each entry of ``element`` is in ``test_elements`` (NumPy's ``isin``), by
    comparing with every test value; a boolean result.

    Example:
        >>> isin(np.array([1.0, 2.0]), [2.0, 3.0])
        array([False,  True])
    """
    (e, t), traced = _ops(element, test_elements)
    if not traced:
        return np.isin(e, t, assume_unique=assume_unique, invert=invert, kind=kind)
    from ._reductions import any as _any
    from ._shapes import ravel
    e = _arr(e)
    t = ravel(_arr(t))
    hit = _any(_ew().equal(expand_dims(e, -1), t), axis=-1) if t.shape[0] else \
        np.zeros(np.shape(e), bool)
    return ~hit if invert else hit


@implements(np.digitize)
def digitize(x: Any, bins: Any, right: bool = False) -> Any:
    """The index of the bin of each value (NumPy's ``digitize``); integers, no derivative.
    Traced ``bins`` under jit are taken to be increasing.

    Example:
        >>> digitize(np.array([0.5, 1.5, 2.5]), [1.0, 2.0])
        array([0, 1, 2])
    """
    (v, b), traced = _ops(x, bins)
    if not traced:
        return np.digitize(v, b, right)
    from ._reductions import searchsorted
    b = _arr(b)
    if b.ndim != 1:
        raise ValueError("bins must be 1-dimensional")
    bv = concrete(b)
    if isinstance(bv, np.ndarray) and bv.size > 1:
        steps = np.diff(bv)
        if not (np.all(steps >= 0) or np.all(steps <= 0)):
            raise ValueError("bins must be monotonically increasing or decreasing")
        if np.all(steps <= 0) and np.any(steps < 0):  # decreasing bins, as NumPy's
            return b.shape[0] - searchsorted(b[::-1], v, side="left" if right else "right")
    out = searchsorted(b, v, side="left" if right else "right")
    return out


@implements(np.bincount)
def bincount(x: Any, /, weights: Any = None, minlength: int = 0) -> Any:
    """Counts (or sums of ``weights``) of each non-negative integer in ``x`` (NumPy's
    ``bincount``), differentiable in ``weights``; ``x`` must be concrete.

    Example:
        >>> import diffprog as dp
        >>> dp.grad(lambda w: bincount(np.array([0, 2, 2]), w)[2])(np.ones(3))
        array([0., 1., 1.])
    """
    (xi, w), traced = _ops(x, weights)
    if not traced:
        return np.bincount(xi, weights=w, minlength=minlength)
    xi = _concrete_index(xi, "bincount", "x")
    if w is None:
        return np.bincount(xi, minlength=minlength)
    n = np.bincount(xi, minlength=minlength).shape[0]  # NumPy's checks and length
    w = _arr(w)
    if w.shape != xi.shape:
        raise ValueError("The weights and list don't have the same length.")
    from ._misc import at
    w = astype(w, np.float64) if w.dtype != np.float64 else w
    return at(np.zeros(n))[xi].add(w)


@implements(np.histogram)
def histogram(a: Any, bins: Any = 10, range: Any = None, density: Any = None,
              weights: Any = None) -> tuple:
    """The histogram of ``a`` (NumPy's ``histogram``), differentiable in ``weights``: the
    bin of each entry is decided by ``a``'s values, which must be concrete; the edges are
    NumPy's (with no derivative in ``a``).

    Example:
        >>> import diffprog as dp
        >>> dp.grad(lambda w: histogram(np.array([0.1, 0.2, 0.9]), 2, weights=w)[0][0])(
        ...     np.ones(3))
        array([1., 1., 0.])
    """
    (x, w), traced = _ops(a, weights)
    traced_bins = None
    if not isinstance(bins, (str, int, np.integer)):
        b = as_operand(bins)
        traced_bins = b if isinstance(b, Tracer) else None
    if not traced and traced_bins is None:
        return np.histogram(x, bins, range, density, w)
    xv = _concrete_index(x, "histogram", "a")
    if traced_bins is not None:
        # Which bin an entry falls in changes only where an edge crosses an entry: the
        # counts are piecewise constant in the edges (no derivative); density divides by
        # the bins' widths, which carries one.
        bins = _concrete_index(traced_bins, "histogram", "bins")
    counts, edges = np.histogram(xv, bins, range)
    if w is None:
        if traced_bins is not None:
            hist = counts
            if density:
                hist = _density(astype(counts, np.float64), traced_bins)
            return hist, traced_bins
        if density:
            return np.histogram(xv, bins, range, density=True)
        return counts, edges
    w = _arr(w)
    if np.shape(w) != xv.shape:
        raise ValueError("weights should have the same shape as a.")
    xf, wf = xv.ravel(), w.reshape(-1)
    idx = np.searchsorted(edges, xf, side="right") - 1
    idx[xf == edges[-1]] = len(edges) - 2  # the last bin is closed
    keep = (xf >= edges[0]) & (xf <= edges[-1])
    from ._misc import at
    dt = np.result_type(w.dtype, np.float64) if w.dtype.kind in "biu" else w.dtype
    wf = astype(wf, dt) if wf.dtype != dt else wf
    hist = at(np.zeros(len(edges) - 1, dt))[idx[keep]].add(wf[np.flatnonzero(keep)])
    if density:
        hist = _density(hist, edges if traced_bins is None else traced_bins)
    return hist, (edges if traced_bins is None else traced_bins)


def _density(hist: Any, edges: Any) -> Any:
    """NumPy's density: ``hist / widths / sum(hist)``, in its order and precision."""
    from ._more import diff
    db = astype(diff(edges), float) if isinstance(edges, Tracer) else np.diff(edges).astype(float)
    dt = np.result_type(hist.dtype, db.dtype)
    hist = astype(hist, dt) if hist.dtype != dt else hist
    return hist / db / sum(hist)


@implements(np.compress)
def compress(condition: Any, a: Any, axis: Any = None, out: Any = None) -> Any:
    """The entries of ``a`` where the concrete ``condition`` is true along ``axis`` (NumPy's
    ``compress``).

    Example:
        >>> compress([True, False, True], np.array([1.0, 2.0, 3.0]))
        array([1., 3.])
    """
    (c, x), traced = _ops(condition, a)
    if not traced:
        return np.compress(c, x, axis=axis, out=out)
    _nan_setup(x, out, "compress")
    from ._indexing import take
    from ._shapes import ravel
    cv = _concrete_index(c, "compress", "condition").astype(bool).ravel()
    x = _arr(x)
    if axis is None:
        x, axis = ravel(x), 0
    n = x.shape[axis]
    if cv.shape[0] > n:
        raise IndexError(f"index {cv.shape[0] - 1} is out of bounds for axis {axis} with "
                         f"size {n}")
    return take(x, np.flatnonzero(cv), axis=axis)


@implements(np.extract)
def extract(condition: Any, arr: Any) -> Any:
    """The entries of the flattened ``arr`` where the flattened concrete ``condition`` is
    true (NumPy's ``extract``).

    Example:
        >>> extract(np.array([True, False]), np.array([1.0, 2.0]))
        array([1.])
    """
    (c, x), traced = _ops(condition, arr)
    if not traced:
        return np.extract(c, x)
    from ._indexing import take
    from ._shapes import ravel
    cv = _concrete_index(c, "extract", "condition").ravel()
    return take(ravel(_arr(x)), np.flatnonzero(cv), axis=0)


@implements(np.choose)
def choose(a: Any, choices: Any, out: Any = None, mode: str = "raise") -> Any:
    """Entry ``i`` from ``choices[a[i]]`` with everything broadcast (NumPy's ``choose``);
    differentiable in ``choices``.

    Example:
        >>> choose(np.array([1, 0]), [np.array([1.0, 2.0]), np.array([3.0, 4.0])])
        array([3., 2.])
    """
    from ._core import _holds_tracer
    if not isinstance(a, Tracer) and not _holds_tracer((choices,)) and not isinstance(
            choices, Tracer):
        return np.choose(a, choices, out=out, mode=mode)
    _nan_setup(a, out, "choose")
    from ._indexing import take_along_axis
    from ._shapes import broadcast_arrays, stack
    idx = _arr(a)
    items = [as_operand(c) for c in choices] if not isinstance(choices, Tracer) else \
        [choices[i] for i in range(choices.shape[0])]
    dt = _promoted(*items)  # Python scalars promote weakly, as in NumPy
    items = [astype(c, dt) if isinstance(c, Tracer) else np.asarray(c, dt) for c in items]
    n = len(items)
    parts = broadcast_arrays(idx, *items)
    idx, items = parts[0], parts[1:]
    iv = concrete(idx)
    if mode == "raise":
        if isinstance(iv, np.ndarray) and iv.size and (iv.min() < 0 or iv.max() >= n):
            raise ValueError("invalid entry in choice array")
    elif mode == "wrap":
        idx = idx % n
    elif mode == "clip":
        from ._elementwise import clip
        idx = clip(idx, 0, n - 1)
    stacked = stack(items)
    ix = expand_dims(astype(idx, np.intp) if isinstance(idx, Tracer) else
                     np.asarray(idx, np.intp), 0)
    return squeeze(take_along_axis(stacked, ix, axis=0), 0)


def put_along_axis(arr: Any, indices: Any, values: Any, axis: int | None) -> Any:
    """``arr`` with ``values`` put at ``indices`` along ``axis``, as a NEW array (NumPy's
    ``put_along_axis`` writes into ``arr`` and returns None; traced values cannot be written
    into, so this returns the updated copy and NumPy's call on a traced ``arr`` is not
    redirected here). Differentiable in ``arr`` (zero at overwritten entries) and ``values``.

    Example:
        >>> put_along_axis(np.zeros((2, 2)), np.array([[1], [0]]), 5.0, axis=1)
        array([[0., 5.],
               [5., 0.]])
    """
    from ._misc import at
    from ._shapes import ravel
    x = _arr(arr)
    ind = _concrete_index(indices, "put_along_axis", "indices").astype(np.intp)
    if axis is None:  # into the flattened array; the result keeps arr's shape
        flat = put_along_axis(ravel(x), ind.ravel(), _arr(values).reshape(-1), 0)
        return flat.reshape(x.shape)
    axis = axis + x.ndim if axis < 0 else axis
    if ind.ndim != x.ndim:
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    shape = np.broadcast_shapes(tuple(1 if i == axis else d for i, d in enumerate(x.shape)),
                                ind.shape)
    ind = np.broadcast_to(ind, shape)
    key = tuple(ind if i == axis else np.arange(d).reshape(
        (1,) * i + (d,) + (1,) * (len(shape) - i - 1)) for i, d in enumerate(shape))
    v = _arr(values)
    v = broadcast_to(v, shape) if isinstance(v, Tracer) else np.broadcast_to(v, shape)
    return at(x)[key].set(v)


@implements(np.unwrap)
def unwrap(p: Any, discont: Any = None, axis: int = -1, *, period: float = 2 * np.pi) -> Any:
    """Phases with jumps larger than ``discont`` replaced by their ``period`` complement
    (NumPy's ``unwrap``); the derivative is the identity (the corrections are constant
    multiples of the period).

    Example:
        >>> np.round(unwrap(np.array([0.0, 3.0, 6.5])), 4)
        array([0.    , 3.    , 0.2168])
    """
    (x,), traced = _ops(p)
    if not traced:
        return np.unwrap(x, discont, axis, period=period)
    from ._more import diff
    from ._reductions import cumsum as _cumsum
    e = _ew()
    x = _arr(x)
    if x.dtype.kind not in "fc":
        x = astype(x, np.float64)
    discont = period / 2 if discont is None else discont
    dd = diff(x, axis=axis)
    half = period / 2
    ddmod = e.mod(dd + half, period) - half
    ddmod = where((ddmod == -half) & (dd > 0), half, ddmod)
    correct = where(e.abs(dd) < discont, 0.0, ddmod - dd)
    shape = list(x.shape)
    ax = axis % x.ndim
    shape[ax] = 1
    total = concatenate([np.zeros(shape, correct.dtype), _cumsum(correct, axis=ax)], axis=ax)
    return x + total


@implements(np.argpartition)
def argpartition(a: Any, kth: Any, axis: Any = -1, kind: str = "introselect",
                 order: Any = None) -> Any:
    """Indices that partition ``a`` around ``kth`` (NumPy's ``argpartition``). NumPy leaves
    the order inside each part unspecified; here it is the stable sorted order (``argsort``),
    which is one valid partition. Integers, no derivative.

    Example:
        >>> argpartition(np.array([3.0, 1.0, 2.0]), 1)
        array([1, 2, 0])
    """
    (x,), traced = _ops(a)
    if not traced:
        return np.argpartition(x, kth, axis=axis, kind=kind, order=order)
    from ._reductions import argsort
    x = _arr(x)
    n = x.size if axis is None else x.shape[axis]
    k = np.asarray(kth)
    if k.size and (k.max() >= n or k.min() < -n):
        raise ValueError(f"kth(={int(k.max())}) out of bounds ({n})")
    return argsort(x, axis=axis, kind="stable")


@implements(np.piecewise)
def piecewise(x: Any, condlist: Any, funclist: Any, *args: Any, **kw: Any) -> Any:
    """``funclist[i](x)`` (or the constant ``funclist[i]``) where ``condlist[i]`` holds, the
    last matching condition winning, an extra last function where none holds, 0 elsewhere
    (NumPy's ``piecewise``); differentiable through the functions' values.

    Example:
        >>> piecewise(np.array([-1.0, 2.0]), [np.array([True, False])], [lambda v: -v, 5.0])
        array([1., 5.])
    """
    from ._core import _holds_tracer
    if not isinstance(x, Tracer) and not _holds_tracer((x, condlist)):
        return np.piecewise(x, condlist, funclist, *args, **kw)
    from ._reductions import any as _any
    from ._shapes import stack
    x = _arr(x)
    if isinstance(condlist, (bool, np.bool_)) or (not isinstance(condlist, list)
                                                  and np.ndim(condlist) == x.ndim):
        condlist = [condlist]
    conds = [c if isinstance(c, Tracer) else np.asarray(c, bool) for c in condlist]
    n = len(conds)
    if len(funclist) not in (n, n + 1):
        raise ValueError(f"with {n} condition(s), either {n} or {n + 1} functions are "
                         f"expected")
    if len(funclist) == n + 1:
        none = ~_any(stack([broadcast_to(c, x.shape) for c in conds]), axis=0) if n else \
            np.ones(x.shape, bool)
        conds.append(none)
    out = x * 0
    for c, f in zip(conds, funclist):
        val = f(x, *args, **kw) if callable(f) else f
        out = where(c, val, out)
    return astype(out, x.dtype) if out.dtype != x.dtype else out


def _chebyshev(x: Any, coefficients: Any) -> Any:
    """Clenshaw's recurrence for a Chebyshev series (Cephes' chbevl, as NumPy's i0 uses)."""
    b0, b1, b2 = float(coefficients[0]), 0.0, 0.0
    for c in coefficients[1:]:
        b2, b1 = b1, b0
        b0 = x * b1 - b2 + float(c)
    return 0.5 * (b0 - b2)


@implements(np.i0)
def i0(x: Any) -> Any:
    """The modified Bessel function of the first kind, order 0 (NumPy's ``i0``): NumPy's
    Chebyshev expansions (Cephes) on ``|x| <= 8`` and beyond, so values match NumPy's; the
    derivative is that of the expansions in ``|x|`` (``i1(x)`` to their accuracy), and at 0
    that of the Taylor series in ``x * x`` (exact to order 7; the expansions would take the
    second derivative through ``|x|``'s kink: 0 instead of 1/2).

    Example:
        >>> np.round(i0(np.array([0.0, 1.0])), 8)
        array([1.        , 1.26606588])
    """
    (a,), traced = _ops(x)
    if not traced:
        return np.i0(a)
    from numpy.lib import _function_base_impl as nfb
    e = _ew()
    a = _arr(a)
    if a.dtype.kind == "c":
        raise TypeError("i0 not supported for complex values")
    if a.dtype.kind != "f":
        a = astype(a, np.float64)
    signed = a
    a = e.abs(a)
    small = a <= 8.0
    near = where(small, a, 8.0)  # each branch sees only its own range (no 32 / 0)
    far = where(small, 8.0, a)
    inner = e.exp(near) * _chebyshev(near / 2.0 - 2, nfb._i0A)
    outer = e.exp(far) * _chebyshev(32.0 / far - 2.0, nfb._i0B) / e.sqrt(far)
    xx = signed * signed
    series = 1.0 + xx * (0.25 + xx * (1.0 / 64 + xx / 2304))  # sum (x/2)^2k / (k!)^2
    return where(signed == 0, series, where(small, inner, outer))
