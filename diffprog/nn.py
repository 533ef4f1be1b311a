"""``diffprog.nn``: numerically stable building blocks for neural networks.

Every function works on plain arrays and on traced values, at any order of differentiation,
and stays finite (no overflow, no nan) for inputs as large as ±1000 in float32 and float64:

- ``sigmoid`` is the ``logistic`` primitive, whose implementation branches on the sign so that
  ``exp`` only sees non-positive arguments; its derivative ``y (1 - y)`` uses only the output.
- ``softplus`` is ``logaddexp(x, 0)``, whose derivative ``exp(x - out)`` never overflows.
- ``softmax``, ``log_softmax`` and ``cross_entropy`` shift the maximum out (as a constant:
  softmax does not change under a shift) before any ``exp``; ``logsumexp`` is a primitive.
- ``gelu`` uses ``erfc`` (a primitive with a rational approximation accurate to a few ulp), so
  its left tail keeps relative precision instead of cancelling in ``1 + erf(x)``.

Example:
    >>> import numpy as np, diffprog as dp
    >>> dp.nn.softmax(np.array([1000.0, 1000.0]))
    array([0.5, 0.5])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import numpy as dnp
from . import prims as P
from .core import Tracer, bind
from .custom import stop_gradient

__all__ = ["relu", "sigmoid", "log_sigmoid", "softplus", "gelu", "silu", "softmax",
           "log_softmax", "logsumexp", "one_hot", "cross_entropy", "erf", "erfc"]

_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def erf(x: Any) -> Any:
    """The error function, ``2/sqrt(pi) * integral of exp(-t**2) from 0 to x``.

    Derivative ``2/sqrt(pi) * exp(-x**2)``. Accurate to a few ulp in float64.

    Example:
        >>> float(erf(0.5))
        0.5204998778130465
    """
    return bind(P.erf, x)


def erfc(x: Any) -> Any:
    """``1 - erf(x)``, accurate also where it is tiny (large x).

    Example:
        >>> print(f"{float(erfc(10.0)):.6e}")
        2.088488e-45
    """
    return bind(P.erfc, x)


def relu(x: Any) -> Any:
    """``max(x, 0)``. Its derivative at 0 is 0 (nan stays nan).

    Example:
        >>> import diffprog as dp
        >>> dp.grad(lambda x: relu(x).sum())(np.array([-1.0, 0.0, 2.0]))
        array([0., 0., 1.])
    """
    # where rather than maximum: maximum would share the derivative at the tie x = 0 (1/2).
    return dnp.where(dnp.less_equal(x, 0), 0.0, x)


def sigmoid(x: Any) -> Any:
    """The logistic function ``1 / (1 + exp(-x))``, stable for any x; derivative ``y (1 - y)``.

    Example:
        >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
        array([0. , 0.5, 1. ])
    """
    return bind(P.logistic, x)


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))`` without overflow; its derivative is ``sigmoid(x)``.

    Example:
        >>> softplus(np.array([-1000.0, 1000.0]))
        array([   0., 1000.])
    """
    return dnp.logaddexp(x, 0.0)


def log_sigmoid(x: Any) -> Any:
    """``log(sigmoid(x)) = -softplus(-x)``, finite for any x.

    Example:
        >>> log_sigmoid(np.array([-1000.0, 1000.0]))
        array([-1000.,    -0.])
    """
    return -softplus(-x)


def silu(x: Any) -> Any:
    """``x * sigmoid(x)`` (also called swish).

    Example:
        >>> float(silu(1000.0)), float(silu(-1000.0))
        (1000.0, -0.0)
    """
    return x * sigmoid(x)


def gelu(x: Any, approximate: bool = False) -> Any:
    """The Gaussian error linear unit ``x * Phi(x)``, Phi the standard normal CDF.

    With ``approximate=False`` (the default) Phi is exact, ``erfc(-x / sqrt(2)) / 2``; with
    ``approximate=True`` it is the tanh approximation
    ``(1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3))) / 2``.

    Example:
        >>> round(float(gelu(1.0)), 6), round(float(gelu(1.0, approximate=True)), 6)
        (0.841345, 0.841192)
    """
    if approximate:
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * (x * x * x))
        return 0.5 * x * (1.0 + dnp.tanh(inner))
    return 0.5 * x * erfc(-_SQRT_HALF * x)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(x)))`` over ``axis`` (all axes by default), without overflow.

    Example:
        >>> round(float(logsumexp(np.array([1000.0, 1000.0]))) - 1000.0, 6)
        0.693147
    """
    return dnp.logsumexp(x, axis=axis, keepdims=keepdims)


def _shift(x: Any, axis: Any) -> Any:
    # Softmax is invariant to shifting x along the axis, so the maximum is subtracted as a
    # constant (stop_gradient): exp then sees arguments <= 0, and results keep full relative
    # precision (exactly 1/3 for three equal logits). A row without a finite maximum (all
    # -inf) is left unshifted.
    m = dnp.max(x, axis=axis, keepdims=True)
    return x - stop_gradient(dnp.where(dnp.isfinite(m), m, 0.0))


def log_softmax(x: Any, axis: Any = -1) -> Any:
    """``x - logsumexp(x, axis)``: log-probabilities, finite for finite x.

    Example:
        >>> log_softmax(np.array([1000.0, -1000.0]))
        array([    0., -2000.])
    """
    shifted = _shift(x, axis)
    return shifted - dnp.log(dnp.sum(dnp.exp(shifted), axis=axis, keepdims=True))


def softmax(x: Any, axis: Any = -1) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis``, with the maximum shifted out (no overflow).

    Example:
        >>> softmax(np.array([0.0, np.log(3.0)])).round(3)
        array([0.25, 0.75])
    """
    e = dnp.exp(_shift(x, axis))
    return e / dnp.sum(e, axis=axis, keepdims=True)


def one_hot(labels: Any, num_classes: int, dtype: Any = np.float64) -> np.ndarray:
    """Integer ``labels`` as one-hot vectors along a new last axis (a constant).

    Example:
        >>> one_hot(np.array([2, 0]), 3)
        array([[0., 0., 1.],
               [1., 0., 0.]])
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got values from "
                         f"{labels.min()} to {labels.max()}")
    return (labels[..., None] == np.arange(num_classes)).astype(dtype)


def cross_entropy(logits: Any, labels: Any) -> Any:
    """Mean cross-entropy between softmax(logits) over the last axis and the labels.

    The dtype of ``labels`` says what they are (as in torch): an integer dtype means class
    indices, of shape ``logits.shape[:-1]``; a float dtype means target probabilities such as
    one-hot vectors, of the shape of ``logits`` (these may be traced and get a derivative).
    Each row's log-probability is gathered at its label (no product with a one-hot matrix, so
    a logit of -inf in another class does not make the loss nan). Integer labels may be traced
    by jit (an argument of the jitted function): one compiled program serves every batch of
    labels; their values are checked to lie in ``[0, n_classes)`` only when known while
    tracing (under jit a negative label counts from the end, as in NumPy indexing, and one
    past the end raises IndexError when the program runs). The mean is over all leading
    (batch) axes. The log-probabilities come from ``log_softmax``, so logits of ±1000 give
    finite losses and gradients.

    Example:
        >>> round(float(cross_entropy(np.array([[0.0, 0.0]]), np.array([1]))), 6)
        0.693147
        >>> import diffprog as dp
        >>> round(float(dp.jit(cross_entropy)(np.array([[0.0, 0.0]]), np.array([1]))), 6)
        0.693147
    """
    logp = log_softmax(logits, axis=-1)
    n_classes = dnp.shape(logits)[-1]
    batch = tuple(dnp.shape(logits)[:-1])
    if np.dtype(dnp.result_type(labels)).kind in "iu":
        if tuple(dnp.shape(labels)) != batch:
            raise ValueError(f"cross_entropy: integer labels must have shape {batch} (logits "
                             f"without the class axis), got {dnp.shape(labels)}")
        if not isinstance(labels, Tracer):
            labels = np.asarray(labels)
            if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
                raise ValueError(f"cross_entropy: labels must lie in [0, {n_classes}), got "
                                 f"values from {labels.min()} to {labels.max()}")
        picked = dnp.take_along_axis(logp, dnp.expand_dims(labels, -1), axis=-1)
        return -dnp.mean(picked)
    elif dnp.shape(labels) != dnp.shape(logits):
        raise ValueError(f"cross_entropy: target probabilities must have the shape of the "
                         f"logits, {dnp.shape(logits)}, got {dnp.shape(labels)}")
    return -dnp.mean(dnp.sum(labels * logp, axis=-1))
