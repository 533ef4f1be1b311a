"""Traced integer indices under jit (issue 11): gathers and scatters whose index arrays are
arguments of the jitted function, so their values are unknown while tracing.

Every case runs eagerly (the reference: concrete indices, the ``getitem`` primitives) and under
``jit`` with both executors (the ``gather`` primitives), and so do their gradients. Also here:
``nn.cross_entropy`` with integer labels, and ``where`` with a traced condition and Python
scalar branches.
"""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.jit import jit, trace_graph
from diffprog.prims import gather as G

EXECUTORS = ["numpy", "numba"]


def _same(got, want, exact=True):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def _check(f, x, *ints, grad=True, exact_grad=True):
    """f(x, *ints) eagerly == under jit with each executor; the same for grad in x."""
    want = f(x, *ints)
    for executor in EXECUTORS:
        _same(jit(f, executor=executor)(x, *ints), want)
    if grad:
        g = dp.grad(lambda x, *i: dnp.sum(dnp.sin(f(x, *i))))
        want_g = g(x, *ints)
        for executor in EXECUTORS:
            _same(jit(g, executor=executor)(x, *ints), want_g, exact=exact_grad)


@pytest.fixture
def x(rng):
    return rng.standard_normal((5, 4, 3))


# -- gathers -------------------------------------------------------------------------------------

GATHERS = {
    "one_array": (lambda x, i: x[i], [np.array([0, 4, -1, 2, 2])]),
    "array_2d": (lambda x, i: x[i], [np.array([[0, 1], [-5, 3]])]),
    "scalar_array": (lambda x, i: x[i], [np.array(3)]),
    "numpy_int": (lambda x, i: x[:, i], [np.int64(-2)]),
    "two_arrays": (lambda x, i, j: x[i, j], [np.array([0, 1, 4]), np.array([3, -1, 0])]),
    "broadcast": (lambda x, i, j: x[i[:, None], j], [np.array([0, 1, 4]), np.array([3, 0])]),
    "three_arrays": (lambda x, i, j, k: x[i, j, k],
                     [np.array([0, 1]), np.array([[3], [0]]), np.array([2, -3])]),
    "slice_then_array": (lambda x, i: x[1:4, i], [np.array([[0, 3], [2, 2]])]),
    "array_slice_array": (lambda x, i, j: x[i, :, j], [np.array([0, 4]), np.array([2, 1])]),
    "newaxis": (lambda x, i: x[None, i, ..., None], [np.array([1, 1, 0])]),
    "ellipsis": (lambda x, i: x[..., i], [np.array([2, 0, 1, 1])]),
    "mixed_constant": (lambda x, i: x[np.array([0, 2]), i], [np.array([1, 3])]),
    "int_with_array": (lambda x, i: x[2, i, 1], [np.array([0, 3, 3])]),
    "uint_index": (lambda x, i: x[i], [np.array([4, 0], dtype=np.uint8)]),
    "int32_index": (lambda x, i: x[:, i], [np.array([3, -4], dtype=np.int32)]),
    "empty_index": (lambda x, i: x[i], [np.zeros(0, dtype=np.int64)]),
    "take": (lambda x, i: dnp.take(x, i, axis=1), [np.array([[3, 0], [1, 1]])]),
    "take_flat": (lambda x, i: dnp.take(x, i), [np.array([59, 0, -1, 7])]),
    "take_wrap": (lambda x, i: dnp.take(x, i, axis=2, mode="wrap"), [np.array([-7, 5, 3])]),
    "take_clip": (lambda x, i: dnp.take(x, i, axis=0, mode="clip"), [np.array([-7, 9, 2])]),
    "np_take": (lambda x, i: np.take(x, i, axis=-1), [np.array([2, 2, 0])]),
    "take_along_axis": (lambda x, i: dnp.take_along_axis(x, i, axis=1),
                        [np.array([[[0, 1, 3]], [[3, 3, 3]], [[1, 0, 2]], [[0, 0, 0]],
                                   [[2, 1, 0]]])]),
    "np_take_along_axis": (lambda x, i: np.take_along_axis(x, i, axis=-1),
                           [np.zeros((5, 4, 1), dtype=np.int64)]),
}


@pytest.mark.parametrize("name", list(GATHERS))
def test_gather_with_traced_indices_matches_eager(name, x):
    f, ints = GATHERS[name]
    _check(f, x, *ints)


def test_gathered_rows_accumulate_cotangents(x):
    i = np.array([1, 1, 1, -4])
    g = jit(dp.grad(lambda x, i: dnp.sum(x[i])))(x, i)
    want = np.zeros_like(x)
    want[1] = 4.0
    _same(g, want)


def test_indices_are_operands_not_params(x):
    graph = trace_graph(lambda x, i: x[i], (x, np.array([0, 1])))
    (node,) = [n for n in graph.nodes if n.prim is G.gather]
    assert node.params["idx"] == (G.Slot(0),)
    # one program serves every index of the same shape
    f = jit(lambda x, i: x[i])
    for i in ([0, 1], [4, 4], [-1, 2]):
        _same(f(x, np.array(i)), x[np.array(i)])
    assert f.traces == 1


def test_out_of_bounds_raises_numpys_index_error_when_the_program_runs(x):
    f = jit(lambda x, i: x[i], executor="numpy")
    with pytest.raises(IndexError, match="out of bounds"):
        f(x, np.array([5]))
    with pytest.raises(IndexError, match="out of bounds"):
        f(x, np.array([-6]))


def test_float_index_and_traced_masks_still_raise(x):
    with pytest.raises(TypeError, match="float value cannot be used as an index"):
        jit(lambda x, i: x[i])(x, np.array([0.0]))
    with pytest.raises(TypeError, match="boolean mask traced by jit"):
        jit(lambda x, m: x[m])(x, np.array([True, False, True, False, True]))
    with pytest.raises(TypeError, match="slice bound"):
        jit(lambda x, i: x[i:])(x, np.int64(1))


def test_log_softmax_label_gathers_issue_examples(rng):
    z = rng.standard_normal((6, 4))
    y = np.array([0, 3, 1, 1, 2, 0])
    b = np.arange(6)
    cases = [
        lambda z, y: -dnp.sum(dp.nn.log_softmax(z)[b, y]),
        lambda z, y: -dnp.sum(dnp.take_along_axis(dp.nn.log_softmax(z), y[:, None], axis=1)),
        lambda z, y: dnp.sum(dp.nn.log_softmax(z[0])[y]),
    ]
    for f in cases:
        _check(f, z, y, exact_grad=False)
    lp = z - np.log(np.exp(z).sum(1, keepdims=True))
    np.testing.assert_allclose(jit(cases[0])(z, y), -lp[b, y].sum(), rtol=1e-13)


# -- scatters --------------------------------------------------------------------------------------

REPEATS = np.array([1, 3, 1, -4, 0, 1])  # position 1 three times (once as -4)
UPDATES = {
    "add": lambda x, i, v: dnp.at(x)[i].add(v),
    "set": lambda x, i, v: dnp.at(x)[i].set(v),
    "multiply": lambda x, i, v: dnp.at(x)[i].multiply(v),
    "min": lambda x, i, v: dnp.at(x)[i].min(v),
    "max": lambda x, i, v: dnp.at(x)[i].max(v),
}


@pytest.mark.parametrize("op", list(UPDATES))
@pytest.mark.parametrize("index", ["distinct", "repeated", "two_arrays_slice"])
def test_at_updates_with_traced_indices_match_eager(op, index, rng):
    x = rng.standard_normal((5, 3))
    if index == "distinct":
        i, v = (np.array([4, 0, 2]),), rng.standard_normal((3, 3))
        f = UPDATES[op]
    elif index == "repeated":
        i, v = (REPEATS,), rng.standard_normal((6, 3))
        v[2, 1] = v[0, 1]  # ties among the writes to one position
        v[0, 2] = x[1, 2]  # and with x itself
        f = UPDATES[op]
    else:
        i, v = (np.array([1, 1, -1]), np.array([0, -3, 2])), rng.standard_normal((3, 2))

        def f(x, *iv, op=op):
            *ii, vv = iv
            return UPDATES[op](x[:, None, :].repeat(2, axis=1), (ii[0], slice(None), ii[1]), vv)
    want = f(x, *i, v)
    for executor in EXECUTORS:
        _same(jit(f, executor=executor)(x, *i, v), want)
    # derivatives in x and in the values: the same weights as the eager write-by-write rounds
    grad = dp.grad(lambda x, v, *i: dnp.sum(dnp.sin(f(x, *i, v)) * np.arange(1.0, 1 + want.size)
                                            .reshape(want.shape)), argnums=(0, 1))
    want_g = grad(x, v, *i)
    for executor in EXECUTORS:
        got_g = jit(grad, executor=executor)(x, v, *i)
        for got, w in zip(got_g, want_g):
            _same(got, w, exact=False)


def test_at_update_with_scalar_value_and_plain_x():
    x = np.zeros(4)
    f = jit(lambda x, i: x.at[i].add(1.0))
    _same(f(x, np.array([0, 0, 3])), np.array([2.0, 0.0, 0.0, 1.0]))
    g = jit(lambda v, i: dnp.at(np.arange(4.0))[i].set(v))
    _same(g(np.array([7.0, 8.0]), np.array([2, 2])), np.array([0.0, 1.0, 8.0, 3.0]))
    _same(jit(dp.grad(lambda v, i: dnp.sum(dnp.at(np.arange(4.0))[i].set(v) ** 2)))(
        np.array([7.0, 8.0]), np.array([2, 2])), np.array([0.0, 16.0]))


def test_second_order_through_gather_and_scatter(rng):
    x = rng.standard_normal(5)
    i = np.array([3, 3, 0])
    f = lambda x, i: dnp.sum(x[i] ** 3) + dnp.sum(dnp.at(np.zeros(5))[i].add(x[:3]) ** 2)
    h = dp.jacfwd(dp.grad(f))
    _same(jit(h)(x, i), h(x, i), exact=False)


# -- cross_entropy with integer labels ---------------------------------------------------------


def test_cross_entropy_integer_labels_eager_and_jit(rng):
    z = rng.standard_normal((4, 3)) * 3
    y = np.array([2, 0, 1, 2])
    one_hot = dp.nn.one_hot(y, 3)
    lp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    want = -lp[np.arange(4), y].mean()
    np.testing.assert_allclose(dp.nn.cross_entropy(z, y), want, rtol=1e-14)
    np.testing.assert_allclose(dp.nn.cross_entropy(z, one_hot), want, rtol=1e-14)
    g_want = dp.grad(dp.nn.cross_entropy)(z, one_hot)
    np.testing.assert_allclose(g_want, (np.exp(lp) - one_hot) / 4, rtol=1e-13, atol=1e-16)
    for executor in EXECUTORS:
        np.testing.assert_allclose(jit(dp.nn.cross_entropy, executor=executor)(z, y), want,
                                   rtol=1e-14)
        g = jit(dp.grad(dp.nn.cross_entropy), executor=executor)(z, y)
        np.testing.assert_allclose(g, g_want, rtol=1e-13, atol=1e-16)
    # batch axes of any number, labels of any integer dtype
    z3 = rng.standard_normal((2, 3, 5))
    y3 = np.array([[0, 4, 4], [1, 2, 3]], dtype=np.int32)
    np.testing.assert_allclose(jit(dp.nn.cross_entropy)(z3, y3),
                               dp.nn.cross_entropy(z3, dp.nn.one_hot(y3, 5)), rtol=1e-14)
    with pytest.raises(ValueError, match="integer labels must have shape"):
        jit(dp.nn.cross_entropy)(z, np.array([0, 1]))


# -- where with a traced condition and Python scalar branches (no endless recursion) -------------


@pytest.mark.parametrize("where", [dnp.where, np.where], ids=["dnp", "np"])
def test_where_traced_condition_python_scalar_branches(where):
    x = np.array([-1.5, 0.0, 2.0, -0.0, 3.0])
    want_sign = np.where(x > 0, 1.0, -1.0)

    def f(x):
        return where(x > 0, 1.0, -1.0)

    def h(x):
        return dnp.sum(x * where(x > 0, 1.0, -1.0) + where(x > 1, x * x, 0.0))

    _same(f(x), want_sign)
    for executor in EXECUTORS:
        _same(jit(f, executor=executor)(x), want_sign)
        _same(jit(f, executor=executor)(x.astype(np.float32)), want_sign)  # float64, as NumPy
        _same(jit(lambda c: where(c, 2, 3), executor=executor)(x > 0), np.where(x > 0, 2, 3))
    g_want = want_sign + np.where(x > 1, 2 * x, 0.0)
    _same(dp.grad(h)(x), g_want)
    for executor in EXECUTORS:
        _same(jit(dp.grad(h), executor=executor)(x), g_want)
        _same(jit(h, executor=executor)(x), h(x))


def test_updates_of_traced_values_round_and_sign_zeros_as_numpy():
    # one scatter_apply writes with NumPy's ufunc.at (or assignment): a written -0.0 stays
    # -0.0, an untouched -0.0 is not turned into 0.0 by adding zeros, and repeated additions
    # round in np.add.at's order; eager (traced values) and jit agree with plain NumPy
    x = np.array([-0.0, 1.0, 0.1, -0.0])
    i = np.array([1, 2, 2, 2])
    v = np.array([-0.0, 0.2, 0.3, 1e-17])
    cases = {
        "set": (lambda x, i, v: dnp.at(x)[i].set(v), lambda a: a.__setitem__(i, v)),
        "add": (lambda x, i, v: dnp.at(x)[i].add(v), lambda a: np.add.at(a, i, v)),
        "max": (lambda x, i, v: dnp.at(x)[i].max(v), lambda a: np.maximum.at(a, i, v)),
        "min": (lambda x, i, v: dnp.at(x)[i].min(v), lambda a: np.minimum.at(a, i, v)),
    }
    for f, numpy_update in cases.values():
        want = x.copy()
        numpy_update(want)
        _same(f(x, i, v), want)
        _same(dp.jvp(lambda x, f=f: f(x, i, v), (x,), (np.ones(4),))[0], want)  # traced, eager
        for executor in EXECUTORS:
            _same(jit(f, executor=executor)(x, i, v), want)
            _same(jit(lambda x, v, f=f: f(x, i, v), executor=executor)(x, v), want)


def test_constant_gathered_at_traced_indices():
    # a table that is not an argument, looked up at indices that are (interp does this)
    table = np.array([10.0, 20.0, 30.0, 40.0])
    grid = table.reshape(2, 2)
    i = np.array([3, -1, 0])
    for executor in EXECUTORS:
        _same(jit(lambda i: dnp.take(table, i), executor=executor)(i), table[i])
        # (np.take(table, i) does not dispatch: NumPy's take looks only at its first argument)
        _same(jit(lambda i: dnp.take(table, i + 1, mode="clip"), executor=executor)(i),
              np.take(table, i + 1, mode="clip"))
        _same(jit(lambda i: dnp.take_along_axis(grid, i[:2, None] % 2, axis=1),
                  executor=executor)(i), np.take_along_axis(grid, i[:2, None] % 2, axis=1))
    # and with a traced value mixed in: the derivative reaches it, not the table
    g = jit(dp.grad(lambda x, i: dnp.sum(x * dnp.take(table, i))))(np.ones(3), i)
    _same(g, table[i])
