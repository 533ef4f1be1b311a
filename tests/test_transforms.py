"""jacfwd, jacrev, hessian, hvp, linearize: closed forms, pytrees, and every composition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("jac", [dp.jacfwd, dp.jacrev])
def test_jacobian_of_linear_map_is_its_matrix(jac):
    a = RNG.standard_normal((4, 3))
    np.testing.assert_allclose(jac(lambda x: a @ x)(RNG.standard_normal(3)), a, rtol=1e-14)
    np.testing.assert_allclose(jac(lambda x: x @ a.T)(RNG.standard_normal(3)), a, rtol=1e-14)


@pytest.mark.parametrize("jac", [dp.jacfwd, dp.jacrev])
def test_jacobian_shapes_nest_output_over_input(jac):
    def f(p):
        return {"y": p["w"] @ p["x"], "s": dnp.sum(p["x"] ** 2), "n": 3}
    p = {"w": RNG.standard_normal((2, 3)), "x": RNG.standard_normal(3), "tag": "static"}
    j = jac(f)(p)
    assert j["y"]["w"].shape == (2, 2, 3) and j["y"]["x"].shape == (2, 3)
    assert j["s"]["w"].shape == (2, 3) and j["s"]["x"].shape == (3,)
    assert j["y"]["tag"] is None and j["n"] is None
    np.testing.assert_allclose(j["y"]["x"], p["w"])
    np.testing.assert_allclose(j["s"]["x"], 2 * p["x"])
    np.testing.assert_allclose(j["s"]["w"], 0.0)
    # d y_i / d w_jk = delta_ij x_k
    np.testing.assert_allclose(j["y"]["w"], np.einsum("ij,k->ijk", np.eye(2), p["x"]))


@pytest.mark.parametrize("jac", [dp.jacfwd, dp.jacrev])
def test_jacobian_argnums_tuple_and_has_aux(jac):
    def f(x, y):
        return x * y, {"aux": 1}
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    (jx, jy), aux = jac(f, argnums=(0, 1), has_aux=True)(x, y)
    np.testing.assert_allclose(jx, np.diag(y))
    np.testing.assert_allclose(jy, np.diag(x))
    assert aux == {"aux": 1}
    np.testing.assert_allclose(jac(lambda s, v: s * v, argnums=0)(2.0, x), x)


def test_jacfwd_equals_jacrev_on_a_nonlinear_function():
    def f(x):
        return dnp.tanh(x[:, None] * x[None, :]).sum(axis=0) + dnp.exp(x) * x[0]
    x = RNG.standard_normal(4)
    np.testing.assert_allclose(dp.jacfwd(f)(x), dp.jacrev(f)(x), rtol=1e-13, atol=1e-14)


def test_hessian_of_quadratic_form():
    a = RNG.standard_normal((3, 3))
    h = dp.hessian(lambda x: x @ (a @ x))(RNG.standard_normal(3))
    np.testing.assert_allclose(h, a + a.T, rtol=1e-13)


def rosenbrock(x):
    return dnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_hessian(x):
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] = h[i + 1, i] = -400 * x[i]
    return h


def test_rosenbrock_hessian_closed_form():
    x = np.array([-1.2, 1.0, 0.5, 2.0])
    np.testing.assert_allclose(dp.hessian(rosenbrock)(x), rosenbrock_hessian(x), rtol=1e-12)
    v = RNG.standard_normal(4)
    (hv,) = dp.hvp(rosenbrock, (x,), (v,))
    np.testing.assert_allclose(hv, rosenbrock_hessian(x) @ v, rtol=1e-12)


def test_hessian_of_dict_input_is_dict_of_dicts():
    def f(p):
        return dnp.sum(p["a"] ** 2 * p["b"]) + p["b"] ** 3
    p = {"a": np.array([1.0, 2.0]), "b": 0.5}
    h = dp.hessian(f)(p)
    np.testing.assert_allclose(h["a"]["a"], np.diag([2 * 0.5, 2 * 0.5]))
    np.testing.assert_allclose(h["a"]["b"], 2 * p["a"])
    np.testing.assert_allclose(h["b"]["a"], 2 * p["a"])
    np.testing.assert_allclose(h["b"]["b"], 6 * 0.5)


def test_hvp_never_needs_the_hessian_and_matches_it():
    def f(x, y):
        return dnp.sum(dnp.sin(x) * y ** 2)
    x, y = RNG.standard_normal(3), RNG.standard_normal(3)
    vx, vy = RNG.standard_normal(3), RNG.standard_normal(3)
    hx, hy = dp.hvp(f, (x, y), (vx, vy))
    h = dp.hessian(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(hx, h[0][0] @ vx + h[0][1] @ vy, rtol=1e-12)
    np.testing.assert_allclose(hy, h[1][0] @ vx + h[1][1] @ vy, rtol=1e-12)


def test_linearize_replays_the_linear_graph_without_running_f():
    calls = []

    def f(x):
        calls.append(1)
        return {"a": dnp.sin(x) * x, "b": dnp.sum(x ** 3)}
    x = RNG.standard_normal(3)
    out, f_jvp = dp.linearize(f, x)
    assert len(calls) == 1
    for _ in range(3):
        t = RNG.standard_normal(3)
        got = f_jvp(t)
        _, want = dp.jvp(f, (x,), (t,))
        np.testing.assert_allclose(got["a"], want["a"], rtol=1e-14)
        np.testing.assert_allclose(got["b"], want["b"], rtol=1e-14)
    assert len(calls) == 4  # only the jvp calls above ran f
    # the linear function can itself be differentiated (its derivative is itself)
    g = dp.grad(lambda t: f_jvp(t)["b"])(np.ones(3))
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-14)


# Every composition pair of {grad, jvp, vjp, jacfwd, jacrev, hessian} on a function of a dict.
def f_dict(p):
    return dnp.sum(dnp.sin(p["x"]) * p["y"]) + dnp.sum(p["x"] ** 3) * p["s"]


P0 = {"x": np.array([0.3, -0.7]), "y": np.array([1.5, 0.2]), "s": 0.4}


def scalarize(tree):
    """A scalar summary of any pytree output, so the outer transform sees a scalar."""
    return sum(dnp.sum(leaf * (i + 1.0)) for i, leaf in enumerate(dp.tree_leaves(tree)))


def as_scalar_fn(name, f):
    """Apply transform ``name`` to ``f`` (dict -> scalar) and return a dict -> scalar function."""
    if name == "grad":
        return lambda p: scalarize(dp.grad(f)(p))
    if name == "jvp":
        return lambda p: scalarize(dp.jvp(f, (p,), (dp.tree_map(np.ones_like, p),))[1])
    if name == "vjp":
        return lambda p: scalarize(dp.vjp(f, p)[1](1.0))
    if name == "jacfwd":
        return lambda p: scalarize(dp.jacfwd(f)(p))
    if name == "jacrev":
        return lambda p: scalarize(dp.jacrev(f)(p))
    if name == "hessian":
        return lambda p: scalarize(dp.hessian(f)(p))
    raise ValueError(name)


TRANSFORMS = ["grad", "jvp", "vjp", "jacfwd", "jacrev", "hessian"]


def numerical_jacobian(g, p, eps=1e-5):
    """Jacobian of ``g`` (dict -> pytree) by central differences, nested out-over-in."""
    leaves, treedef = dp.tree_flatten(p)
    out_leaves, out_def = dp.tree_flatten(g(p))
    blocks = [[np.zeros(np.shape(o) + np.shape(x)) for x in leaves] for o in out_leaves]
    for i, x in enumerate(leaves):
        for j in np.ndindex(np.shape(x)):
            def at(sign, i=i, j=j):
                shifted = [np.array(v, dtype=float) for v in leaves]
                shifted[i][j] += sign * eps
                return dp.tree_leaves(g(dp.tree_unflatten(treedef, shifted)))
            for k, (hi, lo) in enumerate(zip(at(1), at(-1))):
                blocks[k][i][(...,) + j] = (np.asarray(hi) - np.asarray(lo)) / (2 * eps)
    return dp.tree_unflatten(out_def, [dp.tree_unflatten(treedef, b) for b in blocks])


def numerical_outer(name, h, p):
    """What transform ``name`` gives for the scalar function ``h``, numerically."""
    if name in ("grad", "vjp", "jacfwd", "jacrev"):
        return scalarize(dp.numerical_grad(h, p))
    if name == "jvp":
        return dp.numerical_jvp(h, (p,), (dp.tree_map(np.ones_like, p),))
    return scalarize(numerical_jacobian(dp.grad(h), p))  # hessian


@pytest.mark.parametrize("outer,inner", list(itertools.product(TRANSFORMS, TRANSFORMS)))
def test_every_composition_pair(outer, inner):
    h = as_scalar_fn(inner, f_dict)
    got = as_scalar_fn(outer, h)(P0)
    np.testing.assert_allclose(got, numerical_outer(outer, h, P0), rtol=1e-6, atol=1e-6)
