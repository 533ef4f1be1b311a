"""Issue 12 §8: known wrong answers, each fixed and pinned here."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.testing import check_grads

g = dp.grad


@pytest.mark.parametrize("power", [lambda x, n: x ** n, lambda x, n: dnp.power(x, n),
                                   lambda x, n: np.power(x, n)])
def test_every_derivative_of_x_to_the_n_at_zero_is_exact(power):
    for n in range(0, 5):
        f = lambda x, n=n: power(x, float(n))
        d = f
        for k in range(1, 6):
            d = g(d)
            # d^k/dx^k x^n at 0 is n! when k == n, else 0
            expected = float(np.prod(np.arange(1, n + 1))) if k == n else 0.0
            assert float(d(0.0)) == expected, (n, k)
    assert float(g(lambda x: x ** 0)(0.0)) == 0.0
    assert float(g(lambda x: x ** 0.5)(0.0)) == np.inf  # the true slope


def test_hessian_of_pairwise_squared_distances_is_finite():
    x = np.array([1.0, 2.0, 4.0])
    f = lambda x: dnp.sum((x[:, None] - x[None, :]) ** 2)
    h = dp.hessian(f)(x)
    np.testing.assert_array_equal(h, 4 * (3 * np.eye(3) - np.ones((3, 3))))
    check_grads(f, (x,), order=2, modes=("fwd", "rev"))
    check_grads(lambda x: x ** 3.0, (np.array([0.0, 1.5]),), order=2, modes=("fwd", "rev"))


def test_power_rules_keep_float32():
    x = np.array([0.0, 1.5], np.float32)
    for n in (2.0, 2, np.float32(3.0)):
        assert dp.grad(lambda x, n=n: dnp.sum(x ** n))(x).dtype == np.float32
        assert dp.jit(dp.grad(lambda x, n=n: dnp.sum(x ** n)))(x).dtype == np.float32
        assert dp.jvp(lambda x, n=n: x ** n, (x,), (x,))[1].dtype == np.float32
