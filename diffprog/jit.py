"""jit: trace a function with abstract values into a graph, optimize it, run it compiled.

``jit(f)`` traces ``f`` once per signature (tree structure, shapes and dtypes of the array
leaves, values of the static leaves and arguments) with tracers that know only shape and dtype,
records the primitives into a graph (the same :class:`~diffprog.graph.Node` list the reverse
trace records), runs the graph passes, and caches a :class:`Program` that an executor runs.

Under another transform (``grad(jit(f))``) a jitted function is one primitive whose rules are
jitted too: its jvp is ``jit(jvp(f))`` and its vjp recomputes ``f`` inside ``jit(vjp(f))``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .core import ConcretizationError, Primitive, ShapedArray, Tracer, _escaped, _NoValue, bind
from .graph import Graph, Node, RecordedTracer, RecordingTrace
from .tree import tree_flatten, tree_unflatten

__all__ = ["jit", "ShapedArray", "ConcretizationError", "abstract_eval", "trace_graph"]


def _is_abstract(x: Any) -> bool:
    return type(x) is ShapedArray


def _stand_in(x: Any, eye: bool) -> Any:
    """A cheap concrete array of an abstract value's shape and dtype (zero strides)."""
    if not _is_abstract(x):
        return x
    if eye and x.ndim >= 2 and x.shape[-1] == x.shape[-2]:
        # An identity keeps linear algebra (inv, solve, cholesky) away from singular input.
        base = np.eye(x.shape[-1], dtype=x.dtype) + np.ones((), x.dtype)
        return np.broadcast_to(base, x.shape)
    return np.broadcast_to(np.ones((), x.dtype), x.shape)


def _aval_of(out: Any) -> ShapedArray:
    return ShapedArray(np.shape(out), np.result_type(out))


def abstract_eval(prim: Primitive, args: Sequence[Any], params: dict) -> Any:
    """Shape and dtype of ``prim(*args)`` where some ``args`` are :class:`ShapedArray`.

    Uses the primitive's shape rule; an elementwise primitive (one with a scalar form)
    broadcasts; anything else is evaluated once on stand-in arrays.
    """
    if prim.abstract is not None:
        return prim.abstract(*args, **params)
    with np.errstate(all="ignore"):
        if prim.scalar is not None and not prim.multiple_results:
            shape = np.broadcast_shapes(*[np.shape(a) if not _is_abstract(a) else a.shape
                                          for a in args])
            # one element of each operand's dtype (Python scalars stay weakly typed)
            scalars = [np.ones((), a.dtype) if _is_abstract(a) or isinstance(a, np.ndarray)
                       else a for a in args]
            return ShapedArray(shape, np.result_type(prim.impl(*scalars, **params)))
        try:
            out = prim.impl(*[_stand_in(a, True) for a in args], **params)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            out = prim.impl(*[_stand_in(a, False) for a in args], **params)
    if prim.multiple_results:
        return tuple(_aval_of(o) for o in out)
    return _aval_of(out)


class JitTracer(_NoValue, RecordedTracer):
    """A value traced by jit: ``primal`` is its ShapedArray. Under jit the problem with a
    conversion is the missing value, not a dropped derivative, and its errors say so."""

    __slots__ = ()


class JitTrace(RecordingTrace):
    """Records every primitive (differentiable or not) applied to abstract values."""

    __slots__ = ()
    tracer_type = JitTracer

    def __init__(self) -> None:
        super().__init__("jit")

    def process(self, prim, args, params):
        if prim.composite:
            return prim.impl(*args, **params)  # diffprog code: record its primitives instead
        values = []
        parents = []
        for a in args:
            if isinstance(a, Tracer):
                if a._trace is not self:
                    if not a._trace.alive:
                        raise _escaped(a._trace)
                    raise TypeError(
                        "jit: the function uses a value traced by an enclosing transform (it "
                        "closes over it rather than taking it as an argument), which a "
                        "compiled program cannot contain; pass the value as an argument")
                values.append(a.primal)
                parents.append(a.idx)
            else:
                values.append(a)
                parents.append(-1)
        out = abstract_eval(prim, values, params)
        idx = self.n_values
        self.nodes.append(Node(prim, values, params, out, parents, idx))
        if prim.multiple_results:
            self.n_values += len(out)
            return tuple(JitTracer(self, o, idx + k) for k, o in enumerate(out))
        self.n_values += 1
        return JitTracer(self, out, idx)


# ----------------------------------------------------------------------------------------------
# Tracing a function into a graph


def _is_array_leaf(x: Any) -> bool:
    return isinstance(x, (np.ndarray, np.generic, float, complex)) and not isinstance(x, bool)


def trace_graph(f: Callable, args: tuple, static_argnums: Sequence[int] = ()) -> Graph:
    """Trace ``f(*args)`` with abstract values and return its :class:`Graph`.

    Array and float leaves of the non-static arguments are the inputs, named by their paths;
    other leaves (ints, strings, objects) and static arguments are fixed at their values.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> print(trace_graph(lambda x: dnp.sin(x) * 2.0, (np.ones(3),)))
        graph(x:float64[3]) {
          v1:float64[3] = sin(x)
          v2:float64[3] = mul(v1, 2.0)
          return v2
        }
    """
    from .tree import keystr, tree_flatten_with_path
    static = set(static_argnums)
    trace = JitTrace()
    call_args = list(args)
    names, avals = [], []
    multi = len(args) - len(static) > 1
    for a, arg in enumerate(args):
        if a in static:
            continue
        with_paths, treedef = tree_flatten_with_path(arg)
        leaves = []
        for path, leaf in with_paths:
            if _is_array_leaf(leaf):
                aval = ShapedArray(np.shape(leaf), np.result_type(leaf))
                leaves.append(trace.new_input(aval))
                names.append((f"arg{a}" if multi else "x") + keystr(path))
                avals.append(aval)
            else:
                leaves.append(leaf)
        call_args[a] = tree_unflatten(treedef, leaves)
    try:
        out = f(*call_args)
    finally:
        trace.alive = False
    outputs = []
    for path, leaf in tree_flatten_with_path(out)[0]:
        own = isinstance(leaf, Tracer) and leaf._trace is trace
        outputs.append(("out" + keystr(path) if path else "", leaf.idx if own else -1,
                        leaf.primal if own else leaf))
    return Graph(names, avals, trace.nodes, trace.n_in, outputs, tree_flatten(out)[1])


# ----------------------------------------------------------------------------------------------
# jit


def _static_key(v: Any) -> Any:
    """The cache-key form of a static value: equal keys mean the same compiled program.

    Numbers are told apart by type and bits, not ``==``: ``True`` and ``1``, ``0.0`` and
    ``-0.0``, ``float32(2)`` and ``float64(2)`` compile differently, and a NaN (never equal to
    itself) still finds its program. Other values key by their own hash and equality.
    """
    if isinstance(v, (float, complex, np.generic)):
        arr = np.asarray(v)
        return (type(v), arr.dtype.str, arr.tobytes())
    if type(v) is tuple:
        return (tuple, tuple(_static_key(e) for e in v))
    return (type(v), v)


class Program:
    """A traced, optimized graph and the executor that runs it.

    ``tier`` names what runs it ("numpy", "interp", "fused"; see :mod:`diffprog.kernels.tiers`)
    and ``tiers`` is the tiered runner when it is compiled in the background, else None.
    """

    __slots__ = ("graph", "run", "out_tree", "tiers", "_tier")

    def __init__(self, graph: Graph, run: Callable, out_tree: Any, tier: str = "") -> None:
        self.graph = graph
        self.run = run
        self.out_tree = out_tree
        self._tier = tier
        attach = getattr(run, "attach", None)
        self.tiers = run if attach is not None else None
        if attach is not None:
            attach(self)  # the tiered runner replaces .run by the chosen tier's runner

    @property
    def tier(self) -> str:
        return self.tiers.tier if self.tiers is not None else self._tier


class jit:
    """Compile ``f``: trace it once per signature, optimize the graph, run it compiled.

    The signature is the tree structure of the arguments, the shapes and dtypes of their array
    and float leaves, and the values of everything else (ints, strings, static arguments). A
    new signature retraces; a seen one runs the cached program. Inside ``f``, values are
    abstract: ``if x > 0`` raises a :class:`ConcretizationError` explaining ``static_argnums``
    and ``dnp.where``.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> f = dp.jit(lambda x: dnp.sum(dnp.sin(x) ** 2))
        >>> float(f(np.zeros(3)))
        0.0
        >>> g = dp.jit(dp.grad(lambda x: dnp.sum(x ** 3)))
        >>> g(np.array([1.0, 2.0]))
        array([ 3., 12.])

    ``compile`` says when fused kernels are compiled (default ``diffprog.config.jit_compile``,
    itself "background"): ``"background"``: the first call runs at once on tiers that compile
    nothing (NumPy, then the blocked interpreter compiled once per installation); from the
    second call a daemon thread compiles fused kernels for the clusters the cost model says
    pay, swaps them in when ready and keeps the faster tier (``wait_compiled()`` waits for it);
    ``"eager"``: every fused kernel is compiled before the first call; ``"never"``: no
    per-program compilation. ``executor`` forces one executor and then ``compile`` does not
    apply: ``"numba"`` is fused kernels for every cluster compiled before the first call,
    ``"numpy"`` the NumPy executor, ``"interp"`` the interpreter (NumPy where it cannot run).
    """

    def __init__(self, fun: Callable, static_argnums: int | Sequence[int] = (),
                 executor: str | None = None, compile: str | None = None) -> None:
        self.fun = fun
        if isinstance(static_argnums, int) and not isinstance(static_argnums, bool):
            static_argnums = (static_argnums,)
        if not isinstance(static_argnums, (tuple, list)) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in static_argnums):
            raise TypeError(f"jit: static_argnums must be an int or a tuple of ints, got "
                            f"{static_argnums!r}")
        self.static_argnums = tuple(static_argnums)
        self.executor = executor
        if compile not in (None, "eager", "background", "never"):
            raise ValueError(f"jit: compile must be 'eager', 'background' or 'never', not "
                             f"{compile!r}")
        self.compile = compile
        self.cache: dict[Any, Program] = {}
        self.traces = 0  # how many times fun was traced (tests count retraces)
        self._lock = threading.Lock()
        self.__name__ = getattr(fun, "__name__", "f")
        self.__doc__ = getattr(fun, "__doc__", None)
        self._prim: Primitive | None = None

    def _signature(self, args: tuple) -> tuple[Any, list]:
        nargs = len(args)
        for i in self.static_argnums:
            if not -nargs <= i < nargs:
                raise ValueError(f"jit: static_argnums={self.static_argnums} but the function "
                                 f"was called with {nargs} positional arguments")
        static = {i % nargs for i in self.static_argnums}
        dynamic = tuple(a for i, a in enumerate(args) if i not in static)
        leaves, treedef = tree_flatten(dynamic)
        parts: list[Any] = [treedef]
        arrays = []
        for leaf in leaves:
            if type(leaf) is np.ndarray:
                parts.append((leaf.shape, leaf.dtype))
                arrays.append(leaf)
            elif _is_array_leaf(leaf):
                parts.append((np.shape(leaf), np.result_type(leaf)))
                arrays.append(leaf)
            else:
                parts.append(("static", _static_key(leaf)))
        for i in sorted(static):
            parts.append(("static_arg", i, _static_key(args[i])))
        try:
            key = tuple(parts)
            hash(key)
        except TypeError as e:
            raise TypeError(f"jit: a static argument or non-array leaf is not hashable ({e}); "
                            "static values are part of the compilation cache key, so they must "
                            "be hashable (use tuples instead of lists)") from None
        return key, arrays

    def __call__(self, *args: Any) -> Any:
        leaves = tree_flatten(args)[0]
        tracers = [x for x in leaves if isinstance(x, Tracer)]
        if tracers:
            if any(isinstance(t, JitTracer) for t in tracers):
                return self.fun(*args)  # jit inside jit: inline
            return self._call_traced(args)
        key, arrays = self._signature(args)
        program = self.cache.get(key)
        if program is None:
            program = self._compile(key, args)
        out = program.run(arrays)
        return tree_unflatten(program.out_tree, out)

    def _compile(self, key: Any, args: tuple) -> Program:
        from . import passes
        from .kernels.executor import make_executor
        with self._lock:
            program = self.cache.get(key)
            if program is not None:
                return program
            self.traces += 1
            graph = trace_graph(self.fun, args, self.static_argnums)
            graph = passes.optimize(graph)
            from .config import config
            mode = self.compile or config.jit_compile
            tier = {"numpy": "numpy", "interp": "interp", "numba": "fused"}.get(
                self.executor, "fused" if mode == "eager" else "")
            program = Program(graph, make_executor(graph, self.executor, mode),
                              graph.out_tree, tier)
            self.cache[key] = program
            return program

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Start the background compilation of every program traced so far and wait until it
        is over; True if it is (within ``timeout`` seconds). For tests and benchmarks."""
        import time
        end = None if timeout is None else time.monotonic() + timeout
        for program in list(self.cache.values()):
            if program.tiers is not None:
                left = None if end is None else max(0.0, end - time.monotonic())
                if not program.tiers.wait_compiled(left):
                    return False
        return True

    # -- under other transforms: one primitive whose rules are jitted too ---------------------

    def _call_traced(self, args: tuple) -> Any:
        if self._prim is None:
            self._prim = _jit_primitive(self)
        leaves, in_tree = tree_flatten(args)
        box = _Box()
        flat = bind(self._prim, *leaves, in_tree=in_tree, box=box)
        return tree_unflatten(box.out_tree, list(flat))


class _Box:
    """Carries the output tree out of the primitive's implementation."""

    __slots__ = ("out_tree",)

    def __repr__(self) -> str:
        return "..."


def _jit_primitive(jitted: jit) -> Primitive:
    """``jitted`` as a primitive: its impl runs the compiled program, its rules are jitted."""
    from . import ad

    def flat_fun(in_tree: Any, *leaves: Any) -> list:
        return tree_flatten(jitted.fun(*tree_unflatten(in_tree, list(leaves))))[0]

    def jvp_flat(in_tree: Any, n: int, *xs: Any) -> list:
        return ad.jvp(lambda *ys: flat_fun(in_tree, *ys), list(xs[:n]), list(xs[n:]))[1]

    def vjp_flat(in_tree: Any, n: int, *xs: Any) -> tuple:
        # recomputes f: the compiled forward program keeps no residuals for the backward one
        _, vjp_fn = ad.vjp(lambda *ys: flat_fun(in_tree, *ys), *xs[:n])
        return vjp_fn(list(xs[n:]))

    jvp_jit = jit(jvp_flat, static_argnums=(0, 1), executor=jitted.executor)
    vjp_jit = jit(vjp_flat, static_argnums=(0, 1), executor=jitted.executor)

    def impl(*leaves: Any, in_tree: Any, box: _Box) -> tuple:
        out_leaves, box.out_tree = tree_flatten(jitted(*tree_unflatten(in_tree, list(leaves))))
        return tuple(out_leaves)

    def jvp_rule(tangents, outs, *leaves, in_tree, box):
        tangents = [t if t is not None else
                    (np.zeros(np.shape(x), np.result_type(x)) if ad.is_differentiable(x) else x)
                    for t, x in zip(tangents, leaves)]
        return tuple(jvp_jit(in_tree, len(leaves), *leaves, *tangents))

    def vjp_rule(cts, outs, *leaves, in_tree, box):
        return tuple(vjp_jit(in_tree, len(leaves), *leaves, *cts))

    return Primitive(f"jit[{jitted.__name__}]", impl, multiple_results=True, register=False,
                     jvp=jvp_rule, vjp=vjp_rule)
