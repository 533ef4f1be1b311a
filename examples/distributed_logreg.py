"""Logistic regression on 10^7 rows x 20 features that never reach the client: the data are
generated chunk by chunk on the workers of a LocalCluster (two processes), kept there, and a few
steps of gradient descent use ``diffprog.distributed.value_and_grad_sum``: each worker computes
the loss and gradient of its chunks in one task and adds them up, the workers add their sums up,
the client gets one gradient.

Run: python examples/distributed_logreg.py [--small] [--rows N] [--steps K]
     (or DIFFPROG_EXAMPLE_SMALL=1, DIFFPROG_LOGREG_ROWS=N). Needs ``pip install 'diffprog[dask]'``.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

import diffprog.numpy as dnp

FEATURES = 20


def make_chunk(seed: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of rows, made on a worker: features, and labels drawn from a logistic model
    whose weights are fixed (the same on every worker)."""
    w_true = np.random.default_rng(12345).standard_normal(FEATURES) / np.sqrt(FEATURES) * 3.0
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, FEATURES))
    p = 1.0 / (1.0 + np.exp(-(x @ w_true - 0.5)))
    return x, (rng.random(rows) < p).astype(np.float64)


def loss(params: dict, x: np.ndarray, y: np.ndarray):
    """The mean logistic loss (log(1 + e^z) - y z) of a chunk."""
    z = x @ params["w"] + params["b"]
    return dnp.mean(dnp.logaddexp(0.0, z) - y * z)


def dataset(rows: int, chunk_rows: int):
    """(x, y) as dask arrays whose chunks are made by make_chunk where they are computed."""
    import dask
    import dask.array as da
    sizes = [min(chunk_rows, rows - start) for start in range(0, rows, chunk_rows)]
    parts = [dask.delayed(make_chunk, nout=2, pure=True)(seed, n)
             for seed, n in enumerate(sizes)]
    x = da.concatenate([da.from_delayed(p[0], (n, FEATURES), np.float64)
                        for p, n in zip(parts, sizes)])
    y = da.concatenate([da.from_delayed(p[1], (n,), np.float64) for p, n in zip(parts, sizes)])
    return x, y


def main(small: bool | None = None, rows: int | None = None, steps: int | None = None,
         client=None, step_size: float = 2.0) -> dict:
    from diffprog.distributed import value_and_grad_sum
    argv = sys.argv[1:] if __name__ == "__main__" else []
    if small is None:
        small = "--small" in argv or os.environ.get("DIFFPROG_EXAMPLE_SMALL") == "1"
    if rows is None:
        rows = int(_arg(argv, "--rows") or os.environ.get("DIFFPROG_LOGREG_ROWS", 0)
                   or (20_000 if small else 10_000_000))
    if steps is None:
        steps = int(_arg(argv, "--steps") or (5 if small else 8))
    chunk_rows = max(1, min(250_000, -(-rows // 16)))  # 16 chunks or more, 40 MB at most
    own = client is None
    if own:
        import dask
        from distributed import Client, LocalCluster

        # glibc's default allocator settings in the workers: dask's MALLOC_TRIM_THRESHOLD_
        # makes every chunk temporary a fresh mmap that page-faults on each step (SCALING.md)
        env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        env.pop("MALLOC_TRIM_THRESHOLD_", None)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(cluster, set_as_default=False)
    try:
        t0 = time.perf_counter()
        x, y = dataset(rows, chunk_rows)
        x, y = client.persist([x, y])  # made on the workers, kept there between steps
        print(f"logistic regression on {rows:,} x {FEATURES} float64 "
              f"({rows * (FEATURES + 1) * 8 / 1e9:.2f} GB, {x.numblocks[0]} chunks) on "
              f"{len(client.scheduler_info()['workers'])} workers")
        params = {"w": np.zeros(FEATURES), "b": 0.0}
        losses = []
        for step in range(1, steps + 1):
            t = time.perf_counter()
            value, g = value_and_grad_sum(loss, params, x, y, client=client, mean=True)
            params = {"w": params["w"] - step_size * g["w"], "b": params["b"] - step_size * g["b"]}
            losses.append(float(value))
            print(f"step {step}: loss {float(value):.6f}  |grad| "
                  f"{float(np.sqrt(g['w'] @ g['w'] + g['b'] ** 2)):.2e}  "
                  f"({time.perf_counter() - t:.2f} s)")
        total = time.perf_counter() - t0
        print(f"{steps} steps in {total:.1f} s (data generation included)")
        return {"losses": losses, "params": params, "rows": rows, "chunks": x.numblocks[0],
                "seconds": total}
    finally:
        if own:
            client.close()
            cluster.close()


def _arg(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv[:-1] else None


if __name__ == "__main__":
    main()
