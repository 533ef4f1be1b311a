"""Complex values under vmap, and vmap under the other transforms (issue 14); complex order.

Per-example gradients of real losses of complex values (JAX's convention: ``grad`` of a real
f of z = x + iy is ``df/dx - 1j df/dy``), holomorphic jacobians and hessians under ``vmap``
and ``jit``, and Hessian-vector products, against a Python loop over the examples and against
hand-derived forms. Then the order of complex values (NumPy's: lexicographic, real part first,
then imaginary): max/min/argmax/sort/maximum/minimum/clip against NumPy, the gradient on the
selected entries, and NumPy's TypeError where NumPy refuses complex input.
"""

from __future__ import annotations

import math
import re

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


# -- the order of complex values -----------------------------------------------------------------

ZC = np.array([1 + 2j, 1 + 3j, -1 + 5j, 1 + 3j, 0.5 - 1j, 1 - 4j, -0.0 + 0j, 0.0 - 0.0j])
ZC2 = np.array([1 + 1j, 1 + 3j, -2 + 5j, 2 + 0j, 0.5 - 2j, 1 - 4j, 0j, -1j])
NAN, INF = math.nan, math.inf
# nan in either part (NumPy: nan sorts last, max/min/maximum propagate it), infinities
ZN = np.array([1 + 2j, complex(NAN, 0), 3 + 0j, complex(0, NAN), complex(INF, -1),
               complex(-INF, 2), complex(1, INF), -0.0 + 0j, complex(1, -INF)])

ORDER = {
    "max": lambda m, a: m.max(a), "min": lambda m, a: m.min(a),
    "amax": lambda m, a: m.amax(a.reshape(-1, 1), axis=1),
    "amin_axis0": lambda m, a: m.amin(a[:8].reshape(2, 4), axis=0, keepdims=True),
    "argmax": lambda m, a: m.argmax(a), "argmin": lambda m, a: m.argmin(a),
    "argmax_axis": lambda m, a: m.argmax(a[:8].reshape(4, 2), axis=1),
    "sort": lambda m, a: m.sort(a), "sort_axis0": lambda m, a: m.sort(a[:8].reshape(4, 2), 0),
    "argsort": lambda m, a: m.argsort(a, kind="stable"),
    "maximum": lambda m, a: m.maximum(a, a[::-1]), "minimum": lambda m, a: m.minimum(a, a[::-1]),
    "fmax": lambda m, a: m.fmax(a, a[::-1]), "fmin": lambda m, a: m.fmin(a, a[::-1]),
    "clip": lambda m, a: m.clip(a, 0.8 + 0j, 1 + 2.5j),
    "clip_arrays": lambda m, a: m.clip(a, a[::-1] - 1, a[::-1] + 1j),
    "ptp": lambda m, a: m.ptp(a), "median": lambda m, a: m.median(a),
    "greater": lambda m, a: m.greater(a, a[::-1]), "less_equal": lambda m, a: a <= a[::-1],
    "method_max": lambda m, a: (a if m is np else a).max(),
}


@pytest.mark.parametrize("data", ["plain", "nan_inf"])
@pytest.mark.parametrize("name", list(ORDER))
def test_complex_order_equals_numpy_eager_jit_and_traced(name, data):
    z = ZC if data == "plain" else ZN
    f = ORDER[name]
    with np.errstate(invalid="ignore"):
        want = f(np, z)
        for got in (f(dnp, z), dp.jit(lambda a: f(dnp, a))(z),
                    dp.jvp(lambda a: f(dnp, a), (z,), (np.ones_like(z),))[0],
                    dp.vmap(lambda a: f(dnp, a))(np.stack([z, z]))[1]):
            assert np.asarray(got).dtype == np.asarray(want).dtype
            np.testing.assert_array_equal(got, want)


def _lossc(o):
    return dnp.sum(dnp.abs(o) ** 2 + 3 * dnp.real(o))  # gradient 2 conj(o) + 3


def _dl(o):
    return 2 * np.conj(o) + 3


@pytest.mark.parametrize("way", ["eager", "jit"])
def test_complex_order_gradients_go_to_the_selected_entries(way):
    z, z2 = ZC[:6], ZC2[:6]

    def grad_of(f):
        return _ways(dp.grad(lambda a: _lossc(f(a))))[way](z)

    def at(idx, vals):
        out = np.zeros_like(z)
        np.add.at(out, idx, vals)
        return out
    top, bottom = 1 + 3j, -1 + 5j  # the max is tied at entries 1 and 3: half to each
    _close(grad_of(dnp.max), at([1, 3], [_dl(top) / 2] * 2))
    _close(grad_of(dnp.min), at([2], [_dl(bottom)]))
    _close(grad_of(dnp.ptp), at([1, 3, 2], [_dl(top - bottom) / 2] * 2 + [-_dl(top - bottom)]))
    _close(grad_of(lambda a: a[dnp.argmax(a)]), at([1], [_dl(top)]))  # argmax: the first
    s = np.sort(z)
    _close(grad_of(lambda a: dnp.sort(a)[:3]), at([2, 4, 5], _dl(s[:3])))
    # median of six: the mean of the 3rd and 4th in order, 1 - 4j (entry 5) and 1 + 2j (entry 0)
    _close(grad_of(dnp.median), at([5, 0], [_dl(np.median(z)) / 2] * 2))
    # maximum/minimum: elementwise selection, ties (entries 1 and 5) split in halves
    mx, mn = np.maximum(z, z2), np.minimum(z, z2)
    tie = z == z2
    _close(grad_of(lambda a: dnp.maximum(a, z2)),
           np.where(tie, _dl(mx) / 2, np.where(mx == z, _dl(mx), 0)))
    _close(grad_of(lambda a: dnp.minimum(a, z2)),
           np.where(tie, _dl(mn) / 2, np.where(mn == z, _dl(mn), 0)))
    # clip: the gradient passes where a is inside [lo, hi] in the lexicographic order
    lo, hi = 0.8 + 0j, 1 + 2.5j
    inside = (np.clip(z, lo, hi) == z)
    np.testing.assert_array_equal(inside, [True, False, False, False, False, True])
    _close(grad_of(lambda a: dnp.clip(a, lo, hi)), np.where(inside, _dl(z), 0))
    # and to the bounds where they are selected
    g_lo = _ways(dp.grad(lambda b: _lossc(dnp.clip(z, b, hi))))[way](lo)
    _close(g_lo, _dl(lo) * np.sum(np.clip(z, lo, hi) == lo))


def test_complex_order_per_example_gradients():
    def loss(a):
        return _lossc(dnp.max(a)) + _lossc(dnp.sort(a)[0])
    zs = np.stack([ZC[:6], ZC2[:6], ZC[:6][::-1]])
    loop = np.stack([dp.grad(loss)(a) for a in zs])
    for f in (dp.vmap(dp.grad(loss)), dp.jit(dp.vmap(dp.grad(loss)))):
        _close(f(zs), loop)
    for a, g in zip(zs, loop):
        i, j = np.argmax(a), np.argmin(a)
        assert g[i] != 0 and g[j] != 0 and np.count_nonzero(g) <= 2 + np.sum(a == a[i])


REFUSED = {  # NumPy refuses complex input to these; so do the traced forms, with NumPy's error
    "quantile": lambda m, a: m.quantile(a, 0.3), "percentile": lambda m, a: m.percentile(a, 30),
    "floor": lambda m, a: m.floor(a), "ceil": lambda m, a: m.ceil(a),
    "trunc": lambda m, a: m.trunc(a), "remainder": lambda m, a: m.remainder(a, a),
    "fmod": lambda m, a: m.fmod(a, a), "floor_divide": lambda m, a: m.floor_divide(a, a),
    "arctan2": lambda m, a: m.arctan2(a, a), "hypot": lambda m, a: m.hypot(a, a),
    "logaddexp": lambda m, a: m.logaddexp(a, a), "signbit": lambda m, a: m.signbit(a),
    "deg2rad": lambda m, a: m.deg2rad(a), "rad2deg": lambda m, a: m.rad2deg(a),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_where_numpy_refuses_complex_so_does_diffprog(name):
    f = REFUSED[name]
    with pytest.raises(TypeError) as numpy_error:
        f(np, ZC)
    message = str(numpy_error.value)[:30]
    with pytest.raises(TypeError, match=re.escape(message)):
        f(dnp, ZC)  # untraced: NumPy itself
    with pytest.raises(TypeError, match=re.escape(message)):
        dp.jit(lambda a: f(dnp, a))(ZC)
    with pytest.raises(TypeError, match=re.escape(message)):
        dp.grad(lambda a: dnp.real(dnp.sum(f(dnp, a))))(ZC)


def test_median_and_quantile_are_nan_where_a_slice_holds_nan_as_numpy():
    # traced median/quantile sort and pick; NumPy answers nan for a slice with a nan in it
    b = np.array([[1.0, NAN, 2.0, 0.5], [1.0, 2.0, 3.0, 4.0], [-INF, 0.0, INF, 1.0]])
    cases = [(lambda m, a: m.median(a, axis=1), b),
             (lambda m, a: m.median(a), b),
             (lambda m, a: m.quantile(a, np.array([0.3, 0.5, 0.9]), axis=1), b),
             (lambda m, a: m.percentile(a, 40.0, axis=1, keepdims=True), b),
             (lambda m, a: m.median(a), ZN), (lambda m, a: m.median(a[[0, 2, 4]]), ZN)]
    for f, x in cases:
        with np.errstate(invalid="ignore"):
            want = f(np, x)
            g = lambda a, f=f: f(dnp, a)
            for got in (dp.jit(g)(x), dp.jvp(g, (x,), (np.ones_like(x),))[0],
                        dp.vmap(g)(np.stack([x, x]))[0]):
                np.testing.assert_array_equal(got, want)
    # traced q too
    q = np.array([0.3, 0.5, 0.9])
    np.testing.assert_array_equal(dp.jit(lambda q: dnp.quantile(b, q, axis=1))(q),
                                  np.quantile(b, q, axis=1))
    # the gradient of a median that is nan goes to the nan entry
    np.testing.assert_array_equal(dp.grad(dnp.median)(np.array([1.0, NAN, 2.0])), [0, 1, 0])


# -- complex values through control flow, per example ----------------------------------------------

ZS = Z[:4] * 0.5


def _f_scan(z):
    c, ys = dp.scan(lambda c, x: (c * dnp.exp(1j * x) + x, dnp.abs(c) ** 2), z[0], z)
    return dnp.sum(ys) + dnp.real(c * dnp.conj(c))


def _f_cond(z):
    return dp.cond(dnp.real(dnp.sum(z)) > 0, lambda z: dnp.sum(dnp.abs(dnp.sin(z)) ** 2),
                   lambda z: dnp.sum(dnp.real(z ** 3)), z)


def _f_fori(z):
    return dnp.sum(dnp.abs(dp.fori_loop(0, 3, lambda i, c: c * c * 0.5 + z, z)) ** 2)


def _f_while(z):
    def body(c):
        return c[0] + 1, c[1] * (1 + 0.5j) + z
    return dnp.sum(dnp.abs(dp.while_loop(lambda c: dnp.less(c[0], 3), body, (0, z))[1]) ** 2)


def _fd_grad(f, z, eps=1e-6):
    """df/dx - 1j df/dy by central differences."""
    out = np.zeros(z.shape, complex)
    for k in range(z.size):
        e = np.zeros(z.shape, complex)
        e.flat[k] = eps
        out.flat[k] = ((f(z + e) - f(z - e)) - 1j * (f(z + 1j * e) - f(z - 1j * e))) / (2 * eps)
    return out


@pytest.mark.parametrize("f", [_f_scan, _f_cond, _f_fori, _f_while],
                         ids=["scan", "cond", "fori_loop", "while_loop"])
def test_per_example_gradients_of_complex_losses_through_control_flow(f):
    loop = np.stack([dp.grad(f)(z) for z in ZS])
    for z, g in zip(ZS, loop):
        np.testing.assert_allclose(g, _fd_grad(f, z), rtol=1e-7, atol=1e-8)
    for g in (dp.vmap(dp.grad(f)), dp.jit(dp.vmap(dp.grad(f))),
              dp.grad(lambda z: dnp.sum(dp.vmap(f)(z)))):
        _close(g(ZS), loop)
    vs = V[:4]
    hv = dp.vmap(lambda z, v: dp.hvp(f, (z,), (v,))[0])(ZS, vs)
    fd = np.stack([(dp.grad(f)(z + 1e-6 * v) - dp.grad(f)(z - 1e-6 * v)) / 2e-6
                   for z, v in zip(ZS, vs)])
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_holomorphic_derivatives_through_scan_under_vmap_and_jit():
    def g(z):
        return dnp.sum(dp.scan(lambda c, x: (c * x + dnp.sin(c), c), z[0], z)[0])
    loop = np.stack([dp.hessian(g, holomorphic=True)(z) for z in ZS])
    for h in (dp.vmap(dp.hessian(g, holomorphic=True)),
              dp.jit(dp.vmap(dp.hessian(g, holomorphic=True)))):
        _close(h(ZS), loop)

    def prefix_products(z):
        return dp.scan(lambda c, x: (c * x, c), z[0], z)[1]  # z0, z0^2, z0^2 z1
    jr = dp.vmap(dp.jacrev(prefix_products, holomorphic=True))(ZS)
    jf = dp.jit(dp.vmap(dp.jacfwd(prefix_products, holomorphic=True)))(ZS)
    _close(jr, jf)
    z0, z1 = ZS[:, 0], ZS[:, 1]
    want = np.zeros((len(ZS), 3, 3), complex)
    want[:, 0, 0], want[:, 1, 0] = 1, 2 * z0
    want[:, 2, 0], want[:, 2, 1] = 2 * z0 * z1, z0 ** 2
    _close(jr, want)
