"""Where the eager kernels (diffprog/kernels/eager_fast.py) pay, against NumPy: per dtype, the
time of every primitive form the kernels serve (impls with a fast form, rules with a
``rule_scalar``) through NumPy and through its kernel, interleaved (NumPy, kernel, NumPy, ...),
single-threaded, the minimum over the repeats (the machine is shared: the minimum is the
least disturbed run).

- default: sizes 2^8 .. 2^20 for the forms each dtype sends to kernels; prints, per dtype, the
  smallest size from which the kernel is at least as fast for every form (the basis of
  ``eager_fast.THRESHOLDS``) and the table;
- ``--forms``: ns per element of every form at 2^16 and 2^20, also those that
  ``eager_fast.NUMPY_SIMD`` leaves to NumPy (the basis of that table).

Run:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/eager_threshold.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diffprog import core
from diffprog.core import primitives
from diffprog.kernels import eager_fast as ef


def _forms() -> list[tuple[str, core.Primitive, int]]:
    out = []
    for name in sorted(primitives):
        prim = primitives[name]
        if prim.rule_scalar is None:
            continue
        for i in ((-1, 0) if prim.scalar_fast else (0,)):
            out.append((ef.expression(prim, i), prim, i))
    return out


def _pair(prim: core.Primitive, i: int, n: int, dtype: type, repeats: int) -> tuple:
    """(NumPy, kernel) seconds per call, minimum over ``repeats`` interleaved rounds."""
    x = np.linspace(0.1, 1.5, n).astype(dtype)
    t = np.linspace(1.0, 2.0, n).astype(dtype)
    out = prim.impl(x)

    def call() -> object:
        return prim.impl(x) if i < 0 else prim.vjp[0](t, out, x)

    number = max(1, 100_000 // n)
    on = (ef.run, 1)
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for k, provider in enumerate(((None,), on)):
            core.set_eager_provider(*provider)
            t0 = time.perf_counter()
            for _ in range(number):
                call()
            best[k] = min(best[k], (time.perf_counter() - t0) / number)
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--forms", action="store_true")
    args = parser.parse_args()
    saved = dict(ef.THRESHOLDS), ef.run, ef.MIN_SIZE
    for dt in ef.THRESHOLDS:
        ef.THRESHOLDS[dt] = 1  # the kernels take every size while measuring
    forms = _forms()
    try:
        if args.forms:
            print("| dtype | size | form | NumPy ns/elem | kernel ns/elem | sent to kernels |")
            print("|---|---|---|---|---|---|")
            for dtype in (np.float64, np.float32):
                for n in (1 << 16, 1 << 20):
                    for label, prim, i in forms:
                        spec = ef._spec(prim, i, 1)
                        keep = spec.numpy_dtypes
                        spec.numpy_dtypes = frozenset()  # time the kernel anyway
                        a, b = _pair(prim, i, n, dtype, 9 if n < 1 << 20 else 5)
                        spec.numpy_dtypes = keep
                        sent = "no (NUMPY_SIMD)" if np.dtype(dtype) in keep else "yes"
                        print(f"| {np.dtype(dtype).name} | {n} | `{label}` | {a / n * 1e9:.2f}"
                              f" | {b / n * 1e9:.2f} | {sent} |")
        else:
            rows = []
            for dtype in (np.float64, np.float32):
                crossing = None
                for n in [1 << k for k in range(8, 21, 2)]:
                    wins = True
                    for label, prim, i in forms:
                        if np.dtype(dtype) in ef._spec(prim, i, 1).numpy_dtypes:
                            continue
                        a, b = _pair(prim, i, n, dtype, 9 if n < 1 << 18 else 5)
                        rows.append((np.dtype(dtype).name, n, label, a * 1e6, b * 1e6))
                        wins = wins and b <= a
                    crossing = (crossing or n) if wins else None
                print(f"{np.dtype(dtype).name}: kernels at least as fast for every form from "
                      f"{crossing} elements")
            print("\n| dtype | size | form | NumPy µs | kernel µs | kernel / NumPy |")
            print("|---|---|---|---|---|---|")
            for dt, n, label, a, b in rows:
                print(f"| {dt} | {n} | `{label}` | {a:.2f} | {b:.2f} | {b / a:.2f} |")
    finally:
        ef.THRESHOLDS.update(saved[0])
        core.set_eager_provider(saved[1], saved[2])
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; command: "
          f"{' '.join([Path(sys.executable).name, *sys.argv])}")


if __name__ == "__main__":
    main()
