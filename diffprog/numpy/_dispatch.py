"""How traced values behave like arrays: operators, methods, and NumPy's dispatch protocols.

This is the one place that gives :class:`~diffprog.core.Tracer` its array behaviour.
``__array_ufunc__`` and ``__array_function__`` route NumPy calls on traced values (``np.sin(x)``,
``np.sum(x)``, ``ndarray * tracer``) to :mod:`diffprog.numpy`. Anything without an entry in the
tables raises a ``TypeError`` that names it: never a silent zero derivative, never an object
array, never a quiet conversion to a constant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core import _CONVERT_MSG, Tracer
from . import _elementwise as ew
from . import _indexing as ix
from . import _linalg as la
from . import _reductions as rd
from . import _shapes as sh
from ._core import FUNCTIONS, UFUNCS


def _unsupported(kind: str, name: str) -> TypeError:
    return TypeError(
        f"diffprog: {kind} {name} is not differentiable yet: diffprog has no rule for it, so it "
        "cannot be applied to a traced value. Use a diffprog.numpy function that computes the "
        "same thing, or wrap the computation in a custom rule.")


# Rules for the ufuncs of other libraries (scipy.special's are NumPy ufuncs, so NumPy hands them
# to traced values like its own). A provider maps a ufunc to a diffprog function, or None when
# the ufunc is not its library's. Layers above this one register them (diffprog/__init__.py
# registers scipy.special's), so that diffprog.numpy imports none of those libraries.
_UFUNC_PROVIDERS: list[Callable[[Any], Any]] = []


def register_ufunc_provider(provider: Callable[[Any], Any]) -> None:
    """Consult ``provider(ufunc) -> function or None`` for ufuncs that are not NumPy's.

    Example:
        >>> register_ufunc_provider(lambda ufunc: None)
        >>> _UFUNC_PROVIDERS.pop()(np.sin) is None
        True
    """
    if provider not in _UFUNC_PROVIDERS:
        _UFUNC_PROVIDERS.append(provider)


def _foreign_ufunc(ufunc: Any) -> Any:
    for provider in _UFUNC_PROVIDERS:
        fn = provider(ufunc)
        if fn is not None:
            return fn
    return None


def _ufunc_label(ufunc: Any) -> str:
    name = getattr(ufunc, "__name__", repr(ufunc))
    return f"NumPy ufunc np.{name}" if getattr(np, name, None) is ufunc else f"ufunc {name}"


def _array_ufunc(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    fn = UFUNCS.get(ufunc)
    if fn is None and _load_catalog():
        fn = UFUNCS.get(ufunc)
    if fn is None:
        fn = _foreign_ufunc(ufunc)
    if method != "__call__" or fn is None:
        kind, _, name = _ufunc_label(ufunc).rpartition(" ")
        raise _unsupported(kind, name + ("" if method == "__call__" else f".{method}"))
    if kwargs:
        out = kwargs.pop("out", None)
        if out is not None:
            raise TypeError(f"diffprog: np.{ufunc.__name__}(..., out=...) writes into an "
                            "array in place, which traced values do not support; use the "
                            "returned value instead")
        dtype = kwargs.pop("dtype", None)
        if kwargs:
            raise TypeError(f"diffprog: np.{ufunc.__name__} with keyword arguments "
                            f"{sorted(kwargs)} is not supported on traced values")
        result = fn(*inputs)
        return result if dtype is None else ew.astype(result, dtype)
    return fn(*inputs)


# NumPy's submodules whose functions are registered by a diffprog.numpy module imported on
# first use (diffprog.numpy.__getattr__)
_LAZY_MODULES = {"numpy.fft": ".fft", "numpy.linalg": ".linalg"}


def _lazy_module(func: Any) -> bool:
    """Import the diffprog.numpy module that registers ``func`` if it is one imported on first
    use (numpy.fft's and numpy.linalg's functions by their module, any other by loading the
    catalog once); whether the caller should look ``func`` up again."""
    module = _LAZY_MODULES.get(getattr(func, "__module__", None))
    if module is None:
        return _load_catalog()
    import importlib
    importlib.import_module(module, __package__)
    return True


_catalog_loaded = False


def _load_catalog() -> bool:
    """Import the diffprog.numpy modules of _catalog.py (loaded on first use; they register
    NumPy functions and ufuncs such as np.nanmax and np.heaviside) the first time a traced
    value meets a NumPy function or ufunc without a rule; whether they were imported now (the
    caller looks again)."""
    global _catalog_loaded
    if _catalog_loaded:
        return False
    import importlib

    from ._catalog import MODULES
    for module in MODULES:
        importlib.import_module(module, __package__)
    _catalog_loaded = True
    return True


def _array_function(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
    fn = FUNCTIONS.get(func)
    if fn is None and _lazy_module(func):
        fn = FUNCTIONS.get(func)
    if fn is None:
        module = getattr(func, "__module__", "numpy") or "numpy"
        module = "np" if module == "numpy" else module.replace("numpy", "np")
        raise _unsupported("NumPy function", f"{module}.{func.__name__}")
    return fn(*args, **kwargs)


class _At:
    """``x.at[idx]``: functional updates that return a new array."""

    __slots__ = ("x",)

    def __init__(self, x: Any) -> None:
        self.x = x

    def __getitem__(self, idx: Any) -> _AtIndex:
        return _AtIndex(self.x, idx)


class _AtIndex:
    __slots__ = ("x", "idx")

    def __init__(self, x: Any, idx: Any) -> None:
        self.x = x
        self.idx = idx

    def add(self, values: Any) -> Any:
        """``x`` with ``values`` added at the index (repeated indices accumulate)."""
        return ix.at_add(self.x, self.idx, values)

    def set(self, values: Any) -> Any:
        """``x`` with the indexed entries replaced by ``values``."""
        return ix.at_set(self.x, self.idx, values)

    def multiply(self, values: Any) -> Any:
        """``x`` with the indexed entries multiplied by ``values``."""
        return ix.at_multiply(self.x, self.idx, values)

    def min(self, values: Any) -> Any:
        """``x`` with the indexed entries replaced by their minimum with ``values``."""
        return ix.at_min(self.x, self.idx, values)

    def max(self, values: Any) -> Any:
        """``x`` with the indexed entries replaced by their maximum with ``values``."""
        return ix.at_max(self.x, self.idx, values)


def _clip_method(self: Any, min: Any = None, max: Any = None, out: Any = None) -> Any:
    return ew.clip(self, min, max, out)


def _round_method(self: Any, decimals: int = 0, out: Any = None) -> Any:
    return ew.round(self, decimals, out)


def _reshape_method(self: Tracer, *shape: Any, order: str = "C") -> Any:
    return sh.reshape(self, shape[0] if len(shape) == 1 else shape, order=order)


def _transpose_method(self: Tracer, *axes: Any) -> Any:
    return sh.transpose(self, None if not axes else (axes[0] if len(axes) == 1 else axes))


def _sort_in_place(self: Any, *args: Any, **kwargs: Any) -> None:
    raise TypeError(
        "traced arrays are immutable: x.sort() would sort x in place. Use the sorted copy "
        "`x = np.sort(x)` (or dnp.sort(x)), whose derivative flows back to the original "
        "positions.")


def _no_python_value(name: str):
    def method(self: Tracer, *args: Any) -> Any:
        raise TypeError(_CONVERT_MSG.format(what=f"{name} (a conversion to Python values)"))
    method.__name__ = name.strip(".()")
    return method


def _in_place(name: str, fix: str):
    def method(self: Tracer, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"traced arrays are immutable and have no memory of their own: {name} is not "
            f"supported on a traced value; {fix}")
    method.__name__ = name.strip(".()")
    return method


def _python_round(self: Tracer, ndigits: Any = None) -> Any:
    raise TypeError(
        "round() of a traced value: Python's round() makes a Python number, which would drop "
        "the derivative; use dnp.round(x) (or np.round) for an array result (its derivative "
        "is zero)")


def _reflected(fn: Any) -> Any:
    """``other <op> self`` for the reflected operator methods (``__radd__`` …)."""
    return lambda self, other: fn(other, self)


def install() -> None:
    """Give traced values their operators, methods and NumPy dispatch (called once on import)."""
    methods: dict[str, Any] = {
        "__array_ufunc__": _array_ufunc, "__array_function__": _array_function,
        "__getitem__": ix.getitem,
        "__neg__": ew.negative, "__pos__": ew.positive, "__abs__": ew.abs,
        "__invert__": ew.invert, "__divmod__": ew.divmod,
        "__lt__": ew.less, "__le__": ew.less_equal, "__gt__": ew.greater,
        "__ge__": ew.greater_equal, "__eq__": ew.equal, "__ne__": ew.not_equal,
        "T": property(lambda self: sh.transpose(self)),
        "mT": property(lambda self: sh.swapaxes(self, -1, -2)),
        "at": property(_At),
        "real": property(lambda self: ew.real(self), doc="The real part, as dnp.real."),
        "imag": property(lambda self: ew.imag(self), doc="The imaginary part, as dnp.imag."),
        "sum": lambda self, axis=None, dtype=None, keepdims=False: rd.sum(self, axis, dtype,
                                                                          keepdims),
        "mean": lambda self, axis=None, dtype=None, keepdims=False: rd.mean(self, axis, dtype,
                                                                            keepdims),
        "max": lambda self, axis=None, keepdims=False: rd.max(self, axis, keepdims),
        "min": lambda self, axis=None, keepdims=False: rd.min(self, axis, keepdims),
        "prod": rd.prod, "var": rd.var, "std": rd.std, "cumsum": rd.cumsum,
        "cumprod": rd.cumprod, "argmax": rd.argmax, "argmin": rd.argmin,
        "argsort": rd.argsort, "all": rd.all, "any": rd.any, "sort": _sort_in_place,
        "astype": ew.astype, "dot": la.dot, "clip": _clip_method, "round": _round_method,
        "conj": ew.conj, "conjugate": ew.conj,
        "reshape": _reshape_method, "transpose": _transpose_method, "swapaxes": sh.swapaxes,
        "squeeze": sh.squeeze, "ravel": sh.ravel, "flatten": sh.ravel, "repeat": sh.repeat,
        "take": ix.take, "diagonal": sh.diagonal, "trace": sh.trace, "nonzero": ix.nonzero,
        "copy": sh.copy, "item": _no_python_value(".item()"),
        "tolist": _no_python_value(".tolist()"),
        "__round__": _python_round,
        "fill": _in_place(".fill()", "build the array with dnp.full_like(x, value)"),
        "flat": property(_in_place(".flat", "use x.ravel() (or dnp.ravel(x)) and index it")),
        "view": _in_place(".view()", "use x.astype(dtype) to convert the values, or x itself"),
        "resize": _in_place(".resize()", "build a new array (dnp.reshape, dnp.concatenate)"),
        "put": _in_place(".put()", "use x.at[idx].set(v)"),
        "itemset": _in_place(".itemset()", "use x.at[idx].set(v)"),
    }
    binary = {"add": ew.add, "sub": ew.subtract, "mul": ew.multiply, "truediv": ew.divide,
              "pow": ew.power, "matmul": la.matmul, "mod": ew.mod,
              "floordiv": ew.floor_divide, "divmod": ew.divmod, "and": ew.bitwise_and,
              "or": ew.bitwise_or, "xor": ew.bitwise_xor}
    for name, fn in binary.items():
        methods[f"__{name}__"] = fn
        methods[f"__r{name}__"] = _reflected(fn)
    for name, method in methods.items():
        setattr(Tracer, name, method)
