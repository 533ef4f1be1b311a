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
from collections.abc import Callable
from typing import Any

from ..graph import Graph
from .steps import NodeStep

__all__ = ["compile_steps"]


def compile_steps(graph: Graph, steps: list, writes: dict[int, tuple] | None = None
                  ) -> Callable[[list], list]:
    """One Python function running ``steps`` in order; ``writes[id(step)]`` lists the values a
    step that is not a :class:`NodeStep` writes (it is called with a value list)."""
    writes = writes or {}
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
        if type(step) is NodeStep and all(k.isidentifier() and not keyword.iskeyword(k)
                                          for k in step.params):
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
