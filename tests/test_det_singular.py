"""Derivatives of det and slogdet at singular matrices (issue 11).

d det(A)/dA = adj(A)^T, the cofactor matrix, which is finite (and nonzero at rank n - 1) where A
is singular; the rules compute the adjugate without inverting A. slogdet's log|det| is -inf
there and its gradient A^-T has no finite value: it is adj(A)^T / 0 (±inf, nan where the
cofactor is 0), never a LinAlgError. Closed forms: cofactors from the minors.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.jit import jit

det = dnp.linalg.det


def logabsdet(a):
    return dnp.linalg.slogdet(a)[1]


def cofactors(a: np.ndarray) -> np.ndarray:
    """C[i, j] = (-1)^(i+j) det(minor i, j): the gradient of det, by its definition."""
    n = a.shape[0]
    c = np.zeros_like(a)
    for i, j in itertools.product(range(n), range(n)):
        minor = np.delete(np.delete(a, i, axis=0), j, axis=1)
        c[i, j] = (-1) ** (i + j) * _det_by_expansion(minor)
    return c


def _det_by_expansion(m: np.ndarray) -> float:
    if m.shape[0] == 0:
        return 1.0
    if m.shape[0] == 1:
        return float(m[0, 0])
    return sum((-1) ** j * m[0, j] * _det_by_expansion(np.delete(m[1:], j, axis=1))
               for j in range(m.shape[0]))


SINGULAR = {
    "2x2_rank1": np.array([[1.0, 2.0], [2.0, 4.0]]),
    "3x3_rank2": np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [5.0, 7.0, 9.0]]),
    "3x3_rank2_zero_row": np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [1.0, 3.0, -2.0]]),
    "3x3_rank1": np.outer([1.0, -2.0, 3.0], [0.5, 1.0, -1.0]),
    "3x3_zero": np.zeros((3, 3)),
    "1x1_zero": np.zeros((1, 1)),
}


@pytest.mark.parametrize("name", list(SINGULAR))
def test_det_gradient_at_singular_matrices_is_the_cofactor_matrix(name):
    a = SINGULAR[name]
    want = cofactors(a)
    grad = dp.grad(det)
    np.testing.assert_allclose(grad(a), want, rtol=1e-12, atol=1e-12)
    for executor in ("numpy", "numba"):
        np.testing.assert_allclose(jit(grad, executor=executor)(a), want, rtol=1e-12,
                                   atol=1e-12)
    # forward mode: d det = tr(adj(a) da) = <cofactors, da>
    t = np.arange(1.0, 1.0 + a.size).reshape(a.shape)
    _, tangent = dp.jvp(det, (a,), (t,))
    np.testing.assert_allclose(tangent, np.sum(want * t), rtol=1e-12, atol=1e-12)


def test_det_gradient_closed_form_2x2():
    # det [[a, b], [c, d]] = ad - bc: the gradient [[d, -c], [-b, a]] wherever the matrix is
    for m in ([[1.0, 2.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]], [[3.0, -1.0], [2.0, 5.0]]):
        (a, b), (c, d) = m
        np.testing.assert_allclose(dp.grad(det)(np.array(m)), [[d, -c], [-b, a]],
                                   rtol=1e-14, atol=1e-15)


def test_det_gradient_in_a_stack_mixing_singular_and_regular(rng):
    regular = rng.standard_normal((3, 3))
    stack = np.stack([SINGULAR["3x3_rank2"], regular, SINGULAR["3x3_rank1"]])
    want = np.stack([cofactors(m) for m in stack])
    np.testing.assert_allclose(dp.grad(lambda a: dnp.sum(det(a)))(stack), want, rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(want[1], np.linalg.det(regular) * np.linalg.inv(regular).T,
                               rtol=1e-12)


def test_det_second_order_away_from_singular_matrices(rng):
    a = rng.standard_normal((3, 3))
    dp.check_grads(det, (a,), order=2)
    # d2 det / da_ij da_kl = det (inv_ji inv_lk - inv_li inv_jk)
    inv = np.linalg.inv(a)
    want = np.linalg.det(a) * (np.einsum("ji,lk->ijkl", inv, inv)
                               - np.einsum("li,jk->ijkl", inv, inv))
    np.testing.assert_allclose(dp.jacfwd(dp.grad(det))(a), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jit(dp.jacrev(dp.grad(det)))(a), want, rtol=1e-10, atol=1e-12)


def test_det_gradient_of_float32_matrices():
    s = SINGULAR["3x3_rank2"].astype(np.float32)
    g32 = dp.grad(det)(s)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, cofactors(SINGULAR["3x3_rank2"]), rtol=1e-5, atol=1e-5)


def test_det_gradient_of_nan_matrix_is_nan_not_an_error():
    a = np.array([[1.0, np.nan], [2.0, 3.0]])
    assert np.isnan(dp.grad(det)(a)).all()


def test_slogdet_at_singular_matrices_is_minus_inf_with_non_finite_gradient():
    a = SINGULAR["2x2_rank1"]
    sign, value = dnp.linalg.slogdet(a)
    assert sign == 0.0 and value == -np.inf
    # adj(a)^T / 0: ±inf where the cofactor is nonzero ...
    g = dp.grad(logabsdet)(a)
    np.testing.assert_array_equal(g, [[np.inf, -np.inf], [-np.inf, np.inf]])
    np.testing.assert_array_equal(jit(dp.grad(logabsdet))(a), g)
    # ... and nan where it is zero (0 / 0; the SVD leaves rounding-size cofactors of a rank-1
    # matrix, which give ±inf): nothing finite either way
    assert not np.isfinite(dp.grad(logabsdet)(SINGULAR["3x3_rank1"])).any()
    assert np.isnan(dp.grad(logabsdet)(np.zeros((2, 2)))).all()
    _, tangent = dp.jvp(logabsdet, (a,), (np.eye(2),))
    assert not np.isfinite(tangent)


def test_slogdet_gradient_unchanged_at_regular_matrices(rng):
    a = rng.standard_normal((2, 4, 4))
    np.testing.assert_allclose(dp.grad(lambda a: dnp.sum(logabsdet(a)))(a),
                               np.linalg.inv(a).transpose(0, 2, 1), rtol=1e-12)
    dp.check_grads(logabsdet, (a[0],), order=2)
    # a large matrix whose det overflows: slogdet's gradient does not go through det
    big = 100.0 * (np.eye(200) + 0.01 * rng.standard_normal((200, 200)))
    assert np.isinf(np.linalg.det(big))
    np.testing.assert_allclose(dp.grad(logabsdet)(big), np.linalg.inv(big).T, rtol=1e-10)
