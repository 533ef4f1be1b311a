"""W3, an MLP 784-256-256-10 (tanh, softmax cross-entropy) on a batch of 128: the gradient over
a dict of per-layer parameters, beside the backward pass a person would write in NumPy."""

from __future__ import annotations

import numpy as np

ID = "W3"
TITLE = "W3 — MLP 784-256-256-10, batch 128: gradient over a dict of per-layer params"
SIZES = (784, 256, 256, 10)
BATCH = 128


def make_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {f"layer{i + 1}": {"W": rng.standard_normal((m, n)) / np.sqrt(m),
                                "b": 0.1 * rng.standard_normal(n)}
              for i, (m, n) in enumerate(zip(SIZES[:-1], SIZES[1:]))}
    x = rng.standard_normal((BATCH, SIZES[0]))
    labels = rng.integers(0, SIZES[-1], BATCH)
    onehot = np.eye(SIZES[-1])[labels]
    return params, x, onehot


def loss(B, params, x, onehot):
    """Mean softmax cross-entropy of the MLP's logits (one body for every backend)."""
    h = B.tanh(x @ params["layer1"]["W"] + params["layer1"]["b"])
    h = B.tanh(h @ params["layer2"]["W"] + params["layer2"]["b"])
    logits = h @ params["layer3"]["W"] + params["layer3"]["b"]
    return (B.sum(B.lse_rows(logits)) - B.sum(onehot * logits)) / x.shape[0]


def numpy_backward(params, x, onehot):
    """The gradient of ``loss`` by hand: forward keeping activations, then the textbook sweep."""
    W1, b1 = params["layer1"]["W"], params["layer1"]["b"]
    W2, b2 = params["layer2"]["W"], params["layer2"]["b"]
    W3, b3 = params["layer3"]["W"], params["layer3"]["b"]
    h1 = np.tanh(x @ W1 + b1)
    h2 = np.tanh(h1 @ W2 + b2)
    logits = h2 @ W3 + b3
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    d3 = (e / e.sum(axis=1, keepdims=True) - onehot) / x.shape[0]  # softmax - onehot
    d2 = (d3 @ W3.T) * (1.0 - h2 * h2)
    d1 = (d2 @ W2.T) * (1.0 - h1 * h1)
    return {"layer1": {"W": x.T @ d1, "b": d1.sum(axis=0)},
            "layer2": {"W": h1.T @ d2, "b": d2.sum(axis=0)},
            "layer3": {"W": h2.T @ d3, "b": d3.sum(axis=0)}}


def run(ctx):
    from .harness import grad_systems, time_table
    params, x, onehot = make_problem()
    systems = grad_systems(ctx, loss, params, consts=(x, onehot), numpy_backward=numpy_backward)
    desc = ("Mean softmax cross-entropy of an MLP 784-256-256-10 with tanh on a batch of 128 "
            "float64 rows; the gradient with respect to `{'layer1': {'W', 'b'}, ...}`. About "
            "0.16 GFLOP per gradient in three matrix products forward and five backward, so the "
            "BLAS does most of the work; the hand-written backward pass is the floor.")
    return [time_table(ctx, ID, TITLE, desc, systems, baseline="numpy forward only")]
