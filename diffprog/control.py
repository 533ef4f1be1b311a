"""Control flow as primitives: ``cond``, ``switch``, ``scan``, ``fori_loop``, ``while_loop``.

Each construct is one primitive whose params hold its body (or branches) as a
:class:`~diffprog.graph.Graph` traced once with abstract values (:class:`Body`), so a scan of
10 steps and one of 10,000 record the same nodes, and printing the graph shows the body nested.
Values the body closes over that belong to an enclosing transform are *lifted*: the body trace
turns each into an extra input of the body graph and an extra operand of the primitive, so
every transform sees them as ordinary operands.

With no enclosing transform (plain NumPy values, nothing traced) the constructs run the user's
Python functions directly, as a Python loop would: no tracing on that path.

Derivatives are control flow again, built from the body graphs with diffprog's own transforms:

- jvp of ``scan``/``while_loop``/``cond`` is the same construct over the jvp of the body;
- vjp of ``scan`` is a reverse ``scan`` of the body's vjp over the carries the forward scan
  saved (``save``: one per step, or one per segment of ``checkpoint_every`` steps, each
  segment recomputed by a nested forward scan in the backward pass: memory O(sqrt(n)));
- vjp of ``cond`` is a ``cond`` of the branches' vjps (only the taken branch runs);
- vjp of ``while_loop`` (which JAX does not have) records the trip count at run time; the
  backward pass is a ``_dyn_call`` node, a primitive whose function receives the trip count as
  a concrete int when it runs and differentiates a ``scan`` of that many guarded steps
  (``where(cond(c), body(c), c)``), so it works under ``jit`` with data-dependent trip counts;
- vmap batches the body with ``vmap``; a batched predicate runs both branches (``cond``) or
  keeps looping while any example's predicate holds, each example frozen by ``where`` once its
  own predicate fails (``while_loop``).

Under ``jit`` the executor runs the loop itself: the primitive's ``impl`` calls the body graph
compiled once (optimized by :func:`diffprog.passes.optimize`, run by
:func:`diffprog.kernels.pyrun.compile_steps`), so data-dependent trip counts work. On the
whole-program tier (:mod:`diffprog.kernels.wholeprog`) ``scan`` and ``while_loop`` give loop
plans (their ``program_form``), and the whole loop runs in the compiled kernel.

Example:
    >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
    >>> def cumsum(xs):
    ...     return dp.scan(lambda c, x: (c + x, c + x), 0.0, xs)
    >>> cumsum(np.arange(4.0))
    (np.float64(6.0), array([0., 1., 3., 6.]))
    >>> dp.grad(lambda xs: cumsum(xs)[0] ** 2)(np.ones(3))
    array([6., 6., 6.])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import ad, core
from .api_util import is_differentiable
from .batching import BatchTrace, vmap
from .core import Primitive, ShapedArray, Tracer, _escaped, instantiate_zeros
from .graph import Graph, Node
from .jit import JitTrace, JitTracer
from .prims.shape import bring_front, to_front
from .tree import keystr, tree_flatten, tree_flatten_with_path, tree_unflatten

__all__ = ["cond", "switch", "scan", "fori_loop", "while_loop", "Body"]


# ----------------------------------------------------------------------------------------------
# Bodies: a function traced once into a graph, closures lifted to inputs


def _substituted(base: Sequence[Any], positions: Sequence[int], values: Sequence[Any]) -> list:
    """A copy of ``base`` with ``values`` at ``positions``: a body's operands with the
    differentiated ones replaced by the values a transform passes in."""
    out = list(base)
    for i, v in zip(positions, values):
        out[i] = v
    return out


def _aval(x: Any) -> ShapedArray:
    if isinstance(x, (np.ndarray, np.generic, Tracer, ShapedArray)):
        return ShapedArray(x.shape, x.dtype)
    return ShapedArray(np.shape(x), np.result_type(x))


def _as_array(x: Any) -> Any:
    """A carry or operand leaf as an array (Python scalars get NumPy's default dtypes, so the
    carry's dtype is fixed before the body runs)."""
    return x if isinstance(x, (np.ndarray, np.generic, Tracer)) else np.asarray(x)


class _BodyTrace(JitTrace):
    """jit's abstract trace, except that a value of an enclosing transform is lifted to a new
    input of the body (recorded in ``lifted``) instead of being refused, and that a function
    with a custom rule (custom_jvp, custom_vjp, checkpoint: a ``composite`` primitive) is
    recorded as one node instead of inlined, so the transforms of the body use its rule."""

    __slots__ = ("lifted", "_by_id", "subst")
    # custom._is_traced binds custom-rule primitives under a trace that differentiates: a body
    # is differentiated later, by the rules that bind its nodes again (Body.eval)
    differentiates = True

    def __init__(self) -> None:
        super().__init__()
        self.name = "control-flow body"
        self.lifted: list[tuple[int, Any]] = []  # (placeholder index, enclosing tracer)
        self._by_id: dict[int, JitTracer] = {}
        # value index -> input index: a value the body recomputes that an input already holds
        # (the vjp of a scan step recomputes the step's outputs, which the forward scan kept)
        self.subst: dict[int, int] = {}

    def reuse(self, value: Any, same: Any) -> None:
        """Read ``same`` (an input of this body) wherever ``value`` (computed by a node of
        this body, equal to it) is used: dead code then drops the recomputation."""
        if (isinstance(value, JitTracer) and value._trace is self and isinstance(same, JitTracer)
                and same._trace is self and same.idx < self.n_in and value.idx >= self.n_in
                and all(value.idx != idx for idx, _ in self.lifted)):
            self.subst[value.idx] = same.idx

    def lift(self, a: Tracer) -> JitTracer:
        if not a._trace.alive:
            raise _escaped(a._trace)
        t = self._by_id.get(id(a))
        if t is None:
            idx = self.n_values
            self.n_values += 1
            t = JitTracer(self, ShapedArray(a.shape, a.dtype), idx)
            self.lifted.append((idx, a))  # keeps ``a`` alive, so its id stays unique
            self._by_id[id(a)] = t
        return t

    def process(self, prim, args, params):
        if prim.composite:
            out = self._composite(prim, args, params)
            if out is not None:
                return out
            return prim.impl(*args, **params)  # closes over traced values: inlined
        if any(isinstance(a, Tracer) and a._trace is not self for a in args):
            args = [self.lift(a) if isinstance(a, Tracer) and a._trace is not self else a
                    for a in args]
        return super().process(prim, args, params)

    def _composite(self, prim: Primitive, args: Sequence, params: dict) -> tuple | None:
        """Record a custom-rule primitive as one node. Its output avals come from tracing its
        ``impl`` into a scratch body (which also fills the ``call`` param bind_flat reads).
        None when that ``impl`` closes over a traced value (a node could not run it on plain
        values): then the caller inlines it, as jit does."""
        scratch = _ScratchTrace()
        ins = [scratch.new_input(_aval(a)) if isinstance(a, Tracer) else a for a in args]
        try:
            outs = prim.impl(*ins, **params)
        finally:
            scratch.alive = False
        if scratch.lifted or any(isinstance(o, Tracer) and o._trace is not scratch
                                 for o in outs):
            return None
        avals = tuple(o.primal if isinstance(o, Tracer) else _aval(o) for o in outs)
        args = [self.lift(a) if isinstance(a, Tracer) and a._trace is not self else a
                for a in args]
        values, parents, _, _ = self.split(args)
        idx = self.n_values
        self.nodes.append(Node(prim, values, params, avals, parents, idx))
        self.n_values += len(avals)
        return tuple(JitTracer(self, o, idx + k) for k, o in enumerate(avals))


class _ScratchTrace(_BodyTrace):
    """A body trace that inlines custom rules, as jit does: what ``_BodyTrace._composite``
    traces a custom rule's ``impl`` with to learn its output avals (a ``custom_vjp`` whose
    ``fwd`` calls the function itself would otherwise recurse)."""

    __slots__ = ()
    differentiates = False

    def process(self, prim, args, params):
        if prim.composite:
            return prim.impl(*args, **params)
        return super().process(prim, args, params)


class Body:
    """A traced body: its graph (inputs: the lifted values, then the body's own inputs), the
    enclosing values it closed over (``consts``, passed as operands), and the output avals.

    ``run(leaves)`` runs the graph compiled once; ``eval(leaves)`` binds its nodes again (so
    an enclosing transform traces them: what the derivative and batching rules use). Prints as
    the nested graph.
    """

    __slots__ = ("graph", "consts", "out_avals", "out_tree", "_run", "_optimized")

    def __init__(self, graph: Graph, consts: list, out_tree: Any) -> None:
        self.graph = graph
        self.consts = consts
        self.out_tree = out_tree
        self.out_avals = [_aval(v) for _, _, v in graph.outputs]
        self._run: Callable | None = None
        self._optimized: Graph | None = None

    @property
    def n_consts(self) -> int:
        return len(self.consts)

    @property
    def optimized(self) -> Graph:
        if self._optimized is None:
            from .passes import optimize
            self._optimized = optimize(self.graph)
        return self._optimized

    def run(self, leaves: list) -> list:
        """The body on concrete values, through its compiled program."""
        run = self._run
        if run is None:
            from .kernels.pyrun import compile_steps
            from .kernels.steps import NodeStep
            g = self.optimized
            run = self._run = compile_steps(g, [NodeStep(n) for n in g.nodes])
        return run(leaves)

    def eval(self, leaves: Sequence) -> list:
        """The body's nodes bound again on ``leaves`` (traced by whatever encloses the call)."""
        g = self.optimized
        env: dict[int, Any] = dict(enumerate(leaves))
        for node in g.nodes:
            args = [env[p] if p >= 0 else a for p, a in zip(node.parents, node.args)]
            params = node.params
            if node.prim is scan_p and _reverse_traced(args):
                # a scan nested in a body was traced knowing of no reverse trace: bound under
                # one now, it saves its carries and marks what it will be differentiated in
                params = {**params, "save": params["save"] or 1, "diff": _diff_mask(args)}
            out = core.bind(node.prim, *args, **params)
            if node.prim.multiple_results:
                for k, o in enumerate(out):
                    env[node.idx + k] = o
            else:
                env[node.idx] = out
        return [env[i] if i >= 0 else v for _, i, v in g.outputs]

    def __repr__(self) -> str:
        return str(self.graph).replace("\n", "\n    ")


def _trace_body(fn: Callable[[list], list], in_avals: list, names: list[str]) -> Body:
    """Trace ``fn`` (a list of leaves to a list of leaves) once on abstract inputs."""
    trace = _BodyTrace()
    ins = [trace.new_input(a) for a in in_avals]
    try:
        outs = list(fn(ins))
        out_refs = []
        for o in outs:
            if isinstance(o, Tracer) and o._trace is not trace:
                o = trace.lift(o)  # the body returns an enclosing value unchanged
            out_refs.append(o)
    finally:
        trace.alive = False
    # renumber: lifted values first, then the body's inputs, then the nodes' outputs
    n_lift = len(trace.lifted)
    new: dict[int, int] = {idx: k for k, (idx, _) in enumerate(trace.lifted)}
    for i in range(trace.n_in):
        new[i] = n_lift + i
    top = n_lift + trace.n_in
    nodes = []
    sub = trace.subst
    for node in trace.nodes:
        for k in range(node.n_out):
            new[node.idx + k] = top + k
        nodes.append(Node(node.prim, node.args, node.params, node.out,
                          [new[sub.get(p, p)] if p >= 0 else -1 for p in node.parents], top))
        top += node.n_out
    outputs = []
    for o in out_refs:
        if isinstance(o, Tracer):
            outputs.append(("", new[sub.get(o.idx, o.idx)], o.primal))
        else:
            outputs.append(("", -1, o))
    consts = [a for _, a in trace.lifted]
    in_names = [f"c{k}" for k in range(n_lift)] + names
    graph = Graph(in_names, [_aval(a) for a in consts] + list(in_avals), nodes,
                  n_lift + trace.n_in, outputs)
    return Body(graph, consts, None)


def _prune_body(body: Body, keep_outs: list[int], removable: set[int]) -> tuple[Body, list[int]]:
    """``body`` with only the outputs at ``keep_outs`` (dead code dropped) and without the
    inputs at positions in ``removable`` that no kept output needs; the new body and the
    positions of the inputs it keeps (so of the operands the node keeps)."""
    from .passes import dce
    g = body.graph
    g2 = dce(g.replace(list(g.nodes), [g.outputs[k] for k in keep_outs]))
    n_in = g.n_in
    used = {p for n in g2.nodes for p in n.parents if 0 <= p < n_in}
    used.update(i for _, i, _ in g2.outputs if 0 <= i < n_in)
    keep_in = [i for i in range(n_in) if i not in removable or i in used]
    removed = n_in - len(keep_in)
    new = {old: k for k, old in enumerate(keep_in)}

    def m(p: int) -> int:
        return p if p < 0 else new[p] if p < n_in else p - removed

    nodes = [Node(n.prim, n.args, n.params, n.out, [m(p) for p in n.parents], n.idx - removed)
             for n in g2.nodes]
    outputs = [(name, m(i), v) for name, i, v in g2.outputs]
    graph = Graph([g.in_names[i] for i in keep_in], [g.in_values[i] for i in keep_in], nodes,
                  len(keep_in), outputs)
    return Body(graph, [body.consts[i] for i in keep_in if i < body.n_consts],
                body.out_tree), keep_in


def _traced_leaves(leaves: Sequence) -> bool:
    return any(isinstance(x, Tracer) for x in leaves)


def _reverse_traced(leaves: Sequence) -> bool:
    """Is some leaf (at any depth of nested tracers) a value of a reverse trace? Then the
    forward loop saves its carries for the vjp."""
    stack = [x for x in leaves if isinstance(x, Tracer)]
    while stack:
        x = stack.pop()
        trace = x._trace
        if isinstance(trace, ad.ReverseTrace) or not isinstance(
                trace, (ad.JVPTrace, BatchTrace, JitTrace)):
            return True  # a reverse trace, or a trace of unknown kind: assume it may be one
        for name in ("primal", "tangent", "val"):
            v = getattr(x, name, None)
            if isinstance(v, Tracer):
                stack.append(v)
    return False


def _diff_mask(ops: Sequence) -> tuple:
    """Per operand: is it (at some depth) a value of a reverse trace? Only those can be asked
    for a cotangent, so the vjp rules compute no others (a closed-over weight of jit is an
    operand, but no cotangent of it is wanted under grad of another argument)."""
    return tuple(_reverse_traced((o,)) for o in ops)


def _float(x: Any) -> bool:
    return is_differentiable(x) or (isinstance(x, ShapedArray) and x.dtype.kind in "fc")


def _describe(a: Any) -> str:
    return f"{np.dtype(a.dtype).name}{list(a.shape)}"


def _check_same(what: str, got: list, want: list, paths: list[str], fix: str) -> None:
    for path, g, w in zip(paths, got, want):
        if tuple(g.shape) != tuple(w.shape) or np.dtype(g.dtype) != np.dtype(w.dtype):
            raise TypeError(f"{what}{path} is {_describe(g)} but {_describe(w)} is expected; "
                            f"{fix}")


def _paths(tree_value: Any) -> list[str]:
    return [keystr(p) for p, _ in tree_flatten_with_path(tree_value)[0]]


def _cast_consts(outs: list, want: list) -> list:
    """Constant (untraced) outputs of a body take the dtype expected of them (a body returning
    ``0.0`` for a float32 carry)."""
    res = []
    for o, w in zip(outs, want):
        if not isinstance(o, Tracer) and np.shape(o) == tuple(w.shape):
            o = np.asarray(o, dtype=w.dtype)
        res.append(o)
    return res


# ----------------------------------------------------------------------------------------------
# scan


def _scan_impl(*ops: Any, body: Body, n_consts: int, n_carry: int, length: int, reverse: bool,
               save: int, unroll: int, diff: tuple) -> tuple:
    consts = list(ops[:n_consts])
    carry = list(ops[n_consts:n_consts + n_carry])
    xs = ops[n_consts + n_carry:]
    y_avals = body.out_avals[n_carry:]
    ys = [np.empty((length,) + a.shape, a.dtype) for a in y_avals]
    # the saved carries are written into their stacks as the loop goes (a list of the step's
    # arrays, stacked at the end, would hold every carry twice at the peak)
    saved = [np.empty((_n_saved(length, save),) + a.shape, a.dtype)
             for a in body.out_avals[:n_carry]] if save else []
    run = body.run
    for t in range(length):
        i = length - 1 - t if reverse else t
        if save and t % save == 0:
            for k, c in enumerate(carry):
                saved[k][t // save] = c
        out = run(consts + carry + [x[i] for x in xs])
        carry = out[:n_carry]
        for k, y in enumerate(out[n_carry:]):
            ys[k][i] = y
    carry = [np.asarray(c, dtype=a.dtype) if np.result_type(c) != a.dtype else c
             for c, a in zip(carry, body.out_avals)]
    result = tuple(carry) + tuple(ys)
    if save:
        if save == 1:  # and the last carry: the carries leaving the steps are saved[1:]
            for k, c in enumerate(carry):
                saved[k][length] = c
        result += tuple(saved)
    return result


def _scan_abstract(*ops: Any, body: Body, n_consts: int, n_carry: int, length: int,
                   reverse: bool, save: int, unroll: int, diff: tuple) -> tuple:
    avals = body.out_avals
    out = [ShapedArray(a.shape, a.dtype) for a in avals[:n_carry]]
    out += [ShapedArray((length,) + a.shape, a.dtype) for a in avals[n_carry:]]
    if save:
        out += [ShapedArray((_n_saved(length, save),) + a.shape, a.dtype)
                for a in avals[:n_carry]]
    return tuple(out)


def _n_saved(length: int, save: int) -> int:
    """How many carries a scan saves: every one and the last (``save`` 1), or the one
    entering each segment of ``save`` steps."""
    return length + 1 if save == 1 else -(-length // save)


def _scan_bind(step: Callable[[list, list], tuple[list, list]], init: list, xs: list,
               length: int, reverse: bool = False, save: int | None = None, unroll: int = 1,
               what: str = "scan", carry_paths: list[str] | None = None,
               checkpoint_every: int | None = None) -> tuple:
    """Trace ``step(carry, x) -> (carry, y)`` (flat lists) and bind the scan primitive.
    Returns ``(carry, ys, saved)`` (lists of leaves). ``save`` None: decided from the operands
    (lifted closures included): every step's carry (or one per ``checkpoint_every`` steps)
    when one of them is reverse-traced, else none."""
    init = [_as_array(c) for c in init]
    n_carry = len(init)
    c_avals = [_aval(c) for c in init]
    x_avals = [ShapedArray(np.shape(x)[1:], x.dtype) for x in xs]
    n_y: list[int] = []

    def flat(ins: list) -> list:
        c_out, y = step(ins[:n_carry], ins[n_carry:])
        c_out = _cast_consts(list(c_out), c_avals)
        if len(c_out) != n_carry:
            raise TypeError(f"{what}: the body returned {len(c_out)} carry leaves but the "
                            f"init has {n_carry}")
        _check_same(f"{what}: the body's output carry", [_aval(c) for c in c_out], c_avals,
                    carry_paths or [f"[{k}]" for k in range(n_carry)],
                    "the carry must keep its shape and dtype from step to step (cast it, "
                    "e.g. with .astype, or give init the dtype the body computes)")
        n_y.append(len(y))
        return list(c_out) + list(y)

    body = _trace_body(flat, c_avals + x_avals,
                       [f"carry{k}" for k in range(n_carry)] + [f"x{k}" for k in range(len(xs))])
    body.out_tree = n_y[0]
    ops = list(body.consts) + init + list(xs)
    diff = _diff_mask(ops)
    if save is None:
        save = (checkpoint_every or 1) if any(diff) else 0
    outs = scan_p(*ops, body=body, n_consts=body.n_consts, n_carry=n_carry, length=length,
                  reverse=reverse, save=save, unroll=unroll, diff=diff)
    k = n_carry + n_y[0]
    return list(outs[:n_carry]), list(outs[n_carry:k]), list(outs[k:])


def _flip(x: Any) -> Any:
    return x[::-1]


def _scan_jvp(tangents, outs, *ops, body, n_consts, n_carry, length, reverse, save, unroll,
                                    diff):
    consts = list(ops[:n_consts])
    init = list(ops[n_consts:n_consts + n_carry])
    xs = list(ops[n_consts + n_carry:])
    t_consts = tangents[:n_consts]
    t_init = tangents[n_consts:n_consts + n_carry]
    t_xs = tangents[n_consts + n_carry:]
    dc = [i for i, c in enumerate(consts) if t_consts[i] is not None and _float(c)]
    dk = [i for i, c in enumerate(init) if _float(c)]  # every float carry gets a tangent
    dx = [i for i, x in enumerate(xs) if t_xs[i] is not None and _float(x)]
    tc_consts = [t_consts[i] for i in dc]
    y_avals = body.out_avals[n_carry:]
    dy = [j for j, a in enumerate(y_avals) if _float(a)]

    def step(carry: list, x: list) -> tuple:
        c, tc = carry[:n_carry], carry[n_carry:]
        xv, tx = x[:len(xs)], x[len(xs):]

        def f(pc, pk, px):
            args_c = _substituted(consts, dc, pc)
            args_k = _substituted(c, dk, pk)
            args_x = _substituted(xv, dx, px)
            return body.eval(args_c + args_k + args_x)

        prim = ([consts[i] for i in dc], [c[i] for i in dk], [xv[i] for i in dx])
        tan = (list(tc_consts), list(tc), list(tx))
        o, to = ad.jvp(f, prim, tan)
        t_carry = [to[i] for i in dk]
        t_y = [to[n_carry + j] for j in dy]
        return list(o[:n_carry]) + t_carry, list(o[n_carry:]) + t_y

    t0 = [instantiate_zeros(init[i]) if t_init[i] is None else t_init[i] for i in dk]
    tx0 = [t_xs[i] for i in dx]
    carry, ys, saved = _scan_bind(step, init + t0, xs + tx0, length, reverse, save or None,
                                  unroll, "scan (jvp)")
    res: list[Any] = [None] * len(outs)
    for k, i in enumerate(dk):
        res[i] = carry[n_carry + k]
    ny = len(y_avals)
    for k, j in enumerate(dy):
        res[n_carry + j] = ys[ny + k]
    if save:
        for k, i in enumerate(dk):
            res[n_carry + ny + i] = saved[n_carry + k]
    return tuple(res)


def _scan_vjp(cts, outs, *ops, body, n_consts, n_carry, length, reverse, save, unroll,
                               diff):
    consts = list(ops[:n_consts])
    init = list(ops[n_consts:n_consts + n_carry])
    xs = list(ops[n_consts + n_carry:])
    ny = len(body.out_avals) - n_carry
    saved = list(outs[n_carry + ny:])
    # the saved carries are outputs too: at second order (grad of grad) the first backward
    # pass reads them, so cotangents reach them, and they join the carries' cotangents
    # (scan_p takes symbolic zeros: None is the cotangent of an output nobody reads, which is
    # what the saved carries' usually are, so no zeros of the size of every carry are made)
    ct_saved = [cts[n_carry + ny + i] for i in range(n_carry) if _float(init[i])] \
        if save else []
    if not any(isinstance(c, Tracer) or (c is not None and np.any(c)) for c in ct_saved):
        ct_saved = None
    else:
        ct_saved = [instantiate_zeros(s) if c is None else c
                    for c, s in zip(ct_saved, [outs[n_carry + ny + i] for i in range(n_carry)
                                               if _float(init[i])])]
    ct_carry = [instantiate_zeros(o) if c is None else c
                for c, o in zip(cts[:n_carry], outs[:n_carry])]
    ct_ys = [instantiate_zeros(o) if c is None else c
             for c, o in zip(cts[n_carry:n_carry + ny], outs[n_carry:n_carry + ny])]
    dc = [i for i, c in enumerate(consts) if _float(c) and diff[i]]
    dk = [i for i, c in enumerate(init) if _float(c)]  # the carries' chain, always
    dx = [i for i, x in enumerate(xs) if _float(x) and diff[n_consts + n_carry + i]]
    y_avals = body.out_avals[n_carry:]
    dy = [j for j, a in enumerate(y_avals) if _float(a)]
    ct_ys = [ct_ys[j] for j in dy]  # the cotangents of the float ys
    res: list[Any] = [None] * len(ops)
    if length == 0:
        for i in dk:
            res[n_consts + i] = ct_carry[i]
        for i in dc:
            res[i] = instantiate_zeros(consts[i])
        for i in dx:
            res[n_consts + n_carry + i] = instantiate_zeros(xs[i])
        return tuple(res)
    from .numpy import concatenate
    if reverse:  # work in processing order
        xs = [_flip(x) for x in xs]
        ct_ys = [_flip(c) for c in ct_ys]

    def step_vjp(c: list, x: list, ct_c: list, ct_y: list, known: list) -> tuple:
        """(ct of the float carries, ct of the float consts, ct of the float xs) of one step.
        ``known``: the step's float carry and y outputs, as the forward scan computed them
        (inputs of the traced backward step, read instead of recomputing them)."""
        def f(pc, pk, px):
            args_c = _substituted(consts, dc, pc)
            args_k = _substituted(c, dk, pk)
            args_x = _substituted(x, dx, px)
            o = body.eval(args_c + args_k + args_x)
            return [o[i] for i in dk] + [o[n_carry + j] for j in dy]

        outs, pull = ad.vjp(f, [consts[i] for i in dc], [c[i] for i in dk],
                            [x[i] for i in dx])
        for v, same in zip(outs, known):
            if isinstance(same, JitTracer) and isinstance(same._trace, _BodyTrace):
                same._trace.reuse(v, same)
        g_c, g_k, g_x = pull(list(ct_c) + list(ct_y))
        return list(g_k), list(g_c), list(g_x)

    def backward(carries: list, nexts: list, yseg: list, xseg: list, ctyseg: list, ct_c: list,
                 acc: list, ct_sv: list | None = None) -> tuple:
        """Reverse scan of the step vjp over stacked carries (entering each step; ``nexts``:
        the float ones leaving it, ``yseg`` the float ys, as the forward pass computed them;
        ``ct_sv``: cotangents of the carries entering each step); (ct_c, acc, ct_xs)."""
        nc = len(ct_c)
        nyd = len(dy)
        nx = len(xs)

        def step(carry: list, inp: list) -> tuple:
            ct_c_, acc_ = carry[:nc], carry[nc:]
            c = inp[:n_carry]
            x = inp[n_carry:n_carry + nx]
            ct_y = inp[n_carry + nx:n_carry + nx + nyd]
            known = inp[n_carry + nx + nyd:n_carry + nx + nyd + len(dk) + nyd]
            g_k, g_c, g_x = step_vjp(c, x, ct_c_, ct_y, known)
            if ct_sv is not None:
                g_k = [a + b for a, b in zip(g_k, inp[n_carry + nx + 2 * nyd + len(dk):])]
            return g_k + [a + g for a, g in zip(acc_, g_c)], g_x

        n = np.shape(carries[0])[0] if carries else np.shape(xseg[0])[0]
        carry, g_xs, _ = _scan_bind(step, list(ct_c) + list(acc),
                                    list(carries) + list(xseg) + list(ctyseg) + list(nexts)
                                    + list(yseg) + list(ct_sv or []), n, True,
                                    what="scan (vjp)")
        return carry[:nc], carry[nc:], g_xs

    def recompute(c0: list, xseg: list, n: int) -> tuple:
        """The carries entering each step of a segment, from the one entering it, and the
        float ones leaving each step."""
        def step(carry, x):
            o = body.run_or_eval(consts + carry + x)
            return o[:n_carry], list(carry)
        last, cs, _ = _scan_bind(step, c0, xseg, n, what="scan (recompute)")
        nexts = [concatenate([cs[i][1:], last[i][None]]) for i in dk]
        return cs, nexts

    ys_f = [outs[n_carry + j] for j in dy]  # the float ys, as the forward pass computed them
    if reverse:
        ys_f = [_flip(y) for y in ys_f]

    ct_c = [ct_carry[i] for i in dk]
    acc = [instantiate_zeros(consts[i]) for i in dc]
    if not save:  # (not expected: a scan saves when an operand is reverse-traced) recompute
        cs, nexts = recompute(init, xs, length)
        ct_c, acc, g_xs = backward(cs, nexts, ys_f, xs, ct_ys, ct_c, acc)
    elif save == 1:
        if ct_saved is not None:  # the last saved carry is the carry output
            ct_c = [a + b[length] for a, b in zip(ct_c, ct_saved)]
            ct_saved = [b[:length] for b in ct_saved]
        ct_c, acc, g_xs = backward([s[:length] for s in saved], [saved[i][1:] for i in dk],
                                   ys_f, xs, ct_ys, ct_c, acc, ct_saved)
    else:
        k = save
        q, r = divmod(length, k)
        pieces = []
        if r:
            c0 = [s[q] for s in saved]
            tail_x = [x[q * k:] for x in xs]
            tail_ct = [c[q * k:] for c in ct_ys]
            cs, nexts = recompute(c0, tail_x, r)
            ct_c, acc, g_tail = backward(cs, nexts, [y[q * k:] for y in ys_f], tail_x, tail_ct,
                                         ct_c, acc)
            if ct_saved is not None:
                ct_c = [a + b[q] for a, b in zip(ct_c, ct_saved)]
            pieces.append(g_tail)
        if q:
            from .numpy import reshape
            seg_x = [reshape(x[:q * k], (q, k) + tuple(np.shape(x)[1:])) for x in xs]
            seg_ct = [reshape(c[:q * k], (q, k) + tuple(np.shape(c)[1:])) for c in ct_ys]
            seg_y = [reshape(y[:q * k], (q, k) + tuple(np.shape(y)[1:])) for y in ys_f]
            seg_s = [s[:q] if r else s for s in saved]
            seg_sv = [c[:q] if r else c for c in ct_saved] if ct_saved is not None else []
            nck = len(ct_c)
            nyd = len(dy)

            def outer(carry, inp):
                s = inp[:n_carry]
                xseg = inp[n_carry:n_carry + len(xs)]
                cty = inp[n_carry + len(xs):n_carry + len(xs) + nyd]
                yseg = inp[n_carry + len(xs) + nyd:n_carry + len(xs) + 2 * nyd]
                cs, nexts = recompute(s, xseg, k)
                ct_c_, acc_, g = backward(cs, nexts, yseg, xseg, cty, carry[:nck], carry[nck:])
                if seg_sv:
                    ct_c_ = [a + b for a, b in zip(ct_c_, inp[n_carry + len(xs) + 2 * nyd:])]
                return ct_c_ + acc_, g

            carry, g_main, _ = _scan_bind(outer, ct_c + acc,
                                          seg_s + seg_x + seg_ct + seg_y + seg_sv,
                                          q, True, what="scan (checkpointed vjp)")
            ct_c, acc = carry[:nck], carry[nck:]
            g_main = [reshape(g, (q * k,) + tuple(np.shape(g)[2:])) for g in g_main]
            pieces.insert(0, g_main)
        if len(pieces) == 2:
            g_xs = [concatenate([a, b]) for a, b in zip(*pieces)]
        else:
            g_xs = pieces[0]
    if reverse:
        g_xs = [_flip(g) for g in g_xs]
    for k, i in enumerate(dk):
        res[n_consts + i] = ct_c[k]
    for k, i in enumerate(dc):
        res[i] = acc[k]
    for k, i in enumerate(dx):
        res[n_consts + n_carry + i] = g_xs[k]
    return tuple(res)


def _scan_batch(args, dims, *, body, n_consts, n_carry, length, reverse, save, unroll,
                               diff):
    size = next(np.shape(a)[d] for a, d in zip(args, dims) if d is not None)
    consts = [to_front(a, d) if d is not None else a
              for a, d in zip(args[:n_consts], dims[:n_consts])]
    c_dims = tuple(None if d is None else 0 for d in dims[:n_consts])
    init = [bring_front(a, d, size) for a, d in
            zip(args[n_consts:n_consts + n_carry], dims[n_consts:n_consts + n_carry])]
    xs, x_dims = [], []
    for a, d in zip(args[n_consts + n_carry:], dims[n_consts + n_carry:]):
        if d is None:
            xs.append(a)
            x_dims.append(None)
        else:
            from .prims.index import move_axis
            xs.append(move_axis(a, d, 1))
            x_dims.append(0)
    x_dims_t = tuple(x_dims)

    def step(carry, x):
        def one(cs, c, xv):
            o = body.eval(list(cs) + list(c) + list(xv))
            return o[:n_carry], o[n_carry:]
        c_out, y = vmap(one, in_axes=(c_dims, 0, x_dims_t))(consts, list(carry), list(x))
        return c_out, y

    carry, ys, saved = _scan_bind(step, init, xs, length, reverse, save, unroll,
                                  "scan (vmap)")
    outs = tuple(carry) + tuple(ys) + tuple(saved)
    out_dims = (0,) * len(carry) + (1,) * (len(ys) + len(saved))
    return outs, out_dims


def _scan_prune(args, params, used):
    """dce: a scan without its unused ys (and the body work computing them, and the consts and
    xs only they read) and, when its saved carries are unused, without saving them."""
    body, n_consts, n_carry, save = (params["body"], params["n_consts"], params["n_carry"],
                                     params["save"])
    ny = len(body.out_avals) - n_carry
    used_y = used[n_carry:n_carry + ny]
    save_new = save if save and any(used[n_carry + ny:]) else 0
    keep_y = [n_carry + j for j in range(ny) if used_y[j]]
    n_ops = len(args)
    removable = set(range(n_consts)) | set(range(n_consts + n_carry, n_ops))
    new_body, keep_in = _prune_body(body, list(range(n_carry)) + keep_y, removable)
    new_body.out_tree = len(keep_y)
    kept = list(range(n_carry)) + keep_y
    if save_new:
        kept += list(range(n_carry + ny, n_carry + ny + n_carry))
    if len(keep_in) == n_ops and save_new == save and len(keep_y) == ny:
        return None  # nothing to drop
    params = {**params, "body": new_body, "n_consts": sum(1 for i in keep_in if i < n_consts),
              "save": save_new, "diff": tuple(params["diff"][i] for i in keep_in)}
    return keep_in, params, kept


def _scan_program(avals, out, *, body, n_consts, n_carry, length, reverse, save, unroll, diff):
    """The whole-program tier's plan (see ``Primitive.program_form``): a loop of the body
    graph, as ``_scan_impl`` runs it."""
    return ("loop", {"body": body.optimized, "consts": n_consts, "carry": n_carry,
                     "length": length, "reverse": reverse, "save": save})


# Like jit's and the custom rules' primitives, these are private to their module (register=False):
# their params hold traced bodies, and they are reached through the functions below only.
scan_p = Primitive("scan", _scan_impl, multiple_results=True, abstract=_scan_abstract,
                   jvp=_scan_jvp, vjp=_scan_vjp, batch=_scan_batch, register=False,
                   zero_cotangents="symbolic", prune_outputs=_scan_prune,
                   program_form=_scan_program)


def _body_run_or_eval(self: Body, leaves: list) -> list:
    """``run`` on concrete values, ``eval`` when something is traced."""
    if _traced_leaves(leaves):
        return self.eval(leaves)
    return self.run(leaves)


Body.run_or_eval = _body_run_or_eval  # type: ignore[attr-defined]


def _check_xs(xs_leaves: list, length: int | None, paths: list[str]) -> int:
    ns = []
    for p, x in zip(paths, xs_leaves):
        if np.ndim(x) == 0:
            raise ValueError(f"scan: xs{p} is a scalar; every leaf of xs needs a leading axis "
                             "to scan over")
        ns.append(np.shape(x)[0])
    if length is not None:
        if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 0:
            raise TypeError(f"scan: length must be a non-negative int, got {length!r}")
        length = int(length)
    if ns:
        if len(set(ns)) > 1:
            listing = ", ".join(f"xs{p} has {n}" for p, n in zip(paths, ns))
            raise ValueError(f"scan: the leaves of xs have different leading sizes ({listing})")
        if length is not None and length != ns[0]:
            raise ValueError(f"scan: length={length} but xs has leading size {ns[0]}")
        return ns[0]
    if length is None:
        raise ValueError("scan: with no xs, pass length= (the number of steps)")
    return length


def _split_pair(out: Any, what: str) -> tuple:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"{what}: the body must return a pair (carry, y), got "
                        f"{type(out).__name__}"
                        + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    return out[0], out[1]


def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, unroll: int | bool = 1,
         checkpoint_every: int | None = None) -> tuple[Any, Any]:
    """Loop ``carry, y = f(carry, x)`` over the leading axis of ``xs``; ``(carry, ys)``.

    JAX's ``lax.scan``: ``init`` and the carry ``f`` returns have the same pytree structure,
    shapes and dtypes (else a TypeError names the leaf); ``xs`` is a pytree of arrays sliced
    along axis 0 (``None`` with ``length=`` for no input); ``ys`` stacks the ``y`` outputs
    along a new axis 0. ``reverse=True`` runs from the last slice to the first (``ys`` keeps
    the slices' order). ``unroll=k`` (JAX's): the traced body holds ``k`` steps, so the
    loop runs ``n // k`` iterations, then a second scan the ``n % k`` remaining steps
    (``True``: all ``n`` steps in one body); the result is the same, the graph and the
    per-iteration overhead differ (plain values run the Python loop either way).

    On plain values the loop runs ``f`` in Python. Under a transform it is one primitive whose
    body is traced once: jvp is a scan of the body's jvp, vjp a reverse scan of the body's vjp
    over the carries saved by the forward scan, one per step, or, with
    ``checkpoint_every=k``, one per k steps (each segment recomputed in the backward pass:
    memory O(n/k + k), so k about sqrt(n) gives O(sqrt(n))).

    Example:
        >>> import numpy as np, diffprog as dp
        >>> dp.scan(lambda c, x: (c * x, c), 1.0, np.array([2.0, 3.0, 4.0]))
        (np.float64(24.0), array([1., 2., 6.]))
    """
    if checkpoint_every is not None and (not isinstance(checkpoint_every, (int, np.integer))
                                         or isinstance(checkpoint_every, bool)
                                         or checkpoint_every < 1):
        raise ValueError(f"scan: checkpoint_every must be a positive int, got "
                         f"{checkpoint_every!r}")
    xs_with_paths, xs_tree = tree_flatten_with_path(xs)
    xs_leaves = [_as_array(x) for _, x in xs_with_paths]
    n = _check_xs(xs_leaves, length, [keystr(p) for p, _ in xs_with_paths])
    init_leaves, init_tree = tree_flatten(init)
    init_leaves = [_as_array(c) for c in init_leaves]
    if n and not _traced_leaves(init_leaves + xs_leaves):
        done = _scan_eager(f, init_leaves, init_tree, xs_leaves, xs_tree, n, reverse)
        if done is not None:
            return done
    carry_paths = _paths(tree_unflatten(init_tree, init_leaves))
    y_tree: list = []

    def step(carry: list, x: list) -> tuple:
        c, y = _split_pair(f(tree_unflatten(init_tree, carry), tree_unflatten(xs_tree, x)),
                           "scan")
        c_leaves, c_tree = tree_flatten(c)
        if c_tree != init_tree:
            raise TypeError(f"scan: the body returned a carry of structure {c_tree}, but init "
                            f"has structure {init_tree}")
        y_leaves, yt = tree_flatten(y)
        y_tree.append(yt)
        return c_leaves, [_as_array(v) for v in y_leaves]

    u = n if unroll is True else max(1, min(int(unroll), n))
    if u > 1:
        carry, ys = _scan_unrolled(step, init_leaves, xs_leaves, n, reverse, u, carry_paths,
                                   checkpoint_every)
    else:
        carry, ys, _ = _scan_bind(step, init_leaves, xs_leaves, n, reverse, None, 1,
                                  carry_paths=carry_paths, checkpoint_every=checkpoint_every)
    return tree_unflatten(init_tree, carry), tree_unflatten(y_tree[0], ys)


def _scan_unrolled(step: Callable, init: list, xs: list, n: int, reverse: bool, u: int,
                   carry_paths: list[str], checkpoint_every: int | None) -> tuple[list, list]:
    """``n`` steps as a scan of ``n // u`` iterations whose body holds ``u`` steps (the xs
    blocked by ``u``), then a scan of the ``n % u`` remaining steps (for ``reverse``, the
    remainder is the first ``n % u`` slices, processed last); (carry, ys)."""
    from .numpy import concatenate, reshape, stack
    q, r = divmod(n, u)
    c_avals = [_aval(c) for c in init]
    lo, hi = (r, n) if reverse else (0, q * u)
    blocks = [reshape(x[lo:hi], (q, u) + tuple(np.shape(x)[1:])) for x in xs]

    def block(carry: list, xb: list) -> tuple:
        ys: list = [None] * u
        for j in (range(u - 1, -1, -1) if reverse else range(u)):
            carry, ys[j] = step(carry, [x[j] for x in xb])
            carry = _cast_consts(list(carry), c_avals)
        return carry, [stack([ys[j][k] for j in range(u)]) for k in range(len(ys[0]))]

    every = None if checkpoint_every is None else max(1, round(checkpoint_every / u))
    carry, ys_main, _ = _scan_bind(block, init, blocks, q, reverse, None, u, "scan",
                                   carry_paths, every)
    ys = [reshape(y, (q * u,) + tuple(np.shape(y)[2:])) for y in ys_main]
    if r:
        rest = [x[:r] if reverse else x[q * u:] for x in xs]
        carry, ys_rest, _ = _scan_bind(step, carry, rest, r, reverse, None, 1, "scan",
                                       carry_paths, checkpoint_every)
        ys = [concatenate([b, a] if reverse else [a, b]) for a, b in zip(ys, ys_rest)]
    return carry, ys


def _scan_eager(f, init, init_tree, xs, xs_tree, n, reverse) -> tuple | None:
    """The Python loop; None if the first step shows that ``f`` closes over a traced value
    (then the caller traces the body instead)."""
    carry = tree_unflatten(init_tree, init)
    ys: list | None = None
    y_tree = None
    # the common shapes without pytree work per step: one array of xs, a y of None or an array
    one_x = xs[0] if len(xs) == 1 and tree_unflatten(xs_tree, [0]) == 0 else None
    simple_y = None  # True: y is one array each step; False: y is None
    for t in range(n):
        i = n - 1 - t if reverse else t
        x = one_x[i] if one_x is not None else tree_unflatten(xs_tree, [v[i] for v in xs])
        out = f(carry, x)
        if type(out) is tuple and len(out) == 2:
            c, y = out
        else:
            c, y = _split_pair(out, "scan")
        if simple_y is not None:
            if simple_y is False and y is None:
                carry = c
                continue
            if simple_y is True and isinstance(y, (np.ndarray, np.generic)):
                ys[0][i] = y
                carry = c
                continue
        y_leaves, yt = tree_flatten(y)
        if ys is None:
            if y is None:
                simple_y = False
            elif isinstance(y, (np.ndarray, np.generic)):
                simple_y = True
            c_leaves, c_tree = tree_flatten(c)
            if _traced_leaves(c_leaves + y_leaves):
                return None
            if c_tree != init_tree:
                raise TypeError(f"scan: the body returned a carry of structure {c_tree}, but "
                                f"init has structure {init_tree}")
            _check_same("scan: the body's output carry", [_aval(v) for v in c_leaves],
                        [_aval(v) for v in init], _paths(c),
                        "the carry must keep its shape and dtype from step to step (cast it, "
                        "e.g. with .astype, or give init the dtype the body computes)")
            y_tree = yt
            ys = [np.empty((n,) + np.shape(v), np.result_type(v)) for v in y_leaves]
        for buf, v in zip(ys, y_leaves):
            buf[i] = v
        carry = c
    return carry, tree_unflatten(y_tree, ys)


# ----------------------------------------------------------------------------------------------
# cond and switch


def _cond_impl(index: Any, *ops: Any, branches: tuple, n_consts: tuple) -> tuple:
    i = min(max(int(index), 0), len(branches) - 1)
    start = sum(n_consts[:i])
    rest = ops[sum(n_consts):]
    return tuple(branches[i].run(list(ops[start:start + n_consts[i]]) + list(rest)))


def _cond_abstract(index: Any, *ops: Any, branches: tuple, n_consts: tuple) -> tuple:
    return tuple(ShapedArray(a.shape, a.dtype) for a in branches[0].out_avals)


def _branch_consts(ops: Sequence, n_consts: tuple) -> tuple[list, list]:
    consts, start = [], 0
    for n in n_consts:
        consts.append(list(ops[start:start + n]))
        start += n
    return consts, list(ops[start:])


def _cond_bind(index: Any, fns: Sequence[Callable[[list], list]], ops: list, what: str,
               out_paths: Callable[[int], list[str]] | None = None) -> list:
    """Trace every branch ``fn(ops) -> outs`` (flat) and bind the cond primitive."""
    avals = [_aval(o) for o in ops]
    bodies = []
    for k, fn in enumerate(fns):
        body = _trace_body(fn, avals, [f"op{j}" for j in range(len(ops))])
        if bodies:
            first = bodies[0]
            if len(body.out_avals) != len(first.out_avals) or body.out_tree != first.out_tree:
                raise TypeError(f"{what}: branch {k} returns {body.out_tree or '?'} but branch "
                                f"0 returns {first.out_tree or '?'}; every branch must return "
                                "the same pytree structure")
            n_out = len(first.out_avals)
            paths = out_paths(n_out) if out_paths else [f"[{j}]" for j in range(n_out)]
            for path, a, b in zip(paths, body.out_avals, first.out_avals):
                if tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
                    raise TypeError(f"{what}: branch {k} returns out{path} as {_describe(a)} "
                                    f"but branch 0 returns it as {_describe(b)}; every branch "
                                    "must return the same shapes and dtypes")
        bodies.append(body)
    consts = [c for b in bodies for c in b.consts]
    return list(cond_p(index, *consts, *ops, branches=tuple(bodies),
                       n_consts=tuple(b.n_consts for b in bodies)))


def _cond_jvp(tangents, outs, index, *ops, branches, n_consts):
    consts, xs = _branch_consts(ops, n_consts)
    t_consts, t_xs = _branch_consts(tangents[1:], n_consts)
    dx = [i for i, x in enumerate(xs) if _float(x)]
    tx = [instantiate_zeros(xs[i]) if t_xs[i] is None else t_xs[i] for i in dx]
    dy = [j for j, a in enumerate(branches[0].out_avals) if _float(a)]

    def make(k: int) -> Callable:
        body, cs, tcs = branches[k], consts[k], t_consts[k]
        dc = [i for i, c in enumerate(cs) if tcs[i] is not None and _float(c)]

        def fn(args: list) -> list:
            xv, tv = args[:len(xs)], args[len(xs):]

            def f(pc, px):
                a_c = _substituted(cs, dc, pc)
                a_x = _substituted(xv, dx, px)
                return body.eval(a_c + a_x)

            _, to = ad.jvp(f, ([cs[i] for i in dc], [xv[i] for i in dx]),
                           ([tcs[i] for i in dc], list(tv)))
            return [to[j] for j in dy]
        return fn

    t_out = _cond_bind(index, [make(k) for k in range(len(branches))], xs + tx,
                       "cond (jvp)")
    res: list[Any] = [None] * len(outs)
    for k, j in enumerate(dy):
        res[j] = t_out[k]
    return tuple(res)


def _cond_vjp(cts, outs, index, *ops, branches, n_consts):
    consts, xs = _branch_consts(ops, n_consts)
    dx = [i for i, x in enumerate(xs) if _float(x)]
    dy = [j for j, a in enumerate(branches[0].out_avals) if _float(a)]
    dcs = [[i for i, c in enumerate(cs) if _float(c)] for cs in consts]
    ct = [cts[j] for j in dy]

    def make(k: int) -> Callable:
        body, cs = branches[k], consts[k]
        dc = dcs[k]

        def fn(args: list) -> list:
            xv, ctv = args[:len(xs)], args[len(xs):]

            def f(pc, px):
                a_c = _substituted(cs, dc, pc)
                a_x = _substituted(xv, dx, px)
                o = body.eval(a_c + a_x)
                return [o[j] for j in dy]

            _, pull = ad.vjp(f, [cs[i] for i in dc], [xv[i] for i in dx])
            g_c, g_x = pull(list(ctv))
            out = []
            for m, cm in enumerate(consts):  # the other branches' consts get zeros
                out += list(g_c) if m == k else [instantiate_zeros(cm[i]) for i in dcs[m]]
            return out + list(g_x)
        return fn

    g = _cond_bind(index, [make(k) for k in range(len(branches))], xs + ct, "cond (vjp)")
    res: list[Any] = [None] * (1 + len(ops))
    pos = 0
    start = 1
    for m, cm in enumerate(consts):
        for i in dcs[m]:
            res[start + i] = g[pos]
            pos += 1
        start += len(cm)
    for i in dx:
        res[start + i] = g[pos]
        pos += 1
    return tuple(res)


def _cond_batch(args, dims, *, branches, n_consts):
    from . import numpy as dnp
    size = next(np.shape(a)[d] for a, d in zip(args, dims) if d is not None)
    index, idim = args[0], dims[0]
    consts, xs = _branch_consts(args[1:], n_consts)
    c_dims, x_dims = _branch_consts(dims[1:], n_consts)

    def batched(k: int) -> Callable:
        body = branches[k]

        def fn(ops: list) -> list:
            return vmap(lambda cs, xv: body.eval(list(cs) + list(xv)),
                        in_axes=(tuple(c_dims[k]), tuple(x_dims)),
                        axis_size=size)(consts[k], list(ops))
        return fn

    if idim is None:
        outs = _cond_bind(index, [batched(k) for k in range(len(branches))], list(xs),
                          "cond (vmap)")
        return tuple(outs), (0,) * len(outs)
    # a batched predicate: every branch runs, and where picks each example's result
    index = dnp.clip(to_front(index, idim), 0, len(branches) - 1)
    results = [batched(k)(list(xs)) for k in range(len(branches))]
    outs = list(results[0])
    for k in range(1, len(branches)):
        for j, o in enumerate(results[k]):
            sel = dnp.reshape(index == k, (size,) + (1,) * (np.ndim(o) - 1))
            outs[j] = dnp.where(sel, o, outs[j])
    return tuple(outs), (0,) * len(outs)


def _cond_prune(args, params, used):
    """dce: every branch without the unused outputs (and the consts only they read)."""
    keep = [j for j, u in enumerate(used) if u]
    operands, bodies, counts, start = [0], [], [], 1
    for body, nc in zip(params["branches"], params["n_consts"]):
        new_body, keep_in = _prune_body(body, keep, set(range(nc)))
        kc = [i for i in keep_in if i < nc]
        operands += [start + i for i in kc]
        bodies.append(new_body)
        counts.append(len(kc))
        start += nc
    operands += list(range(start, len(args)))
    if len(operands) == len(args) and len(keep) == len(used):
        return None  # nothing to drop
    return operands, {"branches": tuple(bodies), "n_consts": tuple(counts)}, keep


cond_p = Primitive("cond", _cond_impl, multiple_results=True, abstract=_cond_abstract,
                   jvp=_cond_jvp, vjp=_cond_vjp, batch=_cond_batch, register=False,
                   prune_outputs=_cond_prune)


def _check_pred(pred: Any, what: str, integer: bool) -> None:
    shape = np.shape(pred)
    dtype = pred.dtype if hasattr(pred, "dtype") else np.result_type(pred)
    ok_kind = "iub" if integer else "b"
    if shape != () or np.dtype(dtype).kind not in ok_kind:
        want = "a scalar integer index" if integer else "a scalar boolean predicate"
        raise TypeError(f"{what}: needs {want}, got {_describe(_aval(pred))}"
                        + ("" if integer else "; compare explicitly (x > 0) or reduce "
                           "(dnp.any) to get one, or use dnp.where for an elementwise choice"))


# (function key, operand tree, operand avals) -> (out tree, out avals), or None when the
# branch cannot be traced abstractly (Python control flow on its operands' values)
_BRANCH_OUTS: dict = {}
_BRANCH_OUTS_MAX = 4096
_CHECKED: set = set()  # eager calls that passed the check, by the keys of what decides it


def _fn_key(fn: Callable) -> Any:
    """A key under which two branch functions trace the same way: the function itself, or for
    a Python function its code, its closure's contents (arrays by shape and dtype, other
    values by value) and its ``self`` (lambdas made anew at each call share one); None when
    something in it is unhashable (then nothing is cached)."""
    code = getattr(fn, "__code__", None)
    try:
        if code is None:
            hash(fn)
            return fn
        cells = []
        for c in getattr(fn, "__closure__", None) or ():
            try:
                v = c.cell_contents
            except ValueError:  # an empty cell
                v = None
            if isinstance(v, Tracer):
                return None  # not kept alive by a cache
            cells.append((v.shape, v.dtype.str) if isinstance(v, (np.ndarray, np.generic))
                         else (type(v), v))
        key = (code, tuple(cells), getattr(fn, "__self__", None),
               getattr(fn, "__defaults__", None))
        hash(key)
        return key
    except TypeError:
        return None


def _branch_outs(fn: Callable, tree: Any, avals: list) -> tuple | None:
    """``fn``'s output tree and avals on operands of these avals, traced abstractly (cached)."""
    fkey = _fn_key(fn)
    key = None if fkey is None else (fkey, tree, tuple((a.shape, a.dtype.str) for a in avals))
    if key is not None and key in _BRANCH_OUTS:
        return _BRANCH_OUTS[key]
    trees: list = []

    def flat(ins: list) -> list:
        o_leaves, o_tree = tree_flatten(fn(*tree_unflatten(tree, ins)))
        trees.append(o_tree)
        return [_as_array(o) for o in o_leaves]

    try:
        body = _trace_body(flat, avals, [f"op{j}" for j in range(len(avals))])
        res: tuple | None = (trees[0], [(tuple(a.shape), np.dtype(a.dtype))
                                        for a in body.out_avals])
    except Exception:
        # it needs values (a Python if on an operand, an operand that is not an array): left
        # to traced calls, which raise what tracing it raises; an eager call worked before
        res = None
    if key is not None:
        if len(_BRANCH_OUTS) >= _BRANCH_OUTS_MAX:
            _BRANCH_OUTS.clear()
        _BRANCH_OUTS[key] = res
    return res


def _check_eager_branches(what: str, i: int, out: Any, branches: Sequence[Callable],
                          tree: Any, leaves: list) -> None:
    """The traced mode's check on an eager call: the branches not taken are traced abstractly
    and must return the structure, shapes and dtypes the taken one returned."""
    o_leaves, o_tree = tree_flatten(out)
    fkeys = tuple(_fn_key(fn) for fn in branches)
    key = None if None in fkeys else (fkeys, i, tree, tuple(map(_sig, leaves)), o_tree,
                                      tuple(map(_sig, o_leaves)))
    if key is not None and key in _CHECKED:
        return  # the hot path: this call was checked before
    _check_eager_slow(what, i, o_leaves, o_tree, branches, tree, leaves)
    if key is not None:
        if len(_CHECKED) >= _BRANCH_OUTS_MAX:
            _CHECKED.clear()
        _CHECKED.add(key)


def _sig(x: Any) -> Any:
    return (x.shape, x.dtype) if isinstance(x, (np.ndarray, np.generic)) else type(x)


def _check_eager_slow(what: str, i: int, o_leaves: list, o_tree: Any,
                      branches: Sequence[Callable], tree: Any, leaves: list) -> None:
    taken = (o_tree, [(tuple(np.shape(o)), np.dtype(np.result_type(o)))
                      for o in map(_as_array, o_leaves)])
    avals = [_aval(x) for x in leaves]
    outs = [taken if fn is branches[i] else _branch_outs(fn, tree, avals) for fn in branches]
    ref = next(k for k, o in enumerate(outs) if o is not None)
    r_tree, r_avals = outs[ref]
    for k, o in enumerate(outs):
        if o is None or k == ref:
            continue
        k_tree, k_avals = o
        if k_tree != r_tree:
            raise TypeError(f"{what}: branch {k} returns a pytree of structure {k_tree} "
                            f"but branch {ref} returns {r_tree}; every branch must return the "
                            "same structure")
        paths = _paths(tree_unflatten(r_tree, [0] * len(r_avals)))
        for path, (sa, da), (sb, db) in zip(paths, k_avals, r_avals):
            if sa != sb or da != db:
                raise TypeError(f"{what}: branch {k} returns out{path} as {da.name}{list(sa)} "
                                f"but branch {ref} returns it as {db.name}{list(sb)}; every "
                                "branch must return the same shapes and dtypes")


def _branches_call(what: str, index: Any, branches: Sequence[Callable], operands: tuple) -> Any:
    leaves, tree = tree_flatten(operands)
    leaves = [_as_array(x) for x in leaves]
    if not _traced_leaves(leaves) and not isinstance(index, Tracer):
        i = min(max(int(index), 0), len(branches) - 1)
        out = branches[i](*operands)
        if len(branches) > 1 and not _traced_leaves(tree_flatten(out)[0]):
            _check_eager_branches(what, i, out, branches, tree, leaves)
        return out
    out_trees: list = []

    def make(k: int) -> Callable:
        def fn(ins: list) -> list:
            out = branches[k](*tree_unflatten(tree, ins))
            o_leaves, o_tree = tree_flatten(out)
            if out_trees and o_tree != out_trees[0]:
                raise TypeError(f"{what}: branch {k} returns a pytree of structure {o_tree} "
                                f"but branch 0 returns {out_trees[0]}; every branch must "
                                "return the same structure")
            out_trees.append(o_tree)
            return [_as_array(o) for o in o_leaves]
        return fn

    index = index if isinstance(index, Tracer) else np.asarray(index)

    def paths(n: int) -> list[str]:
        return _paths(tree_unflatten(out_trees[0], [0] * n))

    outs = _cond_bind(index, [make(k) for k in range(len(branches))], leaves, what, paths)
    return tree_unflatten(out_trees[0], outs)


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any) -> Any:
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, as JAX's
    ``lax.cond``.

    ``pred`` is a scalar boolean (else a TypeError). Both branches must return the same
    pytree structure, shapes and dtypes (else a TypeError naming the branch and the leaf), on
    plain values too: there the chosen function runs directly and the other is traced
    abstractly (once per function code, closure and operand shapes: later calls only look the
    check up; a branch that needs its operands' values to run is checked when traced). Under
    a transform both branches are traced to graphs and only the taken branch runs: grad
    differentiates only it. Under vmap with a batched
    predicate both branches run and ``where`` selects per example.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> f = lambda x: dp.cond(x > 0, dnp.sin, dnp.cos, x)
        >>> float(dp.grad(f)(0.5)), float(dp.grad(f)(-0.5))  # cos(0.5), sin(0.5)
        (0.8775825618903728, 0.479425538604203)
    """
    _check_pred(pred, "cond", integer=False)
    index = pred if isinstance(pred, Tracer) else np.asarray(pred)
    if isinstance(index, Tracer):
        from .numpy import astype
        index = astype(index, np.int64)
    return _branches_call("cond", index, (false_fun, true_fun), operands)


def switch(index: Any, branches: Sequence[Callable], *operands: Any) -> Any:
    """``branches[index](*operands)``, as JAX's ``lax.switch``.

    ``index`` is a scalar integer, clamped to ``0 .. len(branches) - 1`` as in JAX (an index
    below 0 picks the first branch, one past the end the last): there is no out-of-range
    error, because under jit the index has no value to check. Branches follow :func:`cond`'s
    rules (same output structure, shapes and dtypes; only the taken one runs).

    Example:
        >>> import numpy as np, diffprog as dp
        >>> fs = [lambda x: x + 1.0, lambda x: x * 10.0]
        >>> float(dp.switch(1, fs, 2.0)), float(dp.switch(7, fs, 2.0))
        (20.0, 20.0)
    """
    branches = list(branches)
    if not branches:
        raise ValueError("switch: needs at least one branch")
    _check_pred(index, "switch", integer=True)
    if isinstance(index, Tracer) and index.dtype.kind == "b":
        from .numpy import astype
        index = astype(index, np.int64)
    return _branches_call("switch", index, branches, operands)


# ----------------------------------------------------------------------------------------------
# while_loop and fori_loop


def _while_impl(*ops: Any, cond_body: Body, body: Body, n_cc: int, n_bc: int) -> tuple:
    cc = list(ops[:n_cc])
    bc = list(ops[n_cc:n_cc + n_bc])
    carry = list(ops[n_cc + n_bc:])
    run_cond, run_body = cond_body.run, body.run
    n = 0
    while run_cond(cc + carry)[0]:
        carry = run_body(bc + carry)
        n += 1
    carry = [np.asarray(c, dtype=a.dtype) if np.result_type(c) != a.dtype else c
             for c, a in zip(carry, body.out_avals)]
    return tuple(carry) + (np.int64(n),)


def _while_abstract(*ops: Any, cond_body: Body, body: Body, n_cc: int, n_bc: int) -> tuple:
    return tuple(ShapedArray(a.shape, a.dtype) for a in body.out_avals) + (
        ShapedArray((), np.int64),)


def _while_bind(cond_fn: Callable[[list], Any], body_fn: Callable[[list], list], init: list,
                what: str = "while_loop", carry_paths: list[str] | None = None) -> list:
    """Trace ``cond_fn(carry) -> pred`` and ``body_fn(carry) -> carry`` (flat lists) and bind
    the while primitive; the carry leaves and the trip count."""
    init = [_as_array(c) for c in init]
    avals = [_aval(c) for c in init]
    names = [f"carry{k}" for k in range(len(init))]

    def pred(ins: list) -> list:
        p = cond_fn(ins)
        _check_pred(p, f"{what}: cond_fun", integer=False)
        return [p]

    def step(ins: list) -> list:
        out = _cast_consts(list(body_fn(ins)), avals)
        if len(out) != len(init):
            raise TypeError(f"{what}: body_fun returned {len(out)} carry leaves but init has "
                            f"{len(init)}")
        _check_same(f"{what}: body_fun's output carry", [_aval(c) for c in out], avals,
                    carry_paths or [f"[{k}]" for k in range(len(init))],
                    "the carry must keep its shape and dtype from step to step (cast it, "
                    "e.g. with .astype, or give init the dtype the body computes)")
        return out

    cb = _trace_body(pred, avals, names)
    bb = _trace_body(step, avals, names)
    return list(while_p(*cb.consts, *bb.consts, *init, cond_body=cb, body=bb,
                        n_cc=cb.n_consts, n_bc=bb.n_consts))


def _while_jvp(tangents, outs, *ops, cond_body, body, n_cc, n_bc):
    cc = list(ops[:n_cc])
    bc = list(ops[n_cc:n_cc + n_bc])
    init = list(ops[n_cc + n_bc:])
    t_bc = tangents[n_cc:n_cc + n_bc]
    t_init = tangents[n_cc + n_bc:]
    db = [i for i, c in enumerate(bc) if t_bc[i] is not None and _float(c)]
    dk = [i for i, c in enumerate(init) if _float(c)]
    nk = len(init)

    def cond_fn(carry: list) -> Any:
        return cond_body.eval(cc + carry[:nk])[0]

    def body_fn(carry: list) -> list:
        c, tc = carry[:nk], carry[nk:]

        def f(pb, pk):
            a_b = _substituted(bc, db, pb)
            a_k = _substituted(c, dk, pk)
            return body.eval(a_b + a_k)

        o, to = ad.jvp(f, ([bc[i] for i in db], [c[i] for i in dk]),
                       ([t_bc[i] for i in db], list(tc)))
        return list(o) + [to[i] for i in dk]

    t0 = [instantiate_zeros(init[i]) if t_init[i] is None else t_init[i] for i in dk]
    res_all = _while_bind(cond_fn, body_fn, init + t0, "while_loop (jvp)")
    res: list[Any] = [None] * len(outs)
    for k, i in enumerate(dk):
        res[i] = res_all[nk + k]
    return tuple(res)


def _guarded_scan(cond_body: Body, body: Body, cc: list, bc: list, init: list, n: int) -> list:
    """``n`` steps of ``c = where(cond(c), body(c), c)``: the while loop's result whenever
    ``n`` is at least its trip count, as a scan (which reverse mode can differentiate)."""
    from .numpy import where

    def step(carry: list, x: list) -> tuple:
        p = cond_body.eval(list(cc) + carry)[0]
        new = body.eval(list(bc) + carry)
        return [where(p, a, b) for a, b in zip(new, carry)], []

    carry, _, _ = _scan_bind(step, init, [], n, what="while_loop (as a scan)")
    return carry


def _while_vjp(cts, outs, *ops, cond_body, body, n_cc, n_bc):
    nk = len(ops) - n_cc - n_bc
    trips = outs[nk]
    dk = [i for i, c in enumerate(ops[n_cc + n_bc:]) if _float(c)]
    db = [i for i, c in enumerate(ops[n_cc:n_cc + n_bc]) if _float(c)]
    ct = [cts[i] for i in dk]

    def backward(n: int, *args: Any) -> list:
        cc = list(args[:n_cc])
        bc = list(args[n_cc:n_cc + n_bc])
        init = list(args[n_cc + n_bc:n_cc + n_bc + nk])
        ctv = list(args[n_cc + n_bc + nk:])

        def f(pb, pk):
            a_b = _substituted(bc, db, pb)
            a_k = _substituted(init, dk, pk)
            out = _guarded_scan(cond_body, body, cc, a_b, a_k, n)
            return [out[i] for i in dk]

        _, pull = ad.vjp(f, [bc[i] for i in db], [init[i] for i in dk])
        g_b, g_k = pull(ctv)
        return list(g_b) + list(g_k)

    avals = [_aval(ops[n_cc + i]) for i in db] + [_aval(ops[n_cc + n_bc + i]) for i in dk]
    g = _dyn_call(backward, trips, list(ops) + ct, avals, "while_loop_vjp")
    res: list[Any] = [None] * len(ops)
    for k, i in enumerate(db):
        res[n_cc + i] = g[k]
    for k, i in enumerate(dk):
        res[n_cc + n_bc + i] = g[len(db) + k]
    return tuple(res)


def _while_batch(args, dims, *, cond_body, body, n_cc, n_bc):
    from . import numpy as dnp
    size = next(np.shape(a)[d] for a, d in zip(args, dims) if d is not None)
    cc = [to_front(a, d) if d is not None else a for a, d in zip(args[:n_cc], dims[:n_cc])]
    cc_dims = tuple(None if d is None else 0 for d in dims[:n_cc])
    bc = [to_front(a, d) if d is not None else a
          for a, d in zip(args[n_cc:n_cc + n_bc], dims[n_cc:n_cc + n_bc])]
    bc_dims = tuple(None if d is None else 0 for d in dims[n_cc:n_cc + n_bc])
    init = [bring_front(a, d, size) for a, d in zip(args[n_cc + n_bc:], dims[n_cc + n_bc:])]

    def preds(carry: list) -> Any:
        return vmap(lambda cs, c: cond_body.eval(list(cs) + list(c))[0],
                    in_axes=(cc_dims, 0), axis_size=size)(cc, list(carry))

    def cond_fn(carry: list) -> Any:
        return dnp.any(preds(carry))  # go on while some example's predicate holds

    def body_fn(carry: list) -> list:
        p = preds(carry)
        new = vmap(lambda bs, c: body.eval(list(bs) + list(c)), in_axes=(bc_dims, 0),
                   axis_size=size)(bc, list(carry))
        return [dnp.where(dnp.reshape(p, (size,) + (1,) * (np.ndim(a) - 1)), a, b)
                for a, b in zip(new, carry)]

    outs = _while_bind(cond_fn, body_fn, init, "while_loop (vmap)")
    return tuple(outs), (0,) * (len(outs) - 1) + (None,)


def _while_program(avals, out, *, cond_body, body, n_cc, n_bc):
    """The whole-program tier's plan (see ``Primitive.program_form``): a while loop of the
    predicate and body graphs, as ``_while_impl`` runs it."""
    return ("while", {"cond": cond_body.optimized, "body": body.optimized, "cond_consts": n_cc,
                      "body_consts": n_bc})


while_p = Primitive("while_loop", _while_impl, multiple_results=True, abstract=_while_abstract,
                    jvp=_while_jvp, vjp=_while_vjp, batch=_while_batch,
                    register=False, program_form=_while_program)


# A call whose function receives an int operand (a trip count) as a concrete int when it runs,
# so that its work may depend on it even under jit. ``fn(n, *args)`` must give the same result
# for every n at least the true count (guarded loops), which is what makes its batching rule
# (the largest count of the batch) exact.


def _dyn_impl(n: Any, *args: Any, fn: Callable, out_avals: tuple, name: str) -> tuple:
    return tuple(fn(int(n), *args))


def _dyn_abstract(n: Any, *args: Any, fn: Callable, out_avals: tuple, name: str) -> tuple:
    return tuple(ShapedArray(a.shape, a.dtype) for a in out_avals)


def _dyn_call(fn: Callable, n: Any, args: list, out_avals: list, name: str) -> list:
    return list(dyn_call_p(n, *args, fn=fn, out_avals=tuple(out_avals), name=name))


def _dyn_jvp(tangents, outs, n, *args, fn, out_avals, name):
    da = [i for i, a in enumerate(args) if _float(a)]
    ts = [instantiate_zeros(args[i]) if tangents[1 + i] is None else tangents[1 + i]
          for i in da]
    do = [j for j, a in enumerate(out_avals) if _float(a)]

    def fn_jvp(m: int, *xs: Any) -> list:
        primal, tan = list(xs[:len(args)]), list(xs[len(args):])

        def f(p):
            a = _substituted(primal, da, p)
            return fn(m, *a)

        _, to = ad.jvp(f, ([primal[i] for i in da],), (tan,))
        return [to[j] for j in do]

    t = _dyn_call(fn_jvp, n, list(args) + ts, [out_avals[j] for j in do], name + "_jvp")
    res: list[Any] = [None] * len(outs)
    for k, j in enumerate(do):
        res[j] = t[k]
    return tuple(res)


def _dyn_vjp(cts, outs, n, *args, fn, out_avals, name):
    da = [i for i, a in enumerate(args) if _float(a)]
    do = [j for j, a in enumerate(out_avals) if _float(a)]

    def fn_vjp(m: int, *xs: Any) -> list:
        primal, ct = list(xs[:len(args)]), list(xs[len(args):])

        def f(p):
            a = _substituted(primal, da, p)
            o = fn(m, *a)
            return [o[j] for j in do]

        _, pull = ad.vjp(f, [primal[i] for i in da])
        return list(pull(ct)[0])

    g = _dyn_call(fn_vjp, n, list(args) + [cts[j] for j in do], [_aval(args[i]) for i in da],
                  name + "_vjp")
    res: list[Any] = [None] * (1 + len(args))
    for k, i in enumerate(da):
        res[1 + i] = g[k]
    return tuple(res)


def _dyn_batch(args, dims, *, fn, out_avals, name):
    from . import numpy as dnp
    size = next(np.shape(a)[d] for a, d in zip(args, dims) if d is not None)
    n, nd = args[0], dims[0]
    if nd is not None:
        n = dnp.max(n, axis=nd)  # exact: fn gives the same result for any larger count
    in_axes = tuple(dims[1:])

    def fn_b(m: int, *xs: Any) -> list:
        return list(vmap(lambda *a: fn(m, *a), in_axes=in_axes, axis_size=size)(*xs))

    out = _dyn_call(fn_b, n, list(args[1:]),
                    [ShapedArray((size,) + tuple(a.shape), a.dtype) for a in out_avals],
                    name + "_vmap")
    return tuple(out), (0,) * len(out)


dyn_call_p = Primitive("dyn_call", _dyn_impl, multiple_results=True, abstract=_dyn_abstract,
                       jvp=_dyn_jvp, vjp=_dyn_vjp, batch=_dyn_batch,
                       register=False)


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """``val = body_fun(val)`` while ``cond_fun(val)``; the last ``val`` (JAX's
    ``lax.while_loop``).

    ``cond_fun`` returns a scalar boolean; ``body_fun`` keeps the pytree structure, shapes and
    dtypes of ``init_val`` (else a TypeError naming the leaf). On plain values it is a Python
    ``while`` loop. Under a transform it is one primitive whose bodies are traced once, and its
    trip count may depend on the data, under ``jit`` too. Beyond JAX, reverse mode works: the
    loop records its trip count, and the backward pass differentiates that many steps as a
    ``scan``, at run time. Under vmap with a batched predicate the loop runs until every
    example is done, each example's value frozen once its own predicate fails.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> f = lambda x: dp.while_loop(lambda v: v < 10.0, lambda v: v * 2.0, x)
        >>> float(f(1.5)), float(dp.grad(f)(1.5))  # 1.5 -> 12.0 in three doublings
        (12.0, 8.0)
    """
    leaves, tree = tree_flatten(init_val)
    leaves = [_as_array(x) for x in leaves]
    paths = _paths(tree_unflatten(tree, leaves))

    def flat_cond(c: list) -> Any:
        return cond_fun(tree_unflatten(tree, c))

    def flat_body(c: list) -> list:
        out_leaves, out_tree = tree_flatten(body_fun(tree_unflatten(tree, c)))
        if out_tree != tree:
            raise TypeError(f"while_loop: body_fun returned a value of structure {out_tree}, "
                            f"but init_val has structure {tree}")
        return out_leaves

    if not _traced_leaves(leaves):
        done = _while_eager(flat_cond, flat_body, leaves, paths)
        if done is not None:
            return tree_unflatten(tree, done)
    return tree_unflatten(tree, _while_bind(flat_cond, flat_body, leaves, "while_loop",
                                            paths)[:-1])


def _while_eager(cond_fn, body_fn, carry: list, paths: list[str]) -> list | None:
    """The Python loop; None when the first predicate or step shows a closure over a traced
    value (then the caller traces the bodies)."""
    first = True
    while True:
        p = cond_fn(carry)
        if isinstance(p, Tracer):
            return None
        _check_pred(p, "while_loop: cond_fun", integer=False)
        if not p:
            return carry
        new = body_fn(carry)
        if first:
            if _traced_leaves(new):
                return None
            _check_same("while_loop: body_fun's output carry", [_aval(v) for v in new],
                        [_aval(v) for v in carry], paths,
                        "the carry must keep its shape and dtype from step to step (cast it, "
                        "e.g. with .astype, or give init_val the dtype the body computes)")
            first = False
        carry = new


def fori_loop(lower: Any, upper: Any, body_fun: Callable, init_val: Any) -> Any:
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``; the last ``val`` (JAX's
    ``lax.fori_loop``).

    With concrete bounds (Python or NumPy ints) it is a :func:`scan` over the indices (so
    ``checkpoint``-free reverse mode, jvp and vmap of a scan apply); with traced bounds (under
    jit) a :func:`while_loop`, which diffprog can also differentiate in reverse mode.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> float(dp.fori_loop(0, 5, lambda i, x: x + i, 0.0))
        10.0
    """
    for name, b in (("lower", lower), ("upper", upper)):
        if np.ndim(b) != 0 or np.result_type(b).kind not in "iu":
            raise TypeError(f"fori_loop: {name} must be a scalar integer, got "
                            f"{_describe(_aval(b))}")
    if not isinstance(lower, Tracer) and not isinstance(upper, Tracer):
        lo, hi = int(lower), int(upper)
        idx = np.arange(lo, max(lo, hi), dtype=np.int64)
        if len(idx) == 0:
            return init_val
        return scan(lambda c, i: (body_fun(i, c), None), init_val, idx)[0]
    from .numpy import astype
    lo = astype(lower, np.int64) if isinstance(lower, Tracer) else np.int64(lower)
    hi = astype(upper, np.int64) if isinstance(upper, Tracer) else np.int64(upper)
    _, val = while_loop(lambda c: c[0] < hi, lambda c: (c[0] + 1, body_fun(c[0], c[1])),
                        (lo, init_val))
    return val
