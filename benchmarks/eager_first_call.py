"""The first large call of a process (issue 17): grad of ``sum(tanh(sin(x)))`` on 10^6
float64 elements, in fresh processes, with an empty kernel cache (cold) then a filled one
(warm), and with the eager kernels off (NumPy alone). Prints, per process: the first call, the
second, how long the kernels then took to be ready (``eager_fast.wait_ready``) and a call after.

    .venv/bin/python benchmarks/eager_first_call.py [repeats]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

CHILD = r"""
import sys, time
import numpy as np, diffprog as dp, diffprog.numpy as dnp
from diffprog.kernels import eager_fast as ef
dp.config.eager_kernels = sys.argv[1] == "on"
x = np.linspace(-2.0, 2.0, 10**6)
f = dp.grad(lambda x: dnp.sum(dnp.tanh(dnp.sin(x))))
t = time.perf_counter(); f(x); first = time.perf_counter() - t
t = time.perf_counter(); f(x); second = time.perf_counter() - t
t = time.perf_counter(); ef.wait_ready(600); ready = time.perf_counter() - t
t = time.perf_counter(); f(x); later = time.perf_counter() - t
print(f"first {first:.3f} s, second {second:.3f} s, ready {ready:.2f} s later, "
      f"then a call {later:.4f} s; {ef.stats}")
"""


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    with tempfile.TemporaryDirectory() as root:
        for r in range(repeats):
            cache = os.path.join(root, str(r))
            env = {**os.environ, "DIFFPROG_CACHE_DIR": cache}
            for label, mode in (("cold", "on"), ("warm", "on"), ("warm", "on"), ("off", "off")):
                out = subprocess.run([sys.executable, "-c", CHILD, mode], env=env, text=True,
                                     capture_output=True, timeout=900)
                print(f"{label:4}: {(out.stdout or out.stderr).strip()}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
