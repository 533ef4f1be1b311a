"""Numerical differentiation, the oracle that every derivative is checked against.

Central differences ``(f(x + h v) - f(x - h v)) / 2h`` have error O(h²). The differencing is
plain NumPy; float32 inputs are evaluated in float64 for the oracle, so a float32 derivative is
compared to a more accurate reference rather than to one with float32's rounding noise.

``check_grads`` checks forward mode against the numerical directional derivative, and reverse
mode through the identity <u, J v> = <J^T u, v> for random u and v. Higher orders apply the
same checks to the jvp and vjp functions themselves, as autograd and JAX do.

Complex inputs are perturbed along their real and their imaginary parts separately (two
directions, each checked on its own), so a rule right along the real axis only cannot pass.
Gradients follow JAX's convention: for a real f of z = x + iy, ``df/dx - 1j * df/dy``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import ad
from .tree import tree_flatten, tree_unflatten

__all__ = ["check_grads", "numerical_jvp", "numerical_grad"]

# Step and tolerance by dtype: the step balances truncation (h²) against rounding (eps / h).
_EPS = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-5}
_TOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 2e-3}


def _is_none(x: Any) -> bool:
    return x is None


def _dtype_of(x: Any) -> np.dtype:
    return np.dtype(getattr(x, "dtype", np.float64))


def _oracle_leaf(x: Any) -> Any:
    """The value the oracle evaluates at: float32 becomes float64 for accuracy."""
    if isinstance(x, (np.ndarray, np.generic)) and x.dtype == np.float32:
        return x.astype(np.float64)
    if isinstance(x, (np.ndarray, np.generic)) and x.dtype == np.complex64:
        return x.astype(np.complex128)
    return x


def _axpy(a: float, v: Any, x: Any) -> Any:
    out = x + a * np.asarray(v, dtype=_dtype_of(x))
    return float(out) if type(x) is float else out


def numerical_jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any],
                  eps: float | None = None) -> Any:
    """Directional derivative of ``f`` at ``primals`` along ``tangents`` by central differences.

    Example:
        >>> import numpy as np
        >>> round(float(numerical_jvp(np.sin, (0.0,), (1.0,))), 8)
        1.0
    """
    # None is a leaf here so that a None tangent can stand for a static primal leaf.
    p_leaves, p_def = tree_flatten(tuple(primals), is_leaf=_is_none)
    t_leaves, t_def = tree_flatten(tuple(tangents), is_leaf=_is_none)
    if t_def != p_def:
        raise ValueError(f"numerical_jvp: tangents have structure {t_def}, primals {p_def}")
    h = eps if eps is not None else min(
        (_EPS.get(_dtype_of(p), 1e-5) for p in p_leaves if ad.is_differentiable(p)),
        default=1e-5)
    plus, minus = [], []
    for p, t in zip(p_leaves, t_leaves):
        if ad.is_differentiable(p) and t is not None:
            p = _oracle_leaf(p)
            plus.append(_axpy(h, t, p))
            minus.append(_axpy(-h, t, p))
        else:
            plus.append(p)
            minus.append(p)
    f_plus = f(*tree_unflatten(p_def, plus))
    f_minus = f(*tree_unflatten(p_def, minus))
    o_plus, o_def = tree_flatten(f_plus)
    o_minus, _ = tree_flatten(f_minus)
    diffs = [(np.asarray(a) - np.asarray(b)) / (2 * h) if ad.is_differentiable(a) else None
             for a, b in zip(o_plus, o_minus)]
    return tree_unflatten(o_def, diffs)


def numerical_grad(f: Callable, x: Any, eps: float | None = None,
                   holomorphic: bool = False) -> Any:
    """Gradient of a scalar ``f`` at the pytree ``x``, one central difference per entry.

    A complex entry ``z = a + ib`` is differenced along ``a`` and along ``b`` separately and
    gives JAX's (and :func:`~diffprog.grad`'s) ``df/da - 1j * df/db`` for a real ``f``; with
    ``holomorphic=True`` (a complex holomorphic ``f``) it gives ``f'(z) = df/da``.

    Example:
        >>> import numpy as np
        >>> numerical_grad(lambda x: (x ** 2).sum(), np.array([1.0, 2.0])).round(6)
        array([2., 4.])
        >>> complex(numerical_grad(lambda z: abs(z) ** 2, np.complex128(3 + 4j)).round(6))
        (6-8j)
    """
    leaves, treedef = tree_flatten(x)
    grads: list[Any] = []
    for i, leaf in enumerate(leaves):
        if not ad.is_differentiable(leaf):
            grads.append(None)
            continue
        arr = np.asarray(leaf)
        g = np.zeros(arr.shape, dtype=np.result_type(arr.dtype, np.float64))
        # the real axis, and for complex entries the imaginary axis too (1j as the step)
        steps = (1, 1j) if arr.dtype.kind == "c" and not holomorphic else (1,)
        for j in np.ndindex(arr.shape):
            for step in steps:
                e = np.zeros(arr.shape, dtype=arr.dtype)
                e[j] = step
                direction = [np.zeros_like(np.asarray(v)) if ad.is_differentiable(v) else None
                             for v in leaves]
                direction[i] = e if arr.shape else e.reshape(())
                d = numerical_jvp(lambda *ls: f(tree_unflatten(treedef, list(ls))),
                                  leaves, direction, eps)
                if not holomorphic and np.iscomplexobj(d):
                    raise TypeError("numerical_grad: f returned a complex value; pass "
                                    "holomorphic=True for the derivative of a holomorphic f")
                g[j] += d if step == 1 else -1j * d  # df/da - 1j df/db
        grads.append(g.astype(arr.dtype) if arr.dtype.kind in "fc" else g)
        if type(leaf) is float:
            grads[-1] = float(grads[-1])
    return tree_unflatten(treedef, grads)


def _random_like(x: Any, rng: np.random.Generator, part: str = "both") -> Any:
    """A random direction shaped like ``x``; for complex ``x``, with random real and imaginary
    parts (``part="both"``) or along one of them only (``"real"``, ``"imag"``)."""
    if not ad.is_differentiable(x):
        return x  # a static leaf: its "tangent" is ignored, and keeps the tree's structure
    dtype = _dtype_of(x)
    v = rng.standard_normal(np.shape(x))
    if dtype.kind == "c":
        if part == "both":
            v = v + 1j * rng.standard_normal(np.shape(x))
        elif part == "imag":
            v = 1j * v
    v = np.asarray(v).astype(dtype)
    return float(v) if type(x) is float else v


def _parts(leaves: list) -> tuple[str, ...]:
    """The directions to check along: with a complex leaf, its real and its imaginary parts
    separately, so that each is checked on its own (an error in one cannot hide behind the
    other in a single random direction)."""
    if any(ad.is_differentiable(x) and _dtype_of(x).kind == "c" for x in leaves):
        return ("real", "imag")
    return ("both",)


def _inner(xs: list, ys: list) -> float:
    # The real bilinear pairing Re(sum(x * y)), without conjugation: vjp rules are transposes
    # under it (JAX's convention), e.g. real's vjp is c -> c + 0j and imag's c -> -1j * c.
    # JAX's check_vjp reaches the same identity with Re(vdot) and conj(vjp(conj(u))). For real
    # values it is the ordinary dot product.
    total = 0.0
    for x, y in zip(xs, ys):
        if ad.is_differentiable(x) and ad.is_differentiable(y):
            total += float(np.real(np.sum(np.multiply(np.asarray(x, dtype=complex),
                                                      np.asarray(y, dtype=complex)))))
    return total


def _tolerance(leaves: list, atol: float | None, rtol: float | None) -> tuple[float, float]:
    dtypes = [_dtype_of(x) for x in leaves if ad.is_differentiable(x)]
    tol = max((_TOL.get(np.dtype(d.char.lower()) if d.kind == "c" else d, 1e-6)
               for d in dtypes), default=1e-6)
    return (tol if atol is None else atol), (tol if rtol is None else rtol)


def _assert_close(name: str, got: Any, want: Any, atol: float, rtol: float) -> None:
    g_leaves, g_def = tree_flatten(got, is_leaf=_is_none)
    w_leaves, w_def = tree_flatten(want, is_leaf=_is_none)
    if g_def != w_def:
        raise AssertionError(f"{name}: structure {g_def}, expected {w_def}")
    for i, (g, w) in enumerate(zip(g_leaves, w_leaves)):
        if w is None or g is None:
            if (w is None) != (g is None):
                raise AssertionError(f"{name}: output {i} is {g!r}, expected {w!r}")
            continue
        g = np.asarray(g, dtype=np.result_type(g, np.float64))
        w = np.asarray(w, dtype=np.result_type(w, np.float64))
        if g.shape != w.shape:
            raise AssertionError(f"{name}: output {i} has shape {g.shape}, expected {w.shape}")
        if not np.allclose(g, w, atol=atol, rtol=rtol, equal_nan=True):
            err = np.max(np.abs(g - w))
            raise AssertionError(
                f"{name}: output {i} differs from the numerical derivative (max abs error "
                f"{err:.3g}, atol={atol:g}, rtol={rtol:g})\n got:      {g!r}\n expected: {w!r}")


def _check_jvp(f: Callable, args: tuple, rng: np.random.Generator, atol, rtol, eps,
               where: str) -> None:
    leaves, treedef = tree_flatten(args, is_leaf=_is_none)
    a, r = _tolerance(leaves, atol, rtol)
    for part in _parts(leaves):
        tangents = tree_unflatten(treedef, [_random_like(x, rng, part) for x in leaves])
        _, t_ad = ad.jvp(f, args, tangents)
        t_num = numerical_jvp(f, args, tangents, eps)
        along = "" if part == "both" else f", along the {part} parts of the complex inputs"
        _assert_close(f"forward mode ({where}{along})", t_ad, t_num, a, r)


def _check_vjp(f: Callable, args: tuple, rng: np.random.Generator, atol, rtol, eps,
               where: str) -> None:
    # None is a leaf throughout, so static leaves keep their places in every list below.
    leaves, treedef = tree_flatten(args, is_leaf=_is_none)
    out, vjp_fn = ad.vjp(f, *args)
    o_leaves, o_def = tree_flatten(out, is_leaf=_is_none)
    u = [_random_like(o, rng) for o in o_leaves]
    ct = tree_flatten(vjp_fn(tree_unflatten(o_def, u)), is_leaf=_is_none)[0]
    a, r = _tolerance(leaves + o_leaves, atol, rtol)
    # A v along the real parts checks Re(J^T u), one along the imaginary parts Im(J^T u).
    for part in _parts(leaves):
        v = [_random_like(x, rng, part) for x in leaves]
        jv = tree_flatten(numerical_jvp(f, args, tree_unflatten(treedef, v), eps),
                          is_leaf=_is_none)[0]
        lhs = _inner(u, jv)
        rhs = _inner(ct, v)
        scale = max(abs(lhs), abs(rhs), 1.0)
        if not abs(lhs - rhs) <= a * scale + r * scale:
            along = "" if part == "both" else f", along the {part} parts of the complex inputs"
            raise AssertionError(
                f"reverse mode ({where}{along}): <u, J v> = {lhs!r} (numerical) but "
                f"<J^T u, v> = {rhs!r} (vjp); error {abs(lhs - rhs):.3g}")


def check_grads(f: Callable, args: Sequence[Any], order: int = 2,
                modes: Sequence[str] = ("fwd", "rev"), eps: float | None = None,
                atol: float | None = None, rtol: float | None = None, seed: int = 0) -> None:
    """Check ``f``'s derivatives at ``args`` against central differences, up to ``order``.

    Forward mode compares ``jvp`` with the numerical directional derivative along a random
    direction; reverse mode checks <u, J v> = <J^T u, v> for random u, v. Order k > 1 checks
    the jvp and vjp functions themselves at order k - 1. Raises AssertionError on a mismatch.

    Example:
        >>> import numpy as np, diffprog as dp
        >>> dp.check_grads(lambda x: dp.numpy.sin(x) * x, (np.linspace(0, 1, 3),), order=2)
    """
    if not isinstance(args, (tuple, list)):
        raise TypeError("check_grads: args must be a tuple of positional arguments, e.g. (x,)")
    for mode in modes:
        if mode not in ("fwd", "rev"):
            raise ValueError(f"check_grads: unknown mode {mode!r}; use 'fwd' and/or 'rev'")
    _check_grads(f, tuple(args), order, tuple(modes), eps, atol, rtol,
                 np.random.default_rng(seed), 1, "")


def _check_grads(f, args, order, modes, eps, atol, rtol, rng, depth, how) -> None:
    if order < 1:
        return
    where = f"order {depth}{how}"
    if "fwd" in modes:
        _check_jvp(f, args, rng, atol, rtol, eps, where)
        if order > 1:
            leaves, treedef = tree_flatten(args, is_leaf=_is_none)
            tangents = tree_unflatten(treedef, [_random_like(x, rng) for x in leaves])
            _check_grads(lambda p, t: ad.jvp(f, p, t), (args, tangents), order - 1, modes,
                         eps, atol, rtol, rng, depth + 1, how + " of jvp")
    if "rev" in modes:
        _check_vjp(f, args, rng, atol, rtol, eps, where)
        if order > 1:
            def f_vjp(*primals):
                out, vjp_fn = ad.vjp(f, *primals)
                return vjp_fn(out)
            _check_grads(f_vjp, args, order - 1, modes, eps, atol, rtol, rng, depth + 1,
                         how + " of vjp")
