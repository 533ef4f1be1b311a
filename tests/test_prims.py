"""Python operators, reductions, shape ops and matmul, each checked with check_grads in both
modes to order 2, over shapes and dtypes; the registry test (every differentiable primitive is
exercised by a table here or in the family files); piecewise-constant functions against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.core import primitives
from tests.domains import DTYPES, positive, real, tol_for

# The NumPy-named elementwise functions have their tables in tests/test_numpy_elementwise.py;
# here are the Python operators and mixed forms those tables do not reach.
# name, function, domain of each argument
UNARY = [
    ("pow_const", lambda x: x ** 3, real), ("rpow_const", lambda x: 2.0 ** x, real),
    ("pow_half", lambda x: x ** 0.5, positive),
    ("astype64", lambda x: dnp.astype(x, "f8") * x, real),
]
BINARY = [
    ("where", lambda x, y: dnp.where(x > y, x * y, dnp.sin(y)), real, real),
]
SHAPES = [(), (3,), (2, 3)]
PAIRS = [((), ()), ((3,), (3,)), ((2, 3), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)),
         ((2, 1), (1, 3)), ((), (2, 3)), ((2, 3), ())]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,fn,domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary(name, fn, domain, shape, dtype):
    x = domain(shape, dtype)
    dp.check_grads(fn, (x,), order=2, **tol_for(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", PAIRS, ids=str)
@pytest.mark.parametrize("name,fn,dx,dy", BINARY, ids=[b[0] for b in BINARY])
def test_binary(name, fn, dx, dy, shapes, dtype):
    x, y = dx(shapes[0], dtype), dy(shapes[1], dtype)
    dp.check_grads(fn, (x, y), order=2, **tol_for(dtype))


REDUCTIONS = [("sum", dnp.sum), ("mean", dnp.mean), ("max", dnp.max), ("min", dnp.min),
              ("logsumexp", dnp.logsumexp)]
AXES = [None, 0, 1, -1, (0, 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name,fn", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction(name, fn, axis, keepdims, dtype):
    x = real((2, 3), dtype)
    dp.check_grads(lambda x: fn(x, axis=axis, keepdims=keepdims) ** 2, (x,), order=2,
                   **tol_for(dtype))


@pytest.mark.parametrize("name,fn", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
@pytest.mark.parametrize("shape", [(), (4,)], ids=str)
def test_reduction_small_shapes(name, fn, shape):
    dp.check_grads(lambda x: fn(x) * fn(x), (real(shape, np.float64),), order=2)


SHAPE_OPS = [
    ("reshape", lambda x: dnp.reshape(x, (3, 2)) * x.reshape(-1)[:2]),
    ("reshape_method", lambda x: x.reshape(6) ** 2),
    ("transpose", lambda x: dnp.transpose(x) ** 2),
    ("T", lambda x: x.T * dnp.sin(x.T)),
    ("swapaxes", lambda x: dnp.swapaxes(x, 0, 1) ** 3),
    ("broadcast_to", lambda x: dnp.broadcast_to(x, (4, 2, 3)) * np.arange(24.0).reshape(4, 2, 3)),
    ("expand_squeeze", lambda x: dnp.squeeze(dnp.expand_dims(x, 0) ** 2)),
    ("getitem_int", lambda x: x[1] * x[0]),
    ("getitem_slice", lambda x: x[:, 1:3] ** 2),
    ("getitem_none_ellipsis", lambda x: x[None, ..., 0] ** 2),
    ("getitem_repeated", lambda x: x[np.array([0, 0, 1]), 2] ** 2),
    ("getitem_mask", lambda x: x[np.array([[True, False, True], [False, True, True]])] ** 3),
    ("at_add", lambda x: dnp.at(x)[0, np.array([1, 1])].add(x[1, :2] ** 2) ** 2),
    ("at_set", lambda x: dnp.at(x)[:, 0].set(dnp.sin(x[:, 1])) ** 2),
    ("iter", lambda x: sum(row * row for row in x)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,fn", SHAPE_OPS, ids=[s[0] for s in SHAPE_OPS])
def test_shape_ops(name, fn, dtype):
    dp.check_grads(fn, (real((2, 3), dtype),), order=2, **tol_for(dtype))


MATMUL_SHAPES = [((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)),
                 ((2, 2, 3), (3, 4)), ((2, 3), (2, 3, 4)), ((2, 2, 3), (2, 3, 4)),
                 ((1, 2, 3), (2, 3, 4))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes, dtype):
    x, y = real(shapes[0], dtype), real(shapes[1], dtype)
    dp.check_grads(lambda x, y: dnp.matmul(x, y) ** 2, (x, y), order=2, **tol_for(dtype))
    dp.check_grads(lambda x, y: (x @ y) * 2.0, (x, y), order=1, **tol_for(dtype))


def test_matmul_operator_with_constant_matrix():
    w = real((3, 4), np.float64)
    dp.check_grads(lambda x: dnp.tanh(x @ w), (real((5, 3), np.float64),), order=2)
    dp.check_grads(lambda x: dnp.tanh(w.T @ x), (real((3, 2), np.float64),), order=2)


# Every primitive must be exercised by this file's table: collect what the table's functions
# record, then compare with the registry.
def _table_functions():
    for _, fn, domain in UNARY:
        yield fn, (domain((2, 3), np.float64),)
    for _, fn, dx, dy in BINARY:
        yield fn, (dx((2, 3), np.float64), dy((3,), np.float64))
    for _, fn in REDUCTIONS:
        yield fn, (real((2, 3), np.float64),)
    for _, fn in SHAPE_OPS:
        yield fn, (real((2, 3), np.float64),)
    yield dnp.matmul, (real((2, 3), np.float64), real((3, 4), np.float64))
    yield dict((u[0], u[1]) for u in UNARY)["astype64"], (real((2, 3), np.float32),)
    # the family tables in the other test files export what exercises their primitives
    from tests import (
        test_fft,
        test_nn,
        test_numpy_elementwise,
        test_numpy_linalg,
        test_numpy_reductions,
        test_numpy_shapes,
        test_scipy_integrate,
        test_scipy_linalg,
        test_scipy_special,
    )
    for module in (test_numpy_elementwise, test_nn, test_numpy_reductions, test_numpy_shapes,
                   test_numpy_linalg, test_scipy_special, test_scipy_linalg,
                   test_scipy_integrate, test_fft):
        yield from module.COVERAGE


def library_primitives() -> dict:
    """The registry without the primitives tests declare for their own use, which are named
    test_* (tests/test_fusion.py registers some so that the numba executor can find them)."""
    return {name: p for name, p in primitives.items() if not name.startswith("test_")}


def test_registry_every_differentiable_primitive_has_both_rules():
    missing = [name for name, p in library_primitives().items()
               if p.differentiable and (p.jvp is None or p.vjp is None)]
    assert missing == []
    for name, p in library_primitives().items():
        if p.differentiable:
            n_rules_ok = (not p.jvp_per_arg or isinstance(p.jvp, tuple)) and \
                (not p.vjp_per_arg or hasattr(p.vjp, "__getitem__"))  # einsum: per position
            assert n_rules_ok, name


@pytest.mark.slow
def test_registry_every_primitive_is_checked_by_the_table():
    seen = set()
    for fn, args in _table_functions():
        graph = dp.make_graph(fn)(*args)
        seen.update(graph.primitive_names())
        # the backward pass records the primitives the vjp rules use
        graph = dp.make_graph(dp.grad(lambda *b, fn=fn: dnp.sum(fn(*b))))(*args)
        seen.update(graph.primitive_names())
    # primitives that only forward mode binds (odeint's sensitivity solve): their graphs
    from tests import test_scipy_integrate
    for fn, args in test_scipy_integrate.COVERAGE_FORWARD:
        seen.update(dp.make_graph(fn)(*args).primitive_names())
    differentiable = {name for name, p in library_primitives().items() if p.differentiable}
    assert differentiable - seen == set()


# Each function is written once over a module, so that it runs on diffprog.numpy and on NumPy,
# whose result is the reference.
NONDIFF = [("sign", lambda m, x: m.sign(x)), ("floor", lambda m, x: m.floor(x)),
           ("ceil", lambda m, x: m.ceil(x)), ("less", lambda m, x: m.less(x, 0.1)),
           ("equal", lambda m, x: m.equal(x, x)), ("greater_equal", lambda m, x: x >= 0.0),
           ("logical_not", lambda m, x: m.logical_not(x > 0))]


@pytest.mark.parametrize("name,form", NONDIFF, ids=[n[0] for n in NONDIFF])
def test_nondifferentiable_have_zero_derivative(name, form):
    x = real((3,), np.float64)
    want = form(np, x)

    def fn(x):
        return form(dnp, x)
    # d/dx sum(c(x) * x) = c(x) when c is piecewise constant
    g = dp.grad(lambda x: dnp.sum(dnp.astype(fn(x), np.float64) * x))(x)
    np.testing.assert_array_equal(g, want.astype(np.float64))
    out, t = dp.jvp(fn, (x,), (np.ones(3),))
    assert t is None or not np.any(t)
    assert np.asarray(out).dtype == want.dtype
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(fn(x), want)
