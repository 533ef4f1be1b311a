"""``diffprog.scipy.optimize.minimize``: SciPy's ``minimize`` with the derivatives done for you.

``x0`` may be any pytree: its float leaves are flattened into the vector SciPy works on and
the result's ``x`` is rebuilt in ``x0``'s structure; static leaves (ints, strings, flags)
pass through untouched. The gradient comes from :func:`diffprog.value_and_grad` (SciPy's
``jac=True``: one pass for value and gradient); for methods that use Hessian-vector products
(Newton-CG, trust-ncg, trust-krylov, trust-constr) ``hessp`` comes from :func:`diffprog.hvp`,
never forming the Hessian. Everything else is SciPy's own ``minimize``.

Example:
    >>> import numpy as np, diffprog.numpy as dnp
    >>> rosen = lambda p: 100 * (p["y"] - p["x"] ** 2) ** 2 + (1 - p["x"]) ** 2
    >>> res = minimize(rosen, {"x": -1.2, "y": 1.0}, method="BFGS")
    >>> round(float(res.x["x"]), 5), round(float(res.x["y"]), 5), res.success
    (1.0, 1.0, True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize

from ..ad import hvp, value_and_grad
from ..api_util import is_differentiable
from ..jit import jit as _jit
from ..tree import tree_flatten, tree_unflatten

__all__ = ["minimize", "OptimizeResult"]

OptimizeResult = scipy.optimize.OptimizeResult

_HESSP_METHODS = {"newton-cg", "trust-ncg", "trust-krylov", "trust-constr"}


class _Packing:
    """The float leaves of ``x0`` as one float64 vector, and back."""

    def __init__(self, x0: Any) -> None:
        self.leaves, self.treedef = tree_flatten(x0)
        self.positions = [i for i, leaf in enumerate(self.leaves) if is_differentiable(leaf)]
        if not self.positions:
            raise TypeError("minimize: x0 has no float leaves to optimize; pass floats "
                            "(e.g. 1.0 rather than 1) or float arrays")
        self.shapes = [np.shape(self.leaves[i]) for i in self.positions]
        self.dtypes = [np.result_type(self.leaves[i]) for i in self.positions]
        self.sizes = [int(np.prod(s)) for s in self.shapes]

    def flatten(self, tree: Any) -> np.ndarray:
        leaves = tree_flatten(tree, is_leaf=lambda x: x is None)[0]
        parts = [np.asarray(leaves[i], np.float64).reshape(-1) for i in self.positions]
        return np.concatenate(parts) if parts else np.zeros(0)

    def unflatten(self, vector: np.ndarray) -> Any:
        leaves = list(self.leaves)
        offset = 0
        for i, shape, dtype, size in zip(self.positions, self.shapes, self.dtypes,
                                         self.sizes):
            piece = vector[offset:offset + size].reshape(shape).astype(dtype)
            leaves[i] = float(piece) if type(self.leaves[i]) is float else piece
            offset += size
        return tree_unflatten(self.treedef, leaves)


def minimize(fun: Callable, x0: Any, args: tuple = (), method: str | None = None,
             jac: Any = None, hess: Any = None, hessp: Any = None, bounds: Any = None,
             constraints: Any = (), tol: float | None = None,
             callback: Callable | None = None, options: dict | None = None,
             jit: bool = False) -> OptimizeResult:
    """Minimize ``fun(x, *args)`` over the pytree ``x0`` with SciPy, derivatives from diffprog.

    ``jac`` and ``hessp`` are computed for you (pass your own to override them); ``hess`` is
    passed through. ``bounds`` may be SciPy's sequence over the flattened float leaves.
    ``callback`` receives ``x`` in ``x0``'s structure. With ``jit=True`` the value-and-gradient
    (and Hessian-vector product) functions are compiled with :func:`diffprog.jit`.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> res = minimize(lambda w, a: dnp.sum((w - a) ** 2), np.zeros(3),
        ...                args=(np.array([1.0, 2.0, 3.0]),), method="Newton-CG")
        >>> np.round(res.x, 6)
        array([1., 2., 3.])
    """
    packing = _Packing(x0)

    def tree_fun(tree: Any, *a: Any) -> Any:
        return fun(tree, *a)

    value_and_grad_fn = value_and_grad(tree_fun)
    if jit:
        value_and_grad_fn = _jit(value_and_grad_fn)

    def objective(vector: np.ndarray, *a: Any) -> Any:
        value, g = value_and_grad_fn(packing.unflatten(vector), *a)
        return float(value), packing.flatten(g)

    kwargs: dict[str, Any] = {}
    name = (method or "").lower()
    if jac is None or jac is True:
        fn, jac_arg = objective, True
    else:
        def fn(vector: np.ndarray, *a: Any) -> float:
            return float(fun(packing.unflatten(vector), *a))
        jac_arg = jac
    if hessp is None and hess is None and name in _HESSP_METHODS:
        def hvp_tree(tree: Any, tangent: Any, *a: Any) -> Any:
            return hvp(lambda t: fun(t, *a), (tree,), (tangent,))[0]

        hvp_fn = _jit(hvp_tree) if jit else hvp_tree

        def hessp_flat(vector: np.ndarray, direction: np.ndarray, *a: Any) -> np.ndarray:
            return packing.flatten(hvp_fn(packing.unflatten(vector),
                                          packing.unflatten(direction), *a))
        kwargs["hessp"] = hessp_flat
    elif hessp is not None:
        kwargs["hessp"] = hessp
    if hess is not None:
        kwargs["hess"] = hess
    user_callback = None
    if callback is not None:
        def user_callback(xk: Any, *rest: Any) -> Any:
            if isinstance(xk, OptimizeResult):  # trust-constr's / new-style intermediate_result
                return callback(packing.unflatten(xk.x))
            return callback(packing.unflatten(np.asarray(xk)))
    res = scipy.optimize.minimize(fn, packing.flatten(x0), args=tuple(args), method=method,
                                  jac=jac_arg, bounds=bounds, constraints=constraints, tol=tol,
                                  callback=user_callback, options=options, **kwargs)
    res.x = packing.unflatten(np.asarray(res.x))
    if "jac" in res and np.ndim(res.jac) == 1 and len(res.jac) == sum(packing.sizes):
        res.jac = packing.unflatten(np.asarray(res.jac, np.float64))
    return res
