"""Linear algebra on traced values: products (dot, vdot, inner, tensordot, einsum) and the
``dnp.linalg`` namespace, checked with check_grads in both modes to order 2, against NumPy's
values, against closed forms, and through NumPy's own functions (dispatch)."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp

RNG = np.random.default_rng(0)
LA = dnp.linalg


# -- argument makers: well-conditioned inputs ----------------------------------------------------

def real(*shape):
    return lambda dtype=np.float64: RNG.standard_normal(shape).astype(dtype)


def general(*shape):
    """Random square matrices plus n I: far from singular."""
    n = shape[-1]
    return lambda dtype=np.float64: (RNG.standard_normal(shape) + n * np.eye(n)).astype(dtype)


def spd(*shape):
    """Symmetric positive definite: a a^T + n I."""
    n = shape[-1]

    def make(dtype=np.float64):
        a = RNG.standard_normal(shape)
        return (a @ np.swapaxes(a, -1, -2) + n * np.eye(n)).astype(dtype)
    return make


def _orthogonal(batch, n):
    q, _ = np.linalg.qr(RNG.standard_normal(batch + (n, n)))
    return q


def distinct_eig(*shape):
    """Symmetric with eigenvalues 1, 2, ..., n (gaps of 1), so eigenvectors are stable."""
    *batch, n = shape[:-1]

    def make(dtype=np.float64):
        q = _orthogonal(tuple(batch), n)
        return (q * np.arange(1.0, n + 1)[..., None, :]) @ np.swapaxes(q, -1, -2)
    return lambda dtype=np.float64: make().astype(dtype)


def distinct_sv(*shape):
    """m x n matrices with singular values 1, 2, ..., min(m, n)."""
    *batch, m, n = shape
    k = min(m, n)

    def make(dtype=np.float64):
        u = _orthogonal(tuple(batch), m)[..., :k]
        v = _orthogonal(tuple(batch), n)[..., :k]
        return ((u * np.arange(k, 0.0, -1)[..., None, :]) @ np.swapaxes(v, -1, -2)).astype(dtype)
    return make


def away_from_zero(*shape):
    def make(dtype=np.float64):
        v = RNG.uniform(0.5, 2.0, shape) * RNG.choice([-1.0, 1.0], shape)
        return np.asarray(v).astype(dtype)
    return make


def tol_for(dtype):
    return {} if dtype == np.float64 else {"atol": 3e-3, "rtol": 3e-3}


# -- sign-invariant functions of eigen/singular vectors ------------------------------------------

def mT(x):
    return dnp.swapaxes(x, -1, -2)


def eigh_reconstruct(a):
    w, v = LA.eigh(a)
    return v @ (w[..., :, None] * mT(v))  # v diag(w) v^T


def eigh_weighted(a):
    w, v = LA.eigh(a)
    return dnp.sum((v * v) * dnp.sin(w)[..., None, :], axis=-1) + w ** 2


def svd_invariant(a):
    u, s, vh = LA.svd(a, full_matrices=False)
    # |u|², |v|² weighted by s, and u diag(s²) u^T: none depends on the vectors' signs.
    return (dnp.sum(u * u * s[..., None, :], axis=-1), dnp.sum(vh * vh * s[..., :, None], axis=-2),
            (u * s[..., None, :] ** 2) @ mT(u))


def qr_both(a):
    q, r = LA.qr(a)
    return q, r


def slogdet_both(a):
    sign, logabsdet = LA.slogdet(a)
    return sign * logabsdet


# name, function, argument makers (all checked with check_grads, order 2, both modes)
LINALG = [
    ("inv", LA.inv, [general(3, 3)]),
    ("inv_batched", LA.inv, [general(2, 3, 3)]),
    ("inv_1x1", LA.inv, [general(1, 1)]),
    ("solve_vector", LA.solve, [general(3, 3), real(3)]),
    ("solve_matrix", LA.solve, [general(3, 3), real(3, 2)]),
    ("solve_batched", LA.solve, [general(2, 3, 3), real(2, 3, 2)]),
    ("solve_batched_vector", LA.solve, [general(2, 3, 3), real(3)]),
    ("solve_broadcast_a", LA.solve, [general(3, 3), real(2, 3, 2)]),
    ("solve_triangular_lower", lambda a, b: LA.solve_triangular(a, b, lower=True),
     [general(3, 3), real(3, 2)]),
    ("solve_triangular_lower_T", lambda a, b: LA.solve_triangular(a, b, lower=True, trans=1),
     [general(3, 3), real(3, 2)]),
    ("solve_triangular_upper", lambda a, b: LA.solve_triangular(a, b, lower=False),
     [general(3, 3), real(3)]),
    ("solve_triangular_upper_T", lambda a, b: LA.solve_triangular(a, b, lower=False, trans="T"),
     [general(2, 3, 3), real(2, 3, 2)]),
    ("det", LA.det, [general(3, 3)]),
    ("det_batched", LA.det, [general(2, 3, 3)]),
    ("det_negative", lambda a: LA.det(-a), [general(3, 3)]),
    ("slogdet_logabsdet", lambda a: LA.slogdet(a)[1], [general(2, 3, 3)]),
    ("slogdet_both", slogdet_both, [general(3, 3)]),
    ("cholesky", LA.cholesky, [spd(3, 3)]),
    ("cholesky_batched", LA.cholesky, [spd(2, 3, 3)]),
    ("cholesky_upper", lambda a: LA.cholesky(a, upper=True), [spd(3, 3)]),
    ("eigh_values", lambda a: LA.eigh(a)[0], [distinct_eig(3, 3)]),
    ("eigh_reconstruct", eigh_reconstruct, [distinct_eig(3, 3)]),
    ("eigh_weighted", eigh_weighted, [distinct_eig(2, 3, 3)]),
    ("eigh_upper", lambda a: LA.eigh(a, UPLO="U")[0] ** 2, [distinct_eig(3, 3)]),
    ("eigvalsh", LA.eigvalsh, [distinct_eig(2, 3, 3)]),
    ("svd_square", svd_invariant, [distinct_sv(3, 3)]),
    ("svd_tall", svd_invariant, [distinct_sv(4, 3)]),
    ("svd_wide", svd_invariant, [distinct_sv(3, 4)]),
    ("svd_batched", svd_invariant, [distinct_sv(2, 4, 3)]),
    ("svd_values", lambda a: LA.svd(a, compute_uv=False), [distinct_sv(4, 3)]),
    ("svdvals_batched", LA.svdvals, [distinct_sv(2, 3, 4)]),
    ("qr_tall", qr_both, [real(4, 3)]),
    ("qr_square", qr_both, [real(3, 3)]),
    ("qr_batched", qr_both, [real(2, 4, 3)]),
    ("qr_wide", qr_both, [real(3, 5)]),
    ("qr_r", lambda a: LA.qr(a, mode="r"), [real(4, 3)]),
    ("pinv_tall", LA.pinv, [real(4, 3)]),
    ("pinv_wide", LA.pinv, [real(3, 4)]),
    ("pinv_square", LA.pinv, [general(3, 3)]),
    ("pinv_batched", LA.pinv, [real(2, 4, 3)]),
    ("pinv_hermitian", lambda a: LA.pinv(a, hermitian=True), [spd(3, 3)]),
    ("matrix_power_1", lambda a: LA.matrix_power(a, 1), [general(3, 3)]),
    ("matrix_power_2", lambda a: LA.matrix_power(a, 2), [real(3, 3)]),
    ("matrix_power_3", lambda a: LA.matrix_power(a, 3), [real(2, 3, 3)]),
    ("matrix_power_5", lambda a: LA.matrix_power(a, 5), [real(3, 3)]),
    ("matrix_power_-1", lambda a: LA.matrix_power(a, -1), [general(3, 3)]),
    ("matrix_power_-3", lambda a: LA.matrix_power(a, -3), [general(2, 3, 3)]),
    ("multi_dot", lambda a, b, c: LA.multi_dot([a, b, c]), [real(3), real(3, 4), real(4, 2)]),
    ("matrix_transpose", lambda a: LA.matrix_transpose(a) ** 2, [real(2, 3, 4)]),
    ("trace_of_inverse", lambda a: dnp.einsum("...ii", LA.inv(a)), [general(2, 3, 3)]),
]


def _args(makers, dtype=np.float64):
    return tuple(m(dtype) for m in makers)


def _assert_tree_close(got, want, **kw):
    g, w = dp.tree_flatten(got)[0], dp.tree_flatten(want)[0]
    assert len(g) == len(w)
    for a, b in zip(g, w):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), **kw)


@pytest.mark.parametrize("name,fn,makers", LINALG, ids=[e[0] for e in LINALG])
def test_linalg(name, fn, makers):
    args = _args(makers)
    dp.check_grads(fn, args, order=2)
    # The traced path computes NumPy's values.
    primal, _ = dp.jvp(fn, args, args)
    _assert_tree_close(primal, fn(*args), rtol=1e-12, atol=1e-12)


CHEAP = ["inv", "solve_batched_vector", "det", "slogdet_logabsdet", "cholesky", "eigh_values",
         "svd_values", "qr_tall", "solve_triangular_upper", "pinv_tall"]


@pytest.mark.parametrize("name", CHEAP)
def test_linalg_float32(name):
    fn, makers = {e[0]: e[1:] for e in LINALG}[name]
    args = _args(makers, np.float32)
    dp.check_grads(fn, args, order=2, **tol_for(np.float32))
    out = dp.tree_flatten(dp.jvp(fn, args, args)[0])[0]
    assert all(o.dtype == np.float32 for o in out)


# -- norms -------------------------------------------------------------------------------------

VECTOR_ORDS = [None, 1, 2, np.inf, -np.inf, 3, 1.5, -2]
MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]


@pytest.mark.parametrize("ord", VECTOR_ORDS, ids=str)
@pytest.mark.parametrize("shape,axis,keepdims", [((4,), None, False), ((4,), 0, True),
                                                 ((2, 3), 1, False), ((2, 3), -2, True)],
                         ids=str)
def test_vector_norm(ord, shape, axis, keepdims):
    x = away_from_zero(*shape)()
    fn = lambda x: LA.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    dp.check_grads(fn, (x,), order=2)
    np.testing.assert_allclose(dp.jvp(fn, (x,), (x,))[0], fn(x), rtol=1e-13)


@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=str)
@pytest.mark.parametrize("shape,axis,keepdims", [((3, 4), None, False), ((2, 3, 4), (1, 2), True),
                                                 ((3, 2, 4), (2, 0), False)], ids=str)
def test_matrix_norm(ord, shape, axis, keepdims):
    # Distinct singular values, and no ties among row or column sums.
    x = distinct_sv(*shape)() if len(shape) == 2 else real(*shape)()
    fn = lambda x: LA.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    dp.check_grads(fn, (x,), order=2)
    np.testing.assert_allclose(dp.jvp(fn, (x,), (x,))[0], fn(x), rtol=1e-13)


@pytest.mark.parametrize("case", [
    (lambda x: LA.norm(x), (2, 3, 4)),
    (lambda x: LA.norm(x, keepdims=True), (2, 3)),
    (lambda x: LA.matrix_norm(x, ord="nuc"), (2, 3, 4)),
    (lambda x: LA.matrix_norm(x, keepdims=True), (2, 3, 4)),
    (lambda x: LA.vector_norm(x), (2, 3)),
    (lambda x: LA.vector_norm(x, axis=(0, 2), ord=3, keepdims=True), (2, 3, 4)),
    (lambda x: LA.vector_norm(x, axis=1, ord=np.inf), (2, 3)),
], ids=["norm_flat", "norm_keepdims", "matrix_norm_nuc", "matrix_norm_fro", "vector_norm_all",
        "vector_norm_axes", "vector_norm_inf"])
def test_norm_variants(case):
    fn, shape = case
    x = away_from_zero(*shape)()
    dp.check_grads(fn, (x,), order=2)
    np.testing.assert_allclose(dp.jvp(fn, (x,), (x,))[0], fn(x), rtol=1e-13)


@pytest.mark.parametrize("fn,second", [
    (LA.norm, True), (lambda x: LA.norm(x, 3), True), (lambda x: LA.norm(x, 1.5), False),
    (lambda x: LA.vector_norm(x), True), (lambda x: LA.norm(x.reshape(1, 3), "fro"), True),
    (lambda x: LA.norm(x, keepdims=True)[0], True)],
    ids=["2", "3", "1.5", "vector_norm", "fro", "keepdims"])
def test_norm_gradient_at_zero_is_zero(fn, second):
    # The 2-norm is not differentiable at 0; diffprog returns the minimum-norm subgradient 0
    # (not NaN), in both modes, and the second derivatives of the 2- and 3-norms are 0 too
    # (that of |x|^1.5 is infinite at 0, so the 1.5-norm's is not defined there).
    x = np.zeros(3)
    np.testing.assert_array_equal(dp.grad(fn)(x), np.zeros(3))
    _, t = dp.jvp(fn, (x,), (np.ones(3),))
    assert np.all(np.asarray(t) == 0)
    if second:
        np.testing.assert_array_equal(dp.hessian(fn)(x), np.zeros((3, 3)))


def test_norm_ord_zero_counts_and_has_no_derivative():
    x = np.array([0.0, 2.0, -1.0])
    assert dp.jvp(lambda x: LA.norm(x, 0), (x,), (x,))[0] == 2.0
    np.testing.assert_array_equal(dp.grad(lambda x: LA.norm(x, 0) + dnp.sum(x * 0.0))(x),
                                  np.zeros(3))


# -- products ----------------------------------------------------------------------------------

PRODUCTS = [
    ("dot_vv", dnp.dot, [(3,), (3,)]), ("dot_mv", dnp.dot, [(2, 3), (3,)]),
    ("dot_mm", dnp.dot, [(2, 3), (3, 4)]), ("dot_scalar", dnp.dot, [(), (2, 3)]),
    ("dot_nd", dnp.dot, [(2, 3, 4), (5, 4, 2)]), ("dot_nd_vector", dnp.dot, [(2, 3, 4), (4,)]),
    ("dot_vector_nd", dnp.dot, [(4,), (2, 4, 3)]), ("dot_matrix_nd", dnp.dot, [(2, 4), (3, 4, 2)]),
    ("dot_method", lambda x, y: x.dot(y), [(2, 3), (3,)]),
    ("vdot", dnp.vdot, [(2, 3), (3, 2)]), ("vdot_vectors", dnp.vdot, [(4,), (4,)]),
    ("inner_vv", dnp.inner, [(3,), (3,)]), ("inner_nd", dnp.inner, [(2, 3), (4, 3)]),
    ("inner_scalar", dnp.inner, [(), (3,)]), ("inner_3d", dnp.inner, [(2, 2, 3), (3,)]),
    ("tensordot_2", dnp.tensordot, [(2, 3, 4), (3, 4, 2)]),
    ("tensordot_1", lambda a, b: dnp.tensordot(a, b, 1), [(2, 3), (3, 4)]),
    ("tensordot_0", lambda a, b: dnp.tensordot(a, b, 0), [(2,), (3,)]),
    ("tensordot_pairs", lambda a, b: dnp.tensordot(a, b, ([0, 2], [2, 1])), [(2, 3, 4), (5, 4, 2)]),
    ("tensordot_int_axes", lambda a, b: dnp.tensordot(a, b, (1, -1)), [(2, 3), (4, 3)]),
    ("matmul_linalg", LA.matmul, [(2, 2, 3), (3, 4)]),
    ("tensordot_linalg", lambda a, b: LA.tensordot(a, b, axes=1), [(2, 3), (3,)]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,fn,shapes", PRODUCTS, ids=[p[0] for p in PRODUCTS])
def test_products(name, fn, shapes, dtype):
    args = tuple(real(*s)(dtype) for s in shapes)
    dp.check_grads(lambda *a: fn(*a) ** 2, args, order=2, **tol_for(dtype))
    primal, _ = dp.jvp(fn, args, args)
    want = fn(*args)
    assert primal.shape == np.shape(want) and primal.dtype == np.result_type(want)
    # float32 products round differently from NumPy's (another summation order)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12}
    np.testing.assert_allclose(primal, want, **tol)


def test_products_with_a_constant_operand():
    a, b = real(2, 3, 4)(), real(5, 4, 2)()
    dp.check_grads(lambda a: dnp.dot(a, b), (a,), order=2)
    dp.check_grads(lambda b: dnp.tensordot(a, b, ([2], [1])), (b,), order=2)
    c = real(3, 2)()
    dp.check_grads(lambda b: dnp.inner(c, b), (real(4, 2)(),), order=2)


# -- einsum ------------------------------------------------------------------------------------

EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("ij->", [(2, 3)]),
    ("ij->ji", [(2, 3)]),
    ("ba", [(2, 3)]),
    ("ij->i", [(2, 3)]),
    ("i,i", [(3,), (3,)]),
    ("i,j->ij", [(2,), (3,)]),
    ("ij,ij->ij", [(2, 3), (2, 3)]),
    ("ij,ij->", [(2, 3), (2, 3)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("...ij,...jk->...ik", [(2, 2, 3), (3, 4)]),
    ("...ij,...jk", [(2, 1, 2, 3), (3, 3, 4)]),
    ("...i,...i", [(2, 1, 3), (4, 3)]),
    ("i...->...", [(3, 2, 2)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("ij...,jk...->ik...", [(2, 3, 2), (3, 4, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ij,jk,kl", [(2, 3), (3, 4), (4, 2)]),
    ("iij->ij", [(3, 3, 2)]),
    ("iji,j->ij", [(3, 2, 3), (2,)]),
    ("iii->i", [(2, 2, 2)]),
    ("ii,i->i", [(3, 3), (3,)]),
    ("ij,j->ij", [(2, 1), (3,)]),
    ("ijk->kji", [(2, 3, 4)]),
    (",ij->ij", [(), (2, 3)]),
    ("i,i,i->", [(3,), (3,), (3,)]),
    ("ab,cd->", [(2, 3), (2, 2)]),
    ("aB,Bc->ca", [(2, 3), (3, 2)]),
]


@pytest.mark.parametrize("subscripts,shapes", EINSUM, ids=[e[0] for e in EINSUM])
def test_einsum(subscripts, shapes):
    args = tuple(real(*s)() for s in shapes)
    fn = lambda *ops: dnp.einsum(subscripts, *ops)
    dp.check_grads(fn, args, order=2)
    primal, _ = dp.jvp(fn, args, args)
    want = np.einsum(subscripts, *args)
    assert primal.shape == want.shape
    np.testing.assert_allclose(primal, want, rtol=1e-12, atol=1e-12)


def test_einsum_float32_and_mixed_dtypes():
    a, b = real(2, 3)(np.float32), real(3, 4)(np.float32)
    dp.check_grads(lambda a, b: dnp.einsum("ij,jk->ik", a, b), (a, b), order=2,
                   **tol_for(np.float32))
    dp.check_grads(lambda a: dnp.einsum("ii->i", a) ** 2, (real(3, 3)(np.float32),), order=2,
                   **tol_for(np.float32))
    out = dp.jvp(lambda a: dnp.einsum("ij,jk->ik", a, b.astype(np.float64)), (a,), (a,))[0]
    assert out.dtype == np.float64
    assert dp.jvp(lambda a: dnp.einsum("ij,jk", a, b), (a,), (a,))[0].dtype == np.float32


def test_einsum_same_operand_twice_and_interleaved_form():
    x, a = real(3)(), real(3, 3)()
    dp.check_grads(lambda x: dnp.einsum("i,i->", x, x), (x,), order=2)
    np.testing.assert_allclose(dp.grad(lambda x: dnp.einsum("i,ij,j", x, a, x))(x), (a + a.T) @ x)
    fn = lambda a, x: dnp.einsum(a, [0, 1], x, [1], [0])
    dp.check_grads(fn, (a, x), order=2)
    np.testing.assert_allclose(dp.jvp(fn, (a, x), (a, x))[0], a @ x)
    fn = lambda a: dnp.einsum(a, [Ellipsis, 0, 0])
    np.testing.assert_allclose(dp.jvp(fn, (a,), (a,))[0], np.trace(a))


def test_einsum_is_one_primitive_with_canonical_subscripts():
    a, b = real(2, 3)(), real(3, 4)()
    g1 = dp.make_graph(lambda a, b: dnp.einsum("xy,yz->xz", a, b))(a, b)
    g2 = dp.make_graph(lambda a, b: dnp.einsum("ij,jk", a, b))(a, b)
    assert set(g1.primitive_names()) == set(g2.primitive_names()) == {"einsum"}
    assert "ab,bc->ac" in str(g1) and "ab,bc->ac" in str(g2)


# -- closed forms --------------------------------------------------------------------------

def test_det_gradient_closed_form():
    a = general(2, 3, 3)()
    g = dp.grad(lambda a: dnp.sum(LA.det(a)))(a)
    want = np.linalg.det(a)[:, None, None] * np.swapaxes(np.linalg.inv(a), -1, -2)
    np.testing.assert_allclose(g, want, rtol=1e-12)


def test_slogdet_gradient_closed_form():
    a = -general(3, 3)()
    g = dp.grad(lambda a: LA.slogdet(a)[1])(a)
    np.testing.assert_allclose(g, np.linalg.inv(a).T, rtol=1e-12)
    sign, t = dp.jvp(lambda a: LA.slogdet(a)[0], (a,), (a,))
    assert sign == np.linalg.slogdet(a)[0]
    assert t is None or np.all(np.asarray(t) == 0)  # the sign has no derivative


def test_trace_of_inverse_gradient_closed_form():
    a = general(3, 3)()
    g = dp.grad(lambda a: dnp.einsum("ii", LA.inv(a)))(a)
    inv = np.linalg.inv(a)
    np.testing.assert_allclose(g, -(inv @ inv).T, rtol=1e-12)


def test_eigh_reads_the_lower_triangle():
    # sum(w²) = tr(S²) for the symmetric S built from the lower triangle of a: its gradient
    # with respect to a is 2 S on the diagonal, 4 S below it and 0 above.
    s = distinct_eig(3, 3)()
    a = s + np.triu(RNG.standard_normal((3, 3)), 1)  # garbage above the diagonal is ignored
    g = dp.grad(lambda a: dnp.sum(LA.eigh(a)[0] ** 2))(a)
    np.testing.assert_allclose(g, np.tril(4 * s, -1) + np.diag(np.diag(2 * s)), atol=1e-12)
    gu = dp.grad(lambda a: dnp.sum(LA.eigvalsh(a, UPLO="U") ** 2))(a.T)
    np.testing.assert_allclose(gu, g.T, atol=1e-12)


def test_cholesky_gradient_lies_in_the_lower_triangle():
    a = spd(3, 3)()
    g = dp.grad(lambda a: dnp.sum(LA.cholesky(a) ** 2))(a)
    assert np.all(np.triu(g, 1) == 0)
    # Through a symmetric parametrization the chain rule agrees with the symmetric gradient:
    # sum(L²) = tr(L L^T) = tr(a), so d/db tr(b b^T) = 2 b.
    b = general(3, 3)()
    np.testing.assert_allclose(dp.grad(lambda b: dnp.sum(LA.cholesky(b @ b.T) ** 2))(b), 2 * b,
                               rtol=1e-10)


def test_solve_triangular_reads_one_triangle():
    a, b = general(3, 3)(), real(3, 2)()
    x = LA.solve_triangular(a, b, lower=True)
    np.testing.assert_allclose(x, np.linalg.solve(np.tril(a), b), rtol=1e-12)
    # SciPy's and JAX's default: the upper triangle (ported code solves the same system)
    np.testing.assert_allclose(LA.solve_triangular(a, b), np.linalg.solve(np.triu(a), b),
                               rtol=1e-12)
    np.testing.assert_allclose(LA.solve_triangular(a, b[:, 0], lower=False, trans=1),
                               np.linalg.solve(np.triu(a).T, b[:, 0]), rtol=1e-12)
    g = dp.grad(lambda a: dnp.sum(LA.solve_triangular(a, b, lower=True)))(a)
    assert np.all(np.triu(g, 1) == 0)
    primal, _ = dp.jvp(lambda a: LA.solve_triangular(a, b, lower=True), (a,), (a,))
    np.testing.assert_allclose(primal, x, rtol=1e-12)


def test_values_derivatives_at_repeated_eigen_and_singular_values():
    # The derivative of the values alone exists where they repeat; no NaN there.
    eye = np.eye(3)
    np.testing.assert_allclose(dp.grad(lambda a: dnp.sum(LA.eigvalsh(a) ** 2))(eye), 2 * eye)
    np.testing.assert_allclose(dp.grad(lambda a: LA.norm(a, "nuc"))(eye), eye)
    np.testing.assert_allclose(dp.grad(lambda a: dnp.sum(LA.svdvals(a)))(np.eye(3, 4)),
                               np.eye(3, 4))


def test_matrix_power_zero_is_a_constant_identity():
    a = real(2, 3, 3)()
    out, t = dp.jvp(lambda a: LA.matrix_power(a, 0), (a,), (a,))
    np.testing.assert_array_equal(out, np.broadcast_to(np.eye(3), (2, 3, 3)))
    g = dp.grad(lambda a: dnp.sum(LA.matrix_power(a, 0)) + dnp.sum(a * 0.0))(a)
    np.testing.assert_array_equal(g, np.zeros_like(a))


def test_pinv_of_a_rank_deficient_matrix_with_constant_rank():
    # The Golub-Pereyra derivative holds on the manifold of rank-2 matrices: along b c^T.
    b, c = real(4, 2)(), real(3, 2)()
    dp.check_grads(lambda b, c: LA.pinv(b @ c.T), (b, c), order=1)


def test_third_order():
    dp.check_grads(lambda a: dnp.einsum("ii", LA.inv(a)), (general(3, 3)(),), order=3)
    dp.check_grads(lambda a: LA.eigh(a)[0], (distinct_eig(3, 3)(),), order=3)


EMPTY = [
    ("inv", LA.inv, [(0, 0)]), ("inv_batched", LA.inv, [(2, 0, 0)]), ("det", LA.det, [(0, 0)]),
    ("solve", LA.solve, [(0, 0), (0,)]), ("cholesky", LA.cholesky, [(0, 0)]),
    ("eigh", lambda a: LA.eigh(a)[0], [(0, 0)]), ("qr", qr_both, [(3, 0)]),
    ("einsum", lambda a, b: dnp.einsum("ij,jk->ik", a, b), [(2, 0), (0, 3)]),
    ("einsum_broadcast", lambda a, b: dnp.einsum("ij,j->ij", a, b), [(2, 1), (0,)]),
    ("dot", dnp.dot, [(2, 0), (0, 3)]), ("tensordot", dnp.tensordot, [(2, 0, 3), (0, 3)]),
    ("norm", LA.norm, [(0,)]),
]


@pytest.mark.parametrize("name,fn,shapes", EMPTY, ids=[e[0] for e in EMPTY])
def test_empty_arrays(name, fn, shapes):
    args = tuple(np.zeros(s) for s in shapes)
    dp.check_grads(fn, args, order=2)
    _assert_tree_close(dp.jvp(fn, args, args)[0], fn(*args))


# -- NumPy's functions on traced values dispatch to diffprog ----------------------------------

DISPATCH = [
    ("solve", lambda a, x: np.linalg.solve(a, x), lambda a, x: LA.solve(a, x),
     [general(3, 3), real(3)]),
    ("einsum", lambda a, b: np.einsum("ij,jk->ik", a, b),
     lambda a, b: dnp.einsum("ij,jk->ik", a, b), [real(2, 3), real(3, 4)]),
    ("dot_method", lambda x, y: x.dot(y), lambda x, y: dnp.dot(x, y), [real(2, 3), real(3)]),
    ("norm", lambda v: np.linalg.norm(v), LA.norm, [real(4)]),
    ("dot", np.dot, dnp.dot, [real(2, 3, 4), real(4, 2)]),
    ("vdot", np.vdot, dnp.vdot, [real(2, 3), real(6)]),
    ("inner", np.inner, dnp.inner, [real(2, 3), real(3)]),
    ("tensordot", np.tensordot, dnp.tensordot, [real(2, 3, 4), real(3, 4)]),
    ("linalg.matmul", np.linalg.matmul, dnp.matmul, [real(2, 3), real(3, 2)]),
    ("inv", np.linalg.inv, LA.inv, [general(3, 3)]),
    ("det", np.linalg.det, LA.det, [general(3, 3)]),
    ("slogdet", lambda a: np.linalg.slogdet(a).logabsdet, lambda a: LA.slogdet(a)[1],
     [general(3, 3)]),
    ("cholesky", np.linalg.cholesky, LA.cholesky, [spd(3, 3)]),
    ("eigh", lambda a: np.linalg.eigh(a).eigenvalues, lambda a: LA.eigh(a)[0],
     [distinct_eig(3, 3)]),
    ("eigvalsh", np.linalg.eigvalsh, LA.eigvalsh, [distinct_eig(3, 3)]),
    ("svd", lambda a: np.linalg.svd(a, full_matrices=False).S,
     lambda a: LA.svd(a, full_matrices=False)[1], [distinct_sv(4, 3)]),
    ("svdvals", np.linalg.svdvals, LA.svdvals, [distinct_sv(3, 4)]),
    ("qr", lambda a: np.linalg.qr(a).R, lambda a: LA.qr(a)[1], [real(4, 3)]),
    ("pinv", np.linalg.pinv, LA.pinv, [real(4, 3)]),
    ("matrix_power", lambda a: np.linalg.matrix_power(a, 3), lambda a: LA.matrix_power(a, 3),
     [real(3, 3)]),
    ("multi_dot", lambda a, b: np.linalg.multi_dot([a, b, a]), lambda a, b: LA.multi_dot([a, b, a]),
     [real(3, 3), real(3, 3)]),
    ("matrix_norm", lambda a: np.linalg.matrix_norm(a, ord="nuc"),
     lambda a: LA.matrix_norm(a, ord="nuc"), [distinct_sv(3, 4)]),
    ("vector_norm", lambda a: np.linalg.vector_norm(a, ord=3),
     lambda a: LA.vector_norm(a, ord=3), [real(2, 3)]),
    ("matrix_transpose", np.linalg.matrix_transpose, LA.matrix_transpose, [real(2, 3)]),
]


@pytest.mark.parametrize("name,np_fn,dnp_fn,makers", DISPATCH, ids=[d[0] for d in DISPATCH])
def test_numpy_functions_dispatch(name, np_fn, dnp_fn, makers):
    args = _args(makers)
    argnums = tuple(range(len(args)))
    w = RNG.standard_normal(np.shape(dnp_fn(*args)))
    got = dp.grad(lambda *a: dnp.sum(np_fn(*a) * w), argnums=argnums)(*args)
    want = dp.grad(lambda *a: dnp.sum(dnp_fn(*a) * w), argnums=argnums)(*args)
    _assert_tree_close(got, want, rtol=1e-12, atol=1e-12)
    dp.check_grads(np_fn, args, order=1)


def test_plain_arrays_go_straight_to_numpy():
    a, b = general(3, 3)(), real(3, 2)()
    assert type(LA.solve(a, b)) is np.ndarray
    np.testing.assert_array_equal(LA.solve(a, b), np.linalg.solve(a, b))
    np.testing.assert_array_equal(dnp.einsum("ij,jk", a, b), np.einsum("ij,jk", a, b))
    assert isinstance(LA.eigh(a @ a.T), type(np.linalg.eigh(a @ a.T)))
    np.testing.assert_array_equal(LA.norm(b, "nuc"), np.linalg.norm(b, "nuc"))
    np.testing.assert_array_equal(dnp.dot(real(2, 3, 4)(), np.ones((4, 2))).shape, (2, 3, 2))


def test_result_types_match_numpy():
    a = spd(3, 3)()
    out = dp.jvp(lambda a: LA.eigh(a), (a,), (a,))[0]
    assert type(out) is type(np.linalg.eigh(a))
    assert out.eigenvalues.shape == (3,)
    assert type(dp.jvp(lambda a: LA.svd(a), (a,), (a,))[0]) is type(np.linalg.svd(a))
    assert type(dp.jvp(lambda a: LA.qr(a), (a,), (a,))[0]) is type(np.linalg.qr(a))
    assert type(dp.jvp(lambda a: LA.slogdet(a), (a,), (a,))[0]) is type(np.linalg.slogdet(a))


# -- errors ------------------------------------------------------------------------------------

def _traced(fn, x):
    """Run ``fn`` on a traced ``x``."""
    return dp.jvp(fn, (x,), (np.zeros_like(x),))


ERRORS = [
    ("inv_not_square", lambda x: LA.inv(x), real(2, 3), np.linalg.LinAlgError,
     "must be square"),
    ("det_1d", lambda x: LA.det(x), real(3), np.linalg.LinAlgError, "at least two-dimensional"),
    ("solve_mismatch", lambda x: LA.solve(x, np.ones(4)), general(3, 3), ValueError,
     "does not match"),
    ("solve_triangular_trans", lambda x: LA.solve_triangular(x, np.ones(3), trans="X"),
     general(3, 3), ValueError, "trans must be"),
    ("eigh_uplo", lambda x: LA.eigh(x, UPLO="X"), spd(3, 3), ValueError, "UPLO"),
    ("svd_full_matrices", lambda x: LA.svd(x), real(4, 3), NotImplementedError,
     "full_matrices=False"),
    ("svd_hermitian", lambda x: LA.svd(x, hermitian=True), spd(3, 3), NotImplementedError,
     "hermitian"),
    ("qr_raw", lambda x: LA.qr(x, mode="raw"), real(4, 3), NotImplementedError, "raw"),
    ("qr_complete_tall", lambda x: LA.qr(x, mode="complete"), real(4, 3), NotImplementedError,
     "complete"),
    ("pinv_rcond_array", lambda x: LA.pinv(x, rcond=np.array([1e-15, 1e-15])), real(2, 3, 3),
     NotImplementedError, "scalar rcond"),
    ("pinv_both", lambda x: LA.pinv(x, rcond=1e-3, rtol=1e-3), real(3, 3), ValueError,
     "can't be both set"),
    ("norm_vector_nuc", lambda x: LA.norm(x, "nuc"), real(3), ValueError,
     "Invalid norm order 'nuc' for vectors"),
    ("norm_matrix_3", lambda x: LA.norm(x, 3), real(2, 3), ValueError,
     "Invalid norm order for matrices"),
    ("norm_three_axes", lambda x: LA.norm(x, 2, axis=(0, 1, 2)), real(2, 2, 2), ValueError,
     "Improper number of dimensions"),
    ("norm_duplicate_axes", lambda x: LA.norm(x, axis=(1, 1)), real(2, 3), ValueError,
     "Duplicate axes"),
    ("matrix_power_float", lambda x: LA.matrix_power(x, 1.5), real(3, 3), TypeError, "integer"),
    ("tensordot_mismatch", lambda x: dnp.tensordot(x, np.ones((4, 2)), 1), real(2, 3),
     ValueError, "shape-mismatch"),
    ("vdot_sizes", lambda x: dnp.vdot(x, np.ones(4)), real(3), ValueError, "different sizes"),
    ("einsum_operand_count", lambda x: dnp.einsum("ij,jk", x), real(2, 3), ValueError,
     "2 operand subscripts"),
    ("einsum_rank", lambda x: dnp.einsum("ijk", x), real(2, 3), ValueError,
     "has 2 dimensions"),
    ("einsum_bad_char", lambda x: dnp.einsum("i1", x), real(2, 3), ValueError,
     "invalid subscript"),
    ("einsum_unknown_output", lambda x: dnp.einsum("ij->k", x), real(2, 3), ValueError,
     "does not appear"),
    ("einsum_repeated_output", lambda x: dnp.einsum("ij->ii", x), real(2, 3), ValueError,
     "more than once"),
    ("einsum_no_ellipsis_out", lambda x: dnp.einsum("...i->i", x), real(2, 3), ValueError,
     "no '...' ellipsis"),
    ("einsum_sizes", lambda x: dnp.einsum("ij,ij", x, np.ones((2, 4))), real(2, 3), ValueError,
     "could not be broadcast"),
    ("einsum_diagonal_sizes", lambda x: dnp.einsum("ii", x), real(2, 3), ValueError,
     "don't match"),
    ("einsum_out", lambda x: dnp.einsum("ij", x, out=np.empty((2, 3))), real(2, 3), TypeError,
     "in place"),
]


@pytest.mark.parametrize("name,fn,maker,exc,match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(name, fn, maker, exc, match):
    with pytest.raises(exc, match=match):
        _traced(fn, maker())


# -- shape rules: jit traces with them instead of running decompositions on stand-ins ----------

def _shape_rule_cases():
    from diffprog.prims import linalg as L
    a, b = general(2, 3, 3)(), real(2, 3, 2)()
    return [
        (L.matmul, (real(2, 3, 4)(), real(2, 4, 5)()), {}),
        (L.einsum, (real(2, 3)(), real(3, 4)()), {"subscripts": "ab,bc->ac"}),
        (L.einsum, (real(3, 3)(),), {"subscripts": "aa->"}),
        (L.solve, (a, b), {}), (L.solve_triangular, (a, b), {"lower": False, "trans": 1}),
        (L.det, (a,), {}), (L.slogdet, (a,), {}), (L.cholesky, (spd(2, 3, 3)(),), {}),
        (L.eigh, (spd(3, 3)(),), {}), (L.svd, (real(2, 4, 3)(),), {}),
        (L.svd, (real(3, 5)(),), {}), (L.qr, (real(2, 4, 3)(),), {}),
        (L.pinv, (real(2, 4, 3)(),), {"rcond": 1e-15}),
        (L.eig, (general(2, 3, 3)(),), {}), (L.eig, (general(3, 3)(np.float32),), {}),
        # complex inputs: real eigenvalues, singular values and log|det|
        (L.eigh, (spd(3, 3)() + 0j,), {}), (L.svd, (real(4, 3)() + 1j,), {}),
        (L.slogdet, (a + 1j,), {}), (L.eig, (general(3, 3)() + 1j,), {}),
        (L.solve_triangular, (a + 1j, b + 0j), {"lower": True, "trans": 2}),
    ]


def test_shape_rules_match_the_implementations():
    jit = pytest.importorskip("diffprog.jit")
    for prim, args, params in _shape_rule_cases():
        avals = [jit.ShapedArray(x.shape, x.dtype) for x in args]
        got = prim.abstract(*avals, **params)
        want = prim.impl(*args, **params)
        got, want = (got, want) if prim.multiple_results else ((got,), (want,))
        assert [(g.shape, g.dtype) for g in got] == [(w.shape, w.dtype) for w in want], prim


# -- coverage: every primitive of prims/linalg.py, with float64 example arguments -------------

COVERAGE = [
    (lambda a, b: dnp.einsum("ij,jk->ik", a, b), (real(2, 3)(), real(3, 4)())),
    (lambda a, b: dnp.matmul(a, b), (real(2, 3)(), real(3, 4)())),
    (LA.inv, (general(3, 3)(),)),
    (lambda a, b: LA.solve_triangular(a, b), (general(3, 3)(), real(3, 2)())),
    (LA.det, (general(3, 3)(),)),
    (lambda a: LA.slogdet(a)[1], (general(3, 3)(),)),
    (LA.cholesky, (spd(3, 3)(),)),
    (lambda a: LA.eigh(a)[0], (distinct_eig(3, 3)(),)),
    (lambda a: LA.svd(a, full_matrices=False)[1], (distinct_sv(4, 3)(),)),
    (lambda a: LA.qr(a)[1], (real(4, 3)(),)),
    (LA.pinv, (real(4, 3)(),)),
    (lambda a: dnp.abs(LA.eigvals(a)), (general(3, 3)(),)),
]


def test_coverage_exercises_every_linalg_primitive():
    from diffprog.prims import linalg as L
    seen = set()
    for fn, args in COVERAGE:
        seen.update(dp.make_graph(fn)(*args).primitive_names())
        dp.check_grads(fn, args, order=1)
    assert {name for name in L.__all__ if name != "mT"} <= seen
