"""A tour of diffprog: what `make demo` runs. Each section prints what it shows.

Run: python examples/tour.py
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

import diffprog as dp
import diffprog.numpy as dnp


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def main() -> None:
    rng = np.random.default_rng(0)

    section("1. grad over nested parameters")
    params = {"layers": [{"W": rng.standard_normal((3, 4)) * 0.5, "b": np.zeros(4)},
                         {"W": rng.standard_normal((4, 1)) * 0.5, "b": np.zeros(1)}],
              "cfg": {"scale": 0.5, "activation": "tanh"}}
    x = rng.standard_normal((8, 3))
    y = rng.standard_normal((8, 1))

    def loss(p, x, y):
        h = x
        for layer in p["layers"]:
            h = dnp.tanh(h @ layer["W"] + layer["b"])
        return dnp.mean((h - y) ** 2) * p["cfg"]["scale"]

    value, g = dp.value_and_grad(loss)(params, x, y)
    print(f"loss = {float(value):.6f}")
    same = dp.tree_structure(g, is_leaf=lambda v: v is None) == dp.tree_structure(params)
    print("gradient has the structure of params:", same)
    print("g['layers'][0]['W'] =\n", np.round(g["layers"][0]["W"], 4))
    print("g['cfg']['activation'] =", g["cfg"]["activation"], "(strings are static)")

    section("2. plain NumPy code, differentiated through NumPy's dispatch")

    def plain(w):
        return np.sum(np.sin(w) * np.exp(-w ** 2)) + np.max(w) ** 2

    w = np.array([0.1, -0.4, 0.8])
    print("grad of plain NumPy code:", dp.grad(plain)(w))
    print("numerical gradient:      ", dp.numerical_grad(plain, w))

    section("3. a dataclass state")

    @dataclasses.dataclass
    class Projectile:
        pos: np.ndarray
        vel: np.ndarray
        drag: float
        name: str = "ball"

    def height_after(s: Projectile, steps: int = 50, dt: float = 0.02):
        pos, vel = s.pos, s.vel
        for _ in range(steps):
            speed = dnp.sqrt(dnp.sum(vel * vel))
            acc = -s.drag * speed * vel + np.array([0.0, -9.81])
            pos, vel = pos + dt * vel, vel + dt * acc
        return pos[1]

    s = Projectile(np.zeros(2), np.array([3.0, 4.0]), 0.1)
    gs = dp.grad(height_after)(s)
    print(f"height after 1 s: {float(height_after(s)):.4f}")
    print("d height / d state:", gs)

    section("4. jvp (forward) and vjp (reverse) on the same function")

    def f(v):
        return {"sq": dnp.sum(v ** 2), "sin": dnp.sin(v)}

    v = np.array([0.5, 1.0, -2.0])
    direction = np.array([1.0, 0.0, 0.0])
    _, tangent = dp.jvp(f, (v,), (direction,))
    print("jvp, the derivative along e0:", tangent)
    _, vjp_fn = dp.vjp(f, v)
    (cot,) = vjp_fn({"sq": 1.0, "sin": np.zeros(3)})
    print("vjp, the gradient of 'sq':    ", cot)

    section("5. derivatives of any order, checked against central differences")
    d = dnp.sin
    for k in range(1, 5):
        d = dp.grad(d)
        print(f"d^{k}/dx^{k} sin(x) at 0.5 = {float(d(0.5)):+.12f}")
    dp.check_grads(loss, (params, x, y), order=2)
    print("check_grads(loss, order=2, modes=fwd+rev): passed")

    section("6. the gradient graph (the extended computation graph)")

    def small(x):
        return dnp.sum(dnp.tanh(x) * x)

    print(dp.make_graph(dp.grad(small))(np.ones(3)))

    section("7. timing against NumPy (eager, 10 elements, 100-op chain)")

    def chain(m, x):
        steps = (m.sin, lambda v: v * 1.01, lambda v: v + 0.5, m.tanh,
                 lambda v: v * v, lambda v: -v, m.exp)
        for i in range(100):
            x = steps[i % 7](x)
        return m.sum(x)

    z = np.linspace(0.1, 1.0, 10)
    rows = [("numpy forward only", lambda: chain(np, z)),
            ("diffprog grad", lambda: dp.grad(lambda v: chain(dnp, v))(z))]
    print(f"{'system':<22}{'median µs/call':>16}")
    for name, fn in rows:
        fn()
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(20):
                fn()
            times.append((time.perf_counter() - t0) / 20)
        print(f"{name:<22}{np.median(times) * 1e6:>16.0f}")
    print("(benchmarks/ compares with autograd, jax and torch: make bench)")


if __name__ == "__main__":
    main()
