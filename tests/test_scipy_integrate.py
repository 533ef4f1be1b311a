"""diffprog.scipy.integrate.odeint: values against closed forms (exponential decay, y' = A y with
y(t) = expm(A t) y0) and against scipy.integrate.odeint; reverse-mode derivatives by the
adjoint method in y0, t and args (arrays and a pytree) against closed forms (the gradient in
A through diffprog.scipy.linalg.expm) and central differences (check_grads, order 1,
reverse), forward mode (the sensitivity equations) against the closed form and jacrev; jit;
second order refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate as si
import scipy.linalg as sl

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.scipy import linalg as dl
from diffprog.scipy.integrate import odeint
from diffprog.testing import check_grads

TIGHT = dict(rtol=1e-11, atol=1e-12)
A = np.array([[-0.5, 1.0, 0.0], [-1.0, -0.3, 0.2], [0.1, 0.0, -0.8]])
Y0 = np.array([1.0, -0.5, 2.0])
T = np.array([0.0, 0.3, 1.0, 1.7, 2.5])


def linear(y, t, a):
    return a @ y


def decay(y, t, k):
    return -k * y


def test_exponential_decay_values():
    t = np.linspace(0.0, 3.0, 7)
    ys = odeint(decay, np.array([2.0, -1.0]), t, args=(0.7,), **TIGHT)
    want = np.exp(-0.7 * t)[:, None] * np.array([2.0, -1.0])
    np.testing.assert_allclose(ys, want, rtol=1e-9, atol=1e-12)
    # SciPy's default tolerances hold at their level too
    ys = odeint(decay, np.array([2.0, -1.0]), t, args=(0.7,))
    np.testing.assert_allclose(ys, want, rtol=1e-6, atol=1e-8)


def test_linear_values_match_expm_and_scipy():
    ys = odeint(linear, Y0, T, args=(A,), **TIGHT)
    want = np.stack([sl.expm(A * s) @ Y0 for s in T])
    np.testing.assert_allclose(ys, want, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ys, si.odeint(linear, Y0, T, args=(A,), **TIGHT), rtol=1e-8,
                               atol=1e-10)
    assert ys.shape == (len(T), 3)


def test_call_forms():
    # scalar y0 (a vector of one, as SciPy), tfirst, decreasing times, an args scalar
    t = np.array([2.0, 1.0, 0.0])
    ys = odeint(lambda t, y, k: -k * y, 1.0, t, args=(0.5,), tfirst=True, **TIGHT)
    np.testing.assert_allclose(ys[:, 0], np.exp(-0.5 * (t - 2.0)), rtol=1e-9)
    want = si.odeint(lambda y, t: np.sin(t) * y, 1.0, t)
    np.testing.assert_allclose(odeint(lambda y, t: np.sin(t) * y, 1.0, t), want, rtol=1e-6)
    assert odeint(decay, np.ones(2, np.float32), [0.0, 1.0], args=(1.0,)).dtype == np.float32
    np.testing.assert_array_equal(odeint(decay, Y0, [0.5], args=(1.0,)), Y0[None])
    # a matrix state (SciPy needs a vector; here any shape)
    ys = odeint(lambda y, t: A[:2, :2] @ y, np.eye(2), [0.0, 1.0], **TIGHT)
    np.testing.assert_allclose(ys[1], sl.expm(A[:2, :2]), rtol=1e-9)
    with pytest.raises(ValueError, match="monotone"):
        odeint(decay, Y0, [0.0, 1.0, 0.5], args=(1.0,))
    with pytest.raises(RuntimeError, match="mxstep"):
        odeint(decay, Y0, [0.0, 100.0], args=(1.0,), mxstep=5)


def _loss_closed_form(a, y0, t, w):
    ys = dnp.stack([dl.expm(a * (s - t[0])) @ y0 for s in t])
    return dnp.sum(w * ys)


@pytest.mark.slow
def test_linear_gradients_against_closed_form():
    w = np.random.default_rng(0).standard_normal((len(T), 3))
    loss = lambda a, y0, t: dnp.sum(w * odeint(linear, y0, t, args=(a,), **TIGHT))
    g_a, g_y0, g_t = dp.grad(loss, argnums=(0, 1, 2))(A, Y0, T)
    want_a, want_y0 = dp.grad(_loss_closed_form, argnums=(0, 1))(A, Y0, T, w)
    np.testing.assert_allclose(g_a, want_a, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(g_y0, want_y0, rtol=1e-7, atol=1e-8)
    # dy(t_i)/dt_i = A y(t_i); moving t_0 shifts every later state by -expm(A(t_i - t_0)) A y0
    ys = np.stack([sl.expm(A * s) @ Y0 for s in T])
    want_t = np.einsum("ij,ij->i", w, ys @ A.T)
    want_t[0] = -sum(w[i] @ (sl.expm(A * T[i]) @ (A @ Y0)) for i in range(1, len(T)))
    np.testing.assert_allclose(g_t, want_t, rtol=1e-7, atol=1e-8)
    # SciPy's default tolerances: the gradient to ~1e-6 as well
    loss = lambda a, y0: dnp.sum(w * odeint(linear, y0, T, args=(a,)))
    for got, want in zip(dp.grad(loss, argnums=(0, 1))(A, Y0), (want_a, want_y0)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


def test_decay_gradient_closed_form():
    t = np.array([0.0, 0.5, 2.0])
    g = dp.grad(lambda k: dnp.sum(odeint(decay, np.array([1.5]), t, args=(k,), **TIGHT)))(0.8)
    np.testing.assert_allclose(g, np.sum(-t * 1.5 * np.exp(-0.8 * t)), rtol=1e-8)


def lotka_volterra(y, t, params):
    prey, pred = y[0], y[1]
    d_prey = params["alpha"] * prey - params["beta"] * prey * pred
    d_pred = params["delta"] * prey * pred - params["gamma"] * pred + 0.1 * dnp.sin(t)
    return dnp.stack([d_prey, d_pred])


PARAMS = {"alpha": np.float64(1.1), "beta": np.array(0.4), "delta": np.array(0.1),
          "gamma": np.array(0.4)}


def test_check_grads_nonlinear_pytree_args():
    t = np.array([0.0, 0.7, 1.5])
    f = lambda y0, t, p: odeint(lotka_volterra, y0, t, args=(p,), rtol=1e-12, atol=1e-12)
    check_grads(f, (np.array([2.0, 1.0]), t, PARAMS), order=1, modes=("rev",), eps=1e-4,
                atol=1e-6, rtol=1e-6)


def test_numerical_gradient_default_tolerances():
    y0 = np.array([2.0, 1.0])
    loss = lambda p: dnp.sum(odeint(lotka_volterra, y0, [0.0, 1.0], args=(p,))[-1] ** 2)
    g = dp.grad(loss)(PARAMS)
    num = dp.testing.numerical_grad(
        lambda p: float(np.sum(odeint(lotka_volterra, y0, [0.0, 1.0], args=(p,),
                                      rtol=1e-12, atol=1e-12)[-1] ** 2)), PARAMS, eps=1e-4)
    for key in PARAMS:
        np.testing.assert_allclose(g[key], num[key], rtol=1e-6)


@pytest.mark.slow
def test_jit():
    w = np.random.default_rng(1).standard_normal((len(T), 3))
    loss = lambda a, y0: dnp.sum(w * odeint(linear, y0, T, args=(a,), **TIGHT))
    np.testing.assert_allclose(dp.jit(lambda a, y0: odeint(linear, y0, T, args=(a,), **TIGHT))(
        A, Y0), odeint(linear, Y0, T, args=(A,), **TIGHT), rtol=1e-14)
    g = dp.grad(loss, argnums=(0, 1))(A, Y0)
    g_jit = dp.jit(dp.grad(loss, argnums=(0, 1)))(A, Y0)
    for x, y in zip(g, g_jit):
        np.testing.assert_allclose(x, y, rtol=1e-12)


def test_float32_and_integer_args():
    y0 = np.array([1.0, 2.0], np.float32)
    # an integer argument is static (no cotangent)
    g = dp.grad(lambda y0, k: dnp.sum(odeint(lambda y, t, k, n: -k * y * n / 3, y0,
                                             [0.0, 1.0], args=(k, 3))[-1]), argnums=(0, 1))
    gy, gk = g(y0, np.float32(0.5))
    assert gy.dtype == np.float32 and gk.dtype == np.float32
    np.testing.assert_allclose(gy, np.exp(-0.5) * np.ones(2), rtol=1e-6)
    np.testing.assert_allclose(gk, -3.0 * np.exp(-0.5), rtol=1e-6)


@pytest.mark.slow
def test_forward_mode():
    # the jvp in (A, y0, t) against the closed form's jvp (expm's Fréchet derivative)
    rng = np.random.default_rng(2)
    da, dy0, dt = rng.standard_normal(A.shape), rng.standard_normal(3), rng.standard_normal(5)
    f = lambda a, y0, t: odeint(linear, y0, t, args=(a,), **TIGHT)
    closed = lambda a, y0, t: dnp.stack([dl.expm(a * (s - t[0])) @ y0 for s in t])
    out, tangent = dp.jvp(f, (A, Y0, T), (da, dy0, dt))
    np.testing.assert_allclose(out, odeint(linear, Y0, T, args=(A,), **TIGHT), rtol=1e-14)
    _, want = dp.jvp(lambda a, y0: closed(a, y0, T), (A, Y0), (da, dy0))
    # y_i = expm(A (t_i - t_0)) y0: t_i moves it by A y_i dt_i, t_0 by -expm(A t_i) A y0 dt_0
    want[1:] += np.stack([A @ (sl.expm(A * s) @ Y0) for s in T[1:]]) * dt[1:, None]
    want[1:] -= np.stack([sl.expm(A * s) @ (A @ Y0) for s in T[1:]]) * dt[0]
    np.testing.assert_array_equal(tangent[0], dy0)
    np.testing.assert_allclose(tangent, want, rtol=1e-8, atol=1e-9)
    # jacfwd agrees with jacrev, also under jit
    t = np.array([0.0, 0.7, 1.5])
    g = lambda p: odeint(lotka_volterra, np.array([2.0, 1.0]), t, args=(p,), **TIGHT)
    fwd, rev = dp.jacfwd(g)(PARAMS), dp.jacrev(g)(PARAMS)
    for key in PARAMS:
        np.testing.assert_allclose(fwd[key], rev[key], rtol=1e-7, atol=1e-9)
    p_vec = np.array([1.1, 0.4, 0.1, 0.4])
    h = lambda p: odeint(lotka_volterra, np.array([2.0, 1.0]), t,
                         args=({"alpha": p[0], "beta": p[1], "delta": p[2], "gamma": p[3]},),
                         **TIGHT)
    np.testing.assert_allclose(dp.jit(dp.jacfwd(h))(p_vec), dp.jacfwd(h)(p_vec), rtol=1e-12)
    check_grads(lambda y0, t, p: odeint(lotka_volterra, y0, t, args=(p,), rtol=1e-12,
                                        atol=1e-12),
                (np.array([2.0, 1.0]), t, PARAMS), order=1, modes=("fwd",), eps=1e-4,
                atol=1e-6, rtol=1e-6)


def test_second_order_refused():
    f = lambda y0: odeint(decay, y0, [0.0, 1.0], args=(1.0,))
    with pytest.raises(TypeError, match="only first-order"):
        dp.hessian(lambda y0: dnp.sum(f(y0)))(Y0)
    with pytest.raises(TypeError, match="only first-order"):
        dp.grad(lambda y0: dnp.sum(dp.grad(lambda z: dnp.sum(f(z) ** 2))(y0)))(Y0)
    with pytest.raises(TypeError, match="only first-order"):
        dp.jacfwd(dp.jacfwd(lambda y0: f(y0)[-1]))(Y0)


def test_python_control_flow_in_func():
    # jit cannot trace a branch on a value: the backward pass runs func's vjp eagerly instead
    def relu_decay(y, t, k):
        return -k * y if y[0] > 0 else 0.0 * y

    g = dp.grad(lambda k: odeint(relu_decay, np.array([1.0]), [0.0, 1.0], args=(k,),
                                 **TIGHT)[1, 0])(0.5)
    np.testing.assert_allclose(g, -np.exp(-0.5), rtol=1e-8)


def test_closed_over_array_changes_between_calls():
    rate = np.array([1.0])
    loss = lambda y0: odeint(lambda y, t: -rate * y, y0, [0.0, 1.0], **TIGHT)[1, 0]
    np.testing.assert_allclose(dp.grad(loss)(np.array([1.0])), [np.exp(-1.0)], rtol=1e-8)
    rate[0] = 2.0
    np.testing.assert_allclose(dp.grad(loss)(np.array([1.0])), [np.exp(-2.0)], rtol=1e-8)


# -- coverage: odeint's primitives (for tests/test_prims.py's registry check) -----------------

COVERAGE = [(lambda y0, a: odeint(linear, y0, T[:3], args=(a,), **TIGHT), (Y0, A))]
# forward mode binds a primitive of its own (the sensitivity equations): a jvp's graph shows it
COVERAGE_FORWARD = [(lambda y0, a: dp.jvp(lambda y: odeint(linear, y, T[:3], args=(a,), **TIGHT),
                                          (y0,), (y0,))[1], (Y0, A))]


def test_coverage_exercises_every_primitive_of_the_module():
    from diffprog.core import Primitive
    from diffprog.scipy import integrate
    declared = {p.name for p in vars(integrate).values() if isinstance(p, Primitive)}
    seen = set()
    for fn, args in COVERAGE:
        seen.update(dp.make_graph(fn)(*args).primitive_names())
        seen.update(dp.make_graph(dp.grad(lambda *b, fn=fn: dnp.sum(fn(*b))))(*args)
                    .primitive_names())
        seen.update(dp.make_graph(lambda *b, fn=fn: dp.jvp(fn, b, b)[1])(*args)
                    .primitive_names())
    assert declared == {"scipy_odeint", "scipy_odeint_adjoint", "scipy_odeint_tangent"}
    assert declared <= seen


@pytest.mark.slow
def test_odeint_under_vmap():
    y0s = np.array([[1.0, 0.5, -0.2], [0.3, -1.0, 0.8]])
    ks = np.array([0.5, 1.5])

    def solve(y0, k):
        return odeint(decay, y0, T[:3], args=(k,), **TIGHT)

    batched = dp.vmap(solve)(y0s, ks)
    np.testing.assert_allclose(batched, np.stack([solve(y, k) for y, k in zip(y0s, ks)]),
                               rtol=1e-12)
    # per-example gradients, in y0 and in the unbatched times too
    loss = lambda y0, k, t: dnp.sum(odeint(decay, y0, t, args=(k,), **TIGHT)[-1] ** 2)
    g = dp.vmap(dp.grad(loss, argnums=(0, 1, 2)), in_axes=(0, 0, None))(y0s, ks, T[:3])
    for i in range(2):
        want = dp.grad(loss, argnums=(0, 1, 2))(y0s[i], ks[i], T[:3])
        for got, w in zip(g, want):
            np.testing.assert_allclose(got[i], w, rtol=1e-9, atol=1e-12)
    # forward mode under vmap
    jv = dp.vmap(lambda y0: dp.jvp(lambda y: solve(y, 0.5), (y0,), (np.ones(3),))[1])(y0s)
    np.testing.assert_allclose(jv[0], dp.jvp(lambda y: solve(y, 0.5), (y0s[0],),
                                             (np.ones(3),))[1], rtol=1e-9)
