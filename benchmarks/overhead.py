"""W1, eager overhead: the gradient of a chain of 100 elementwise ops on 10 elements.

On 10 elements NumPy's own work is negligible, so this measures what each system spends per
operation on tracing, dispatch and the backward sweep. The chain cycles through sin, ``*1.01``,
``+0.5``, tanh, ``x*x``, negation and exp, then sums.

Run alone: ``python benchmarks/overhead.py`` (the same as ``python -m benchmarks --only W1``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ID = "W1"
TITLE = "W1 — eager overhead: grad of a 100-op elementwise chain on 10 elements"
N_OPS = 100
SIZE = 10


def chain(B, x):
    """N_OPS elementwise ops cycling through sin, *1.01, +0.5, tanh, x*x, -x, exp; then sum."""
    steps = (B.sin, lambda v: v * 1.01, lambda v: v + 0.5, B.tanh,
             lambda v: v * v, lambda v: -v, B.exp)
    for i in range(N_OPS):
        x = steps[i % 7](x)
    return B.sum(x)


def numpy_backward(x):
    """The gradient of ``chain`` written by hand: keep every intermediate, then walk back."""
    steps = (np.sin, lambda v: v * 1.01, lambda v: v + 0.5, np.tanh,
             lambda v: v * v, lambda v: -v, np.exp)
    values = [x]
    for i in range(N_OPS):
        values.append(steps[i % 7](values[-1]))
    g = np.ones_like(x)
    for i in range(N_OPS - 1, -1, -1):
        k = i % 7
        if k == 0:
            g = g * np.cos(values[i])
        elif k == 1:
            g = g * 1.01
        elif k == 3:
            g = g * (1.0 - values[i + 1] * values[i + 1])
        elif k == 4:
            g = g * (2.0 * values[i])
        elif k == 5:
            g = -g
        elif k == 6:
            g = g * values[i + 1]
    return g


def run(ctx):
    from . import tape
    from .harness import System, grad_systems, time_table
    x = np.linspace(0.1, 1.0, SIZE)
    systems = grad_systems(ctx, chain, x, numpy_backward=numpy_backward, np_code_row=True)
    # The floor (issue 17): a minimal reverse tape with raw NumPy rules, benchmarks/tape.py
    g_tape = tape.grad(lambda x: chain(tape.B, x))
    systems.insert(2, System("minimal tape (floor)", lambda: g_tape(x)))
    desc = (f"Gradient of a {N_OPS}-op elementwise chain on {SIZE} float64 elements (sin, `*1.01`,"
            " `+0.5`, tanh, `x*x`, negation, exp, repeated; then a sum). NumPy's work is tiny "
            "here, so the times are each system's per-op overhead. \"plain np code\" is the "
            "same chain written with `np.sin` etc. on traced values, through NumPy's "
            "`__array_ufunc__` dispatch.")
    desc += (" \"minimal tape (floor)\" is benchmarks/tape.py: a 90-line reverse tape with "
             "raw NumPy rules and nothing else (no nesting, pytrees or checks); issue 17's bar "
             "is diffprog eager at most 1.25x its time.")
    return [time_table(ctx, ID, TITLE, desc, systems, baseline="numpy forward only",
                       per=N_OPS, per_label="op"), fixed_cost(ctx)]


def fixed_cost(ctx):
    """W1f: the fixed cost of one ``grad`` call, the gradient of a one-op function of a float64
    scalar (``sin``), beside the minimal tape's and NumPy's ``sin`` and ``cos`` alone."""
    import diffprog as dp
    import diffprog.numpy as dnp

    from . import tape
    from .harness import System, time_table
    s = np.float64(0.5)
    g = dp.grad(lambda x: dnp.sin(x))
    g_tape = tape.grad(lambda x: tape.sin(x))
    systems = [System("numpy sin and cos", lambda: (np.sin(s), np.cos(s)), check=False),
               System("minimal tape (floor)", lambda: g_tape(s)),
               System("diffprog eager", lambda: g(s))]
    desc = ("The gradient of `sin` at one float64 scalar: what one `grad` call costs beyond its "
            "operations (argument checks, the trace, the seed, the sweep, the result's "
            "pytree). Issue 17's bar: diffprog eager at most 12 µs.")
    return time_table(ctx, "W1f", "W1f — fixed cost of one grad call: grad(sin) at a scalar",
                      desc, systems, baseline="minimal tape (floor)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.run import main
    main(["--only", ID, *sys.argv[1:]])
