"""W8, loops as primitives: the gradient of a 1,000-step ``scan`` of a small tanh RNN
(hidden 32), and the peak memory of reverse mode through a 10,000-step scan with and without
``checkpoint_every``.

Timing rows: the unrolled Python loop under ``dp.grad`` (the eager baseline), ``dp.scan`` under
``dp.grad`` (eager: the scan primitive runs its compiled body once per step), ``dp.jit`` of it
(after the background compilation: the tier the program settled on is noted; on the
whole-program tier the forward and the reverse scan each run as one compiled loop), and
``jax.jit`` of the same ``lax.scan`` when JAX is installed. The cold first call of the
jitted gradient (tracing, passes, compiling the bodies) is timed in a fresh process with a
private, empty kernel cache. Memory: ``tracemalloc``'s peak over one ``grad`` call.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tracemalloc

import numpy as np

from .harness import System, Table, block, time_table

ID = "W8"
TITLE = "W8 — grad of a 1,000-step scan (tanh RNN, hidden 32)"
H, N = 32, 1000
MEM_N, MEM_H = 10_000, 256


def make_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    Wh = rng.standard_normal((H, H)) / np.sqrt(H)
    Wx = rng.standard_normal((H, H)) / np.sqrt(H)
    return Wh, Wx, rng.standard_normal((N, H))


def dp_losses():
    import diffprog as dp
    import diffprog.numpy as dnp

    def scan_loss(Wh, Wx, xs):
        def step(h, x):
            return dnp.tanh(Wh @ h + Wx @ x), None
        h, _ = dp.scan(step, np.zeros(H), xs)
        return dnp.sum(h * h)

    def loop_loss(Wh, Wx, xs):
        h = np.zeros(H)
        for x in xs:
            h = dnp.tanh(Wh @ h + Wx @ x)
        return dnp.sum(h * h)
    return scan_loss, loop_loss


COLD = """
import time, numpy as np
t0 = time.perf_counter()
import diffprog as dp
from benchmarks.scan import dp_losses, make_problem
Wh, Wx, xs = make_problem()
g = dp.jit(dp.grad(dp_losses()[0]))
t1 = time.perf_counter()
g(Wh, Wx, xs)
print(time.perf_counter() - t1, t1 - t0)
"""


def cold_first_call() -> tuple[float, float]:
    """(first call of jit(grad(scan loss)), import) in a fresh process, empty kernel cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "DIFFPROG_CACHE_DIR": cache}
        out = subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True,
                             text=True, check=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    first, imp = (float(v) for v in out.stdout.split())
    return first, imp


def peak_memory(checkpoint_every: int | None) -> float:
    """MB at the peak of one grad through a 10,000-step scan whose carry has 256 floats."""
    import diffprog as dp
    import diffprog.numpy as dnp
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((MEM_N, 1)) * 0.01
    h0 = rng.standard_normal(MEM_H)

    def loss(h0, xs):
        h, _ = dp.scan(lambda h, x: (dnp.tanh(h * 0.99 + x), None), h0, xs,
                       checkpoint_every=checkpoint_every)
        return dnp.sum(h)
    g = dp.grad(loss)
    g(h0, xs)  # warm (imports, caches)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    g(h0, xs)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / 2**20


def run(ctx):
    import diffprog as dp
    Wh, Wx, xs = make_problem()
    scan_loss, loop_loss = dp_losses()
    g_scan = dp.grad(scan_loss)
    g_loop = dp.grad(loop_loss)
    g_jit = dp.jit(g_scan)
    warm = []

    def jit_run():
        out = g_jit(Wh, Wx, xs)
        if not warm:
            g_jit(Wh, Wx, xs)
            g_jit.wait_compiled()
            for _ in range(12):
                g_jit(Wh, Wx, xs)
            warm.append(True)
            (program,) = g_jit.cache.values()
            warm.append(program.tier)
        return out
    systems = [System("diffprog eager, unrolled Python loop", lambda: g_loop(Wh, Wx, xs)),
               System("diffprog eager", lambda: g_scan(Wh, Wx, xs)),
               System("diffprog jit", jit_run)]
    if ctx.peers.jax is not None:
        jax = ctx.peers.jax
        import jax.numpy as jnp

        def jloss(Wh, Wx, xs):
            def step(h, x):
                return jnp.tanh(Wh @ h + Wx @ x), None
            h, _ = jax.lax.scan(step, jnp.zeros(H), xs)
            return jnp.sum(h * h)
        gj = jax.jit(jax.grad(jloss))
        jWh, jWx, jxs = (jnp.asarray(a) for a in (Wh, Wx, xs))
        systems.append(System("jax.jit", lambda: block(gj(jWh, jWx, jxs))))
    desc = (f"`grad` w.r.t. the recurrent matrix of `sum(h_N ** 2)`, `h = tanh(Wh @ h + Wx @ x)` "
            f"over {N} steps, hidden size {H}, float64. The eager rows compare `dp.scan` with "
            "the same loop unrolled in Python; the jit rows `dp.jit` with `jax.jit` of "
            "`lax.scan`.")
    timing = time_table(ctx, ID, TITLE, desc, systems, baseline="jax.jit"
                        if ctx.peers.jax is not None else "diffprog eager")
    ctx.progress("[W8] cold first call in a fresh process ...")
    first, imp = cold_first_call()
    if len(warm) > 1:
        timing.notes.append(f"`dp.jit` ran on the {warm[1]!r} tier after its trials")
    timing.notes.append(f"cold first call of `dp.jit(dp.grad(scan_loss))` in a fresh process "
                        f"with an empty kernel cache: {first:.2f} s (after {imp:.2f} s of "
                        "imports)")
    timing.data.append({"system": "cold first call", "first_s": first, "import_s": imp})
    ctx.progress("[W8] peak memory ...")
    k = int(round(np.sqrt(MEM_N)))
    plain, ck = peak_memory(None), peak_memory(k)
    mem = Table("W8m", f"W8m — peak memory of grad through a {MEM_N:,}-step scan",
                f"tracemalloc peak of one `grad` call; the carry holds {MEM_H} float64 "
                f"({MEM_H * 8 / 1024:.0f} KiB), so saving every carry costs "
                f"{MEM_N * MEM_H * 8 / 2**20:.1f} MiB, which is the plain row's peak: the "
                "saved carries are written into one preallocated stack, and reverse mode "
                "makes no zero cotangent for them (an output of the scan node that nothing "
                "reads: scan's vjp takes symbolic zeros).",
                ["scan", "peak (MiB)", "ratio"],
                [["saves every carry", f"{plain:.1f}", "1.00"],
                 [f"checkpoint_every={k}", f"{ck:.1f}", f"{ck / plain:.3f}"]],
                [{"system": "plain", "peak_mb": plain},
                 {"system": f"checkpoint_every={k}", "peak_mb": ck}])
    return [timing, mem]
