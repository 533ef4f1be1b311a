"""W4, a dense Hessian: ``sum(tanh(A x)^2)`` for ``x`` in R^50 with a 50 x 50 matrix ``A``.

diffprog's ``hessian`` is forward over reverse (``jacfwd(jacrev(f))``): one jvp of the gradient
per input entry, 50 of them, each tracing the whole function again. JAX and ``torch.func``
vectorize those 50 jvps with vmap into one batched pass.
"""

from __future__ import annotations

import numpy as np

ID = "W4"
TITLE = "W4 — Hessian of sum(tanh(A x)^2), x in R^50"
N = 50


def make_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, N)) / np.sqrt(N), rng.standard_normal(N)


def f(B, x, A):
    t = B.tanh(A @ x)
    return B.sum(t * t)


def numpy_hessian(x, A):
    """By hand: d^2/dz^2 tanh(z)^2 = 2 (1 - t^2)(1 - 3 t^2), so H = A^T diag(that) A."""
    t = np.tanh(A @ x)
    d2 = 2.0 * (1.0 - t * t) * (1.0 - 3.0 * t * t)
    return A.T @ (d2[:, None] * A)


def run(ctx):
    import diffprog as dp

    from .harness import System, block, diffprog_jit_row, time_table
    A, x = make_problem()
    bk, peers = ctx.backends, ctx.peers
    B, D = bk["numpy"], bk["diffprog"]
    h = dp.hessian(lambda x: f(D, x, A))
    systems = [System("numpy forward only", lambda: f(B, x, A), check=False),
               System("numpy hand-written Hessian", lambda: numpy_hessian(x, A)),
               System("diffprog eager", lambda: h(x))]
    jit_row = diffprog_jit_row(ctx, h, x)
    if jit_row is not None:
        systems.append(jit_row)
    if "autograd" in bk:
        ha = peers.autograd.hessian(lambda x: f(bk["autograd"], x, A))
        systems.append(System("autograd", lambda: ha(x)))
    if "jax" in bk:
        jax, J = peers.jax, bk["jax"]
        jA, jx = J.const(A), J.const(x)
        hj = jax.hessian(lambda x, A: f(J, x, A))
        hjj = jax.jit(hj)
        systems += [System("jax eager", lambda: block(hj(jx, jA))),
                    System("jax.jit", lambda: block(hjj(jx, jA)))]
    if "torch" in bk:
        torch, T = peers.torch, bk["torch"]
        tA, tx = T.const(A), T.const(x.copy())
        tf = lambda x: f(T, x, tA)
        ht = torch.func.hessian(tf)
        systems += [System("torch eager (autograd.functional)",
                           lambda: torch.autograd.functional.hessian(tf, tx)),
                    System("torch.func", lambda: ht(tx))]
    desc = (f"The {N} x {N} Hessian of `sum(tanh(A @ x) ** 2)` with a {N} x {N} matrix `A`, "
            "float64. diffprog and autograd run one jvp (or vjp) of the gradient per input "
            "entry; `jax.hessian` and `torch.func.hessian` batch them with vmap; "
            "`torch.autograd.functional.hessian` loops like autograd.")
    return [time_table(ctx, ID, TITLE, desc, systems, baseline="numpy forward only")]
