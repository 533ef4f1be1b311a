"""Gradient-descent optimizers over pytrees, in the style of autograd's ``misc.optimizers``.

Each optimizer takes a gradient function ``grad(params, step)`` (for example
``lambda p, i: dp.grad(loss)(p, batch(i))``) and initial parameters (any pytree), runs
``num_iters`` steps and returns the final parameters in the same structure. Leaves whose
gradient is ``None`` (static leaves: ints, strings, flags) are left untouched, so a
``params`` pytree may hold configuration next to arrays. ``callback(params, step, gradient)``
is called before every update, as in autograd.

Example:
    >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
    >>> loss = lambda p: dnp.sum((p["w"] - 3.0) ** 2)
    >>> p = adam(lambda p, i: dp.grad(loss)(p), {"w": np.zeros(2), "name": "w"},
    ...          num_iters=500, step_size=0.1)
    >>> np.round(p["w"], 6), p["name"]
    (array([3., 3.]), 'w')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .tree import tree_flatten, tree_unflatten

__all__ = ["sgd", "momentum", "rmsprop", "adam"]


def _is_none(x: Any) -> bool:
    return x is None


def _flat(params: Any, grads: Any) -> tuple[list, list, Any]:
    """The parameter leaves, the matching gradient leaves (None for static ones) and the
    structure; refuses gradients whose structure is not the parameters'."""
    leaves, treedef = tree_flatten(params)
    g_leaves, g_def = tree_flatten(grads, is_leaf=_is_none)
    if len(g_leaves) != len(leaves):
        raise ValueError(
            f"optim: the gradient has {len(g_leaves)} leaves but the parameters have "
            f"{len(leaves)} (gradient structure {g_def}, parameters {treedef}); return the "
            "gradient of the parameters (dp.grad(loss)(params)), with None for static leaves")
    return leaves, g_leaves, treedef


def _run(update: Callable, state_init: Callable, grad: Callable, x: Any, callback: Any,
         num_iters: int) -> Any:
    state = None
    for i in range(num_iters):
        g = grad(x, i)
        if callback is not None:
            callback(x, i, g)
        leaves, g_leaves, treedef = _flat(x, g)
        if state is None:
            state = [state_init(p) if gi is not None else None
                     for p, gi in zip(leaves, g_leaves)]
        new = []
        for k, (p, gi) in enumerate(zip(leaves, g_leaves)):
            if gi is None:
                new.append(p)
                continue
            value, state[k] = update(np.asarray(p), np.asarray(gi), state[k], i)
            new.append(value.astype(np.result_type(p), copy=False)
                       if isinstance(p, np.ndarray) else value)
        x = tree_unflatten(treedef, new)
    return x


def sgd(grad: Callable, x: Any, callback: Callable | None = None, num_iters: int = 200,
        step_size: float = 0.1, mass: float = 0.9) -> Any:
    """Stochastic gradient descent with momentum ``mass`` (autograd's ``sgd``; ``mass=0`` is
    plain gradient descent).

    Example:
        >>> import numpy as np, diffprog as dp
        >>> x = sgd(lambda x, i: dp.grad(lambda x: (x - 1.0) ** 2)(x), 0.0, num_iters=300)
        >>> round(float(x), 6)
        1.0
    """
    def update(p, g, velocity, i):
        velocity = mass * velocity - (1.0 - mass) * g
        return p + step_size * velocity, velocity
    return _run(update, lambda p: np.zeros(np.shape(p)), grad, x, callback, num_iters)


def momentum(grad: Callable, x: Any, callback: Callable | None = None, num_iters: int = 200,
             step_size: float = 0.1, mass: float = 0.9) -> Any:
    """Heavy-ball momentum: ``v = mass v - g; x += step_size v``.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> x = momentum(lambda x, i: dp.grad(lambda x: (x - 1.0) ** 2)(x), 0.0,
        ...              num_iters=400, step_size=0.05)
        >>> round(float(x), 6)
        1.0
    """
    def update(p, g, velocity, i):
        velocity = mass * velocity - g
        return p + step_size * velocity, velocity
    return _run(update, lambda p: np.zeros(np.shape(p)), grad, x, callback, num_iters)


def rmsprop(grad: Callable, x: Any, callback: Callable | None = None, num_iters: int = 100,
            step_size: float = 0.1, gamma: float = 0.9, eps: float = 1e-8) -> Any:
    """Root-mean-square propagation (autograd's ``rmsprop``).

    Example:
        >>> import numpy as np, diffprog as dp
        >>> x = rmsprop(lambda x, i: dp.grad(lambda x: (x - 1.0) ** 2)(x), 0.0,
        ...             num_iters=400, step_size=0.01)
        >>> abs(float(x) - 1.0) < 0.02
        True
    """
    def update(p, g, avg_sq, i):
        avg_sq = gamma * avg_sq + (1.0 - gamma) * g * g
        return p - step_size * g / (np.sqrt(avg_sq) + eps), avg_sq
    return _run(update, lambda p: np.ones(np.shape(p)), grad, x, callback, num_iters)


def adam(grad: Callable, x: Any, callback: Callable | None = None, num_iters: int = 100,
         step_size: float = 0.001, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> Any:
    """Adam (Kingma and Ba, 2015), with bias-corrected moment estimates (autograd's ``adam``).

    Example:
        >>> import numpy as np, diffprog as dp
        >>> x = adam(lambda x, i: dp.grad(lambda x: (x - 1.0) ** 2)(x), 0.0, num_iters=300,
        ...          step_size=0.05)
        >>> round(float(x), 4)
        1.0
    """
    def update(p, g, moments, i):
        m, v = moments
        m = b1 * m + (1.0 - b1) * g
        v = b2 * v + (1.0 - b2) * g * g
        m_hat = m / (1.0 - b1 ** (i + 1))
        v_hat = v / (1.0 - b2 ** (i + 1))
        return p - step_size * m_hat / (np.sqrt(v_hat) + eps), (m, v)
    return _run(update, lambda p: (np.zeros(np.shape(p)), np.zeros(np.shape(p))), grad, x,
                callback, num_iters)
