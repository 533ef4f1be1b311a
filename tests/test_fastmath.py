"""diffprog.kernels.fastmath: accuracy on 10^6 points per function, special values, and that the
functions give the same bits inside vectorized numba loops as when called one by one."""

from __future__ import annotations

import math
import platform
import subprocess
import sys

import numba
import numpy as np
import pytest

from diffprog.kernels import fastmath as fm

LD = np.longdouble
# An 80-bit (or better) long double is an accurate reference for float64 results.
HAS_LONG_DOUBLE = np.finfo(LD).nmant >= 63
DBL_MIN = np.finfo(np.float64).smallest_normal
N = 10**6
RNG = np.random.default_rng(1234)


def np_sigmoid(x):
    """The stable logistic formula of diffprog's NumPy implementation."""
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def ld_sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name -> (NumPy float64 reference, long double reference)
REFERENCE = {
    "exp": (np.exp, np.exp), "expm1": (np.expm1, np.expm1), "log": (np.log, np.log),
    "log1p": (np.log1p, np.log1p), "tanh": (np.tanh, np.tanh),
    "sigmoid": (np_sigmoid, ld_sigmoid), "sin": (np.sin, np.sin), "cos": (np.cos, np.cos),
}
NAMES = list(REFERENCE)


def uniform(lo, hi):
    return lambda n: RNG.uniform(lo, hi, n)


def logspaced(lo, hi, signed=False):
    def draw(n):
        v = np.exp(RNG.uniform(np.log(lo), np.log(hi), n))
        return v * RNG.choice([-1.0, 1.0], n) if signed else v
    return draw


# Each function's domain as pieces sharing the N points: the whole range plus the regions
# where the algorithm changes branch or cancels (near 0, near 1, subnormal in or out).
DOMAINS = {
    "exp": [uniform(-745.2, 709.78), uniform(-1, 1), logspaced(1e-300, 1, True)],
    "expm1": [uniform(-40, 709.78), uniform(-1.5, 1.5), logspaced(1e-300, 1, True)],
    "log": [logspaced(1e-300, 1e300), uniform(0.5, 2), uniform(1 - 1e-6, 1 + 1e-6),
            logspaced(5e-324, 2.2e-308)],
    "log1p": [logspaced(1e-300, 1e300), uniform(-1, 2), logspaced(1e-300, 1, True)],
    "tanh": [uniform(-50, 50), uniform(-1, 1), logspaced(1e-300, 1, True)],
    "sigmoid": [uniform(-50, 50), uniform(-745, 40), logspaced(1e-300, 1, True)],
    "sin": [uniform(-1e4, 1e4), uniform(-4, 4), logspaced(1e-300, fm.TRIG_MAX, True)],
    "cos": [uniform(-1e4, 1e4), uniform(-4, 4), logspaced(1e-300, fm.TRIG_MAX, True)],
}
# Measured maxima (ulp of the float64 result against the long double reference) are 0.57-0.83;
# the bound leaves room for other inputs while staying well inside "faithful".
MAX_ULP = 1.0


def points(name):
    pieces = DOMAINS[name]
    x = np.concatenate([draw(N // len(pieces) + 1) for draw in pieces])[:N]
    return x


def make_loop(fn, **options):
    def loop(x, out):
        for i in range(x.size):
            out[i] = fn(x[i])
    return numba.njit(**options)(loop)


LOOPS = {}


def loop_for(name):
    if name not in LOOPS:
        LOOPS[name] = make_loop(getattr(fm, name))
    return LOOPS[name]


def apply(name, x):
    out = np.empty_like(x)
    loop_for(name)(x, out)
    return out


def ulp_error(y, ref):
    """|y - ref| in ulps of the float64 nearest to ref (subnormal ulps below DBL_MIN)."""
    r64 = ref.astype(np.float64)
    ulp = np.spacing(np.abs(r64)).astype(LD)
    with np.errstate(invalid="ignore"):
        err = np.abs(y.astype(LD) - ref) / ulp
    same_special = (np.isnan(y) & np.isnan(r64)) | (np.isinf(y) & (y == r64))
    return np.where(same_special, 0, err)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_accuracy_against_numpy_and_long_double(name):
    x = points(name)
    y = apply(name, x)
    np_ref, ld_ref = REFERENCE[name]
    with np.errstate(over="ignore", under="ignore"):
        expect = np_ref(x)
    # Relative error against NumPy where the result is a normal number; subnormal results
    # carry fewer bits, so there both may differ by one unit of the last place (2**-1074).
    normal = np.abs(expect) >= DBL_MIN
    rel = np.abs(y[normal] - expect[normal]) / np.abs(expect[normal])
    assert rel.max() <= 1e-14, (name, rel.max(), x[normal][np.argmax(rel)])
    assert np.abs(y[~normal] - expect[~normal]).max(initial=0) <= 5e-324
    if HAS_LONG_DOUBLE:
        with np.errstate(over="ignore", under="ignore"):
            err = ulp_error(y, ld_ref(x.astype(LD)))
        assert err.max() <= MAX_ULP, (name, err.max(), x[np.argmax(err)])


@pytest.mark.slow
def test_sin_cos_near_multiples_of_half_pi():
    # The doubles nearest to k pi/2 (and their neighbours) have the largest cancellation in
    # the range reduction; up to k = 2**20 the result keeps its relative accuracy.
    k = RNG.integers(1, 2**20, 10**5).astype(LD)
    x = (k * (np.arctan(LD(1)) * 2)).astype(np.float64)
    x = np.concatenate([x, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)])
    for name in ("sin", "cos"):
        y = apply(name, x)
        if HAS_LONG_DOUBLE:
            assert ulp_error(y, getattr(np, name)(x.astype(LD))).max() <= MAX_ULP
        np.testing.assert_allclose(y, getattr(np, name)(x), rtol=1e-14, atol=0)


INF, NAN = math.inf, math.nan
SUBNORMAL = 5e-324

# Exact results, compared bit for bit (the sign of zero included, any nan for nan).
SPECIAL = [
    ("exp", 0.0, 1.0), ("exp", -0.0, 1.0), ("exp", INF, INF), ("exp", -INF, 0.0),
    ("exp", NAN, NAN), ("exp", 709.79, INF), ("exp", 1e300, INF), ("exp", -745.2, 0.0),
    ("exp", -745.14, 0.0), ("exp", -745.13, SUBNORMAL), ("exp", -1e300, 0.0),
    ("exp", SUBNORMAL, 1.0), ("exp", -SUBNORMAL, 1.0),
    ("expm1", 0.0, 0.0), ("expm1", -0.0, -0.0), ("expm1", INF, INF), ("expm1", -INF, -1.0),
    ("expm1", NAN, NAN), ("expm1", 709.79, INF), ("expm1", -40.0, -1.0),
    ("expm1", -1e300, -1.0), ("expm1", SUBNORMAL, SUBNORMAL), ("expm1", -SUBNORMAL, -SUBNORMAL),
    ("expm1", 1e-300, 1e-300),
    ("log", 1.0, 0.0), ("log", 0.0, -INF), ("log", -0.0, -INF), ("log", -1.0, NAN),
    ("log", -INF, NAN), ("log", INF, INF), ("log", NAN, NAN), ("log", -SUBNORMAL, NAN),
    ("log1p", 0.0, 0.0), ("log1p", -0.0, -0.0), ("log1p", -1.0, -INF), ("log1p", -2.0, NAN),
    ("log1p", -INF, NAN), ("log1p", INF, INF), ("log1p", NAN, NAN),
    ("log1p", SUBNORMAL, SUBNORMAL), ("log1p", -SUBNORMAL, -SUBNORMAL),
    ("log1p", 1e-300, 1e-300),
    ("tanh", 0.0, 0.0), ("tanh", -0.0, -0.0), ("tanh", INF, 1.0), ("tanh", -INF, -1.0),
    ("tanh", NAN, NAN), ("tanh", 20.0, 1.0), ("tanh", -1e300, -1.0),
    ("tanh", SUBNORMAL, SUBNORMAL), ("tanh", -SUBNORMAL, -SUBNORMAL), ("tanh", 1e-300, 1e-300),
    ("sigmoid", 0.0, 0.5), ("sigmoid", -0.0, 0.5), ("sigmoid", INF, 1.0),
    ("sigmoid", -INF, 0.0), ("sigmoid", NAN, NAN), ("sigmoid", 40.0, 1.0),
    ("sigmoid", -745.2, 0.0), ("sigmoid", -745.13, SUBNORMAL), ("sigmoid", SUBNORMAL, 0.5),
    ("sin", 0.0, 0.0), ("sin", -0.0, -0.0), ("sin", INF, NAN), ("sin", -INF, NAN),
    ("sin", NAN, NAN), ("sin", SUBNORMAL, SUBNORMAL), ("sin", -SUBNORMAL, -SUBNORMAL),
    ("sin", 1e-300, 1e-300), ("sin", 2e6, NAN), ("sin", -1e300, NAN),
    ("cos", 0.0, 1.0), ("cos", -0.0, 1.0), ("cos", INF, NAN), ("cos", -INF, NAN),
    ("cos", NAN, NAN), ("cos", SUBNORMAL, 1.0), ("cos", 2e6, NAN),
]

# Finite results near thresholds and in the subnormal range: within 1 ulp of NumPy.
NEAR_NUMPY = [
    ("exp", 709.78), ("exp", 709.782712893384), ("exp", -708.4), ("exp", -740.0),
    ("exp", -745.0), ("expm1", 709.78), ("expm1", -37.0), ("expm1", 1e-16),
    ("expm1", 0.34657359027997264), ("log", SUBNORMAL), ("log", 1e-310), ("log", DBL_MIN),
    ("log", 1.7976931348623157e308), ("log", 0.9999999999999999), ("log", 1.0000000000000002),
    ("log1p", -0.9999999999999999), ("log1p", 2.0**53), ("log1p", 1.7976931348623157e308),
    ("log1p", -1e-16), ("tanh", 0.55), ("tanh", 19.0), ("tanh", 1e-8),
    ("sigmoid", -709.0), ("sigmoid", -740.0), ("sigmoid", 36.0), ("sin", math.pi),
    ("sin", 1e6), ("sin", -fm.TRIG_MAX), ("cos", math.pi / 2), ("cos", fm.TRIG_MAX),
]


def same_bits(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                  math.copysign(1, b))


@pytest.mark.parametrize("name,x,expected", SPECIAL)
def test_special_values(name, x, expected):
    got_scalar = getattr(fm, name)(x)
    got_loop = apply(name, np.array([x]))[0]
    assert same_bits(got_scalar, expected), (name, x, got_scalar, expected)
    assert same_bits(got_loop, expected), (name, x, got_loop, expected)
    beyond_trig_range = name in ("sin", "cos") and not fm.trig_in_range(x)
    if not beyond_trig_range:  # NumPy agrees, except for the documented sin/cos limit
        with np.errstate(all="ignore"):
            assert same_bits(float(REFERENCE[name][0](np.float64(x))), expected)


@pytest.mark.parametrize("name,x", NEAR_NUMPY)
def test_thresholds_match_numpy(name, x):
    got = getattr(fm, name)(x)
    with np.errstate(all="ignore"):
        expect = float(REFERENCE[name][0](np.float64(x)))
    assert abs(got - expect) <= np.spacing(abs(expect)), (name, x, got, expect)


def special_and_random_inputs():
    specials = [x for _, x, _ in SPECIAL] + [x for _, x in NEAR_NUMPY]
    random = np.concatenate([RNG.uniform(-800, 800, 500), logspaced(1e-300, 1e300, True)(500),
                             RNG.uniform(-2, 2, 500)])
    # Repeated so that every value also lands in the vectorized body, not just the tail.
    return np.concatenate([np.repeat(specials, 9), random])


@pytest.mark.parametrize("name", NAMES)
def test_vectorized_loop_matches_scalar_calls(name):
    x = special_and_random_inputs()
    y = apply(name, x)
    with np.errstate(all="ignore"):
        scalar = np.array([getattr(fm, name)(v) for v in x])
    assert np.array_equal(y.view(np.int64), scalar.view(np.int64)) or np.array_equal(
        y, scalar, equal_nan=True) and np.array_equal(np.signbit(y), np.signbit(scalar))


def all_functions(x, out):
    for i in range(x.size):
        v = x[i]
        out[0, i] = fm.exp(v)
        out[1, i] = fm.expm1(v)
        out[2, i] = fm.log(v)
        out[3, i] = fm.log1p(v)
        out[4, i] = fm.tanh(v)
        out[5, i] = fm.sigmoid(v)
        out[6, i] = fm.sin(v)
        out[7, i] = fm.cos(v)


def all_functions_prange(x, out):
    for i in numba.prange(x.size):
        v = x[i]
        out[0, i] = fm.exp(v)
        out[1, i] = fm.expm1(v)
        out[2, i] = fm.log(v)
        out[3, i] = fm.log1p(v)
        out[4, i] = fm.tanh(v)
        out[5, i] = fm.sigmoid(v)
        out[6, i] = fm.sin(v)
        out[7, i] = fm.cos(v)


@pytest.mark.slow
@pytest.mark.parametrize("kernel,options", [
    (all_functions, {"fastmath": True}),
    (all_functions_prange, {"parallel": True}),
], ids=["caller_fastmath", "prange"])
def test_results_do_not_depend_on_the_callers_flags(kernel, options):
    # The bodies keep their own compile flags: a fastmath=True kernel cannot reassociate the
    # error-free transformations or drop the nan/inf selects.
    x = special_and_random_inputs()
    out = np.empty((8, x.size))
    numba.njit(**options)(kernel)(x, out)
    for row, name in enumerate(NAMES):
        assert np.array_equal(out[row], apply(name, x), equal_nan=True), name


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_float32_is_correctly_rounded_float64(name):
    lo, hi = {"exp": (-103, 88), "expm1": (-20, 88), "log": (1e-30, 1e30),
              "log1p": (-0.99, 1e3), "sigmoid": (-100, 20)}.get(name, (-50, 50))
    x = RNG.uniform(lo, hi, 10**5).astype(np.float32)
    out = np.empty_like(x)
    make_loop(getattr(fm, name))(x, out)
    assert out.dtype == np.float32
    expect = REFERENCE[name][0](x.astype(np.float64))
    # float64 result rounded to float32: within half a float32 ulp plus the float64 error.
    err = np.abs(out - expect) / np.spacing(np.abs(expect.astype(np.float32)))
    assert err.max() <= 0.5 + 1e-6, (name, err.max())


@pytest.mark.slow
def test_sincos_and_integer_arguments():
    @numba.njit
    def kernel(x, k):
        s, c = fm.sincos(x)
        return s, c, fm.exp(k), fm.log(True)

    s, c, e, l0 = kernel(0.5, 2)
    assert (s, c) == (fm.sin(0.5), fm.cos(0.5)) == fm.sincos(0.5)
    assert e == fm.exp(2.0) and l0 == 0.0
    assert abs(e - math.exp(2)) <= np.spacing(math.exp(2))
    s32, c32, _, _ = kernel(np.float32(0.5), 2)
    returned = kernel.nopython_signatures[-1].return_type
    assert tuple(returned)[:2] == (numba.float32, numba.float32)
    assert (s32, c32) == (np.float32(s), np.float32(c))


@pytest.mark.slow
def test_trig_range_flag_and_fallback():
    assert fm.trig_in_range(fm.TRIG_MAX) and fm.trig_in_range(-1e6)
    assert fm.trig_in_range(INF) and fm.trig_in_range(NAN)
    assert not fm.trig_in_range(2e6) and not fm.trig_in_range(-1e300)

    # The pattern a kernel can use: an AND-reduction of the flag in the vectorized loop, and
    # libm for the whole array in the rare case it fails.
    @numba.njit
    def sin_kernel(x, out):
        ok = True
        for i in range(x.size):
            out[i] = fm.sin(x[i])
            ok &= fm.trig_in_range(x[i])
        if not ok:
            for i in range(x.size):
                out[i] = math.sin(x[i])

    for x in (RNG.uniform(-10, 10, 100), np.array([1.0, 1e10, -3.0])):
        out = np.empty_like(x)
        sin_kernel(x, out)
        np.testing.assert_allclose(out, np.sin(x), rtol=1e-14, atol=0)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64")
@pytest.mark.parametrize("name", NAMES)
def test_loops_are_vectorized(name):
    from llvmlite import binding as llvm

    if "+avx2" not in llvm.get_host_cpu_features().flatten():
        pytest.skip("no AVX2: LLVM may judge vectorization unprofitable")
    loop = loop_for(name)
    apply(name, np.ones(4))
    llvm_ir = loop.inspect_llvm(loop.signatures[0])
    assert " x double>" in llvm_ir, f"{name}: the loop was not vectorized"


@pytest.mark.slow
@pytest.mark.parametrize("modules", ["diffprog", "diffprog, diffprog.kernels"])
def test_importing_diffprog_does_not_import_numba(modules):
    # `import diffprog` stays near NumPy's import cost: numba comes with the first numba kernel.
    code = f"import sys, {modules}; sys.exit(1 if 'numba' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, modules
