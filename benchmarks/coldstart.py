"""C, cold start: the first call of ``jit(grad(f))`` in a fresh process with an empty kernel cache.

Each measurement runs in its own subprocess with ``DIFFPROG_CACHE_DIR`` set to a new empty
directory (no fused kernel of a previous run can be loaded). What is *not* cold: the blocked
interpreter, compiled once per installation into the package's ``__pycache__`` (see
diffprog/kernels/interp.py). Columns: the import of diffprog, the first call (trace, passes and
the run: what a user waits for), the second call, how long the background compilation took to
finish after the second call started it, and the per-call time on the tier finally chosen,
beside jax.jit's first call and steady state when jax is importable, and diffprog with
``compile="eager"`` (the old behaviour: every fused kernel compiled before the first call).

Run alone: ``python -m benchmarks --only C``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ID = "C"
TITLE = "C — cold start: first call of jit(grad) in a fresh process, empty kernel cache"
ROOT = Path(__file__).resolve().parent.parent
# The "600-op graph": the gradient of W1's chain made 250 ops long, on 1000 elements.
G600_OPS = 250
G600_SIZE = 1000

_DIFFPROG = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import diffprog as dp, diffprog.numpy as dnp
t_import = time.perf_counter() - t0
from benchmarks.coldstart import problem
fn, args = problem(sys.argv[1], "diffprog")
jitted = dp.jit(fn, compile=sys.argv[2])
t = time.perf_counter(); jitted(*args); first = time.perf_counter() - t
t = time.perf_counter(); jitted(*args); second = time.perf_counter() - t
t = time.perf_counter(); jitted.wait_compiled(); compiled = time.perf_counter() - t
for _ in range(10):
    jitted(*args)
best = float("inf")
for _ in range(5):
    n = 0
    t = time.perf_counter()
    while n < 3 or time.perf_counter() - t < 0.05:
        jitted(*args)
        n += 1
    best = min(best, (time.perf_counter() - t) / n)
(program,) = jitted.cache.values()
print(json.dumps({"import": t_import, "first": first, "second": second, "compiled": compiled,
                  "steady": best, "tier": program.tier, "nodes": len(program.graph.nodes)}))
"""

_JAX = r"""
import json, sys, time
import jax
jax.config.update("jax_enable_x64", True)
from benchmarks.coldstart import problem
fn, args = problem(sys.argv[1], "jax")
jitted = jax.jit(fn)
t = time.perf_counter(); jax.block_until_ready(jitted(*args)); first = time.perf_counter() - t
best = float("inf")
for _ in range(5):
    n = 0
    t = time.perf_counter()
    while n < 3 or time.perf_counter() - t < 0.05:
        jax.block_until_ready(jitted(*args))
        n += 1
    best = min(best, (time.perf_counter() - t) / n)
print(json.dumps({"first": first, "steady": best}))
"""


def problem(name: str, system: str):
    """``(grad function, args)`` of workload ``name`` ("W1", "W3", "G600") for ``system``
    ("diffprog" or "jax")."""
    import numpy as np

    from . import mlp, overhead
    if system == "jax":
        from types import SimpleNamespace

        import jax
        import jax.numpy as jnp
        B = SimpleNamespace(sin=jnp.sin, cos=jnp.cos, exp=jnp.exp, tanh=jnp.tanh, sum=jnp.sum,
                            lse_rows=lambda z: jax.nn.logsumexp(z, axis=1, keepdims=True))
        grad, conv = jax.grad, jnp.asarray
    else:
        from types import SimpleNamespace

        import diffprog as dp
        import diffprog.numpy as dnp
        B = SimpleNamespace(sin=dnp.sin, cos=dnp.cos, exp=dnp.exp, tanh=dnp.tanh, sum=dnp.sum,
                            lse_rows=lambda z: dnp.logsumexp(z, axis=1, keepdims=True))
        grad, conv = dp.grad, np.asarray
    if name == "W1":
        x = np.linspace(0.1, 0.5, overhead.SIZE)
        return grad(lambda x: overhead.chain(B, x)), (conv(x),)
    if name == "G600":
        x = np.linspace(0.1, 0.5, G600_SIZE)
        steps = (B.sin, lambda v: v * 1.01, lambda v: v + 0.5, B.tanh, lambda v: v * v,
                 lambda v: -v, B.exp)

        def chain(x):
            for i in range(G600_OPS):
                x = steps[i % 7](x)
            return B.sum(x)
        return grad(chain), (conv(x),)
    if name == "W3":
        params, x, onehot = mlp.make_problem()
        if system == "jax":
            params = jax.tree_util.tree_map(conv, params)
        return (grad(lambda p, x, y: mlp.loss(B, p, x, y)),
                (params, conv(x), conv(onehot)))
    raise ValueError(name)


def _run(script: str, *argv: str) -> dict | None:
    with tempfile.TemporaryDirectory(prefix="diffprog-cold-") as cache:
        env = dict(os.environ, DIFFPROG_CACHE_DIR=cache,
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        done = subprocess.run([sys.executable, "-c", script, *argv], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _s(t: float | None) -> str:
    if t is None:
        return "—"
    return f"{t * 1e3:.0f} ms" if t >= 0.01 else f"{t * 1e6:.0f} µs"


BARS = {"W1": 0.5, "W3": 0.5, "G600": 1.5}


def measure(names: tuple = ("W1", "W3", "G600"), eager: tuple = ("W1", "W3"),
            with_jax: bool = True) -> list[dict]:
    """One row per workload: diffprog's default (background) and eager cold starts, jax.jit."""
    import importlib.util
    has_jax = with_jax and importlib.util.find_spec("jax") is not None
    rows = []
    for name in names:
        print(f"  cold start {name} ...", file=sys.stderr, flush=True)
        row = {"name": name, "bg": _run(_DIFFPROG, name, "background"),
               "eager": _run(_DIFFPROG, name, "eager") if name in eager else None,
               "jax": _run(_JAX, name) if has_jax else None}
        rows.append(row)
    return rows


def run(ctx):
    from .harness import Table
    quick = getattr(ctx, "quick", False)
    rows = measure(eager=() if quick else ("W1", "W3"))
    columns = ["workload", "nodes", "import diffprog", "first call", "bar", "second call",
               "background compile", "steady (tier)", "eager first call", "jax.jit first call",
               "jax.jit steady"]
    table_rows, data = [], []
    for r in rows:
        bg, eg, jx = r["bg"] or {}, r["eager"] or {}, r["jax"] or {}
        bar = BARS[r["name"]]
        first = bg.get("first")
        verdict = "—" if first is None else ("met" if first < bar else "**missed**")
        table_rows.append([
            r["name"], str(bg.get("nodes", "—")), _s(bg.get("import")), _s(first),
            f"< {bar} s: {verdict}", _s(bg.get("second")), _s(bg.get("compiled")),
            f"{_s(bg.get('steady'))} ({bg.get('tier', '?')})", _s(eg.get("first")),
            _s(jx.get("first")), _s(jx.get("steady"))])
        data.append(r)
    desc = ("W1: grad of the 100-op chain on 10 elements; W3: grad of the MLP 784-256-256-10, "
            f"batch 128; G600: grad of a {G600_OPS}-op chain on {G600_SIZE} elements (about 600 "
            "nodes). Each cell of a row is a fresh process with an empty DIFFPROG_CACHE_DIR. "
            "\"first call\" is jit's default, compile=\"background\": it runs on the NumPy "
            "executor or the blocked interpreter, compiling nothing; the second call starts "
            "the background compilation, \"background compile\" is the wait for it to end, "
            "and \"steady\" is the per-call time on the tier then kept (numpy, interp, fused). "
            "\"eager first call\" is compile=\"eager\" (every fused kernel compiled first). "
            "jax.jit's first call includes XLA's compilation (jax imported beforehand).")
    notes = []
    if hasattr(os, "getloadavg"):
        notes.append("load average (1 min) at the end of the run: "
                     f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return [Table(ID, TITLE, desc, columns, table_rows, data, notes)]


if __name__ == "__main__":  # pragma: no cover
    for r in measure():
        print(json.dumps(r))
