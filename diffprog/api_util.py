"""Argument handling shared by the transforms: which leaves are differentiated, argnums,
``has_aux`` pairs, the inputs that are refused, and the messages that say so.

Kept apart from the traces (as JAX keeps ``api_util`` apart from its interpreters) so that
``ad.py`` and ``jit.py`` read as what they are: interpreters of primitives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .core import Tracer, bind
from .tree import tree_flatten, tree_unflatten

__all__ = ["is_differentiable", "as_primal", "shape_dtype", "check_argnums",
           "check_differentiable_arg", "check_input_leaf", "split_aux", "kind_of", "describe",
           "is_none", "FlatCall", "run_flat", "bind_flat"]


def is_differentiable(x: Any) -> bool:
    """Is ``x`` a leaf that transforms differentiate (float or complex), not a static one?

    Example:
        >>> is_differentiable(1.0), is_differentiable(np.ones(2)), is_differentiable(3)
        (True, True, False)
    """
    if isinstance(x, (np.ndarray, np.generic, Tracer)):
        # a traced integer array (an index argument under jit) is not differentiable either
        return x.dtype.kind in "fc"
    return isinstance(x, (float, complex))


def as_primal(x: Any) -> Any:
    # Python floats become NumPy scalars so that every traced value has .shape and .dtype.
    return np.float64(x) if type(x) is float else (np.complex128(x) if type(x) is complex else x)


def shape_dtype(x: Any) -> tuple[tuple, np.dtype]:
    if isinstance(x, (np.ndarray, np.generic, Tracer)):
        return x.shape, x.dtype
    return np.shape(x), np.result_type(x)

def check_argnums(argnums: int | Sequence[int], nargs: int, fname: str) -> tuple[int, ...]:
    if type(argnums) is int and -nargs <= argnums < nargs:  # the common case, checked first
        return (argnums % nargs,)
    if isinstance(argnums, int) and not isinstance(argnums, bool):
        seq: tuple = (argnums,)
    elif isinstance(argnums, (tuple, list)):
        seq = tuple(argnums)
    else:
        seq = ()
    if not seq or not all(isinstance(a, int) and not isinstance(a, bool) for a in seq):
        raise TypeError(f"{fname}: argnums must be an int or a tuple of ints, got {argnums!r}")
    out = []
    for a in seq:
        if not -nargs <= a < nargs:
            raise ValueError(
                f"{fname}: argnums={argnums!r} but the function was called with {nargs} "
                f"positional argument{'s' if nargs != 1 else ''} (valid argnums: "
                f"0..{nargs - 1}); pass an argnums that indexes the arguments to differentiate")
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise ValueError(f"{fname}: argnums={argnums!r} names an argument twice")
    return tuple(out)


def check_differentiable_arg(arg: Any, pos: int, fname: str) -> None:
    """A differentiated argument must be a float, a float array or a pytree containing them."""
    if arg is None:
        raise TypeError(
            f"{fname}: argument {pos} is None, which has nothing to differentiate; pass a "
            "float or an array of floats (or a pytree of them), or leave the argument out of "
            "argnums")
    leaves, _ = tree_flatten(arg)
    if len(leaves) != 1 or leaves[0] is not arg:
        if leaves and not any(is_differentiable(x) for x in leaves):
            raise TypeError(
                f"{fname}: argument {pos} is a {type(arg).__name__} whose leaves are all static "
                f"(no floats: {', '.join(sorted({type(x).__name__ for x in leaves}))}), so "
                "there is nothing to differentiate; pass floats (e.g. 1.0 instead of 1), or "
                "leave the argument out of argnums")
        return
    if is_differentiable(arg):
        return
    if isinstance(arg, (bool, np.bool_, int, np.integer)):
        try:
            hint = f"pass a float (e.g. {float(arg)!r})"
        except OverflowError:  # 10**400: no float can hold it, and the message must not fail
            hint = "it is an int too large for any float: pass a float within range"
    elif isinstance(arg, np.ndarray):
        hint = f"it is an array of dtype {arg.dtype}: pass a float array (e.g. x.astype(float))"
    else:
        hint = "pass floats or float arrays (or a pytree of them)"
    raise TypeError(
        f"{fname}: argument {pos} is {type(arg).__name__} {arg!r:.60}, which cannot be "
        f"differentiated; {hint}, or leave it out of argnums to treat it as a constant")


def split_aux(result: Any, has_aux: bool, fname: str) -> tuple[Any, Any]:
    if not has_aux:
        return result, None
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(
            f"{fname} with has_aux=True requires the function to return a pair "
            f"(output, aux), but it returned {kind_of(result)}"
            + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
            + "; return (output, aux) or drop has_aux=True")
    return result[0], result[1]

def kind_of(x: Any) -> str:
    """How a value is named in messages: traced values by their array type, not tracer class."""
    if isinstance(x, (Tracer, np.ndarray, np.generic)):
        return f"an array {describe(x)}"
    return type(x).__name__


def is_none(x: Any) -> bool:
    return x is None


def describe(x: Any) -> str:
    shape, dtype = shape_dtype(x)
    return f"{dtype}{list(shape)}"


def check_input_leaf(leaf: Any, fname: str) -> None:
    """Refuse array subclasses whose meaning diffprog would silently change.

    A masked array would lose its mask (operations see the raw data) and an ``np.matrix``
    would change ``*`` from elementwise to matrix product and keep every result 2-d.

    Example:
        >>> check_input_leaf(np.ma.array([1.0, 2.0], mask=[0, 1]), "grad")
        Traceback (most recent call last):
        ...
        TypeError: grad: a masked array (numpy.ma) argument is not supported: ...
    """
    if type(leaf) is np.ndarray or not isinstance(leaf, np.ndarray):
        return
    if isinstance(leaf, np.ma.MaskedArray):
        raise TypeError(
            f"{fname}: a masked array (numpy.ma) argument is not supported: diffprog would "
            "compute on its data and silently drop the mask. Pass the data with masked "
            "entries filled (x.filled(value)) and the mask as a separate boolean array, and "
            "apply it with dnp.where")
    if isinstance(leaf, np.matrix):
        raise TypeError(
            f"{fname}: an np.matrix argument is not supported: its `*` is a matrix product "
            "and its results stay 2-d, unlike the arrays diffprog computes with. Pass "
            "np.asarray(m) and use @ for matrix products")


# ----------------------------------------------------------------------------------------------
# A function over pytrees as a primitive over flat leaves (jit, checkpoint, custom rules)


class FlatCall:
    """What one call of a function bound as a flat primitive learned while it ran.

    A primitive takes and returns arrays only, so the output's tree structure (and, for a
    custom_vjp, the residuals' structure) travels beside it in this object, passed to the
    primitive as the ``call`` param. It prints as ``...`` to keep graph listings short.
    """

    __slots__ = ("out_tree", "n_out", "res_tree")

    def __repr__(self) -> str:
        return "..."


def run_flat(fun: Any, in_tree: Any, leaves: Sequence[Any], call: FlatCall | None) -> tuple:
    """Call ``fun`` on the pytree ``in_tree`` rebuilt from ``leaves``; its output's leaves.

    Records the output structure in ``call`` (when given) for :func:`bind_flat`.
    """
    out_leaves, out_tree = tree_flatten(fun(*tree_unflatten(in_tree, list(leaves))))
    if call is not None:
        call.out_tree, call.n_out = out_tree, len(out_leaves)
    return tuple(out_leaves)


def bind_flat(prim: Any, args: tuple, **params: Any) -> Any:
    """Bind ``prim`` (whose impl uses :func:`run_flat`) to the leaves of ``args``; the output
    pytree. Extra results after the outputs (a custom_vjp's residuals) are dropped."""
    leaves, in_tree = tree_flatten(args)
    call = FlatCall()
    flat = bind(prim, *leaves, in_tree=in_tree, call=call, **params)
    return tree_unflatten(call.out_tree, list(flat[:call.n_out]))
