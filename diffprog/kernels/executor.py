"""Executors: run a jit graph. The NumPy executor is the reference; the numba executor fuses
clusters of elementwise nodes into generated kernels and runs everything else through NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..graph import Graph, Node

__all__ = ["make_executor", "numpy_executor", "NodeStep", "sequence"]


class NodeStep:
    """One node run through its NumPy implementation: reads ``env``, writes its outputs."""

    __slots__ = ("impl", "template", "refs", "params", "idx", "n_out", "reads")

    def __init__(self, node: Node) -> None:
        self.impl = node.prim.impl
        self.template = tuple(node.args)
        self.refs = tuple((i, p) for i, p in enumerate(node.parents) if p >= 0)
        self.params = node.params
        self.idx = node.idx
        self.n_out = len(node.out) if node.prim.multiple_results else 0
        self.reads = {p for _, p in self.refs}

    def __call__(self, env: list) -> None:
        args = list(self.template)  # per call: programs may run in several threads at once
        for i, p in self.refs:
            args[i] = env[p]
        out = self.impl(*args, **self.params)
        if self.n_out:
            env[self.idx:self.idx + self.n_out] = out
        else:
            env[self.idx] = out


def sequence(graph: Graph, steps: list) -> Callable[[list], list]:
    """Run ``steps`` (callables on the value list, each with a ``reads`` set) in order,
    dropping every value after the last step that reads it unless it is an output."""
    outputs = [(idx, value) for _, idx, value in graph.outputs]
    keep = {idx for idx, _ in outputs if idx >= 0}
    last: dict[int, int] = {}
    for pos, step in enumerate(steps):
        for p in step.reads:
            last[p] = pos
    plan = [(step, tuple(p for p in step.reads if last[p] == pos and p not in keep))
            for pos, step in enumerate(steps)]
    n_values = graph.n_values

    def run(inputs: list) -> list:
        env: list[Any] = [None] * n_values
        env[:len(inputs)] = inputs
        for step, free in plan:
            step(env)
            for p in free:
                env[p] = None
        return [env[idx] if idx >= 0 else value for idx, value in outputs]

    return run


def numpy_executor(graph: Graph) -> Callable[[list], list]:
    """Run each node's NumPy implementation in order, freeing values after their last use.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.jit import trace_graph
        >>> run = numpy_executor(trace_graph(lambda x: dnp.exp(x) * 2.0, (np.zeros(2),)))
        >>> run([np.zeros(2)])
        [array([2., 2.])]
    """
    return sequence(graph, [NodeStep(node) for node in graph.nodes])


def make_executor(graph: Graph, kind: str | None = None) -> Callable[[list], list]:
    """An executor for ``graph``: ``"numpy"`` (reference) or ``"numba"`` (fused kernels).

    The default is numba when it is installed and the graph has elementwise clusters worth
    fusing, else NumPy.
    """
    if kind in (None, "numba"):
        try:
            from .fuse import numba_executor
        except ImportError:
            if kind == "numba":
                raise
        else:
            run = numba_executor(graph)
            if run is not None:
                return run  # (None: nothing to fuse, and NumPy runs the graph as well)
    if kind not in (None, "numpy", "numba"):
        raise ValueError(f"unknown executor {kind!r}; use 'numpy' or 'numba'")
    return numpy_executor(graph)
