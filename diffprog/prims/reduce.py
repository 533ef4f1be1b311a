"""Reductions over axes: sum, max, min, logsumexp.

Params are normalized by :mod:`diffprog.numpy`: ``axis`` is a sorted tuple of non-negative
ints, ``keepdims`` a bool. The vjp rules first restore the reduced axes as size-1 axes
(:func:`_keep`) and then broadcast, so each rule reads like its formula.
"""

from __future__ import annotations

import numpy as np

from ..core import Primitive
from . import elementwise as ew
from . import shape as sh

__all__ = ["reduce_sum", "reduce_max", "reduce_min", "logsumexp"]


def _kept_shape(shape: tuple, axis: tuple) -> tuple:
    return tuple(1 if i in axis else d for i, d in enumerate(shape))


def _keep(v, x, axis, keepdims):
    """``v`` (reduced over ``axis``) with the reduced axes back as size 1."""
    if keepdims:
        return v
    return sh.reshape(v, shape=_kept_shape(x.shape, axis))


def _expand(v, x, axis, keepdims):
    """``v`` broadcast back over the reduced axes to the shape of ``x``."""
    return sh.broadcast_to(_keep(v, x, axis, keepdims), shape=x.shape)


def _sum_impl(x, axis, keepdims):
    return np.add.reduce(x, axis=axis, keepdims=keepdims)


reduce_sum = Primitive(
    "reduce_sum", _sum_impl,
    jvp=(lambda t, out, x, axis, keepdims: reduce_sum(t, axis=axis, keepdims=keepdims),),
    vjp=(lambda ct, out, x, axis, keepdims: _expand(ct, x, axis, keepdims),))


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

    return Primitive(name, impl, jvp=(jvp,), vjp=(vjp,))


reduce_max = _extremum("reduce_max", np.maximum)
reduce_min = _extremum("reduce_min", np.minimum)


def _logsumexp_impl(x, axis, keepdims):
    m = np.maximum.reduce(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _softmax(out, x, axis, keepdims):
    # exp(x - logsumexp(x)) never overflows: the exponent is at most 0.
    return ew.exp(x - _keep(out, x, axis, keepdims))


logsumexp = Primitive(
    "logsumexp", _logsumexp_impl,
    jvp=(lambda t, out, x, axis, keepdims:
         reduce_sum(t * _softmax(out, x, axis, keepdims), axis=axis, keepdims=keepdims),),
    vjp=(lambda ct, out, x, axis, keepdims:
         _keep(ct, x, axis, keepdims) * _softmax(out, x, axis, keepdims),))
