"""Bad input gets a clear error (type and message), and the next call works."""

from __future__ import annotations

import re

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp


def ok_grad():
    np.testing.assert_allclose(dp.grad(lambda x: dnp.sum(dnp.sin(x)))(np.zeros(2)), [1.0, 1.0])


def test_grad_of_non_scalar_output():
    with pytest.raises(TypeError, match=r"scalar output.*shape \(3,\).*vjp or jacrev"):
        dp.grad(lambda x: x * 2.0)(np.ones(3))
    ok_grad()


def test_grad_of_non_float_output():
    with pytest.raises(TypeError, match="requires the function to return a scalar float.*str"):
        dp.grad(lambda x: "loss")(1.0)
    with pytest.raises(TypeError, match="real float output.*complex"):
        dp.grad(lambda x: x * 1j)(1.0)


@pytest.mark.parametrize("arg,kind", [(3, "int"), (True, "bool"), (np.int64(2), "int64")])
def test_grad_of_int_or_bool_argument(arg, kind):
    with pytest.raises(TypeError, match=rf"argument 0 is {kind} .*cannot be differentiated; "
                                        r"pass a float \(e\.g\. "):
        dp.grad(lambda x: x * 2.0)(arg)
    ok_grad()


def test_grad_of_int_array_and_object_arguments():
    with pytest.raises(TypeError, match=r"dtype int64.*x\.astype\(float\)"):
        dp.grad(lambda x: dnp.sum(x))(np.arange(3))
    with pytest.raises(TypeError, match="argument 0 is str"):
        dp.grad(lambda x: 1.0)("hello")


def test_argnums_out_of_range_and_malformed():
    with pytest.raises(ValueError, match=r"argnums=2 but the function was called with 2 "
                                         r"positional arguments \(valid argnums: 0\.\.1\)"):
        dp.grad(lambda x, y: x * y, argnums=2)(1.0, 2.0)
    with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
        dp.grad(lambda x: x, argnums="0")(1.0)
    with pytest.raises(ValueError, match="names an argument twice"):
        dp.grad(lambda x, y: x * y, argnums=(0, -2))(1.0, 2.0)
    ok_grad()


def test_setitem_on_traced_array():
    def f(x):
        x[0] = 1.0
        return dnp.sum(x)
    with pytest.raises(TypeError, match=r"immutable.*x\.at\[idx\]\.set\(v\)"):
        dp.grad(f)(np.ones(3))
    ok_grad()


def test_vjp_fn_cotangent_mismatch():
    out, vjp_fn = dp.vjp(lambda x: {"a": x * 2.0, "b": dnp.sum(x)}, np.ones(3))
    with pytest.raises(ValueError, match=re.escape(
            "structure of the function's output: expected PyTreeDef({'a': *, 'b': *})")):
        vjp_fn([np.ones(3), 1.0])
    with pytest.raises(ValueError, match=r"cotangent for out\['a'\] has float64\[2\] but that "
                                         r"output has float64\[3\]"):
        vjp_fn({"a": np.ones(2), "b": 1.0})
    with pytest.raises(ValueError, match=r"has float32\[3\] but that output has float64\[3\]"):
        vjp_fn({"a": np.ones(3, np.float32), "b": 1.0})
    np.testing.assert_allclose(vjp_fn({"a": np.ones(3), "b": 1.0})[0], np.full(3, 3.0))


def test_jvp_tangent_mismatch():
    with pytest.raises(ValueError, match="same structure as primals"):
        dp.jvp(lambda x, y: x * y, (1.0, 2.0), (1.0,))
    with pytest.raises(ValueError, match=r"tangent for primals\[0\] has float64\[2\] but its "
                                         r"primal has float64\[3\]"):
        dp.jvp(dnp.sin, (np.ones(3),), (np.ones(2),))
    with pytest.raises(ValueError, match=r"float32\[3\] but its primal has float64\[3\]"):
        dp.jvp(dnp.sin, (np.ones(3),), (np.ones(3, np.float32),))
    with pytest.raises(TypeError, match="must be tuples"):
        dp.jvp(dnp.sin, np.ones(3), np.ones(3))


def test_has_aux_without_pair():
    with pytest.raises(TypeError, match=r"has_aux=True requires the function to return a pair "
                                        r"\(output, aux\), but it returned an array float64\[\]"):
        dp.grad(lambda x: x * 2.0, has_aux=True)(1.0)
    ok_grad()


def test_exception_inside_f_leaves_state_clean():
    def f(x):
        dnp.sin(x)
        raise RuntimeError("boom")
    for _ in range(3):
        with pytest.raises(RuntimeError, match="boom"):
            dp.grad(f)(1.0)
        ok_grad()
    with pytest.raises(RuntimeError, match="boom"):
        dp.jvp(f, (1.0,), (1.0,))
    assert dp.jvp(dnp.sin, (0.0,), (1.0,))[1] == 1.0


def test_conversions_of_traced_values_raise():
    with pytest.raises(TypeError, match=r"float\(\) of a traced value: this would drop its "
                                        r"derivative.*stop_gradient"):
        dp.grad(lambda x: float(x))(1.0)
    with pytest.raises(TypeError, match=r"np\.asarray\(\).*drop its derivative"):
        dp.grad(lambda x: np.asarray(x).sum())(np.ones(2))
    with pytest.raises(TypeError, match=r"int\(\) of a traced value"):
        dp.grad(lambda x: int(x) * x)(1.0)
    ok_grad()


def test_unsupported_numpy_function_and_ufunc_named():
    with pytest.raises(TypeError, match=r"NumPy ufunc np\.nextafter is not differentiable yet"):
        dp.grad(lambda x: np.nextafter(x, 3.0))(2.0)
    with pytest.raises(TypeError, match=r"NumPy function np\.fft\.fft is not differentiable "
                                        r"yet"):
        dp.grad(lambda x: np.fft.fft(x).real.sum())(np.ones(4))
    with pytest.raises(TypeError, match=r"np\.add\.reduce is not differentiable yet"):
        dp.grad(lambda x: np.add.reduce(x))(np.ones(4))
    with pytest.raises(TypeError, match=r"out=.*in place"):
        dp.grad(lambda x: np.sin(x, out=np.empty(2)).sum())(np.ones(2))
    ok_grad()


def test_escaped_tracer():
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2.0
    dp.grad(f)(1.0)
    with pytest.raises(RuntimeError, match=r"escaped from grad.*test_errors\.py:\d+"):
        leaked[0] * 3.0
    ok_grad()


def test_float_index_rejected():
    with pytest.raises(TypeError, match="cannot be used as an index"):
        dp.grad(lambda x: x[x])(np.ones(2))
