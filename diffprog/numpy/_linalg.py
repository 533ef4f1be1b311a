"""Products of arrays: matmul, dot, vdot, inner, tensordot, einsum.

``matmul`` and ``einsum`` are primitives; ``dot``, ``vdot``, ``inner`` and ``tensordot`` move
the contracted axes next to each other and call matmul (one BLAS product).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import prims as P
from ..core import Tracer, bind
from ..prims.linalg import LETTERS, canonical_subscripts
from ._core import _any_traced, _as_array, _dtype, _shape, implements
from ._elementwise import astype, conj, multiply
from ._shapes import broadcast_to, reshape, transpose

__all__ = ["matmul", "dot", "vdot", "inner", "tensordot", "einsum"]


# ----------------------------------------------------------------------------

@implements(np.matmul, np.linalg.matmul)
def matmul(x1: Any, x2: Any) -> Any:
    """Matrix product with NumPy's rules for 1-D operands and batch broadcasting.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(lambda a: dnp.sum(dnp.matmul(a, np.ones(2))))(np.eye(2))
        array([[1., 1.],
               [1., 1.]])
    """
    if not _any_traced(x1, x2):
        return np.matmul(x1, x2)
    a, b = _as_array(x1), _as_array(x2)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: input operand does not have enough dimensions (scalars are "
                         "not allowed; use * for scaling)")
    vec_a, vec_b = a.ndim == 1, b.ndim == 1
    if vec_a:
        a = reshape(a, (1, a.shape[0]))
    if vec_b:
        b = reshape(b, (b.shape[0], 1))
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {_shape(x1)} and {_shape(x2)} are not aligned: "
                         f"{a.shape[-1]} (last axis of x1) != {b.shape[-2]} (second-to-last "
                         "axis of x2)")
    if a.dtype != b.dtype:
        a, b = (astype(v, np.result_type(a.dtype, b.dtype)) for v in (a, b))
    if a.ndim > 2 and b.ndim == 2:
        # A stack of matrices times one matrix is one big product: no batch to broadcast.
        lead = a.shape[:-1]
        # the leading size is explicit: -1 is ambiguous when the last axis has size 0
        out = bind(P.matmul, reshape(a, (math.prod(lead), a.shape[-1])), b)
        out = reshape(out, lead + (b.shape[-1],))
    else:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if isinstance(a, Tracer) and a.shape[:-2] != batch:
            a = broadcast_to(a, batch + a.shape[-2:])
        if isinstance(b, Tracer) and b.shape[:-2] != batch:
            b = broadcast_to(b, batch + b.shape[-2:])
        out = bind(P.matmul, a, b)
    if vec_a and vec_b:
        return reshape(out, out.shape[:-2])
    if vec_a:
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if vec_b:
        return reshape(out, out.shape[:-1])
    return out


def _axis_list(axes: Any, ndim: int) -> list[int]:
    seq = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    out = []
    for a in seq:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(int(a), ndim)
        out.append(int(a) % ndim)
    return out


@implements(np.tensordot, np.linalg.tensordot)
def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    """Sum of products over ``axes`` (an int N: the last N of ``a`` with the first N of ``b``;
    or a pair of axis sequences), like ``np.tensordot``.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> dnp.tensordot(np.ones((2, 3)), np.ones((3, 4)), axes=1).shape
        (2, 4)
    """
    if not _any_traced(a, b):
        return np.tensordot(a, b, axes)
    a, b = _as_array(a), _as_array(b)
    if isinstance(axes, (int, np.integer)):
        if axes < 0 or axes > min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: axes={axes} must be between 0 and the rank of both "
                             "operands")
        axes_a = list(range(a.ndim - int(axes), a.ndim))
        axes_b = list(range(int(axes)))
    else:
        axes_a, axes_b = _axis_list(axes[0], a.ndim), _axis_list(axes[1], b.ndim)
    if len(axes_a) != len(axes_b) or any(a.shape[i] != b.shape[j]
                                         for i, j in zip(axes_a, axes_b)):
        raise ValueError(f"tensordot: shape-mismatch for sum: axes {axes_a} of shape {a.shape} "
                         f"against axes {axes_b} of shape {b.shape}")
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [j for j in range(b.ndim) if j not in axes_b]
    k = int(np.prod([a.shape[i] for i in axes_a], dtype=np.int64))
    shape_a = tuple(a.shape[i] for i in free_a)
    shape_b = tuple(b.shape[j] for j in free_b)
    m = int(np.prod(shape_a, dtype=np.int64))
    n = int(np.prod(shape_b, dtype=np.int64))
    a2 = reshape(transpose(a, free_a + axes_a), (m, k))
    b2 = reshape(transpose(b, axes_b + free_b), (k, n))
    return reshape(matmul(a2, b2), shape_a + shape_b)


@implements(np.dot)
def dot(a: Any, b: Any) -> Any:
    """``np.dot``: scalars multiply, 1-D and 2-D operands use matmul, and for N-D operands the
    result sums over the last axis of ``a`` and the second-to-last of ``b``.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> dnp.dot(np.ones((2, 3, 4)), np.ones((5, 4, 6))).shape
        (2, 3, 5, 6)
    """
    if not _any_traced(a, b):
        return np.dot(a, b)
    a, b = _as_array(a), _as_array(b)  # np.dot promotes Python scalars as arrays (not weakly)
    nd_a, nd_b = len(_shape(a)), len(_shape(b))
    if nd_a == 0 or nd_b == 0:
        return multiply(a, b)
    if nd_a <= 2 and nd_b <= 2:
        return matmul(a, b)
    return tensordot(a, b, ([nd_a - 1], [max(nd_b - 2, 0)]))


@implements(np.vdot)
def vdot(a: Any, b: Any) -> Any:
    """``np.vdot``: the dot product of the flattened operands, conjugating the first when it
    is complex (sum(conj(a) * b)).

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> float(dnp.vdot(np.ones((2, 2)), np.full((2, 2), 2.0)))
        8.0
    """
    if not _any_traced(a, b):
        return np.vdot(a, b)
    a, b = _as_array(a), _as_array(b)
    if np.dtype(a.dtype).kind == "c":
        a = conj(a)
    if a.size != b.size:
        raise ValueError(f"vdot: vectors of different sizes {a.size} and {b.size}")
    return matmul(reshape(a, (-1,)), reshape(b, (-1,)))


@implements(np.inner)
def inner(a: Any, b: Any) -> Any:
    """``np.inner``: the sum of products over the last axes of both operands.

    Example:
        >>> import numpy as np, diffprog.numpy as dnp
        >>> dnp.inner(np.ones((2, 3)), np.ones((4, 3))).shape
        (2, 4)
    """
    if not _any_traced(a, b):
        return np.inner(a, b)
    a, b = _as_array(a), _as_array(b)  # np.inner promotes Python scalars as arrays
    if len(_shape(a)) == 0 or len(_shape(b)) == 0:
        return multiply(a, b)
    return tensordot(a, b, ([-1], [-1]))


# -- einsum ------------------------------------------------------------------------------------

def _interleaved_to_string(args: tuple) -> tuple[str, list]:
    """``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as ``("ab,bc->ac", [a, b])``."""
    def letters(sub: Sequence) -> str:
        out = []
        for s in sub:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, (int, np.integer)) and 0 <= s < len(LETTERS):
                out.append(LETTERS[s])
            else:
                raise ValueError(f"einsum: subscript {s!r} must be an int in [0, 52) or "
                                 "Ellipsis")
        return "".join(out)
    operands = list(args[0::2])
    specs = [letters(s) for s in args[1::2]]
    if len(args) % 2:  # a trailing output sublist
        operands.pop()
        return ",".join(specs) + "->" + letters(args[-1]), operands
    return ",".join(specs), operands


def _parse_einsum(subscripts: str, shapes: list[tuple]) -> tuple[list[str], str]:
    """Explicit input specs and output spec, the ellipsis replaced by letters of its own."""
    subscripts = subscripts.replace(" ", "")
    for ch in subscripts:
        if ch not in LETTERS and ch not in ".,->":
            raise ValueError(f"einsum: invalid subscript {ch!r} in {subscripts!r}: only "
                             "letters, ',', '...' and '->' are allowed")
    if "->" in subscripts:
        lhs, out = subscripts.split("->", 1)
        if "->" in out:
            raise ValueError("einsum: subscripts contain '->' more than once")
    else:
        lhs, out = subscripts, None
    specs = lhs.split(",")
    if len(specs) != len(shapes):
        raise ValueError(f"einsum: {len(specs)} operand subscripts in {subscripts!r} for "
                         f"{len(shapes)} operands")
    ranks = []
    for i, (spec, shape) in enumerate(zip(specs, shapes)):
        named = len(spec.replace("...", ""))
        if "..." in spec:
            if spec.count("...") > 1 or "." in spec.replace("...", "", 1):
                raise ValueError(f"einsum: operand {i} has an invalid ellipsis in {spec!r}")
            if named > len(shape):
                raise ValueError(f"einsum: operand {i} has {len(shape)} dimensions but "
                                 f"{spec!r} names {named}")
            ranks.append(len(shape) - named)
        else:
            if "." in spec or named != len(shape):
                raise ValueError(f"einsum: operand {i} has {len(shape)} dimensions but "
                                 f"subscripts {spec!r} name {named}")
            ranks.append(0)
    rank = max(ranks, default=0)
    unused = [c for c in LETTERS if c not in subscripts]
    if rank > len(unused):
        raise ValueError("einsum: too many dimensions under the ellipsis")
    ell = "".join(unused[:rank])
    expanded = [s.replace("...", ell[rank - r:]) for s, r in zip(specs, ranks)]
    if out is None:
        # NumPy's implicit output: the broadcast dimensions, then the labels used once, sorted.
        counts = Counter(lhs.replace(".", "").replace(",", ""))
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1))
    elif "..." in out:
        out = out.replace("...", ell, 1)
    elif rank and any(ranks):
        raise ValueError("einsum: output has more dimensions than subscripts given in einstein "
                         "sum, but no '...' ellipsis provided to broadcast the extra dimensions.")
    if "." in out:
        raise ValueError(f"einsum: invalid output subscripts in {subscripts!r}")
    named_in = set("".join(expanded))
    for ch in out:
        if out.count(ch) > 1:
            raise ValueError(f"einsum: output subscript {ch!r} appears more than once")
        if ch not in named_in:
            raise ValueError(f"einsum: output subscript {ch!r} does not appear in the input "
                             "subscripts")
    return expanded, out


@functools.lru_cache(maxsize=1024)
def _einsum_plan(subscripts: str, shapes: tuple) -> tuple[str, tuple]:
    """The canonical subscripts, and the shape each operand is broadcast to."""
    specs, output = _parse_einsum(subscripts, list(shapes))
    sizes: dict[str, int] = {}
    for i, (spec, shape) in enumerate(zip(specs, shapes)):
        for ch in set(spec):
            dims = {d for c, d in zip(spec, shape) if c == ch}
            if len(dims) > 1:
                raise ValueError(f"einsum: dimensions in operand {i} for collapsing index "
                                 f"{ch!r} don't match {tuple(sorted(dims))}")
        for ch, d in zip(spec, shape):
            known = sizes.get(ch, d)
            if d != known and d != 1 and known != 1:
                raise ValueError(f"einsum: operands could not be broadcast together: label "
                                 f"{ch!r} has sizes {known} and {d}")
            sizes[ch] = known if d == 1 else d  # size 1 broadcasts (to 0 as well)
    targets = tuple(tuple(sizes[ch] for ch in spec) for spec in specs)
    return canonical_subscripts(specs, output), targets


@implements(np.einsum)
def einsum(*operands: Any, out: Any = None, dtype: Any = None, optimize: Any = False,
           **kwargs: Any) -> Any:
    """``np.einsum`` on traced values: any subscripts, explicit (``->``) or implicit output,
    repeated labels (traces and diagonals like ``"ii->i"``), ``...`` broadcasting, any number of
    operands, and the interleaved form ``einsum(a, [0, 1], b, [1, 2])``.

    The contraction path is NumPy's (``optimize`` is accepted and ignored on traced values).
    Size-1 axes broadcast against their label's size, as in NumPy.

    Example:
        >>> import numpy as np, diffprog as dp, diffprog.numpy as dnp
        >>> dp.grad(lambda a: dnp.einsum("ii", a))(np.ones((2, 2)))
        array([[1., 0.],
               [0., 1.]])
    """
    if not _any_traced(*operands):
        return np.einsum(*operands, out=out, dtype=dtype, optimize=optimize, **kwargs)
    if out is not None:
        raise TypeError("einsum(..., out=...) writes into an array in place, which traced "
                        "values do not support; use the returned value")
    if kwargs:
        raise TypeError(f"einsum: keyword arguments {sorted(kwargs)} are not supported on "
                        "traced values")
    if isinstance(operands[0], str):
        subscripts, ops = operands[0], list(operands[1:])
    else:
        subscripts, ops = _interleaved_to_string(operands)
    ops = [_as_array(x) for x in ops]
    subscripts, targets = _einsum_plan(subscripts, tuple(x.shape for x in ops))
    result = np.result_type(*[_dtype(x) for x in ops]) if dtype is None else np.dtype(dtype)
    aligned = []
    for x, target in zip(ops, targets):
        if x.dtype != result:
            x = astype(x, result)
        if x.shape != target:
            x = broadcast_to(x, target) if isinstance(x, Tracer) else np.broadcast_to(x, target)
        aligned.append(x)
    return bind(P.einsum, *aligned, subscripts=subscripts)
