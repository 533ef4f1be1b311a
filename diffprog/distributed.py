"""Data-parallel gradients on Dask: the gradient of a loss summed over the rows of dask arrays.

``value_and_grad_sum(f, params, *data)`` computes ``value_and_grad(f)(params, *chunk)`` on
each chunk of ``data`` (dask arrays chunked along axis 0), on the workers, and adds the
per-chunk results up on the workers too: the client receives one value and one gradient pytree,
never the per-chunk ones. With data persisted on a ``distributed.Client``'s workers, each worker
holding chunks runs one task (pinned to it) that loops over its own chunks and sums their
results (passing each chunk to ``f`` in blocks of about 8 MiB of rows: ``block_rows``), and
a tree reduction of fan-in ``fanin`` adds the workers' sums (first tried through one
Dask actor per worker, called directly, with the tasks as the fallback on any failure);
otherwise one task per chunk and a tree over the chunks. ``params`` (with the function) are
pickled once per call and travel inside the tasks (scattered to every worker when larger than
1 MiB). Each process keeps its jitted ``value_and_grad(f)`` in a cache keyed by the function's
pickled bytes, so a worker traces ``f`` once per chunk shape, not once per task, and its fused
kernels come from diffprog's disk cache, which is keyed by content and shared by the processes
of a machine.

``map(f, inputs)`` runs independent problems, one task each, and returns the results in order.

Needs ``dask[array]`` and ``distributed`` (``pip install 'diffprog[dask]'``); ``import
diffprog`` does not import this module. See docs/SCALING.md for what a step costs.

Example:
    >>> import numpy as np, dask.array as da, diffprog.numpy as dnp
    >>> from diffprog.distributed import grad_sum
    >>> x = da.from_array(np.arange(6.0).reshape(3, 2), chunks=(2, 2))
    >>> loss = lambda w, x: dnp.sum((x @ w) ** 2)
    >>> grad_sum(loss, np.ones(2), x, scheduler="sync")
    array([ 92., 122.])
"""

from __future__ import annotations

import hashlib
import math
import pickle
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .ad import value_and_grad as _value_and_grad
from .jit import jit as _jit
from .tree import tree_flatten, tree_unflatten

try:
    import cloudpickle
    import dask
    import dask.array as da
    from dask._task_spec import Alias, Task, TaskRef
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph, MaterializedLayer
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("diffprog.distributed needs dask and distributed: "
                      "pip install 'diffprog[dask]'") from e

__all__ = ["value_and_grad_sum", "grad_sum", "map", "ChunkAlignmentWarning", "process_cache_info",
           "wait_compiled", "chunk_stats"]


class ChunkAlignmentWarning(UserWarning):
    """The data arrays were not chunked alike and were rechunked to the first one's chunks."""


# ----------------------------------------------------------------------------------------------
# What runs on a worker


class _Payload:
    """What one call sends to the workers: the token naming the function in the per-process
    cache, the function and its jit options pickled by cloudpickle (``blob``: unpickled only by
    a process that has not cached the function yet), and the parameters, pickled once by the
    client and unpickled by the process that runs the tasks (never by the scheduler, which
    may not have the user's modules: it only passes the bytes on). A plain class, not a tuple
    or dict, so that dask keeps it as one literal. ``fun``, ``options`` and ``params`` are the
    caller's own objects where no pickling happens (the threads scheduler)."""

    __slots__ = ("token", "blob", "fun", "options", "block_rows", "_params", "_params_blob")

    def __init__(self, token: str, blob: bytes, params: Any, fun: Callable | None = None,
                 options: dict | None = None, block_rows: int | str | None = "auto") -> None:
        self.token, self.blob, self._params, self._params_blob = token, blob, params, None
        self.fun, self.options, self.block_rows = fun, options, block_rows

    @property
    def params(self) -> Any:
        if self._params is _UNPICKLED:
            self._params = pickle.loads(self._params_blob)
        return self._params

    def __getstate__(self) -> tuple:
        if self._params_blob is None:
            self._params_blob = _dumps(self._params, "the parameters")
        return self.token, self.blob, self._params_blob, self.block_rows

    def __setstate__(self, state: tuple) -> None:
        self.token, self.blob, self._params_blob, self.block_rows = state
        self._params = _UNPICKLED
        self.fun = self.options = None

    def nbytes(self) -> int:
        """About how many bytes the payload pickles to (its array leaves, and the function)."""
        leaves = tree_flatten(self._params)[0] if self._params is not _UNPICKLED else []
        return len(self.blob) + sum(getattr(leaf, "nbytes", 8) for leaf in leaves)


_UNPICKLED = object()


def _dumps(obj: Any, what: str) -> bytes:
    try:
        return cloudpickle.dumps(obj)
    except Exception as e:
        raise TypeError(f"diffprog.distributed: {what} cannot be pickled to send to the "
                        f"workers ({type(e).__name__}: {e})") from e


_CACHE_SIZE = 32
_cache: OrderedDict[str, Any] = OrderedDict()  # token -> (jit of) value_and_grad(fun)
_cache_lock = threading.Lock()


def _compiled(payload: _Payload) -> Callable:
    """This process's ``jit(value_and_grad(fun))`` for the payload's function: built once per
    process and function (a worker that runs 64 chunks traces once per chunk shape)."""
    with _cache_lock:
        vg = _cache.get(payload.token)
        if vg is not None:
            _cache.move_to_end(payload.token)
            return vg
        if payload.fun is not None:
            fun, options = payload.fun, payload.options
        else:  # bytes from our own client, over dask's connections
            fun, options = pickle.loads(payload.blob)
        vg = _value_and_grad(fun)
        if options is not None:
            vg = _jit(vg, **options)
        _cache[payload.token] = vg
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return vg


def process_cache_info() -> dict[str, int]:
    """How many times each cached function was traced by jit in this process (token to
    traces; -1 when not jitted). Run it on the workers with ``client.run(process_cache_info)``.

    Example:
        >>> isinstance(process_cache_info(), dict)
        True
    """
    with _cache_lock:
        return {t: getattr(vg, "traces", -1) for t, vg in _cache.items()}


def wait_compiled(timeout: float | None = None) -> bool:
    """Wait until the jitted functions cached in this process have compiled their fused kernels
    (jit compiles them in the background); True if they have. For benchmarks: run it on the
    workers with ``client.run(wait_compiled)``.

    Example:
        >>> wait_compiled(timeout=60.0)
        True
    """
    with _cache_lock:
        functions = list(_cache.values())
    return all(vg.wait_compiled(timeout) for vg in functions if hasattr(vg, "wait_compiled"))


_stats_lock = threading.Lock()
_stats = {"tasks": 0, "chunks": 0, "compute_s": 0.0}


def chunk_stats(reset: bool = False) -> dict[str, float]:
    """How many tasks of :func:`value_and_grad_sum` this process ran (a fast-path call to its
    actor counts as one: it does a per-worker task's work), how many chunks it
    computed ``value_and_grad`` on, and the seconds (wall clock) those calls took, since the
    last reset: the compute of a call without its overhead. For benchmarks and tests:
    ``client.run(chunk_stats, True)`` on the workers before a call, ``client.run(chunk_stats)``
    after it.

    Example:
        >>> sorted(chunk_stats(reset=True))
        ['chunks', 'compute_s', 'tasks']
    """
    with _stats_lock:
        out = dict(_stats)
        if reset:
            _stats.update(tasks=0, chunks=0, compute_s=0.0)
    return out


# With block_rows="auto", a chunk is passed to f in blocks of about this many bytes of data.
# Dask sizes chunks for its scheduler (128 MiB by default), not for the CPU: a whole chunk's
# temporaries are large enough that glibc returns them to the system after every call and
# faults them in again on the next (1,432 page faults per call on a 42 MB chunk of the W9 loss,
# none in blocks of 21 MB or less), and they leave the caches. Measured on the 2-worker
# LocalCluster, both workers at once: 26.3 ms per 250,000 x 20 rows as one block, 21.1-23.7 ms
# in 2 to 16 blocks, 27.3 ms in 32 (per-call costs); 8 MiB is in the flat part.
_BLOCK_BYTES = 8 << 20


def _blocks(nrows: int, nbytes: int, block_rows: int | str | None) -> list[tuple[int, int]]:
    """The ``(start, stop)`` row ranges a chunk of ``nrows`` rows (``nbytes`` over its arrays)
    is computed in: as few as keep each within ``block_rows`` rows (``"auto"``: about
    ``_BLOCK_BYTES``), of two lengths at most (one trace of f per length, per process)."""
    if block_rows is None:
        limit = nrows
    elif block_rows == "auto":
        limit = max(1, _BLOCK_BYTES * nrows // max(nbytes, 1))
    else:
        limit = block_rows
    count = max(1, -(-nrows // limit))
    size, longer = divmod(nrows, count)
    bounds, start = [], 0
    for b in range(count):
        stop = start + size + (b < longer)
        bounds.append((start, stop))
        start = stop
    return bounds


def _weighted(part: tuple, weight: float) -> tuple:
    value, grads = part
    leaves, tree = tree_flatten(grads)
    return value * weight, tree_unflatten(tree, [g * weight for g in leaves])


def _chunk_value_and_grad(payload: _Payload, weight: float | None, *chunk: np.ndarray) -> tuple:
    """``value_and_grad(f)(params, *chunk)``, times ``weight`` (mean=True: chunk i counts
    n_i / N; a Python float keeps float32), computed block by block (``_blocks``)."""
    vg, params = _compiled(payload), payload.params
    nrows = len(chunk[0])
    bounds = _blocks(nrows, sum(a.nbytes for a in chunk), payload.block_rows)
    t0 = time.perf_counter()
    total = None
    for start, stop in bounds:
        part = vg(params, *(a[start:stop] for a in chunk))
        if weight is not None:  # f is a mean over the block: the block counts its share
            # (one block: weight * 1.0, exactly the chunk's weight)
            part = _weighted(part, weight * ((stop - start) / nrows))
        total = part if total is None else _combine(total, part)
    elapsed = time.perf_counter() - t0
    with _stats_lock:
        _stats["chunks"] += 1
        _stats["compute_s"] += elapsed
    return total


def _part_value_and_grad(payload: _Payload, weights: tuple, narrays: int,
                         *blocks: np.ndarray) -> tuple:
    """The sum of ``value_and_grad`` over the chunks one worker holds, in their order:
    ``blocks`` holds chunk 0's arrays, then chunk 1's ... (``narrays`` each), ``weights`` one
    per chunk. One task per worker instead of one per chunk: no per-task scheduling, and the
    chunks' results are added as they come (only one partial sum is held)."""
    with _stats_lock:
        _stats["tasks"] += 1
    total = None
    for j, weight in enumerate(weights):
        part = _chunk_value_and_grad(payload, weight, *blocks[j * narrays:(j + 1) * narrays])
        total = part if total is None else _combine(total, part)
    return total


class _Worker:
    """The per-worker plan's fast path (a Dask actor, one per worker and client): it sums
    ``value_and_grad`` over the chunks named by ``keys`` read from its worker's memory. A call
    goes to the worker directly, without the scheduler's task bookkeeping: a nil call on the
    2-worker LocalCluster took 13-15 ms instead of 27-29 ms as tasks. It has none of the tasks'
    resilience, so the client falls back to the tasks on any failure (see _fast)."""

    def __init__(self) -> None:
        from distributed import get_worker
        self._data = get_worker().data

    def part(self, payload: _Payload, chunks: _Packed) -> _Packed | None:
        """The sum over the chunks (packed), or None if one is not in this worker's memory (it
        moved, or was lost and is being recomputed elsewhere). ``chunks`` packs the chunks'
        weights, the arrays per chunk and their keys (chunk 0's arrays, then chunk 1's ...)."""
        weights, narrays, keys = chunks.value
        data = self._data
        try:
            blocks = [data[k] for k in keys]
        except KeyError:
            return None
        return _Packed(_part_value_and_grad(payload, weights, narrays, *blocks))


class _Packed:
    """An argument or result of an actor call, pickled in one piece: dask serializes the
    elements of a tuple or dict one by one, nested ones included, which took 3.7 ms for the
    keys of 32 chunks of 2 arrays (58 µs a key, against 0.1 ms to read the chunks) and about
    0.5-0.9 ms for a gradient pytree's way back."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getstate__(self) -> tuple:
        return (self.value,)  # never empty: an empty state would skip __setstate__

    def __setstate__(self, state: tuple) -> None:
        self.value = state[0]


def _chunk_task(payload: _Payload, weight: float | None, *chunk: np.ndarray) -> tuple:
    """One chunk's task (the per-chunk plan)."""
    with _stats_lock:
        _stats["tasks"] += 1
    return _chunk_value_and_grad(payload, weight, *chunk)


def _combine(*parts: tuple) -> tuple:
    """The sum of ``(value, gradient pytree)`` pairs, leaf by leaf, in the order given."""
    value, grads = parts[0]
    acc, tree = tree_flatten(grads)
    for v, g in parts[1:]:
        value = value + v
        leaves, other = tree_flatten(g)
        if other != tree:
            raise ValueError("diffprog.distributed: the chunks' gradients have different "
                             f"structures ({tree} and {other})")
        acc = [a + b for a, b in zip(acc, leaves)]
    return value, tree_unflatten(tree, acc)


# ----------------------------------------------------------------------------------------------
# The client side


def _pickled(f: Callable, options: dict | None) -> tuple[str, bytes]:
    """``(token, bytes)``: the function and its jit options pickled by cloudpickle (which
    pickles lambdas and closures by value), and the token naming them in the workers' caches, a
    hash of those bytes (so a changed closure is a new function)."""
    try:
        blob = cloudpickle.dumps((f, options))
    except Exception as e:
        raise TypeError(f"diffprog.distributed: the function {f!r} cannot be pickled to send "
                        f"it to the workers ({type(e).__name__}: {e})") from e
    return hashlib.sha256(blob).hexdigest()[:32], blob


def _token(f: Callable, options: dict | None) -> str:
    return _pickled(f, options)[0]


def _align(data: Sequence[Any]) -> list:
    """The data arrays chunked alike along axis 0 (the first one's chunks) and in one chunk
    along every other axis; a length mismatch raises."""
    if not data:
        raise TypeError("diffprog.distributed: pass at least one dask array of data")
    arrays = []
    for k, x in enumerate(data):
        if not isinstance(x, da.Array):
            raise TypeError(f"diffprog.distributed: data[{k}] is a {type(x).__name__}, not a "
                            "dask array; wrap it with dask.array.from_array(x, chunks=...)")
        if x.ndim == 0:
            raise ValueError(f"diffprog.distributed: data[{k}] is 0-d; data arrays have rows "
                             "along axis 0")
        if any(math.isnan(c) for c in x.chunks[0]):
            raise ValueError(f"diffprog.distributed: data[{k}] has unknown chunk sizes; call "
                             "compute_chunk_sizes() on it first")
        arrays.append(x)
    n = arrays[0].shape[0]
    for k, x in enumerate(arrays[1:], 1):
        if x.shape[0] != n:
            raise ValueError(
                f"diffprog.distributed: the data arrays have different lengths along axis 0: "
                f"data[0] has {n} rows and data[{k}] has {x.shape[0]} (shapes "
                f"{arrays[0].shape} and {x.shape}); every array holds one entry per row")
    chunks = arrays[0].chunks[0]
    out = []
    for k, x in enumerate(arrays):
        if x.chunks[0] != chunks or any(len(c) != 1 for c in x.chunks[1:]):
            if x.chunks[0] != chunks:
                warnings.warn(
                    f"diffprog.distributed: data[{k}] is chunked {_short(x.chunks[0])} along "
                    f"axis 0 but data[0] {_short(chunks)}; rechunking data[{k}] to data[0]'s "
                    "chunks (chunk the arrays alike to avoid the copy)",
                    ChunkAlignmentWarning, stacklevel=4)
            x = x.rechunk((chunks,) + tuple((s,) for s in x.shape[1:]))
        out.append(x)
    return out


def _row_keys(x: Any) -> list:
    """The keys of the chunks of ``x`` along axis 0 (it has one chunk along the others)."""
    keys = x.__dask_keys__()
    for _ in range(x.ndim - 1):
        keys = [k[0] for k in keys]
    return keys


def _short(chunks: tuple) -> str:
    if len(chunks) <= 6:
        return str(chunks)
    return f"({chunks[0]}, {chunks[1]}, ... {len(chunks)} chunks)"


# Parameters (with the function) of up to this many bytes travel inside the tasks' specs (one
# copy per task, through the scheduler); larger ones are scattered to every worker once per
# call (peer to peer after the first copy), which costs a round trip more.
_INLINE_BYTES = 1 << 20


def _persisted(arrays: list, future_type: type) -> list[list] | None:
    """For each array, the futures of its row chunks, if every chunk of every array is
    persisted (its key maps to a future, directly or through aliases, as in the concatenation
    of persisted arrays), else None."""
    out = []
    for x in arrays:
        graph = x.__dask_graph__()
        layers = getattr(graph, "layers", None)
        if layers is not None and len(layers) > 1:
            graph = dict(graph)  # one lookup per key, not one per layer
        elif layers is not None:
            graph = next(iter(layers.values()))
        row = []
        for k in _row_keys(x):
            for _ in range(16):  # an alias of an alias ...
                v = graph.get(k)
                if isinstance(v, Alias):
                    k = v.target
                elif isinstance(v, tuple) and _is_key(graph, v):
                    k = v  # a legacy alias: the value is another key of the graph
                else:
                    break
            if not isinstance(v, future_type):
                return None
            row.append(v)
        out.append(row)
    return out


def _is_key(graph: Any, v: tuple) -> bool:
    try:
        return v in graph
    except TypeError:  # a task tuple holding something unhashable
        return False


def _holders(client: Any, arrays: list, futures: list[list]) -> tuple[list[str], bool]:
    """For each chunk index, the worker holding most of its bytes over the arrays ("" when no
    worker holds any: a lost chunk being recomputed); and whether each of those workers holds
    the chunk of every array (not so when an array's chunk lies elsewhere)."""
    who = client.who_has([f for row in futures for f in row])
    out = []
    whole = True
    for i in range(len(futures[0])):
        score: dict[str, int] = {}
        for x, row in zip(arrays, futures):
            nbytes = x.dtype.itemsize * math.prod(c[i] if a == 0 else c[0]
                                                  for a, c in enumerate(x.chunks))
            for w in who.get(row[i].key, ()):
                score[w] = score.get(w, 0) + nbytes + 1
        out.append(min(score, key=lambda w: (-score[w], w)) if score else "")
        whole = whole and all(out[-1] in who.get(row[i].key, ()) for row in futures)
    return out, whole


def _plan(holders: list[str], weights: list) -> list[tuple[str, list[int]]]:
    """The per-worker plan: ``(worker, chunk indexes)`` for each worker holding chunks, in
    worker order, then ``("", [i])`` for each chunk no worker holds yet; empty chunks (weight
    0) are left out."""
    groups: dict[str, list[int]] = {}
    alone = []
    for i, w in enumerate(holders):
        if weights[i] != 0:
            if w:
                groups.setdefault(w, []).append(i)
            else:
                alone.append(("", [i]))
    return sorted(groups.items()) + alone


def _part_weights(weights: list, idx: list[int]) -> tuple:
    """The weights :func:`_part_value_and_grad` takes for chunks ``idx``: None counts 1."""
    return tuple(None if weights[i] is True else weights[i] for i in idx)


def _tree(layer: dict, keys: list, fanin: int, prefix: str) -> Any:
    """Adds to ``layer`` a tree of fan-in ``fanin`` of :func:`_combine` tasks over ``keys``
    (named ``prefix``-sum1, -sum2 ... by level); returns its root's key (``keys[0]`` alone)."""
    depth = 0
    while len(keys) > 1:
        depth += 1
        keys, parts = [], keys
        for j in range(0, len(parts), fanin):
            key = (f"{prefix}-sum{depth}", j // fanin)
            layer[key] = Task(key, _combine, *(TaskRef(k) for k in parts[j:j + fanin]))
            keys.append(key)
    return keys[0]


# The fast path's state in this (client) process: the actors (with their client) by (client id,
# worker address), and the last placements (which worker computes which chunks) by (client id,
# chunk keys).
# A placement is checked by the actors themselves (a chunk not in their memory returns None)
# and dropped when it fails; an actor is dropped when a call to it fails.
_actors: dict[tuple[str, str], tuple[Any, Any, Any]] = {}  # client, handle, the actor's future
_placements: OrderedDict[tuple, list | bool] = OrderedDict()  # False: not for the fast path
_PLACEMENTS = 16
_ACTOR_TIMEOUT = 10.0  # seconds to make an actor (a task that needs a free worker thread)
_fast_lock = threading.Lock()


def _actor(client: Any, worker: str) -> tuple[Any, Any]:
    """The fast path's actor on ``worker`` for ``client`` (made on first use): its handle, and
    the future of the task that made it. The future is kept: dask deletes an actor when its
    key is released, and the handle alone holds no reference to the key when the client got
    it without pickling (an in-process cluster), so a later call found no actor."""
    with _fast_lock:
        for key in [k for k, entry in _actors.items() if entry[0].status == "closed"]:
            del _actors[key]  # a closed client's: its actors are gone with it
        entry = _actors.get((client.id, worker))
    if entry is None:
        with client.as_current():  # the handle binds to this client, not to a default one
            made = client.submit(_Worker, workers=[worker], allow_other_workers=False,
                                 actor=True, pure=False,
                                 key=f"diffprog-worker-{uuid.uuid4().hex[:12]}")
            try:  # a worker that died since who_has answered would leave it waiting forever
                actor = made.result(timeout=_ACTOR_TIMEOUT)
            except BaseException:
                made.cancel()
                raise
        with _fast_lock:
            entry = _actors.setdefault((client.id, worker), (client, actor, made))
    return entry[1], entry[2]


_POLL = 2.0  # seconds between the checks that a busy actor still exists


def _answer(call: Any, made: Any) -> Any:
    """An actor call's result, or an error if the actor is lost while it is awaited (its
    worker died): dask drops an exception raised before a call reaches its actor, so the
    call's future would never be set."""
    while True:
        try:
            return call.result(timeout=_POLL)
        except TimeoutError:
            if made.status != "finished":
                raise RuntimeError("diffprog.distributed: a worker's actor was lost during "
                                   "the call") from None


def _fast(client: Any, payload: _Payload, arrays: list, futures: list[list],
          weights: list, fanin: int) -> tuple | None:
    """The per-worker plan through the workers' actors, or None when it cannot be used or
    fails: then the caller runs it as tasks, which retry, recompute lost chunks and carry
    the worker's traceback of an exception. Wrong placements and dead workers are thereby
    found for free; a call that fails is computed twice. The client adds the workers' sums,
    so only when there are at most ``fanin`` of them (the tasks' tree has then one level,
    which the client adds too); more go to the tasks, whose tree runs on the workers."""
    keys = tuple(f.key for row in futures for f in row)
    where = (client.id, keys)
    with _fast_lock:
        plan = _placements.get(where)
    if plan is False:  # this data set's chunks are not where the actors could read them
        return None
    if plan is None:
        holders, whole = _holders(client, arrays, futures)
        if "" in holders:  # a chunk no worker holds yet (still being made): perhaps next time
            return None
        if not whole:  # an array's chunk lies on another worker than the others': never
            _remember(where, False)
            return None
        plan = _plan(holders, weights)
    if len(plan) > fanin:
        return None
    try:
        with client.as_current():
            calls = []
            for w, idx in plan:
                actor, made = _actor(client, w)
                calls.append((actor.part(payload, _Packed((
                    _part_weights(weights, idx), len(arrays),
                    tuple(row[i].key for i in idx for row in futures)))), made))
            parts = [None if p is None else p.value
                     for p in (_answer(call, made) for call, made in calls)]
    except Exception:  # a worker died, or f raised: the tasks will tell
        with _fast_lock:
            for w, _ in plan:
                _actors.pop((client.id, w), None)
            _placements.pop(where, None)
        return None
    if any(p is None for p in parts):  # a chunk moved since who_has said where it was
        with _fast_lock:
            _placements.pop(where, None)
        return None
    _remember(where, plan)
    return _combine(*parts)


def _remember(where: tuple, plan: list | bool) -> None:
    with _fast_lock:
        _placements[where] = plan
        _placements.move_to_end(where)
        while len(_placements) > _PLACEMENTS:
            _placements.popitem(last=False)


def _on_workers(client: Any, payload: _Payload, arrays: list, futures: list[list],
                weights: list, fanin: int, name: str) -> tuple:
    """The per-worker plan, for data persisted on a client's workers: one task per worker
    that holds chunks, pinned to it (``allow_other_workers``: when it dies, its task runs
    elsewhere and dask recomputes the lost chunks), which sums ``value_and_grad`` over those
    chunks; then a tree of fan-in ``fanin`` over the workers' partial sums."""
    # a chunk no worker holds yet (still being computed) gets a task of its own
    plan = _plan(_holders(client, arrays, futures)[0], weights)
    scattered = None
    send: Any = payload
    if payload.nbytes() * len(plan) > _INLINE_BYTES:
        scattered = client.scatter([payload], broadcast=True, hash=False)
        send = scattered[0]  # a future: the tasks depend on its key
    layers: dict = {}
    dependencies: dict = {}
    parts = []
    for g, (w, idx) in enumerate(plan):
        key = (f"{name}-part", g)
        task = Task(key, _part_value_and_grad, send, _part_weights(weights, idx),
                    len(arrays), *(row[i] for i in idx for row in futures))
        lname = f"{name}-part{g}"
        layers[lname] = MaterializedLayer(
            {key: task}, annotations={"workers": [w], "allow_other_workers": True} if w else None)
        dependencies[lname] = set()
        parts.append(key)
    tree: dict = {}
    # At most fanin workers' sums: the tree's one level is the root, added here as they
    # arrive (a combine task on a worker would cost a scheduling round trip and a transfer
    # more, for a handful of gradient-sized results).
    root = parts if len(parts) <= fanin else _tree(tree, parts, fanin, name)
    if tree:
        layers[f"{name}-sum"] = MaterializedLayer(tree)
        dependencies[f"{name}-sum"] = set(layers) - {f"{name}-sum"}
    try:
        out = client.get(HighLevelGraph(layers, dependencies), root, sync=True)
        return _combine(*out) if root is parts else out
    finally:
        if scattered is not None:
            for fut in scattered:
                fut.release()


def value_and_grad_sum(f: Callable, params: Any, *data: Any, client: Any = None,
                       jit: bool | dict = True, mean: bool = False, fanin: int = 8,
                       block_rows: int | str | None = "auto",
                       scheduler: str | None = None) -> tuple[Any, Any]:
    """``value_and_grad(f)(params, *data)`` for a loss that is a sum over rows, computed chunk
    by chunk on Dask.

    ``data`` are dask arrays whose axis 0 holds the rows, chunked alike along it (arrays
    chunked otherwise are rechunked to the first one's chunks with a
    :class:`ChunkAlignmentWarning`; arrays of different lengths raise ``ValueError``). Each
    chunk's ``value_and_grad(f)(params, *chunk)`` runs on a worker (jitted unless
    ``jit=False``, with ``jit``'s options if it is a dict such as ``{"compile": "never"}``; one
    trace per process and chunk shape), and the pairs are summed on the workers. With
    ``mean=True`` ``f`` is a mean over rows and chunk i is weighted by n_i / N. The gradient
    is shaped like ``params``, with ``None`` for static leaves, as :func:`diffprog.grad` gives
    it.

    ``block_rows``: a worker passes a chunk to ``f`` in blocks of at most this many rows and
    adds up their results (``"auto"``, the default: blocks of about 8 MiB of data; ``None``:
    whole chunks). Dask sizes chunks for its scheduler, not for the CPU's caches: blocks keep
    ``f``'s temporaries small (a loss over a 42 MB chunk ran 10-20% faster in 8 MiB blocks
    with both workers busy) and bound a worker's memory (its temporaries' peak: 6.0 MB whole,
    1.0 MB in blocks, jitted). ``f`` must therefore be a sum (or,
    with ``mean=True``, a mean) over the rows it is given, as for the chunks.

    ``client``: a ``distributed.Client``. When the data are persisted on its workers
    (``client.persist``), each worker that holds chunks runs one task that loops over its own
    chunks and adds their results up, and a tree of fan-in ``fanin`` adds the workers' sums
    (the same work goes first to one Dask actor per worker, called without scheduling a task,
    and falls back to the tasks if anything fails: docs/SCALING.md); otherwise one task per
    chunk, and a tree of fan-in ``fanin`` over the chunks. ``params``
    and ``f`` travel inside the tasks (scattered to every worker once per call when they are
    large). Without a client, the graph runs on dask's current scheduler (``scheduler``
    overrides it: "threads", "sync", "processes").

    Example:
        >>> import numpy as np, dask.array as da, diffprog.numpy as dnp
        >>> x = da.from_array(np.arange(4.0), chunks=2)
        >>> v, g = value_and_grad_sum(lambda w, x: dnp.sum(w * x ** 2), 1.0, x,
        ...                           scheduler="threads")
        >>> float(v), float(g)
        (14.0, 14.0)
    """
    if not isinstance(fanin, int) or isinstance(fanin, bool) or fanin < 2:
        raise ValueError(f"diffprog.distributed: fanin must be an int >= 2, not {fanin!r}")
    if not (block_rows is None or (isinstance(block_rows, str) and block_rows == "auto") or (
            isinstance(block_rows, (int, np.integer)) and not isinstance(block_rows, bool)
            and block_rows >= 1)):
        raise ValueError("diffprog.distributed: block_rows must be an int >= 1, \"auto\" or "
                         f"None (whole chunks), not {block_rows!r}")
    if isinstance(block_rows, np.integer):
        block_rows = int(block_rows)
    arrays = _align(data)
    chunks = arrays[0].chunks[0]
    total = sum(chunks)
    if total == 0:
        raise ValueError("diffprog.distributed: the data have no rows")
    options = None if jit is False else ({} if jit is True else dict(jit))
    payload = _Payload(*_pickled(f, options), params, f, options, block_rows)
    name = f"dp-{uuid.uuid4().hex[:12]}"
    # per chunk: its weight, True for "counts 1" (mean=False), 0 for an empty chunk (skipped)
    weights: list = [(c / total if mean else True) if c else 0 for c in chunks]
    if client is not None:
        from distributed import Future
        futures = _persisted(arrays, Future)
        if futures is not None:
            if payload.nbytes() <= _INLINE_BYTES:
                out = _fast(client, payload, arrays, futures, weights, fanin)
                if out is not None:
                    return out
            return _on_workers(client, payload, arrays, futures, weights, fanin, name)
    return _per_chunk(client, payload, arrays, weights, fanin, name, scheduler)


def _per_chunk(client: Any, payload: _Payload, arrays: list, weights: list, fanin: int,
               name: str, scheduler: str | None) -> tuple:
    """The per-chunk plan (data not persisted, or no client): one task per chunk, where the
    scheduler decides, and a tree of fan-in ``fanin`` over them."""
    scattered = None
    if client is not None and payload.nbytes() * len(weights) > _INLINE_BYTES:
        # one copy per worker, sent now, instead of one per task
        scattered = client.scatter([payload], broadcast=True, hash=False)
        send: Any = scattered[0]
    else:
        send = payload
    # optimized together, so that arrays sharing upstream tasks still share them
    arrays = list(dask.optimize(*arrays))
    blocks = [_row_keys(x) for x in arrays]
    # One layer of tasks, built directly (a dask.delayed call per chunk costs milliseconds);
    # TaskRef marks the references: keys of persisted arrays are not in the graph.
    layer: dict = {}
    keys = []
    for i, weight in enumerate(weights):
        if weight != 0:
            key = (f"{name}-chunk", i)
            layer[key] = Task(key, _chunk_task, send,
                              None if weight is True else weight,
                              *(TaskRef(b[i]) for b in blocks))
            keys.append(key)
    root = _tree(layer, keys, fanin, name)
    graph = HighLevelGraph.from_collections(f"{name}-sum", layer, dependencies=arrays)
    result = Delayed(root, graph, layer=f"{name}-sum")
    try:
        if client is not None:
            return client.compute(result, sync=True)
        return dask.compute(result, scheduler=scheduler)[0]
    finally:
        if scattered is not None:
            for fut in scattered:
                fut.release()


def grad_sum(f: Callable, params: Any, *data: Any, client: Any = None, jit: bool | dict = True,
             mean: bool = False, fanin: int = 8, block_rows: int | str | None = "auto",
             scheduler: str | None = None) -> Any:
    """The gradient part of :func:`value_and_grad_sum`.

    Example:
        >>> import numpy as np, dask.array as da, diffprog.numpy as dnp
        >>> x = da.from_array(np.ones((10, 2)), chunks=3)
        >>> grad_sum(lambda w, x: dnp.mean(x @ w), np.zeros(2), x, mean=True, scheduler="sync")
        array([1., 1.])
    """
    return value_and_grad_sum(f, params, *data, client=client, jit=jit, mean=mean,
                              fanin=fanin, block_rows=block_rows, scheduler=scheduler)[1]


def map(f: Callable, inputs: Iterable[Any], client: Any = None,
        scheduler: str | None = None) -> list:
    """``[f(x) for x in inputs]`` with one task per input, results in the inputs' order.

    ``client``: a ``distributed.Client`` (``f`` goes to the workers by cloudpickle); without
    one, dask's current scheduler (or ``scheduler``).

    Example:
        >>> import diffprog as dp
        >>> map(dp.grad(lambda x: x ** 3), [1.0, 2.0, 3.0], scheduler="threads")
        [np.float64(3.0), np.float64(12.0), np.float64(27.0)]
    """
    inputs = list(inputs)
    if client is not None:
        return client.gather(client.map(f, inputs, pure=False))
    task = dask.delayed(f, pure=False, traverse=False)
    return list(dask.compute(*[task(x) for x in inputs], scheduler=scheduler))
