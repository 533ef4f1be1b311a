"""W2, a 20-op elementwise chain on 10^6 elements, then a sum: memory-bound array work, where
the per-op overhead no longer matters and the number of passes over memory does. W6 (memory.py)
runs the same function 200 times and watches the memory."""

from __future__ import annotations

import numpy as np

ID = "W2"
TITLE = "W2 — a 20-op elementwise chain on 10^6 elements"
N_OPS = 20
SIZE = 1_000_000


def chain(B, x):
    """20 elementwise ops (sin, cos, exp, tanh, *, +; two of them reuse the input) then sum."""
    v = B.sin(x)
    v = v * x
    v = B.cos(v)
    v = v + 0.5
    v = B.tanh(v)
    v = B.exp(v)
    v = v * 0.5
    v = B.sin(v)
    v = v + x
    v = B.tanh(v)
    v = B.cos(v)
    v = v * 1.3
    v = B.exp(v)
    v = v + -1.0
    v = B.tanh(v)
    v = v * v
    v = B.sin(v)
    v = v + 0.1
    v = B.cos(v)
    v = B.exp(v)
    return B.sum(v)


def numpy_backward(x):
    """The gradient of ``chain``, written by hand as straight-line NumPy."""
    s1 = np.sin(x)
    v2 = s1 * x
    v3 = np.cos(v2)
    v5 = np.tanh(v3 + 0.5)
    v6 = np.exp(v5)
    v7 = v6 * 0.5
    v8 = np.sin(v7)
    v10 = np.tanh(v8 + x)
    v11 = np.cos(v10)
    v13 = np.exp(v11 * 1.3)
    v15 = np.tanh(v13 - 1.0)
    v16 = v15 * v15
    v18 = np.sin(v16) + 0.1
    v20 = np.exp(np.cos(v18))
    g = -v20 * np.sin(v18)              # through exp and cos
    g = g * np.cos(v16) * (2.0 * v15)   # sin, square
    g = g * (1.0 - v15 * v15)           # tanh
    g = g * v13 * 1.3                   # exp, *1.3
    g = -g * np.sin(v10)                # cos
    g = g * (1.0 - v10 * v10)           # tanh; then + x forks
    gx = g.copy()
    g = g * np.cos(v7) * 0.5            # sin, *0.5
    g = g * v6 * (1.0 - v5 * v5)        # exp, tanh
    g = -g * np.sin(v2)                 # cos; then v2 = sin(x) * x
    gx += g * s1 + g * x * np.cos(x)
    return gx


def make_input(size: int = SIZE) -> np.ndarray:
    return np.linspace(-2.0, 2.0, size)


def _numpy_path(ctx, x):
    """diffprog eager as before issue 17: every primitive and rule through NumPy (the eager
    kernels of diffprog/kernels/eager_fast.py unregistered around the call)."""
    import diffprog as dp
    from diffprog import core

    from .harness import System
    D = ctx.backends["diffprog"]
    g = dp.grad(lambda x: chain(D, x))

    def run():
        previous = core._eager_provider, core.EAGER_MIN_SIZE
        core.set_eager_provider(None)
        try:
            return g(x)
        finally:
            core.set_eager_provider(*previous)

    return System("diffprog eager, eager kernels off", run)


def run(ctx):
    from .harness import grad_systems, time_table
    x = make_input()
    systems = grad_systems(ctx, chain, x, numpy_backward=numpy_backward)
    at = next(i for i, s in enumerate(systems) if s.name == "diffprog eager") + 1
    systems.insert(at, _numpy_path(ctx, x))
    # The eager kernels load in a background thread after the first large call: time them
    # loaded (their first-call cost is benchmarks/eager_first_call.py's subject).
    from diffprog.kernels import eager_fast
    systems[at - 1].run()
    eager_fast.wait_ready(600)
    desc = (f"Gradient of 20 elementwise ops (sin, cos, exp, tanh, `*`, `+`; two reuse the "
            f"input) on {SIZE:,} float64 elements, then a sum. Memory-bound: the cost is the "
            "passes over 8 MB arrays, forward and backward. Eager diffprog runs the large "
            "float64 sin and cos and the fused rules (tanh's `ct * (1 - y*y)`, sin's "
            "`ct * cos(x)`, ...) as precompiled fast-math kernels "
            "(diffprog/kernels/eager_fast.py, issue 17); \"eager kernels off\" is the same "
            "gradient with every operation through NumPy, as before.")
    return [time_table(ctx, ID, TITLE, desc, systems, baseline="numpy forward only",
                       per=N_OPS, per_label="op")]
