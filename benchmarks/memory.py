"""W6, memory: peak and growth over 200 repeated gradients of W2 (20 ops on 10^6 elements).

Each system runs in a fresh child process (``python -m benchmarks.memory --system NAME``), so
that its peak resident set size (VmHWM, reset after one warm-up call) is its own. Two measures:
- RSS from /proc/self/status: everything, including what PyTorch's and XLA's allocators hold,
  and what the C allocator keeps cached after a free;
- tracemalloc: live allocations made through Python's and NumPy's allocators (NumPy reports its
  data buffers to tracemalloc), exact and free of allocator caching, but blind to PyTorch's and
  XLA's own memory, so "n/a" for those.
Both are taken relative to the moment before the timed iterations start (after imports, the
input and one warm-up call; for diffprog also the eager kernels' one-time load, numba's
import, and a second call), so the 8 MB input does not count. Growth is the change from the
end of iteration 10 to the end of the last one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ID = "W6"
TITLE = "W6 — memory: peak and growth over {iters} repeated grads of W2"
ITERS = 200
WARM = 10  # growth is measured from the end of this iteration
NUMPY_MEMORY = {"numpy forward only", "numpy hand-written backward", "diffprog eager",
                "autograd", "diffprog jit"}  # systems whose arrays tracemalloc sees


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _build(name: str, threads: int, size: int):
    """The zero-argument gradient call for system ``name`` (in the child process)."""
    from . import chain as w2
    from .peers import load_peers
    want = {"autograd": {"autograd"}, "torch eager": {"torch"}, "jax eager": {"jax"},
            "jax.jit": {"jax"}}.get(name, set())
    peers = load_peers(threads, want)
    import diffprog as dp

    from .harness import Context, block, torch_grad
    ctx = Context(peers, threads=threads)
    bk = ctx.backends
    x = w2.make_input(size)
    if name == "numpy forward only":
        return lambda: w2.chain(bk["numpy"], x)
    if name == "numpy hand-written backward":
        return lambda: w2.numpy_backward(x)
    if name in ("diffprog eager", "diffprog jit"):
        g = dp.grad(lambda x: w2.chain(bk["diffprog"], x))
        if name == "diffprog jit":
            g = dp.jit(g)
        return lambda: g(x)
    if name == "autograd":
        ga = peers.autograd.grad(lambda x: w2.chain(bk["autograd"], x))
        return lambda: ga(x)
    if name == "torch eager":
        return torch_grad(ctx, w2.chain, x, ())
    if name in ("jax eager", "jax.jit"):
        jax = peers.jax
        gj = jax.grad(lambda x: w2.chain(bk["jax"], x))
        if name == "jax.jit":
            gj = jax.jit(gj)
        jx = bk["jax"].const(x)
        return lambda: block(gj(jx))
    raise ValueError(f"unknown system {name!r}")


def child(name: str, iters: int, threads: int, size: int) -> dict:
    """Run ``iters`` gradients of W2 with system ``name`` and return the memory numbers."""
    import gc
    import time
    import tracemalloc

    fn = _build(name, threads, size)
    g = fn()  # warm-up: compilation, caches, allocator pools
    del g
    if name.startswith("diffprog"):
        # The first large call starts the eager kernels' one-time background load (numba's
        # import: ~18 MB of Python objects, ~50 MB of RSS for its runtime and LLVM): a fixed
        # cost of the process, like the compilation above, not the gradient's memory.
        from diffprog.kernels import eager_fast
        eager_fast.wait_ready(600)
        g = fn()
        del g
    gc.collect()
    tracemalloc.start()
    rss0 = _status_kb("VmRSS")
    reset_ok = _reset_peak_rss()
    tm0 = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    rss, traced = [], []
    t0 = time.perf_counter()
    for _ in range(iters):
        g = fn()
        del g  # a loop that keeps only the newest gradient would hold one more array
        rss.append(_status_kb("VmRSS"))
        traced.append(tracemalloc.get_traced_memory()[0])
    seconds = (time.perf_counter() - t0) / iters
    tm_peak = tracemalloc.get_traced_memory()[1]
    hwm = _status_kb("VmHWM")
    mb = 1 / 1024
    warm = min(WARM, iters) - 1
    ok = rss0 is not None and rss[-1] is not None
    return {"system": name, "iters": iters, "size": size, "seconds_per_grad": seconds,
            "peak_rss_mb": (hwm - rss0) * mb if ok and reset_ok and hwm else None,
            "rss_growth_mb": (rss[-1] - rss[warm]) * mb if ok else None,
            "peak_traced_mb": (tm_peak - tm0) / 2**20,
            "traced_growth_mb": (traced[-1] - traced[warm]) / 2**20,
            "rss_trace_mb": [(r - rss0) * mb for r in rss] if ok else [],
            "traced_trace_mb": [(t - tm0) / 2**20 for t in traced],
            "peak_reset": reset_ok}


def systems_for(ctx) -> list[str]:
    import diffprog as dp
    names = ["numpy forward only", "numpy hand-written backward", "diffprog eager"]
    if hasattr(dp, "jit"):
        names.append("diffprog jit")
    if ctx.peers.autograd is not None:
        names.append("autograd")
    if ctx.peers.torch is not None:
        names.append("torch eager")
    if ctx.peers.jax is not None:
        names += ["jax eager", "jax.jit"]
    return names


def run(ctx):
    from .chain import SIZE
    from .harness import Table
    iters, size = (20, SIZE) if ctx.quick else (ITERS, SIZE)
    root = Path(__file__).resolve().parent.parent
    data, notes = [], []
    for name in systems_for(ctx):
        ctx.progress(f"[{ID}] {name}: {iters} grads in a child process ...")
        cmd = [sys.executable, "-m", "benchmarks.memory", "--system", name, "--iters",
               str(iters), "--threads", str(ctx.threads), "--size", str(size)]
        proc = subprocess.run(cmd, cwd=root, env=dict(os.environ), capture_output=True,
                              text=True, timeout=1800)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            notes.append(f"{name} failed: {last}")
            ctx.progress(f"[{ID}]   failed: {last}")
            continue
        d = json.loads(proc.stdout.strip().splitlines()[-1])
        if name not in NUMPY_MEMORY:
            d["peak_traced_mb"] = d["traced_growth_mb"] = None
        data.append(d)
        ctx.progress(f"[{ID}]   peak RSS +{_mb(d['peak_rss_mb'])}, growth {_mb(d['rss_growth_mb'])}"
                     f"; traced peak {_mb(d['peak_traced_mb'])}, growth "
                     f"{_mb(d['traced_growth_mb'])}")
    if data and not all(d["peak_reset"] for d in data):
        notes.append("could not reset the peak RSS (/proc/self/clear_refs): peaks include "
                     "start-up")
    columns = ["system", "peak RSS", "peak traced", f"RSS growth {WARM}→{iters}",
               f"traced growth {WARM}→{iters}", "time per grad"]
    from .harness import fmt_time
    rows = [[d["system"], _mb(d["peak_rss_mb"]), _mb(d["peak_traced_mb"]),
             _mb(d["rss_growth_mb"], sign=True), _mb(d["traced_growth_mb"], sign=True),
             fmt_time(d["seconds_per_grad"])] for d in data]
    desc = (f"{iters} gradients of W2 (20 ops on {size:,} float64 elements) in a loop that "
            "drops each result, one fresh process per system. Peaks are above the memory in "
            "use just before the loop (after one warm-up call; for diffprog, also after its "
            "eager kernels' one-time background load, numba's import: ~50 MB of RSS and "
            "~18 MB of Python objects once per process, and a second call); \"traced\" is "
            "tracemalloc "
            "(NumPy and Python allocations only, n/a for PyTorch and XLA, which allocate on "
            "their own); growth is from the end of iteration "
            f"{WARM} to the end of iteration {iters}. One float64 array of this size is 7.6 MB. "
            "The RSS growth of torch eager and jax eager is glibc's malloc keeping freed 8 MB "
            "blocks in its heap (its mmap threshold adapts upward), not live memory: with "
            "`MALLOC_MMAP_THRESHOLD_=65536` in the environment, 100 iterations measured peaks "
            "of 107 MB (torch eager) and 154 MB (jax eager) and no growth. The table keeps the "
            "default allocator, which is what users run.")
    for d in data:  # the traces go to JSON (and the chart), not into the markdown
        d.pop("peak_reset", None)
    return [Table(ID, TITLE.format(iters=iters), desc, columns, rows, data, notes)]


def _mb(v: float | None, sign: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{v:+.1f} MB" if sign else f"{v:.1f} MB"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="one W6 measurement (started by the runner)")
    p.add_argument("--system", required=True)
    p.add_argument("--iters", type=int, default=ITERS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--size", type=int, default=1_000_000)
    args = p.parse_args(argv)
    from .peers import configure_threads
    configure_threads(args.threads)
    print(json.dumps(child(args.system, args.iters, args.threads, args.size)))


if __name__ == "__main__":
    main()
