"""What the timing workloads share: the measurement loop, gradient checks, tables.

A workload builds a list of :class:`System` (a name and a zero-argument call) and hands it to
:func:`time_table`, which warms each call up, times it, checks its result against the reference
system's and returns a :class:`Table` with the raw numbers (for JSON, the chart and the bars) and
the formatted markdown rows.
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from .peers import Peers, backends

REL_TOL = 1e-8  # every gradient must agree with diffprog's to this, relative to its largest entry


@dataclass
class Context:
    """Run-wide settings handed to every workload."""
    peers: Peers
    quick: bool = False
    threads: int = 1
    repeat: int = 15          # timed repeats per system (fewer for slow systems, see measure)
    min_time: float = 0.05    # seconds per repeat: calls are batched until a repeat lasts this
    budget: float = 4.0       # seconds of timing per system at most (after the warm-up)
    notes: list[str] = field(default_factory=list)

    def progress(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    @property
    def backends(self) -> dict[str, SimpleNamespace]:
        if not hasattr(self, "_backends"):
            self._backends = backends(self.peers)
        return self._backends


@dataclass
class System:
    """One row: ``run()`` is timed; its result is compared with the reference row's."""
    name: str
    run: Callable[[], Any]
    check: bool = True              # compare the result with the reference system's
    baseline: str | None = None     # row the ratio column divides by (default: the table's)


@dataclass
class Table:
    """A measured table: ``data`` holds one dict of raw numbers per row."""
    id: str
    title: str
    description: str
    columns: list[str]
    rows: list[list[str]]
    data: list[dict]
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"| {' | '.join(self.columns)} |", "|" + "---|" * len(self.columns)]
        lines += [f"| {' | '.join(r)} |" for r in self.rows]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"id": self.id, "title": self.title, "description": self.description,
                "columns": self.columns, "rows": self.rows, "data": self.data,
                "notes": self.notes}

    @classmethod
    def from_json(cls, d: dict) -> Table:
        return cls(d["id"], d["title"], d["description"], d["columns"], d["rows"], d["data"],
                   d.get("notes", []))


def block(x: Any) -> Any:
    """Wait for asynchronous results (JAX dispatches asynchronously) so timings are complete."""
    ready = getattr(x, "block_until_ready", None)
    if ready is not None:
        return ready()
    if isinstance(x, (dict, list, tuple)):
        for leaf in (x.values() if isinstance(x, dict) else x):
            block(leaf)
    return x


class _Timing:
    """One system being timed: its batch size, repeat count and the per-call times so far."""

    def __init__(self, system: System, first: float, once: float, ctx: Context) -> None:
        self.system, self.first = system, first
        self.number = max(1, math.ceil(ctx.min_time / max(once, 1e-7)))
        self.repeat = max(3, min(ctx.repeat, int(ctx.budget / (once * self.number))))
        self.times: list[float] = []

    def batch(self) -> None:
        fn, number = self.system.run, self.number
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        self.times.append((time.perf_counter() - t0) / number)

    def summary(self) -> dict:
        return {"median_s": statistics.median(self.times), "min_s": min(self.times),
                "max_s": max(self.times), "first_call_s": self.first, "number": self.number,
                "repeat": len(self.times)}


def measure_interleaved(timings: list[_Timing], ctx: Context, label: str) -> list[str]:
    """Time the systems in rounds, one batch of each per round, so that a burst of load from
    other processes on a shared machine lands on every system alike rather than on whichever
    was being timed at that moment. Returns notes about systems that failed midway."""
    notes = []
    rounds = max((t.repeat for t in timings), default=0)
    ctx.progress(f"[{label}] timing {len(timings)} systems in {rounds} interleaved rounds ...")
    for r in range(rounds):
        gc.collect()  # garbage from one system should not be collected on another's clock
        for t in list(timings):
            if r < t.repeat:
                try:
                    t.batch()
                except Exception as e:
                    notes.append(f"{t.system.name} failed while timed: {type(e).__name__}: {e}")
                    timings.remove(t)
    return notes


def _leaves(x: Any) -> list[np.ndarray]:
    import diffprog as dp
    out = []
    for leaf in dp.tree_leaves(x):
        if hasattr(leaf, "detach"):  # torch
            leaf = leaf.detach().numpy()
        out.append(np.asarray(leaf, dtype=float))
    return out


def rel_error(got: Any, ref: Any) -> float:
    """Largest deviation of ``got`` from ``ref`` relative to ``ref``'s largest entry, leafwise;
    inf when the structures or shapes differ."""
    g, r = _leaves(got), _leaves(ref)
    if len(g) != len(r):
        return math.inf
    worst = 0.0
    for a, b in zip(g, r):
        if a.shape != b.shape:
            return math.inf
        if a.size:
            scale = max(float(np.max(np.abs(b))), 1e-300)
            worst = max(worst, float(np.max(np.abs(a - b))) / scale)
    return worst


def fmt_time(seconds: float) -> str:
    """A time with a unit that keeps 3 significant figures readable."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_range(lo: float, hi: float) -> str:
    unit, scale = (("µs", 1e6) if hi < 1e-3 else ("ms", 1e3) if hi < 1 else ("s", 1.0))
    return f"{lo * scale:.3g}–{hi * scale:.3g} {unit}"


def time_table(ctx: Context, id: str, title: str, description: str, systems: list[System],
               baseline: str, reference: str | None = "diffprog eager", per: int = 0,
               per_label: str = "op", ratio_label: str | None = None) -> Table:
    """Time ``systems`` in interleaved rounds and check each against ``reference``'s result.

    ``baseline`` names the row of the ratio column; ``per`` > 0 adds a column with the time per
    ``per_label`` (the median divided by ``per``). A system that raises is left out with a note.
    """
    ref_value = ref_first = None
    ref_sys = next((s for s in systems if s.name == reference), None)
    if ref_sys is not None:
        t0 = time.perf_counter()
        ref_value = ref_sys.run()
        ref_first = time.perf_counter() - t0
    notes: list[str] = []
    timings, checks = [], {}
    for s in systems:  # the first calls, the checks and the batch sizes, one system at a time
        ctx.progress(f"[{id}] {s.name}: first call and check ...")
        try:
            if s is ref_sys:
                result, first = ref_value, ref_first
            else:
                t0 = time.perf_counter()
                result = s.run()
                first = time.perf_counter() - t0
            err = rel_error(result, ref_value) if (s.check and ref_value is not None) else None
            del result
            t0 = time.perf_counter()
            s.run()
            once = time.perf_counter() - t0
        except Exception as e:  # a failing system is reported, not fatal
            msg = f"{s.name} failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
            notes.append(msg)
            ctx.progress(f"[{id}]   {msg}")
            continue
        timings.append(_Timing(s, first, once, ctx))
        checks[s.name] = err
        if err is not None and not err <= REL_TOL:
            notes.append(f"{s.name}: result differs from {reference}'s by {err:.2e} relative "
                         f"(more than {REL_TOL:g})")
    notes += measure_interleaved(timings, ctx, id)
    data = []
    for t in timings:
        m, err = t.summary(), checks[t.system.name]
        data.append({"system": t.system.name, **m, "rel_error": err,
                     "agrees": None if err is None else err <= REL_TOL,
                     "baseline": t.system.baseline or baseline})
        ctx.progress(f"[{id}]   {t.system.name}: {fmt_time(m['median_s'])} (median of "
                     f"{m['repeat']} x {m['number']}; first call {fmt_time(m['first_call_s'])})"
                     + ("" if err is None else f", rel. error {err:.1e}"))
    medians = {r["system"]: r["median_s"] for r in data}
    columns = ["system", "median", "min–max", ratio_label or f"vs {baseline}"]
    if per:
        columns.insert(2, f"per {per_label}")
    columns.append("first call")
    if reference is not None:
        columns.append(f"agrees with {reference}")
    rows = []
    for r in data:
        base = medians.get(r["baseline"])
        r["ratio"] = r["median_s"] / base if base else None
        check = ("—" if r["agrees"] is None else
                 f"yes ({r['rel_error']:.0e})" if r["agrees"] else
                 f"**NO** ({r['rel_error']:.1e})")
        cells = [r["system"], fmt_time(r["median_s"]), fmt_range(r["min_s"], r["max_s"]),
                 "n/a" if r["ratio"] is None else f"{r['ratio']:.3g}x", fmt_time(
                     r["first_call_s"]), check]
        if per:
            cells.insert(2, fmt_time(r["median_s"] / per))
        rows.append(cells if reference is not None else cells[:-1])
    if reference is not None and ref_sys is None:
        notes.append(f"no {reference} row: results not cross-checked")
    return Table(id, title, description, columns, rows, data, notes)


# ----------------------------------------------------------------------------------------------
# The usual rows for "the gradient of a scalar function": one body, every system.


def grad_systems(ctx: Context, loss: Callable, x: Any, consts: tuple = (),
                 numpy_backward: Callable | None = None, np_code_row: bool = False
                 ) -> list[System]:
    """Rows for the gradient of ``loss(B, x, *consts)`` with respect to the pytree ``x``, where
    ``B`` is a backend namespace (see peers.backends): NumPy forward only, the hand-written
    backward pass ``numpy_backward(x, *consts)`` when given, diffprog eager (and jit once
    ``diffprog.jit`` exists), autograd, jax eager, jax.jit and torch eager."""
    import diffprog as dp

    bk = ctx.backends
    peers = ctx.peers
    B = bk["numpy"]
    rows = [System("numpy forward only", lambda: loss(B, x, *consts), check=False)]
    if numpy_backward is not None:
        rows.append(System("numpy hand-written backward", lambda: numpy_backward(x, *consts)))
    D = bk["diffprog"]
    g = dp.grad(lambda x: loss(D, x, *consts))
    rows.append(System("diffprog eager", lambda: g(x)))
    if np_code_row:
        gn = dp.grad(lambda x: loss(B, x, *consts))
        rows.append(System("diffprog eager, plain np code", lambda: gn(x)))
    jit_row = diffprog_jit_row(ctx, g, x)
    if jit_row is not None:
        rows.append(jit_row)
    if "autograd" in bk:
        A = bk["autograd"]
        ga = peers.autograd.grad(lambda x: loss(A, x, *consts))
        rows.append(System("autograd", lambda: ga(x)))
    if "jax" in bk:
        jax, J = peers.jax, bk["jax"]
        jx = jax.tree_util.tree_map(J.const, x)
        jc = tuple(J.const(c) for c in consts)
        gj = jax.grad(lambda x, *c: loss(J, x, *c))
        gjj = jax.jit(gj)
        rows.append(System("jax eager", lambda: block(gj(jx, *jc))))
        rows.append(System("jax.jit", lambda: block(gjj(jx, *jc))))
    if "torch" in bk:
        rows.append(System("torch eager", torch_grad(ctx, loss, x, consts)))
    return rows


def diffprog_jit_row(ctx: Context, fn: Callable, *args: Any) -> System | None:
    """The ``diffprog jit`` row, present as soon as ``diffprog.jit`` exists."""
    import diffprog as dp
    if not hasattr(dp, "jit"):
        return None
    try:
        jitted = dp.jit(fn)
    except Exception as e:
        ctx.notes.append(f"diffprog.jit could not wrap a workload: {type(e).__name__}: {e}")
        return None
    warm = []

    def run() -> Any:
        if warm:
            return jitted(*args)
        # The warm-up (the "first call" column) lasts until the program's final tier is chosen:
        # jit compiles in the background from the second call and times its tiers on the next
        # few calls (benchmarks/coldstart.py measures the first call itself).
        out = jitted(*args)
        jitted(*args)
        if hasattr(jitted, "wait_compiled"):
            jitted.wait_compiled()
            for _ in range(12):
                jitted(*args)
        warm.append(True)
        return out
    return System("diffprog jit", run)


def torch_grad(ctx: Context, loss: Callable, x: Any, consts: tuple) -> Callable[[], Any]:
    """torch eager: leaf tensors sharing memory with ``x``; ``torch.autograd.grad`` returns the
    gradient without accumulating into ``.grad``."""
    import diffprog as dp
    torch, T = ctx.peers.torch, ctx.backends["torch"]
    leaves, treedef = dp.tree_flatten(x)
    tleaves = [torch.from_numpy(np.array(v, dtype=float)).requires_grad_() for v in leaves]
    tx = dp.tree_unflatten(treedef, tleaves)
    tc = tuple(T.const(c) for c in consts)

    def run():
        out = loss(T, tx, *tc)
        grads = torch.autograd.grad(out, tleaves)
        return dp.tree_unflatten(treedef, list(grads))
    return run
