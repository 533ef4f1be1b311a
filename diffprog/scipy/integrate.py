"""``diffprog.scipy.integrate``: ``odeint`` with SciPy's signature, differentiated by the adjoint
method (reverse mode) and the sensitivity equations (forward mode).

The forward solve is an adaptive Dormand-Prince 5(4) method (Hairer's initial step, SciPy's
error norm and step controller) in plain NumPy on concrete values, stepping exactly to every
requested time. It is a primitive, so ``jit`` runs it as one node. Its reverse rule binds a
second primitive that solves the augmented adjoint system backwards, interval by interval from
the last time to the first,

    y' = f(y, t),   a' = -(df/dy)^T a,   θ̄' = -(df/dθ)^T a,

restarting y at each stored output and adding that output's cotangent to the adjoint ``a``.
The vector-Jacobian products come from :func:`diffprog.vjp` of ``func`` at concrete values, so
no tape of solver steps is kept: memory does not grow with the number of steps. The gradient
with respect to the times is g_i · f(y_i, t_i) for the outputs and -a(t_0) · f(y_0, t_0) for
the initial time.

Forward mode (jvp, jacfwd) binds a third primitive that solves the forward sensitivity
equations s' = (df/dy) s + (df/dθ) dθ with y, from s(t_0) = dy_0 - f(y_0, t_0) dt_0, with
:func:`diffprog.jvp` of ``func``; the output tangents are s(t_i) + f(y_i, t_i) dt_i.

Both passes call ``func``'s vjp (jvp) through :func:`diffprog.jit`, traced once per pass (so
later changes to arrays ``func`` closes over are seen), or eagerly when jit cannot trace
``func`` (Python control flow on values).

Limits: first order only: differentiating a derivative of odeint (hessian, a gradient of a
gradient) raises ``TypeError``. The method is explicit: stiff problems take many steps (and
may exceed ``mxstep``). The backward pass integrates y backwards in time, which loses accuracy
for strongly contracting systems.

Example:
    >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
    >>> from diffprog.scipy.integrate import odeint
    >>> def decay(y, t, k):
    ...     return -k * y
    >>> t = np.array([0.0, 1.0])
    >>> ys = odeint(decay, np.array([1.0]), t, args=(0.5,), rtol=1e-10, atol=1e-10)
    >>> round(float(ys[1, 0]), 8) == round(float(np.exp(-0.5)), 8)
    True
    >>> g = dp.grad(lambda k: odeint(decay, np.array([1.0]), t, args=(k,))[1, 0])(0.5)
    >>> bool(abs(g + np.exp(-0.5)) < 1e-6)   # d/dk e^{-k} = -e^{-k}
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import ad
from .. import numpy as dnp
from ..core import Primitive, ShapedArray, Tracer, bind, instantiate_zeros
from ..jit import jit
from ..prims.shape import batch_size
from ..tree import tree_flatten, tree_unflatten

__all__ = ["odeint"]

# -- Dormand-Prince 5(4) -------------------------------------------------------------------------

_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0])
_A = [np.array([]),
      np.array([1 / 5]),
      np.array([3 / 40, 9 / 40]),
      np.array([44 / 45, -56 / 15, 32 / 9]),
      np.array([19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729]),
      np.array([9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656])]
_B = np.array([35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84])
# the 5th-order solution minus the embedded 4th-order one (stage 7 is f at the new point)
_E = np.array([-71 / 57600, 0.0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40])
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0
_DEFAULT_MXSTEP = 100_000


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def _initial_step(fun, t0, y0, f0, direction, rtol, atol, span):
    """Hairer, Nørsett & Wanner's starting step (as scipy.integrate's select_initial_step)."""
    if y0.size == 0 or span == 0:
        return span
    scale = atol + np.abs(y0) * rtol
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, span)
    f1 = fun(y0 + h0 * direction * f0, t0 + h0 * direction)
    d2 = _rms((f1 - f0) / scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1 / 5)
    return min(100 * h0, h1, span)


def _dopri(fun: Callable, y0: np.ndarray, ts: np.ndarray, rtol: float, atol: float,
           mxstep: int, h0: float, hmax: float) -> np.ndarray:
    """y at every time of the monotone ``ts`` (y(ts[0]) = y0), for a flat state ``y0``."""
    out = np.empty((len(ts),) + y0.shape)
    out[0] = y0
    if len(ts) < 2:
        return out
    direction = 1.0 if ts[-1] >= ts[0] else -1.0
    t, y = float(ts[0]), y0
    f = fun(y, t)
    h = h0 if h0 else _initial_step(fun, t, y, f, direction, rtol, atol,
                                    abs(float(ts[-1]) - t))
    h = min(h, hmax)
    k = np.empty((7,) + y0.shape)
    for i in range(1, len(ts)):
        t_end = float(ts[i])
        steps = 0
        while direction * (t_end - t) > 0:
            steps += 1
            if steps > mxstep:
                raise RuntimeError(f"odeint: more than mxstep={mxstep} steps between t = "
                                   f"{ts[i - 1]} and t = {t_end}; the problem may be stiff "
                                   "(an explicit method is used) or the tolerances too tight")
            last = h >= abs(t_end - t)
            step = abs(t_end - t) if last else h
            if step < 10 * np.spacing(abs(t)) and not last:
                raise RuntimeError(f"odeint: the step size fell below the spacing of t at "
                                   f"t = {t}")
            hs = direction * step
            k[0] = f
            for s in range(1, 6):
                k[s] = fun(y + hs * (_A[s] @ k[:s].reshape(s, -1)).reshape(y.shape),
                           t + _C[s] * hs)
            y_new = y + hs * (_B @ k[:6].reshape(6, -1)).reshape(y.shape)
            t_new = t_end if last else t + hs
            f_new = fun(y_new, t_new)
            k[6] = f_new
            err = hs * (_E @ k.reshape(7, -1)).reshape(y.shape)
            scale = atol + rtol * np.maximum(np.abs(y), np.abs(y_new))
            norm = _rms(err / scale)
            if norm <= 1.0:
                factor = _MAX_FACTOR if norm == 0 else min(_MAX_FACTOR,
                                                         _SAFETY * norm ** -0.2)
                if not last:  # a step cut short to land on t_end says nothing about h
                    h = min(step * factor, hmax)
                else:
                    h = min(max(h, step * factor), hmax)
                t, y, f = t_new, y_new, f_new
            else:
                h = step * max(_MIN_FACTOR, _SAFETY * norm ** -0.2)
            if not np.all(np.isfinite(y)):
                raise RuntimeError(f"odeint: the solution is not finite at t = {t}")
        out[i] = y
    return out


# -- the primitives ------------------------------------------------------------------------------

def _float_dtype(x: Any) -> np.dtype:
    dt = np.dtype(x.dtype)
    return dt if dt.kind == "f" else np.dtype(np.float64)


def _is_float(x: Any) -> bool:
    return np.dtype(x.dtype).kind == "f"


def _call(func: Callable, tfirst: bool, y: Any, t: Any, args: tuple) -> Any:
    return func(t, y, *args) if tfirst else func(y, t, *args)


def _as64(leaves: tuple) -> list:
    """Float arguments in float64: the solver's tolerances are meant for float64 arithmetic."""
    return [np.asarray(x, np.float64) if _is_float(np.asarray(x)) else np.asarray(x)
            for x in leaves]


def _forward_impl(y0, t, *leaves, func, tree, tfirst, rtol, atol, mxstep, h0, hmax):
    args = tuple(tree_unflatten(tree, _as64(leaves)))
    shape = np.shape(y0)
    dtype = _float_dtype(np.asarray(y0))
    y0 = np.asarray(y0, dtype=np.float64)

    def fun(y, s):
        dy = _call(func, tfirst, y.reshape(shape), s, args)
        return np.asarray(dy, dtype=np.float64).reshape(-1)

    ys = _dopri(fun, y0.reshape(-1), np.asarray(t, dtype=np.float64), rtol, atol, mxstep,
                h0, hmax)
    return ys.reshape((len(t),) + shape).astype(dtype)


def _adjoint_impl(g, ys, y0, t, *leaves, func, tree, tfirst, rtol, atol, mxstep, h0, hmax):
    args = tree_unflatten(tree, _as64(leaves))
    diff = [i for i, x in enumerate(leaves) if _is_float(np.asarray(x))]
    shape = np.shape(y0)
    n = int(np.prod(shape, dtype=int))
    sizes = [np.size(leaves[i]) for i in diff]
    t64 = np.asarray(t, dtype=np.float64)
    ys64 = np.asarray(ys, dtype=np.float64).reshape(len(t64), n)
    g64 = np.asarray(g, dtype=np.float64).reshape(len(t64), n)

    def f_plain(y, s):
        return np.asarray(_call(func, tfirst, y.reshape(shape), s, tuple(args)),
                          dtype=np.float64).reshape(-1)

    dynamics = _dynamics_vjp(func, tfirst, tree, tuple(diff))
    base = _as64(leaves)

    def augmented(state, s):
        dy, cts = dynamics(state[:n].reshape(shape), state[n:2 * n].reshape(shape),
                           np.float64(s), *base)
        parts = [np.asarray(dy, dtype=np.float64).reshape(-1)]
        parts += [-np.asarray(c, dtype=np.float64).reshape(-1) for c in cts]
        return np.concatenate(parts)

    a = g64[-1].copy()
    theta = np.zeros(sum(sizes))
    t_bar = np.zeros(len(t64))
    for i in range(len(t64) - 1, 0, -1):
        t_bar[i] = g64[i] @ f_plain(ys64[i], t64[i])
        state = np.concatenate([ys64[i], a, theta])
        back = _dopri(augmented, state, t64[[i, i - 1]], rtol, atol, mxstep, h0, hmax)[-1]
        a = back[n:2 * n] + g64[i - 1]
        theta = back[2 * n:]
        a_before = back[n:2 * n]
        if i == 1:
            t_bar[0] = -(a_before @ f_plain(ys64[0], t64[0]))
    y0_bar = a.reshape(shape).astype(_float_dtype(np.asarray(y0)))
    t_bar = t_bar.astype(_float_dtype(np.asarray(t)))
    out_leaves: list = [None] * len(leaves)
    offset = 0
    for i, size in zip(diff, sizes):
        x = np.asarray(leaves[i])
        out_leaves[i] = theta[offset:offset + size].reshape(x.shape).astype(x.dtype)
        offset += size
    for i, x in enumerate(leaves):
        if out_leaves[i] is None:  # an integer argument: zero, it has no derivative
            out_leaves[i] = np.zeros(np.shape(x), _float_dtype(np.asarray(x)))
    return (y0_bar, t_bar, *out_leaves)


def _dynamics_vjp(func: Callable, tfirst: bool, tree: Any, diff: tuple) -> Callable:
    """(y, a, t, *leaves) -> (f(y, t), the cotangents a^T df/dy and a^T df/dθ of the float
    leaves θ): jitted, as the backward pass calls it a few times per step; functions jit
    cannot trace (Python control flow on values) run eagerly instead. Built afresh for each
    backward pass: jit reads the globals and closed-over arrays of ``func`` when it traces,
    and a cache across passes would miss their changes."""

    def dynamics(y, a, t, *leaves):
        def f(y, *dleaves):
            full = list(leaves)
            for i, x in zip(diff, dleaves):
                full[i] = x
            return _call(func, tfirst, y, t, tuple(tree_unflatten(tree, full)))

        dy, vjp_fn = ad.vjp(f, y, *[leaves[i] for i in diff])
        return dy, vjp_fn(dnp.reshape(a, np.shape(dy)))

    return _jit_or_eager(dynamics)


def _dynamics_jvp(func: Callable, tfirst: bool, tree: Any, diff: tuple) -> Callable:
    """(y, s, t, *leaves, *tangents of the float leaves) -> (f(y, t), df/dy s + df/dθ dθ),
    for the forward sensitivity equations; jitted as :func:`_dynamics_vjp`."""

    def dynamics(y, s, t, *rest):
        leaves, tangents = rest[:len(rest) - len(diff)], rest[len(rest) - len(diff):]

        def f(y, *dleaves):
            full = list(leaves)
            for i, x in zip(diff, dleaves):
                full[i] = x
            return _call(func, tfirst, y, t, tuple(tree_unflatten(tree, full)))

        return ad.jvp(f, (y, *[leaves[i] for i in diff]), (s, *tangents))

    return _jit_or_eager(dynamics)


def _jit_or_eager(fn: Callable) -> Callable:
    """``jit(fn)``, or ``fn`` itself from the first call jit cannot trace on (Python control
    flow on values in the user's function); an error of ``fn`` itself then surfaces eagerly."""
    jitted = jit(fn)
    use_jit = [True]

    def call(*args):
        if use_jit[0]:
            try:
                return jitted(*args)
            except Exception:
                use_jit[0] = False
        return fn(*args)

    return call


def _tangent_impl(y0, t, *rest, func, tree, tfirst, rtol, atol, mxstep, h0, hmax):
    """The outputs' tangent from the forward sensitivity equations: s' = df/dy s + df/dθ dθ
    with s(t0) = dy0 - f(y0, t0) dt0, solved together with y; the tangent at t_i is
    s(t_i) + f(y_i, t_i) dt_i. Operands: y0, t, the leaves, dy0, dt, the leaves' tangents."""
    k = (len(rest) - 2) // 2
    leaves, dy0, dt, tangents = rest[:k], rest[k], rest[k + 1], rest[k + 2:]
    base = _as64(leaves)
    diff = tuple(i for i, x in enumerate(leaves) if _is_float(np.asarray(x)))
    d_leaves = [np.asarray(tangents[i], dtype=np.float64) for i in diff]
    args = tuple(tree_unflatten(tree, base))
    shape = np.shape(y0)
    n = int(np.prod(shape, dtype=int))
    t64, dt = np.asarray(t, dtype=np.float64), np.asarray(dt, dtype=np.float64)
    y64 = np.asarray(y0, dtype=np.float64).reshape(-1)

    def f_plain(y, s):
        return np.asarray(_call(func, tfirst, y.reshape(shape), s, args),
                          dtype=np.float64).reshape(-1)

    dynamics = _dynamics_jvp(func, tfirst, tree, diff)

    def augmented(state, s):
        dy, ds = dynamics(state[:n].reshape(shape), state[n:].reshape(shape), np.float64(s),
                          *base, *d_leaves)
        return np.concatenate([np.asarray(dy, dtype=np.float64).reshape(-1),
                               np.asarray(ds, dtype=np.float64).reshape(-1)])

    s0 = np.asarray(dy0, dtype=np.float64).reshape(-1) - f_plain(y64, t64[0]) * dt[0]
    both = _dopri(augmented, np.concatenate([y64, s0]), t64, rtol, atol, mxstep, h0, hmax)
    out = np.stack([np.asarray(dy0, dtype=np.float64).reshape(-1)]  # y(t0) = y0 exactly
                   + [both[i, n:] + f_plain(both[i, :n], t64[i]) * dt[i]
                      for i in range(1, len(t64))])
    return out.reshape((len(t64),) + shape).astype(_float_dtype(np.asarray(y0)))


def _forward_shape(y0, t, *leaves, **params):
    dtype = np.dtype(y0.dtype) if np.dtype(y0.dtype).kind == "f" else np.dtype(np.float64)
    return ShapedArray((t.shape[0],) + tuple(y0.shape), dtype)


def _adjoint_shape(g, ys, y0, t, *leaves, **params):
    return tuple(ShapedArray(tuple(x.shape), _float_dtype(x)) for x in (y0, t, *leaves))


def _forward_jvp(tangents, out, y0, t, *leaves, **params):
    tangents = [instantiate_zeros(x) if d is None else d
                for d, x in zip(tangents, (y0, t, *leaves))]
    return bind(_tangent, y0, t, *leaves, *tangents, **params)


def _first_order_only(*args: Any, **params: Any) -> Any:
    raise TypeError("odeint's derivatives (the adjoint and tangent solves) cannot be "
                    "differentiated again: only first-order derivatives of odeint are supported "
                    "(grad, vjp, jacrev, jvp, jacfwd; not hessian or a gradient of a gradient)")


def _forward_vjp(ct, out, y0, t, *leaves, **params):
    grads = bind(_adjoint, ct, out, y0, t, *leaves, **params)
    return tuple(grads[:2]) + tuple(
        g if _is_float(x) else None for g, x in zip(grads[2:], leaves))


def _per_example(prim_ref: Callable, multiple_results: bool = False) -> Callable:
    """The batching rule of a solve: one solve per example, stacked along a new axis 0.

    Each example steps with its own sizes, as an unbatched call would, so vmap gives exactly
    the per-example results (and per-example derivatives of unbatched arguments such as t);
    an explicit loop over the batch, declared here rather than substituted silently."""
    def rule(args: tuple, dims: tuple, **params: Any) -> tuple:
        size = batch_size(args, dims)
        outs = []
        for i in range(size):
            example = [a if d is None else a[(slice(None),) * d + (i,)]
                       for a, d in zip(args, dims)]
            outs.append(prim_ref()(*example, **params))
        if multiple_results:
            stacked = tuple(dnp.stack([o[k] for o in outs]) for k in range(len(outs[0])))
            return stacked, (0,) * len(stacked)
        return dnp.stack(outs), 0
    return rule


_forward = Primitive("scipy_odeint", _forward_impl, abstract=_forward_shape,
                     batch=_per_example(lambda: _forward),
                     jvp=_forward_jvp, vjp=_forward_vjp)
_adjoint = Primitive("scipy_odeint_adjoint", _adjoint_impl, multiple_results=True,
                     abstract=_adjoint_shape, batch=_per_example(lambda: _adjoint, True),
                     jvp=_first_order_only, vjp=_first_order_only)
_tangent = Primitive("scipy_odeint_tangent", _tangent_impl, abstract=_forward_shape,
                     batch=_per_example(lambda: _tangent),
                     jvp=_first_order_only, vjp=_first_order_only)


def odeint(func: Callable, y0: Any, t: Any, args: Any = (), Dfun: Any = None,
           col_deriv: int = 0, full_output: int = 0, ml: Any = None, mu: Any = None,
           rtol: float | None = None, atol: float | None = None, tcrit: Any = None,
           h0: float = 0.0, hmax: float = 0.0, hmin: float = 0.0, ixpr: int = 0,
           mxstep: int = 0, mxhnil: int = 0, mxordn: int = 12, mxords: int = 5,
           printmessg: int = 0, tfirst: bool = False) -> Any:
    """``scipy.integrate.odeint``: y at the times ``t`` for y' = func(y, t, *args),
    y(t[0]) = y0 (``func(t, y, *args)`` with ``tfirst=True``).

    Returns an array of shape ``(len(t),) + y0.shape`` (``y0`` may have any shape here; a
    scalar is a vector of length 1, as in SciPy). ``t`` must be monotone (it may decrease).
    ``args`` is a tuple of arrays, numbers or pytrees of arrays; ``func`` must be written with
    diffprog or NumPy operations so that its derivatives exist.

    Differentiable to first order in ``y0``, ``t`` and every float leaf of ``args``: reverse
    mode by the adjoint method, forward mode by the sensitivity equations (see the module
    docstring), also under jit. The solver is Dormand-Prince
    5(4), not LSODA: ``rtol``/``atol`` (default 1.49012e-8 as SciPy) control the local error
    per step; ``mxstep`` (0: 100000) bounds the steps between two output times; ``h0`` is the
    first step and ``hmax`` the largest (0: automatic, unbounded). ``Dfun``, ``col_deriv``,
    ``ml``, ``mu``, ``tcrit``, ``hmin`` and the LSODA options (``ixpr``, ``mxhnil``,
    ``mxordn``, ``mxords``, ``printmessg``) are accepted and ignored; ``full_output`` is not
    supported.

    Example:
        >>> import numpy as np
        >>> ys = odeint(lambda y, t: -y, np.array([1.0, 2.0]), [0.0, 1.0], rtol=1e-10,
        ...             atol=1e-12)
        >>> bool(np.allclose(ys[1], np.exp(-1.0) * np.array([1.0, 2.0]), rtol=1e-9))
        True
    """
    if full_output:
        raise NotImplementedError("odeint(full_output=True) is not supported by "
                                  "diffprog.scipy.integrate.odeint")
    if not isinstance(args, tuple):
        args = (args,)
    leaves, tree = tree_flatten(args)
    leaves = [x if isinstance(x, Tracer) else np.asarray(x) for x in leaves]
    y0 = y0 if isinstance(y0, Tracer) else np.asarray(y0)
    if y0.ndim == 0:
        y0 = dnp.reshape(y0, (1,))
    t = t if isinstance(t, Tracer) else np.asarray(t)
    if t.ndim != 1 or t.shape[0] < 1:
        raise ValueError(f"odeint: t must be a non-empty 1-D sequence of times, got shape "
                         f"{t.shape}")
    params = dict(func=func, tree=tree, tfirst=bool(tfirst),
                  rtol=1.49012e-8 if rtol is None else float(rtol),
                  atol=1.49012e-8 if atol is None else float(atol),
                  mxstep=int(mxstep) if mxstep else _DEFAULT_MXSTEP, h0=abs(float(h0)),
                  hmax=abs(float(hmax)) if hmax else math.inf)
    if not isinstance(t, Tracer):
        dt = np.diff(t.astype(np.float64))
        if not (np.all(dt >= 0) or np.all(dt <= 0)):
            raise ValueError("odeint: the times t must be monotone (increasing or decreasing)")
    if not any(isinstance(x, Tracer) for x in (y0, t, *leaves)):
        return _forward_impl(y0, t, *leaves, **params)
    return bind(_forward, y0, t, *leaves, **params)
