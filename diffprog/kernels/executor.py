"""Executors: run a jit graph. The NumPy executor is the reference; the numba executor fuses
clusters of elementwise nodes into generated kernels and runs everything else through NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..graph import Graph

__all__ = ["make_executor", "numpy_executor"]


def _last_uses(graph: Graph) -> dict[int, int]:
    """For each value, the position of the last node that reads it."""
    last: dict[int, int] = {}
    for pos, node in enumerate(graph.nodes):
        for p in node.parents:
            if p >= 0:
                last[p] = pos
    return last


def numpy_executor(graph: Graph) -> Callable[[list], list]:
    """Run each node's NumPy implementation in order, freeing values after their last use.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.jit import trace_graph
        >>> run = numpy_executor(trace_graph(lambda x: dnp.exp(x) * 2.0, (np.zeros(2),)))
        >>> run([np.zeros(2)])
        [array([2., 2.])]
    """
    keep = {idx for _, idx, _ in graph.outputs if idx >= 0}
    last = _last_uses(graph)
    steps = []
    for pos, node in enumerate(graph.nodes):
        refs = tuple((i, p) for i, p in enumerate(node.parents) if p >= 0)
        free = tuple(p for p in set(node.parents)
                     if p >= 0 and last.get(p) == pos and p not in keep)
        n_out = len(node.out) if node.prim.multiple_results else 0
        steps.append((node.prim.impl, tuple(node.args), refs, node.params, node.idx, n_out,
                      free))
    outputs = [(idx, value) for _, idx, value in graph.outputs]
    n_values = graph.n_values

    def run(inputs: list) -> list:
        env: list[Any] = [None] * n_values
        env[:len(inputs)] = inputs
        for impl, template, refs, params, idx, n_out, free in steps:
            args = list(template)  # per call: programs may run in several threads at once
            for i, p in refs:
                args[i] = env[p]
            out = impl(*args, **params)
            if n_out:
                env[idx:idx + n_out] = out
            else:
                env[idx] = out
            for p in free:
                env[p] = None
        return [env[idx] if idx >= 0 else value for idx, value in outputs]

    return run


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
            if run is not None or kind == "numba":
                return run
    if kind not in (None, "numpy", "numba"):
        raise ValueError(f"unknown executor {kind!r}; use 'numpy' or 'numba'")
    return numpy_executor(graph)
