"""Data-parallel gradients on Dask: the gradient of a loss summed over the rows of dask arrays.

``value_and_grad_sum(f, params, *data)`` computes ``value_and_grad(f)(params, *chunk)`` on
each chunk of ``data`` (dask arrays chunked along axis 0), on the workers, and adds the
per-chunk results up with a tree reduction that also runs on the workers: the client receives
one value and one gradient pytree, never the per-chunk ones. ``params`` (with the function)
travels once per call: scattered to every worker (``broadcast=True``) when a
``distributed.Client`` is given, one graph key otherwise. Each process keeps its jitted
``value_and_grad(f)`` in a cache keyed by the function's pickled bytes, so a worker traces
``f`` once per chunk shape, not once per task, and its fused kernels come from diffprog's disk
cache, which is keyed by content and shared by the processes of a machine.

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
    from dask._task_spec import Task, TaskRef
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("diffprog.distributed needs dask and distributed: "
                      "pip install 'diffprog[dask]'") from e

__all__ = ["value_and_grad_sum", "grad_sum", "map", "ChunkAlignmentWarning", "process_cache_info",
           "wait_compiled"]


class ChunkAlignmentWarning(UserWarning):
    """The data arrays were not chunked alike and were rechunked to the first one's chunks."""


# ----------------------------------------------------------------------------------------------
# What runs on a worker


class _Payload:
    """What one call sends to every worker: the token naming the function in the per-process
    cache, the function and its jit options pickled by cloudpickle (``blob``: unpickled only by
    a process that has not cached the function yet), and the parameters. A plain class, not a
    tuple or dict, so that dask keeps it as one literal. ``fun`` and ``options`` are the
    caller's own objects, used where no pickling happens (the threads scheduler)."""

    __slots__ = ("token", "blob", "params", "fun", "options")

    def __init__(self, token: str, blob: bytes, params: Any, fun: Callable | None = None,
                 options: dict | None = None) -> None:
        self.token, self.blob, self.params = token, blob, params
        self.fun, self.options = fun, options

    def __getstate__(self) -> tuple:
        return self.token, self.blob, self.params

    def __setstate__(self, state: tuple) -> None:
        self.token, self.blob, self.params = state
        self.fun = self.options = None


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


def _chunk_value_and_grad(payload: _Payload, weight: float | None, *chunk: np.ndarray) -> tuple:
    value, grads = _compiled(payload)(payload.params, *chunk)
    if weight is not None:  # mean=True: chunk i counts n_i / N (a Python float keeps float32)
        value = value * weight
        leaves, tree = tree_flatten(grads)
        grads = tree_unflatten(tree, [g * weight for g in leaves])
    return value, grads


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


def _placement(client: Any, x: Any, keys: list) -> list[tuple[int, str]]:
    """``(chunk index, worker holding it)`` for every chunk of ``x`` (whose chunk keys are
    ``keys``): the worker is "" without a client or for chunks that are not persisted (they are
    computed where the scheduler decides)."""
    where: dict = {}
    if client is not None:
        try:
            futures = client.futures_of(x)
            if futures:
                where = {k: min(v) for k, v in client.who_has(futures).items() if v}
        except Exception:  # pragma: no cover - grouping is an optimization, not a requirement
            where = {}
    return [(i, where.get(k, "")) for i, k in enumerate(keys)]


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


def value_and_grad_sum(f: Callable, params: Any, *data: Any, client: Any = None,
                       jit: bool | dict = True, mean: bool = False, fanin: int = 8,
                       scheduler: str | None = None) -> tuple[Any, Any]:
    """``value_and_grad(f)(params, *data)`` for a loss that is a sum over rows, computed chunk
    by chunk on Dask.

    ``data`` are dask arrays whose axis 0 holds the rows, chunked alike along it (arrays
    chunked otherwise are rechunked to the first one's chunks with a
    :class:`ChunkAlignmentWarning`; arrays of different lengths raise ``ValueError``). Each
    chunk's ``value_and_grad(f)(params, *chunk)`` runs on a worker (jitted unless
    ``jit=False``, with ``jit``'s options if it is a dict such as ``{"compile": "never"}``; one
    trace per process and chunk shape), and the pairs are summed in a tree of
    fan-in ``fanin`` on the workers. With ``mean=True`` ``f`` is a mean over rows and chunk i
    is weighted by n_i / N. The gradient is shaped like ``params``, with ``None`` for static
    leaves, as :func:`diffprog.grad` gives it.

    ``client``: a ``distributed.Client``; ``params`` and ``f`` are then scattered to every
    worker once per call. Without one, the graph runs on dask's current scheduler
    (``scheduler`` overrides it: "threads", "sync", "processes"), with ``params`` as one key.

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
    arrays = _align(data)
    chunks = arrays[0].chunks[0]
    total = sum(chunks)
    if total == 0:
        raise ValueError("diffprog.distributed: the data have no rows")
    options = None if jit is False else ({} if jit is True else dict(jit))
    payload = _Payload(*_pickled(f, options), params, f, options)
    name = f"dp-{uuid.uuid4().hex[:12]}"
    futures = None
    if client is not None:
        # one copy per worker, sent now, instead of one per task
        futures = client.scatter([payload], broadcast=True, hash=False)
        payload_ref = dask.delayed(futures[0])
    else:
        payload_ref = dask.delayed(payload, name=f"{name}-params", traverse=False)
    placement = _placement(client, arrays[0], _row_keys(arrays[0]))  # (optimizing drops futures)
    # optimized together, so that arrays sharing upstream tasks still share them
    arrays = dask.optimize(*arrays)
    blocks = [_row_keys(x) for x in arrays]
    # One layer of tasks, built directly (a dask.delayed call per chunk costs milliseconds);
    # TaskRef marks the references: keys of persisted arrays are not in the graph.
    layer: dict = {}
    depth = 0

    def reduce(keys: list) -> Any:  # a tree of fan-in `fanin` over keys, its root's key
        nonlocal depth
        while len(keys) > 1:
            depth += 1
            keys, parts = [], keys
            for j in range(0, len(parts), fanin):
                key = (f"{name}-sum{depth}", j // fanin)
                layer[key] = Task(key, _combine, *(TaskRef(k) for k in parts[j:j + fanin]))
                keys.append(key)
        return keys[0]

    groups: dict[str, list] = {}
    for i, where in placement:
        if chunks[i]:
            key = (f"{name}-chunk", i)
            layer[key] = Task(key, _chunk_value_and_grad, TaskRef(payload_ref.key),
                              chunks[i] / total if mean else None,
                              *(TaskRef(b[i]) for b in blocks))
            groups.setdefault(where, []).append(key)
    # the chunks of each worker are added up on it; only one partial sum per worker travels
    root = reduce([reduce(keys) for _, keys in sorted(groups.items())])
    graph = HighLevelGraph.from_collections(f"{name}-sum", layer,
                                            dependencies=[payload_ref, *arrays])
    result = Delayed(root, graph, layer=f"{name}-sum")
    try:
        if client is not None:
            value, grads = client.compute(result, sync=True)
        else:
            value, grads = dask.compute(result, scheduler=scheduler)[0]
    finally:
        if futures is not None:
            for fut in futures:
                fut.release()
    return value, grads


def grad_sum(f: Callable, params: Any, *data: Any, client: Any = None, jit: bool | dict = True,
             mean: bool = False, fanin: int = 8, scheduler: str | None = None) -> Any:
    """The gradient part of :func:`value_and_grad_sum`.

    Example:
        >>> import numpy as np, dask.array as da, diffprog.numpy as dnp
        >>> x = da.from_array(np.ones((10, 2)), chunks=3)
        >>> grad_sum(lambda w, x: dnp.mean(x @ w), np.zeros(2), x, mean=True, scheduler="sync")
        array([1., 1.])
    """
    return value_and_grad_sum(f, params, *data, client=client, jit=jit, mean=mean,
                              fanin=fanin, scheduler=scheduler)[1]


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
