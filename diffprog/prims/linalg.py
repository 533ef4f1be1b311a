"""Linear algebra primitives: matmul, einsum, solves, determinants and decompositions.

Operands arrive normalized by :mod:`diffprog.numpy`: matrices are stacks ``(..., m, n)`` whose
traced batch dimensions already equal each other (and the output's), right-hand sides are
matrices ``(..., n, k)``, and the inputs of ``cholesky`` and ``eigh`` are Hermitian (symmetric
when real: the NumPy layer builds the matrix from the triangle NumPy reads). ``^T`` is the
transpose of the last two axes, ``^H`` the conjugate transpose.

Complex values follow JAX's convention: a vjp rule is the transpose of the jvp (a real-linear
map) under the pairing Re(sum(x * y)), with no conjugation of the cotangent. For a holomorphic
function (matmul, einsum, solve, det, inv, lu) that is the textbook rule with ``^T``; for the
others (cholesky, eigh, svd, qr, pinv, eig, slogdet's sign) the rules below are written as
``conj(adjoint(conj(ct)))``, where ``adjoint`` is the adjoint under Re tr(x^H y), the form in
which the complex rules are usually published (and the real ones with ``^T`` for ``^H``):

* ``matmul``: bilinear, declared by its transposes ct @ y^T and x^T @ ct (``linear=(0, 1)``);
  the jvp dx @ y + x @ dy follows.
* ``einsum``: linear in each operand; its transpose is another einsum (see
  :func:`_einsum_transpose`), and its jvp the einsum with the tangent in the operand's place.
* ``solve`` (x = a^-1 b): dx = a^-1 (db - da x); cotangents b̄ = a^-T x̄ and ā = -b̄ x^T.
* ``solve_triangular``: the same, with da and ā masked to the triangle that is read.
* ``det``: d det = tr(adj(a) da), finite at singular a too; ``slogdet``: d log|det| =
  Re tr(a^-1 da), and for complex a d sign = i sign Im tr(a^-1 da) (see the determinants
  section for singular matrices).
* ``cholesky``, ``eigh``, ``svd``, ``qr``, ``pinv``, ``eig``: the formulas of Murray (2016),
  Giles (2008), Townsend (2016), Golub & Pereyra (1973) and Magnus (1985), written out at each
  rule, with the gauge terms complex values add (the phases of eigen- and singular vectors).

The rules use diffprog operations (operators on values, these primitives), so they are traced
under outer transforms; arrays built with ``np.*`` inside rules are constants (identities,
triangle masks) that depend only on shapes.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..core import Primitive, ShapedArray, bind
from . import elementwise as ew
from .shape import axis_batch_rule, batch_size, bring_front, reshape, to_front, transpose

__all__ = ["matmul", "mT", "einsum", "solve", "solve_triangular", "det", "slogdet",
           "cholesky", "eigh", "svd", "qr", "pinv", "eig"]


def mT(a):
    """Swap the last two axes (the matrix transpose of a stack of matrices)."""
    n = len(a.shape)
    return transpose(a, perm=tuple(range(n - 2)) + (n - 1, n - 2))


def _is_complex(x) -> bool:
    return np.dtype(x.dtype).kind == "c"


def _cj(x):
    """conj(x) for complex values; real values as they are (no node is recorded)."""
    return ew.conj(x) if _is_complex(x) else x


def mH(a):
    """The conjugate transpose of a stack of matrices (the transpose when real)."""
    return _cj(mT(a))


def _real_dtype(dtype) -> np.dtype:
    """float64 for complex128 (and float64), float32 for complex64: the dtype of |x|."""
    return np.dtype(np.finfo(np.dtype(dtype)).dtype)


def _complex_dtype(dtype) -> np.dtype:
    """complex128 for float64, complex64 for float32 (and complex dtypes as they are)."""
    return np.result_type(dtype, np.complex64)


def _as_dtype(x, dtype):
    return x if np.dtype(x.dtype) == np.dtype(dtype) else ew.convert_element_type(
        x, dtype=np.dtype(dtype))


def _i_imag(x):
    """i Im(x), in x's complex dtype."""
    return _as_dtype(ew.imag(x), x.dtype) * 1j


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
    return (_aval((*batch, m, k), a.dtype), _aval((*batch, k), _real_dtype(a.dtype)),
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


def _matmul_program(avals, out, **params):
    """The whole-program tier's plan (see ``Primitive.program_form``): ``("matmul", batch,
    m, k, n, x_batched, y_batched)`` for vectors, matrices and stacks of matrices whose
    batch axes are equal (or absent on one side); None for other batch broadcasting."""
    x, y = avals
    xs = (1,) + tuple(x.shape) if x.ndim == 1 else tuple(x.shape)
    ys = tuple(y.shape) + (1,) if y.ndim == 1 else tuple(y.shape)
    bx, by = xs[:-2], ys[:-2]
    batch = bx if len(bx) >= len(by) else by
    if (bx and bx != batch) or (by and by != batch):
        return None
    return ("matmul", math.prod(batch), xs[-2], xs[-1], ys[-1], bool(bx), bool(by))


matmul = Primitive(
    "matmul", np.matmul, abstract=_matmul_shape, batch=_matmul_batch,
    program_form=_matmul_program,
    linear=(0, 1),
    transpose=(lambda ct, out, x, y: matmul(ct, mT(y)), lambda ct, out, x, y: matmul(mT(x), ct)))


# -- einsum ------------------------------------------------------------------------------------
#
# ``subscripts`` is explicit ("ab,bc->ac": no ellipsis, the output always given) and canonical:
# letters are renamed in order of first appearance, so equal contractions share one cache key.
# A label has one size across the operands (diffprog.numpy broadcasts size-1 axes first).

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"  # string.ascii_letters


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
    """The Hermitian part (x + x^H) / 2: the symmetric part when real."""
    return (x + mH(x)) * 0.5


def _identity_like(a):
    return np.broadcast_to(_eye(a.shape[-1], a.dtype), a.shape)


def _inv(a):
    return solve(a, _identity_like(a))


def _ties(diff, scale):
    """1 where an entry of ``diff`` (differences of eigenvalues, or of squared singular values)
    is zero up to rounding, else 0, in diff's dtype.

    LAPACK computes eigenvalues (singular values) to about eps * ||a||, so a repeated one comes
    back as a cluster a few ulps of ||a|| wide; there the vectors are arbitrary within the
    eigenspace and 1 / (w_j - w_i) would amplify rounding into O(1) garbage. Differences
    within 8 n eps of ``scale`` (||a||, shape (..., 1)) count as ties, as exact ties do.
    """
    n = diff.shape[-1]
    tol = reshape(scale, shape=tuple(scale.shape) + (1,)) * (8.0 * n * np.finfo(diff.dtype).eps)
    return ew.convert_element_type(abs(diff) <= tol, dtype=diff.dtype)


def _spread(w):
    """max |w| over the last axis, shape (..., 1), for values sorted (either way)."""
    return ew.maximum(abs(w[..., :1]), abs(w[..., -1:]))


def _safe_reciprocal_differences(w, squares=False):
    """F[..., i, j] = 1 / (w_j - w_i) (1 / (w_j² - w_i²) with ``squares``, for singular
    values), and 0 where w_j == w_i up to rounding (the diagonal, and ties: see
    :func:`_ties`); ``w`` real and sorted.

    At ties the eigenvector (singular vector) derivative is undefined; 0 keeps derivatives
    that do not depend on it finite: those of the eigenvalues alone, and of functions of the
    eigenvalues and of the projectors onto the eigenspaces.
    """
    diff = w[..., None, :] - w[..., :, None]
    if diff.shape[-1] == 0:
        return diff
    same = _ties(diff, _spread(w))  # ties of the values, not of their squares
    if squares:
        diff = diff * (w[..., None, :] + w[..., :, None])
    return (1.0 - same) / (diff + same)


def _over_differences(x, w, exact=False):
    """F ∘ x with F as above, computed as x / (w_j - w_i): a zero entry of x stays zero
    however close the eigenvalues are (a reciprocal could overflow to inf, and inf * 0 is
    nan). ``exact``: only exact ties count (``eig``'s complex eigenvalues, unsorted, whose
    clusters are not a few ulps wide in general)."""
    diff = w[..., None, :] - w[..., :, None]
    if diff.shape[-1] == 0:
        return x
    if exact:
        same = ew.convert_element_type(ew.eq(diff, 0.0), dtype=diff.dtype)
    else:
        same = _ties(diff, _spread(w))
    x = x * (1.0 - same)
    d = diff + same
    if _is_complex(x) and not _is_complex(d):
        # part by part: NumPy's complex division computes 1 / d first (Smith's algorithm),
        # which overflows for a subnormal d and turns 0 / d into nan
        return _as_dtype(ew.real(x) / d, x.dtype) + _as_dtype(ew.imag(x) / d, x.dtype) * 1j
    return x / d


def _diag_as(v, dtype):
    """The stack of diagonal matrices with diagonals ``v``, in ``dtype``."""
    return diag_matrix(_as_dtype(v, dtype))


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
    if trans:
        t = np.swapaxes(t, -1, -2)
    return np.linalg.solve(np.conj(t) if trans == 2 else t, b)


def _op(x, trans):
    """op(x): x (trans=0), x^T (1) or x^H (2)."""
    return x if trans == 0 else mT(x) if trans == 1 else mH(x)


def _solve_triangular_jvp(tangents, out, a, b, lower, trans):
    ta, tb = tangents
    if ta is None:
        rhs = tb
    else:
        ta = ta * _tri_mask(a.shape[-1], lower, ta.dtype)
        ta_out = _op(ta, trans) @ out
        rhs = -ta_out if tb is None else tb - ta_out
    return solve_triangular(a, rhs, lower=lower, trans=trans)


def _solve_triangular_vjp(ct, out, a, b, lower, trans):
    # x = op(a)^-1 b is holomorphic in b and in op(a): b̄ = op(a)^-T x̄, whose op is the
    # transpose of op(a)'s (for trans=2, conj(a)^-1 x̄ = conj(a^-1 conj(x̄))).
    if trans == 2:
        ct_b = ew.conj(solve_triangular(a, ew.conj(ct), lower=lower, trans=0))
    else:
        ct_b = solve_triangular(a, ct, lower=lower, trans=1 - trans)
    ct_op = -(ct_b @ mT(out))  # the cotangent of op(a)
    # op's transpose: the identity, the transpose, or the conjugate transpose (conj's
    # transpose is conj)
    ct_a = _op(ct_op, trans) * _tri_mask(a.shape[-1], lower, ct.dtype)
    return ct_a, ct_b


# op(tri(a)) x = b, op the identity (trans=0), the transpose (trans=1) or the conjugate
# transpose (trans=2, which the NumPy layer sends as 1 for real values); tri(a) is the lower
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


def _slogdet_jvp(t, out, a):
    d = trace(inv_or_inf(a) @ t)  # d log det = tr(a^-1 da), holomorphic in a
    if not _is_complex(a):
        return None, d
    # log det = log|det| + i arg(det): d log|det| = Re(d), d sign = sign * i Im(d)
    return out[0] * _i_imag(d), ew.real(d)


def _slogdet_vjp(ct, out, a):
    ct_sign, ct_log = ct
    if not _is_complex(a):
        ct_d = ct_log
    else:
        # the transposes of d -> Re(d) (c -> c + 0j) and of d -> i sign Im(d)
        # (c -> i Im(c sign)), summed
        ct_d = _as_dtype(ct_log, a.dtype) + _i_imag(ct_sign * out[0])
    return _expand2(ct_d) * mT(inv_or_inf(a))


# For real a the sign is piecewise constant: it has no tangent and its cotangent is ignored.
# For complex a it is det / |det|, of modulus 1, and differentiable where det != 0.
slogdet = Primitive(
    "slogdet", _slogdet_impl, multiple_results=True,
    abstract=lambda a: (_aval(a.shape[:-2], a.dtype), _aval(a.shape[:-2], _real_dtype(a.dtype))),
    jvp=(_slogdet_jvp,), vjp=(_slogdet_vjp,),
    batch=axis_batch_rule(lambda: slogdet, multiple_results=True))


# -- cholesky ----------------------------------------------------------------------------------

@_constant
def _phi_mask(n: int, dtype) -> np.ndarray:
    """The lower triangle with the diagonal halved: Murray's Φ as a mask."""
    return np.tril(np.ones((n, n), dtype=dtype)) - 0.5 * np.eye(n, dtype=dtype)


def _ctrans(x) -> int:
    """solve_triangular's trans for the conjugate transpose: 2 when complex, else 1."""
    return 2 if _is_complex(x) else 1


def _cholesky_jvp(t, out, a):
    # dL = L Φ(L^-1 dA L^-H) for a Hermitian dA (Murray 2016, eq. 9; the diagonal of
    # L^-1 dA L^-H is real, so dL keeps L's diagonal real).
    low = out
    l_inv_t = solve_triangular(low, _sym(t), lower=True, trans=0)
    inner = solve_triangular(low, mH(l_inv_t), lower=True, trans=0)
    return low @ (inner * _phi_mask(a.shape[-1], inner.dtype))


def _cholesky_vjp(ct, out, a):
    # The adjoint of the jvp: Ā = L^-H Φ(L^H L̄) L^-1, made Hermitian (only Hermitian
    # directions exist for a Hermitian input); conj(adjoint(conj(ct))) for complex values.
    low = out
    th = _ctrans(low)
    p = (mH(low) @ _cj(ct)) * _phi_mask(a.shape[-1], ct.dtype)
    left = solve_triangular(low, p, lower=True, trans=th)
    s = mH(solve_triangular(low, mH(left), lower=True, trans=th))
    return _cj(_sym(s))


cholesky = Primitive("cholesky", np.linalg.cholesky, abstract=lambda a: _aval(a.shape, a.dtype),
                     jvp=(_cholesky_jvp,), vjp=(_cholesky_vjp,),
                     batch=axis_batch_rule(lambda: cholesky))


# -- eigh --------------------------------------------------------------------------------------

def _eigh_impl(a):
    w, v = np.linalg.eigh(a)
    return w, v


def _eigh_jvp(t, out, a):
    # With a = V diag(w) V^H and P = V^H dA V: dw = Re diag(P), dV = V (F ∘ P),
    # F_ij = 1 / (w_j - w_i) off the diagonal (Giles 2008, section 3.1). F ∘ P has a zero
    # diagonal: each vector's phase is held (V^H dV is anti-Hermitian with zero diagonal).
    w, v = out
    p = mH(v) @ _sym(t) @ v
    dw = diag_part(p)
    return (ew.real(dw) if _is_complex(dw) else dw), v @ _over_differences(p, w)


def _eigh_vjp(ct, out, a):
    # The adjoint: Ā = V (diag(w̄) + F ∘ (V^H V̄)) V^H, made Hermitian; conj(adjoint(conj)).
    # At a repeated eigenvalue (up to rounding: _ties) F's entries for the pair are 0, as in
    # JAX. A function of the eigenvalues alone has V̄ = 0, and then Ā = V diag(w̄) V^H, exact
    # at repeated eigenvalues too (w̄ is equal across a repeated eigenvalue for a function of
    # the spectrum, so Ā does not depend on the basis LAPACK picked in that eigenspace); so is
    # a function of the projectors onto eigenspaces, for which V^H V̄ is Hermitian within the
    # eigenspace and the dropped block contributes nothing.
    w, v = out
    ct_w, ct_v = ct
    inner = _diag_as(ct_w, v.dtype) + _over_differences(mH(v) @ _cj(ct_v), w)
    return _cj(_sym(v @ inner @ mH(v)))


eigh = Primitive("eigh", _eigh_impl, multiple_results=True,
                 abstract=lambda a: (_aval(a.shape[:-1], _real_dtype(a.dtype)),
                                     _aval(a.shape, a.dtype)),
                 jvp=(_eigh_jvp,), vjp=(_eigh_vjp,),
                 batch=axis_batch_rule(lambda: eigh, multiple_results=True))


# -- svd ---------------------------------------------------------------------------------------
#
# a (m x n) = U diag(s) V^H with k = min(m, n), U (m x k), V (n x k). With dP = U^H da V (k x k)
# and F_ij = 1 / (s_j² - s_i²) off the diagonal (Townsend 2016, "Differentiating the singular
# value decomposition"; JAX's svd_jvp_rule):
#   ds = Re diag(dP)
#   dU = U (F ∘ (dP S + S dP^H) + i Im diag(dP) S^-1) + (I - U U^H) da V S^-1   (last: m > n)
#   dV = V (F ∘ (S dP + dP^H S)) + (I - V V^H) da^H U S^-1                      (last: n > m)
# The term i Im diag(dP) S^-1 (zero for real values) fixes the gauge of complex values: each
# pair of singular vectors has a free common phase, and the phase change dP's diagonal asks
# for goes to U alone, V's keeping V^H dV with zero diagonal. Only functions invariant under
# those phases (U diag(e^iθ), V diag(e^iθ)) have a derivative that does not depend on it.

def _svd_impl(a):
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return u, s, vt


def _safe_inverse(s):
    zero = ew.convert_element_type(ew.eq(s, 0.0), dtype=s.dtype)
    return (1.0 - zero) / (s + zero)


def _svd_jvp(t, out, a):
    u, s, vt = out
    v = mH(vt)
    m, n = a.shape[-2:]
    dp = mH(u) @ t @ v
    f = _safe_reciprocal_differences(s, squares=True)
    s_row = s[..., None, :]  # X * s_row = X S, and X * mT(s_row) = S X
    s_col = mT(s_row)
    du = u @ (f * (dp * s_row + s_col * mH(dp)))
    dv = v @ (f * (s_col * dp + mH(dp) * s_row))
    s_inv = _safe_inverse(s)[..., None, :]
    ds = diag_part(dp)
    if _is_complex(dp):
        du = du + u * (_i_imag(ds)[..., None, :] * s_inv)
        ds = ew.real(ds)
    if m > n:
        dav = t @ v
        du = du + (dav - u @ (mH(u) @ dav)) * s_inv
    elif n > m:
        dau = mH(t) @ u
        dv = dv + (dau - v @ (vt @ dau)) * s_inv
    return du, ds, mH(dv)


def _svd_vjp(ct, out, a):
    # The adjoint of the jvp, conj(adjoint(conj(ct))) for complex values: with
    # J = F ∘ (U^H Ū) and K = F ∘ (V^H V̄),
    # ā = U (diag(s̄) + (J + J^H) S + S (K + K^H) + i Im diag(U^H Ū) S^-1) V^H
    #     + the projection terms.
    u, s, vt = out
    ct_u, ct_s, ct_vt = ct
    ct_u, ct_vt = _cj(ct_u), _cj(ct_vt)
    v = mH(vt)
    ct_v = mH(ct_vt)
    m, n = a.shape[-2:]
    f = _safe_reciprocal_differences(s, squares=True)
    uh_ct = mH(u) @ ct_u
    j = f * uh_ct
    k = f * (mH(v) @ ct_v)
    s_row = s[..., None, :]
    s_inv = _safe_inverse(s)[..., None, :]
    inner = _diag_as(ct_s, u.dtype) + (j + mH(j)) * s_row + mT(s_row) * (k + mH(k))
    if _is_complex(u):
        inner = inner + diag_matrix(_i_imag(diag_part(uh_ct))) * s_inv
    ct_a = u @ inner @ vt
    if m > n:
        ct_a = ct_a + ((ct_u - u @ uh_ct) * s_inv) @ vt
    elif n > m:
        ct_a = ct_a + u @ mH((ct_v - v @ (vt @ ct_v)) * s_inv)
    return _cj(ct_a)


svd = Primitive("svd", _svd_impl, multiple_results=True, abstract=_svd_shape,
                jvp=(_svd_jvp,), vjp=(_svd_vjp,),
                batch=axis_batch_rule(lambda: svd, multiple_results=True))


# -- qr ----------------------------------------------------------------------------------------
#
# Reduced QR of a tall or square a (m >= n, full column rank): a = Q R, Q (m x n), R (n x n)
# upper triangular with a real diagonal. With B = da R^-1, C = Q^H B and Ω = low(C) - low(C)^H
# + i Im diag(C) (low = the strictly lower triangle; Q^H dQ = Ω is anti-Hermitian and dR R^-1
# upper triangular with a real diagonal; Townsend's note "Differentiating the QR
# decomposition", JAX's qr_jvp_rule):
#   dQ = Q (Ω - C) + B,   dR = (C - Ω) R.

def _qr_impl(a):
    q, r = np.linalg.qr(a, mode="reduced")
    return q, r


def _right_solve_r(x, r):
    """x R^-1 for the upper triangular R: (R^-H x^H)^H."""
    return mH(solve_triangular(r, mH(x), lower=False, trans=_ctrans(r)))


def _skew_part(c, n):
    """low(C) - low(C)^H + i Im diag(C)."""
    low = c * _tri_mask(n, True, c.dtype, -1)
    out = low - mH(low)
    return out + diag_matrix(_i_imag(diag_part(c))) if _is_complex(c) else out


def _qr_jvp(t, out, a):
    q, r = out
    n = a.shape[-1]
    b = _right_solve_r(t, r)
    c = mH(q) @ b
    omega = _skew_part(c, n)
    return q @ (omega - c) + b, (c - omega) @ r


def _qr_vjp(ct, out, a):
    # The adjoint, conj(adjoint(conj(ct))) for complex values: with M = Q^H Q̄ - R̄ R^H,
    # ā = (Q̄ + Q (R̄ R^H - Q^H Q̄ + low(M - M^H) + i Im diag(M))) R^-H.
    q, r = out
    ct_q, ct_r = _cj(ct[0]), _cj(ct[1])
    n = a.shape[-1]
    qt_ct = mH(q) @ ct_q
    ct_r_rt = ct_r @ mH(r)
    m = qt_ct - ct_r_rt
    low = (m - mH(m)) * _tri_mask(n, True, m.dtype, -1)
    if _is_complex(m):
        low = low + diag_matrix(_i_imag(diag_part(m)))
    x = ct_q + q @ (ct_r_rt - qt_ct + low)
    # x R^-H = (R^-1 x^H)^H
    return _cj(mH(solve_triangular(r, mH(x), lower=False, trans=0)))


qr = Primitive("qr", _qr_impl, multiple_results=True, abstract=_qr_shape,
               jvp=(_qr_jvp,), vjp=(_qr_vjp,),
               batch=axis_batch_rule(lambda: qr, multiple_results=True))


# -- pinv --------------------------------------------------------------------------------------
#
# For a of locally constant rank (Golub & Pereyra 1973, eq. 4.12), with X = pinv(a):
#   dX = -X da X + X X^H da^H (I - a X) + (I - X a) da^H X^H X
# The last two terms vanish for square invertible a; they carry the derivative of the range
# projections for rectangular or rank-deficient a.

def _pinv_jvp(t, out, a, rcond):
    x = out
    tt = mH(t)
    xh = mH(x)
    return (-(x @ t @ x) + x @ (xh @ tt) - (x @ xh) @ tt @ (a @ x)
            + tt @ (xh @ x) - x @ (a @ (tt @ (xh @ x))))


def _pinv_vjp(ct, out, a, rcond):
    # Each term's adjoint: -X^H X̄ X^H + (I - a X) X̄^H X X^H + X^H X X̄^H (I - X a), then
    # conj(adjoint(conj(ct))) for complex values.
    x = out
    xt = mH(x)
    ctt = mT(ct)  # (conj ct)^H
    ct = _cj(ct)
    x_xt = x @ xt
    xt_x = xt @ x
    return _cj(-(xt @ ct @ xt) + ctt @ x_xt - a @ (x @ (ctt @ x_xt))
               + xt_x @ ctt - (xt_x @ ctt) @ x @ a)


pinv = Primitive(
    "pinv", lambda a, rcond: np.linalg.pinv(a, rcond=rcond),
    abstract=lambda a, rcond: _aval(a.shape[:-2] + (a.shape[-1], a.shape[-2]), a.dtype),
    jvp=(_pinv_jvp,), vjp=(_pinv_vjp,),
    batch=axis_batch_rule(lambda: pinv))


# -- eig ---------------------------------------------------------------------------------------
#
# a = V diag(w) V^-1 for a general (real or complex) square a, w and V complex (also for real
# a, so that the dtype does not depend on the values), V's columns of unit norm as NumPy
# gives them. With P = V^-1 da V and F_ij = 1 / (w_j - w_i) off the diagonal (Magnus 1985;
# PyTorch's linalg_eig_jvp):
#   dw = diag(P),   dV = V (F ∘ P) - V Re diag(V^H V (F ∘ P))
# The last term keeps each column's norm (Re v_i^H dv_i = 0); a column's phase is free, so only
# phase-invariant functions of V have a derivative that does not depend on this choice. The
# derivative needs distinct eigenvalues (for V; w's own exists for simple eigenvalues).

def _eig_impl(a):
    w, v = np.linalg.eig(a)
    dtype = _complex_dtype(np.asarray(a).dtype)
    return w.astype(dtype, copy=False), v.astype(dtype, copy=False)


def _eig_shape(a):
    dtype = _complex_dtype(a.dtype)
    return _aval(a.shape[:-1], dtype), _aval(a.shape, dtype)


def _eig_jvp(t, out, a):
    w, v = out
    p = solve(v, _as_dtype(t, v.dtype) @ v)
    dv = v @ _over_differences(p, w, exact=True)
    dv = dv - v * _as_dtype(ew.real(diag_part(mH(v) @ dv)), v.dtype)[..., None, :]
    return diag_part(p), dv


def _eig_vjp(ct, out, a):
    # The adjoint (PyTorch's linalg_eig_backward): with G = V^H V̄,
    # ā = V^-H (diag(w̄) + conj(F) ∘ (G - V^H V Re diag(G))) V^H; conj(adjoint(conj(ct))),
    # and its real part for real a (the transpose of the embedding of real tangents).
    w, v = out
    ct_w, ct_v = _cj(ct[0]), _cj(ct[1])
    vh = mH(v)
    g = vh @ ct_v
    g = g - vh @ (v * _as_dtype(ew.real(diag_part(g)), v.dtype)[..., None, :])
    inner = _diag_as(ct_w, v.dtype) + _over_differences(g, _cj(w), exact=True)
    ct_a = _cj(solve(vh, inner @ vh))
    return _as_dtype(ct_a, a.dtype)


eig = Primitive("eig", _eig_impl, multiple_results=True, abstract=_eig_shape,
                jvp=(_eig_jvp,), vjp=(_eig_vjp,),
                batch=axis_batch_rule(lambda: eig, multiple_results=True))
