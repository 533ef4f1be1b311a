"""Draw the gradient graph of a small function: the extended computation graph.

Run: python examples/graph.py [output.svg]
Writes the picture with Graphviz when `dot` is installed (apt-get install graphviz), and the
DOT text beside it either way.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import diffprog as dp
import diffprog.numpy as dnp


def loss(w, x):
    return dnp.sum(dnp.tanh(x @ w) ** 2)


def main(out: str = "grad_graph.svg", small: bool = False) -> dict:
    w, x = np.ones((3, 2)) * 0.1, np.ones((4, 3))
    graph = dp.make_graph(dp.grad(loss))(w, x)
    print(graph)
    optimized = dp.jit(dp.grad(loss))
    optimized(w, x)
    program = next(iter(optimized.cache.values()))
    print(f"\n{len(graph)} nodes recorded; {len(program.graph)} after the jit passes")
    dot_path = Path(out).with_suffix(".dot")
    dot_path.write_text(graph.to_dot())
    result = {"dot": str(dot_path), "nodes": len(graph), "picture": None}
    try:
        result["picture"] = graph.render(out)
        print(f"wrote {out} and {dot_path}")
    except RuntimeError as e:
        print(f"wrote {dot_path}; no picture: {e}")
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "grad_graph.svg")
