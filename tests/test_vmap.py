"""vmap (issue 13): against a Python loop over the examples, composed with the other
transforms, and its error messages."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import diffprog as dp
import diffprog.core as core
import diffprog.numpy as dnp
import diffprog.prims.gather as G
import diffprog.scipy
from diffprog.testing import check_grads

RNG = np.random.default_rng(0)
XS = RNG.normal(size=(4, 3, 3))
X4 = RNG.normal(size=(4, 3, 3, 3))
IDX = np.array([[0, 1], [2, 2], [1, 0], [0, 0]])


def _take(x, ax, i):
    return x if ax is None else np.take(x, i, axis=ax)


def loop(f, args, in_axes=0):
    """np.stack of f over the examples: the reference."""
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    size = next(np.shape(a)[ax] for a, ax in zip(args, axes) if ax is not None)
    return np.stack([np.asarray(f(*[_take(a, ax, i) for a, ax in zip(args, axes)]))
                     for i in range(size)])


def check(f, *args, in_axes=0, tol=1e-12):
    got = dp.vmap(f, in_axes=in_axes)(*args)
    want = loop(f, args, in_axes)
    assert np.shape(got) == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


ONE_ARG = {
    "sin": lambda x: dnp.sin(x) * 2.0 + 1.0,
    "np_sin": lambda x: np.sin(x),
    "where": lambda x: dnp.where(x > 0, x, 0.0),
    "clip": lambda x: dnp.clip(x, -0.5, 0.5),
    "maximum_row": lambda x: dnp.maximum(x, x[0]),
    "logaddexp": lambda x: dnp.logaddexp(x, 1.0),
    "astype": lambda x: dnp.astype(x, np.float32),
    "sum_axis": lambda x: dnp.sum(x, axis=1),
    "mean_keepdims": lambda x: dnp.mean(x, axis=0, keepdims=True),
    "max_axes": lambda x: dnp.max(x, axis=(0, 1)),
    "prod": lambda x: dnp.prod(x, axis=1),
    "std": lambda x: dnp.std(x),
    "logsumexp": lambda x: dp.scipy.special.logsumexp(x, axis=1),
    "argmax_none": lambda x: dnp.argmax(x),
    "argmin_axis_keep": lambda x: dnp.argmin(x, axis=1, keepdims=True),
    "cumsum": lambda x: dnp.cumsum(x, axis=1),
    "cumprod": lambda x: dnp.cumprod(x, axis=0),
    "np_norm": lambda x: np.linalg.norm(x),
    "norm_axis": lambda x: dnp.linalg.norm(x, axis=0),
    "sort": lambda x: dnp.sort(x, axis=0),
    "sort_none": lambda x: dnp.sort(x, axis=None),
    "argsort": lambda x: dnp.argsort(x, axis=1),
    "searchsorted": lambda x: dnp.searchsorted(dnp.sort(x[0]), x[1]),
    "reshape": lambda x: dnp.reshape(x, (9,)),
    "transpose": lambda x: x.T,
    "broadcast_to": lambda x: dnp.broadcast_to(x[0], (2, 3)),
    "concatenate": lambda x: dnp.concatenate([x, x[:1]]),
    "stack": lambda x: dnp.stack([x, x], axis=1),
    "split": lambda x: dnp.split(x, 3, axis=1)[1],
    "flip_roll": lambda x: dnp.roll(dnp.flip(x, 0), 1, axis=1),
    "triu_trace": lambda x: dnp.triu(x) + dnp.trace(x),
    "getitem_int": lambda x: x[1],
    "getitem_slice": lambda x: x[1:, ::-1],
    "getitem_array": lambda x: x[np.array([0, 2, 2])],
    "getitem_array_2": lambda x: x[:, np.array([0, 2])],
    "getitem_mask": lambda x: x[np.array([True, False, True])],
    "take": lambda x: dnp.take(x, np.array([2, 0]), axis=1),
    "at_set": lambda x: dnp.at(x)[0].set(1.0),
    "at_add_repeated": lambda x: dnp.at(x)[np.array([0, 0])].add(x[1]),
    "at_max": lambda x: dnp.at(x)[:, 1].max(0.0),
    "matmul": lambda x: x.T @ x,
    "matvec": lambda x: x @ x[0],
    "vecvec": lambda x: x[0] @ x[1],
    "dot": lambda x: dnp.dot(x[0], x),
    "outer": lambda x: dnp.outer(x[0], x[1]),
    "einsum": lambda x: dnp.einsum("ij,jk->ik", x, x),
    "solve": lambda x: dnp.linalg.solve(x, x[0]),
    "solve_matrix": lambda x: dnp.linalg.solve(x, x.T),
    "inv": lambda x: dnp.linalg.inv(x),
    "det": lambda x: dnp.linalg.det(x),
    "slogdet": lambda x: dnp.linalg.slogdet(x)[1],
    "cholesky": lambda x: dnp.linalg.cholesky(x @ x.T + np.eye(3)),
    "eigh": lambda x: dnp.linalg.eigh(x + x.T)[0],
    "svd_values": lambda x: dnp.linalg.svd(x)[1],
    "qr_r": lambda x: dnp.linalg.qr(x)[1],
    "pinv": lambda x: dnp.linalg.pinv(x),
}


@pytest.mark.parametrize("name", sorted(ONE_ARG))
def test_one_argument_matches_loop(name):
    check(ONE_ARG[name], XS, tol=1e-10)


@pytest.mark.parametrize("index", [
    lambda x: x[np.array([0, 2]), 1:, np.array([1, 1])],  # separated: index axes go first
    lambda x: x[1:, np.array([0, 2]), np.array([1, 1])],  # adjacent after a slice
    lambda x: x[:, None, np.array([0, 2]), ..., 0],
])
def test_advanced_index_layouts(index):
    check(index, X4)


def test_in_axes_none_and_negative():
    w = XS[0]
    check(lambda x, w: x @ w, XS, w, in_axes=(0, None))
    check(lambda x, w: w @ x, XS, w, in_axes=(0, None))
    check(lambda x, w: dnp.linalg.solve(w, x[0]), XS, w, in_axes=(0, None))
    check(lambda x: dnp.sum(x ** 2, axis=0), XS, in_axes=-1)
    check(lambda x, y: x * y, XS, XS, in_axes=(1, 2))


def test_batched_integer_indices():
    check(lambda x, i: x[i], XS, IDX)
    check(lambda x, i: x[:, i], XS, IDX)
    check(lambda x, i: x[i, i], XS, IDX)
    check(lambda x, i: x[1:, i, i[0]], X4, IDX)
    check(lambda x, i: dnp.at(x)[i].add(1.0), XS, IDX)
    check(lambda x, i: dnp.at(x)[:, i].set(x[:, :2]), XS, IDX)
    check(lambda x, i: dnp.at(x)[i].max(x[0, 0]), XS, IDX)
    check(lambda x, i: dnp.take(x, i), XS[0], IDX, in_axes=(None, 0))
    check(lambda x, i: dnp.take(x, i, axis=1), XS, IDX[0], in_axes=(0, None))


def test_gradient_of_batched_indices():
    # gather's transpose under vmap: grad through x[i] with per-example i
    def f(x, i):
        return dnp.sum(dnp.at(x)[i].multiply(2.0)[i] * x[i[::-1]] ** 2)
    got = dp.vmap(dp.grad(f))(XS, IDX)
    want = loop(dp.grad(f), (XS, IDX))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_dict_prefixes_and_out_axes():
    params = {"w": RNG.normal(size=(3, 2)), "b": RNG.normal(size=2)}
    xs = RNG.normal(size=(5, 3))

    def f(p, x):
        return {"y": dnp.tanh(x @ p["w"] + p["b"]), "n": dnp.sum(p["w"] ** 2)}

    out = dp.vmap(f, in_axes=({"w": None, "b": None}, 0), out_axes={"y": 1, "n": None})(
        params, xs)
    np.testing.assert_allclose(out["y"], np.tanh(xs @ params["w"] + params["b"]).T)
    np.testing.assert_allclose(out["n"], np.sum(params["w"] ** 2))
    # an unbatched output with an axis is broadcast along the batch, as in JAX
    out = dp.vmap(f, in_axes=(None, 0))(params, xs)
    np.testing.assert_allclose(out["n"], np.full(5, np.sum(params["w"] ** 2)))
    both = dp.vmap(lambda p: p["x"] * p["s"], in_axes=({"x": 0, "s": None},))(
        {"x": xs, "s": 3.0})
    np.testing.assert_allclose(both, xs * 3.0)
    np.testing.assert_allclose(dp.vmap(lambda x: x, out_axes=-1)(xs), xs.T)
    np.testing.assert_allclose(dp.vmap(lambda: 1.0, axis_size=3)(), np.ones(3))
    np.testing.assert_allclose(dp.vmap(lambda x, s: x * s, in_axes=(0, None))(xs, 2), xs * 2)


def test_nested_vmap():
    xs = RNG.normal(size=(4, 3))
    ys = RNG.normal(size=(5, 3))
    got = dp.vmap(dp.vmap(lambda a, b: dnp.dot(a, b), in_axes=(None, 0)),
                  in_axes=(0, None))(xs, ys)
    np.testing.assert_allclose(got, xs @ ys.T)
    got = dp.vmap(dp.vmap(dnp.sin, in_axes=1), in_axes=1)(X4[..., 0])
    np.testing.assert_allclose(got, np.sin(X4[..., 0]).transpose(1, 2, 0))


def _loss(w, x):
    return dnp.sum(dnp.tanh(x @ w) ** 2) + dnp.linalg.norm(w) * dnp.max(x)


W = RNG.normal(size=(3, 2))
DATA = RNG.normal(size=(6, 3))
PER_EXAMPLE = np.stack([dp.grad(_loss)(W, x) for x in DATA])


def test_per_example_gradients():
    np.testing.assert_allclose(dp.vmap(dp.grad(_loss), in_axes=(None, 0))(W, DATA),
                               PER_EXAMPLE, rtol=1e-12)


def test_grad_of_vmap():
    total = dp.grad(lambda w: dnp.sum(dp.vmap(_loss, in_axes=(None, 0))(w, DATA)))(W)
    np.testing.assert_allclose(total, PER_EXAMPLE.sum(0), rtol=1e-12)


def test_jit_of_vmap_of_grad_and_vmap_of_jit():
    f = dp.jit(dp.vmap(dp.grad(_loss), in_axes=(None, 0)))
    np.testing.assert_allclose(f(W, DATA), PER_EXAMPLE, rtol=1e-12)
    np.testing.assert_allclose(f(W, DATA), PER_EXAMPLE, rtol=1e-12)  # from the cache
    g = dp.vmap(dp.jit(dp.grad(_loss)), in_axes=(None, 0))
    np.testing.assert_allclose(g(W, DATA), PER_EXAMPLE, rtol=1e-12)


def test_jacobians_and_hessian_with_vmap():
    cube = lambda x: dnp.sum(x ** 3)
    xs = RNG.normal(size=(4, 3))
    np.testing.assert_allclose(dp.vmap(dp.hessian(cube))(xs),
                               np.stack([np.diag(6 * x) for x in xs]))
    np.testing.assert_allclose(dp.jacfwd(dp.vmap(dnp.sin))(xs[0]), np.diag(np.cos(xs[0])))
    np.testing.assert_allclose(dp.jacrev(dp.vmap(dnp.sin))(xs[0]), np.diag(np.cos(xs[0])))
    _, t = dp.jvp(dp.vmap(dnp.exp), (xs,), (np.ones_like(xs),))
    np.testing.assert_allclose(t, np.exp(xs))


def test_custom_rules_and_checkpoint():
    @dp.custom_vjp
    def clip_gradient(x):
        return x

    clip_gradient.defvjp(lambda x: (x, None), lambda res, ct: (dnp.clip(ct, -1.0, 1.0),))
    got = dp.vmap(dp.grad(lambda x: clip_gradient(x) * 5.0))(np.array([1.0, 2.0]))
    np.testing.assert_allclose(got, [1.0, 1.0])

    @dp.custom_jvp
    def f(x):
        return dnp.sin(x)

    f.defjvp(lambda p, t: (dnp.sin(p[0]), dnp.cos(p[0]) * t[0] * 2))
    xs = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(dp.vmap(f)(xs), np.sin(xs))
    np.testing.assert_allclose(dp.vmap(dp.grad(f))(xs), 2 * np.cos(xs))
    step = dp.checkpoint(lambda x: dnp.sin(dnp.sin(x)))
    want = np.cos(np.sin(xs)) * np.cos(xs)
    np.testing.assert_allclose(dp.vmap(dp.grad(step))(xs), want)
    np.testing.assert_allclose(dp.grad(lambda x: dnp.sum(dp.vmap(step)(x)))(xs), want)


def test_check_grads_through_vmap():
    check_grads(dp.vmap(lambda x: dnp.sin(x) @ x[0]), (XS,), order=2)
    check_grads(dp.vmap(lambda a, b: dnp.linalg.solve(a @ a.T + 3 * np.eye(3), b),
                        in_axes=(0, None)), (XS, XS[0, 0]), order=1)


def test_errors():
    xs = RNG.normal(size=(5, 3))
    with pytest.raises(ValueError, match=r"args\[0\] has size 5, args\[1\] has size 2"):
        dp.vmap(lambda a, b: a + b)(xs, xs[:2])
    with pytest.raises(ValueError, match="in_axes has 2 entries but the function was called "
                                         "with 1 positional argument"):
        dp.vmap(lambda a: a, in_axes=(0, 0))(xs)
    with pytest.raises(ValueError, match=r"covers the leaf at arguments\[0\]\['x'\]"):
        dp.vmap(lambda d: d["x"], in_axes=({"y": 0},))({"x": xs})
    with pytest.raises(ValueError, match="has no axis 2"):
        dp.vmap(lambda x: x, in_axes=2)(xs)
    with pytest.raises(ValueError, match="out_axes is None for an output that depends"):
        dp.vmap(lambda x: x, out_axes=None)(xs)
    with pytest.raises(ValueError, match="pass axis_size"):
        dp.vmap(lambda x: x, in_axes=None)(xs)
    with pytest.raises(TypeError, match="batched by vmap"):
        dp.vmap(lambda x: 1.0 if x > 0 else 0.0)(xs[:, 0])
    with pytest.raises(TypeError, match="no batching rule"):
        dp.vmap(lambda x: dnp.nonzero(x)[0])(xs)


# Primitives without a batching rule, and why. Everything else must have one.
NO_BATCH_RULE = {
    "nonzero": "its output's shape depends on the values, so examples cannot share a batch",
}


@pytest.mark.slow
def test_every_primitive_has_a_batching_rule():
    # the library's primitives, in a fresh interpreter (other tests register their own)
    code = ("import json, diffprog, diffprog.scipy, diffprog.core as c; print(json.dumps("
            "sorted(n for n, p in c.primitives.items() if p.batch is None)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert set(json.loads(out)) == set(NO_BATCH_RULE)
    assert all(core.primitives[name].batch is not None for name in ("sin", "matmul", "getitem"))
    for prim in (G.gather, G.scatter_add_at, G.scatter_apply, G.scatter_apply_weights):
        assert prim.batch is not None, prim.name


def test_batch_declaration_is_checked():
    with pytest.raises(ValueError, match="batch must be None"):
        core.Primitive("bad_batch", np.sin, batch="rowwise", register=False)
    with pytest.raises(ValueError, match="requires composite=True"):
        core.Primitive("bad_inline", np.sin, batch="inline", register=False)


def test_searchsorted_per_example_tables():
    tables = np.sort(RNG.normal(size=(4, 5)), axis=1)
    values = RNG.normal(size=(4, 3))
    for side in ("left", "right"):
        check(lambda a, v, side=side: dnp.searchsorted(a, v, side=side), tables, values)
    check(lambda a, v: dnp.searchsorted(a, v), tables[0], values, in_axes=(None, 0))


def test_transforms_enclosing_vmap_keep_custom_rules():
    @dp.custom_vjp
    def scaled(w, x):
        return w * x

    # a deliberately different rule, so that using it shows: d/dw = 10 x, d/dx = 0
    scaled.defvjp(lambda w, x: (w * x, x), lambda x, ct: (10.0 * ct * x, 0.0 * x))
    xs = np.array([1.0, 2.0, 3.0])
    g = dp.grad(lambda w: dnp.sum(dp.vmap(scaled, in_axes=(None, 0))(w, xs)))(2.0)
    np.testing.assert_allclose(g, 10.0 * xs.sum())  # the unbatched w sums over examples
    gx = dp.grad(lambda x: dnp.sum(dp.vmap(scaled, in_axes=(None, 0))(2.0, x)))(xs)
    np.testing.assert_allclose(gx, np.zeros(3))
    np.testing.assert_allclose(dp.vmap(scaled, in_axes=(None, 0))(2.0, xs), 2.0 * xs)

    @dp.custom_jvp
    def f(x):
        return dnp.sin(x)

    f.defjvp(lambda p, t: (dnp.sin(p[0]), dnp.cos(p[0]) * t[0] * 2))
    np.testing.assert_allclose(dp.grad(lambda x: dnp.sum(dp.vmap(f)(x)))(xs), 2 * np.cos(xs))
    _, t = dp.jvp(dp.vmap(f), (xs,), (np.ones(3),))
    np.testing.assert_allclose(t, 2 * np.cos(xs))
    np.testing.assert_allclose(dp.jit(dp.vmap(dp.grad(f)))(xs), 2 * np.cos(xs))


def _wide(m):
    return lambda x: dnp.sin(dnp.outer(np.arange(float(m)), x)).ravel()


def test_jacobians_are_one_batched_sweep():
    x = np.arange(4.0) / 3
    f = _wide(75)  # R^4 -> R^300
    want = np.cos(np.outer(np.arange(75.0), x))[:, :, None] * np.eye(4)[None] \
        * np.arange(75.0)[:, None, None]
    want = want.reshape(300, 4)
    np.testing.assert_allclose(dp.jit(dp.jacrev(f))(x), want, atol=1e-12)
    np.testing.assert_allclose(dp.jacfwd(f)(x), want, atol=1e-12)
    # the traced graph does not grow with the number of outputs (or inputs)
    for jac in (dp.jacrev, dp.jacfwd):
        small = len(dp.make_graph(jac(_wide(5)))(x).nodes)
        assert len(dp.make_graph(jac(f))(x).nodes) == small
    assert len(dp.make_graph(dp.jacfwd(lambda v: dnp.sum(dnp.sin(v))))(np.ones(50)).nodes) == \
        len(dp.make_graph(dp.jacfwd(lambda v: dnp.sum(dnp.sin(v))))(np.ones(3)).nodes)


def test_jacobians_without_batching_rule_fall_back_to_a_loop():
    square = core.Primitive("square_no_batch", np.square, register=False,
                            jvp=(lambda t, out, x: 2.0 * x * t,),
                            vjp=(lambda ct, out, x: 2.0 * x * ct,))
    x = np.array([1.0, 2.0, 3.0])
    f = lambda v: square(v) * v[0]
    want = np.diag(2 * x * x[0]) + np.outer(x ** 2, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(dp.jacrev(f)(x), want)
    np.testing.assert_allclose(dp.jacfwd(f)(x), want)
    np.testing.assert_allclose(dp.hessian(lambda v: dnp.sum(square(v)))(x), 2 * np.eye(3))
    with pytest.raises(TypeError, match="'square_no_batch' has no batching rule"):
        dp.vmap(square)(x)


def test_keyword_arguments_are_batched_along_axis_0():
    xs = RNG.normal(size=(3, 2))
    scale = np.arange(3.0)
    np.testing.assert_allclose(dp.vmap(lambda x, s=1.0: x * s)(xs, s=scale),
                               xs * scale[:, None])
    with pytest.raises(ValueError, match=r"args\[0\] has size 3, kwargs\['s'\] has size 2"):
        dp.vmap(lambda x, s=1.0: x * s)(xs, s=scale[:2])


def test_vmap_of_jit_is_the_jitted_vmap():
    xs = RNG.normal(size=(5, 3))
    jf = dp.jit(lambda x, y: {"a": x * dnp.sin(y), "b": dnp.sum(x)})
    for _ in range(2):  # traced, then from the cache (the output structure is remembered)
        out = dp.vmap(jf, in_axes=(0, None))(xs, xs[0])
        np.testing.assert_allclose(out["a"], xs * np.sin(xs[0]))
        np.testing.assert_allclose(out["b"], xs.sum(1))
    graph = dp.make_graph(lambda x: dp.vmap(jf, in_axes=(0, None))(x, xs[0])["a"])(xs)
    assert len(graph.primitive_names()) == 1 and graph.primitive_names()[0].startswith("jit[")
    g = dp.grad(lambda x: dnp.sum(dp.vmap(jf, in_axes=(0, None))(x, xs[0])["a"]))(xs)
    np.testing.assert_allclose(g, np.broadcast_to(np.sin(xs[0]), xs.shape))
