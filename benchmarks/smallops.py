"""S, graphs of many small operations (issue 11 §3): jit's per-call overhead against jax.jit.

- ``RK4``: the gradient, in the 4 parameters of the vector field, of ``sum(y_T^2)`` after 20
  RK4 steps of ``y' = tanh(y W1 + b1) W2 + b2`` with ``y`` in R^10 (a 10-10-10 MLP): about
  2,600 nodes on 10-element vectors and 10 x 10 matrices.
- ``H70``: the 70 x 70 Hessian of the energy of a chain of 35 particles in the plane (70
  degrees of freedom): harmonic bonds to the first, second and third neighbours on their
  distances, plus ``sum(cos q) + 0.01 sum(q^4)``; jacfwd(jacrev) batched by vmap, ~190 nodes.
- ``W1``'s jit row is in the W1 table (benchmarks/overhead.py).

Three tables: the steady state of each workload, interleaved medians (diffprog's default tiers
against the NumPy executor, the whole-program tier forced, and jax.jit), and cold start (each
cell a fresh process with an empty ``DIFFPROG_CACHE_DIR``: first call, second call, the wait
for the background compilation, the per-call time on the tier then kept; jax.jit's first call
and steady state, left out of a ``--quick`` run: its RK4 compilation alone takes tens of
seconds). The bar of issue 11: jit (default tiers) within 3x of jax.jit, judged by
benchmarks/bars.py from the steady-state tables.

Workload S of ``python -m benchmarks --only S`` (writes benchmarks/results/S.json); run alone,
``python -m benchmarks.smallops`` prints the tables as markdown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ID = "S"
TITLE = "S — many small ops: a 20-step RK4 gradient and a 70-DOF Hessian under jit"
ROOT = Path(__file__).resolve().parent.parent
BAR = 3.0  # jit within this factor of jax.jit

D, H, STEPS, DT = 10, 10, 20, 0.05
N_PARTICLES = 35


def rk4_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    params = (rng.standard_normal((D, H)) / np.sqrt(D), rng.standard_normal(H) * 0.1,
              rng.standard_normal((H, D)) / np.sqrt(H), rng.standard_normal(D) * 0.1)
    return params, rng.standard_normal(D)


def rk4_loss(B, p, y):
    W1, b1, W2, b2 = p

    def f(y):
        return B.tanh(y @ W1 + b1) @ W2 + b2
    for _ in range(STEPS):
        k1 = f(y)
        k2 = f(y + DT / 2 * k1)
        k3 = f(y + DT / 2 * k2)
        k4 = f(y + DT * k3)
        y = y + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return B.sum(y * y)


def chain_energy(B, q):
    x = B.reshape(q, (N_PARTICLES, 2))
    e = 0.01 * B.sum(q ** 4) + B.sum(B.cos(q))
    for k, c in ((1, 1.0), (2, 0.5), (3, 0.25)):
        d = x[k:] - x[:-k]
        r = B.sqrt(B.sum(d * d, axis=1))
        e = e + c * B.sum((r - k) ** 2)
    return e


def chain_problem(seed: int = 1):
    return np.random.default_rng(seed).standard_normal(2 * N_PARTICLES)


def problem(name: str, system: str):
    """``(function, args)`` of workload ``name`` ("RK4", "H70") for ``system`` ("diffprog"
    or "jax"): the function is the gradient or the Hessian, not yet jitted."""
    from types import SimpleNamespace
    if system == "jax":
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        B = SimpleNamespace(tanh=jnp.tanh, sum=jnp.sum, reshape=jnp.reshape, sqrt=jnp.sqrt,
                            cos=jnp.cos)
        grad, hessian, conv = jax.grad, jax.hessian, jnp.asarray
    else:
        import diffprog as dp
        import diffprog.numpy as dnp
        B = SimpleNamespace(tanh=dnp.tanh, sum=dnp.sum, reshape=dnp.reshape, sqrt=dnp.sqrt,
                            cos=dnp.cos)
        grad, hessian, conv = dp.grad, dp.hessian, np.asarray
    if name == "RK4":
        params, y0 = rk4_problem()
        return (grad(lambda p, y: rk4_loss(B, p, y)),
                (tuple(conv(a) for a in params), conv(y0)))
    if name == "H70":
        return hessian(lambda q: chain_energy(B, q)), (conv(chain_problem()),)
    raise ValueError(name)


# -- steady state ---------------------------------------------------------------------------

def steady_systems(ctx, name: str) -> list:
    import diffprog as dp

    from .harness import System, block
    fn, args = problem(name, "diffprog")
    settled = dp.jit(fn)

    def run_default():
        return settled(*args)
    settled(*args)
    settled(*args)
    settled.wait_compiled()
    for _ in range(200):  # the trials: until the tier is chosen
        settled(*args)
    (program,) = settled.cache.values()
    tier = program.tier
    forced = {kind: dp.jit(fn, executor=kind) for kind in ("numpy", "whole")}
    systems = [System("diffprog eager", lambda: fn(*args)),
               System(f"diffprog jit, default tiers ({tier})", run_default),
               System("diffprog jit, NumPy executor", lambda: forced["numpy"](*args)),
               System("diffprog jit, whole-program tier", lambda: forced["whole"](*args))]
    if "jax" in ctx.backends:
        jfn, jargs = problem(name, "jax")
        jj = ctx.peers.jax.jit(jfn)
        systems.append(System("jax.jit", lambda: block(jj(*jargs))))
    return systems


# -- cold start -----------------------------------------------------------------------------

_DIFFPROG = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import diffprog as dp
t_import = time.perf_counter() - t0
from benchmarks.smallops import problem
fn, args = problem(sys.argv[1], "diffprog")
jitted = dp.jit(fn)
t = time.perf_counter(); jitted(*args); first = time.perf_counter() - t
t = time.perf_counter(); jitted(*args); second = time.perf_counter() - t
t = time.perf_counter(); jitted.wait_compiled(); compiled = time.perf_counter() - t
for _ in range(300):
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
from benchmarks.smallops import problem
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


def _fresh(script: str, *argv: str) -> dict | None:
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
    return f"{t * 1e3:.0f} ms" if t >= 0.01 else f"{t * 1e3:.2f} ms"


def cold_table(with_jax: bool = True):
    import importlib.util

    from .harness import Table
    has_jax = with_jax and importlib.util.find_spec("jax") is not None
    rows, data = [], []
    for name in ("RK4", "H70"):
        print(f"  cold start {name} ...", file=sys.stderr, flush=True)
        bg = _fresh(_DIFFPROG, name) or {}
        jx = (_fresh(_JAX, name) if has_jax else None) or {}
        ratio = (f"{bg['steady'] / jx['steady']:.2f}x" if bg.get("steady") and jx.get("steady")
                 else "—")
        rows.append([name, str(bg.get("nodes", "—")), _s(bg.get("import")), _s(bg.get("first")),
                     _s(bg.get("second")), _s(bg.get("compiled")),
                     f"{_s(bg.get('steady'))} ({bg.get('tier', '?')})", _s(jx.get("first")),
                     _s(jx.get("steady")), ratio])
        data.append({"name": name, "diffprog": bg, "jax": jx})
    columns = ["workload", "nodes", "import diffprog", "first call", "second call",
               "background compile", "steady (tier)", "jax.jit first call", "jax.jit steady",
               "steady vs jax.jit"]
    desc = ("Each cell of a row is a fresh process with an empty DIFFPROG_CACHE_DIR (the "
            "interpreter and whole-program kernels are compiled once per installation, so "
            "they are loaded, not compiled). \"first call\" is jit's default "
            "(compile=\"background\"); the second call starts the background work, "
            "\"background compile\" waits for it, \"steady\" is the best per-call time on the "
            "tier then kept. jax.jit's first call includes tracing and XLA's compilation.")
    notes = []
    if hasattr(os, "getloadavg"):
        notes.append(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on "
                     f"{os.cpu_count()} cores")
    return Table("S-cold", "S — cold start of the RK4 gradient and the 70-DOF Hessian", desc,
                 columns, rows, data, notes)


def run(ctx):
    from .harness import time_table
    tables = []
    for name, what in (("RK4", "gradient of a 20-step RK4 integration of a 10-10-10 MLP "
                                "vector field"),
                       ("H70", "70 x 70 Hessian of a 35-particle chain's energy")):
        systems = steady_systems(ctx, name)
        desc = (f"{what} (see benchmarks/smallops.py), float64. Interleaved medians; "
                "\"default tiers\" is `dp.jit(f)` after its background work and trials, "
                "with the tier it kept; the forced rows are `jit(f, executor=...)`. Bar of "
                f"issue 11: jit within {BAR:g}x of jax.jit.")
        baseline = "jax.jit" if any(s.name == "jax.jit" for s in systems) else "diffprog eager"
        tables.append(time_table(ctx, f"S-{name}", f"S — {name}: {what}", desc, systems,
                                 baseline=baseline))
    # jax.jit's cold first call of RK4 alone takes tens of seconds: not in a --quick run
    tables.append(cold_table(with_jax=not ctx.quick))
    return tables


if __name__ == "__main__":  # pragma: no cover
    sys.path.insert(0, str(ROOT))
    from benchmarks.harness import Context
    from benchmarks.peers import load_peers
    ctx = Context(load_peers(1, {"jax"}))
    for table in run(ctx):
        print(f"\n### {table.title}\n\n{table.description}\n\n{table.markdown()}")
        for note in table.notes:
            print(f"\n- {note}")
