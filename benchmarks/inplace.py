"""Large elementwise chains: eager code against jit's NumPy executor
(:func:`diffprog.kernels.pyrun.compile_steps`) with and without its buffer plan (issue 11: jit
never slower than eager), and jit with its default tiers; interleaved rounds in one process.

By hand: ``python -m benchmarks.inplace [rounds]``; figures in benchmarks/manual/E_inplace.md.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable

import numpy as np

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.jit import trace_graph
from diffprog.kernels.pyrun import compile_steps
from diffprog.kernels.steps import NodeStep
from diffprog.passes import optimize


def chain_sin(x, y):
    """41 elementwise ops written with operators, as eager NumPy code is (complex sin)."""
    a = x * y + 1.0
    for _ in range(6):  # 6 ops each
        a = dnp.sin(a * 0.5) * 0.5 + a * 0.25 - y
    return (a * a + 1.0) / 3.0


def chain_arith(x, y):
    """36 arithmetic ops (mul, add, div)."""
    a = x * y
    for _ in range(7):  # 5 ops each
        a = (a * 0.5 + x) / (a * 0.1 + 2.0)
    return a


def chain_real(x, y):
    """25 float64 ops with tanh and sqrt (28 nodes after tracing)."""
    a = x * y
    for _ in range(3):
        a = a * 1.5 + y
        a = dnp.tanh(a) - x
        a = a * a + 0.5
        a = dnp.sqrt(a) * 2.0 - y
    return a


def timers(f: Callable, args: tuple) -> tuple[int, dict[str, Callable]]:
    g = optimize(trace_graph(f, args))
    steps = [NodeStep(n) for n in g.nodes]
    old = compile_steps(g, steps, reuse=False)
    new = compile_steps(g, steps)
    jf = dp.jit(f)
    for _ in range(5):  # past the first calls: the tiers have been tried
        jf(*args)
    want = f(*args)
    for run in (old, new):
        assert np.array_equal(run(list(args))[0], want, equal_nan=True)
    return len(g.nodes), {"eager": lambda: f(*args),
                          "executor, no plan": lambda: old(list(args)),
                          "executor, plan": lambda: new(list(args)),
                          "jit (default tiers)": lambda: jf(*args)}


def main(rounds: int = 30) -> None:
    warnings.simplefilter("ignore")  # the chains overflow on some entries, eager and jit alike
    rng = np.random.default_rng(0)
    n = 10 ** 5
    xc = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    yc = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    xr, yr = rng.standard_normal(10 ** 6), rng.standard_normal(10 ** 6)
    cases = [("complex128 with sin, 1e5", chain_sin, (xc, yc)),
             ("complex128 arithmetic, 1e5", chain_arith, (xc, yc)),
             ("float64 with tanh/sqrt, 1e6", chain_real, (xr, yr))]
    for name, f, args in cases:
        n_nodes, fns = timers(f, args)
        ts: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(rounds):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                ts[k].append(time.perf_counter() - t0)
        print(f"{name} ({n_nodes} nodes), {rounds} interleaved rounds: median / min ms")
        for k, v in ts.items():
            print(f"  {k:22s} {1e3 * np.median(v):7.2f} / {1e3 * min(v):7.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
