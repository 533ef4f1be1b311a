"""Newton's method with ``dp.hessian`` on the Rosenbrock function, from the classic start
(-1.2, 1).

Each step solves ``H p = -g`` with the exact Hessian (forward over reverse mode) and backtracks
along ``p`` until the function decreases enough (Armijo), falling back to the gradient direction
where the Hessian is not positive definite. The minimum is (1, 1), where the function is 0.

Run: python examples/newton.py [--small]   (or DIFFPROG_EXAMPLE_SMALL=1)
"""

from __future__ import annotations

import os
import sys

import numpy as np

import diffprog as dp


def rosenbrock(v, a: float = 1.0, b: float = 100.0):
    """(a - x)^2 + b (y - x^2)^2; minimum 0 at (a, a^2)."""
    x, y = v[0], v[1]
    return (a - x) ** 2 + b * (y - x ** 2) ** 2


def newton(f, x0: np.ndarray, tol: float = 1e-10, max_steps: int = 100) -> tuple:
    """Minimize ``f`` from ``x0``; returns (x, steps, history of (x, f, |g|))."""
    grad, hess = dp.grad(f), dp.hessian(f)
    x = np.asarray(x0, dtype=float)
    history = []
    for k in range(max_steps + 1):
        fx, g = float(f(x)), grad(x)
        history.append((x.copy(), fx, float(np.linalg.norm(g))))
        if np.linalg.norm(g) < tol:
            return x, k, history
        H = hess(x)
        try:
            np.linalg.cholesky(H)  # positive definite: the Newton direction descends
            p = np.linalg.solve(H, -g)
        except np.linalg.LinAlgError:
            p = -g
        t = 1.0
        while float(f(x + t * p)) > fx + 1e-4 * t * float(g @ p) and t > 1e-12:
            t *= 0.5
        x = x + t * p
    return x, max_steps, history


def main(small: bool | None = None) -> dict:
    if small is None:
        small = "--small" in sys.argv or os.environ.get("DIFFPROG_EXAMPLE_SMALL") == "1"
    x0 = np.array([-1.2, 1.0])
    print("Newton's method on Rosenbrock's function from (-1.2, 1), Hessians by dp.hessian")
    print(f"the Hessian at the start:\n{dp.hessian(rosenbrock)(x0)}")
    x, steps, history = newton(rosenbrock, x0)
    for k, (xk, fk, gk) in enumerate(history):
        print(f"  step {k:2d}: x = ({xk[0]:+.10f}, {xk[1]:+.10f})  f = {fk:.3e}  |grad| = "
              f"{gk:.3e}")
    error = float(np.max(np.abs(x - 1.0)))
    print(f"converged in {steps} steps to ({x[0]:.12f}, {x[1]:.12f}); distance to the minimum "
          f"(1, 1): {error:.1e}")
    return {"steps": steps, "x": x, "error": error, "f": float(rosenbrock(x))}


if __name__ == "__main__":
    main()
