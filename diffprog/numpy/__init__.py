"""The NumPy-compatible API: ``import diffprog.numpy as dnp``.

Every function here is a composition of primitives with NumPy's signature and broadcasting; no
derivative rule lives in this package. On values that are not traced each function goes straight
to NumPy after one type check. Each module registers its functions (``@implements``) as the
versions of NumPy's that traced values dispatch to, so ``np.sin(x)`` on a traced ``x`` runs
:func:`diffprog.numpy.sin`.

Example:
    >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
    >>> dp.grad(lambda x: np.sum(np.sin(x)) + dnp.sum(x))(np.zeros(2))
    array([2., 2.])
"""

import numpy as _np

from . import _catalog
from ._elementwise import *  # noqa: F403
from ._elementwise import __all__ as _elementwise_all
from ._linalg import *  # noqa: F403
from ._linalg import __all__ as _linalg_all
from ._misc import *  # noqa: F403
from ._misc import __all__ as _misc_all
from ._reductions import *  # noqa: F403
from ._reductions import __all__ as _reductions_all
from ._shapes import *  # noqa: F403
from ._shapes import __all__ as _shapes_all

float32, float64, pi, e, inf, nan, newaxis = (_np.float32, _np.float64, _np.pi, _np.e, _np.inf,
                                              _np.nan, _np.newaxis)

__all__ = (_elementwise_all + _linalg_all + _misc_all + _catalog.MORE + _catalog.NAMES
           + _reductions_all + _shapes_all
           + ["float32", "float64", "pi", "e", "inf", "nan", "newaxis"])

from ._dispatch import _LAZY_MODULES  # noqa: E402
from ._dispatch import install as _install  # noqa: E402

_install()

# name -> the module defining it, for the modules imported on first use (_catalog.py)
_LAZY_NAMES = {name: module for module, names in _catalog.MODULES.items() for name in names}


def __getattr__(name: str) -> object:
    # Imported on first use, so that `import diffprog` stays under 1.2x `import numpy`
    # (issue 17): diffprog.numpy.fft and .linalg (`dnp.fft`, or an np.fft.* function on a
    # traced value: _dispatch imports the module that registers it; fft also loads numpy.fft,
    # which `import numpy` does not), and the modules of _catalog.py (`dnp.zeros`, or an np.*
    # function without a rule yet on a traced value)
    import importlib  # not `from . import fft`: that asks this __getattr__ first
    module = _LAZY_NAMES.get(name)
    if module is not None:
        loaded = importlib.import_module(module, __name__)
        # the module's names become plain attributes: later reads do not come here
        globals().update({n: getattr(loaded, n) for n in _catalog.MODULES[module]})
        return globals()[name]
    if f".{name}" in _LAZY_MODULES.values():
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'diffprog.numpy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | {m[1:] for m in _LAZY_MODULES.values()})
