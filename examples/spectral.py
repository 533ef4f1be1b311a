"""Recover the initial condition of a viscous Burgers flow from its final state, by gradient
descent through a pseudo-spectral solver written with ``numpy.fft``.

``u_t + u u_x = nu u_xx`` on the periodic interval [0, 2 pi) is solved in Fourier space
(``rfft``/``irfft``): the viscous term exactly, by an integrating factor, and the nonlinear
term ``-(u^2 / 2)_x`` pseudo-spectrally (squared on the grid, 2/3-rule dealiased), with
fourth-order Runge-Kutta (Trefethen, *Spectral Methods in MATLAB*, program 27). The solver is
plain NumPy code (``np.fft.rfft``, ``np.fft.irfft``, complex arithmetic): on traced values the
calls dispatch to ``diffprog.numpy.fft``, whose transforms are linear primitives with exact
transposes, so ``dp.grad`` differentiates through every step and ``dp.jit`` compiles the whole
complex graph.

The unknown initial condition has a few Fourier modes, ``u0(x) = sum_k a_k cos kx + b_k sin
kx``; the data are the final state ``u(T)`` on the grid, computed from known coefficients. SciPy's
BFGS, given the jitted value and gradient, recovers the coefficients from a zero start; the
gradient is checked against central differences first.

Run: python examples/spectral.py [--small]   (or DIFFPROG_EXAMPLE_SMALL=1)
     python examples/spectral.py --bench      (the loss's gradient: eager vs jit's executors)
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import scipy.optimize

import diffprog as dp

TRUE_COEFFS = np.array([0.8, -0.3, 0.25,   # a_1..a_3 (cosines)
                        0.5, 0.4, -0.2])   # b_1..b_3 (sines)


class Burgers:
    """The grid, wavenumbers and integrating factors of the solver for ``n`` points, viscosity
    ``nu`` and time step ``dt``."""

    def __init__(self, n: int = 64, nu: float = 0.05, dt: float = 0.02) -> None:
        self.n, self.nu, self.dt = n, nu, dt
        self.x = 2 * np.pi * np.arange(n) / n
        k = np.arange(n // 2 + 1.0)                      # rfft's wavenumbers
        self.e = np.exp(-nu * k ** 2 * dt / 2)           # the viscous term over half a step
        self.e2 = self.e ** 2
        dealias = k < n / 3                              # the 2/3 rule
        self.g = -0.5j * dt * k * dealias                # -(1/2) d/dx, times dt

    def nonlinear(self, v):
        """dt times the Fourier coefficients of -(u^2 / 2)_x for the spectrum ``v``."""
        u = np.fft.irfft(v, n=self.n)
        return self.g * np.fft.rfft(u * u)

    def step(self, v):
        """One integrating-factor RK4 step of the spectrum ``v``."""
        e, e2 = self.e, self.e2
        a = self.nonlinear(v)
        b = self.nonlinear(e * (v + a / 2))
        c = self.nonlinear(e * v + b / 2)
        d = self.nonlinear(e2 * v + e * c)
        return e2 * v + (e2 * a + 2 * e * (b + c) + d) / 6

    def solve(self, u0, steps: int):
        """u(steps * dt) on the grid, from u0 on the grid."""
        v = np.fft.rfft(u0)
        for _ in range(steps):
            v = self.step(v)
        return np.fft.irfft(v, n=self.n)

    def initial(self, coeffs):
        """u0 on the grid from the cosine and sine coefficients (k = 1, 2, ...)."""
        m = len(coeffs) // 2
        k = np.arange(1, m + 1)
        cos, sin = np.cos(np.outer(k, self.x)), np.sin(np.outer(k, self.x))
        return coeffs[:m] @ cos + coeffs[m:] @ sin


def main(small: bool | None = None) -> dict:
    if small is None:
        small = "--small" in sys.argv or os.environ.get("DIFFPROG_EXAMPLE_SMALL") == "1"
    solver = Burgers(n=32 if small else 64)
    steps = 25 if small else 50                           # T = steps * dt
    observed = solver.solve(solver.initial(TRUE_COEFFS), steps)  # plain NumPy: the data
    print(f"viscous Burgers, nu = {solver.nu}, {solver.n} points, {steps} IF-RK4 steps to "
          f"T = {steps * solver.dt:g}: {4 * steps + 1} rfft/irfft pairs per solve")

    def loss(coeffs):
        r = solver.solve(solver.initial(coeffs), steps) - observed
        return np.sum(r * r) / solver.n

    value_and_grad = dp.jit(dp.value_and_grad(loss))

    # the gradient through the solver against central differences, at a point off the answer
    probe = TRUE_COEFFS + np.array([0.1, -0.05, 0.02, -0.1, 0.05, 0.03])
    _, g = value_and_grad(probe)
    g_num = dp.numerical_grad(loss, probe)
    grad_error = float(np.max(np.abs(g - g_num)) / np.max(np.abs(g_num)))
    print(f"gradient at a probe point vs central differences: relative error {grad_error:.1e}")
    eager_g = dp.grad(loss)(probe)
    jit_vs_eager = float(np.max(np.abs(g - eager_g)))
    print(f"jit(value_and_grad) vs eager grad: max difference {jit_vs_eager:.1e}")

    start = time.perf_counter()
    result = scipy.optimize.minimize(
        lambda c: tuple(np.asarray(v, float) for v in value_and_grad(c)), np.zeros(6),
        jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 200})
    seconds = time.perf_counter() - start
    coeff_error = float(np.max(np.abs(result.x - TRUE_COEFFS)))
    print(f"BFGS from u0 = 0: {result.nit} iterations, {result.nfev} solves with gradients "
          f"in {seconds:.2f} s; final misfit {result.fun:.2e}")
    print("  recovered a_k, b_k:", np.array2string(result.x, precision=6))
    print("  true      a_k, b_k:", np.array2string(TRUE_COEFFS, precision=6))
    print(f"  max coefficient error {coeff_error:.1e}")
    return {"coeff_error": coeff_error, "grad_error": grad_error, "misfit": float(result.fun),
            "jit_vs_eager": jit_vs_eager, "iterations": int(result.nit),
            "traces": value_and_grad.traces, "small": small, "seconds": seconds}


def bench(repeats: int = 7) -> dict:
    """Median seconds per call of the full-size loss and its gradient: NumPy alone, eager
    grad, and jit(grad) on the NumPy executor, on the numba executor (whose fused kernels
    take the real-valued clusters; complex-valued nodes are never clustered, so they run
    through NumPy), and with jit's default tiers once its background compilation is done."""
    from diffprog.kernels import fuse

    solver, steps = Burgers(64), 50
    observed = solver.solve(solver.initial(TRUE_COEFFS), steps)

    def loss(coeffs):
        r = solver.solve(solver.initial(coeffs), steps) - observed
        return np.sum(r * r) / solver.n

    c = TRUE_COEFFS + 0.05

    def per_call(f):
        times = []
        for _ in range(repeats):
            start, calls = time.perf_counter(), 0
            while time.perf_counter() - start < 0.2:
                f(c)
                calls += 1
            times.append((time.perf_counter() - start) / calls)
        return float(np.median(times))

    want = dp.grad(loss)(c)
    rows = {"numpy forward only": per_call(loss), "diffprog eager grad": per_call(dp.grad(loss))}
    for executor in ("numpy", "numba"):
        kernels, fallbacks = fuse.stats["kernels"], fuse.stats["fallbacks"]
        fast = dp.jit(dp.grad(loss), executor=executor)
        start = time.perf_counter()
        assert np.max(np.abs(fast(c) - want)) <= 1e-12 * np.max(np.abs(want))
        first = time.perf_counter() - start
        rows[f"jit(grad), {executor} executor"] = per_call(fast)
        print(f"jit(grad) on the {executor} executor: first call {first:.2f} s, fused kernels "
              f"+{fuse.stats['kernels'] - kernels}, clusters numba could not compile "
              f"+{fuse.stats['fallbacks'] - fallbacks}")
    fast = dp.jit(dp.grad(loss))
    for _ in range(30):  # past COMPILE_AFTER; then wait for the background trials to settle
        fast(c)
    time.sleep(5.0)
    rows["jit(grad), default tiers"] = per_call(fast)
    (program,) = fast.cache.values()
    for name, seconds in rows.items():
        print(f"{name:32s} {1e3 * seconds:8.2f} ms")
    print(f"(default tiers kept: {program.tier})")
    return rows


if __name__ == "__main__":
    bench() if "--bench" in sys.argv else main()
