"""jit: tracing with abstract values, the signature cache, errors, composition, executors."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.jit import ConcretizationError, jit

RNG = np.random.default_rng(3)


def test_same_signature_never_retraces_new_signature_does():
    f = jit(lambda x, y: dnp.sum(dnp.sin(x) * y))
    x, y = RNG.standard_normal(3), RNG.standard_normal(3)
    for _ in range(3):
        np.testing.assert_allclose(f(x, y), np.sum(np.sin(x) * y), rtol=1e-14)
    assert f.traces == 1
    f(RNG.standard_normal(3), RNG.standard_normal(3))  # new values, same signature
    assert f.traces == 1
    f(RNG.standard_normal(4), RNG.standard_normal(4))  # new shape
    assert f.traces == 2
    f(x.astype(np.float32), y.astype(np.float32))  # new dtype
    assert f.traces == 3
    f(x, 2.0)  # a Python float is an abstract scalar
    f(x, 3.0)
    assert f.traces == 4


def test_static_argnums_and_static_leaves():
    def f(x, n, cfg):
        for _ in range(n):
            x = dnp.sin(x) if cfg["kind"] == "sin" else dnp.cos(x)
        return x
    jf = jit(f, static_argnums=1)
    x = RNG.standard_normal(2)
    np.testing.assert_allclose(jf(x, 3, {"kind": "sin"}), np.sin(np.sin(np.sin(x))))
    np.testing.assert_allclose(jf(x, 2, {"kind": "cos"}), np.cos(np.cos(x)))
    jf(x, 2, {"kind": "cos"})
    assert jf.traces == 2


@pytest.mark.parametrize("convert,what", [
    (lambda x: bool(x > 0), "bool()"),
    (lambda x: x if x > 0 else -x, "bool()"),
    (lambda x: float(x), "float()"),
    (lambda x: int(x), "int()"),
    (lambda x: np.asarray(x), r"np.asarray\(\)"),
])
def test_concrete_value_needed_under_jit_raises_with_fix(convert, what):
    with pytest.raises(ConcretizationError, match=rf"{what}.*traced by jit.*static_argnums"
                                                 r".*dnp\.where"):
        jit(convert)(1.0)
    assert jit(lambda x: dnp.where(x > 0, x, -x))(-2.0) == 2.0


def f_suite(x, w):
    h = dnp.tanh(x @ w + 0.1)
    return dnp.sum(h ** 2) + dnp.max(dnp.exp(-h)) + dnp.logsumexp(h[0] * 3.0)


@pytest.mark.slow
def test_compositions_with_every_transform():
    x, w = RNG.standard_normal((4, 3)), RNG.standard_normal((3, 2))
    grad_x = dp.grad(f_suite)(x, w)
    np.testing.assert_allclose(jit(dp.grad(f_suite))(x, w), grad_x, rtol=1e-12)
    np.testing.assert_allclose(dp.grad(jit(f_suite))(x, w), grad_x, rtol=1e-12)
    t = RNG.standard_normal((4, 3))
    _, tan = dp.jvp(lambda x: f_suite(x, w), (x,), (t,))
    np.testing.assert_allclose(dp.jvp(jit(lambda x: f_suite(x, w)), (x,), (t,))[1], tan,
                               rtol=1e-12)
    out, vjp_fn = dp.vjp(jit(f_suite), x, w)
    np.testing.assert_allclose(vjp_fn(1.0)[0], grad_x, rtol=1e-12)
    v = RNG.standard_normal(3)
    h = dp.hessian(lambda v: f_suite(x[:1] * v, w))(v)
    np.testing.assert_allclose(jit(dp.hessian(lambda v: f_suite(x[:1] * v, w)))(v), h,
                               rtol=1e-11)
    np.testing.assert_allclose(dp.hessian(jit(lambda v: f_suite(x[:1] * v, w)))(v), h,
                               rtol=1e-11)
    g2 = dp.grad(lambda s: dnp.sum(dp.grad(jit(lambda s: f_suite(x * s, w)))(s)))(0.7)
    want = dp.grad(lambda s: dnp.sum(dp.grad(lambda s: f_suite(x * s, w))(s)))(0.7)
    np.testing.assert_allclose(g2, want, rtol=1e-11)


def test_jit_over_pytrees():
    @jit
    def step(params, batch):
        loss_grad = dp.grad(lambda p: dnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2))
        g = loss_grad(params)
        return dp.tree_map(lambda p, g: p - 0.1 * g, params, g)
    params = {"w": RNG.standard_normal((3, 1)), "b": np.zeros(1)}
    batch = {"x": RNG.standard_normal((8, 3)), "y": RNG.standard_normal((8, 1))}
    new = step(params, batch)
    assert set(new) == {"w", "b"} and new["w"].shape == (3, 1)
    g = dp.grad(lambda p: dnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2))(params)
    np.testing.assert_allclose(new["w"], params["w"] - 0.1 * g["w"], rtol=1e-13)
    np.testing.assert_allclose(new["b"], params["b"] - 0.1 * g["b"], rtol=1e-13)


def chain(x):
    for i in range(40):
        x = (dnp.sin, lambda v: v * 1.01, lambda v: v + 0.5, dnp.tanh, lambda v: v * v,
             lambda v: -v, dnp.exp)[i % 7](x)
    return dnp.sum(x)


SUITE = [
    ("chain", chain, lambda: (RNG.uniform(-1, 1, 6),)),
    ("broadcast_bias", lambda x, b: dnp.sum(dnp.tanh(x + b) * x), lambda: (
        RNG.standard_normal((6, 5)), RNG.standard_normal(5))),
    ("column_broadcast", lambda x, b: dnp.sum(dnp.exp(-(x - b) ** 2)), lambda: (
        RNG.standard_normal((6, 5)), RNG.standard_normal((6, 1)))),
    ("mlp", f_suite, lambda: (RNG.standard_normal((4, 3)), RNG.standard_normal((3, 2)))),
    ("large", lambda x: dnp.sum(dnp.sin(x) * dnp.cos(x * 0.5) + x ** 2), lambda: (
        RNG.standard_normal(200_000),)),
    ("where", lambda x: dnp.sum(dnp.where(x > 0, x * x, -x) * 2.0), lambda: (
        RNG.standard_normal(30),)),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,fn,make", SUITE, ids=[s[0] for s in SUITE])
def test_numba_and_numpy_executors_equal_eager(name, fn, make):
    args = make()
    for transform in (lambda f: f, dp.grad):
        want = transform(fn)(*args)
        for executor in ("numpy", "numba"):
            got = jit(transform(fn), executor=executor)(*args)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)
    if args[0].size <= 50:
        h = dp.hessian(fn)(*args)
        for executor in ("numpy", "numba"):
            np.testing.assert_allclose(jit(dp.hessian(fn), executor=executor)(*args), h,
                                       rtol=1e-12, atol=1e-12)


def test_numba_executor_fuses_forward_and_backward_into_one_kernel():
    from diffprog import passes
    from diffprog.jit import trace_graph
    from diffprog.kernels.fuse import cluster_graph
    graph = passes.optimize(trace_graph(dp.grad(chain), (np.ones(10),)))
    clusters, _ = cluster_graph(graph)
    big = [c for c in clusters if len(c.nodes) > 1]
    assert len(big) == 1 and len(big[0].nodes) == len(graph.nodes)


def test_closing_over_an_outer_traced_value_inside_jit_raises():
    def f(y):
        return jit(lambda x: x * y)(np.ones(2))
    # y is an argument of the outer transform: jit is traced as a primitive, closure ok?
    with pytest.raises(TypeError, match="closes over it rather than taking it as an argument"):
        dp.grad(lambda y: dnp.sum(f(y)))(2.0)
    assert dp.grad(lambda y: dnp.sum(jit(lambda x, y: x * y)(np.ones(2), y)))(2.0) == 2.0


_CACHE_SCRIPT = """
import numpy as np, diffprog as dp, diffprog.numpy as dnp
from diffprog.kernels import fuse
f = dp.jit(dp.grad(lambda x: dnp.sum(dnp.tanh(dnp.sin(x) * 1.5 + x))), compile="eager")
print(repr(f(np.linspace(0.0, 1.0, 7)).tolist()))
hits = sum(k.stats.cache_hits.get(sig, 0) for k in fuse._loaded.values() for sig in k.signatures)
print(hits)
"""


@pytest.mark.slow
def test_kernels_are_cached_on_disk_across_processes(tmp_path):
    import os
    import subprocess
    import sys
    env = dict(os.environ, DIFFPROG_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", _CACHE_SCRIPT], env=env, capture_output=True,
                           text=True, check=True).stdout.split("\n") for _ in range(2)]
    assert runs[0][0] == runs[1][0]  # the same gradient
    assert int(runs[0][1]) == 0  # the first process compiled
    assert int(runs[1][1]) >= 1  # the second loaded the compiled kernel from disk
    assert list((tmp_path / "kernels").glob("k_*.py"))
    assert list((tmp_path / "kernels" / "__pycache__").glob("*.nbi"))


def test_float32_stays_float32_under_jit_in_both_executors():
    x = np.linspace(-2, 2, 300).astype(np.float32)
    w = np.ones((300, 4), np.float32)

    def loss(x):
        return dnp.sum(dnp.tanh(x @ w) ** 2) + dnp.sum(dnp.exp(-x * x) * 0.5)
    want = dp.grad(loss)(x)
    assert want.dtype == np.float32
    for executor in ("numpy", "numba"):
        f = jit(loss, executor=executor)
        g = jit(dp.grad(loss), executor=executor)
        assert f(x).dtype == np.float32 and g(x).dtype == np.float32
        np.testing.assert_allclose(g(x), want, rtol=1e-5, atol=1e-6)
