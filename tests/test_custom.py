"""custom_vjp, custom_jvp, stop_gradient and checkpoint."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp


@dp.custom_jvp
def log1pexp(x):
    # stable primal: log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
    return dnp.maximum(x, 0.0) + dnp.log1p(dnp.exp(-dnp.abs(x)))


@log1pexp.defjvp
def _log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (0.5 * (dnp.tanh(0.5 * x) + 1.0))  # t * sigmoid(x), stable


def sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def test_stable_log1pexp_gradients_at_extremes():
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    np.testing.assert_allclose(log1pexp(x), [0.0, np.log1p(np.exp(-30.0)), np.log(2.0),
                                             30.0 + np.log1p(np.exp(-30.0)), 1000.0])
    g = dp.grad(lambda x: dnp.sum(log1pexp(x)))(x)
    np.testing.assert_allclose(g, sigmoid(x))
    h = dp.grad(lambda x: dnp.sum(dp.grad(lambda y: dnp.sum(log1pexp(y)))(x)))(x)
    np.testing.assert_allclose(h, sigmoid(x) * (1 - sigmoid(x)), atol=1e-300)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(h))


def test_custom_jvp_both_modes_and_higher_order():
    x = np.array([-2.0, 0.3, 1.5])
    dp.check_grads(lambda x: log1pexp(x) * x, (x,), order=3)
    _, t = dp.jvp(log1pexp, (x,), (np.ones(3),))
    np.testing.assert_allclose(t, sigmoid(x))
    # the rule, not the body, is used: a deliberately different rule shows through
    @dp.custom_jvp
    def f(x):
        return dnp.sin(x)
    f.defjvp(lambda p, t: (f(p[0]), 2.0 * t[0]))
    assert dp.grad(f)(0.3) == 2.0
    assert dp.jvp(f, (0.3,), (1.0,))[1] == 2.0


@dp.custom_vjp
def clip_gradient(x, lo, hi):
    return x


def _clip_fwd(x, lo, hi):
    return x, (lo, hi)


def _clip_bwd(res, ct):
    lo, hi = res
    return dnp.minimum(dnp.maximum(ct, lo), hi), None, None


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def test_gradient_clipping_identity():
    f = lambda x: dnp.sum(clip_gradient(x, -1.0, 1.0) * np.array([0.5, 3.0, -7.0]))
    np.testing.assert_allclose(dp.grad(f)(np.ones(3)), [0.5, 1.0, -1.0])
    np.testing.assert_array_equal(clip_gradient(np.arange(3.0), -1.0, 1.0), np.arange(3.0))


def newton_root(a, iters=50):
    """The real root of x^3 + a x - 1 = 0 by Newton's method on concrete values."""
    x = np.ones_like(a)
    for _ in range(iters):
        x = x - (x ** 3 + a * x - 1.0) / (3 * x ** 2 + a)
    return x


@dp.custom_vjp
def root(a):
    return newton_root(a)


def _root_fwd(a):
    x = newton_root(a)
    return x, (x, a)


def _root_bwd(res, ct):
    # implicit function theorem: F(x, a) = x^3 + a x - 1 = 0  =>  dx/da = -x / (3x^2 + a)
    x, a = res
    return (ct * (-x / (3.0 * x ** 2 + a)),)


root.defvjp(_root_fwd, _root_bwd)


def test_implicit_function_through_the_theorem_not_the_iterations():
    a = np.array([0.5, 1.0, 2.0])
    x = root(a)
    np.testing.assert_allclose(x ** 3 + a * x - 1.0, 0.0, atol=1e-14)
    g = dp.grad(lambda a: dnp.sum(root(a)))(a)
    np.testing.assert_allclose(g, -x / (3 * x ** 2 + a), rtol=1e-12)
    # and against central differences of the solver itself
    np.testing.assert_allclose(g, dp.numerical_grad(lambda a: np.sum(newton_root(a)), a),
                               rtol=1e-7)
    graph = dp.make_graph(lambda a: dnp.sum(root(a)))(a)
    assert len(graph) == 2  # one node for the whole solve, one for the sum


def test_custom_vjp_nondiff_argnums_and_residuals():
    def f(n, x):
        return x ** n

    def fwd(n, x):
        return x ** n, x

    def bwd(n, x, ct):
        return (ct * n * x ** (n - 1),)

    power = dp.custom_vjp(f, nondiff_argnums=(0,))
    power.defvjp(fwd, bwd)
    x = np.array([1.5, 2.0])
    np.testing.assert_allclose(dp.grad(lambda x: dnp.sum(power(3, x)))(x), 3 * x ** 2)
    dp.check_grads(lambda x: power(3, x), (x,), order=2, modes=("rev",))


def test_custom_vjp_under_forward_mode_raises_and_recovers():
    @dp.custom_vjp
    def f(x):
        return dnp.sin(x)
    f.defvjp(lambda x: (dnp.sin(x), dnp.cos(x)), lambda c, g: (g * c,))
    with pytest.raises(TypeError, match=r"f is a custom_vjp function.*forward mode.*"
                                        r"custom_jvp"):
        dp.jvp(f, (0.5,), (1.0,))
    with pytest.raises(TypeError, match="custom_vjp function"):
        dp.jacfwd(f)(np.ones(2))
    np.testing.assert_allclose(dp.grad(f)(0.5), np.cos(0.5))
    # forward over reverse differentiates the fwd and bwd code, so it works
    np.testing.assert_allclose(dp.jvp(dp.grad(f), (0.5,), (1.0,))[1], -np.sin(0.5))
    np.testing.assert_allclose(dp.grad(dp.grad(f))(0.5), -np.sin(0.5))


def test_custom_vjp_bwd_wrong_structure():
    @dp.custom_vjp
    def f(x, y):
        return x * y
    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (g * r[1],))
    with pytest.raises(TypeError, match=r"bwd of f must return a tuple with one cotangent per "
                                        r"differentiable argument \(2\), got tuple of length 1"):
        dp.grad(f)(1.0, 2.0)
    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (g * r[1], np.ones(3)))
    with pytest.raises(ValueError, match=r"cotangent 1 has shape \(3,\) but its argument has "
                                         r"shape \(\)"):
        dp.grad(f, argnums=1)(1.0, 2.0)
    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (g * r[1], g * r[0]))
    assert dp.grad(f, argnums=(0, 1))(1.0, 2.0) == (2.0, 1.0)


def test_stop_gradient_both_modes_all_orders():
    f = lambda x: x ** 2 * dp.stop_gradient(x ** 3)
    x = 1.5
    assert dp.grad(f)(x) == 2 * x * x ** 3
    assert dp.jvp(f, (x,), (1.0,))[1] == 2 * x * x ** 3
    assert dp.grad(dp.grad(f))(x) == 2 * x ** 3
    assert dp.grad(lambda x: dp.grad(dp.grad(f))(x))(x) == 0.0
    assert dp.grad(lambda x: dnp.sum(dp.stop_gradient({"a": x})["a"]))(np.ones(2)).sum() == 0
    np.testing.assert_array_equal(dp.stop_gradient(np.arange(3.0)), np.arange(3.0))


def test_checkpoint_same_gradients_any_order():
    step = dp.checkpoint(lambda x, w: dnp.tanh(dnp.sin(x) * w + 0.5))
    w = np.array([0.5, -1.2])

    def f(x):
        for _ in range(3):
            x = step(x, w)
        return x

    def g(x):
        for _ in range(3):
            x = dnp.tanh(dnp.sin(x) * w + 0.5)
        return x
    x = np.array([0.2, 0.9])
    dp.check_grads(f, (x,), order=2)
    np.testing.assert_allclose(dp.jacrev(f)(x), dp.jacrev(g)(x), rtol=1e-14)
    np.testing.assert_allclose(dp.hessian(lambda x: dnp.sum(f(x)))(x),
                               dp.hessian(lambda x: dnp.sum(g(x)))(x), rtol=1e-12)
    assert dp.make_graph(f)(x).primitive_names() == ["checkpoint[<lambda>]"] * 3


def chain_step(x):
    # four ops whose derivatives read their inputs: the plain sweep keeps four arrays a step
    return dnp.sin(dnp.cos(dnp.sin(dnp.cos(x))))


def peak_memory_of_grad(step, x):
    def loss(x):
        for _ in range(100):
            x = step(x)
        return dnp.sum(x)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    g = dp.grad(loss)(x)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return g, peak


@pytest.mark.slow
def test_checkpoint_memory_100_steps_of_a_million_elements():
    x = np.linspace(-1.0, 1.0, 1_000_000).astype(np.float32)
    g_plain, peak_plain = peak_memory_of_grad(chain_step, x)
    g_ckpt, peak_ckpt = peak_memory_of_grad(dp.checkpoint(chain_step), x)
    np.testing.assert_array_equal(g_ckpt, g_plain)
    assert peak_ckpt <= peak_plain / 3, (peak_ckpt / 1e6, peak_plain / 1e6)
