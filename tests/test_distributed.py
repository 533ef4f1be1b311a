"""diffprog.distributed: data-parallel gradients on Dask equal value_and_grad on the concatenated
data, on a 2-process LocalCluster and on the threads scheduler; workers that die or raise.

One LocalCluster (two worker processes, one thread each) is shared by the module. Marked
``dask`` (needs the dask extra, which ``make test`` installs; ``make test-fast`` and
``make test-floor`` leave these out).
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import time
import traceback

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp

try:  # imported lazily by the tests only: test-floor collects this file without dask
    import cloudpickle
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from diffprog import distributed as dd
    # the workers get this module's functions by value: they need not import the tests
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
except ImportError:  # pragma: no cover - `make test` installs the extra
    dask = da = dd = None

pytestmark = pytest.mark.dask

N_WORKERS = 2
# jit without fused kernels: numba compiling on the workers would cost seconds per case (the
# default tiers run in test_params_sent_once_and_traced_once_per_chunk_shape)
NO_COMPILE = {"compile": "never"}


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=N_WORKERS, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster, set_as_default=False) as c:
        yield c


class Tag:
    """A static, hashable params leaf that counts how often the client pickles it."""

    pickled = 0

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self):
        Tag.pickled += 1
        return (Tag, (self.name,))

    def __eq__(self, other):
        return isinstance(other, Tag) and other.name == self.name

    def __hash__(self):
        return hash(self.name)


def loss(p, x, y):
    """A logistic loss summed over rows, using every kind of params leaf."""
    z = x @ p["w"] + p["b"]
    scale = 2.0 if p["mode"] == "double" else 1.0
    return scale * p["k"] * dnp.sum(dnp.logaddexp(0.0, z) - y * z)


def mean_loss(p, x, y):
    return dnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def params_for(dtype, tag=None):
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal(5).astype(dtype), "b": dtype(0.25), "k": 3, "mode": "double",
            "none": None, "tag": tag or Tag("t")}


def data_for(rng, n, dtype, nchunks):
    x = rng.standard_normal((n, 5)).astype(dtype)
    y = (rng.random(n) < 0.5).astype(dtype)
    sizes = tuple(len(part) for part in np.array_split(np.arange(n), nchunks))
    return x, y, da.from_array(x, chunks=(sizes, (5,))), da.from_array(y, chunks=(sizes,))


def assert_same(result, ref, rtol):
    (value, grads), (ref_value, ref_grads) = result, ref
    assert np.asarray(value).dtype == np.asarray(ref_value).dtype
    np.testing.assert_allclose(value, ref_value, rtol=rtol, atol=0)
    assert set(grads) == set(ref_grads)
    for key, g in ref_grads.items():
        if g is None:
            assert grads[key] is None, key  # static leaves get None, as dp.grad gives them
        else:
            assert np.asarray(grads[key]).dtype == np.asarray(g).dtype, key
            np.testing.assert_allclose(grads[key], g, rtol=rtol, atol=0, err_msg=key)


# float32 sums chunk by chunk round differently from one sum over all rows (float32's epsilon
# is 1.2e-7), so it is held to float32 accuracy; float64 to 1e-12.
RTOL = {np.float64: 1e-12, np.float32: 2e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nchunks, fanin", [(1, 8), (7, 8), (64, 2)])
def test_equals_value_and_grad_on_concatenated_data(client, rng, dtype, nchunks, fanin):
    x, y, dx, dy = data_for(rng, 1000, dtype, nchunks)
    params = params_for(dtype)
    ref = dp.value_and_grad(loss)(params, x, y)
    client.run(dd.chunk_stats, True)
    got = dd.value_and_grad_sum(loss, params, dx, dy, client=client, fanin=fanin,
                                jit=NO_COMPILE)
    assert_same(got, ref, RTOL[dtype])
    assert ref[1]["k"] is None and ref[1]["tag"] is None
    # not persisted: one task per chunk, wherever the scheduler put it
    assert [sum(v) for v in zip(*ran(client).values())] == [nchunks, nchunks]


def persisted_on(client, x, y, sizes, where, movable=False):
    """x and y chunked by ``sizes``, chunk i persisted on worker ``where[i]`` (then
    concatenated: the chunks' keys are aliases of the persisted ones). ``movable``: a lost
    chunk may be made again on another worker (a restricted one would wait for its dead
    worker forever)."""
    starts = np.cumsum([0, *sizes])
    xs, ys = [], []
    for s, n, w in zip(starts, sizes, where):
        # name=False: new keys, even for rows persisted elsewhere before
        px, py = client.persist([da.from_array(x[s:s + n], chunks=(n, x.shape[1]), name=False),
                                 da.from_array(y[s:s + n], chunks=(n,), name=False)],
                                workers=[w], allow_other_workers=movable)
        xs.append(px)
        ys.append(py)
    dx, dy = da.concatenate(xs), da.concatenate(ys)
    client.gather(client.futures_of(dx) + client.futures_of(dy))  # wait until they are made
    held = client.who_has(client.futures_of(dx))
    assert sorted(map(tuple, held.values())) == sorted((w,) for w in where)  # as asked
    return dx, dy


def held_by(client, dx):
    """How many chunks of dx each worker holds."""
    count: dict = {}
    for ws in client.who_has(client.futures_of(dx)).values():
        assert len(ws) == 1, ws  # no copies
        count[ws[0]] = count.get(ws[0], 0) + 1
    return count


def ran(client):
    """{worker: (tasks, chunks)} computed since the last reset, for the workers that ran any."""
    return {w: (s["tasks"], s["chunks"]) for w, s in client.run(dd.chunk_stats).items()
            if s["tasks"]}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nchunks, fanin", [(1, 8), (7, 8), (64, 2)])
def test_persisted_data_one_task_per_worker(client, rng, dtype, nchunks, fanin):
    x, y, dx, dy = data_for(rng, 1000, dtype, nchunks)
    dx, dy = client.persist([dx, dy])
    client.gather(client.futures_of(dx) + client.futures_of(dy))  # wait until they are made
    params = params_for(dtype)
    ref = dp.value_and_grad(loss)(params, x, y)
    dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE)  # traces
    client.run(dd.chunk_stats, True)
    got = dd.value_and_grad_sum(loss, params, dx, dy, client=client, fanin=fanin,
                                jit=NO_COMPILE)
    assert_same(got, ref, RTOL[dtype])
    # one task per worker holding chunks, which computed those chunks: none moved
    assert ran(client) == {w: (1, n) for w, n in held_by(client, dx).items()}


def test_unevenly_spread_chunks_and_a_worker_without_chunks(client, rng):
    a, b = sorted(client.scheduler_info()["workers"])
    x, y, _, _ = data_for(rng, 700, np.float64, 1)
    params = params_for(np.float64)
    ref = dp.value_and_grad(loss)(params, x, y)
    sizes = [100] * 7
    for where in ([a] * 6 + [b], [b, a, b, b, a, b, b], [a] * 7):  # 6+1, 2+5, all on one
        dx, dy = persisted_on(client, x, y, sizes, where)
        client.run(dd.chunk_stats, True)
        got = dd.value_and_grad_sum(loss, params, dx, dy, client=client, fanin=2,
                                    jit=NO_COMPILE)
        assert_same(got, ref, 1e-12)
        assert ran(client) == {w: (1, where.count(w)) for w in set(where)}
        mean = dd.value_and_grad_sum(mean_loss, params, dx, dy, client=client, mean=True,
                                     jit=NO_COMPILE)
        assert_same(mean, dp.value_and_grad(mean_loss)(params, x, y), 1e-12)


def test_large_params_are_scattered(client, rng, monkeypatch):
    # params above the inline limit go to every worker by scatter, not inside each task
    x, y, dx, dy = data_for(rng, 600, np.float64, 6)
    dx, dy = client.persist([dx, dy])
    big = rng.standard_normal(dd._INLINE_BYTES // 8 + 1)

    def loss_big(p, x, y):
        return loss(p, x, y) + 1e-3 * dnp.sum(p["big"] ** 2)

    params = {**params_for(np.float64), "big": big}
    ref = dp.value_and_grad(loss_big)(params, x, y)
    scatters = []
    scatter = client.scatter
    monkeypatch.setattr(client, "scatter", lambda *a, **k: scatters.append(1) or scatter(*a, **k))
    got = dd.value_and_grad_sum(loss_big, params, dx, dy, client=client, jit=NO_COMPILE)
    assert scatters == [1]
    dd.value_and_grad_sum(loss, params_for(np.float64), dx, dy, client=client, jit=NO_COMPILE)
    assert scatters == [1]  # small params travel inside the tasks
    # the second term counts once per chunk
    np.testing.assert_allclose(got[1]["big"], 6 * ref[1]["big"], rtol=1e-12)
    np.testing.assert_allclose(got[1]["w"], ref[1]["w"], rtol=1e-12)


def test_mean_weights_chunks_by_length(client, rng):
    x, y, dx, dy = data_for(rng, 1003, np.float64, 7)
    params = params_for(np.float64)
    ref = dp.value_and_grad(mean_loss)(params, x, y)
    assert_same(dd.value_and_grad_sum(mean_loss, params, dx, dy, client=client, mean=True,
                                      jit=NO_COMPILE), ref, 1e-12)
    g = dd.grad_sum(mean_loss, params, dx, dy, client=client, mean=True, jit=False)
    np.testing.assert_allclose(g["w"], ref[1]["w"], rtol=1e-12)


def test_params_sent_once_and_traced_once_per_chunk_shape(client, rng):
    x, y, dx, dy = data_for(rng, 1000, np.float64, 64)  # chunks of 16 and 15 rows
    tag = Tag("once")
    params = params_for(np.float64, tag)

    def loss_once(p, x, y):  # a function of this test's own: a cache entry of its own
        return loss(p, x, y) + 0.0

    Tag.pickled = 0
    for _ in range(2):
        got = dd.value_and_grad_sum(loss_once, params, dx, dy, client=client)
    # scattered: pickled once per call here (the workers copy it), not once per chunk task
    assert Tag.pickled <= 2 * N_WORKERS, Tag.pickled
    assert_same(got, dp.value_and_grad(loss)(params, x, y), 1e-12)
    token = dd._token(loss_once, {})
    traces = [info.get(token, 0) for info in client.run(dd.process_cache_info).values()]
    # each worker traced once per chunk shape it met (two shapes), over 2 calls of 64 chunks
    assert 1 <= sum(traces) and all(t <= 2 for t in traces), traces


def test_threads_scheduler_without_client(rng):
    x, y, dx, dy = data_for(rng, 500, np.float64, 7)
    params = params_for(np.float64)
    with dask.config.set(scheduler="threads"):
        got = dd.value_and_grad_sum(loss, params, dx, dy, jit=NO_COMPILE)
    assert_same(got, dp.value_and_grad(loss)(params, x, y), 1e-12)
    # one jitted value_and_grad in this process, traced once per chunk shape (72 and 71 rows)
    assert dd.process_cache_info()[dd._token(loss, NO_COMPILE)] <= 2


@pytest.mark.parametrize("persisted", [False, True])
def test_worker_killed_mid_computation_gives_the_exact_result(client, rng, tmp_path, persisted):
    x, y, dx, dy = data_for(rng, 1000, np.float64, 16)
    if persisted:  # the per-worker plan: the dead worker's chunks are lost with it
        # placed round-robin: client.persist may leave every chunk on one worker (it did in
        # CI, right after the previous case's worker was replaced)
        workers = sorted(client.scheduler_info()["workers"])
        assert len(workers) == N_WORKERS
        dx, dy = persisted_on(client, x, y, dx.chunks[0],
                              [workers[i % N_WORKERS] for i in range(len(dx.chunks[0]))],
                              movable=True)
    marker = str(tmp_path / "killed")
    params = params_for(np.float64)

    def dies_once(p, x, y):
        try:  # the first chunk anywhere kills its worker; dask reruns its tasks elsewhere
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return loss(p, x, y)
        os._exit(1)

    got = dd.value_and_grad_sum(dies_once, params, dx, dy, client=client, jit=False)
    assert os.path.exists(marker)
    assert_same(got, dp.value_and_grad(loss)(params, x, y), 1e-12)
    client.wait_for_workers(N_WORKERS, timeout=60)


def _raising_loss(p, x):
    if x.shape[0] < 100:
        # a builtin class: this module's classes travel by value, so the client would receive
        # a copy of a class of its own, not the class itself
        raise ValueError(f"a chunk of {x.shape[0]} rows is too short")
    return dnp.sum(x @ p)


@pytest.mark.parametrize("persisted", [False, True])
def test_an_exception_on_a_worker_surfaces_with_its_traceback(client, persisted):
    dx = da.ones((250, 3), chunks=(100, 3))  # the last chunk has 50 rows
    if persisted:
        dx = client.persist(dx)
        client.gather(client.futures_of(dx))
    with pytest.raises(ValueError, match="a chunk of 50 rows is too short") as info:
        dd.value_and_grad_sum(_raising_loss, np.ones(3), dx, client=client, jit=False)
    tb = "".join(traceback.format_exception(info.value))
    assert "_raising_loss" in tb and "_chunk_value_and_grad" in tb  # the worker's frames
    assert ("_part_value_and_grad" in tb) == persisted  # one task per worker, or per chunk


def _slow_square(i):
    time.sleep(0.02 * (5 - i))  # later inputs finish first
    return i, float(dp.grad(lambda t: t ** 2)(float(i)))


@pytest.mark.parametrize("where", ["client", "threads"])
def test_map_keeps_input_order(client, where):
    kw = {"client": client} if where == "client" else {"scheduler": "threads"}
    assert dd.map(_slow_square, range(6), **kw) == [(i, 2.0 * i) for i in range(6)]


def test_misaligned_chunks_are_rechunked_with_a_warning(rng):
    x, y, dx, _ = data_for(rng, 300, np.float64, 7)
    dy = da.from_array(y, chunks=50)
    params = params_for(np.float64)
    with pytest.warns(dd.ChunkAlignmentWarning, match=r"data\[1\] is chunked"):
        got = dd.value_and_grad_sum(loss, params, dx, dy, scheduler="threads", jit=NO_COMPILE)
    assert_same(got, dp.value_and_grad(loss)(params, x, y), 1e-12)


def test_different_lengths_raise(rng):
    _, _, dx, _ = data_for(rng, 300, np.float64, 3)
    with pytest.raises(ValueError, match="different lengths along axis 0: data\\[0\\] has 300 "
                                         "rows and data\\[1\\] has 299"):
        dd.grad_sum(loss, params_for(np.float64), dx, da.zeros(299, chunks=100))
    with pytest.raises(TypeError, match="not a dask array"):
        dd.grad_sum(loss, params_for(np.float64), dx, np.zeros(300))


def test_jit_pickles_as_function_and_options():
    f = dp.jit(lambda x, n: dnp.sum(x ** n), static_argnums=1, compile="never")
    f(np.ones(2), 2)
    g = pickle.loads(cloudpickle.dumps(f))
    assert (g.static_argnums, g.compile, g.traces) == ((1,), "never", 0)
    np.testing.assert_allclose(g(np.arange(3.0), 3), 9.0)


def test_import_diffprog_does_not_import_dask():
    code = "import sys, diffprog; assert 'dask' not in sys.modules, 'dask imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def _prepend_path(path):
    if path not in sys.path:
        sys.path.insert(0, path)


def test_distributed_logreg_example(client, capsys):
    # the example's functions go to the workers by reference (dask pickles the tasks that make
    # the data with plain pickle), so every process imports it from examples/
    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "examples")
    client.run(_prepend_path, examples)
    sys.path.insert(0, examples)
    try:
        import distributed_logreg as example
        r = example.main(rows=4000, steps=3, client=client)
    finally:
        sys.path.remove(examples)
    out = capsys.readouterr().out
    assert "step 3: loss" in out and r["chunks"] == 16
    # the same gradient descent in one process, on the same rows made here
    sizes = [250] * 16
    parts = [example.make_chunk(seed, n) for seed, n in enumerate(sizes)]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    params, losses = {"w": np.zeros(example.FEATURES), "b": 0.0}, []
    for _ in range(3):
        value, g = dp.value_and_grad(example.loss)(params, x, y)
        params = {"w": params["w"] - 2.0 * g["w"], "b": params["b"] - 2.0 * g["b"]}
        losses.append(float(value))
    np.testing.assert_allclose(r["losses"], losses, rtol=1e-12)
    assert losses[0] == pytest.approx(np.log(2.0), rel=1e-15) and losses[2] < losses[0]


# -- the per-worker plan's fast path (actors), and its fall back to tasks ---------------------

def _where(client, dx, dy):
    """The fast path's placement key of the data (dx, dy)."""
    from distributed import Future
    return client.id, tuple(f.key for row in dd._persisted([dx, dy], Future) for f in row)


def _placement(client, dx, dy):
    return dd._placements.get(_where(client, dx, dy))


def test_fast_path_is_taken_and_equals_the_tasks(client, rng):
    a, b = sorted(client.scheduler_info()["workers"])
    x, y, _, _ = data_for(rng, 700, np.float64, 1)
    dx, dy = persisted_on(client, x, y, [100] * 7, [a, b, a, a, b, a, b], movable=True)
    params = params_for(np.float64)
    ref = dp.value_and_grad(loss)(params, x, y)
    client.run(dd.chunk_stats, True)
    first = dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE)
    assert _placement(client, dx, dy) == [(a, [0, 2, 3, 5]), (b, [1, 4, 6])]
    assert (client.id, a) in dd._actors and (client.id, b) in dd._actors
    again = dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE)
    for got in (first, again):
        assert_same(got, ref, 1e-12)
    assert ran(client) == {a: (2, 8), b: (2, 6)}  # one call per worker and call, no fallback
    mean = dd.value_and_grad_sum(mean_loss, params, dx, dy, client=client, mean=True,
                                 jit=NO_COMPILE)
    assert_same(mean, dp.value_and_grad(mean_loss)(params, x, y), 1e-12)


def test_fast_path_with_a_stale_placement_falls_back_and_replans(client, rng):
    a, b = sorted(client.scheduler_info()["workers"])
    x, y, _, _ = data_for(rng, 400, np.float64, 1)
    dx, dy = persisted_on(client, x, y, [100] * 4, [a, a, b, b], movable=True)
    params = params_for(np.float64)
    ref = dp.value_and_grad(loss)(params, x, y)
    assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE),
                ref, 1e-12)
    where = _where(client, dx, dy)
    plan = dd._placements[where]
    assert plan == [(a, [0, 1]), (b, [2, 3])]
    dd._placements[where] = [(b, [0, 1]), (a, [2, 3])]  # as if the chunks had moved
    client.run(dd.chunk_stats, True)
    assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE),
                ref, 1e-12)
    # the actors found no chunk of theirs and returned None; the tasks computed each chunk
    # where it lies, once, and the next call plans again from who_has
    assert ran(client) == {a: (1, 2), b: (1, 2)}
    assert where not in dd._placements
    assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE),
                ref, 1e-12)
    assert dd._placements[where] == plan


def test_fast_path_from_threads_and_a_second_client(client, rng):
    import concurrent.futures
    workers = sorted(client.scheduler_info()["workers"])
    x, y, _, _ = data_for(rng, 800, np.float64, 1)
    # x's and y's chunk i on one worker (client.persist may put them on different ones, and
    # then the fast path is not used: test_fast_path_is_not_used_when_...)
    dx, dy = persisted_on(client, x, y, [100] * 8, workers * 4, movable=True)
    params = params_for(np.float64)
    ref = dp.value_and_grad(loss)(params, x, y)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: dd.value_and_grad_sum(
            loss, params, dx, dy, client=client, jit=NO_COMPILE), range(8)))
    for got in results:
        assert_same(got, ref, 1e-12)
    # a second client of the same cluster gets actors of its own; closing it leaves this
    # client's in place
    with Client(client.scheduler.address, set_as_default=False) as other:
        dx2, dy2 = persisted_on(other, x, y, [400, 400], workers, movable=True)
        assert_same(dd.value_and_grad_sum(loss, params, dx2, dy2, client=other,
                                          jit=NO_COMPILE), ref, 1e-12)
        assert any(k[0] == other.id for k in dd._actors)
    assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE),
                ref, 1e-12)
    assert _placement(client, dx, dy) == [(workers[0], [0, 2, 4, 6]), (workers[1], [1, 3, 5, 7])]
    assert not any(k[0] == other.id for k in dd._actors)  # pruned once it closed
    assert all((client.id, w) in dd._actors for w in workers)


def test_fast_path_placement_naming_a_gone_worker_falls_back(client, rng, monkeypatch):
    a, b = sorted(client.scheduler_info()["workers"])
    x, y, _, _ = data_for(rng, 200, np.float64, 1)
    dx, dy = persisted_on(client, x, y, [100] * 2, [a, b], movable=True)
    params = params_for(np.float64)
    ref = dp.value_and_grad(loss)(params, x, y)
    dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE)
    where = _where(client, dx, dy)
    assert dd._placements[where] == [(a, [0]), (b, [1])]
    gone = "tcp://127.0.0.1:9"  # no worker: making its actor would wait forever
    dd._placements[where] = [(a, [0]), (gone, [1])]
    monkeypatch.setattr(dd, "_ACTOR_TIMEOUT", 0.5)
    assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE),
                ref, 1e-12)
    assert (client.id, gone) not in dd._actors and where not in dd._placements


def test_fast_path_is_not_used_when_an_arrays_chunks_lie_elsewhere(client, rng):
    a, b = sorted(client.scheduler_info()["workers"])
    x, y, _, _ = data_for(rng, 300, np.float64, 1)
    parts = [client.persist(da.from_array(v[s:s + 100], chunks=(100,) + v.shape[1:], name=False),
                            workers=[w], allow_other_workers=True)
             for s in (0, 100, 200) for v, w in ((x, a), (y, b))]  # x's chunks on a, y's on b
    dx, dy = da.concatenate(parts[0::2]), da.concatenate(parts[1::2])
    client.gather(client.futures_of(dx) + client.futures_of(dy))
    params = params_for(np.float64)
    ref = dp.value_and_grad(loss)(params, x, y)
    for _ in range(2):  # the second call goes straight to the tasks
        client.run(dd.chunk_stats, True)
        assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=client,
                                          jit=NO_COMPILE), ref, 1e-12)
        assert _placement(client, dx, dy) is False
        assert sum(t for t, _ in ran(client).values()) == 1  # one task, on the worker with x


# Blocks: a worker passes a chunk to f in blocks of rows (block_rows)

def test_blocks_cover_a_chunk_in_near_equal_parts():
    for nrows, limit in [(1, 1), (10, 3), (10, 10), (10, 11), (1000, 7), (250_000, 62_500)]:
        bounds = dd._blocks(nrows, 8 * nrows, limit)
        assert bounds[0][0] == 0 and bounds[-1][1] == nrows
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous
        sizes = {stop - start for start, stop in bounds}
        assert max(sizes) <= limit and len(sizes) <= 2 and max(sizes) - min(sizes) <= 1
        assert len(bounds) == -(-nrows // limit)  # as few as fit
    assert dd._blocks(500, 10**9, None) == [(0, 500)]
    # "auto": about _BLOCK_BYTES of data per block (250,000 rows of 168 bytes: 42 MB, 6 blocks)
    auto = dd._blocks(250_000, 250_000 * 168, "auto")
    assert len(auto) == 6 and all(b - a <= dd._BLOCK_BYTES // 168 for a, b in auto)
    assert dd._blocks(3, 3 * 10**9, "auto") == [(0, 1), (1, 2), (2, 3)]  # a row at least


def _rows_at_most(limit):
    def f(p, x, y):
        if x.shape[0] > limit:  # checked on the worker, with jit=False on every call
            raise AssertionError(f"f was given {x.shape[0]} rows, more than {limit}")
        return loss(p, x, y)
    return f


@pytest.mark.parametrize("mean", [False, True])
@pytest.mark.parametrize("persisted", [False, True])
def test_block_rows_gives_f_blocks_and_the_exact_sum(client, rng, mean, persisted):
    x, y, dx, dy = data_for(rng, 1003, np.float64, 4)  # chunks of 251 and 250 rows
    if persisted:
        dx, dy = client.persist([dx, dy])
        client.gather(client.futures_of(dx) + client.futures_of(dy))
    params = params_for(np.float64)
    f = mean_loss if mean else loss
    ref = dp.value_and_grad(f)(params, x, y)
    for limit in (1, 37, 250):
        got = dd.value_and_grad_sum(f if mean else _rows_at_most(limit), params, dx, dy,
                                    client=client, jit=False, mean=mean, block_rows=limit)
        assert_same(got, ref, 1e-12)
    with pytest.raises(AssertionError, match="f was given 251 rows, more than 250"):
        dd.value_and_grad_sum(_rows_at_most(250), params, dx, dy, client=client, jit=False,
                              block_rows=None)


def test_block_rows_auto_splits_by_bytes(rng, monkeypatch):
    x, y, dx, dy = data_for(rng, 400, np.float64, 2)  # chunks of 200 rows of 48 bytes
    seen = []

    def f(p, x, y):
        seen.append(x.shape[0])
        return mean_loss(p, x, y)

    params = params_for(np.float64)
    monkeypatch.setattr(dd, "_BLOCK_BYTES", 48 * 64)  # 64 rows a block: 4 blocks of 50
    got = dd.value_and_grad_sum(f, params, dx, dy, scheduler="sync", jit=False, mean=True)
    assert seen == [50] * 8
    assert_same(got, dp.value_and_grad(mean_loss)(params, x, y), 1e-12)
    seen.clear()
    dd.value_and_grad_sum(f, params, dx, dy, scheduler="sync", jit=False, mean=True,
                          block_rows=None)
    assert seen == [200, 200]
    seen.clear()
    monkeypatch.setattr(dd, "_BLOCK_BYTES", 8 << 20)  # the default: both chunks whole
    dd.value_and_grad_sum(f, params, dx, dy, scheduler="sync", jit=False, mean=True)
    assert seen == [200, 200]


def test_block_rows_float32_and_jit(client, rng):
    x, y, dx, dy = data_for(rng, 700, np.float32, 3)
    params = params_for(np.float32)
    got = dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE,
                                block_rows=64)
    assert_same(got, dp.value_and_grad(loss)(params, x, y), RTOL[np.float32])


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "whole", [4]])
def test_block_rows_must_be_a_positive_int_auto_or_none(rng, bad):
    _, _, dx, dy = data_for(rng, 30, np.float64, 2)
    with pytest.raises(ValueError, match="block_rows must be an int >= 1"):
        dd.grad_sum(loss, params_for(np.float64), dx, dy, block_rows=bad)
    assert dd.grad_sum(mean_loss, params_for(np.float64), dx, dy, block_rows=np.int64(7),
                       scheduler="sync", jit=False)["w"].shape == (5,)


def test_fast_path_only_when_the_client_adds_at_most_fanin_sums(rng):
    # three workers (threads of this process: quick to start), one chunk each
    # the scheduler's HTTP server (here whatever dashboard_address says) on a free port: the
    # module's cluster holds the default one
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=False,
                      dashboard_address=":0", worker_dashboard_address=None,
                      silence_logs=40) as cluster, \
            Client(cluster, set_as_default=False) as c:
        workers = sorted(c.scheduler_info()["workers"])
        x, y, _, _ = data_for(rng, 300, np.float64, 1)
        dx, dy = persisted_on(c, x, y, [100] * 3, workers)
        params = params_for(np.float64)
        ref = dp.value_and_grad(loss)(params, x, y)
        where = _where(c, dx, dy)
        # fanin 2 < 3 workers: the tasks, whose tree adds the sums on the workers
        assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=c, fanin=2,
                                          jit=NO_COMPILE), ref, 1e-12)
        assert where not in dd._placements
        # fanin 3: the client adds the 3 sums, so the actors may compute them
        assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=c, fanin=3,
                                          jit=NO_COMPILE), ref, 1e-12)
        assert len(dd._placements[where]) == 3
        assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=c, fanin=2,
                                          jit=NO_COMPILE), ref, 1e-12)  # a cached plan too
        # the actors live on: in-process, the client gets the workers' own handles, which
        # hold no reference to the actors' keys (the next call waited forever on an actor its
        # worker had deleted once the future that made it was dropped)
        gc.collect()
        time.sleep(0.5)  # the scheduler would have released the keys by now
        made = {entry[1].key for k, entry in dd._actors.items() if k[0] == c.id}
        held = set().union(*c.run(lambda dask_worker: set(dask_worker.state.actors)).values())
        assert len(made) == 3 and made <= held
        for _ in range(5):
            assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=c, fanin=3,
                                              jit=NO_COMPILE), ref, 1e-12)


def _slow_rows(x, seconds):
    time.sleep(seconds)
    return x


def test_fast_path_after_data_still_being_made_on_the_first_call(client, rng):
    # the first call finds chunks no worker holds yet: it runs as tasks (which wait for them)
    # and must not mark the data set as tasks-only (it did: holders "" failed the same-worker
    # test), so that the next call takes the fast path
    x, y, _, _ = data_for(rng, 200, np.float64, 1)
    parts = [dask.delayed(_slow_rows, pure=False)(v, 0.5) for v in (x, y)]
    dx = da.from_delayed(parts[0], x.shape, x.dtype)
    dy = da.from_delayed(parts[1], y.shape, y.dtype)
    a = sorted(client.scheduler_info()["workers"])[0]
    dx, dy = client.persist([dx, dy], workers=[a])
    params = params_for(np.float64)
    ref = dp.value_and_grad(loss)(params, x, y)
    assert not client.who_has(client.futures_of(dx))[client.futures_of(dx)[0].key]  # not yet
    assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE),
                ref, 1e-12)
    assert _placement(client, dx, dy) is None  # nothing remembered
    assert_same(dd.value_and_grad_sum(loss, params, dx, dy, client=client, jit=NO_COMPILE),
                ref, 1e-12)
    assert _placement(client, dx, dy) == [(a, [0])]  # the fast path ran


_IN_PROCESS = """
import sys, numpy as np, dask.array as da
from distributed import Client, LocalCluster
import diffprog as dp, diffprog.numpy as dnp
from diffprog import distributed as dd

def loss(p, x):
    return dnp.sum((x @ p) ** 2)

x = np.random.default_rng(0).standard_normal((300, 5))
p = np.ones(5)
ref = dp.grad(loss)(p, x)
for _ in range(6):
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=False, dashboard_address=":0",
                      worker_dashboard_address=None, silence_logs=40) as cluster, \\
            Client(cluster, set_as_default=False) as c:
        ws = sorted(c.scheduler_info()["workers"])
        parts = [c.persist(da.from_array(x[s:s + 100], chunks=(100, 5), name=False),
                           workers=[w]) for s, w in zip((0, 100, 200), ws)]
        dx = da.concatenate(parts)
        c.gather(c.futures_of(dx))
        for _ in range(5):
            g = dd.grad_sum(loss, p, dx, client=c, jit={"compile": "never"})
            np.testing.assert_allclose(g, ref, rtol=1e-12)
        assert len([k for k in dd._actors if k[0] == c.id]) == 3  # the fast path ran
print("ok")
"""


def test_fast_path_on_in_process_clusters_does_not_lose_its_actors():
    # In-process workers hand the client their own actor handles; without the future that
    # made an actor kept with it, dask deleted the actor and a later call waited forever (in
    # the first or second of these clusters, in three tries). A process of its own, so that a
    # hang fails the test instead of the suite.
    r = subprocess.run([sys.executable, "-c", _IN_PROCESS], capture_output=True, text=True,
                       timeout=120)  # about 3 s
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


class _Stub:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_an_actor_lost_during_a_call_raises_instead_of_waiting_forever(monkeypatch):
    monkeypatch.setattr(dd, "_POLL", 0.01)
    answers = iter([TimeoutError(), TimeoutError(), "sum"])

    def result(timeout):
        assert timeout == 0.01
        out = next(answers)
        if isinstance(out, Exception):
            raise out
        return out

    made = _Stub(status="finished")
    assert dd._answer(_Stub(result=result), made) == "sum"  # a long call is waited for
    made.status = "lost"  # its worker died: the scheduler lost the actor's key
    with pytest.raises(RuntimeError, match="actor was lost"):
        dd._answer(_Stub(result=lambda timeout: (_ for _ in ()).throw(TimeoutError())), made)


def _slow_loss(p, x, y):
    time.sleep(0.3)
    return loss(p, x, y)


def test_fast_path_waits_out_calls_longer_than_its_poll(client, rng, monkeypatch):
    # a call longer than _POLL is waited for across the polls (real actor futures time out
    # with TimeoutError), not abandoned for the tasks, which would compute it twice
    monkeypatch.setattr(dd, "_POLL", 0.05)
    a, b = sorted(client.scheduler_info()["workers"])
    x, y, _, _ = data_for(rng, 200, np.float64, 1)
    dx, dy = persisted_on(client, x, y, [100] * 2, [a, b])
    params = params_for(np.float64)
    client.run(dd.chunk_stats, True)
    assert_same(dd.value_and_grad_sum(_slow_loss, params, dx, dy, client=client, jit=False),
                dp.value_and_grad(loss)(params, x, y), 1e-12)
    assert sum(s["chunks"] for s in client.run(dd.chunk_stats).values()) == 2  # once each
    assert _placement(client, dx, dy) == [(a, [0]), (b, [1])]  # the fast path answered
