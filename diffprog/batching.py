"""Vectorizing map: ``vmap`` and the batch trace behind it.

A :class:`BatchTracer` holds a value with one extra axis, the batch axis, at position ``bdim``;
the function being mapped sees only the per-example shape. Every primitive applied to such a
value reaches :meth:`BatchTrace.process`, which calls the primitive's batching rule
(``Primitive.batch``): the same primitive applied once to the whole batch, with its params
adjusted (axes shifted, an einsum letter added, the index given one more full slice). No rule
loops over the examples in Python, and a primitive without a rule raises a TypeError naming it.

The trace has a level like every other, so vmap composes with the derivative transforms and
with jit in any order: rules are written with diffprog operations, which the enclosing traces
trace in turn (under jit the batched values are jit's abstract tracers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .core import Primitive, ShapedArray, Trace, Tracer, concrete
from .prims.shape import bring_front, broadcast_to, reshape, to_front
from .tree import keystr, tree_flatten, tree_flatten_with_path, tree_unflatten

__all__ = ["vmap", "BatchTrace", "BatchTracer", "NoBatchingRule"]


class NoBatchingRule(TypeError):
    """A primitive without a batching rule met a batched value."""


_VMAP_MSG = ("{what} of a value batched by vmap: each example has its own value, so Python "
             "control flow and conversions cannot depend on it. Compute both branches and "
             "choose elementwise with dnp.where(cond, a, b), or move the branch outside vmap.")


class _PerExample(ShapedArray):
    """What :func:`~diffprog.core.concrete` finds under a batched value: the per-example shape
    and dtype, and no single value (conversions raise, naming vmap)."""

    __slots__ = ()

    def _refuse(self, what: str) -> TypeError:
        return TypeError(_VMAP_MSG.format(what=what))

    def __bool__(self) -> bool:
        raise self._refuse("bool() (an `if`, `while`, `and`/`or` or assert)")

    def __float__(self) -> float:
        raise self._refuse("float()")

    def __int__(self) -> int:
        raise self._refuse("int()")

    def __index__(self) -> int:
        raise self._refuse("Using as an index")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise self._refuse("np.asarray()")


class BatchTracer(Tracer):
    """A batched value: ``val`` has the batch axis at ``bdim``; ``shape`` is an example's."""

    __slots__ = ("val", "bdim", "primal")

    def __init__(self, trace: Trace, val: Any, bdim: int) -> None:
        self._trace = trace
        self.val = val
        self.bdim = bdim
        shape = list(np.shape(val))
        del shape[bdim]
        dtype = val.dtype if hasattr(val, "dtype") else np.result_type(val)
        self.primal = _PerExample(shape, dtype,
                                  weak_type=getattr(concrete(val), "weak_type", False))

    def __repr__(self) -> str:
        return f"BatchTracer(bdim={self.bdim}, {self.val!r})"


class BatchTrace(Trace):
    """Runs each primitive once over the whole batch, through its batching rule."""

    __slots__ = ("size",)
    # custom rules mean something under vmap: an enclosing transform may differentiate the
    # batched call, so they are bound (and batched by their rules), not run as plain code
    differentiates = True

    def __init__(self, size: int) -> None:
        super().__init__("vmap")
        self.size = size

    def process(self, prim: Primitive, args: tuple, params: dict) -> Any:
        vals, dims = [], []
        for a in args:
            if isinstance(a, BatchTracer) and a._trace is self:
                vals.append(a.val)
                dims.append(a.bdim)
            else:
                vals.append(a)
                dims.append(None)
        rule = prim.batch
        if rule is None:
            raise NoBatchingRule(
                f"vmap: primitive {prim.name!r} has no batching rule (Primitive.batch), so it "
                "cannot be applied to a batched value; declare one beside the primitive (see "
                "docs/ADDING_A_PRIMITIVE.md), or call the function per example")
        if rule == "inline":  # diffprog code: batch the primitives of its body instead
            return prim.impl(*args, **params)
        if rule == "elementwise":
            out, out_dims = _elementwise(prim, vals, dims, params, self.size)
        else:
            out, out_dims = rule(tuple(vals), tuple(dims), **params)
        if prim.multiple_results:
            return tuple(self.wrap(o, d) for o, d in zip(out, out_dims))
        return self.wrap(out, out_dims)

    def wrap(self, val: Any, bdim: int | None) -> Any:
        return val if bdim is None else BatchTracer(self, val, bdim)


_SCALARS = (bool, int, float, complex)


def _elementwise(prim: Primitive, vals: list, dims: list, params: dict, size: int) -> tuple:
    """The rule of ``batch="elementwise"``: batch axes to the front, the unbatched operands
    broadcast to the batched shape (explicitly: the derivative rules assume operands of the
    output's shape). Python scalars stay scalars, weakly typed as before."""
    shapes = [tuple(np.shape(v)) if d is None else
              tuple(s for i, s in enumerate(np.shape(v)) if i != d)
              for v, d in zip(vals, dims) if not isinstance(v, _SCALARS)]
    full = np.broadcast_shapes(*shapes)
    ops = []
    for v, d in zip(vals, dims):
        if d is None and isinstance(v, _SCALARS):
            ops.append(v)
            continue
        v = bring_front(v, d, size) if d is not None else v
        inner = tuple(np.shape(v))[1:] if d is not None else tuple(np.shape(v))
        if d is not None and inner != full:
            v = reshape(v, shape=(size,) + (1,) * (len(full) - len(inner)) + inner)
        if d is None or inner != full:
            v = broadcast_to(v, shape=(size,) + full)
        ops.append(v)
    return prim(*ops, **params), 0


# ----------------------------------------------------------------------------------------------
# vmap


def _flat_axes(axes: Any, tree: Any, what: str) -> list:
    """One axis (int or None) per leaf of ``tree``, from ``axes``: an int, None, or a pytree
    prefix of ``tree`` (tuples, lists, dicts) whose leaves are ints or None."""
    leaves = tree_flatten_with_path(tree)[0]
    if axes is None or (isinstance(axes, int) and not isinstance(axes, bool)):
        return [axes] * len(leaves)
    axis_leaves = tree_flatten_with_path(axes, is_leaf=lambda x: x is None)[0]
    for path, a in axis_leaves:
        if a is not None and (not isinstance(a, int) or isinstance(a, bool)):
            raise TypeError(f"vmap: {what}{keystr(path)} is {a!r}; each entry of {what} must "
                            "be an int (the batch axis) or None (not batched)")

    def key(path: tuple) -> tuple:
        return tuple(keystr((k,)) for k in path)

    prefixes = [(key(p), a) for p, a in axis_leaves]
    out = []
    for path, _ in leaves:
        k = key(path)
        found = [a for p, a in prefixes if k[:len(p)] == p]
        if not found:
            raise ValueError(
                f"vmap: {what} does not match the structure of the {_noun(what)}: nothing in "
                f"{what} covers the leaf at {_noun(what)}{keystr(path)} (give {what} as an "
                f"int, None, or a pytree prefix of the {_noun(what)})")
        out.append(found[0])
    covered = {p for p, _ in prefixes}
    leaf_keys = [key(p) for p, _ in leaves]
    for p in covered:
        if not any(k[:len(p)] == p for k in leaf_keys) and not _empty_at(tree, p):
            raise ValueError(
                f"vmap: {what} has an entry at {''.join(p)} but the {_noun(what)} have no "
                f"such place; {what} must be a pytree prefix of the {_noun(what)}")
    return out


def _noun(what: str) -> str:
    return "arguments" if what == "in_axes" else "outputs"


def _empty_at(tree: Any, path: tuple) -> bool:
    """Is there an (empty) subtree of ``tree`` at ``path`` (keystr pieces)?"""
    node = tree
    for piece in path:
        try:
            if isinstance(node, dict):
                match = [k for k in node if keystr_piece(k) == piece]
                if not match:
                    return False
                node = node[match[0]]
            elif isinstance(node, (tuple, list)):
                node = node[int(piece.strip("[]"))]
            else:
                return False
        except (ValueError, IndexError):
            return False
    return True


def keystr_piece(k: Any) -> str:
    return keystr(tree_flatten_with_path({k: 0})[0][0][0])


def vmap(f: Callable, in_axes: Any = 0, out_axes: Any = 0,
         axis_size: int | None = None) -> Callable:
    """Vectorize ``f`` over a batch axis of its arguments, as JAX's ``vmap``.

    ``in_axes`` says where the batch axis of each argument is: an int (every array leaf, the
    same axis; negative counts from the end), ``None`` (not batched: every example sees the
    whole value) or a pytree prefix of the argument tuple (tuples, lists, dicts) of those.
    ``out_axes`` likewise places the batch axis in the outputs; an output that does not depend
    on the batch is broadcast along it (``None`` keeps it as it is). ``axis_size`` gives the
    batch size when no argument is batched.

    Each primitive runs once on the whole batch (its batching rule), and vmap composes with
    ``grad``, ``jvp``, ``vjp``, the Jacobians, custom rules, ``checkpoint`` and ``jit`` in any
    order: ``vmap(grad(f))`` gives per-example gradients.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.vmap(lambda x, y: dnp.dot(x, y), in_axes=(0, None))(np.eye(2), np.array([3.0, 4.0]))
        array([3., 4.])
        >>> dp.vmap(dp.grad(lambda w, x: (w * x).sum() ** 2), in_axes=(None, 0))(
        ...     np.ones(2), np.array([[1.0, 0.0], [1.0, 1.0]]))
        array([[2., 0.],
               [4., 4.]])
    """
    if axis_size is not None and (not isinstance(axis_size, int) or axis_size < 0):
        raise ValueError(f"vmap: axis_size must be a non-negative int, got {axis_size!r}")

    def vmapped(*args: Any, **kwargs: Any) -> Any:
        if isinstance(in_axes, (tuple, list)) and len(in_axes) != len(args):
            raise ValueError(
                f"vmap: in_axes has {len(in_axes)} entries but the function was called with "
                f"{len(args)} positional argument{'s' if len(args) != 1 else ''}; give one "
                "entry per argument (or a single int/None for all)")
        axes_tree = tuple(in_axes) if isinstance(in_axes, list) else in_axes
        # keyword arguments are batched along axis 0, as in JAX
        axes = _flat_axes(axes_tree, args, "in_axes") + [0] * len(tree_flatten(kwargs)[0])
        with_paths, treedef = tree_flatten_with_path((args, kwargs))
        leaves = [leaf for _, leaf in with_paths]
        sizes = []  # (path, size) of the batched leaves
        moved = []
        with_paths = [(_arg_path(p), leaf) for p, leaf in with_paths]
        for (path, leaf), ax in zip(with_paths, axes):
            if ax is None:
                moved.append(None)
                continue
            ndim = len(np.shape(leaf))
            if not -ndim <= ax < ndim:
                raise ValueError(
                    f"vmap: in_axes={ax} for the argument {path} of shape "
                    f"{tuple(np.shape(leaf))}, which has no axis {ax} (rank {ndim}); use None "
                    "for an argument that is the same for every example")
            ax %= ndim
            moved.append(ax)
            sizes.append((path, np.shape(leaf)[ax]))
        size = axis_size
        distinct = {s for _, s in sizes} | ({axis_size} if axis_size is not None else set())
        if len(distinct) > 1:
            listing = ", ".join(f"{p} has size {s}" for p, s in sizes)
            extra = f" (axis_size={axis_size})" if axis_size is not None else ""
            raise ValueError(
                f"vmap got inconsistent sizes for the mapped axes{extra}: {listing}; every "
                "batched argument needs the same size along its in_axes")
        if size is None:
            if not sizes:
                raise ValueError(
                    "vmap: no argument is batched (in_axes is None everywhere, or there are no "
                    "array arguments), so the batch size is unknown: pass axis_size")
            size = sizes[0][1]
        trace = BatchTrace(size)
        wrapped = [leaf if ax is None else BatchTracer(trace, leaf, ax)
                   for leaf, ax in zip(leaves, moved)]
        try:
            call_args, call_kwargs = tree_unflatten(treedef, wrapped)
            out = f(*call_args, **call_kwargs)
        finally:
            trace.alive = False
        out_flat = _flat_axes(out_axes, out, "out_axes")
        o_leaves, o_def = tree_flatten(out)
        results = []
        for leaf, ax in zip(o_leaves, out_flat):
            results.append(_place(trace, leaf, ax, size))
        return tree_unflatten(o_def, results)

    vmapped.__name__ = f"vmap({getattr(f, '__name__', 'f')})"
    vmapped.__doc__ = f"{getattr(f, '__name__', 'f')}, vectorized over a batch axis."
    return vmapped


def _arg_path(path: tuple) -> str:
    """``args[0]['w']`` or ``kwargs['x']`` for a path into ``(args, kwargs)``."""
    rest = keystr(path[1:])
    return ("args" if keystr(path[:1]) == "[0]" else "kwargs") + rest


def _place(trace: BatchTrace, leaf: Any, ax: int | None, size: int) -> Any:
    """An output leaf with its batch axis at ``ax`` (broadcast if it is not batched)."""
    batched = isinstance(leaf, BatchTracer) and leaf._trace is trace
    if ax is None:
        if batched:
            raise ValueError(
                "vmap: out_axes is None for an output that depends on the batched arguments "
                f"(an output of per-example shape {leaf.shape}); give it an axis")
        return leaf
    ndim = len(np.shape(leaf.val if batched else leaf)) + (0 if batched else 1)
    if not -ndim <= ax < ndim:
        raise ValueError(f"vmap: out_axes={ax} for an output of rank {ndim} (with the batch "
                         "axis)")
    ax %= ndim
    if batched:
        val = to_front(leaf.val, leaf.bdim)
    else:
        val = bring_front(np.asarray(leaf) if isinstance(leaf, _SCALARS) else leaf, None, size)
    if ax == 0:
        return val.copy() if isinstance(val, np.ndarray) and not val.flags.writeable else val
    n = len(np.shape(val))
    order = list(range(1, n))
    order.insert(ax, 0)
    from .prims.shape import transpose
    return transpose(val, perm=tuple(order))
