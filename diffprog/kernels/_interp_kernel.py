"""The blocked interpreter's kernel (see :mod:`diffprog.kernels.interp`). Imports numba.

``interp`` is cached on disk by :func:`diffprog.kernels.cache.package_jit`, so its machine code
is cached once per installation beside the package (the package's ``__pycache__``, when it is
the user's and private enough; else diffprog's private cache), and the fast-math functions it
calls are inlined into that one cached object (a change to fastmath.py invalidates it): a new
process loads it without compiling anything.
Only the float64 signature exists; inputs are passed by address so that any number of them
fits the one signature.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from . import cache as _cache
from . import fastmath as fm

__all__ = ["interp", "SIGNATURE"]

_i64 = types.int64
_f64 = types.float64
SIGNATURE = (types.Array(_i64, 2, "C"), _i64, types.Array(_i64, 1, "C"),
             types.Array(_i64, 1, "C"), types.Array(_f64, 2, "C"), types.Array(_i64, 1, "C"),
             types.Array(_f64, 1, "C"), _i64)


@intrinsic
def _as_pointer(typingctx, addr):
    """The address of a float64 buffer (an int64) as a pointer: one LLVM inttoptr."""
    if addr != types.int64:
        return None
    sig = types.CPointer(types.float64)(addr)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], ir.PointerType(ir.DoubleType()))

    return sig, codegen


@_cache.package_jit(depends=("fastmath.py",), nogil=True, error_model="numpy",
                    fastmath={"contract"})
def interp(code, n, addrs, periods, out, splat_regs, splat_vals, n_regs):  # pragma: no cover
    """Run ``code`` (rows ``op, dst, a, b``) over ``n`` elements in blocks of 1024.

    Opcodes are those of diffprog.kernels.interp. Registers are rows of ``regs``, indexed
    directly (row views would cost two reference-count updates each, per instruction: 216
    against 15 ns per instruction on 10 elements). Inputs are float64 buffers at ``addrs``
    (``periods[k] > 0``: the input repeats with that period along the output); outputs are the
    rows of ``out``. Splat registers hold constant scalars.
    """
    block = min(1024, max(n, 1))  # small programs: small scratch (no mmap per call)
    regs = np.empty((n_regs, block))
    for k in range(splat_regs.size):
        regs[splat_regs[k], :] = splat_vals[k]
    n_code = code.shape[0]
    for start in range(0, n, block):
        m = min(block, n - start)
        for t in range(n_code):
            op = code[t, 0]
            d = code[t, 1]
            a = code[t, 2]
            b = code[t, 3]
            if op == 0:  # LOAD
                src = numba.carray(_as_pointer(addrs[a]), n)
                for j in range(m):
                    regs[d, j] = src[start + j]
            elif op == 1:  # LOAD_PERIOD
                period = periods[a]
                src = numba.carray(_as_pointer(addrs[a]), period)
                if period == 1:
                    v = src[0]
                    for j in range(m):
                        regs[d, j] = v
                else:
                    i = start % period
                    for j in range(m):
                        regs[d, j] = src[i]
                        i += 1
                        if i == period:
                            i = 0
            elif op == 2:  # STORE
                for j in range(m):
                    out[d, start + j] = regs[a, j]
            elif op < 50:
                if op == 10:
                    for j in range(m):
                        regs[d, j] = -regs[a, j]
                elif op == 11:
                    for j in range(m):
                        regs[d, j] = abs(regs[a, j])
                elif op == 12:
                    for j in range(m):
                        regs[d, j] = fm.exp(regs[a, j])
                elif op == 13:
                    for j in range(m):
                        regs[d, j] = fm.log(regs[a, j])
                elif op == 14:
                    for j in range(m):
                        regs[d, j] = fm.log1p(regs[a, j])
                elif op == 15:
                    for j in range(m):
                        regs[d, j] = fm.expm1(regs[a, j])
                elif op == 16 or op == 17:
                    bad = 0
                    if op == 16:
                        for j in range(m):
                            regs[d, j] = fm.sin(regs[a, j])
                            bad += 0 if fm.trig_in_range(regs[a, j]) else 1
                    else:
                        for j in range(m):
                            regs[d, j] = fm.cos(regs[a, j])
                            bad += 0 if fm.trig_in_range(regs[a, j]) else 1
                    if bad:  # beyond the fast range: libm, element by element
                        for j in range(m):
                            x = regs[a, j]
                            if not fm.trig_in_range(x):
                                regs[d, j] = math.sin(x) if op == 16 else math.cos(x)
                elif op == 18:
                    for j in range(m):
                        regs[d, j] = fm.tanh(regs[a, j])
                elif op == 19:
                    for j in range(m):
                        regs[d, j] = fm.sigmoid(regs[a, j])
                elif op == 20:
                    for j in range(m):
                        regs[d, j] = np.sqrt(regs[a, j])
                elif op == 21:
                    for j in range(m):
                        regs[d, j] = np.tan(regs[a, j])
                elif op == 22:
                    for j in range(m):
                        regs[d, j] = np.sinh(regs[a, j])
                elif op == 23:
                    for j in range(m):
                        regs[d, j] = np.cosh(regs[a, j])
                elif op == 24:
                    for j in range(m):
                        regs[d, j] = np.arcsin(regs[a, j])
                elif op == 25:
                    for j in range(m):
                        regs[d, j] = np.arccos(regs[a, j])
                elif op == 26:
                    for j in range(m):
                        regs[d, j] = np.arctan(regs[a, j])
                elif op == 27:
                    for j in range(m):
                        regs[d, j] = np.arcsinh(regs[a, j])
                elif op == 28:
                    for j in range(m):
                        regs[d, j] = np.arccosh(regs[a, j])
                elif op == 29:
                    for j in range(m):
                        regs[d, j] = np.arctanh(regs[a, j])
                elif op == 30:
                    for j in range(m):
                        regs[d, j] = np.log2(regs[a, j])
                elif op == 31:
                    for j in range(m):
                        regs[d, j] = np.log10(regs[a, j])
            else:
                if op == 50:
                    for j in range(m):
                        regs[d, j] = regs[a, j] + regs[b, j]
                elif op == 51:
                    for j in range(m):
                        regs[d, j] = regs[a, j] - regs[b, j]
                elif op == 52:
                    for j in range(m):
                        regs[d, j] = regs[a, j] * regs[b, j]
                elif op == 53:
                    for j in range(m):
                        regs[d, j] = regs[a, j] / regs[b, j]
                elif op == 54:
                    for j in range(m):
                        regs[d, j] = regs[a, j] ** regs[b, j]
                elif op == 55:  # maximum: NaN from either side; y at a tie, as NumPy
                    for j in range(m):
                        x = regs[a, j]
                        y = regs[b, j]
                        regs[d, j] = x if x > y or x != x else y
                elif op == 56:
                    for j in range(m):
                        x = regs[a, j]
                        y = regs[b, j]
                        regs[d, j] = x if x < y or x != x else y
                elif op == 57:  # fmax: the operand that is not NaN; x at a tie, as NumPy
                    for j in range(m):
                        x = regs[a, j]
                        y = regs[b, j]
                        regs[d, j] = x if y != y or x >= y else y
                elif op == 58:
                    for j in range(m):
                        x = regs[a, j]
                        y = regs[b, j]
                        regs[d, j] = x if y != y or x <= y else y
                elif op == 59:
                    for j in range(m):
                        regs[d, j] = np.arctan2(regs[a, j], regs[b, j])
                elif op == 60:
                    for j in range(m):
                        regs[d, j] = np.hypot(regs[a, j], regs[b, j])
