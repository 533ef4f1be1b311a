"""``diffprog.scipy.linalg``: SciPy's linear algebra, with SciPy's defaults, on traced values.

SciPy's defaults differ from NumPy's: ``cholesky`` and ``cho_factor`` return the *upper* factor
and read the upper triangle (``lower=False``), ``solve_triangular`` reads the upper triangle,
``solve(assume_a='sym'|'her'|'pos')`` reads the upper triangle, and ``eigh`` reads the lower
one. Untraced arguments go straight to SciPy; traced ones are differentiated (any order, both
modes, under jit) with the same triangle conventions as :mod:`diffprog.numpy.linalg`: a
function that reads one triangle has its gradient in that triangle. Complex matrices work as
in :mod:`diffprog.numpy.linalg` (JAX's convention for derivatives): ``cholesky``,
``cho_factor``/``cho_solve``, ``eigh`` and ``solve(assume_a='her'|'pos')`` take the matrix as
Hermitian, ``solve(assume_a='sym')`` as complex symmetric, as SciPy does.

* ``lu_factor`` is a primitive whose ``lu`` output is differentiable (A = P L U gives
  d(lu) = L tril(X, -1) + triu(X) U with X = L^-1 P^T dA U^-1); ``piv`` is not. ``lu_solve``
  then applies the permutation and two triangular solves with diffprog operations, so
  ``lu_solve(lu_factor(a), b)`` is differentiated in ``a`` (through the factors) and ``b``,
  like ``solve(a, b)``.
* ``expm`` runs SciPy's ``expm`` (scaling and squaring, Padé) and its derivative is the Fréchet
  derivative from the block-matrix identity expm([[A, E], [0, A]]) = [[e^A, L(A, E)],
  [0, e^A]]; the reverse rule is L(A^T, G). Both use ``expm`` itself, so every order works.
* ``sqrtm`` runs SciPy's ``sqrtm`` (the general real case: no negative real eigenvalues); its
  derivative solves the Sylvester equation X dX + dX X = dA (a primitive, ``solve_sylvester``,
  with its own rules). A real matrix without a real square root raises ``ValueError`` when
  traced.

Example:
    >>> import numpy as np, diffprog as dp
    >>> from diffprog.scipy import linalg
    >>> a = np.array([[4.0, 2.0], [2.0, 3.0]])
    >>> linalg.cholesky(a)  # the upper factor, as scipy.linalg.cholesky
    array([[2.        , 1.        ],
           [0.        , 1.41421356]])
    >>> g = dp.grad(lambda a: linalg.lu_solve(linalg.lu_factor(a), np.ones(2)).sum())(a)
    >>> bool(np.allclose(g, dp.grad(lambda a: np.linalg.solve(a, np.ones(2)).sum())(a)))
    True
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.linalg as _sl

from .. import numpy as dnp
from ..core import Primitive, ShapedArray, Tracer, bind
from ..prims.shape import axis_batch_rule

__all__ = ["cholesky", "cho_factor", "cho_solve", "solve_triangular", "solve", "lu_factor",
           "lu_solve", "expm", "inv", "det", "eigh", "block_diag", "sqrtm", "solve_sylvester",
           "LinAlgError"]

LinAlgError = np.linalg.LinAlgError


def _traced(*xs: Any) -> bool:
    return any(isinstance(x, Tracer) for x in xs)


def _float(x: Any) -> Any:
    """``x`` as an array with a float or complex dtype (SciPy computes integers in float64)."""
    x = x if isinstance(x, Tracer) else np.asarray(x)
    return x if np.dtype(x.dtype).kind in "fc" else dnp.astype(x, np.float64)


def _complex(x: Any) -> bool:
    return np.dtype(x.dtype).kind == "c"


def _square(a: Any, name: str) -> Any:
    a = _float(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name}: expected a square matrix (or a stack of them), got shape "
                         f"{a.shape}")
    return a


def _mT(a: Any) -> Any:
    return dnp.swapaxes(a, -1, -2)


def _mH(a: Any) -> Any:
    return dnp.conj(_mT(a)) if _complex(a) else _mT(a)


@functools.lru_cache(maxsize=128)
def _mask(n: int, k: int, lower: bool, dtype: Any) -> np.ndarray:
    """Ones on the lower (``lower``) triangle from diagonal k on (tril/triu(ones, k))."""
    ones = np.ones((n, n), dtype=dtype)
    out = np.tril(ones, k) if lower else np.triu(ones, k)
    out.flags.writeable = False
    return out


def _eye(n: int, dtype: Any) -> np.ndarray:
    return _mask(n, 0, True, dtype) * _mask(n, 0, False, dtype)


def _aval(shape: tuple, dtype: Any) -> ShapedArray:
    return ShapedArray(tuple(shape), np.dtype(dtype))


# -- Cholesky --------------------------------------------------------------------------------

def cholesky(a: Any, lower: bool = False, overwrite_a: bool = False,
             check_finite: bool = True) -> Any:
    """``scipy.linalg.cholesky``: the upper factor U with a = U^H U (``lower=False``, reading
    the upper triangle), or the lower one L with a = L L^H (reading the lower triangle).

    Example:
        >>> import numpy as np
        >>> cholesky(np.array([[4.0, 2.0], [2.0, 2.0]]), lower=True)
        array([[2., 0.],
               [1., 1.]])
    """
    if not _traced(a):
        return _sl.cholesky(a, lower=lower, overwrite_a=overwrite_a, check_finite=check_finite)
    return dnp.linalg.cholesky(_square(a, "cholesky"), upper=not lower)


def cho_factor(a: Any, lower: bool = False, overwrite_a: bool = False,
               check_finite: bool = True) -> tuple[Any, bool]:
    """``scipy.linalg.cho_factor``: ``(c, lower)`` for :func:`cho_solve`. As in SciPy, the
    triangle of ``c`` not holding the factor holds the entries of ``a`` there.

    Example:
        >>> import numpy as np
        >>> c, low = cho_factor(np.array([[4.0, 2.0], [2.0, 2.0]]))
        >>> c, low
        (array([[2., 1.],
               [2., 1.]]), False)
    """
    if not _traced(a):
        return _sl.cho_factor(a, lower=lower, overwrite_a=overwrite_a,
                              check_finite=check_finite)
    a = _square(a, "cho_factor")
    n = a.shape[-1]
    factor = cholesky(a, lower=lower)
    # the other (strict) triangle keeps a's entries, as LAPACK leaves them
    return factor + a * _mask(n, 1 if lower else -1, not lower, a.dtype), bool(lower)


def cho_solve(c_and_lower: tuple[Any, bool], b: Any, overwrite_b: bool = False,
              check_finite: bool = True) -> Any:
    """``scipy.linalg.cho_solve``: x with a x = b from ``cho_factor(a)``; only the factor's
    triangle of ``c`` is read (so the gradient reaches ``a`` through the factorization).

    Example:
        >>> import numpy as np
        >>> a = np.array([[4.0, 2.0], [2.0, 2.0]])
        >>> cho_solve(cho_factor(a), np.array([6.0, 4.0]))
        array([1., 1.])
    """
    c, lower = c_and_lower
    if not _traced(c, b):
        return _sl.cho_solve((c, lower), b, overwrite_b=overwrite_b, check_finite=check_finite)
    c = _square(c, "cho_solve")
    b = _float(b)
    if lower:   # a = L L^H
        y = dnp.linalg.solve_triangular(c, b, lower=True)
        return dnp.linalg.solve_triangular(c, y, lower=True, trans=2)
    y = dnp.linalg.solve_triangular(c, b, lower=False, trans=2)  # a = U^H U
    return dnp.linalg.solve_triangular(c, y, lower=False)


# -- solves ----------------------------------------------------------------------------------

def solve_triangular(a: Any, b: Any, trans: int | str = 0, lower: bool = False,
                     unit_diagonal: bool = False, overwrite_b: bool = False,
                     check_finite: bool = True) -> Any:
    """``scipy.linalg.solve_triangular``: op(a) x = b reading the upper triangle by default;
    ``unit_diagonal=True`` takes the diagonal as ones (it is not read, no gradient there).

    Example:
        >>> import numpy as np
        >>> solve_triangular(np.array([[2.0, 1.0], [9.0, 1.0]]), np.array([3.0, 1.0]))
        array([1., 1.])
    """
    if not _traced(a, b):
        return _sl.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit_diagonal,
                                    overwrite_b=overwrite_b, check_finite=check_finite)
    a = _square(a, "solve_triangular")
    if unit_diagonal:
        n = a.shape[-1]
        eye = _eye(n, a.dtype)
        a = a * (1 - eye) + eye
    return dnp.linalg.solve_triangular(a, _float(b), lower=bool(lower), trans=trans)


_GENERAL = ("gen", "general")
_SYMMETRIC = ("sym", "symmetric", "her", "hermitian", "pos", "positive definite")


def solve(a: Any, b: Any, lower: bool = False, overwrite_a: bool = False,
          overwrite_b: bool = False, check_finite: bool = True, assume_a: str | None = None,
          transposed: bool = False) -> Any:
    """``scipy.linalg.solve``: x with a x = b (a^T x = b with ``transposed=True``).

    ``assume_a``: 'gen' (default) reads all of ``a``; 'sym', 'her', 'pos' (and their long
    names) read the upper triangle (the lower with ``lower=True``) as SciPy does; 'diagonal',
    'upper triangular' and 'lower triangular' read only that part. The traced solve is an LU
    solve of the matrix read (the same x up to rounding). ``b`` is a vector when 1-D.

    Example:
        >>> import numpy as np
        >>> solve(np.array([[2.0, 1.0], [9.0, 3.0]]), np.array([3.0, 4.0]), assume_a="sym")
        array([1., 1.])
    """
    if not _traced(a, b):
        return _sl.solve(a, b, lower=lower, overwrite_a=overwrite_a, overwrite_b=overwrite_b,
                         check_finite=check_finite, assume_a=assume_a, transposed=transposed)
    kind = "gen" if assume_a is None else assume_a
    a = _square(a, "solve")
    b = _float(b)
    n = a.shape[-1]
    if kind in ("upper triangular", "lower triangular"):
        return dnp.linalg.solve_triangular(a, b, lower=kind.startswith("lower"),
                                           trans=1 if transposed else 0)
    if kind in _SYMMETRIC:
        # 'sym' is complex symmetric (a^T = a); 'her' and 'pos' Hermitian, as in LAPACK
        hermitian = _complex(a) and kind not in ("sym", "symmetric")
        a = dnp.where(_mask(n, 0, bool(lower), bool), a, _mH(a) if hermitian else _mT(a))
        if hermitian:  # LAPACK takes the diagonal's real part
            a = (a + _mH(a)) * 0.5
    elif kind == "diagonal":
        a = a * _eye(n, a.dtype)
    elif kind not in _GENERAL:
        raise NotImplementedError(f"solve(assume_a={assume_a!r}) of traced values is not "
                                  "supported; use 'gen', 'sym', 'her', 'pos', 'diagonal' or "
                                  "a triangular kind")
    return dnp.linalg.solve(_mT(a) if transposed else a, b)


# -- LU ----------------------------------------------------------------------------------------

def _lu_impl(a):
    lu, piv = _sl.lu_factor(a)
    return lu.astype(a.dtype, copy=False), piv


def _piv_perm_impl(piv, n, dtype):
    """P with a = P L U from LAPACK's interchanges (row i swapped with row piv[i], in turn)."""
    piv = np.asarray(piv)
    out = np.empty(piv.shape[:-1] + (n, n), dtype=dtype)
    for idx in np.ndindex(*piv.shape[:-1]):
        perm = np.arange(n)
        for i, j in enumerate(piv[idx]):
            perm[i], perm[j] = perm[j], perm[i]
        out[idx] = np.eye(n, dtype=dtype)[perm].T  # P^T a = a[perm]
    return out


# SciPy's matrix functions used here (and the loops of _batched) take leading batch axes, so
# under vmap the batch axis goes to the front and the primitive runs once.
_piv_perm = Primitive("scipy_lu_perm", _piv_perm_impl, differentiable=False,
                      batch=axis_batch_rule(lambda: _piv_perm),
                      abstract=lambda piv, n, dtype: _aval(piv.shape[:-1] + (n, n), dtype))


def _lu_factors(lu):
    n = lu.shape[-1]
    low = lu * _mask(n, -1, True, lu.dtype) + _eye(n, lu.dtype)
    return low, lu * _mask(n, 0, False, lu.dtype)


def _perm(piv, n, dtype):
    if isinstance(piv, Tracer):
        return bind(_piv_perm, piv, n=n, dtype=np.dtype(dtype))
    return _piv_perm_impl(piv, n, dtype)


def _lu_jvp(t, out, a):
    # a = P L U: X = L^-1 P^T da U^-1, dL = L tril(X, -1), dU = triu(X) U (packed together)
    lu, piv = out
    n = a.shape[-1]
    low, up = _lu_factors(lu)
    p = _perm(piv, n, a.dtype)
    y = dnp.linalg.solve_triangular(low, _mT(p) @ t, lower=True)
    x = _mT(dnp.linalg.solve_triangular(up, _mT(y), lower=False, trans=1))
    return (low @ (x * _mask(n, -1, True, a.dtype)) + (x * _mask(n, 0, False, a.dtype)) @ up,
            None)


def _lu_vjp(ct, out, a):
    # the adjoint of the jvp: ā = P L^-T (tril(L^T C, -1) + triu(C U^T)) U^-T
    lu, piv = out
    c = ct[0]
    n = a.shape[-1]
    low, up = _lu_factors(lu)
    p = _perm(piv, n, a.dtype)
    y = (_mT(low) @ c) * _mask(n, -1, True, a.dtype) + (c @ _mT(up)) * _mask(n, 0, False,
                                                                               a.dtype)
    z = dnp.linalg.solve_triangular(low, y, lower=True, trans=1)
    return p @ _mT(dnp.linalg.solve_triangular(up, _mT(z), lower=False))


_lu = Primitive("scipy_lu_factor", _lu_impl, multiple_results=True,
                batch=axis_batch_rule(lambda: _lu, multiple_results=True),
                abstract=lambda a: (_aval(a.shape, a.dtype), _aval(a.shape[:-1], np.int32)),
                jvp=(_lu_jvp,), vjp=(_lu_vjp,))


def lu_factor(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> tuple[Any, Any]:
    """``scipy.linalg.lu_factor``: ``(lu, piv)`` with a = P L U, L unit lower triangular and U
    upper triangular packed in ``lu``, ``piv`` LAPACK's 0-based row interchanges.

    Traced, ``lu`` is differentiable in ``a`` (``piv`` is piecewise constant), so
    ``lu_solve(lu_factor(a), b)`` has the derivative of ``solve(a, b)`` in ``a`` and ``b``.

    Example:
        >>> import numpy as np
        >>> lu, piv = lu_factor(np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> lu, piv
        (array([[3.        , 4.        ],
               [0.33333333, 0.66666667]]), array([1, 1], dtype=int32))
    """
    if not _traced(a):
        return _sl.lu_factor(a, overwrite_a=overwrite_a, check_finite=check_finite)
    lu, piv = bind(_lu, _square(a, "lu_factor"))
    return lu, piv


def lu_solve(lu_and_piv: tuple[Any, Any], b: Any, trans: int = 0, overwrite_b: bool = False,
             check_finite: bool = True) -> Any:
    """``scipy.linalg.lu_solve``: x with a x = b (``trans=0``), a^T x = b (1) or a^H x = b (2)
    from ``lu_factor(a)``; differentiable in ``lu`` (hence in ``a``) and ``b``.

    Example:
        >>> import numpy as np
        >>> a = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> lu_solve(lu_factor(a), np.array([3.0, 7.0]))
        array([1., 1.])
    """
    lu, piv = lu_and_piv
    if not _traced(lu, piv, b):
        return _sl.lu_solve((lu, piv), b, trans=trans, overwrite_b=overwrite_b,
                            check_finite=check_finite)
    if trans not in (0, 1, 2):
        raise ValueError(f"lu_solve: trans must be 0, 1 or 2, got {trans!r}")
    lu = _square(lu, "lu_solve")
    b = _float(b)
    n = lu.shape[-1]
    vector = b.ndim == 1
    if vector:
        b = dnp.reshape(b, (n, 1))
    low, up = _lu_factors(lu)
    p = _perm(piv, n, lu.dtype)
    if trans == 0:   # x = U^-1 L^-1 P^T b
        y = dnp.linalg.solve_triangular(low, _mT(p) @ b, lower=True)
        x = dnp.linalg.solve_triangular(up, y, lower=False)
    else:            # a^T = U^T L^T P^T: x = P L^-T U^-T b (^H for trans=2)
        y = dnp.linalg.solve_triangular(up, b, lower=False, trans=trans)
        x = p @ dnp.linalg.solve_triangular(low, y, lower=True, trans=trans)
    return dnp.reshape(x, (n,)) if vector else x


# -- matrix functions --------------------------------------------------------------------------

def _expm_impl(a):
    return np.asarray(_sl.expm(a), dtype=a.dtype)


def _block_upper(a, e):
    """[[a, e], [0, a]] for stacks of n x n matrices."""
    zero = a * 0.0
    return dnp.concatenate([dnp.concatenate([a, e], axis=-1),
                            dnp.concatenate([zero, a], axis=-1)], axis=-2)


def _frechet(a, e):
    """L(a, e), the Fréchet derivative of expm at a in direction e (Najfeld & Havel)."""
    n = a.shape[-1]
    return bind(_expm, _block_upper(a, e))[..., :n, n:]


_expm = Primitive("scipy_expm", _expm_impl, batch=axis_batch_rule(lambda: _expm),
                  abstract=lambda a: _aval(a.shape, a.dtype),
                  jvp=(lambda t, out, a: _frechet(a, t),),
                  vjp=(lambda ct, out, a: _frechet(_mT(a), ct),))


def expm(A: Any) -> Any:
    """``scipy.linalg.expm``: the matrix exponential (of each matrix of a stack), by SciPy's
    scaling and squaring; derivatives by the Fréchet derivative (block-matrix identity).

    Example:
        >>> import numpy as np, diffprog as dp
        >>> float(expm(np.array([[0.0, 1.0], [0.0, 0.0]]))[0, 1])
        1.0
        >>> dp.grad(lambda a: expm(a)[0, 0])(np.zeros((2, 2)))
        array([[1., 0.],
               [0., 0.]])
    """
    if not _traced(A):
        return _sl.expm(A)
    return bind(_expm, _square(A, "expm"))


def _batched(fn, *xs):
    """``fn`` on each matrix of stacks ``xs`` (SciPy's Sylvester solver takes 2-D only)."""
    shape = np.broadcast_shapes(*(x.shape[:-2] for x in xs))
    if not shape:
        return fn(*xs)
    xs = [np.broadcast_to(x, shape + x.shape[-2:]) for x in xs]
    return np.stack([fn(*(x[i] for x in xs)) for i in np.ndindex(*shape)]).reshape(
        shape + xs[-1].shape[-2:])


def _sylvester_impl(a, b, q):
    dtype = np.result_type(a, b, q)
    return np.asarray(_batched(_sl.solve_sylvester, a, b, q), dtype=dtype)


def _sylvester_jvp(tangents, out, a, b, q):
    # a dx + dx b = dq - da x - x db
    ta, tb, tq = tangents
    rhs = 0.0 if tq is None else tq
    if ta is not None:
        rhs = rhs - ta @ out
    if tb is not None:
        rhs = rhs - out @ tb
    return solve_sylvester(a, b, rhs + out * 0.0)


def _sylvester_vjp(ct, out, a, b, q):
    qbar = solve_sylvester(_mT(a), _mT(b), ct)
    return -qbar @ _mT(out), -_mT(out) @ qbar, qbar


_sylvester = Primitive(
    "scipy_solve_sylvester", _sylvester_impl, batch=axis_batch_rule(lambda: _sylvester),
    abstract=lambda a, b, q: _aval(np.broadcast_shapes(a.shape[:-2], b.shape[:-2],
                                                       q.shape[:-2]) + tuple(q.shape[-2:]),
                                   np.result_type(a.dtype, b.dtype, q.dtype)),
    jvp=_sylvester_jvp, vjp=_sylvester_vjp)


def solve_sylvester(a: Any, b: Any, q: Any) -> Any:
    """``scipy.linalg.solve_sylvester``: x with a x + x b = q, differentiable in all three.

    Example:
        >>> import numpy as np
        >>> solve_sylvester(np.eye(2), np.eye(2), np.eye(2))
        array([[0.5, 0. ],
               [0. , 0.5]])
    """
    if not _traced(a, b, q):
        return _sl.solve_sylvester(a, b, q)
    return bind(_sylvester, _square(a, "solve_sylvester"), _square(b, "solve_sylvester"),
                _float(q))


def _sqrtm_impl(a):
    out = _batched(_sl.sqrtm, a)
    if np.iscomplexobj(out):
        raise ValueError("sqrtm: this real matrix has no real square root (it has negative "
                         "real eigenvalues); traced sqrtm supports real square roots only")
    return np.asarray(out, dtype=a.dtype)


_sqrtm = Primitive(
    "scipy_sqrtm", _sqrtm_impl, batch=axis_batch_rule(lambda: _sqrtm),
    abstract=lambda a: _aval(a.shape, a.dtype),
    # X dX + dX X = dA; the adjoint solves X^T Ā + Ā X^T = G
    jvp=(lambda t, out, a: solve_sylvester(out, out, t),),
    vjp=(lambda ct, out, a: solve_sylvester(_mT(out), _mT(out), ct),))


def sqrtm(A: Any, disp: Any = None, blocksize: Any = None) -> Any:
    """``scipy.linalg.sqrtm``: the principal square root X (X @ X = A).

    Traced, ``A`` must have a real principal square root (no eigenvalue on the closed negative
    real axis; symmetric positive definite matrices qualify), else ``ValueError``. The
    derivative solves X dX + dX X = dA (it exists where A is nonsingular).

    Example:
        >>> import numpy as np, diffprog as dp
        >>> sqrtm(np.array([[4.0, 0.0], [0.0, 9.0]]))
        array([[2., 0.],
               [0., 3.]])
        >>> dp.grad(lambda a: sqrtm(a)[0, 0])(np.array([[4.0, 0.0], [0.0, 9.0]]))
        array([[0.25, 0.  ],
               [0.  , 0.  ]])
    """
    if not _traced(A):
        return _sl.sqrtm(A)
    return bind(_sqrtm, _square(A, "sqrtm"))


# -- the rest ----------------------------------------------------------------------------------

def inv(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    """``scipy.linalg.inv``.

    Example:
        >>> import numpy as np
        >>> inv(np.array([[2.0, 0.0], [0.0, 4.0]])) + 0.0  # (+ 0.0: no -0.0 to print)
        array([[0.5 , 0.  ],
               [0.  , 0.25]])
    """
    if not _traced(a):
        return _sl.inv(a, overwrite_a=overwrite_a, check_finite=check_finite)
    return dnp.linalg.inv(_square(a, "inv"))


def det(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    """``scipy.linalg.det``.

    Example:
        >>> import numpy as np
        >>> float(det(np.array([[2.0, 1.0], [1.0, 3.0]])))
        5.0
    """
    if not _traced(a):
        return _sl.det(a, overwrite_a=overwrite_a, check_finite=check_finite)
    return dnp.linalg.det(_square(a, "det"))


def eigh(a: Any, b: Any = None, *, lower: bool = True, eigvals_only: bool = False,
         overwrite_a: bool = False, overwrite_b: bool = False, type: int = 1,
         check_finite: bool = True, subset_by_index: Any = None, subset_by_value: Any = None,
         driver: str | None = None) -> Any:
    """``scipy.linalg.eigh`` (the standard problem): eigenvalues ascending, and eigenvectors,
    from the lower triangle (the upper with ``lower=False``). Traced values support neither
    ``b`` nor the subsets.

    Example:
        >>> import numpy as np
        >>> eigh(np.array([[2.0, 0.0], [0.0, 1.0]]), eigvals_only=True)
        array([1., 2.])
    """
    if not _traced(a, b):
        return _sl.eigh(a, b, lower=lower, eigvals_only=eigvals_only, overwrite_a=overwrite_a,
                        overwrite_b=overwrite_b, type=type, check_finite=check_finite,
                        subset_by_index=subset_by_index, subset_by_value=subset_by_value,
                        driver=driver)
    if b is not None or subset_by_index is not None or subset_by_value is not None:
        raise NotImplementedError("eigh of traced values: the generalized problem (b) and "
                                  "subset_by_index/subset_by_value are not supported")
    w, v = dnp.linalg.eigh(_square(a, "eigh"), UPLO="L" if lower else "U")
    return w if eigvals_only else (w, v)


def block_diag(*arrs: Any) -> Any:
    """``scipy.linalg.block_diag``: the arrays on the diagonal of a matrix (0-D and 1-D inputs
    are 1 x 1 and 1 x n rows, as in SciPy).

    Example:
        >>> import numpy as np
        >>> block_diag(np.array([[1.0]]), np.array([2.0, 3.0]))
        array([[1., 0., 0.],
               [0., 2., 3.]])
    """
    if not _traced(*arrs):
        return _sl.block_diag(*arrs)
    mats = []
    for x in arrs:
        x = x if isinstance(x, Tracer) else np.asarray(x)
        if x.ndim > 2:
            raise ValueError("arguments in the following positions have dimension greater "
                             "than 2: " + str([i for i, y in enumerate(arrs) if np.ndim(y) > 2]))
        mats.append(dnp.reshape(x, (1, -1) if x.ndim < 2 else x.shape))
    dtype = np.result_type(*(m.dtype for m in mats))
    cols = sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        r, c = m.shape
        pieces = [np.zeros((r, left), dtype), m, np.zeros((r, cols - left - c), dtype)]
        rows.append(dnp.concatenate([dnp.astype(p, dtype) for p in pieces], axis=1))
        left += c
    return dnp.concatenate(rows, axis=0)
