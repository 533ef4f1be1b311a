"""W5, pytree utilities on a nested structure with 1,000 leaves: flatten, unflatten, tree_map
over one tree and over two (what an optimizer step does), beside jax.tree_util and optree (both
written in C++) when installed. Every gradient call flattens its arguments and unflattens its
result, so this is part of every system's fixed cost."""

from __future__ import annotations

import operator

import numpy as np

ID = "W5"
TITLE = "W5 — pytree flatten, unflatten and tree_map, 1,000 leaves"


def make_tree(seed: int = 0) -> dict:
    """10 blocks of 100 leaves: a list of 20 {w, b} dicts, a tuple of 30, a dict of 30."""
    rng = np.random.default_rng(seed)
    leaf = lambda: rng.standard_normal(3)
    return {f"block{i}": {"dense": [{"w": leaf(), "b": leaf()} for _ in range(20)],
                          "norm": tuple(leaf() for _ in range(30)),
                          "stats": {f"s{j:02d}": leaf() for j in range(30)}}
            for i in range(10)}


def _apis(ctx) -> dict[str, tuple]:
    """name -> (flatten, unflatten, tree_map) with (leaves, treedef) = flatten(tree)."""
    import diffprog as dp
    apis = {"diffprog": (dp.tree_flatten, dp.tree_unflatten, dp.tree_map)}
    if ctx.peers.jax is not None:
        tu = ctx.peers.jax.tree_util
        apis["jax.tree_util"] = (tu.tree_flatten, tu.tree_unflatten, tu.tree_map)
    if ctx.peers.optree is not None:
        ot = ctx.peers.optree
        apis["optree"] = (ot.tree_flatten, ot.tree_unflatten, ot.tree_map)
    return apis


def _identity(a):
    return a


def _second(a, b):
    return b


def _rows(name: str, api: tuple, tree: dict, other: dict) -> list:
    from .harness import System
    flatten, unflatten, tree_map = api
    leaves, treedef = flatten(tree)
    return [System(f"{name} flatten", lambda: flatten(tree), check=False,
                   baseline="diffprog flatten"),
            System(f"{name} unflatten", lambda: unflatten(treedef, leaves), check=False,
                   baseline="diffprog unflatten"),
            System(f"{name} tree_map(f, tree)", lambda: tree_map(_identity, tree), check=False,
                   baseline="diffprog tree_map(f, tree)"),
            System(f"{name} tree_map(f, tree, tree)", lambda: tree_map(_second, tree, other),
                   check=False, baseline="diffprog tree_map(f, tree, tree)")]


def run(ctx):
    from .harness import time_table
    tree, other = make_tree(), make_tree(1)
    apis = _apis(ctx)
    ref_leaves = apis["diffprog"][0](tree)[0]
    systems = []
    for name, api in apis.items():
        flatten, unflatten, _ = api
        leaves, treedef = flatten(tree)
        # All three order dict keys alike; check it, so that every row does the same work.
        assert len(leaves) == 1000 and all(map(operator.is_, leaves, ref_leaves)), name
        assert all(map(operator.is_, flatten(unflatten(treedef, leaves))[0], leaves)), name
        systems += _rows(name, api, tree, other)
    order = ["flatten", "unflatten", "tree_map(f, tree)", "tree_map(f, tree, tree)"]
    systems.sort(key=lambda s: order.index(s.name.split(" ", 1)[1]))
    desc = ("A dict of 10 blocks, each a list of 20 `{'w', 'b'}` dicts, a tuple of 30 and a "
            "dict of 30 arrays: 1,000 leaves. The mapped functions return an argument "
            "unchanged, so the times are the tree machinery alone.")
    return [time_table(ctx, ID, TITLE, desc, systems, baseline="diffprog flatten",
                       reference=None, per=1000, per_label="leaf",
                       ratio_label="vs diffprog (same operation)")]
