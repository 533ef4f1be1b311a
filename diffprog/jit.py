"""jit: trace a function with abstract values into a graph, optimize it, run it compiled.

``jit(f)`` traces ``f`` once per signature (tree structure, shapes and dtypes of the array
leaves, values of the static leaves and arguments) with tracers that know only shape and dtype,
records the primitives into a graph (the same :class:`~diffprog.graph.Node` list the reverse
trace records), runs the graph passes, and caches a :class:`Program` that an executor runs.

Under another transform (``grad(jit(f))``) a jitted function is one primitive whose rules are
jitted too: its jvp is ``jit(jvp(f))`` and its vjp recomputes ``f`` inside ``jit(vjp(f))``.
"""

from __future__ import annotations

# threading's RLock and local (the threading module costs ~1.4 ms of `import diffprog`)
from _thread import RLock
from _thread import _local as _thread_local
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import core
from .api_util import FlatCall, bind_flat, check_input_leaf, is_differentiable, run_flat
from .config import config
from .core import (
    ConcretizationError,
    Primitive,
    ShapedArray,
    Tracer,
    _escaped,
    _NoValue,
    instantiate_zeros,
)
from .graph import Graph, Node, RecordedTracer, RecordingTrace, trace_inputs
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


_WEAK_ONE = {"b": True, "i": 1, "u": 1, "f": 1.0, "c": 1.0 + 0j}
_WEAK_ONE_TYPES = (bool, int, float, complex)


def _aval_of(out: Any) -> ShapedArray:
    return ShapedArray(np.shape(out), np.result_type(out))


def abstract_eval(prim: Primitive, args: Sequence[Any], params: dict) -> Any:
    """Shape and dtype of ``prim(*args)`` where some ``args`` are :class:`ShapedArray`.

    Uses the primitive's shape rule; an elementwise primitive (one with a scalar form)
    broadcasts; anything else is evaluated once on stand-in arrays. A result computed only
    from weakly typed values (Python scalars) is weakly typed too, as in JAX.
    """
    out = _abstract_eval(prim, args, params)
    if not prim.multiple_results and all(
            a.weak_type if _is_abstract(a) else type(a) in _WEAK_ONE_TYPES for a in args):
        out = ShapedArray(out.shape, out.dtype, weak_type=True)
    return out


def _abstract_eval(prim: Primitive, args: Sequence[Any], params: dict) -> Any:
    if prim.abstract is not None:
        return prim.abstract(*args, **params)
    with np.errstate(all="ignore"):
        if prim.scalar is not None and not prim.multiple_results:
            shape = np.broadcast_shapes(*[np.shape(a) if not _is_abstract(a) else a.shape
                                          for a in args])
            # one element of each operand's dtype; weakly typed ones stand in as the Python
            # scalars they are, so they do not promote the others
            scalars = [(_WEAK_ONE[a.dtype.kind] if a.weak_type else np.ones((), a.dtype))
                       if _is_abstract(a) else np.ones((), a.dtype)
                       if isinstance(a, np.ndarray) else a for a in args]
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
    differentiates = False

    def __init__(self) -> None:
        super().__init__("jit")

    def process(self, prim, args, params):
        if prim.composite:
            return prim.impl(*args, **params)  # diffprog code: record its primitives instead
        values, parents, _, foreign = self.split(args)
        if foreign:
            a = next(a for a in args if isinstance(a, Tracer) and a._trace is not self)
            if not a._trace.alive:
                raise _escaped(a._trace)
            raise TypeError(
                "jit: the function uses a value traced by an enclosing transform (it closes "
                "over it rather than taking it as an argument), which a compiled program "
                "cannot contain; pass the value as an argument")
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


_WEAK_TYPES = (float, int, bool, complex)


def _leaf_kind(leaf: Any) -> str:
    """How jit treats an argument leaf: "array" (an input of its shape and dtype), "weak" (a
    Python scalar: an input that adopts the dtype of the arrays it meets) or "static" (fixed
    at its value: strings, None, other objects)."""
    t = type(leaf)
    if t is np.ndarray:
        return "array"
    if t in _WEAK_TYPES:
        return "weak"
    if isinstance(leaf, (np.ndarray, np.generic)):
        return "array"
    return "static"


def _input_aval(leaf: Any, fname: str = "jit") -> ShapedArray | None:
    """The abstract value of an input leaf, or None for a static one."""
    kind = _leaf_kind(leaf)
    if kind == "array":
        check_input_leaf(leaf, fname)
        return ShapedArray(np.shape(leaf), leaf.dtype)
    if kind == "weak":
        return ShapedArray((), np.result_type(type(leaf)), weak_type=True)
    return None


def _input_value(leaf: Any) -> Any:
    """What the compiled program receives for an input leaf: an array of its aval's dtype."""
    if type(leaf) is np.ndarray:
        return leaf
    if type(leaf) is int and not -2 ** 63 <= leaf < 2 ** 63:
        raise TypeError(f"jit: the Python int {leaf:.3g} does not fit in int64, the dtype jit "
                        "gives Python ints; pass it as a float, or mark the argument static "
                        "(static_argnums)")
    return np.asarray(leaf)


def trace_graph(f: Callable, args: tuple, static_argnums: Sequence[int] = (),
                kwargs: dict | None = None) -> Graph:
    """Trace ``f(*args, **kwargs)`` with abstract values and return its :class:`Graph`.

    Array leaves and Python scalars of the non-static arguments are the inputs, named by their
    paths (Python scalars weakly typed, as in JAX); other leaves (strings, None, objects) and
    static arguments are fixed at their values.

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
    trace = JitTrace()
    avals: list[ShapedArray] = []

    def new_input(leaf: Any) -> Any:
        aval = _input_aval(leaf)
        if aval is None:
            return None
        avals.append(aval)
        return trace.new_input(aval)

    kwargs = kwargs or {}
    call_args, names = trace_inputs(args + (kwargs,) if kwargs else args, set(static_argnums),
                                    new_input, keywords=bool(kwargs))
    try:
        out = f(*call_args[:len(args)], **(call_args[-1] if kwargs else {}))
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

    __slots__ = ("graph", "run", "out_tree", "tiers", "_tier", "__weakref__")

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
    leaves, the types of their Python scalars (traced, weakly typed: ``f(x, 2)`` and
    ``f(x, 3)`` share a program), and the values of everything else (strings, other objects,
    ``static_argnums``/``static_argnames``). A new signature retraces; a seen one runs the
    cached program. Inside ``f``, values are abstract: ``if x > 0`` raises a
    :class:`ConcretizationError` explaining ``static_argnums`` and ``dnp.where``.

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
    second call a daemon thread builds the whole-program tier (the graph as one kernel call,
    for float64 graphs it can express) and compiles fused kernels for the clusters the cost
    model says pay, swaps them in when ready and keeps the fastest tier (``wait_compiled()``
    waits for it);
    ``"eager"``: every fused kernel is compiled before the first call; ``"never"``: no
    per-program compilation. ``executor`` forces one executor and then ``compile`` does not
    apply: ``"numba"`` is fused kernels for every cluster compiled before the first call,
    ``"numpy"`` the NumPy executor, ``"interp"`` the interpreter (NumPy where it cannot run),
    ``"whole"`` the whole-program tier (NumPy where the graph is not eligible).
    """

    def __init__(self, fun: Callable, static_argnums: int | Sequence[int] = (),
                 executor: str | None = None, compile: str | None = None,
                 static_argnames: str | Sequence[str] = ()) -> None:
        self.fun = fun
        if isinstance(static_argnums, int) and not isinstance(static_argnums, bool):
            static_argnums = (static_argnums,)
        if not isinstance(static_argnums, (tuple, list)) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in static_argnums):
            raise TypeError(f"jit: static_argnums must be an int or a tuple of ints, got "
                            f"{static_argnums!r}")
        self.static_argnums = tuple(static_argnums)
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        if not all(isinstance(n, str) for n in static_argnames):
            raise TypeError(f"jit: static_argnames must be a str or a tuple of str, got "
                            f"{static_argnames!r}")
        self.static_argnames = frozenset(static_argnames)
        self.executor = executor
        if compile not in (None, "eager", "background", "never"):
            raise ValueError(f"jit: compile must be 'eager', 'background' or 'never', not "
                             f"{compile!r}")
        self.compile = compile
        self.cache: dict[Any, Program] = {}
        self.traces = 0  # how many times fun was traced (tests count retraces)
        self._lock = RLock()  # reentrant: fun may call jitted functions
        self._tracing = _thread_local()  # the keys this thread is tracing now
        self.__name__ = getattr(fun, "__name__", "f")
        self.__doc__ = getattr(fun, "__doc__", None)
        self._prim: Primitive | None = None

    def __reduce__(self) -> tuple:
        # Pickling (cloudpickle, for diffprog.distributed's workers) sends the function and the
        # options, not the lock or the compiled programs: the receiver traces its own, and its
        # fused kernels come from the disk cache, which is keyed by content.
        return (jit, (self.fun, self.static_argnums, self.executor, self.compile,
                      tuple(sorted(self.static_argnames))))

    def _split(self, args: tuple, kwargs: dict) -> tuple[tuple, dict, tuple]:
        """The dynamic positional and keyword arguments, and the static ones as
        ``(positions and values, names and values)``."""
        nargs = len(args)
        for i in self.static_argnums:
            if not -nargs <= i < nargs:
                raise ValueError(f"jit: static_argnums={self.static_argnums} but the function "
                                 f"was called with {nargs} positional arguments")
        static = sorted({i % nargs for i in self.static_argnums})
        dynamic = tuple(a for i, a in enumerate(args) if i not in static)
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        statics = (tuple((i, args[i]) for i in static),
                   tuple(sorted((k, v) for k, v in kwargs.items()
                                if k in self.static_argnames)))
        return dynamic, dyn_kwargs, statics

    def _rebuild(self, dynamic: Sequence, dyn_kwargs: dict, statics: tuple) -> tuple:
        """``(args, kwargs)`` for ``fun`` from the parts :meth:`_split` made."""
        args = list(dynamic)
        for i, v in statics[0]:
            args.insert(i, v)
        return tuple(args), {**dyn_kwargs, **dict(statics[1])}

    def _signature(self, args: tuple, kwargs: dict) -> tuple[Any, list]:
        dynamic, dyn_kwargs, statics = self._split(args, kwargs)
        leaves, treedef = tree_flatten((dynamic, dyn_kwargs))
        parts: list[Any] = [treedef]
        arrays = []
        for leaf in leaves:
            kind = _leaf_kind(leaf)
            if kind == "array":
                if type(leaf) is not np.ndarray:
                    check_input_leaf(leaf, "jit")
                parts.append((leaf.shape, leaf.dtype))
                arrays.append(leaf if type(leaf) is np.ndarray or isinstance(leaf, np.generic)
                              else np.asarray(leaf))
            elif kind == "weak":
                parts.append(("weak", type(leaf)))  # 1.0 and 2.0 share one program
                arrays.append(_input_value(leaf))
            else:
                parts.append(("static", _static_key(leaf)))
        parts.append(("static_args", _static_key(statics)))
        try:
            key = tuple(parts)
            hash(key)
        except TypeError as e:
            raise TypeError(f"jit: a static argument or non-array leaf is not hashable ({e}); "
                            "static values are part of the compilation cache key, so they must "
                            "be hashable (use tuples instead of lists)") from None
        return key, arrays

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for leaf in tree_flatten((args, kwargs))[0]:
            if isinstance(leaf, Tracer):
                if isinstance(leaf, JitTracer):
                    return self.fun(*args, **kwargs)  # jit inside jit: inline
                return self._call_traced(args, kwargs)
        key, arrays = self._signature(args, kwargs)
        program = self.cache.get(key)
        if program is None:
            program = self._traced_program(key, args, kwargs)
        if core.DEBUG_NANS and core.debug_nans_enabled():
            out = _run_checking_nans(program.graph, arrays)
        else:
            out = program.run(arrays)
        for k, (_, idx, _) in enumerate(program.graph.outputs):
            if idx < 0 and isinstance(out[k], np.ndarray):
                out[k] = out[k].copy()  # a constant of the trace: every call gets its own
        return tree_unflatten(program.out_tree, out)

    def _traced_program(self, key: Any, args: tuple, kwargs: dict) -> Program:
        tracing = self._tracing.__dict__.setdefault("keys", set())
        if key in tracing:
            raise RecursionError(
                f"jit: {self.__name__} calls itself with the same argument shapes while it is "
                "being traced, which would trace forever; recurse on a static argument "
                "(static_argnums) that reaches a base case, or use a loop")
        tracing.add(key)
        try:
            if config.log_compiles:
                _log_compile(self, key)
            return self._compile(key, (args, kwargs))
        finally:
            tracing.discard(key)

    def _compile(self, key: Any, args: tuple) -> Program:
        from . import passes
        from .kernels.executor import make_executor
        with self._lock:
            program = self.cache.get(key)
            if program is not None:
                return program
            self.traces += 1
            args, kwargs = args
            dynamic, dyn_kwargs, statics = self._split(args, kwargs)

            def with_statics(*dyn: Any, **dyn_kw: Any) -> Any:
                call_args, call_kwargs = self._rebuild(dyn, dyn_kw, statics)
                return self.fun(*call_args, **call_kwargs)

            graph = trace_graph(with_statics, dynamic, (), dyn_kwargs)
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

    def _call_traced(self, args: tuple, kwargs: dict) -> Any:
        if self._prim is None:
            self._prim = _jit_primitive(self)
        dynamic, dyn_kwargs, statics = self._split(args, kwargs)
        # static arguments stay out of the operands: the rules see their values, not tracers
        return bind_flat(self._prim, (dynamic, dyn_kwargs), statics=statics)


def _jit_primitive(jitted: jit) -> Primitive:
    """``jitted`` as a primitive: its impl runs the compiled program, its rules are jitted."""
    from . import ad

    def call(statics: tuple) -> Callable:
        def fun(dynamic: Sequence, dyn_kwargs: dict) -> Any:
            args, kwargs = jitted._rebuild(dynamic, dyn_kwargs, statics)
            return jitted.fun(*args, **kwargs)
        return fun

    def flat_fun(in_tree: Any, statics: tuple, *leaves: Any) -> list:
        return list(run_flat(call(statics), in_tree, leaves, None))

    def jvp_flat(in_tree: Any, statics: tuple, n: int, *xs: Any) -> list:
        return ad.jvp(lambda *ys: flat_fun(in_tree, statics, *ys), list(xs[:n]),
                      list(xs[n:]))[1]

    def vjp_flat(in_tree: Any, statics: tuple, n: int, *xs: Any) -> tuple:
        # recomputes f: the compiled forward program keeps no residuals for the backward one
        _, vjp_fn = ad.vjp(lambda *ys: flat_fun(in_tree, statics, *ys), *xs[:n])
        return vjp_fn(list(xs[n:]))

    jvp_jit = jit(jvp_flat, static_argnums=(0, 1, 2), executor=jitted.executor)
    vjp_jit = jit(vjp_flat, static_argnums=(0, 1, 2), executor=jitted.executor)

    def impl(*leaves: Any, in_tree: Any, call: FlatCall, statics: tuple) -> tuple:
        dynamic, dyn_kwargs = tree_unflatten(in_tree, list(leaves))
        args, kwargs = jitted._rebuild(dynamic, dyn_kwargs, statics)
        out_leaves, call.out_tree = tree_flatten(jitted(*args, **kwargs))
        call.n_out = len(out_leaves)
        return tuple(out_leaves)

    def jvp_rule(tangents, outs, *leaves, in_tree, call, statics):
        tangents = [t if t is not None else instantiate_zeros(x) if is_differentiable(x) else x
                    for t, x in zip(tangents, leaves)]
        return tuple(jvp_jit(in_tree, statics, len(leaves), *leaves, *tangents))

    def vjp_rule(cts, outs, *leaves, in_tree, call, statics):
        return tuple(vjp_jit(in_tree, statics, len(leaves), *leaves, *cts))

    # vmap of a jitted function is the jitted vmap of the function (compiled per batch
    # layout); the output structure, which the compiled program does not return, is noted
    # when the batched function is traced
    out_trees: dict = {}

    def batched_flat(in_tree: Any, statics: tuple, dims: tuple, *xs: Any) -> list:
        from .batching import vmap
        seen = FlatCall()
        outs = vmap(lambda *ys: run_flat(call(statics), in_tree, ys, seen), in_axes=dims)(*xs)
        out_trees[in_tree, statics, dims] = (seen.out_tree, seen.n_out)
        return list(outs)

    batch_jit = jit(batched_flat, static_argnums=(0, 1, 2), executor=jitted.executor)

    def batch_rule(args, dims, in_tree, call, statics):
        dims = tuple(dims)
        outs = batch_jit(in_tree, statics, dims, *args)
        call.out_tree, call.n_out = out_trees[in_tree, statics, dims]
        return tuple(outs), (0,) * len(outs)

    return Primitive(f"jit[{jitted.__name__}]", impl, multiple_results=True, register=False,
                     jvp=jvp_rule, vjp=vjp_rule, batch=batch_rule)


def _run_checking_nans(graph: Graph, inputs: list) -> list:
    """Run ``graph`` node by node, raising NanError at the first node that makes a NaN from
    inputs without one (``debug_nans`` under jit; fused kernels are not used then)."""
    env: list[Any] = [None] * graph.n_values
    env[:len(inputs)] = inputs
    for node in graph.nodes:
        args = [env[p] if p >= 0 else a for p, a in zip(node.parents, node.args)]
        out = node.prim.impl(*args, **node.params)
        core.check_nans(node.prim, args, out, "jit",
                        "a node of a jitted function (call it without jit for the source line)")
        if node.prim.multiple_results:
            env[node.idx:node.idx + len(out)] = out
        else:
            env[node.idx] = out
    return [env[idx] if idx >= 0 else value for _, idx, value in graph.outputs]


def _log_compile(jitted: jit, key: tuple) -> None:
    """One line per trace, with why the cached programs did not fit (config.log_compiles)."""
    reasons = []  # (parts that differ, reason) for each cached signature of the same structure
    for other in jitted.cache:
        if len(other) != len(key) or other[0] != key[0]:
            continue
        diffs = [(a, b) for a, b in zip(key, other) if a != b]
        new, old = diffs[0]
        if new[0] in ("static", "static_args"):
            reason = "new static value"
        elif new[0] == "weak" or old[0] == "weak":
            reason = "new Python scalar type, or an array in place of a Python scalar"
        else:
            reason = "new dtype" if new[0] == old[0] else "new shape"
        reasons.append((len(diffs), reason == "new shape", reason))
    reason = min(reasons)[2] if reasons else (
        "new argument structure" if jitted.cache else "first call")
    import logging  # here, not at the top: logging costs ~3% of NumPy's import time

    logging.getLogger("diffprog").warning("diffprog.jit: tracing %s (%s; %d programs cached)",
                                          jitted.__name__, reason, len(jitted.cache))
