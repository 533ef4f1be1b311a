"""Control flow as primitives (diffprog/control.py): values against plain Python loops,
derivatives against central differences, vmap against per-example calls, jit, graph shape and
every error."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.testing import check_grads

RNG = np.random.default_rng(0)
W = RNG.normal(size=(3, 3)) * 0.5
H0 = RNG.normal(size=3)
XS = RNG.normal(size=(6, 3))


def rnn_step(c, x):
    h, k = c
    h = dnp.tanh(W @ h + x)
    return (h, k + 1), {"y": dnp.sum(h ** 2), "k": k}


def rnn_scan(h, xs, reverse=False, checkpoint_every=None):
    (h, k), ys = dp.scan(rnn_step, (h, 0), xs, reverse=reverse,
                         checkpoint_every=checkpoint_every)
    return dnp.sum(h) + dnp.sum(ys["y"] * np.arange(1.0, len(xs) + 1)), k, ys["k"]


def rnn_loop(h, xs, reverse=False):
    c, ys = (h, 0), [None] * len(xs)
    order = range(len(xs) - 1, -1, -1) if reverse else range(len(xs))
    for i in order:
        c, y = rnn_step(c, xs[i])
        ys[i] = y
    h, k = c
    y = dnp.stack([v["y"] for v in ys])
    return dnp.sum(h) + dnp.sum(y * np.arange(1.0, len(xs) + 1)), k, np.array([v["k"] for v in ys])


def loss(h, xs, reverse=False, checkpoint_every=None):
    return rnn_scan(h, xs, reverse, checkpoint_every)[0]


def loss_loop(h, xs, reverse=False):
    return rnn_loop(h, xs, reverse)[0]


# -- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_values_match_the_python_loop(reverse):
    got = rnn_scan(H0, XS, reverse)
    want = rnn_loop(H0, XS, reverse)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    assert got[1] == want[1] == 6
    np.testing.assert_array_equal(got[2], want[2])
    # under jit (the body compiled once, the loop run by the primitive)
    jitted = dp.jit(lambda h, xs: rnn_scan(h, xs, reverse))(H0, XS)
    np.testing.assert_allclose(jitted[0], want[0], rtol=1e-12)
    np.testing.assert_array_equal(jitted[2], want[2])


def test_scan_without_xs_and_empty():
    c, ys = dp.scan(lambda c, _: (c * 2.0, c), 1.0, None, length=4)
    assert float(c) == 16.0 and ys.tolist() == [1.0, 2.0, 4.0, 8.0]
    c, ys = dp.scan(lambda c, x: (c + x, c * x), 1.0, np.zeros((0,)))
    assert float(c) == 1.0 and ys.shape == (0,)
    g = dp.grad(lambda x: dp.scan(lambda c, x: (c + x, c * x), x, np.zeros((0,)))[0])(2.0)
    assert float(g) == 1.0


def test_cond_and_switch_values():
    f = lambda x: dp.cond(x > 0, lambda v: v * 2.0, lambda v: -v, x)
    assert float(f(3.0)) == 6.0 and float(f(-3.0)) == 3.0
    assert float(dp.jit(f)(-3.0)) == 3.0 and float(dp.jit(f)(3.0)) == 6.0
    fs = [lambda x: x + 1.0, lambda x: x * 10.0, lambda x: x - 5.0]
    for i in (-2, 0, 1, 2, 3, 9):  # clamped like JAX
        want = fs[min(max(i, 0), 2)](2.0)
        assert float(dp.switch(i, fs, 2.0)) == want
        assert float(dp.jit(lambda i, x: dp.switch(i, fs, x))(i, 2.0)) == want


def test_while_and_fori_values():
    f = lambda x: dp.while_loop(lambda v: v[0] < 10.0, lambda v: (v[0] * 2.0 + 0.1, v[1] + 1),
                                (x, 0))
    for x in (0.3, 1.5, 20.0):
        v, n = x, 0
        while v < 10.0:
            v, n = v * 2.0 + 0.1, n + 1
        got = f(x)
        assert float(got[0]) == v and int(got[1]) == n
        # jit: one program, the trip count depends on the data
        got = dp.jit(f)(x)
        assert float(got[0]) == v and int(got[1]) == n
    body = lambda i, v: v * dnp.sin(v + i)
    v = 0.7
    for i in range(2, 7):
        v = body(i, v)
    np.testing.assert_allclose(dp.fori_loop(2, 7, body, 0.7), v)
    np.testing.assert_allclose(dp.jit(lambda lo, hi, x: dp.fori_loop(lo, hi, body, x))(2, 7, 0.7),
                               v)


# -- derivatives ----------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("checkpoint_every", [None, 1, 2, 4, 6, 10])
def test_scan_grads(reverse, checkpoint_every):
    g = dp.grad(loss, argnums=(0, 1))(H0, XS, reverse, checkpoint_every)
    want = dp.grad(loss_loop, argnums=(0, 1))(H0, XS, reverse)
    for a, b in zip(g, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    check_grads(lambda h, xs: loss(h, xs, reverse, checkpoint_every), (H0, XS), order=2,
                modes=("fwd", "rev"))


def test_scan_closure_over_traced_values_is_lifted():
    def f(w, xs):
        return dp.scan(lambda c, x: (dnp.tanh(w * c + x), c * w), 0.5, xs)[0]

    def f_loop(w, xs):
        c = 0.5
        for x in xs:
            c = dnp.tanh(w * c + x)
        return c
    xs = RNG.normal(size=5)
    np.testing.assert_allclose(dp.grad(f)(0.8, xs), dp.grad(f_loop)(0.8, xs), rtol=1e-12)
    np.testing.assert_allclose(dp.jit(dp.grad(f))(0.8, xs), dp.grad(f_loop)(0.8, xs),
                               rtol=1e-12)
    check_grads(f, (0.8, xs), order=2, modes=("fwd", "rev"))
    # the closed-over value is an operand of the one scan node
    g = dp.make_graph(f)(0.8, xs)
    assert g.primitive_names() == ["scan"]
    assert g.nodes[0].parents[0] == 0


def test_hessian_of_a_scan():
    f = lambda h: loss(h, XS)
    np.testing.assert_allclose(dp.hessian(f)(H0), dp.hessian(lambda h: loss_loop(h, XS))(H0),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dp.jacrev(dp.grad(f))(H0), dp.hessian(f)(H0), rtol=1e-9,
                               atol=1e-12)


@pytest.mark.slow
def test_cond_grads_only_the_taken_branch():
    def noisy(v):
        return dnp.cos(v) * 3.0
    f = lambda x, y: dp.cond(x > 0, lambda a, b: dnp.sin(a) * b, lambda a, b: noisy(a) + b, x, y)
    for x in (0.5, -0.5):
        check_grads(f, (x, 1.3), order=2, modes=("fwd", "rev"))
    g = dp.grad(f, argnums=(0, 1))(0.5, 1.3)
    np.testing.assert_allclose(g, (np.cos(0.5) * 1.3, np.sin(0.5)))
    g = dp.grad(f, argnums=(0, 1))(-0.5, 1.3)
    np.testing.assert_allclose(g, (-3.0 * np.sin(-0.5), 1.0))
    fs = [lambda v: v ** 3, lambda v: dnp.exp(v), lambda v: v * 2.0]
    for i in range(3):
        check_grads(lambda v, i=i: dp.switch(i, fs, v), (0.7,), order=2, modes=("fwd", "rev"))


@pytest.mark.slow
def test_while_loop_reverse_mode():
    f = lambda x, a: dp.while_loop(lambda v: v < 10.0, lambda v: v * v * a + 0.1, x)

    def f_loop(x, a):
        v = x
        while v < 10.0:
            v = v * v * a + 0.1
        return v
    for x in (1.5, 2.5):
        np.testing.assert_allclose(dp.grad(f, argnums=(0, 1))(x, 1.1),
                                   dp.grad(f_loop, argnums=(0, 1))(x, 1.1), rtol=1e-12)
        np.testing.assert_allclose(dp.jit(dp.grad(f, argnums=(0, 1)))(x, 1.1),
                                   dp.grad(f_loop, argnums=(0, 1))(x, 1.1), rtol=1e-12)
        check_grads(f, (x, 1.1), order=2, modes=("fwd", "rev"), eps=1e-7)
    np.testing.assert_allclose(dp.hessian(f)(1.5, 1.1), dp.hessian(f_loop)(1.5, 1.1),
                               rtol=1e-9)
    np.testing.assert_allclose(dp.grad(dp.grad(f))(1.5, 1.1), dp.hessian(f_loop)(1.5, 1.1),
                               rtol=1e-9)


def test_fori_loop_grads():
    body = lambda i, v: v * dnp.sin(v + i)
    check_grads(lambda x: dp.fori_loop(0, 4, body, x), (0.7,), order=2, modes=("fwd", "rev"))
    # traced bounds (a while loop underneath): reverse mode too
    f = dp.jit(lambda hi, x: dp.grad(lambda y: dp.fori_loop(0, hi, body, y))(x))
    np.testing.assert_allclose(f(4, 0.7), dp.grad(lambda y: dp.fori_loop(0, 4, body, y))(0.7),
                               rtol=1e-12)


# -- vmap ---------------------------------------------------------------------------------------


def test_vmap_scan_batched_xs_and_init():
    hs = RNG.normal(size=(4, 3))
    xss = RNG.normal(size=(4, 6, 3))
    got = dp.vmap(lambda h, xs: loss(h, xs))(hs, xss)
    np.testing.assert_allclose(got, [loss_loop(h, xs) for h, xs in zip(hs, xss)], rtol=1e-12)
    got = dp.vmap(lambda h: loss(h, XS))(hs)  # xs not batched
    np.testing.assert_allclose(got, [loss_loop(h, XS) for h in hs], rtol=1e-12)
    got = dp.vmap(dp.grad(loss), in_axes=(None, 0))(H0, xss)  # per-example gradients
    want = [dp.grad(loss_loop)(H0, xs) for xs in xss]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    got = dp.jit(dp.vmap(lambda h, xs: loss(h, xs)))(hs, xss)
    np.testing.assert_allclose(got, [loss_loop(h, xs) for h, xs in zip(hs, xss)], rtol=1e-12)


def test_vmap_cond_batched_predicate_runs_both_branches():
    f = lambda x: dp.cond(x > 0, dnp.sin, dnp.cos, x)
    xs = np.array([0.5, -0.5, 2.0])
    np.testing.assert_allclose(dp.vmap(f)(xs), [np.sin(.5), np.cos(-.5), np.sin(2.0)])
    np.testing.assert_allclose(dp.vmap(dp.grad(f))(xs),
                               [np.cos(.5), -np.sin(-.5), np.cos(2.0)])
    g = lambda i, x: dp.switch(i, [dnp.sin, dnp.cos, dnp.exp], x)
    idx = np.array([0, 2, 5, -1])
    np.testing.assert_allclose(dp.vmap(g)(idx, np.full(4, 0.3)),
                               [np.sin(.3), np.exp(.3), np.exp(.3), np.sin(.3)])
    # an unbatched predicate with batched operands: one cond of batched branches
    np.testing.assert_allclose(dp.vmap(lambda x: dp.cond(True, dnp.sin, dnp.cos, x))(xs),
                               np.sin(xs))


@pytest.mark.slow
def test_vmap_while_loop_batched_predicate():
    f = lambda x: dp.while_loop(lambda v: v < 10.0, lambda v: v * 2.0 + 0.1, x)
    xs = np.array([0.3, 1.5, 20.0, 9.0])
    want = [float(f(x)) for x in xs]
    np.testing.assert_allclose(dp.vmap(f)(xs), want)
    np.testing.assert_allclose(dp.jit(dp.vmap(f))(xs), want)
    np.testing.assert_allclose(dp.vmap(dp.grad(f))(xs), [float(dp.grad(f)(x)) for x in xs])
    np.testing.assert_allclose(dp.jacrev(dp.vmap(f))(xs),
                               np.diag([float(dp.grad(f)(x)) for x in xs]))


# -- graphs, jit ----------------------------------------------------------------------


@pytest.mark.slow
def test_make_graph_does_not_grow_with_the_number_of_steps():
    def f(h, xs):
        return dnp.sum(dp.scan(lambda c, x: (dnp.tanh(c * 0.9 + x), c), h, xs)[1])
    small = dp.make_graph(f)(np.ones(2), np.ones((10, 2)))
    large = dp.make_graph(f)(np.ones(2), np.ones((10_000, 2)))
    assert len(small) == len(large) == 2
    assert small.primitive_names() == large.primitive_names() == ["scan", "reduce_sum"]
    grad_small = dp.make_graph(dp.grad(f))(np.ones(2), np.ones((10, 2)))
    grad_large = dp.make_graph(dp.grad(f))(np.ones(2), np.ones((10_000, 2)))
    assert len(grad_small) == len(grad_large)
    text = str(small)
    assert "scan[body=graph(carry0:float64[2], x0:float64[2]) {" in text
    assert "      v2:float64[2] = add(v1, x0)" in text  # the body, nested and indented


def test_jit_compiles_the_body_once_and_runs_the_loop():
    traces = []

    def step(c, x):
        traces.append(1)
        return c + x, c
    f = dp.jit(lambda xs: dp.scan(step, 0.0, xs))
    for n in (3, 5):
        c, ys = f(np.arange(float(n)))
        assert float(c) == sum(range(n)) and ys.tolist() == list(np.cumsum([0.0] + list(
            range(n - 1))))
    assert len(traces) == 2  # once per jit signature (the length is part of the shape)
    count = dp.jit(lambda x: dp.while_loop(lambda c: c[0] > 1.0,
                                           lambda c: (c[0] / 2.0, c[1] + 1), (x, 0))[1])
    assert [int(count(x)) for x in (1.0, 8.0, 1000.0)] == [0, 3, 10]
    assert count.traces == 1


def test_eager_scan_runs_python():
    seen = []

    def step(c, x):
        seen.append(type(c))
        return c + x, c
    dp.scan(step, np.zeros(2), np.ones((3, 2)))
    assert seen == [np.ndarray] * 3  # plain values, not tracers


# -- errors ---------------------------------------------------------------------------------------


def test_carry_that_changes_shape_or_dtype_raises():
    with pytest.raises(TypeError, match=r"carry\[1\] is float64\[2\] but float64\[\] is"):
        dp.scan(lambda c, x: ((c[0], c[1] + x), None), (1.0, 0.0), np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"carry is float32\[\] but float64\[\]"):
        dp.jit(lambda x: dp.scan(lambda c, v: (c.astype(np.float32), None), x,
                                 np.ones(3)))(1.0)
    with pytest.raises(TypeError, match=r"output carry\['a'\] is float64\[\] but int64\[\]"):
        dp.while_loop(lambda c: c["a"] < 3, lambda c: {"a": c["a"] + 0.5}, {"a": 0})
    with pytest.raises(TypeError, match="structure"):
        dp.scan(lambda c, x: ((c, c), None), 1.0, np.ones(2))


def test_branch_mismatch_names_the_branch_and_the_leaf():
    with pytest.raises(TypeError, match=r"branch 1 returns out\['b'\] as float64\[2\] but "
                                        r"branch 0 returns it as float64\[\]"):
        dp.jit(lambda x: dp.cond(x > 0, lambda v: {"a": v, "b": v * np.ones(2)},
                                 lambda v: {"a": v, "b": v}, x))(1.0)
    with pytest.raises(TypeError, match="branch 2 returns a pytree of structure"):
        dp.grad(lambda x: dp.switch(1, [lambda v: v, lambda v: v, lambda v: (v, v)], x))(1.0)


def test_predicate_must_be_a_boolean_scalar():
    with pytest.raises(TypeError, match="scalar boolean predicate, got float64"):
        dp.cond(1.0, lambda: 1.0, lambda: 2.0)
    with pytest.raises(TypeError, match=r"scalar boolean predicate, got bool\[2\]"):
        dp.cond(np.array([True, False]), lambda: 1.0, lambda: 2.0)
    with pytest.raises(TypeError, match=r"cond_fun: needs a scalar boolean predicate, got "
                                        r"bool\[2\]"):
        dp.jit(lambda x: dp.while_loop(lambda v: v < 1.0, lambda v: v + 1.0, x))(np.zeros(2))
    with pytest.raises(TypeError, match="scalar integer index, got float64"):
        dp.switch(1.0, [lambda: 1.0], )


def test_other_errors():
    with pytest.raises(ValueError, match="different leading sizes"):
        dp.scan(lambda c, x: (c, None), 0.0, (np.ones(2), np.ones(3)))
    with pytest.raises(ValueError, match="pass length="):
        dp.scan(lambda c, x: (c, None), 0.0, None)
    with pytest.raises(TypeError, match="must return a pair"):
        dp.scan(lambda c, x: c, 0.0, np.ones(2))
    with pytest.raises(ValueError, match="checkpoint_every"):
        dp.scan(lambda c, x: (c, None), 0.0, np.ones(2), checkpoint_every=0)
    with pytest.raises(TypeError, match="lower must be a scalar integer"):
        dp.fori_loop(0.0, 3, lambda i, v: v, 1.0)


# -- more compositions ---------------------------------------------------------------------------


@pytest.mark.slow
def test_nested_scans_and_checkpointed_segments_differentiate_to_second_order():
    def f(w, xs):
        def outer(c, x):
            inner = dp.scan(lambda d, y: (dnp.sin(d * w + y), d), c, dnp.stack([x, x * 2.0]))[0]
            return inner, dnp.sum(inner)
        c, ys = dp.scan(outer, np.ones(2), xs, checkpoint_every=2)
        return dnp.sum(c) + dnp.sum(ys ** 2)

    def f_loop(w, xs):
        c, total = np.ones(2), 0.0
        for x in xs:
            for y in (x, x * 2.0):
                c = dnp.sin(c * w + y)
            total = total + dnp.sum(c) ** 2
        return dnp.sum(c) + total
    xs = RNG.normal(size=(5, 2))
    np.testing.assert_allclose(f(0.7, xs), f_loop(0.7, xs), rtol=1e-12)
    for a, b in zip(dp.grad(f, argnums=(0, 1))(0.7, xs), dp.grad(f_loop, argnums=(0, 1))(0.7, xs)):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    np.testing.assert_allclose(dp.grad(dp.grad(f))(0.7, xs), dp.grad(dp.grad(f_loop))(0.7, xs),
                               rtol=1e-9)
    np.testing.assert_allclose(dp.jit(dp.grad(f))(0.7, xs), dp.grad(f_loop)(0.7, xs),
                               rtol=1e-10)


def test_forward_mode_jacobians_and_linearize():
    f = lambda xs: loss(H0, xs)
    want = dp.grad(lambda xs: loss_loop(H0, xs))(XS)
    np.testing.assert_allclose(dp.jacfwd(f)(XS), want, rtol=1e-10)
    out, lin = dp.linearize(f, XS)
    v = RNG.normal(size=XS.shape)
    np.testing.assert_allclose(lin(v), np.sum(want * v), rtol=1e-10)
    g = lambda x: dp.while_loop(lambda v: v < 10.0, lambda v: v * v + 0.1, x)
    np.testing.assert_allclose(dp.jacfwd(g)(1.5), dp.grad(g)(1.5))
    c = lambda x: dp.cond(dnp.sum(x) > 0, lambda v: v * v, lambda v: -v, x)
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(dp.jacfwd(c)(x), np.diag(2 * x))
    np.testing.assert_allclose(dp.jacrev(c)(-x), -np.eye(2))


def test_grad_of_vmap_of_while_and_cond():
    f = lambda x: dp.while_loop(lambda v: v < 10.0, lambda v: v * 2.0 + 0.1, x)
    xs = np.array([0.3, 1.5, 20.0])
    np.testing.assert_allclose(dp.grad(lambda xs: dnp.sum(dp.vmap(f)(xs)))(xs),
                               [float(dp.grad(f)(x)) for x in xs])
    c = lambda x: dp.cond(x > 0, dnp.sin, dnp.cos, x)
    np.testing.assert_allclose(dp.grad(lambda xs: dnp.sum(dp.vmap(c)(xs)))(xs),
                               [float(dp.grad(c)(x)) for x in xs])
    np.testing.assert_allclose(dp.jit(dp.vmap(c))(xs), [float(c(x)) for x in xs])


def test_pytrees_and_float32_through_cond_and_scan():
    ops = {"a": np.float32(1.5), "b": np.ones(2, np.float32)}
    out = dp.jit(lambda o: dp.cond(o["a"] > 1, lambda o: (o["b"] * o["a"], o["a"]),
                                   lambda o: (o["b"], o["a"] * 2), o))(ops)
    assert out[0].dtype == np.float32 and out[1].dtype == np.float32
    np.testing.assert_allclose(out[0], [1.5, 1.5])
    g = dp.grad(lambda x: dnp.sum(dp.scan(lambda c, v: (c * v, c), x, np.full(3, 2.0,
                                                                           np.float32))[1]))
    got = g(np.ones(2, np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [7.0, 7.0])  # 1 + 2 + 4


def test_a_body_closing_over_an_escaped_tracer_raises():
    leaked = []
    dp.grad(lambda x: leaked.append(x) or x * 2.0)(1.0)
    with pytest.raises(RuntimeError, match="escaped"):
        dp.jit(lambda xs: dp.scan(lambda c, x: (c + x * leaked[0], None), 0.0, xs))(np.ones(2))


def test_vmap_with_only_the_predicate_or_the_bound_batched():
    fs = [lambda x: x + 1.0, lambda x: x * 10.0]
    np.testing.assert_allclose(dp.vmap(lambda i: dp.switch(i, fs, 2.0))(np.array([0, 1, 1])),
                               [3.0, 20.0, 20.0])
    f = lambda p, x: dp.cond(p, lambda v: v * 2.0, lambda v: v, x)
    np.testing.assert_allclose(dp.vmap(f, in_axes=(0, None))(np.array([True, False]), 3.0),
                               [6.0, 3.0])
    g = lambda n, x: dp.fori_loop(0, n, lambda i, v: v + i, x)  # a batched trip count
    np.testing.assert_allclose(dp.vmap(g)(np.array([1, 3, 5]), np.zeros(3)), [0.0, 3.0, 10.0])


def test_a_scan_that_saved_nothing_is_still_differentiated():
    from diffprog import control
    xs = np.arange(1.0, 4.0)

    def f(w):  # bound with save=0 under grad: the vjp recomputes the carries
        c, ys, _ = control._scan_bind(lambda c, x: ([c[0] * w + x[0]], [c[0]]),
                                      [np.float64(1.0)], [xs], 3, save=0)
        return c[0] + dnp.sum(ys[0])

    def g(w):
        c, ys = dp.scan(lambda c, x: (c * w + x, c), 1.0, xs)
        return c + dnp.sum(ys)
    np.testing.assert_allclose(dp.grad(f)(0.7), dp.grad(g)(0.7), rtol=1e-14)
    np.testing.assert_allclose(dp.grad(dp.grad(f))(0.7), dp.grad(dp.grad(g))(0.7), rtol=1e-14)


# -- custom rules inside bodies ------------------------------------------------------------------


@dp.custom_jvp
def safe_sqrt(x):
    return dnp.sqrt(x)


def _safe_sqrt_jvp(p, t):
    (x,), (tx,) = p, t
    pos = x > 0
    return safe_sqrt(x), dnp.where(pos, tx / (2.0 * dnp.sqrt(dnp.where(pos, x, 1.0))), 0.0)


safe_sqrt.defjvp(_safe_sqrt_jvp)


@dp.custom_jvp
def safe_norm(v):
    return dnp.sqrt(dnp.sum(v * v))


def _safe_norm_jvp(p, t):
    (v,), (tv,) = p, t
    n = safe_norm(v)
    return n, dnp.where(n > 0, dnp.sum(v * tv) / dnp.where(n > 0, n, 1.0), 0.0)


safe_norm.defjvp(_safe_norm_jvp)

XS0 = np.array([0.0, 1.0, 4.0, 0.0, 2.25])  # zeros: where sqrt's own derivative is infinite


def sqrt_scan(w, xs):
    return dp.scan(lambda c, x: (c + safe_sqrt(w * x) * c, None), 1.0, xs)[0]


def sqrt_loop(w, xs):
    c = 1.0
    for x in xs:
        c = c + safe_sqrt(w * x) * c
    return c


@pytest.mark.slow
def test_custom_jvp_in_a_scan_body_uses_its_rule():
    # inlined, the body's d sqrt(w x) at x = 0 is inf * 0 = NaN; the rule says 0
    w = 1.3
    for order in (dp.grad, lambda f: dp.grad(dp.grad(f))):
        want = order(sqrt_loop)(w, XS0)
        assert np.isfinite(want)
        np.testing.assert_allclose(order(sqrt_scan)(w, XS0), want, rtol=1e-12)
        np.testing.assert_allclose(dp.jit(order(sqrt_scan))(w, XS0), want, rtol=1e-12)
    _, t = dp.jvp(lambda v: sqrt_scan(v, XS0), (w,), (1.0,))
    np.testing.assert_allclose(t, dp.grad(sqrt_loop)(w, XS0), rtol=1e-12)
    _, t2 = dp.jvp(dp.grad(lambda v: sqrt_scan(v, XS0)), (w,), (1.0,))
    np.testing.assert_allclose(t2, dp.grad(dp.grad(sqrt_loop))(w, XS0), rtol=1e-12)
    ws = np.array([0.5, 1.3, 2.0])
    np.testing.assert_allclose(dp.vmap(dp.grad(sqrt_scan), in_axes=(0, None))(ws, XS0),
                               [dp.grad(sqrt_loop)(v, XS0) for v in ws], rtol=1e-12)
    np.testing.assert_allclose(dp.grad(lambda v: dnp.sum(dp.vmap(sqrt_scan, in_axes=(0, None))(
        v, XS0)))(ws), [dp.grad(sqrt_loop)(v, XS0) for v in ws], rtol=1e-12)
    # the body graph holds the custom rule as one node
    g = dp.make_graph(sqrt_scan)(w, XS0)
    assert "custom_jvp[safe_sqrt]" in str(g)


@pytest.mark.slow
def test_custom_jvp_safe_norm_in_scan_cond_and_while_bodies():
    vs = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])

    def by_scan(a):
        return dp.scan(lambda c, v: (c + safe_norm(a * v + c * 0.0), None), 0.0, vs)[0]

    def by_loop(a):
        return sum(safe_norm(a * v) for v in vs)

    for order in (dp.grad, dp.hessian):
        want = order(by_loop)(2.0)
        assert np.all(np.isfinite(want))
        np.testing.assert_allclose(order(by_scan)(2.0), want, rtol=1e-12)
    f = lambda a, p: dp.cond(p, lambda b: safe_norm(b * vs[0]), lambda b: b, a)
    assert float(dp.grad(f)(2.0, True)) == 0.0  # inlined: NaN
    np.testing.assert_allclose(dp.vmap(dp.grad(f))(np.array([2.0, 2.0]), np.array([True, False])),
                               [0.0, 1.0])
    h = lambda a: dp.fori_loop(0, 3, lambda i, c: c + safe_norm(a * dnp.take(vs, i, axis=0)), 0.0)
    np.testing.assert_allclose(dp.grad(h)(2.0), dp.grad(by_loop)(2.0), rtol=1e-12)
    _, t = dp.jvp(h, (2.0,), (1.0,))
    np.testing.assert_allclose(t, dp.grad(by_loop)(2.0), rtol=1e-12)
    n = np.int64(3)
    wl = lambda a: dp.while_loop(
        lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] + safe_norm(a * dnp.take(vs, c[0], axis=0))),
        (np.int64(0), 0.0))[1]
    np.testing.assert_allclose(dp.jit(dp.grad(wl))(2.0), dp.grad(by_loop)(2.0), rtol=1e-12)


def test_custom_vjp_and_checkpoint_in_a_scan_body_use_their_rules():
    @dp.custom_vjp
    def clip_gradient(x):
        return x
    clip_gradient.defvjp(lambda x: (x, None), lambda res, ct: (dnp.clip(ct, -1.0, 1.0),))

    def f(w, xs):  # inlined, the clip would be lost: the gradient would be 5 * sum(xs)
        return dp.scan(lambda c, x: (c + clip_gradient(w * x) * 5.0, None), 0.0, xs)[0]
    xs = np.array([1.0, 0.1, 3.0])
    want = float(np.sum(xs))  # each step's cotangent 5 clipped to 1, times x
    np.testing.assert_allclose(dp.grad(f)(2.0, xs), want, rtol=1e-14)
    np.testing.assert_allclose(dp.jit(dp.grad(f))(2.0, xs), want, rtol=1e-14)
    np.testing.assert_allclose(dp.vmap(dp.grad(f), in_axes=(0, None))(np.array([1.0, 2.0]), xs),
                               [want, want], rtol=1e-14)

    @dp.custom_vjp
    def twice_grad_sin(x):
        return dnp.sin(x)
    # fwd calls the function itself (JAX's usual pattern); the rule doubles the derivative
    twice_grad_sin.defvjp(lambda x: (twice_grad_sin(x), dnp.cos(x)),
                          lambda cos_x, ct: (2.0 * cos_x * ct,))
    s = lambda w: dp.scan(lambda c, x: (c + twice_grad_sin(w * x), None), 0.0, xs)[0]
    want = 2.0 * np.sum(np.cos(1.5 * xs) * xs)
    np.testing.assert_allclose(dp.grad(s)(1.5), want, rtol=1e-14)
    np.testing.assert_allclose(dp.jit(dp.grad(s))(1.5), want, rtol=1e-14)
    step = dp.checkpoint(lambda c, x: dnp.sin(c * x))
    g = lambda w, xs: dp.scan(lambda c, x: (step(c, x) + w, None), 0.5, xs)[0]
    np.testing.assert_allclose(dp.grad(g)(0.3, xs), dp.grad(_loop, argnums=0)(0.3, xs, step),
                               rtol=1e-12)
    assert "checkpoint[" in str(dp.make_graph(g)(0.3, xs))


def _loop(w, xs, step):
    c = 0.5
    for x in xs:
        c = step(c, x) + w
    return c


# -- symbolic zero cotangents --------------------------------------------------------------------


def test_reverse_mode_passes_none_for_unread_outputs_of_a_symbolic_zeros_primitive():
    from diffprog.core import Primitive
    seen = []

    def vjp(cts, outs, x, *, symbolic):
        seen.append(tuple(c is None for c in cts))
        return (sum(c for c in cts if c is not None),)

    def batch(args, dims, *, symbolic):
        return two(args[0], symbolic=symbolic), (dims[0], dims[0])

    def two(x, symbolic):
        return prims[symbolic](x, symbolic=symbolic)
    prims = {s: Primitive("two", lambda x, symbolic: (x * 1.0, x * 1.0), multiple_results=True,
                          vjp=vjp, register=False, batch=batch,
                          zero_cotangents="symbolic" if s else "zeros") for s in (True, False)}
    for symbolic, want in ((True, (False, True)), (False, (False, False))):
        seen.clear()
        assert float(dp.grad(lambda x, s=symbolic: two(x, s)[0] * 3.0)(2.0)) == 3.0
        assert seen == [want]


def test_scan_reverse_mode_without_cotangents_for_the_saved_carries_or_the_ys():
    from diffprog import control
    got = []
    rule = control.scan_p.vjp

    def spy(cts, outs, *ops, **params):
        got.append([c is None for c in cts])
        return rule(cts, outs, *ops, **params)
    xs = np.linspace(-1.0, 1.0, 7)
    f = lambda w: dp.scan(lambda c, x: (dnp.tanh(w * c + x), c * 2.0), 0.3, xs)[0]
    control.scan_p.vjp = spy
    try:
        g = dp.grad(f)(0.8)
    finally:
        control.scan_p.vjp = rule
    assert got == [[False, True, True]]  # the carry's; none for the ys nor the saved carries
    c = 0.3
    dc = 0.0  # forward-mode derivative of the carry in w, by hand
    for x in xs:
        c_new = np.tanh(0.8 * c + x)
        dc = (1 - c_new ** 2) * (c + 0.8 * dc)
        c = c_new
    np.testing.assert_allclose(g, dc, rtol=1e-13)
    np.testing.assert_allclose(dp.grad(dp.grad(f))(0.8), dp.grad(dp.grad(
        lambda w: _unrolled(w, xs)))(0.8), rtol=1e-12)


def _unrolled(w, xs):
    c = 0.3
    for x in xs:
        c = dnp.tanh(w * c + x)
    return c


# -- dead-code elimination of unused loop outputs ------------------------------------------------


def _scan_node(graph):
    (node,) = [n for n in graph.nodes if n.prim.name == "scan"]
    return node


@pytest.mark.slow
def test_dce_drops_unused_ys_saved_carries_and_the_body_work_behind_them():
    from diffprog import passes
    from diffprog.jit import trace_graph
    xs = np.linspace(-1.0, 1.0, 6)

    def f(w, v, xs):
        c, (ya, yb) = dp.scan(lambda c, x: (dnp.tanh(w * c + x),
                                            (dnp.exp(v * x), dp.scan(lambda d, z: (d + z, d * z),
                                                                     c, xs)[1])), 0.1, xs)
        return c + dnp.sum(yb[:, 1])

    def g(w, v, xs):  # only the carry is used
        return f(w, v, xs) - dnp.sum(dp.scan(lambda c, x: (c, c * x), 0.0, xs)[1])

    raw = trace_graph(f, (0.5, 0.3, xs))
    opt = passes.optimize(raw)
    before, after = _scan_node(raw), _scan_node(opt)
    assert len(before.out) == 3 and len(after.out) == 2  # ya dropped
    body = after.params["body"].graph
    assert "exp" not in body.primitive_names()
    assert 1 in before.parents and 1 not in after.parents  # v, which only ya read, dropped
    assert after.params["n_consts"] == before.params["n_consts"] - 1
    for fn in (f, g):
        np.testing.assert_allclose(dp.jit(fn)(0.5, 0.3, xs), fn(0.5, 0.3, xs), rtol=1e-14)
        np.testing.assert_allclose(dp.jit(dp.grad(fn))(0.5, 0.3, xs), dp.grad(fn)(0.5, 0.3, xs),
                                   rtol=1e-13)
        np.testing.assert_allclose(dp.jit(dp.hessian(fn))(0.5, 0.3, xs),
                                   dp.hessian(fn)(0.5, 0.3, xs), rtol=1e-12)
    # under grad the forward scan saves its carries for the backward one, which reads them
    gg = passes.optimize(trace_graph(dp.grad(f), (0.5, 0.3, xs)))
    fwd = [n for n in gg.nodes if n.prim.name == "scan" and not n.params["reverse"]]
    assert fwd[0].params["save"] == 1 and "exp" not in str(gg)
    # the same scan with its saved carries unused (value_and_grad's value only): no save
    raw = trace_graph(lambda w: dp.value_and_grad(f)(w, 0.3, xs)[0], (0.5,))
    node = [n for n in passes.optimize(raw).nodes if n.prim.name == "scan"][0]
    assert node.params["save"] == 0 and len(node.out) == 2


def test_dce_drops_unused_outputs_of_cond_branches():
    from diffprog import passes
    from diffprog.jit import trace_graph

    def f(p, x, a, b):
        u, v = dp.cond(p, lambda y: (dnp.sin(y * a), dnp.exp(y * b)),
                       lambda y: (y * 2.0, dnp.log(y + b)), x)
        return u

    args = (True, 0.7, 1.5, 2.5)
    opt = passes.optimize(trace_graph(f, args))
    (node,) = [n for n in opt.nodes if n.prim.name == "cond"]
    assert len(node.out) == 1 and node.params["n_consts"] == (0, 1)  # (false, true): b dropped
    names = str(opt)
    assert "exp" not in names and "log" not in names and "sin" in names
    for p in (True, False):
        np.testing.assert_allclose(dp.jit(f)(p, 0.7, 1.5, 2.5), f(p, 0.7, 1.5, 2.5), rtol=1e-15)
        np.testing.assert_allclose(dp.jit(dp.grad(f, argnums=(1, 2)))(p, 0.7, 1.5, 2.5),
                                   dp.grad(f, argnums=(1, 2))(p, 0.7, 1.5, 2.5), rtol=1e-14)


# -- unroll ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("unroll", [2, 3, 6, True, 100])
def test_unroll_gives_the_same_values_and_derivatives(unroll, reverse):
    def f(h, xs, unroll):
        (h, k), ys = dp.scan(rnn_step, (h, 0), xs, reverse=reverse, unroll=unroll)
        return dnp.sum(h) + dnp.sum(ys["y"] * np.arange(1.0, len(xs) + 1)), k, ys["k"]

    want = rnn_loop(H0, XS, reverse)
    got = f(H0, XS, unroll)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13)
    assert got[1] == want[1] and np.array_equal(got[2], want[2])
    loss_u = lambda h, xs: f(h, xs, unroll)[0]
    g_want = dp.grad(loss_loop, argnums=(0, 1))(H0, XS, reverse)
    for g in (dp.grad(loss_u, argnums=(0, 1))(H0, XS),
              dp.jit(dp.grad(loss_u, argnums=(0, 1)))(H0, XS)):
        for a, b in zip(g, g_want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    _, t = dp.jvp(lambda h: loss_u(h, XS), (H0,), (np.ones(3),))
    np.testing.assert_allclose(t, np.sum(g_want[0]), rtol=1e-12)
    np.testing.assert_allclose(dp.hessian(loss_u)(H0, XS),
                               dp.hessian(loss_loop)(H0, XS, reverse), rtol=1e-11, atol=1e-13)
    hs = H0 + np.linspace(0.0, 0.5, 4)[:, None]
    np.testing.assert_allclose(dp.vmap(dp.grad(loss_u), in_axes=(0, None))(hs, XS),
                               [dp.grad(loss_loop)(h, XS, reverse) for h in hs], rtol=1e-12)


def test_unroll_repeats_the_body_in_the_graph_with_a_remainder_scan():
    xs = np.linspace(-1.0, 1.0, 10)

    def f(w, xs, unroll):
        return dp.scan(lambda c, x: (dnp.tanh(w * c + x), c), 0.3, xs, unroll=unroll)[0]
    for unroll, lengths in ((1, [10]), (3, [3, 1]), (5, [2]), (True, [1]), (20, [1])):
        g = dp.make_graph(f, static_argnums=(2,))(0.7, xs, unroll)
        scans = [n for n in g.nodes if n.prim.name == "scan"]
        assert [n.params["length"] for n in scans] == lengths
        steps = min(10, 10 if unroll is True else unroll)
        assert scans[0].params["body"].graph.primitive_names().count("tanh") == steps
        assert scans[0].params["unroll"] == steps
        np.testing.assert_allclose(f(0.7, xs, unroll), f(0.7, xs, 1), rtol=1e-15)
        np.testing.assert_allclose(dp.grad(f)(0.7, xs, unroll), dp.grad(f)(0.7, xs, 1),
                                   rtol=1e-13)
    # checkpointed and unrolled: segments of about checkpoint_every steps
    h = lambda w: dp.scan(lambda c, x: (dnp.tanh(w * c + x), None), 0.3, xs, unroll=2,
                          checkpoint_every=4)[0]
    np.testing.assert_allclose(dp.grad(h)(0.7), dp.grad(f)(0.7, xs, 1), rtol=1e-13)
    node = [n for n in dp.make_graph(h)(0.7).nodes if n.prim.name == "scan"][0]
    assert node.params["save"] == 2  # iterations of two steps: 4 steps per segment


# -- eager cond/switch check the branches they do not take ---------------------------------------


_CALLS = {"n": 0}


def _counted(v):
    _CALLS["n"] += 1
    return v * 3.0


def test_eager_branches_are_checked_like_traced_ones():
    bad = [lambda v: {"a": v, "b": v * np.ones(2)}, lambda v: {"a": v, "b": v}]
    for run in (lambda f: f(1.0), lambda f: dp.jit(f)(1.0), lambda f: dp.grad(
            lambda x: f(x)["a"])(1.0)):
        for p in (True, False):  # whichever branch runs, the other is checked
            with pytest.raises(TypeError, match=r"cond: branch 1 returns out\['b'\] as "
                                                r"float64\[2\] but branch 0 returns it as "
                                                r"float64\[\]"):
                run(lambda x, p=p: dp.cond(p, bad[0], bad[1], x))
        with pytest.raises(TypeError, match=r"switch: branch 2 returns a pytree of structure "
                                            r"PyTreeDef\(\(\*, \*\)\) but branch 0 returns "
                                            r"PyTreeDef\(\*\)"):
            run(lambda x: {"a": dp.switch(0, [lambda v: v, lambda v: v, lambda v: (v, v)], x)})
    with pytest.raises(TypeError, match=r"branch 1 returns out as float64\[2\] but branch 0 "
                                        r"returns it as float32\[2\]"):
        dp.cond(False, lambda v: v, lambda v: v.astype(np.float32), np.ones(2))
    with pytest.raises(TypeError, match="every branch must return the same shapes"):
        dp.switch(1, [lambda v: v.sum(), lambda v: v], np.ones(3))


def test_eager_branch_check_is_cached_and_tolerates_value_dependent_branches():
    def with_python_if(v):  # cannot be traced abstractly: only a traced call checks it
        return v if v > 0 else -v

    assert float(dp.cond(True, lambda v: v * 2.0, with_python_if, 2.0)) == 4.0
    assert float(dp.cond(False, lambda v: v * 2.0, with_python_if, -2.0)) == 2.0
    # an operand that is not an array (a string): the untaken branch cannot be traced either
    assert dp.cond(True, lambda s: 1.0, lambda s: float(len(s)), "abc") == 1.0
    assert dp.cond(False, lambda s: 1.0, lambda s: float(len(s)), "abc") == 3.0
    _CALLS["n"] = 0
    for k in range(5):  # new lambdas each call, same code: traced once
        assert float(dp.cond(True, lambda v: v + 1.0, _counted, float(k))) == k + 1.0
    assert _CALLS["n"] == 1
    _CALLS["n"] = 0
    dp.cond(True, lambda v: v + 1.0, _counted, np.ones(2))  # new operand shapes: traced again
    dp.cond(True, lambda v: v + 1.0, _counted, np.ones(2))
    assert _CALLS["n"] == 1
    def scaled(s):  # a closure over arrays of other values, of one shape: traced once
        return lambda v: _counted(v) * s

    _CALLS["n"] = 0
    outs = [dp.switch(0, [lambda v: v * 3.0, scaled(np.full(3, k))], np.ones(3))
            for k in range(3)]
    np.testing.assert_array_equal(outs[2], np.full(3, 3.0))
    assert _CALLS["n"] == 1
