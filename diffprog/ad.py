"""Forward and reverse mode: the traces and the transforms built on them.

Forward mode (``jvp``) wraps inputs in tracers that carry (primal, tangent) and pushes tangents
through each primitive's jvp rule as the function runs, i.e. in forward topological order.

Reverse mode (``vjp``, ``grad``) records one :class:`~diffprog.graph.Node` per primitive while
the function runs, then pulls cotangents through the nodes in reverse order, summing partial
cotangents where a value fans out. The vjp rules are diffprog operations: on plain arrays they
are NumPy calls, and under an enclosing transform they are traced by it, which is what makes
``grad(grad(f))`` and every other nesting work.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import core
from .api_util import (
    as_primal,
    check_argnums,
    check_differentiable_arg,
    check_input_leaf,
    describe,
    is_differentiable,
    is_none,
    kind_of,
    shape_dtype,
    split_aux,
)
from .core import Trace, Tracer, bind, check_nans, instantiate_zeros
from .graph import Graph, Node, RecordedTracer, RecordingTrace, Replay, trace_inputs
from .prims.shape import concatenate, reshape, transpose
from .tree import keystr, tree_flatten, tree_flatten_with_path, tree_structure, tree_unflatten

__all__ = ["jvp", "vjp", "grad", "value_and_grad", "make_graph", "is_differentiable", "jacfwd",
           "jacrev", "hessian", "hvp", "linearize"]


# ----------------------------------------------------------------------------------------------
# Leaves


def _user_value(g: Any, like: Any) -> Any:
    """Shape a derivative like the input it belongs to (type of scalar, dtype, writability)."""
    if isinstance(g, Tracer):
        return g
    if type(like) is float:
        return np.float64(g)
    if isinstance(g, np.ndarray) and not g.flags.writeable:
        # Broadcast views are read-only; a user updating parameters in place needs a real array.
        g = g.copy()
    dtype = getattr(like, "dtype", None)
    if dtype is not None and getattr(g, "dtype", dtype) != dtype:
        g = np.asarray(g).astype(dtype)
    if isinstance(like, np.ndarray) and not isinstance(g, np.ndarray):
        g = np.asarray(g)
    return g


# ----------------------------------------------------------------------------------------------
# Forward mode


class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent")

    def __init__(self, trace: Trace, primal: Any, tangent: Any) -> None:
        self._trace = trace
        self.primal = primal
        self.tangent = tangent


def _jvp_tracer(trace: Trace, primal: Any, tangent: Any) -> JVPTracer:
    # JVPTracer(...) without a Python __init__ frame: one is made per forward-mode operation
    t = _new(JVPTracer)
    t._trace = trace
    t.primal = primal
    t.tangent = tangent
    return t


class JVPTrace(Trace):
    __slots__ = ()

    def process(self, prim, args, params):
        primals = []
        tangents = []
        nested = False  # does any value belong to an enclosing transform?
        for a in args:
            if isinstance(a, Tracer):
                if a._trace is self:
                    p = a.primal
                    primals.append(p)
                    tangents.append(a.tangent)
                    nested = nested or isinstance(p, Tracer)
                    continue
                nested = True
            primals.append(a)
            tangents.append(None)
        if nested and not prim.transparent:
            out = bind(prim, *primals, **params)
        else:
            out = prim.impl(*primals, **params) if params else prim.impl(*primals)
            if core.DEBUG_NANS:
                check_nans(prim, primals, out, "forward")
        if not prim.differentiable:
            return out
        tangent = prim.jvp_rule(tangents, out, primals, params)
        if core.DEBUG_NANS and tangent is not None:
            check_nans(prim, [t for t in tangents if t is not None] + primals, tangent,
                       "forward-mode tangent")
        if prim.multiple_results:
            if tangent is None:
                return out
            return tuple(o if t is None else _jvp_tracer(self, o, t)
                         for o, t in zip(out, tangent))
        if tangent is None:
            return out
        t = _new(JVPTracer)
        t._trace = self
        t.primal = out
        t.tangent = tangent
        return t


# ----------------------------------------------------------------------------------------------
# Reverse mode


class ReverseTracer(RecordedTracer):
    __slots__ = ()


_new = object.__new__
_ShapeOnly = core.ShapeOnly


class ReverseTrace(RecordingTrace):
    """Records the nodes of a function as it runs; ``backward`` sweeps them in reverse."""

    __slots__ = ("sites", "keep_all", "_last_shape")
    tracer_type = ReverseTracer

    def __init__(self, name: str, keep_all: bool = False, depth: int = 2) -> None:
        # Trace.__init__ and RecordingTrace.__init__ inlined (the same fields): every gradient
        # call makes one trace, and its fixed cost is part of every call's. ``depth``: the
        # first frame that may be the user's, for ``where`` (a caller that knows the frames
        # between it and the user are diffprog's skips them; 2 is the caller's caller)
        self.level = next(core._levels)
        self.alive = True
        self.name = name
        self.where = core._user_frame(depth)
        # Node, or for grad and vjp (not keep_all) the plain tuple of a Node's fields, or
        # process1/process2's flat records
        self.nodes: list = []  # never None entries: the consuming sweep pops up to a None
        self.n_in = 0
        self.n_values = 0
        self.keep_all = keep_all  # make_graph and linearize keep every value for inspection
        self.sites: dict[int, str] = {}  # value index -> user's source line (debug_nans)
        self._last_shape: core.ShapeOnly | None = None  # see _shape_only

    def process(self, prim, args, params):
        # Without params, one or two operands (most operations of a gradient, when they are
        # not reached through process1 and process2 directly): the straight-line paths below.
        if not params:
            n = len(args)
            if n == 1:
                a = args[0]
                if a.__class__ is ReverseTracer and a._trace is self:
                    return self.process1(prim, a)
            elif n == 2:
                return self.process2(prim, args[0], args[1])
        return self._process(prim, args, params)

    # The straight-line paths: the commonest operations of a gradient, a unary primitive on a
    # value of this trace (sin, exp, neg) and a binary one on values of this trace and
    # constants (x * y, x + 1.0), without params. They record the same as _process, in a flat
    # tuple: (prim, x, out, parent, idx) and (prim, x, y, out, parent_x, parent_y, idx), one
    # allocation where a Node's fields take three.

    def process1(self, prim, a):
        keep = prim.keep1
        if keep is None or self.keep_all or not self.alive or core.DEBUG_NANS:
            return self._general(prim, (a,))
        v = a.primal
        # under an enclosing transform the primitive is bound one level down (a transparent
        # one's impl is diffprog code that enclosing transforms trace op by op)
        out = bind(prim, v) if isinstance(v, Tracer) and not prim.transparent else prim.impl(v)
        k, keep_out = keep
        if k is not True:
            v = None if k is False else self._shape_only(v)
        idx = self.n_values
        self.n_values = idx + 1
        self.nodes.append((prim, v, out if keep_out else None, a.idx, idx))
        t = _new(ReverseTracer)  # ReverseTracer(self, out, idx) without an __init__ frame
        t._trace = self
        t.primal = out
        t.idx = idx
        return t

    def process2(self, prim, x, y):
        plans = prim.keep2
        if plans is None or self.keep_all or not self.alive or core.DEBUG_NANS:
            return self._general(prim, (x, y))
        if x.__class__ is ReverseTracer and x._trace is self:
            vx = x.primal
            px = x.idx
            mask = 1
        else:  # a constant, or a value of an enclosing transform
            vx = x
            px = -1
            mask = 0
        if y.__class__ is ReverseTracer and y._trace is self:
            vy = y.primal
            py = y.idx
            mask += 2
        elif mask:
            vy = y
            py = -1
        else:  # neither is this trace's: not a call of bind2's
            return self._general(prim, (x, y))
        if (isinstance(vx, Tracer) or isinstance(vy, Tracer)) and not prim.transparent:
            out = bind(prim, vx, vy)
        else:
            out = prim.impl(vx, vy)
        # keep only what the vjp rules of the differentiated operands read (of a linear
        # primitive's operand, its shape: core.SHAPE_ONLY)
        kx, ky, keep_out = plans[mask]
        if kx is not True:
            vx = None if kx is False else self._shape_only(vx)
        if ky is not True:
            vy = None if ky is False else self._shape_only(vy)
        idx = self.n_values
        self.n_values = idx + 1
        self.nodes.append((prim, vx, vy, out if keep_out else None, px, py, idx))
        t = _new(ReverseTracer)
        t._trace = self
        t.primal = out
        t.idx = idx
        return t

    def _general(self, prim, args):
        # bind checks that the trace is alive; process1 and process2 may be called without it
        # (diffprog.numpy), so they check it here
        if not self.alive:
            raise core._escaped(self)
        return self._process(prim, args, {})

    def _process(self, prim, args, params):
        n = len(args)
        # Sort the arguments into this trace's values and the rest (RecordingTrace.split,
        # inlined for one and two operands: operations with params, make_graph and linearize,
        # debug_nans and a few others take this general path).
        if n == 1:
            a = args[0]
            if type(a) is ReverseTracer and a._trace is self:
                v = a.primal
                values = (v,)
                parents = (a.idx,)
                mask = 1
                nested = isinstance(v, Tracer)
            else:
                values, parents, mask, nested = self.split(args)
        elif n == 2:
            a, b = args
            if type(a) is ReverseTracer and a._trace is self:
                va = a.primal
                pa = a.idx
                mask = 1
                nested = isinstance(va, Tracer)
            elif isinstance(a, Tracer):
                va, pa, mask, nested = a, -1, 0, True
            else:
                va, pa, mask, nested = a, -1, 0, False
            if type(b) is ReverseTracer and b._trace is self:
                vb = b.primal
                pb = b.idx
                mask |= 2
                nested = nested or isinstance(vb, Tracer)
            else:
                vb, pb = b, -1
                nested = nested or isinstance(b, Tracer)
            values = (va, vb)
            parents = (pa, pb)
        else:
            values, parents, mask, nested = self.split(args)
        # Without an enclosing transform the NumPy implementation runs directly. A transparent
        # primitive's impl is diffprog code that enclosing transforms trace op by op.
        if nested and not prim.transparent:
            out = bind(prim, *values, **params)
        else:
            out = prim.impl(*values, **params) if params else prim.impl(*values)
            if core.DEBUG_NANS:
                check_nans(prim, values, out, "forward")
        if not prim.differentiable:
            return out
        idx = self.n_values
        plan = prim.keep_plan
        if plan is not None and not self.keep_all:
            # keep only what the vjp rules of the differentiated arguments read (of a linear
            # primitive's operand, its shape: core.SHAPE_ONLY)
            keep, keep_out = plan[mask]
            if keep is not None:
                if n == 2:  # unrolled: `x * 1.0`, `x + y`
                    k = keep[0]
                    if k is not True:
                        values = (None if k is False else self._shape_only(va), vb)
                    if len(keep) > 1:  # a variadic plan (_KeepRest) keeps what it does not list
                        k = keep[1]
                        if k is not True:
                            values = (values[0], None if k is False else self._shape_only(vb))
                else:
                    values = tuple([v if k is True else None if k is False else
                                    self._shape_only(v) for v, k in zip(values, keep)])
            # A plain tuple with Node's fields: only backward reads it (a Node costs a copy)
            self.nodes.append((prim, values, params, out if keep_out else None, parents, idx))
        elif self.keep_all:  # make_graph, linearize: Graph's nodes
            self.nodes.append(Node(prim, values, params, out, parents, idx))
        else:
            self.nodes.append((prim, values, params, out, parents, idx))
        if core.DEBUG_NANS:
            self.sites[idx] = core._user_frame(1)  # for errors in the backward pass
        if prim.multiple_results:
            self.n_values += len(out)
            # Outputs that are not float (an int count, a flag) carry no derivative.
            return tuple(ReverseTracer(self, o, idx + i) if is_differentiable(o) else o
                         for i, o in enumerate(out))
        self.n_values = idx + 1
        t = _new(ReverseTracer)  # ReverseTracer(self, out, idx) without an __init__ frame
        t._trace = self
        t.primal = out
        t.idx = idx
        return t

    def _shape_only(self, v: Any) -> core.ShapeOnly:
        """``core.shape_only(v)``; consecutive operands of one shape and dtype (a chain of
        elementwise operations) share one: it is never modified, and holds no value."""
        last = self._last_shape
        shape = v.shape
        if last is not None and last.shape == shape and last.dtype is v.dtype:
            return last
        s = _new(_ShapeOnly)
        s.shape = shape
        s.dtype = v.dtype
        self._last_shape = s
        return s

    def backward(self, seeds: Sequence[tuple[int, Any]], consume: bool) -> list[Any]:
        """Cotangents of the inputs (``None`` where zero) for the output cotangents ``seeds``.

        Nodes are visited in reverse recording order, which is a reverse topological order.
        A node whose output got no cotangent is off the path to the outputs and is skipped.
        With ``consume`` each node is removed from the trace as it is reached, so memory falls
        as the sweep goes (the trace is not swept again).
        """
        nodes = self.nodes
        if self.keep_all:  # Graph's nodes: as the plain tuples of their fields
            nodes = [(n.prim, n.args, n.params, n.out, n.parents, n.idx) for n in nodes]
        cts: list[Any] = [None] * self.n_values
        for idx, ct in seeds:
            prev = cts[idx]
            cts[idx] = ct if prev is None else prev + ct
        if consume:  # pop the nodes, so that each is released once used
            nodes.insert(0, None)  # where popping stops
            order = iter(nodes.pop, None)
        else:
            order = reversed(nodes)
        for node in order:
            n = len(node)
            if n == 5:  # process1's record: a unary primitive, a per-argument rule
                prim, x, out, p, idx = node
                ct = cts[idx]
                if ct is None:
                    continue
                cts[idx] = None
                g = prim.vjp[0](ct, out, x)
                if core.DEBUG_NANS:
                    self._check_backward(prim, (x,), idx, ct, g)
                prev = cts[p]
                cts[p] = g if prev is None else prev + g
                continue
            if n == 7:  # process2's record: a binary primitive, per-argument rules
                prim, x, y, out, px, py, idx = node
                ct = cts[idx]
                if ct is None:
                    continue
                cts[idx] = None
                if px >= 0:
                    g = prim.vjp[0](ct, out, x, y)
                    if core.DEBUG_NANS:
                        self._check_backward(prim, (x, y), idx, ct, g)
                    prev = cts[px]
                    cts[px] = g if prev is None else prev + g
                if py >= 0:
                    g = prim.vjp[1](ct, out, x, y)
                    if core.DEBUG_NANS:
                        self._check_backward(prim, (x, y), idx, ct, g)
                    prev = cts[py]
                    cts[py] = g if prev is None else prev + g
                continue
            prim, args, params, out, parents, idx = node
            if prim.multiple_results:
                k = len(out)
                ct = cts[idx:idx + k]
                if all(c is None for c in ct):
                    continue
                cts[idx:idx + k] = [None] * k
                # A rule sees every output's cotangent; the unused ones are zeros (None, for
                # a rule that takes symbolic zeros: nothing allocated)
                if prim.zero_cotangents != "symbolic":
                    ct = tuple(instantiate_zeros(o) if c is None else c
                               for c, o in zip(ct, out))
                else:
                    ct = tuple(ct)
            else:
                ct = cts[idx]
                if ct is None:
                    continue
                cts[idx] = None
            if prim.vjp_per_arg:
                rules = prim.vjp
                j = 0
                for p in parents:
                    if p >= 0:
                        g = (rules[j](ct, out, *args, **params) if params
                             else rules[j](ct, out, *args))
                        if core.DEBUG_NANS:
                            self._check_backward(prim, args, idx, ct, g)
                        prev = cts[p]
                        cts[p] = g if prev is None else prev + g
                    j += 1
            else:
                if prim.vjp is None:
                    raise NotImplementedError(
                        f"primitive {prim.name!r} has no vjp rule yet, so reverse mode cannot "
                        "differentiate through it; use jvp (forward mode) instead")
                gs = prim.vjp(ct, out, *args, **params)
                if core.DEBUG_NANS:
                    self._check_backward(prim, args, idx, ct,
                                         tuple(g for g in gs if g is not None))
                for p, g in zip(parents, gs):
                    if p >= 0 and g is not None:
                        prev = cts[p]
                        cts[p] = g if prev is None else prev + g
        return cts[:self.n_in]

    def _check_backward(self, prim: core.Primitive, args: Sequence[Any], idx: int, ct: Any,
                        g: Any) -> None:
        cts = list(ct) if isinstance(ct, tuple) else [ct]
        check_nans(prim, cts + list(args), g, "backward",
                   self.sites.get(idx, "<unknown: enable debug_nans before the call>"))


# ----------------------------------------------------------------------------------------------
# Argument handling shared by the transforms


def _wrap(trace: Trace, leaves: list, make: Callable[[Any], Tracer]) -> tuple[list, list[int]]:
    """Replace the differentiable leaves by tracers; returns the new leaves and their positions."""
    wrapped = list(leaves)
    positions = []
    for i, leaf in enumerate(leaves):
        check_input_leaf(leaf, trace.name)
        if is_differentiable(leaf):
            wrapped[i] = make(as_primal(leaf))
            positions.append(i)
    return wrapped, positions


def _unwrap_out(trace: Trace, x: Any) -> Any:
    return x.primal if isinstance(x, Tracer) and x._trace is trace else x


def _aux_values(trace: Trace, aux: Any) -> Any:
    leaves, treedef = tree_flatten(aux)
    return tree_unflatten(treedef, [_unwrap_out(trace, x) for x in leaves])


# ----------------------------------------------------------------------------------------------
# jvp


def jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> tuple:
    """Forward mode: ``f(*primals)`` and its directional derivative along ``tangents``.

    ``primals`` and ``tangents`` are sequences of the same pytree structure; a tangent has the
    shape and dtype of its primal. The tangent of a static (non-float) leaf is ignored: pass
    ``None`` or the leaf itself.

    Returns ``(out, tangent_out)``, or ``(out, tangent_out, aux)`` with ``has_aux``.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> out, t = dp.jvp(dp.numpy.sin, (0.0,), (2.0,))
        >>> float(out), float(t)
        (0.0, 2.0)
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(
            "jvp: primals and tangents must be tuples (or lists) of arguments, one entry per "
            f"positional argument of f; got {type(primals).__name__} and "
            f"{type(tangents).__name__}. For one argument write jvp(f, (x,), (v,))")
    p_leaves, p_def = tree_flatten(tuple(primals), is_leaf=is_none)
    t_leaves, t_def = tree_flatten(tuple(tangents), is_leaf=is_none)
    if p_def != t_def:
        raise ValueError(
            "jvp: tangents must have the same structure as primals; primals have structure "
            f"{p_def} but tangents have {t_def}")
    paths = [keystr(p) for p, _ in tree_flatten_with_path(tuple(primals), is_leaf=is_none)[0]]
    trace = JVPTrace("jvp")
    leaves = list(p_leaves)
    for i, (p, t) in enumerate(zip(p_leaves, t_leaves)):
        check_input_leaf(p, "jvp")
        if not is_differentiable(p):
            continue
        if t is None:
            raise TypeError(f"jvp: the tangent for primals{paths[i]} is None, but that primal "
                            f"is a float ({describe(p)}); pass a tangent of the same shape and "
                            "dtype (zeros for no perturbation)")
        ps, pd = shape_dtype(p)
        ts, td = shape_dtype(t)
        if ps != ts or (pd != td and not (type(p) is float and td == np.float64)):
            raise ValueError(
                f"jvp: the tangent for primals{paths[i]} has {describe(t)} but its primal has "
                f"{describe(p)}; a tangent must have its primal's shape and dtype")
        leaves[i] = JVPTracer(trace, as_primal(p), as_primal(t))
    try:
        result = f(*tree_unflatten(p_def, leaves))
    finally:
        trace.alive = False
    out, aux = split_aux(result, has_aux, "jvp")
    o_leaves, o_def = tree_flatten(out)
    outs, touts = [], []
    for o in o_leaves:
        if isinstance(o, Tracer) and o._trace is trace:
            outs.append(o.primal)
            touts.append(o.tangent)
        else:
            outs.append(o)
            touts.append(instantiate_zeros(o) if is_differentiable(o) else None)
    out_tree = tree_unflatten(o_def, outs)
    tangent_tree = tree_unflatten(o_def, touts)
    if has_aux:
        return out_tree, tangent_tree, _aux_values(trace, aux)
    return out_tree, tangent_tree


# ----------------------------------------------------------------------------------------------
# vjp, grad


class _Recording:
    """A function run under a reverse trace: what the transforms need to sweep it."""

    __slots__ = ("trace", "treedefs", "positions", "in_leaves", "out", "aux")


def _record(f: Callable, args: tuple, argnums: tuple[int, ...], name: str,
            has_aux: bool) -> _Recording:
    trace = ReverseTrace(name)
    call_args = list(args)
    rec = _Recording()
    rec.trace = trace
    rec.treedefs, rec.positions, rec.in_leaves = [], [], []
    for a in argnums:
        leaves, treedef = tree_flatten(args[a])
        wrapped, positions = _wrap(trace, leaves, trace.new_input)
        call_args[a] = tree_unflatten(treedef, wrapped)
        rec.treedefs.append(treedef)
        rec.positions.append(positions)
        rec.in_leaves.append(leaves)
    try:
        result = f(*call_args)
    finally:
        trace.alive = False
    rec.out, rec.aux = split_aux(result, has_aux, name)
    return rec


def _input_cotangents(rec: _Recording, cts: list[Any]) -> list[Any]:
    """Per differentiated argument, the cotangent pytree (zeros where the output is constant)."""
    results = []
    k = 0
    for treedef, positions, leaves in zip(rec.treedefs, rec.positions, rec.in_leaves):
        grads: list[Any] = [None] * len(leaves)
        for pos in positions:
            g = cts[k]
            k += 1
            leaf = leaves[pos]
            grads[pos] = instantiate_zeros(as_primal(leaf)) if g is None else _user_value(g, leaf)
        results.append(tree_unflatten(treedef, grads))
    return results


def vjp(f: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """Reverse mode: ``f(*primals)`` and a function pulling output cotangents back to inputs.

    Returns ``(out, vjp_fn)`` (or ``(out, vjp_fn, aux)``); ``vjp_fn(cotangent)`` takes a
    cotangent with the structure, shapes and dtypes of ``out`` and returns a tuple with one
    cotangent per primal, each shaped like it. ``vjp_fn`` may be called many times.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> out, vjp_fn = dp.vjp(lambda x: x * 3.0, np.ones(2))
        >>> vjp_fn(np.array([1.0, 2.0]))
        (array([3., 6.]),)
    """
    rec = _record(f, primals, tuple(range(len(primals))), "vjp", has_aux)
    trace = rec.trace
    o_leaves, o_def = tree_flatten(rec.out)
    out_tree = tree_unflatten(o_def, [_unwrap_out(trace, o) for o in o_leaves])
    # None is a leaf when matching cotangents, so None can stand for a static output's.
    with_paths, o_def_none = tree_flatten_with_path(rec.out, is_leaf=is_none)

    def vjp_fn(cotangent: Any) -> tuple:
        c_leaves, c_def = tree_flatten(cotangent, is_leaf=is_none)
        if c_def != o_def_none:
            raise ValueError(
                "vjp_fn: the cotangent must have the structure of the function's output: "
                f"expected {o_def_none}, got {c_def}")
        seeds = []
        for (path, o), c in zip(with_paths, c_leaves):
            if not is_differentiable(o):
                continue  # a static output (an int, a string): its cotangent is ignored
            os_, od = shape_dtype(_unwrap_out(trace, o))
            if c is None:
                raise TypeError(
                    f"vjp_fn: the cotangent for out{keystr(path)} is None, but that output is "
                    f"a float array {od}{list(os_)}; pass zeros of its shape and dtype for no "
                    "contribution")
            cs, cd = shape_dtype(c)
            if cs != os_ or (cd != od and not (type(c) is float and od == np.float64)):
                raise ValueError(
                    f"vjp_fn: the cotangent for out{keystr(path)} has {describe(c)} but that "
                    f"output has {od}{list(os_)}; pass a cotangent of the output's shape and "
                    "dtype")
            if isinstance(o, Tracer) and o._trace is trace:
                seeds.append((o.idx, as_primal(c)))
        cts = trace.backward(seeds, consume=False) if seeds else [None] * trace.n_in
        return tuple(_input_cotangents(rec, cts))

    if has_aux:
        return out_tree, vjp_fn, _aux_values(trace, rec.aux)
    return out_tree, vjp_fn


def _read_only_one(dtype: np.dtype) -> np.ndarray:
    one = np.ones((), dtype)
    one.flags.writeable = False
    return one


# The seed of a float64 gradient, made once: read-only, so no rule or custom bwd can change it;
# _user_value copies a read-only cotangent before handing it to the user.
_ONE_F64 = _read_only_one(np.dtype(np.float64))
# Leaves that are their own pytree and need no input check: the fast path of _grad_core
_PLAIN_FLOAT = (float, np.float64, np.float32)
_ndarray = np.ndarray


def _grad_core(f: Callable, args: tuple, argnums: int | Sequence[int], has_aux: bool,
               fname: str, holomorphic: bool = False) -> tuple[Any, Any, Any]:
    # The common case in fewer calls: argnums=0 of one float leaf (a Python or NumPy float, a
    # plain float ndarray), no aux. Same checks and results as the general path below.
    if type(argnums) is int and argnums == 0 and not has_aux and not holomorphic and args:
        x = args[0]
        tx = type(x)
        if tx in _PLAIN_FLOAT or (tx is _ndarray and x.dtype.kind == "f"):
            # (where: grad_f and value_and_grad's function call this one directly, and their
            # caller is the first frame that may be the user's)
            trace = ReverseTrace(fname, False, 4)
            t = trace.new_input(np.float64(x) if tx is float else x)
            try:
                out = f(t, *args[1:]) if len(args) > 1 else f(t)
            finally:
                trace.alive = False
            if out.__class__ is ReverseTracer and out._trace is trace:
                value = out.primal
                if value.__class__ is np.float64:
                    seed = _ONE_F64
                else:
                    seed = np.ones(*_check_scalar_output(value, fname))
                g = trace.backward([(out.idx, seed)], consume=True)[0]
            else:
                value = _unwrap_out(trace, out)
                _check_scalar_output(value, fname)
                g = None
            if g is None:
                g = instantiate_zeros(as_primal(x))
            elif g.__class__ is not tx or tx is _ndarray:  # a NumPy scalar of x's type is final
                g = _user_value(g, x)
            return value, g, None
    nums = check_argnums(argnums, len(args), fname)
    for a in nums:
        check_differentiable_arg(args[a], a, fname)
    if holomorphic:
        _check_complex_inputs([args[a] for a in nums], fname, holomorphic)
    rec = _record(f, args, nums, fname, has_aux)
    trace = rec.trace
    out = rec.out
    value = _unwrap_out(trace, out)
    # The seed is 1 in the output's dtype: with holomorphic=True it is 1 + 0j, and the vjp of a
    # holomorphic f pulls it back to f'(z) (JAX's vjp does not conjugate).
    shape, dtype = _check_scalar_output(value, fname, holomorphic)
    if isinstance(out, Tracer) and out._trace is trace:
        cts = trace.backward([(out.idx, np.ones(shape, dtype))], consume=True)
    else:
        cts = [None] * trace.n_in
    grads = _input_cotangents(rec, cts)
    g = grads[0] if isinstance(argnums, int) else tuple(grads)
    aux = _aux_values(trace, rec.aux) if has_aux else None
    return value, g, aux


def _check_scalar_output(value: Any, fname: str,
                         holomorphic: bool = False) -> tuple[tuple, np.dtype]:
    if not isinstance(value, (np.ndarray, np.generic, Tracer, float, int)):
        raise TypeError(
            f"{fname} requires the function to return a scalar float, but it returned "
            f"{kind_of(value)}; return a single float (e.g. a sum or mean), or use vjp "
            "for pytree outputs")
    shape, dtype = shape_dtype(value)
    if shape != ():
        raise TypeError(
            f"{fname} requires a scalar output, but the function returned an array of shape "
            f"{shape}; reduce it (e.g. with .sum()), or use vjp or jacrev for a non-scalar "
            "output")
    kind = np.dtype(dtype).kind
    if holomorphic:
        if kind != "c":
            raise TypeError(
                f"{fname} with holomorphic=True requires a complex output, but the function "
                f"returned dtype {dtype}; drop holomorphic=True for a real-valued function")
        return shape, dtype
    if kind == "c":
        raise TypeError(
            f"{fname} requires a real float output, but the function returned dtype {dtype}; "
            f"for the complex derivative f'(z) of a holomorphic function pass "
            f"{fname}(f, holomorphic=True); for complex outputs otherwise take the real part or "
            "abs, or use vjp")
    if kind != "f":
        raise TypeError(
            f"{fname} requires a real float output, but the function returned dtype {dtype}, "
            "which is piecewise constant (its derivative is zero or undefined): return the "
            "float quantity the comparison or count was computed from instead")
    return shape, dtype


def grad(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
         holomorphic: bool = False) -> Callable:
    """The gradient of a scalar function, shaped like the argument(s) it differentiates.

    Non-float leaves inside the differentiated arguments (ints, strings, other objects) are
    static and get ``None``. With a tuple ``argnums`` a tuple of gradients is returned; with
    ``has_aux`` the function returns ``(output, aux)`` and the result is ``(gradient, aux)``.

    Complex inputs follow JAX: for a real ``f`` of ``z = x + iy`` the gradient is
    ``df/dx - 1j * df/dy``, the conjugate of the steepest-ascent direction (so a descent step
    is ``z - lr * conj(g)``). With ``holomorphic=True`` the inputs and the output must be
    complex and the result is ``f'(z)``; a complex output without it raises.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> dp.grad(lambda p: (p["w"] ** 2).sum() * p["scale"])({"w": np.ones(2), "scale": 3.0})
        {'w': array([6., 6.]), 'scale': np.float64(2.0)}
        >>> complex(dp.grad(lambda z: abs(z) ** 2)(3 + 4j))
        (6-8j)
        >>> complex(dp.grad(lambda z: z ** 3, holomorphic=True)(1j))
        (-3+0j)
    """
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        _, g, aux = _grad_core(functools.partial(f, **kwargs) if kwargs else f, args, argnums,
                               has_aux, "grad", holomorphic)
        return (g, aux) if has_aux else g

    grad_f.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    grad_f.__doc__ = f"The gradient of {getattr(f, '__name__', 'f')}."
    return grad_f


def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0,
                   has_aux: bool = False, holomorphic: bool = False) -> Callable:
    """Like :func:`grad`, but returns ``(value, gradient)`` (``((value, aux), gradient)``).

    Example:
        >>> import diffprog as dp
        >>> value, g = dp.value_and_grad(lambda x: x * x)(3.0)
        >>> float(value), float(g)
        (9.0, 6.0)
    """
    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple:
        value, g, aux = _grad_core(_with_kwargs(f, kwargs), args, argnums, has_aux,
                                   "value_and_grad", holomorphic)
        return ((value, aux), g) if has_aux else (value, g)

    value_and_grad_f.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return value_and_grad_f


# ----------------------------------------------------------------------------------------------
# make_graph


def make_graph(f: Callable, static_argnums: int | Sequence[int] = ()) -> Callable[..., Graph]:
    """Trace ``f`` on example arguments and return its computation :class:`Graph`.

    Float leaves of the non-static arguments are the graph's inputs, named after their pytree
    paths. Applied to ``grad(f)`` it shows the extended graph: forward and backward nodes.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> g = dp.make_graph(lambda x: x * x)(np.ones(2))
        >>> g.primitive_names()
        ['mul']
    """
    static = {static_argnums} if isinstance(static_argnums, int) else set(static_argnums)

    def graph_f(*args: Any) -> Graph:
        trace = ReverseTrace("make_graph", keep_all=True)
        values: list[Any] = []

        def new_input(leaf: Any) -> Any:
            check_input_leaf(leaf, "make_graph")
            if not is_differentiable(leaf):
                return None
            values.append(as_primal(leaf))
            return trace.new_input(values[-1])

        call_args, names = trace_inputs(args, static, new_input)
        try:
            out = f(*call_args)
        finally:
            trace.alive = False
        outputs = []
        for path, leaf in tree_flatten_with_path(out)[0]:
            idx = leaf.idx if isinstance(leaf, Tracer) and leaf._trace is trace else -1
            outputs.append(("out" + keystr(path) if path else "", idx,
                            _unwrap_out(trace, leaf)))
        return Graph(names, values, trace.nodes, trace.n_in, outputs)

    return graph_f


# ----------------------------------------------------------------------------------------------
# Jacobians, Hessians, linearize


def _with_kwargs(f: Callable, kwargs: dict) -> Callable:
    """``f`` with keyword arguments fixed: they are never differentiated (as in JAX), only
    passed through (traced as constants by enclosing transforms)."""
    return functools.partial(f, **kwargs) if kwargs else f


def _partial(f: Callable, args: tuple, nums: tuple[int, ...]) -> Callable:
    """``f`` as a function of the arguments at ``nums`` only, the others fixed."""
    def partial_f(*diff_args: Any) -> Any:
        call_args = list(args)
        for i, a in zip(nums, diff_args):
            call_args[i] = a
        return f(*call_args)
    return partial_f


def _aux_checked(f: Callable, has_aux: bool, fname: str) -> Callable:
    """``f``, with its (output, aux) pair checked under the user's transform's name."""
    if not has_aux:
        return f

    def checked(*args: Any) -> Any:
        return split_aux(f(*args), True, fname)
    return checked


def _stack(columns: list, axis: int) -> Any:
    if any(isinstance(c, Tracer) for c in columns):
        # np.stack with primitives: each column gains a size-1 axis, then they are joined
        shape = tuple(np.shape(columns[0]))
        axis %= len(shape) + 1
        grown = shape[:axis] + (1,) + shape[axis:]
        return concatenate(*[reshape(c, shape=grown) for c in columns], axis=axis)
    return np.stack([np.asarray(c) for c in columns], axis=axis)


def _nest(out_leaves: list, out_def: Any, in_def: Any, in_leaves: list, single: bool,
          block: Callable[[int, int], Any]) -> Any:
    """The Jacobian pytree: the output structure with, at each output leaf, a tree of the input
    structure whose leaves are ``block(out_index, in_index)`` (None for static leaves)."""
    rows = []
    for k, o in enumerate(out_leaves):
        if not is_differentiable(o):
            rows.append(None)
            continue
        cols = [block(k, i) if is_differentiable(x) else None for i, x in enumerate(in_leaves)]
        tree = tree_unflatten(in_def, cols)
        rows.append(tree[0] if single else tree)
    return tree_unflatten(out_def, rows)


def _basis(leaf: Any, j: int) -> np.ndarray:
    shape, dtype = shape_dtype(leaf)
    e = np.zeros(math.prod(shape), dtype)
    e[j] = 1
    return e.reshape(shape)


def jacfwd(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable:
    """The Jacobian by forward mode: one jvp per input entry (pick it for few inputs), all
    computed at once as one jvp batched by :func:`~diffprog.batching.vmap` over the basis.

    The result nests the output structure over the input structure; each leaf has shape
    ``out_leaf.shape + in_leaf.shape``, as in JAX. With a tuple ``argnums`` the inner level is
    a tuple over those arguments. Complex inputs need ``holomorphic=True`` (then the outputs
    must be complex too, and the entries are ``f'(z)``), as in JAX: a real basis would give
    only the derivative along the real axis. Real inputs may have complex outputs.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> dp.jacfwd(lambda x: x ** 2)(np.array([1.0, 2.0]))
        array([[2., 0.],
               [0., 4.]])
    """
    def jac_f(*args: Any, **kwargs: Any) -> Any:
        nums = check_argnums(argnums, len(args), "jacfwd")
        f_kw = _with_kwargs(f, kwargs)
        primals = tuple(args[i] for i in nums)
        in_leaves, in_def = tree_flatten(primals, is_leaf=is_none)
        _check_complex_inputs(in_leaves, "jacfwd", holomorphic)
        # One linearization, then one replay of the recorded linear graph per input entry:
        # f is not run again for every column.
        fun = _aux_checked(_partial(f_kw, args, nums), has_aux, "jacfwd")
        out, f_jvp, aux = _linearize(fun, primals, has_aux)
        out_leaves, out_def = tree_flatten(out, is_leaf=is_none)
        if holomorphic:
            _check_complex_outputs(out_leaves, "jacfwd")
        batched = _batched_basis(in_leaves, lambda ts: f_jvp(list(ts)))
        if batched is not None:  # one batched jvp over the basis of every input entry
            cols, offsets = batched

            def block(k: int, i: int) -> Any:
                shape = shape_dtype(out_leaves[k])[0] + shape_dtype(in_leaves[i])[0]
                start, n = offsets[i]
                if not n:
                    return np.zeros(shape, shape_dtype(out_leaves[k])[1])
                return _reshape(_rows_last(cols[k][start:start + n]), shape)

            jac = _nest(out_leaves, out_def, in_def, in_leaves, isinstance(argnums, int), block)
            return (jac, aux) if has_aux else jac
        columns: dict[int, list] = {}
        for i, leaf in enumerate(in_leaves):
            if not is_differentiable(leaf):
                continue
            columns[i] = []
            for j in range(math.prod(shape_dtype(leaf)[0])):
                tangents = [(_basis(x, j) if n == i else instantiate_zeros(x))
                            if is_differentiable(x) else x for n, x in enumerate(in_leaves)]
                columns[i].append(f_jvp(tangents))
        out_leaves, out_def = tree_flatten(out, is_leaf=is_none)

        def block(k: int, i: int) -> Any:
            shape = shape_dtype(out_leaves[k])[0] + shape_dtype(in_leaves[i])[0]
            col = [c[k] for c in columns[i]]
            if not col:
                return np.zeros(shape, shape_dtype(out_leaves[k])[1])
            return _reshape(_stack(col, axis=-1), shape)

        jac = _nest(out_leaves, out_def, in_def, in_leaves, isinstance(argnums, int), block)
        return (jac, aux) if has_aux else jac

    return jac_f


def jacrev(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable:
    """The Jacobian by reverse mode: one trace of ``f``, then one vjp per output entry (pick it
    for few outputs), all pulled back at once by a vjp batched with
    :func:`~diffprog.batching.vmap`. Same result layout as :func:`jacfwd`.

    As in JAX, inputs and outputs must be real, or all complex with ``holomorphic=True`` (the
    entries are then ``f'(z)``): a real basis cotangent would drop imaginary parts.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> dp.jacrev(lambda x: x[0] * x)(np.array([1.0, 2.0]))
        array([[2., 0.],
               [2., 1.]])
    """
    def jac_f(*args: Any, **kwargs: Any) -> Any:
        nums = check_argnums(argnums, len(args), "jacrev")
        f_kw = _with_kwargs(f, kwargs)
        primals = tuple(args[i] for i in nums)
        _check_complex_inputs(tree_flatten(primals, is_leaf=is_none)[0], "jacrev", holomorphic)
        res = vjp(_aux_checked(_partial(f_kw, args, nums), has_aux, "jacrev"), *primals,
                  has_aux=has_aux)
        out, vjp_fn = res[0], res[1]
        in_leaves, in_def = tree_flatten(primals, is_leaf=is_none)
        out_leaves, out_def = tree_flatten(out, is_leaf=is_none)
        if holomorphic:
            _check_complex_outputs(out_leaves, "jacrev")
        else:
            _refuse_complex_outputs(out_leaves)

        def pull(cts: list) -> list:
            return tree_flatten(vjp_fn(tree_unflatten(out_def, list(cts))), is_leaf=is_none)[0]

        batched = _batched_basis(out_leaves, pull)
        if batched is not None:  # one batched vjp over the basis of every output entry
            grads, offsets = batched

            def block(k: int, i: int) -> Any:
                shape = shape_dtype(out_leaves[k])[0] + shape_dtype(in_leaves[i])[0]
                start, n = offsets[k]
                if not n:
                    return np.zeros(shape, shape_dtype(in_leaves[i])[1])
                return _reshape(grads[i][start:start + n], shape)

            jac = _nest(out_leaves, out_def, in_def, in_leaves, isinstance(argnums, int), block)
            return (jac, res[2]) if has_aux else jac
        rows: dict[int, list] = {}
        for k, o in enumerate(out_leaves):
            if not is_differentiable(o):
                continue
            rows[k] = []
            for j in range(math.prod(shape_dtype(o)[0])):
                ct = [(_basis(x, j) if n == k else instantiate_zeros(x)) if is_differentiable(x)
                      else x for n, x in enumerate(out_leaves)]
                grads = vjp_fn(tree_unflatten(out_def, ct))
                rows[k].append(tree_flatten(grads, is_leaf=is_none)[0])

        def block(k: int, i: int) -> Any:
            shape = shape_dtype(out_leaves[k])[0] + shape_dtype(in_leaves[i])[0]
            row = [r[i] for r in rows[k]]
            if not row:
                return np.zeros(shape, shape_dtype(in_leaves[i])[1])
            return _reshape(_stack(row, axis=0), shape)

        jac = _nest(out_leaves, out_def, in_def, in_leaves, isinstance(argnums, int), block)
        return (jac, res[2]) if has_aux else jac

    return jac_f


def _batched_basis(leaves: list, linear: Callable[[list], list]) -> tuple | None:
    """``linear`` (a jvp or vjp over lists of leaves) applied at once, by :func:`vmap`, to the
    standard basis of every entry of the differentiable ``leaves`` (the others passed as
    they are). Returns the results (each with the basis along axis 0) and, per leaf, the
    ``(start, count)`` of its entries along that axis; ``None`` when there is no entry, or
    when a primitive on the way has no batching rule (the callers then loop over entries).
    """
    offsets: dict[int, tuple[int, int]] = {}
    total = 0
    for i, leaf in enumerate(leaves):
        if is_differentiable(leaf):
            n = math.prod(shape_dtype(leaf)[0])
            offsets[i] = (total, n)
            total += n
    if not total:
        return None
    basis = list(leaves)
    axes: list = [None] * len(leaves)
    for i, (start, n) in offsets.items():
        shape, dtype = shape_dtype(leaves[i])
        e = np.zeros((total, n), dtype)
        e[start:start + n] = np.eye(n, dtype=dtype)
        basis[i] = e.reshape((total,) + tuple(shape))
        axes[i] = 0
    from .batching import NoBatchingRule, vmap  # here: `import diffprog` need not load it
    try:
        results = vmap(linear, in_axes=(axes,))(basis)
    except NoBatchingRule:
        return None
    return results, offsets


def _rows_last(x: Any) -> Any:
    """Axis 0 moved to the end."""
    n = len(np.shape(x))
    if isinstance(x, Tracer):
        return transpose(x, perm=tuple(range(1, n)) + (0,))
    return np.moveaxis(x, 0, -1)


def _refuse_complex_outputs(out_leaves: list) -> None:
    """jacrev pulls back one real basis cotangent per output entry, which sees only the real
    part of a complex output: refuse, as JAX does, instead of dropping the imaginary part."""
    if any(is_differentiable(o) and shape_dtype(o)[1].kind == "c" for o in out_leaves):
        raise TypeError(
            "jacrev: the function has complex outputs, and one reverse sweep per output entry "
            "would drop their imaginary parts; use jacfwd (one forward sweep per input entry "
            "handles complex outputs of real inputs), pass holomorphic=True for a holomorphic "
            "function of complex inputs, or return the real and imaginary parts (dnp.real, "
            "dnp.imag) as separate outputs")


def _check_complex_inputs(leaves: list, fname: str, holomorphic: bool) -> None:
    """JAX's rule for complex inputs: with ``holomorphic=True`` every differentiated leaf is
    complex; without it, jacfwd and jacrev refuse complex leaves, whose Jacobian over the reals
    is 2x2 per entry and cannot be one complex number (a real basis would silently give the
    derivative along the real axis only). grad takes complex inputs without it (the gradient
    of a real function), so it calls this only for ``holomorphic=True``."""
    for x in tree_flatten(leaves, is_leaf=is_none)[0]:
        if not is_differentiable(x):
            continue
        dtype = shape_dtype(x)[1]
        if holomorphic and dtype.kind != "c":
            raise TypeError(
                f"{fname} with holomorphic=True requires complex inputs, but got dtype {dtype}; "
                "pass complex values (e.g. x + 0j), or drop holomorphic=True")
        if not holomorphic and dtype.kind == "c":
            raise TypeError(
                f"{fname} requires real inputs without holomorphic=True, but got dtype {dtype}; "
                f"for a holomorphic function pass {fname}(f, holomorphic=True) (entries "
                "f'(z)); for a non-holomorphic one use grad, jvp or vjp, or pass the real and "
                "imaginary parts as separate real inputs")


def _check_complex_outputs(leaves: list, fname: str) -> None:
    """With ``holomorphic=True`` every differentiable output must be complex, as in JAX."""
    for o in leaves:
        if is_differentiable(o) and shape_dtype(o)[1].kind != "c":
            raise TypeError(
                f"{fname} with holomorphic=True requires complex outputs, but the function "
                f"returned dtype {shape_dtype(o)[1]}; drop holomorphic=True for a real output")


def _reshape(x: Any, shape: tuple) -> Any:
    if isinstance(x, Tracer):
        return reshape(x, shape=tuple(shape))
    return np.reshape(x, shape)


def hessian(f: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
            holomorphic: bool = False) -> Callable:
    """The Hessian: ``jacfwd(jacrev(f))``. For dict inputs the result is a dict of dicts.

    Complex inputs need ``holomorphic=True`` (then the entries are ``f''(z)``), as in JAX.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> dp.hessian(lambda x: (x ** 3).sum())(np.array([1.0, 2.0]))
        array([[ 6.,  0.],
               [ 0., 12.]])
        >>> complex(dp.hessian(lambda z: z ** 3, holomorphic=True)(2j))
        12j
    """
    return jacfwd(jacrev(f, argnums, has_aux, holomorphic), argnums, has_aux, holomorphic)


def hvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple:
    """Hessian-vector product by forward over reverse mode, never forming the Hessian.

    ``primals`` and ``tangents`` are tuples of arguments; returns one product per argument
    (a tuple, like ``vjp_fn``).

    Example:
        >>> import numpy as np, diffprog as dp
        >>> dp.hvp(lambda x: (x ** 3).sum(), (np.array([1.0, 2.0]),), (np.ones(2),))
        (array([ 6., 12.]),)
    """
    if not isinstance(primals, (tuple, list)):
        raise TypeError("hvp: primals and tangents must be tuples of arguments, e.g. "
                        "hvp(f, (x,), (v,))")
    g = grad(f, argnums=tuple(range(len(primals))))
    return jvp(g, tuple(primals), tuple(tangents))[1]


def linearize(f: Callable, *primals: Any) -> tuple[Any, Callable]:
    """``f(*primals)`` and its linearization: a function from tangents to output tangents.

    The jvp is recorded once as a linear graph; ``f_jvp(*tangents)`` evaluates that graph for
    new tangents without running ``f`` again.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> out, f_jvp = dp.linearize(dp.numpy.sin, 0.0)
        >>> float(f_jvp(2.0))
        2.0
    """
    out, f_jvp_flat, _ = _linearize(f, primals, False)
    in_leaves, in_def = tree_flatten(primals, is_leaf=is_none)
    t_def = tree_structure(out, is_leaf=is_none)

    def f_jvp(*tangents: Any) -> Any:
        leaves, treedef = tree_flatten(tangents, is_leaf=is_none)
        if treedef != in_def:
            raise ValueError(f"linearize: f_jvp takes tangents with the structure of the "
                             f"primals, {in_def}, got {treedef}")
        for n, (x, t) in enumerate(zip(in_leaves, leaves)):
            if is_differentiable(x) and shape_dtype(t) != shape_dtype(as_primal(x)) and \
                    not (type(t) is float and shape_dtype(x)[1] == np.float64):
                raise ValueError(f"linearize: tangent {n} has {describe(t)} but its primal "
                                 f"has {describe(x)}; a tangent must have its primal's shape "
                                 "and dtype")
        return tree_unflatten(t_def, f_jvp_flat(leaves))

    return out, f_jvp


def _linearize(f: Callable, primals: tuple, has_aux: bool) -> tuple[Any, Callable, Any]:
    """``(out, f_jvp, aux)``: f_jvp maps the list of tangent leaves (aligned with the primals'
    leaves, None as a leaf) to the list of output tangent leaves by replaying the linear graph.
    """
    # A trace below the jvp's records what the jvp rules do to the tangents: the linear graph.
    recorder = ReverseTrace("linearize", keep_all=True)
    in_leaves, in_def = tree_flatten(primals, is_leaf=is_none)
    tangents = [recorder.new_input(instantiate_zeros(as_primal(x))) if is_differentiable(x) else x
                for x in in_leaves]
    try:
        res = jvp(f, primals, tree_unflatten(in_def, tangents), has_aux=has_aux)
    finally:
        recorder.alive = False
    out, t_out = res[0], res[1]
    aux = res[2] if has_aux else None
    t_leaves = tree_flatten(t_out, is_leaf=is_none)[0]
    out_refs = [t.idx if isinstance(t, Tracer) and t._trace is recorder else -1
                for t in t_leaves]
    run = Replay(recorder.nodes, [r for r in out_refs if r >= 0])
    diff = [n for n, x in enumerate(in_leaves) if is_differentiable(x)]

    def f_jvp(leaves: list) -> list:
        inputs = {k: as_primal(leaves[n]) for k, n in enumerate(diff)}
        values = run(inputs)
        it = iter(values)
        return [next(it) if r >= 0 else (None if t is None else instantiate_zeros(t))
                for r, t in zip(out_refs, t_leaves)]

    return out, f_jvp, aux
