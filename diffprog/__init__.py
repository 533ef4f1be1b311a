"""diffprog: differentiable programming for people who write NumPy.

Example:
    >>> import numpy as np, diffprog as dp
    >>> float(dp.grad(lambda x: np.sin(x) * x)(0.0))
    0.0
"""

import sys as _sys

from . import core as _core
from . import numpy  # noqa: F401  (declares the primitives and the array protocols)
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
from .config import config, debug_nans
from .core import ConcretizationError, NanError, Primitive, Tracer, bind
from .core import set_eager_provider as _set_eager_provider
from .graph import Graph
from .jit import jit
from .numpy._dispatch import register_ufunc_provider as _register_ufunc_provider
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

# These modules are imported on first use of one of their names, by module-level __getattr__
# (PEP 562): `import diffprog` stays under 1.2x `import numpy` (issue 17), and a program pays
# only for what it uses (diffprog.control alone costs ~7% of NumPy's import time). Not jit:
# importing the submodule diffprog.jit would set the attribute diffprog.jit to the module.
_LAZY = {
    **dict.fromkeys(("cond", "switch", "scan", "fori_loop", "while_loop"), "control"),
    **dict.fromkeys(("checkpoint", "custom_jvp", "custom_vjp", "stop_gradient"), "custom"),
    **dict.fromkeys(("check_grads", "numerical_grad", "numerical_jvp"), "testing"),
    "vmap": "batching",
}
_LAZY_MODULES = ("nn", "optim", "control", "custom", "testing")


def __getattr__(name: str) -> object:
    import importlib
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    elif name in _LAZY_MODULES:  # `dp.nn` without `import diffprog.nn`
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'diffprog' has no attribute {name!r}")
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))


class _LazyEagerProvider:
    """The eager provider until the first large call: it imports diffprog.kernels.eager_fast
    (~10% of NumPy's import time, which most programs never need), registers its ``run`` in
    its own place and hands it the call.

    ``runs_impl`` and ``MIN_SIZE`` answer what registering needs without the import; they
    restate eager_fast's tables (``THRESHOLDS``, ``NUMPY_SIMD``) and tests/test_lazy_import.py
    checks that they agree. An impl runs as a kernel unless NumPy's SIMD loop of its function
    is faster in every dtype.
    """

    __slots__ = ()
    MIN_SIZE = 16384
    _NUMPY_SIMD_EVERY_DTYPE = frozenset({"exp", "expm1", "log", "log1p", "tanh"})

    def __call__(self, prim: Primitive, i: int, t: object, out: object, args: tuple) -> object:
        from .kernels import eager_fast
        if _core._eager_provider is self:
            _set_eager_provider(eager_fast.run, eager_fast.MIN_SIZE)
        return eager_fast.run(prim, i, t, out, args)

    @staticmethod
    def runs_impl(prim: Primitive) -> bool:
        fast = prim.scalar_fast
        return fast is not None and fast not in _LazyEagerProvider._NUMPY_SIMD_EVERY_DTYPE


# Large float arrays: fast math and fused rules by precompiled kernels (issue 17). The module
# loads numba in a background thread from its first large call (NumPy runs meanwhile); core and
# the primitives never import it.
_set_eager_provider(_LazyEagerProvider(), _LazyEagerProvider.MIN_SIZE)
