"""Issue 12 §9: diffprog.optim (autograd-style optimizers over pytrees with static leaves)
and diffprog.scipy.optimize.minimize over pytrees."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog import optim

TARGET = {"w": np.array([1.0, -2.0]), "b": 0.5}


def loss(p):
    return dnp.sum((p["w"] - TARGET["w"]) ** 2) + (p["b"] - TARGET["b"]) ** 2


def params():
    return {"w": np.zeros(2), "b": 0.0, "cfg": {"act": "tanh", "layers": 2}}


@pytest.mark.parametrize("name, kwargs", [
    ("sgd", dict(num_iters=400, step_size=0.1)),
    ("momentum", dict(num_iters=400, step_size=0.05)),
    ("rmsprop", dict(num_iters=600, step_size=0.01)),
    ("adam", dict(num_iters=600, step_size=0.05)),
])
def test_optimizers_reach_the_minimum_and_keep_static_leaves(name, kwargs):
    seen = []
    p = getattr(optim, name)(lambda p, i: dp.grad(loss)(p), params(),
                             callback=lambda p, i, g: seen.append((i, g["cfg"]["act"])),
                             **kwargs)
    np.testing.assert_allclose(p["w"], TARGET["w"], atol=2e-2)
    assert abs(float(p["b"]) - 0.5) < 2e-2
    assert p["cfg"] == {"act": "tanh", "layers": 2}  # static leaves untouched
    assert seen[0] == (0, None) and len(seen) == kwargs["num_iters"]  # None grads for static
    assert p["w"].dtype == np.float64


def test_adam_matches_a_hand_written_step():
    g = np.array([0.5, -1.0])
    x = optim.adam(lambda x, i: g, np.array([1.0, 1.0]), num_iters=1, step_size=0.1)
    m, v = 0.1 * g, 0.001 * g * g
    expected = 1.0 - 0.1 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8)
    np.testing.assert_allclose(x, expected, rtol=1e-12)


def test_float32_parameters_stay_float32():
    p = optim.sgd(lambda p, i: dp.grad(lambda p: dnp.sum(p ** 2))(p),
                  np.ones(3, np.float32), num_iters=5)
    assert p.dtype == np.float32


def test_mismatched_gradient_structure_is_a_clear_error():
    with pytest.raises(ValueError, match="gradient has 1 leaves but the parameters have 2"):
        optim.adam(lambda p, i: [1.0], [1.0, 2.0], num_iters=1)


@pytest.mark.slow
def test_minimize_over_a_pytree():
    pytest.importorskip("scipy")
    from diffprog.scipy.optimize import minimize

    def rosen(p, scale):
        return scale * (p["y"] - p["x"] ** 2) ** 2 + (1 - p["x"]) ** 2

    for method in ("BFGS", "L-BFGS-B", "Newton-CG", "trust-ncg", "trust-krylov", "CG"):
        res = minimize(rosen, {"x": -1.2, "y": 1.0, "tag": "r"}, args=(100.0,), method=method,
                       options={"maxiter": 2000})
        assert res.success, (method, res.message)
        assert abs(res.x["x"] - 1.0) < 1e-3 and abs(res.x["y"] - 1.0) < 1e-3, method
        assert res.x["tag"] == "r" and type(res.x["x"]) is float
    seen = []
    res = minimize(lambda w: dnp.sum((w["a"] - 3.0) ** 2), {"a": np.zeros((2, 2))},
                   method="BFGS", callback=lambda x: seen.append(x["a"].shape), jit=True)
    np.testing.assert_allclose(res.x["a"], 3.0, atol=1e-6)
    assert seen and seen[0] == (2, 2)
    np.testing.assert_allclose(res.jac["a"], 0.0, atol=1e-5)
    with pytest.raises(TypeError, match="no float leaves"):
        minimize(lambda p: 0.0, {"n": 3})
