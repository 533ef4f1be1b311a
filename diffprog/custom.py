"""User-defined derivative rules, stop_gradient and checkpoint.

Each decorated function becomes a primitive of its own whose rules call the user's rules, so the
transforms need nothing special.

- ``custom_jvp``: every level of a nested transform uses the rule; reverse mode transposes it.
- ``checkpoint``: every level recomputes the body instead of storing its intermediates.
- ``custom_vjp`` is ``transparent``: the trace the function is called under uses the rule, and
  enclosing transforms differentiate the user's fwd and bwd code op by op. That is how a
  custom_vjp works at higher order: its fwd and bwd must then be differentiable diffprog code.

All three are ``composite`` (their implementation is diffprog code), so jit inlines them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import ad
from .api_util import FlatCall, bind_flat, run_flat
from .core import Primitive, Tracer, bind, instantiate_zeros
from .prims.index import move_axis
from .prims.shape import reduce_sum
from .tree import tree_flatten, tree_map, tree_structure, tree_unflatten

__all__ = ["custom_vjp", "custom_jvp", "stop_gradient", "checkpoint"]


def _split_args(args: tuple, nondiff_argnums: tuple[int, ...]) -> tuple[tuple, tuple]:
    static = tuple(args[i] for i in nondiff_argnums)
    dynamic = tuple(a for i, a in enumerate(args) if i not in nondiff_argnums)
    return static, dynamic


def _merge_args(static: tuple, dynamic: Sequence, nondiff_argnums: tuple[int, ...]) -> list:
    args: list[Any] = []
    s, d = iter(static), iter(dynamic)
    for i in range(len(static) + len(dynamic)):
        args.append(next(s) if i in nondiff_argnums else next(d))
    return args


def _is_traced(leaves: list) -> bool:
    """Is a differentiating transform tracing any of ``leaves``? Under jit alone a custom rule
    or checkpoint is plain code (and a custom_vjp's fwd may call the function itself)."""
    top = None
    for x in leaves:
        if isinstance(x, Tracer) and (top is None or x._trace.level > top.level):
            top = x._trace
    return top is not None and top.differentiates


def _call_custom(fn: custom_vjp | custom_jvp, args: tuple) -> Any:
    """Call a custom-rule function: its body on plain values, its primitive on traced ones."""
    static, dynamic = _split_args(args, fn.nondiff_argnums)
    if not _is_traced(tree_flatten(dynamic)[0]):
        return fn.fun(*args)
    # (a custom_vjp's primitive returns its residuals after the outputs: bind_flat drops them)
    return bind_flat(fn.prim, dynamic, static=static)


class custom_vjp:
    """A function with a hand-written reverse-mode rule.

    ``fwd(*args)`` returns ``(out, residuals)``; ``bwd(*nondiff_args, residuals, cotangent)``
    returns one cotangent per differentiable argument (a tuple, each shaped like its argument).
    The rule replaces differentiation of the body in grad/vjp/jacrev. Forward mode (jvp,
    jacfwd) has no rule to use and raises; define the function with :class:`custom_jvp` there.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> @dp.custom_vjp
        ... def clip_gradient(x):
        ...     return x
        >>> clip_gradient.defvjp(lambda x: (x, None),
        ...                      lambda res, ct: (dnp.clip(ct, -1.0, 1.0),))
        >>> float(dp.grad(lambda x: clip_gradient(x) * 5.0)(2.0))
        1.0
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        name = getattr(fun, "__name__", "f")
        self.prim = Primitive(f"custom_vjp[{name}]", self._impl, multiple_results=True,
                              composite=True, transparent=True, register=False,
                              jvp=self._no_jvp, vjp=self._vjp, batch=self._batch)

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        """Set the rule: ``fwd(*args) -> (out, residuals)``, ``bwd(res, ct) -> cotangents``."""
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args: Any) -> Any:
        if self.fwd is None:
            raise TypeError(f"custom_vjp function {self.__name__} has no rule yet: call "
                            f"{self.__name__}.defvjp(fwd, bwd) before using it")
        return _call_custom(self, args)

    def _impl(self, *leaves: Any, in_tree: Any, static: tuple, call: FlatCall) -> tuple:
        dynamic = tree_unflatten(in_tree, list(leaves))
        out, res = self.fwd(*_merge_args(static, dynamic, self.nondiff_argnums))
        out_leaves, call.out_tree = tree_flatten(out)
        res_leaves, call.res_tree = tree_flatten(res)
        call.n_out = len(out_leaves)
        # The residuals ride along as extra outputs, so the reverse trace keeps them.
        return tuple(out_leaves) + tuple(res_leaves)

    def _vjp(self, cts: tuple, outs: tuple, *leaves: Any, in_tree: Any, static: tuple,
             call: FlatCall) -> tuple:
        res = tree_unflatten(call.res_tree, list(outs[call.n_out:]))
        ct = tree_unflatten(call.out_tree, list(cts[:call.n_out]))
        grads = self.bwd(*static, res, ct)
        dynamic = tree_unflatten(in_tree, list(leaves))
        if not isinstance(grads, (tuple, list)) or len(grads) != len(dynamic):
            raise TypeError(
                f"custom_vjp bwd of {self.__name__} must return a tuple with one cotangent per "
                f"differentiable argument ({len(dynamic)}), got "
                f"{type(grads).__name__}"
                + (f" of length {len(grads)}" if isinstance(grads, (tuple, list)) else ""))
        g_leaves, g_tree = tree_flatten(tuple(grads), is_leaf=lambda x: x is None)
        want = tree_structure(dynamic, is_leaf=lambda x: x is None)
        if g_tree != want:
            raise TypeError(f"custom_vjp bwd of {self.__name__} returned cotangents of "
                            f"structure {g_tree}, but the arguments have structure {want}")
        out = []
        for i, (g, x) in enumerate(zip(g_leaves, leaves)):
            if g is not None and np.shape(g) != np.shape(x):
                raise ValueError(f"custom_vjp bwd of {self.__name__}: cotangent {i} has shape "
                                 f"{np.shape(g)} but its argument has shape {np.shape(x)}")
            out.append(g)
        return tuple(out)

    def _batch(self, args: tuple, dims: tuple, *, in_tree: Any, static: tuple,
               call: FlatCall) -> tuple:
        """vmap: a custom_vjp function over the batch (its fwd and bwd vmapped), so that a
        transform enclosing the vmap still uses the rule. The cotangent of an unbatched
        argument sums over the examples."""
        from .batching import vmap
        fn = self

        def merged(leaves: Sequence) -> list:
            return _merge_args(static, tree_unflatten(in_tree, list(leaves)),
                               fn.nondiff_argnums)

        def bwd_one(res: Any, ct: Any) -> tuple:
            return tuple(tree_flatten(tuple(fn.bwd(*static, res, ct)),
                                      is_leaf=lambda x: x is None)[0])

        def bwd(res: Any, ct: Any) -> tuple:
            grads = vmap(bwd_one)(res, ct)
            return tuple(None if g is None else reduce_sum(g, axis=(0,), keepdims=False)
                         if d is None else move_axis(g, 0, d) for g, d in zip(grads, dims))

        batched = custom_vjp(vmap(lambda *leaves: fn.fun(*merged(leaves)), in_axes=dims))
        batched.defvjp(vmap(lambda *leaves: fn.fwd(*merged(leaves)), in_axes=dims), bwd)
        return _batched_outputs(batched(*args), call)

    def _no_jvp(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{self.__name__} is a custom_vjp function, which has a reverse-mode rule only, so "
            "forward mode (jvp, jacfwd, hessian, linearize) cannot differentiate it. Define it "
            "with diffprog.custom_jvp (and defjvp) to give it a forward rule, or use grad, vjp "
            "or jacrev.")


class custom_jvp:
    """A function with a hand-written forward-mode rule.

    ``jvp_rule(*nondiff_args, primals, tangents) -> (out, tangent_out)`` takes tuples of the
    differentiable arguments and their tangents. It must be linear in the tangents; reverse
    mode transposes it (by running reverse mode over the rule), so one rule serves grad, vjp
    and jvp, at any order when it is written with diffprog operations.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> @dp.custom_jvp
        ... def log1pexp(x):  # log(1 + e^x) without overflow
        ...     return dnp.maximum(x, 0.0) + dnp.log1p(dnp.exp(-dnp.abs(x)))
        >>> log1pexp.defjvp(lambda p, t: (log1pexp(p[0]), t[0] * dp.nn.sigmoid(p[0])))
        >>> float(dp.grad(log1pexp)(1000.0))
        1.0
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()) -> None:
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp_rule: Callable | None = None
        name = getattr(fun, "__name__", "f")
        # Not transparent: the rule has no residuals, so every level of a nested transform
        # uses it (the body runs only on plain values), as in JAX.
        self.prim = Primitive(f"custom_jvp[{name}]", self._impl, multiple_results=True,
                              composite=True, register=False, jvp=self._jvp, vjp=self._vjp,
                              batch=self._batch)

    def defjvp(self, jvp_rule: Callable) -> None:
        """Set the rule ``jvp_rule(*nondiff_args, primals, tangents) -> (out, t_out)``."""
        self.jvp_rule = jvp_rule

    def __call__(self, *args: Any) -> Any:
        if self.jvp_rule is None:
            raise TypeError(f"custom_jvp function {self.__name__} has no rule yet: call "
                            f"{self.__name__}.defjvp(rule) before using it")
        return _call_custom(self, args)

    def _impl(self, *leaves: Any, in_tree: Any, static: tuple, call: FlatCall) -> tuple:
        return run_flat(lambda *dynamic: self.fun(*_merge_args(static, dynamic,
                                                                self.nondiff_argnums)),
                        in_tree, leaves, call)

    def _batch(self, args: tuple, dims: tuple, *, in_tree: Any, static: tuple,
               call: FlatCall) -> tuple:
        """vmap: a custom_jvp function over the batch (its rule vmapped, tangents batched
        like their primals), so that a transform enclosing the vmap still uses the rule."""
        from .batching import vmap
        fn = self

        def rule_one(primals: tuple, tangents: tuple) -> Any:
            return fn.jvp_rule(*static, tuple(tree_unflatten(in_tree, list(primals))),
                               tuple(tree_unflatten(in_tree, list(tangents))))

        def body(*leaves: Any) -> Any:
            return fn.fun(*_merge_args(static, tree_unflatten(in_tree, list(leaves)),
                                       fn.nondiff_argnums))

        batched = custom_jvp(vmap(body, in_axes=dims))
        batched.defjvp(lambda primals, tangents: vmap(rule_one, in_axes=(dims, dims))(
            tuple(primals), tuple(tangents)))
        return _batched_outputs(batched(*args), call)

    def _tangent_out(self, leaves: Sequence, tangent_leaves: Sequence, in_tree: Any,
                     static: tuple) -> list:
        primals = tree_unflatten(in_tree, list(leaves))
        tangents = tree_unflatten(in_tree, list(tangent_leaves))
        # As in JAX: rule(*nondiff_args, primals, tangents), over the differentiable arguments.
        _, t_out = self.jvp_rule(*static, tuple(primals), tuple(tangents))
        return tree_flatten(t_out)[0]

    def _jvp(self, tangents: list, outs: tuple, *leaves: Any, in_tree: Any, static: tuple,
             call: FlatCall) -> tuple:
        tangents = [instantiate_zeros(x) if t is None else t for t, x in zip(tangents, leaves)]
        return tuple(self._tangent_out(leaves, tangents, in_tree, static))

    def _vjp(self, cts: tuple, outs: tuple, *leaves: Any, in_tree: Any, static: tuple,
             call: FlatCall) -> tuple:
        # The rule is linear in the tangents: its transpose is its vjp at zero tangents.
        def linear(*tangent_leaves):
            return self._tangent_out(leaves, tangent_leaves, in_tree, static)
        _, vjp_fn = ad.vjp(linear, *[instantiate_zeros(x) for x in leaves])
        return vjp_fn(list(cts))


def _batched_outputs(out: Any, call: FlatCall) -> tuple:
    """The output leaves of a batched custom function, batched along axis 0 (what
    :func:`~diffprog.api_util.bind_flat` reads from ``call``: no residuals follow them)."""
    leaves, call.out_tree = tree_flatten(out)
    call.n_out = len(leaves)
    return tuple(leaves), (0,) * len(leaves)


def _identity(x: Any) -> Any:
    return x


# Identity whose derivative is zero in every mode and at every order: traces compute it on
# primal values and the result is a constant to them.
_stop_gradient = Primitive("stop_gradient", _identity, differentiable=False,
                           batch=lambda args, dims: (_stop_gradient(args[0]), dims[0]))


def stop_gradient(x: Any) -> Any:
    """``x`` unchanged, but treated as a constant by every transform (zero derivative).

    Works on pytrees. Example:
        >>> import diffprog as dp
        >>> float(dp.grad(lambda x: x * dp.stop_gradient(x))(3.0))
        3.0
    """
    return tree_map(lambda leaf: bind(_stop_gradient, leaf) if isinstance(leaf, Tracer)
                    else leaf, x)


def checkpoint(fun: Callable) -> Callable:
    """Rematerialization: ``fun``'s intermediates are not kept for the backward pass.

    Reverse mode records one node for the whole call, keeping only its inputs and outputs, and
    recomputes ``fun`` (under vjp) when the backward pass reaches it: memory for compute.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> step = dp.checkpoint(lambda x: dnp.sin(dnp.sin(x)))
        >>> float(dp.grad(lambda x: step(step(x)))(0.0))
        1.0
    """
    name = getattr(fun, "__name__", "f")

    def impl(*leaves: Any, in_tree: Any, call: FlatCall) -> tuple:
        return run_flat(fun, in_tree, leaves, call)

    def flat_fun(in_tree: Any, *leaves: Any) -> list:
        return list(run_flat(fun, in_tree, leaves, None))

    def jvp_rule(tangents: list, outs: tuple, *leaves: Any, in_tree: Any, call: FlatCall) -> tuple:
        tangents = [instantiate_zeros(x) if t is None else t for t, x in zip(tangents, leaves)]
        _, t_out = ad.jvp(functools.partial(flat_fun, in_tree), list(leaves), tangents)
        return tuple(t_out)

    def vjp_rule(cts: tuple, outs: tuple, *leaves: Any, in_tree: Any, call: FlatCall) -> tuple:
        _, vjp_fn = ad.vjp(functools.partial(flat_fun, in_tree), *leaves)  # recompute
        return vjp_fn(list(cts))

    # Not transparent: each level of a nested transform recomputes instead of storing.
    prim = Primitive(f"checkpoint[{name}]", impl, multiple_results=True, composite=True,
                     register=False, jvp=jvp_rule, vjp=vjp_rule, batch="inline")

    @functools.wraps(fun)
    def checkpointed(*args: Any) -> Any:
        if not _is_traced(tree_flatten(args)[0]):
            return fun(*args)
        return bind_flat(prim, args)

    return checkpointed
