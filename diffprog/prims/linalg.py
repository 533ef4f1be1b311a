"""Linear algebra primitives: matmul, einsum, solves, determinants and decompositions.

Operands arrive normalized by :mod:`diffprog.numpy`: matrices are stacks ``(..., m, n)`` whose
traced batch dimensions already equal each other (and the output's), right-hand sides are
matrices ``(..., n, k)``, and the inputs of ``cholesky`` and ``eigh`` are symmetric (the NumPy
layer builds the symmetric matrix from the triangle NumPy reads). So the rules are the textbook
ones for real matrices, with ``^T`` the transpose of the last two axes:

* ``matmul``: bilinear, declared by its transposes ct @ y^T and x^T @ ct (``linear=(0, 1)``);
  the jvp dx @ y + x @ dy follows.
* ``einsum``: linear in each operand; its transpose is another einsum (see
  :func:`_einsum_transpose`), and its jvp the einsum with the tangent in the operand's place.
* ``solve`` (x = a^-1 b): dx = a^-1 (db - da x); cotangents b̄ = a^-T x̄ and ā = -b̄ x^T.
* ``solve_triangular``: the same, with da and ā masked to the triangle that is read.
* ``det``: d det = tr(adj(a) da), finite at singular a too; ``slogdet``: d log|det| =
  tr(a^-1 da), the sign is constant (see the determinants section for singular matrices).
* ``cholesky``, ``eigh``, ``svd``, ``qr``, ``pinv``: the formulas of Murray (2016), Giles (2008),
  Townsend (2016) and Golub & Pereyra (1973), written out at each rule.

The rules use diffprog operations (operators on values, these primitives), so they are traced
under outer transforms; arrays built with ``np.*`` inside rules are constants (identities,
triangle masks) that depend only on shapes.
"""

from __future__ import annotations

import functools
import string

import numpy as np

from ..core import Primitive, ShapedArray, bind
from . import elementwise as ew
from .shape import axis_batch_rule, batch_size, bring_front, reshape, to_front, transpose

__all__ = ["matmul", "mT", "einsum", "solve", "solve_triangular", "det", "slogdet",
           "cholesky", "eigh", "svd", "qr", "pinv"]


def mT(a):
    """Swap the last two axes (the matrix transpose of a stack of matrices)."""
    n = len(a.shape)
    return transpose(a, perm=tuple(range(n - 2)) + (n - 1, n - 2))


# -- constants: identities, ones and triangle masks, cached by shape and dtype -------------

def _constant(fn):
    """Cache a constant-array builder; the arrays are read-only so that sharing them is safe."""
    @functools.lru_cache(maxsize=256)
    def cached(*args):
        out = fn(*args)
        out.flags.writeable = False
        return out
    return cached


@_constant
def _eye(n: int, dtype) -> np.ndarray:
    return np.eye(n, dtype=dtype)


@_constant
def _ones(n: int, dtype) -> np.ndarray:
    return np.ones(n, dtype=dtype)


@_constant
def _tri_mask(n: int, lower: bool, dtype, k: int = 0) -> np.ndarray:
    """Ones on the lower (upper) triangle from the k-th sub- (super-) diagonal on."""
    ones = np.ones((n, n), dtype=dtype)
    return np.tril(ones, k) if lower else np.triu(ones, -k)


# -- shape rules (for jit: no decomposition runs on stand-in values at trace time) -----------

def _aval(shape, *dtypes):
    return ShapedArray(tuple(shape), np.result_type(*dtypes))


def _batch_shape(*xs) -> tuple:
    return np.broadcast_shapes(*(tuple(x.shape[:-2]) for x in xs))


def _matmul_shape(x, y):
    return _aval(_batch_shape(x, y) + (x.shape[-2], y.shape[-1]), x.dtype, y.dtype)


def _solve_shape(a, b, **params):
    return _aval(_batch_shape(a, b) + tuple(b.shape[-2:]), a.dtype, b.dtype)


def _einsum_shape(*operands, subscripts):
    inputs, output = _split(subscripts)
    sizes: dict[str, int] = {}
    for spec, op in zip(inputs, operands):
        sizes.update(zip(spec, op.shape))
    return _aval(tuple(sizes[c] for c in output), *(op.dtype for op in operands))


def _svd_shape(a):
    *batch, m, n = a.shape
    k = min(m, n)
    return (_aval((*batch, m, k), a.dtype), _aval((*batch, k), a.dtype),
            _aval((*batch, k, n), a.dtype))


def _qr_shape(a):
    *batch, m, n = a.shape
    k = min(m, n)
    return _aval((*batch, m, k), a.dtype), _aval((*batch, k, n), a.dtype)


def _matmul_batch(args, dims):
    x, y = args
    dx, dy = dims
    if dy is None and len(np.shape(x)) == 3 and len(np.shape(y)) == 2:
        # a batch of matrices times one matrix: one matmul of the stacked rows
        x = to_front(x, dx)
        size, m, n = x.shape
        out = matmul(reshape(x, shape=(size * m, n)), y)
        return reshape(out, shape=(size, m, out.shape[-1])), 0
    size = batch_size(args, dims)
    # the rules assume equal stack dimensions: the unbatched operand is broadcast
    x, y = bring_front(x, dx, size), bring_front(y, dy, size)
    r = max(len(x.shape), len(y.shape))
    x = reshape(x, shape=(size,) + (1,) * (r - len(x.shape)) + tuple(x.shape[1:])) \
        if len(x.shape) < r else x
    y = reshape(y, shape=(size,) + (1,) * (r - len(y.shape)) + tuple(y.shape[1:])) \
        if len(y.shape) < r else y
    return matmul(x, y), 0


matmul = Primitive(
    "matmul", np.matmul, abstract=_matmul_shape, batch=_matmul_batch,
    linear=(0, 1),
    transpose=(lambda ct, out, x, y: matmul(ct, mT(y)), lambda ct, out, x, y: matmul(mT(x), ct)))


# -- einsum ------------------------------------------------------------------------------------
#
# ``subscripts`` is explicit ("ab,bc->ac": no ellipsis, the output always given) and canonical:
# letters are renamed in order of first appearance, so equal contractions share one cache key.
# A label has one size across the operands (diffprog.numpy broadcasts size-1 axes first).

LETTERS = string.ascii_letters


@functools.lru_cache(maxsize=1024)
def _split(subscripts: str) -> tuple[tuple[str, ...], str]:
    inputs, output = subscripts.split("->")
    return tuple(inputs.split(",")), output


def canonical_subscripts(inputs, output: str) -> str:
    """``"ij,jk->ik"`` for the specs ``("ij", "jk")`` and ``"ik"``, letters renamed canonically.

    Example:
        >>> canonical_subscripts(("xy", "yz"), "xz")
        'ab,bc->ac'
    """
    names: dict[str, str] = {}
    for ch in "".join(inputs) + output:
        if ch not in names:
            names[ch] = LETTERS[len(names)]
    table = str.maketrans(names)
    return ",".join(inputs).translate(table) + "->" + output.translate(table)


# np.einsum without a contraction path is fastest for small problems (about 1.5 µs for two 3x3
# matrices against 8 µs with optimize=True) but loops over every label combination and never
# calls BLAS: for 200x200 matrices it is 5x slower. Choose by the size of that loop.
_OPTIMIZE_ABOVE = 1 << 15


@functools.lru_cache(maxsize=4096)
def _optimize(subscripts: str, shapes: tuple) -> bool:
    inputs, _ = _split(subscripts)
    sizes: dict[str, int] = {}
    for spec, shape in zip(inputs, shapes):
        sizes.update(zip(spec, shape))
    work = 1
    for d in sizes.values():
        work *= d
    return work > _OPTIMIZE_ABOVE or (len(inputs) > 2 and work > 64)


def _einsum_impl(*operands, subscripts):
    optimize = _optimize(subscripts, tuple(np.shape(op) for op in operands))
    return np.einsum(subscripts, *operands, optimize=optimize)


_canonical = functools.lru_cache(maxsize=1024)(canonical_subscripts)


def bind_einsum(inputs: tuple, output: str, *operands):
    """The einsum primitive on explicit specs (any letters), canonicalized."""
    return bind(einsum, *operands, subscripts=_canonical(inputs, output))


@functools.lru_cache(maxsize=4096)
def _einsum_vjp_plan(subscripts: str, k: int, shape: tuple) -> tuple[str, tuple]:
    """The subscripts of operand ``k``'s cotangent einsum, and the constants it appends."""
    inputs, output = _split(subscripts)
    spec = inputs[k]
    fresh = (c for c in LETTERS if c not in subscripts)
    elsewhere = set(output).union(*(s for j, s in enumerate(inputs) if j != k))
    specs = [output] + [s for j, s in enumerate(inputs) if j != k]
    constants = []
    target = []
    seen = set()
    for ch, d in zip(spec, shape):
        if ch in seen:
            new = next(fresh)
            specs.append(ch + new)
            constants.append((_eye, d))
            target.append(new)
            continue
        seen.add(ch)
        target.append(ch)
        if ch not in elsewhere and spec.count(ch) == 1:
            specs.append(ch)
            constants.append((_ones, d))
    return canonical_subscripts(specs, "".join(target)), tuple(constants)


def _einsum_transpose(k, ct, out, *operands, subscripts):
    """Cotangent of operand ``k``: an einsum of the cotangent with the other operands.

    Labels of operand ``k`` that appear nowhere else were summed out, so the cotangent is
    constant along them: a ones vector with that label broadcasts it back. A label repeated
    within operand ``k`` (a diagonal, as in "ii->i") gets a fresh letter for each repetition
    and an identity matrix linking the two, which places the cotangent on the diagonal. Only
    the shape of operand ``k`` is read.
    """
    plan, constants = _einsum_vjp_plan(subscripts, k, tuple(operands[k].shape))
    dtype = ct.dtype
    ops = [ct, *operands[:k], *operands[k + 1:]]
    ops.extend(make(d, dtype) for make, d in constants)
    return bind(einsum, *ops, subscripts=plan)


# np.einsum takes at most 64 operands, each of which it is linear in: one transpose rule for
# every position (it is told which), the jvp derived from it.
_MAX_OPERANDS = 64

def _einsum_batch(args, dims, subscripts):
    inputs, output = _split(subscripts)
    letter = next(c for c in LETTERS if c not in subscripts)  # the batch axis's label
    ops = [a if d is None else to_front(a, d) for a, d in zip(args, dims)]
    specs = tuple(spec if d is None else letter + spec for spec, d in zip(inputs, dims))
    return bind(einsum, *ops, subscripts=_canonical(specs, letter + output)), 0


einsum = Primitive(
    "einsum", _einsum_impl, abstract=_einsum_shape, batch=_einsum_batch,
    linear=tuple(range(_MAX_OPERANDS)), transpose=_einsum_transpose)


# -- small helpers on stacks of matrices, usable on plain and traced values --------------------

def _batch(n: int) -> str:
    return LETTERS[26:26 + n]  # upper case for batch axes, lower case for matrix axes


def diag_part(x):
    """The diagonals of a stack of square matrices, shape (..., n)."""
    b = _batch(len(x.shape) - 2)
    return bind_einsum((b + "ii",), b + "i", x)


def diag_matrix(v):
    """Stack of diagonal matrices with the diagonals ``v`` (..., n)."""
    b = _batch(len(v.shape) - 1)
    n = v.shape[-1]
    return bind_einsum((b + "i", "ij"), b + "ij", v, _eye(n, v.dtype))


def trace(x):
    """The traces of a stack of square matrices, shape (...)."""
    b = _batch(len(x.shape) - 2)
    return bind_einsum((b + "ii",), b, x)


def _expand2(v):
    """``v`` of shape (...) as (..., 1, 1), to scale a stack of matrices."""
    return reshape(v, shape=tuple(v.shape) + (1, 1))


def _sym(x):
    return (x + mT(x)) * 0.5


def _identity_like(a):
    return np.broadcast_to(_eye(a.shape[-1], a.dtype), a.shape)


def _inv(a):
    return solve(a, _identity_like(a))


def _safe_reciprocal_differences(w):
    """F[..., i, j] = 1 / (w_j - w_i), and 0 where w_j == w_i (the diagonal, and ties).

    At ties the eigenvector (singular vector) derivative is undefined; 0 keeps derivatives
    that do not depend on it (of the eigenvalues alone) finite.
    """
    diff = w[..., None, :] - w[..., :, None]
    same = ew.convert_element_type(ew.eq(diff, 0.0), dtype=diff.dtype)
    return (1.0 - same) / (diff + same)


# -- solve -------------------------------------------------------------------------------------

def _solve_jvp(tangents, out, a, b):
    ta, tb = tangents
    rhs = tb if ta is None else (-(ta @ out) if tb is None else tb - ta @ out)
    return solve(a, rhs)


def _solve_vjp(ct, out, a, b):
    ct_b = solve(mT(a), ct)
    return -(ct_b @ mT(out)), ct_b


solve = Primitive("solve", np.linalg.solve, abstract=_solve_shape, jvp=_solve_jvp,
                  vjp=_solve_vjp,
                  batch=axis_batch_rule(lambda: solve))


def _solve_triangular_impl(a, b, lower, trans):
    n = a.shape[-1]
    # LU with partial pivoting on the triangle: backward stable, batched, and NumPy-only (a
    # hand-written substitution would loop over n rows in Python).
    t = a * _tri_mask(n, lower, a.dtype)
    return np.linalg.solve(np.swapaxes(t, -1, -2) if trans else t, b)


def _solve_triangular_jvp(tangents, out, a, b, lower, trans):
    ta, tb = tangents
    if ta is None:
        rhs = tb
    else:
        ta = ta * _tri_mask(a.shape[-1], lower, ta.dtype)
        ta_out = (mT(ta) if trans else ta) @ out
        rhs = -ta_out if tb is None else tb - ta_out
    return solve_triangular(a, rhs, lower=lower, trans=trans)


def _solve_triangular_vjp(ct, out, a, b, lower, trans):
    ct_b = solve_triangular(a, ct, lower=lower, trans=1 - trans)
    ct_op = -(ct_b @ mT(out))  # the cotangent of op(a), op = identity or transpose
    ct_a = (mT(ct_op) if trans else ct_op) * _tri_mask(a.shape[-1], lower, ct.dtype)
    return ct_a, ct_b


# op(tri(a)) x = b, op the identity (trans=0) or the transpose (trans=1); tri(a) is the lower
# or upper triangle of a, the other entries are never read.
solve_triangular = Primitive("solve_triangular", _solve_triangular_impl, abstract=_solve_shape,
                             jvp=_solve_triangular_jvp, vjp=_solve_triangular_vjp,
                             batch=axis_batch_rule(lambda: solve_triangular))


# -- determinants ------------------------------------------------------------------------------
#
# d det = tr(adj(a) da), adj(a) the adjugate (det(a) a^-1 where a is invertible). Through the
# adjugate, which the ``adjugate`` primitive computes from the SVD without inverting a, the
# first derivative of det is finite at singular matrices too, as JAX's is: at rank n - 1 it is
# the (nonzero) cofactor matrix, at lower ranks zero. The adjugate's own derivative,
# (tr(adj da) adj - adj da adj) / det, divides by det: second derivatives of det are right
# away from singular matrices and not finite at them.
#
# slogdet: d log|det| = tr(a^-1 da). At a singular matrix log|det| = -inf and this derivative
# has no finite value: ``inv_or_inf`` gives adj(a) / 0 there, entries ±inf where the cofactor
# is nonzero and nan where it is zero, instead of LinAlgError. (JAX solves with the singular LU
# factors and returns inf and nan entries too: never an exception, never finite.)


def _adjugate_impl(a):
    a = np.asarray(a)
    if a.shape[-1] == 0:
        return a.copy()
    finite = np.isfinite(a).all(axis=(-2, -1))
    if not finite.all():  # the SVD does not converge on nan or inf: those adjugates are nan
        safe = np.where(finite[..., None, None], a, 0)
        out = _adjugate_impl(safe)
        out[~finite] = np.nan
        return out
    u, s, vh = np.linalg.svd(a)
    # adj(U S Vh) = adj(Vh) adj(S) adj(U) = det(U) det(Vh) Vh^H diag(prod_{j != i} s_j) U^H,
    # the products of the other singular values from prefix and suffix products (no division)
    ones = np.ones(s.shape[:-1] + (1,), s.dtype)
    before = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, s[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    phase = np.linalg.det(u) * np.linalg.det(vh)  # of modulus 1 up to rounding: snap it
    phase = np.sign(phase) if phase.dtype.kind != "c" else phase / np.abs(phase)
    vh_h = np.conj(np.swapaxes(vh, -1, -2))
    u_h = np.conj(np.swapaxes(u, -1, -2))
    adj = (vh_h * (before * after)[..., None, :]) @ u_h
    return (adj * phase[..., None, None]).astype(a.dtype, copy=False)


def _adjugate_jvp(t, out, a):
    # d adj = (tr(adj da) adj - adj da adj) / det: not finite at singular a (see above)
    adj_t = out @ t
    return (_expand2(trace(adj_t)) * out - adj_t @ out) / _expand2(det(a))


def _adjugate_vjp(ct, out, a):
    # the transpose of the jvp: <ct, adj> adj^T - adj^T ct adj^T, over det
    adj_tr = mT(out)
    return (_expand2(trace(mT(ct) @ out)) * adj_tr - adj_tr @ ct @ adj_tr) / _expand2(det(a))


adjugate = Primitive("adjugate", _adjugate_impl, abstract=lambda a: _aval(a.shape, a.dtype),
                     jvp=(_adjugate_jvp,), vjp=(_adjugate_vjp,),
                     batch=axis_batch_rule(lambda: adjugate))


det = Primitive(
    "det", np.linalg.det, abstract=lambda a: _aval(a.shape[:-2], a.dtype),
    jvp=(lambda t, out, a: trace(adjugate(a) @ t),),
    vjp=(lambda ct, out, a: _expand2(ct) * mT(adjugate(a)),),
    batch=axis_batch_rule(lambda: det))


def _inv_or_inf_impl(a):
    a = np.asarray(a)
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        pass
    # some matrix of the stack is exactly singular (a zero pivot, where slogdet's sign is 0)
    flat = a.reshape((-1,) + a.shape[-2:])
    out = np.empty_like(flat)
    for k, m in enumerate(flat):
        try:
            out[k] = np.linalg.inv(m)
        except np.linalg.LinAlgError:
            with np.errstate(divide="ignore", invalid="ignore"):
                out[k] = _adjugate_impl(m) / np.zeros((), m.dtype)
    return out.reshape(a.shape)


# a^-1, and adj(a) / 0 (entries ±inf, or nan where the cofactor is 0) for a singular a
inv_or_inf = Primitive(
    "inv_or_inf", _inv_or_inf_impl, abstract=lambda a: _aval(a.shape, a.dtype),
    jvp=(lambda t, out, a: -(out @ t @ out),),
    vjp=(lambda ct, out, a: -(mT(out) @ ct @ mT(out)),),
    batch=axis_batch_rule(lambda: inv_or_inf))


def _slogdet_impl(a):
    sign, logabsdet = np.linalg.slogdet(a)
    return sign, logabsdet


# The sign is piecewise constant: it has no tangent and its cotangent is ignored.
slogdet = Primitive(
    "slogdet", _slogdet_impl, multiple_results=True,
    abstract=lambda a: (_aval(a.shape[:-2], a.dtype),) * 2,
    jvp=(lambda t, out, a: (None, trace(inv_or_inf(a) @ t)),),
    vjp=(lambda ct, out, a: _expand2(ct[1]) * mT(inv_or_inf(a)),),
    batch=axis_batch_rule(lambda: slogdet, multiple_results=True))


# -- cholesky ----------------------------------------------------------------------------------

@_constant
def _phi_mask(n: int, dtype) -> np.ndarray:
    """The lower triangle with the diagonal halved: Murray's Φ as a mask."""
    return np.tril(np.ones((n, n), dtype=dtype)) - 0.5 * np.eye(n, dtype=dtype)


def _cholesky_jvp(t, out, a):
    # dL = L Φ(L^-1 dA L^-T) for a symmetric dA (Murray 2016, eq. 9).
    low = out
    l_inv_t = solve_triangular(low, _sym(t), lower=True, trans=0)
    inner = solve_triangular(low, mT(l_inv_t), lower=True, trans=0)
    return low @ (inner * _phi_mask(a.shape[-1], inner.dtype))


def _cholesky_vjp(ct, out, a):
    # The transpose of the jvp: Ā = L^-T Φ(L^T L̄) L^-1, symmetrized (only symmetric
    # directions exist for a symmetric input).
    low = out
    p = (mT(low) @ ct) * _phi_mask(a.shape[-1], ct.dtype)
    left = solve_triangular(low, p, lower=True, trans=1)
    s = mT(solve_triangular(low, mT(left), lower=True, trans=1))
    return _sym(s)


cholesky = Primitive("cholesky", np.linalg.cholesky, abstract=lambda a: _aval(a.shape, a.dtype),
                     jvp=(_cholesky_jvp,), vjp=(_cholesky_vjp,),
                     batch=axis_batch_rule(lambda: cholesky))


# -- eigh --------------------------------------------------------------------------------------

def _eigh_impl(a):
    w, v = np.linalg.eigh(a)
    return w, v


def _eigh_jvp(t, out, a):
    # With a = V diag(w) V^T and P = V^T dA V: dw = diag(P), dV = V (F ∘ P),
    # F_ij = 1 / (w_j - w_i) off the diagonal (Giles 2008, section 3.1).
    w, v = out
    p = mT(v) @ _sym(t) @ v
    return diag_part(p), v @ (_safe_reciprocal_differences(w) * p)


def _eigh_vjp(ct, out, a):
    # Ā = V (diag(w̄) + F ∘ (V^T V̄)) V^T, symmetrized.
    w, v = out
    ct_w, ct_v = ct
    inner = diag_matrix(ct_w) + _safe_reciprocal_differences(w) * (mT(v) @ ct_v)
    return _sym(v @ inner @ mT(v))


eigh = Primitive("eigh", _eigh_impl, multiple_results=True,
                 abstract=lambda a: (_aval(a.shape[:-1], a.dtype), _aval(a.shape, a.dtype)),
                 jvp=(_eigh_jvp,), vjp=(_eigh_vjp,),
                 batch=axis_batch_rule(lambda: eigh, multiple_results=True))


# -- svd ---------------------------------------------------------------------------------------
#
# a (m x n) = U diag(s) V^T with k = min(m, n), U (m x k), V (n x k). With dP = U^T da V (k x k)
# and F_ij = 1 / (s_j² - s_i²) off the diagonal (Townsend 2016, "Differentiating the singular
# value decomposition"; JAX's svd_jvp_rule):
#   ds = diag(dP)
#   dU = U (F ∘ (dP S + S dP^T)) + (I - U U^T) da V S^-1      (the last term when m > n)
#   dV = V (F ∘ (S dP + dP^T S)) + (I - V V^T) da^T U S^-1    (the last term when n > m)

def _svd_impl(a):
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return u, s, vt


def _safe_inverse(s):
    zero = ew.convert_element_type(ew.eq(s, 0.0), dtype=s.dtype)
    return (1.0 - zero) / (s + zero)


def _svd_jvp(t, out, a):
    u, s, vt = out
    v = mT(vt)
    m, n = a.shape[-2:]
    dp = mT(u) @ t @ v
    f = _safe_reciprocal_differences(s * s)
    s_row = s[..., None, :]  # X * s_row = X S, and X * mT(s_row) = S X
    s_col = mT(s_row)
    du = u @ (f * (dp * s_row + s_col * mT(dp)))
    dv = v @ (f * (s_col * dp + mT(dp) * s_row))
    s_inv = _safe_inverse(s)[..., None, :]
    if m > n:
        dav = t @ v
        du = du + (dav - u @ (mT(u) @ dav)) * s_inv
    elif n > m:
        dau = mT(t) @ u
        dv = dv + (dau - v @ (vt @ dau)) * s_inv
    return du, diag_part(dp), mT(dv)


def _svd_vjp(ct, out, a):
    # The transpose of the jvp: with J = F ∘ (U^T Ū) and K = F ∘ (V^T V̄),
    # ā = U (diag(s̄) + (J + J^T) S + S (K + K^T)) V^T + the projection terms.
    u, s, vt = out
    ct_u, ct_s, ct_vt = ct
    v = mT(vt)
    ct_v = mT(ct_vt)
    m, n = a.shape[-2:]
    f = _safe_reciprocal_differences(s * s)
    j = f * (mT(u) @ ct_u)
    k = f * (mT(v) @ ct_v)
    s_row = s[..., None, :]
    inner = diag_matrix(ct_s) + (j + mT(j)) * s_row + mT(s_row) * (k + mT(k))
    ct_a = u @ inner @ vt
    s_inv = _safe_inverse(s)[..., None, :]
    if m > n:
        ct_a = ct_a + ((ct_u - u @ (mT(u) @ ct_u)) * s_inv) @ vt
    elif n > m:
        ct_a = ct_a + u @ mT((ct_v - v @ (vt @ ct_v)) * s_inv)
    return ct_a


svd = Primitive("svd", _svd_impl, multiple_results=True, abstract=_svd_shape,
                jvp=(_svd_jvp,), vjp=(_svd_vjp,),
                batch=axis_batch_rule(lambda: svd, multiple_results=True))


# -- qr ----------------------------------------------------------------------------------------
#
# Reduced QR of a tall or square a (m >= n, full column rank): a = Q R, Q (m x n), R (n x n)
# upper triangular. With B = da R^-1, C = Q^T B and Ω = low(C) - low(C)^T (low = the strictly
# lower triangle; Townsend's note "Differentiating the QR decomposition", JAX's qr_jvp_rule):
#   dQ = Q (Ω - C) + B,   dR = (C - Ω) R.

def _qr_impl(a):
    q, r = np.linalg.qr(a, mode="reduced")
    return q, r


def _right_solve_r(x, r):
    """x R^-1 for the upper triangular R: (R^-T x^T)^T."""
    return mT(solve_triangular(r, mT(x), lower=False, trans=1))


def _qr_jvp(t, out, a):
    q, r = out
    n = a.shape[-1]
    b = _right_solve_r(t, r)
    c = mT(q) @ b
    low = c * _tri_mask(n, True, c.dtype, -1)
    omega = low - mT(low)
    return q @ (omega - c) + b, (c - omega) @ r


def _qr_vjp(ct, out, a):
    # With M = Q^T Q̄ - R̄ R^T: ā = (Q̄ + Q (R̄ R^T - Q^T Q̄ + low(M - M^T))) R^-T.
    q, r = out
    ct_q, ct_r = ct
    n = a.shape[-1]
    qt_ct = mT(q) @ ct_q
    ct_r_rt = ct_r @ mT(r)
    m = qt_ct - ct_r_rt
    low = (m - mT(m)) * _tri_mask(n, True, m.dtype, -1)
    x = ct_q + q @ (ct_r_rt - qt_ct + low)
    # x R^-T = (R^-1 x^T)^T
    return mT(solve_triangular(r, mT(x), lower=False, trans=0))


qr = Primitive("qr", _qr_impl, multiple_results=True, abstract=_qr_shape,
               jvp=(_qr_jvp,), vjp=(_qr_vjp,),
               batch=axis_batch_rule(lambda: qr, multiple_results=True))


# -- pinv --------------------------------------------------------------------------------------
#
# For a of locally constant rank (Golub & Pereyra 1973, eq. 4.12), with X = pinv(a):
#   dX = -X da X + X X^T da^T (I - a X) + (I - X a) da^T X^T X
# The last two terms vanish for square invertible a; they carry the derivative of the range
# projections for rectangular or rank-deficient a.

def _pinv_jvp(t, out, a, rcond):
    x = out
    tt = mT(t)
    return (-(x @ t @ x) + x @ (mT(x) @ tt) - (x @ mT(x)) @ tt @ (a @ x)
            + tt @ (mT(x) @ x) - x @ (a @ (tt @ (mT(x) @ x))))


def _pinv_vjp(ct, out, a, rcond):
    # Each term transposed: -X^T X̄ X^T + (I - a X) X̄^T X X^T + X^T X X̄^T (I - X a).
    x = out
    xt = mT(x)
    ctt = mT(ct)
    x_xt = x @ xt
    xt_x = xt @ x
    return (-(xt @ ct @ xt) + ctt @ x_xt - a @ (x @ (ctt @ x_xt))
            + xt_x @ ctt - (xt_x @ ctt) @ x @ a)


pinv = Primitive(
    "pinv", lambda a, rcond: np.linalg.pinv(a, rcond=rcond),
    abstract=lambda a, rcond: _aval(a.shape[:-2] + (a.shape[-1], a.shape[-2]), a.dtype),
    jvp=(_pinv_jvp,), vjp=(_pinv_vjp,),
    batch=axis_batch_rule(lambda: pinv))
