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

Treedef internals (private): the nodes in postorder, one flat tuple. A leaf is ``None``; any
other node is a tuple ``(kind, aux, n, leaf_children)`` where ``kind`` is a :class:`_NodeKind`,
``aux`` hashable data needed to rebuild it and ``n`` its number of children. When every child
is a leaf (the usual bottom level) ``leaf_children`` is True and the children get no entries
of their own: the node takes its ``n`` leaves as one slice. Otherwise the ``n`` children are
the subtrees just before it. A flat tuple keeps equality and hashing in C without recursion,
which matters because treedefs are cache keys and trees may be thousands of levels deep, and
postorder doubles as the plan that unflatten runs with a stack.
"""

from __future__ import annotations

import operator
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator
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
    _get: Callable[[Any], Any]

    def __init_subclass__(cls) -> None:
        # Paths of deep trees hold many keys: read the field through a C getter, not getattr
        # with the slot's name, which keys compare and hash through.
        cls._get = operator.attrgetter(cls.__slots__[0])

    def __init__(self, value: Any) -> None:
        setattr(self, self.__slots__[0], value)

    @property
    def _value(self) -> Any:
        return self._get(self)

    def __str__(self) -> str:
        return self._format.format(self._value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__slots__[0]}={self._value!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._get(self) == self._get(other)

    def __hash__(self) -> int:
        return hash((type(self), self._get(self)))


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
    """A dict's children and aux data ``(sorted keys, order)``.

    Children go in sorted key order so that dicts built in different orders flatten alike;
    ``order`` keeps the insertion order (None when already sorted: the common, cheap case) so
    that unflatten gives back the dict the user had. It holds, for each key in insertion
    order, its position among the sorted keys, which lets unflatten pick values by index.
    """
    keys = list(x)
    try:
        skeys = sorted(keys)
    except TypeError:
        skeys = keys
    if skeys == keys:
        return x.values(), (tuple(keys), None)
    return list(map(x.__getitem__, skeys)), (tuple(skeys), _key_order(skeys, keys))


def _key_order(skeys: list, keys: list) -> tuple[int, ...]:
    """The position in ``skeys`` of each of ``keys`` (the same keys in another order)."""
    if len(keys) == 2:  # {"w": ..., "b": ...} and the like: only one order is not sorted
        return _SWAPPED
    if len(keys) < 9:
        return tuple(map(skeys.index, keys))  # quadratic, but in C and on a few keys
    return tuple(map(dict(zip(skeys, range(len(skeys)))).__getitem__, keys))


_SWAPPED = (1, 0)


def _build_dict(skeys: tuple, order: tuple | None, vals: Iterable[Any]) -> dict:
    """The dict with keys ``skeys`` (sorted) and values ``vals`` in that order, its keys in
    insertion order ``order`` (see _split_dict)."""
    if type(vals) is not list:
        vals = list(vals)
    n = len(skeys)
    if n < _N_DICT_MAKERS:
        if order is None:
            return _DICT_MAKERS[n](skeys, vals, 0)
        return _ORDERED_DICT_MAKERS[n](skeys, vals, 0, order)
    if order is None:
        return dict(zip(skeys, vals))
    return dict(zip(map(skeys.__getitem__, order), map(vals.__getitem__, order)))


# A dict display is several times faster than dict(zip(keys, values)), which builds a zip
# object and a pair per key: small dicts (the usual bottom level) are made with these, from
# values v[p], v[p + 1], ... in sorted key order. Keys are passed in rather than compiled in,
# so that the rebuilt dict holds the treedef's own key objects.
_DICT_MAKERS: tuple[Callable[[tuple, list, int], dict], ...] = (
    lambda k, v, p: {},
    lambda k, v, p: {k[0]: v[p]},
    lambda k, v, p: {k[0]: v[p], k[1]: v[p + 1]},
    lambda k, v, p: {k[0]: v[p], k[1]: v[p + 1], k[2]: v[p + 2]},
    lambda k, v, p: {k[0]: v[p], k[1]: v[p + 1], k[2]: v[p + 2], k[3]: v[p + 3]},
    lambda k, v, p: {k[0]: v[p], k[1]: v[p + 1], k[2]: v[p + 2], k[3]: v[p + 3],
                     k[4]: v[p + 4]},
    lambda k, v, p: {k[0]: v[p], k[1]: v[p + 1], k[2]: v[p + 2], k[3]: v[p + 3],
                     k[4]: v[p + 4], k[5]: v[p + 5]},
)
# The same in insertion order ``o`` (see _split_dict).
_ORDERED_DICT_MAKERS: tuple[Callable[[tuple, list, int, tuple], dict], ...] = (
    lambda k, v, p, o: {},
    lambda k, v, p, o: {k[0]: v[p]},
    lambda k, v, p, o: {k[o[0]]: v[p + o[0]], k[o[1]]: v[p + o[1]]},
    lambda k, v, p, o: {k[o[0]]: v[p + o[0]], k[o[1]]: v[p + o[1]], k[o[2]]: v[p + o[2]]},
    lambda k, v, p, o: {k[o[0]]: v[p + o[0]], k[o[1]]: v[p + o[1]], k[o[2]]: v[p + o[2]],
                        k[o[3]]: v[p + o[3]]},
    lambda k, v, p, o: {k[o[0]]: v[p + o[0]], k[o[1]]: v[p + o[1]], k[o[2]]: v[p + o[2]],
                        k[o[3]]: v[p + o[3]], k[o[4]]: v[p + o[4]]},
    lambda k, v, p, o: {k[o[0]]: v[p + o[0]], k[o[1]]: v[p + o[1]], k[o[2]]: v[p + o[2]],
                        k[o[3]]: v[p + o[3]], k[o[4]]: v[p + o[4]], k[o[5]]: v[p + o[5]]},
)
_N_DICT_MAKERS = len(_DICT_MAKERS)

# tree_map's bottom level, dicts of leaves, by the tuple of their keys (in insertion order):
# ``(order, get)``, where ``order`` is None when the keys are sorted and otherwise the position
# among the sorted keys of each key in insertion order (see _split_dict), and ``get(d)`` the
# values of a dict with these keys in sorted key order. Sorting once per key set, not per dict,
# is what makes mapping over many small dicts ({"w", "b"} per layer) cheap. The result dicts
# keep the mapped dict's own key objects: the cached plan holds indexes, not keys.
_DICT_PLANS: dict[tuple, tuple[tuple | None, Callable[[dict], tuple]]] = {}


def _dict_plan(keys: tuple) -> tuple[tuple | None, Callable[[dict], tuple]]:
    try:
        skeys = sorted(keys)
    except TypeError:
        skeys = list(keys)
    order = None if skeys == list(keys) else _key_order(skeys, list(keys))
    if len(skeys) >= 2:
        get = operator.itemgetter(*skeys)
    elif skeys:
        key = skeys[0]

        def get(d: dict) -> tuple:
            return (d[key],)
    else:
        def get(d: dict) -> tuple:
            return ()
    if len(_DICT_PLANS) >= 4096:  # key sets seen in practice are few; never grow without bound
        _DICT_PLANS.clear()
    _DICT_PLANS[keys] = plan = (order, get)
    return plan


def _in_order(keys: tuple, svals: list, order: tuple | None) -> dict:
    """The dict with ``keys`` (insertion order) whose values, in sorted key order, are
    ``svals``; ``order`` as in _dict_plan."""
    n = len(keys)
    if order is None:
        if n < _N_DICT_MAKERS:
            return _DICT_MAKERS[n](keys, svals, 0)
        return dict(zip(keys, svals))
    if n == 2:  # {"w": ..., "b": ...}: the one unsorted order of two keys
        return {keys[0]: svals[1], keys[1]: svals[0]}
    return dict(zip(keys, map(svals.__getitem__, order)))


def _flatten_defaultdict(x: defaultdict) -> tuple[Iterable[Any], tuple]:
    vals, (skeys, order) = _split_dict(x)
    return vals, (skeys, order, x.default_factory)


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
_NONE_NODE = (_NONE, None, 0, True)

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
    import dataclasses  # here, not at the top: `import diffprog` need not import it
    import inspect

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
    elif hasattr(t, "__dataclass_fields__"):  # dataclasses.is_dataclass, for a class
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
#
# Every traversal keeps its own stack instead of recursing, so depth is bounded by memory,
# not by the interpreter's recursion limit (issue 11: 10,000-level trees).


def _flatten(tree: Any, is_leaf: IsLeaf) -> tuple[list, list]:
    """The leaves of ``tree`` and its nodes in postorder (see the module docstring).

    The caller has already established that ``tree`` is not a leaf by type or by ``is_leaf``.
    """
    leaves: list = []
    nodes: list = []
    add_leaf = leaves.append
    add_node = nodes.append
    # One frame per container whose children are not all known leaves:
    # [children iterator, kind, aux, number of children, has a child that is a node].
    stack: list[list] = []
    x = tree
    while True:
        # x is a subtree that is not a leaf by type or by is_leaf: emit it, or open a frame.
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
                vals = list(map(x.__getitem__, skeys))
                aux = (tuple(skeys), _key_order(skeys, keys))
        elif t is list:
            kind, vals, aux = _LIST, x, None
        elif t is tuple:
            kind, vals, aux = _TUPLE, x, None
        elif t is _NoneType:
            kind = _NONE
        else:
            kind = _KINDS.get(t)
            if kind is None:
                kind = _classify(t)
            if kind is not None:
                vals, aux = kind.flatten(x)
        if kind is None:  # a type seen for the first time, found to be a leaf
            add_leaf(x)
            add_node(None)
        else:
            if stack:
                stack[-1][4] = True
            if kind is _NONE:
                add_node(_NONE_NODE)
            # Containers of known leaf types (the usual bottom level) are checked and copied
            # in C. Such children are leaves whatever is_leaf says.
            elif _LEAF_TYPES.issuperset(map(type, vals)):
                leaves.extend(vals)
                add_node((kind, aux, len(vals), True))
            else:
                stack.append([iter(vals), kind, aux, len(vals), False])
        # Resume the innermost open container: leaves go straight out, the next child that may
        # be a node becomes x, and finished containers are emitted (postorder).
        while stack:
            frame = stack[-1]
            for c in frame[0]:
                t = type(c)
                if t in _LEAF_TYPES or (is_leaf is not None and is_leaf(c)):
                    add_leaf(c)
                    add_node(None)
                # The usual bottom level, a list, tuple or dict of known leaf types, inline.
                elif t is list and _LEAF_TYPES.issuperset(map(type, c)):
                    frame[4] = True
                    leaves.extend(c)
                    add_node((_LIST, None, len(c), True))
                elif t is tuple and _LEAF_TYPES.issuperset(map(type, c)):
                    frame[4] = True
                    leaves.extend(c)
                    add_node((_TUPLE, None, len(c), True))
                elif t is dict and _LEAF_TYPES.issuperset(map(type, c.values())):
                    frame[4] = True
                    keys = list(c)
                    try:
                        skeys = sorted(keys)
                    except TypeError:
                        skeys = keys
                    if skeys == keys:
                        leaves.extend(c.values())
                        add_node((_DICT, (tuple(keys), None), len(keys), True))
                    else:
                        leaves.extend(map(c.__getitem__, skeys))
                        add_node((_DICT, (tuple(skeys), _key_order(skeys, keys)), len(keys),
                                  True))
                else:
                    x = c
                    break
            else:
                stack.pop()
                _, kind, aux, n, has_node_child = frame
                if has_node_child:
                    add_node((kind, aux, n, False))
                else:
                    # All children turned out to be leaves: use the canonical leaf-count form
                    # so that equal structures give equal treedefs.
                    del nodes[len(nodes) - n:]
                    add_node((kind, aux, n, True))
                continue
            break
        else:
            return leaves, nodes


def _collect(tree: Any, is_leaf: IsLeaf) -> list:
    """The leaves of ``tree`` (not a leaf itself), as _flatten without building the treedef."""
    leaves: list = []
    add_leaf = leaves.append
    stack: list[Iterator[Any]] = []
    x = tree
    while True:
        t = type(x)
        if t is dict:
            keys = list(x)
            try:
                skeys = sorted(keys)
            except TypeError:
                skeys = keys
            vals = x.values() if skeys == keys else list(map(x.__getitem__, skeys))
        elif t is list or t is tuple:
            vals = x
        elif t is _NoneType:
            vals = ()
        else:
            kind = _KINDS.get(t)
            if kind is None:
                kind = _classify(t)
            if kind is None:
                add_leaf(x)
                vals = ()
            else:
                vals = kind.flatten(x)[0]
        if _LEAF_TYPES.issuperset(map(type, vals)):
            leaves.extend(vals)
        else:
            stack.append(iter(vals))
        while stack:
            for c in stack[-1]:
                t = type(c)
                if t in _LEAF_TYPES or (is_leaf is not None and is_leaf(c)):
                    add_leaf(c)
                elif (t is list or t is tuple) and _LEAF_TYPES.issuperset(map(type, c)):
                    leaves.extend(c)
                else:
                    x = c
                    break
            else:
                stack.pop()
                continue
            break
        else:
            return leaves


def _unflatten(nodes: tuple, leaves: list) -> Any:
    """Rebuild the tree whose postorder nodes are ``nodes`` from a list of its leaves.

    A postorder sequence is its own build plan: each node takes its children off the top of a
    value stack (or, in the leaf-count form, straight from ``leaves``) and pushes itself.
    """
    stack: list = []
    push = stack.append
    pos = 0
    for node in nodes:
        if node is None:
            push(leaves[pos])
            pos += 1
            continue
        kind, aux, n, leaf_children = node
        if leaf_children:
            if kind is _DICT and n < _N_DICT_MAKERS:
                if aux[1] is None:
                    push(_DICT_MAKERS[n](aux[0], leaves, pos))
                else:
                    push(_ORDERED_DICT_MAKERS[n](aux[0], leaves, pos, aux[1]))
                pos += n
                continue
            end = pos + n
            vals = leaves[pos:end]
            pos = end
        else:
            vals = stack[-n:]  # n > 0: a node without children uses the leaf-count form
            del stack[-n:]
        if kind is _DICT:
            push(_build_dict(aux[0], aux[1], vals))
        elif kind is _LIST:
            push(vals)  # a fresh list: a slice of leaves or of the stack
        elif kind is _TUPLE:
            push(tuple(vals))
        elif kind is _NONE:
            push(None)
        else:
            push(kind.unflatten(aux, vals))
    return stack[0]


def _build(kind: _NodeKind, aux: Any, vals: Iterable[Any]) -> Any:
    """Rebuild one node of ``kind`` from its children (as _unflatten does, for tree_map)."""
    if kind is _DICT:
        return _build_dict(aux[0], aux[1], vals)
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

_OPEN = object()  # the value of a subtree whose container was pushed as a frame


def _map_1(f: Callable[[Any], Any], tree: Any, is_leaf: IsLeaf) -> Any:
    """tree_map over one tree; ``tree`` is known not to be a leaf by type or is_leaf."""
    # Frames: [children iterator, kind, aux, mapped children so far].
    stack: list[list] = []
    x = tree
    while True:
        t = type(x)
        if t is dict:
            kind = _DICT
            keys = list(x)
            try:
                skeys = sorted(keys)
            except TypeError:
                skeys = keys
            # f must see leaves in tree_leaves order, i.e. sorted by key.
            if skeys == keys:
                vals, aux = x.values(), (keys, None)
            else:
                vals, aux = list(map(x.__getitem__, skeys)), (skeys, _key_order(skeys, keys))
        elif t is list:
            kind, vals, aux = _LIST, x, None
        elif t is tuple:
            kind, vals, aux = _TUPLE, x, None
        elif t is _NoneType:
            kind = _NONE
        else:
            kind = _KINDS.get(t)
            if kind is None:
                kind = _classify(t)
            if kind is not None:
                vals, aux = kind.flatten(x)
        if kind is None:
            v = f(x)
        elif kind is _NONE:
            v = None
        elif _LEAF_TYPES.issuperset(map(type, vals)):
            v = _build(kind, aux, map(f, vals))
        else:
            stack.append([iter(vals), kind, aux, []])
            v = _OPEN
        if v is not _OPEN:
            if not stack:
                return v
            stack[-1][3].append(v)
        while stack:
            frame = stack[-1]
            add = frame[3].append
            for c in frame[0]:
                t = type(c)
                if t in _LEAF_TYPES or (is_leaf is not None and is_leaf(c)):
                    add(f(c))
                # The usual bottom level, a list, tuple or dict of known leaf types, inline.
                elif t is list and _LEAF_TYPES.issuperset(map(type, c)):
                    add(list(map(f, c)))
                elif t is tuple and _LEAF_TYPES.issuperset(map(type, c)):
                    add(tuple(map(f, c)))
                elif t is dict and _LEAF_TYPES.issuperset(map(type, c.values())):
                    keys = tuple(c)
                    order, get = _DICT_PLANS.get(keys) or _dict_plan(keys)
                    # f sees the values in sorted key order; the keys keep their order.
                    out = list(map(f, c.values() if order is None else get(c)))
                    if len(keys) == 2:  # {"w": ..., "b": ...}, inline
                        add({keys[0]: out[0], keys[1]: out[1]} if order is None
                            else {keys[0]: out[1], keys[1]: out[0]})
                    else:
                        add(_in_order(keys, out, order))
                else:
                    x = c
                    break
            else:
                stack.pop()
                v = _build(frame[1], frame[2], frame[3])
                if not stack:
                    return v
                stack[-1][3].append(v)
                continue
            break


def _map_n(f: Callable[..., Any], tree: Any, rest: tuple, is_leaf: IsLeaf) -> Any:
    """tree_map over ``tree`` and the trees ``rest``; ``tree`` is not a leaf by is_leaf.

    Raises _Mismatch where the structures differ.
    """
    # Frames: [iterator of (child, children at the same place in rest), kind, aux, out].
    stack: list[list] = []
    x, others = tree, rest
    while True:
        t = type(x)
        kind = _KINDS.get(t)
        if kind is None:
            kind = _classify(t)
        if kind is None:
            for o in others:
                if not _is_leaf_value(o, is_leaf):
                    raise _Mismatch
            v = f(x, *others)
        else:
            for o in others:
                if type(o) is not t or (is_leaf is not None and is_leaf(o)):
                    raise _Mismatch
            v = _OPEN
            if kind is _DICT:
                keys = list(x)
                try:
                    skeys = sorted(keys)
                except TypeError:
                    skeys = keys
                in_order = skeys == keys
                if in_order:
                    vals, aux = x.values(), (keys, None)
                else:
                    vals = list(map(x.__getitem__, skeys))
                    aux = (skeys, _key_order(skeys, keys))
                ovals = []
                for o in others:
                    if in_order and list(o) == keys:
                        ovals.append(o.values())
                    elif o.keys() == x.keys():
                        # Fetching by key lets the other dicts have any insertion order.
                        ovals.append(list(map(o.__getitem__, skeys)))
                    else:
                        raise _Mismatch
            elif kind is _LIST or kind is _TUPLE:
                n = len(x)
                for o in others:
                    if len(o) != n:
                        raise _Mismatch
                vals, ovals, aux = x, others, None
            elif kind is _NONE:
                v = None
            else:
                vals, aux = kind.flatten(x)
                ovals = []
                for o in others:
                    ov, oaux = kind.flatten(o)
                    if kind is _DDICT:
                        # Children are in sorted key order: only the keys and factory matter.
                        same = oaux[0] == aux[0] and oaux[2] == aux[2]
                    else:
                        same = oaux == aux
                    if not same or len(ov) != len(vals):
                        raise _Mismatch
                    ovals.append(ov)
            if v is _OPEN:
                if _LEAF_TYPES.issuperset(map(type, vals)):
                    for ov in ovals:
                        if not _LEAF_TYPES.issuperset(map(type, ov)):
                            for o in ov:
                                if not _is_leaf_value(o, is_leaf):
                                    raise _Mismatch
                    v = _build(kind, aux, map(f, vals, *ovals))
                else:
                    stack.append([zip(vals, zip(*ovals)), kind, aux, []])
        if v is not _OPEN:
            if not stack:
                return v
            stack[-1][3].append(v)
        while stack:
            frame = stack[-1]
            add = frame[3].append
            for c, cs in frame[0]:
                t = type(c)
                if t in _LEAF_TYPES or (is_leaf is not None and is_leaf(c)):
                    for o in cs:
                        if not _is_leaf_value(o, is_leaf):
                            raise _Mismatch
                    add(f(c, *cs))
                    continue
                # The usual bottom level, lists, tuples or dicts of known leaf types in every
                # tree, inline; anything else (or any doubt) takes the general path.
                if is_leaf is None:
                    if (t is list or t is tuple) and _LEAF_TYPES.issuperset(map(type, c)):
                        n = len(c)
                        for o in cs:
                            if (type(o) is not t or len(o) != n
                                    or not _LEAF_TYPES.issuperset(map(type, o))):
                                break
                        else:
                            out = map(f, c, *cs)
                            add(list(out) if t is list else tuple(out))
                            continue
                    elif t is dict and _LEAF_TYPES.issuperset(map(type, c.values())):
                        n = len(c)
                        for o in cs:
                            if (type(o) is not dict or len(o) != n
                                    or not _LEAF_TYPES.issuperset(map(type, o.values()))):
                                break
                        else:
                            keys = tuple(c)
                            order, get = _DICT_PLANS.get(keys) or _dict_plan(keys)
                            # Values by key: the other dicts may have any insertion order. Of
                            # as many keys, a missing one means other keys: a mismatch, which
                            # the general path reports.
                            try:
                                ovals = (get(cs[0]),) if len(cs) == 1 else [get(o) for o in cs]
                            except KeyError:
                                x, others = c, cs
                                break
                            if n == 2 and len(cs) == 1:  # {"w": ..., "b": ...} and one other
                                (o0, o1), = ovals
                                c0, c1 = c.values() if order is None else get(c)
                                v0 = f(c0, o0)  # in sorted key order
                                add({keys[0]: v0, keys[1]: f(c1, o1)} if order is None
                                    else {keys[0]: f(c1, o1), keys[1]: v0})
                                continue
                            out = list(map(f, c.values() if order is None else get(c), *ovals))
                            if n == 2:  # {"w": ..., "b": ...}, inline
                                add({keys[0]: out[0], keys[1]: out[1]} if order is None
                                    else {keys[0]: out[1], keys[1]: out[0]})
                            else:
                                add(_in_order(keys, out, order))
                            continue
                x, others = c, cs
                break
            else:
                stack.pop()
                v = _build(frame[1], frame[2], frame[3])
                if not stack:
                    return v
                stack[-1][3].append(v)
                continue
            break


# Slow paths (paths, repr, error messages) work on a nested view of the postorder nodes:
# a leaf is None and a node is (node, list of child views).


def _nest(nodes: tuple) -> Any:
    """The nested view of postorder ``nodes`` (built with a stack: any depth)."""
    stack: list = []
    for node in nodes:
        if node is None:
            stack.append(None)
        elif node[3]:
            stack.append((node, [None] * node[2]))
        else:
            n = node[2]
            kids = stack[-n:]
            del stack[-n:]
            stack.append((node, kids))
    return stack[0]


def _node_keys(node: tuple) -> list[KeyEntry]:
    kind, aux, n, _ = node
    tag = kind.tag
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
    kind, aux = node[0], node[1]
    if kind.tag in ("dict", "ddict"):
        return [obj[k] for k in aux[0]]
    return list(kind.flatten(obj)[0])


def _paths(nodes: tuple) -> list[KeyPath]:
    """The key path of every leaf, in leaf order."""
    root = _nest(nodes)
    if root is None:
        return [()]
    out: list[KeyPath] = []
    add = out.append
    # One list of keys for the current path instead of a tuple per node: building
    # (*prefix, key) at every level would be quadratic in depth.
    keypath: list[KeyEntry] = []
    stack = [zip(_node_keys(root[0]), root[1])]
    while stack:
        for key, child in stack[-1]:
            if child is None:
                add((*keypath, key))
            elif child[0][3]:  # only leaves below (if any: skip empty nodes in O(1))
                if child[0][2]:
                    base = (*keypath, key)
                    out.extend([(*base, k) for k in _node_keys(child[0])])
            else:
                keypath.append(key)
                stack.append(zip(_node_keys(child[0]), child[1]))
                break
        else:
            stack.pop()
            if keypath:
                keypath.pop()
    return out


# --------------------------------------------------------------------------------------------
# PyTreeDef


def _node_brackets(node: tuple) -> tuple[str, list[str], str]:
    """How a node prints: its opening text, the text before each child, its closing text."""
    kind, aux, n, _ = node
    tag = kind.tag
    if tag in ("dict", "ddict", "odict"):
        keys = aux if tag == "odict" else aux[0]
        before = [f"{k!r}: " for k in keys]
        if tag == "odict":
            return "OrderedDict({", before, "})"
        if tag == "ddict":
            return f"defaultdict({aux[2]!r}, {{", before, "})"
        return "{", before, "}"
    if tag == "list":
        return "[", [""] * n, "]"
    if tag == "tuple":
        return "(", [""] * n, ",)" if n == 1 else ")"
    if tag == "none":
        return "None", [], ""
    if tag in ("namedtuple", "dataclass"):
        return f"{kind.type.__name__}(", [f"{f}=" for f in kind.fields], ")"
    return f"CustomNode({kind.type.__name__}[{aux!r}], [", [""] * n, "])"


def _nodes_repr(nodes: tuple) -> str:
    root = _nest(nodes)
    if root is None:
        return "*"
    parts: list[str] = []
    # Frames: (iterator over (text before the child, child), closing text).
    opening, before, closing = _node_brackets(root[0])
    parts.append(opening)
    stack = [(enumerate(zip(before, root[1])), closing)]
    while stack:
        children, closing = stack[-1]
        for i, (text, child) in children:
            if i:
                parts.append(", ")
            parts.append(text)
            if child is None:
                parts.append("*")
            else:
                opening, before, child_closing = _node_brackets(child[0])
                parts.append(opening)
                stack.append((enumerate(zip(before, child[1])), child_closing))
                break
        else:
            stack.pop()
            parts.append(closing)
    return "".join(parts)


# A treedef unflattened more than once gets a builder: one generated Python function whose body
# is a single expression (dict and list displays, tuples, calls of registered unflatten
# functions), so rebuilding runs no loop and no dispatch per node. The expression refers to the
# leaves by position and to this treedef's own key objects and aux data (bound as the function's
# defaults), so its result is exactly what _unflatten builds. Trees too deep for the parser's
# nesting limit, or very large ones, keep the interpreter.
# Compiling costs about as much as a hundred interpreted unflattens of the same tree, so a
# treedef is compiled only once it has been used that often (ski rental): the unflatten calls
# before compiling, for a treedef of n nodes, are _BUILD_AFTER + n // 4.
_BUILD_AFTER = 32
_MAX_BUILD_DEPTH = 60
_MAX_BUILD_NODES = 20_000


def _compile_builder(nodes: tuple) -> Callable[[list], Any] | None:
    """A function ``build(leaves)`` equal to ``_unflatten(nodes, leaves)``, or None when the
    tree is too deep or too large to be worth one."""
    if len(nodes) > _MAX_BUILD_NODES:
        return None
    consts: dict[int, str] = {}  # id of a key, kind or aux object -> its default's name
    values: list[Any] = []

    def const(obj: Any) -> str:
        name = consts.get(id(obj))
        if name is None:
            name = consts[id(obj)] = f"c{len(values)}"
            values.append(obj)
        return name

    stack: list[tuple[str, int]] = []  # (expression, depth)
    pos = 0
    for node in nodes:
        if node is None:
            stack.append((f"L[{pos}]", 0))
            pos += 1
            continue
        kind, aux, n, leaf_children = node
        if leaf_children:
            kids = [f"L[{pos + i}]" for i in range(n)]
            depth = 1
            pos += n
        else:
            taken = stack[-n:]
            del stack[-n:]
            kids = [e for e, _ in taken]
            depth = 1 + max(d for _, d in taken)
            if depth > _MAX_BUILD_DEPTH:
                return None
        if kind is _DICT:
            skeys, order = aux
            keys = [const(k) for k in skeys]
            seq = range(n) if order is None else order
            expr = "{" + ", ".join(f"{keys[i]}: {kids[i]}" for i in seq) + "}"
        elif kind is _LIST:
            expr = "[" + ", ".join(kids) + "]"
        elif kind is _TUPLE:
            expr = "(" + "".join(k + ", " for k in kids) + ")"
        elif kind is _NONE:
            expr = "None"
        else:
            expr = f"{const(kind.unflatten)}({const(aux)}, [{', '.join(kids)}])"
        stack.append((expr, depth))
    params = "".join(f", {name}={name}" for name in consts.values())
    source = f"def build(L{params}):\n    return {stack[0][0]}\n"
    namespace: dict[str, Any] = dict(zip(consts.values(), values))
    try:
        exec(compile(source, "<diffprog treedef builder>", "exec"), namespace)
    except (RecursionError, MemoryError, SyntaxError):  # a parser limit after all
        return None
    return namespace["build"]


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

    __slots__ = ("_build", "_hash", "_nodes", "_uses", "num_leaves")

    def __init__(self, nodes: tuple, num_leaves: int) -> None:
        self._nodes = nodes
        self.num_leaves = num_leaves
        self._hash: int | None = None
        self._build: Callable[[list], Any] | None = None  # see _compile_builder
        self._uses = 0

    def unflatten(self, leaves: Iterable[Any]) -> PyTree:
        """Build a pytree of this structure from ``leaves`` (see :func:`tree_unflatten`)."""
        if type(leaves) is not list:
            leaves = list(leaves)  # slices must be lists: a list node takes its slice as is
        build = self._build
        if build is not None and len(leaves) == self.num_leaves:
            return build(leaves)
        if len(leaves) != self.num_leaves:
            shown = repr(self)
            if len(shown) > 200:
                shown = shown[:197] + "..."
            raise ValueError(
                f"tree_unflatten: expected {self.num_leaves} leaves for {shown}, "
                f"got {len(leaves)}")
        if self is _LEAF_TREEDEF:
            return leaves[0]
        self._uses = uses = self._uses + 1
        if uses == _BUILD_AFTER + (len(self._nodes) >> 2):
            build = _compile_builder(self._nodes)
            if build is not None:
                self._build = build
                return build(leaves)
        return _unflatten(self._nodes, leaves)

    @property
    def num_nodes(self) -> int:
        """Number of nodes, leaves included."""
        return sum([1 if node is None else 1 + node[2] * node[3] for node in self._nodes])

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not PyTreeDef:
            return NotImplemented
        # A flat tuple compares in C without recursing, however deep the tree.
        return self.num_leaves == other.num_leaves and self._nodes == other._nodes

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            try:
                h = hash(self._nodes)
            except TypeError:
                # Equal nodes give equal skeletons, so hashing without the aux data keeps hash
                # consistent with == for user aux data that is comparable but not hashable.
                h = hash(tuple([None if node is None else (node[0], node[2], node[3])
                                for node in self._nodes]))
            self._hash = h
        return h

    def __repr__(self) -> str:
        return f"PyTreeDef({_nodes_repr(self._nodes)})"


_LEAF_TREEDEF = PyTreeDef((None,), 1)


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
    leaves, nodes = _flatten(tree, is_leaf)
    if nodes[-1] is None:  # the root: a leaf by a type seen for the first time
        return leaves, _LEAF_TREEDEF
    return leaves, PyTreeDef(tuple(nodes), len(leaves))


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
    return _collect(tree, is_leaf)


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
    return list(zip(_paths(treedef._nodes), leaves)), treedef


def _describe(node: tuple | None, obj: Any) -> str:
    if node is None:
        return f"a leaf of type {type(obj).__name__}"
    kind, aux, n, _ = node
    tag = kind.tag
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


def _same_node(a: tuple | None, b: tuple | None) -> bool:
    """Whether two nodes match, children aside. Dicts match when their keys do, whatever
    their insertion order: both flatten in sorted key order, so their leaves still line up."""
    if a is None or b is None or a[0] is not b[0] or a[2] != b[2]:
        return a is None and b is None
    if a[0].tag in ("dict", "ddict"):
        return a[1][0] == b[1][0] and a[1][2:] == b[1][2:]
    return a[1] == b[1]


def _find_mismatch(a_nodes: tuple, a_obj: Any, b_nodes: tuple,
                   b_obj: Any) -> tuple | None:
    """First place where two structures differ, as (path, a, a_obj, b, b_obj), else None."""
    a, b = _nest(a_nodes), _nest(b_nodes)
    a_node = None if a is None else a[0]
    b_node = None if b is None else b[0]
    if not _same_node(a_node, b_node):
        return (), a_node, a_obj, b_node, b_obj
    if a is None:
        return None
    keypath: list[KeyEntry] = []

    def children(a: tuple, a_obj: Any, b: tuple, b_obj: Any) -> Iterator[tuple]:
        return zip(_node_keys(a[0]), a[1], _child_values(a[0], a_obj),
                   b[1], _child_values(b[0], b_obj))

    stack = [children(a, a_obj, b, b_obj)]
    while stack:
        for key, ca, oa, cb, ob in stack[-1]:
            a_node = None if ca is None else ca[0]
            b_node = None if cb is None else cb[0]
            if not _same_node(a_node, b_node):
                return (*keypath, key), a_node, oa, b_node, ob
            if ca is not None:
                keypath.append(key)
                stack.append(children(ca, oa, cb, ob))
                break
        else:
            stack.pop()
            if keypath:
                keypath.pop()
    return None


def _flatten_rest(fname: str, treedef: PyTreeDef, trees: tuple, is_leaf: IsLeaf) -> list[list]:
    """Leaves of trees[1:], which must have the structure ``treedef`` of trees[0]."""
    out = []
    for i in range(1, len(trees)):
        leaves, other = tree_flatten(trees[i], is_leaf)
        if other != treedef:
            found = _find_mismatch(treedef._nodes, trees[0], other._nodes, trees[i])
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
    return treedef.unflatten(list(map(f, _paths(treedef._nodes), leaves, *others)))
