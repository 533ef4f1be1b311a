"""Reverse and forward mode: closed forms, pytrees, fan-out, control flow, higher orders."""

from __future__ import annotations

import dataclasses
from collections import namedtuple

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp


def test_issue_example_nested_params():
    params = {"layers": [{"W": np.ones((3, 2)), "b": np.zeros(2)}],
              "cfg": {"scale": 0.5, "name": "tanh"}}

    def loss(p, x):
        h = x
        for layer in p["layers"]:
            h = dnp.tanh(h @ layer["W"] + layer["b"])
        return dnp.sum(h ** 2) * p["cfg"]["scale"]

    x = np.ones((4, 3))
    g = dp.grad(loss)(params, x)
    assert g["cfg"]["name"] is None
    assert list(g) == ["layers", "cfg"] and list(g["layers"][0]) == ["W", "b"]
    # closed form: h = tanh(3) everywhere; dL/dpre = scale * 2h(1-h^2)
    h = np.tanh(3.0)
    dpre = 0.5 * 2 * h * (1 - h * h)
    np.testing.assert_allclose(g["layers"][0]["b"], np.full(2, 4 * dpre))
    np.testing.assert_allclose(g["layers"][0]["W"], np.full((3, 2), 4 * dpre))
    np.testing.assert_allclose(g["cfg"]["scale"], 8 * h * h)
    assert isinstance(g["cfg"]["scale"], float)
    dp.check_grads(lambda W, b, s: loss({"layers": [{"W": W, "b": b}],
                                         "cfg": {"scale": s, "name": "tanh"}}, x),
                   (np.random.default_rng(1).standard_normal((3, 2)) * 0.3, np.zeros(2), 0.5))


def test_fourth_derivative_of_sin_closed_form():
    x = 0.7
    d = [np.sin]
    for _ in range(4):
        d.append(dp.grad(d[-1]))
    want = [np.sin(x), np.cos(x), -np.sin(x), -np.cos(x), np.sin(x)]
    for k in range(5):
        np.testing.assert_allclose(d[k](x), want[k], rtol=1e-14, atol=1e-15)


def test_higher_orders_mixing_modes():
    x = 0.3
    f = dnp.sin
    jvp_of_grad = dp.jvp(dp.grad(f), (x,), (1.0,))[1]            # f''
    grad_of_jvp = dp.grad(lambda x: dp.jvp(f, (x,), (1.0,))[1])(x)  # f''
    np.testing.assert_allclose(jvp_of_grad, -np.sin(x))
    np.testing.assert_allclose(grad_of_jvp, -np.sin(x))
    third = dp.jvp(lambda x: dp.grad(lambda y: dp.jvp(f, (y,), (1.0,))[1])(x), (x,), (1.0,))[1]
    np.testing.assert_allclose(third, -np.cos(x))
    fourth = dp.grad(dp.grad(lambda x: dp.jvp(dp.grad(f), (x,), (1.0,))[1]))(x)
    np.testing.assert_allclose(fourth, np.sin(x))


def test_fan_out_sums_partial_adjoints():
    f = lambda x: x * x + dnp.sin(x) * x + x
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(dp.grad(lambda x: dnp.sum(f(x)))(x),
                               2 * x + np.cos(x) * x + np.sin(x) + 1)


def test_unused_input_and_off_path_nodes():
    def f(x, y):
        dnp.exp(y) * 3.0  # off the path to the output
        return dnp.sum(x * 2.0)
    gx, gy = dp.grad(f, argnums=(0, 1))(np.ones(3), np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(gx, np.full(3, 2.0))
    assert gy.shape == (2, 2) and gy.dtype == np.float32 and not gy.any()


def test_constant_output_gives_zeros():
    g = dp.grad(lambda x: 3.0)(np.ones(2))
    np.testing.assert_array_equal(g, np.zeros(2))


def test_argnums_and_has_aux_and_value_and_grad():
    def f(x, y, z):
        return dnp.sum(x * y) + z, {"aux": x * 2.0}
    x, y, z = np.array([1.0, 2.0]), np.array([3.0, 4.0]), 1.5
    g, aux = dp.grad(f, argnums=(1, 2), has_aux=True)(x, y, z)
    np.testing.assert_array_equal(g[0], x)
    assert g[1] == 1.0
    np.testing.assert_array_equal(aux["aux"], x * 2.0)
    assert isinstance(aux["aux"], np.ndarray)
    (value, aux2), g2 = dp.value_and_grad(f, argnums=-3, has_aux=True)(x, y, z)
    assert value == 11 + 1.5
    np.testing.assert_array_equal(g2, y)
    v, g3 = dp.value_and_grad(lambda x: x * x)(3.0)
    assert (v, g3) == (9.0, 6.0)


def test_vjp_pytree_output_and_repeated_calls():
    def f(x, y):
        return {"a": x * y, "b": (dnp.sum(x), y ** 2)}
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    out, vjp_fn = dp.vjp(f, x, y)
    np.testing.assert_array_equal(out["a"], x * y)
    ct = {"a": np.array([1.0, 0.0]), "b": (2.0, np.array([0.0, 1.0]))}
    for _ in range(2):  # vjp_fn may be called many times
        gx, gy = vjp_fn(ct)
        np.testing.assert_array_equal(gx, y * [1.0, 0.0] + 2.0)
        np.testing.assert_array_equal(gy, x * [1.0, 0.0] + 2 * y * [0.0, 1.0])


def test_jvp_over_pytrees_and_forward_order():
    Point = namedtuple("Point", "x y")

    def f(p):
        return {"r": dnp.sqrt(p.x ** 2 + p.y ** 2), "list": [p.x * p.y, 3]}
    p = Point(np.array([3.0]), np.array([4.0]))
    t = Point(np.array([1.0]), np.array([0.0]))
    out, tout = dp.jvp(f, (p,), (t,))
    np.testing.assert_allclose(out["r"], [5.0])
    np.testing.assert_allclose(tout["r"], [3.0 / 5.0])
    np.testing.assert_allclose(tout["list"][0], [4.0])
    assert tout["list"][1] is None
    out, tout, aux = dp.jvp(lambda x: (x * 2.0, "aux"), (1.0,), (1.0,), has_aux=True)
    assert (out, tout, aux) == (2.0, 2.0, "aux")


def test_control_flow_if_for_recursion():
    def f(x, n):
        if n == 0:
            return x
        y = f(x, n - 1)
        return dnp.sin(y) if dnp.sum(y) > 0 else y * y

    g = dp.grad(lambda x: dnp.sum(f(x, 3)))(np.array([0.5, 0.2]))
    x = np.array([0.5, 0.2])
    np.testing.assert_allclose(g, np.cos(np.sin(np.sin(x))) * np.cos(np.sin(x)) * np.cos(x))
    h = dp.grad(lambda x: x * 2.0 if x > 0 else x * -3.0)
    assert (h(1.0), h(-1.0)) == (2.0, -3.0)
    total = dp.grad(lambda x: sum(x ** k for k in range(4)))(2.0)
    assert total == 1 + 2 * 2 + 3 * 4


@dataclasses.dataclass
class State:
    pos: np.ndarray
    vel: np.ndarray
    steps: int = 3
    label: str = "ball"


def test_dataclass_state_and_static_leaves():
    def energy(s: State):
        e = 0.0
        for _ in range(s.steps):
            e = e + dnp.sum(s.vel ** 2) * 0.5 + dnp.sum(s.pos)
        return e
    s = State(np.array([1.0, 2.0]), np.array([0.5, -1.0]))
    g = dp.grad(energy)(s)
    assert type(g) is State and g.steps is None and g.label is None
    np.testing.assert_allclose(g.vel, 3 * s.vel)
    np.testing.assert_allclose(g.pos, [3.0, 3.0])


def test_dtypes_float32_stays_float32_and_python_floats():
    x = np.array([0.5, 1.5], dtype=np.float32)
    f = lambda x: dnp.sum(dnp.tanh(x) * 2.0 + x ** 2)
    assert f(x).dtype == np.float32
    g = dp.grad(f)(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * (1 - np.tanh(x) ** 2) + 2 * x, rtol=1e-6)
    out, t = dp.jvp(f, (x,), (np.ones(2, np.float32),))
    assert out.dtype == np.float32 and t.dtype == np.float32
    gg = dp.grad(lambda x: dnp.sum(dp.grad(f)(x)))(x)
    assert gg.dtype == np.float32
    g64 = dp.grad(lambda x: dnp.sum(x * x))(np.ones(2))
    assert g64.dtype == np.float64
    g_py = dp.grad(lambda x: x * x * 3.0)(2.0)
    assert isinstance(g_py, float) and g_py == 12.0
    # a float64 constant promotes, and the gradient comes back as float32
    g_mixed = dp.grad(lambda x: dnp.sum(x * np.ones(2)))(x)
    assert g_mixed.dtype == np.float32


def test_gradients_are_writable_arrays():
    g = dp.grad(lambda x: dnp.sum(x))(np.ones(3))
    g += 1.0  # a user's in-place optimizer step
    np.testing.assert_array_equal(g, np.full(3, 2.0))


def test_plain_numpy_code_through_dispatch():
    def f(x, w):
        return np.sum(np.tanh(x @ w) ** 2) + np.max(np.exp(-x * x)) + (np.ones(3) * x).sum()
    x = np.random.default_rng(2).standard_normal((2, 3))
    w = np.random.default_rng(3).standard_normal((3, 3))
    dp.check_grads(f, (x, w), order=2)
    via_dnp = dp.grad(lambda x: dnp.sum(dnp.tanh(dnp.matmul(x, w)) ** 2))(x)
    via_np = dp.grad(lambda x: np.sum(np.tanh(x @ w) ** 2))(x)
    np.testing.assert_allclose(via_np, via_dnp, rtol=1e-15)


def test_make_graph_records_each_primitive_with_shape_and_dtype():
    g = dp.make_graph(lambda p: dnp.sum(dnp.tanh(p["x"] @ p["w"])))(
        {"x": np.ones((2, 3)), "w": np.ones((3, 4), np.float32)})
    assert g.primitive_names() == ["convert_element_type", "matmul", "tanh", "reduce_sum"]
    text = str(g)
    assert "x['w']:float32[3,4]" in text and "x['x']:float64[2,3]" in text
    assert "matmul(x['x'], v1)" in text and "float64[2,4]" in text
    assert "reduce_sum[axis=(0, 1), keepdims=False]" in text
    # the extended graph of grad: forward nodes, then backward nodes built from them
    eg = dp.make_graph(dp.grad(lambda x: dnp.sum(dnp.sin(x) * x)))(np.ones(3))
    names = eg.primitive_names()
    assert names[:3] == ["sin", "mul", "reduce_sum"]
    # backward: the seed broadcast is a constant; d(sin(x)*x) = ct*x*cos(x) + ct*sin(x)
    assert names[3:] == ["mul", "mul", "cos", "mul", "add"]


def test_check_grads_pytree_args_and_catches_wrong_rules():
    dp.check_grads(lambda d: dnp.sum(d["a"] * dnp.sin(d["b"][0])),
                   ({"a": np.ones(3), "b": [np.arange(3.0), "static"]},), order=2)
    with pytest.raises(AssertionError, match="forward mode"):
        wrong = dp.Primitive("wrong_sin_test", np.sin, register=False,
                             jvp=(lambda t, out, x: t * 1.001 * dnp.cos(x),),
                             vjp=(lambda ct, out, x: ct * dnp.cos(x),))
        dp.check_grads(lambda x: dp.bind(wrong, x), (np.ones(2),), modes=("fwd",))
    with pytest.raises(AssertionError, match="reverse mode"):
        wrong = dp.Primitive("wrong_sin_test2", np.sin, register=False,
                             jvp=(lambda t, out, x: t * dnp.cos(x),),
                             vjp=(lambda ct, out, x: ct * 1.001 * dnp.cos(x),))
        dp.check_grads(lambda x: dp.bind(wrong, x), (np.ones(2),), modes=("rev",))


def test_numerical_grad_and_jvp():
    g = dp.numerical_grad(lambda d: dnp.sum(d["x"] ** 3) + d["s"] ** 2,
                          {"x": np.array([1.0, 2.0]), "s": 3.0})
    np.testing.assert_allclose(g["x"], [3.0, 12.0], rtol=1e-8)
    np.testing.assert_allclose(g["s"], 6.0, rtol=1e-8)
    t = dp.numerical_jvp(lambda x: x ** 2, (np.array([3.0]),), (np.array([1.0]),))
    np.testing.assert_allclose(t, [6.0], rtol=1e-9)


def test_tracer_array_attributes_and_methods():
    seen = {}

    def f(x):
        seen.update(shape=x.shape, ndim=x.ndim, dtype=x.dtype, size=x.size, len=len(x),
                    T=x.T.shape)
        y = x.reshape(3, 2).T            # (2, 3) again
        z = x[1] + x[0, 1:3].sum() * x[:, 2:3] - (-x) / 2.0 ** x
        w = (x @ x.T).sum() + (z > 0).sum() * 0.0
        return y.sum() + z.sum(axis=1).sum() + w + x.mean() + x.max(axis=0).sum()
    x = np.arange(6.0).reshape(2, 3) / 6.0
    dp.check_grads(f, (x,), order=2)
    assert seen == {"shape": (2, 3), "ndim": 2, "dtype": np.float64, "size": 6, "len": 2,
                    "T": (3, 2)}


# A primitive with two results, declared here to test the machinery on its own.
sincos = dp.Primitive(
    "sincos_test", lambda x: (np.sin(x), np.cos(x)), multiple_results=True, register=False,
    jvp=(lambda t, out, x: (t * out[1], -t * out[0]),),
    vjp=(lambda ct, out, x: ct[0] * out[1] - ct[1] * out[0],))


def test_multiple_results_primitive():
    def f(x):
        s, c = dp.bind(sincos, x)
        return s * c + s
    x = np.array([0.3, -1.2])
    dp.check_grads(f, (x,), order=2)
    dp.check_grads(lambda x: dp.bind(sincos, x)[1] * 2.0, (x,), order=3)  # one output unused
    np.testing.assert_allclose(dp.grad(lambda x: dnp.sum(f(x)))(x), np.cos(2 * x) + np.cos(x))
    g = dp.make_graph(f)(x)
    assert "v1:float64[2], v2:float64[2] = sincos_test(x)" in str(g)
    assert "v3:float64[2] = mul(v1, v2)" in str(g)
