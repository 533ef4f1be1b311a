"""Before/after in one process: issue 17's eager and pytree figures for a git revision of
diffprog beside the working tree's, interleaved.

``python benchmarks/ab.py [REV] [--rounds N]`` (REV default ``HEAD``) extracts ``diffprog/`` of
REV into a private temporary directory as the package ``diffprog_ab`` (its imports are
relative, so it is a second, independent copy) and times, in rounds where every case runs one
batch in turn (load from other processes falls on all alike):

- W1: the gradient of W1's 100-op chain (benchmarks/overhead.py) for REV, the working tree and
  the minimal tape (benchmarks/tape.py, the floor);
- W1f: the gradient of ``sin`` at a float64 scalar (a grad call's fixed cost), the same three;
- W5: flatten, unflatten, tree_map over one and two trees of W5's 1,000-leaf tree, for REV,
  the working tree and optree (when installed).

Medians are printed for the wall clock and for the thread's CPU time (``time.thread_time``),
which a descheduled process does not accumulate: on a loaded machine the second is steadier.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent


def _extract(rev: str, into: Path) -> None:
    archive = subprocess.run(["git", "archive", rev, "diffprog"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "diffprog").rename(into / "diffprog_ab")


def cases(old, new) -> dict[str, tuple]:
    """name -> (function, batch size)."""
    import numpy as np

    from benchmarks import overhead, tape, trees
    out: dict[str, tuple] = {}
    x = np.linspace(0.1, 1.0, overhead.SIZE)
    s = np.float64(0.5)
    for label, dp in (("before", old), ("after", new)):
        dnp = dp.numpy
        B = SimpleNamespace(sin=dnp.sin, exp=dnp.exp, tanh=dnp.tanh, sum=dnp.sum)
        g = dp.grad(lambda x, B=B: overhead.chain(B, x))
        g1 = dp.grad(lambda x, dnp=dnp: dnp.sin(x))
        out[f"W1 {label}"] = (lambda g=g: g(x), 20)
        out[f"W1f {label}"] = (lambda g1=g1: g1(s), 500)
    g_tape = tape.grad(lambda x: overhead.chain(tape.B, x))
    g1_tape = tape.grad(lambda x: tape.sin(x))
    out["W1 tape"] = (lambda: g_tape(x), 20)
    out["W1f tape"] = (lambda: g1_tape(s), 500)
    apis = {"before": old, "after": new}
    try:
        import optree
        apis["optree"] = optree
    except ImportError:
        pass
    tree, other = trees.make_tree(), trees.make_tree(1)
    for label, m in apis.items():
        leaves, treedef = m.tree_flatten(tree)
        out[f"W5 flatten {label}"] = (lambda m=m: m.tree_flatten(tree), 10)
        out[f"W5 unflatten {label}"] = (
            lambda m=m, t=treedef, v=leaves: m.tree_unflatten(t, v), 10)
        out[f"W5 tree_map {label}"] = (lambda m=m: m.tree_map(trees._identity, tree), 10)
        out[f"W5 tree_map2 {label}"] = (
            lambda m=m: m.tree_map(trees._second, tree, other), 10)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rev", nargs="?", default="HEAD")
    p.add_argument("--rounds", type=int, default=21)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="diffprog-ab-") as tmp:  # private: 0700
        _extract(args.rev, Path(tmp))
        sys.path.insert(0, tmp)
        import diffprog_ab

        import diffprog
        todo = cases(diffprog_ab, diffprog)
        for fn, n in todo.values():  # warm-up (a treedef compiles its builder on reuse)
            for _ in range(max(n, 100)):
                fn()
        wall: dict[str, list[float]] = {k: [] for k in todo}
        cpu: dict[str, list[float]] = {k: [] for k in todo}
        for _ in range(args.rounds):
            gc.collect()
            for k, (fn, n) in todo.items():
                t0, c0 = time.perf_counter(), time.thread_time()
                for _ in range(n):
                    fn()
                cpu[k].append((time.thread_time() - c0) / n)
                wall[k].append((time.perf_counter() - t0) / n)
    med = {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in todo}
    print(f"before = {args.rev} (diffprog_ab), after = the working tree; {args.rounds} "
          "interleaved rounds; medians, wall / thread CPU")
    for k, (w, c) in med.items():
        print(f"  {k:24s} {w * 1e6:9.2f} µs / {c * 1e6:9.2f} µs")
    print("ratios (wall / CPU):")

    def ratio(a: str, b: str) -> str:
        if a not in med or b not in med:
            return "n/a"
        return f"{med[a][0] / med[b][0]:.2f} / {med[a][1] / med[b][1]:.2f}"
    for w in ("W1", "W1f"):
        print(f"  {w} after/tape {ratio(f'{w} after', f'{w} tape')}, before/tape "
              f"{ratio(f'{w} before', f'{w} tape')}, after/before "
              f"{ratio(f'{w} after', f'{w} before')}")
    for op in ("flatten", "unflatten", "tree_map", "tree_map2"):
        print(f"  W5 {op}: after/optree {ratio(f'W5 {op} after', f'W5 {op} optree')}, "
              f"before/optree {ratio(f'W5 {op} before', f'W5 {op} optree')}")
    if hasattr(__import__("os"), "getloadavg"):
        import os
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
