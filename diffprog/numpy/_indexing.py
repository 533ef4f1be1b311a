"""Indexing of traced values: ``x[idx]`` and the functional updates ``x.at[idx].add/set``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import prims as P
from ..core import Tracer, bind


def normalize_index(idx: Any) -> tuple:
    """A tuple of ints, slices, None, Ellipsis and integer arrays (masks become nonzero())."""
    items = idx if isinstance(idx, tuple) else (idx,)
    out: list[Any] = []
    for item in items:
        if isinstance(item, Tracer):
            raise TypeError(
                "a traced float value cannot be used as an index; indices must be ints, "
                "slices, or integer/boolean arrays that do not depend on the differentiated "
                "inputs")
        if item is None or item is Ellipsis or isinstance(item, slice):
            out.append(item)
        elif isinstance(item, (bool, np.bool_)):
            out.append(np.asarray(item))
        elif isinstance(item, (int, np.integer)):
            out.append(int(item))
        else:
            arr = np.asarray(item)
            if arr.dtype == bool:
                out.extend(np.nonzero(arr))
            elif arr.dtype.kind in "iu":
                out.append(arr)
            else:
                raise IndexError(f"only integers, slices, None, Ellipsis and integer or "
                                 f"boolean arrays are valid indices, got dtype {arr.dtype}")
    return tuple(out)


def getitem(x: Any, idx: Any) -> Any:
    """``x[idx]``; the derivative scatters back into the indexed positions (accumulating)."""
    if not isinstance(x, Tracer):
        return x[idx]
    return bind(P.getitem, x, idx=normalize_index(idx))


def _target_shape(shape: tuple, idx: tuple) -> tuple:
    return np.empty(shape, dtype=np.bool_)[idx].shape


def at_add(x: Any, idx: Any, values: Any) -> Any:
    """``x`` with ``values`` added at ``idx``; repeated indices accumulate, like np.add.at."""
    from .. import numpy as dnp
    norm = normalize_index(idx)
    target = _target_shape(np.shape(x) if not isinstance(x, Tracer) else x.shape, norm)
    values = dnp.broadcast_to(values, target) if isinstance(values, Tracer) else \
        np.broadcast_to(values, target)
    return x + bind(P.scatter_add, values, shape=tuple(x.shape), idx=norm)


def at_set(x: Any, idx: Any, values: Any) -> Any:
    """``x`` with the entries at ``idx`` replaced by ``values``."""
    from .. import numpy as dnp
    norm = normalize_index(idx)
    shape = tuple(x.shape)
    hits = np.zeros(shape, dtype=np.int64)
    np.add.at(hits, norm, 1)
    if hits.max(initial=0) > 1:
        raise NotImplementedError("x.at[idx].set(v) with repeated indices is not supported "
                                  "(which write wins is ambiguous); use unique indices")
    target = _target_shape(shape, norm)
    values = dnp.broadcast_to(values, target) if isinstance(values, Tracer) else \
        np.broadcast_to(values, target)
    placed = bind(P.scatter_add, values, shape=shape, idx=norm)
    return dnp.where(hits == 0, x, placed)
