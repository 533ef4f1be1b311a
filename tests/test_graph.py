"""Graph listings, DOT and rendering."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp


def loss(p, x):
    return dnp.sum(dnp.tanh(x @ p["w"]) ** 2)


def test_listing_names_inputs_and_outputs_by_pytree_path():
    g = dp.make_graph(lambda p, x: {"loss": loss(p, x), "h": x * 2.0})(
        {"w": np.ones((3, 2))}, np.ones((4, 3)))
    text = str(g)
    assert text.startswith("graph(arg0['w']:float64[3,2], arg1:float64[4,3]) {")
    assert "matmul(arg1, arg0['w'])" in text
    assert text.splitlines()[-2].startswith("  return out['h']=")


def test_grad_graph_shows_forward_and_backward_nodes():
    g = dp.make_graph(dp.grad(loss))({"w": np.ones((3, 2))}, np.ones((4, 3)))
    names = g.primitive_names()
    forward = ["matmul", "tanh", "pow", "reduce_sum"]
    assert names[:4] == forward
    backward = names[4:]
    assert "matmul" in backward and "transpose" in backward and "broadcast_to" not in forward


def test_to_dot_lists_every_node_and_edge():
    g = dp.make_graph(dp.grad(lambda x: dnp.sum(dnp.sin(x) * x)))(np.ones(3))
    dot = g.to_dot()
    assert dot.startswith("digraph diffprog {") and dot.rstrip().endswith("}")
    assert dot.count("shape=box") == len(g)
    assert 'label="sin\\nfloat64[3]"' in dot and 'label="x: float64[3]"' in dot
    assert "v0 -> n1;" in dot


def test_render_writes_svg_or_says_how_to_install_dot(tmp_path, monkeypatch):
    g = dp.make_graph(lambda x: dnp.exp(x) * x)(np.ones(2))
    if shutil.which("dot"):
        out = g.render(str(tmp_path / "g.svg"))
        assert open(out).read().lstrip().startswith(("<?xml", "<svg"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"apt-get install graphviz"):
        g.render(str(tmp_path / "g2.svg"))
    with pytest.raises(ValueError, match="unknown format"):
        g.render(str(tmp_path / "g.bmp"))


def test_graph_example_writes_dot_and_picture(tmp_path):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "examples" / "graph.py"
    spec = importlib.util.spec_from_file_location("graph_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(str(tmp_path / "grad.svg"))
    assert open(result["dot"]).read().startswith("digraph")
    assert result["nodes"] > 8
    assert (result["picture"] is not None) == bool(shutil.which("dot"))
