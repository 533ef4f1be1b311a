"""The numba executor: clusters of elementwise nodes become generated, compiled kernels.

An elementwise node is one whose primitive has a scalar form (``prim.scalar``), called with the
operands and the node's params (which must be literals: numbers, bools, tuples).
Nodes of the same output shape are grouped into maximal clusters (a node joins a producer's
cluster unless that would make the cluster depend on itself through an outside node). Each
cluster of two or more nodes becomes one loop over the flattened output, reading its inputs
(full arrays, scalars, or arrays broadcast to the cluster's shape by index arithmetic) and
writing only the values used outside it. Everything else runs through NumPy, as in the NumPy
executor. Kernels are generated as Python source into a cache folder and compiled by numba
with ``cache=True``, so a kernel compiles once per signature across processes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import marshal
import math
import operator
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core import primitives
from ..graph import Graph, Node
from .executor import NodeStep, sequence

__all__ = ["numba_executor", "cluster_graph", "kernel_dir"]

# Loops at least this long run in parallel over the cores (numba prange).
PARALLEL_THRESHOLD = 1 << 16
# numba's compile time grows faster than linearly with a kernel's length, while the gain of
# fusing more nodes into one loop levels off: long clusters are cut into kernels of this size.
MAX_CLUSTER_NODES = 400


def kernel_dir() -> Path:
    """Where generated kernel sources (and numba's cache of them) live."""
    root = os.environ.get("DIFFPROG_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "diffprog")
    path = Path(root) / "kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _literal(v: Any) -> bool:
    if isinstance(v, tuple):
        return all(_literal(e) for e in v)
    return v is None or type(v) in (int, float, bool)


def _fusible(node: Node) -> bool:
    """Elementwise (a scalar form), one result, params that can be written as literals."""
    prim = node.prim
    if prim.scalar is None or prim.multiple_results:
        return False
    if not all(_literal(v) for v in node.params.values()):
        return False
    return np.dtype(node.out.dtype).kind in "fbiu"


class Cluster:
    __slots__ = ("id", "shape", "nodes", "members")

    def __init__(self, cid: int, shape: tuple) -> None:
        self.id = cid
        self.shape = shape
        self.nodes: list[Node] = []
        self.members: set[int] = set()  # value indices computed inside


def cluster_graph(graph: Graph) -> tuple[list[Cluster], dict[int, Cluster]]:
    """Group the fusible nodes into clusters; returns the clusters and value -> cluster."""
    cluster_of: dict[int, Cluster] = {}
    clusters: list[Cluster] = []
    producer: dict[int, Node] = {}
    for node in graph.nodes:
        n_out = len(node.out) if node.prim.multiple_results else 1
        for k in range(n_out):
            producer[node.idx + k] = node

    memo: dict[int, frozenset] = {}
    latest: dict[tuple, Cluster] = {}

    def depends(v: int) -> frozenset:
        """The clusters value v cannot be computed before (transitively)."""
        if v in memo:
            return memo[v]
        c = cluster_of.get(v)
        if c is not None:
            out: set = {c.id}
            for node in c.nodes:
                for p in node.parents:
                    if p >= 0 and p not in c.members:
                        out |= depends(p)
        else:
            node = producer.get(v)
            out = set()
            if node is not None:
                for p in node.parents:
                    if p >= 0:
                        out |= depends(p)
        memo[v] = frozenset(out)
        return memo[v]

    for node in graph.nodes:
        if not _fusible(node):
            continue
        shape = tuple(node.out.shape)
        target = None
        # candidates: the clusters of its producers, then the latest cluster of its shape
        # (a node reading only inputs, like cos(x) in a backward pass, can join it too)
        candidates = [cluster_of.get(p) for p in node.parents if p >= 0]
        candidates.append(latest.get(shape))
        for c in candidates:
            if c is None or c.shape != shape or len(c.nodes) >= MAX_CLUSTER_NODES:
                continue
            # every input from outside c must not need c first
            if all(q < 0 or q in c.members or c.id not in depends(q) for q in node.parents):
                target = c
                break
        if target is None:
            target = Cluster(len(clusters), shape)
            clusters.append(target)
            latest[shape] = target
        target.nodes.append(node)
        target.members.add(node.idx)
        cluster_of[node.idx] = target
        memo.clear()  # a cluster gained inputs: cached dependencies may be stale
    return clusters, cluster_of


# ----------------------------------------------------------------------------------------------
# Code generation


@functools.lru_cache(maxsize=1)
def _fast_functions() -> dict[Any, str]:
    """Scalar functions with vectorizable replacements in kernels.fastmath, by identity."""
    try:
        from . import fastmath  # noqa: F401  (fails without numba)
    except ImportError:
        return {}
    from ..prims import elementwise
    table: dict[Any, str] = {getattr(math, name): f"_fm.{name}"
                             for name in ("exp", "log", "log1p", "expm1", "tanh", "sin", "cos")}
    table[elementwise._logistic_scalar] = "_fm.sigmoid"
    return table


def _function_ref(node: Node, fast: dict[Any, str]) -> tuple[str, str | None]:
    """A source expression naming the scalar function, and an import line if one is needed."""
    fn = node.prim.scalar
    if fn in fast:
        return fast[fn], "from diffprog.kernels import fastmath as _fm"
    module = getattr(fn, "__module__", None)
    if module in ("math", "_operator", "operator") and getattr(math if module == "math"
                                                               else operator,
                                                               fn.__name__, None) is fn:
        return f"{'math' if module == 'math' else 'operator'}.{fn.__name__}", None
    if primitives.get(node.prim.name) is node.prim:
        return f"_njit_scalar({node.prim.name!r})", None
    raise LookupError(f"no importable scalar form for {node.prim.name}")


def _code_digest(fn: Callable) -> str:
    """A digest of a Python function's code: bytecode, constants, names, nested functions."""
    return hashlib.sha256(marshal.dumps(fn.__code__)).hexdigest()[:16]


_HEADER = '''\
# Generated by diffprog.kernels.fuse: one fused elementwise kernel. Do not edit.
import math
import operator

import numba
import numpy as np

from diffprog.core import primitives as _primitives


def _njit_scalar(name):
    return numba.njit(inline="always")(_primitives[name].scalar)
'''


class Kernel:
    """One cluster compiled: how to call it and what it reads and writes."""

    __slots__ = ("fn", "safe", "inputs", "outputs", "out_dtypes", "shape", "size", "kinds")


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


def _source(cluster: Cluster, inputs: list[int], in_shapes: list[tuple], kinds: list[str],
            const_inputs: list, const_kinds: list[str], outputs: list[int],
            fast: dict[Any, str]) -> str:
    """The kernel's Python source. With fast trig functions it counts, and returns, the
    arguments outside their accurate range, so the caller can rerun the safe variant."""
    shape = cluster.shape
    bcast_strides = {("in", k): _broadcast_strides(in_shapes[k], shape)
                     for k, kind in enumerate(kinds) if kind == "bcast"}
    bcast_strides.update({("c", k): _broadcast_strides(np.shape(c), shape)
                          for k, (c, kind) in enumerate(zip(const_inputs, const_kinds))
                          if kind == "bcast"})
    imports: set[str] = set()
    fnames: dict[Any, str] = {}
    for node in cluster.nodes:
        expr, imp = _function_ref(node, fast)
        if imp:
            imports.add(imp)
        if expr not in fnames:
            fnames[expr] = f"_f{len(fnames)}"
    params = ["n"] + [f"out{k}" for k in range(len(outputs))]
    params += [f"in{k}" for k in range(len(inputs))]
    params += [f"c{k}" for k in range(len(const_inputs))]
    bcast_inputs = [f"in{k}" for k, kind in enumerate(kinds) if kind == "bcast"]
    bcast_inputs += [f"c{k}" for k, kind in enumerate(const_kinds) if kind == "bcast"]
    parallel = int(np.prod(shape)) >= PARALLEL_THRESHOLD
    ndim = len(shape)
    body = []
    # With broadcast inputs the loop nests over the output's axes, so that an input's offset
    # is a sum of products (no division or modulo per element); otherwise one flat loop.
    nest = bool(bcast_inputs) and ndim > 1
    indent = "        " + "    " * (ndim - 1 if nest else 0)
    if nest:
        flat = f"d{ndim - 1}"
        for k in range(ndim - 2, -1, -1):
            flat = f"({flat} + d{k} * {math.prod(shape[k + 1:])})"
        body.append(f"{indent}i = {flat}")
    elif bcast_inputs:
        body.append(f"{indent}d0 = i")
    names: dict[int, str] = {}

    def load(prefix: str, k: int, kind: str) -> str:
        if kind == "scalar":
            return f"{prefix}{k}_s"
        if kind == "full":
            return f"{prefix}{k}[i]"
        # strides are literals: with d * 0 and d * 1 folded, LLVM vectorizes the loop
        strides = bcast_strides[(prefix, k)]
        offset = " + ".join(f"d{j}" if st == 1 else f"d{j} * {st}"
                            for j, st in enumerate(strides) if st) or "0"
        return f"{prefix}{k}[{offset}]"

    pre = ["    bad = 0"]
    for k, kind in enumerate(kinds):
        if kind == "scalar":
            pre.append(f"    in{k}_s = in{k}[0]")
        names[inputs[k]] = load("in", k, kind)
    const_names = []
    for k, kind in enumerate(const_kinds):
        if kind == "scalar":
            pre.append(f"    c{k}_s = c{k}[0]")
        const_names.append(load("c", k, kind))
    const_iter = iter(range(len(const_inputs)))
    for node in cluster.nodes:
        expr, _ = _function_ref(node, fast)
        args = []
        for p in node.parents:
            if p >= 0:
                args.append(names[p])
            else:
                args.append(const_names[next(const_iter)])
        if expr in _TRIG:
            # fast sin/cos are exact only for |x| <= TRIG_MAX: count the arguments beyond
            body.append(f"{indent}bad += 0 if _fm.trig_in_range({args[0]}) else 1")
        var = f"v{len(body)}"  # positional names: equal clusters share one kernel
        args += [f"{k}={v!r}" for k, v in node.params.items()]
        body.append(f"{indent}{var} = {fnames[expr]}({', '.join(args)})")
        names[node.idx] = var
    for k, idx in enumerate(outputs):
        body.append(f"{indent}out{k}[i] = {names[idx]}")
    loop = "numba.prange(n)" if parallel else "range(n)"
    if nest:
        loops = [f"    for d0 in {'numba.prange' if parallel else 'range'}({shape[0]}):"]
        loops += ["    " * (k + 1) + f"for d{k} in range({shape[k]}):" for k in range(1, ndim)]
    else:
        loops = [f"    for i in {loop}:"]
    lines = [_HEADER, f"# fastmath: {_fastmath_digest() if fast else 'unused'}"]
    lines.extend(sorted(imports))
    for expr, fname in fnames.items():
        lines.append(f"{fname} = {expr}")
        if expr.startswith("_njit_scalar("):
            # The kernel's name (and numba's cache of it) must change with the scalar form's code.
            lines.append(f"# code of {fname}: {_code_digest(primitives[expr[14:-2]].scalar)}")
    lines += ["", "", f"@numba.njit(cache=True, parallel={parallel}, error_model='numpy')",
              f"def kernel({', '.join(params)}):"]
    lines.extend(pre)
    lines.extend(loops)
    lines.extend(body)
    lines += ["    return bad", ""]
    return "\n".join(lines)


_TRIG = ("_fm.sin", "_fm.cos")


def _fastmath_digest() -> str:
    """numba does not recompile cached callers when fastmath.py changes: key kernels by it."""
    path = Path(__file__).with_name("fastmath.py")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else "none"


def build_kernel(cluster: Cluster, graph_outputs: set[int], used_outside: set[int],
                 input_shapes: dict[int, tuple], const_inputs: list) -> Kernel:
    """Generate, write and compile the kernel of ``cluster``."""
    fast = _fast_functions()
    shape = cluster.shape
    inputs: list[int] = []  # value indices read from outside
    for node in cluster.nodes:
        for p in node.parents:
            if p >= 0 and p not in cluster.members and p not in inputs:
                inputs.append(p)
    kinds = [_input_kind(input_shapes[p], shape) for p in inputs]
    const_kinds = [_input_kind(np.shape(c), shape) for c in const_inputs]
    outputs = [n.idx for n in cluster.nodes if n.idx in graph_outputs or n.idx in used_outside]
    in_shapes = [input_shapes[p] for p in inputs]
    source = _source(cluster, inputs, in_shapes, kinds, const_inputs, const_kinds, outputs, fast)

    kernel = Kernel()
    kernel.fn = _load(source)
    if any(t in source for t in _TRIG):
        safe_fast = {k: v for k, v in fast.items() if v not in _TRIG}
        safe = _source(cluster, inputs, in_shapes, kinds, const_inputs, const_kinds, outputs,
                       safe_fast)
        kernel.safe = lambda *args: _load(safe)(*args)  # compiled only if ever needed
    else:
        kernel.safe = None
    kernel.inputs = inputs
    kernel.outputs = outputs
    kernel.out_dtypes = [np.dtype(n.out.dtype) for n in cluster.nodes if n.idx in outputs]
    kernel.shape = shape
    kernel.size = int(np.prod(shape))
    kernel.kinds = kinds
    return kernel


_loaded: dict[str, Callable] = {}


_load_lock = threading.Lock()


def _load(source: str) -> Callable:
    """Write ``source`` under a name derived from its hash and import its kernel."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    kernel = _loaded.get(digest)
    if kernel is not None:
        return kernel
    with _load_lock:  # threads of one process compile a kernel once
        if digest not in _loaded:
            _loaded[digest] = _import_kernel(digest, source)
    return _loaded[digest]


def _import_kernel(digest: str, source: str) -> Callable:
    path = kernel_dir() / f"k_{digest}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)  # atomic: concurrent processes see whole files only
    name = f"diffprog_kernel_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.kernel


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
        n_out = len(node.out) if node.prim.multiple_results else 1
        for k in range(n_out):
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
    import heapq
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
        self.fixed = [np.asarray(a).reshape(-1) for a in consts]  # flattened once
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
            self.safe(*args)  # some sin/cos argument was beyond the fast range
        shape = self.shape
        for (idx, _), o in zip(self.outs, flat_outs):
            env[idx] = o.reshape(shape)


def _flat(x: Any) -> np.ndarray:
    return np.ascontiguousarray(x).reshape(-1)


def numba_executor(graph: Graph) -> Callable[[list], list] | None:
    """An executor running fused kernels for the clusters; ``None`` if nothing fuses."""
    clusters, cluster_of = cluster_graph(graph)
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
    for node in graph.nodes:
        outs = node.out if node.prim.multiple_results else (node.out,)
        for k, o in enumerate(outs):
            shapes[node.idx + k] = tuple(o.shape)

    steps: list[Any] = []
    for unit in _schedule(graph, clusters, member_cluster, fused):
        if isinstance(unit, Cluster):
            consts = [a for n in unit.nodes for p, a in zip(n.parents, n.args) if p < 0]
            kernel = build_kernel(unit, graph_outputs, used_outside, shapes, consts)
            steps.append(KernelStep(kernel, consts))
        else:
            steps.append(NodeStep(unit))
    run = sequence(graph, steps)
    return run
