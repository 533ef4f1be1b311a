"""Steps of a compiled program and the runner that sequences them, shared by the executors.

A step is a callable on the list of values (``env``) with a ``reads`` set: :class:`NodeStep`
runs one node through its NumPy implementation; the numba executor adds fused-kernel steps.
This module sits below both executors, so neither imports the other for these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..graph import Graph, Node

__all__ = ["NodeStep", "sequence"]


class NodeStep:
    """One node run through its NumPy implementation: reads ``env``, writes its outputs."""

    __slots__ = ("impl", "template", "refs", "params", "idx", "n_out", "reads")

    def __init__(self, node: Node) -> None:
        self.impl = node.prim.impl
        self.template = tuple(node.args)
        self.refs = tuple((i, p) for i, p in enumerate(node.parents) if p >= 0)
        self.params = node.params
        self.idx = node.idx
        self.n_out = node.n_out if node.prim.multiple_results else 0
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
