"""diffprog.scipy.linalg against scipy.linalg: values (traced under grad's trace and under jit,
untraced straight from SciPy), SciPy's triangle conventions (which triangle is read, where the
gradient lies), derivatives against central differences in both modes to order 2 (float64 and
float32), lu_factor/lu_solve and cho_factor/cho_solve differentiated as solves, expm to 1e-13
against SciPy on matrices of large norm and its derivative against the block formula and
finite differences, sqrtm's derivative (Sylvester) at the identity and at nonsymmetric input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sl

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.scipy import linalg as dl
from diffprog.testing import check_grads

RNG = np.random.default_rng(12)


def _spd(n, seed=0, dtype=np.float64):
    r = np.random.default_rng(seed).standard_normal((n, n))
    return (r @ r.T + n * np.eye(n)).astype(dtype)


def _general(n, seed=0, dtype=np.float64):
    r = np.random.default_rng(seed).standard_normal((n, n))
    return (r + 2 * np.eye(n)).astype(dtype)


def _value(f, *args):
    """f on traced values (inside vjp's trace) and under jit: both must equal SciPy's."""
    out, _ = dp.vjp(f, *args)
    return out, dp.jit(f)(*args)


def _close(got, want, rtol=1e-12, atol=1e-13):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=atol)


# -- values -----------------------------------------------------------------------------------

@pytest.mark.parametrize("lower", [False, True])
def test_cholesky_reads_scipys_triangle(lower):
    a = _spd(4)
    junk = a.copy()
    junk[np.tril_indices(4, -1) if not lower else np.triu_indices(4, 1)] = 99.0
    want = sl.cholesky(junk, lower=lower)
    for got in _value(lambda x: dl.cholesky(x, lower=lower), junk):
        _close(got, want)
    np.testing.assert_array_equal(dl.cholesky(junk, lower=lower), want)
    g = dp.grad(lambda x: dnp.sum(dnp.sin(dl.cholesky(x, lower=lower))))(junk)
    unread = np.tril(np.ones((4, 4)), -1) if not lower else np.triu(np.ones((4, 4)), 1)
    assert np.all(g[unread == 1] == 0)
    assert np.all(g[unread == 0] != 0)


def test_cholesky_default_differs_from_numpy():
    a = _spd(3)
    _close(dp.vjp(dl.cholesky, a)[0], np.linalg.cholesky(a).T)


@pytest.mark.parametrize("lower", [False, True])
def test_cho_factor_and_solve(lower):
    a, b = _spd(4, 1), RNG.standard_normal((4, 2))
    c_want, low = sl.cho_factor(a, lower=lower)
    c, _ = dp.vjp(lambda x: dl.cho_factor(x, lower=lower)[0], a)
    _close(c, c_want)
    assert dl.cho_factor(a, lower=lower)[1] == low
    x_want = sl.cho_solve((c_want, low), b)
    for got in _value(lambda a, b: dl.cho_solve(dl.cho_factor(a, lower=lower), b), a, b):
        _close(got, x_want)
    for got in _value(lambda b: dl.cho_solve((c_want, lower), b), b[:, 0]):
        _close(got, x_want[:, 0])
    check_grads(lambda a, b: dl.cho_solve(dl.cho_factor(a, lower=lower), b), (a, b), order=2)


@pytest.mark.parametrize("trans", [0, 1, 2, "N", "T"])
@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular(trans, lower, unit):
    a = _general(4, 2) + 3 * np.eye(4)
    b = RNG.standard_normal((4, 3))
    want = sl.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit)
    f = lambda a, b: dl.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit)
    for got in _value(f, a, b):
        _close(got, want)
    _close(dp.vjp(lambda b: f(a, b), b[:, 1])[0], want[:, 1])
    g = dp.grad(lambda a: dnp.sum(f(a, b)))(a)
    read = np.tril(np.ones((4, 4)), -1 if unit else 0) if lower else \
        np.triu(np.ones((4, 4)), 1 if unit else 0)
    assert np.all(g[read == 0] == 0)


@pytest.mark.parametrize("assume_a", [None, "gen", "sym", "her", "pos", "diagonal",
                                      "upper triangular", "lower triangular"])
@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
def test_solve(assume_a, lower, transposed):
    a = _spd(4, 3)
    a[np.triu_indices(4, 1)] += 0.5  # not symmetric: which triangle is read shows
    b = RNG.standard_normal((4, 2))
    want = sl.solve(a, b, assume_a=assume_a, lower=lower, transposed=transposed)
    f = lambda a, b: dl.solve(a, b, assume_a=assume_a, lower=lower, transposed=transposed)
    for got in _value(f, a, b):
        _close(got, want, rtol=1e-11)
    _close(dp.vjp(lambda b: f(a, b), b[:, 0])[0], want[:, 0], rtol=1e-11)


def test_solve_grads():
    a, b = _spd(3, 4) + np.triu(np.ones((3, 3)), 1), RNG.standard_normal(3)
    for kind in ("gen", "pos", "sym"):
        check_grads(lambda a, b, kind=kind: dl.solve(a, b, assume_a=kind), (a, b), order=2)
    a32 = _spd(3, 5, np.float32)
    out = dp.vjp(lambda a: dl.solve(a, np.ones(3, np.float32), assume_a="pos"), a32)[0]
    assert out.dtype == np.float32
    check_grads(lambda a: dl.solve(a, np.ones(3, np.float32), assume_a="pos"), (a32,),
                order=2, atol=1e-2, rtol=1e-2)


# -- LU -----------------------------------------------------------------------------------------

def test_lu_factor_values():
    a = _general(5, 6)
    a[0, 0] = 1e-3  # pivoting happens
    lu_want, piv_want = sl.lu_factor(a)
    (lu, piv), _ = dp.vjp(dl.lu_factor, a)
    _close(lu, lu_want)
    np.testing.assert_array_equal(piv, piv_want)
    lu_j, piv_j = dp.jit(dl.lu_factor)(a)
    _close(lu_j, lu_want)
    np.testing.assert_array_equal(piv_j, piv_want)


@pytest.mark.parametrize("trans", [0, 1, 2])
def test_lu_solve_values_and_grads(trans):
    a = _general(4, 7)
    a[0, 0] = 1e-3
    b = RNG.standard_normal((4, 2))
    want = sl.lu_solve(sl.lu_factor(a), b, trans=trans)
    f = lambda a, b: dl.lu_solve(dl.lu_factor(a), b, trans=trans)
    for got in _value(f, a, b):
        _close(got, want, rtol=1e-11)
    _close(dp.vjp(lambda b: f(a, b), b[:, 0])[0], want[:, 0], rtol=1e-11)
    # the gradient in a is that of a solve
    op = a.T if trans else a
    g_want = dp.grad(lambda a: dnp.sum(dnp.sin(dnp.linalg.solve(a.T if trans else a, b))))(a)
    _close(dp.grad(lambda a: dnp.sum(dnp.sin(f(a, b))))(a), g_want, rtol=1e-10)
    _close(dp.jit(dp.grad(lambda a: dnp.sum(dnp.sin(f(a, b)))))(a), g_want, rtol=1e-10)
    assert op.shape == a.shape
    check_grads(f, (a, b), order=2)


def test_lu_factor_grads_of_the_factors():
    a = _general(4, 8)
    check_grads(lambda a: dl.lu_factor(a)[0], (a,), order=2)
    check_grads(lambda a: dl.lu_factor(a)[0], (a.astype(np.float32),), order=1,
                atol=1e-2, rtol=1e-2)


def test_lu_solve_with_plain_factors_differentiates_b():
    a, b = _general(3, 9), RNG.standard_normal(3)
    fac = sl.lu_factor(a)
    check_grads(lambda b: dl.lu_solve(fac, b), (b,), order=2)


# -- expm -------------------------------------------------------------------------------------

def _expm_table():
    rng = np.random.default_rng(3)
    out = [np.zeros((3, 3)), np.eye(2), np.array([[0.0, 1.0], [0.0, 0.0]]),
           np.array([[1.0, 2.0], [-3.0, 0.5]]), np.diag([-30.0, 2.0, 10.0])]
    for scale in (1e-3, 0.5, 3.0, 20.0, 100.0):
        out.append(scale * rng.standard_normal((4, 4)) / 2)
    r = rng.standard_normal((5, 5))
    out.append(-(r @ r.T) * 10)  # symmetric negative definite, norm ~ 100
    return out


@pytest.mark.parametrize("i", range(len(_expm_table())))
def test_expm_values(i):
    a = _expm_table()[i]
    want = sl.expm(a)
    for got in _value(dl.expm, a):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13 * np.abs(want).max())
    # the derivative against SciPy's Fréchet derivative (Al-Mohy & Higham)
    e = np.random.default_rng(i).standard_normal(a.shape)
    _, t = dp.jvp(dl.expm, (a,), (e,))
    frechet = sl.expm_frechet(a, e, compute_expm=False)
    assert np.abs(t - frechet).max() <= 1e-12 * np.abs(frechet).max()


def test_expm_closed_forms():
    t = 0.7
    rot = np.array([[0.0, -t], [t, 0.0]])
    _close(dp.vjp(dl.expm, rot)[0], [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]],
           rtol=1e-14)
    # d/dt expm(tA) = A expm(tA)
    a = np.array([[0.3, 1.0], [-0.5, -0.2]])
    _, tangent = dp.jvp(dl.expm, (0.5 * a,), (a,))
    _close(tangent, a @ sl.expm(0.5 * a), rtol=1e-13)


@pytest.mark.slow
def test_expm_grads():
    for a in (_expm_table()[3], 0.4 * np.random.default_rng(5).standard_normal((3, 3))):
        check_grads(dl.expm, (a,), order=2)
    a32 = np.array([[0.3, 1.0], [-0.5, -0.2]], np.float32)
    assert dp.vjp(dl.expm, a32)[0].dtype == np.float32
    check_grads(dl.expm, (a32,), order=2, atol=1e-2, rtol=1e-2)
    # a batch of matrices, and the reverse mode matches SciPy's expm_frechet
    stack = np.stack(_expm_table()[2:5][:1] * 2 + [np.eye(2)])
    check_grads(dl.expm, (stack,), order=1)
    a, g = _expm_table()[3], RNG.standard_normal((2, 2))
    _, vjp_fn = dp.vjp(dl.expm, a)
    _close(vjp_fn(g)[0], sl.expm_frechet(a.T, g, compute_expm=False), rtol=1e-12)


# -- sqrtm, inv, det, eigh, block_diag ----------------------------------------------------------

def test_sqrtm():
    for a in (_spd(4, 10), np.eye(3), np.array([[4.0, 1.0], [0.0, 9.0]])):
        want = sl.sqrtm(a)
        for got in _value(dl.sqrtm, a):
            _close(got, want, rtol=1e-12)
        check_grads(dl.sqrtm, (a,), order=2)
    # at the identity dX = dA / 2
    _, t = dp.jvp(dl.sqrtm, (np.eye(3),), (np.arange(9.0).reshape(3, 3),))
    _close(t, np.arange(9.0).reshape(3, 3) / 2)
    check_grads(dl.sqrtm, (_spd(3, 11, np.float32),), order=1, atol=1e-2, rtol=1e-2)
    with pytest.raises(ValueError, match="no real square root"):
        dp.grad(lambda a: dnp.sum(dl.sqrtm(a)))(np.diag([1.0, -1.0]))


def test_solve_sylvester():
    a, b, q = _general(3, 12), _general(2, 13), RNG.standard_normal((3, 2))
    for got in _value(dl.solve_sylvester, a, b, q):
        _close(got, sl.solve_sylvester(a, b, q))
    check_grads(dl.solve_sylvester, (a, b, q), order=2)


def test_inv_det():
    a = _general(4, 14)
    for got in _value(dl.inv, a):
        _close(got, sl.inv(a))
    for got in _value(dl.det, a):
        _close(got, sl.det(a))
    check_grads(dl.inv, (a,), order=2)
    check_grads(dl.det, (a,), order=2)
    check_grads(dl.det, (a.astype(np.float32),), order=1, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("lower", [True, False])
def test_eigh(lower):
    a = _spd(4, 15)
    a[np.triu_indices(4, 1)] += 0.3
    w_want, v_want = sl.eigh(a, lower=lower)
    w, v = dp.vjp(lambda a: dl.eigh(a, lower=lower), a)[0]
    _close(w, w_want)
    _close(np.abs(v), np.abs(v_want), rtol=1e-10)
    _close(dp.jit(lambda a: dl.eigh(a, lower=lower, eigvals_only=True))(a), w_want)
    check_grads(lambda a: dl.eigh(a, lower=lower, eigvals_only=True), (a,), order=2)
    check_grads(lambda a: dl.eigh(a, lower=lower)[1] ** 2, (a,), order=1)  # sign-invariant


def test_block_diag():
    blocks = (np.arange(4.0).reshape(2, 2), np.array([5.0, 6.0, 7.0]), np.array(8.0),
              np.ones((3, 1)))
    want = sl.block_diag(*blocks)
    for got in _value(dl.block_diag, *blocks):
        _close(got, want)
    check_grads(dl.block_diag, blocks, order=2)
    got32 = dp.vjp(lambda x: dl.block_diag(x, np.ones((1, 1), np.float32)),
                   np.ones((2, 2), np.float32))[0]
    assert got32.dtype == np.float32 and got32.shape == (3, 3)


def test_untraced_calls_are_scipys():
    a = _spd(3)
    np.testing.assert_array_equal(dl.cholesky(a), sl.cholesky(a))
    np.testing.assert_array_equal(dl.expm(a / 10), sl.expm(a / 10))
    np.testing.assert_array_equal(dl.lu_factor(a)[0], sl.lu_factor(a)[0])


@pytest.mark.slow
def test_stacks_of_matrices():
    rng = np.random.default_rng(16)
    a = rng.standard_normal((3, 4, 4)) + 2 * np.eye(4)
    b = rng.standard_normal((3, 4, 2))
    s = a @ np.swapaxes(a, -1, -2)
    for got in _value(lambda a, b: dl.lu_solve(dl.lu_factor(a), b), a, b):
        _close(got, sl.lu_solve(sl.lu_factor(a), b), rtol=1e-11)
    for got in _value(dl.sqrtm, s):
        _close(got, sl.sqrtm(s), rtol=1e-11)
    for got in _value(lambda s: dl.cho_factor(s)[0], s):
        _close(got, sl.cho_factor(s)[0])
    check_grads(lambda a, b: dl.lu_solve(dl.lu_factor(a), b), (a, b), order=2)
    check_grads(dl.expm, (a / 4,), order=2)
    check_grads(dl.sqrtm, (s,), order=1)
    check_grads(lambda s, b: dl.cho_solve(dl.cho_factor(s, lower=True), b), (s, b), order=1)


# -- coverage: every primitive diffprog.scipy.linalg declares, with float64 example arguments
# (for tests/test_prims.py's registry check) ------------------------------------------------

COVERAGE = [
    (lambda a, b: dl.lu_solve(dl.lu_factor(a), b), (_general(3, 20), np.ones((3, 2)))),
    (dl.expm, (0.3 * _general(3, 21),)),
    (dl.sqrtm, (_spd(3, 22),)),
    (dl.solve_sylvester, (_general(3, 23), _general(2, 24), np.ones((3, 2)))),
]


@pytest.mark.slow
def test_coverage_exercises_every_primitive_of_the_module():
    from diffprog.core import Primitive
    declared = {p.name for p in vars(dl).values() if isinstance(p, Primitive) and p.differentiable}
    seen = set()
    for fn, args in COVERAGE:
        seen.update(dp.make_graph(fn)(*args).primitive_names())
        seen.update(dp.make_graph(dp.grad(lambda *b, fn=fn: dnp.sum(fn(*b))))(*args)
                    .primitive_names())
        check_grads(fn, args, order=1)
    assert declared - seen == set()


def test_matrix_functions_under_vmap():
    import diffprog as dp
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 4, 4)) * 0.3
    spd = a @ np.swapaxes(a, -1, -2) + 4 * np.eye(4)
    b = rng.normal(size=(3, 4))
    for f, x in ((dl.expm, a), (dl.sqrtm, spd),
                 (lambda m: dl.lu_solve(dl.lu_factor(m), np.ones(4)), spd),
                 (lambda m: dl.solve_sylvester(m, m, np.eye(4)), spd)):
        np.testing.assert_allclose(dp.vmap(f)(x), np.stack([f(m) for m in x]), rtol=1e-10,
                                   atol=1e-12)
    g = dp.vmap(dp.grad(lambda m, v: dnp.sum(dl.expm(m) @ v)))(a, b)
    for k in range(3):
        np.testing.assert_allclose(g[k], dp.grad(lambda m, k=k: dnp.sum(dl.expm(m) @ b[k]))(a[k]),
                                   rtol=1e-10)
