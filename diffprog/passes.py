"""Graph passes: graph -> graph, each small and separately testable.

- :func:`dce` drops nodes whose outputs no output depends on.
- :func:`cse` merges nodes that apply the same primitive with the same params to the same inputs.
- :func:`fold_constants` evaluates nodes whose inputs are all constants.
- :func:`simplify` applies the algebraic identities that primitives declare as fields:
  ``identity`` (x * 1, x + 0), ``involution`` (-(-x)) and ``collapse`` (reshape of reshape).

Passes never look at a primitive's name: what they may do is a field on the primitive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .graph import Graph, Node, live_nodes

__all__ = ["dce", "cse", "fold_constants", "simplify", "optimize", "const_key"]


class _Const:
    """A value that a pass proved constant."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _apply(node: Node, subst: dict[int, Any]) -> Node:
    """``node`` with its inputs renamed by ``subst`` (a new Node only if something changed)."""
    if not any(p in subst for p in node.parents):
        return node
    args, parents = list(node.args), list(node.parents)
    for i, p in enumerate(parents):
        if p in subst:
            new = subst[p]
            if isinstance(new, _Const):
                args[i], parents[i] = new.value, -1
            else:
                parents[i] = new
    return Node(node.prim, args, node.params, node.out, parents, node.idx)


def _outputs(graph: Graph, subst: dict[int, Any]) -> list:
    outs = []
    for name, idx, value in graph.outputs:
        new = subst.get(idx, idx) if idx >= 0 else idx
        if isinstance(new, _Const):
            outs.append((name, -1, new.value))
        else:
            outs.append((name, new, value))
    return outs


def dce(graph: Graph) -> Graph:
    """Dead-code elimination: keep only the nodes the outputs depend on. A node of a
    primitive with a ``prune_outputs`` field whose outputs are not all used is rebuilt
    without them (a loop without its unused outputs and the body work computing them)."""
    if not any(n.prim.prune_outputs is not None for n in graph.nodes):
        kept = live_nodes(graph.nodes, [idx for _, idx, _ in graph.outputs])
        return graph.replace(kept, list(graph.outputs))
    needed = {idx for _, idx, _ in graph.outputs if idx >= 0}
    live = []
    subst: dict[int, Any] = {}  # a pruned node's outputs move down to close the gaps
    for node in reversed(graph.nodes):
        idx, n_out = node.idx, node.n_out
        used = [idx + k in needed for k in range(n_out)]
        if not any(used):
            continue
        pruned = None
        if node.prim.prune_outputs is not None and not all(used):
            pruned = node.prim.prune_outputs(list(node.args), dict(node.params), used)
        if pruned is not None:
            operands, params, kept_out = pruned
            node = Node(node.prim, [node.args[i] for i in operands], params,
                        tuple(node.out[k] for k in kept_out),
                        [node.parents[i] for i in operands], idx)
            for j, k in enumerate(kept_out):
                if j != k:
                    subst[idx + k] = idx + j
        live.append(node)
        needed.update(p for p in node.parents if p >= 0)
    live.reverse()
    return graph.replace([_apply(n, subst) for n in live], _outputs(graph, subst))


def const_key(a: Any) -> Any:
    """A key under which two constants are interchangeable: same type, dtype and bits.

    ``==`` is not enough: ``0.0 == -0.0``, ``True == 1``, ``float32(2) == float64(2)``, and a
    NaN equals nothing. Arrays are keyed by their bytes when small, else by identity.

    Example:
        >>> const_key(0.0) == const_key(-0.0), const_key(1) == const_key(True)
        (False, False)
    """
    if isinstance(a, (float, complex, np.generic)):
        arr = np.asarray(a)
        return (type(a), arr.dtype.str, arr.tobytes())
    if isinstance(a, (int, bool, str, type(None))):
        return (type(a), a)
    if isinstance(a, tuple):
        return (tuple, tuple(const_key(e) for e in a))
    if isinstance(a, np.ndarray) and a.size <= 64:
        return (np.ndarray, a.dtype.str, a.shape, a.tobytes())
    return ("id", id(a))  # large arrays: the same object only


def _params_key(params: dict) -> Any:
    try:
        key = tuple(sorted(params.items()))
        hash(key)
        return key
    except TypeError:
        return None  # unhashable params (index arrays): never merged


def cse(graph: Graph) -> Graph:
    """Common-subexpression elimination: the same primitive, params and inputs once."""
    seen: dict[Any, Node] = {}
    subst: dict[int, Any] = {}
    nodes = []
    for node in graph.nodes:
        node = _apply(node, subst)
        pkey = _params_key(node.params)
        if pkey is not None:
            key = (node.prim, pkey, tuple(p if p >= 0 else const_key(a)
                                          for p, a in zip(node.parents, node.args)))
            prev = seen.get(key)
            if prev is not None:
                for k in range(node.n_out):
                    subst[node.idx + k] = prev.idx + k
                continue
            seen[key] = node
        nodes.append(node)
    return graph.replace(nodes, _outputs(graph, subst))


def fold_constants(graph: Graph) -> Graph:
    """Evaluate the nodes whose inputs are all constants; their outputs become constants."""
    subst: dict[int, Any] = {}
    nodes = []
    for node in graph.nodes:
        node = _apply(node, subst)
        if node.parents and all(p < 0 for p in node.parents) and not node.prim.composite:
            with np.errstate(all="ignore"):
                out = node.prim.impl(*node.args, **node.params)
            outs = out if node.prim.multiple_results else (out,)
            for k, o in enumerate(outs):
                subst[node.idx + k] = _Const(o)
            continue
        nodes.append(node)
    return graph.replace(nodes, _outputs(graph, subst))


def _is_identity(a: Any, value: Any, out_dtype: np.dtype) -> bool:
    """Is the constant ``a`` the identity element ``value`` for a result of ``out_dtype``?

    Signs of zeros count: ``x + (-0.0)`` is ``x`` for every float ``x`` but ``x + 0.0`` is not
    (``-0.0 + 0.0 = 0.0``), so add declares ``-0.0`` and sub ``0.0``. Complex results are left
    alone: ``x * 1.0`` is not ``x`` when a part of ``x`` is infinite.
    """
    if out_dtype.kind not in "fiub":
        return False
    try:
        arr = np.asarray(a)
        if not np.all(arr == value):
            return False
        if out_dtype.kind == "f":
            # the constant as the operation sees it: an int or bool 0 becomes +0.0
            return bool(np.all(np.signbit(arr.astype(out_dtype)) == np.signbit(value)))
        return True
    except (TypeError, ValueError):
        return False


def simplify(graph: Graph) -> Graph:
    """Algebraic simplification with the identities primitives declare.

    ``prim.identity = {i: c}``: when argument i is the constant c everywhere, the result is
    the other argument (if that already has the result's shape and dtype). ``involution``:
    f(f(x)) = x. ``collapse``: f(f(x, p), q) = f(x, q).
    """
    producer: dict[int, Node] = {}
    subst: dict[int, Any] = {}
    nodes = []
    for node in graph.nodes:
        node = _apply(node, subst)
        prim = node.prim
        identity = getattr(prim, "identity", None)
        if identity and len(node.args) == 2:
            replaced = False
            for i, c in identity.items():
                other = 1 - i
                if node.parents[i] < 0 and _is_identity(node.args[i], c,
                                                        np.result_type(node.out)):
                    o_val = node.args[other]
                    if (np.shape(o_val) == np.shape(node.out)
                            and np.result_type(o_val) == np.result_type(node.out)):
                        p = node.parents[other]
                        subst[node.idx] = p if p >= 0 else _Const(o_val)
                        replaced = True
                        break
            if replaced:
                continue
        if len(node.parents) == 1 and node.parents[0] >= 0:
            src = producer.get(node.parents[0])
            if src is not None and src.prim is prim:
                if getattr(prim, "involution", False):
                    p = src.parents[0]
                    subst[node.idx] = p if p >= 0 else _Const(src.args[0])
                    continue
                if getattr(prim, "collapse", False):
                    node = Node(prim, [src.args[0]], node.params, node.out, [src.parents[0]],
                                node.idx)
        nodes.append(node)
        if not prim.multiple_results:
            producer[node.idx] = node
    return graph.replace(nodes, _outputs(graph, subst))


def optimize(graph: Graph) -> Graph:
    """The pipeline jit runs: simplify, fold, CSE, then DCE."""
    return dce(cse(fold_constants(simplify(graph))))
