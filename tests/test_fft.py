"""diffprog.numpy.fft (issue 14 §4, §5): values against numpy.fft for every function and
argument combination (n/s smaller and larger than the input, axes, norms, odd and even
lengths, dtypes), the transposes (<u, J v> = <J^T u, v> with J v computed by NumPy itself),
check_grads to order 2 in both modes on real and complex inputs, vmap against a loop, and jit
(and jit of grad) against eager on edge values (NaN, inf, empty, float32).

Each case is written once over a module ``m`` (numpy or diffprog.numpy), so NumPy's result is
the reference.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog import prims as P
from diffprog.kernels import fuse
from diffprog.testing import check_grads

NORMS = (None, "backward", "ortho", "forward")


def _randn(rng, shape, dtype=np.float64):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return np.asarray(x).astype(dtype)


def _inner(a, b) -> float:
    """The real pairing Re(sum(a * b)), no conjugation: transposes are taken under it."""
    return float(np.real(np.sum(np.asarray(a, complex) * np.asarray(b, complex))))


# -- the cases: (id, function over a module, input shape, input dtype) -------------------------

def _one_d_cases():
    # (shape, axis): odd and even lengths, first and last axes
    layouts = [((5,), -1), ((6,), -1), ((3, 4), 0), ((4, 3), 1), ((2, 7, 3), -2)]
    for name, kind in [("fft", "c"), ("ifft", "c"), ("rfft", "f"), ("irfft", "c"),
                       ("hfft", "c"), ("ihfft", "f")]:
        for shape, axis in layouts:
            length = shape[axis]
            for n in (None, length - 2, length + 3, 2 * length):
                for norm in NORMS:
                    fn = (lambda m, x, name=name, n=n, axis=axis, norm=norm:
                          getattr(m.fft, name)(x, n=n, axis=axis, norm=norm))
                    dtype = np.complex128 if kind == "c" else np.float64
                    yield f"{name}-{shape}-ax{axis}-n{n}-{norm}", fn, shape, dtype
    # fft and irfft of real input (complex output, resp. the imaginary part absent)
    for name in ("fft", "ifft", "irfft", "hfft"):
        yield (f"{name}-real-input", lambda m, x, name=name: getattr(m.fft, name)(x, n=7),
               (3, 5), np.float64)


def _n_d_cases():
    shape = (3, 4, 5)
    settings = [(None, None), (None, (0, 2)), (None, (-1, 0)), (None, (1,)), ((2, 6), (0, 2)),
                ((4, 3, 8), (0, 1, 2)), ((5, 7), (2, 1)), ((3,), (-1,)), ((2, 3), (0, 0)),
                ((2, 6, 4), None)]
    for name, kind in [("fftn", "c"), ("ifftn", "c"), ("rfftn", "f"), ("irfftn", "c")]:
        for s, axes in settings:
            if name.startswith("r") or name.startswith("ir"):
                if axes is not None and len(set(axes)) < len(axes):
                    continue
            for norm in NORMS:
                fn = (lambda m, x, name=name, s=s, axes=axes, norm=norm:
                      getattr(m.fft, name)(x, s=s, axes=axes, norm=norm))
                dtype = np.complex128 if kind == "c" else np.float64
                yield f"{name}-s{s}-axes{axes}-{norm}", fn, shape, dtype
    for name, kind in [("fft2", "c"), ("ifft2", "c"), ("rfft2", "f"), ("irfft2", "c")]:
        for s, axes in [(None, (-2, -1)), ((3, 7), (-2, -1)), ((2, 2), (0, 2)),
                        (None, (2, 0))]:
            for norm in NORMS:
                fn = (lambda m, x, name=name, s=s, axes=axes, norm=norm:
                      getattr(m.fft, name)(x, s=s, axes=axes, norm=norm))
                dtype = np.complex128 if kind == "c" else np.float64
                yield f"{name}-s{s}-axes{axes}-{norm}", fn, (4, 3, 6), dtype
    yield "fftn-real-input", lambda m, x: m.fft.fftn(x, s=(5, 2), axes=(1, 0)), (3, 4), \
        np.float64
    yield "fftn-no-axes", lambda m, x: m.fft.fftn(x, axes=()), (3, 4), np.complex128


def _shift_cases():
    for name in ("fftshift", "ifftshift"):
        for axes in (None, 0, 1, (1, 0), (-1,)):
            yield (f"{name}-{axes}", lambda m, x, name=name, axes=axes:
                   getattr(m.fft, name)(x, axes=axes), (5, 4), np.complex128)
        yield f"{name}-real-1d", lambda m, x, name=name: getattr(m.fft, name)(x), (7,), \
            np.float64


CASES = list(_one_d_cases()) + list(_n_d_cases()) + list(_shift_cases())


# s without axes is deprecated in NumPy 2.0 and still works: both warn, both are tested
@pytest.mark.filterwarnings("ignore:`axes` should not be `None`:DeprecationWarning")
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_values_linear_map_and_transpose(case, rng):
    """Traced values equal NumPy's (eager under vjp, and under jit); the jvp is NumPy's
    transform of the tangent; and the vjp is its transpose: <u, J v> = <J^T u, v> with J v
    from NumPy, an oracle independent of the rules."""
    _, form, shape, dtype = case
    x = _randn(rng, shape, dtype)
    want = form(np, x)
    f = lambda x: form(dnp, x)
    out, vjp_fn = dp.vjp(f, x)
    for got in (out, dp.jit(f)(x), f(x)):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    v = _randn(rng, shape, dtype)
    _, jv = dp.jvp(f, (x,), (v,))
    np.testing.assert_allclose(jv, form(np, v), rtol=1e-12, atol=1e-12)
    u = _randn(rng, want.shape, want.dtype)
    (jtu,) = vjp_fn(u)
    assert jtu.shape == x.shape and jtu.dtype == x.dtype
    lhs, rhs = _inner(u, form(np, v)), _inner(jtu, v)
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs)), (lhs, rhs)


def test_np_fft_dispatches_to_diffprog_on_traced_values():
    x = np.arange(6.0)
    for name in ("fft", "ifft", "rfft", "ihfft", "fftn", "ifftn", "fft2", "ifft2", "rfftn",
                 "rfft2", "fftshift", "ifftshift"):
        g = dp.make_graph(lambda x, name=name: getattr(np.fft, name)(x.reshape(2, 3)))(x)
        assert g.primitive_names(), name
        np.testing.assert_allclose(dp.jit(lambda x, name=name: getattr(np.fft, name)(
            x.reshape(2, 3)))(x), getattr(np.fft, name)(x.reshape(2, 3)), rtol=1e-13)
    z = np.fft.rfft(np.arange(6.0))
    for name in ("irfft", "hfft", "irfftn", "irfft2"):
        np.testing.assert_allclose(dp.jit(lambda z, name=name: getattr(np.fft, name)(
            z.reshape(2, 2)))(z[:4]), getattr(np.fft, name)(z[:4].reshape(2, 2)), rtol=1e-13)
    assert "fft" in dp.make_graph(lambda x: np.fft.fft(x))(x).primitive_names()
    assert "rfft" in dp.make_graph(lambda x: np.fft.rfft(x))(x).primitive_names()
    assert "irfft" in dp.make_graph(lambda z: np.fft.irfft(z))(z).primitive_names()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64,
                                   np.complex128, np.int32, np.bool_])
def test_dtypes_follow_numpy(dtype):
    """float32 -> complex64 and float64 (and integers) -> complex128, as NumPy 2; irfft back to
    the real dtype of the precision; traced and under jit alike."""
    x = (np.arange(8) % 3).astype(dtype)
    for name in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fftn", "rfftn", "irfftn"):
        if name in ("rfft", "ihfft", "rfftn") and x.dtype.kind == "c":
            continue
        want = getattr(np.fft, name)(x)
        for got in (dp.jit(getattr(dnp.fft, name))(x),
                    dp.vjp(getattr(dnp.fft, name), x)[0] if x.dtype.kind in "fc" else want):
            assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
            tol = 1e-3 if x.dtype == np.float16 else 1e-5 if x.dtype.itemsize <= 8 else 1e-12
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_float32_gradients_stay_float32(rng):
    x = _randn(rng, (6,), np.float32)
    for name in ("fft", "rfft", "ihfft"):
        g = dp.grad(lambda x, name=name: dnp.sum(dnp.abs(getattr(dnp.fft, name)(x)) ** 2))(x)
        assert g.dtype == np.float32
    z = _randn(rng, (4,), np.complex64)
    for name in ("fft", "irfft", "hfft"):
        out = getattr(dnp.fft, name)(z)
        assert out.dtype == getattr(np.fft, name)(z).dtype
        g = dp.grad(lambda z, name=name: dnp.sum(dnp.real(getattr(dnp.fft, name)(z)) ** 2))(z)
        assert g.dtype == np.complex64


def test_untraced_calls_are_numpy_and_lists_with_traced_entries_work():
    x = np.arange(5.0)
    assert dnp.fft.fft(x, out=np.empty(5, complex)).shape == (5,)
    np.testing.assert_array_equal(dnp.fft.rfft([1.0, 2.0, 3.0]), np.fft.rfft([1.0, 2.0, 3.0]))
    g = dp.grad(lambda t: dnp.real(dnp.fft.fft([t, 2.0 * t, 0.0])[1]))(1.0)
    # fft[1] = t + 2t e^{-2πi/3}: real part t (1 + 2 cos(2π/3)) = 0
    np.testing.assert_allclose(g, 1.0 + 2.0 * np.cos(2 * np.pi / 3), atol=1e-15)


def test_errors_match_numpy():
    x = np.ones(4)
    with pytest.raises(ValueError, match="Invalid number of FFT data points"):
        dp.jit(lambda x: dnp.fft.fft(x, n=0))(x)
    with pytest.raises(ValueError, match="Invalid number of FFT data points"):
        dp.jit(lambda x: dnp.fft.fft(x[:0]))(x)
    with pytest.raises(ValueError, match="Invalid norm value"):
        dp.jit(lambda x: dnp.fft.fft(x, norm="both"))(x)
    with pytest.raises(ValueError, match="Invalid norm value"):
        dp.jit(lambda x: dnp.fft.hfft(x, norm="both"))(x)
    with pytest.raises(TypeError, match="real input"):
        dp.jit(lambda x: dnp.fft.rfft(x * 1j))(x)
    with pytest.raises(TypeError, match="out="):
        dp.jit(lambda x: dnp.fft.fft(x, out=np.empty(4, complex)))(x)
    with pytest.raises(ValueError, match="different lengths"):
        dp.jit(lambda x: dnp.fft.fftn(x, s=(2, 2), axes=(0,)))(x)
    with pytest.raises(np.exceptions.AxisError):
        dp.jit(lambda x: dnp.fft.fft(x, axis=1))(x)
    with pytest.raises(ValueError, match="integer"):
        dp.jit(lambda d: dnp.fft.fftfreq(4.0, d))(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DeprecationWarning, match="axes"):
            dp.jit(lambda x: dnp.fft.fftn(x, s=(4,)))(x)


# -- derivatives of nonlinear losses -----------------------------------------------------------

def _complex_loss(y):
    """A smooth, nonlinear, real loss of a complex value (|y|^2 weighted, plus a holomorphic
    part's real part)."""
    w = np.arange(y.shape[-1]) + 1.0
    return dnp.sum(dnp.abs(y) ** 2 * w) + dnp.sum(dnp.real(y * y * (0.3 - 0.2j)))


GRAD_CASES = [
    ("fft", lambda x: dnp.fft.fft(x * x, n=7, norm="ortho"), (2, 5), np.complex128),
    ("fft-real", lambda x: dnp.fft.fft(dnp.sin(x), n=4), (3, 5), np.float64),
    ("ifft", lambda x: dnp.fft.ifft(x * x, axis=0, norm="forward"), (4, 3), np.complex128),
    ("rfft-even", lambda x: dnp.fft.rfft(dnp.sin(x)), (2, 6), np.float64),
    ("rfft-odd-n", lambda x: dnp.fft.rfft(x * x, n=5, axis=0), (6, 2), np.float64),
    ("irfft-even", lambda x: dnp.fft.irfft(x * x, n=6) ** 2, (4,), np.complex128),
    ("irfft-odd", lambda x: dnp.fft.irfft(x * x, n=7, norm="ortho") ** 2, (5,), np.complex128),
    ("hfft", lambda x: dnp.fft.hfft(x * x, n=5, norm="forward") ** 2, (4,), np.complex128),
    ("ihfft", lambda x: dnp.fft.ihfft(dnp.sin(x)), (7,), np.float64),
    ("fft2", lambda x: dnp.fft.fft2(x * x, s=(3, 5)), (2, 4), np.complex128),
    ("ifftn", lambda x: dnp.fft.ifftn(x * x, axes=(0, 1)), (3, 2, 2), np.complex128),
    ("rfftn", lambda x: dnp.fft.rfftn(dnp.sin(x), s=(2, 5), axes=(0, 1)), (3, 4), np.float64),
    ("irfftn", lambda x: dnp.fft.irfftn(x * x, s=(3, 4), axes=(0, 1)) ** 2, (3, 3),
     np.complex128),
    ("rfft2", lambda x: dnp.fft.rfft2(dnp.sin(x), norm="ortho"), (3, 4), np.float64),
    ("irfft2", lambda x: dnp.fft.irfft2(x * x, norm="forward") ** 2, (2, 3), np.complex128),
    ("fftshift", lambda x: dnp.fft.fftshift(x * x), (3, 5), np.complex128),
    ("ifftshift", lambda x: dnp.fft.ifftshift(dnp.sin(x), axes=1), (3, 5), np.float64),
]


@pytest.mark.parametrize("name,fn,shape,dtype", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_check_grads_order_2(name, fn, shape, dtype, rng):
    x = _randn(rng, shape, dtype)
    check_grads(fn, (x,), order=2, modes=("fwd", "rev"))
    loss = (lambda x: _complex_loss(fn(x))) if fn(x).dtype.kind == "c" else \
        (lambda x: dnp.sum(dnp.tanh(fn(x))))
    check_grads(loss, (x,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name,fn,shape,dtype", GRAD_CASES[:9], ids=[c[0] for c in GRAD_CASES[:9]])
def test_check_grads_float32(name, fn, shape, dtype, rng):
    x = _randn(rng, shape, np.complex64 if dtype == np.complex128 else np.float32)
    check_grads(fn, (x,), order=1, modes=("fwd", "rev"), atol=3e-2, rtol=3e-2)


def test_grad_of_complex_input_follows_jax_convention():
    # f(z) = |fft(z)[0]|^2 = |sum z|^2: grad = conj(df/dx + i df/dy) = 2 conj(sum z) per entry
    # ... written with JAX's convention grad = df/dx - i df/dy, which is 2 conj(sum z)
    z = np.array([1.0 + 2.0j, -0.5 + 0.25j, 3.0 - 1.0j])
    g = dp.grad(lambda z: dnp.abs(dnp.fft.fft(z)[0]) ** 2)(z)
    np.testing.assert_allclose(g, 2 * np.conj(np.sum(z)) * np.ones(3), rtol=1e-14)
    # Parseval for rfft of even n: sum |X|^2 = |X0|^2 + |XN/2|^2 + ... counted once here,
    # d/dx sum_k |X_k|^2 = 2 Re(sum_k conj(X_k) e^{-2πijk/n}) against a numerical gradient
    x = np.array([0.3, -1.2, 2.0, 0.7, 0.1, -0.4])
    f = lambda x: dnp.sum(dnp.abs(dnp.fft.rfft(x)) ** 2)
    k = np.arange(4)
    want = 2 * np.real(np.exp(-2j * np.pi * np.outer(np.arange(6), k) / 6)
                       @ np.conj(np.fft.rfft(x)))
    np.testing.assert_allclose(dp.grad(f)(x), want, rtol=1e-13)
    # the imaginary parts of irfft's DC and Nyquist bins are ignored: their derivative is 0
    c = np.array([1.0 + 5.0j, 2.0 - 1.0j, 0.5 + 3.0j])
    g = dp.grad(lambda c: dnp.sum(dnp.fft.irfft(c) * np.arange(1.0, 5.0)))(c)
    assert g[0].imag == 0 and g[2].imag == 0 and g[1].imag != 0


# -- vmap ----------------------------------------------------------------------------------------

VMAP_CASES = [
    ("fft", lambda x: dnp.fft.fft(x, n=5)),
    ("ifft-axis0", lambda x: dnp.fft.ifft(x, axis=0, norm="ortho")),
    ("rfft", lambda x: dnp.fft.rfft(dnp.real(x), n=6)),
    ("irfft", lambda x: dnp.fft.irfft(x, n=5, axis=0)),
    ("hfft", lambda x: dnp.fft.hfft(x)),
    ("fftn", lambda x: dnp.fft.fftn(x, s=(2, 6), axes=(0, 1))),
    ("rfft2", lambda x: dnp.fft.rfft2(dnp.real(x))),
    ("irfftn", lambda x: dnp.fft.irfftn(x, s=(3, 4), axes=(0, 1))),
    ("fftshift", lambda x: dnp.fft.fftshift(x)),
]


@pytest.mark.parametrize("name,fn", VMAP_CASES, ids=[c[0] for c in VMAP_CASES])
@pytest.mark.parametrize("in_axis", [0, 1, 2])
def test_vmap_against_a_loop(name, fn, in_axis, rng):
    xs = _randn(rng, (3, 4, 5), np.complex128)
    got = dp.vmap(fn, in_axes=in_axis)(xs)
    want = np.stack([fn(x) for x in np.moveaxis(xs, in_axis, 0)])
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # per-example gradients of a nonlinear loss, batched and looped
    loss = lambda x: _complex_loss(fn(x)) if fn(x).dtype.kind == "c" else \
        dnp.sum(fn(x) ** 2)
    got = dp.vmap(dp.grad(loss), in_axes=in_axis)(xs)
    want = np.stack([dp.grad(loss)(x) for x in np.moveaxis(xs, in_axis, 0)])
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_jacobians_of_the_transforms_are_numpy_matrices():
    # jacfwd (vmap of jvp) and jacrev (vmap of vjp) of rfft: the DFT rows, real input
    x = np.arange(5.0)
    dft = np.fft.rfft(np.eye(5), axis=0)
    np.testing.assert_allclose(dp.jacfwd(dnp.fft.rfft)(x), dft, atol=1e-14)
    # irfft (complex -> real): jacrev gives d x_j / d Re c_k - i d x_j / d Im c_k
    re, im = np.ones(3), np.arange(3.0)
    jac_re, jac_im = dp.jacrev(lambda a, b: dnp.fft.irfft(a + 1j * b, n=5), argnums=(0, 1))(re, im)
    np.testing.assert_allclose(jac_re, np.fft.irfft(np.eye(3), n=5, axis=0), atol=1e-14)
    np.testing.assert_allclose(jac_im, np.fft.irfft(1j * np.eye(3), n=5, axis=0), atol=1e-14)
    assert not np.any(jac_im[:, 0])  # the imaginary part of the DC bin is ignored
    # fft and ifft are holomorphic (complex-linear): their complex Jacobians are the DFT
    # matrices, in both modes
    z = np.arange(4) + 1j
    for name in ("fft", "ifft"):
        for norm in NORMS:
            want = getattr(np.fft, name)(np.eye(4), axis=0, norm=norm)
            for jac in (dp.jacfwd, dp.jacrev):
                got = jac(lambda z, name=name, norm=norm: getattr(dnp.fft, name)(z, norm=norm),
                          holomorphic=True)(z)
                np.testing.assert_allclose(got, want, atol=1e-15)


# -- jit, jit(grad), edge values ------------------------------------------------------------------

def _spectral_loss(x):
    """A typical loss: the power spectrum of a real signal against a target, through
    rfft/irfft and a complex multiply."""
    spec = dnp.fft.rfft(x, axis=-1)
    smooth = dnp.fft.irfft(spec * (0.5 + 0.25j), n=x.shape[-1], axis=-1)
    return dnp.sum(dnp.abs(spec) ** 2) + dnp.sum(smooth * x)


def _complex_graph_loss(z):
    y = dnp.fft.fftn(z * dnp.conj(z) + 1j * z, axes=(-1,), norm="ortho")
    return dnp.sum(dnp.real(y * dnp.exp(-0.1j * y))) + dnp.sum(dnp.imag(dnp.fft.ifft(z)) ** 2)


def _edge_inputs(dtype):
    real = np.float32 if np.dtype(dtype) in (np.float32, np.complex64) else np.float64
    rng = np.random.default_rng(7)
    base = rng.standard_normal((3, 8)).astype(real)
    nan = base.copy()
    nan[1, 3] = np.nan
    inf = base.copy()
    inf[2, 0] = np.inf
    big = base * real(1e30) if real == np.float32 else base * 1e300
    out = [base, nan, inf, big, np.zeros((0, 8), real), np.zeros((3, 8), real)]
    if np.dtype(dtype).kind == "c":
        with np.errstate(invalid="ignore"):  # 1j * inf is nan + inf j, as NumPy computes it
            out = [(a + 1j * a[::-1]).astype(dtype) for a in out]
    return out


def _same(got, want, tol):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=tol, atol=0, equal_nan=True)


@pytest.mark.parametrize("executor", ["numpy", pytest.param("interp", marks=pytest.mark.slow),
                                      pytest.param("numba", marks=pytest.mark.slow)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_jit_of_grad_of_a_real_fft_loss_equals_eager_on_edge_values(executor, dtype):
    tol = 1e-12 if dtype == np.float64 else 2e-6
    grad = dp.grad(_spectral_loss)
    fast = dp.jit(grad, executor=executor)
    fast_value = dp.jit(_spectral_loss, executor=executor)
    for x in _edge_inputs(dtype):
        with np.errstate(all="ignore"):
            _same(fast(x), grad(x), tol)
            _same(fast_value(x), _spectral_loss(x), tol)


@pytest.mark.parametrize("executor", ["numpy", pytest.param("interp", marks=pytest.mark.slow),
                                      pytest.param("numba", marks=pytest.mark.slow)])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_jit_of_grad_of_a_complex_graph_equals_eager_on_edge_values(executor, dtype):
    tol = 1e-12 if dtype == np.complex128 else 2e-5
    grad = dp.grad(_complex_graph_loss)
    fast = dp.jit(grad, executor=executor)
    for z in _edge_inputs(dtype):
        with np.errstate(all="ignore"):
            want = grad(z)
            assert want.dtype == dtype
            _same(fast(z), want, tol)
            _same(dp.jit(_complex_graph_loss, executor=executor)(z), _complex_graph_loss(z),
                  tol)


@pytest.mark.slow
def test_complex_elementwise_clusters_run_through_numpy_under_the_numba_executor():
    """The fused-kernel path leaves complex-valued nodes out of its clusters (numba's complex
    functions are not NumPy's to the bit, see benchmarks/RESULTS.md): they run through NumPy,
    giving the eager result, with no compilation attempted, while a real cluster in the same
    graph is fused."""
    def f(z, x):
        w = dnp.exp(z * z + 1j) * dnp.conj(z) - z / (z + 2.0)
        y = dnp.sin(x) * dnp.cos(x) + x * x
        return dnp.real(dnp.fft.ifft(dnp.fft.fft(w))) + y
    z = np.linspace(-1, 1, 64) + 0.5j
    x = np.linspace(0, 3, 64)
    kernels, fallbacks = fuse.stats["kernels"], fuse.stats["fallbacks"]
    got = dp.jit(f, executor="numba")(z, x)
    np.testing.assert_allclose(got, f(z, x), rtol=1e-14)
    assert fuse.stats["kernels"] > kernels  # the real cluster
    assert fuse.stats["fallbacks"] == fallbacks  # no failed compilation of a complex one
    g = dp.jit(dp.grad(lambda z: dnp.sum(dnp.abs(f(z, x)))), executor="numba")(z)
    np.testing.assert_allclose(g, dp.grad(lambda z: dnp.sum(dnp.abs(f(z, x))))(z), rtol=1e-13)


def test_jit_retraces_nothing_and_graph_holds_one_primitive_per_transform():
    f = dp.jit(lambda x: dnp.fft.irfft(dnp.fft.rfft(x) * 2.0, n=8))
    for _ in range(3):
        np.testing.assert_allclose(f(np.arange(8.0)), 2 * np.arange(8.0), atol=1e-13)
    assert f.traces == 1
    g = dp.make_graph(dp.grad(lambda x: dnp.sum(dnp.fft.irfft(dnp.fft.rfft(x) * 2.0, n=8) ** 2)))(
        np.arange(8.0))
    assert g.primitive_names().count("rfft") == 2 and g.primitive_names().count("irfft") == 2


def test_fftfreq_with_a_traced_spacing():
    for n in (5, 6):
        for fn in ("fftfreq", "rfftfreq"):
            got = dp.jit(lambda d, fn=fn, n=n: getattr(dnp.fft, fn)(n, d))(0.25)
            np.testing.assert_allclose(got, getattr(np.fft, fn)(n, 0.25), rtol=1e-15)
            g = dp.grad(lambda d, fn=fn, n=n: dnp.sum(getattr(dnp.fft, fn)(n, d)))(0.25)
            np.testing.assert_allclose(g, -np.sum(getattr(np.fft, fn)(n, 1.0)) / 0.25 ** 2,
                                       rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(dnp.fft.fftfreq(4), np.fft.fftfreq(4))
    # NumPy's own fftfreq computes with the traced spacing (it is not dispatched): same result
    g = dp.grad(lambda d: np.sum(np.fft.fftfreq(4, d) ** 2))(0.5)
    np.testing.assert_allclose(g, -2 * np.sum(np.fft.fftfreq(4, 1.0) ** 2) / 0.5 ** 3)


def test_empty_transform_axes_padded_by_n():
    """An empty axis padded to n entries (zeros in, zeros out), and its cotangent: empty."""
    x = np.zeros((3, 0))
    for name in ("fft", "rfft", "ihfft"):
        want = getattr(np.fft, name)(x, n=4)
        got = dp.jit(lambda x, name=name: getattr(dnp.fft, name)(x, n=4))(x)
        assert got.shape == want.shape and got.dtype == want.dtype and not np.any(got)
        g = dp.grad(lambda x, name=name: dnp.sum(dnp.real(getattr(dnp.fft, name)(x, n=4))))(x)
        assert g.shape == (3, 0)
    c = np.zeros((0, 2), complex)
    out, vjp_fn = dp.vjp(lambda c: dnp.fft.irfft(c, n=6, axis=0), c)
    assert out.shape == (6, 2) and vjp_fn(np.ones((6, 2)))[0].shape == (0, 2)


def test_transposes_read_only_shapes():
    # the reverse trace keeps no operand of a transform alive: shapes only
    for prim in (P.fft.fft, P.fft.rfft, P.fft.irfft):
        assert prim.linear is True and prim.vjp_reads == ((),)


# The registry test (tests/test_prims.py) checks that these exercise every FFT primitive.
COVERAGE = [
    (lambda x: dnp.real(dnp.fft.fft(x)) + dnp.imag(dnp.fft.ifft(x)), (np.ones((2, 3)),)),
    (lambda x: dnp.fft.irfft(dnp.fft.rfft(x), n=3), (np.ones((2, 3)),)),
]
