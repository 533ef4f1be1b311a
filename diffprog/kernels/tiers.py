"""Execution tiers: a jitted program runs at once, and faster code is swapped in when ready.

Compiling fused kernels costs 0.3-2 s per cluster on a cold cache, and minutes for large
graphs, while the NumPy executor needs no compilation at all. So with ``compile="background"``
(the default, :data:`diffprog.config.jit_compile`) a program runs on these tiers:

``numpy``
    the NumPy executor: no compilation, the first call's tier (unless the interpreter is
    already loaded in the process, then ``interp`` is).
``interp``
    the blocked interpreter (:mod:`diffprog.kernels.interp`): the float64 elementwise
    clusters run in one kernel compiled once per installation; everything else through NumPy.
``fused``
    a generated, compiled kernel (:mod:`diffprog.kernels.fuse`) for each cluster the cost
    model says pays for its compilation (:func:`worth_fusing`), the interpreter for the other
    interpretable clusters, NumPy for the rest.
``whole``
    the whole graph as one table of instructions run by one numba kernel compiled once per
    installation (:mod:`diffprog.kernels.wholeprog`), for float64 graphs whose every node has
    a form there: one dispatch per call instead of one per node, which is what pays on graphs
    of many small operations.

From the :data:`COMPILE_AFTER`-th call of a program a daemon thread loads the interpreter,
builds the whole program, then compiles the fused kernels; each tier it finishes is swapped in
atomically (one attribute holds the tier's name and runner). Once it is done, calls are timed
(not before: a trial run beside a compilation would measure the compilation), and the fastest
tier measured over :data:`TRIALS` or more calls each is kept, after which the program calls its
runner directly, with no timing: the compiled tiers can never make a program slower than the
NumPy executor. A compilation or runtime failure of a new tier drops it (logged at debug
level on the ``diffprog.jit`` logger) and the program goes on with the tier it had.

Results of different tiers agree within the fast-math functions' ulp bounds (as fused kernels
always did), not bit for bit: a program may change its last bits when it changes tier. An
explicit executor (``jit(f, executor=...)``) or ``compile="eager"`` runs every call on the
same code.

``compile="never"`` stops at the interpreter (no per-program compilation ever);
``compile="eager"`` compiles every fused kernel before the first call (the executor of
:func:`~diffprog.kernels.executor.make_executor` with ``kind=None``).

Example:
    >>> import numpy as np, diffprog.numpy as dnp
    >>> from diffprog.jit import trace_graph
    >>> run = Tiered(trace_graph(lambda x: dnp.sin(x) * 2.0 + 1.0, (np.zeros(3),)), "never")
    >>> run.tier in ("numpy", "interp"), run([np.zeros(3)])
    (True, [array([1., 1., 1.])])
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ..graph import Graph
from .steps import NodeStep, sequence

__all__ = ["Tiered", "worth_fusing", "fused_executor", "whole_executor", "COMPILE_AFTER",
           "TRIALS"]

log = logging.getLogger("diffprog.jit")

# The call of a program that starts its background compilation: a program called once (a
# notebook cell, a script's single evaluation) never pays for numba.
COMPILE_AFTER = 2
# Calls timed on each tier before the fastest is kept: at least TRIALS, and more (up to
# MAX_TRIALS) until they add up to TRIAL_SECONDS, so that the minimum of short calls is not
# one scheduler hiccup on a busy machine.
TRIALS = 3
MAX_TRIALS = 50
TRIAL_SECONDS = 0.05
# Cost model. Against the interpreter, a fused kernel saves only part of the per-element work
# (values stay in registers instead of L1-resident blocks; the interpreter has no per-node
# dispatch either), while its compilation costs 0.3-2 s and grows faster than linearly with
# its length (a 600-node graph on 1000 elements: 66 s of compilation, then no faster than the
# interpreter). So an interpretable cluster is fused only when its arrays are large. Against
# NumPy (a cluster the interpreter cannot run: float32, integers, bools) a fused kernel also
# saves ~1 us of dispatch per node.
FUSE_MIN_SIZE = 1 << 16
FUSE_MIN_WORK_UNINTERPRETED = 1 << 14
FUSE_MIN_NODES_UNINTERPRETED = 4

_shutting_down = False


@atexit.register
def _stop_background() -> None:
    # Background compilations check this between stages: nothing new starts at exit. (They are
    # daemon threads, and numba compiles holding the GIL, so none runs during finalization.)
    global _shutting_down
    _shutting_down = True


def _trial_over(samples: list[float]) -> bool:
    n = len(samples)
    return n >= MAX_TRIALS or (n >= TRIALS and sum(samples) >= TRIAL_SECONDS)


def worth_fusing(n_nodes: int, size: int, interpretable: bool) -> bool:
    """The cost model: does a fused kernel pay for its compilation for a cluster of ``n_nodes``
    elementwise nodes over ``size`` elements?

    Example:
        >>> worth_fusing(240, 10, True), worth_fusing(40, 10**6, True), worth_fusing(5, 10, False)
        (False, True, True)
    """
    if interpretable:
        return size >= FUSE_MIN_SIZE
    return (n_nodes >= FUSE_MIN_NODES_UNINTERPRETED
            or n_nodes * size >= FUSE_MIN_WORK_UNINTERPRETED)


def fused_executor(graph: Graph, select: bool = True) -> Callable[[list], list] | None:
    """Fused kernels for the clusters worth fusing (all clusters of 2+ nodes when ``select``
    is false), the interpreter for the other interpretable ones, NumPy for the rest. None when
    no cluster is worth fusing. Compiles the kernels (numba must be installed)."""
    import numpy as np

    from . import interp
    from .fuse import KernelStep, build_kernel, cluster_graph
    clusters, _ = cluster_graph(graph)
    clusters = [c for c in clusters if len(c.nodes) >= 2]
    kernel = interp.load() if select else None
    how: dict[int, Any] = {}

    dtypes = _value_dtypes(graph)

    def make(unit: Any, graph_outputs: set, used_outside: set, shapes: dict) -> Any:
        consts = [a for n in unit.nodes for p, a in zip(n.parents, n.args) if p < 0]
        try:  # compiled now for the operand types (not at a user's first call)
            kernel = build_kernel(unit, graph_outputs, used_outside, shapes, consts,
                                  input_dtypes=dtypes)
        except TypeError:  # a build_kernel without input_dtypes: compile by signature here
            kernel = build_kernel(unit, graph_outputs, used_outside, shapes, consts)
            _compile_for(kernel, dtypes, consts)
        step = KernelStep(kernel, consts)
        return step

    n_fused = 0
    for c in clusters:
        interpretable = kernel is not None and all(interp.opcode(n) is not None
                                                   for n in c.nodes)
        if not select or worth_fusing(len(c.nodes), int(np.prod(c.shape)), interpretable):
            how[id(c)] = make
            n_fused += 1
        elif interpretable and interp.worth_interpreting(c):
            how[id(c)] = "interp"
    if not n_fused:
        return None
    from .pyrun import compile_steps
    writes: dict[int, tuple] = {}
    steps = interp._steps_for(graph, how, clusters, kernel, writes)
    return compile_steps(graph, steps, writes)


def whole_executor(graph: Graph) -> Callable[[list], list] | None:
    """The whole-program tier's runner of ``graph`` (:mod:`diffprog.kernels.wholeprog`), or
    None when the graph has a node it cannot express (numba must be installed)."""
    from .wholeprog import whole_program
    return whole_program(graph)


def _compile_for(kernel: Any, dtypes: dict[int, Any], consts: list) -> None:
    import numba
    import numpy as np
    compile_for = getattr(kernel.fn, "compile", None)
    if compile_for is not None:
        stand_ins = [np.ones(1, dt) for dt in kernel.out_dtypes]
        stand_ins += [np.ones(1, dtypes[p]) for p in kernel.inputs]
        fixed = [np.asarray(a).reshape(-1) for a in consts] + list(getattr(kernel, "extra", ()))
        compile_for(tuple(numba.typeof(a) for a in (0, *stand_ins, *fixed)))


def _value_dtypes(graph: Graph) -> dict[int, Any]:
    import numpy as np
    dtypes = {i: np.dtype(v.dtype) for i, v in enumerate(graph.in_values)}
    for node in graph.nodes:
        outs = node.out if node.prim.multiple_results else (node.out,)
        for k, o in enumerate(outs):
            dtypes[node.idx + k] = np.dtype(o.dtype)
    return dtypes


def instant_executor(graph: Graph) -> tuple[str, Callable[[list], list]]:
    """The tier a first call runs on: the interpreter if it is loaded already, else NumPy."""
    from . import interp
    if interp.loaded():
        run = interp.interp_executor(graph, codegen=False)
        if run is not None:
            return "interp", run
    # the list runner: generating the Python function would cost ~30 us per node now
    return "numpy", sequence(graph, [NodeStep(node) for node in graph.nodes])


class Tiered:
    """A program's runner that starts on an instant tier and moves to compiled tiers.

    ``tier`` names the tier in use; ``wait_compiled()`` blocks until the background work is
    over (for tests); ``attach(owner)`` lets it set ``owner.run`` to the chosen tier's runner
    once the choice is final, so that later calls skip this wrapper.
    """

    def __init__(self, graph: Graph, mode: str = "background") -> None:
        if mode not in ("background", "never"):
            raise ValueError(f"Tiered: mode must be 'background' or 'never', not {mode!r}")
        self.graph = graph
        self.mode = mode
        name, run = instant_executor(graph)
        self._current: tuple[str, Callable] = (name, run)
        self.calls = 0
        self.timing = False
        self.samples: dict[str, list[float]] = {}
        self.runners: dict[str, Callable] = {name: run}
        self.failed: dict[str, str] = {}  # tier -> why it was dropped
        self.owner: Any = None
        self._lock = threading.Lock()
        self._started = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def tier(self) -> str:
        """The name of the tier the next call runs on."""
        return self._current[0]

    def attach(self, owner: Any) -> None:
        # weakly: the owner (a jit Program) holds this runner, and a cycle between them would
        # keep a dropped program, its graph and its runners until a garbage collection
        self.owner = weakref.ref(owner)

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Start the background compilation if it has not started, and wait for it to end;
        True when it has ended."""
        self._start()
        return self._done.wait(timeout)

    def __call__(self, inputs: list) -> list:
        self.calls += 1  # (a lost increment under threads only delays the start by one call)
        if not self._started and self.calls >= COMPILE_AFTER:
            self._start()
        name, run = self._current
        t0 = time.perf_counter()
        try:
            out = run(inputs)
        except Exception as e:
            if name != "numpy" and self._drop(name, e):
                return self(inputs)  # rerun on the tier it had
            raise
        if self.timing:
            self._record(name, time.perf_counter() - t0)
        return out

    # -- choosing a tier -------------------------------------------------------------------

    def _record(self, name: str, dt: float) -> None:
        with self._lock:
            if not self.timing:
                return
            samples = self.samples.setdefault(name, [])
            samples.append(dt)
            if self._current[0] != name or not _trial_over(samples):
                return
            untried = [n for n in self.runners if not _trial_over(self.samples.get(n, []))]
            if untried:  # every tier gets its trial, the instant one too
                self._current = (untried[0], self.runners[untried[0]])
                return
            best = min((min(self.samples[n]), n) for n in self.runners)[1]
            if best != name:
                self._current = (best, self.runners[best])
            if self._done.is_set():
                self._finish(best)

    def _finish(self, best: str) -> None:
        """The choice is final: later calls run ``best`` without this wrapper."""
        self.timing = False
        self._current = (best, self.runners[best])
        self.runners = {best: self.runners[best]}  # the others' kernels and constants can go
        owner = self.owner() if self.owner is not None else None
        if owner is not None:
            owner.run = self.runners[best]

    def _drop(self, name: str, error: BaseException) -> bool:
        """A tier failed at run time: forget it and go back to the fastest other one."""
        log.debug("diffprog.jit: the %s tier failed (%r); using the previous tier", name, error)
        with self._lock:
            self.failed[name] = repr(error)
            self.runners.pop(name, None)
            self.samples.pop(name, None)
            if self._current[0] == name:
                rest = [(min(self.samples.get(n) or [0.0]), n) for n in self.runners]
                if not rest:
                    return False
                self._current = (min(rest)[1], self.runners[min(rest)[1]])
        return True

    def _offer(self, name: str, run: Callable, swap: bool = True) -> None:
        """A new tier is ready: swap it in (it is timed against the others once the background
        work is over, so that no trial runs beside a compilation)."""
        with self._lock:
            self.runners[name] = run
            if swap:
                self._current = (name, run)

    # -- the background work ---------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            thread = threading.Thread(target=self._background, daemon=True,
                                      name="diffprog-jit-compile")
            self._thread = thread
        thread.start()

    def _background(self) -> None:
        try:
            self._compile()
        except BaseException as e:
            log.debug("diffprog.jit: background compilation failed (%r); staying on the %s "
                      "tier", e, self.tier)
            self.failed.setdefault("compile", repr(e))
        finally:
            with self._lock:
                self.samples.clear()
                if len(self.runners) > 1:
                    self.timing = True  # the trials: each tier in turn, from the newest
                elif self.runners:
                    self._finish(next(iter(self.runners)))
            self._done.set()

    def _compile(self) -> None:
        from . import interp
        if _shutting_down:
            return
        from .pyrun import compile_steps
        # The instant tier's steps as one generated function (it replaces the list runner of
        # its tier); NumPy alone takes part in the trials even when the instant tier was the
        # interpreter (many tiny clusters: NumPy may be faster).
        first = self.tier
        self._offer("numpy", compile_steps(self.graph, [NodeStep(n) for n in self.graph.nodes]),
                    swap=first == "numpy")
        if not _shutting_down and interp.load() is not None:
            run = interp.interp_executor(self.graph)
            if run is not None:
                self._offer("interp", run)
        if self.mode == "never" or _shutting_down:
            return
        try:  # the graph as one program of one kernel (None: a node it cannot express)
            run = whole_executor(self.graph)
        except Exception as e:
            log.debug("diffprog.jit: the whole-program tier failed to build (%r)", e)
            self.failed["whole"] = repr(e)
        else:
            if run is not None and not _shutting_down:
                self._offer("whole", run)
        if _shutting_down:
            return
        run = fused_executor(self.graph)
        if run is not None and not _shutting_down:
            self._offer("fused", run)
