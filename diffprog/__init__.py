"""diffprog: differentiable programming for people who write NumPy.

Example:
    >>> import numpy as np, diffprog as dp
    >>> float(dp.grad(lambda x: np.sin(x) * x)(0.0))
    0.0
"""

import sys as _sys

from . import (
                   nn,  # noqa: F401
                   numpy,  # noqa: F401  (declares the primitives and the array protocols)
)
from .ad import (
                   grad,
                   hessian,
                   hvp,
                   is_differentiable,
                   jacfwd,
                   jacrev,
                   jvp,
                   linearize,
                   make_graph,
                   value_and_grad,
                   vjp,
)
from .batching import vmap
from .config import config, debug_nans
from .control import cond, fori_loop, scan, switch, while_loop
from .core import NanError, Primitive, Tracer, bind
from .core import set_eager_provider as _set_eager_provider
from .custom import checkpoint, custom_jvp, custom_vjp, stop_gradient
from .graph import Graph
from .jit import ConcretizationError, jit
from .kernels import eager_fast as _eager_fast
from .numpy._dispatch import register_ufunc_provider as _register_ufunc_provider
from .testing import check_grads, numerical_grad, numerical_jvp
from .tree import (
                   register_pytree_node,
                   tree_flatten,
                   tree_flatten_with_path,
                   tree_leaves,
                   tree_map,
                   tree_structure,
                   tree_unflatten,
)

__all__ = [
    "grad", "value_and_grad", "vjp", "jvp", "jacfwd", "jacrev", "hessian", "hvp", "linearize",
    "make_graph", "vmap", "jit", "ConcretizationError", "config", "debug_nans", "NanError",
    "custom_vjp", "custom_jvp",
    "stop_gradient", "checkpoint", "is_differentiable", "Graph",
    "cond", "switch", "scan", "fori_loop", "while_loop",
    "Primitive", "Tracer", "bind", "check_grads", "numerical_grad", "numerical_jvp",
    "tree_flatten", "tree_unflatten", "tree_map", "tree_leaves", "tree_structure",
    "tree_flatten_with_path", "register_pytree_node",
]
__version__ = "0.1.0"


def _scipy_special_ufunc(ufunc: object) -> object:
    """The rule for one of scipy.special's ufuncs, or None for any other ufunc.

    SciPy's ufuncs carry no ``__module__``; one is recognized as the attribute of
    ``scipy.special`` with its name. A SciPy ufunc exists only once scipy.special is imported,
    so looking in ``sys.modules`` never imports SciPy; diffprog.scipy (which needs it) is
    imported on the first such ufunc.
    """
    special = _sys.modules.get("scipy.special")
    name = getattr(ufunc, "__name__", None)
    if special is None or not isinstance(name, str) or getattr(special, name, None) is not ufunc:
        return None
    from .scipy.special import ufunc_rule
    return ufunc_rule(ufunc)


_register_ufunc_provider(_scipy_special_ufunc)

# Large float arrays: fast math and fused rules by precompiled kernels (issue 17). The module
# loads numba in a background thread from its first large call (NumPy runs meanwhile); core and
# the primitives never import it.
_set_eager_provider(_eager_fast.run, _eager_fast.MIN_SIZE)
