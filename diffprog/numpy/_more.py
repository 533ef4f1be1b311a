"""The rest of NumPy that programs use (issue 12 §7), as compositions of diffprog operations.

Each function has NumPy's signature and results and registers itself as the version of NumPy's
function that traced values dispatch to, so ``np.diff(x)`` on a traced ``x`` is differentiated.
Where NumPy leaves a result unspecified (the order of the other entries in ``partition``) the
choice made here is documented on the function.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from ..core import Tracer, concrete
from . import _catalog
from ._core import _any_traced, _promotes_as, as_operand, implements
from ._elementwise import (
    abs,
    astype,
    conj,
    exp,
    greater,
    imag,
    isinf,
    isnan,
    less,
    log,
    multiply,
    real,
    sign,
    sin,
    where,
)
from ._indexing import take
from ._linalg import matmul
from ._reductions import searchsorted, sort, sum
from ._shapes import (
    asarray,
    broadcast_arrays,
    broadcast_to,
    concatenate,
    moveaxis,
    pad,
    reshape,
    split,
    stack,
    swapaxes,
)

__all__ = list(_catalog.MORE)


def _asarray(x: Any) -> Any:
    return x if isinstance(x, Tracer) else asarray(x)


def _index(x: Any, axis: int, idx: Any) -> Any:
    """``x[..., idx, ...]`` with ``idx`` (a slice or an int) at ``axis``."""
    key = [slice(None)] * x.ndim
    key[axis] = idx
    return x[tuple(key)]


# -- differences, gradients, integrals ------------------------------------------------------

@implements(np.diff)
def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = np._NoValue,
         append: Any = np._NoValue) -> Any:
    """The n-th discrete difference along ``axis`` (NumPy's ``diff``).

    Example:
        >>> diff(np.array([1.0, 4.0, 9.0]), prepend=0.0)
        array([1., 3., 5.])
    """
    if not _any_traced(a, None if prepend is np._NoValue else prepend,
                   None if append is np._NoValue else append):
        kwargs = {k: v for k, v in (("prepend", prepend), ("append", append))
                  if v is not np._NoValue}
        return np.diff(a, n=n, axis=axis, **kwargs)
    a = _asarray(a)
    if n < 0:
        raise ValueError(f"diff: order must be non-negative but got {n}")
    axis = normalize_axis_index(axis, a.ndim)
    parts = []
    for extra in (prepend, None, append):
        if extra is None:
            parts.append(a)
        elif extra is not np._NoValue:
            extra = _asarray(extra)
            if extra.ndim == 0:
                shape = list(a.shape)
                shape[axis] = 1
                extra = broadcast_to(extra, tuple(shape))
            parts.append(extra)
    if len(parts) > 1:
        a = concatenate(parts, axis=axis)
    for _ in range(n):
        a = _index(a, axis, slice(1, None)) - _index(a, axis, slice(None, -1))
    return a


def _spacings(x: Any, n: int, name: str) -> Any:
    """Per-interval spacings along one axis: a scalar spacing or coordinates (length n)."""
    if np.ndim(x) == 0:
        return x
    x = _asarray(x)
    if x.ndim != 1 or x.shape[0] != n:
        raise ValueError(f"{name}: coordinates must be 1-D with one entry per point ({n}), "
                         f"got shape {x.shape}")
    return x[1:] - x[:-1]


@implements(np.gradient)
def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """The gradient by central differences inside, one-sided ones at the edges (NumPy's
    ``gradient``): uniform spacings (scalars) or coordinates per axis, ``edge_order`` 1 or 2.

    Example:
        >>> gradient(np.array([1.0, 4.0, 9.0, 16.0]))
        array([3., 4., 6., 7.])
    """
    if not _any_traced(f, *varargs):
        return np.gradient(f, *varargs, axis=axis, edge_order=edge_order)
    f = _asarray(f)
    axes = list(range(f.ndim)) if axis is None else (
        [axis] if isinstance(axis, (int, np.integer)) else list(axis))
    axes = [normalize_axis_index(ax, f.ndim) for ax in axes]
    if not varargs:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        spacing = [varargs[0]] * len(axes)
    elif len(varargs) == len(axes):
        spacing = list(varargs)
    else:
        raise TypeError(f"gradient: invalid number of spacing arguments ({len(varargs)}) for "
                        f"{len(axes)} axes")
    if edge_order not in (1, 2):
        raise ValueError("gradient: edge_order must be 1 or 2")
    out = []
    for ax, h in zip(axes, spacing):
        n = f.shape[ax]
        if n < edge_order + 1:
            raise ValueError("gradient: shape of the array too small to calculate a numerical "
                             "gradient, at least (edge_order + 1) elements are required")
        out.append(_gradient_axis(f, ax, _spacings(h, n, "gradient"), edge_order))
    return out[0] if len(out) == 1 else tuple(out)


def _along(v: Any, ax: int, ndim: int) -> Any:
    """A 1-D array of per-position factors, shaped to broadcast along axis ``ax``."""
    if np.ndim(v) == 0:
        return v
    return reshape(v, (-1,) + (1,) * (ndim - ax - 1))


def _gradient_axis(f: Any, ax: int, h: Any, edge_order: int) -> Any:
    sl = lambda *s: _index(f, ax, slice(*s))
    nd = f.ndim
    if np.ndim(h) == 0:
        inner = (sl(2, None) - sl(None, -2)) / (2.0 * h)
        if edge_order == 1:
            first = (sl(1, 2) - sl(0, 1)) / h
            last = (sl(-1, None) - sl(-2, -1)) / h
        else:
            first = (-1.5 * sl(0, 1) + 2.0 * sl(1, 2) - 0.5 * sl(2, 3)) / h
            last = (0.5 * sl(-3, -2) - 2.0 * sl(-2, -1) + 1.5 * sl(-1, None)) / h
        return concatenate([first, inner, last], axis=ax)
    dx1, dx2 = h[:-1], h[1:]
    a = -dx2 / (dx1 * (dx1 + dx2))
    b = (dx2 - dx1) / (dx1 * dx2)
    c = dx1 / (dx2 * (dx1 + dx2))
    inner = (_along(a, ax, nd) * sl(None, -2) + _along(b, ax, nd) * sl(1, -1)
             + _along(c, ax, nd) * sl(2, None))
    if edge_order == 1:
        first = (sl(1, 2) - sl(0, 1)) / h[0]
        last = (sl(-1, None) - sl(-2, -1)) / h[-1]
    else:
        d1, d2 = h[0], h[1]
        first = (-(2.0 * d1 + d2) / (d1 * (d1 + d2)) * sl(0, 1)
                 + (d1 + d2) / (d1 * d2) * sl(1, 2) - d1 / (d2 * (d1 + d2)) * sl(2, 3))
        d1, d2 = h[-2], h[-1]
        last = (d2 / (d1 * (d1 + d2)) * sl(-3, -2) - (d2 + d1) / (d1 * d2) * sl(-2, -1)
                + (2.0 * d2 + d1) / (d2 * (d1 + d2)) * sl(-1, None))
    return concatenate([first, inner, last], axis=ax)


@implements(np.trapezoid)
def trapezoid(y: Any, x: Any = None, dx: Any = 1.0, axis: int = -1) -> Any:
    """The integral by the trapezoidal rule along ``axis`` (NumPy's ``trapezoid``).

    Example:
        >>> float(trapezoid(np.array([0.0, 1.0, 4.0]), x=np.array([0.0, 1.0, 2.0])))
        3.0
    """
    if not _any_traced(y, x, dx):
        return np.trapezoid(y, x=x, dx=dx, axis=axis)
    y = _asarray(y)
    axis = normalize_axis_index(axis, y.ndim)
    if x is None:
        d = dx
    else:
        x = _asarray(x)
        d = diff(x, axis=-1 if x.ndim == 1 else axis)
        if x.ndim == 1:
            d = _along(d, axis, y.ndim)
    mid = (_index(y, axis, slice(1, None)) + _index(y, axis, slice(None, -1))) / 2.0
    return sum(d * mid, axis=axis)


# -- products -------------------------------------------------------------------------------

@implements(np.cross)
def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis: int | None = None) -> Any:
    """The cross product of 3-vectors (or the z-component for 2-vectors), broadcasting over
    the other axes (NumPy's ``cross``).

    Example:
        >>> cross(np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
        array([0., 0., 1.])
    """
    if not _any_traced(a, b):
        return np.cross(a, b, axisa, axisb, axisc, axis)
    if axis is not None:
        axisa = axisb = axisc = axis
    a = moveaxis(_asarray(a), axisa, -1)
    b = moveaxis(_asarray(b), axisb, -1)
    if a.shape[-1] not in (2, 3) or b.shape[-1] not in (2, 3):
        raise ValueError("cross: incompatible dimensions for cross product (dimension must "
                         "be 2 or 3)")
    a0, a1 = a[..., 0], a[..., 1]
    b0, b1 = b[..., 0], b[..., 1]
    a2 = a[..., 2] if a.shape[-1] == 3 else None
    b2 = b[..., 2] if b.shape[-1] == 3 else None
    z = a0 * b1 - a1 * b0
    if a2 is None and b2 is None:
        return z  # 2-vectors: the z-component, a scalar per pair
    zero = 0.0
    x = a1 * (b2 if b2 is not None else zero) - (a2 if a2 is not None else zero) * b1
    y = (a2 if a2 is not None else zero) * b0 - a0 * (b2 if b2 is not None else zero)
    x, y, z = broadcast_arrays(x, y, z)
    return moveaxis(stack([x, y, z], axis=-1), -1, axisc)


@implements(np.vecdot)
def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """The dot product of vectors along ``axis``, conjugating ``x1`` (NumPy's ``vecdot``).

    Example:
        >>> vecdot(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 1.0]))
        array([3., 7.])
    """
    if not _any_traced(x1, x2):
        return np.vecdot(x1, x2, axis=axis)
    x1, x2 = _asarray(x1), _asarray(x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ValueError("vecdot: Input operand does not have enough dimensions")
    n1, n2 = x1.shape[normalize_axis_index(axis, x1.ndim)], x2.shape[
        normalize_axis_index(axis, x2.ndim)]
    if n1 != n2:  # the contracted axis does not broadcast (NumPy's gufunc signature)
        raise ValueError(f"vecdot: the vectors along axis {axis} have sizes {n1} and {n2}")
    if x1.dtype.kind == "c":
        x1 = conj(x1)
    return sum(multiply(x1, x2), axis=axis)


@implements(np.polyval)
def polyval(p: Any, x: Any) -> Any:
    """The polynomial with coefficients ``p`` (highest power first) at ``x``, by Horner's rule
    (NumPy's ``polyval``).

    Example:
        >>> polyval([3.0, 0.0, 1.0], np.array([1.0, 2.0]))
        array([ 4., 13.])
    """
    if not _any_traced(p, x):
        return np.polyval(p, x)
    # NumPy's own loop, which fixes the result dtype: zeros like x, then y * x + p[i]
    p, x = _asarray(p), _asarray(x)
    y = np.zeros(x.shape, x.dtype)
    for i in range(p.shape[0]):
        y = y * x + p[i]
    return y


@implements(np.polyfit)
def polyfit(x: Any, y: Any, deg: int, rcond: Any = None, full: bool = False, w: Any = None,
            cov: Any = False) -> Any:
    """The least-squares polynomial fit of degree ``deg`` (NumPy's ``polyfit``), highest power
    first, differentiable in ``x``, ``y`` and ``w`` (QR of the scaled Vandermonde matrix).

    Example:
        >>> np.round(polyfit(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0]), 1), 12)
        array([2., 1.])
    """
    if not _any_traced(x, y, w):
        return np.polyfit(x, y, deg, rcond=rcond, full=full, w=w, cov=cov)
    if full or cov:
        raise NotImplementedError("polyfit: full=True and cov=True are not differentiable "
                                  "yet; call np.polyfit on plain arrays for them")
    from . import linalg  # (the submodule imports this package's modules first)
    x, y = _asarray(x), _asarray(y)
    # NumPy fits in float64 (complex128), whatever the inputs' precision
    dtype = np.result_type(x.dtype, y.dtype, np.float64)
    x, y = astype(x, dtype), astype(y, dtype)
    vander = stack([x ** float(k) for k in range(deg, -1, -1)], axis=1)
    rhs = y
    if w is not None:
        w = astype(_asarray(w), dtype)
        vander = vander * w[:, None]
        rhs = rhs * (w if y.ndim == 1 else w[:, None])
    # scale the columns as NumPy does, for conditioning
    scale = sum(vander * vander, axis=0) ** 0.5
    q, r = linalg.qr(vander / scale)
    qty = matmul(swapaxes(q, -1, -2), rhs)
    c = linalg.solve_triangular(r, qty, lower=False)
    return (c.T / scale).T


# -- ranges ---------------------------------------------------------------------------------

@implements(np.linspace)
def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             retstep: bool = False, dtype: Any = None, axis: int = 0) -> Any:
    """``num`` evenly spaced values from ``start`` to ``stop`` (NumPy's ``linspace``),
    differentiable in the endpoints (arrays broadcast; the new axis at ``axis``).

    Example:
        >>> linspace(0.0, 1.0, 5)
        array([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    if not _any_traced(start, stop):
        return np.linspace(start, stop, num, endpoint, retstep, dtype, axis)
    start, stop = as_operand(start), as_operand(stop)
    # NumPy's result dtype: Python scalar endpoints promote weakly
    result = np.result_type(_promotes_as(start), _promotes_as(stop), float(num))
    num = int(num)
    if num < 0:
        raise ValueError(f"linspace: number of samples, {num}, must be non-negative")
    start, stop = _asarray(start), _asarray(stop)
    if start.dtype.kind in "iub":
        start = astype(start, np.float64)
    start, stop = broadcast_arrays(start, stop)
    div = (num - 1) if endpoint else num
    delta = stop - start
    steps = np.arange(num, dtype=np.float64).reshape((-1,) + (1,) * start.ndim)
    step = delta / div if div > 0 else delta * np.nan
    if div > 0:
        y = steps * step + start
    else:
        y = steps * delta + start
    if endpoint and num > 1:
        y = concatenate([y[:-1], stop[None]], axis=0)
    y = moveaxis(y, 0, axis) if start.ndim else y
    y = astype(y, result if dtype is None else dtype)
    return (y, step) if retstep else y


@implements(np.logspace)
def logspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, base: Any = 10.0,
             dtype: Any = None, axis: int = 0) -> Any:
    """``base ** linspace(start, stop)`` (NumPy's ``logspace``).

    Example:
        >>> logspace(0.0, 2.0, 3)
        array([  1.,  10., 100.])
    """
    if not _any_traced(start, stop, base):
        return np.logspace(start, stop, num, endpoint, base, dtype, axis)
    y = linspace(start, stop, num, endpoint, axis=axis)
    base = _asarray(base) if isinstance(base, Tracer) else base
    y = base ** y
    return astype(y, dtype) if dtype is not None else y


@implements(np.geomspace)
def geomspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, dtype: Any = None,
              axis: int = 0) -> Any:
    """Values spaced evenly on a log scale from ``start`` to ``stop`` (NumPy's
    ``geomspace``); both endpoints of one sign; the endpoints are exact.

    Example:
        >>> geomspace(1.0, 1000.0, 4)
        array([   1.,   10.,  100., 1000.])
    """
    if not _any_traced(start, stop):
        return np.geomspace(start, stop, num, endpoint, dtype, axis)
    start, stop = _asarray(start), _asarray(stop)
    # NumPy computes in result_type(start, stop, float64) (its zeros((), dtype=None) operand)
    dt = np.result_type(start.dtype, stop.dtype, np.float64)
    start, stop = broadcast_arrays(astype(start, dt), astype(stop, dt))
    s = sign(start)
    y = s * exp(linspace(log(abs(start)), log(abs(stop)), num, endpoint, axis=0))
    if num > 0:
        pieces = [start[None]]
        if endpoint and num > 1:
            pieces += [y[1:-1], stop[None]]
        else:
            pieces.append(y[1:])
        y = concatenate(pieces, axis=0)
    y = moveaxis(y, 0, axis) if start.ndim else y
    return astype(y, dtype) if dtype is not None else y


# -- elementwise ----------------------------------------------------------------------------

_SINC_TAYLOR = 1e-3  # below |pi x| = 1e-3, three Taylor terms are exact to double precision


@implements(np.sinc)
def sinc(x: Any) -> Any:
    """``sin(pi x) / (pi x)``, 1 at 0, with every derivative right at 0 too (a Taylor branch
    near 0 instead of 0/0; NumPy's ``sinc``).

    Example:
        >>> sinc(np.array([0.0, 0.5, 1.0])).round(12)
        array([1.        , 0.63661977, 0.        ])
    """
    if not _any_traced(x):
        return np.sinc(x)
    y = np.pi * _asarray(x)
    small = abs(y) < _SINC_TAYLOR
    safe = where(small, 1.0, y)  # the unused branch sees no 0/0 (where-trick)
    y2 = y * y
    taylor = 1.0 - y2 / 6.0 + y2 * y2 / 120.0
    return where(small, taylor, sin(safe) / safe)


@implements(np.nan_to_num)
def nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: Any = None,
               neginf: Any = None) -> Any:
    """NaN and infinities replaced by finite numbers (NumPy's ``nan_to_num``); the derivative
    is 1 where ``x`` is finite and 0 where it was replaced.

    Example:
        >>> nan_to_num(np.array([np.nan, 1.0, -np.inf]), neginf=-5.0)
        array([ 0.,  1., -5.])
    """
    if not _any_traced(x):
        return np.nan_to_num(x, copy=copy, nan=nan, posinf=posinf, neginf=neginf)
    x = _asarray(x)
    if x.dtype.kind not in "fc":
        return x
    if x.dtype.kind == "c":
        return nan_to_num(real(x), nan=nan, posinf=posinf, neginf=neginf) + 1j * nan_to_num(
            imag(x), nan=nan, posinf=posinf, neginf=neginf)
    info = np.finfo(x.dtype)
    big = info.max if posinf is None else posinf
    small = -info.max if neginf is None else neginf
    out = where(isnan(x), nan, x)
    out = where(isinf(x) & greater(x, 0), big, out)
    return astype(where(isinf(x) & less(x, 0), small, out), x.dtype)


# -- inserting, deleting, splitting ---------------------------------------------------------

def _index_layout(shape: tuple, fn: Any) -> np.ndarray:
    """Where NumPy's ``fn`` puts each entry: ``fn`` applied to the flat positions."""
    return fn(np.arange(math.prod(shape), dtype=np.int64).reshape(shape))


@implements(np.delete)
def delete(arr: Any, obj: Any, axis: int | None = None) -> Any:
    """``arr`` without the entries ``obj`` along ``axis`` (NumPy's ``delete``): a gather.

    Example:
        >>> delete(np.array([1.0, 2.0, 3.0]), 1)
        array([1., 3.])
    """
    if not _any_traced(arr):
        return np.delete(arr, obj, axis)
    arr = _asarray(arr)
    layout = _index_layout(arr.shape, lambda i: np.delete(i, concrete(obj), axis))
    return take(reshape(arr, (-1,)), layout)


@implements(np.insert)
def insert(arr: Any, obj: Any, values: Any, axis: int | None = None) -> Any:
    """``arr`` with ``values`` inserted before the indices ``obj`` along ``axis`` (NumPy's
    ``insert``), as a gather from ``arr`` and ``values`` laid out as NumPy lays them.

    Example:
        >>> insert(np.array([1.0, 2.0]), 1, 5.0)
        array([1., 5., 2.])
    """
    if not _any_traced(arr, values):
        return np.insert(arr, obj, values, axis)
    arr = _asarray(arr)
    values = astype(_asarray(values), arr.dtype)
    n = arr.size
    # NumPy's own insert places the indices: values' positions are n, n + 1, ...
    v_idx = np.arange(n, n + values.size, dtype=np.int64).reshape(values.shape)
    layout = np.insert(np.arange(n, dtype=np.int64).reshape(arr.shape), concrete(obj), v_idx,
                       axis)
    pool = concatenate([reshape(arr, (-1,)), reshape(values, (-1,))])
    return take(pool, layout)


def _split_along(name: str, axis: int, min_ndim: int):
    np_fn = getattr(np, name)

    def fn(ary: Any, indices_or_sections: Any) -> list:
        if not _any_traced(ary):
            return np_fn(ary, indices_or_sections)
        if ary.ndim < min_ndim:
            raise ValueError(f"{name} only works on arrays of {min_ndim} or more dimensions")
        ax = 0 if name == "hsplit" and ary.ndim == 1 else axis
        return split(ary, indices_or_sections, axis=ax)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"NumPy's ``{name}``: ``split`` along axis {axis}."
    return implements(np_fn)(fn)


vsplit = _split_along("vsplit", 0, 2)
hsplit = _split_along("hsplit", 1, 1)
dsplit = _split_along("dsplit", 2, 3)


@implements(np.rollaxis)
def rollaxis(a: Any, axis: int, start: int = 0) -> Any:
    """Axis ``axis`` moved to before position ``start`` (NumPy's ``rollaxis``).

    Example:
        >>> rollaxis(np.ones((2, 3, 4)), 2).shape
        (4, 2, 3)
    """
    if not _any_traced(a):
        return np.rollaxis(a, axis, start)
    n = a.ndim
    axis = normalize_axis_index(axis, n)
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        raise np.exceptions.AxisError(f"start arg requires {-n} <= start < {n + 1}")
    if axis < start:
        start -= 1
    if axis == start:
        return a
    return moveaxis(a, axis, start)


@implements(np.partition)
def partition(a: Any, kth: Any, axis: int = -1, kind: str = "introselect",
              order: Any = None) -> Any:
    """A partitioned copy: the k-th entry in its sorted place, smaller ones before it, larger
    after (NumPy's ``partition``). NumPy leaves the order within each side unspecified;
    diffprog returns them sorted (a full sort is a valid partition), the same eagerly and
    under jit.

    Example:
        >>> partition(np.array([3.0, 1.0, 2.0]), 1)
        array([1., 2., 3.])
    """
    if not _any_traced(a):
        return np.partition(a, kth, axis, kind, order)
    return sort(a, axis=axis)


# -- interpolation and convolution ----------------------------------------------------------

@implements(np.interp)
def interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None,
           period: Any = None) -> Any:
    """Piecewise-linear interpolation of the points (xp, fp) at x (NumPy's ``interp``),
    differentiable in ``x``, ``xp`` and ``fp`` (the slope of the segment ``x`` is on).

    Example:
        >>> interp(np.array([0.5, 3.0]), np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 4.0]))
        array([1., 4.])
    """
    if not _any_traced(x, xp, fp, left, right):
        return np.interp(x, xp, fp, left, right, period)
    if period is not None:
        raise NotImplementedError("interp: period= is not differentiable yet; map x into one "
                                  "period with dnp.mod first")
    x, xp, fp = _asarray(x), _asarray(xp), _asarray(fp)
    for name, v in (("x", x), ("xp", xp)):
        if np.dtype(v.dtype).kind == "c":  # NumPy converts both to float64 and refuses
            raise TypeError(f"interp: {name} must be real (got {v.dtype}); only fp may be "
                            "complex")
    n = xp.shape[0]
    if n == 1:
        return where(x < xp[0], fp[0] if left is None else left,
                     where(x > xp[0], fp[0] if right is None else right, fp[0]))
    i = searchsorted(xp, x, side="right") - 1
    i = where(i < 0, 0, where(i > n - 2, n - 2, i))
    x0, x1 = take(xp, i), take(xp, i + 1)
    f0, f1 = take(fp, i), take(fp, i + 1)
    t = (x - x0) / (x1 - x0)
    y = f0 + t * (f1 - f0)
    y = where(x == xp[-1], fp[-1], y)
    y = where(x < xp[0], fp[0] if left is None else left, y)
    y = where(x > xp[-1], fp[-1] if right is None else right, y)
    # NumPy interpolates in float64 (complex128 for complex fp) whatever the inputs' precision
    return astype(y, np.complex128 if fp.dtype.kind == "c" else np.float64)


def _convolve_full(a: Any, v: Any) -> Any:
    """Full 1-D convolution as a gather of sliding windows and a matrix-vector product."""
    n, m = a.shape[0], v.shape[0]
    padded = pad(a, (m - 1, m - 1))
    windows = np.arange(n + m - 1)[:, None] + np.arange(m)[None, :]
    return matmul(take(padded, windows), v[::-1])


def _mode_slice(full: Any, n: int, m: int, mode: str) -> Any:
    if mode == "full":
        return full
    if mode == "same":
        size = max(n, m)
        start = (min(n, m) - 1) // 2
        return full[start:start + size]
    if mode == "valid":
        return full[min(n, m) - 1:max(n, m)]
    raise ValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")


def _vector(x: Any, name: str) -> Any:
    x = _asarray(x)
    if x.ndim == 0:
        if name == "correlate":  # as NumPy's (convolve takes scalars as 1-vectors)
            raise ValueError("object of too small depth for desired array")
        x = reshape(x, (1,))
    if x.ndim != 1:
        raise ValueError(f"{name}: object too deep for desired array (1-D inputs only)")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: inputs cannot be empty")
    return x


@implements(np.convolve)
def convolve(a: Any, v: Any, mode: str = "full") -> Any:
    """The discrete linear convolution of two 1-D sequences (NumPy's ``convolve``).

    Example:
        >>> convolve(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
        array([0. , 1. , 2.5, 4. , 1.5])
    """
    if not _any_traced(a, v):
        return np.convolve(a, v, mode)
    a, v = _vector(a, "convolve"), _vector(v, "convolve")
    if v.shape[0] > a.shape[0]:
        a, v = v, a
    return _mode_slice(_convolve_full(a, v), a.shape[0], v.shape[0], mode)


@implements(np.correlate)
def correlate(a: Any, v: Any, mode: str = "valid") -> Any:
    """The cross-correlation of two 1-D sequences, conjugating ``v`` (NumPy's
    ``correlate``).

    Example:
        >>> correlate(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
        array([3.5])
    """
    if not _any_traced(a, v):
        return np.correlate(a, v, mode)
    a, v = _vector(a, "correlate"), _vector(v, "correlate")
    if v.dtype.kind == "c":
        v = conj(v)
    n, m = a.shape[0], v.shape[0]
    if m > n:
        # NumPy swaps the operands and reverses the result
        full = _convolve_full(v, a[::-1])
        return _mode_slice(full, m, n, mode)[::-1]
    return _mode_slice(_convolve_full(a, v[::-1]), n, m, mode)


# -- index tricks ---------------------------------------------------------------------------

class _Concatenator:
    """``r_[...]`` and ``c_[...]`` for pieces that may be traced: arrays, scalars and slices
    (ranges, as NumPy builds them); NumPy's string directives are not supported."""

    def __init__(self, name: str, axis: int, ndmin: int) -> None:
        self.name, self.axis, self.ndmin = name, axis, ndmin

    def __getitem__(self, key: Any) -> Any:
        items = key if isinstance(key, tuple) else (key,)
        if not _any_traced(*[k for k in items if not isinstance(k, slice)]):
            return getattr(np, self.name)[key]
        pieces = []
        for item in items:
            if isinstance(item, str):
                raise TypeError(f"dnp.{self.name}[...]: string directives ({item!r}) are not "
                                "supported with traced values; use dnp.concatenate or "
                                "dnp.stack with an axis")
            if isinstance(item, slice):
                item = getattr(np, self.name)[item]
            item = _asarray(item)
            while item.ndim < self.ndmin:
                item = reshape(item, item.shape + (1,)) if self.name == "c_" else reshape(
                    item, (1,) + item.shape)
            pieces.append(item)
        return concatenate(pieces, axis=self.axis)

    def __len__(self) -> int:
        return 0


r_ = _Concatenator("r_", 0, 1)
c_ = _Concatenator("c_", -1, 2)
