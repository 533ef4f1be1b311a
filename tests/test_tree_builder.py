"""The compiled unflatten of a treedef used many times (tree._compile_builder) builds exactly
what the interpreter (tree._unflatten) builds: same types, keys (the very key objects), order,
aux data and leaves, for every node kind; trees past its limits keep the interpreter."""

import dataclasses
from collections import OrderedDict, defaultdict, namedtuple

import numpy as np
import pytest

from diffprog import tree as tree_module
from diffprog.tree import register_pytree_node, tree_flatten, tree_unflatten

Pair = namedtuple("Pair", ["a", "b"])


@dataclasses.dataclass
class Layer:
    W: object
    b: object


@dataclasses.dataclass(frozen=True, slots=True)
class FrozenSlots:
    a: object
    b: object


class Box:
    def __init__(self, label, items):
        self.label, self.items = label, items


register_pytree_node(Box, lambda b: (b.items, b.label), lambda label, items: Box(label, items))


def same(a, b) -> None:
    """Identical structure and leaves (by identity), dict keys by identity and in order."""
    todo = [(a, b)]
    while todo:
        x, y = todo.pop()
        assert type(x) is type(y)
        if isinstance(x, dict):
            assert [id(k) for k in x] == [id(k) for k in y]
            if isinstance(x, defaultdict):
                assert x.default_factory is y.default_factory
            todo.extend(zip(x.values(), y.values()))
        elif isinstance(x, (list, tuple)):
            assert len(x) == len(y)
            todo.extend(zip(x, y))
        elif isinstance(x, Box):
            assert x.label == y.label
            todo.extend(zip(x.items, y.items))
        elif dataclasses.is_dataclass(x) and not isinstance(x, type):
            todo.extend((getattr(x, f.name), getattr(y, f.name))
                        for f in dataclasses.fields(x))
        else:
            assert x is y


def compiled(treedef):
    """Unflatten until the treedef compiles its builder; the builder. The use count is set to
    one short of the threshold (a 10,000-level tree would take ~2,500 slow unflattens to get
    there), so the last unflatten is the one that decides."""
    leaves = list(range(treedef.num_leaves))
    tree_unflatten(treedef, leaves)
    treedef._uses = tree_module._BUILD_AFTER + (len(treedef._nodes) >> 2) - 1
    tree_unflatten(treedef, leaves)
    return treedef._build


TREES = [
    {"w": 1.0, "b": 2.0},                       # insertion order is not sorted order
    {"b": [1.0, (2.0, 3.0)], "a": {"z": 4.0, "y": None, "x": ()}},
    {i: float(i) for i in range(12)[::-1]},    # more keys than the dict makers cover
    {1: "one", 1.5: "x"},                       # numeric keys
    [[], (), {}, None, [None, [1.0]]],
    (1.0,),
    OrderedDict([("z", 1.0), ("a", [2.0])]),
    defaultdict(list, {"q": 1.0, "p": (2.0,)}),
    Pair(1.0, {"k": Pair(2.0, 3.0)}),
    [Layer(np.ones(2), 0.5), FrozenSlots(a=1.0, b=[2.0])],
    Box("lbl", [1.0, {"q": 2.0}]),
    {"block": [{"w": np.zeros(3), "b": np.ones(3)} for _ in range(20)], "n": 3},
]


@pytest.mark.parametrize("tree", TREES, ids=range(len(TREES)))
def test_builder_matches_the_interpreter(tree):
    leaves, treedef = tree_flatten(tree)
    assert compiled(treedef) is not None
    same(tree_unflatten(treedef, leaves), tree_module._unflatten(treedef._nodes, leaves))
    same(tree_unflatten(treedef, leaves), tree)
    # fresh leaves land in their places
    new = [object() for _ in leaves]
    assert all(a is b for a, b in zip(tree_flatten(tree_unflatten(treedef, new),
                                                   is_leaf=lambda x: type(x) is object)[0], new))


def test_builder_keeps_the_treedefs_own_keys():
    # 1 == 1.0 == True: equal treedefs, but each rebuilds its own key objects
    for key in (1, 1.0, True):
        leaves, treedef = tree_flatten({key: 2.0, "a": 3.0})
        compiled(treedef)
        (k, _), = [(k, v) for k, v in tree_unflatten(treedef, leaves).items() if k != "a"]
        assert type(k) is type(key)


def test_builder_wrong_leaf_count_still_raises():
    _, treedef = tree_flatten({"a": 1.0, "b": [2.0, 3.0]})
    compiled(treedef)
    with pytest.raises(ValueError, match="expected 3 leaves"):
        tree_unflatten(treedef, [1.0, 2.0])


def test_deep_tree_keeps_the_interpreter():
    tree = 1.0
    for _ in range(10_000):
        tree = [tree, 2.0]
    leaves, treedef = tree_flatten(tree)
    assert compiled(treedef) is None
    rebuilt = tree_unflatten(treedef, leaves)
    for _ in range(10_000):
        assert rebuilt[1] == 2.0
        rebuilt = rebuilt[0]
    assert rebuilt == 1.0
