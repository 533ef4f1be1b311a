"""The numba executor: clusters of elementwise nodes become generated, compiled kernels.

An elementwise node is one whose primitive has a scalar form (``prim.scalar``), called with the
operands and the node's params (which must be literals: numbers, bools, tuples). Everything the
generator needs to know about an operation is a field of its primitive: ``scalar``, and
``scalar_fast`` / ``scalar_fast_domain`` naming a vectorizable replacement in
:mod:`diffprog.kernels.fastmath` and the predicate under which it is exact.

Nodes of the same output shape are grouped into maximal clusters (a node joins a producer's
cluster unless that would make the cluster depend on itself through an outside node; the check
keeps a topological order of the clusters and unfused nodes, so it costs near-linear time).
Each cluster of two or more nodes becomes one loop over the output, reading its inputs (full
arrays, scalars, or arrays broadcast to the cluster's shape: the shape and the strides are
arguments, so one kernel serves every shape with the same broadcast pattern) and writing only
the values used outside it. Kernels are generated as Python source into a cache folder and
compiled by numba with ``cache=True``, so a kernel compiles once per signature across
processes; a cluster that numba cannot compile (an unsupported dtype or scalar form) runs
through NumPy, as in the NumPy executor.
"""

from __future__ import annotations

import builtins
import dis
import hashlib
import heapq
import marshal
import math
import operator
import threading
import types
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..config import config
from ..core import Primitive, primitives
from ..graph import Graph, Node
from . import cache as _cache
from .steps import NodeStep, sequence

__all__ = ["numba_executor", "cluster_graph", "kernel_dir"]

# Loops at least this long run in parallel over the cores (numba prange).
PARALLEL_THRESHOLD = 1 << 16
# numba's compile time grows faster than linearly with a kernel's length, while the gain of
# fusing more nodes into one loop levels off: long clusters are cut into kernels of this size.
# (First call of an 800-node elementwise chain, cold cache, on a loaded 2-core machine: 413 s
# with kernels of 400 nodes, 314 s with 200, 159 s with 100.)
MAX_CLUSTER_NODES = 128
# Array dtypes a kernel reads and writes: native byte order, and types numba computes like
# NumPy. float16, longdouble, complex and big-endian values run through NumPy.
# Counters for tests and diagnostics: kernels built, and clusters numba could not compile.
stats = {"kernels": 0, "fallbacks": 0}
_KERNEL_DTYPES = frozenset(np.dtype(t) for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float32, np.float64))


def kernel_dir() -> Path | None:
    """Where generated kernel sources (and numba's cache of them) live: the verified private
    folder, or None when the disk cache is refused (see :mod:`diffprog.kernels.cache`)."""
    return _cache.kernel_dir()


def _literal(v: Any) -> bool:
    if isinstance(v, tuple):
        return all(_literal(e) for e in v)
    return v is None or type(v) in (int, float, bool)


def _kernel_dtype(dtype: Any) -> bool:
    dtype = np.dtype(dtype)
    return dtype.isnative and dtype in _KERNEL_DTYPES


def _operand_ok(parent: int, arg: Any) -> bool:
    if parent < 0 and type(arg) in (int, float, bool):
        return type(arg) is not int or -(1 << 63) <= arg < (1 << 63)
    dtype = getattr(arg, "dtype", None)
    return dtype is not None and _kernel_dtype(dtype)


# ----------------------------------------------------------------------------------------------
# Scalar forms as source references


class _Unkeyable(Exception):
    """A scalar form reads a value the kernel's cache key cannot describe."""


class _Ref:
    """How generated source names one scalar function: an expression, the import it needs,
    and a key for everything its compiled code depends on (code, globals, closure)."""

    __slots__ = ("expr", "imports", "key")

    def __init__(self, expr: str, imports: tuple = (), key: str = "") -> None:
        self.expr = expr
        self.imports = imports
        self.key = key


_FASTMATH_IMPORT = "from diffprog.kernels import fastmath as _fm"
# Functions of these modules are named in the source (numba compiles them natively).
_BY_NAME = {"math": math, "_operator": operator, "operator": operator, "builtins": builtins,
            "numpy": np}


def _fastmath_ref(name: str, what: str, prim: Primitive) -> _Ref:
    from . import fastmath
    if not callable(getattr(fastmath, name, None)) or name.startswith("_"):
        raise LookupError(f"primitive {prim.name!r}: {what}={name!r} is not a function of "
                          "diffprog.kernels.fastmath")
    return _Ref(f"_fm.{name}", (_FASTMATH_IMPORT,))


def _value_key(v: Any, seen: set) -> Any:
    """A picklable description of a value a scalar form reads (a global or a closure cell)."""
    if v is None or type(v) in (bool, int, float, complex, str, bytes):
        return (type(v).__name__, repr(v))
    if isinstance(v, tuple):
        return tuple(_value_key(e, seen) for e in v)
    if isinstance(v, types.ModuleType):
        return ("module", v.__name__)
    if isinstance(v, (np.ndarray, np.generic)):
        a = np.asarray(v)
        return ("array", a.dtype.str, a.shape, a.tobytes())
    if isinstance(v, np.ufunc):
        return ("ufunc", v.__name__)
    if isinstance(v, type):
        return ("type", v.__module__, v.__qualname__)
    if isinstance(v, types.BuiltinFunctionType):
        return ("builtin", getattr(v, "__module__", None), v.__qualname__)
    py_func = getattr(v, "py_func", None)  # a numba dispatcher
    if isinstance(py_func, types.FunctionType):
        v = py_func
    if isinstance(v, types.FunctionType):
        if id(v) in seen:
            return ("function", v.__module__, v.__qualname__)
        seen.add(id(v))
        return ("function", _function_key(v, seen))
    raise _Unkeyable(f"{type(v).__name__} value {v!r:.60}")


def _code_names(code: types.CodeType) -> set:
    """The global names ``code`` (and code nested in it) reads; attribute names are not."""
    names, stack = set(), [code]
    while stack:
        c = stack.pop()
        names.update(ins.argval for ins in dis.get_instructions(c)
                     if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"))
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return names


def _function_key(fn: types.FunctionType, seen: set) -> str:
    """A digest of what numba compiles for ``fn``: its code (bytecode, constants, names,
    nested functions), the values of the globals it names and of its closure cells, and
    its default arguments. numba freezes globals into the compiled code, and a cached kernel
    is reused by other processes, so all of them must be in the kernel's key."""
    parts: list[Any] = [marshal.dumps(fn.__code__)]
    glob = fn.__globals__
    for name in sorted(_code_names(fn.__code__)):
        if name in glob:
            parts.append((name, _value_key(glob[name], seen)))
    for cell in fn.__closure__ or ():
        try:
            parts.append(_value_key(cell.cell_contents, seen))
        except ValueError:  # an empty cell
            parts.append("empty")
    parts.append(_value_key(fn.__defaults__, seen))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _scalar_form(prim: Primitive, kind: str) -> tuple[Callable | None, str | None]:
    """The scalar form of ``prim`` for operands that NumPy computes in dtype kind ``kind``,
    and its key in ``prim.scalar`` when that is a dict by kinds (see Primitive)."""
    forms = prim.scalar
    if not isinstance(forms, dict):
        return forms, None
    for key, fn in forms.items():
        if kind in key:
            return fn, key
    return None, None


def _unread_params(fn: Any) -> frozenset:
    """The parameters of a Python function that its code (nested code included) never reads."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return frozenset()
    params = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    read, stack = set(), [code]
    while stack:
        c = stack.pop()
        read.update(ins.argval for ins in dis.get_instructions(c)
                    if ins.opname.startswith(("LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE",
                                              "DELETE_FAST")))
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return frozenset(p for p in params if p not in read)


def _scalar_ref(prim: Primitive, kind: str) -> _Ref | None:
    """The scalar form of ``prim`` as source, or None when a kernel cannot name it: no form
    for this kind, a primitive that is not registered, or a form reading values outside
    the key."""
    fn, key = _scalar_form(prim, kind)
    if fn is None:
        return None
    module = _BY_NAME.get(getattr(fn, "__module__", None))
    name = getattr(fn, "__name__", "")
    if module is not None and getattr(module, name, None) is fn:
        prefix = "np" if module is np else module.__name__.lstrip("_")
        return _Ref(f"{prefix}.{name}")
    if primitives.get(prim.name) is not prim or not isinstance(fn, types.FunctionType):
        return None
    try:
        digest = _function_key(fn, set())
    except _Unkeyable:
        return None
    args = repr(prim.name) if key is None else f"{prim.name!r}, {key!r}"
    return _Ref(f"_njit_scalar({args})", (), digest)


def _operand_kind(node: Node) -> str:
    """The dtype kind NumPy computes ``node``'s operands in: that of their promotion (Python
    scalars weakly typed, as NumPy 2 does), "b", "i", "u" or "f"."""
    operands = [a if p < 0 and type(a) in (int, float, bool) else np.dtype(a.dtype)
                for p, a in zip(node.parents, node.args)]
    try:
        return np.result_type(*operands).kind if operands else "f"
    except TypeError:
        return "?"


class _Forms:
    """The scalar forms of the primitives of one graph, resolved once (globals are read now:
    a later change of them makes a new kernel, compiled with the new values)."""

    def __init__(self, fast: bool) -> None:
        self.fast = fast
        self._safe: dict[tuple, _Ref | None] = {}

    def safe(self, prim: Primitive, kind: str) -> _Ref | None:
        if (prim, kind) not in self._safe:
            self._safe[prim, kind] = _scalar_ref(prim, kind)
        return self._safe[prim, kind]

    def ref(self, node: Node, fast: bool) -> _Ref:
        prim = node.prim
        if fast and self.fast and prim.scalar_fast is not None:
            return _fastmath_ref(prim.scalar_fast, "scalar_fast", prim)
        return self.safe(prim, _operand_kind(node))

    def domain(self, node: Node, fast: bool) -> _Ref | None:
        prim = node.prim
        if fast and self.fast and prim.scalar_fast is not None and prim.scalar_fast_domain:
            return _fastmath_ref(prim.scalar_fast_domain, "scalar_fast_domain", prim)
        return None

    def fusible(self, node: Node) -> bool:
        """Elementwise (a scalar form a kernel can name), one result, literal params, and
        operands and result of dtypes a kernel computes like NumPy."""
        prim = node.prim
        if prim.scalar is None or prim.multiple_results:
            return False
        if not all(_literal(v) for v in node.params.values()):
            return False
        if not _kernel_dtype(getattr(node.out, "dtype", np.float64)):
            return False
        if not all(_operand_ok(p, a) for p, a in zip(node.parents, node.args)):
            return False
        return self.safe(prim, _operand_kind(node)) is not None


def _fastmath_available() -> bool:
    try:
        from . import fastmath  # noqa: F401  (fails without numba)
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------------------------
# Clustering


class Cluster:
    __slots__ = ("id", "shape", "nodes", "members", "unit")

    def __init__(self, cid: int, shape: tuple, unit: int) -> None:
        self.id = cid
        self.shape = shape
        self.nodes: list[Node] = []
        self.members: set[int] = set()  # value indices computed inside
        self.unit = unit


class _UnitOrder:
    """Units (clusters and unfused nodes) with a topological order kept up to date as edges
    are added (Pearce and Kelly's dynamic topological sort): whether unit a reaches unit b
    is answered at once when b comes before a, and otherwise by a search among the units
    between them. Every search is iterative."""

    def __init__(self) -> None:
        self.order: list[int] = []
        self.succ: list[set[int]] = []
        self.pred: list[set[int]] = []
        self.next = 0

    def new(self) -> int:
        uid = len(self.order)
        self.order.append(self.next)
        self.next += 1
        self.succ.append(set())
        self.pred.append(set())
        return uid

    def _forward(self, start: int, bound: int, target: int = -1) -> tuple[bool, list[int]]:
        """Units reachable from ``start`` with order <= bound (stops early at target)."""
        order, succ = self.order, self.succ
        seen = {start}
        stack = [start]
        while stack:
            u = stack.pop()
            for w in succ[u]:
                if w == target:
                    return True, []
                if w not in seen and order[w] <= bound:
                    seen.add(w)
                    stack.append(w)
        return False, list(seen)

    def reaches(self, a: int, b: int) -> bool:
        if a == b:
            return True
        if self.order[b] < self.order[a]:
            return False
        return self._forward(a, self.order[b], b)[0]

    def add_edge(self, a: int, b: int) -> None:
        """a -> b (b reads a); the caller guarantees that b does not reach a."""
        if a == b or b in self.succ[a]:
            return
        self.succ[a].add(b)
        self.pred[b].add(a)
        order = self.order
        lo, hi = order[b], order[a]
        if hi < lo:
            return
        _, fwd = self._forward(b, hi)
        seen = {a}
        stack = [a]
        while stack:
            u = stack.pop()
            for w in self.pred[u]:
                if w not in seen and order[w] > lo:
                    seen.add(w)
                    stack.append(w)
        back = sorted(seen, key=order.__getitem__)
        fwd.sort(key=order.__getitem__)
        slots = sorted(order[u] for u in back + fwd)
        for u, slot in zip(back + fwd, slots):
            order[u] = slot


def cluster_graph(graph: Graph, fusible: Callable[[Node], bool] | None = None
                  ) -> tuple[list[Cluster], dict[int, Cluster]]:
    """Group the fusible nodes into clusters; returns the clusters and value -> cluster.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.jit import trace_graph
        >>> g = trace_graph(lambda x: dnp.tanh(dnp.sin(x) * 2.0), (np.ones(3),))
        >>> clusters, _ = cluster_graph(g)
        >>> [len(c.nodes) for c in clusters]
        [3]
    """
    if fusible is None:
        fusible = _Forms(fast=False).fusible
    cluster_of: dict[int, Cluster] = {}
    clusters: list[Cluster] = []
    units = _UnitOrder()
    unit_of: dict[int, int] = {}  # value -> unit (graph inputs have none)
    latest: dict[tuple, Cluster] = {}

    for node in graph.nodes:
        parents = [p for p in node.parents if p >= 0]
        if not fusible(node):
            uid = units.new()
            for k in range(node.n_out):
                unit_of[node.idx + k] = uid
            for p in parents:
                if p in unit_of:
                    units.add_edge(unit_of[p], uid)
            continue
        shape = tuple(node.out.shape)
        target = None
        # candidates: the clusters of its producers, then the latest cluster of its shape
        # (a node reading only inputs, like cos(x) in a backward pass, can join it too)
        candidates = [cluster_of.get(p) for p in parents]
        candidates.append(latest.get(shape))
        tried: set[int] = set()
        for c in candidates:
            if c is None or c.id in tried or c.shape != shape or len(c.nodes) >= MAX_CLUSTER_NODES:
                continue
            tried.add(c.id)
            # every input from outside c must not need c first
            if not any(q not in c.members and q in unit_of and units.reaches(c.unit, unit_of[q])
                       for q in parents):
                target = c
                break
        if target is None:
            target = Cluster(len(clusters), shape, units.new())
            clusters.append(target)
            latest[shape] = target
        target.nodes.append(node)
        target.members.add(node.idx)
        cluster_of[node.idx] = target
        unit_of[node.idx] = target.unit
        for p in parents:
            if p in unit_of:
                units.add_edge(unit_of[p], target.unit)
    return clusters, cluster_of


# ----------------------------------------------------------------------------------------------
# Code generation


_HEADER = '''\
# Generated by diffprog.kernels.fuse: one fused elementwise kernel. Do not edit.
import builtins
import math
import operator

import numba
import numpy as np

from diffprog.core import primitives as _primitives


def _njit_scalar(name, kind=None):
    form = _primitives[name].scalar
    return numba.njit(inline="always")(form if kind is None else form[kind])
'''


class Kernel:
    """One cluster compiled: how to call it and what it reads and writes."""

    __slots__ = ("fn", "safe", "inputs", "outputs", "out_dtypes", "shape", "size", "kinds",
                 "extra")


def _input_kind(value_shape: tuple, shape: tuple) -> str:
    if int(np.prod(value_shape)) == 1:
        return "scalar"
    if tuple(value_shape) == tuple(shape):
        return "full"
    return "bcast"


def _broadcast_strides(value_shape: tuple, shape: tuple) -> list[int]:
    """Element strides of a C-contiguous array of ``value_shape`` broadcast to ``shape``."""
    vs = (1,) * (len(shape) - len(value_shape)) + tuple(value_shape)
    strides, step = [], 1
    for d in reversed(vs):
        strides.append(0 if d == 1 else step)
        step *= d
    return strides[::-1]


class _Layout:
    """How a kernel indexes its operands, as far as it is fixed in the source: each operand's
    kind and, for broadcast ones, which axes it varies along. The sizes of the axes and the
    strides of the outer ones are arguments (``extra``), so one kernel serves all shapes of
    the same pattern; the innermost stride is 0 or 1, a literal, which keeps the inner loop
    vectorizable."""

    def __init__(self, shape: tuple, in_shapes: list[tuple], const_shapes: list[tuple]) -> None:
        self.shape = shape
        self.ndim = ndim = len(shape)
        self.kinds = [_input_kind(s, shape) for s in in_shapes]
        self.const_kinds = [_input_kind(s, shape) for s in const_shapes]
        operands = ([("in", k, s, kind) for k, (s, kind) in enumerate(zip(in_shapes,
                                                                             self.kinds))]
                    + [("c", k, s, kind) for k, (s, kind) in enumerate(zip(const_shapes,
                                                                             self.const_kinds))])
        self.nest = ndim > 1 and any(kind == "bcast" for *_, kind in operands)
        self.params: list[str] = []   # names of the extra arguments
        self.extra: list[int] = []    # their values for this shape
        self.offsets: dict[tuple, str] = {}
        if self.nest:
            self.params += [f"s{j}" for j in range(ndim)]
            self.extra += [int(d) for d in shape]
        for prefix, k, s, kind in operands:
            if kind != "bcast":
                continue
            strides = _broadcast_strides(s, shape)
            if not self.nest:  # one axis: the input is read at i (only when shapes differ)
                self.offsets[(prefix, k)] = "i" if strides[0] else "0"
                continue
            terms = []
            for j, st in enumerate(strides):
                if not st:
                    continue
                if j == ndim - 1:
                    terms.append(f"d{j}")  # innermost stride of a C-contiguous array: 1
                else:
                    name = f"{prefix}{k}_t{j}"
                    self.params.append(name)
                    self.extra.append(st)
                    terms.append(f"d{j} * {name}")
            self.offsets[(prefix, k)] = " + ".join(terms) or "0"

    def load(self, prefix: str, k: int, kind: str) -> str:
        if kind == "scalar":
            return f"{prefix}{k}_s"
        if kind == "full":
            return f"{prefix}{k}[i]"
        return f"{prefix}{k}[{self.offsets[(prefix, k)]}]"


def _source(cluster: Cluster, inputs: list[int], layout: _Layout, n_consts: int,
            outputs: list[int], forms: _Forms, fast: bool) -> str:
    """The kernel's Python source. With fast forms that have a domain, it counts, and
    returns, the elements outside it, so the caller can rerun the safe variant."""
    shape = cluster.shape
    imports: set[str] = set()
    fnames: dict[str, str] = {}
    keys: dict[str, str] = {}
    calls = []
    for node in cluster.nodes:
        ref = forms.ref(node, fast)
        dom = forms.domain(node, fast)
        for r in (ref, dom):
            if r is None:
                continue
            imports.update(r.imports)
            if r.expr not in fnames:
                fnames[r.expr] = f"_f{len(fnames)}"
                keys[r.expr] = r.key
        calls.append((node, ref, dom))
    params = ["n"] + [f"out{k}" for k in range(len(outputs))]
    params += [f"in{k}" for k in range(len(inputs))]
    params += [f"c{k}" for k in range(n_consts)]
    params += layout.params
    parallel = int(np.prod(shape)) >= PARALLEL_THRESHOLD
    ndim = layout.ndim
    body = []
    # With broadcast inputs the loop nests over the output's axes, so that an input's offset
    # is a sum of products (no division or modulo per element); otherwise one flat loop.
    indent = "        " + "    " * (ndim - 1 if layout.nest else 0)
    if layout.nest:
        flat = "d0"
        for k in range(1, ndim):
            flat = f"({flat}) * s{k} + d{k}"  # row-major: ((d0 s1 + d1) s2 + d2) ...
        body.append(f"{indent}i = {flat}")
    names: dict[int, str] = {}
    pre = ["    bad = 0"]
    for k, kind in enumerate(layout.kinds):
        if kind == "scalar":
            pre.append(f"    in{k}_s = in{k}[0]")
        names[inputs[k]] = layout.load("in", k, kind)
    const_names = []
    for k, kind in enumerate(layout.const_kinds):
        if kind == "scalar":
            pre.append(f"    c{k}_s = c{k}[0]")
        const_names.append(layout.load("c", k, kind))
    const_iter = iter(range(n_consts))
    for node, ref, dom in calls:
        args = []
        for p in node.parents:
            if p >= 0:
                args.append(names[p])
            else:
                args.append(const_names[next(const_iter)])
        if dom is not None:
            # counted as a sum: a reduction that keeps the loop vectorized
            body.append(f"{indent}bad += 0 if {fnames[dom.expr]}({', '.join(args)}) else 1")
        var = f"v{len(body)}"  # positional names: equal clusters share one kernel
        # params the form never reads (broadcast_to's shape) are passed as None, so that
        # the kernel's source does not depend on them
        unread = _unread_params(_scalar_form(node.prim, _operand_kind(node))[0])
        args += [f"{k}={None if k in unread else v!r}" for k, v in node.params.items()]
        body.append(f"{indent}{var} = {fnames[ref.expr]}({', '.join(args)})")
        names[node.idx] = var
    for k, idx in enumerate(outputs):
        body.append(f"{indent}out{k}[i] = {names[idx]}")
    rng = "numba.prange" if parallel else "range"
    if layout.nest:
        loops = [f"    for d0 in {rng}(s0):"]
        loops += ["    " * (k + 1) + f"for d{k} in range(s{k}):" for k in range(1, ndim)]
    else:
        loops = [f"    for i in {rng}(n):"]
    uses_fm = any(_FASTMATH_IMPORT in r for r in imports)
    lines = [_HEADER, f"# fastmath: {_fastmath_digest() if uses_fm else 'unused'}"]
    lines.extend(sorted(imports))
    for expr, fname in fnames.items():
        lines.append(f"{fname} = {expr}")
        if keys[expr]:
            # The kernel's name (and numba's cache of it) changes with everything the scalar
            # form's compiled code depends on: its code, globals and closure.
            lines.append(f"# key of {fname}: {keys[expr]}")
    lines += ["", "", f"@numba.njit(cache=True, parallel={parallel}, error_model='numpy')",
              f"def kernel({', '.join(params)}):"]
    lines.extend(pre)
    lines.extend(loops)
    lines.extend(body)
    lines += ["    return bad", ""]
    return "\n".join(lines)


def _fastmath_digest() -> str:
    """numba does not recompile cached callers when fastmath.py changes: key kernels by it."""
    path = Path(__file__).with_name("fastmath.py")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else "none"


def _compile_now(fn: Callable, outputs: list, out_dtypes: list, in_dtypes: list,
                 layout: _Layout, const_arrays: list) -> None:
    """Compile ``fn`` for the operand types by a call on empty operands (numba's cache makes
    this a load when it was compiled before), so that a cluster numba cannot compile is
    found while building the program, not at its first run."""
    args: list[Any] = [0] + [np.empty(0, dt) for dt in out_dtypes]
    for dt, kind in zip(in_dtypes, layout.kinds):
        args.append(np.zeros(1 if kind == "scalar" else 0, dt))
    for c, kind in zip(const_arrays, layout.const_kinds):
        args.append(c if kind == "scalar" else c[:0])
    args += [0] * len(layout.params)
    fn(*args)


def build_kernel(cluster: Cluster, graph_outputs: set[int], used_outside: set[int],
                 input_shapes: dict[int, tuple], const_inputs: list,
                 forms: _Forms | None = None, input_dtypes: dict[int, Any] | None = None
                 ) -> Kernel:
    """Generate, write and compile the kernel of ``cluster``; raises numba's error when the
    cluster cannot be compiled (the caller then runs it through NumPy)."""
    if forms is None:
        forms = _Forms(_fastmath_available())
    shape = cluster.shape
    inputs: list[int] = []  # value indices read from outside
    seen: set[int] = set()
    for node in cluster.nodes:
        for p in node.parents:
            if p >= 0 and p not in cluster.members and p not in seen:
                seen.add(p)
                inputs.append(p)
    const_arrays = [np.asarray(c).reshape(-1) for c in const_inputs]
    layout = _Layout(shape, [input_shapes[p] for p in inputs],
                     [np.shape(c) for c in const_inputs])
    outputs = [n.idx for n in cluster.nodes if n.idx in graph_outputs or n.idx in used_outside]
    source = _source(cluster, inputs, layout, len(const_inputs), outputs, forms, fast=True)

    kernel = Kernel()
    kernel.fn = _load_kernel(source)
    kernel.outputs = outputs
    kernel.out_dtypes = [np.dtype(n.out.dtype) for n in cluster.nodes if n.idx in outputs]
    if input_dtypes is not None:
        _compile_now(kernel.fn, outputs, kernel.out_dtypes,
                     [input_dtypes[p] for p in inputs], layout, const_arrays)
    if "bad += " in source:
        safe = _source(cluster, inputs, layout, len(const_inputs), outputs, forms, fast=False)
        kernel.safe = lambda *args: _load_kernel(safe)(*args)  # compiled only if ever needed
    else:
        kernel.safe = None
    kernel.inputs = inputs
    kernel.shape = shape
    kernel.size = int(np.prod(shape))
    kernel.kinds = layout.kinds
    kernel.extra = layout.extra
    return kernel


# Compiled kernels by source digest, and the lock of their compilation: cache.py's own.
_loaded = _cache._loaded
_load_lock = _cache._load_lock


def _load(source: str) -> Callable:
    """The compiled kernel of ``source``: compiled from this string (never from a file) once per
    process, with numba's machine code cached in the verified private cache folder."""
    return _cache.load(source)


def _import_kernel(digest: str, source: str) -> Callable:
    return _cache._compile_kernel(digest, source)


# Digests of the loaded kernels, least recently used first: ``_loaded`` is trimmed to
# ``config.kernel_cache_size`` in this order. A program keeps its kernels (KernelStep holds
# them), so a dropped kernel is freed when the last jit object using it is gone.
_recent: OrderedDict[str, None] = OrderedDict()
_recent_lock = threading.Lock()


def _load_kernel(source: str) -> Callable:
    """``_load``, keeping the number of loaded kernels within ``config.kernel_cache_size``."""
    fn = _load(source)
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    with _recent_lock:
        _recent[digest] = None
        _recent.move_to_end(digest)
        bound = max(1, int(config.kernel_cache_size))
        while len(_loaded) > bound:
            # kernels loaded by other paths first, then the least recently used
            old = next((d for d in _loaded if d not in _recent), None)
            if old is None:
                old = next(iter(_recent))
            _recent.pop(old, None)
            _cache.forget(old)  # the compiled kernel, its module and its source for tracebacks
        while len(_recent) > len(_loaded):
            _recent.popitem(last=False)
    return fn


# ----------------------------------------------------------------------------------------------
# The executor


def _schedule(graph: Graph, clusters: list[Cluster], member_cluster: dict[int, Cluster],
              fused: set[int]) -> list[Any]:
    """Clusters and unfused nodes in an order where every unit's inputs come first.

    Kahn's algorithm over units, taking the earliest ready unit in the original node order;
    cluster_graph guaranteed that the units form a DAG.
    """
    unit_of: dict[int, Any] = {}
    units: list[Any] = []
    position: dict[int, int] = {}
    for pos, node in enumerate(graph.nodes):
        unit = member_cluster[node.idx] if id(node) in fused else node
        if id(unit) not in position:
            position[id(unit)] = pos
            units.append(unit)
        for k in range(node.n_out):
            unit_of[node.idx + k] = unit
    deps: dict[int, set[int]] = {id(u): set() for u in units}
    users: dict[int, list[Any]] = {id(u): [] for u in units}
    for unit in units:
        nodes = unit.nodes if isinstance(unit, Cluster) else [unit]
        for node in nodes:
            for p in node.parents:
                src = unit_of.get(p) if p >= 0 else None
                if src is not None and src is not unit and id(src) not in deps[id(unit)]:
                    deps[id(unit)].add(id(src))
                    users[id(src)].append(unit)
    ready = [(position[id(u)], id(u), u) for u in units if not deps[id(u)]]
    heapq.heapify(ready)
    order = []
    while ready:
        _, _, unit = heapq.heappop(ready)
        order.append(unit)
        for user in users[id(unit)]:
            deps[id(user)].discard(id(unit))
            if not deps[id(user)]:
                heapq.heappush(ready, (position[id(user)], id(user), user))
    if len(order) != len(units):
        raise RuntimeError("diffprog internal error: fused clusters form a cycle")
    return order


class KernelStep:
    """One fused kernel call: flat inputs in, fresh flat outputs out, shaped on the way out."""

    __slots__ = ("fn", "safe", "size", "shape", "outs", "ins", "fixed", "reads")

    def __init__(self, kernel: Kernel, consts: list) -> None:
        self.fn, self.safe = kernel.fn, kernel.safe
        self.size, self.shape = kernel.size, kernel.shape
        self.outs = list(zip(kernel.outputs, kernel.out_dtypes))
        self.ins = tuple(kernel.inputs)
        # constants flattened once, then the shape and strides of the broadcast operands
        self.fixed = [np.asarray(a).reshape(-1) for a in consts] + list(kernel.extra)
        self.reads = set(self.ins)

    def __call__(self, env: list) -> None:
        flat_outs = [np.empty(self.size, dt) for _, dt in self.outs]
        args: list[Any] = [self.size, *flat_outs]
        for p in self.ins:
            v = env[p]
            # reshape(-1) is a view of a contiguous array and a copy of any other
            args.append(v.reshape(-1) if type(v) is np.ndarray else _flat(v))
        args += self.fixed
        if self.fn(*args) and self.safe is not None:
            self.safe(*args)  # some element was outside a fast form's domain
        shape = self.shape
        for (idx, _), o in zip(self.outs, flat_outs):
            env[idx] = o.reshape(shape)


def _flat(x: Any) -> np.ndarray:
    return np.ascontiguousarray(x).reshape(-1)


def _as_numpy_would(const: Any, node: Node) -> Any:
    """A Python scalar operand as NumPy converts it: weakly typed, it takes the dtype of the
    node's array operands (1e300 with a float32 array is float32 inf), which a kernel reading
    it as a float64 would not."""
    if type(const) not in (bool, int, float, complex):
        return const
    arrays = [a.dtype for p, a in zip(node.parents, node.args) if p >= 0]
    if not arrays:
        return const
    with np.errstate(all="ignore"):
        try:
            return np.asarray(const, np.result_type(*arrays, const))
        except OverflowError:  # an int too large for the arrays' integer type: as it was
            return const


def numba_executor(graph: Graph) -> Callable[[list], list] | None:
    """An executor running fused kernels for the clusters; ``None`` if nothing fuses.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.jit import trace_graph
        >>> run = numba_executor(trace_graph(lambda x: dnp.exp(x) * 2.0, (np.zeros(2),)))
        >>> run([np.zeros(2)])
        [array([2., 2.])]
    """
    from numba.core.errors import NumbaError

    forms = _Forms(_fastmath_available())
    clusters, cluster_of = cluster_graph(graph, forms.fusible)
    clusters = [c for c in clusters if len(c.nodes) >= 2]
    if not clusters:
        return None
    fused = {id(n) for c in clusters for n in c.nodes}
    graph_outputs = {idx for _, idx, _ in graph.outputs if idx >= 0}
    used_outside: set[int] = set()
    member_cluster = {idx: c for c in clusters for idx in c.members}
    for node in graph.nodes:
        own = member_cluster.get(node.idx) if id(node) in fused else None
        for p in node.parents:
            if p >= 0 and p in member_cluster and member_cluster[p] is not own:
                used_outside.add(p)
    shapes: dict[int, tuple] = {i: tuple(v.shape) for i, v in enumerate(graph.in_values)}
    dtypes: dict[int, Any] = {i: np.dtype(v.dtype) for i, v in enumerate(graph.in_values)}
    for node in graph.nodes:
        outs = node.out if node.prim.multiple_results else (node.out,)
        for k, o in enumerate(outs):
            shapes[node.idx + k] = tuple(o.shape)
            dtypes[node.idx + k] = np.dtype(o.dtype)

    steps: list[Any] = []
    for unit in _schedule(graph, clusters, member_cluster, fused):
        if isinstance(unit, Cluster):
            consts = [_as_numpy_would(a, n) for n in unit.nodes
                      for p, a in zip(n.parents, n.args) if p < 0]
            try:
                kernel = build_kernel(unit, graph_outputs, used_outside, shapes, consts,
                                      forms, dtypes)
            except (NumbaError, TypeError, ValueError, OverflowError):
                # numba cannot compile this cluster (a scalar form it does not support for
                # these dtypes; numba reports some of those as TypeError from its lowering):
                # NumPy runs its nodes, as the NumPy executor would
                stats["fallbacks"] += 1
                steps.extend(NodeStep(n) for n in unit.nodes)
            else:
                stats["kernels"] += 1
                steps.append(KernelStep(kernel, consts))
        else:
            steps.append(NodeStep(unit))
    return sequence(graph, steps)
