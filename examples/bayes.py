"""Gaussian-process regression in SciPy style, fit by maximum marginal likelihood.

The program is written as a SciPy user writes it — ``scipy.stats.multivariate_normal`` for the
marginal likelihood, ``scipy.stats.norm`` and ``gamma`` priors on the hyperparameters,
``scipy.optimize.minimize(..., jac=True)`` to fit — with one change: the stats names come from
``diffprog.scipy.stats``, so ``dp.value_and_grad`` gives the exact gradient that SciPy's
optimizer asks for. The data are noisy samples of a smooth function; the fitted GP's posterior
mean is then compared with the truth on a grid.

Run: python examples/bayes.py [--small]   (or DIFFPROG_EXAMPLE_SMALL=1)
"""

from __future__ import annotations

import os
import sys

import numpy as np
import scipy.optimize

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.scipy import stats


def kernel(params: dict, a, b):
    """Squared-exponential covariance with log-parametrized length scale and amplitude."""
    ell, amp = dnp.exp(params["log_ell"]), dnp.exp(params["log_amp"])
    d = a[:, None] - b[None, :]
    return amp ** 2 * dnp.exp(-0.5 * (d / ell) ** 2)


def neg_log_posterior(params: dict, x, y):
    """-log p(y | x, params) - log p(params): the marginal likelihood of the GP plus priors."""
    n = x.shape[0]
    noise = dnp.exp(params["log_noise"])
    cov = kernel(params, x, x) + (noise ** 2 + 1e-9) * np.eye(n)
    log_lik = stats.multivariate_normal.logpdf(y, mean=np.zeros(n), cov=cov)
    log_prior = (stats.norm.logpdf(params["log_ell"], loc=0.0, scale=1.0)
                 + stats.norm.logpdf(params["log_amp"], loc=0.0, scale=1.0)
                 + stats.gamma.logpdf(noise, 2.0, scale=0.1))
    return -(log_lik + log_prior)


def fit(x, y, start: dict) -> tuple[dict, object]:
    """Minimize the negative log posterior with SciPy's L-BFGS-B and diffprog's gradient."""
    names = list(start)
    objective = dp.value_and_grad(neg_log_posterior)

    def fun(theta):
        value, g = objective(dict(zip(names, map(float, theta))), x, y)
        return float(value), np.array([float(g[k]) for k in names])

    res = scipy.optimize.minimize(fun, np.array([start[k] for k in names]), jac=True,
                                  method="L-BFGS-B")
    return dict(zip(names, map(float, res.x))), res


def posterior_mean(params: dict, x, y, grid):
    noise = np.exp(params["log_noise"])
    k_xx = np.asarray(kernel(params, x, x)) + (noise ** 2 + 1e-9) * np.eye(len(x))
    return np.asarray(kernel(params, grid, x)) @ np.linalg.solve(k_xx, y)


def main(small: bool = False) -> dict:
    rng = np.random.default_rng(0)
    n = 20 if small else 60
    truth = lambda t: np.sin(2.0 * t) + 0.3 * t
    x = np.sort(rng.uniform(-3.0, 3.0, n))
    y = truth(x) + 0.1 * rng.normal(size=n)
    start = {"log_ell": 0.0, "log_amp": 0.0, "log_noise": np.log(0.5)}
    params, res = fit(x, y, start)
    grid = np.linspace(-2.5, 2.5, 50)
    err = float(np.max(np.abs(posterior_mean(params, x, y, grid) - truth(grid))))
    g = dp.grad(neg_log_posterior)(params, x, y)
    grad_norm = float(np.sqrt(sum(float(v) ** 2 for v in g.values())))
    print(f"fitted in {res.nit} L-BFGS-B iterations: length scale "
          f"{np.exp(params['log_ell']):.3f}, amplitude {np.exp(params['log_amp']):.3f}, "
          f"noise {np.exp(params['log_noise']):.3f}")
    print(f"-log posterior {res.fun:.4f}, |gradient| at the optimum {grad_norm:.2e}")
    print(f"posterior mean vs truth on [-2.5, 2.5]: max error {err:.3f}")
    return {"params": params, "nll": float(res.fun), "grad_norm": grad_norm, "max_err": err,
            "success": bool(res.success), "noise": float(np.exp(params["log_noise"]))}


if __name__ == "__main__":
    main(small="--small" in sys.argv or os.environ.get("DIFFPROG_EXAMPLE_SMALL") == "1")
