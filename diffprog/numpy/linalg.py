"""``diffprog.numpy.linalg``: NumPy's linear algebra namespace on traced values.

Stacks of matrices ``(..., m, n)`` work wherever NumPy accepts them, real or complex.
Derivatives are those of the function NumPy computes; for complex values they follow JAX's
convention (``grad`` of a real function f of complex z is conj(∂f/∂x + i ∂f/∂y), and a vjp is
the transpose of the jvp without conjugating the cotangent):

* ``cholesky`` and ``eigh`` read one triangle of their input, as NumPy does (the lower one
  by default), so their derivative is that of the symmetric (Hermitian) matrix built from it:
  the gradient lies in that triangle, with the off-diagonal entries counting twice. For a
  symmetric parametrization such as ``a = b @ b.T`` the chain rule gives the usual result.
* ``eigh``, ``svd`` and ``eig`` need distinct eigenvalues (singular values) for the
  derivative of the vectors. At a repeated eigenvalue of ``eigh`` (singular value of ``svd``;
  equal up to rounding, as LAPACK returns them) the vectors' part of the derivative within
  its eigenspace is dropped, as in JAX: the derivative stays exact for functions of the
  values and of the projectors onto eigenspaces (which do not depend on the basis LAPACK
  picks), but not for, say, a matrix function V diag(φ(w)) V^H built from the factors, whose
  derivative there needs φ' (the Daleckii-Krein formula), which no rule sees; second
  derivatives of functions of the values alone are not exact there either, for the same
  reason. The vectors' signs (phases, for complex values) are arbitrary, so only functions
  invariant under them are meaningful to differentiate.
* ``eig`` and ``eigvals`` always return complex values (NumPy returns real ones when every
  eigenvalue of a real matrix is real), so that the dtype does not depend on the values.
* ``norm``: the gradient of the 2-norm (and of other p-norms, and the Frobenius norm) at zero
  is 0, the subgradient of minimum norm, not NaN.
* ``pinv``: the derivative holds where the rank is locally constant (full rank, say).

Example:
    >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
    >>> dnp.linalg.__name__
    'diffprog.numpy.linalg'
    >>> a = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> np.allclose(dp.grad(dnp.linalg.det)(a), np.linalg.det(a) * np.linalg.inv(a).T)
    True
"""

from __future__ import annotations

import functools
import operator
from collections import namedtuple
from typing import Any

import numpy as np

from .. import prims as P
from ..core import Tracer, bind
from ._core import _any_traced, _as_array, _dtype, as_operand, implements
from ._elementwise import abs as absolute
from ._elementwise import astype, conj, imag, real, sqrt, where
from ._linalg import matmul, tensordot
from ._reductions import _axes
from ._reductions import max as amax
from ._reductions import min as amin
from ._reductions import sum as asum
from ._shapes import broadcast_to, reshape, swapaxes, transpose

__all__ = ["inv", "solve", "solve_triangular", "det", "slogdet", "cholesky", "eigh",
           "eigvalsh", "eig", "eigvals", "svd", "svdvals", "qr", "pinv", "norm", "matrix_norm",
           "vector_norm",
           "matrix_power", "multi_dot", "matrix_transpose", "matmul", "tensordot",
           "lstsq", "matrix_rank", "cond",
           "LinAlgError", "SlogdetResult", "EighResult", "EigResult", "SVDResult", "QRResult",
           "LstsqResult"]

LinAlgError = np.linalg.LinAlgError

# NumPy's own result types (namedtuples, so pytrees), so that traced and plain calls return
# the same structure; NumPy does not export them publicly.
try:
    from numpy.linalg._linalg import EighResult, EigResult, QRResult, SlogdetResult, SVDResult
except ImportError:  # pragma: no cover - a NumPy that moved them
    SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
    EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
    EigResult = namedtuple("EigResult", ["eigenvalues", "eigenvectors"])
    SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
    QRResult = namedtuple("QRResult", ["Q", "R"])


# ------------------------------------------------------------------------------------------

def _float(x: Any) -> Any:
    """``x`` with a float or complex dtype (NumPy's linalg computes integers in float64)."""
    kind = np.dtype(x.dtype).kind
    return x if kind == "f" or kind == "c" else astype(x, np.float64)


def _complex(x: Any) -> bool:
    return np.dtype(x.dtype).kind == "c"


def _square(a: Any) -> Any:
    a = _float(_as_array(a))
    if a.ndim < 2:
        raise LinAlgError(f"{a.ndim}-dimensional array given. Array must be at least "
                          "two-dimensional")
    if a.shape[-1] != a.shape[-2]:
        raise LinAlgError("Last 2 dimensions of the array must be square")
    return a


def _at_least_2d(a: Any) -> Any:
    a = _float(_as_array(a))
    if a.ndim < 2:
        raise LinAlgError(f"{a.ndim}-dimensional array given. Array must be at least "
                          "two-dimensional")
    return a


def _mT(a: Any) -> Any:
    return swapaxes(a, -1, -2)


def _mH(a: Any) -> Any:
    return conj(swapaxes(a, -1, -2)) if _complex(a) else swapaxes(a, -1, -2)


def _symmetric_from(a: Any, uplo: str) -> Any:
    """The symmetric (Hermitian) matrix NumPy's LAPACK call sees: one triangle of ``a``,
    mirrored (and conjugated; LAPACK takes the real part of a complex diagonal)."""
    if uplo not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    h = where(_triangle(a.shape[-1], uplo), a, _mH(a))
    return (h + _mH(h)) * 0.5 if _complex(a) else h


@functools.lru_cache(maxsize=64)
def _triangle(n: int, uplo: str) -> np.ndarray:
    ones = np.ones((n, n), dtype=bool)
    keep = np.tril(ones) if uplo == "L" else np.triu(ones)
    keep.flags.writeable = False
    return keep


def _broadcast_batch(a: Any, b: Any) -> tuple[Any, Any]:
    """Both stacks with the common batch shape (traced ones through broadcast_to)."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    out = []
    for x in (a, b):
        shape = batch + x.shape[-2:]
        if x.shape != shape:
            x = broadcast_to(x, shape) if isinstance(x, Tracer) else np.broadcast_to(x, shape)
        out.append(x)
    dtype = np.result_type(_dtype(a), _dtype(b))
    return tuple(astype(x, dtype) if x.dtype != dtype else x for x in out)


def _solve_operands(a: Any, b: Any) -> tuple[Any, Any, bool]:
    """NumPy 2's rule: ``b`` is a vector only when 1-D; otherwise a stack of matrices."""
    a = _square(a)
    b = _float(_as_array(b))
    n = a.shape[-1]
    vector = b.ndim == 1
    if vector:
        b = reshape(b, (b.shape[0], 1))
    if b.ndim < 2 or b.shape[-2] != n:
        raise ValueError(f"solve: the right-hand side of shape {b.shape if not vector else (n,)}"
                         f" does not match the {n}x{n} matrices")
    a, b = _broadcast_batch(a, b)
    return a, b, vector


# -- solves and inverses ---------------------------------------------------------------------

@implements(np.linalg.inv)
def inv(a: Any) -> Any:
    """``np.linalg.inv``; the derivative of a^-1 is -a^-1 da a^-1.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> dnp.linalg.inv(np.array([[2.0, 0.0], [0.0, 4.0]]))
        array([[0.5 , 0.  ],
               [0.  , 0.25]])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.linalg.inv(a)
    a = _square(a)
    return bind(P.solve, a, np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape))


@implements(np.linalg.solve)
def solve(a: Any, b: Any) -> Any:
    """``np.linalg.solve``: x with a x = b; ``b`` is a vector when 1-D, else a stack of
    matrices, and batch dimensions broadcast (NumPy 2's rules).

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> dnp.linalg.solve(np.array([[2.0, 0.0], [0.0, 4.0]]), np.ones(2))
        array([0.5 , 0.25])
    """
    if not _any_traced(a, b):
        return np.linalg.solve(a, b)
    a, b, vector = _solve_operands(a, b)
    x = bind(P.solve, a, b)
    return reshape(x, x.shape[:-1]) if vector else x


_TRANS = {0: 0, 1: 1, 2: 2, "N": 0, "T": 1, "C": 2}


def solve_triangular(a: Any, b: Any, *, lower: bool = False, trans: int | str = 0) -> Any:
    """Solve op(a) x = b for a triangular ``a``, like ``scipy.linalg.solve_triangular`` (and
    JAX): the upper triangle by default (``lower=False``), batched.

    Only the lower (``lower=True``) or upper triangle of ``a`` is read, so the gradient with
    respect to ``a`` lies in that triangle. ``trans`` is 0 / 'N' (solve a x = b) or 1 / 'T'
    (solve a^T x = b) or 2 / 'C' (solve a^H x = b). ``b`` is a vector when 1-D, else
    a stack of matrices; batch dimensions broadcast. The solve runs NumPy's LU solver on the
    triangle (backward stable; it does not exploit the triangular structure).

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> a = np.array([[2.0, 9.0], [1.0, 1.0]])
        >>> dnp.linalg.solve_triangular(a, np.array([2.0, 2.0]), lower=True)
        array([1., 1.])
        >>> dnp.linalg.solve_triangular(a, np.array([11.0, 1.0]))  # the upper triangle
        array([1., 1.])
    """
    if trans not in _TRANS:
        raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', "
                         f"got {trans!r}")
    t = _TRANS[trans]
    a, b, vector = _solve_operands(a, b)
    if t == 2 and not _complex(a):
        t = 1  # the conjugate transpose of a real matrix: one primitive, one cache key
    if not _any_traced(a, b):
        x = P.solve_triangular.impl(a, b, lower=bool(lower), trans=t)
    else:
        x = bind(P.solve_triangular, a, b, lower=bool(lower), trans=t)
    return reshape(x, x.shape[:-1]) if vector else x


# -- determinants ----------------------------------------------------------------------------

@implements(np.linalg.det)
def det(a: Any) -> Any:
    """``np.linalg.det``; its gradient is det(a) a^-T (singular ``a`` has none here).

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> round(float(dnp.linalg.det(np.array([[2.0, 1.0], [1.0, 3.0]]))), 12)
        5.0
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.linalg.det(a)
    return bind(P.det, _square(a))


@implements(np.linalg.slogdet)
def slogdet(a: Any) -> SlogdetResult:
    """``np.linalg.slogdet``: (sign, log|det a|). For real ``a`` the sign is piecewise
    constant (no derivative); for complex ``a`` it is det / |det| and differentiable. The
    gradient of log|det a| is a^-T (for complex ``a`` too, in JAX's convention).

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> sign, logabsdet = dnp.linalg.slogdet(np.array([[-2.0, 0.0], [0.0, 1.0]]))
        >>> float(sign), round(float(logabsdet), 6)
        (-1.0, 0.693147)
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.linalg.slogdet(a)
    sign, logabsdet = bind(P.slogdet, _square(a))
    return SlogdetResult(sign, logabsdet)


# -- decompositions --------------------------------------------------------------------------

@implements(np.linalg.cholesky)
def cholesky(a: Any, /, *, upper: bool = False) -> Any:
    """``np.linalg.cholesky``: L with a = L L^H (or, with ``upper=True``, R = L^H).

    NumPy reads only the lower triangle of ``a`` (the upper one with ``upper=True``), and the
    derivative is that of the symmetric (Hermitian) matrix built from it.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> dnp.linalg.cholesky(np.array([[4.0, 2.0], [2.0, 2.0]]))
        array([[2., 0.],
               [1., 1.]])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.linalg.cholesky(a, upper=upper)
    a = _square(a)
    low = bind(P.cholesky, _symmetric_from(a, "U" if upper else "L"))
    return _mH(low) if upper else low


@implements(np.linalg.eigh)
def eigh(a: Any, UPLO: str = "L") -> EighResult:
    """``np.linalg.eigh``: eigenvalues (ascending, real) and eigenvectors of a symmetric
    (Hermitian) matrix, from the triangle ``UPLO`` of ``a``.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(lambda a: dnp.sum(dnp.linalg.eigh(a)[0] ** 2))(np.diag([1.0, 2.0]))
        array([[2., 0.],
               [0., 4.]])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.linalg.eigh(a, UPLO=UPLO)
    w, v = bind(P.eigh, _symmetric_from(_square(a), UPLO))
    return EighResult(w, v)


@implements(np.linalg.eigvalsh)
def eigvalsh(a: Any, UPLO: str = "L") -> Any:
    """``np.linalg.eigvalsh``: the eigenvalues of ``eigh`` (differentiable at ties too)."""
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.linalg.eigvalsh(a, UPLO=UPLO)
    return eigh(a, UPLO)[0]


@implements(np.linalg.eig)
def eig(a: Any) -> EigResult:
    """``np.linalg.eig``: eigenvalues and right eigenvectors (columns of unit norm) of a
    general square matrix.

    Traced, the results are always complex (NumPy returns real ones for a real matrix whose
    eigenvalues are all real). Derivatives need distinct eigenvalues; each eigenvector's
    phase is arbitrary, so differentiate only phase-invariant functions of the vectors (such
    as ``abs(v) ** 2``).

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> a = np.array([[2.0, 1.0], [0.0, 3.0]])
        >>> g = dp.grad(lambda a: dnp.real(dnp.linalg.eig(a)[0]).sum())(a)  # the trace
        >>> np.allclose(g, np.eye(2))
        True
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.linalg.eig(a)
    w, v = bind(P.eig, _square(a))
    return EigResult(w, v)


@implements(np.linalg.eigvals)
def eigvals(a: Any) -> Any:
    """``np.linalg.eigvals``: the eigenvalues of ``eig`` (complex when traced; their derivative
    diag(V^-1 da V) needs simple eigenvalues).

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> a = np.array([[0.0, -1.0], [1.0, 0.0]])  # eigenvalues ±i
        >>> w = dp.jvp(dnp.linalg.eigvals, (a,), (np.eye(2),))[1]
        >>> np.allclose(w, [1.0, 1.0])
        True
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.linalg.eigvals(a)
    return eig(a)[0]


@implements(np.linalg.svd)
def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
        hermitian: bool = False) -> Any:
    """``np.linalg.svd``: a = U diag(S) Vh, or only S with ``compute_uv=False``.

    On traced values ``full_matrices=True`` is supported for square matrices only (pass
    ``full_matrices=False`` for the reduced factors), and ``hermitian=True`` is not supported.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(lambda a: dnp.sum(dnp.linalg.svd(a, compute_uv=False)))(np.eye(2))
        array([[1., 0.],
               [0., 1.]])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv,
                             hermitian=hermitian)
    a = _at_least_2d(a)
    if hermitian:
        raise NotImplementedError("svd(..., hermitian=True) of a traced value is not supported;"
                                  " use eigh, or svd with hermitian=False")
    m, n = a.shape[-2:]
    if compute_uv and full_matrices and m != n:
        raise NotImplementedError("svd of a traced non-square matrix needs "
                                  "full_matrices=False (the completed bases have no unique "
                                  "derivative)")
    u, s, vh = bind(P.svd, a)
    return SVDResult(u, s, vh) if compute_uv else s


@implements(np.linalg.svdvals)
def svdvals(x: Any, /) -> Any:
    """``np.linalg.svdvals``: the singular values, in descending order."""
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.linalg.svdvals(x)
    return svd(x, compute_uv=False)


@implements(np.linalg.qr)
def qr(a: Any, mode: str = "reduced") -> Any:
    """``np.linalg.qr`` with modes 'reduced', 'complete' (traced: when m <= n) and 'r'.

    Needs full rank: the first min(m, n) columns independent. For wide matrices (m < n),
    R = triu(Q^H a), equal to NumPy's R up to rounding.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> q, r = dnp.linalg.qr(np.array([[3.0, 1.0], [4.0, 2.0]]))
        >>> np.allclose(q @ r, [[3.0, 1.0], [4.0, 2.0]])
        True
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.linalg.qr(a, mode=mode)
    if mode not in ("reduced", "complete", "r"):
        raise NotImplementedError(f"qr(mode={mode!r}) of a traced value is not supported; "
                                  "use 'reduced', 'complete' or 'r'")
    a = _at_least_2d(a)
    m, n = a.shape[-2:]
    if mode == "complete" and m > n:
        raise NotImplementedError("qr(mode='complete') of a traced tall matrix is not "
                                  "supported (the completed basis has no unique derivative); "
                                  "use mode='reduced'")
    if m >= n:
        q, r = bind(P.qr, a)
    else:
        # Householder QR's Q comes from the first m columns; R is then Q^H a, upper triangular.
        q, _ = bind(P.qr, a[..., :, :m])
        r = matmul(_mH(q), a) * np.triu(np.ones((m, n), dtype=a.dtype))
    return r if mode == "r" else QRResult(q, r)


_NOVALUE = object()


@implements(np.linalg.pinv)
def pinv(a: Any, rcond: Any = None, hermitian: bool = False, *, rtol: Any = _NOVALUE) -> Any:
    """``np.linalg.pinv``: the Moore-Penrose pseudo-inverse.

    The derivative (Golub & Pereyra) holds where the rank is locally constant, e.g. at full
    rank; ``rcond``/``rtol`` must be scalars on traced values.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> dnp.linalg.pinv(np.array([[2.0], [0.0]]))
        array([[0.5, 0. ]])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        if rtol is _NOVALUE:
            return np.linalg.pinv(a, rcond=rcond, hermitian=hermitian)
        return np.linalg.pinv(a, rcond=rcond, hermitian=hermitian, rtol=rtol)
    a = _at_least_2d(a)
    # NumPy's defaults, resolved to one scalar (params must be hashable).
    if rcond is None:
        if rtol is _NOVALUE:
            rcond = 1e-15
        elif rtol is None:
            rcond = max(a.shape[-2:]) * np.finfo(a.dtype).eps
        else:
            rcond = rtol
    elif rtol is not _NOVALUE:
        raise ValueError("`rtol` and `rcond` can't be both set.")
    if np.ndim(rcond) != 0:
        raise NotImplementedError("pinv of a traced value needs a scalar rcond/rtol")
    if hermitian:
        # NumPy's hermitian path reads the lower triangle; the general one gives its value.
        a = _symmetric_from(_square(a), "L")
    return bind(P.pinv, a, rcond=float(rcond))


# -- norms -------------------------------------------------------------------------------

def _root(s: Any, p: float) -> Any:
    """s ** (1/p) for s >= 0, with derivative 0 (not NaN or inf) where s == 0."""
    zero = s == 0
    safe = where(zero, 1.0, s)
    return where(zero, 0.0, sqrt(safe) if p == 2 else safe ** (1.0 / p))


def _abs2(x: Any) -> Any:
    """|x|², real: x * x, or Re(x)² + Im(x)² for complex x (smooth, also at 0)."""
    if _complex(x):
        re, im = real(x), imag(x)
        return re * re + im * im
    return x * x


def _vector_norm(x: Any, ord: Any, axis: tuple, keepdims: bool) -> Any:
    if ord is None or ord == 2:
        return _root(asum(_abs2(x), axis, keepdims=keepdims), 2)
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    if ord == np.inf:
        return amax(absolute(x), axis, keepdims)
    if ord == -np.inf:
        return amin(absolute(x), axis, keepdims)
    if ord == 0:
        # The number of nonzero entries: piecewise constant, no derivative.
        dtype = np.finfo(x.dtype).dtype
        return asum(astype(x != 0, dtype), axis, keepdims=keepdims)
    if ord == 1:
        return asum(absolute(x), axis, keepdims=keepdims)
    return _root(asum(absolute(x) ** ord, axis, keepdims=keepdims), ord)


def _matrix_norm(x: Any, ord: Any, row: int, col: int, keepdims: bool) -> Any:
    if row == col:
        raise ValueError("Duplicate axes given.")
    if ord in (2, -2, "nuc"):
        rest = [i for i in range(x.ndim) if i not in (row, col)]
        s = bind(P.svd, transpose(x, rest + [row, col]))[1]
        ret = amax(s, -1) if ord == 2 else amin(s, -1) if ord == -2 else asum(s, -1)
    elif ord in (1, -1):
        pick = amax if ord == 1 else amin
        ret = pick(asum(absolute(x), row), col - 1 if col > row else col)
    elif ord in (np.inf, -np.inf):
        pick = amax if ord == np.inf else amin
        ret = pick(asum(absolute(x), col), row - 1 if row > col else row)
    elif ord in (None, "fro", "f"):
        ret = _root(asum(_abs2(x), (row, col)), 2)
    else:
        raise ValueError("Invalid norm order for matrices.")
    if keepdims:
        shape = list(x.shape)
        shape[row] = shape[col] = 1
        ret = reshape(ret, tuple(shape))
    return ret


@implements(np.linalg.norm)
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.linalg.norm``: vector norms (ord None/2, 1, inf, -inf, 0, any p) over one axis,
    matrix norms ('fro', 'nuc', 1, -1, 2, -2, inf, -inf) over two.

    The gradient of the 2-norm, the p-norms and the Frobenius norm at zero is 0 (the
    subgradient of minimum norm), not NaN; ``ord=0`` counts entries and has no derivative.
    Ties in max/min-based norms (inf, 1 for matrices, 2) share the derivative evenly.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(dnp.linalg.norm)(np.array([3.0, 4.0]))
        array([0.6, 0.8])
        >>> dp.grad(dnp.linalg.norm)(np.zeros(2))
        array([0., 0.])
    """
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
    x = _float(x)
    nd = x.ndim
    if axis is None:
        if ord is None or (ord in ("f", "fro") and nd == 2) or (ord == 2 and nd == 1):
            ret = _root(asum(_abs2(x)), 2)
            return reshape(ret, (1,) * nd) if keepdims else ret
        axes = tuple(range(nd))
    elif isinstance(axis, tuple):
        axes = axis
    else:
        axes = (operator.index(axis),)
    if len(axes) == 1:
        return _vector_norm(x, ord, _axes(axes, nd), bool(keepdims))
    if len(axes) == 2:
        row, col = (_axes(a, nd)[0] for a in axes)
        return _matrix_norm(x, ord, row, col, bool(keepdims))
    raise ValueError("Improper number of dimensions to norm.")


@implements(np.linalg.matrix_norm)
def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    """``np.linalg.matrix_norm``: ``norm`` over the last two axes."""
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.linalg.matrix_norm(x, keepdims=keepdims, ord=ord)
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


@implements(np.linalg.vector_norm)
def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    """``np.linalg.vector_norm``: a vector norm over ``axis`` (all axes, or several, flattened
    into one vector)."""
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)
    x = _float(x)
    shape = x.shape
    if axis is None:
        flat, axes = reshape(x, (-1,)), tuple(range(x.ndim))
    elif isinstance(axis, tuple):
        axes = _axes(axis, x.ndim)
        order = tuple(_axes(a, x.ndim)[0] for a in axis)
        rest = tuple(i for i in range(x.ndim) if i not in axes)
        flat = reshape(transpose(x, order + rest),
                       (int(np.prod([shape[i] for i in axes], dtype=np.int64)),)
                       + tuple(shape[i] for i in rest))
    else:
        axes = _axes(axis, x.ndim)
        flat = x
    ret = _vector_norm(flat, ord, (axes[0] if flat is x else 0,), False)
    if keepdims:
        ret = reshape(ret, tuple(1 if i in axes else d for i, d in enumerate(shape)))
    return ret


# -- products and powers -------------------------------------------------------------------

@implements(np.linalg.matrix_power)
def matrix_power(a: Any, n: int) -> Any:
    """``np.linalg.matrix_power``: a^n by repeated squaring (n < 0 inverts first; n = 0 gives
    identities, a constant with zero derivative).

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(lambda a: dnp.sum(dnp.linalg.matrix_power(a, 2)))(np.eye(2))
        array([[2., 2.],
               [2., 2.]])
    """
    if not isinstance(a, Tracer) and not isinstance(a := as_operand(a), Tracer):
        return np.linalg.matrix_power(a, n)
    n = operator.index(n)
    a = _square(a)
    if n == 0:
        return np.broadcast_to(np.eye(a.shape[-1], dtype=a.dtype), a.shape).copy()
    if n < 0:
        a, n = inv(a), -n
    # NumPy's order of products, so the values agree to the last bit.
    if n == 1:
        return a
    if n == 2:
        return matmul(a, a)
    if n == 3:
        return matmul(matmul(a, a), a)
    z = result = None
    while n > 0:
        z = a if z is None else matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else matmul(result, z)
    return result


@implements(np.linalg.multi_dot)
def multi_dot(arrays: Any, *, out: Any = None) -> Any:
    """``np.linalg.multi_dot``: the product of a sequence of matrices (the first and last may be
    vectors), evaluated left to right on traced values."""
    arrays = list(arrays)
    if not _any_traced(*arrays):
        return np.linalg.multi_dot(arrays, out=out)
    if out is not None:
        raise TypeError("multi_dot(..., out=...) is not supported on traced values")
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    result = arrays[0]
    for x in arrays[1:]:
        result = matmul(result, x)
    return result


@implements(np.linalg.matrix_transpose)
def matrix_transpose(x: Any, /) -> Any:
    """``np.linalg.matrix_transpose``: swap the last two axes."""
    if not isinstance(x, Tracer) and not isinstance(x := as_operand(x), Tracer):
        return np.linalg.matrix_transpose(x)
    return _mT(_at_least_2d(x))


# -- least squares, condition number, rank ---------------------------------------------------

LstsqResult = namedtuple("LstsqResult", ["x", "residuals", "rank", "s"])


@implements(np.linalg.lstsq)
def lstsq(a: Any, b: Any, rcond: Any = None) -> tuple:
    """The least-squares solution of ``a x = b`` (NumPy's ``lstsq``): ``(x, residuals, rank,
    s)``. ``x = pinv(a) @ b`` is differentiable where the rank is locally constant;
    ``residuals`` (the squared norms of ``b - a x`` per column, empty unless ``a`` has full
    column rank and more rows than columns) too; ``rank`` and ``s`` as NumPy gives them.

    Example:
        >>> a = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
        >>> lstsq(a, np.array([1.0, 2.0, 2.0]))[0].round(12)
        array([1.16666667, 0.5       ])
    """
    if not _any_traced(a, b):
        return np.linalg.lstsq(a, b, rcond=rcond)
    a, b = _as_array(a), _as_array(b)
    m, n = a.shape[-2:]
    s = svd(a, compute_uv=False)
    cutoff = (np.finfo(np.result_type(a.dtype, np.float64)).eps * max(m, n)
              if rcond is None else rcond)
    rank = matrix_rank(a, tol=amax(s) * cutoff)
    x = matmul(pinv(a, rcond=cutoff), b)
    # The rank is concrete under eager transforms (it has no derivative); under jit it is not
    # known, and full column rank is assumed for the shape of the residuals.
    full_rank = isinstance(rank, Tracer) or int(rank) == n
    if full_rank and m > n:
        r = b - matmul(a, x)
        residuals = asum(_abs2(r), axis=0)
        if b.ndim == 1:
            residuals = reshape(residuals, (1,))
    else:
        residuals = np.empty((0,), np.result_type(a.dtype, b.dtype))
    return LstsqResult(x, residuals, astype(rank, np.int32), s)  # LAPACK's int32, as NumPy


@implements(np.linalg.matrix_rank)
def matrix_rank(A: Any, tol: Any = None, hermitian: bool = False, *, rtol: Any = None) -> Any:
    """The number of singular values above the tolerance (NumPy's ``matrix_rank``): an
    integer, no derivative.

    Example:
        >>> int(matrix_rank(np.array([[1.0, 2.0], [2.0, 4.0]])))
        1
    """
    if not _any_traced(A, tol, rtol):
        return np.linalg.matrix_rank(A, tol=tol, hermitian=hermitian, rtol=rtol)
    A = _as_array(A)
    if A.ndim < 2:
        return asum(astype(A != 0, np.intp))
    s = svd(A, compute_uv=False)
    if s.shape[-1] == 0:  # no singular values: rank 0, as NumPy gives it
        return np.zeros(s.shape[:-1], np.intp)[()]
    if tol is None:
        if rtol is None:
            rtol = max(A.shape[-2:]) * np.finfo(np.result_type(A.dtype, np.float64)).eps
        tol = amax(s, axis=-1, keepdims=True) * rtol
    elif np.ndim(tol):
        tol = reshape(_as_array(tol), np.shape(tol) + (1,))
    return asum(astype(s > tol, np.intp), axis=-1)


@implements(np.linalg.cond)
def cond(x: Any, p: Any = None) -> Any:
    """The condition number of ``x`` in the norm ``p`` (NumPy's ``cond``): the ratio of the
    extreme singular values for ``p`` in (None, 2, -2), else ``norm(x, p) * norm(inv(x), p)``.

    Example:
        >>> float(cond(np.array([[2.0, 0.0], [0.0, 0.5]])))
        4.0
    """
    if not _any_traced(x):
        return np.linalg.cond(x, p)
    x = _as_array(x)
    if p is None or p in (2, -2):
        s = svd(x, compute_uv=False)
        big, small = amax(s, axis=-1), amin(s, axis=-1)
        return small / big if p == -2 else big / small
    return norm(x, p, axis=(-2, -1)) * norm(inv(x), p, axis=(-2, -1))
