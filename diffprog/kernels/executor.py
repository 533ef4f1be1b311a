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


def make_executor(graph: Graph, kind: str | None = None,
                  compile: str = "eager") -> Callable[[list], list]:
    """An executor for ``graph``.

    ``kind``: ``"numpy"`` (the reference, no compilation), ``"numba"`` (fused kernels for every
    cluster, compiled now: deterministic, what tests of the kernels use), ``"interp"`` (the
    blocked interpreter for the float64 clusters, NumPy for the rest; NumPy alone where numba
    is missing), ``"whole"`` (the graph as one compiled function, compiled now, NumPy where
    the graph has a node it cannot express), or None: chosen by ``compile``:

    - ``"eager"``: fused kernels compiled now where numba is installed and something fuses,
      else NumPy;
    - ``"background"``: a :class:`~diffprog.kernels.tiers.Tiered` runner, which starts on a
      tier that compiles nothing and swaps in compiled tiers from a background thread;
    - ``"never"``: the same without per-program compilation (NumPy and the interpreter).

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> from diffprog.jit import trace_graph
        >>> g = trace_graph(lambda x: dnp.exp(x) * 2.0, (np.zeros(2),))
        >>> make_executor(g, "numpy")([np.zeros(2)])
        [array([2., 2.])]
    """
    if kind not in (None, "numpy", "numba", "interp", "whole"):
        raise ValueError(f"unknown executor {kind!r}; use 'numpy', 'numba', 'interp' or "
                         "'whole'")
    if compile not in ("eager", "background", "never"):
        raise ValueError(f"unknown compile mode {compile!r}; use 'eager', 'background' or "
                         "'never'")
    if kind == "numpy":
        return numpy_executor(graph)
    if kind == "interp":
        from .interp import interp_executor
        return interp_executor(graph) or numpy_executor(graph)
    if kind == "whole":
        from .wholeprog import whole_program
        return whole_program(graph) or numpy_executor(graph)
    if kind is None and compile != "eager":
        from .tiers import Tiered
        return Tiered(graph, compile)
    try:
        from .fuse import numba_executor
    except ImportError:
        if kind == "numba":
            raise
    else:
        run = numba_executor(graph)
        if run is not None:
            return run  # (None: nothing to fuse, and NumPy runs the graph as well)
    return numpy_executor(graph)
