"""Eager kernels for large elementwise arrays (issue 17): fast math and fused rules, no jit.

Outside ``jit``, every primitive runs its NumPy implementation, and a rule such as tanh's
``t * (1.0 - out * out)`` is three NumPy calls, three passes over memory; NumPy's float64
``sin`` and ``cos`` are scalar libm loops. For float operands of at least :data:`THRESHOLDS`
elements (per dtype), the elementwise primitives that declare them run instead:

* their implementation as one vectorized loop of the :mod:`~diffprog.kernels.fastmath`
  function their ``scalar_fast`` field names (within its ``scalar_fast_domain``);
* their jvp and vjp rules as one loop of the expression in their ``rule_scalar`` field: the
  same operations as the rule, in the same order, with fastmath for the transcendental calls.

How it is wired: :mod:`diffprog` registers :func:`run` with :func:`diffprog.core.set_eager_provider`
(core and the primitives sit below the kernels and never import them); the primitives compare
an operand's size with ``core.EAGER_MIN_SIZE`` (:data:`MIN_SIZE`) and above it call
:func:`run`, which returns ``None`` (NumPy runs, as before) unless every operand is a native
float32 or float64 C-contiguous array of one shape and dtype, at least that dtype's threshold.
Nothing waits for numba: the first large call of a form runs NumPy and queues the form's kernel
for a daemon loader thread (which imports numba, the first time about 1.7 s, then loads the
kernel from the disk cache or compiles it: seconds on a fresh process); the calls after it is
ready run it. A kernel that fails to load warns once and NumPy runs that form from then on;
without numba the hooks are removed. :func:`wait_ready` waits for the loader (tests,
benchmarks); ``diffprog.config.eager_kernels = False`` turns the kernels off. A primitive's
impl carries the hook only if some dtype can run it as a kernel (:func:`runs_impl`): tanh's,
log's, log1p's and expm1's are NumPy's ufuncs themselves, with no per-call overhead.

Kernels are generated from the fields (as fused jit kernels are) and compiled by
:func:`diffprog.kernels.cache.load`: numba's machine code goes to the verified private disk
cache, so each kernel is compiled once per installation (per cache folder) and a new process
loads it from disk. A kernel's source carries the digest of ``fastmath.py``, so editing the
fast math recompiles it.

Accuracy: the arithmetic is NumPy's, operation by operation, in the operands' dtype (literals
are constants of that dtype, and no multiply-add is contracted), so the results differ from
NumPy's only through the fastmath calls: fastmath is within 0.9 ulp of the exact value in
float64 and computes float32 in float64 rounded once, where NumPy's functions are within about
1 ulp (float32: up to a few), so results agree with NumPy's within :data:`ULP_BOUND` ulp
(tests/test_eager_fast.py checks edge values, signed zeros, infinities, nan, subnormals and
random points, in both dtypes). Where the domain fails for some element (``sin`` of
``|x| > TRIG_MAX``) the whole call falls back to NumPy.

Example:
    >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
    >>> x = np.linspace(-2.0, 2.0, 100_000)
    >>> _ = dp.grad(lambda x: dnp.sum(dnp.tanh(dnp.sin(x))))(x)  # NumPy; kernels start loading
    >>> wait_ready(600)
    True
    >>> g = dp.grad(lambda x: dnp.sum(dnp.tanh(dnp.sin(x))))(x)
    >>> want = np.cos(x) * (1.0 - np.tanh(np.sin(x)) ** 2)
    >>> bool(np.allclose(g, want, rtol=1e-14, atol=0))
    True
"""

from __future__ import annotations

import ast
import atexit
import functools
import hashlib
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import core
from . import cache as _cache

__all__ = ["THRESHOLDS", "MIN_SIZE", "ULP_BOUND", "run", "expression", "stats", "enabled",
           "wait_ready", "runs_impl"]

#: Operand sizes from which the kernels run, per dtype: the smallest power of 4 from which
#: every form the kernels take is at least as fast as NumPy, measured by
#: ``benchmarks/eager_threshold.py`` (2-core Xeon with AVX-512, shared and loaded, minimum of
#: interleaved repeats): below it the call overhead of a kernel (a few µs) is not always
#: repaid (sin and cos alone pay from about 1,000 elements, pure arithmetic from about 16,000).
THRESHOLDS: dict[np.dtype, int] = {np.dtype(np.float64): 16384, np.dtype(np.float32): 16384}
#: fastmath functions that NumPy runs as a SIMD loop (AVX-512 here) faster than a kernel
#: computes them, per dtype: an expression that calls one stays with NumPy (``exp(x)``,
#: float32 ``t * cos(x)``), since fusing the arithmetic around the call does not repay the
#: slower call. Measured by ``benchmarks/eager_threshold.py --forms`` (2^16 elements): NumPy's
#: float64 sin and cos are scalar libm loops (6-10 ns an element, the kernels 2.1-2.5), its
#: float64 exp, expm1, log, log1p and tanh SIMD loops (0.7-1.9 ns, the kernels 1.0-2.4); every
#: float32 one is SIMD (0.3-1.4 ns), where fastmath computes in float64 (1.1-3.4 ns). NumPy has
#: no sigmoid ufunc (logistic is a composite of several passes): the kernel wins in both.
NUMPY_SIMD: dict[np.dtype, frozenset] = {
    np.dtype(np.float64): frozenset({"exp", "expm1", "log", "log1p", "tanh"}),
    np.dtype(np.float32): frozenset({"exp", "expm1", "log", "log1p", "tanh", "sin", "cos"}),
}
#: The smallest threshold: what the primitives compare with (``core.EAGER_MIN_SIZE``).
MIN_SIZE = min(THRESHOLDS.values())
#: Results agree with NumPy's within this many ulp of the result's dtype (see the module doc).
ULP_BOUND = 4

#: Calls served by a kernel, and calls above the size handed back to NumPy (for tests).
stats = {"kernel": 0, "numpy": 0}

_ARGS = ("x", "y", "z")
_FASTMATH = ("exp", "expm1", "log", "log1p", "tanh", "sigmoid", "logistic", "sin", "cos")
_lock = threading.Lock()
_specs: dict[tuple, Any] = {}      # (prim, i) -> _Spec or None
_kernels: dict[tuple, Any] = {}    # (expr, domain, names, dtype) -> compiled kernel or None
_state = {"numba": None}           # None: not tried yet; False: numba does not import


class _Spec:
    """What one form of one primitive needs: its expression, the names it reads (in order)
    and the fastmath predicate of its domain."""

    __slots__ = ("expr", "names", "domain", "n_args", "numpy_dtypes")

    def __init__(self, expr: str, names: tuple[str, ...], domain: str | None,
                 n_args: int, calls: set[str]) -> None:
        self.expr, self.names, self.domain, self.n_args = expr, names, domain, n_args
        # the dtypes for which NumPy's SIMD loops beat this expression's kernel
        self.numpy_dtypes = frozenset(dt for dt, fns in NUMPY_SIMD.items() if calls & fns)


def expression(prim: core.Primitive, i: int) -> str | None:
    """The scalar expression the kernel of ``prim``'s impl (``i = -1``) or of its rule ``i``
    runs, or ``None`` if it has none.

    Example:
        >>> from diffprog.prims import elementwise as ew
        >>> expression(ew.sin, -1), expression(ew.sin, 0), expression(ew.add, 0)
        ('sin(x)', 't * cos(x)', None)
    """
    if i < 0:
        return None if prim.scalar_fast is None else f"{prim.scalar_fast}(x)"
    forms = prim.rule_scalar
    return forms[i] if forms is not None and i < len(forms) else None


def _spec(prim: core.Primitive, i: int, n_args: int) -> _Spec | None:
    key = (prim, i)
    try:
        return _specs[key]
    except KeyError:
        pass
    expr = expression(prim, i)
    spec = None
    if expr is not None:
        calls: set[str] = set()
        used = _names(expr, n_args, calls)
        domain = prim.scalar_fast_domain
        args = _ARGS[:n_args]
        # the predicate reads the arguments, so they are operands even if the form is not
        names = tuple(n for n in ("t", "out") + args if n in used or (domain and n in args))
        spec = _Spec(expr, names, domain, n_args, calls)
    _specs[key] = spec
    return spec


# arithmetic on operands, numbers and fastmath calls; nothing else compiles into a kernel
_SYNTAX = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Constant, ast.Load,
           ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd)


def _names(expr: str, n_args: int, calls: set[str] | None = None) -> set[str]:
    """The variables ``expr`` reads (the functions it calls are added to ``calls``); raises
    ValueError for anything outside the vocabulary (a declaration error, caught by the
    tests)."""
    allowed = {"t", "out", *_ARGS[:n_args]}
    used = set()
    for node in ast.walk(ast.parse(expr, mode="eval")):
        if isinstance(node, ast.Name):
            if node.id in allowed:
                used.add(node.id)
            elif node.id in _FASTMATH:
                if calls is not None:
                    calls.add(node.id)
            else:
                raise ValueError(f"rule form {expr!r}: {node.id!r} is neither an operand "
                                 f"({sorted(allowed)}) nor a fastmath function {_FASTMATH}")
        elif isinstance(node, ast.Call) and (node.keywords or not isinstance(node.func,
                                                                               ast.Name)):
            raise ValueError(f"rule form {expr!r}: only fastmath functions may be called")
        elif isinstance(node, ast.Constant) and (isinstance(node.value, bool) or
                                                 not isinstance(node.value, (int, float))):
            raise ValueError(f"rule form {expr!r}: constant {node.value!r} is not a number")
        elif not isinstance(node, _SYNTAX):
            raise ValueError(f"rule form {expr!r}: {type(node).__name__} is not arithmetic")
    return used


class _Rename(ast.NodeTransformer):
    """Operands become ``v_<name>``, fastmath calls ``_fm.<name>``, number literals globals
    ``_k<j>`` of the kernel's dtype (so float32 arithmetic stays float32, as in NumPy)."""

    def __init__(self) -> None:
        self.constants: list[float] = []

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _FASTMATH:
            return ast.Attribute(value=ast.Name("_fm", ast.Load()), attr=node.id, ctx=ast.Load())
        return ast.Name(f"v_{node.id}", ast.Load())

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        self.constants.append(float(node.value))
        return ast.Name(f"_k{len(self.constants) - 1}", ast.Load())


def _fastmath_digest() -> str:
    data = Path(__file__).with_name("fastmath.py").read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


def source(spec: _Spec, dtype: np.dtype) -> str:
    """The generated kernel of ``spec`` for ``dtype``: ``kernel(n, res, *operands)`` fills
    ``res`` and returns how many elements are outside the domain.

    Example:
        >>> from diffprog.prims import elementwise as ew
        >>> print(source(_spec(ew.tanh, 0, 1), np.dtype(np.float64)).split("\\n\\n\\n")[1])
        @numba.njit(cache=True, nogil=True, error_model='numpy')
        def kernel(n, res, a_t, a_out):
            _wide()
            bad = 0
            for i in range(n):
                v_t = a_t[i]
                v_out = a_out[i]
                res[i] = v_t * (_k0 - v_out * v_out)
            return bad
        <BLANKLINE>
    """
    rename = _Rename()
    body = ast.unparse(rename.visit(ast.parse(spec.expr, mode="eval")))
    lines = ["import numba", "import numpy as np", "",
             "from diffprog.kernels import fastmath as _fm",
             "from diffprog.kernels.eager_fast import wide_vectors", "",
             "_wide = wide_vectors()",
             f"# eager kernel of {spec.expr!r}, domain {spec.domain}, {dtype.name}",
             f"# fastmath: {_fastmath_digest()}"]
    lines += [f"_k{j} = np.{dtype.name}({c!r})" for j, c in enumerate(rename.constants)]
    lines += ["", "", "@numba.njit(cache=True, nogil=True, error_model='numpy')",
              f"def kernel(n, res, {', '.join('a_' + n for n in spec.names)}):",
              "    _wide()", "    bad = 0", "    for i in range(n):"]
    lines += [f"        v_{n} = a_{n}[i]" for n in spec.names]
    if spec.domain:
        args = ", ".join(f"v_{n}" for n in _ARGS[:spec.n_args])
        # counted as a sum: a reduction that keeps the loop vectorized
        lines.append(f"        bad += 0 if _fm.{spec.domain}({args}) else 1")
    lines += [f"        res[i] = {body}", "    return bad", ""]
    return "\n".join(lines)


@functools.cache
def wide_vectors() -> Any:
    """A numba intrinsic that marks the function calling it ``"prefer-vector-width"="512"``
    and emits nothing: LLVM's x86 tuning prefers 256-bit vectors on AVX-512 CPUs, where the
    fastmath loops run about 1.5x faster with 512-bit ones (sin: 3.9 against 2.5 ns an
    element here, ``benchmarks/eager_threshold.py``). Without AVX-512 the attribute changes
    nothing; if llvmlite refuses it, the kernel keeps the default width.
    """
    from numba import types
    from numba.extending import intrinsic

    attribute = '"prefer-vector-width"="512"'

    @intrinsic
    def wide(typingctx):
        def codegen(context, builder, signature, args):
            attrs = builder.function.attributes
            try:
                if attribute not in attrs:
                    # llvmlite checks names against LLVM's keyword attributes; a string
                    # attribute is printed as it is, which is LLVM's syntax for it
                    attrs._known = frozenset(attrs._known) | {attribute}
                    attrs.add(attribute)
            except (AttributeError, TypeError, ValueError):
                pass
            return context.get_dummy_value()

        return types.none(), codegen

    return wide


def _compile(spec: _Spec, dtype: np.dtype) -> Callable:
    """Import numba, then compile ``spec``'s kernel for ``dtype`` or load it from the disk
    cache, and run it once on empty operands (a form numba cannot compile fails here, once).
    Runs in the loader thread; tests replace it (a seam) to slow or fail the loading."""
    import numba  # noqa: F401  (ImportError: no kernels at all, see _loader)

    fn = _cache.load(source(spec, dtype))
    empty = np.empty(0, dtype)
    fn(0, empty, *[empty] * len(spec.names))
    return fn


# The loader: one daemon thread at a time, started by the first large call that finds its kernel
# neither ready nor failed; it loads the queued kernels one after the other (numba holds the GIL
# while it compiles: two loaders would only contend) and exits when the queue is empty.
_queue: list[tuple] = []           # (key, spec, dtype) waiting for the loader
_queued: set[tuple] = set()        # their keys, and the one being loaded: never queued twice
_loader: list[threading.Thread | None] = [None]
_idle = threading.Condition(_lock)
_shutting_down = [False]


@atexit.register
def _stop_loading() -> None:
    # nothing new starts at exit (the loader is a daemon thread: exit never waits for it)
    _shutting_down[0] = True


def _request(key: tuple, spec: _Spec, dtype: np.dtype) -> None:
    """Queue ``key``'s kernel for the loader (once), starting the loader if none runs."""
    with _lock:
        if key in _kernels or key in _queued or _shutting_down[0]:
            return
        _queued.add(key)
        _queue.append((key, spec, dtype))
        if _loader[0] is None:
            thread = threading.Thread(target=_load_queue, daemon=True,
                                      name="diffprog-eager-kernels")
            _loader[0] = thread
            thread.start()


def _load_queue() -> None:
    while True:
        with _lock:
            if not _queue or _shutting_down[0]:
                _loader[0] = None
                _queue.clear()
                _queued.clear()
                _idle.notify_all()
                return
            key, spec, dtype = _queue.pop(0)
        fn = None
        try:
            fn = _compile(spec, dtype)
            _state["numba"] = True
        except BaseException as e:  # any failure means: NumPy runs this form from now on
            if isinstance(e, ImportError) and e.name == "numba":
                _no_numba()  # numba is not installed: silently NumPy, as without the kernels
            else:
                warnings.warn(f"diffprog: the eager kernel of {spec.expr!r} ({dtype}) could "
                              f"not be compiled, NumPy runs it: {e}", RuntimeWarning,
                              stacklevel=1)
        with _lock:
            _kernels[key] = fn
            _queued.discard(key)
            _idle.notify_all()


def _no_numba() -> None:
    # without numba no kernel ever runs: small and large calls alike go straight to NumPy
    _state["numba"] = False
    core.set_eager_provider(None)


def wait_ready(timeout: float | None = None) -> bool:
    """Wait until every kernel requested so far is loaded (or has failed); True if none is
    pending any more. For tests and benchmarks: calls never wait for the kernels themselves,
    NumPy runs them until their kernel is ready.

    Example:
        >>> from diffprog.prims import elementwise as ew
        >>> x = np.linspace(0.0, 1.0, 2 * MIN_SIZE)
        >>> y = ew.sin.impl(x)                # NumPy, while the loader starts
        >>> wait_ready(600)
        True
        >>> run(ew.sin, -1, None, None, (x,)) is not None or _state["numba"] is False
        True
    """
    with _lock:
        return _idle.wait_for(lambda: not _queued, timeout)


def _kernel(spec: _Spec, dtype: np.dtype) -> Callable | None:
    """The kernel if it is loaded; ``None`` if it is loading (then queued) or failed."""
    key = (spec.expr, spec.domain, spec.names, dtype)
    try:
        return _kernels[key]
    except KeyError:
        _request(key, spec, dtype)
        return None


def enabled() -> bool | None:
    """Can kernels be compiled? ``None`` until the loader has tried to import numba (this
    never imports it), then True or False."""
    return _state["numba"]


def runs_impl(prim: core.Primitive) -> bool:
    """Can some dtype run ``prim``'s impl as a kernel? Read by
    :func:`diffprog.core.set_eager_provider`, which installs the primitive's forward hook only
    then (elsewhere its impl is NumPy's).

    Example:
        >>> from diffprog.prims import elementwise as ew
        >>> runs_impl(ew.sin), runs_impl(ew.tanh)  # NumPy's tanh is a faster SIMD loop
        (True, False)
    """
    spec = _spec(prim, -1, 1)
    return spec is not None and any(dt not in spec.numpy_dtypes for dt in THRESHOLDS)


def run(prim: core.Primitive, i: int, t: Any, out: Any, args: tuple) -> np.ndarray | None:
    """The provider registered with :func:`diffprog.core.set_eager_provider`: ``prim``'s impl
    (``i = -1``) or rule ``i`` on these operands, by a kernel, or ``None`` (NumPy runs it).

    The first call of a form finds no kernel: it queues the kernel for the loader thread and
    returns ``None`` at once (NumPy runs), as do the calls until the kernel is ready.

    Example:
        >>> from diffprog.prims import elementwise as ew
        >>> x = np.linspace(0.0, 1.0, 2 * MIN_SIZE)
        >>> r = run(ew.sin, -1, None, None, (x,))  # None while the kernel loads
        >>> wait_ready(600)
        True
        >>> bool(np.allclose(run(ew.sin, -1, None, None, (x,)), np.sin(x), rtol=1e-15))
        True
        >>> run(ew.sin, -1, None, None, (x[::2],)) is None  # not contiguous: NumPy
        True
    """
    spec = _spec(prim, i, len(args))
    if spec is None:
        return None
    operands = []
    for name in spec.names:
        a = t if name == "t" else out if name == "out" else args[_ARGS.index(name)]
        if a.__class__ is not np.ndarray:
            return None
        operands.append(a)
    first = operands[0]
    dtype = first.dtype
    threshold = THRESHOLDS.get(dtype)
    if threshold is None or first.size < threshold or dtype in spec.numpy_dtypes:
        return None
    shape = first.shape
    for a in operands:
        if a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous:
            stats["numpy"] += 1
            return None
    fn = _kernel(spec, dtype)
    if fn is None:
        stats["numpy"] += 1
        return None
    res = np.empty(shape, dtype)
    flat = [a.reshape(-1) for a in operands] if len(shape) != 1 else operands
    if fn(res.size, res.reshape(-1), *flat):  # some element outside the fast form's domain
        stats["numpy"] += 1
        return None
    stats["kernel"] += 1
    return res


run.runs_impl = runs_impl  # type: ignore[attr-defined]  (read by core.set_eager_provider)
