"""Pytrees: nested containers (dicts, lists, tuples, namedtuples, dataclasses, registered classes)
whose non-container members, the *leaves*, are arrays and numbers.

A pytree flattens to a list of leaves plus a :class:`PyTreeDef` describing its structure;
unflattening puts new leaves back into the same structure.

>>> leaves, treedef = tree_flatten({"b": [1.0, 2.0], "a": 3.0})
>>> leaves
[3.0, 1.0, 2.0]
>>> treedef
PyTreeDef({'a': *, 'b': [*, *]})
>>> tree_unflatten(treedef, [10.0, 20.0, 30.0])
{'b': [20.0, 30.0], 'a': 10.0}

Treedef internals (private): a leaf is the node ``None``; any other node is a tuple
``(kind, aux, children)`` where ``kind`` is a :class:`_NodeKind`, ``aux`` hashable data needed
to rebuild it, and ``children`` either a tuple of child nodes or, when every child is a leaf,
just their count. Plain tuples keep equality and hashing in C, which matters because treedefs
are cache keys, and the count form lets unflatten take runs of leaves with ``islice`` instead
of one Python call per leaf.
"""

from __future__ import annotations

import dataclasses
import inspect
import operator
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator
from itertools import islice
from typing import Any

import numpy as np

__all__ = [
    "DictKey",
    "FlattenedIndexKey",
    "GetAttrKey",
    "PyTreeDef",
    "SequenceKey",
    "keystr",
    "register_pytree_node",
    "tree_flatten",
    "tree_flatten_with_path",
    "tree_leaves",
    "tree_map",
    "tree_map_with_path",
    "tree_structure",
    "tree_unflatten",
]

PyTree = Any
IsLeaf = Callable[[Any], bool] | None
_NoneType = type(None)


# --------------------------------------------------------------------------------------------
# Path keys


class _Key:
    """A path entry: one field (named by the subclass's single slot) and how it prints."""

    __slots__ = ()
    _format = "{}"

    def __init__(self, value: Any) -> None:
        setattr(self, self.__slots__[0], value)

    @property
    def _value(self) -> Any:
        return getattr(self, self.__slots__[0])

    def __str__(self) -> str:
        return self._format.format(self._value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__slots__[0]}={self._value!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._value == other._value

    def __hash__(self) -> int:
        return hash((type(self), self._value))


class DictKey(_Key):
    """Path entry for a dict (or OrderedDict/defaultdict) value.

    >>> str(DictKey("W"))
    "['W']"
    """

    __slots__ = ("key",)

    def __str__(self) -> str:
        return f"[{self.key!r}]"


class SequenceKey(_Key):
    """Path entry for a list or tuple element.

    >>> str(SequenceKey(0))
    '[0]'
    """

    __slots__ = ("idx",)
    _format = "[{}]"


class GetAttrKey(_Key):
    """Path entry for a namedtuple or dataclass field.

    >>> str(GetAttrKey("weight"))
    '.weight'
    """

    __slots__ = ("name",)
    _format = ".{}"


class FlattenedIndexKey(_Key):
    """Path entry for the i-th child of a node registered with :func:`register_pytree_node`.

    >>> str(FlattenedIndexKey(1))
    '[<flat index 1>]'
    """

    __slots__ = ("idx",)
    _format = "[<flat index {}>]"


KeyEntry = DictKey | SequenceKey | GetAttrKey | FlattenedIndexKey
KeyPath = tuple[KeyEntry, ...]


def keystr(path: Iterable[KeyEntry]) -> str:
    """Render a key path as Python-like access syntax.

    >>> keystr((DictKey("layers"), SequenceKey(0), GetAttrKey("W")))
    "['layers'][0].W"
    """
    return "".join([str(k) for k in path])


# --------------------------------------------------------------------------------------------
# Node kinds and the registry


class _NodeKind:
    """How one container type flattens and rebuilds.

    ``flatten(x) -> (children, aux)`` and ``unflatten(aux, children_iterable) -> x``;
    ``tag`` selects the slow-path behaviour (paths, repr, error messages).
    """

    __slots__ = ("fields", "flatten", "tag", "type", "unflatten")

    def __init__(self, typ: type, tag: str, flatten: Callable, unflatten: Callable,
                 fields: tuple[str, ...] = ()) -> None:
        self.type = typ
        self.tag = tag
        self.flatten = flatten
        self.unflatten = unflatten
        self.fields = fields

    def __repr__(self) -> str:
        return f"<pytree node kind {self.tag} {self.type.__qualname__}>"


def _split_dict(x: dict) -> tuple[Iterable[Any], tuple[tuple, tuple | None]]:
    # Children go in sorted key order so that dicts built in different orders flatten alike;
    # the original order is kept (None when already sorted: the common, cheap case) so that
    # unflatten gives back the dict the user had.
    keys = list(x)
    try:
        skeys = sorted(keys)
    except TypeError:
        skeys = keys
    if skeys == keys:
        return x.values(), (tuple(keys), None)
    return [x[k] for k in skeys], (tuple(skeys), tuple(keys))


def _build_dict(skeys: tuple, orig: tuple | None, vals: Iterable[Any]) -> dict:
    d = dict(zip(skeys, vals))
    if orig is not None:
        d = {k: d[k] for k in orig}
    return d


def _flatten_defaultdict(x: defaultdict) -> tuple[Iterable[Any], tuple]:
    vals, (skeys, orig) = _split_dict(x)
    return vals, (skeys, orig, x.default_factory)


def _unflatten_defaultdict(aux: tuple, vals: list) -> defaultdict:
    return defaultdict(aux[2], _build_dict(aux[0], aux[1], vals))


# The four builtin kinds are dispatched inline by identity in the hot loops; their flatten and
# unflatten entries serve only the slow paths.
_DICT = _NodeKind(dict, "dict", _split_dict, lambda aux, vals: _build_dict(aux[0], aux[1], vals))
_LIST = _NodeKind(list, "list", lambda x: (x, None), lambda aux, vals: list(vals))
_TUPLE = _NodeKind(tuple, "tuple", lambda x: (x, None), lambda aux, vals: tuple(vals))
_NONE = _NodeKind(_NoneType, "none", lambda x: ((), None), lambda aux, vals: None)
_ODICT = _NodeKind(OrderedDict, "odict", lambda x: (list(x.values()), tuple(x)),
                   lambda aux, vals: OrderedDict(zip(aux, vals)))
_DDICT = _NodeKind(defaultdict, "ddict", _flatten_defaultdict, _unflatten_defaultdict)
_NONE_NODE = (_NONE, None, 0)

# Exact type -> node kind; filled lazily with namedtuple and dataclass kinds as they are seen.
_KINDS: dict[type, _NodeKind] = {k.type: k for k in (_DICT, _LIST, _TUPLE, _NONE, _ODICT, _DDICT)}
_BUILTIN_NODE_TYPES = frozenset(_KINDS)
_REGISTERED: set[type] = set()
# Types known to be leaves. Checking this set before anything else makes the overwhelmingly
# common case (an array or a number) one hash lookup; unknown types found to be leaves are
# added so they take the fast path from then on.
_LEAF_TYPES: set[type] = {
    np.ndarray, float, int, bool, complex, str, bytes,
    np.float64, np.float32, np.float16, np.int64, np.int32, np.bool_, np.complex128,
}


def _namedtuple_kind(cls: type) -> _NodeKind:
    # tuple.__new__ skips a user-defined __new__, mirroring how dataclasses skip __init__.
    return _NodeKind(cls, "namedtuple", lambda x: (x, None),
                     lambda aux, vals: tuple.__new__(cls, vals), tuple(cls._fields))


def _dataclass_kind(cls: type) -> _NodeKind:
    names = tuple(f.name for f in dataclasses.fields(cls))
    if len(names) == 1:
        name0 = names[0]

        def flatten(x: Any) -> tuple[tuple, None]:
            return (getattr(x, name0),), None
    elif names:
        getter = operator.attrgetter(*names)

        def flatten(x: Any) -> tuple[tuple, None]:
            return getter(x), None
    else:
        def flatten(x: Any) -> tuple[tuple, None]:
            return (), None

    new = object.__new__
    # Writing __dict__ directly is much faster than object.__setattr__ per field, but is only
    # right when no field is a data descriptor on the class (slots, properties, descriptor
    # fields); those go through object.__setattr__, which also bypasses a frozen __setattr__.
    plain = all(not hasattr(type(inspect.getattr_static(cls, n, None)), "__set__") for n in names)
    try:
        plain = plain and hasattr(new(cls), "__dict__")
    except TypeError:  # e.g. a builtin base whose layout object.__new__ cannot make
        plain = False
    if plain:
        def unflatten(aux: None, vals: Iterable[Any]) -> Any:
            obj = new(cls)
            obj.__dict__.update(zip(names, vals))
            return obj
    else:
        setattr_ = object.__setattr__

        def unflatten(aux: None, vals: Iterable[Any]) -> Any:
            obj = new(cls)
            for name, v in zip(names, vals):
                setattr_(obj, name, v)
            return obj

    return _NodeKind(cls, "dataclass", flatten, unflatten, names)


def _classify(t: type) -> _NodeKind | None:
    """Node kind for an unregistered type, or None for a leaf type; the answer is cached."""
    if issubclass(t, tuple) and hasattr(t, "_fields"):
        kind = _namedtuple_kind(t)
    elif dataclasses.is_dataclass(t):
        kind = _dataclass_kind(t)
    else:
        _LEAF_TYPES.add(t)
        return None
    _KINDS[t] = kind
    return kind


def register_pytree_node(
    cls: type,
    flatten: Callable[[Any], tuple[Iterable[Any], Hashable]],
    unflatten: Callable[[Any, tuple[Any, ...]], Any],
) -> None:
    """Make instances of ``cls`` (exact type) pytree nodes.

    ``flatten(obj)`` returns ``(children, aux_data)``; ``unflatten(aux_data, children)``
    rebuilds the object from a tuple of children. ``aux_data`` must be hashable and comparable
    with ``==`` because it becomes part of the treedef.

    >>> class Pair:
    ...     def __init__(self, a, b):
    ...         self.a, self.b = a, b
    >>> register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda _, ch: Pair(*ch))
    >>> tree_leaves([Pair(1.0, 2.0), 3.0])
    [1.0, 2.0, 3.0]
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_pytree_node expects a class, got {cls!r}")
    if cls in _REGISTERED or cls in _BUILTIN_NODE_TYPES:
        raise ValueError(
            f"{cls.__module__}.{cls.__qualname__} is already registered as a pytree node type")

    # Children are iterated twice (type check, then copy) and handed back as a tuple, so any
    # iterable the user returns is materialised once here.
    def flatten_tuple(obj: Any) -> tuple[tuple, Any]:
        children, aux = flatten(obj)
        return tuple(children), aux

    def unflatten_tuple(aux: Any, vals: Iterable[Any]) -> Any:
        return unflatten(aux, tuple(vals))

    _REGISTERED.add(cls)
    # A namedtuple/dataclass kind or leaf status cached earlier is overridden by the user's.
    _LEAF_TYPES.discard(cls)
    _KINDS[cls] = _NodeKind(cls, "custom", flatten_tuple, unflatten_tuple)


# --------------------------------------------------------------------------------------------
# Core traversals (hot paths)


def _flatten(x: Any, leaves: list, is_leaf: IsLeaf) -> tuple | None:
    """Append x's leaves to ``leaves`` and return its node (None if x is itself a leaf).

    The caller has already established that ``is_leaf(x)`` is false.
    """
    t = type(x)
    if t is dict:
        kind = _DICT
        # Inlined _split_dict: dicts are the most common node and a call costs as much.
        keys = list(x)
        try:
            skeys = sorted(keys)
        except TypeError:
            skeys = keys
        if skeys == keys:
            vals, aux = x.values(), (tuple(keys), None)
        else:
            vals, aux = [x[k] for k in skeys], (tuple(skeys), tuple(keys))
    elif t is list:
        kind, vals, aux = _LIST, x, None
    elif t is tuple:
        kind, vals, aux = _TUPLE, x, None
    elif t is _NoneType:
        return _NONE_NODE
    else:
        kind = _KINDS.get(t)
        if kind is None:
            kind = _classify(t)
            if kind is None:
                leaves.append(x)
                return None
        vals, aux = kind.flatten(x)
    # Containers of known leaf types (the usual bottom level) are checked and copied in C.
    # Such children are leaves whatever is_leaf says, so this holds with is_leaf too.
    if _LEAF_TYPES.issuperset(map(type, vals)):
        leaves.extend(vals)
        return (kind, aux, len(vals))
    children = []
    add_child = children.append
    add_leaf = leaves.append
    only_leaves = True
    for c in vals:
        if type(c) in _LEAF_TYPES or (is_leaf is not None and is_leaf(c)):
            add_leaf(c)
            add_child(None)
        else:
            sub = _flatten(c, leaves, is_leaf)
            if sub is not None:
                only_leaves = False
            add_child(sub)
    return (kind, aux, len(children) if only_leaves else tuple(children))


def _collect(x: Any, leaves: list, is_leaf: IsLeaf) -> None:
    """Like _flatten without building the treedef, for tree_leaves."""
    t = type(x)
    if t is dict:
        vals = _split_dict(x)[0]
    elif t is list or t is tuple:
        vals = x
    elif t is _NoneType:
        return
    else:
        kind = _KINDS.get(t)
        if kind is None:
            kind = _classify(t)
            if kind is None:
                leaves.append(x)
                return
        vals = kind.flatten(x)[0]
    if _LEAF_TYPES.issuperset(map(type, vals)):
        leaves.extend(vals)
        return
    add_leaf = leaves.append
    for c in vals:
        if type(c) in _LEAF_TYPES or (is_leaf is not None and is_leaf(c)):
            add_leaf(c)
        else:
            _collect(c, leaves, is_leaf)


def _unflatten(node: tuple, it: Iterator[Any]) -> Any:
    """Rebuild a (non-leaf) node, drawing its leaves from ``it`` in order."""
    kind, aux, children = node
    if type(children) is int:
        # zip(keys, it) stops once the keys run out, so a dict can read ``it`` directly.
        vals = it if kind is _DICT else islice(it, children)
    else:
        vals = [next(it) if c is None else _unflatten(c, it) for c in children]
    if kind is _DICT:
        if aux[1] is None:
            return dict(zip(aux[0], vals))
        d = dict(zip(aux[0], vals))
        return {k: d[k] for k in aux[1]}
    if kind is _LIST:
        return vals if type(vals) is list else list(vals)
    if kind is _TUPLE:
        return tuple(vals)
    if kind is _NONE:
        return None
    return kind.unflatten(aux, vals)


class _Mismatch(Exception):
    """Raised by _map_n on a structure difference; tree_map then works out where it is."""


def _is_leaf_value(x: Any, is_leaf: IsLeaf) -> bool:
    t = type(x)
    if t in _LEAF_TYPES or (is_leaf is not None and is_leaf(x)):
        return True
    return t not in _KINDS and _classify(t) is None


# tree_map walks the tree once, building the result as it goes, instead of flatten + unflatten:
# no treedef is built and each container is rebuilt right where it is read.


def _map_1(f: Callable[[Any], Any], x: Any, is_leaf: IsLeaf) -> Any:
    """tree_map over one tree; x is known not to be a leaf by is_leaf."""
    t = type(x)
    if t is dict:
        keys = list(x)
        try:
            skeys = sorted(keys)
        except TypeError:
            skeys = keys
        in_order = skeys == keys
        # f must see leaves in tree_leaves order, i.e. sorted by key.
        vals = x.values() if in_order else [x[k] for k in skeys]
    elif t is list or t is tuple:
        vals = x
    elif t is _NoneType:
        return None
    else:
        kind = _KINDS.get(t)
        if kind is None:
            kind = _classify(t)
            if kind is None:
                return f(x)
        vals, aux = kind.flatten(x)
    if _LEAF_TYPES.issuperset(map(type, vals)):
        out = map(f, vals)
    else:
        out = [f(c) if type(c) in _LEAF_TYPES or (is_leaf is not None and is_leaf(c))
               else _map_1(f, c, is_leaf) for c in vals]
    if t is dict:
        d = dict(zip(skeys, out))
        return d if in_order else {k: d[k] for k in keys}
    if t is list:
        return out if type(out) is list else list(out)
    if t is tuple:
        return tuple(out)
    return kind.unflatten(aux, out)


def _map_n(f: Callable[..., Any], x: Any, others: tuple, is_leaf: IsLeaf) -> Any:
    """tree_map over x and the subtrees ``others`` at the same place in the other trees.

    x is known not to be a leaf by is_leaf. Raises _Mismatch where the structures differ.
    """
    t = type(x)
    kind = _KINDS.get(t)
    if kind is None:
        kind = _classify(t)
        if kind is None:
            for o in others:
                if not _is_leaf_value(o, is_leaf):
                    raise _Mismatch
            return f(x, *others)
    for o in others:
        if type(o) is not t or (is_leaf is not None and is_leaf(o)):
            raise _Mismatch
    if kind is _DICT:
        keys = list(x)
        try:
            skeys = sorted(keys)
        except TypeError:
            skeys = keys
        in_order = skeys == keys
        vals = x.values() if in_order else [x[k] for k in skeys]
        ovals = []
        for o in others:
            if in_order and list(o) == keys:
                ovals.append(o.values())
            elif o.keys() == x.keys():
                # Fetching by key lets the other dicts have any insertion order.
                ovals.append([o[k] for k in skeys])
            else:
                raise _Mismatch
    elif kind is _LIST or kind is _TUPLE:
        n = len(x)
        for o in others:
            if len(o) != n:
                raise _Mismatch
        vals, ovals = x, others
    elif kind is _NONE:
        return None
    else:
        vals, aux = kind.flatten(x)
        ovals = []
        for o in others:
            ov, oaux = kind.flatten(o)
            if kind is _DDICT:
                # Children are in sorted key order, so only the key set and factory matter.
                same = oaux[0] == aux[0] and oaux[2] == aux[2]
            else:
                same = oaux == aux
            if not same or len(ov) != len(vals):
                raise _Mismatch
            ovals.append(ov)
    if _LEAF_TYPES.issuperset(map(type, vals)):
        for ov in ovals:
            if not _LEAF_TYPES.issuperset(map(type, ov)):
                for o in ov:
                    if not _is_leaf_value(o, is_leaf):
                        raise _Mismatch
        out = map(f, vals, *ovals)
    else:
        out = []
        for c, cs in zip(vals, zip(*ovals)):
            if type(c) in _LEAF_TYPES or (is_leaf is not None and is_leaf(c)):
                for o in cs:
                    if not _is_leaf_value(o, is_leaf):
                        raise _Mismatch
                out.append(f(c, *cs))
            else:
                out.append(_map_n(f, c, cs, is_leaf))
    if kind is _DICT:
        d = dict(zip(skeys, out))
        return d if in_order else {k: d[k] for k in keys}
    if kind is _LIST:
        return out if type(out) is list else list(out)
    if kind is _TUPLE:
        return tuple(out)
    return kind.unflatten(aux, out)


def _child_nodes(node: tuple) -> tuple:
    children = node[2]
    return (None,) * children if type(children) is int else children


def _node_keys(node: tuple) -> list[KeyEntry]:
    kind, aux, children = node
    tag = kind.tag
    n = children if type(children) is int else len(children)
    if tag in ("dict", "ddict"):
        return [DictKey(k) for k in aux[0]]
    if tag == "odict":
        return [DictKey(k) for k in aux]
    if tag in ("list", "tuple"):
        return [SequenceKey(i) for i in range(n)]
    if tag in ("namedtuple", "dataclass"):
        return [GetAttrKey(f) for f in kind.fields]
    return [FlattenedIndexKey(i) for i in range(n)]


def _child_values(node: tuple, obj: Any) -> list:
    """The children of ``obj`` in the order its node stores them."""
    kind, aux, _ = node
    if kind.tag in ("dict", "ddict"):
        return [obj[k] for k in aux[0]]
    return list(kind.flatten(obj)[0])


def _paths(node: tuple | None, prefix: KeyPath, out: list[KeyPath]) -> None:
    if node is None:
        out.append(prefix)
        return
    for key, child in zip(_node_keys(node), _child_nodes(node), strict=True):
        _paths(child, (*prefix, key), out)


# --------------------------------------------------------------------------------------------
# PyTreeDef


def _node_repr(node: tuple | None) -> str:
    if node is None:
        return "*"
    kind, aux, _ = node
    tag = kind.tag
    parts = [_node_repr(c) for c in _child_nodes(node)]
    if tag in ("dict", "ddict", "odict"):
        keys = aux if tag == "odict" else aux[0]
        body = "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(keys, parts)) + "}"
        if tag == "odict":
            return f"OrderedDict({body})"
        if tag == "ddict":
            return f"defaultdict({aux[2]!r}, {body})"
        return body
    if tag == "list":
        return "[" + ", ".join(parts) + "]"
    if tag == "tuple":
        return "(" + ", ".join(parts) + (",)" if len(parts) == 1 else ")")
    if tag == "none":
        return "None"
    if tag in ("namedtuple", "dataclass"):
        fields = ", ".join(f"{f}={p}" for f, p in zip(kind.fields, parts))
        return f"{kind.type.__name__}({fields})"
    return f"CustomNode({kind.type.__name__}[{aux!r}], [{', '.join(parts)}])"


def _hashable_skeleton(node: tuple | None) -> Any:
    # Equal nodes give equal skeletons, so hashing without the aux data keeps hash consistent
    # with == for user aux data that is comparable but not hashable.
    if node is None:
        return None
    return (node[0], tuple(_hashable_skeleton(c) for c in _child_nodes(node)))


class PyTreeDef:
    """The structure of a pytree: everything but its leaves.

    Hashable and comparable, so it can key a cache. Dict insertion order is part of it
    (it decides the rebuilt dict's order); :func:`tree_map` tolerates differing orders.

    >>> treedef = tree_structure({"a": 1.0, "b": [2.0, 3.0]})
    >>> treedef.num_leaves
    3
    >>> treedef.unflatten([4, 5, 6])
    {'a': 4, 'b': [5, 6]}
    >>> treedef == tree_structure({"a": 0, "b": [0, 0]})
    True
    """

    __slots__ = ("_hash", "_node", "num_leaves")

    def __init__(self, node: tuple | None, num_leaves: int) -> None:
        self._node = node
        self.num_leaves = num_leaves
        self._hash: int | None = None

    def unflatten(self, leaves: Iterable[Any]) -> PyTree:
        """Build a pytree of this structure from ``leaves`` (see :func:`tree_unflatten`)."""
        if type(leaves) is not list and type(leaves) is not tuple:
            leaves = list(leaves)
        if len(leaves) != self.num_leaves:
            shown = repr(self)
            if len(shown) > 200:
                shown = shown[:197] + "..."
            raise ValueError(
                f"tree_unflatten: expected {self.num_leaves} leaves for {shown}, "
                f"got {len(leaves)}")
        if self._node is None:
            return leaves[0]
        return _unflatten(self._node, iter(leaves))

    @property
    def num_nodes(self) -> int:
        """Number of nodes, leaves included."""
        def count(node: tuple | None) -> int:
            return 1 if node is None else 1 + sum(count(c) for c in _child_nodes(node))
        return count(self._node)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not PyTreeDef:
            return NotImplemented
        return self.num_leaves == other.num_leaves and self._node == other._node

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            try:
                h = hash(self._node)
            except TypeError:
                h = hash(_hashable_skeleton(self._node))
            self._hash = h
        return h

    def __repr__(self) -> str:
        return f"PyTreeDef({_node_repr(self._node)})"


_LEAF_TREEDEF = PyTreeDef(None, 1)


# --------------------------------------------------------------------------------------------
# Public API


def tree_flatten(tree: PyTree, is_leaf: IsLeaf = None) -> tuple[list, PyTreeDef]:
    """Flatten a pytree into its leaves (dict values in sorted key order) and its structure.

    ``None`` is an empty node, not a leaf. ``is_leaf(x)``, when given, is asked first about
    every subtree and makes ``x`` a leaf if it returns True.

    >>> tree_flatten([1.0, (2.0, None), {"x": 3.0}])
    ([1.0, 2.0, 3.0], PyTreeDef([*, (*, None), {'x': *}]))
    >>> tree_flatten([[1, 2], [3]], is_leaf=lambda x: isinstance(x, list) and len(x) == 1)[0]
    [1, 2, [3]]
    """
    if type(tree) in _LEAF_TYPES or (is_leaf is not None and is_leaf(tree)):
        return [tree], _LEAF_TREEDEF
    leaves: list = []
    node = _flatten(tree, leaves, is_leaf)
    if node is None:
        return leaves, _LEAF_TREEDEF
    return leaves, PyTreeDef(node, len(leaves))


def tree_unflatten(treedef: PyTreeDef, leaves: Iterable[Any]) -> PyTree:
    """Build a pytree with the structure ``treedef`` and the given leaves.

    >>> _, treedef = tree_flatten({"a": 0, "b": (0, 0)})
    >>> tree_unflatten(treedef, [1, 2, 3])
    {'a': 1, 'b': (2, 3)}
    """
    return treedef.unflatten(leaves)


def tree_leaves(tree: PyTree, is_leaf: IsLeaf = None) -> list:
    """The leaves of a pytree, in the order :func:`tree_flatten` gives them.

    >>> tree_leaves({"b": 2.0, "a": [1.0, None]})
    [1.0, 2.0]
    """
    if type(tree) in _LEAF_TYPES or (is_leaf is not None and is_leaf(tree)):
        return [tree]
    leaves: list = []
    _collect(tree, leaves, is_leaf)
    return leaves


def tree_structure(tree: PyTree, is_leaf: IsLeaf = None) -> PyTreeDef:
    """The structure of a pytree.

    >>> tree_structure((1.0, {"w": 2.0}))
    PyTreeDef((*, {'w': *}))
    """
    return tree_flatten(tree, is_leaf)[1]


def tree_flatten_with_path(
    tree: PyTree, is_leaf: IsLeaf = None
) -> tuple[list[tuple[KeyPath, Any]], PyTreeDef]:
    """Like :func:`tree_flatten`, but each leaf comes with its key path.

    >>> pairs, _ = tree_flatten_with_path({"layers": [{"W": 1.0}]})
    >>> [(keystr(p), leaf) for p, leaf in pairs]
    [("['layers'][0]['W']", 1.0)]
    """
    leaves, treedef = tree_flatten(tree, is_leaf)
    paths: list[KeyPath] = []
    _paths(treedef._node, (), paths)
    return list(zip(paths, leaves)), treedef


def _describe(node: tuple | None, obj: Any) -> str:
    if node is None:
        return f"a leaf of type {type(obj).__name__}"
    kind, aux, children = node
    tag = kind.tag
    n = children if type(children) is int else len(children)
    if tag in ("dict", "ddict", "odict"):
        keys = list(aux if tag == "odict" else aux[0])
        name = {"dict": "a dict", "ddict": "a defaultdict", "odict": "an OrderedDict"}[tag]
        return f"{name} with keys {keys!r}"
    if tag in ("list", "tuple"):
        return f"a {tag} of length {n}"
    if tag == "none":
        return "None"
    if tag in ("namedtuple", "dataclass"):
        return f"a {tag} {kind.type.__name__} with fields {list(kind.fields)!r}"
    return f"a {kind.type.__name__} node with {n} children and aux data {aux!r}"


def _find_mismatch(a: tuple | None, a_obj: Any, b: tuple | None, b_obj: Any,
                   path: KeyPath) -> tuple | None:
    """First place where two structures differ, as (path, a, a_obj, b, b_obj), else None.

    Dicts match when their keys do, whatever their insertion order: both flatten in sorted
    key order, so their leaves still line up.
    """
    if a is None and b is None:
        return None
    if a is None or b is None or a[0] is not b[0]:
        return path, a, a_obj, b, b_obj
    kind, a_aux = a[0], a[1]
    b_aux = b[1]
    if kind.tag in ("dict", "ddict"):
        same = a_aux[0] == b_aux[0] and a_aux[2:] == b_aux[2:]
    else:
        same = a_aux == b_aux
    a_kids, b_kids = _child_nodes(a), _child_nodes(b)
    if not same or len(a_kids) != len(b_kids):
        return path, a, a_obj, b, b_obj
    for key, ca, oa, cb, ob in zip(_node_keys(a), a_kids, _child_values(a, a_obj),
                                   b_kids, _child_values(b, b_obj)):
        found = _find_mismatch(ca, oa, cb, ob, (*path, key))
        if found is not None:
            return found
    return None


def _flatten_rest(fname: str, treedef: PyTreeDef, trees: tuple, is_leaf: IsLeaf) -> list[list]:
    """Leaves of trees[1:], which must have the structure ``treedef`` of trees[0]."""
    out = []
    for i in range(1, len(trees)):
        leaves, other = tree_flatten(trees[i], is_leaf)
        if other != treedef:
            found = _find_mismatch(treedef._node, trees[0], other._node, trees[i], ())
            if found is not None:
                path, a, a_obj, b, b_obj = found
                where = keystr(path) if path else "the root"
                raise ValueError(
                    f"{fname}: all trees must have the same structure, but tree 0 has "
                    f"{_describe(a, a_obj)} at {where}, tree {i} has {_describe(b, b_obj)}")
        out.append(leaves)
    return out


def tree_map(f: Callable[..., Any], tree: PyTree, *rest: PyTree, is_leaf: IsLeaf = None) -> PyTree:
    """Apply ``f`` leafwise: ``f(leaf, *leaves_at_same_place_in_rest)``.

    All trees must have the same structure (dict key order aside); otherwise a ValueError
    says where they first differ. The result has the structure of ``tree``.

    >>> tree_map(lambda x: 2 * x, {"a": 1, "b": [2, 3]})
    {'a': 2, 'b': [4, 6]}
    >>> tree_map(lambda x, y: x + y, (1, [2]), (10, [20]))
    (11, [22])
    """
    root_is_leaf = type(tree) in _LEAF_TYPES or (is_leaf is not None and is_leaf(tree))
    if not rest:
        return f(tree) if root_is_leaf else _map_1(f, tree, is_leaf)
    try:
        if root_is_leaf:
            for o in rest:
                if not _is_leaf_value(o, is_leaf):
                    raise _Mismatch
            return f(tree, *rest)
        return _map_n(f, tree, rest, is_leaf)
    except _Mismatch:
        pass
    # The slow path: flatten every tree and compare, to say where they differ.
    _flatten_rest("tree_map", tree_structure(tree, is_leaf), (tree, *rest), is_leaf)
    raise ValueError("tree_map: all trees must have the same structure")


def tree_map_with_path(f: Callable[..., Any], tree: PyTree, *rest: PyTree,
                       is_leaf: IsLeaf = None) -> PyTree:
    """Like :func:`tree_map`, calling ``f(path, leaf, *others)`` with each leaf's key path.

    >>> tree_map_with_path(lambda p, x: keystr(p), {"a": [0, 0]})
    {'a': ["['a'][0]", "['a'][1]"]}
    """
    leaves, treedef = tree_flatten(tree, is_leaf)
    others = _flatten_rest("tree_map_with_path", treedef, (tree, *rest), is_leaf) if rest else []
    paths: list[KeyPath] = []
    node = treedef._node
    _paths(node, (), paths)
    if node is None:
        return f(paths[0], leaves[0], *[o[0] for o in others])
    return _unflatten(node, map(f, paths, leaves, *others))
