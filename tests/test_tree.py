"""Tests for diffprog.tree: pytree flattening, rebuilding, mapping and paths."""

import dataclasses
import doctest
from collections import OrderedDict, defaultdict, namedtuple

import numpy as np
import pytest

from diffprog import tree as tree_module
from diffprog.tree import (
    DictKey,
    FlattenedIndexKey,
    GetAttrKey,
    PyTreeDef,
    SequenceKey,
    keystr,
    register_pytree_node,
    tree_flatten,
    tree_flatten_with_path,
    tree_leaves,
    tree_map,
    tree_map_with_path,
    tree_structure,
    tree_unflatten,
)

Point = namedtuple("Point", ["x", "y"])


@dataclasses.dataclass
class Linear:
    W: object
    b: object


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: object
    b: object


@dataclasses.dataclass(slots=True)
class Slotted:
    a: object
    b: object


def roundtrip(tree, **kwargs):
    leaves, treedef = tree_flatten(tree, **kwargs)
    assert treedef.num_leaves == len(leaves)
    return leaves, tree_unflatten(treedef, leaves)


def assert_same(a, b):
    """Equal, with the same container types and dict key order, all the way down.

    Walks with a stack, so it also checks trees far deeper than the recursion limit.
    """
    todo = [(a, b)]
    while todo:
        a, b = todo.pop()
        assert type(a) is type(b)
        if isinstance(a, dict):
            assert list(a) == list(b)
            todo.extend((a[k], b[k]) for k in a)
        elif isinstance(a, (list, tuple)):
            assert len(a) == len(b)
            todo.extend(zip(a, b, strict=True))
        elif dataclasses.is_dataclass(a):
            todo.extend((getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
        elif isinstance(a, np.ndarray):
            assert a is b
        else:
            assert a == b


# ------------------------------------------------------------------------------ round trips


def test_dict_leaves_sorted_and_insertion_order_kept():
    tree = {"b": 1.0, "c": 2.0, "a": 3.0}
    leaves, back = roundtrip(tree)
    assert leaves == [3.0, 1.0, 2.0]
    assert list(back) == ["b", "c", "a"]
    assert_same(back, tree)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 6, 7, 8, 9, 12, 40])
def test_dicts_of_every_size_and_order_roundtrip(n):
    rng = np.random.default_rng(n)
    for _ in range(5):
        keys = [f"k{i:02d}" for i in rng.permutation(n)]
        tree = {"flat": {k: float(k[1:]) for k in keys},
                "nested": {k: [float(k[1:])] for k in keys},
                "ddict": defaultdict(list, {k: float(k[1:]) for k in keys})}
        leaves, back = roundtrip(tree)
        assert leaves == 3 * [float(i) for i in range(n)]
        assert_same(back, tree)
        assert_same(tree_map(lambda x: x, tree), tree)
        reordered = {name: type(d)(*([list] if name == "ddict" else []),
                                   {k: d[k] for k in sorted(d)}) for name, d in tree.items()}
        assert_same(tree_map(lambda x, y: x, tree, reordered), tree)
        assert_same(tree_map(lambda x, y: y, reordered, tree), reordered)
        # insertion order is part of the structure
        assert (tree_structure(reordered) == tree_structure(tree)) == (keys == sorted(keys))


def test_dict_with_unsortable_keys_uses_insertion_order():
    tree = {2: "two", "a": "A", (1,): "tuple"}
    leaves, back = roundtrip(tree)
    assert leaves == ["two", "A", "tuple"]
    assert_same(back, tree)


def test_nested_containers_roundtrip():
    a = np.arange(3.0)
    tree = {"layers": [{"W": a, "b": 1.0}, ({"W": a}, [2, 3])], "step": 7, "name": "mlp"}
    leaves, back = roundtrip(tree)
    assert leaves[:3] == [a, 1.0, a]
    assert leaves[3:] == [2, 3, "mlp", 7]
    assert_same(back, tree)


def test_empty_containers_are_nodes_without_leaves():
    tree = {"a": [], "b": (), "c": {}, "d": [[]]}
    leaves, back = roundtrip(tree)
    assert leaves == []
    assert_same(back, tree)


def test_single_leaf_tree():
    leaves, treedef = tree_flatten(5.0)
    assert leaves == [5.0]
    assert treedef.num_leaves == 1
    assert tree_unflatten(treedef, ["x"]) == "x"
    assert repr(treedef) == "PyTreeDef(*)"
    obj = object()  # an unknown type is a leaf too
    assert tree_leaves(obj) == [obj]
    assert tree_structure(obj) == treedef


def test_ordered_dict_keeps_its_order_and_type():
    tree = OrderedDict([("z", 1), ("a", 2)])
    leaves, back = roundtrip(tree)
    assert leaves == [1, 2]
    assert type(back) is OrderedDict
    assert list(back.items()) == [("z", 1), ("a", 2)]


def test_defaultdict_keeps_default_factory():
    tree = defaultdict(list, {"b": 1, "a": 2})
    leaves, back = roundtrip(tree)
    assert leaves == [2, 1]
    assert type(back) is defaultdict
    assert back.default_factory is list
    assert list(back.items()) == [("b", 1), ("a", 2)]


def test_namedtuple_type_kept():
    tree = [Point(1.0, (2.0, 3.0)), Point(x=4.0, y=None)]
    leaves, back = roundtrip(tree)
    assert leaves == [1.0, 2.0, 3.0, 4.0]
    assert type(back[0]) is Point and type(back[1]) is Point
    assert back == tree
    assert repr(tree_structure(Point(1, 2))) == "PyTreeDef(Point(x=*, y=*))"


def test_none_is_a_node_without_leaves():
    assert tree_leaves([None, 1.0]) == [1.0]
    assert tree_leaves(None) == []
    leaves, back = roundtrip({"a": None, "b": [None, 2.0], "c": (None,)})
    assert leaves == [2.0]
    assert back == {"a": None, "b": [None, 2.0], "c": (None,)}
    treedef = tree_structure(None)
    assert treedef.num_leaves == 0
    assert tree_unflatten(treedef, []) is None
    assert tree_map(lambda x: x + 1, [None, 1.0]) == [None, 2.0]


def test_is_leaf_can_make_none_a_leaf():
    assert tree_leaves([None, 1.0], is_leaf=lambda x: x is None) == [None, 1.0]


# ------------------------------------------------------------------------------ dataclasses


def test_dataclass_roundtrip_without_calling_init():
    calls = []

    @dataclasses.dataclass
    class Counted:
        a: object
        b: object

        def __post_init__(self):
            calls.append(1)

    obj = Counted(1.0, [2.0, 3.0])
    assert len(calls) == 1
    leaves, back = roundtrip(obj)
    assert leaves == [1.0, 2.0, 3.0]
    assert type(back) is Counted
    assert back == obj
    assert len(calls) == 1
    doubled = tree_map(lambda x: 2 * x, obj)
    assert len(calls) == 1
    assert type(doubled) is Counted and (doubled.a, doubled.b) == (2.0, [4.0, 6.0])


def test_dataclass_whose_init_raises():
    @dataclasses.dataclass
    class NoInit:
        x: object

        def __init__(self, *args, **kwargs):
            raise AssertionError("__init__ must not be called")

    obj = object.__new__(NoInit)
    obj.x = 3.0
    back = tree_map(lambda v: v + 1, obj)
    assert type(back) is NoInit and back.x == 4.0


def test_frozen_and_slotted_dataclasses():
    leaves, back = roundtrip(Frozen(1.0, {"k": 2.0}))
    assert leaves == [1.0, 2.0]
    assert back == Frozen(1.0, {"k": 2.0})
    leaves, back = roundtrip(Slotted(1.0, 2.0))
    assert leaves == [1.0, 2.0]
    assert type(back) is Slotted and (back.a, back.b) == (1.0, 2.0)
    assert tree_map(lambda x: -x, Frozen(1.0, 2.0)) == Frozen(-1.0, -2.0)


def test_dataclass_fields_in_field_order_including_non_init_fields():
    @dataclasses.dataclass
    class WithDerived:
        z: float
        a: float
        total: float = dataclasses.field(init=False)

        def __post_init__(self):
            self.total = self.z + self.a

    obj = WithDerived(1.0, 2.0)
    leaves, back = roundtrip(obj)
    assert leaves == [1.0, 2.0, 3.0]
    assert (back.z, back.a, back.total) == (1.0, 2.0, 3.0)


def test_dataclass_class_object_is_a_leaf():
    assert tree_leaves([Linear]) == [Linear]


# ------------------------------------------------------------------------------ registration


def test_registered_custom_class():
    class Box:
        def __init__(self, items, label):
            self.items, self.label = items, label

    register_pytree_node(
        Box,
        lambda b: (iter(b.items), b.label),  # any iterable of children is accepted
        lambda label, children: Box(list(children), label),
    )
    box = Box([1.0, {"q": 2.0}], "lbl")
    leaves, treedef = tree_flatten([box, 3.0])
    assert leaves == [1.0, 2.0, 3.0]
    back = tree_unflatten(treedef, [10.0, 20.0, 30.0])
    assert type(back[0]) is Box
    assert back[0].items == [10.0, {"q": 20.0}] and back[0].label == "lbl"
    assert back[1] == 30.0
    assert repr(treedef) == "PyTreeDef([CustomNode(Box['lbl'], [*, {'q': *}]), *])"
    # aux data is part of the structure
    assert tree_structure(Box([1.0], "x")) != tree_structure(Box([1.0], "y"))
    assert tree_structure(Box([1.0], "x")) == tree_structure(Box([5.0], "x"))


def test_register_twice_raises_with_class_name():
    class Twice:
        pass

    register_pytree_node(Twice, lambda t: ((), None), lambda aux, ch: Twice())
    with pytest.raises(ValueError, match=r"Twice.*already registered"):
        register_pytree_node(Twice, lambda t: ((), None), lambda aux, ch: Twice())
    with pytest.raises(ValueError, match="already registered"):
        register_pytree_node(dict, lambda t: ((), None), lambda aux, ch: {})


def test_registration_overrides_automatic_dataclass_handling():
    @dataclasses.dataclass
    class Params:
        w: float
        frozen_part: float

    assert tree_leaves(Params(1.0, 2.0)) == [1.0, 2.0]  # seen (and cached) as a dataclass
    register_pytree_node(
        Params, lambda p: ((p.w,), p.frozen_part), lambda aux, ch: Params(ch[0], aux))
    assert tree_leaves(Params(1.0, 2.0)) == [1.0]
    assert tree_map(lambda x: x * 10, Params(1.0, 2.0)) == Params(10.0, 2.0)


def test_registration_turns_a_cached_leaf_type_into_a_node():
    class Late:
        def __init__(self, v):
            self.v = v

    assert len(tree_leaves([Late(1.0)])) == 1  # cached as a leaf type
    register_pytree_node(Late, lambda o: ((o.v,), None), lambda aux, ch: Late(*ch))
    assert tree_leaves([Late(1.0)]) == [1.0]


# ------------------------------------------------------------------------------ tree_map


def test_tree_map_one_two_and_three_trees():
    a = {"x": [1.0, 2.0], "y": (3.0, None), "p": Point(4.0, 5.0)}
    b = {"x": [10.0, 20.0], "y": (30.0, None), "p": Point(40.0, 50.0)}
    c = {"x": [100.0, 200.0], "y": (300.0, None), "p": Point(400.0, 500.0)}
    assert tree_map(lambda u: -u, a) == {
        "x": [-1.0, -2.0], "y": (-3.0, None), "p": Point(-4.0, -5.0)}
    assert tree_map(lambda u, v: u + v, a, b) == {
        "x": [11.0, 22.0], "y": (33.0, None), "p": Point(44.0, 55.0)}
    out = tree_map(lambda u, v, w: u + v + w, a, b, c)
    assert out == {"x": [111.0, 222.0], "y": (333.0, None), "p": Point(444.0, 555.0)}
    assert type(out["p"]) is Point and type(out["y"]) is tuple
    assert tree_map(lambda u, v: u * v, 2.0, 3.0) == 6.0


def test_tree_map_arrays():
    w = np.ones((2, 2))
    out = tree_map(lambda x, y: x - y, {"w": w, "b": np.zeros(2)}, {"w": w, "b": np.ones(2)})
    np.testing.assert_array_equal(out["w"], np.zeros((2, 2)))
    np.testing.assert_array_equal(out["b"], -np.ones(2))


def test_tree_map_calls_f_in_leaf_order_and_keeps_key_order():
    tree = {"b": 1, "a": 2, "c": {"z": 3, "y": 4}}
    seen = []
    out = tree_map(lambda x: seen.append(x) or x * 10, tree)
    assert seen == tree_leaves(tree) == [2, 1, 4, 3]
    assert list(out) == ["b", "a", "c"] and list(out["c"]) == ["z", "y"]
    assert out == {"b": 10, "a": 20, "c": {"z": 30, "y": 40}}


def test_tree_map_accepts_dicts_in_different_insertion_orders():
    seen = []
    out = tree_map(lambda x, y: seen.append((x, y)) or x + y, {"a": 1, "b": 2}, {"b": 20, "a": 10})
    assert out == {"a": 11, "b": 22} and list(out) == ["a", "b"]
    assert seen == [(1, 10), (2, 20)]


def test_tree_map_is_leaf():
    tree = {"pair": (1, 2), "list": [3, 4]}
    out = tree_map(lambda x: ("leaf", x), tree, is_leaf=lambda x: isinstance(x, tuple))
    assert out == {"pair": ("leaf", (1, 2)), "list": [("leaf", 3), ("leaf", 4)]}
    out2 = tree_map(lambda x, y: (x, y), tree, tree, is_leaf=lambda x: isinstance(x, tuple))
    assert out2["pair"] == ((1, 2), (1, 2))


def mismatch_message(*trees, **kwargs):
    with pytest.raises(ValueError) as info:
        tree_map(lambda *xs: xs[0], *trees, **kwargs)
    return str(info.value)


def test_tree_map_mismatch_reports_path_and_both_sides():
    msg = mismatch_message({"x": {"a": 1, "b": 2}}, {"x": [1, 2]})
    assert "tree 0 has a dict with keys ['a', 'b'] at ['x']" in msg
    assert "tree 1 has a list of length 2" in msg


def test_tree_map_mismatch_deep_path():
    a = {"layers": [{"W": 1.0, "b": 2.0}, {"W": 3.0, "b": 4.0}]}
    b = {"layers": [{"W": (1.0, 1.0), "b": 2.0}, {"W": 3.0, "b": 4.0}]}
    msg = mismatch_message(a, b)
    assert "['layers'][0]['W']" in msg
    assert "tree 0 has a leaf of type float" in msg
    assert "tree 1 has a tuple of length 2" in msg


def test_tree_map_mismatch_in_dataclass_field_and_sequence_index():
    msg = mismatch_message([Linear(1.0, [1.0, 2.0])], [Linear(1.0, [1.0])])
    assert "at [0].b," in msg
    assert "a list of length 2" in msg and "a list of length 1" in msg
    msg = mismatch_message([1.0, 2.0, [3.0]], [1.0, 2.0, 3.0])
    assert "at [2]," in msg
    msg = mismatch_message({"a": 1, "b": 2}, {"a": 1, "c": 2})
    assert "at the root" in msg and "['a', 'c']" in msg


def test_tree_map_mismatch_third_tree_and_none():
    msg = mismatch_message([1.0, None], [1.0, None], [1.0, 2.0])
    assert "tree 2 has a leaf of type float" in msg
    assert "tree 0 has None at [1]" in msg


def test_tree_map_mismatch_node_types():
    msg = mismatch_message({"p": Point(1, 2)}, {"p": (1, 2)})
    assert "['p']" in msg and "Point" in msg and "a tuple of length 2" in msg
    msg = mismatch_message({"p": (1, 2)}, {"p": [1, 2]}, is_leaf=lambda x: isinstance(x, tuple))
    assert "tree 0 has a leaf of type tuple at ['p'], tree 1 has a list of length 2" in msg
    with pytest.raises(ValueError, match="OrderedDict"):
        tree_map(lambda x, y: x, OrderedDict(a=1, b=2), OrderedDict(b=2, a=1))


def test_tree_map_with_path():
    tree = {"layers": [Linear(W=1.0, b=2.0)], "p": Point(3.0, 4.0)}
    out = tree_map_with_path(lambda path, x, y: (keystr(path), x + y), tree, tree)
    assert out["layers"][0] == Linear(("['layers'][0].W", 2.0), ("['layers'][0].b", 4.0))
    assert out["p"] == Point(("['p'].x", 6.0), ("['p'].y", 8.0))
    with pytest.raises(ValueError, match=r"\['p'\]"):
        tree_map_with_path(lambda p, x, y: x, tree, {**tree, "p": (3.0, 4.0)})


# ------------------------------------------------------------------------------ PyTreeDef


def test_unflatten_wrong_leaf_count():
    _, treedef = tree_flatten({"a": 1, "b": [2, 3]})
    with pytest.raises(ValueError, match=r"expected 3 leaves.*got 2"):
        tree_unflatten(treedef, [1, 2])
    with pytest.raises(ValueError, match=r"expected 3 leaves.*got 4"):
        treedef.unflatten([1, 2, 3, 4])
    assert treedef.unflatten(iter([4, 5, 6])) == {"a": 4, "b": [5, 6]}


def test_treedef_equality_and_hash():
    a = np.zeros(3)
    t1 = tree_structure({"a": [a, 1.0], "b": (None, Point(1, 2))})
    t2 = tree_structure({"a": ["x", "y"], "b": (None, Point(a, a))})
    assert t1 == t2 and hash(t1) == hash(t2)
    assert {t1: "cached"}[t2] == "cached"
    different = [
        tree_structure({"a": [a, 1.0], "b": (None, (1, 2))}),  # tuple instead of Point
        tree_structure({"a": [a, 1.0, 2.0], "b": (None, Point(1, 2))}),
        tree_structure({"a": [a, [1.0]], "b": (None, Point(1, 2))}),
        tree_structure({"a": (a, 1.0), "b": (None, Point(1, 2))}),
        tree_structure({"c": [a, 1.0], "b": (None, Point(1, 2))}),
        tree_structure({"a": [a, 1.0], "b": (a, Point(1, 2))}),
        tree_structure({"b": (None, Point(1, 2)), "a": [a, 1.0]}),  # insertion order
    ]
    for other in different:
        assert t1 != other
    assert len({t1, t2, *different}) == 1 + len(different)
    assert t1 != "not a treedef"
    assert isinstance(t1, PyTreeDef)


def test_treedef_hash_with_unhashable_aux_data():
    class Tagged:
        def __init__(self, v, tags):
            self.v, self.tags = v, tags

    register_pytree_node(
        Tagged, lambda t: ((t.v,), list(t.tags)), lambda aux, ch: Tagged(ch[0], aux))
    t1, t2 = tree_structure(Tagged(1.0, ["a"])), tree_structure(Tagged(2.0, ["a"]))
    assert t1 == t2 and hash(t1) == hash(t2)
    assert t1 != tree_structure(Tagged(1.0, ["b"]))


def test_treedef_repr_and_counts():
    treedef = tree_structure({"b": [1, 2], "a": 1, "c": (None, (3,)), "d": Linear(1, 2)})
    assert repr(treedef) == (
        "PyTreeDef({'a': *, 'b': [*, *], 'c': (None, (*,)), 'd': Linear(W=*, b=*)})")
    assert treedef.num_leaves == 6
    assert treedef.num_nodes == 12
    assert treedef.unflatten(range(6)) == {
        "b": [1, 2], "a": 0, "c": (None, (3,)), "d": Linear(4, 5)}


# ------------------------------------------------------------------------------ paths


def test_flatten_with_path():
    tree = {"layers": [{"W": 1.0, "b": 2.0}, Linear(W=3.0, b=4.0)], "p": Point(5.0, None)}
    pairs, treedef = tree_flatten_with_path(tree)
    assert [leaf for _, leaf in pairs] == tree_leaves(tree)
    assert treedef == tree_structure(tree)
    assert [keystr(p) for p, _ in pairs] == [
        "['layers'][0]['W']",
        "['layers'][0]['b']",
        "['layers'][1].W",
        "['layers'][1].b",
        "['p'].x",
    ]
    assert pairs[2][0] == (DictKey("layers"), SequenceKey(1), GetAttrKey("W"))


def test_flatten_with_path_custom_node_and_root_leaf():
    class Wrap:
        def __init__(self, a, b):
            self.a, self.b = a, b

    register_pytree_node(Wrap, lambda w: ((w.a, w.b), None), lambda aux, ch: Wrap(*ch))
    pairs, _ = tree_flatten_with_path({"w": Wrap(1.0, [2.0])})
    assert [keystr(p) for p, _ in pairs] == ["['w'][<flat index 0>]", "['w'][<flat index 1>][0]"]
    assert pairs[1][0][1] == FlattenedIndexKey(1)
    assert tree_flatten_with_path(3.0)[0] == [((), 3.0)]
    assert keystr(()) == ""


def test_key_classes():
    assert str(DictKey("a")) == "['a']" and str(DictKey(3)) == "[3]"
    assert str(SequenceKey(2)) == "[2]"
    assert str(GetAttrKey("W")) == ".W"
    assert str(FlattenedIndexKey(0)) == "[<flat index 0>]"
    assert DictKey("a") == DictKey("a") and DictKey("a") != SequenceKey("a")
    assert hash(SequenceKey(1)) == hash(SequenceKey(1))
    assert repr(GetAttrKey("W")) == "GetAttrKey(name='W')"
    # keys are not pytree nodes themselves
    assert tree_leaves([DictKey("a")]) == [DictKey("a")]


# ------------------------------------------------------------------------------ is_leaf


def test_is_leaf_in_flatten_and_leaves():
    tree = {"a": [1, 2], "b": [[3], [4, 5]]}

    def short_list(x):
        return isinstance(x, list) and len(x) == 1

    leaves, treedef = tree_flatten(tree, is_leaf=short_list)
    assert leaves == [1, 2, [3], 4, 5]
    assert tree_leaves(tree, is_leaf=short_list) == leaves
    assert tree_unflatten(treedef, leaves) == tree
    assert tree_flatten(tree, is_leaf=lambda x: x is tree)[0] == [tree]
    assert tree_structure(tree, is_leaf=short_list) != tree_structure(tree)


def test_consistency_across_entry_points():
    a = np.ones(2)
    trees = [
        {"b": [a, (1.0, None)], "a": {"y": Point(2, 3), "x": Linear(4, [5])}},
        [OrderedDict(b=1, a=2), defaultdict(int, {"k": 3}), Frozen(None, ())],
        ((), [[[]]], {"z": {}}, 7),
    ]
    for tree in trees:
        leaves, treedef = tree_flatten(tree)
        assert tree_leaves(tree) == leaves
        assert [x for _, x in tree_flatten_with_path(tree)[0]] == leaves
        assert_same(tree_map(lambda x: x, tree), tree_unflatten(treedef, leaves))
        assert_same(tree_map(lambda x, y: x, tree, tree), tree)
        assert tree_structure(tree_map(lambda x: 0, tree)) == treedef


def test_docstring_examples():
    result = doctest.testmod(tree_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10
    assert result.failed == 0


# ------------------------------------------------------------------------------ deep trees
# Every traversal keeps its own stack: trees far deeper than the recursion limit (about 1,000
# frames) flatten, rebuild, map and give paths (issue 11).

DEPTH = 10_000


def chain(wrap, depth=DEPTH, leaf=1.0):
    x = leaf
    for _ in range(depth):
        x = wrap(x)
    return x


@pytest.mark.parametrize(("wrap", "key"), [
    (lambda x: [x], SequenceKey(0)),
    (lambda x: {"k": x}, DictKey("k")),
    (lambda x: (x,), SequenceKey(0)),
])
@pytest.mark.slow
def test_deep_single_container_chains(wrap, key):
    tree = chain(wrap)
    leaves, treedef = tree_flatten(tree)
    assert leaves == [1.0] and treedef.num_leaves == 1
    assert treedef.num_nodes == DEPTH + 1
    back = tree_unflatten(treedef, [2.0])
    assert_same(back, chain(wrap, leaf=2.0))
    assert_same(tree_unflatten(treedef, leaves), tree)
    assert tree_leaves(tree) == [1.0]
    assert_same(tree_map(lambda x: x + 1, tree), back)
    assert_same(tree_map(lambda x, y: x * y, tree, back), back)
    [(path, leaf)] = tree_flatten_with_path(tree)[0]
    assert leaf == 1.0 and path == (key,) * DEPTH
    assert keystr(path) == str(key) * DEPTH
    assert_same(tree_map_with_path(lambda p, x: len(p), tree), chain(wrap, leaf=DEPTH))
    # treedefs of deep trees compare, hash and print
    assert tree_structure(back) == treedef and hash(tree_structure(back)) == hash(treedef)
    assert tree_structure(wrap(tree)) != treedef
    assert tree_structure(chain(wrap, leaf=[1.0])) != treedef
    opening, closing = repr(tree_structure(wrap(1.0)))[len("PyTreeDef("):-1].split("*")
    assert repr(treedef) == f"PyTreeDef({opening * DEPTH}*{closing * DEPTH})"


@pytest.mark.slow
def test_deep_list_structure_mismatch_names_the_path():
    a, b = chain(lambda x: [x]), chain(lambda x: [x], leaf=(1.0, 2.0))
    msg = mismatch_message(a, b)
    assert f"tree 0 has a leaf of type float at {'[0]' * DEPTH}, tree 1 has a tuple" in msg
    msg = mismatch_message(chain(lambda x: {"k": x}), chain(lambda x: {"k": x}, DEPTH - 1))
    assert "tree 0 has a dict with keys ['k'] at " + "['k']" * (DEPTH - 1) + "," in msg
    with pytest.raises(ValueError, match=r"tree_map_with_path.*\[0\]\[0\]\[0\]"):
        tree_map_with_path(lambda p, x, y: x, a, b)
    with pytest.raises(ValueError, match="expected 1 leaves"):
        tree_unflatten(tree_structure(a), [1.0, 2.0])


@pytest.mark.slow
def test_deep_is_leaf():
    tree = chain(lambda x: [x])
    bottom = chain(lambda x: [x], 1)

    def is_bottom(x):
        return type(x) is list and type(x[0]) is float

    leaves, treedef = tree_flatten(tree, is_leaf=is_bottom)
    assert len(leaves) == 1 and leaves[0] is tree_leaves(tree, is_leaf=is_bottom)[0]
    assert_same(leaves[0], bottom)
    assert treedef.num_nodes == DEPTH
    doubled = tree_map(lambda x: [2 * x[0]], tree, is_leaf=is_bottom)
    assert_same(doubled, chain(lambda x: [x], leaf=2.0))


def mixed_chain():
    """DEPTH levels cycling through every kind of node, with empty nodes and a few leaves beside
    the path down. Returns the tree, its (path, leaf) pairs and its number of nodes, all worked
    out while building it."""
    inner = []  # the keys down to the bottom leaf, bottom up
    before, after = [], []  # (leaf, keys above it, its key): leaves beside the path down
    num_nodes = 1
    x = -1.0
    for i in range(DEPTH):
        side = float(i) if i % 500 < 6 else None
        match i % 6:
            case 0:
                x, keys = [x, None], [SequenceKey(0)]
            case 1:
                x, keys = {"b": (), "a": x}, [DictKey("a")]  # insertion order b, a
            case 2:
                x, keys = (side, x), [SequenceKey(1)]
                if side is not None:
                    before.append((side, len(inner), SequenceKey(0)))
            case 3:
                x, keys = Point(x, side), [GetAttrKey("x")]
                if side is not None:
                    after.append((side, len(inner), GetAttrKey("y")))
            case 4:
                x, keys = Linear(W=x, b=[]), [GetAttrKey("W")]
            case _:
                x, keys = Frozen(a=OrderedDict(z=x, y={}), b=None), [DictKey("z"), GetAttrKey("a")]
                num_nodes += 2
        num_nodes += 2
        inner += keys

    def path(below, key):  # the keys above a side leaf are those added after it, top down
        return (*inner[:below - 1:-1], key) if below else (*inner[::-1], key)

    # A leaf before the path down comes before the leaves of deeper levels, one after it after.
    pairs = [(path(below + 1, key), leaf) for leaf, below, key in reversed(before)]
    pairs.append((tuple(inner[::-1]), -1.0))
    pairs += [(path(below + 1, key), leaf) for leaf, below, key in after]
    return x, pairs, num_nodes


@pytest.mark.slow
def test_deep_mixed_containers():
    tree, pairs, num_nodes = mixed_chain()
    leaves, treedef = tree_flatten(tree)
    assert leaves == [leaf for _, leaf in pairs]
    assert len(leaves) > 10
    assert treedef.num_nodes == num_nodes
    with_paths, treedef2 = tree_flatten_with_path(tree)
    assert treedef2 == treedef
    assert with_paths == pairs
    assert_same(tree_unflatten(treedef, leaves), tree)
    assert tree_leaves(tree) == leaves
    doubled = tree_map(lambda x: 2 * x, tree)
    assert tree_leaves(doubled) == [2 * x for x in leaves]
    assert_same(tree_map(lambda x, y: x, tree, doubled), tree)
    assert tree_structure(doubled) == treedef and hash(tree_structure(doubled)) == hash(treedef)
    shown = repr(treedef)
    assert shown.startswith(
        "PyTreeDef(Point(x=(None, {'a': [Frozen(a=OrderedDict({'z': Linear(W=Point(x=")
    assert shown.count("*") == len(leaves)
    msg = mismatch_message(tree, tree_unflatten(treedef, [*leaves[:-1], [leaves[-1]]]))
    assert f"at {keystr(pairs[-1][0])}, tree 1 has a list of length 1" in msg
