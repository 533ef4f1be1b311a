"""W1, the eager overhead benchmark: grad of a chain of 100 elementwise ops on 10 elements.

The chain alternates sin, *1.01, +0.5, tanh, exp(-x*x), then sums. Run:
    python benchmarks/overhead.py [--repeat N]
It prints the median time per grad call and per op for diffprog and, when installed, autograd
and torch, measured in the same run, plus NumPy's forward-only time for reference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

N_OPS = 100
SIZE = 10


def chain(np_like, x):
    """N_OPS elementwise ops cycling through sin, *1.01, +0.5, tanh, exp(-x*x) (3 ops)."""
    steps = (np_like.sin, lambda v: v * 1.01, lambda v: v + 0.5, np_like.tanh,
             lambda v: v * v, lambda v: -v, np_like.exp)
    for i in range(N_OPS):
        x = steps[i % 7](x)
    return x


def n_ops() -> int:
    return N_OPS


def timeit(fn, repeat: int, number: int) -> list[float]:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return times


def systems():
    import diffprog as dp
    import diffprog.numpy as dnp
    out = {}
    out["numpy forward only"] = lambda x: chain(np, x).sum()
    g = dp.grad(lambda x: dnp.sum(chain(dnp, x)))
    out["diffprog grad"] = g
    gp = dp.grad(lambda x: np.sum(chain(np, x)))
    out["diffprog grad (plain np code)"] = gp
    try:
        import autograd
        import autograd.numpy as anp
        out["autograd grad"] = autograd.grad(lambda x: anp.sum(chain(anp, x)))
    except ImportError:
        print("autograd not installed: left out (make bench installs it)")
    try:
        import torch
        torch.set_num_threads(1)

        def torch_grad(x):
            t = torch.tensor(x, requires_grad=True)
            chain(torch, t).sum().backward()
            return t.grad.numpy()
        out["torch eager"] = torch_grad
    except ImportError:
        print("torch not installed: left out (make bench installs it)")
    return out


def blas_info() -> str:
    """The BLAS kernel NumPy uses (OPENBLAS_CORETYPE changes it), via threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i.get('internal_api')} {i.get('version')} kernel "
                     f"{i.get('architecture')}, {i.get('num_threads')} threads"
                     for i in infos) or "none found"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--number", type=int, default=50)
    args = parser.parse_args(argv)
    x = np.linspace(0.1, 1.0, SIZE)
    systems_ = systems()
    ref = systems_["diffprog grad"](x)
    rows = []
    for name, fn in systems_.items():
        if "forward" not in name:
            got = np.asarray(fn(x))
            assert np.allclose(got, ref, rtol=1e-8), f"{name} disagrees with diffprog"
        times = timeit(lambda fn=fn: fn(x), args.repeat, args.number)
        med = statistics.median(times)
        rows.append((name, med, min(times), max(times)))
        print(f"  measured {name}", file=sys.stderr)
    base = {name: med for name, med, _, _ in rows}
    ag = base.get("autograd grad")
    import platform
    print(f"\nPython {platform.python_version()}, NumPy {np.__version__}, BLAS: {blas_info()}")
    print(f"W1 overhead: grad of a {n_ops()}-op elementwise chain on {SIZE} float64 elements "
          f"(median of {args.repeat} x {args.number} calls)\n")
    print("| system | median µs/call | µs/op | min–max µs/call | vs autograd |")
    print("|---|---|---|---|---|")
    for name, med, lo, hi in rows:
        ratio = f"{med / ag:.2f}x" if ag else "n/a"
        print(f"| {name} | {med * 1e6:.0f} | {med * 1e6 / n_ops():.2f} | "
              f"{lo * 1e6:.0f}–{hi * 1e6:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
