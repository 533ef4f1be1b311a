"""Reductions, scans and sorting along axes.

Reductions: sum, max, min, prod, logsumexp. Scans: cumsum, cumprod, and the first-order linear
recurrence that their derivatives need. Sorting: a permutation gather and the piecewise-constant
index functions (argmax, argmin, argsort, searchsorted).

Params are normalized by :mod:`diffprog.numpy`: a reduction's ``axis`` is a sorted tuple of
non-negative ints and ``keepdims`` a bool; a scan's ``axis`` is one non-negative int. The vjp
rules of reductions first restore the reduced axes as size-1 axes (:func:`_keep`) and then
broadcast, so each rule reads like its formula.

No rule divides by an input: the derivatives of ``prod`` and ``cumprod`` are built from
prefix and suffix products (and, for cumprod, a linear recurrence), so they are exact where
entries are zero, and since every rule is written with these primitives the same holds at
every order.
"""

from __future__ import annotations

import numpy as np

from ..core import Primitive, ShapedArray
from . import elementwise as ew
from . import shape as sh
from .shape import _kept_shape, reduce_sum

__all__ = ["reduce_max", "reduce_min", "reduce_prod", "logsumexp", "cumsum",
           "cumprod", "shift", "linear_recurrence", "permute_along_axis", "argmax", "argmin",
           "argsort", "searchsorted"]


def _keep(v, x, axis, keepdims):
    """``v`` (reduced over ``axis``) with the reduced axes back as size 1."""
    if keepdims:
        return v
    return sh.reshape(v, shape=_kept_shape(x.shape, axis))


def _expand(v, x, axis, keepdims):
    """``v`` broadcast back over the reduced axes to the shape of ``x``."""
    return sh.broadcast_to(_keep(v, x, axis, keepdims), shape=x.shape)


# -- sum, max, min -----------------------------------------------------------------------------

def _extremum(name: str, ufunc: np.ufunc) -> Primitive:
    # The derivative flows to the entries equal to the extremum; ties share it evenly, so the
    # gradient of max([1, 3, 3]) is [0, 1/2, 1/2] (the mean of the one-sided choices).
    def weights(out, x, axis, keepdims):
        hit = ew.convert_element_type(ew.eq(x, _keep(out, x, axis, keepdims)), dtype=x.dtype)
        return hit / reduce_sum(hit, axis=axis, keepdims=True)

    def impl(x, axis, keepdims):
        return ufunc.reduce(x, axis=axis, keepdims=keepdims)

    def jvp(t, out, x, axis, keepdims):
        return reduce_sum(t * weights(out, x, axis, keepdims), axis=axis, keepdims=keepdims)

    def vjp(ct, out, x, axis, keepdims):
        return _keep(ct, x, axis, keepdims) * weights(out, x, axis, keepdims)

    prim = Primitive(name, impl, jvp=(jvp,), vjp=(vjp,),
                     batch=sh.axis_batch_rule(lambda: prim, "axis"))
    return prim


reduce_max = _extremum("reduce_max", np.maximum)
reduce_min = _extremum("reduce_min", np.minimum)


# -- logsumexp ---------------------------------------------------------------------------------

def _logsumexp_impl(x, axis, keepdims):
    # initial=-inf makes an empty reduction -inf (log 0) rather than an error.
    m = np.maximum.reduce(x, axis=axis, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0.0).astype(x.dtype, copy=False)
    with np.errstate(divide="ignore"):
        out = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _softmax(out, x, axis, keepdims):
    # exp(x - logsumexp(x)) never overflows: the exponent is at most 0.
    return ew.exp(x - _keep(out, x, axis, keepdims))


logsumexp = Primitive(
    "logsumexp", _logsumexp_impl, batch=sh.axis_batch_rule(lambda: logsumexp, "axis"),
    jvp=(lambda t, out, x, axis, keepdims:
         reduce_sum(t * _softmax(out, x, axis, keepdims), axis=axis, keepdims=keepdims),),
    vjp=(lambda ct, out, x, axis, keepdims:
         _keep(ct, x, axis, keepdims) * _softmax(out, x, axis, keepdims),))


# -- shifts and scans --------------------------------------------------------------------------

def _shift_impl(x, axis, toward_end, fill):
    out = np.empty(x.shape, dtype=np.result_type(x))
    n = out.shape[axis]
    if n == 0:
        return out
    lead = (slice(None),) * axis
    if toward_end:
        out[lead + (slice(1, None),)] = x[lead + (slice(None, n - 1),)]
        out[lead + (0,)] = fill
    else:
        out[lead + (slice(None, n - 1),)] = x[lead + (slice(1, None),)]
        out[lead + (n - 1,)] = fill
    return out


# ``x`` moved one place along ``axis`` (toward its end: out[i] = x[i - 1]; else out[i] =
# x[i + 1]), the vacated place set to the constant ``fill``. It is affine in ``x``, not linear
# (its tangent is shifted with fill 0, not ``fill``), so its rules are given rather than derived;
# the vjp, the shift the other way that drops the entry this one filled in, reads no value.
shift = Primitive(
    "shift", _shift_impl, vjp_reads=((),), batch=sh.axis_batch_rule(lambda: shift, "axis"),
    jvp=(lambda t, out, x, axis, toward_end, fill:
         shift(t, axis=axis, toward_end=toward_end, fill=0.0),),
    vjp=(lambda ct, out, x, axis, toward_end, fill:
         shift(ct, axis=axis, toward_end=not toward_end, fill=0.0),))


def _prev(v, axis, reverse, fill):
    """The neighbour a scan has already visited: v[i - 1], or v[i + 1] for a reverse scan."""
    return shift(v, axis=axis, toward_end=not reverse, fill=fill)


def _next(v, axis, reverse, fill):
    """The neighbour a scan visits next: v[i + 1], or v[i - 1] for a reverse scan."""
    return shift(v, axis=axis, toward_end=reverse, fill=fill)


def _flip_if(x, axis, reverse):
    return np.flip(x, axis) if reverse else x


def _cumsum_impl(x, axis, reverse):
    return _flip_if(np.cumsum(_flip_if(x, axis, reverse), axis=axis), axis, reverse)


# Linear: a reverse scan is the transpose of a forward one.
cumsum = Primitive(
    "cumsum", _cumsum_impl, batch=sh.axis_batch_rule(lambda: cumsum, "axis"),
    linear=True,
    transpose=(lambda ct, out, x, axis, reverse: cumsum(ct, axis=axis, reverse=not reverse),))


def _linear_recurrence_impl(a, b, axis, reverse):
    # A parallel (Hillis-Steele) scan: after the step with stride d, entry i holds the affine
    # map h[i - 2d] -> h[i] as (A, B) with h[i] = A h[i - 2d] + B. log2(n) vectorized steps
    # instead of n Python iterations.
    dtype = np.result_type(a, b)
    A = np.moveaxis(_flip_if(np.asarray(a, dtype), axis, reverse), axis, -1).copy()
    B = np.moveaxis(_flip_if(np.asarray(b, dtype), axis, reverse), axis, -1).copy()
    n = A.shape[-1]
    d = 1
    while d < n:
        B[..., d:] += A[..., d:] * B[..., :-d]
        if 2 * d < n:
            A[..., d:] *= A[..., :-d]  # NumPy buffers overlapping operands: reads old values
        d *= 2
    return _flip_if(np.moveaxis(B, -1, axis), axis, reverse)


def _linear_recurrence_jvp(tangents, out, a, b, axis, reverse):
    ta, tb = tangents
    source = tb
    if ta is not None:
        da = ta * _prev(out, axis, reverse, 0.0)
        source = da if source is None else da + source
    return linear_recurrence(a, source, axis=axis, reverse=reverse)


def _linear_recurrence_vjp(ct, out, a, b, axis, reverse):
    # The transpose runs the recurrence the other way, with the coefficients moved by one.
    g = linear_recurrence(_next(a, axis, reverse, 0.0), ct, axis=axis, reverse=not reverse)
    return g * _prev(out, axis, reverse, 0.0), g


# h[i] = a[i] h[i - 1] + b[i] along ``axis`` with h[-1] = 0 (from the end for ``reverse``).
# It is linear in b and polynomial in a, so its derivatives are again such recurrences: it is
# what the derivatives of cumprod are made of, without dividing by the entries.
linear_recurrence = Primitive("linear_recurrence", _linear_recurrence_impl,
                              batch=sh.axis_batch_rule(lambda: linear_recurrence, "axis"),
                              jvp=_linear_recurrence_jvp, vjp=_linear_recurrence_vjp)


def _cumprod_impl(x, axis, reverse):
    return _flip_if(np.cumprod(_flip_if(x, axis, reverse), axis=axis), axis, reverse)


# With y = cumprod(x): dy[i] = x[i] dy[i - 1] + dx[i] y[i - 1], a linear recurrence in dy whose
# transpose gives the vjp. y[i - 1] (1 before the start) is the product of the entries before i.
cumprod = Primitive(
    "cumprod", _cumprod_impl, batch=sh.axis_batch_rule(lambda: cumprod, "axis"),
    jvp=(lambda t, out, x, axis, reverse: linear_recurrence(
        x, t * _prev(out, axis, reverse, 1.0), axis=axis, reverse=reverse),),
    vjp=(lambda ct, out, x, axis, reverse: _prev(out, axis, reverse, 1.0) * linear_recurrence(
        _next(x, axis, reverse, 0.0), ct, axis=axis, reverse=not reverse),))


# -- prod --------------------------------------------------------------------------------------

def _products_of_others(x, axis):
    """For each entry, the product of the other entries it is reduced with over ``axis``.

    The product of the entries before it times the product of those after it (exclusive
    cumulative products from both ends): exact with any number of zeros, where out / x is not.
    """
    if not axis:
        return np.ones(x.shape, dtype=x.dtype)
    if len(axis) == 1:
        return _others_along(x, axis[0])
    # Several axes: move them to the end and merge them into one.
    rest = tuple(i for i in range(x.ndim) if i not in axis)
    perm = rest + axis
    moved = x if perm == tuple(range(x.ndim)) else sh.transpose(x, perm=perm)
    n = 1
    for i in axis:
        n *= x.shape[i]
    merged = sh.reshape(moved, shape=tuple(x.shape[i] for i in rest) + (n,))
    others = sh.reshape(_others_along(merged, len(rest)), shape=moved.shape)
    return others if moved is x else sh.transpose(others, perm=sh._inverse(perm))


def _others_along(x, axis):
    before = _prev(cumprod(x, axis=axis, reverse=False), axis, False, 1.0)
    after = _prev(cumprod(x, axis=axis, reverse=True), axis, True, 1.0)
    return before * after


def _prod_impl(x, axis, keepdims):
    return np.multiply.reduce(x, axis=axis, keepdims=keepdims)


reduce_prod = Primitive(
    "reduce_prod", _prod_impl, batch=sh.axis_batch_rule(lambda: reduce_prod, "axis"),
    jvp=(lambda t, out, x, axis, keepdims:
         reduce_sum(t * _products_of_others(x, axis), axis=axis, keepdims=keepdims),),
    vjp=(lambda ct, out, x, axis, keepdims:
         _keep(ct, x, axis, keepdims) * _products_of_others(x, axis),))


# -- sorting -----------------------------------------------------------------------------------

def _like_x(x, perm, axis):
    # The shape rule for jit, whose stand-in values would not be a valid permutation.
    return ShapedArray(x.shape, x.dtype)


# ``x`` rearranged along ``axis`` by the integer array ``perm`` (a permutation along that axis,
# of x's shape): np.take_along_axis. Linear in x (the integer perm has no derivative); the
# transpose applies the inverse permutation, itself a gather, so no scatter is needed.
permute_along_axis = Primitive(
    "permute_along_axis", lambda x, perm, axis: np.take_along_axis(x, perm, axis=axis),
    abstract=_like_x, linear=(0,),
    batch=sh.axis_batch_rule(lambda: permute_along_axis, "axis"),
    transpose=(lambda ct, out, x, perm, axis: permute_along_axis(
        ct, argsort(perm, axis=axis, kind="stable"), axis=axis), None))

# Piecewise constant in x: integer results, no derivative. ``axis`` is an int or None.
def _arg_batch(prim_ref):
    """argmax/argmin: ``axis=None`` (the flattened example) flattens each example."""
    def rule(args, dims, axis, keepdims):
        x = sh.to_front(args[0], dims[0])
        if axis is not None:
            return prim_ref()(x, axis=axis + 1, keepdims=keepdims), 0
        size, inner = x.shape[0], tuple(x.shape[1:])
        out = prim_ref()(sh.reshape(x, shape=(size, int(np.prod(inner)))), axis=1,
                         keepdims=False)
        return (sh.reshape(out, shape=(size,) + (1,) * len(inner)) if keepdims else out), 0
    return rule


argmax = Primitive("argmax", lambda x, axis, keepdims: np.argmax(x, axis=axis, keepdims=keepdims),
                   differentiable=False, batch=_arg_batch(lambda: argmax))
argmin = Primitive("argmin", lambda x, axis, keepdims: np.argmin(x, axis=axis, keepdims=keepdims),
                   differentiable=False, batch=_arg_batch(lambda: argmin))
argsort = Primitive("argsort", lambda x, axis, kind: np.argsort(x, axis=axis, kind=kind),
                    differentiable=False, batch=sh.axis_batch_rule(lambda: argsort, "axis"))


def _searchsorted_batch(args, dims, side):
    a, v = args
    da, dv = dims
    if da is None:  # one sorted table: searchsorted is elementwise in v
        return searchsorted(a, v, side=side), dv
    # a table per example: count the entries before each value (a comparison per pair)
    size = sh.batch_size(args, dims)
    a = sh.to_front(a, da)
    v = sh.bring_front(v, dv, size)
    vshape = tuple(v.shape[1:])
    m = int(np.prod(vshape))
    n = a.shape[1]
    # operands aligned explicitly, as elementwise primitives expect
    cols = sh.broadcast_to(sh.reshape(v, shape=(size, m, 1)), shape=(size, m, n))
    rows = sh.broadcast_to(sh.reshape(a, shape=(size, 1, n)), shape=(size, m, n))
    before = ew.lt(rows, cols) if side == "left" else ew.le(rows, cols)
    count = reduce_sum(ew.convert_discrete(before, dtype=np.dtype(np.intp)), axis=(2,),
                       keepdims=False)
    return sh.reshape(count, shape=(size,) + vshape), 0


searchsorted = Primitive("searchsorted", lambda a, v, side: np.searchsorted(a, v, side=side),
                         differentiable=False, batch=_searchsorted_batch)
