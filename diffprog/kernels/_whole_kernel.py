"""The whole-program interpreter's kernel (see :mod:`diffprog.kernels.wholeprog`). Imports
numba.

``run`` is cached on disk by :func:`diffprog.kernels.cache.package_jit` (once per
installation, like the blocked interpreter's kernel); one signature exists. A program is a
table of instructions, one row per node: ``op, dst, n, a, sa, b, sb, x0, x1, x2``. Values live
in ``mem`` (float64, one flat slice per value); an operand offset ``a < 0`` reads the constant
arena ``cm`` at ``-1 - a``; ``ix`` holds the index arrays of gathers and scatters.

- elementwise (the opcodes of :mod:`diffprog.kernels.interp`, 3 being the identity):
  ``mem[dst + j] = f(A[a + j * sa], B[b + j * sb])`` for ``j < n`` (``sa``, ``sb`` 0 for a
  broadcast element, 1 for a full operand);
- ``GATHER``: ``mem[dst + j] = A[a + ix[b + j]]``;
- ``SCATTER``: zeros at ``mem[dst:dst + x0]`` (-0.0 at the positions written when ``x1``
  is 1: an assignment, which keeps a -0.0 value), then
  ``mem[dst + ix[b + j]] += A[a + j]``;
- ``MATMUL``: ``n`` products of an ``x0 x x1`` by an ``x1 x x2`` matrix, the operands'
  matrices ``sa``/``sb`` (0 or 1) times the batch index apart;
- ``MATVEC_T``: the product of an ``n x sa`` matrix stored transposed at ``a`` by the
  vector at ``b`` (each sum in the order ``MATMUL`` adds it; the loop over rows vectorizes).

Loops (a ``scan`` node: the rows of its body between a ``LOOP`` and its ``ENDLOOP`` row, run
``n`` times; the step count lives in ``mem[d]``, so each call has its own):

- ``LOOP``: ``mem[d] = 0``; with ``n`` 0, go on after the ``ENDLOOP`` row ``x0``;
- ``ENDLOOP``: ``mem[d] += 1``; while it is below ``n``, go back to the row after ``LOOP``
  row ``x0``;
- ``ROW``: a copy of ``n`` elements between a value and row ``i`` of a stacked value, ``i``
  the step count ``mem[sa]`` (``x0 - 1 - i`` when ``sb`` is 1: a reverse scan), ``x1`` the
  rows' stride in steps (the saved carries of a checkpointed scan: steps that are not a
  multiple of it copy nothing); ``b`` 0 reads the row (``mem[d + j] = A[a + i * n + j]``),
  1 writes it (``mem[d + i * n + j] = A[a + j]``).

A while loop (its trip count in ``mem[d]``): ``WHILE`` sets it to 0; the rows of the
predicate follow, then ``BRANCH``, which goes on after the ``ENDWHILE`` row ``x0`` when
``A[a]`` is 0; then the body's rows; ``ENDWHILE`` adds 1 to the count and goes back to the
row after ``WHILE`` row ``x0``. The comparisons (``LT`` ... ``NE``, binary opcodes) give 1.0
or 0.0: the tier holds bools as float64.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types

from . import cache as _cache
from . import fastmath as fm

__all__ = ["run", "SIGNATURE", "GATHER", "SCATTER", "MATMUL", "LOOP", "ENDLOOP", "ROW", "WHILE",
           "BRANCH", "ENDWHILE", "MATVEC_T", "LT", "WIDTH"]

GATHER, SCATTER, MATMUL, LOOP, ENDLOOP, ROW = 100, 101, 102, 103, 104, 105
WHILE, BRANCH, ENDWHILE, MATVEC_T = 106, 107, 108, 109
LT, LE, GT, GE, EQ, NE = range(61, 67)  # (after the interpreter's binary opcodes, 50-60)
WIDTH = 10
SIGNATURE = (types.Array(types.int64, 2, "C"), types.Array(types.float64, 1, "C"),
             types.Array(types.float64, 1, "C"), types.Array(types.int64, 1, "C"))


@numba.njit(inline="always", error_model="numpy", fastmath={"contract"})
def _unary(op, x):  # pragma: no cover  (compiled)
    if op == 3:
        return x
    if op == 10:
        return -x
    if op == 11:
        return abs(x)
    if op == 12:
        return fm.exp(x)
    if op == 13:
        return fm.log(x)
    if op == 14:
        return fm.log1p(x)
    if op == 15:
        return fm.expm1(x)
    if op == 16:
        return fm.sin(x) if fm.trig_in_range(x) else math.sin(x)
    if op == 17:
        return fm.cos(x) if fm.trig_in_range(x) else math.cos(x)
    if op == 18:
        return fm.tanh(x)
    if op == 19:
        return fm.sigmoid(x)
    if op == 20:
        return np.sqrt(x)
    if op == 21:
        return np.tan(x)
    if op == 22:
        return np.sinh(x)
    if op == 23:
        return np.cosh(x)
    if op == 24:
        return np.arcsin(x)
    if op == 25:
        return np.arccos(x)
    if op == 26:
        return np.arctan(x)
    if op == 27:
        return np.arcsinh(x)
    if op == 28:
        return np.arccosh(x)
    if op == 29:
        return np.arctanh(x)
    if op == 30:
        return np.log2(x)
    return np.log10(x)


@numba.njit(inline="always", error_model="numpy", fastmath={"contract"})
def _binary(op, x, y):  # pragma: no cover  (compiled)
    if op == 50:
        return x + y
    if op == 51:
        return x - y
    if op == 52:
        return x * y
    if op == 53:
        return x / y
    if op == 54:
        return x ** y
    if op == 55:  # maximum: NaN from either side; y at a tie, as NumPy
        return x if x > y or x != x else y
    if op == 56:
        return x if x < y or x != x else y
    if op == 57:  # fmax: the operand that is not NaN; x at a tie, as NumPy
        return x if y != y or x >= y else y
    if op == 58:
        return x if y != y or x <= y else y
    if op == 59:
        return np.arctan2(x, y)
    if op == 60:
        return np.hypot(x, y)
    if op == 61:
        return 1.0 if x < y else 0.0
    if op == 62:
        return 1.0 if x <= y else 0.0
    if op == 63:
        return 1.0 if x > y else 0.0
    if op == 64:
        return 1.0 if x >= y else 0.0
    if op == 65:
        return 1.0 if x == y else 0.0
    return 1.0 if x != y else 0.0


@numba.njit(inline="always", error_model="numpy", fastmath={"contract"})
def _binary_loop(op, o, x, y, sx, sy, n):  # pragma: no cover  (compiled)
    """``o[j] = x[j] op y[j]`` over views (indices the compiler knows are in range, so the
    loops vectorize); a stride of 0 is one element broadcast."""
    if sx == 1 and sy == 1:
        if op == 50:
            for j in range(n):
                o[j] = x[j] + y[j]
        elif op == 51:
            for j in range(n):
                o[j] = x[j] - y[j]
        elif op == 52:
            for j in range(n):
                o[j] = x[j] * y[j]
        elif op == 53:
            for j in range(n):
                o[j] = x[j] / y[j]
        else:
            for j in range(n):
                o[j] = _binary(op, x[j], y[j])
    elif sx == 1:
        v = y[0]
        if op == 50:
            for j in range(n):
                o[j] = x[j] + v
        elif op == 52:
            for j in range(n):
                o[j] = x[j] * v
        else:
            for j in range(n):
                o[j] = _binary(op, x[j], v)
    elif sy == 1:
        u = x[0]
        if op == 50:
            for j in range(n):
                o[j] = u + y[j]
        elif op == 52:
            for j in range(n):
                o[j] = u * y[j]
        else:
            for j in range(n):
                o[j] = _binary(op, u, y[j])
    else:
        w = _binary(op, x[0], y[0])
        for j in range(n):
            o[j] = w


@_cache.package_jit(depends=("fastmath.py",), nogil=True, error_model="numpy",
                    fastmath={"contract"})
def run(code, mem, cm, ix):  # pragma: no cover  (compiled)
    """Run the instructions of ``code`` in order (see the module's docstring)."""
    rows = code.shape[0]
    t = -1
    while t + 1 < rows:
        t += 1
        op = code[t, 0]
        d = code[t, 1]
        n = code[t, 2]
        a = code[t, 3]
        sa = code[t, 4]
        b = code[t, 5]
        sb = code[t, 6]
        A = mem if a >= 0 else cm
        ao = a if a >= 0 else -1 - a
        if op < 50:
            o = mem[d:d + n]
            if sa == 1:
                x = A[ao:ao + n]
                if op == 3:
                    for j in range(n):
                        o[j] = x[j]
                elif op == 10:
                    for j in range(n):
                        o[j] = -x[j]
                elif op == 12:  # the common ones get a loop each (vectorized)
                    for j in range(n):
                        o[j] = fm.exp(x[j])
                elif op == 13:
                    for j in range(n):
                        o[j] = fm.log(x[j])
                elif op == 18:
                    for j in range(n):
                        o[j] = fm.tanh(x[j])
                elif op == 19:
                    for j in range(n):
                        o[j] = fm.sigmoid(x[j])
                elif op == 20:
                    for j in range(n):
                        o[j] = np.sqrt(x[j])
                else:
                    for j in range(n):
                        o[j] = _unary(op, x[j])
            else:
                v = _unary(op, A[ao])
                for j in range(n):
                    o[j] = v
        elif op < GATHER:
            B = mem if b >= 0 else cm
            bo = b if b >= 0 else -1 - b
            _binary_loop(op, mem[d:d + n], A[ao:ao + max(n * sa, 1)],
                         B[bo:bo + max(n * sb, 1)], sa, sb, n)
        elif op == GATHER:
            o = mem[d:d + n]
            w = ix[b:b + n]
            x = A[ao:]
            for j in range(n):
                o[j] = x[w[j]]
        elif op == SCATTER:
            o = mem[d:d + code[t, 7]]
            w = ix[b:b + n]
            x = A[ao:ao + n]
            for j in range(o.shape[0]):
                o[j] = 0.0
            if code[t, 8]:  # an assignment: -0.0 + v is v, for v = -0.0 too
                for j in range(n):
                    o[w[j]] = -0.0
            for j in range(n):
                o[w[j]] += x[j]
        elif op == MATMUL:
            B = mem if b >= 0 else cm
            bo = b if b >= 0 else -1 - b
            m = code[t, 7]
            k = code[t, 8]
            w = code[t, 9]
            for q in range(n):
                x = A[ao + q * sa * m * k:]
                y = B[bo + q * sb * k * w:]
                o = mem[d + q * m * w:d + (q + 1) * m * w]
                if k == 1:  # an outer product: the same sums of one term
                    for i in range(m):
                        xv = x[i]
                        oi = o[i * w:(i + 1) * w]
                        yw = y[:w]
                        for j in range(w):
                            oi[j] = 0.0 + xv * yw[j]
                    continue
                for i in range(m * w):
                    o[i] = 0.0
                if w == 1:  # a matrix-vector product: the same sums, the rows independent
                    for p in range(k):
                        yp = y[p]
                        xp = x[p:]
                        for i in range(m):
                            o[i] += xp[i * k] * yp
                    continue
                for i in range(m):
                    for p in range(k):
                        xv = x[i * k + p]
                        oi = o[i * w:(i + 1) * w]
                        yp = y[p * w:(p + 1) * w]
                        for j in range(w):
                            oi[j] += xv * yp[j]
        elif op == MATVEC_T:
            B = mem if b >= 0 else cm
            bo = b if b >= 0 else -1 - b
            o = mem[d:d + n]
            for i in range(n):
                o[i] = 0.0
            for p in range(sa):
                yp = B[bo + p]
                at = A[ao + p * n:ao + (p + 1) * n]
                for i in range(n):
                    o[i] += at[i] * yp
        elif op == LOOP:
            mem[d] = 0.0
            if n == 0:
                t = code[t, 7]
        elif op == ENDLOOP:
            mem[d] += 1.0
            if mem[d] < n:
                t = code[t, 7]
        elif op == WHILE:
            mem[d] = 0.0
        elif op == BRANCH:
            if A[ao] == 0.0:
                t = code[t, 7]
        elif op == ENDWHILE:
            mem[d] += 1.0
            t = code[t, 7]
        else:  # ROW
            i = int(mem[sa])
            if sb == 1:
                i = code[t, 7] - 1 - i
            every = code[t, 8]
            if i % every == 0:
                i //= every
                if b == 0:
                    o = mem[d:d + n]
                    x = A[ao + i * n:ao + (i + 1) * n]
                else:
                    o = mem[d + i * n:d + (i + 1) * n]
                    x = A[ao:ao + n]
                for j in range(n):
                    o[j] = x[j]
    return 0
