"""A catalogue of misuse: each wrong call raises an error whose type is right and whose message
names the problem and the fix; the next correct call then gives the right answer (no state is
left behind). Messages are matched on key phrases (what was wrong, the fix), not whole
sentences, so that rewording a message does not break the catalogue."""

from __future__ import annotations

import collections
import re
import sys

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp

X3 = np.array([0.5, 1.0, 2.0])


def says(*phrases: str) -> str:
    """A pattern for pytest.raises(match=...): the phrases, literally and in this order."""
    return "(?s)" + ".*".join(re.escape(p) for p in phrases)


# The correct calls that follow a misuse, one per transform; each checks its answer.


def grad_ok() -> None:
    np.testing.assert_allclose(dp.grad(lambda x: dnp.sum(dnp.sin(x)))(X3), np.cos(X3))


def value_and_grad_ok() -> None:
    value, g = dp.value_and_grad(lambda x: dnp.sum(x * x))(X3)
    assert value == pytest.approx(np.sum(X3 * X3))
    np.testing.assert_allclose(g, 2 * X3)


def jvp_ok() -> None:
    out, t = dp.jvp(dnp.sin, (X3,), (np.ones(3),))
    np.testing.assert_allclose(out, np.sin(X3))
    np.testing.assert_allclose(t, np.cos(X3))


def vjp_ok() -> None:
    out, vjp_fn = dp.vjp(lambda x: x * x, X3)
    np.testing.assert_allclose(vjp_fn(np.ones(3))[0], 2 * X3)


def jit_ok() -> None:
    f = dp.jit(lambda x: dnp.sum(dnp.exp(x) * 2.0))
    assert float(f(X3)) == pytest.approx(2 * np.exp(X3).sum())


def jac_ok() -> None:
    np.testing.assert_allclose(dp.jacfwd(lambda x: x ** 2)(X3), np.diag(2 * X3))
    np.testing.assert_allclose(dp.jacrev(lambda x: x ** 2)(X3), np.diag(2 * X3))


# ----------------------------------------------------------------------------------------------
# argnums


def test_argnums_out_of_range_and_malformed():
    with pytest.raises(ValueError, match=says("argnums=2", "called with 2 positional arguments",
                                              "valid argnums: 0..1")):
        dp.grad(lambda x, y: x * y, argnums=2)(1.0, 2.0)
    with pytest.raises(TypeError, match=says("argnums must be an int or a tuple of ints")):
        dp.grad(lambda x: x, argnums="0")(1.0)
    with pytest.raises(ValueError, match=says("names an argument twice")):
        dp.grad(lambda x, y: x * y, argnums=(0, -2))(1.0, 2.0)
    grad_ok()


def test_negative_argnums_out_of_range():
    with pytest.raises(ValueError, match=says("grad: argnums=-3", "valid argnums: 0..1",
                                              "pass an argnums that indexes")):
        dp.grad(lambda x, y: x * y, argnums=-3)(1.0, 2.0)
    assert dp.grad(lambda x, y: x * y, argnums=-1)(3.0, 2.0) == 3.0


def test_float_argnums():
    with pytest.raises(TypeError, match=says("grad: argnums must be an int or a tuple of ints",
                                             "got 0.0")):
        dp.grad(lambda x: x * 2.0, argnums=0.0)(1.0)
    assert dp.grad(lambda x: x * 2.0, argnums=0)(1.0) == 2.0


def test_float_inside_argnums_tuple_of_jacrev():
    with pytest.raises(TypeError, match=says("jacrev: argnums must be an int or a tuple of ints",
                                             "got (0, 1.0)")):
        dp.jacrev(lambda x, y: x * y, argnums=(0, 1.0))(X3, X3)
    jac = dp.jacrev(lambda x, y: x * y, argnums=(0, 1))(X3, 2 * X3)
    np.testing.assert_allclose(jac[0], np.diag(2 * X3))
    np.testing.assert_allclose(jac[1], np.diag(X3))


# ----------------------------------------------------------------------------------------------
# outputs of the differentiated function


def test_grad_of_non_scalar_output():
    with pytest.raises(TypeError, match=says("scalar output", "shape (3,)", "vjp or jacrev")):
        dp.grad(lambda x: x * 2.0)(np.ones(3))
    grad_ok()


def test_grad_of_non_float_output():
    with pytest.raises(TypeError, match=says("return a scalar float", "str")):
        dp.grad(lambda x: "loss")(1.0)
    with pytest.raises(TypeError, match=says("real float output", "complex")):
        dp.grad(lambda x: x * 1j)(1.0)
    grad_ok()


def test_value_and_grad_of_non_scalar_output():
    with pytest.raises(TypeError, match=says("value_and_grad requires a scalar output",
                                             "array of shape (3,)", "reduce it (e.g. with .sum())",
                                             "use vjp or jacrev")):
        dp.value_and_grad(lambda x: dnp.sin(x))(X3)
    value_and_grad_ok()


def test_grad_of_pytree_output():
    with pytest.raises(TypeError, match=says("grad requires the function to return a scalar float",
                                             "it returned list", "use vjp for pytree outputs")):
        dp.grad(lambda x: [dnp.sum(x), dnp.sum(x * x)])(X3)
    grad_ok()


def test_grad_of_boolean_output():
    # A comparison is piecewise constant: the message should say so, not talk about complex.
    with pytest.raises(TypeError, match=r"real float output.*dtype bool\b.*(integer or boolean|"
                                        r"piecewise constant)") as info:
        dp.grad(lambda x: dnp.sum(x) > 0)(X3)
    assert "complex" not in str(info.value)
    grad_ok()


def test_value_and_grad_of_complex_output():
    with pytest.raises(TypeError, match=says("value_and_grad requires a real float output",
                                             "dtype complex128", "take the real part or abs")):
        dp.value_and_grad(lambda x: dnp.sum(x) * 1j)(X3)
    value, g = dp.value_and_grad(lambda x: dnp.real(dnp.sum(x) * (1 + 1j)))(X3)
    assert value == pytest.approx(X3.sum())
    np.testing.assert_allclose(g, np.ones(3))


# ----------------------------------------------------------------------------------------------
# inputs that cannot be differentiated


@pytest.mark.parametrize("arg,kind", [(3, "int"), (True, "bool"), (np.int64(2), "int64")])
def test_grad_of_int_or_bool_argument(arg, kind):
    with pytest.raises(TypeError, match=says(f"argument 0 is {kind} ", "cannot be differentiated",
                                             "pass a float (e.g. ")):
        dp.grad(lambda x: x * 2.0)(arg)
    grad_ok()


def test_grad_of_int_array_and_str_arguments():
    with pytest.raises(TypeError, match=says("dtype int64", "x.astype(float)")):
        dp.grad(lambda x: dnp.sum(x))(np.arange(3))
    with pytest.raises(TypeError, match=says("argument 0 is str")):
        dp.grad(lambda x: 1.0)("hello")
    grad_ok()


def test_grad_of_object_argument():
    with pytest.raises(TypeError, match=says("grad: argument 0 is object",
                                             "cannot be differentiated",
                                             "pass floats or float arrays",
                                             "or leave it out of argnums")):
        dp.grad(lambda x: 1.0)(object())
    grad_ok()


def test_grad_of_boolean_array_argument():
    with pytest.raises(TypeError, match=says("argument 1 is ndarray", "array of dtype bool",
                                             "pass a float array (e.g. x.astype(float))")):
        dp.grad(lambda w, mask: dnp.sum(w * mask), argnums=1)(X3, np.array([True, False, True]))
    g = dp.grad(lambda w, mask: dnp.sum(w * mask))(X3, np.array([True, False, True]))
    np.testing.assert_array_equal(g, [1.0, 0.0, 1.0])


def test_value_and_grad_of_string_argument():
    with pytest.raises(TypeError, match=says("value_and_grad: argument 0 is str 'weights'",
                                             "cannot be differentiated")):
        dp.value_and_grad(lambda x: 1.0)("weights")
    value_and_grad_ok()


# ----------------------------------------------------------------------------------------------
# tangents (jvp) and cotangents (vjp_fn)


def test_jvp_tangent_mismatch():
    with pytest.raises(ValueError, match=says("same structure as primals")):
        dp.jvp(lambda x, y: x * y, (1.0, 2.0), (1.0,))
    with pytest.raises(ValueError, match=says("tangent for primals[0] has float64[2]",
                                              "primal has float64[3]")):
        dp.jvp(dnp.sin, (np.ones(3),), (np.ones(2),))
    with pytest.raises(ValueError, match=says("float32[3]", "primal has float64[3]")):
        dp.jvp(dnp.sin, (np.ones(3),), (np.ones(3, np.float32),))
    with pytest.raises(TypeError, match=says("must be tuples")):
        dp.jvp(dnp.sin, np.ones(3), np.ones(3))
    jvp_ok()


def test_vjp_fn_cotangent_mismatch():
    out, vjp_fn = dp.vjp(lambda x: {"a": x * 2.0, "b": dnp.sum(x)}, np.ones(3))
    with pytest.raises(ValueError, match=says("structure of the function's output",
                                              "expected PyTreeDef({'a': *, 'b': *})")):
        vjp_fn([np.ones(3), 1.0])
    with pytest.raises(ValueError, match=says("cotangent for out['a'] has float64[2]",
                                              "output has float64[3]")):
        vjp_fn({"a": np.ones(2), "b": 1.0})
    with pytest.raises(ValueError, match=says("has float32[3]", "output has float64[3]")):
        vjp_fn({"a": np.ones(3, np.float32), "b": 1.0})
    np.testing.assert_allclose(vjp_fn({"a": np.ones(3), "b": 1.0})[0], np.full(3, 3.0))


def test_jvp_tangents_with_another_structure():
    with pytest.raises(ValueError, match=says(
            "jvp: tangents must have the same structure as primals",
            "PyTreeDef(({'w': *},))", "PyTreeDef(([*],))")):
        dp.jvp(lambda p: dnp.sum(p["w"]), ({"w": X3},), ([np.ones(3)],))
    out, t = dp.jvp(lambda p: dnp.sum(p["w"]), ({"w": X3},), ({"w": np.ones(3)},))
    assert t == 3.0
    jvp_ok()


def test_jvp_none_tangent_for_a_float_primal():
    with pytest.raises(TypeError, match=says("jvp: the tangent for primals[1] is None",
                                             "primal is a float (float64[3])",
                                             "pass a tangent of the same shape and dtype",
                                             "zeros for no perturbation")):
        dp.jvp(lambda x, y: x * y, (X3, X3), (np.ones(3), None))
    jvp_ok()


def test_jvp_nested_tangent_shape_names_the_path():
    with pytest.raises(ValueError, match=says("tangent for primals[0]['layer'][1] has float64[2]",
                                              "primal has float64[3]",
                                              "must have its primal's shape and dtype")):
        dp.jvp(lambda p: p["layer"][1], ({"layer": [X3, X3]},),
               ({"layer": [np.ones(3), np.ones(2)]},))
    jvp_ok()


def test_jvp_integer_tangent_for_a_float_primal():
    with pytest.raises(ValueError, match=says("tangent for primals[0] has int64[3]",
                                              "primal has float64[3]",
                                              "must have its primal's shape and dtype")):
        dp.jvp(dnp.sin, (X3,), (np.ones(3, np.int64),))
    jvp_ok()


def test_vjp_fn_integer_cotangent():
    out, vjp_fn = dp.vjp(lambda x: x * 2.0, X3)
    with pytest.raises(ValueError, match=says("cotangent for out has int64[3]",
                                              "output has float64[3]",
                                              "pass a cotangent of the output's shape and dtype")):
        vjp_fn(np.ones(3, np.int64))
    np.testing.assert_allclose(vjp_fn(np.ones(3))[0], np.full(3, 2.0))  # still usable


def test_vjp_fn_none_cotangent_for_a_float_output():
    out, vjp_fn = dp.vjp(lambda x: (x * 2.0, dnp.sum(x)), X3)
    with pytest.raises(TypeError, match=r"cotangent for out\[1\] is None.*output is a float\b.*"
                                        r"float64\[\].*pass (a cotangent|zeros) of (the same|its) "
                                        r"shape and dtype"):
        vjp_fn((np.ones(3), None))
    np.testing.assert_allclose(vjp_fn((np.ones(3), 1.0))[0], np.full(3, 3.0))


def test_vjp_fn_tuple_around_a_single_output_cotangent():
    out, vjp_fn = dp.vjp(lambda x: x * 2.0, X3)
    with pytest.raises(ValueError, match=says("cotangent must have the structure of the "
                                              "function's output", "expected PyTreeDef(*)",
                                              "got PyTreeDef((*,))")):
        vjp_fn((np.ones(3),))
    vjp_ok()


# ----------------------------------------------------------------------------------------------
# has_aux


def aux_message(fname: str, returned: str) -> str:
    return says(f"{fname} with has_aux=True", f"it returned {returned};",
                "return (output, aux) or drop has_aux=True")


def test_has_aux_without_pair():
    with pytest.raises(TypeError, match=aux_message("grad", "an array float64[]")):
        dp.grad(lambda x: x * 2.0, has_aux=True)(1.0)
    grad_ok()


def test_has_aux_grad_returning_a_dict():
    with pytest.raises(TypeError, match=aux_message("grad", "dict")):
        dp.grad(lambda x: {"loss": dnp.sum(x)}, has_aux=True)(X3)
    g, aux = dp.grad(lambda x: (dnp.sum(x), {"n": 3}), has_aux=True)(X3)
    np.testing.assert_array_equal(g, np.ones(3))
    assert aux == {"n": 3}


def test_has_aux_value_and_grad_returning_a_triple():
    with pytest.raises(TypeError, match=aux_message("value_and_grad", "tuple of length 3")):
        dp.value_and_grad(lambda x: (dnp.sum(x), 1, 2), has_aux=True)(X3)
    value_and_grad_ok()


def test_has_aux_vjp_returning_an_array():
    with pytest.raises(TypeError, match=aux_message("vjp", "an array float64[3]")):
        dp.vjp(lambda x: x * 2.0, X3, has_aux=True)
    out, vjp_fn, aux = dp.vjp(lambda x: (x * 2.0, dnp.sum(x)), X3, has_aux=True)
    assert aux == pytest.approx(3.5)
    vjp_ok()


def test_has_aux_jvp_returning_an_array():
    with pytest.raises(TypeError, match=aux_message("jvp", "an array float64[3]")):
        dp.jvp(dnp.sin, (X3,), (np.ones(3),), has_aux=True)
    jvp_ok()


def test_has_aux_jacfwd_returning_an_array():
    with pytest.raises(TypeError, match=aux_message("jacfwd", "an array float64[3]")):
        dp.jacfwd(lambda x: x ** 2, has_aux=True)(X3)
    jac_ok()


def test_has_aux_jacrev_returning_an_array():
    with pytest.raises(TypeError, match=aux_message("jacrev", "an array float64[3]")):
        dp.jacrev(lambda x: x ** 2, has_aux=True)(X3)
    jac_ok()


# ----------------------------------------------------------------------------------------------
# mutation of traced arrays


IMMUTABLE = says("traced arrays are immutable", "x = x.at[idx].set(v)")


def test_setitem_on_traced_array():
    def f(x):
        x[0] = 1.0
        return dnp.sum(x)
    with pytest.raises(TypeError, match=IMMUTABLE):
        dp.grad(f)(np.ones(3))
    grad_ok()


def test_setitem_with_ellipsis_under_grad():
    def f(x):
        x[...] = 0.0
        return dnp.sum(x)
    with pytest.raises(TypeError, match=IMMUTABLE):
        dp.grad(f)(X3)
    g = dp.grad(lambda x: dnp.sum(x.at[...].set(0.0) + x * x))(X3)
    np.testing.assert_allclose(g, 2 * X3)


def test_setitem_under_jit():
    def f(x):
        x[0] = 1.0
        return x
    with pytest.raises(TypeError, match=IMMUTABLE):
        dp.jit(f)(X3)
    np.testing.assert_allclose(dp.jit(lambda x: x.at[0].set(1.0))(X3), [1.0, 1.0, 2.0])


def test_ufunc_out_argument_under_jvp():
    def f(x):
        np.add(x, 1.0, out=x)
        return x
    with pytest.raises(TypeError, match=says("np.add(..., out=...) writes into an array in place",
                                             "use the returned value instead")):
        dp.jvp(f, (X3,), (np.ones(3),))
    out, t = dp.jvp(lambda x: np.add(x, 1.0), (X3,), (np.ones(3),))
    np.testing.assert_allclose(out, X3 + 1.0)
    np.testing.assert_allclose(t, np.ones(3))


def test_augmented_assignment_on_a_tracer_rebinds():
    # Not a misuse: `x += 1` makes a new traced value (as for an immutable number).
    def f(x):
        x += 1.0
        x *= x
        return dnp.sum(x)
    np.testing.assert_allclose(dp.grad(f)(X3), 2 * (X3 + 1.0))
    grad_ok()


# ----------------------------------------------------------------------------------------------
# concrete values under jit


CONCRETIZATION = ("of a value traced by jit", "only the shape and dtype",
                  "mark the argument static", "jit(f, static_argnums=(i,))",
                  "dnp.where(cond, a, b)")


def test_bool_of_abstract_value_under_jit():
    def relu_sum(x):
        return x if dnp.sum(x) > 0 else -x
    with pytest.raises(dp.ConcretizationError, match=says("bool() (an `if`", *CONCRETIZATION)):
        dp.jit(relu_sum)(X3)
    assert issubclass(dp.ConcretizationError, TypeError)
    f = dp.jit(lambda x: dnp.where(dnp.sum(x) > 0, x, -x))
    np.testing.assert_allclose(f(X3), X3)
    np.testing.assert_allclose(f(-X3), X3)


def test_float_of_abstract_value_under_jit():
    with pytest.raises(dp.ConcretizationError, match=says("float()", *CONCRETIZATION)):
        dp.jit(lambda x, n: x * float(n))(X3, 2.0)
    np.testing.assert_allclose(dp.jit(lambda x, n: x * float(n), static_argnums=1)(X3, 2.0),
                               2 * X3)


def test_int_of_abstract_value_under_jit():
    with pytest.raises(dp.ConcretizationError, match=says("int()", *CONCRETIZATION)):
        dp.jit(lambda x: x[int(x[0])])(X3)
    jit_ok()


def test_asarray_of_abstract_value_under_jit():
    with pytest.raises(dp.ConcretizationError, match=says("np.asarray()", *CONCRETIZATION)):
        dp.jit(lambda x: np.asarray(x) * 2.0)(X3)
    jit_ok()


def test_item_of_traced_value():
    with pytest.raises(TypeError, match=says(".item()", "of a traced value",
                                             "would drop its derivative",
                                             "diffprog.stop_gradient")):
        dp.grad(lambda x: x.item() * x)(2.0)
    assert dp.grad(lambda x: dp.stop_gradient(x) * x)(2.0) == 2.0


def test_conversions_of_traced_values_raise():
    with pytest.raises(TypeError, match=says("float() of a traced value",
                                             "would drop its derivative", "stop_gradient")):
        dp.grad(lambda x: float(x))(1.0)
    with pytest.raises(TypeError, match=says("np.asarray()", "drop its derivative")):
        dp.grad(lambda x: np.asarray(x).sum())(np.ones(2))
    with pytest.raises(TypeError, match=says("int() of a traced value")):
        dp.grad(lambda x: int(x) * x)(1.0)
    grad_ok()


def test_complex_of_traced_value():
    with pytest.raises(TypeError, match=says("complex() of a traced value",
                                             "would drop its derivative")):
        dp.grad(lambda x: complex(x).real)(2.0)
    grad_ok()


def test_len_and_iteration_of_a_zero_dimensional_traced_value():
    with pytest.raises(TypeError, match=says("len() of a 0-d traced value")):
        dp.grad(lambda x: len(x) * x)(2.0)
    with pytest.raises(TypeError, match=says("iteration over a 0-d traced value")):
        dp.grad(lambda x: sum(x))(2.0)
    # Iterating over a 1-d traced value works, as for arrays.
    np.testing.assert_array_equal(dp.grad(lambda x: sum(v * v for v in x))(X3), 2 * X3)


def test_float_traced_value_as_an_index():
    with pytest.raises(TypeError, match=says("a traced float value cannot be used as an index",
                                             "indices must be ints, slices, or integer/boolean "
                                             "arrays")):
        dp.jvp(lambda x, i: x[i], (X3, 1.0), (np.ones(3), 1.0))
    with pytest.raises(TypeError, match=says("cannot be used as an index")):
        dp.grad(lambda x: x[x])(np.ones(2))
    out, t = dp.jvp(lambda x, i: x[i], (X3, 1), (np.ones(3), None))
    assert out == 1.0 and t == 1.0


# ----------------------------------------------------------------------------------------------
# NumPy functions without diffprog support


def test_unsupported_numpy_function_and_ufunc_under_grad():
    with pytest.raises(TypeError, match=says("NumPy ufunc np.nextafter is not differentiable yet")):
        dp.grad(lambda x: np.nextafter(x, 3.0))(2.0)
    with pytest.raises(TypeError, match=says("np.trim_zeros is not differentiable yet")):
        dp.grad(lambda x: np.trim_zeros(x).sum())(np.ones(4))
    with pytest.raises(TypeError, match=says("np.add.reduce is not differentiable yet")):
        dp.grad(lambda x: np.add.reduce(x))(np.ones(4))
    with pytest.raises(TypeError, match=says("out=", "in place")):
        dp.grad(lambda x: np.sin(x, out=np.empty(2)).sum())(np.ones(2))
    grad_ok()


def test_unsupported_numpy_function_under_jvp():
    # a function of a NumPy submodule is named with its submodule
    with pytest.raises(TypeError, match=says("NumPy function np.linalg.tensorinv is not "
                                             "differentiable yet",
                                             "diffprog has no rule for it",
                                             "Use a diffprog.numpy function",
                                             "or wrap the computation in a custom rule")):
        dp.jvp(lambda x: np.linalg.tensorinv(x[:2] * np.eye(2)), (X3,), (np.ones(3),))
    jvp_ok()


def test_unsupported_numpy_ufunc_under_jit():
    with pytest.raises(TypeError, match=says("NumPy ufunc np.nextafter is not differentiable yet")):
        dp.jit(lambda x: np.nextafter(x, 3.0))(X3)
    jit_ok()


def test_unsupported_numpy_linalg_function_under_grad():
    with pytest.raises(TypeError, match=says("np.linalg.tensorsolve is not differentiable yet")):
        dp.grad(lambda a: np.sum(np.linalg.tensorsolve(a, np.ones(2))))(np.eye(2))
    grad_ok()


# ----------------------------------------------------------------------------------------------
# shapes


def test_reshape_of_traced_value_to_an_incompatible_shape():
    with pytest.raises(ValueError, match=says("cannot reshape array of size 3", "shape (2,")):
        dp.grad(lambda x: dnp.sum(dnp.reshape(x, (2, 2))))(X3)
    np.testing.assert_array_equal(dp.grad(lambda x: dnp.sum(dnp.reshape(x, (3, 1))))(X3),
                                  np.ones(3))


def test_matmul_of_traced_values_with_unaligned_shapes():
    with pytest.raises(ValueError, match=says("matmul: shapes (3,) and (2, 2) are not aligned",
                                              "3 (last axis of x1) != 2 (second-to-last axis")):
        dp.grad(lambda x: dnp.sum(x @ np.ones((2, 2))))(X3)
    np.testing.assert_allclose(dp.grad(lambda x: dnp.sum(x @ np.ones((3, 2))))(X3),
                               np.full(3, 2.0))


def test_broadcasting_traced_values_with_incompatible_shapes():
    with pytest.raises(ValueError, match=says("shape (3,)", "shape (2,)")):
        dp.grad(lambda x: dnp.sum(x + np.ones(2)))(X3)
    grad_ok()


# ----------------------------------------------------------------------------------------------
# pytrees


def test_tree_map_over_unequal_structures_names_the_path():
    with pytest.raises(ValueError, match=says("tree_map: all trees must have the same structure",
                                              "list of length 2 at ['layers'][1]",
                                              "list of length 3")):
        dp.tree_map(lambda a, b: a + b, {"layers": [1.0, [2.0, 3.0]]},
                    {"layers": [1.0, [2.0, 3.0, 4.0]]})
    assert dp.tree_map(lambda a, b: a + b, {"layers": [1.0, [2.0]]},
                       {"layers": [1.0, [3.0]]}) == {"layers": [2.0, [5.0]]}


class Registered:
    def __init__(self, a, b):
        self.a, self.b = a, b


dp.register_pytree_node(Registered, lambda r: ((r.a, r.b), None),
                        lambda _, children: Registered(*children))


def test_registering_a_pytree_node_twice():
    with pytest.raises(ValueError, match=says("test_misuse.Registered is already registered")):
        dp.register_pytree_node(Registered, lambda r: ((r.a,), None),
                                lambda _, children: Registered(children[0], 0.0))
    # The first registration stands.
    g = dp.grad(lambda r: r.a * r.b)(Registered(2.0, 3.0))
    assert isinstance(g, Registered) and (g.a, g.b) == (3.0, 2.0)


def test_registering_a_builtin_container_or_an_instance():
    with pytest.raises(ValueError, match=says("builtins.dict is already registered")):
        dp.register_pytree_node(dict, lambda d: ((), None), lambda _, c: {})
    with pytest.raises(TypeError, match=says("register_pytree_node expects a class")):
        dp.register_pytree_node(Registered(1.0, 2.0), lambda r: ((), None), lambda _, c: None)
    assert dp.tree_leaves({"b": 1.0, "a": Registered(2.0, 3.0)}) == [2.0, 3.0, 1.0]


def test_tree_unflatten_with_the_wrong_number_of_leaves():
    treedef = dp.tree_structure({"a": 1.0, "b": [2.0, 3.0]})
    with pytest.raises(ValueError, match=says("tree_unflatten: expected 3 leaves",
                                              "PyTreeDef({'a': *, 'b': [*, *]})", "got 2")):
        dp.tree_unflatten(treedef, [1.0, 2.0])
    assert dp.tree_unflatten(treedef, [1, 2, 3]) == {"a": 1, "b": [2, 3]}


# ----------------------------------------------------------------------------------------------
# custom rules


def make_scale(bwd):
    @dp.custom_vjp
    def scale(x, y):
        return x * y
    scale.defvjp(lambda x, y: (x * y, (x, y)), bwd)
    return scale


def custom_ok() -> None:
    scale = make_scale(lambda res, ct: (ct * res[1], dnp.sum(ct * res[0])))
    gx, gy = dp.grad(lambda x, y: dnp.sum(scale(x, y)), argnums=(0, 1))(X3, 2.0)
    np.testing.assert_allclose(gx, np.full(3, 2.0))
    assert gy == pytest.approx(X3.sum())


def test_custom_vjp_bwd_returning_a_bare_array():
    scale = make_scale(lambda res, ct: ct * res[1])
    with pytest.raises(TypeError, match=says("custom_vjp bwd of scale must return a tuple",
                                             "one cotangent per differentiable argument (2)",
                                             "got ndarray")):
        dp.grad(lambda x: dnp.sum(scale(x, 2.0)))(X3)
    custom_ok()


def test_custom_vjp_bwd_returning_too_few_cotangents():
    scale = make_scale(lambda res, ct: (ct * res[1],))
    with pytest.raises(TypeError, match=says("one cotangent per differentiable argument (2)",
                                             "got tuple of length 1")):
        dp.grad(lambda x: dnp.sum(scale(x, 2.0)))(X3)
    custom_ok()


def test_custom_vjp_bwd_returning_the_wrong_structure():
    @dp.custom_vjp
    def weighted(p):
        return p["w"] * 2.0
    weighted.defvjp(lambda p: (p["w"] * 2.0, None), lambda res, ct: ([ct * 2.0],))
    with pytest.raises(TypeError, match=says("custom_vjp bwd of weighted",
                                             "structure PyTreeDef(([*],))",
                                             "arguments have structure PyTreeDef(({'w': *},))")):
        dp.grad(lambda x: dnp.sum(weighted({"w": x})))(X3)
    custom_ok()


def test_custom_vjp_bwd_returning_the_wrong_shape():
    scale = make_scale(lambda res, ct: (dnp.sum(ct * res[1]), dnp.sum(ct * res[0])))
    with pytest.raises(ValueError, match=says("custom_vjp bwd of scale",
                                              "cotangent 0 has shape ()",
                                              "argument has shape (3,)")):
        dp.grad(lambda x: dnp.sum(scale(x, 2.0)))(X3)
    custom_ok()


def test_custom_vjp_under_forward_mode():
    scale = make_scale(lambda res, ct: (ct * res[1], dnp.sum(ct * res[0])))
    with pytest.raises(TypeError, match=says("scale is a custom_vjp function",
                                             "reverse-mode rule only",
                                             "forward mode (jvp, jacfwd, hessian, linearize)",
                                             "diffprog.custom_jvp")):
        dp.jvp(lambda x: scale(x, 2.0), (X3,), (np.ones(3),))
    custom_ok()
    jvp_ok()


def test_custom_vjp_called_before_defvjp():
    @dp.custom_vjp
    def pending(x):
        return x * 2.0
    with pytest.raises(TypeError, match=says("custom_vjp function pending has no rule yet",
                                             "pending.defvjp(fwd, bwd)")):
        dp.grad(pending)(1.0)
    pending.defvjp(lambda x: (x * 2.0, None), lambda res, ct: (ct * 2.0,))
    assert dp.grad(pending)(1.0) == 2.0


def test_custom_jvp_called_before_defjvp():
    @dp.custom_jvp
    def pending(x):
        return x * 2.0
    with pytest.raises(TypeError, match=says("custom_jvp function pending has no rule yet",
                                             "pending.defjvp(rule)")):
        dp.jvp(pending, (1.0,), (1.0,))
    pending.defjvp(lambda p, t: (pending(p[0]), 2.0 * t[0]))
    assert dp.jvp(pending, (1.0,), (1.0,))[1] == 2.0


def test_stop_gradient_on_non_arrays_is_harmless():
    tree = {"lr": 0.1, "name": "adam", "steps": 3, "none": None, "shape": (2, 3)}
    assert dp.stop_gradient(tree) == tree
    assert dp.stop_gradient("text") == "text"

    def f(x):
        x_const, tag, n = dp.stop_gradient((x, "tag", 2))
        return x * x_const * n
    assert dp.grad(f)(3.0) == 6.0


def test_declaring_a_primitive_name_twice():
    with pytest.raises(ValueError, match=says("primitive named 'sin' is already declared")):
        dp.Primitive("sin", np.sin)
    grad_ok()


# ----------------------------------------------------------------------------------------------
# jit arguments


def test_jit_with_an_unhashable_static_argument():
    f = dp.jit(lambda x, shape: dnp.reshape(x, shape), static_argnums=1)
    with pytest.raises(TypeError, match=says("jit: a static argument or non-array leaf is not "
                                             "hashable", "unhashable type: 'list'",
                                             "use tuples instead of lists")):
        f(X3, [3, 1])
    assert f(X3, (3, 1)).shape == (3, 1)


def test_jit_static_argnums_out_of_range():
    f = dp.jit(lambda x: x * 2.0, static_argnums=2)
    with pytest.raises(ValueError, match=says("jit: static_argnums=(2,)",
                                              "called with 1 positional argument")):
        f(X3)
    np.testing.assert_allclose(dp.jit(lambda x: x * 2.0)(X3), 2 * X3)


def test_jit_float_static_argnums():
    with pytest.raises(TypeError, match=says("static_argnums must be an int or a tuple of ints",
                                             "got 1.0")):
        dp.jit(lambda x, n: x * n, static_argnums=1.0)(X3, 2)
    np.testing.assert_allclose(dp.jit(lambda x, n: x * n, static_argnums=1)(X3, 2), 2 * X3)


def test_jit_unknown_executor():
    with pytest.raises(ValueError, match=says("unknown executor 'gpu'", "use 'numpy'", "'numba'")):
        dp.jit(lambda x: x * 2.0, executor="gpu")(X3)
    np.testing.assert_allclose(dp.jit(lambda x: x * 2.0, executor="numpy")(X3), 2 * X3)


def test_jit_closing_over_a_value_of_an_enclosing_transform():
    def f(x):
        return dp.jit(lambda y: x * y)(2.0)
    with pytest.raises(TypeError, match=says("value traced by an enclosing transform",
                                             "closes over it rather than taking it as an argument",
                                             "pass the value as an argument")):
        dp.grad(f)(3.0)
    assert dp.grad(lambda x: dp.jit(lambda x, y: x * y)(x, 2.0))(3.0) == 2.0


# ----------------------------------------------------------------------------------------------
# arguments of the other transforms and of check_grads


def test_check_grads_with_a_bare_array_for_args():
    with pytest.raises(TypeError, match=says("check_grads: args must be a tuple",
                                             "e.g. (x,)")):
        dp.check_grads(dnp.sin, X3)
    dp.check_grads(dnp.sin, (X3,))


def test_check_grads_with_an_unknown_mode():
    with pytest.raises(ValueError, match=says("unknown mode 'reverse'", "use 'fwd' and/or 'rev'")):
        dp.check_grads(dnp.sin, (X3,), modes=("reverse",))
    dp.check_grads(dnp.sin, (X3,), modes=("rev",))


def test_hvp_with_bare_arrays_for_primals():
    def f(x):
        return dnp.sum(x ** 3)
    with pytest.raises(TypeError, match=says("hvp: primals and tangents must be tuples",
                                             "hvp(f, (x,), (v,))")):
        dp.hvp(f, X3, np.ones(3))
    np.testing.assert_allclose(dp.hvp(f, (X3,), (np.ones(3),))[0], 6 * X3)


def test_linearize_f_jvp_with_a_wrong_tangent_shape():
    out, f_jvp = dp.linearize(dnp.sin, X3)
    with pytest.raises(ValueError, match=says("linearize: tangent 0 has float64[2]",
                                              "primal has float64[3]")):
        f_jvp(np.ones(2))
    with pytest.raises(ValueError, match=says("f_jvp takes tangents with the structure of the "
                                              "primals")):
        f_jvp(np.ones(3), np.ones(3))
    np.testing.assert_allclose(f_jvp(np.ones(3)), np.cos(X3))


# ----------------------------------------------------------------------------------------------
# escaped tracers: stored outside the transform and used after it ended


def escaped_message(transform: str, line: int) -> str:
    return says(f"a traced value escaped from {transform}", f"started at {__file__}:{line}",
                "return them from the function (as an output or as aux)")


def test_escaped_tracer_from_jvp():
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2.0
    line = sys._getframe().f_lineno + 1
    dp.jvp(f, (X3,), (np.ones(3),))
    with pytest.raises(RuntimeError, match=escaped_message("jvp", line)):
        dnp.sin(leaked[0])
    with pytest.raises(RuntimeError, match=escaped_message("jvp", line)):
        bool(leaked[0][0] > 0)  # comparisons go through the trace too
    jvp_ok()


def test_escaped_tracer_from_jit():
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2.0
    jitted = dp.jit(f)
    line = sys._getframe().f_lineno + 1
    jitted(X3)
    with pytest.raises(RuntimeError, match=escaped_message("jit", line)):
        leaked[0] + 1.0
    np.testing.assert_allclose(jitted(X3), 2 * X3)  # the cached program is fine


def test_escaped_tracer_used_inside_a_later_grad():
    leaked = []

    def f(x):
        leaked.append(x)
        return dnp.sum(x)
    line = sys._getframe().f_lineno + 1
    _, vjp_fn = dp.vjp(f, X3)
    with pytest.raises(RuntimeError, match=escaped_message("vjp", line)):
        dp.grad(lambda y: dnp.sum(y * leaked[0]))(X3)
    np.testing.assert_array_equal(vjp_fn(1.0)[0], np.ones(3))  # vjp_fn itself still works
    grad_ok()


def test_escaped_tracer_used_inside_a_later_jit():
    leaked = []

    def f(x):
        leaked.append(x)
        return dnp.sum(x)
    line = sys._getframe().f_lineno + 1
    dp.grad(f)(X3)
    with pytest.raises(RuntimeError, match=escaped_message("grad", line)):
        dp.jit(lambda y: y * leaked[0])(X3)
    jit_ok()


def test_escaped_tracer_never_gives_a_number():
    # No silent wrong values: every arithmetic or NumPy use of an escaped tracer raises.
    leaked = []
    dp.grad(lambda x: leaked.append(x) or dnp.sum(x * x))(X3)
    tracer = leaked[0]
    uses = [lambda: tracer * 2.0, lambda: 2.0 - tracer, lambda: np.sin(tracer),
            lambda: np.sum(tracer), lambda: tracer.sum(), lambda: tracer[0],
            lambda: dnp.exp(tracer), lambda: tracer @ np.ones(3), lambda: -tracer]
    for use in uses:
        with pytest.raises(RuntimeError, match=says("a traced value escaped from grad")):
            use()
    for convert in (float, np.asarray):
        with pytest.raises(TypeError):
            convert(tracer)
    grad_ok()


Point = collections.namedtuple("Point", ["x", "y"])


def test_grad_of_namedtuple_with_a_static_field_after_a_misuse():
    # A misuse, then a correct call with a structured argument.
    with pytest.raises(TypeError, match=says("argument 0 is int 3")):
        dp.grad(lambda p: p * 2.0)(3)
    g = dp.grad(lambda p: p.x * p.x * len(p.y))(Point(2.0, "label"))
    assert isinstance(g, Point) and g.x == 2 * 2.0 * 5 and g.y is None


def test_grad_of_a_pytree_without_float_leaves():
    with pytest.raises(TypeError, match=says("argument 0 is a list whose leaves are all static",
                                             "(no floats: int)", "pass floats")):
        dp.grad(lambda xs: 1.0)([1, 2])
    grad_ok()


def test_linearize_tangent_of_another_dtype():
    _, f_jvp = dp.linearize(dnp.sin, np.ones(3))
    with pytest.raises(ValueError, match=says("tangent 0 has float32[3]",
                                              "primal has float64[3]")):
        f_jvp(np.ones(3, np.float32))
    np.testing.assert_allclose(f_jvp(np.ones(3)), np.cos(np.ones(3)))


def test_hashing_a_traced_value():
    with pytest.raises(TypeError, match=says("traced values are not hashable", "id(x)")):
        dp.grad(lambda x: {x: 1} and x)(1.0)
    grad_ok()


def test_exception_inside_f_leaves_state_clean():
    def f(x):
        dnp.sin(x)
        raise RuntimeError("boom")
    for _ in range(3):
        with pytest.raises(RuntimeError, match="boom"):
            dp.grad(f)(1.0)
        grad_ok()
    with pytest.raises(RuntimeError, match="boom"):
        dp.jvp(f, (1.0,), (1.0,))
    assert dp.jvp(dnp.sin, (0.0,), (1.0,))[1] == 1.0
