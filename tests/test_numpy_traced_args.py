"""Arguments of NumPy functions that used to be refused when traced (issue 12 follow-ups):
nanquantile/nanpercentile in ``q``, cov in its frequency and reliability weights, histogram in
its bin edges (density), and interp's refusal of complex abscissae. Values against NumPy
(bitwise where the operations are NumPy's, in NumPy's order), gradients by check_grads in both
modes to order 2, closed forms, and the errors NumPy gives.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp

X = np.array([[3.0, np.nan, 1.0, 2.0, 5.0], [np.nan] * 5, [4.0, 1.0, 2.0, 8.0, np.nan]])
M = np.array([[1.0, 2.0, 4.0, 7.0], [3.0, 1.0, 0.0, 2.5]])
FW = np.array([1, 2, 3, 1])
AW = np.array([0.5, 1.0, 2.0, 0.3])


@pytest.mark.parametrize("q", [0.3, [0.1, 0.75], [[0.2], [0.9]], 0.0, 1.0])
@pytest.mark.parametrize("axis", [None, 1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_nanquantile_traced_q(q: object, axis: int | None, keepdims: bool) -> None:
    """Eager (traced q), jit (q traced without a value) and nanpercentile equal NumPy."""
    qa = np.asarray(q, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN row, as NumPy warns
        want = np.nanquantile(X, qa, axis=axis, keepdims=keepdims)
        got_jit = dp.jit(lambda q: dnp.nanquantile(X, q, axis=axis, keepdims=keepdims))(qa)
        got_eager = dp.jvp(lambda q: dnp.nanquantile(X, q, axis=axis, keepdims=keepdims),
                           (qa,), (np.ones_like(qa),))[0]
        want_p = np.nanpercentile(X, qa * 100, axis=axis, keepdims=keepdims)
        got_p = dp.jit(lambda q: dnp.nanpercentile(X, q, axis=axis, keepdims=keepdims))(
            qa * 100)
    for got in (got_jit, got_eager):
        assert np.shape(got) == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
    np.testing.assert_allclose(got_p, want_p, rtol=1e-14, atol=0)


def test_nanquantile_q_derivative() -> None:
    """d/dq is the slope (n - 1)(above - below) of the slice's n non-NaN values."""
    row = X[0]  # non-NaN sorted: 1, 2, 3, 5 (n = 4)
    assert dp.grad(lambda q: dnp.nanquantile(row, q))(0.3) == 3 * (2.0 - 1.0)
    assert dp.grad(lambda q: dnp.nanquantile(row, q))(0.9) == 3 * (5.0 - 3.0)
    assert dp.grad(lambda q: dnp.nanpercentile(row, q))(30.0) == pytest.approx(0.03, rel=1e-15)
    rows = X[[0, 2]]
    for q in (np.array([0.1, 0.45, 0.8]), np.array(0.55)):
        dp.check_grads(lambda q: np.nanquantile(rows, q, axis=1), (q,), order=2,
                       modes=("fwd", "rev"))
        # in q and the data together
        dp.check_grads(lambda q, v: dnp.nanquantile(v, q, axis=1), (q, rows), order=2,
                       modes=("fwd", "rev"))


def test_nanquantile_q_errors() -> None:
    with pytest.raises(ValueError, match=r"range \[0, 1\]"):
        dp.grad(lambda q: dnp.nanquantile(X[0], q))(1.3)
    with pytest.raises(ValueError, match=r"range \[0, 100\]"):
        dp.grad(lambda q: dnp.nanpercentile(X[0], q))(-1.0)


@pytest.mark.parametrize("kw", [dict(fweights=FW), dict(aweights=AW),
                                dict(fweights=FW, aweights=AW),
                                dict(fweights=FW, aweights=AW, ddof=0),
                                dict(aweights=AW, bias=True), dict(fweights=FW, ddof=3),
                                dict(aweights=AW, rowvar=False)])
def test_cov_weights(kw: dict) -> None:
    """Weighted cov of traced values is NumPy's bit for bit, eagerly and under jit."""
    m = M if kw.get("rowvar", True) else M.T
    want = np.cov(m, **kw)
    assert np.array_equal(dp.jit(lambda v: dnp.cov(v, **kw))(m), want)
    assert np.array_equal(dp.jvp(lambda v: dnp.cov(v, **kw), (m,), (m,))[0], want)
    dp.check_grads(lambda v: np.cov(v, **kw), (m,), order=2, modes=("fwd", "rev"))
    if "aweights" in kw:  # differentiable in the reliability weights too
        rest = {k: v for k, v in kw.items() if k != "aweights"}
        dp.check_grads(lambda a: np.cov(m, aweights=a, **rest), (AW,), order=2,
                       modes=("fwd", "rev"))
        assert np.array_equal(dp.jit(lambda a: dnp.cov(m, aweights=a, **rest))(AW), want)


def test_cov_weights_closed_form() -> None:
    """Frequency weights are repeated observations: cov(m, fweights=f) == cov(repeat(m, f))."""
    rep = np.repeat(M, FW, axis=1)
    g = dp.grad(lambda v: dnp.sum(dnp.cov(v, fweights=FW)))(M)
    g_rep = dp.grad(lambda v: dnp.sum(dnp.cov(v)))(rep)
    # the gradient of a repeated column is the sum over its copies
    summed = np.add.reduceat(g_rep, np.r_[0, np.cumsum(FW)[:-1]], axis=1)
    np.testing.assert_allclose(g, summed, rtol=1e-13, atol=1e-15)


def test_cov_weights_errors() -> None:
    f = dp.grad(lambda v, **kw: dnp.sum(dnp.cov(v, **kw)))
    with pytest.raises(TypeError, match="fweights must be integer"):
        f(M, fweights=[1.5, 1, 1, 1])
    with pytest.raises(ValueError, match="aweights cannot be negative"):
        f(M, aweights=[-1.0, 1, 1, 1])
    with pytest.raises(RuntimeError, match="incompatible numbers of samples and fweights"):
        f(M, fweights=[1, 2])
    with pytest.raises(RuntimeError, match="multidimensional aweights"):
        f(M, aweights=np.ones((2, 4)))


A = np.array([3.0, 1.0, 2.0, 5.0, 0.7])
EDGES = np.array([0.5, 2.5, 6.1])


@pytest.mark.parametrize("density", [False, True])
@pytest.mark.parametrize("weights", [None, A * A])
def test_histogram_traced_bins(density: bool, weights: object) -> None:
    """Traced edges: the counts are NumPy's, the edges are returned as given, and with
    density=True the derivative in the edges is that of 1 / width (closed form below)."""
    want_h, want_e = np.histogram(A, EDGES, weights=weights, density=density)
    h_eager, e_eager = dp.jvp(lambda b: dnp.histogram(A, b, weights=weights, density=density),
                              (EDGES,), (np.ones(3),))[0]
    np.testing.assert_array_equal(h_eager, want_h)
    np.testing.assert_array_equal(e_eager, want_e)
    assert h_eager.dtype == want_h.dtype
    if density:
        dp.check_grads(lambda b: np.histogram(A, b, weights=weights, density=True)[0],
                       (EDGES,), order=2, modes=("fwd", "rev"))
    else:  # the counts do not move with the edges
        g = dp.grad(lambda b: dnp.sum(dnp.histogram(A, b, weights=weights)[0] * 1.0))(EDGES)
        np.testing.assert_array_equal(g, np.zeros(3))


def test_histogram_density_closed_form() -> None:
    """density h_i = c_i / (w_i * sum c): dh_0/de_0 = h_0 / w_0, dh_0/de_1 = -h_0 / w_0."""
    h0, w0 = np.histogram(A, EDGES, density=True)[0][0], EDGES[1] - EDGES[0]
    g = dp.grad(lambda b: dnp.histogram(A, b, density=True)[0][0])(EDGES)
    np.testing.assert_allclose(g, [h0 / w0, -h0 / w0, 0.0], rtol=1e-15)


def test_histogram_traced_bins_under_jit_refused() -> None:
    """Under jit the edges have no value, and the bins decide positions: a clear error."""
    with pytest.raises(TypeError, match="bins must be concrete"):
        dp.jit(lambda b: dnp.histogram(A, b)[0])(EDGES)


def test_interp_complex_abscissa_refused() -> None:
    """NumPy refuses complex x or xp (only fp may be complex); so does the traced path."""
    with pytest.raises(TypeError, match="x must be real"):
        dp.grad(lambda z: dnp.real(dnp.interp(z, [0.0, 1.0], [0.0, 1.0])),
                holomorphic=True)(0.5 + 0.1j)
    with pytest.raises(TypeError, match="xp must be real"):
        dp.grad(lambda t: dnp.interp(t, np.array([0.0, 1.0 + 0j]), [0.0, 1.0]))(0.5)
    # complex fp is NumPy's too: values and the derivative in x
    fp = np.array([0.0, 1.0 + 2.0j])
    assert dp.jit(lambda t: dnp.interp(t, [0.0, 1.0], fp))(0.25) == np.interp(0.25, [0, 1], fp)
