"""The IR: nodes recorded by a trace and the graph they form.

A :class:`Node` is one application of a primitive: its inputs, params and output. The reverse
trace records nodes in execution order, which is already a topological order, so the backward
sweep walks the list backwards. :class:`Graph` is the printable view of such a recording, with
inputs and outputs named after their pytree paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .core import Primitive, Trace, Tracer
from .tree import keystr, tree_flatten_with_path, tree_unflatten

__all__ = ["Node", "Graph", "RecordingTrace", "RecordedTracer", "Replay", "live_nodes",
           "trace_inputs"]


class Node:
    """One primitive application: ``out = prim(*args, **params)``.

    ``args`` and ``out`` are the values one level down (arrays, or tracers of an enclosing
    transform; ``out`` is a tuple for a primitive with multiple results); ``parents[i]`` is the
    index of the recorded value that ``args[i]`` came from, or -1 for a constant; ``idx`` is the
    index of the (first) output.
    """

    __slots__ = ("prim", "args", "params", "out", "parents", "idx")

    def __init__(self, prim: Primitive, args: list, params: dict, out: Any,
                 parents: list, idx: int) -> None:
        self.prim = prim
        self.args = args
        self.params = params
        self.out = out
        self.parents = parents
        self.idx = idx

    @property
    def n_out(self) -> int:
        """How many values the node makes (its outputs are ``idx .. idx + n_out - 1``)."""
        return len(self.out) if self.prim.multiple_results else 1

    @property
    def outs(self) -> tuple:
        """The node's outputs as a tuple, for one result or several."""
        return self.out if self.prim.multiple_results else (self.out,)


def live_nodes(nodes: list[Node], outputs: Any) -> list[Node]:
    """The nodes that the value indices ``outputs`` depend on, in their original order.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> g = dp.make_graph(lambda x: (x * 2.0, x + 1.0)[0])(np.ones(2))
        >>> [n.prim.name for n in live_nodes(g.nodes, [g.outputs[0][1]])]
        ['mul']
    """
    needed = {o for o in outputs if o >= 0}
    live = []
    for node in reversed(nodes):
        idx = node.idx
        if idx in needed or (node.prim.multiple_results
                             and any(idx + k in needed for k in range(1, len(node.out)))):
            live.append(node)
            needed.update(p for p in node.parents if p >= 0)
    live.reverse()
    return live


class RecordedTracer(Tracer):
    """A value of a recording trace: its primal (or abstract value) and its index."""

    __slots__ = ("primal", "idx")

    def __init__(self, trace: Trace, primal: Any, idx: int) -> None:
        self._trace = trace
        self.primal = primal
        self.idx = idx


class RecordingTrace(Trace):
    """A trace that records nodes: the reverse trace and jit's. Inputs are values
    0 .. n_in - 1; node outputs are numbered after them in order of creation."""

    __slots__ = ("nodes", "n_in", "n_values")
    tracer_type: type = RecordedTracer

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.nodes: list[Node | None] = []
        self.n_in = 0
        self.n_values = 0

    def split(self, args: Sequence[Any]) -> tuple[list, list, int, bool]:
        """Sort a primitive's arguments into this trace's values and everything else.

        Returns the values one level down (the primal of this trace's tracers, the argument
        itself otherwise), the recorded index of each (-1 for one that is not this trace's),
        the bit mask of the arguments that are this trace's, and whether any value belongs to
        an enclosing transform (then the primitive is bound again, one level down).
        """
        values = []
        parents = []
        nested = False
        mask = 0
        bit = 1
        for a in args:
            if isinstance(a, Tracer):
                if a._trace is self:
                    p = a.primal
                    values.append(p)
                    parents.append(a.idx)
                    nested = nested or isinstance(p, Tracer)
                    mask |= bit
                    bit <<= 1
                    continue
                nested = True
            values.append(a)
            parents.append(-1)
            bit <<= 1
        return values, parents, mask, nested

    def new_input(self, value: Any) -> RecordedTracer:
        assert not self.nodes, "inputs are created before any node is recorded"
        # tracer_type(self, value, index), without a Python __init__ frame
        tracer = object.__new__(self.tracer_type)
        tracer._trace = self
        tracer.primal = value
        tracer.idx = self.n_values
        self.n_in += 1
        self.n_values += 1
        return tracer


def trace_inputs(args: Sequence[Any], static: set[int], new_input: Callable[[Any], Any],
                 keywords: bool = False) -> tuple[list, list[str]]:
    """Replace the input leaves of ``args`` by traced values, naming each after its path.

    ``new_input(leaf)`` returns the traced value for an input leaf, or None to keep the leaf
    (a static one). Arguments whose position is in ``static`` are kept whole. The names are
    what graphs print: ``x``, ``x['w']`` for one argument, ``arg1[0]`` for several; with
    ``keywords`` the last argument is a dict of keyword arguments, named by their keys.
    This is the one naming routine of make_graph and jit.

    Example:
        >>> trace_inputs(({"w": 1.0, "n": "tanh"},), set(), lambda leaf: None)[1]
        []
    """
    n_positional = len(args) - 1 if keywords else len(args)
    multi = n_positional - len([a for a in static if a < n_positional]) > 1
    call_args = list(args)
    names: list[str] = []
    for a, arg in enumerate(args):
        if a in static:
            continue
        with_paths, treedef = tree_flatten_with_path(arg)
        leaves = []
        for path, leaf in with_paths:
            new = new_input(leaf)
            if new is None:
                leaves.append(leaf)
                continue
            leaves.append(new)
            if a == n_positional:  # a keyword argument: named by its key
                names.append(keystr(path[:1])[2:-2] + keystr(path[1:]))
            else:
                names.append((f"arg{a}" if multi else "x") + keystr(path))
        call_args[a] = tree_unflatten(treedef, leaves)
    return call_args, names


def _aval(x: Any) -> str:
    shape = getattr(x, "shape", ())
    dtype = getattr(x, "dtype", None)
    dtype = np.result_type(type(x)) if dtype is None else dtype
    dims = ",".join(str(d) for d in shape)
    return f"{np.dtype(dtype).name}[{dims}]"


def _param_str(v: Any) -> str:
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return np.dtype(v).name
    return repr(v)


class Graph:
    """A recorded computation: named inputs, nodes in topological order, named outputs.

    ``str(graph)`` lists one node per line as ``name:type[shape] = prim[params](inputs)``.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> g = dp.make_graph(lambda x: dp.numpy.sin(x) * 2.0)(np.ones(3))
        >>> print(g)  # doctest: +NORMALIZE_WHITESPACE
        graph(x:float64[3]) {
          v1:float64[3] = sin(x)
          v2:float64[3] = mul(v1, 2.0)
          return v2
        }
    """

    def __init__(self, in_names: list[str], in_values: list[Any], nodes: list[Node],
                 n_in: int, outputs: list[tuple[str, int, Any]], out_tree: Any = None) -> None:
        self.in_names = in_names
        self.in_values = in_values
        self.nodes = nodes
        self.n_in = n_in
        # (name, index of the recorded value or -1 for a constant, value)
        self.outputs = outputs
        self.out_tree = out_tree  # the pytree structure of the outputs, where known

    @property
    def n_values(self) -> int:
        """One more than the largest value index (inputs and node outputs)."""
        top = self.n_in
        for node in self.nodes:
            top = max(top, node.idx + node.n_out)
        return top

    def replace(self, nodes: list[Node], outputs: list[tuple[str, int, Any]]) -> Graph:
        """The same inputs with new nodes and outputs (what passes return)."""
        return Graph(self.in_names, self.in_values, nodes, self.n_in, outputs, self.out_tree)

    def _name(self, idx: int) -> str:
        if idx < self.n_in:
            return self.in_names[idx]
        return f"v{idx - self.n_in + 1}"

    def __len__(self) -> int:
        return len(self.nodes)

    def primitive_names(self) -> list[str]:
        """Names of the primitives of the nodes, in order."""
        return [n.prim.name for n in self.nodes]

    def __str__(self) -> str:
        ins = ", ".join(f"{n}:{_aval(v)}" for n, v in zip(self.in_names, self.in_values))
        lines = [f"graph({ins}) {{"]
        for node in self.nodes:
            operands = []
            for p, a in zip(node.parents, node.args):
                if p >= 0:
                    operands.append(self._name(p))
                elif isinstance(a, Tracer) or getattr(a, "ndim", 0):
                    operands.append(f"const:{_aval(a)}")
                else:
                    operands.append(repr(a.item() if hasattr(a, "item") else a))
            params = ""
            if node.params:
                params = "[" + ", ".join(f"{k}={_param_str(v)}"
                                         for k, v in node.params.items()) + "]"
            outs = node.outs
            names = ", ".join(f"{self._name(node.idx + k)}:{_aval(o)}"
                              for k, o in enumerate(outs))
            lines.append(f"  {names} = {node.prim.name}{params}({', '.join(operands)})")
        outs = []
        for name, idx, value in self.outputs:
            ref = self._name(idx) if idx >= 0 else f"const:{_aval(value)}"
            outs.append(ref if name == "" else f"{name}={ref}")
        lines.append(f"  return {', '.join(outs)}")
        lines.append("}")
        return "\n".join(lines)

    __repr__ = __str__

    def to_dot(self, name: str = "diffprog") -> str:
        """The graph in Graphviz DOT: inputs as ellipses, primitives as boxes, outputs bold.

        Example:
            >>> import numpy as np, diffprog as dp
            >>> dot = dp.make_graph(lambda x: x * x)(np.ones(2)).to_dot()
            >>> dot.splitlines()[0]
            'digraph diffprog {'
        """
        def q(text: str) -> str:
            # labels contain no backslashes of ours except the DOT line break \n
            return '"' + text.replace('"', '\\"') + '"'

        lines = [f"digraph {name} {{", "  rankdir=TB;",
                 '  node [fontname="monospace", fontsize=10];']
        for i, (n, v) in enumerate(zip(self.in_names, self.in_values)):
            lines.append(f"  v{i} [shape=ellipse, label={q(f'{n}: {_aval(v)}')}];")
        for node in self.nodes:
            params = ", ".join(f"{k}={_param_str(v)}" for k, v in node.params.items())
            outs = node.outs
            label = node.prim.name + (f"[{params}]" if params else "") + "\\n" + ", ".join(
                _aval(o) for o in outs)
            lines.append(f"  n{node.idx} [shape=box, label={q(label)}];")
            for k in range(len(outs)):
                if node.prim.multiple_results:
                    lines.append(f"  v{node.idx + k} [shape=point];")
                    lines.append(f"  n{node.idx} -> v{node.idx + k};")
            for p in node.parents:
                if p >= 0:
                    lines.append(f"  {self._dot_ref(p)} -> n{node.idx};")
        for k, (oname, idx, _) in enumerate(self.outputs):
            label = oname or "out"
            lines.append(f"  o{k} [shape=ellipse, style=bold, label={q(label)}];")
            if idx >= 0:
                lines.append(f"  {self._dot_ref(idx)} -> o{k};")
        lines.append("}")
        return "\n".join(lines)

    def _dot_ref(self, idx: int) -> str:
        """The DOT node that holds value ``idx``: an input, a node, or a multi-result point."""
        if idx < self.n_in:
            return f"v{idx}"
        for node in self.nodes:
            if node.idx == idx and not node.prim.multiple_results:
                return f"n{idx}"
        return f"v{idx}"

    def render(self, path: str) -> str:
        """Write the graph as SVG or PNG (by the file's extension) with Graphviz's ``dot``.

        Raises RuntimeError with the install command when ``dot`` is not installed.
        """
        import shutil
        import subprocess
        fmt = path.rsplit(".", 1)[-1].lower() if "." in path else "svg"
        if fmt not in ("svg", "png", "pdf"):
            raise ValueError(f"render: unknown format {fmt!r}; use a .svg, .png or .pdf path")
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError(
                "render needs Graphviz's `dot` program, which is not installed. Install it "
                "(Debian/Ubuntu: `apt-get install graphviz`; macOS: `brew install graphviz`), "
                "or write graph.to_dot() to a file and render it elsewhere.")
        subprocess.run([dot, f"-T{fmt}", "-o", path], input=self.to_dot().encode(),
                       check=True, capture_output=True)
        return path


class Replay:
    """Recorded nodes prepared for evaluation on new inputs, many times (linearize, jacfwd).

    Each node runs through ``bind`` when a value of an enclosing transform is involved, so the
    replay is traced like any other code; otherwise its NumPy implementation runs directly.
    """

    __slots__ = ("steps", "outputs", "traced_consts")

    def __init__(self, nodes: list[Node], outputs: list[int]) -> None:
        live = live_nodes(nodes, outputs)
        self.steps = [(node.prim, tuple(node.args),
                       tuple((i, p) for i, p in enumerate(node.parents) if p >= 0),
                       node.params, node.idx, node.prim.multiple_results) for node in live]
        self.outputs = outputs
        self.traced_consts = any(isinstance(a, Tracer) for n in live for p, a in
                                 zip(n.parents, n.args) if p < 0)

    def __call__(self, inputs: dict[int, Any]) -> list[Any]:
        env = dict(inputs)
        direct = not self.traced_consts and not any(isinstance(v, Tracer)
                                                    for v in inputs.values())
        for prim, template, refs, params, idx, multiple in self.steps:
            args = list(template)
            for i, p in refs:
                args[i] = env[p]
            out = prim.impl(*args, **params) if direct else prim(*args, **params)
            if multiple:
                for k, o in enumerate(out):
                    env[idx + k] = o
            else:
                env[idx] = out
        return [env[o] for o in self.outputs]
