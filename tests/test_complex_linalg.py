"""Complex linear algebra (issue 14, part 3) and eigh at repeated eigenvalues (issue 12).

Every function of ``dnp.linalg`` (and the products, and diffprog.scipy.linalg's functions that
share their primitives) on complex inputs: values against NumPy/SciPy, check_grads in both
modes to order 2, and gradients of real losses against finite differences of the real and
imaginary parts in JAX's convention (``df/dx - 1j df/dy``). Eigen- and singular vectors have
arbitrary phases, so their derivatives are checked on phase-invariant functions, and the
rules are checked not to depend on the phases LAPACK picked (``test_phase_invariance``).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sl

import diffprog as dp
import diffprog.numpy as dnp
from diffprog import prims as P
from diffprog.scipy import linalg as SL

RNG = np.random.default_rng(14)
LA = dnp.linalg


# -- argument makers: well-conditioned complex inputs ---------------------------------------------

def cplx(*shape):
    return lambda: RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def general(*shape):
    """Random complex square matrices plus n I: far from singular."""
    n = shape[-1]
    return lambda: cplx(*shape)() + n * np.eye(n)


def hpd(*shape):
    """Hermitian positive definite: b b^H + n I."""
    n = shape[-1]

    def make():
        b = cplx(*shape)()
        return b @ np.conj(np.swapaxes(b, -1, -2)) + n * np.eye(n)
    return make


def _unitary(batch, n):
    q, _ = np.linalg.qr(cplx(*batch, n, n)())
    return q


def hermitian_with(values, batch=()):
    """A Hermitian matrix U diag(values) U^H with a random unitary U."""
    def make():
        u = _unitary(batch, len(values))
        return (u * np.asarray(values, float)) @ np.conj(np.swapaxes(u, -1, -2))
    return make


def distinct_sv(m, n):
    """Complex m x n matrices with singular values min(m, n), ..., 2, 1."""
    def make():
        k = min(m, n)
        u, v = _unitary((), m)[:, :k], _unitary((), n)[:, :k]
        return (u * np.arange(k, 0.0, -1)) @ np.conj(v.T)
    return make


def distinct_eig(n, real=False):
    """A general (non-normal) matrix X diag(w) X^-1 with well-separated eigenvalues."""
    def make():
        if real:  # a real matrix with a pair of complex conjugate eigenvalues
            x = RNG.standard_normal((n, n)) + n * np.eye(n)
            block = np.diag(np.arange(1.0, n + 1))
            block[:2, :2] = [[1.0, -2.0], [2.0, 1.0]]  # eigenvalues 1 ± 2i
            return x @ block @ np.linalg.inv(x)
        x = general(n, n)()
        w = np.arange(1.0, n + 1) * np.exp(1j * np.arange(n))
        return (x * w) @ np.linalg.inv(x)
    return make


# -- phase-invariant functions of eigen- and singular vectors ------------------------------------

def mH(x):
    return dnp.conj(dnp.swapaxes(x, -1, -2))


def abs2(x):
    return dnp.real(x * dnp.conj(x))


def eigh_invariant(a):
    w, v = LA.eigh(a)
    # |v|² weighted by a function of w, and v diag(sin w) v^H: invariant under v -> v e^{iθ}
    sin = dnp.sin(w)[..., None, :]
    return dnp.sum(abs2(v) * sin, axis=-1), (v * sin) @ mH(v)


def svd_invariant(a):
    u, s, vh = LA.svd(a, full_matrices=False)
    row = s[..., None, :]
    return (dnp.sum(abs2(u) * row, axis=-1), dnp.sum(abs2(vh) * s[..., :, None], axis=-2),
            u @ vh, (u * row ** 2) @ mH(u))


def eig_invariant(a):
    w, v = LA.eig(a)
    # v diag(w²) v^-1 = a² and |v|² (unit columns: phase-invariant)
    row = w[..., None, :]
    return (v * row ** 2) @ dnp.linalg.inv(v), abs2(v) * row


# -- check_grads on complex inputs: both modes, order 2 -----------------------------------------

GRADS = [
    ("solve", lambda a, b: LA.solve(a, b), [general(3, 3), cplx(3, 2)]),
    ("solve_vector", lambda a, b: LA.solve(a, b), [general(3, 3), cplx(3)]),
    ("solve_batch", lambda a, b: LA.solve(a, b), [general(2, 3, 3), cplx(3, 2)]),
    ("inv", LA.inv, [general(3, 3)]),
    ("det", LA.det, [general(3, 3)]),
    ("slogdet", lambda a: tuple(LA.slogdet(a)), [general(2, 3, 3)]),
    ("cholesky", LA.cholesky, [hpd(3, 3)]),
    ("cholesky_upper", lambda a: LA.cholesky(a, upper=True), [hpd(2, 3, 3)]),
    ("eigh_values", lambda a: LA.eigh(a)[0], [hermitian_with([1.0, 2.0, 3.0])]),
    ("eigh_upper", lambda a: LA.eigh(a, UPLO="U")[0], [general(3, 3)]),
    ("eigh_invariant", eigh_invariant, [hermitian_with([1.0, 2.0, 3.0])]),
    ("eigh_invariant_batch", eigh_invariant, [hermitian_with([1.0, 2.0, 3.0], (2,))]),
    ("qr_batch", lambda a: tuple(LA.qr(a)), [cplx(2, 4, 3)]),
    ("pinv_batch", LA.pinv, [cplx(2, 3, 4)]),
    ("eigvalsh", LA.eigvalsh, [hpd(2, 3, 3)]),
    ("svd_values", lambda a: LA.svd(a, compute_uv=False), [distinct_sv(4, 3)]),
    ("svdvals_wide", LA.svdvals, [distinct_sv(2, 4)]),
    ("svd_invariant_tall", svd_invariant, [distinct_sv(4, 3)]),
    ("svd_invariant_wide", svd_invariant, [distinct_sv(3, 4)]),
    ("svd_invariant_square", svd_invariant, [distinct_sv(3, 3)]),
    ("svd_invariant_batch", svd_invariant, [lambda: np.stack([distinct_sv(4, 3)()] * 2)
                                            * np.array([1.0, 1j])[:, None, None]]),
    ("qr_tall", lambda a: tuple(LA.qr(a)), [cplx(4, 3)]),
    ("qr_square", lambda a: tuple(LA.qr(a)), [cplx(3, 3)]),
    ("qr_wide", lambda a: tuple(LA.qr(a)), [cplx(2, 4)]),
    ("qr_r", lambda a: LA.qr(a, mode="r"), [cplx(4, 3)]),
    ("pinv_tall", LA.pinv, [cplx(4, 3)]),
    ("pinv_wide", LA.pinv, [cplx(2, 4)]),
    ("pinv_hermitian", lambda a: LA.pinv(a, hermitian=True), [hpd(3, 3)]),
    ("matrix_power_3", lambda a: LA.matrix_power(a, 3), [cplx(3, 3)]),
    ("matrix_power_5", lambda a: LA.matrix_power(a, 5), [cplx(2, 2)]),
    ("matrix_power_-2", lambda a: LA.matrix_power(a, -2), [general(3, 3)]),
    ("eigvals", LA.eigvals, [distinct_eig(3)]),
    ("eigvals_real_input", LA.eigvals, [distinct_eig(3, real=True)]),
    ("eig_invariant", eig_invariant, [distinct_eig(3)]),
    ("eig_invariant_batch", eig_invariant, [lambda: np.stack([distinct_eig(3)(),
                                                              distinct_eig(3)()])]),
    ("eig_invariant_real_input", eig_invariant, [distinct_eig(3, real=True)]),
    ("matmul", dnp.matmul, [cplx(2, 3), cplx(3, 4)]),
    ("matmul_mixed", dnp.matmul, [cplx(2, 3), lambda: RNG.standard_normal((3, 2))]),
    ("einsum", lambda a, b: dnp.einsum("ij,jk->ik", a, b), [cplx(2, 3), cplx(3, 4)]),
    ("einsum_trace", lambda a: dnp.einsum("ii", a), [cplx(3, 3)]),
    ("vdot", dnp.vdot, [cplx(2, 3), cplx(3, 2)]),
    ("vdot_real_first", dnp.vdot, [lambda: RNG.standard_normal(3), cplx(3)]),
    ("inner", dnp.inner, [cplx(2, 3), cplx(4, 3)]),
    ("lstsq", lambda a, b: LA.lstsq(a, b)[:2], [cplx(5, 3), cplx(5)]),
    ("cond", LA.cond, [distinct_sv(3, 3)]),
    ("solve_triangular", lambda a, b: LA.solve_triangular(a, b, lower=True),
     [general(3, 3), cplx(3, 2)]),
    ("solve_triangular_T", lambda a, b: LA.solve_triangular(a, b, trans="T"),
     [general(3, 3), cplx(3, 2)]),
    ("solve_triangular_C", lambda a, b: LA.solve_triangular(a, b, trans="C", lower=True),
     [general(3, 3), cplx(3)]),
]

NORMS = [None, 1, 2, 3, 0.5, np.inf, -np.inf, -1]
MATRIX_NORMS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]
for _ord in NORMS:
    GRADS.append((f"vector_norm_{_ord}", lambda x, o=_ord: LA.norm(x, o), [cplx(4)]))
for _ord in MATRIX_NORMS:
    # distinct singular values (2, -2, nuc) and well-separated row/column sums (1, inf)
    GRADS.append((f"matrix_norm_{_ord}", lambda x, o=_ord: LA.norm(x, o),
                  [lambda: distinct_sv(3, 3)() + np.diag([3.0, 0.0, 0.0])]))
GRADS += [
    ("norm_axis", lambda x: LA.norm(x, axis=1), [cplx(2, 3)]),
    ("norm_axes", lambda x: LA.norm(x, "nuc", axis=(0, 2)), [cplx(3, 2, 3)]),
    ("vector_norm_fn", lambda x: LA.vector_norm(x, ord=3, axis=(0, 1)), [cplx(2, 3)]),
    ("matrix_norm_fn", lambda x: LA.matrix_norm(x), [cplx(2, 3)]),
]


@pytest.mark.parametrize("name,fn,makers", GRADS, ids=[g[0] for g in GRADS])
def test_check_grads_complex(name, fn, makers):
    args = tuple(m() for m in makers)
    dp.check_grads(fn, args, order=2, modes=("fwd", "rev"))


# -- values against NumPy -----------------------------------------------------------------------

def _traced(fn, *args):
    """``fn`` on traced ``args`` (a jvp with zero tangents), its primal output."""
    return dp.jvp(fn, args, tuple(np.zeros_like(a) for a in args))[0]


VALUES = [
    ("solve", np.linalg.solve, LA.solve, [general(2, 3, 3), cplx(3, 2)]),
    ("inv", np.linalg.inv, LA.inv, [general(3, 3)]),
    ("det", np.linalg.det, LA.det, [general(2, 3, 3)]),
    ("slogdet", lambda a: tuple(np.linalg.slogdet(a)), lambda a: tuple(LA.slogdet(a)),
     [general(2, 3, 3)]),
    ("cholesky", np.linalg.cholesky, LA.cholesky, [hpd(3, 3)]),
    # only the lower (upper) triangle is read, the diagonal's imaginary part is ignored
    ("cholesky_triangle", np.linalg.cholesky, LA.cholesky, [lambda: hpd(3, 3)() + 1j * np.triu(
        RNG.standard_normal((3, 3)))]),
    ("cholesky_upper", lambda a: np.linalg.cholesky(a, upper=True),
     lambda a: LA.cholesky(a, upper=True), [lambda: hpd(3, 3)() + 1j * np.tril(
         RNG.standard_normal((3, 3)))]),
    ("eigvalsh", np.linalg.eigvalsh, LA.eigvalsh, [general(3, 3)]),
    ("eigvalsh_U", lambda a: np.linalg.eigvalsh(a, "U"), lambda a: LA.eigvalsh(a, "U"),
     [general(3, 3)]),
    ("svdvals", np.linalg.svdvals, LA.svdvals, [cplx(2, 3, 4)]),
    ("qr", lambda a: tuple(np.linalg.qr(a)), lambda a: tuple(LA.qr(a)), [cplx(4, 3)]),
    ("qr_wide_r", lambda a: np.linalg.qr(a, mode="r"), lambda a: LA.qr(a, mode="r"),
     [cplx(2, 4)]),
    ("pinv", np.linalg.pinv, LA.pinv, [cplx(4, 3)]),
    ("pinv_hermitian", lambda a: np.linalg.pinv(a, hermitian=True),
     lambda a: LA.pinv(a, hermitian=True), [hpd(3, 3)]),
    ("matrix_power", lambda a: np.linalg.matrix_power(a, -3),
     lambda a: LA.matrix_power(a, -3), [general(3, 3)]),
    ("matmul", np.matmul, dnp.matmul, [cplx(2, 2, 3), cplx(3, 2)]),
    ("einsum", lambda a, b: np.einsum("bij,jk->bik", a, b),
     lambda a, b: dnp.einsum("bij,jk->bik", a, b), [cplx(2, 2, 3), cplx(3, 2)]),
    ("vdot", np.vdot, dnp.vdot, [cplx(2, 3), cplx(6)]),
    ("inner", np.inner, dnp.inner, [cplx(2, 3), cplx(3)]),
    ("lstsq", lambda a, b: tuple(np.linalg.lstsq(a, b)), lambda a, b: tuple(LA.lstsq(a, b)),
     [cplx(5, 3), cplx(5)]),
    ("cond", np.linalg.cond, LA.cond, [cplx(3, 3)]),
    ("solve_triangular_C",
     lambda a, b: sl.solve_triangular(a, b, trans="C", lower=True),
     lambda a, b: LA.solve_triangular(a, b, trans="C", lower=True),
     [general(3, 3), cplx(3, 2)]),
]
for _ord in NORMS:
    VALUES.append((f"vector_norm_{_ord}", lambda x, o=_ord: np.linalg.norm(x, o),
                   lambda x, o=_ord: LA.norm(x, o), [cplx(5)]))
for _ord in MATRIX_NORMS:
    VALUES.append((f"matrix_norm_{_ord}", lambda x, o=_ord: np.linalg.norm(x, o),
                   lambda x, o=_ord: LA.norm(x, o), [cplx(3, 4)]))
VALUES.append(("vector_norm_0", lambda x: np.linalg.norm(x, 0), lambda x: LA.norm(x, 0),
               [lambda: np.array([1j, 0, 2 + 1j, 0])]))


@pytest.mark.parametrize("name,ref,fn,makers", VALUES, ids=[v[0] for v in VALUES])
def test_values_match_numpy(name, ref, fn, makers):
    args = tuple(m() for m in makers)
    want = ref(*args)
    for got in (_traced(fn, *args), dp.jit(fn)(*args)):
        for g, w in zip(got if isinstance(want, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            assert np.asarray(g).dtype == np.asarray(w).dtype, name
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_eigh_and_svd_match_numpy_up_to_phases():
    a = general(3, 3)()
    w, v = _traced(LA.eigh, a)
    w0, v0 = np.linalg.eigh(a)
    np.testing.assert_allclose(w, w0, rtol=1e-12)
    assert w.dtype == np.float64 and v.dtype == np.complex128
    np.testing.assert_allclose(np.abs(np.sum(np.conj(v0) * v, axis=0)), 1.0, rtol=1e-12)
    u, s, vh = _traced(lambda a: tuple(LA.svd(a, full_matrices=False)), cplx(4, 3)())
    assert s.dtype == np.float64 and u.dtype == vh.dtype == np.complex128


# -- eig against NumPy: eigenvalues matched, eigenvectors up to a phase ---------------------------

def _match(w_ours, w_numpy):
    """The permutation of ``w_numpy`` closest to ``w_ours``, entry by entry."""
    order = [int(np.argmin(np.abs(w_numpy - x))) for x in w_ours]
    assert sorted(order) == list(range(len(w_ours)))
    return order


@pytest.mark.parametrize("maker", [distinct_eig(4), distinct_eig(4, real=True),
                                   lambda: RNG.standard_normal((5, 5)), cplx(5, 5)],
                         ids=["complex", "real_pair", "real_random", "complex_random"])
def test_eig_matches_numpy(maker):
    a = maker()
    w0, v0 = np.linalg.eig(a)
    for w, v in (_traced(lambda a: tuple(LA.eig(a)), a), dp.jit(lambda a: tuple(LA.eig(a)))(a)):
        assert w.dtype == v.dtype == np.complex128  # also for real input, whatever the spectrum
        order = _match(np.asarray(w), w0)
        np.testing.assert_allclose(np.sort_complex(w), np.sort_complex(w0.astype(complex)),
                                   rtol=1e-10, atol=1e-10)
        # each eigenvector is NumPy's up to a phase, and a v = v diag(w)
        overlap = np.abs(np.sum(np.conj(v0[:, order]) * v, axis=0))
        np.testing.assert_allclose(overlap, 1.0, rtol=1e-10)
        np.testing.assert_allclose(a @ v, v * w, atol=1e-10)
    np.testing.assert_allclose(np.sort_complex(_traced(LA.eigvals, a)),
                               np.sort_complex(np.linalg.eigvals(a).astype(complex)),
                               rtol=1e-10, atol=1e-10)
    assert isinstance(_traced(LA.eig, a), type(np.linalg.eig(a)))


def test_eig_values_closed_form_derivative():
    # d w_i = (u_i^T da v_i) / (u_i^T v_i) with u_i the left eigenvector: for a triangular
    # matrix with distinct diagonal, the eigenvalues are the diagonal and d w = diag(da).
    a = np.triu(cplx(3, 3)(), 1) + np.diag([1.0, 2.0 + 1j, -3.0])
    t = np.triu(cplx(3, 3)())  # triangular: the eigenvalues stay the diagonal
    w, dw = dp.jvp(LA.eigvals, (a,), (t,))
    order = _match(np.asarray(w), np.diag(a))
    np.testing.assert_allclose(dw, np.diag(t)[order], rtol=1e-10, atol=1e-12)
    # grad of Re(sum w) = Re(tr a): the identity (JAX's convention: conj(1 + 0j) on the diagonal)
    g = dp.grad(lambda a: dnp.sum(dnp.real(LA.eigvals(a))))(a)
    np.testing.assert_allclose(g, np.eye(3), atol=1e-12)
    # and of Im(sum w) = Im(tr a): d/dx - i d/dy = -i on the diagonal
    g = dp.grad(lambda a: dnp.sum(dnp.imag(LA.eigvals(a))))(a)
    np.testing.assert_allclose(g, -1j * np.eye(3), atol=1e-12)
    # a real input gets a real gradient
    g = dp.grad(lambda a: dnp.sum(abs2(LA.eigvals(a))))(distinct_eig(3, real=True)())
    assert g.dtype == np.float64


# -- gradients of real losses against finite differences of real and imaginary parts -------------

def _fd_grad(f, z, h=1e-6):
    """JAX's convention for a real f: df/dx - 1j df/dy, entry by entry (central differences)."""
    g = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[idx] = h
        dx = (f(z + e) - f(z - e)) / (2 * h)
        dy = (f(z + 1j * e) - f(z - 1j * e)) / (2 * h)
        g[idx] = dx - 1j * dy
    return g


C = cplx(3, 3)()
LOSSES = [
    ("det", lambda a: abs2(LA.det(a)), lambda a: np.abs(np.linalg.det(a)) ** 2, general(3, 3)),
    ("slogdet", lambda a: dnp.real(LA.slogdet(a)[0] * C[0, 0]) + LA.slogdet(a)[1],
     lambda a: np.real(np.linalg.slogdet(a)[0] * C[0, 0]) + np.linalg.slogdet(a)[1],
     general(3, 3)),
    ("inv", lambda a: dnp.sum(abs2(LA.inv(a) * C)),
     lambda a: np.sum(np.abs(np.linalg.inv(a) * C) ** 2), general(3, 3)),
    ("cholesky", lambda a: dnp.sum(abs2(LA.cholesky(a) * C)),
     lambda a: np.sum(np.abs(np.linalg.cholesky(a) * C) ** 2), hpd(3, 3)),
    ("eigh", lambda a: dnp.sum(dnp.abs(LA.eigh(a)[1]) ** 3 * C.real) + dnp.sum(LA.eigh(a)[0] ** 2),
     lambda a: np.sum(np.abs(np.linalg.eigh(a)[1]) ** 3 * C.real)
     + np.sum(np.linalg.eigh(a)[0] ** 2), hermitian_with([1.0, 2.0, 4.0])),
    ("svd", lambda a: dnp.sum(abs2(LA.svd(a)[0] @ LA.svd(a)[2] * C)) + dnp.sum(LA.svdvals(a) ** 3),
     lambda a: np.sum(np.abs(np.linalg.svd(a)[0] @ np.linalg.svd(a)[2] * C) ** 2)
     + np.sum(np.linalg.svd(a)[1] ** 3), distinct_sv(3, 3)),
    ("qr", lambda a: dnp.sum(abs2(LA.qr(a)[0] * C)) + dnp.sum(dnp.real(LA.qr(a)[1] * C)),
     lambda a: (np.sum(np.abs(np.linalg.qr(a)[0] * C) ** 2)
                + np.sum(np.real(np.linalg.qr(a)[1] * C))),
     cplx(3, 3)),
    ("pinv", lambda a: dnp.sum(abs2(LA.pinv(a) * C[:, :2].T)),
     lambda a: np.sum(np.abs(np.linalg.pinv(a) * C[:, :2].T) ** 2), cplx(3, 2)),
    ("eig", lambda a: dnp.sum(abs2(LA.eigvals(a) * C[0])),
     lambda a: np.sum(np.abs(np.linalg.eigvals(a) * C[0]) ** 2), distinct_eig(3)),
    ("norm_nuc", lambda a: LA.norm(a, "nuc"), lambda a: np.linalg.norm(a, "nuc"), cplx(3, 3)),
    ("norm_2", lambda a: LA.norm(a, 2), lambda a: np.linalg.norm(a, 2), cplx(3, 3)),
    ("vdot", lambda a: dnp.real(dnp.vdot(a, C) * (1 + 2j)),
     lambda a: np.real(np.vdot(a, C) * (1 + 2j)), cplx(3, 3)),
]


@pytest.mark.parametrize("name,fn,ref,maker", LOSSES, ids=[x[0] for x in LOSSES])
def test_grad_is_jax_convention(name, fn, ref, maker):
    z = maker()
    g = dp.grad(fn)(z)
    np.testing.assert_allclose(g, _fd_grad(ref, z), rtol=1e-6, atol=1e-6)


def test_grad_convention_example():
    assert complex(dp.grad(lambda z: abs(z) ** 2)(3 + 4j)) == 6 - 8j
    # grad of |g|² for a holomorphic g is 2 conj(g) g': for det, 2 conj(det) det a^-T
    a = general(3, 3)()
    want = 2 * np.conj(np.linalg.det(a)) * np.linalg.det(a) * np.linalg.inv(a).T
    np.testing.assert_allclose(dp.grad(lambda a: abs2(LA.det(a)))(a), want, rtol=1e-12)


# -- phase invariance: the rules do not depend on the phases LAPACK picked ------------------------

def _rephased(prim, vector_outputs, monkeypatch):
    """Make ``prim`` return its vectors multiplied by random phases (as another LAPACK may)."""
    impl = prim.impl

    def phased(*args, **params):
        out = list(impl(*args, **params))
        k = out[vector_outputs[0]].shape[-1]
        phase = np.exp(2j * np.pi * RNG.random(k))
        u = vector_outputs[0]
        out[u] = out[u] * phase
        if len(vector_outputs) > 1:  # svd: Vh's rows get the same phases
            out[vector_outputs[1]] = out[vector_outputs[1]] * np.conj(phase)[:, None]
        return tuple(out)
    monkeypatch.setattr(prim, "impl", phased)


PHASES = [
    (P.eigh, (1,), lambda a: dnp.sum(dnp.real(eigh_invariant(a)[1] * C)),
     hermitian_with([1.0, 2.0, 3.0])),
    (P.svd, (0, 2), lambda a: dnp.sum(dnp.real(svd_invariant(a)[2] * C) + svd_invariant(a)[0]),
     distinct_sv(3, 3)),
    (P.eig, (1,), lambda a: dnp.sum(dnp.real(eig_invariant(a)[1] * C)), distinct_eig(3)),
]


@pytest.mark.parametrize("prim,outputs,loss,maker", PHASES, ids=["eigh", "svd", "eig"])
def test_phase_invariance(prim, outputs, loss, maker, monkeypatch):
    a = maker()
    t = cplx(3, 3)()
    value = loss(a)
    grad = dp.grad(loss)(a)
    hvp = dp.jvp(dp.grad(loss), (a,), (t,))[1]
    _rephased(prim, outputs, monkeypatch)
    np.testing.assert_allclose(loss(a), value, rtol=1e-12)
    np.testing.assert_allclose(dp.grad(loss)(a), grad, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dp.jvp(dp.grad(loss), (a,), (t,))[1], hvp, rtol=1e-9, atol=1e-12)


# -- eigh at repeated eigenvalues: functions of the eigenvalues alone are exact -------------------

def _lower_read_gradient(g_hermitian):
    """The gradient reaching ``a`` when eigh reads its lower triangle, from the gradient G with
    respect to the Hermitian matrix: G on the diagonal (real part), G_ij + conj(G_ji) below."""
    g = np.tril(g_hermitian + np.conj(np.swapaxes(g_hermitian, -1, -2)), -1)
    return g + np.real(np.diag(np.diag(g_hermitian))).astype(g_hermitian.dtype)


DEGENERATE = [
    ("identity_real", lambda: np.eye(3)),
    ("identity_complex", lambda: np.eye(3, dtype=complex)),
    ("double_real", lambda: (lambda q: (q * [1.0, 1.0, 3.0]) @ q.T)(
        np.linalg.qr(RNG.standard_normal((3, 3)))[0])),
    ("double_complex", hermitian_with([2.0, 2.0, -1.0])),
    ("triple_complex", hermitian_with([0.5, 0.5, 0.5, 2.0])),
]


@pytest.mark.parametrize("name,maker", DEGENERATE, ids=[d[0] for d in DEGENERATE])
def test_eigh_repeated_eigenvalues_exact(name, maker):
    a = maker()
    n = a.shape[-1]
    # f(a) = sum(w²) = ||a||_F², sum(w) = tr(a), sum(exp(w)) = tr(expm(a)): closed forms
    # (the gradient with respect to the Hermitian matrix is conj of the matrix derivative)
    w0, v0 = np.linalg.eigh(a)
    expm = (v0 * np.exp(w0)) @ np.conj(v0.T)
    cases = [
        (lambda a: dnp.sum(LA.eigvalsh(a) ** 2), 2 * np.conj(a)),
        (lambda a: dnp.sum(LA.eigh(a)[0]), np.eye(n, dtype=a.dtype)),
        (lambda a: dnp.sum(dnp.exp(LA.eigvalsh(a))), np.conj(expm)),
        (lambda a: dnp.sum(SL.eigh(a)[0] ** 2), 2 * np.conj(a)),
    ]
    t = cplx(n, n)() if a.dtype.kind == "c" else RNG.standard_normal((n, n))
    t_h = np.tril(t) + np.conj(np.tril(t, -1)).T  # the Hermitian direction eigh sees
    t_h = t_h - 1j * np.imag(np.diag(np.diag(t_h))) if a.dtype.kind == "c" else t_h
    for f, g_herm in cases:
        want = _lower_read_gradient(g_herm.astype(a.dtype))
        for grad in (dp.grad(f), dp.jit(dp.grad(f))):
            np.testing.assert_allclose(grad(a), want, rtol=1e-12, atol=1e-12)
        # forward mode: Re <conj(G), t_h>
        got = dp.jvp(f, (a,), (t.astype(a.dtype),))[1]
        np.testing.assert_allclose(got, np.real(np.sum(g_herm * t_h)), rtol=1e-10, atol=1e-12)


def _real_symmetric_with(values):
    q, _ = np.linalg.qr(RNG.standard_normal((len(values), len(values))))
    return (q * np.asarray(values)) @ q.T


PROJECTORS = [
    ("eigh_real", _real_symmetric_with([1.0, 1.0, 3.0]), slice(0, 2)),
    ("eigh_complex", hermitian_with([1.0, 1.0, 3.0])(), slice(0, 2)),
    ("eigh_complex_triple", hermitian_with([2.0, 2.0, 2.0, -1.0])(), slice(1, 4)),
]


@pytest.mark.parametrize("name,a,cluster", PROJECTORS, ids=[p[0] for p in PROJECTORS])
def test_eigh_repeated_eigenvalues_projectors(name, a, cluster):
    # A function of the eigenvalues and of the projector onto a repeated eigenvalue's
    # eigenspace does not depend on the basis LAPACK picks there, and its derivative is exact:
    # the eigenspace's own block (dropped, as for exact ties) does not contribute to it.
    # U diag(1, 1, 3) U^H in floating point has eigenvalues a few ulps apart, not equal.
    n = a.shape[-1]
    c = cplx(n, n)() if a.dtype.kind == "c" else RNG.standard_normal((n, n))

    def f(a, m=dnp):
        w, v = (LA if m is dnp else np.linalg).eigh(a)
        p = v[:, cluster] @ m.conj(m.swapaxes(v[:, cluster], 0, 1))
        return m.sum(m.real(p * c)) + m.sum(w ** 3)

    g = dp.grad(f)(a)
    if a.dtype.kind == "c":
        want = _fd_grad(lambda a: f(a, np), a)
    else:
        want = np.real(_fd_grad(lambda a: f(np.real(a), np), a.astype(complex)))
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-6)


def test_svd_repeated_singular_values_projectors():
    u, v = _unitary((), 4)[:, :3], _unitary((), 3)
    a = (u * [2.0, 2.0, 1.0]) @ np.conj(v.T)
    c = cplx(4, 4)()

    def f(a, m=dnp):
        u, s, vh = (LA if m is dnp else np.linalg).svd(a, full_matrices=False)
        p = u[:, :2] @ m.conj(m.swapaxes(u[:, :2], 0, 1))
        return m.sum(m.real(p * c)) + m.sum(s ** 3)

    np.testing.assert_allclose(dp.grad(f)(a), _fd_grad(lambda a: f(a, np), a), rtol=1e-6,
                               atol=1e-6)


def test_eigh_repeated_eigenvalues_near_ties():
    # Eigenvalues that differ by a subnormal number: 1 / (w_j - w_i) overflows to inf, and
    # the derivative of a function of the eigenvalues alone must not become inf * 0 = nan.
    a = hermitian_with([1.0, 1.0 + 1e-15, 3.0])() * 1e-300
    w = np.linalg.eigvalsh(a)
    assert 0 < w[1] - w[0] < 1e-308
    g = dp.grad(lambda a: dnp.sum(LA.eigvalsh(a)))(a)
    np.testing.assert_allclose(g, np.eye(3), atol=1e-12)


# -- diffprog.scipy.linalg: the same primitives on complex values ---------------------------------

H, A, B = hpd(3, 3)(), general(3, 3)(), cplx(3, 2)()
H_UPPER = H + np.tril(cplx(3, 3)(), -1)  # Hermitian in its upper triangle only
SCIPY = [
    ("cholesky", SL.cholesky, sl.cholesky, (H,)),
    ("cholesky_lower", lambda a: SL.cholesky(a, lower=True), lambda a: sl.cholesky(a, lower=True),
     (H,)),
    ("cho_solve", lambda a, b: SL.cho_solve(SL.cho_factor(a), b),
     lambda a, b: sl.cho_solve(sl.cho_factor(a), b), (H, B)),
    ("cho_solve_lower", lambda a, b: SL.cho_solve(SL.cho_factor(a, lower=True), b),
     lambda a, b: sl.cho_solve(sl.cho_factor(a, lower=True), b), (H, B)),
    ("solve", SL.solve, sl.solve, (A, B)),
    ("solve_her", lambda a, b: SL.solve(a, b, assume_a="her"),
     lambda a, b: sl.solve(a, b, assume_a="her"), (H_UPPER, B)),
    ("solve_pos_lower", lambda a, b: SL.solve(a, b, assume_a="pos", lower=True),
     lambda a, b: sl.solve(a, b, assume_a="pos", lower=True), (H, B)),
    ("solve_sym", lambda a, b: SL.solve(a, b, assume_a="sym"),
     lambda a, b: sl.solve(a, b, assume_a="sym"), (A, B)),
    ("inv", SL.inv, sl.inv, (A,)),
    ("det", SL.det, sl.det, (A,)),
    ("solve_triangular", SL.solve_triangular, sl.solve_triangular, (A, B)),
    ("solve_triangular_C", lambda a, b: SL.solve_triangular(a, b, trans="C", lower=True),
     lambda a, b: sl.solve_triangular(a, b, trans="C", lower=True), (A, B)),
    ("solve_triangular_2", lambda a, b: SL.solve_triangular(a, b, trans=2),
     lambda a, b: sl.solve_triangular(a, b, trans=2), (A, B)),
    ("lu_factor", lambda a: SL.lu_factor(a)[0], lambda a: sl.lu_factor(a)[0], (A,)),
    ("lu_solve", lambda a, b: SL.lu_solve(SL.lu_factor(a), b),
     lambda a, b: sl.lu_solve(sl.lu_factor(a), b), (A, B)),
    ("lu_solve_T", lambda a, b: SL.lu_solve(SL.lu_factor(a), b, trans=1),
     lambda a, b: sl.lu_solve(sl.lu_factor(a), b, trans=1), (A, B)),
    ("lu_solve_H", lambda a, b: SL.lu_solve(SL.lu_factor(a), b, trans=2),
     lambda a, b: sl.lu_solve(sl.lu_factor(a), b, trans=2), (A, B)),
    ("eigh_values", lambda a: SL.eigh(a, eigvals_only=True),
     lambda a: sl.eigh(a, eigvals_only=True), (A,)),
    ("eigh_upper_invariant", lambda a: abs2(SL.eigh(a, lower=False)[1]),
     lambda a: np.abs(sl.eigh(a, lower=False)[1]) ** 2, (hermitian_with([1.0, 2.0, 3.0])(),)),
]


@pytest.mark.parametrize("name,fn,ref,args", SCIPY, ids=[s[0] for s in SCIPY])
def test_scipy_linalg_complex(name, fn, ref, args):
    np.testing.assert_allclose(_traced(fn, *args), ref(*args), rtol=1e-10, atol=1e-12)
    dp.check_grads(fn, args, order=2, modes=("fwd", "rev"))


# -- vmap and jit ------------------------------------------------------------------------------

def test_vmap_eig_and_complex_decompositions():
    xs = np.stack([distinct_eig(3)() for _ in range(4)])
    for f in (lambda a: eig_invariant(a)[0], lambda a: LA.slogdet(a)[0],
              lambda a: LA.cholesky(a @ mH(a) + 3 * np.eye(3)), lambda a: LA.svdvals(a)):
        want = np.stack([_traced(f, x) for x in xs])
        np.testing.assert_allclose(dp.vmap(f)(xs), want, rtol=1e-10, atol=1e-12)
    g = dp.vmap(dp.grad(lambda a: dnp.sum(abs2(LA.eigvals(a)))))(xs)
    want = np.stack([dp.grad(lambda a: dnp.sum(abs2(LA.eigvals(a))))(x) for x in xs])
    np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12)


def test_jit_complex_gradients_match_eager():
    a = hermitian_with([1.0, 2.0, 3.0])()
    for loss in (lambda a: dnp.sum(dnp.real(eigh_invariant(a)[1] * C)),
                 lambda a: dnp.sum(svd_invariant(a)[0]),
                 lambda a: dnp.real(LA.slogdet(a)[0]) + LA.norm(a, -2),
                 lambda a: dnp.sum(abs2(LA.eigvals(a + np.diag([0.0, 5.0, 9.0]))))):
        np.testing.assert_allclose(dp.jit(dp.grad(loss))(a), dp.grad(loss)(a), rtol=1e-10)


SINGLE = [
    ("inv", LA.inv, general(3, 3)), ("det", LA.det, general(3, 3)),
    ("slogdet", lambda a: tuple(LA.slogdet(a)), general(3, 3)),
    ("cholesky", LA.cholesky, hpd(3, 3)), ("eigvalsh", LA.eigvalsh, hpd(3, 3)),
    ("svdvals", LA.svdvals, distinct_sv(3, 3)), ("qr", lambda a: tuple(LA.qr(a)), cplx(3, 3)),
    ("pinv", LA.pinv, cplx(3, 2)),
    # symmetric functions of the eigenvalues: cgeev and zgeev may order them differently
    ("eigvals", lambda a: dnp.sum(LA.eigvals(a) ** 3), distinct_eig(3)),
    ("eigvals_float32", lambda a: dnp.sum(LA.eigvals(a) ** 3), distinct_eig(3, real=True)),
    ("norm_nuc", lambda a: LA.norm(a, "nuc"), distinct_sv(3, 3)),
]


@pytest.mark.parametrize("name,fn,maker", SINGLE, ids=[s[0] for s in SINGLE])
def test_complex64(name, fn, maker):
    # complex64 stays complex64 (real results float32; eig of float32 gives complex64), eagerly
    # and under jit, and the derivatives hold to single precision
    x = maker()
    x = x.astype(np.float32 if x.dtype.kind == "f" else np.complex64)
    want = fn(x.astype(np.float64 if x.dtype.kind == "f" else np.complex128))
    for got in (_traced(fn, x), dp.jit(fn)(x)):
        for g, w in zip(got if isinstance(got, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            assert g.dtype == (np.float32 if np.asarray(w).dtype.kind == "f" else np.complex64)
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
    dp.check_grads(fn, (x,), order=2, modes=("fwd", "rev"), atol=3e-3, rtol=3e-3)
