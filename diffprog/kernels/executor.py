"""Executors: run a jit graph. The NumPy executor is the reference; the numba executor fuses
clusters of elementwise nodes into generated kernels and runs everything else through NumPy.
"""

from __future__ import annotations

from collections.abc import Callable

from ..graph import Graph
from .steps import NodeStep, sequence

__all__ = ["make_executor", "numpy_executor", "NodeStep", "sequence"]


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
