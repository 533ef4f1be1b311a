"""Issue 12 §7: the rest of NumPy that programs use. Each function against NumPy (values,
dtype, shape) on traced inputs, eagerly and under jit, and check_grads in both modes to order
2; ``np.<name>(traced)`` dispatches to it."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.testing import check_grads

R = np.random.default_rng(0)
A = R.normal(size=(4, 3))
V3 = R.normal(size=(5, 3))
W3 = R.normal(size=(5, 3))
X = np.array([0.3, 1.1, 1.7, 2.9, 4.2])
Y = np.sin(X) + 2.0

# (name, numpy-style function of the differentiated args, args); the same function is run with
# NumPy on plain arrays (the reference) and with traced values (np.* dispatches to diffprog)
CASES = [
    ("cross3", lambda a, b: np.cross(a, b), (V3, W3)),
    ("cross_axis", lambda a, b: np.cross(a.T, b.T, axisa=0, axisb=0, axisc=0), (V3, W3)),
    ("cross2", lambda a, b: np.cross(a[:, :2], b[:, :2]), (V3, W3)),
    ("cross_23", lambda a, b: np.cross(a[:, :2], b), (V3, W3)),
    ("diff", lambda a: np.diff(a), (A,)),
    ("diff_n2_axis0", lambda a: np.diff(a, n=2, axis=0), (A,)),
    ("diff_prepend", lambda a: np.diff(a, prepend=0.5, append=a[:, -1:]), (A,)),
    ("gradient", lambda y: np.gradient(y), (Y,)),
    ("gradient_dx", lambda y: np.gradient(y, 0.5, edge_order=2), (Y,)),
    ("gradient_coords", lambda y, x: np.gradient(y, x), (Y, X)),
    ("gradient_coords2", lambda y, x: np.gradient(y, x, edge_order=2), (Y, X)),
    ("gradient_2d", lambda a: np.stack(np.gradient(a)), (A,)),
    ("gradient_axis", lambda a: np.gradient(a, axis=1), (A,)),
    ("sinc", lambda x: np.sinc(x), (np.array([-1.5, -0.2, 1e-5, 0.7, 2.0]),)),
    ("sinc_zero", lambda x: np.sinc(x * 0.0), (np.array([1.0, 2.0]),)),
    ("linspace", lambda a, b: np.linspace(a, b, 7), (np.float64(0.5), np.float64(2.0))),
    ("linspace_arrays", lambda a, b: np.linspace(a, b, 4, axis=1), (X[:2], Y[:2])),
    ("linspace_open", lambda a, b: np.linspace(a, b, 5, endpoint=False), (X[0], Y[0])),
    ("logspace", lambda a, b: np.logspace(a, b, 5), (np.float64(0.1), np.float64(1.2))),
    ("logspace_base", lambda a, b: np.logspace(a, b, 4, base=2.0), (X[0], X[1])),
    ("geomspace", lambda a, b: np.geomspace(a, b, 5), (np.float64(0.5), np.float64(8.0))),
    ("geomspace_neg", lambda a, b: np.geomspace(-a, -b, 4), (np.float64(0.5), np.float64(8.0))),
    ("nan_to_num", lambda x: np.nan_to_num(x + np.array([0.0, np.nan, np.inf, -np.inf, 0.0]),
                                           posinf=9.0), (X,)),
    ("insert", lambda a, v: np.insert(a, 1, v, axis=0), (A, A[0] * 2)),
    ("insert_flat", lambda a, v: np.insert(a, [0, 2, 2], v), (X, Y[:3])),
    ("insert_scalar", lambda a: np.insert(a, 2, 7.0, axis=1), (A,)),
    ("delete", lambda a: np.delete(a, [0, 2], axis=1), (A,)),
    ("delete_flat", lambda a: np.delete(a, slice(1, 3)), (X,)),
    ("vsplit", lambda a: np.vsplit(a, 2)[1], (A,)),
    ("hsplit", lambda a: np.hsplit(a, [1])[1], (A,)),
    ("hsplit_1d", lambda x: np.hsplit(x[:4], 2)[0], (X,)),
    ("dsplit", lambda a: np.dsplit(a.reshape(2, 2, 3), 3)[2], (A,)),
    ("rollaxis", lambda a: np.rollaxis(a.reshape(2, 2, 3), 2), (A,)),
    ("rollaxis_start", lambda a: np.rollaxis(a.reshape(2, 2, 3), 0, 3), (A,)),
    ("partition", lambda x: np.partition(x, 2), (np.array([3.0, 1.0, 2.5, 0.5, 4.0]),)),
    ("trapezoid", lambda y: np.trapezoid(y), (Y,)),
    ("trapezoid_x", lambda y, x: np.trapezoid(y, x), (Y, X)),
    ("trapezoid_2d", lambda a: np.trapezoid(a, dx=0.5, axis=0), (A,)),
    ("interp", lambda x, fp: np.interp(x, X, fp), (np.array([-1.0, 0.5, 1.6, 3.3, 9.0]), Y)),
    ("interp_xp", lambda xp: np.interp(np.array([0.5, 2.0, 4.0]), xp, Y), (X,)),
    ("interp_lr", lambda x: np.interp(x, X, Y, left=-1.0, right=7.0),
     (np.array([-1.0, 0.5, 9.0]),)),
    ("polyval", lambda p, x: np.polyval(p, x), (np.array([0.5, -1.0, 2.0]), X)),
    ("polyfit", lambda x, y: np.polyfit(x, y, 2), (X, Y)),
    ("polyfit_w", lambda x, y: np.polyfit(x, y, 1, w=x), (X, Y)),
    ("vecdot", lambda a, b: np.vecdot(a, b), (V3, W3)),
    ("convolve", lambda a, v: np.convolve(a, v), (X, Y[:3])),
    ("convolve_same", lambda a, v: np.convolve(a, v, "same"), (Y[:3], X)),
    ("convolve_valid", lambda a, v: np.convolve(a, v, "valid"), (X, Y[:2])),
    ("correlate", lambda a, v: np.correlate(a, v), (X, Y[:3])),
    ("correlate_full", lambda a, v: np.correlate(a, v, "full"), (X, Y[:3])),
    ("correlate_same_swapped", lambda a, v: np.correlate(a, v, "same"), (Y[:3], X)),
    ("correlate_full_swapped", lambda a, v: np.correlate(a, v, "full"), (Y[:2], X)),
]


def _traced_value(f, args):
    """f's value computed with traced arguments (through jvp, so everything is traced)."""
    return dp.jvp(f, args, tuple(np.zeros_like(a) for a in args))[0]


@pytest.mark.parametrize("name, f, args", CASES, ids=[c[0] for c in CASES])
def test_values_match_numpy_eagerly_and_under_jit(name, f, args):
    expected = f(*args)
    for got in (_traced_value(f, args), dp.jit(f)(*args)):
        assert np.shape(got) == np.shape(expected)
        assert np.result_type(got) == np.result_type(expected)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, f, args", CASES, ids=[c[0] for c in CASES])
def test_derivatives(name, f, args):
    check_grads(f, args, order=2, modes=("fwd", "rev"))


def test_interp_at_the_knots():
    f = lambda fp: np.interp(X, X, fp)
    np.testing.assert_array_equal(_traced_value(f, (Y,)), Y)
    np.testing.assert_array_equal(dp.jacfwd(f)(Y), np.eye(len(Y)))


def test_r_and_c_with_traced_values():
    x = np.array([1.0, 2.0])

    def f(x):
        return dnp.r_[x, 3.0, x * 2, 0:2]

    np.testing.assert_array_equal(dp.jvp(f, (x,), (np.ones(2),))[0], np.r_[x, 3.0, x * 2, 0:2])
    np.testing.assert_array_equal(dp.grad(lambda x: dnp.sum(f(x) ** 2))(x), 2 * x + 8 * x)
    g = lambda x: dnp.c_[x, x * 3]
    np.testing.assert_array_equal(dp.jvp(g, (x,), (np.ones(2),))[0], np.c_[x, x * 3])
    with pytest.raises(TypeError, match="string directives"):
        dp.grad(lambda x: dnp.sum(dnp.r_["0,2", x, x]))(x)


def test_sinc_derivatives_at_zero():
    # sinc(x) = 1 - (pi x)^2 / 6 + ...: f'(0) = 0, f''(0) = -pi^2 / 3
    assert float(dp.grad(dnp.sinc)(0.0)) == 0.0
    np.testing.assert_allclose(dp.grad(dp.grad(dnp.sinc))(0.0), -np.pi ** 2 / 3, rtol=1e-12)


def test_float32_stays_float32():
    x32 = X.astype(np.float32)
    for f in (lambda x: np.diff(x), lambda x: np.gradient(x), lambda x: np.sinc(x),
              lambda x: np.trapezoid(x), lambda x: np.convolve(x, x[:2])):
        out = _traced_value(f, (x32,))
        assert out.dtype == f(x32).dtype == np.float32
        np.testing.assert_allclose(out, f(x32), rtol=1e-6)


def test_lstsq_cond_matrix_rank():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0], [0.5, -1.0]])
    b = np.array([1.0, 2.0, 2.0, 0.3])
    for fn in (lambda a, b: np.linalg.lstsq(a, b), lambda a, b: dp.jit(np.linalg.lstsq)(a, b)):
        x, res, rank, s = fn(a, b)
        ex, eres, erank, es = np.linalg.lstsq(a, b)
        np.testing.assert_allclose(x, ex, rtol=1e-12)
        np.testing.assert_allclose(res, eres, rtol=1e-12)
        assert int(rank) == erank
        np.testing.assert_allclose(s, es, rtol=1e-12)
    check_grads(lambda a, b: np.linalg.lstsq(a, b)[0], (a, b), order=2, modes=("fwd", "rev"))
    check_grads(lambda a, b: np.linalg.lstsq(a, b)[1], (a, b), order=2, modes=("fwd", "rev"))
    sq = a[:2] + np.eye(2)
    for p in (None, 2, -2, 1, "fro", np.inf):
        np.testing.assert_allclose(_traced_value(lambda x, p=p: np.linalg.cond(x, p), (sq,)),
                                   np.linalg.cond(sq, p), rtol=1e-12)
        check_grads(lambda x, p=p: np.linalg.cond(x, p), (sq,), order=2, modes=("fwd", "rev"))
    low = np.outer([1.0, 2.0, 3.0], [1.0, -1.0])
    assert int(_traced_value(np.linalg.matrix_rank, (low,))) == 1
    assert int(dp.jit(np.linalg.matrix_rank)(low)) == 1
    assert int(_traced_value(np.linalg.matrix_rank, (a,))) == 2
