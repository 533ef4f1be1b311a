"""W9, data-parallel gradients on Dask: ``diffprog.distributed.grad_sum`` of a logistic-regression
loss over 4·10^6 × 20 float64 rows on a 2-worker LocalCluster (two processes, one thread each)
against the same gradient in one process (``dp.jit(dp.value_and_grad(loss))`` on the whole
arrays), and the overhead of the distributed call over the per-chunk compute it runs.

The rows are made chunk by chunk on the workers in turn and persisted there (as many on each);
the same rows are made in
a process of its own for the one-process row (and the check): a plain process that only computes,
as a user's would be (the benchmark's process also runs dask's scheduler and the client, whose
event loop takes about 46 ms of CPU time per second when idle, and the GIL with it: a
one-process call there took 380 ms of its thread's CPU time and 530 ms of the process's, at
load 7). grad_sum runs one task per worker over the chunks it holds. Overhead: the wall
time of a call against the ideal, the summed time of the per-chunk ``value_and_grad`` calls
(timed inside the workers, ``diffprog.distributed.chunk_stats``) divided by the number of
workers; ``overhead = wall / ideal - 1``.

The workers run with the same memory allocator settings as the one process: dask's nanny sets
``MALLOC_TRIM_THRESHOLD_=65536`` in its workers by default, which turns off glibc's adaptive
mmap threshold, so that every temporary over 128 KiB is a fresh mmap whose pages fault on every
call (20-40% slower chunks measured; docs/SCALING.md); the benchmark drops that variable
(``worker_environ``) so that the two sides differ by the distribution only.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from .harness import System, Table, time_table

ID = "W9"
TITLE = "W9 — grad_sum of a logistic loss over 4·10^6 × 20 float64 on a 2-worker LocalCluster"
ROWS, FEATURES, WORKERS = 4_000_000, 20, 2


def make_chunk(seed: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of rows: features and labels of a logistic model (made on a worker)."""
    w_true = np.random.default_rng(7).standard_normal(FEATURES) / np.sqrt(FEATURES) * 3.0
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, FEATURES))
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(x @ w_true)))).astype(np.float64)
    return x, y


def loss(params: dict, x: np.ndarray, y: np.ndarray):
    """The logistic loss summed over rows."""
    import diffprog.numpy as dnp
    z = x @ params["w"] + params["b"]
    return dnp.sum(dnp.logaddexp(0.0, z) - y * z)


def worker_environ() -> dict:
    """The environment dask's nanny gives its workers, less ``MALLOC_TRIM_THRESHOLD_``: glibc's
    default allocator settings, as in the one process this is compared with."""
    import dask
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


def _cluster(workers: int, threads: int = 1):
    import dask
    from distributed import LocalCluster
    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ()}):
        return LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                            dashboard_address=None, silence_logs=40)


def _sizes(rows: int, nchunks: int) -> list[int]:
    return [len(c) for c in np.array_split(np.arange(rows), nchunks)]


def _persisted(client, rows: int) -> dict:
    """The rows on the workers, as 16 and as 64 chunks: made chunk by chunk on the workers in
    turn (chunk i of the 16 on worker i mod W, and its four quarters, the 64-chunk copy, on the
    same worker), so that every worker holds as many rows as every other: grad_sum computes
    each chunk where it lies, so an uneven spread would be measured as overhead."""
    import dask
    import dask.array as da
    workers = sorted(client.scheduler_info()["workers"])
    x16, y16, x64, y64 = [], [], [], []
    for seed, n in enumerate(_sizes(rows, 16)):
        part = dask.delayed(make_chunk, nout=2, pure=True)(seed, n)
        x = da.from_delayed(part[0], (n, FEATURES), np.float64)
        y = da.from_delayed(part[1], (n,), np.float64)
        quarters = tuple(_sizes(n, 4))
        w = [workers[seed % len(workers)]]
        x, y = client.persist([x, y], workers=w)
        x16.append(x)
        y16.append(y)
        x, y = client.persist([x.rechunk((quarters, (FEATURES,))), y.rechunk((quarters,))],
                              workers=w)
        x64.append(x)
        y64.append(y)
    from distributed import wait
    with client.as_current():  # made before any timing: a first call must not make rows
        wait([f for part in x16 + y16 + x64 + y64 for f in client.futures_of(part)])
    return {16: (da.concatenate(x16), da.concatenate(y16)),
            64: (da.concatenate(x64), da.concatenate(y64))}


def _one_process(conn, sizes: list[int]) -> None:
    """The one-process side, in a process of its own (started by ``run``): it makes the same
    rows, then answers ``("grad", params)`` with ``jit(value_and_grad(loss))``'s gradient,
    ``("blocked", params)`` with the same summed over blocks of about 8 MiB of rows, as the
    workers compute their chunks (``grad_sum``'s ``block_rows="auto"``),
    ``("times", params, n)`` with n back-to-back calls' wall and CPU times, and ``None`` by
    returning. Not in the benchmark's process, which also runs dask's scheduler and the client:
    their event loop takes CPU time and the GIL from a computation that shares the process."""
    import diffprog as dp
    parts = [make_chunk(seed, n) for seed, n in enumerate(sizes)]
    local = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    del parts
    one = dp.jit(dp.value_and_grad(loss))

    def blocked(params):  # the workers' way: blocks of about 8 MiB of rows, added up
        from diffprog.distributed import _blocks
        total = None
        for start, stop in _blocks(len(local[0]), sum(a.nbytes for a in local), "auto"):
            value, g = one(params, *(a[start:stop] for a in local))
            total = (value, g) if total is None else (
                total[0] + value, {k: total[1][k] + g[k] for k in g})
        return total

    conn.send("ready")
    calls: dict[str, int] = {}
    while (msg := conn.recv()) is not None:
        if msg[0] in ("grad", "blocked"):
            call = (lambda p: one(p, *local)) if msg[0] == "grad" else blocked
            calls[msg[0]] = calls.get(msg[0], 0) + 1
            if calls[msg[0]] == 2:  # after the first call (timed as such): compile and settle
                one.wait_compiled()
                for _ in range(3):
                    call(msg[1])
            conn.send(call(msg[1])[1])
        else:
            walls, cpus = [], []
            for _ in range(msg[2]):
                cpu0, t0 = time.process_time(), time.perf_counter()
                one(msg[1], *local)
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - cpu0)
            conn.send((walls, cpus))


def run(ctx):
    import multiprocessing

    from distributed import Client

    from diffprog import distributed as dd

    rows = ROWS // 10 if ctx.quick else ROWS
    cluster = _cluster(WORKERS, ctx.threads)
    client = Client(cluster, set_as_default=False)
    # spawn, not fork: this process runs the event loop's threads
    conn, child_conn = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=_one_process, args=(child_conn, _sizes(rows, 16)), daemon=True)
    child.start()
    try:
        ctx.progress(f"[{ID}] making {rows:,} rows on the workers and in one process ...")
        data = _persisted(client, rows)
        if conn.recv() != "ready":
            raise RuntimeError(f"{ID}: the one-process side did not start")
        rng = np.random.default_rng(0)
        params = {"w": rng.standard_normal(FEATURES) * 0.1, "b": 0.1}

        def one_process(how: str):
            def call():
                conn.send((how, params))
                return conn.recv()
            return call

        def on_cluster(nchunks: int):
            calls = []

            def call():
                calls.append(True)
                if len(calls) == 2:  # after the first call (timed as such): compile and settle
                    dd.grad_sum(loss, params, *data[nchunks], client=client)
                    client.run(dd.wait_compiled)
                    for _ in range(3):
                        dd.grad_sum(loss, params, *data[nchunks], client=client)
                return dd.grad_sum(loss, params, *data[nchunks], client=client)
            return call

        base = "one process, jit(value_and_grad)"
        systems = [System(base, one_process("grad")),
                   System("one process, in 8 MiB blocks as the workers", one_process("blocked")),
                   System(f"{WORKERS}-worker LocalCluster, 16 chunks", on_cluster(16)),
                   System(f"{WORKERS}-worker LocalCluster, 64 chunks", on_cluster(64))]
        desc = (f"The gradient of `sum(logaddexp(0, x @ w + b) - y * (x @ w + b))` over "
                f"{rows:,} × {FEATURES} float64 rows ({rows * (FEATURES + 1) * 8 / 1e9:.2f} GB) "
                f"with respect to `{{w, b}}`: `dp.jit(dp.value_and_grad(loss))` on the whole "
                f"arrays in a process of its own (not the one running dask's scheduler), and "
                f"`diffprog.distributed.grad_sum` on the same rows "
                f"persisted on a LocalCluster of {WORKERS} worker processes with "
                f"{ctx.threads} thread each (fused kernels compiled and warm on both sides; "
                "the first call column is each system's first call, before that warm-up: "
                "jit traces and computes on its first tier while the kernels compile in the "
                "background; the cluster's also makes the actors; "
                "one task per worker over the chunks it holds; the workers with glibc's "
                "default allocator settings, as the one process: see the module's docstring). "
                "The workers pass f blocks of about 8 MiB of rows (`block_rows=\"auto\"`: "
                "smaller temporaries, no page faults per call); the second row gives the one "
                "process the same blocks, for what that alone is worth; the bar compares "
                "with the first. "
                "The 2 cores are shared with other processes: the cluster's rows need both.")
        load = os.getloadavg()[0]
        timing = time_table(ctx, ID, TITLE, desc, systems, baseline=base, reference=base,
                            ratio_label="time vs one process")
        timing.notes.append(f"load average {load:.1f} before the timing, "
                            f"{os.getloadavg()[0]:.1f} after it, on {os.cpu_count()} CPUs")

        ctx.progress(f"[{ID}] overhead over the chunk compute (chunk_stats) ...")
        conn.send(("times", params, 3 if ctx.quick else 5))
        one_walls, one_cpus = conn.recv()
        one_cpu, one_wall = statistics.median(one_cpus), statistics.median(one_walls)
        over_rows = [["one process", f"{one_wall * 1e3:.0f} ms", "—", "—", "—", "—", "—",
                      f"{one_cpu * 1e3:.0f} ms", "—", "—"]]
        over_data = [{"system": "one process", "cpu_s": one_cpu, "wall_s": one_wall}]
        for nchunks in (16, 64):
            walls, overheads, computes, cpus, busiest, slowest = [], [], [], [], [], []
            for _ in range(3 if ctx.quick else 7):
                client.run(dd.chunk_stats, True)
                before = client.run(time.process_time)
                cpu0 = time.process_time()  # this process: the client and the scheduler
                t0 = time.perf_counter()
                dd.grad_sum(loss, params, *data[nchunks], client=client)
                wall = time.perf_counter() - t0
                cpu = time.process_time() - cpu0
                after = client.run(time.process_time)
                stats = client.run(dd.chunk_stats)
                per_worker = [after[w] - before[w] for w in after if w in before]
                cpu += sum(per_worker)
                busiest.append(max(per_worker))
                if sum(s["chunks"] for s in stats.values()) != nchunks:
                    raise RuntimeError(f"{ID}: the workers computed {stats}, not {nchunks} "
                                       "chunks")
                compute = sum(s["compute_s"] for s in stats.values())
                slowest.append(max((s["compute_s"], s["chunks"]) for s in stats.values()))
                walls.append(wall)
                computes.append(compute)
                cpus.append(cpu)
                overheads.append(wall / (compute / WORKERS) - 1.0)
            i = int(np.argsort(overheads)[len(overheads) // 2])  # the median call
            wall, compute, overhead, cpu = walls[i], computes[i], overheads[i], cpus[i]
            slow, slow_chunks = slowest[i]
            busy = statistics.median(busiest)
            per_task = compute / nchunks
            over_data.append({"system": f"{nchunks} chunks", "chunks": nchunks,
                              "wall_s": wall, "chunk_compute_s": compute,
                              "ideal_s": compute / WORKERS, "overhead": overhead,
                              "slowest_worker_compute_s": slow,
                              "slowest_worker_chunks": slow_chunks,
                              "overheads": overheads, "cpu_s": cpu,
                              "cpu_overhead": cpu / one_cpu - 1.0, "busiest_worker_cpu_s": busy,
                              "idle_speedup_estimate": one_cpu / busy,
                              "speedup_bound": one_wall / (compute / WORKERS),
                              "median_wall_s": statistics.median(walls)})
            over_rows.append([f"{nchunks}", f"{wall * 1e3:.0f} ms",
                              f"{compute * 1e3:.0f} ms ({per_task * 1e3:.1f} ms a chunk)",
                              f"{compute / WORKERS * 1e3:.0f} ms",
                              f"{slow * 1e3:.0f} ms ({slow_chunks} chunks)",
                              f"{overhead * 100:+.0f}%",
                              f"{min(overheads) * 100:+.0f}% … {max(overheads) * 100:+.0f}%",
                              f"{cpu * 1e3:.0f} ms ({(cpu / one_cpu - 1) * 100:+.0f}% vs one "
                              "process)", f"{busy * 1e3:.0f} ms: {one_cpu / busy:.2f}x",
                              f"{one_wall / (compute / WORKERS):.2f}x"])
        over = Table("W9o", "W9o — overhead of grad_sum over its chunk compute",
                     f"One `grad_sum` call on the {WORKERS}-worker LocalCluster ({rows:,} rows): "
                     "its wall time against the ideal, the summed time of the per-chunk "
                     "`value_and_grad` calls, timed inside the workers' tasks "
                     "(`diffprog.distributed.chunk_stats`; one task per worker loops over its "
                     "chunks), divided by the workers; the call whose "
                     "overhead is the median of the repeats, and the range over them. Slowest "
                     "worker: the chunk compute of the worker that computed longest (wall minus "
                     "it is the latency of the call; it minus the ideal, the imbalance). One "
                     "process: its wall and CPU time per gradient, called back to back. CPU: the "
                     "processor time that call took in every process (the workers, and this "
                     "one, which holds the client and the scheduler), against one process's "
                     "CPU time for the same gradient: what distributing costs, whatever the load "
                     "of the machine (wall times stretch when other processes share the cores). "
                     "Busiest worker: its CPU time in the call, and one process's CPU time "
                     "divided by it, the speed-up to expect on idle cores (an estimate). "
                     "Bound: one process's wall time divided by the ideal, the speed-up a call "
                     "with no overhead at all would reach: the chunks' compute, run on both "
                     "cores at once, is slower than one process's per row when the two workers "
                     "contend for memory bandwidth.",
                     ["chunks", "wall", "chunk compute, summed", "ideal (÷ workers)",
                      "slowest worker", "overhead", "range", "CPU, all processes",
                      "busiest worker CPU", "bound"],
                     over_rows, over_data)
        return [timing, over]
    finally:
        if child.is_alive():
            conn.send(None)
            child.join(timeout=30)
        client.close()
        cluster.close()


def costs(workers: int = WORKERS) -> list[dict]:
    """The fixed costs of docs/SCALING.md, on a LocalCluster: a broadcast scatter of params of
    several sizes, and one grad_sum call on tiny chunks (compute ≈ 0) for several chunk counts,
    wall and CPU time of every process. ``python -m benchmarks.dask_grad`` prints them."""
    import dask.array as da
    from distributed import Client

    from diffprog import distributed as dd
    out = []
    with _cluster(workers) as cluster, Client(cluster, set_as_default=False) as client:
        for size in (1_000, 1_000_000, 10_000_000):
            blob = np.ones(size // 8)
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                futures = client.scatter([blob], broadcast=True, hash=False)
                times.append(time.perf_counter() - t0)
                del futures
            out.append({"what": f"scatter {size:,} B to {workers} workers",
                        "wall_s": statistics.median(times)})
        params = {"w": np.zeros(FEATURES), "b": 0.0}
        for nchunks in (2, 16, 64, 256):
            x = client.persist(da.zeros((nchunks * 10, FEATURES), chunks=(10, FEATURES)))
            y = client.persist(da.zeros(nchunks * 10, chunks=10))
            for _ in range(3):  # warm: traces, and the compile of the fused kernels
                dd.grad_sum(loss, params, x, y, client=client)
            client.run(dd.wait_compiled)
            walls, cpus = [], []
            for _ in range(5):
                before = client.run(time.process_time)
                cpu0, t0 = time.process_time(), time.perf_counter()
                dd.grad_sum(loss, params, x, y, client=client)
                walls.append(time.perf_counter() - t0)
                after = client.run(time.process_time)
                cpus.append(time.process_time() - cpu0
                            + sum(after[w] - before[w] for w in after if w in before))
            out.append({"what": f"grad_sum over {nchunks} chunks of 10 rows",
                        "wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)})
    return out


if __name__ == "__main__":
    for row in costs():
        cpu = f", CPU of every process {row['cpu_s'] * 1e3:.1f} ms" if "cpu_s" in row else ""
        print(f"{row['what']}: wall {row['wall_s'] * 1e3:.1f} ms{cpu}")
