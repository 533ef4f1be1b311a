"""Vectorizable float64 transcendental functions for numba kernels.

numba's ``math.exp``, ``math.log``, ``math.sin`` ... are calls into libm, one element at a time,
and a loop that contains such a call is not vectorized (there is no SVML here). The functions
below are straight-line arithmetic on float64 and int64 (range reduction, a polynomial,
exponent bits), with every branch a select, so that LLVM inlines them into the calling loop and
vectorizes it (AVX2/AVX-512). In an ``@njit`` loop they run about as fast as NumPy's SIMD ufuncs
(sin and cos, which NumPy leaves to scalar libm here, over 15x faster), and a fused kernel also
saves NumPy's memory traffic between operations:

>>> import numba, numpy as np
>>> from diffprog.kernels import fastmath as fm
>>> @numba.njit
... def softplus(x, out):
...     for i in range(x.size):
...         out[i] = fm.log1p(fm.exp(-abs(x[i]))) + max(x[i], 0.0)
>>> x = np.linspace(-3.0, 3.0, 5); out = np.empty_like(x)
>>> softplus(x, out); bool(np.allclose(out, np.logaddexp(0.0, x), rtol=1e-15, atol=0))
True

Accuracy, measured by tests/test_fastmath.py on 10^6 points per function against an 80-bit
long double reference: below 0.9 ulp for all of them (NumPy's own: 0.5-1.2 ulp, 2.2 for the
naive logistic), and the special values (signed zeros, subnormal inputs and outputs,
overflow and underflow thresholds, infinities, nan) as in NumPy. Limit: ``sin``, ``cos`` and
``sincos`` are accurate for ``|x| <= TRIG_MAX`` (about 1.6e6) and return nan beyond it, where
the Cody-Waite reduction would have lost bits; ``trig_in_range`` tells a kernel when to fall
back to libm. float32 arguments are computed in float64 and rounded once (measured <= 0.5 ulp
of float32), at float64 speed.

How the functions reach the loop: each is compiled once as a numba function with its own
flags, only ``contract`` (multiply-add may fuse into FMA, which removes roundings) and the
NumPy error model (a zero division gives inf instead of a Python exception, whose check would
block vectorization). Inside numba code the public names emit a call to that compiled code
marked ``alwaysinline``, so the body is inlined into the caller's loop but keeps those flags:
a kernel compiled with ``fastmath=True`` cannot reassociate the error-free transformations
below or drop the nan/inf selects, and a kernel without ``contract`` does not lose the FMAs.
(numba's own ``inline="always"`` would re-type the body with the caller's flags, and a plain
call is inlined only when LLVM finds the callee cheap, which these are not.) So call them from
numba code as they are: a numba function of yours that calls them is itself inlined into a
loop only if it is small or declared ``inline="always"``, and ``numba.njit(fm.exp)`` compiles
the Python-level wrapper into a plain call (correct, but the loop may stay scalar).

Bits are reinterpreted with ``_bits``/``_from_bits``, intrinsics that emit one LLVM ``bitcast``
(a register move, no memory round trip), so 2**k is built as ``(k + 1023) << 52``; ``_fma`` is
``llvm.fma`` (one instruction where the CPU has FMA, a correct libm call elsewhere), used for
the exact residuals of the two divisions in tanh and sigmoid.

The polynomial coefficients are minimax fits computed for this module by a Remez exchange in
mpmath (``python -m diffprog.kernels.fastmath`` reruns the fits and prints them); the split
constants of ln 2 and pi/2 are truncations of the exact values. The algorithms follow
fdlibm/musl (log, log1p, tanh's identity, the sin/cos kernels, the split of pi/2), Tang's
method without a table and fdlibm's expm1 reconstruction (exp, expm1, done in double-double);
each function's docstring says which.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from . import cache as _cache

__all__ = ["exp", "expm1", "log", "log1p", "tanh", "sigmoid", "logistic", "sin", "cos",
           "sincos", "trig_in_range", "TRIG_MAX"]

# Only `contract` (FMA formation): the algorithms rely on IEEE rounding of each operation
# (2Sum, exact Cody-Waite products), which reassociation or "no nans/infs" would break.
# error_model="numpy": a float division by zero gives inf/nan instead of a Python exception,
# whose check (a branch to an exception exit) would keep the loop from vectorizing.
_FLAGS = dict(fastmath={"contract"}, error_model="numpy")
# Cached on disk (in the package's __pycache__ if it is safe, else in diffprog's private cache;
# never in numba's user-wide cache, whose index files anyone who can write there could plant).
_jit = _cache.package_jit(**_FLAGS)
# Helpers are inlined into the public functions at the numba IR level: they share the flags.
_inline = numba.njit(inline="always", **_FLAGS)


@intrinsic
def _bits(typingctx, x):
    """The IEEE-754 bits of a float64 as an int64: one LLVM bitcast."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(x), codegen


@intrinsic
def _from_bits(typingctx, i):
    """The float64 whose IEEE-754 bits are the int64 ``i``: one LLVM bitcast."""
    if not isinstance(i, types.Integer):
        return None
    sig = types.float64(i)

    def codegen(context, builder, signature, args):
        as_int64 = context.cast(builder, args[0], signature.args[0], types.int64)
        return builder.bitcast(as_int64, ir.DoubleType())

    return sig, codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with one rounding (llvm.fma: one instruction on x86-64 since Haswell and on
    arm64; elsewhere a correct but slow libm call). Used where an exact residual is needed."""
    if not (a == b == c == types.float64):
        return None
    sig = types.float64(a, b, c)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


# --- constants -----------------------------------------------------------------------------

_INF = float("inf")
_NAN = float("nan")
_SIGN_MASK = -(1 << 63)          # 0x8000000000000000 as an int64
_ABS_MASK = (1 << 63) - 1
_EXP_FIELD = -(1 << 52)          # 0xfff0000000000000: sign and exponent bits
_DBL_MIN = 2.2250738585072014e-308
_TWO54 = 18014398509481984.0

# Round-to-integer by adding 1.5 * 2**52: the sum's ulp is 1, so the float rounds x to the
# nearest integer and its low mantissa bits hold that integer (two's complement, |x| < 2**51).
_SHIFT = 6755399441055744.0
_SHIFT_BITS = 0x4338000000000000

# ln 2 = _LN2_HI + _LN2_LO with _LN2_HI truncated to 40 bits, so k * _LN2_HI is exact for
# |k| < 2**13 (Cody and Waite's extra-precise subtraction).
_INV_LN2 = 1.4426950408889634
_LN2_HI = 0.6931471805592082        # 0x1.62e42fefa2000p-1
_LN2_LO = 7.371002565167799e-13

# exp: overflow above 709.782712893384 (=ln(DBL_MAX)), underflow to 0 below -745.1332191019412.
# Inputs are clamped to just outside these so k stays small; the clamped values still overflow
# or underflow exactly as the original ones do.
_EXP_CLAMP_HI = 710.0
_EXP_CLAMP_LO = -746.0

# (exp(r) - 1 - r) / r**2 on |r| <= ln(2)/2, degree 10 minimax (relative error 2.7e-18).
_E0 = 0.5
_E1 = 0.1666666666666667
_E2 = 0.041666666666666616
_E3 = 0.008333333333326162
_E4 = 0.001388888888891798
_E5 = 0.000198412698747409
_E6 = 2.480158724571113e-05
_E7 = 2.7557255488721602e-06
_E8 = 2.7557349629681993e-07
_E9 = 2.5105184250090218e-08
_E10 = 2.088937705120701e-09

# log: bits of sqrt(1/2); subtracting them before taking the exponent field splits
# x = 2**k * z with z in [sqrt(1/2), sqrt(2)) (musl's trick, without its table).
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD

# (log((1+s)/(1-s)) - 2s) / s**3 as a polynomial in w = s**2 on |s| <= 3 - 2 sqrt(2),
# degree 6 minimax (relative error 4.6e-16 of a term that is at most 1.2e-2 of the result).
_L1 = 0.666666666666667
_L2 = 0.39999999999899116
_L3 = 0.28571428626134016
_L4 = 0.22222211111283563
_L5 = 0.18182890700169713
_L6 = 0.1533167300947711
_L7 = 0.14617011557789078

# pi/2 = _PIO2_1 + _PIO2_2 + _PIO2_3 + _PIO2_4; the first three hold 33 bits each, so their
# products with k are exact for |k| <= 2**20 (fdlibm's rem_pio2 split, 152 bits in all).
_TWO_OVER_PI = 0.6366197723675814
_PIO2_1 = 1.5707963267341256        # 0x1.921fb54400000p+0
_PIO2_2 = 6.077100506303966e-11     # 0x1.0b4611a600000p-34
_PIO2_3 = 2.0222662487111665e-21    # 0x1.3198a2e000000p-69
_PIO2_4 = 8.4784276603689e-32
TRIG_MAX = 1647099.0  # < 2**20 * pi/2: the largest |x| for which |k| <= 2**20

# (sin(r) - r) / r**3 in z = r**2 on |r| <= pi/4, degree 6 minimax (relative error 7e-20).
_S1 = -0.16666666666666666
_S2 = 0.008333333333333331
_S3 = -0.00019841269841265022
_S4 = 2.7557319219309678e-06
_S5 = -2.505210622310827e-08
_S6 = 1.6058530255748716e-10
_S7 = -7.586622500533641e-13

# (cos(r) - 1 + r**2/2) / r**4 in z = r**2 on |r| <= pi/4, degree 5 minimax (rel. error 3e-17).
_C1 = 0.041666666666666664
_C2 = -0.0013888888888887387
_C3 = 2.480158729875096e-05
_C4 = -2.7557317264905185e-07
_C5 = 2.0876144977876006e-09
_C6 = -1.1382547037166755e-11


# --- helpers -------------------------------------------------------------------------------

@_inline
def _pow2(k):
    """2.0**k for integer -1022 <= k <= 1023, from its exponent bits."""
    return _from_bits((k + 1023) << 52)


@_inline
def _copysign(magnitude, sign):
    return _from_bits((_bits(magnitude) & _ABS_MASK) | (_bits(sign) & _SIGN_MASK))


@_inline
def _exp_reduce(x):
    """x = k ln2 + (r + rlo) with integer k, |r| <= ln(2)/2 (up to rounding) and rlo the
    rounding error of r; needs |x| < 2**12."""
    t = x * _INV_LN2 + _SHIFT
    kd = t - _SHIFT
    k = _bits(t) - _SHIFT_BITS
    # Cody-Waite: kd * _LN2_HI is exact and close to x, so this difference is exact.
    hi = x - kd * _LN2_HI
    r = hi - kd * _LN2_LO
    rlo = (hi - r) - kd * _LN2_LO
    return k, r, rlo


@_inline
def _exp_poly(r, r2):
    """Q(r) = (exp(r) - 1 - r) / r**2 on |r| <= ln(2)/2, the minimax fit above, by Estrin's
    scheme (r2 = r**2): a shorter dependency chain than Horner's for one more product."""
    r4 = r2 * r2
    b0 = (_E0 + _E1 * r) + (_E2 + _E3 * r) * r2
    b1 = (_E4 + _E5 * r) + (_E6 + _E7 * r) * r2
    b2 = (_E8 + _E9 * r) + _E10 * r2
    return b0 + r4 * (b1 + b2 * r4)


@_inline
def _exp_kernel(r, rlo):
    """exp(r + rlo) for |r| <= ln(2)/2 as p + pl, p being the rounded result.

    1 + r is split exactly (Fast2Sum) and the small terms rlo and r**2 Q(r) are added to its
    low part, so that only the final addition rounds at the scale of the result.
    """
    r2 = r * r
    ph = 1.0 + r
    pl = (((1.0 - ph) + r) + rlo) + r2 * _exp_poly(r, r2)
    p = ph + pl
    return p, (ph - p) + pl


@_inline
def _expm1_kernel(r, rlo):
    """exp(r + rlo) - 1 for |r| <= ln(2)/2 as hi + lo: r + r**2 Q(r), the rounding error of
    the last addition (Fast2Sum, |r| > |r**2 Q|) and rlo (times e**r) going into lo."""
    r2 = r * r
    w = r2 * _exp_poly(r, r2)
    hi = r + w
    lo = ((r - hi) + w) + (rlo + rlo * hi)
    return hi, lo


@_inline
def _scale(p, k):
    """p 2**k for |k| <= 1100, rounded once: 2**k is applied in two halves whose first
    product is exact, so a subnormal result is rounded once and k = 1024 with p < 1 does not
    overflow early."""
    k1 = k >> 1
    return (p * _pow2(k1)) * _pow2(k - k1)


# --- exp family ----------------------------------------------------------------------------

@_jit
def _exp(x):
    """e**x (np.exp): Tang's reduction x = k ln2 + r without a table (Cody-Waite split of ln2,
    r kept as a double-double), exp(r) by a degree-12 minimax polynomial, 2**k from exponent
    bits.

    >>> exp(1.0)
    2.718281828459045
    """
    xc = _EXP_CLAMP_HI if x > _EXP_CLAMP_HI else x      # nan passes both clamps
    xc = _EXP_CLAMP_LO if xc < _EXP_CLAMP_LO else xc
    k, r, rlo = _exp_reduce(xc)
    return _scale(_exp_kernel(r, rlo)[0], k)


@_inline
def _expm1_dd(k, hi, lo):
    """2**k (1 + hi + lo) - 1 for -60 <= k <= 1023 as a double-double (th, tl).

    (2**k - 1) + 2**k hi + 2**k lo, where 2**k hi is exact, 2**k - 1 is split by 2Sum, and
    |2**k - 1| >= |2**k hi| (or 2**k - 1 = 0) makes the main sum a Fast2Sum: the
    reconstruction of fdlibm's s_expm1.c, in double-double arithmetic instead of its case
    analysis on k.
    """
    t = _pow2(k)
    a = t - 1.0
    v = a - t
    a_lo = (t - (a - v)) + (-1.0 - v)                   # 2Sum: 2**k - 1 rounds for k > 53
    b = t * hi
    s = a + b
    e = (a - s) + b
    corr = (e + a_lo) + t * lo
    th = s + corr
    return th, (s - th) + corr


@_jit
def _expm1(x):
    """e**x - 1 (np.expm1): the reduction of ``exp``, then 2**k (1 + em) - 1 reconstructed
    without cancellation.

    >>> expm1(1e-10)
    1.00000000005e-10
    """
    xc = _EXP_CLAMP_HI if x > _EXP_CLAMP_HI else x
    xc = -40.0 if xc < -40.0 else xc                     # expm1(x) rounds to -1 below -37.5
    k, r, rlo = _exp_reduce(xc)
    hi, lo = _expm1_kernel(r, rlo)
    # k = 1024 (x > 709.4): reconstruct with k = 1023 and double; the -1 is far below an ulp.
    res = _expm1_dd(k if k < 1023 else 1023, hi, lo)[0]
    res = res * 2.0 if k > 1023 else res
    return x if x == 0.0 else res                        # expm1(-0.0) = -0.0


@_jit
def _tanh(x):
    """tanh (np.tanh): t = expm1(2|x|) as a double-double, tanh|x| = t / (t + 2) (fdlibm's
    s_tanh.c identity, on the whole range), then the sign of x. |x| >= 22 gives +-1.

    The quotient is q = th (1 / dh), corrected once by the residual (t - q d) / d, whose
    leading product is exact through an FMA.

    >>> tanh(0.5)
    0.46211715726000974
    """
    a = abs(x)
    a = 22.0 if a > 22.0 else a
    k, r, rlo = _exp_reduce(a + a)
    hi, lo = _expm1_kernel(r, rlo)
    th, tl = _expm1_dd(k, hi, lo)
    dh = th + 2.0
    v = dh - th
    dl = ((th - (dh - v)) + (2.0 - v)) + tl              # 2Sum
    inv = 1.0 / dh
    q = th * inv
    residual = _fma(-q, dh, th) + (tl - q * dl)          # t - q d, the product exactly
    return _copysign(q + residual * inv, x)              # keeps -0.0 and nan


@_jit
def _sigmoid(x):
    """The logistic function 1 / (1 + e**-x) (diffprog's logistic).

    With e = e**-|x| <= 1 it is 1 / (1 + e) for x >= 0 and e / (1 + e) below, neither of which
    overflows or loses relative precision. e and 1 + e are kept as double-doubles and the
    quotient is corrected once by its residual, as in ``tanh``.

    >>> sigmoid(0.0), sigmoid(-800.0)
    (0.5, 0.0)
    """
    xc = -abs(x)
    xc = _EXP_CLAMP_LO if xc < _EXP_CLAMP_LO else xc
    k, r, rlo = _exp_reduce(xc)
    p, pl = _exp_kernel(r, rlo)
    k1 = k >> 1
    s1 = _pow2(k1)
    s2 = _pow2(k - k1)
    eh = (p * s1) * s2
    el = (pl * s1) * s2
    dh = 1.0 + eh
    dl = ((1.0 - dh) + eh) + el                          # Fast2Sum: e <= 1
    positive = x >= 0.0
    num = 1.0 if positive else eh
    inv = 1.0 / dh
    q = num * inv
    residual = _fma(-q, dh, num) + ((0.0 if positive else el) - q * dl)
    return q + residual * inv


# --- log family ----------------------------------------------------------------------------

@_inline
def _log_kernel(f, kd, c):
    """k ln2 + log(1 + f) + c for sqrt(1/2) <= 1 + f < sqrt(2) and a tiny correction c.

    fdlibm's e_log.c: with s = f / (2 + f), log(1+f) = log((1+s)/(1-s)) = 2s + s R(s**2), and
    2s = f - s f = f - hfsq + s hfsq with hfsq = f**2 / 2, so log(1+f) = f - hfsq + s (hfsq + R)
    where the large terms f and hfsq enter exactly and R is tiny. Error below 1 ulp.
    """
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    # Even and odd powers in two chains, as fdlibm does, for instruction-level parallelism.
    r_odd = z * (_L1 + w * (_L3 + w * (_L5 + w * _L7)))
    r_even = w * (_L2 + w * (_L4 + w * _L6))
    R = r_even + r_odd
    hfsq = 0.5 * f * f
    return kd * _LN2_HI - ((hfsq - (s * (hfsq + R) + (kd * _LN2_LO + c))) - f)


@_jit
def _log(x):
    """Natural logarithm (np.log): x = 2**k z with z in [sqrt(1/2), sqrt(2)) taken from the bits
    (subnormals are scaled by 2**54 first), then fdlibm's kernel on f = z - 1.

    >>> log(2.0), log(0.0)
    (0.6931471805599453, -inf)
    """
    sub = x < _DBL_MIN
    xs = x * _TWO54 if sub else x
    ix = _bits(xs)
    tmp = ix - _SQRT_HALF_BITS
    k = (tmp >> 52) - (54 if sub else 0)
    z = _from_bits(ix - (tmp & _EXP_FIELD))
    res = _log_kernel(z - 1.0, float(k), 0.0)
    if x == 0.0:
        res = -_INF
    elif x < 0.0:
        res = _NAN
    elif not x < _INF:
        res = x                                          # +inf, nan
    return res


@_jit
def _log1p(x):
    """log(1 + x) (np.log1p), fdlibm's s_log1p.c: u = 1 + x rounded, c = (1 + x) - u exactly
    (2Sum), and log(1 + x) = log(u) + c / u. When u is already in [sqrt(1/2), sqrt(2)), x
    itself is the exact f and no correction is needed.

    >>> log1p(1e-10), log1p(-0.0)
    (9.999999999500001e-11, -0.0)
    """
    u = 1.0 + x
    v = u - x
    c = (x - (u - v)) + (1.0 - v)
    iu = _bits(u)
    tmp = iu - _SQRT_HALF_BITS
    k = tmp >> 52
    z = _from_bits(iu - (tmp & _EXP_FIELD))
    f = x if k == 0 else z - 1.0
    corr = 0.0 if k == 0 else c / u
    res = _log_kernel(f, float(k), corr)
    if x == 0.0:
        res = x                                          # log1p(-0.0) = -0.0
    elif x == -1.0:
        res = -_INF
    elif x < -1.0:
        res = _NAN
    elif not x < _INF:
        res = x
    return res


# --- sin, cos ------------------------------------------------------------------------------

@_inline
def _trig_reduce(x):
    """x = k pi/2 + (rh + rl) with |rh + rl| <= pi/4 (up to rounding) as a double-double.

    Cody-Waite with fdlibm's four-part pi/2: each k * _PIO2_i is exact for |k| <= 2**20 and the
    subtractions are tracked with 2Sum, so rh + rl is accurate even when x is close to a
    multiple of pi/2. Returns (k, rh, rl); only k mod 4 is used.
    """
    t = x * _TWO_OVER_PI + _SHIFT
    kd = t - _SHIFT
    k = _bits(t) - _SHIFT_BITS
    a = x - kd * _PIO2_1                                 # exact (Sterbenz)
    b = kd * _PIO2_2
    s1 = a - b
    v = s1 - a
    e1 = (a - (s1 - v)) + (-b - v)                      # 2Sum error of a - b
    c = kd * _PIO2_3
    s2 = s1 - c
    v = s2 - s1
    e2 = (s1 - (s2 - v)) + (-c - v)
    lo = (e1 + e2) - kd * _PIO2_4
    rh = s2 + lo
    rl = (s2 - rh) + lo
    return k, rh, rl


@_inline
def _sin_kernel(x, y):
    """sin(x + y) for |x| <= pi/4, |y| <= ulp(x): fdlibm's __kernel_sin with our S(z)."""
    z = x * x
    v = z * x
    r = _S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * (_S6 + z * _S7))))
    return x - ((z * (0.5 * y - v * r) - y) - v * _S1)


@_inline
def _cos_kernel(x, y):
    """cos(x + y) for |x| <= pi/4: fdlibm's __kernel_cos; 1 - z/2 is rounded once and its
    rounding error is added back."""
    z = x * x
    w = z * z
    r = z * (_C1 + z * (_C2 + z * _C3)) + w * w * (_C4 + z * (_C5 + z * _C6))
    hz = 0.5 * z
    w = 1.0 - hz
    return w + (((1.0 - w) - hz) + (z * r - x * y))


@_inline
def _sincos_kernel(x):
    """(sin(x), cos(x)) sharing one reduction for |x| <= TRIG_MAX; nan beyond."""
    k, rh, rl = _trig_reduce(x)
    s = _sin_kernel(rh, rl)
    c = _cos_kernel(rh, rl)
    q = k & 3
    sin_x = c if q & 1 else s
    cos_x = s if q & 1 else c
    sin_x = -sin_x if q & 2 else sin_x
    cos_x = -cos_x if (q + 1) & 2 else cos_x
    sin_x = x if x == 0.0 else sin_x                     # sin(-0.0) = -0.0
    # Beyond TRIG_MAX the reduction has lost bits: nan, rather than a silently wrong value
    # (+-inf give nan here too, as in NumPy).
    if not abs(x) <= TRIG_MAX:
        sin_x = _NAN
        cos_x = _NAN
    return sin_x, cos_x


@_jit
def _sincos(x):
    """(sin(x), cos(x)) sharing one range reduction (Cody-Waite with fdlibm's split of pi/2,
    fdlibm's kernels); accurate for |x| <= TRIG_MAX, nan beyond.

    >>> sincos(0.5)
    (0.479425538604203, 0.8775825618903728)
    """
    return _sincos_kernel(x)


@_jit
def _sin(x):
    """Sine (np.sin), as ``sincos``: accurate for |x| <= TRIG_MAX, nan beyond (and for +-inf).

    >>> sin(-0.0), sin(1e6), sin(1e7)
    (-0.0, -0.34999350217129294, nan)
    """
    return _sincos_kernel(x)[0]


@_jit
def _cos(x):
    """Cosine (np.cos), as ``sincos``: accurate for |x| <= TRIG_MAX, nan beyond (and for +-inf).

    >>> cos(0.0), cos(1e6)
    (1.0, 0.9367521275331447)
    """
    return _sincos_kernel(x)[1]


@_jit
def _trig_in_range(x):
    """Whether ``sin``/``cos``/``sincos`` of x give NumPy's result: |x| <= TRIG_MAX, or x is
    +-inf or nan. Beyond TRIG_MAX they return nan.

    A kernel can AND this over the arguments of its sin/cos (a reduction that keeps the loop
    vectorized) and, in the rare case it is false, recompute with ``math.sin``/``math.cos``:
    calling those inside the vectorized loop, even behind a branch, makes LLVM call libm for
    every lane (measured 45x slower).

    >>> trig_in_range(TRIG_MAX), trig_in_range(1e7), trig_in_range(float("inf"))
    (True, False, True)
    """
    a = abs(x)
    return a <= TRIG_MAX or not a < _INF


# --- public functions ----------------------------------------------------------------------

def _call_attributes() -> dict:
    """``attrs=("alwaysinline",)`` where numba's call_function takes call attributes; without
    them the call is plain, and LLVM may or may not inline it."""
    import inspect

    from numba.core.callconv import CPUCallConv
    if "attrs" in inspect.signature(CPUCallConv.call_function).parameters:
        return {"attrs": ("alwaysinline",)}
    return {}


_CALL_ATTRIBUTES = _call_attributes()


def _public(impl, name: str, returns: type = float):
    """The public form of the compiled function ``impl``.

    From Python it calls ``impl`` (a scalar, for tests and reference). Inside numba code it
    emits a direct call to ``impl``'s compiled code marked ``alwaysinline``: LLVM then inlines
    the body into the caller's loop and can vectorize it, while the body keeps the flags it
    was compiled with (the caller's ``fastmath``/``error_model`` do not apply to it). A plain
    call to a numba function is inlined only when LLVM finds it cheap, which these are not.
    float32 arguments are computed in float64 and rounded back (at most 0.5 ulp of float32
    plus the float64 error); integers and booleans are converted to float64, as NumPy does.
    """
    arg64 = (types.float64,)

    @intrinsic
    def call_inline(typingctx, x):
        if not isinstance(x, (types.Float, types.Integer, types.Boolean)):
            return None
        impl.compile(arg64)
        cres = impl.overloads[arg64]
        ret64 = cres.signature.return_type
        ret = ret64
        if x == types.float32 and ret64 != types.boolean:
            ret = (types.UniTuple(types.float32, ret64.count)
                   if isinstance(ret64, types.BaseTuple) else types.float32)

        def codegen(context, builder, signature, args):
            x64 = context.cast(builder, args[0], signature.args[0], types.float64)
            fn = context.declare_function(builder.module, cres.fndesc)
            # The status is always "ok": these functions raise no exceptions.
            _, out = context.call_conv.call_function(builder, fn, ret64, arg64, [x64],
                                                     **_CALL_ATTRIBUTES)
            context.add_linking_libs([cres.library])
            return context.cast(builder, out, ret64, signature.return_type)

        return ret(x), codegen

    def scalar(x):
        return impl(float(x))

    scalar.__name__ = scalar.__qualname__ = name
    scalar.__doc__ = impl.__doc__
    scalar.__module__ = __name__
    scalar.__annotations__ = {"x": float, "return": returns}

    @overload(scalar, inline="always")
    def _overload(x):
        if isinstance(x, (types.Float, types.Integer, types.Boolean)):
            return lambda x: call_inline(x)

    return scalar


exp = _public(_exp, "exp")
expm1 = _public(_expm1, "expm1")
log = _public(_log, "log")
log1p = _public(_log1p, "log1p")
tanh = _public(_tanh, "tanh")
sigmoid = _public(_sigmoid, "sigmoid")
logistic = sigmoid
sin = _public(_sin, "sin")
cos = _public(_cos, "cos")
sincos = _public(_sincos, "sincos", tuple[float, float])
trig_in_range = _public(_trig_in_range, "trig_in_range", bool)


# --- coefficient generation ----------------------------------------------------------------

def _remez(f, a, b, degree, iterations=30, grid=4000):  # pragma: no cover - offline tool
    """Minimax polynomial (coefficients low to high) of f on [a, b] in relative error, by
    Remez exchange in mpmath; returns (coefficients, max relative error)."""
    import mpmath as mp

    a, b = mp.mpf(a), mp.mpf(b)
    n = degree + 2
    nodes = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / (n - 1)) for i in range(n)]
    grid_points = [a + (b - a) * (1 - mp.cos(mp.pi * i / grid)) / 2 for i in range(grid + 1)]
    for _ in range(iterations):
        m = mp.matrix(n, n)
        rhs = mp.matrix(n, 1)
        for i, x in enumerate(nodes):
            for j in range(degree + 1):
                m[i, j] = x ** j
            m[i, degree + 1] = (-1) ** i * f(x)          # equioscillating relative error
            rhs[i] = f(x)
        sol = mp.lu_solve(m, rhs)
        coeffs = [sol[j] for j in range(degree + 1)]

        def err(x, coeffs=coeffs):
            return mp.polyval(coeffs[::-1], x) / f(x) - 1

        values = [err(x) for x in grid_points]
        # Local extrema of the error on the grid, alternating in sign, become the new nodes.
        extrema = []
        for i, v in enumerate(values):
            left = values[i - 1] if i > 0 else 0
            right = values[i + 1] if i < grid else 0
            if abs(v) >= abs(left) and abs(v) >= abs(right):
                if extrema and mp.sign(err(extrema[-1])) == mp.sign(v):
                    if abs(v) > abs(err(extrema[-1])):
                        extrema[-1] = grid_points[i]
                else:
                    extrema.append(grid_points[i])
        while len(extrema) > n:
            extrema.pop(0 if abs(err(extrema[0])) < abs(err(extrema[-1])) else -1)
        if len(extrema) < n:
            break
        nodes = extrema
    return coeffs, max(abs(v) for v in values)


def _print_coefficients():  # pragma: no cover - offline tool
    import mpmath as mp

    mp.mp.prec = 256

    def exp_q(r):
        return mp.mpf(1) / 2 + r / 6 if abs(r) < 1e-30 else (mp.exp(r) - 1 - r) / r ** 2

    def log_l(w):
        s = mp.sqrt(w)
        return mp.mpf(2) / 3 if w < 1e-60 else (mp.log((1 + s) / (1 - s)) - 2 * s) / (s * w)

    def sin_s(z):
        r = mp.sqrt(z)
        return -mp.mpf(1) / 6 if z < 1e-60 else (mp.sin(r) - r) / r ** 3

    def cos_c(z):
        r = mp.sqrt(z)
        return mp.mpf(1) / 24 if z < 1e-60 else (mp.cos(r) - 1 + z / 2) / z ** 2

    margin = mp.mpf("1.0001")                            # k may round to the other neighbour
    half_ln2 = mp.log(2) / 2 * margin
    s_max = (mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)
    quarter_pi = mp.pi / 4 * margin
    fits = [("_E", exp_q, -half_ln2, half_ln2, 10), ("_L", log_l, 0, s_max ** 2 * margin, 6),
            ("_S", sin_s, 0, quarter_pi ** 2, 6), ("_C", cos_c, 0, quarter_pi ** 2, 5)]
    for prefix, f, a, b, degree in fits:
        coeffs, error = _remez(f, a, b, degree)
        first = 0 if prefix == "_E" else 1
        print(f"# relative error {mp.nstr(error, 3)}")
        for i, c in enumerate(coeffs):
            print(f"{prefix}{i + first} = {float(c)!r}")


if __name__ == "__main__":  # pragma: no cover
    _print_coefficients()
