"""J, Jacobians of R^n -> R^m for (n, m) = (4, 1000) and (1000, 4): forward mode against
reverse mode (issue 4). ``jacfwd`` costs one jvp per input and ``jacrev`` one vjp per output,
so each shape has a clear winner; JAX and ``torch.func`` batch either with vmap."""

from __future__ import annotations

import numpy as np

ID = "J"
SHAPES = ((4, 1000), (1000, 4))


def f(B, x, W):
    """R^n -> R^m: tanh(W @ sin(x)) with W of shape (m, n)."""
    return B.tanh(W @ B.sin(x))


def numpy_jacobian(x, W):
    t = np.tanh(W @ np.sin(x))
    return (1.0 - t * t)[:, None] * W * np.cos(x)[None, :]


def run(ctx):
    return [_table(ctx, n, m) for n, m in SHAPES]


def _table(ctx, n: int, m: int):
    import diffprog as dp

    from .harness import System, block, diffprog_jit_row, time_table
    bk, peers = ctx.backends, ctx.peers
    B, D = bk["numpy"], bk["diffprog"]
    rng = np.random.default_rng(n)
    W, x = rng.standard_normal((m, n)) / np.sqrt(n), rng.standard_normal(n)
    jf = dp.jacfwd(lambda x: f(D, x, W))
    jr = dp.jacrev(lambda x: f(D, x, W))
    systems = [System("numpy forward only", lambda: f(B, x, W), check=False),
               System("numpy hand-written Jacobian", lambda: numpy_jacobian(x, W)),
               System("diffprog jacfwd", lambda: jf(x)),
               System("diffprog jacrev", lambda: jr(x))]
    # jit unrolls one pass per Jacobian entry; with a cold kernel cache the wrong-direction
    # variant takes about a minute to compile, too long for --quick's two minutes
    for name, fn in (() if ctx.quick else
                     (("diffprog jit jacfwd", jf), ("diffprog jit jacrev", jr))):
        row = diffprog_jit_row(ctx, fn, x)
        if row is not None:
            row.name = name
            systems.append(row)
    if "autograd" in bk:
        ja = peers.autograd.jacobian(lambda x: f(bk["autograd"], x, W))
        systems.append(System("autograd jacobian (reverse)", lambda: ja(x)))
    if "jax" in bk:
        jax, J = peers.jax, bk["jax"]
        jW, jx = J.const(W), J.const(x)
        for name, tr in (("jacfwd", jax.jacfwd), ("jacrev", jax.jacrev)):
            fn = tr(lambda x, W: f(J, x, W))
            jfn = jax.jit(fn)
            systems += [System(f"jax {name} eager", lambda fn=fn: block(fn(jx, jW))),
                        System(f"jax.jit {name}", lambda fn=jfn: block(fn(jx, jW)))]
    if "torch" in bk:
        torch, T = peers.torch, bk["torch"]
        tW, tx = T.const(W), T.const(x.copy())
        tf = lambda x: f(T, x, tW)
        tjf, tjr = torch.func.jacfwd(tf), torch.func.jacrev(tf)
        systems += [System("torch.func jacfwd", lambda: tjf(tx)),
                    System("torch.func jacrev", lambda: tjr(tx))]
    desc = (f"The {m} x {n} Jacobian of `tanh(W @ sin(x))`, x in R^{n}, W of shape "
            f"({m}, {n}), float64. Forward mode needs {n} jvps, reverse mode {m} vjps.")
    return time_table(ctx, f"J-{n}x{m}", f"J — Jacobian of R^{n} -> R^{m}", desc, systems,
                      baseline="numpy forward only", reference="diffprog jacfwd")
