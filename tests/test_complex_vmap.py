"""Complex values under vmap, and vmap under the other transforms (issue 14).

Per-example gradients of real losses of complex values (JAX's convention: ``grad`` of a real
f of z = x + iy is ``df/dx - 1j df/dy``), holomorphic jacobians and hessians under ``vmap``
and ``jit``, and Hessian-vector products, against a Python loop over the examples and against
hand-derived forms.
"""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp

RNG = np.random.default_rng(14)
B, N = 5, 3
Z = RNG.normal(size=(B, N)) + 1j * RNG.normal(size=(B, N))
V = RNG.normal(size=(B, N)) + 1j * RNG.normal(size=(B, N))
W = RNG.normal(size=N) + 1j * RNG.normal(size=N)
A = RNG.normal(size=(N, N)) + 1j * RNG.normal(size=(N, N))
X = RNG.normal(size=(B, N)) + 1j * RNG.normal(size=(B, N))  # complex features
Y = RNG.normal(size=B) + 1j * RNG.normal(size=B)  # complex targets


def _ways(fn):
    """``fn`` as it is and jitted."""
    return {"eager": fn, "jit": dp.jit(fn)}


def _close(got, want, rtol=1e-12):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-13)


def real_loss(z):
    """A real function of complex z mixing holomorphic and non-holomorphic parts."""
    return dnp.sum(dnp.abs(dnp.sin(z) * W) ** 2) + dnp.real(dnp.sum(z * z * W))


def real_loss_grad(z):
    """Its gradient by hand: 2 dF/dz (Wirtinger: df/dx - 1j df/dy = 2 dF/dz), with
    F = |sin z|^2 |w|^2 + Re(w z^2): dF/dz = |w|^2 cos(z) conj(sin z) + w z."""
    return 2 * np.abs(W) ** 2 * np.cos(z) * np.conj(np.sin(z)) + 2 * W * z


@pytest.mark.parametrize("way", ["eager", "jit"])
def test_vmap_of_grad_of_a_real_loss_of_complex_values(way):
    loop = np.stack([dp.grad(real_loss)(z) for z in Z])
    _close(loop, real_loss_grad(Z))
    for got in (_ways(dp.vmap(dp.grad(real_loss)))[way](Z),
                dp.vmap(dp.jit(dp.grad(real_loss)))(Z),
                dp.vmap(dp.grad(real_loss), in_axes=1, out_axes=1)(Z.T.copy()).T):
        assert got.dtype == np.complex128
        _close(got, loop)


@pytest.mark.parametrize("way", ["eager", "jit"])
def test_grad_of_a_vmap_based_loss_is_the_sum_of_per_example_gradients(way):
    def batch_loss(z):
        return dnp.sum(dp.vmap(real_loss)(z))
    _close(_ways(dp.grad(batch_loss))[way](Z), real_loss_grad(Z))

    # a shared complex parameter: the gradient sums the per-example ones
    def example(w, x, y):
        r = dnp.sum(w * x) - y
        return dnp.real(r * dnp.conj(r))  # |r|^2

    def shared(w):
        return dnp.sum(dp.vmap(example, in_axes=(None, 0, 0))(w, X, Y))
    resid = X @ W - Y
    per_example = 2 * X * np.conj(resid)[:, None]  # 2 d|r|^2/dw = 2 x conj(r)
    _close(_ways(dp.grad(shared))[way](W), per_example.sum(0))
    # per-example gradients with the parameter shared: vmap(grad) over the data
    pe = _ways(dp.vmap(dp.grad(example), in_axes=(None, 0, 0)))[way](W, X, Y)
    _close(pe, per_example)
    _close(pe, np.stack([dp.grad(example)(W, x, y) for x, y in zip(X, Y)]))
    # and in the targets, complex too: 2 d|r|^2/dy = -2 conj(r)
    gy = _ways(dp.vmap(dp.grad(example, argnums=2), in_axes=(None, 0, 0)))[way](W, X, Y)
    _close(gy, -2 * np.conj(resid))


@pytest.mark.parametrize("way", ["eager", "jit"])
def test_per_example_gradients_with_real_parameters_and_complex_data(way):
    theta = np.array([0.7, -0.4])

    def loss(t, z):  # a real parameter acting on complex data (phase and scale)
        u = t[0] * dnp.exp(1j * t[1]) * z
        return dnp.sum(dnp.abs(u - 1.0) ** 2)
    got = _ways(dp.vmap(dp.grad(loss), in_axes=(None, 0)))[way](theta, Z)
    assert got.dtype == np.float64
    # by hand: u = s e^{i phi} z; d/ds = 2 Re(conj(u-1) e^{i phi} z), d/dphi = 2 Re(conj(u-1) i u)
    u = theta[0] * np.exp(1j * theta[1]) * Z
    want = np.stack([(2 * np.real(np.conj(u - 1) * np.exp(1j * theta[1]) * Z)).sum(1),
                     (2 * np.real(np.conj(u - 1) * 1j * u)).sum(1)], axis=1)
    _close(got, want)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_per_example_gradients_keep_complex64(dtype):
    z = Z.astype(dtype)
    for f in (dp.vmap(dp.grad(real_loss)), dp.jit(dp.vmap(dp.grad(real_loss)))):
        got = f(z)
        assert got.dtype == dtype
        _close(got, real_loss_grad(z.astype(np.complex128)),
               rtol=1e-12 if dtype == np.complex128 else 2e-5)


def test_per_example_gradients_through_fft():
    # sum |fft(z)|^2 = n sum |z|^2 (Parseval), whose gradient is 2 n conj(z)
    def loss(z):
        return dnp.sum(dnp.abs(dnp.fft.fft(z)) ** 2)
    for f in (dp.vmap(dp.grad(loss)), dp.jit(dp.vmap(dp.grad(loss))),
              dp.grad(lambda z: dnp.sum(dp.vmap(loss)(z)))):
        _close(f(Z), 2 * N * np.conj(Z))

    # a real signal through rfft/irfft: |irfft(H * rfft(x))|^2 with a complex filter
    h = np.fft.rfft(RNG.normal(size=8))
    xs = RNG.normal(size=(B, 8))

    def filt(x, h):
        return dnp.sum(dnp.fft.irfft(h * dnp.fft.rfft(x), n=8) ** 2)
    per = dp.vmap(dp.grad(filt, argnums=(0, 1)), in_axes=(0, None))(xs, h)
    loop = [dp.grad(filt, argnums=(0, 1))(x, h) for x in xs]
    _close(per[0], np.stack([g[0] for g in loop]))
    _close(per[1], np.stack([g[1] for g in loop]))
    # d/dx by hand: y = irfft(h rfft x) is circular convolution with k = irfft(h); the gradient
    # of |y|^2 is 2 K^T y
    k = np.fft.irfft(h, n=8)
    kmat = np.stack([np.roll(k, i) for i in range(8)], axis=1)  # y = kmat @ x
    _close(per[0], np.stack([2 * kmat.T @ (kmat @ x) for x in xs]))


def _sinz_z(z):
    return dnp.sin(z) * z


def _sinz_z_jac(z):
    return np.diag(np.cos(z) * z + np.sin(z))


def _mat(z):
    return A @ (z ** 2)


@pytest.mark.parametrize("way", ["eager", "jit"])
@pytest.mark.parametrize("jac", ["jacfwd", "jacrev"])
def test_holomorphic_jacobians_under_vmap(jac, way):
    J = getattr(dp, jac)
    got = _ways(dp.vmap(J(_sinz_z, holomorphic=True)))[way](Z)
    _close(got, np.stack([_sinz_z_jac(z) for z in Z]))
    got = _ways(dp.vmap(J(_mat, holomorphic=True)))[way](Z)
    _close(got, np.stack([A * (2 * z)[None, :] for z in Z]))  # A diag(2 z)
    # vmap of a jitted jacobian, and jacobian of a vmapped function (block diagonal)
    _close(dp.vmap(dp.jit(J(_mat, holomorphic=True)))(Z), got)
    big = J(lambda z: dp.vmap(_mat)(z), holomorphic=True)(Z)
    for b in range(B):
        _close(big[b, :, b, :], got[b])
        assert not np.any(np.delete(big[b], b, axis=1))


def _hol_loss(z):
    return dnp.sum(dnp.sin(z) * z ** 2) + dnp.sum(dnp.exp(A @ z))


def _hol_hessian(z):
    d = -np.sin(z) * z ** 2 + 4 * z * np.cos(z) + 2 * np.sin(z)
    return np.diag(d) + A.T @ np.diag(np.exp(A @ z)) @ A


@pytest.mark.parametrize("way", ["eager", "jit"])
def test_holomorphic_grad_and_hessian_under_vmap(way):
    g = _ways(dp.vmap(dp.grad(_hol_loss, holomorphic=True)))[way](Z)
    want_g = np.stack([z ** 2 * np.cos(z) + 2 * z * np.sin(z) + A.T @ np.exp(A @ z) for z in Z])
    _close(g, want_g)
    h = _ways(dp.vmap(dp.hessian(_hol_loss, holomorphic=True)))[way](Z)
    _close(h, np.stack([_hol_hessian(z) for z in Z]))
    _close(dp.vmap(dp.jit(dp.hessian(_hol_loss, holomorphic=True)))(Z), h)
    # a shared complex parameter and batched data
    hz = dp.vmap(dp.hessian(lambda w, z: dnp.sum(w ** 2 * dnp.sin(z)), holomorphic=True),
                 in_axes=(None, 0))(W, Z)
    _close(hz, np.stack([np.diag(2 * np.sin(z)) for z in Z]))


def test_jacobians_of_complex_inputs_still_need_holomorphic_under_vmap():
    for J in (dp.jacfwd, dp.jacrev, dp.hessian):
        with pytest.raises(TypeError, match="holomorphic"):
            dp.vmap(J(real_loss))(Z)
        with pytest.raises(TypeError, match="holomorphic"):
            dp.jit(dp.vmap(J(real_loss)))(Z)
    with pytest.raises(TypeError, match="holomorphic"):
        dp.vmap(dp.grad(lambda z: dnp.sum(z * z)))(Z)


def _quartic(z):
    return dnp.sum(dnp.abs(z) ** 4)


def _quartic_hvp(z, v):
    # grad = 4 |z|^2 conj(z); its derivative along v
    return 4 * (2 * np.real(np.conj(z) * v) * np.conj(z) + np.abs(z) ** 2 * np.conj(v))


@pytest.mark.parametrize("way", ["eager", "jit"])
def test_hvp_of_real_functions_of_complex_values(way):
    def one(z, v):
        return dp.hvp(_quartic, (z,), (v,))[0]
    _close(one(Z[0], V[0]), _quartic_hvp(Z[0], V[0]))
    got = _ways(dp.vmap(one))[way](Z, V)
    _close(got, _quartic_hvp(Z, V))
    # against central differences of the gradient, for a loss that is not a polynomial in |z|
    eps = 1e-6
    fd = np.stack([(dp.grad(real_loss)(z + eps * v) - dp.grad(real_loss)(z - eps * v)) / (2 * eps)
                   for z, v in zip(Z, V)])
    hv = _ways(dp.vmap(lambda z, v: dp.hvp(real_loss, (z,), (v,))[0]))[way](Z, V)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-7)
    # hvp is R-linear in v, not C-linear: hvp(1j v) != 1j hvp(v) for non-holomorphic f
    hv_i = dp.vmap(lambda z, v: dp.hvp(_quartic, (z,), (v,))[0])(Z, 1j * V)
    _close(hv_i, _quartic_hvp(Z, 1j * V))
    assert not np.allclose(hv_i, 1j * got)


def test_hvp_of_a_vmap_based_loss_is_blockwise():
    def batch_loss(z):
        return dnp.sum(dp.vmap(_quartic)(z))
    for f in (dp.hvp, lambda f, p, t: dp.jit(lambda z, v: dp.hvp(f, (z,), (v,)))(p[0], t[0])):
        got = f(batch_loss, (Z,), (V,))
        _close(got[0], _quartic_hvp(Z, V))
