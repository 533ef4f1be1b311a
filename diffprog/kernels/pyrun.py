"""A program's steps as one generated Python function: the per-node cost of running a graph
through NumPy comes down to the ufunc call itself.

The sequence runner of :mod:`diffprog.kernels.steps` keeps values in a list and calls one
:class:`~diffprog.kernels.steps.NodeStep` per node, which builds an argument list, fills it
from the list and calls the implementation with ``**params``: about 1 us of Python per node
besides the NumPy call. Here each node becomes one line, ``v7 = f7(v3, c7_1, axis=p7_axis)``,
of a function compiled once per program (values are local variables, constants and params are
globals of the function, a value is deleted after its last use); other steps (interpreted
clusters, fused kernels) are called with a value list holding just what they read and write.
The source is generated from the program's own graph in memory and compiled with ``compile``;
nothing is read from disk.

Buffers (issue 11: jit never slower than eager): eager code written with operators gets NumPy's
temporary elision, ``a * b + c`` writing the sum into the product's buffer; here every operand
is also held by a local variable, so NumPy cannot see that it is a temporary. A plan computed
once per program from liveness does it instead: a node whose primitive declares ``inplace``
(a ufunc taking ``out=``) computes into the buffer of an operand whose value dies at this node,
when that value was made by such a node in this call (not an input, a constant or a step's
output that may be a view), no value that may be a view of it is read later or returned, and
its shape and dtype are the result's (checked again on the array: C-contiguous, writeable).
The ufunc, its loop and dtype are those of the call without ``out=``, so results are the same
bits.

Example:
    >>> import numpy as np, diffprog.numpy as dnp
    >>> from diffprog.jit import trace_graph
    >>> from diffprog.kernels.steps import NodeStep
    >>> g = trace_graph(lambda x: dnp.exp(x) * 2.0, (np.zeros(2),))
    >>> compile_steps(g, [NodeStep(n) for n in g.nodes])([np.zeros(2)])
    [array([2., 2.])]
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph import Graph
from .steps import NodeStep

__all__ = ["compile_steps", "MIN_INPLACE_BYTES"]

# Results smaller than this are allocated as usual: NumPy's small-block cache makes that cheap,
# and the check on the operand would cost more than it saves (NumPy elides from 256 KiB).
MIN_INPLACE_BYTES = 1 << 16


def compile_steps(graph: Graph, steps: list, writes: dict[int, tuple] | None = None,
                  reuse: bool = True) -> Callable[[list], list]:
    """One Python function running ``steps`` in order; ``writes[id(step)]`` lists the values a
    step that is not a :class:`NodeStep` writes (it is called with a value list). ``reuse``:
    elementwise nodes write into the buffers of operands that die there (the module's
    docstring); ``False`` allocates every result (the reference the tests compare with)."""
    writes = writes or {}
    into = _buffer_plan(graph, steps, writes) if reuse else {}
    ns: dict[str, Any] = {}
    lines = ["def run(inputs):"]
    body: list[str] = []
    n_in = graph.n_in
    if n_in:
        body.append(f"    {', '.join(f'v{i}' for i in range(n_in))}, = inputs")
    keep = {idx for _, idx, _ in graph.outputs if idx >= 0}
    last: dict[int, int] = {}
    for pos, step in enumerate(steps):
        for p in step.reads:
            last[p] = pos
    defined = set(range(n_in))
    uses_env = False
    for pos, step in enumerate(steps):
        if type(step) is NodeStep and _generated(step):
            fname = f"f{pos}"
            ns[fname] = step.impl
            args = []
            refs = dict(step.refs)
            for i, a in enumerate(step.template):
                if i in refs:
                    args.append(f"v{refs[i]}")
                else:
                    ns[f"c{pos}_{i}"] = a
                    args.append(f"c{pos}_{i}")
            for k, v in step.params.items():
                ns[f"p{pos}_{k}"] = v
                args.append(f"{k}=p{pos}_{k}")
            if step.n_out:
                targets = [f"v{step.idx + k}" for k in range(step.n_out)]
                body.append(f"    {', '.join(targets)}, = {fname}({', '.join(args)})")
                defined.update(range(step.idx, step.idx + step.n_out))
            elif pos in into:
                inplace, p, shape, dtype = into[pos]
                ns[f"g{pos}"] = inplace
                ns[f"d{pos}"] = dtype
                ns[f"h{pos}"] = shape
                ns["_reusable"] = _reusable
                call = ", ".join(args + [f"out=v{p}"])
                body.append(f"    v{step.idx} = g{pos}({call}) if _reusable(v{p}, h{pos}, d{pos})"
                            f" else {fname}({', '.join(args)})")
                defined.add(step.idx)
            else:
                body.append(f"    v{step.idx} = {fname}({', '.join(args)})")
                defined.add(step.idx)
        else:
            out = writes.get(id(step))
            if out is None:
                out = _node_writes(step)
            if out is None:
                raise ValueError(f"compile_steps: what does {step!r} write?")
            uses_env = True
            sname = f"s{pos}"
            ns[sname] = step
            for p in sorted(step.reads):
                body.append(f"    env[{p}] = v{p}")
            body.append(f"    {sname}(env)")
            for w in out:
                body.append(f"    v{w} = env[{w}]")
                defined.add(w)
            for p in sorted(set(step.reads) | set(out)):
                body.append(f"    env[{p}] = None")
        dead = sorted(p for p in step.reads if last[p] == pos and p not in keep
                      and p in defined)
        if dead:
            body.append(f"    del {', '.join(f'v{p}' for p in dead)}")
            defined.difference_update(dead)
    results = []
    for k, (_, idx, value) in enumerate(graph.outputs):
        if idx >= 0:
            results.append(f"v{idx}")
        else:
            ns[f"o{k}"] = value
            results.append(f"o{k}")
    if uses_env:
        lines.append(f"    env = [None] * {graph.n_values}")
    lines += body
    lines.append(f"    return [{', '.join(results)}]")
    code = compile("\n".join(lines) + "\n", f"<diffprog program: {len(steps)} steps>", "exec")
    exec(code, ns)  # source generated above from the graph, in memory
    # taken out of its own globals: no reference cycle, so a dropped program's function, its
    # constants and its step objects go as soon as the program does (no garbage collection)
    return ns.pop("run")


def _node_writes(step: Any) -> tuple | None:
    idx = getattr(step, "idx", None)
    if idx is None:
        return None
    return tuple(range(idx, idx + max(getattr(step, "n_out", 0), 1)))


def _reusable(a: Any, shape: tuple, dtype: np.dtype) -> bool:
    """May ``a`` receive a result of this shape and dtype? (The plan checked the abstract
    values; this checks the array: a plain, C-contiguous, writeable array of that type.)"""
    if a.__class__ is not np.ndarray or a.shape != shape or a.dtype != dtype:
        return False
    flags = a.flags
    return flags.c_contiguous and flags.writeable


def _buffer_plan(graph: Graph, steps: list, writes: dict[int, tuple]) -> dict[int, tuple]:
    """``{position of a step: (inplace, operand value, shape, dtype)}`` for the nodes that can
    compute into the buffer of an operand dying there (see the module's docstring).

    A value is *fresh* when a node with ``inplace`` made it: a new array of this call, or an
    operand's buffer handed over. Any other step's outputs may be views of what it reads (a
    reshape, a transpose, a getitem, a kernel passing a value through), so they carry the
    fresh buffers of their operands; a buffer is free once the last value that may view it
    has been read, and never if one of them is returned.
    """
    nodes = {n.idx: n for n in graph.nodes}
    avals: dict[int, Any] = {}
    for n in graph.nodes:
        for k, o in enumerate(n.outs):
            avals[n.idx + k] = o
    keep = {idx for _, idx, _ in graph.outputs if idx >= 0}
    last: dict[int, int] = {}
    for pos, step in enumerate(steps):
        for p in step.reads:
            last[p] = pos
    # views[v]: the fresh buffers value v may share memory with
    views: dict[int, frozenset] = {}
    fresh: set[int] = set()
    candidates: list[tuple[int, Any, Any]] = []
    for pos, step in enumerate(steps):
        node = nodes.get(step.idx) if type(step) is NodeStep else None
        if (node is not None and node.prim.impl is step.impl and not step.n_out
                and node.prim.inplace is not None and _generated(step)):
            fresh.add(step.idx)
            views[step.idx] = frozenset((step.idx,))
            candidates.append((pos, step, node))
            continue
        out = writes.get(id(step))
        if out is None:
            out = _node_writes(step) or ()
        seen = frozenset().union(*(views.get(p, frozenset()) for p in step.reads))
        for w in out:
            views[w] = seen
    # the step after which no value viewing a fresh buffer is read any more (None: returned)
    free_at: dict[int, int | None] = {}
    for v, bufs in views.items():
        end = None if v in keep else last.get(v, -1)
        for b in bufs:
            if end is None or free_at.get(b, -1) is None:
                free_at[b] = None
            else:
                free_at[b] = max(free_at.get(b, -1), end)
    plan: dict[int, tuple] = {}
    for pos, step, node in candidates:
        res = node.out
        shape, dtype = getattr(res, "shape", None), getattr(res, "dtype", None)
        if not shape or dtype is None:  # 0-d: the ufunc returns a scalar, not an array
            continue
        try:
            dtype, shape = np.dtype(dtype), tuple(int(d) for d in shape)
        except TypeError:  # not an abstract value of a NumPy dtype: allocate as usual
            continue
        if math.prod(shape) * dtype.itemsize < MIN_INPLACE_BYTES:
            continue
        operands = [p for _, p in step.refs]
        for p in operands:
            if p not in fresh or free_at.get(p) != pos or last.get(p) != pos:
                continue
            a = avals.get(p)
            if (a is None or tuple(a.shape) != shape or a.dtype != dtype
                    or any(q != p and p in views.get(q, ()) for q in operands)):
                continue
            # the impl the step calls, when it is a ufunc; else the primitive's in-place form
            # (a fast form's hook: it asks the eager kernels as the hooked impl does)
            inplace = step.impl if isinstance(step.impl, np.ufunc) else node.prim.inplace
            plan[pos] = (inplace, p, shape, dtype)
            break
    return plan


def _generated(step: NodeStep) -> bool:
    """Is the node a line of the generated function (params that are keyword names)?"""
    return all(k.isidentifier() and not keyword.iskeyword(k) for k in step.params)
