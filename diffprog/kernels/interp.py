"""The blocked interpreter: one precompiled numba kernel that runs any float64 elementwise
cluster op by op over cache-sized blocks (numexpr's design).

A fused kernel is generated and compiled per cluster, which costs 0.3-2 s per program on a
cold cache. The interpreter is compiled once per installation instead: :func:`_interp` is a
``cache=True`` function of this module, so numba keeps its machine code in this package's
``__pycache__`` (or, where the package is read-only, in numba's own per-user cache), never in
``DIFFPROG_CACHE_DIR``; a new process loads it in about 0.1 s. A cluster becomes a small
integer program: registers are rows of a ``(n_registers, BLOCK)`` scratch array, and for each
block of the flattened output the program loads its inputs, applies one vectorised loop per
operation (with :mod:`fastmath`'s inlined exp/log/sin/cos/tanh/sigmoid) and stores the values
used outside the cluster. The per-op cost is one loop over ``BLOCK`` elements held in L1/L2,
not a pass over memory, and there is no Python dispatch per node.

The opcodes come from data on the primitives: the scalar form (``prim.scalar``, a function
of :mod:`math` or :mod:`operator`, or a scalar form of :mod:`diffprog.prims.elementwise`) or the
fast form a primitive names (``prim.scalar_fast``). A cluster runs here only when every node
has an opcode, float64 operands and a float64 result, and no params the scalar form reads
(an identity form such as broadcast_to's ignores its shape); the caller runs the others through
NumPy.

Example:
    >>> import numpy as np, diffprog.numpy as dnp
    >>> from diffprog.jit import trace_graph
    >>> g = trace_graph(lambda x: dnp.exp(x) * 2.0 + 1.0, (np.zeros(3),))
    >>> run = interp_executor(g)
    >>> run is None or bool(np.allclose(run([np.zeros(3)])[0], 3.0))
    True
"""

from __future__ import annotations

import logging
import math
import operator
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph import Graph, Node
from .steps import NodeStep, sequence

__all__ = ["interp_executor", "load", "loaded", "opcode", "BLOCK", "build_seconds"]

log = logging.getLogger("diffprog.jit")

# Clusters of at least this many nodes run on the interpreter whatever their size.
INTERP_MIN_NODES = 6
# Operands of at most this many elements in all are copied into one buffer per call.
SMALL_OPERANDS = 1 << 14
# Elements per block: 1024 float64 = 8 KB a register, so a cluster's live registers stay in L2.
BLOCK = 1024

# -- opcodes -----------------------------------------------------------------------------------
# 0-2 move data; unary ops 10-49; binary ops 50-. The numbers are part of the compiled kernel:
# change them together with _interp below.
LOAD, LOAD_PERIOD, STORE = 0, 1, 2
MOVE = 3  # the identity (a broadcast in the graph): no instruction, the operand's register
NEG, ABS, EXP, LOG, LOG1P, EXPM1, SIN, COS, TANH, SIGMOID, SQRT = range(10, 21)
TAN, SINH, COSH, ASIN, ACOS, ATAN, ASINH, ACOSH, ATANH, LOG2, LOG10 = range(21, 32)
ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, FMAX, FMIN, ATAN2, HYPOT = range(50, 61)


def _by_fast_name() -> dict[str, int]:
    return {"exp": EXP, "log": LOG, "log1p": LOG1P, "expm1": EXPM1, "sin": SIN, "cos": COS,
            "tanh": TANH, "sigmoid": SIGMOID, "logistic": SIGMOID}


def _by_scalar_form() -> dict[Any, int]:
    """Opcodes keyed by the identity of a primitive's scalar form."""
    from ..prims import elementwise as ew
    table: dict[Any, int] = {
        operator.neg: NEG, math.fabs: ABS, math.exp: EXP, math.log: LOG, math.log1p: LOG1P,
        math.expm1: EXPM1, math.sin: SIN, math.cos: COS, math.tanh: TANH, math.sqrt: SQRT,
        math.tan: TAN, math.sinh: SINH, math.cosh: COSH, math.asin: ASIN, math.acos: ACOS,
        math.atan: ATAN, math.asinh: ASINH, math.acosh: ACOSH, math.atanh: ATANH,
        math.log2: LOG2, math.log10: LOG10,
        operator.add: ADD, operator.sub: SUB, operator.mul: MUL, operator.truediv: DIV,
        operator.pow: POW, math.atan2: ATAN2, math.hypot: HYPOT,
        # the same operations as NumPy ufuncs (scalar forms numba compiles as well)
        np.negative: NEG, np.fabs: ABS, np.abs: ABS, np.exp: EXP, np.log: LOG,
        np.log1p: LOG1P, np.expm1: EXPM1, np.sin: SIN, np.cos: COS, np.tanh: TANH,
        np.sqrt: SQRT, np.tan: TAN, np.sinh: SINH, np.cosh: COSH, np.arcsin: ASIN,
        np.arccos: ACOS, np.arctan: ATAN, np.arcsinh: ASINH, np.arccosh: ACOSH,
        np.arctanh: ATANH, np.log2: LOG2, np.log10: LOG10, np.add: ADD, np.subtract: SUB,
        np.multiply: MUL, np.true_divide: DIV, np.power: POW, np.maximum: MAXIMUM,
        np.minimum: MINIMUM, np.fmax: FMAX, np.fmin: FMIN, np.arctan2: ATAN2, np.hypot: HYPOT}
    # scalar forms written in diffprog (NaN rules of NumPy's maximum/fmax, a stable sigmoid)
    for name, op in (("_logistic_scalar", SIGMOID), ("_maximum_scalar", MAXIMUM),
                     ("_minimum_scalar", MINIMUM), ("_fmax_scalar", FMAX),
                     ("_fmin_scalar", FMIN)):
        fn = getattr(ew, name, None)
        if fn is not None:
            table[fn] = op
    return table


_TABLES: list = []


class _Probe:
    __slots__ = ()


def _is_identity(node: Node) -> bool:
    """Does the node's scalar form return its one operand unchanged (found by calling it)?"""
    form = node.prim.scalar
    if isinstance(form, dict) or len(node.args) != 1:
        return False
    probe = _Probe()
    try:
        return form(probe, **node.params) is probe
    except Exception:
        return False


def opcode(node: Node) -> int | None:
    """The interpreter's opcode for ``node``, or None when it cannot run there.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.jit import trace_graph
        >>> [opcode(n) for n in trace_graph(lambda x: dnp.sin(x) + x, (np.ones(2),)).nodes]
        [16, 50]
    """
    prim = node.prim
    if prim.scalar is None or prim.multiple_results:
        return None
    if node.params:
        # params are only allowed where the scalar form is the identity on its one operand
        # (a broadcast: the operand is loaded with the broadcast's indexing)
        return MOVE if _is_identity(node) else None
    if np.dtype(node.out.dtype) != np.float64:
        return None
    for a in node.args:
        dt = getattr(a, "dtype", None)
        if dt is None:
            if type(a) not in (float, int) or type(a) is bool:
                return None
        elif np.dtype(dt) != np.float64:
            return None
    if not _TABLES:
        _TABLES[:] = [_by_fast_name(), _by_scalar_form()]
    fast, forms = _TABLES
    name = getattr(prim, "scalar_fast", None)
    op = fast.get(name) if name else None
    if op is None:
        form = prim.scalar
        if isinstance(form, dict):  # forms by dtype kind: the float one
            form = next((f for kinds, f in form.items() if "f" in kinds), None)
        try:
            op = forms.get(form)
        except TypeError:  # an unhashable form
            op = None
    if op is None or (op < ADD) != (len(node.args) == 1) or len(node.args) > 2:
        return None
    return op


# -- the kernel --------------------------------------------------------------------------------

_kernel: Any = None
_kernel_lock = threading.Lock()
_kernel_failed = False
build_seconds: float | None = None  # how long the last load (or first-ever compile) took


def loaded() -> bool:
    """Is the interpreter's kernel loaded in this process?"""
    return _kernel is not None


def load() -> Any:
    """The interpreter's compiled kernel, loading it (or, once per installation, compiling it)
    on first use; None where numba is missing or the build failed. Thread-safe."""
    global _kernel, _kernel_failed, build_seconds
    if _kernel is not None or _kernel_failed:
        return _kernel
    with _kernel_lock:
        if _kernel is None and not _kernel_failed:
            t0 = time.perf_counter()
            try:
                from . import _interp_kernel
                fn = _interp_kernel.interp
                # Load (or compile) the one signature now, not at a first call mid-program.
                fn.compile(_interp_kernel.SIGNATURE)
                # numba's first dispatch of a signature costs ~40 ms more: pay it here too
                ints, floats = np.zeros((1, 4), np.int64), np.zeros((1, 1))
                fn(ints, 0, ints[0], ints[0], floats, ints[0, :0], floats[0], 1)
                build_seconds = time.perf_counter() - t0
                _kernel = fn
            except Exception as e:
                _kernel_failed = True
                log.debug("diffprog: the blocked interpreter is unavailable (%r)", e)
    return _kernel


# -- a cluster as a program --------------------------------------------------------------------


def _period(value_shape: tuple, shape: tuple) -> int | None:
    """For an input broadcast to ``shape``: its size when it repeats along the flattened output
    (its shape, without leading ones, equals the output's trailing axes), else None."""
    vs = tuple(value_shape)
    while vs and vs[0] == 1:
        vs = vs[1:]
    if not vs or vs == tuple(shape[len(shape) - len(vs):]):
        return int(np.prod(vs)) if vs else 1
    return None


class InterpStep:
    """One cluster run by the interpreter: flat float64 inputs in, one block of outputs out."""

    __slots__ = ("fn", "code", "ins", "periods", "materialize", "shape", "size", "outs",
                 "n_out", "consts", "const_addrs", "broadcast", "offsets", "splat_regs",
                 "splat_vals", "n_regs", "reads")

    def __init__(self, fn: Any, nodes: list[Node], members: set[int], shape: tuple,
                 outputs: list[int], value_shapes: dict[int, tuple]) -> None:
        self.fn = fn
        self.shape = shape
        self.size = int(np.prod(shape))
        free: list[int] = []
        n_regs = 0
        reg: dict[Any, int] = {}
        last: dict[Any, int] = {}
        for pos, node in enumerate(nodes):
            for k, p in enumerate(node.parents):
                last[p if p >= 0 else ("c", pos, k)] = pos
        for idx in outputs:
            last[idx] = len(nodes)

        def alloc() -> int:
            nonlocal n_regs
            if free:
                return free.pop()
            n_regs += 1
            return n_regs - 1

        code: list[tuple[int, int, int, int]] = []
        ins: list[int] = []
        periods: list[int] = []
        materialize: list[bool] = []
        splat_regs: list[int] = []
        splat_vals: list[float] = []
        splat_of: dict[float, tuple[int, float]] = {}
        consts: list[np.ndarray] = []
        const_periods: list[int] = []
        for pos, node in enumerate(nodes):
            operands = []
            for k, (p, a) in enumerate(zip(node.parents, node.args)):
                if p >= 0 and p in reg:
                    operands.append(reg[p])
                    continue
                if p < 0 and np.size(a) == 1:  # a constant scalar: filled once per call,
                    value = float(np.asarray(a).reshape(-1)[0])  # in a register of its own
                    if value not in splat_of or math.copysign(1.0, value) != math.copysign(
                            1.0, splat_of[value][1]):
                        n_regs += 1
                        splat_of[value] = (n_regs - 1, value)
                        splat_regs.append(n_regs - 1)
                        splat_vals.append(value)
                    operands.append(splat_of[value][0])
                    continue
                r = alloc()
                if p >= 0:  # an input from outside the cluster: loaded per block
                    vshape = value_shapes[p]
                    period = _period(vshape, shape)
                    ins.append(p)
                    periods.append(period if period is not None and period != self.size
                                   else 0)
                    materialize.append(period is None)
                    code.append((LOAD if periods[-1] == 0 else LOAD_PERIOD, r, len(ins) - 1, 0))
                    reg[p] = r
                else:  # an array constant: an input prepared once
                    c = np.asarray(a, dtype=np.float64)
                    period = _period(c.shape, shape)
                    if period is None:
                        c = np.broadcast_to(c, shape)
                        period = 0
                    consts.append(np.ascontiguousarray(c).reshape(-1))
                    code.append((LOAD if period in (0, self.size) else LOAD_PERIOD, r,
                                 -len(consts), 0))
                    const_periods.append(0 if period == self.size else period)
                    reg[("c", pos, k)] = r
                operands.append(r)
            op = opcode(node)
            if op == MOVE:
                dst = operands[0]
            else:
                dst = alloc()  # never one of the operands: sin/cos reread their argument
                code.append((op, dst, operands[0], operands[1] if len(operands) > 1 else 0))
            reg[node.idx] = dst
            for k, p in enumerate(node.parents):
                key = p if p >= 0 else ("c", pos, k)
                if last.get(key) == pos and key in reg:
                    r = reg.pop(key)
                    # (splat registers are filled once per call, before the blocks: kept)
                    if r not in reg.values() and r not in free and r not in splat_regs:
                        free.append(r)
        for k, idx in enumerate(outputs):
            code.append((STORE, k, reg[idx], 0))
        # constants come after the inputs in the address table
        code = [(op, d, len(ins) - 1 - a if op in (LOAD, LOAD_PERIOD) and a < 0 else a, b)
                for op, d, a, b in code]
        self.code = np.array(code, dtype=np.int64).reshape(-1, 4)
        self.ins = tuple(ins)
        self.consts = consts
        self.periods = np.array(periods + const_periods, dtype=np.int64)
        self.materialize = tuple(materialize)
        self.outs = tuple(outputs)
        self.n_out = len(outputs)
        self.splat_regs = np.array(splat_regs, dtype=np.int64)
        self.splat_vals = np.array(splat_vals, dtype=np.float64)
        self.n_regs = max(n_regs, 1)
        self.reads = set(ins)
        self.broadcast = tuple(k for k, mat in enumerate(materialize) if mat)
        self.const_addrs = [c.__array_interface__["data"][0] for c in consts]
        lengths = [self.size if p == 0 else p for p in self.periods.tolist()]
        if sum(lengths) <= SMALL_OPERANDS:
            self.offsets = 8 * np.cumsum([0] + lengths[:-1], dtype=np.int64)[:len(lengths)]
        else:
            self.offsets = None

    def __call__(self, env: list) -> None:
        size = self.size
        shape = self.shape
        if self.offsets is not None:
            # small operands: one copy into one buffer (one C call) beats asking NumPy for
            # each operand's address (a ctypes or array-interface object per operand)
            vals = [env[p] for p in self.ins]
            for k in self.broadcast:
                vals[k] = np.broadcast_to(vals[k], shape)
            vals += self.consts
            if vals:
                buf = np.concatenate(vals, axis=None, dtype=np.float64)
                addrs = self.offsets + buf.__array_interface__["data"][0]
            else:
                addrs = self.offsets
        else:
            arrays = []
            for p, mat in zip(self.ins, self.materialize):
                v = env[p]
                if mat:
                    v = np.broadcast_to(v, shape)
                if type(v) is not np.ndarray or v.dtype != np.float64 or not \
                        v.flags.c_contiguous:
                    v = np.ascontiguousarray(v, dtype=np.float64)
                arrays.append(v)
            addrs = np.array([a.__array_interface__["data"][0] for a in arrays]
                             + self.const_addrs, dtype=np.int64)
        out = np.empty((self.n_out, size))
        if size:
            self.fn(self.code, size, addrs, self.periods, out, self.splat_regs,
                    self.splat_vals, self.n_regs)
        for k, idx in enumerate(self.outs):
            env[idx] = out[k].reshape(shape)
        # (the operands stayed referenced until the kernel returned: it reads them by address)


def interp_steps(graph: Graph, kernel: Any = None, min_nodes: int = 2
                 ) -> tuple[list[Any], int] | None:
    """Steps running the interpretable clusters of ``graph`` on the interpreter and every
    other node through NumPy, in a valid order, and how many clusters are interpreted;
    None when the interpreter is unavailable."""
    fn = kernel if kernel is not None else load()
    if fn is None:
        return None
    from .fuse import cluster_graph
    clusters, _ = cluster_graph(graph)
    chosen = [c for c in clusters if len(c.nodes) >= min_nodes
              and all(opcode(n) is not None for n in c.nodes)]
    return _steps_for(graph, {id(c): "interp" for c in chosen}, clusters, fn), len(chosen)


def _value_shapes(graph: Graph) -> dict[int, tuple]:
    shapes: dict[int, tuple] = {i: tuple(v.shape) for i, v in enumerate(graph.in_values)}
    for node in graph.nodes:
        outs = node.out if node.prim.multiple_results else (node.out,)
        for k, o in enumerate(outs):
            shapes[node.idx + k] = tuple(o.shape)
    return shapes


def _steps_for(graph: Graph, how: dict[int, Any], clusters: list, fn: Any,
               writes: dict[int, tuple] | None = None) -> list[Any]:
    """Steps for ``graph`` where ``how[id(cluster)]`` is "interp" or a callable making the
    cluster's step (a fused kernel); other nodes run through NumPy. ``writes`` receives the
    values each cluster's step writes, by ``id(step)``."""
    from .fuse import _schedule
    chosen = [c for c in clusters if id(c) in how]
    fused = {id(n) for c in chosen for n in c.nodes}
    member_cluster = {idx: c for c in chosen for idx in c.members}
    graph_outputs = {idx for _, idx, _ in graph.outputs if idx >= 0}
    used_outside: set[int] = set()
    for node in graph.nodes:
        own = member_cluster.get(node.idx) if id(node) in fused else None
        for p in node.parents:
            if p >= 0 and p in member_cluster and member_cluster[p] is not own:
                used_outside.add(p)
    shapes = _value_shapes(graph)
    steps: list[Any] = []
    for unit in _schedule(graph, chosen, member_cluster, fused):
        if id(unit) in how:
            outputs = [n.idx for n in unit.nodes
                       if n.idx in graph_outputs or n.idx in used_outside]
            make = how[id(unit)]
            if make == "interp":
                steps.append(InterpStep(fn, unit.nodes, unit.members, unit.shape, outputs,
                                        shapes))
            else:
                steps.append(make(unit, graph_outputs, used_outside, shapes))
            if writes is not None:
                writes[id(steps[-1])] = tuple(outputs)
        else:
            steps.append(NodeStep(unit))
    return steps


def interp_executor(graph: Graph, codegen: bool = True) -> Callable[[list], list] | None:
    """An executor running the interpretable clusters on the blocked interpreter and the rest
    through NumPy; None when the interpreter is unavailable or no cluster is interpretable.
    ``codegen``: as one generated Python function (faster per call, slower to build)."""
    fn = load()
    if fn is None:
        return None
    from .fuse import cluster_graph
    from .pyrun import compile_steps
    clusters, _ = cluster_graph(graph)
    chosen = [c for c in clusters if worth_interpreting(c) and
              all(opcode(n) is not None for n in c.nodes)]
    if not chosen:
        return None
    writes: dict[int, tuple] = {}
    steps = _steps_for(graph, {id(c): "interp" for c in chosen}, clusters, fn, writes)
    # (generating the Python function costs ~30 us per node: a first call takes the list runner)
    return compile_steps(graph, steps, writes) if codegen else sequence(graph, steps)


def worth_interpreting(cluster: Any) -> bool:
    """Does a call of the interpreter (~5 us: operands gathered, numba's dispatch) beat NumPy's
    ~1 us per node for this cluster? For long clusters, or arrays large enough that the
    interpreter's single pass over memory matters."""
    n = len(cluster.nodes)
    return n >= INTERP_MIN_NODES or (n >= 2 and int(np.prod(cluster.shape)) >= 4096)
