"""Issue 11: the compiled path is as trustworthy as eager mode. Each test reproduces a silent
wrong answer, crash or unclear error found by trying jit as a user (and attacker) would."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp


@pytest.mark.parametrize("bad, phrase", [
    (np.ma.array([1.0, 2.0], mask=[False, True]), "masked array"),
    (np.matrix([[1.0, 2.0]]), "np.matrix"),
])
def test_masked_arrays_and_matrices_are_refused_eager_and_jit(bad, phrase):
    f = lambda x: dnp.sum(x * x)
    for transform in (dp.grad, dp.jit, lambda f: dp.jit(dp.grad(f))):
        with pytest.raises(TypeError, match=phrase):
            transform(f)(bad)
    with pytest.raises(TypeError, match=phrase):
        dp.jvp(f, (bad,), (np.ones((1, 2)),))
    # the next call works
    assert float(dp.grad(f)(np.array([1.0, 2.0]))[1]) == 4.0


def test_clear_errors_for_none_and_huge_ints():
    with pytest.raises(TypeError, match="argument 0 is None.*nothing to differentiate"):
        dp.grad(lambda x: x)(None)
    with pytest.raises(TypeError, match="too large for any float"):
        dp.grad(lambda x: x)(10 ** 400)


def test_integer_arrays_are_not_differentiated_under_jit():
    f = lambda x: dnp.sum(x * 2.0)
    ints = np.arange(3)
    with pytest.raises(TypeError, match="dtype int64"):
        dp.grad(f)(ints)
    with pytest.raises(TypeError, match="cannot be differentiated"):
        dp.jit(dp.grad(f))(ints)
    for jac in (dp.jacfwd, dp.jacrev):
        # no float leaf: the Jacobian has no block, as eagerly
        assert dp.jit(jac(f))(ints) is None and jac(f)(ints) is None


def test_constant_outputs_are_fresh_arrays_every_call():
    g = dp.jit(dp.grad(lambda x: dnp.sum(2 * x)))
    x = np.ones(3)
    first = g(x)
    first += 100
    np.testing.assert_array_equal(g(x), [2.0, 2.0, 2.0])
    assert g(x) is not g(x)


def test_jacrev_of_real_to_complex_refuses_to_drop_the_imaginary_part():
    f = lambda x: x * (1.0 + 2.0j)
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match="jacrev.*complex outputs.*use jacfwd"):
        dp.jacrev(f)(x)
    np.testing.assert_array_equal(dp.jacfwd(f)(x), np.diag([1.0 + 2.0j, 1.0 + 2.0j]))


def test_debug_nans_under_jit_and_per_thread():
    import threading
    f = lambda x: dnp.sum(dnp.sqrt(x - 1.0))
    x = np.array([0.0, 4.0])
    with dp.debug_nans():
        with pytest.raises(dp.NanError, match="sqrt"):
            dp.grad(f)(x)
        with pytest.raises(dp.NanError, match="sqrt"):
            dp.jit(f)(x)
        with pytest.raises(dp.NanError):
            dp.jit(dp.grad(f))(x)
        # another thread is not in the block: its calls run normally
        seen = []
        t = threading.Thread(target=lambda: seen.append(dp.jit(f)(x)))
        t.start()
        t.join()
        assert np.isnan(seen[0])
    assert np.isnan(dp.jit(f)(x))  # off again after the block
    assert not dp.config.debug_nans


def test_python_scalars_are_dynamic_and_weakly_typed():
    calls = []

    def step(x, t, lr):
        calls.append(1)
        return x - lr * t * x

    f = dp.jit(step)
    x = np.ones(2, np.float32)
    for t in range(50):
        out = f(x, t, 0.5)
    assert f.traces == 1 and len(calls) == 1
    assert out.dtype == np.float32  # a Python float does not promote float32 (NumPy 2, JAX)
    np.testing.assert_allclose(out, 1 - 0.5 * 49, rtol=1e-6)
    assert dp.jit(lambda x, s: x * (s * 2))(x, 2.0).dtype == np.float32
    assert dp.jit(lambda x, n: x + n)(np.ones(2, np.int8), 3).dtype == np.int8
    # a Python float alone reaches the program as an array
    np.testing.assert_array_equal(dp.jit(lambda x: dnp.reshape(x, (1,)))(1.3), [1.3])
    # control flow on a Python scalar needs static_argnums, and the error says so
    with pytest.raises(dp.ConcretizationError, match="static_argnums"):
        dp.jit(lambda x, n: x * sum(range(n)))(x, 3)
    assert dp.jit(lambda x, n: x * sum(range(n)), static_argnums=1)(x, 3)[0] == 3


def test_nan_static_values_do_not_retrace_forever():
    f = dp.jit(lambda x, s: x * 2.0, static_argnums=1)
    for _ in range(5):
        f(np.ones(2), float("nan"))
    assert f.traces == 1


def test_log_compiles_says_why(caplog):
    f = dp.jit(lambda x, s: x * 2.0, static_argnums=1)
    dp.config.log_compiles = True
    try:
        with caplog.at_level("WARNING", logger="diffprog"):
            f(np.ones(2), "a")
            f(np.ones(3), "a")
            f(np.ones(3, np.float32), "a")
            f(np.ones(3, np.float32), "b")
            f(np.ones(3, np.float32), "b")
    finally:
        dp.config.log_compiles = False
    reasons = [r.getMessage() for r in caplog.records]
    assert len(reasons) == 4
    for text, reason in zip(reasons, ["first call", "new shape", "new dtype",
                                      "new static value"]):
        assert reason in text


def test_keyword_arguments_and_static_argnames():
    def loss(x, scale=1.0, mode="sum"):
        y = x * x * scale
        return dnp.sum(y) if mode == "sum" else dnp.mean(y)

    x = np.array([1.0, 2.0])
    assert float(dp.jit(loss)(x, scale=2.0)) == 10.0
    np.testing.assert_array_equal(dp.grad(loss)(x, scale=2.0), [4.0, 8.0])
    np.testing.assert_array_equal(dp.jit(dp.grad(loss))(x, scale=2.0), [4.0, 8.0])
    g = dp.jit(loss, static_argnames="mode")
    assert float(g(x, scale=2.0, mode="mean")) == 5.0
    assert float(g(x, scale=3.0, mode="mean")) == 7.5
    assert g.traces == 1
    assert float(g(x, mode="sum")) == 5.0 and g.traces == 2
    np.testing.assert_array_equal(dp.jacrev(loss)(x, scale=2.0), [4.0, 8.0])


def test_a_jitted_function_calling_itself_raises_instead_of_deadlocking():
    @dp.jit
    def f(x):
        return f(np.ones(2)) + x  # a concrete call with the same signature, while tracing

    with pytest.raises(RecursionError, match="calls itself"):
        f(np.ones(2))

    @dp.jit
    def g(x):
        return h(np.ones(3)).sum() + x  # another jitted function, compiled while g traces

    h = dp.jit(lambda x: x * 2.0)
    np.testing.assert_array_equal(g(np.ones(2)), [7.0, 7.0])


def test_grad_of_jit_with_a_float_static_argument():
    f = dp.jit(lambda x, s: dnp.sum(x * x * s) if s > 1 else dnp.sum(x), static_argnums=1)
    assert float(dp.grad(f)(3.0, 2.0)) == 12.0
    assert float(dp.grad(f)(3.0, 0.5)) == 1.0
    np.testing.assert_allclose(dp.hessian(f)(np.array([3.0]), 2.0), [[4.0]])


def test_custom_vjp_whose_fwd_calls_the_function_itself_under_jit():
    @dp.custom_vjp
    def f(x):
        return dnp.sin(x)

    def fwd(x):
        return f(x), dnp.cos(x)  # JAX's documented pattern

    f.defvjp(fwd, lambda c, g: (c * g,))
    x = np.array([0.5, 1.0])
    expected = np.cos(x)
    np.testing.assert_allclose(dp.grad(lambda x: dnp.sum(f(x)))(x), expected)
    np.testing.assert_allclose(dp.jit(dp.grad(lambda x: dnp.sum(f(x))))(x), expected)
    np.testing.assert_allclose(dp.grad(dp.jit(lambda x: dnp.sum(f(x))))(x), expected)
    np.testing.assert_allclose(dp.jit(f)(x), np.sin(x))


@pytest.mark.parametrize("call, phrase", [
    (lambda x: round(x), "round"),
    (lambda x: x.fill(0.0), "fill"),
    (lambda x: x.flat, "flat"),
    (lambda x: x.view(np.int64), "view"),
])
def test_clear_errors_for_in_place_and_python_conversions(call, phrase):
    for transform in (dp.grad, dp.jit):
        with pytest.raises(TypeError, match=phrase):
            transform(lambda x: dnp.sum(call(x)))(np.ones(2))
