"""Train a small tanh RNN to continue a noisy sine wave, with the recurrence as one ``dp.scan``.

The loss runs the RNN over the sequence with ``dp.scan`` (its body is traced once, so the graph
and the compile time do not grow with the sequence length), and ``dp.jit(dp.value_and_grad)``
trains it with Adam-style steps written in NumPy. The example also checks that the scan's
gradient equals the one of the same loop unrolled in Python, that ``checkpoint_every`` gives
the same gradient while saving a carry only every few steps, and that the traced graph has the
same number of nodes for 10 and for 1,000 steps.

Run: python examples/rnn.py [--small]   (or DIFFPROG_EXAMPLE_SMALL=1)
"""

from __future__ import annotations

import os
import sys

import numpy as np

import diffprog as dp
import diffprog.numpy as dnp

HIDDEN = 16


def init_params(rng: np.random.Generator) -> dict:
    return {"Wh": rng.standard_normal((HIDDEN, HIDDEN)) * 0.3 / np.sqrt(HIDDEN),
            "wx": rng.standard_normal(HIDDEN) * 0.5,
            "b": np.zeros(HIDDEN),
            "wo": rng.standard_normal(HIDDEN) * 0.1}


def cell(p: dict, h, x):
    """One step: the new hidden state and the prediction of the next value."""
    h = dnp.tanh(p["Wh"] @ h + p["wx"] * x + p["b"])
    return h, dnp.dot(p["wo"], h)


def loss(p: dict, seq, checkpoint_every: int | None = None):
    """Mean squared error of the one-step-ahead predictions over the sequence."""
    _, preds = dp.scan(lambda h, x: cell(p, h, x), np.zeros(HIDDEN), seq[:-1],
                       checkpoint_every=checkpoint_every)
    return dnp.mean((preds - seq[1:]) ** 2)


def loss_unrolled(p: dict, seq):
    """The same loss as a Python loop: one traced step per element."""
    h, preds = np.zeros(HIDDEN), []
    for x in seq[:-1]:
        h, y = cell(p, h, x)
        preds.append(y)
    return dnp.mean((dnp.stack(preds) - seq[1:]) ** 2)


def make_sequence(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) * 0.3
    return np.sin(t) + 0.5 * np.sin(0.37 * t) + 0.02 * rng.standard_normal(n)


def main(small: bool | None = None) -> dict:
    if small is None:
        small = "--small" in sys.argv or os.environ.get("DIFFPROG_EXAMPLE_SMALL") == "1"
    rng = np.random.default_rng(0)
    n, epochs = (120, 150) if small else (400, 400)
    seq = make_sequence(n, rng)
    p = init_params(rng)

    # the scan's gradient is the unrolled loop's, and checkpointing changes nothing but memory
    g_scan = dp.grad(loss)(p, seq)
    g_loop = dp.grad(loss_unrolled)(p, seq)
    g_ckpt = dp.grad(loss)(p, seq, 11)
    err_loop = max(float(np.max(np.abs(g_scan[k] - g_loop[k]))) for k in p)
    err_ckpt = max(float(np.max(np.abs(g_scan[k] - g_ckpt[k]))) for k in p)
    nodes = [len(dp.make_graph(loss)(p, make_sequence(m, rng))) for m in (10, 1000)]
    print(f"gradient: scan vs unrolled loop {err_loop:.1e}, checkpoint_every=11 {err_ckpt:.1e};"
          f" graph nodes for 10 and 1,000 steps: {nodes[0]} and {nodes[1]}")

    step = dp.jit(dp.value_and_grad(loss))
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    first = None
    for epoch in range(1, epochs + 1):
        value, g = step(p, seq)
        first = float(value) if first is None else first
        for k in p:  # Adam
            m[k] = 0.9 * m[k] + 0.1 * g[k]
            v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
            p[k] = p[k] - 0.02 * (m[k] / (1 - 0.9 ** epoch)) / (
                np.sqrt(v[k] / (1 - 0.999 ** epoch)) + 1e-8)
        if epoch % 50 == 0 or epoch == 1:
            print(f"epoch {epoch:4d}  loss {float(value):.5f}")
    final = float(loss(p, seq))
    print(f"loss {first:.4f} -> {final:.5f} in {epochs} epochs (one traced program: "
          f"{step.traces} trace)")
    return {"err_loop": err_loop, "err_ckpt": err_ckpt, "nodes": nodes, "first_loss": first,
            "final_loss": final, "traces": step.traces}


if __name__ == "__main__":
    main()
