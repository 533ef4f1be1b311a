"""A tour of diffprog: what `make demo` runs. Each section prints what it shows.

Run: python examples/tour.py [--small]   (or DIFFPROG_EXAMPLE_SMALL=1: fewer timing repeats)
More examples beside this file: mlp.py, physics.py, newton.py, implicit.py, graph.py.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

import numpy as np

import diffprog as dp
import diffprog.numpy as dnp


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


def main(small: bool | None = None) -> dict:
    if small is None:
        small = "--small" in sys.argv or os.environ.get("DIFFPROG_EXAMPLE_SMALL") == "1"
    rng = np.random.default_rng(0)
    results: dict = {}

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
    results["same_structure"] = same

    section("2. plain NumPy code, differentiated through NumPy's dispatch")

    def plain(w):
        return np.sum(np.sin(w) * np.exp(-w ** 2)) + np.max(w) ** 2

    w = np.array([0.1, -0.4, 0.8])
    g_plain, g_num = dp.grad(plain)(w), dp.numerical_grad(plain, w)
    print("grad of plain NumPy code:", g_plain)
    print("numerical gradient:      ", g_num)
    results["plain_numpy_error"] = float(np.max(np.abs(g_plain - g_num)))

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
    results["jvp_vjp_agree"] = bool(np.isclose(tangent["sq"], cot[0]))

    section("5. derivatives of any order, checked against central differences")
    d = dnp.sin
    for k in range(1, 5):
        d = dp.grad(d)
        print(f"d^{k}/dx^{k} sin(x) at 0.5 = {float(d(0.5)):+.12f}")
    dp.check_grads(loss, (params, x, y), order=2)
    print("check_grads(loss, order=2, modes=fwd+rev): passed")
    results["check_grads"] = True

    section("6. Hessians, and Jacobians by jacfwd (forward) and jacrev (reverse)")

    def energy(q):
        return dnp.sum(dnp.cos(q[1:] - q[:-1])) + 0.5 * dnp.sum(q * q)

    q = np.array([0.3, -0.2, 0.9, 0.4])
    H = dp.hessian(energy)(q)
    print("hessian(energy)(q) =\n", np.round(H, 4))
    # The closed form: a tridiagonal matrix from the cosine coupling, plus the identity.
    c = np.cos(np.diff(q))
    H_exact = np.eye(4) - np.diag(np.r_[c, 0] + np.r_[0, c]) + np.diag(c, 1) + np.diag(c, -1)
    print("max difference to the closed form:", float(np.max(np.abs(H - H_exact))))

    def polar(v):  # R^2 -> R^3
        r, phi = v[0], v[1]
        return dnp.stack([r * dnp.cos(phi), r * dnp.sin(phi), r * r])

    v = np.array([2.0, 0.5])
    J_fwd, J_rev = dp.jacfwd(polar)(v), dp.jacrev(polar)(v)
    print("jacfwd(polar)(v) = jacrev(polar)(v) =\n", np.round(J_fwd, 4))
    print("jacfwd: one jvp per input (2 here); jacrev: one vjp per output (3 here)")
    direction = np.array([1.0, 0.0, 0.0, -1.0])
    (hv,) = dp.hvp(energy, (q,), (direction,))
    print("hvp(energy, (q,), (d,)) = H @ d without forming H:", np.round(hv, 4))
    results["hessian_error"] = float(np.max(np.abs(H - H_exact)))
    results["jac_fwd_rev_diff"] = float(np.max(np.abs(J_fwd - J_rev)))
    results["hvp_error"] = float(np.max(np.abs(hv - H @ direction)))

    section("7. the gradient graph (the extended computation graph)")

    def small(x):
        return dnp.sum(dnp.tanh(x) * x)

    graph = dp.make_graph(dp.grad(small))(np.ones(3))
    print(graph)
    results["graph_nodes"] = len(graph)

    section("8. timing against NumPy (eager, 10 elements, 100-op chain)")

    def chain(m, x):
        steps = (m.sin, lambda v: v * 1.01, lambda v: v + 0.5, m.tanh,
                 lambda v: v * v, lambda v: -v, m.exp)
        for i in range(100):
            x = steps[i % 7](x)
        return m.sum(x)

    z = np.linspace(0.1, 1.0, 10)
    grad_chain = dp.grad(lambda v: chain(dnp, v))
    rows = [("numpy forward only", lambda: chain(np, z)),
            ("diffprog grad", lambda: grad_chain(z))]
    if hasattr(dp, "jit"):  # one compiled graph instead of 200 eager primitive calls
        jit_grad_chain = dp.jit(grad_chain)
        rows.append(("diffprog jit(grad)", lambda: jit_grad_chain(z)))
    print(f"{'system':<22}{'median µs/call':>16}{'first call µs':>16}")
    repeats, number = (3, 5) if small else (7, 20)
    for name, fn in rows:
        t0 = time.perf_counter()
        fn()  # the first call also compiles, for jit
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times.append((time.perf_counter() - t0) / number)
        print(f"{name:<22}{np.median(times) * 1e6:>16.0f}{first * 1e6:>16.0f}")
        results[f"time {name}"] = float(np.median(times))
    print("(benchmarks/ compares with autograd, jax and torch: make bench)")
    return results


if __name__ == "__main__":
    main()
