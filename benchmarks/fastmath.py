"""Vectorizable transcendental functions for numba kernels: time per call on 10^6 float64.

For each function it times NumPy's ufunc (into a preallocated output), a numba loop calling
``math.*`` (libm, one element at a time), and a numba loop calling
``diffprog.kernels.fastmath`` (inlined and vectorized by LLVM), all single-threaded, plus the
fastmath loop with ``parallel=True`` (prange). Further rows time a fused expression and two
float32 functions. Run:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/fastmath.py
It prints a markdown table of medians (ms per call) with the command line.
"""

from __future__ import annotations

import argparse
import functools
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timeit(fn, repeat: int, number: int) -> float:
    """Median over ``repeat`` runs of the mean time of ``number`` calls, in ms."""
    fn()  # warm up (and compile)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times) * 1e3


def np_sigmoid(x, out):
    # NumPy has no logistic ufunc: diffprog's stable formula, as its NumPy executor runs it.
    e = np.exp(-np.abs(x))
    np.divide(np.where(x >= 0, 1.0, e), 1.0 + e, out=out)
    return out


def math_sigmoid(x):
    e = math.exp(-math.fabs(x))
    return (1.0 if x >= 0 else e) / (1.0 + e)


def np_fused(x, out):
    np.multiply(np.tanh(x), np.exp(-x * x), out=out)
    out += np.log1p(x * x)
    return out


def make_loops(scalar, numba):
    """(single-threaded loop, prange loop) applying ``scalar`` elementwise."""
    if getattr(scalar, "__module__", None) == __name__:
        # This file's helpers, inlined by numba as the kernel compiler does with composite
        # scalar forms: a helper left as a call would keep the loop from vectorizing.
        # (math.* and fastmath's functions are called as they are.)
        scalar = numba.njit(inline="always")(scalar)

    def body(x, out):
        for i in range(x.size):
            out[i] = scalar(x[i])

    def pbody(x, out):
        for i in numba.prange(x.size):
            out[i] = scalar(x[i])

    return numba.njit(body), numba.njit(pbody, parallel=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10**6, help="elements (default 10^6)")
    parser.add_argument("--repeat", type=int, default=21, help="timed runs (default 21)")
    parser.add_argument("--number", type=int, default=5, help="calls per run (default 5)")
    args = parser.parse_args()

    import numba

    from diffprog.kernels import fastmath as fm

    def fused_math(x):
        return math.tanh(x) * math.exp(-x * x) + math.log1p(x * x)

    def fused_fm(x):
        return fm.tanh(x) * fm.exp(-x * x) + fm.log1p(x * x)

    rng = np.random.default_rng(0)
    n = args.n
    # Each function on an input range where it does real work (no saturation).
    cases = [
        ("exp", np.exp, math.exp, fm.exp, rng.uniform(-700, 700, n)),
        ("expm1", np.expm1, math.expm1, fm.expm1, rng.uniform(-5, 5, n)),
        ("log", np.log, math.log, fm.log, np.exp(rng.uniform(-700, 700, n))),
        ("log1p", np.log1p, math.log1p, fm.log1p, rng.uniform(-0.9, 5, n)),
        ("tanh", np.tanh, math.tanh, fm.tanh, rng.uniform(-10, 10, n)),
        ("sigmoid", np_sigmoid, math_sigmoid, fm.sigmoid, rng.uniform(-20, 20, n)),
        ("sin", np.sin, math.sin, fm.sin, rng.uniform(-1e4, 1e4, n)),
        ("cos", np.cos, math.cos, fm.cos, rng.uniform(-1e4, 1e4, n)),
        ("fused tanh(x)·exp(-x²)+log1p(x²)", np_fused, fused_math, fused_fm,
         rng.uniform(-3, 3, n)),
    ]

    # float32: fastmath computes in float64 and rounds back; NumPy has float32 SIMD loops.
    x32 = rng.uniform(-80, 80, n).astype(np.float32)
    cases += [("exp float32", np.exp, math.exp, fm.exp, x32),
              ("tanh float32", np.tanh, math.tanh, fm.tanh, x32 / 8)]

    rows = []
    parallel_loops = []
    for name, np_fn, math_fn, fm_fn, x in cases:
        out = np.empty_like(x)
        math_loop, _ = make_loops(math_fn, numba)
        fm_loop, fm_ploop = make_loops(fm_fn, numba)
        times = [timeit(functools.partial(fn, x, out), args.repeat, args.number)
                 for fn in (np_fn, math_loop, fm_loop)]
        rows.append([name, *times])
        parallel_loops.append(functools.partial(fm_ploop, x, out))
    # The prange loops last: once numba's thread pool has run, its idle workers can still take
    # CPU time from the single-threaded measurements on a small machine.
    for row, fn in zip(rows, parallel_loops):
        row.append(timeit(fn, args.repeat, args.number))

    cmd = " ".join(["env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python",
                    "benchmarks/fastmath.py", *sys.argv[1:]])
    print(f"Command: `{cmd}`\n")
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, numba "
          f"{numba.__version__}, {platform.machine()}, numba threads: "
          f"{numba.config.NUMBA_NUM_THREADS}")
    print(f"Median of {args.repeat} runs x {args.number} calls, ms per call on {n:,} float64 "
          "(lower is better; speedup = NumPy / fastmath single-threaded)\n")
    print("| function | NumPy | numba + math.* | numba + fastmath | speedup vs NumPy "
          "| fastmath, prange |")
    print("|---|---|---|---|---|---|")
    for name, t_np, t_math, t_fm, t_par in rows:
        print(f"| {name} | {t_np:.3f} | {t_math:.3f} | {t_fm:.3f} | {t_np / t_fm:.2f}x "
              f"| {t_par:.3f} |")


if __name__ == "__main__":
    main()
