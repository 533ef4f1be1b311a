"""The elementwise NumPy surface of diffprog.numpy: one table per family (name, function, domain
of each argument) expanded over shapes, broadcasting pairs, empty arrays and dtypes into
check_grads in both modes to order 2; zero derivatives of the piecewise-constant functions; the
documented edge points; complex parts (JAX's convention); NumPy dispatch on traced values."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from tests.domains import DTYPES, away_from_zero, positive, real, tol_for, unit

RNG = np.random.default_rng(1)


# -- domains: where each function is smooth (no ties, away from singularities and jumps) ------



def wide(shape, dtype):
    # wide enough that clip's bounds cut both tails
    return (1.5 * RNG.standard_normal(shape)).astype(dtype)






def above_one(shape, dtype):
    return RNG.uniform(1.2, 3.0, shape).astype(dtype)




def mod_dividend(shape, dtype):
    # x / y stays away from integers for the divisors below, so no jump is within the step
    return (RNG.integers(-3, 3, shape) * 1.0 + RNG.uniform(0.2, 0.8, shape)).astype(dtype)


def rmod_divisor(shape, dtype):
    # 7.5 / x stays within (2.1, 2.9), away from the integers where 7.5 % x jumps
    return RNG.uniform(2.6, 3.55, shape).astype(dtype)


def mod_divisor(shape, dtype):
    return (RNG.choice([-1.0, 1.0], shape) * np.ones(shape)).astype(dtype)


def lower(shape, dtype):
    return RNG.uniform(-1.0, -0.4, shape).astype(dtype)


def upper(shape, dtype):
    return RNG.uniform(0.4, 1.0, shape).astype(dtype)




# -- tables ----------------------------------------------------------------------------------

UNARY = [
    ("exp", dnp.exp, real), ("exp2", dnp.exp2, real), ("expm1", dnp.expm1, real),
    ("log", dnp.log, positive), ("log2", dnp.log2, positive), ("log10", dnp.log10, positive),
    ("log1p", dnp.log1p, positive),
    ("sin", dnp.sin, real), ("cos", dnp.cos, real), ("tan", dnp.tan, unit),
    ("arcsin", dnp.arcsin, unit), ("arccos", dnp.arccos, unit), ("arctan", dnp.arctan, real),
    ("sinh", dnp.sinh, real), ("cosh", dnp.cosh, real), ("tanh", dnp.tanh, real),
    ("arcsinh", dnp.arcsinh, real), ("arccosh", dnp.arccosh, above_one),
    ("arctanh", dnp.arctanh, unit),
    ("sqrt", dnp.sqrt, positive), ("cbrt", dnp.cbrt, away_from_zero),
    ("reciprocal", dnp.reciprocal, away_from_zero), ("square", dnp.square, real),
    ("negative", dnp.negative, real), ("positive", lambda x: dnp.positive(x) * x, real),
    ("abs", dnp.abs, away_from_zero), ("absolute", dnp.absolute, away_from_zero),
    ("fabs", dnp.fabs, away_from_zero),
    ("deg2rad", dnp.deg2rad, real), ("rad2deg", dnp.rad2deg, real),
    ("radians", dnp.radians, real), ("degrees", dnp.degrees, real),
    ("real", lambda x: dnp.real(x) * x, real), ("conj", lambda x: dnp.conj(x) * x, real),
    ("conjugate", lambda x: dnp.conjugate(x) ** 2, real),
    ("imag_of_real", lambda x: dnp.imag(x) + x, real),
    ("clip", lambda x: dnp.clip(x, -0.5, 0.5) * x, wide),
    ("clip_lower_only", lambda x: dnp.clip(x, -0.5, None) ** 2, wide),
    ("clip_upper_only", lambda x: dnp.clip(x, max=0.5) ** 2, wide),
    ("clip_method", lambda x: x.clip(-0.5, 0.5) ** 3, wide),
    ("float_power", lambda x: dnp.float_power(x, 3), real),
    ("mod_const", lambda x: dnp.mod(x, 1.0) * x, mod_dividend),
    ("rmod_const", lambda x: 7.5 % x, rmod_divisor),
    ("fmod_const", lambda x: dnp.fmod(x, 1.0) * x, mod_dividend),
    ("logaddexp_const", lambda x: dnp.logaddexp(x, 0.5), real),
    ("astype_f64", lambda x: dnp.astype(x, np.float64) * x, real),
]
BINARY = [
    ("add", dnp.add, real, real), ("subtract", dnp.subtract, real, real),
    ("multiply", dnp.multiply, real, real), ("divide", dnp.divide, real, away_from_zero),
    ("true_divide", dnp.true_divide, real, away_from_zero),
    ("power", dnp.power, positive, real), ("float_power", dnp.float_power, positive, real),
    ("maximum", dnp.maximum, real, real), ("minimum", dnp.minimum, real, real),
    ("fmax", dnp.fmax, real, real), ("fmin", dnp.fmin, real, real),
    ("arctan2", dnp.arctan2, real, away_from_zero), ("hypot", dnp.hypot, real, real),
    ("logaddexp", dnp.logaddexp, real, real), ("logaddexp2", dnp.logaddexp2, real, real),
    ("mod", dnp.mod, mod_dividend, mod_divisor),
    ("remainder", dnp.remainder, mod_dividend, mod_divisor),
    ("mod_operator", lambda x, y: (x % y) * x, mod_dividend, mod_divisor),
    ("fmod", dnp.fmod, mod_dividend, mod_divisor),
    ("clip_bounds", lambda x, y: dnp.clip(x, y - 1.0, y + 1.0) * y, wide, real),
    ("clip_lo_traced", lambda x, y: dnp.clip(x, y, None) ** 2, wide, real),
]
TERNARY = [
    ("clip", dnp.clip, wide, lower, upper),
    ("clip_inverted_bounds", lambda a, lo, hi: dnp.clip(a, hi, lo) * a, wide, lower, upper),
]

SHAPES = [(), (3,), (2, 3), (0,), (2, 0)]
PAIRS = [((), ()), ((3,), (3,)), ((2, 3), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)),
         ((2, 1), (1, 3)), ((), (2, 3)), ((2, 3), ()), ((0,), (0,)), ((0, 3), (3,)),
         ((2, 0), ())]
TRIPLES = [((2, 3), (), ()), ((2, 3), (3,), (2, 1)), ((), (2, 3), ()), ((0,), (), (0,))]


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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", TRIPLES, ids=str)
@pytest.mark.parametrize("name,fn,da,db,dc", TERNARY, ids=[t[0] for t in TERNARY])
def test_ternary(name, fn, da, db, dc, shapes, dtype):
    args = (da(shapes[0], dtype), db(shapes[1], dtype), dc(shapes[2], dtype))
    dp.check_grads(fn, args, order=2, **tol_for(dtype))


@pytest.mark.parametrize("name,fn,dx,dy", BINARY, ids=[b[0] for b in BINARY])
def test_binary_with_one_constant(name, fn, dx, dy):
    x, y = dx((2, 3), np.float64), dy((3,), np.float64)
    dp.check_grads(lambda x: fn(x, y), (x,), order=2)
    dp.check_grads(lambda y: fn(x, y), (y,), order=2)


def test_mixed_precision_operands_promote_like_numpy():
    x32, y64 = real((3,), np.float32), real((3,), np.float64)
    out = dp.jvp(dnp.hypot, (x32, y64), (np.ones(3, np.float32), np.ones(3)))[0]
    assert out.dtype == np.float64
    dp.check_grads(dnp.logaddexp, (x32, y64), order=2, atol=3e-3, rtol=3e-3)


# -- complex: real -> complex -> real, and complex inputs (JAX's convention) -----------------

C = 1.0 + 2.0j
COMPLEX_OF_REAL = [
    ("real", lambda x: dnp.real(x * C) ** 2),
    ("imag", lambda x: dnp.imag(x * C) ** 2),
    ("conj", lambda x: dnp.real(dnp.conj(x * C) * (x * C + 1j))),
    ("conjugate_method", lambda x: dnp.imag((x * C).conjugate() * dnp.exp(x * C))),
    ("real_imag_properties", lambda x: (x * C).real * (dnp.sin(x * C)).imag),
    ("abs", lambda x: dnp.abs(x * C + 0.5j) ** 2),
    ("abs_plain", lambda x: dnp.abs(x * C + 0.5j)),
    ("astype_real", lambda x: dnp.astype(dnp.exp(x * C), np.float64)),
    ("sqrt_log", lambda x: dnp.real(dnp.sqrt(x * C + 3.0) * dnp.log(x * C + 2.0))),
    ("reciprocal", lambda x: dnp.real(dnp.reciprocal(x * C + 0.5j)) ** 2),
]


# the numerical oracle calls astype on plain complex arrays, where NumPy warns
@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)], ids=str)
@pytest.mark.parametrize("name,fn", COMPLEX_OF_REAL, ids=[c[0] for c in COMPLEX_OF_REAL])
def test_complex_in_between(name, fn, shape):
    dp.check_grads(fn, (real(shape, np.float64),), order=2)


def complex_(shape, dtype=np.complex128):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)


COMPLEX_INPUT = [
    ("real", lambda z: dnp.real(z) ** 3),
    ("imag", lambda z: dnp.imag(z) * dnp.real(z)),
    ("conj", lambda z: dnp.conj(z) * z ** 2),
    ("abs", lambda z: dnp.abs(z)),
    ("holomorphic", lambda z: dnp.sin(z) * dnp.exp(z) / (z + 3.0)),
    ("norm2", lambda z: dnp.real(z * dnp.conj(z))),
]


@pytest.mark.parametrize("shape", [(), (3,)], ids=str)
@pytest.mark.parametrize("name,fn", COMPLEX_INPUT, ids=[c[0] for c in COMPLEX_INPUT])
def test_complex_inputs(name, fn, shape):
    dp.check_grads(fn, (complex_(shape),), order=2)


def test_complex_conventions_match_jax():
    z = np.complex128(1.0 + 2.0j)
    # grad of a real function of z is df/dRe(z) - 1j df/dIm(z), as in JAX
    assert dp.grad(lambda z: dnp.real(z))(z) == 1.0
    assert dp.grad(lambda z: dnp.imag(z))(z) == -1.0j
    assert dp.grad(lambda z: dnp.real(z * dnp.conj(z)))(z) == 2.0 - 4.0j
    g = dp.grad(lambda z: dnp.abs(z))(z)
    np.testing.assert_allclose(g, np.conj(z) / np.abs(z))
    _, t = dp.jvp(dnp.conj, (z,), (np.complex128(1j),))
    assert t == -1j
    _, vjp_fn = dp.vjp(dnp.imag, z)
    assert vjp_fn(np.float64(2.0)) == (-2.0j,)


def test_complex64_stays_complex64():
    z = complex_((3,), np.complex64)
    out, t = dp.jvp(lambda z: dnp.real(z) * dnp.abs(z), (z,), (np.ones(3, np.complex64),))
    assert out.dtype == np.float32 and t.dtype == np.float32
    dp.check_grads(lambda z: dnp.abs(z) ** 2, (z,), order=2, atol=3e-3, rtol=3e-3)


def test_fabs_of_complex_raises_like_numpy():
    with pytest.raises(TypeError, match="fabs"):
        dp.grad(lambda z: dnp.fabs(z))(np.complex128(1j))


# -- piecewise-constant functions: zero derivative, no error ---------------------------------

NONDIFF = [
    ("floor", dnp.floor), ("ceil", dnp.ceil), ("round", dnp.round),
    ("round_decimals", lambda x: dnp.round(x, 1)), ("around", dnp.around),
    ("round_method", lambda x: x.round(2)), ("trunc", dnp.trunc), ("rint", dnp.rint),
    ("sign", dnp.sign), ("floor_divide", lambda x: dnp.floor_divide(x, 0.3)),
    ("floordiv_operator", lambda x: x // 0.3), ("rfloordiv_operator", lambda x: 2.0 // x),
    ("divmod_quotient", lambda x: divmod(x, 0.3)[0]),
    ("equal", lambda x: dnp.equal(x, x)), ("not_equal", lambda x: dnp.not_equal(x, 0.1)),
    ("less", lambda x: dnp.less(x, 0.1)), ("less_equal", lambda x: dnp.less_equal(x, 0.1)),
    ("greater", lambda x: dnp.greater(x, 0.1)),
    ("greater_equal", lambda x: dnp.greater_equal(x, 0.1)),
    ("logical_and", lambda x: dnp.logical_and(x > 0, x < 1)),
    ("logical_or", lambda x: dnp.logical_or(x, x > 1)),
    ("logical_xor", lambda x: dnp.logical_xor(x > 0, x)),
    ("logical_not", lambda x: dnp.logical_not(x)),
    ("and_operator", lambda x: (x > 0) & (x < 1)), ("or_operator", lambda x: (x > 0) | (x < -1)),
    ("xor_operator", lambda x: (x > 0) ^ (x < 1)), ("invert_operator", lambda x: ~(x > 0)),
    ("isfinite", dnp.isfinite), ("isnan", dnp.isnan), ("isinf", lambda x: dnp.isinf(x / 0.5)),
    ("signbit", dnp.signbit),
    ("zeros_like", dnp.zeros_like), ("ones_like", dnp.ones_like),
    ("full_like", lambda x: dnp.full_like(x, 2.5)),
    ("astype_int", lambda x: dnp.astype(x * 10, np.int64)),
    ("astype_bool", lambda x: x.astype(bool)),
]


@pytest.mark.parametrize("shape", [(), (3,)], ids=str)
@pytest.mark.parametrize("name,fn", NONDIFF, ids=[n[0] for n in NONDIFF])
def test_nondifferentiable_have_zero_derivative(name, fn, shape):
    x = real(shape, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = fn(x)
        g = dp.grad(lambda x: dnp.sum(dnp.astype(fn(x), np.float64)))(x)
        np.testing.assert_array_equal(g, np.zeros(shape))
        g = dp.grad(lambda x: dnp.sum(dnp.astype(fn(x), np.float64) * x))(x)
        np.testing.assert_array_equal(g, np.asarray(want, dtype=np.float64))
        out, t = dp.jvp(fn, (x,), (np.ones(shape),))
        assert t is None or not np.any(t)
        np.testing.assert_array_equal(out, want)
        # at order 2 too: under an outer transform the function is still a constant
        grad_fn = dp.grad(lambda x: dnp.sum(dnp.astype(fn(x), np.float64) * x ** 2))
        _, second = dp.jvp(grad_fn, (x,), (np.ones(shape),))
        np.testing.assert_array_equal(second, 2.0 * np.asarray(want, dtype=np.float64))


def test_shape_and_dtype_queries_on_traced_values():
    x = real((2, 3), np.float32)

    def f(x):
        assert dnp.shape(x) == np.shape(x) == (2, 3)
        assert dnp.ndim(x) == np.ndim(x) == 2
        assert dnp.size(x) == np.size(x) == 6 and np.size(x, 1) == 3
        assert dnp.result_type(x, np.float64) == np.result_type(x, np.float64) == np.float64
        assert np.result_type(x, 1.0) == np.float32
        for i, idx in enumerate(np.where(x)):
            np.testing.assert_array_equal(idx, np.nonzero(x0)[i])
        np.testing.assert_array_equal(dnp.where(x > 0.0)[1], np.nonzero(x0 > 0)[1])
        assert np.zeros_like(x).dtype == np.float32 and np.ones_like(x, shape=4).shape == (4,)
        np.testing.assert_array_equal(np.full_like(x, 3), np.full((2, 3), 3, np.float32))
        e = np.empty_like(x, dtype=np.int8)
        assert e.shape == (2, 3) and e.dtype == np.int8
        return dnp.sum(x * dnp.size(x))

    x0 = x.copy()
    np.testing.assert_array_equal(dp.grad(f)(x), np.full((2, 3), 6, np.float32))
    _, t = dp.jvp(f, (x,), (np.ones((2, 3), np.float32),))
    assert t == 36


def test_where_with_x_or_y_missing_raises_like_numpy():
    with pytest.raises(ValueError, match="both or neither"):
        dp.grad(lambda x: dnp.where(x > 0, x).sum())(np.ones(2))


def test_full_like_with_traced_fill_value_is_differentiable():
    dp.check_grads(lambda v: dnp.full_like(np.zeros((2, 3)), v) * np.arange(6.0).reshape(2, 3),
                   (1.5,), order=2)


def test_bitwise_operators_on_float_traced_values_raise_like_numpy():
    with pytest.raises(TypeError, match="bitwise_and"):
        dp.grad(lambda x: (x & x).sum())(np.ones(2))


def test_round_out_argument_is_refused():
    with pytest.raises(TypeError, match="out="):
        dp.grad(lambda x: dnp.round(x, 0, out=np.zeros(())))(1.0)


# -- edge points, as documented ---------------------------------------------------------------

def both_modes(f, x):
    """The derivative of a scalar function at x by grad and by jvp."""
    g = dp.grad(f)(x)
    _, t = dp.jvp(f, (x,), (np.ones_like(x),))
    return g, t


def test_abs_and_fabs_at_zero_have_derivative_zero():
    for f in (dnp.abs, dnp.fabs, abs, np.abs, lambda x: dnp.abs(x + 0j)):
        g, t = both_modes(lambda x, f=f: f(x) * 1.0 + 0.0 * x, 0.0)
        assert g == 0.0 and t == 0.0
    g = dp.grad(lambda x: dnp.sum(dnp.abs(x)))(np.array([-2.0, -0.0, 0.0, 3.0]))
    np.testing.assert_array_equal(g, [-1.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("fn", [dnp.maximum, dnp.minimum, dnp.fmax, dnp.fmin])
def test_ties_share_the_derivative_evenly(fn):
    x = np.array([1.0, 2.0])
    gx, gy = dp.grad(lambda x, y: dnp.sum(fn(x, y)), argnums=(0, 1))(x, x.copy())
    np.testing.assert_array_equal(gx, [0.5, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 0.5])
    assert dp.grad(lambda x: fn(x, x))(1.0) == 1.0
    _, t = dp.jvp(fn, (x, x.copy()), (np.ones(2), np.zeros(2)))
    np.testing.assert_array_equal(t, [0.5, 0.5])


@pytest.mark.parametrize("fn,pick", [(dnp.fmax, np.fmax), (dnp.fmin, np.fmin)])
def test_fmax_fmin_ignore_nan_and_send_the_derivative_to_the_chosen_operand(fn, pick):
    x = np.array([np.nan, 1.0, np.nan, 3.0])
    y = np.array([2.0, np.nan, np.nan, -1.0])
    out, vjp_fn = dp.vjp(fn, x, y)
    np.testing.assert_array_equal(out, pick(x, y))
    gx, gy = vjp_fn(np.ones(4))
    np.testing.assert_array_equal(gx, [0.0, 1.0, 0.0, 1.0 if pick is np.fmax else 0.0])
    np.testing.assert_array_equal(gy, [1.0, 0.0, 0.0, 0.0 if pick is np.fmax else 1.0])
    _, t = dp.jvp(fn, (x, y), (np.ones(4), np.zeros(4)))
    np.testing.assert_array_equal(t, gx)


def test_maximum_propagates_nan_with_zero_derivative():
    gx, gy = dp.grad(lambda x, y: dnp.sum(dnp.maximum(x, y)), argnums=(0, 1))(
        np.array([np.nan]), np.array([1.0]))
    np.testing.assert_array_equal(gx, [0.0])
    np.testing.assert_array_equal(gy, [0.0])


def test_sqrt_and_cbrt_at_zero_follow_numpy_inf():
    with np.errstate(divide="ignore"):
        for f in (dnp.sqrt, dnp.cbrt):
            g, t = both_modes(f, 0.0)
            assert g == np.inf and t == np.inf


def test_hypot_at_origin_has_derivative_zero():
    gx, gy = dp.grad(dnp.hypot, argnums=(0, 1))(0.0, 0.0)
    assert gx == 0.0 and gy == 0.0
    _, t = dp.jvp(dnp.hypot, (0.0, 0.0), (1.0, 1.0))
    assert t == 0.0


def test_arctan2_at_origin_is_nan():
    with np.errstate(invalid="ignore"):
        gy, gx = dp.grad(dnp.arctan2, argnums=(0, 1))(0.0, 0.0)
    assert np.isnan(gy) and np.isnan(gx)


def test_clip_derivative_is_one_inside_including_the_bounds_and_zero_outside():
    x = np.array([-2.0, 0.0, 0.5, 1.0, 3.0])
    g = dp.grad(lambda x: dnp.sum(dnp.clip(x, 0.0, 1.0)))(x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0])
    _, t = dp.jvp(lambda x: np.clip(x, 0.0, 1.0), (x,), (np.ones(5),))
    np.testing.assert_array_equal(t, g)
    # traced bounds get the derivative where they are returned
    lo, hi = np.zeros(5), np.ones(5)
    gx, glo, ghi = dp.grad(lambda x, lo, hi: dnp.sum(dnp.clip(x, lo, hi)), argnums=(0, 1, 2))(
        x, lo, hi)
    np.testing.assert_array_equal(glo, [1.0, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(ghi, [0.0, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(gx + glo + ghi, np.ones(5))
    # a_min > a_max: NumPy returns a_max everywhere, which gets the whole derivative
    gx, glo, ghi = dp.grad(lambda x, lo, hi: dnp.sum(dnp.clip(x, lo, hi)), argnums=(0, 1, 2))(
        x, hi, lo)
    np.testing.assert_array_equal(ghi, np.ones(5))
    np.testing.assert_array_equal(gx + glo, np.zeros(5))


def test_mod_and_fmod_derivatives():
    x, y = np.array([5.5, -5.5]), np.array([2.0, 2.0])
    gx, gy = dp.grad(lambda x, y: dnp.sum(dnp.mod(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [1.0, 1.0])
    np.testing.assert_array_equal(gy, -np.floor(x / y))
    gx, gy = dp.grad(lambda x, y: dnp.sum(dnp.fmod(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [1.0, 1.0])
    np.testing.assert_array_equal(gy, -np.trunc(x / y))
    # at a jump the one-sided derivative (1 in x) is used
    assert dp.grad(lambda x: dnp.mod(x, 2.0))(4.0) == 1.0


def test_power_exponent_derivative_at_zero_base():
    assert dp.grad(lambda y: dnp.power(0.0, y))(2.0) == 0.0


def test_logaddexp_is_finite_at_extremes():
    gx, gy = dp.grad(dnp.logaddexp, argnums=(0, 1))(1000.0, -1000.0)
    assert (gx, gy) == (1.0, 0.0)
    gx, gy = dp.grad(dnp.logaddexp2, argnums=(0, 1))(-1000.0, 1000.0)
    assert (gx, gy) == (0.0, 1.0)


# -- plain NumPy code on traced values gives the dnp derivatives -----------------------------

UFUNC_NAMES_UNARY = [
    ("exp", real), ("exp2", real), ("expm1", real), ("log", positive), ("log2", positive),
    ("log10", positive), ("log1p", positive), ("sin", real), ("cos", real), ("tan", unit),
    ("arcsin", unit), ("arccos", unit), ("arctan", real), ("sinh", real), ("cosh", real),
    ("tanh", real), ("arcsinh", real), ("arccosh", above_one), ("arctanh", unit),
    ("sqrt", positive), ("cbrt", away_from_zero), ("reciprocal", away_from_zero),
    ("square", real), ("negative", real), ("positive", real), ("abs", away_from_zero),
    ("absolute", away_from_zero), ("fabs", away_from_zero), ("deg2rad", real),
    ("rad2deg", real), ("radians", real), ("degrees", real), ("conj", real),
    ("conjugate", real), ("real", real), ("imag", real), ("sign", real), ("floor", real),
    ("ceil", real), ("trunc", real), ("rint", real), ("round", real), ("around", real),
    ("isfinite", real), ("isnan", real), ("isinf", real), ("signbit", real),
    ("logical_not", real),
]
UFUNC_NAMES_BINARY = [
    ("add", real, real), ("subtract", real, real), ("multiply", real, real),
    ("divide", real, away_from_zero), ("true_divide", real, away_from_zero),
    ("power", positive, real), ("float_power", positive, real), ("maximum", real, real),
    ("minimum", real, real), ("fmax", real, real), ("fmin", real, real),
    ("arctan2", real, away_from_zero), ("hypot", real, real), ("logaddexp", real, real),
    ("logaddexp2", real, real), ("mod", mod_dividend, mod_divisor),
    ("remainder", mod_dividend, mod_divisor), ("fmod", mod_dividend, mod_divisor),
    ("floor_divide", mod_dividend, mod_divisor), ("equal", real, real),
    ("not_equal", real, real), ("less", real, real), ("less_equal", real, real),
    ("greater", real, real), ("greater_equal", real, real), ("logical_and", real, real),
    ("logical_or", real, real), ("logical_xor", real, real),
]


def _loss(fn):
    return lambda *args: dnp.sum(dnp.astype(fn(*args), np.float64) * args[0] ** 2)


def _same_derivatives(np_fn, dnp_fn, args):
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(np_fn(*args), dnp_fn(*args))
        argnums = tuple(range(len(args)))
        for a, b in zip(dp.grad(_loss(np_fn), argnums)(*args),
                        dp.grad(_loss(dnp_fn), argnums)(*args)):
            np.testing.assert_array_equal(a, b)
        tangents = tuple(np.ones_like(a) for a in args)
        np.testing.assert_array_equal(dp.jvp(np_fn, args, tangents)[1],
                                      dp.jvp(dnp_fn, args, tangents)[1])


@pytest.mark.parametrize("name,domain", UFUNC_NAMES_UNARY, ids=[u[0] for u in UFUNC_NAMES_UNARY])
def test_numpy_unary_functions_dispatch_to_dnp(name, domain):
    _same_derivatives(getattr(np, name), getattr(dnp, name), (domain((2, 3), np.float64),))


@pytest.mark.parametrize("name,dx,dy", UFUNC_NAMES_BINARY, ids=[b[0] for b in UFUNC_NAMES_BINARY])
def test_numpy_binary_functions_dispatch_to_dnp(name, dx, dy):
    x, y = dx((2, 3), np.float64), dy((3,), np.float64)
    np_fn, dnp_fn = getattr(np, name), getattr(dnp, name)
    _same_derivatives(np_fn, dnp_fn, (x, y))
    # an ndarray on the left of a traced value dispatches too
    _same_derivatives(lambda y: np_fn(x, y), lambda y: dnp_fn(x, y), (y,))


NUMPY_CODE = [
    ("clip", lambda x: np.clip(x, 0.0, 1.0), lambda x: dnp.clip(x, 0.0, 1.0)),
    ("clip_keywords", lambda x: np.clip(x, min=-0.5, max=0.5),
     lambda x: dnp.clip(x, -0.5, 0.5)),
    ("clip_method", lambda x: x.clip(max=0.2), lambda x: dnp.clip(x, None, 0.2)),
    ("round_decimals", lambda x: np.round(x, 1), lambda x: dnp.round(x, 1)),
    ("mod_operator", lambda x: x % 0.7, lambda x: dnp.mod(x, 0.7)),
    ("rmod_operator", lambda x: 2.0 % (x + 5.0), lambda x: dnp.mod(2.0, x + 5.0)),
    ("divmod", lambda x: np.divmod(x, 0.7)[1], lambda x: dnp.mod(x, 0.7)),
    ("divmod_builtin", lambda x: divmod(x, 0.7)[1], lambda x: dnp.mod(x, 0.7)),
    ("hypot_const", lambda x: np.hypot(x, np.arange(3.0)), lambda x: dnp.hypot(x, np.arange(3.0))),
    ("sin_times_x", lambda x: np.sin(x) * x, lambda x: dnp.sin(x) * x),
    ("real_property", lambda x: (x * 1j + x).real * (x * C).imag,
     lambda x: dnp.real(x * 1j + x) * dnp.imag(x * C)),
    ("conj_method", lambda x: np.real(x.conj() * x * C), lambda x: dnp.real(dnp.conj(x) * x * C)),
    ("ufunc_dtype_keyword", lambda x: np.exp(x, dtype=np.float32),
     lambda x: dnp.astype(dnp.exp(x), np.float32)),
    ("where_nonzero", lambda x: x[np.where(x > 0)], lambda x: x[np.nonzero(np.asarray(x0) > 0)]),
]
x0 = np.linspace(-1.3, 1.7, 6).reshape(2, 3)


@pytest.mark.parametrize("name,np_fn,dnp_fn", NUMPY_CODE, ids=[c[0] for c in NUMPY_CODE])
def test_plain_numpy_code_matches_dnp(name, np_fn, dnp_fn):
    x = x0.copy()
    np.testing.assert_allclose(np_fn(x), dnp_fn(x), rtol=1e-6)
    g_np = dp.grad(lambda x: dnp.sum(np_fn(x) ** 2))(x)
    g_dnp = dp.grad(lambda x: dnp.sum(dnp_fn(x) ** 2))(x)
    np.testing.assert_allclose(g_np, g_dnp, rtol=1e-6)


def test_numpy_dispatch_keeps_documented_values():
    x = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(dp.grad(lambda x: np.clip(x, 0, 1).sum())(x),
                                  [0.0, 1.0, 1.0, 1.0, 0.0])
    gx, gy = dp.grad(lambda x, y: np.hypot(x, y).sum(), argnums=(0, 1))(
        np.array([3.0, 0.0]), np.array([4.0, 0.0]))
    np.testing.assert_allclose(gx, [0.6, 0.0])
    np.testing.assert_allclose(gy, [0.8, 0.0])


# -- values of the new functions agree with NumPy on plain arrays ----------------------------

def test_plain_values_go_straight_to_numpy():
    x = np.linspace(-0.9, 0.9, 7)
    for name in ["exp2", "log1p", "cbrt", "arcsin", "arctanh", "sinh", "rint", "signbit",
                 "isnan", "deg2rad", "fabs", "real", "imag", "conj"]:
        want = getattr(np, name)(x)
        got = getattr(dnp, name)(x)
        assert type(got) is type(want) and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    for name in ["hypot", "arctan2", "logaddexp", "fmax", "mod", "fmod", "floor_divide"]:
        np.testing.assert_array_equal(getattr(dnp, name)(x, 0.7), getattr(np, name)(x, 0.7))
    np.testing.assert_array_equal(dnp.clip(x, -0.5, 0.5), np.clip(x, -0.5, 0.5))
    np.testing.assert_array_equal(dnp.round(x, 1), np.round(x, 1))
    assert dnp.float_power(np.float32(2.0), 3).dtype == np.float64


def test_scalar_forms_agree_with_the_implementations():
    from diffprog.core import primitives
    xs = [-1.7, -0.4, 0.3, 0.6, 2.5]
    checks = {
        "exp2": xs, "log2": [0.3, 2.5], "log10": [0.3, 2.5], "cbrt": xs, "arcsin": [-0.4, 0.3],
        "arccos": [-0.4, 0.3], "arctan": xs, "sinh": xs, "cosh": xs, "arcsinh": xs,
        "arccosh": [1.5, 2.5], "arctanh": [-0.4, 0.3], "erf": xs, "erfc": xs,
        "logistic": xs + [-800.0, 800.0], "trunc": xs, "rint": xs, "isfinite": xs,
        "isnan": xs, "isinf": xs, "signbit": xs + [-0.0], "abs": xs,
    }
    def scalar(p):  # the float form where scalar forms are given per dtype kind
        if isinstance(p.scalar, dict):
            return next(form for kinds, form in p.scalar.items() if "f" in kinds)
        return p.scalar

    for name, values in checks.items():
        p = primitives[name]
        for v in values:
            assert scalar(p)(v) == pytest.approx(float(p.impl(np.float64(v))), rel=1e-15), name
    pairs = [(2.5, 0.7), (-2.5, 0.7), (2.5, -0.7), (0.3, 1.9)]
    for name in ["arctan2", "hypot", "logaddexp", "logaddexp2", "fmax", "fmin", "mod", "fmod",
                 "floor_divide", "maximum", "minimum"]:
        p = primitives[name]
        for a, b in pairs:
            want = float(p.impl(np.float64(a), np.float64(b)))
            assert scalar(p)(a, b) == pytest.approx(want, rel=1e-15), name
    assert scalar(primitives["clip"])(2.0, -1.0, 1.0) == 1.0
    assert scalar(primitives["round"])(2.345, 2) == float(np.round(2.345, 2))
    # fused kernels hold real values only (complex clusters run through NumPy)
    real_, imag_ = scalar(primitives["real"]), scalar(primitives["imag"])
    assert real_(2.5) == 2.5 and imag_(2.5) == 0.0
    assert scalar(primitives["conj"])(-2.5) == -2.5


# -- every primitive of the family, with float64 example arguments (for the registry test) ----

def _coverage():
    out = []
    for _, fn, domain in UNARY:
        out.append((fn, (domain((2, 3), np.float64),)))
    for _, fn, dx, dy in BINARY:
        out.append((fn, (dx((2, 3), np.float64), dy((3,), np.float64))))
    for _, fn, da, db, dc in TERNARY:
        out.append((fn, (da((2, 3), np.float64), db((3,), np.float64), dc((), np.float64))))
    for _, fn in COMPLEX_OF_REAL:
        out.append((fn, (real((3,), np.float64),)))
    return out


COVERAGE = _coverage()


def test_coverage_exercises_every_elementwise_primitive():
    from diffprog.prims import elementwise
    # erf, erfc and logistic are covered by tests/test_nn.py's COVERAGE
    wanted = {name for name in elementwise.__all__
              if getattr(elementwise, name).differentiable} - {"erf", "erfc", "logistic"}
    seen = set()
    for fn, args in COVERAGE:
        seen.update(dp.make_graph(fn)(*args).primitive_names())
        seen.update(dp.make_graph(dp.grad(lambda *a, fn=fn: dnp.sum(fn(*a))))(*args)
                    .primitive_names())
    names = {getattr(elementwise, n).name for n in wanted}
    assert names - seen == set()
