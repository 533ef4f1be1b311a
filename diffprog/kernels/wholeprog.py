"""The whole-program tier: a whole jitted graph runs in one call of one compiled kernel.

On graphs of many small operations (an unrolled RK4 integrator's gradient, the Hessian of a
small model) the time of a call is the per-node dispatch of the other tiers: a NumPy call, an
allocation and a line of Python per node, about a microsecond each, against nanoseconds of
arithmetic. Here the graph becomes a table of instructions, one row per node, over one
float64 arena, and one numba kernel (:func:`diffprog.kernels._whole_kernel.run`, compiled
once per installation and cached like the blocked interpreter's, so no program ever waits
for numba) runs the table: a call costs one dispatch, then per node a loop over its elements.

A graph is eligible when all of its values are float64 (integer and bool inputs, and bools
made by comparisons, are held as float64 too: only nodes with a float64 result read them, and
NumPy computes those in float64 as well) and every node has a form here:

- an elementwise node with an opcode of the blocked interpreter
  (:func:`diffprog.kernels.interp.opcode`: the same scalar forms, the same fast-math
  functions) is a loop over its output; an operand broadcast along some axes only is first
  gathered to the output's size;
- any other node needs its primitive's ``program_form`` field (see
  :class:`~diffprog.core.Primitive`): a plan on the operands' elements in C order, computed
  from shapes and params when the table is built: the same elements (``reshape``), a gather
  through a constant index array (``transpose``, ``getitem``, ``concatenate``), a scatter-add
  (``scatter_add``, ``reduce_sum``) or a matrix product (``matmul``); or None for operands
  or params it does not cover;
- a loop: ``scan``'s plan is ``("loop", {"body": graph, ...})`` and ``while_loop``'s
  ``("while", {"cond": graph, "body": graph, ...})``; the body's rows (built the same way,
  recursively: nested loops too) run between a ``LOOP`` and an ``ENDLOOP`` row (a ``WHILE``,
  the predicate's rows, a ``BRANCH`` and an ``ENDWHILE`` row), so the whole loop is one kernel
  call, with no Python per step. The carries live in the node's carry outputs; each step
  copies its slice of the xs in and its ys (and saved carries) out, and a carry's new value
  is written straight into its slot when nothing reads the old one later. A matrix-vector
  product whose matrix is the same at every step reads it transposed once before the loop.
  A while loop under reverse mode is not eligible: its backward pass is built when the trip
  count is known (``dyn_call``); nor are loops over other dtypes (float32, integer carries,
  complex).

Anything else (other dtypes, a primitive without a form, a matrix product of more than
:data:`MAX_MATMUL` multiply-adds, which BLAS does faster, more than :data:`MAX_NODES`
nodes) makes the graph ineligible: it keeps its other tiers. Values take slices of the
arena, reused once a value is dead (a reshape shares its operand's slice); constants live in
a second, read-only arena. Reductions and products add in a plain loop, not
pairwise or through BLAS, so results agree with the NumPy executor within rounding (as the
other tiers do), not bit for bit. :func:`whole_program` is what the background compilation of
:mod:`diffprog.kernels.tiers` calls; it also checks the program against the NumPy executor
on stand-in inputs before offering it (of a program with a while loop, which need not end
on them, the graphs of its loops' bodies and predicates, each on its own).

Example:
    >>> import numpy as np, diffprog.numpy as dnp
    >>> from diffprog.jit import trace_graph
    >>> g = trace_graph(lambda x, w: dnp.tanh(x @ w) * 2.0, (np.ones(3), np.eye(3)))
    >>> table = program_table(g)
    >>> table is not None and len(table.code) <= len(g.nodes)  # (reshapes need no row)
    True
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph import Graph, Node

__all__ = ["whole_program", "program_table", "Table", "load"]

F64 = np.dtype(np.float64)
# Products of more multiply-adds than this make a graph ineligible: the kernel's plain loop is
# several times slower than BLAS on them, and such a graph's time is not per-node dispatch.
MAX_MATMUL = 1 << 18
# Larger graphs keep the other tiers: the table is built in Python, in time that grows with
# the nodes times the free segments of the arena (19,000 nodes: ~6 s on a loaded machine).
MAX_NODES = 10000
# Arenas of at least this many float64 are reused by the calls of a thread.
REUSE_ARENA = 1 << 15


def _comparison_table() -> dict:
    import operator
    return {operator.lt: 61, operator.le: 62, operator.gt: 63, operator.ge: 64,
            operator.eq: 65, operator.ne: 66, np.less: 61, np.less_equal: 62, np.greater: 63,
            np.greater_equal: 64, np.equal: 65, np.not_equal: 66}


# comparisons by their scalar forms (the kernel's LT ... NE); 1.0 or 0.0
_COMPARISONS = _comparison_table()


def _comparison(node: Node, dtypes: list) -> int | None:
    """The kernel's opcode of a comparison of float64 values (with an integer or bool on one
    side at most: two integers compare exactly, not as float64)."""
    form = node.prim.scalar
    try:
        op = _COMPARISONS.get(form) if not isinstance(form, dict) else None
    except TypeError:
        return None
    if op is None or node.params or len(node.args) != 2 or F64 not in dtypes:
        return None
    return op


def _carry_slots(body: Graph, carry: list[int], nk: int) -> dict[int, int]:
    """The body's output values that are one carry each (and nothing else), with the offset
    of that carry's slot: what they may be written straight into."""
    outs = [i for _, i, _ in body.outputs]
    return {i: d for i, d in zip(outs[:nk], carry) if i >= body.n_in and outs.count(i) == 1}


class _Ineligible(Exception):
    """The graph has a node the whole-program tier cannot express."""


class _Aval:
    """Shape and dtype of an operand, as a ``program_form`` sees it."""

    __slots__ = ("shape", "dtype", "ndim")

    def __init__(self, shape: tuple, dtype: Any) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)


class Table:
    """A graph as instructions: ``code`` (rows of :data:`_whole_kernel.WIDTH` int64), the
    arena's size, the constant arena ``cm``, the index arena ``ix``, where the inputs go and
    where the outputs are (offset, size, shape, dtype per graph output value), and whether it
    has a while loop (``unbounded``)."""

    __slots__ = ("code", "size", "cm", "ix", "inputs", "outputs", "unbounded")


class _Builder:
    def __init__(self, graph: Graph) -> None:
        from . import _whole_kernel as wk
        self.wk = wk
        self.graph = graph
        self.rows: list[list[int]] = []
        self.consts: list[np.ndarray] = []
        self.n_consts = 0
        self.const_at: dict[tuple, int] = {}
        self.indices: list[np.ndarray] = []
        self.n_index = 0
        self.index_at: dict[bytes, int] = {}
        self.top = 0
        self.free: list[tuple[int, int]] = []  # (offset, size), sorted
        self.where: dict[int, int] = {}   # value -> arena offset (of the graph being emitted)
        self.shapes: dict[int, tuple] = {}
        self.dtypes: dict[int, np.dtype] = {}  # inputs of integer or bool dtype
        self.count = 0  # nodes, loop bodies' included
        self.unbounded = False  # a while loop: it may not end on stand-in inputs
        # in a scan's body: rows to run before its loop, their results (by operand), and the
        # body's values that are the same at every step (its constants)
        self.hoist: list | None = None
        self.hoisted: dict = {}
        self.invariant: set[int] = set()

    # -- the arenas -------------------------------------------------------------------------

    def alloc(self, n: int) -> int:
        """The best-fitting free segment of at least ``n`` (the rest stays free), else new
        room at the top: a small arena stays in cache."""
        if n == 0:
            return self.top
        best = None
        for k, (_, size) in enumerate(self.free):
            if size >= n and (best is None or size < self.free[best][1]):
                best = k
                if size == n:
                    break
        if best is None:
            if self.free and sum(self.free[-1]) == self.top:  # grow the free end
                off, _ = self.free.pop()
                self.top = off + n
                return off
            off = self.top
            self.top += n
            return off
        off, size = self.free[best]
        if size == n:
            del self.free[best]
        else:
            self.free[best] = (off + n, size - n)
        return off

    def release(self, off: int, n: int) -> None:
        """Free a segment, merged with its free neighbours (``free`` is sorted by offset)."""
        if n == 0:
            return
        free = self.free
        k = bisect.bisect(free, (off, n))
        if k < len(free) and off + n == free[k][0]:
            n += free[k][1]
            del free[k]
        if k > 0 and sum(free[k - 1]) == off:
            off, n = free[k - 1][0], free[k - 1][1] + n
            del free[k - 1]
            k -= 1
        free.insert(k, (off, n))

    def const(self, value: Any) -> int:
        """A constant's operand code (negative: the constant arena)."""
        a = np.asarray(value)
        if a.dtype != F64 and a.dtype.kind not in "biu" \
                and not (type(value) in (int, float) and a.dtype.kind in "if"):
            raise _Ineligible(f"a constant of dtype {a.dtype}")
        a = np.ascontiguousarray(a, dtype=F64).reshape(-1)
        key = (a.size, a.tobytes())
        off = self.const_at.get(key)
        if off is None:
            off = self.const_at[key] = self.n_consts
            self.consts.append(a)
            self.n_consts += a.size
        return -1 - off

    def index(self, where: np.ndarray) -> int:
        where = np.ascontiguousarray(where, dtype=np.int64).reshape(-1)
        key = where.tobytes()
        off = self.index_at.get(key)
        if off is None:
            off = self.index_at[key] = self.n_index
            self.indices.append(where)
            self.n_index += where.size
        return off

    def dtype_of(self, parent: int, arg: Any) -> np.dtype:
        """The dtype of an operand (of the graph's values, only inputs may be other than
        float64)."""
        if parent >= 0:
            return self.dtypes.get(parent, F64)
        return np.asarray(arg).dtype

    def operand(self, parent: int, arg: Any) -> tuple[int, tuple]:
        if parent >= 0:
            return self.where[parent], self.shapes[parent]
        return self.const(arg), np.shape(arg)

    def row(self, *fields: int) -> None:
        r = [int(f) for f in fields]
        self.rows.append(r + [0] * (self.wk.WIDTH - len(r)))

    # -- nodes ------------------------------------------------------------------------------

    def node(self, node: Node, dst: int, temps: list) -> int | None:
        """Append ``node``'s instructions, writing at ``dst``; or return the value whose
        storage it shares (a reshape, an identity broadcast: no instruction)."""
        prim = node.prim
        for p in node.parents:
            if p >= 0 and p not in self.where:
                raise _Ineligible("a value computed outside the graph")  # (cannot happen)
        out_shape = tuple(node.out.shape)
        size = math.prod(out_shape)
        from .interp import opcode
        op = None
        if prim.scalar is not None:
            dts = [self.dtype_of(p, a) for p, a in zip(node.parents, node.args)]
            if all(dt == F64 for dt in dts):
                op = opcode(node)
            else:  # integer operands of a float64 result: NumPy computes on them as float64
                op = opcode(Node(prim, [_Aval(np.shape(a), F64) if dt != F64 else a
                                        for a, dt in zip(node.args, dts)],
                                 node.params, node.out, node.parents, node.idx))
            if op is None and np.dtype(node.out.dtype) == np.bool_:
                op = _comparison(node, dts)
        if np.dtype(node.out.dtype) == np.bool_ and op is not None \
                and op != 3 and op not in _COMPARISONS.values():
            raise _Ineligible(f"{prim.name} gives a bool")
        if op == 3 and node.parents[0] >= 0 and math.prod(self.shapes[node.parents[0]]) == size:
            return node.parents[0]  # broadcast_to adding size-1 axes: the same elements
        if op is not None:
            ops = []
            for p, a in zip(node.parents, node.args):
                off, shape = self.operand(p, a)
                n = math.prod(shape)
                if n == size:
                    ops += [off, 1]
                elif n == 1:
                    ops += [off, 0]
                else:  # broadcast along some axes: gathered to the output's size first
                    where = np.broadcast_to(np.arange(n).reshape(shape), out_shape)
                    if op == 3:  # the broadcast itself: gathered straight into place
                        self.row(self.wk.GATHER, dst, size, off, 0, self.index(where), 0)
                        return None
                    tmp = self.alloc(size)
                    temps.append((tmp, size))
                    self.row(self.wk.GATHER, tmp, size, off, 0, self.index(where), 0)
                    ops += [tmp, 1]
            if len(ops) == 2:
                ops += [0, 0]
            self.row(op, dst, size, *ops)
            return None
        form = prim.program_form
        if form is None:
            raise _Ineligible(f"{prim.name} has neither an interpreter opcode nor a "
                              "program_form")
        avals, offs = [], []
        for p, a in zip(node.parents, node.args):
            off, shape = self.operand(p, a)
            dtype = self.dtype_of(p, a)
            avals.append(_Aval(shape, dtype))
            offs.append((off, math.prod(shape)))
        plan = form(avals, _Aval(out_shape, node.out.dtype), **node.params)
        if plan is None:
            raise _Ineligible(f"{prim.name}'s program_form declines these operands")
        what = plan[0]
        if np.dtype(node.out.dtype) != F64 and what not in ("same", "gather"):
            raise _Ineligible(f"{prim.name} gives {node.out.dtype}")  # (bools only move)
        if what == "same" and len(offs) == 1 and offs[0][1] == size:
            if node.parents[0] >= 0:
                return node.parents[0]
            self.row(3, dst, size, offs[0][0], 1)  # the identity opcode: a copy
        elif what == "gather" and len(plan[1]) == size:
            if len(offs) == 1:
                src = offs[0][0]
            else:  # from the operands laid end to end: copied together first
                total = sum(n for _, n in offs)
                src = self.alloc(total)
                temps.append((src, total))
                start = 0
                for off, n in offs:
                    self.row(3, src + start, n, off, 1)
                    start += n
            self.row(self.wk.GATHER, dst, size, src, 0, self.index(plan[1]), 0)
        elif what == "scatter" and len(offs) == 1 and len(plan[1]) == offs[0][1]:
            signed = len(plan) > 2 and plan[2] == "assign"
            self.row(self.wk.SCATTER, dst, offs[0][1], offs[0][0], 0, self.index(plan[1]), 0,
                     size, int(signed))
        elif what == "matmul" and len(offs) == 2:
            _, batch, m, k, n, bx, by = plan
            if batch * m * n != size or offs[0][1] != (batch if bx else 1) * m * k \
                    or offs[1][1] != (batch if by else 1) * k * n:
                raise _Ineligible("a matmul plan that does not match its operands")
            if batch * m * k * n > MAX_MATMUL:
                raise _Ineligible("a product large enough for BLAS to win")
            if batch == 1 and n == 1 and k > 1:
                at = self.transposed(node.parents[0], node.args[0], offs[0][0], m, k)
                if at is not None:  # the matrix is the same at every step: SIMD over rows
                    self.row(self.wk.MATVEC_T, dst, m, at, k, offs[1][0])
                    return None
            self.row(self.wk.MATMUL, dst, batch, offs[0][0], int(bx), offs[1][0], int(by),
                     m, k, n)
        else:
            raise _Ineligible(f"{prim.name}: a plan {what!r} that does not fit its operands")
        return None

    def transposed(self, parent: int, arg: Any, off: int, m: int, k: int) -> int | None:
        """The offset of an ``m x k`` matrix operand stored transposed, when it is the same
        at every step of the loop being emitted (a constant, or a constant of the body: then
        transposed once, before the loop); else None."""
        t = np.arange(m * k).reshape(m, k).T
        if parent < 0:
            return self.const(np.asarray(arg, dtype=F64).reshape(-1)[t])
        if self.hoist is None or parent not in self.invariant:
            return None
        key = (off, m, k)
        at = self.hoisted.get(key)
        if at is None:
            # new room at the top: the room of the body's values (written at every step) is
            # below it
            at = self.hoisted[key] = self.top
            self.top += m * k
            self.hoist.append([self.wk.GATHER, at, m * k, off, 0, self.index(t), 0, 0, 0, 0])
        return at

    def loop(self, node: Node, dsts: list[int], spec: dict) -> None:
        """Append the rows of a loop plan (see ``Primitive.program_form``): its body's rows
        between a ``LOOP`` and an ``ENDLOOP`` row. The carries live in the node's carry
        outputs throughout; each step reads its slice of the xs into a slot of the body's,
        writes its ys (and the saved carries) into their rows, then copies the body's
        carries back."""
        wk = self.wk
        body: Graph = spec["body"]
        nc, nk, length = spec["consts"], spec["carry"], spec["length"]
        reverse, save = int(bool(spec["reverse"])), spec["save"]
        # (an operand the body does not read is not read: the index of a fori_loop body that
        # does not use it is an integer)
        read = {p for n in body.nodes for p in n.parents} | {i for _, i, _ in body.outputs}
        read.update(range(nc, nc + nk))  # (the carries are copied in)
        ops = [self.operand(p, a) if i in read else (0, ())
               for i, (p, a) in enumerate(zip(node.parents, node.args))]
        ny = len(body.outputs) - nk
        if len(ops) != body.n_in or len(dsts) != nk + ny + (nk if save else 0):
            raise _Ineligible("a loop plan that does not match its node")
        carry, ys, saved = dsts[:nk], dsts[nk:nk + ny], dsts[nk + ny:]
        c_size = [math.prod(v.shape) for v in body.in_values[nc:nc + nk]]
        for (off, _), d, n in zip(ops[nc:nc + nk], carry, c_size):
            if n:
                self.row(3, d, n, off, 1)  # the initial carries, into place
        held = []
        x_slots = []
        for i, v in enumerate(body.in_values[nc + nk:], nc + nk):
            n = math.prod(v.shape) if i in read else 0
            x_slots.append(self.alloc(n))
            held.append((x_slots[-1], n))
        ctr = self.alloc(1)
        held.append((ctr, 1))
        start = len(self.rows)
        self.row(wk.LOOP, ctr, length)
        if save:  # the carry entering every ``save``-th step (in the order the steps run)
            for d, src, n in zip(saved, carry, c_size):
                self.row(wk.ROW, d, n, src, ctr, 1, 0, length, save)
        for i, slot, (off, _), v in zip(range(nc + nk, body.n_in), x_slots, ops[nc + nk:],
                                        body.in_values[nc + nk:]):
            if i in read:
                self.row(wk.ROW, slot, math.prod(v.shape), off, ctr, 0, reverse, length, 1)
        outer = self.where, self.shapes, self.dtypes, self.hoist, self.hoisted, self.invariant
        self.hoist, self.hoisted, self.invariant = [], {}, set(range(nc))
        in_where = [off for off, _ in ops[:nc]] + carry + x_slots
        where, finish = self.emit(body, in_where, own_inputs=False,
                                  inplace=_carry_slots(body, carry, nk))
        hoist, hoisted = self.hoist, self.hoisted
        self.where, self.shapes, self.dtypes, self.hoist, self.hoisted, self.invariant = outer
        srcs = [where[i] if i >= 0 else self.const(v) for _, i, v in body.outputs]
        for d, src, (_, _, v) in zip(ys, srcs[nk:], body.outputs[nk:]):
            self.row(wk.ROW, d, math.prod(v.shape), src, ctr, 1, reverse, length, 1)
        self.carry_back(carry, srcs, c_size, held)
        finish()
        self.row(wk.ENDLOOP, ctr, length, 0, 0, 0, 0, start)
        self.rows[start][7] = len(self.rows) - 1
        if hoist:  # the rows computing what every step reads, before the loop
            for r in self.rows[start:]:  # (the jumps into the rows that move)
                if r[0] in (wk.LOOP, wk.ENDLOOP, wk.BRANCH, wk.ENDWHILE):
                    r[7] += len(hoist)
            self.rows[start:start] = hoist
            held += [(at, m * k) for (_, m, k), at in hoisted.items()]
        if save == 1:  # and the last carry
            for d, src, n in zip(saved, carry, c_size):
                if n:
                    self.row(3, d + length * n, n, src, 1)
        for off, n in held:
            self.release(off, n)

    def carry_back(self, carry: list[int], srcs: list[int], sizes: list[int],
                   held: list) -> None:
        """Rows copying a loop body's output carries (at ``srcs``) into the carries' slots."""
        copies = [(d, src, n) for d, src, n in zip(carry, srcs, sizes) if n and d != src]
        if any(0 <= s < d2 + n2 and d2 < s + n for _, s, n in copies for d2, _, n2 in copies):
            # a carry read after another carry's slot was written (carries swapped): through
            # temporaries
            tmps = []
            for _, src, n in copies:
                tmps.append(self.alloc(n))
                held.append((tmps[-1], n))
                self.row(3, tmps[-1], n, src, 1)
            copies = [(d, tmp, n) for (d, _, n), tmp in zip(copies, tmps)]
        for d, src, n in copies:
            self.row(3, d, n, src, 1)

    def while_loop(self, node: Node, dsts: list[int], spec: dict) -> None:
        """Append the rows of a while plan: the predicate's rows, a ``BRANCH`` out of the
        loop, the body's rows, between a ``WHILE`` and an ``ENDWHILE`` row. The carries live
        in the node's carry outputs, the trip count in its last output."""
        wk = self.wk
        self.unbounded = True
        cond: Graph = spec["cond"]
        body: Graph = spec["body"]
        ncc, nbc = spec["cond_consts"], spec["body_consts"]
        nk = len(body.outputs)
        if len(node.parents) != ncc + nbc + nk or len(dsts) != nk + 1 \
                or cond.n_in != ncc + nk or body.n_in != nbc + nk or len(cond.outputs) != 1:
            raise _Ineligible("a while plan that does not match its node")
        for o in node.out[:nk]:
            if np.dtype(o.dtype) != F64:
                raise _Ineligible(f"a while loop's carry of dtype {o.dtype}")
        ops = [self.operand(p, a) for p, a in zip(node.parents, node.args)]
        carry, ctr = dsts[:nk], dsts[nk]
        c_size = [math.prod(v.shape) for v in body.in_values[nbc:]]
        for (off, _), d, n in zip(ops[ncc + nbc:], carry, c_size):
            if n:
                self.row(3, d, n, off, 1)  # the initial carries, into place
        held: list = []
        start = len(self.rows)
        self.row(wk.WHILE, ctr)
        outer = self.where, self.shapes, self.dtypes, self.hoist
        self.hoist = None  # (nothing is moved out of a while loop)
        where, finish = self.emit(cond, [off for off, _ in ops[:ncc]] + carry, own_inputs=False)
        _, i, v = cond.outputs[0]
        pred = where[i] if i >= 0 else self.const(v)
        branch = len(self.rows)
        self.row(wk.BRANCH, 0, 1, pred)
        finish()
        where, finish = self.emit(body, [off for off, _ in ops[ncc:ncc + nbc]] + carry,
                                  own_inputs=False, inplace=_carry_slots(body, carry, nk))
        self.where, self.shapes, self.dtypes, self.hoist = outer
        self.carry_back(carry, [where[i] if i >= 0 else self.const(v)
                                for _, i, v in body.outputs], c_size, held)
        finish()
        self.row(wk.ENDWHILE, ctr, 0, 0, 0, 0, 0, start)
        self.rows[branch][7] = len(self.rows) - 1
        for off, n in held:
            self.release(off, n)

    def multi(self, node: Node, dsts: list[int]) -> None:
        """Append the rows of a node with several results: only a loop plan has them."""
        form = node.prim.program_form
        if form is None:
            raise _Ineligible(f"{node.prim.name} has several results and no program_form")
        avals = []
        for p, a in zip(node.parents, node.args):
            shape = self.shapes[p] if p >= 0 else np.shape(a)
            avals.append(_Aval(shape, self.dtype_of(p, a)))
        plan = form(avals, tuple(_Aval(o.shape, o.dtype) for o in node.out), **node.params)
        if plan is not None and plan[0] == "while":
            self.while_loop(node, dsts, plan[1])
            return
        if plan is None or plan[0] != "loop":
            raise _Ineligible(f"{node.prim.name} has several results and no loop plan")
        for o in node.out:
            if np.dtype(o.dtype) != F64:
                raise _Ineligible(f"{node.prim.name} gives {o.dtype}")
        self.loop(node, dsts, plan[1])

    def in_place(self, start: int, slot: int, n: int, pos: int, last: dict,
                 keep: set) -> bool:
        """May the node just emitted (rows from ``start``) write its value at ``slot`` (its
        carry's, of ``n`` elements) instead? Only a single elementwise row (it reads element
        ``j`` of each operand before it writes element ``j``) whose operands are the slot
        itself or elsewhere, when no value held in the slot is read later."""
        if len(self.rows) != start + 1 or n == 0 or not self.rows[-1][0] < self.wk.GATHER:
            return False
        row = self.rows[-1]
        operands = [(row[3], row[4])] + ([(row[5], row[6])] if row[0] >= 50 else [])
        for off, stride in operands:
            if off >= 0 and off < slot + n and slot < off + max(n * stride, 1) \
                    and not (off == slot and stride == 1):
                return False
        for v, off in self.where.items():
            if slot <= off < slot + n and (v in keep or last.get(v, -1) > pos):
                return False
        return True

    def emit(self, graph: Graph, in_where: list[int] | None = None,
             own_inputs: bool = True, inplace: dict[int, int] | None = None
             ) -> tuple[dict[int, int], Callable[[], None]]:
        """Append the rows of ``graph``'s nodes. Its inputs are at ``in_where`` (None: new
        room; with ``own_inputs`` their room is freed once they are dead). ``inplace``: output
        values that may be written straight at the given offsets (a loop's carries, see
        :meth:`in_place`). Returns where each value is and ``finish()``, which frees the room
        of the outputs (call it once they are read)."""
        self.where, self.shapes, self.dtypes = {}, {}, {}
        keep = {idx for _, idx, _ in graph.outputs if idx >= 0}
        last: dict[int, int] = {}
        for pos, node in enumerate(graph.nodes):
            for p in node.parents:
                if p >= 0:
                    last[p] = pos
        block: dict[int, tuple[int, int]] = {}  # value -> the (offset, size) it lives in
        users: dict[tuple[int, int], int] = {}  # block -> its live values
        read = {p for n in graph.nodes for p in n.parents} | keep
        for i, v in enumerate(graph.in_values):
            dtype = np.dtype(v.dtype)
            if dtype != F64:
                if dtype.kind not in "biu" and (own_inputs or i in read):
                    raise _Ineligible(f"an input of dtype {v.dtype}")
                # integers and bools are held as float64 (exact below 2**53; rounded above,
                # as NumPy converts them): only nodes with a float64 result read them, and
                # NumPy computes those in float64 too
                self.dtypes[i] = dtype
            shape = tuple(v.shape)
            n = math.prod(shape)
            self.shapes[i] = shape
            self.where[i] = self.alloc(n) if in_where is None else in_where[i]
            if own_inputs:
                block[i] = (self.where[i], n)
                users[block[i]] = 1

        def dead(value: int) -> None:  # a block is free once no value in it is live
            if value not in block:  # (an input the graph does not own)
                return
            users[block[value]] -= 1
            if not users[block[value]]:
                self.release(*block[value])

        for pos, node in enumerate(graph.nodes):
            self.count += 1
            if self.count > MAX_NODES:
                raise _Ineligible("too many nodes")
            outs = node.out if node.prim.multiple_results else (node.out,)
            for o in outs:  # (bools held as float64: comparisons, moves; a loop's own checks)
                if np.dtype(o.dtype) != F64 and not (node.prim.multiple_results
                                                     or np.dtype(o.dtype) == np.bool_):
                    raise _Ineligible(f"{node.prim.name} gives {o.dtype}")
            shapes = [tuple(o.shape) for o in outs]
            sizes = [math.prod(shape) for shape in shapes]
            dsts = [self.alloc(n) for n in sizes]  # before the operands are released
            temps: list = []
            if node.prim.multiple_results:
                self.multi(node, dsts)
                alias = None
            else:
                start = len(self.rows)
                alias = self.node(node, dsts[0], temps)
                slot = (inplace or {}).get(node.idx)
                if slot is not None and alias is None \
                        and self.in_place(start, slot, sizes[0], pos, last, keep):
                    self.rows[-1][1] = slot  # written straight into its carry's slot
                    self.release(dsts[0], sizes[0])
                    alias = -2
            where, shapes_now = self.where, self.shapes
            for k, (shape, n, dst) in enumerate(zip(shapes, sizes, dsts)):
                idx = node.idx + k
                shapes_now[idx] = shape
                if np.dtype(outs[k].dtype) != F64:
                    self.dtypes[idx] = np.dtype(outs[k].dtype)
                if alias is None:
                    where[idx] = dst
                    block[idx] = (dst, n)
                    users[block[idx]] = 1
                elif alias == -2:  # in a slot the graph does not own
                    where[idx] = slot
                else:  # shares its operand's storage
                    self.release(dst, n)
                    where[idx] = where[alias]
                    if alias in block:
                        block[idx] = block[alias]
                        users[block[alias]] += 1
            for off, size in temps:
                self.release(off, size)
            for p in {p for p in node.parents if p >= 0}:
                if last[p] == pos and p not in keep:
                    dead(p)
            for k in range(len(outs)):
                if node.idx + k not in last and node.idx + k not in keep:
                    dead(node.idx + k)

        def finish() -> None:
            for idx in keep:
                if idx >= graph.n_in:
                    dead(idx)
        return self.where, finish

    def build(self) -> Table:
        graph = self.graph
        where, _ = self.emit(graph)
        table = Table()
        table.code = np.array(self.rows, dtype=np.int64).reshape(-1, self.wk.WIDTH)
        table.size = self.top
        table.cm = np.concatenate(self.consts) if self.consts else np.zeros(0)
        table.ix = np.concatenate(self.indices) if self.indices else np.zeros(0, np.int64)
        table.unbounded = self.unbounded
        table.inputs = [(where[i], math.prod(v.shape), tuple(v.shape))
                        for i, v in enumerate(graph.in_values)]
        table.outputs = {idx: (where[idx], math.prod(self.shapes[idx]), self.shapes[idx],
                               self.dtypes.get(idx, F64))
                         for _, idx, _ in graph.outputs if idx >= 0}
        return table


def program_table(graph: Graph) -> Table | None:
    """``graph`` as a table of instructions, or None when it is not eligible (see the module's
    docstring). Needs numba (the kernel's module defines the opcodes)."""
    if not graph.nodes or len(graph.nodes) > MAX_NODES:
        return None
    try:
        return _Builder(graph).build()
    except _Ineligible:
        return None


_kernel: Any = None
_kernel_lock = threading.Lock()
_kernel_failed = False


def load() -> Any:
    """The whole-program kernel, loaded (or, once per installation, compiled) on first use;
    None where numba is missing or the build failed. Thread-safe."""
    global _kernel, _kernel_failed
    if _kernel is not None or _kernel_failed:
        return _kernel
    with _kernel_lock:
        if _kernel is None and not _kernel_failed:
            try:
                from . import _whole_kernel as wk
                wk.run.compile(wk.SIGNATURE)
                wk.run(np.zeros((0, wk.WIDTH), np.int64), np.zeros(1), np.zeros(1),
                       np.zeros(1, np.int64))
                _kernel = wk.run
            except Exception:
                _kernel_failed = True
    return _kernel


def whole_program(graph: Graph, check: bool = True) -> Callable[[list], list] | None:
    """A runner of ``graph`` (``run(inputs) -> outputs``) on the whole-program kernel, or None
    when the graph is not eligible, numba is missing, or the program fails its check against
    the NumPy executor on stand-in inputs.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> from diffprog.jit import trace_graph
        >>> g = trace_graph(dp.grad(lambda x: dnp.sum(dnp.sin(x) ** 2)), (np.ones(3),))
        >>> run = whole_program(g)
        >>> run is None or bool(np.allclose(run([np.ones(3)])[0], np.sin(2.0)))
        True
    """
    kernel = load()
    if kernel is None:
        return None
    table = program_table(graph)
    if table is None:
        return None
    code, size, cm, ix = table.code, table.size, table.cm, table.ix
    ins = [(off, off + n) for off, n, _ in table.inputs]
    outs = table.outputs
    plan = []
    cast = []  # (position, dtype): outputs of other dtypes (bools, a trip count) held as float64
    for pos, (_, idx, value) in enumerate(graph.outputs):
        if idx >= graph.n_in:
            off, n, shape, dtype = outs[idx]
            if dtype != F64:
                cast.append((pos, dtype))
            # a small output of a large arena is copied, so that it does not keep the arena;
            # a 0-d one is a NumPy scalar, as the NumPy executor's full reductions give
            plan.append((4 if shape == () else 0 if 2 * n >= size else 3, off, off + n, shape))
        elif idx >= 0:
            plan.append((1, idx, 0, None))
        else:
            plan.append((2, value, 0, None))
    empty, ravel = np.empty, np.ravel
    if size >= REUSE_ARENA:
        # a large arena is kept per thread (a new one would be mapped and faulted in at every
        # call); the outputs are then copies
        plan = [(3 if kind == 0 else kind, a, b, shape) for kind, a, b, shape in plan]
        arenas = threading.local()

        def arena() -> np.ndarray:
            mem = getattr(arenas, "mem", None)
            if mem is None:
                mem = arenas.mem = empty(size)
            return mem
    else:
        def arena() -> np.ndarray:
            return empty(size)

    def run(inputs: list) -> list:
        mem = arena()
        for (lo, hi), x in zip(ins, inputs):
            mem[lo:hi] = ravel(x)
        kernel(code, mem, cm, ix)
        out = [mem[a:b].reshape(shape) if kind == 0 else inputs[a] if kind == 1
               else mem[a:b].reshape(shape).copy() if kind == 3 else mem[a] if kind == 4
               else a for kind, a, b, shape in plan]
        for pos, dtype in cast:
            v = out[pos]
            out[pos] = dtype.type(v) if np.ndim(v) == 0 else v.astype(dtype)
        return out

    # a program with a while loop need not end on stand-in inputs: the graphs of its loops'
    # bodies and predicates are checked instead, each on its own
    if check and not (_parts_agree(graph) if table.unbounded else _agrees(graph, run)):
        return None
    return run


def _parts_agree(graph: Graph) -> bool:
    """Do the body and predicate graphs of ``graph``'s loops agree with the NumPy executor on
    stand-in inputs, each run as a program of its own (recursively: a nested while loop's
    parts in turn)? A part without a table of its own is not checked. (The rows of the loops
    themselves, and the nodes outside them, are checked by the tests only.)"""
    avals: dict = dict(enumerate(graph.in_values))
    for node in graph.nodes:
        outs = node.out if node.prim.multiple_results else (node.out,)
        for k, o in enumerate(outs):
            avals[node.idx + k] = o
        form = node.prim.program_form
        if not node.prim.multiple_results or form is None:
            continue
        ins = [_Aval(avals[p].shape, avals[p].dtype) if p >= 0
               else _Aval(np.shape(a), np.asarray(a).dtype)
               for p, a in zip(node.parents, node.args)]
        plan = form(ins, tuple(_Aval(o.shape, o.dtype) for o in outs), **node.params)
        parts = [] if plan is None else [plan[1][key] for key in ("cond", "body")
                                         if plan[0] in ("loop", "while") and key in plan[1]]
        for part in parts:
            if program_table(part) is not None and whole_program(part) is None:
                return False
    return True


def _agrees(graph: Graph, run: Callable) -> bool:
    """Does ``run`` give the NumPy executor's shapes and values on stand-in inputs? (A last
    guard against a wrong ``program_form``; the tests check edge values.)"""
    from .steps import NodeStep, sequence
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(0.5, 1.5, tuple(v.shape)) if np.dtype(v.dtype) == F64
              else rng.integers(0, 3, tuple(v.shape)).astype(v.dtype) for v in graph.in_values]
    with np.errstate(all="ignore"):
        want = sequence(graph, [NodeStep(n) for n in graph.nodes])(inputs)
        got = run(inputs)
    # rounding differs (plain-loop sums, fast-math functions), and cancellation can make it
    # large relative to a small output: tolerate it relative to the largest output
    scale = max([float(np.max(np.abs(b), initial=0.0, where=np.isfinite(b)))
                 for b in map(np.asarray, want)] + [1.0])
    for a, b in zip(got, want):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if not np.allclose(a, b, rtol=1e-7, atol=1e-9 * scale, equal_nan=True):
            return False
    return True
