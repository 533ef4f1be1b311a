"""The core: primitives, ``bind``, tracers and traces.

Every operation on a traced value goes through :func:`bind`. It finds the highest-level trace
among the arguments and lets that trace process the primitive; values that belong to lower
levels (or to no trace at all) are constants to it. With no tracer among the arguments the
primitive's NumPy implementation runs directly, which is the fast path that plain code and
first-order backward passes take.

Levels come from one process-wide counter. A transform started while another runs gets a
higher level, so a trace never treats an enclosing transform's tracer as its own: that is what
keeps nested derivatives from being confused.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Primitive", "Tracer", "Trace", "bind", "primitives", "concrete", "NanError",
           "ShapedArray", "ConcretizationError"]

# ``next`` on an itertools.count is atomic under the GIL, so threads get distinct levels.
_levels = itertools.count(1)

primitives: dict[str, Primitive] = {}


class Primitive:
    """A named operation with everything the transforms need, declared in one place.

    Args:
        name: unique name, shown in graphs and error messages.
        impl: the NumPy implementation, ``impl(*args, **params)``.
        jvp: the forward rule. Either a tuple with one function per argument,
            ``rule(tangent, out, *args, **params)`` giving that argument's contribution to the
            output tangent (contributions are summed; arguments with a zero tangent are
            skipped), or one function ``rule(tangents, out, *args, **params)`` where
            ``tangents`` holds ``None`` for a zero tangent.
        vjp: the reverse rule, in the same two forms: per argument
            ``rule(cotangent, out, *args, **params)`` giving that argument's cotangent (only
            called for arguments that need one), or one function returning a tuple.
        differentiable: ``False`` for operations whose output is piecewise constant
            (comparisons, ``sign``, ``floor``): traces compute them on primal values and the
            result carries no derivative.
        multiple_results: ``impl`` returns a tuple of arrays (``eigh``, ``qr``). Then ``out`` in
            the rules is that tuple, a jvp rule returns a tuple of output tangents (``None`` for
            zero) and a vjp rule receives a tuple of output cotangents (zeros where unused).
        composite: ``impl`` is itself written with diffprog operations (custom rules,
            checkpoints), so it can run on traced values: jit inlines it.
        transparent: a derivative trace nested in another transform runs ``impl`` on the
            enclosing transform's values instead of binding the primitive there, so enclosing
            transforms differentiate the body op by op (custom_vjp: its residuals must be
            differentiable values of the enclosing transforms).
        abstract: the shape rule, ``abstract(*args, **params)`` -> an object with ``shape`` and
            ``dtype`` (a tuple of them with ``multiple_results``), given arguments that have
            ``shape`` and ``dtype``. Without one, jit evaluates ``impl`` on stand-in arrays.
        scalar: the scalar form, for fused elementwise kernels: a function of scalars (and the
            params) that numba can compile, equal to ``impl`` elementwise (NumPy is the oracle).
        scalar_fast: the name of a function in ``diffprog.kernels.fastmath`` that a kernel may
            call instead of ``scalar`` (vectorizable, within fastmath's documented ulp bound).
            A name, not the function: primitives sit below the kernels and do not import them.
        scalar_fast_domain: the name of a ``diffprog.kernels.fastmath`` predicate on the
            arguments telling where ``scalar_fast`` is valid; where it is false for some element,
            the kernel is rerun with ``scalar`` (``None``: valid everywhere).

    Rules are written with diffprog operations, so a backward pass run under an outer
    transform is itself traced (the extended graph), and derivatives of any order follow.

    Example:
        >>> import numpy as np
        >>> double = Primitive("double_example", np.add.reduce, register=False)
        >>> double.name
        'double_example'
    """

    __slots__ = ("name", "impl", "jvp", "vjp", "jvp_per_arg", "vjp_per_arg", "differentiable",
                 "multiple_results", "composite", "transparent", "abstract", "scalar",
                 "scalar_fast", "scalar_fast_domain",
                 "identity", "involution", "collapse", "keep_plan", "__weakref__")

    def __init__(self, name: str, impl: Callable, *, jvp: Any = None, vjp: Any = None,
                 differentiable: bool = True, multiple_results: bool = False,
                 composite: bool = False, transparent: bool = False,
                 abstract: Callable | None = None, scalar: Callable | None = None,
                 scalar_fast: str | None = None, scalar_fast_domain: str | None = None,
                 identity: dict[int, Any] | None = None, involution: bool = False,
                 collapse: bool = False, vjp_reads: tuple | None = None,
                 register: bool = True) -> None:
        self.name = name
        self.impl = impl
        self.jvp = jvp
        self.vjp = vjp
        self.jvp_per_arg = isinstance(jvp, tuple)
        self.vjp_per_arg = isinstance(vjp, tuple)
        self.differentiable = differentiable
        self.multiple_results = multiple_results
        self.composite = composite
        self.transparent = transparent
        self.abstract = abstract
        self.identity = identity
        self.involution = involution
        self.collapse = collapse
        self.keep_plan = None if vjp_reads is None else _keep_plan(vjp_reads)
        self.scalar = scalar
        self.scalar_fast = scalar_fast
        self.scalar_fast_domain = scalar_fast_domain
        if register:
            if name in primitives:
                raise ValueError(f"a primitive named {name!r} is already declared")
            primitives[name] = self

    def __call__(self, *args: Any, **params: Any) -> Any:
        return bind(self, *args, **params)

    def __repr__(self) -> str:
        return f"Primitive({self.name})"

    def jvp_rule(self, tangents: Sequence[Any], out: Any, args: Sequence[Any],
                 params: dict) -> Any:
        """Output tangent for ``tangents`` (``None`` = zero); ``None`` when all are zero."""
        if self.jvp is None:
            raise NotImplementedError(f"primitive {self.name!r} has no jvp rule yet")
        if not self.jvp_per_arg:
            return self.jvp(tangents, out, *args, **params)
        total = None
        rules = self.jvp
        for i, t in enumerate(tangents):
            if t is not None:
                contribution = rules[i](t, out, *args, **params)
                if total is None:
                    total = contribution
                elif self.multiple_results:
                    total = tuple(a if b is None else b if a is None else a + b
                                  for a, b in zip(total, contribution))
                else:
                    total = total + contribution
        return total


def _keep_plan(reads: tuple) -> tuple:
    """For each mask of differentiated arguments: which arguments (None: all) and whether the
    output the reverse trace must keep for the vjp rules of those arguments."""
    n = len(reads)
    plan = []
    for mask in range(1 << n):
        keep = [not mask >> k & 1 for k in range(n)]  # constants are kept: replay reads them
        keep_out = False
        for j in range(n):
            if mask >> j & 1:
                for r in reads[j]:
                    if r == -1:
                        keep_out = True
                    else:
                        keep[r] = True
        plan.append((None if all(keep) else tuple(keep), keep_out))
    return tuple(plan)


def bind(prim: Primitive, *args: Any, **params: Any) -> Any:
    """Apply ``prim`` to ``args``: the one interception point of every transform.

    Example:
        >>> import numpy as np
        >>> from diffprog.prims.elementwise import sin
        >>> float(bind(sin, np.float64(0.0)))
        0.0
    """
    top = None
    for a in args:
        if isinstance(a, Tracer):
            t = a._trace
            if top is None or t.level > top.level:
                top = t
    if top is None:
        out = prim.impl(*args, **params)
        if DEBUG_NANS:
            check_nans(prim, args, out, "forward")
        return out
    if not top.alive:
        raise _escaped(top)
    return top.process(prim, args, params)


# Set by diffprog.config.debug_nans. A module global, so that when it is off the hot paths pay
# one global lookup and nothing else.
DEBUG_NANS = False


def _has_nan(x: Any) -> bool:
    x = concrete(x)
    if not isinstance(x, (np.ndarray, np.generic, float, complex)):
        return False
    return bool(np.isnan(x).any())


class NanError(FloatingPointError):
    """Raised under ``debug_nans`` at the first primitive that makes a NaN from non-NaN inputs."""


def check_nans(prim: Primitive, args: Sequence[Any], out: Any, phase: str,
               where: str | None = None) -> None:
    """Raise NanError if ``out`` has a NaN that none of ``args`` had (debug_nans mode)."""
    outs = out if isinstance(out, tuple) else (out,)
    if not any(_has_nan(o) for o in outs) or any(_has_nan(a) for a in args):
        return
    shapes = ", ".join(f"{getattr(concrete(a), 'dtype', type(a).__name__)}"
                       f"{list(getattr(concrete(a), 'shape', ()))}" for a in args)
    raise NanError(
        f"debug_nans: primitive {prim.name!r} produced NaN from inputs without NaN, in the "
        f"{phase} pass, at {where or _user_frame(1)} (inputs: {shapes}). A common cause in the "
        "backward pass is a branch masked by where(): compute the unsafe function on a safe "
        "input, e.g. where(x > 0, log(where(x > 0, x, 1.0)), 0.0).")


def _escaped(trace: Trace) -> Exception:
    return RuntimeError(
        f"a traced value escaped from {trace.name}: it was created by the {trace.name} "
        f"transform started at {trace.where}, and that transform has finished. Values traced "
        "inside a transformed function are only valid while it runs; return them from the "
        "function (as an output or as aux) instead of storing them outside.")


class Trace:
    """One running transform. Subclasses implement ``process(prim, args, params)``."""

    __slots__ = ("level", "alive", "name", "where")

    def __init__(self, name: str) -> None:
        self.level = next(_levels)
        self.alive = True
        self.name = name
        self.where = _user_frame()

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        raise NotImplementedError

    def own(self, x: Any) -> bool:
        """Is ``x`` a tracer of this trace?"""
        return isinstance(x, Tracer) and x._trace is self


def _user_frame(depth: int = 2) -> str:
    """``file:line`` of the first frame outside diffprog, for error messages."""
    f = sys._getframe(depth)
    while f is not None and f.f_globals.get("__name__", "").startswith("diffprog"):
        f = f.f_back
    return "<unknown>" if f is None else f"{f.f_code.co_filename}:{f.f_lineno}"


_CONVERT_MSG = (
    "{what} of a traced value: this would drop its derivative. Keep the value as an array "
    "inside the function (diffprog.numpy or NumPy functions work on it); for control flow on "
    "a traced value use a comparison like `if x > 0`, or dnp.where for elementwise choices. "
    "If the derivative really should be dropped, use diffprog.stop_gradient.")


class Tracer:
    """A value being traced by a transform. Behaves like a NumPy array.

    Subclasses keep the primal value in ``primal``; its shape and dtype are the tracer's.
    Operators and array methods are attached by :mod:`diffprog.numpy`.
    """

    __slots__ = ("_trace",)
    __array_priority__ = 1000

    @property
    def shape(self) -> tuple:
        return self.primal.shape

    @property
    def dtype(self) -> np.dtype:
        return self.primal.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        shape = self.shape
        if not shape:
            raise TypeError("len() of a 0-d traced value")
        return shape[0]

    def __bool__(self) -> bool:
        # Python control flow on concrete traced values is allowed: the branch taken is part of
        # the function being differentiated, exactly as NumPy would evaluate it.
        return bool(concrete(self))

    def __float__(self) -> float:
        raise TypeError(_CONVERT_MSG.format(what="float()"))

    def __int__(self) -> int:
        raise TypeError(_CONVERT_MSG.format(what="int()"))

    def __complex__(self) -> complex:
        raise TypeError(_CONVERT_MSG.format(what="complex()"))

    def __index__(self) -> int:
        raise TypeError(_CONVERT_MSG.format(what="Using as an index"))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(_CONVERT_MSG.format(
            what="np.asarray() (or another conversion to a NumPy array, such as np.array([x, y]) "
                 "of a list holding traced values)")
            + " To build an array from traced values use dnp.array([x, y]) or dnp.stack([x, y]).")

    def __setitem__(self, idx: Any, value: Any) -> None:
        raise TypeError(
            "traced arrays are immutable: `x[idx] = v` would change a value the derivative "
            "depends on. Use the functional form `x = x.at[idx].set(v)` (or .add/.multiply/"
            ".min/.max(v); "
            "`dnp.at(x)[idx].set(v)` works on plain arrays too), or build the result with "
            "dnp.where.")

    def __iter__(self):
        shape = self.shape
        if not shape:
            raise TypeError("iteration over a 0-d traced value")
        return (self[i] for i in range(shape[0]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}<{self._trace.name}>({self.primal!r})"

    def __hash__(self) -> int:
        # like ndarray: == is elementwise, so a traced value cannot be a dict key or set member
        raise TypeError(
            "traced values are not hashable, like NumPy arrays (== is elementwise); key dicts "
            "and sets by something static instead (a name, an index, or id(x))")


# ----------------------------------------------------------------------------------------------
# Abstract values: what jit traces with, and what primitives' abstract rules return


class ConcretizationError(TypeError):
    """A value traced by jit was used where a concrete value is needed."""


def _concretization(what: str) -> ConcretizationError:
    return ConcretizationError(
        f"{what} of a value traced by jit: under jit only the shape and dtype of a value are "
        "known, so Python control flow and conversions cannot depend on its contents. Either "
        "mark the argument static, `jit(f, static_argnums=(i,))` (one compilation per value), "
        "or compute both branches and choose elementwise with `dnp.where(cond, a, b)`.")


class _NoValue:
    """Conversions that need a value raise: under jit there is only shape and dtype."""

    __slots__ = ()

    def __float__(self) -> float:
        raise _concretization("float()")

    def __int__(self) -> int:
        raise _concretization("int()")

    def __index__(self) -> int:
        raise _concretization("Using as an index")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise _concretization("np.asarray()")


class ShapedArray(_NoValue):
    """An abstract array: shape and dtype, no values. What jit traces with.

    Example:
        >>> ShapedArray((2, 3), np.float32)
        float32[2,3]
    """

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: Sequence[int], dtype: Any) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __repr__(self) -> str:
        return f"{self.dtype.name}[{','.join(str(d) for d in self.shape)}]"

    def __bool__(self) -> bool:
        raise _concretization("bool() (an `if`, `while`, `and`/`or` or assert)")


def concrete(x: Any) -> Any:
    """The concrete value under any number of tracers (used for Python control flow)."""
    while isinstance(x, Tracer):
        x = x.primal
    return x
