"""``diffprog.scipy``: SciPy's functions, differentiable (``diffprog.scipy.special``,
``diffprog.scipy.stats``, ``diffprog.scipy.linalg``, ``diffprog.scipy.integrate``,
``diffprog.scipy.signal``, ``diffprog.scipy.optimize``).

Needs SciPy, an optional dependency: ``pip install diffprog[scipy]``. ``import diffprog`` does
not import SciPy; SciPy's ufuncs applied to traced values find their rules here lazily.

Example:
    >>> import diffprog as dp
    >>> from diffprog.scipy import special
    >>> float(dp.grad(special.gammaln)(1.0))  # digamma(1) = -Euler's gamma
    -0.5772156649015329
"""

try:
    import scipy.special  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError("diffprog.scipy needs SciPy, which is not installed: "
                      "pip install diffprog[scipy]") from e

from . import integrate, linalg, optimize, signal, special, stats

__all__ = ["special", "stats", "linalg", "integrate", "signal", "optimize"]
