"""W2 (issue 17): diffprog eager with the eager kernels, the same with them off, and torch eager,
interleaved round by round in one process, 1 thread; prints the median and fastest round of
each and the ratios. Needs torch (benchmarks/install_peers.py). Run:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/w2_eager_ab.py 21
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

import diffprog as dp
import diffprog.numpy as dnp
from benchmarks.chain import chain, make_input
from diffprog import core
from diffprog.kernels import eager_fast as ef


def main() -> None:
    torch.set_num_threads(1)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    x = make_input()
    T = SimpleNamespace(sin=torch.sin, cos=torch.cos, exp=torch.exp, tanh=torch.tanh,
                        sum=torch.sum)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    g = dp.grad(lambda x: chain(dnp, x))
    on = (ef.run, ef.MIN_SIZE)

    def kernels_on():
        core.set_eager_provider(*on)
        return g(x)

    def kernels_off():
        core.set_eager_provider(None)
        try:
            return g(x)
        finally:
            core.set_eager_provider(*on)

    def torch_eager():
        return torch.autograd.grad(chain(T, tx), [tx])[0]

    systems = {"diffprog eager": kernels_on, "diffprog eager, kernels off": kernels_off,
               "torch eager": torch_eager}
    for f in systems.values():
        f()
    ef.wait_ready(600)  # the first call only queued the kernels: time them once loaded
    times: dict[str, list[float]] = {k: [] for k in systems}
    for _ in range(rounds):
        for k, f in systems.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    print(f"W2, {rounds} interleaved rounds, 1 thread, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    for k, v in times.items():
        print(f"{k:30s} median {1e3 * statistics.median(v):7.1f} ms   min {1e3 * min(v):7.1f} ms")
    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    print(f"diffprog eager / torch eager: median {med['diffprog eager'] / med['torch eager']:.2f},"
          f" min {low['diffprog eager'] / low['torch eager']:.2f}")
    print(f"kernels off / on: median "
          f"{med['diffprog eager, kernels off'] / med['diffprog eager']:.2f}")
    ref = np.asarray(kernels_off())
    scale = np.abs(ref).max()
    print("largest difference / largest entry: kernels on",
          float(np.abs(np.asarray(kernels_on()) - ref).max() / scale),
          "torch", float(np.abs(torch_eager().numpy() - ref).max() / scale))


if __name__ == "__main__":
    main()
