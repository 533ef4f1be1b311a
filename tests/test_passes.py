"""Graph passes: each on its own, and the node counts they save."""

from __future__ import annotations

import numpy as np

import diffprog as dp
import diffprog.numpy as dnp
from diffprog import passes
from diffprog import prims as P
from diffprog.graph import Graph, Node
from diffprog.jit import ShapedArray, jit, trace_graph

F = ShapedArray((3,), np.float64)


def graph_of(nodes, outputs, n_in=1):
    return Graph([f"x{i}" for i in range(n_in)], [F] * n_in, nodes, n_in,
                 [("", idx, None) for idx in outputs])


def names(graph):
    return graph.primitive_names()


def run(graph, *inputs):
    from diffprog.kernels.executor import numpy_executor
    return numpy_executor(graph)(list(inputs))


def test_dce_drops_what_no_output_needs():
    g = trace_graph(lambda x: (dnp.exp(x), dnp.sin(x) * 2.0)[0] + 1.0, (np.ones(3),))
    assert names(g) == ["exp", "sin", "mul", "add"]
    assert names(passes.dce(g)) == ["exp", "add"]


def test_cse_merges_identical_nodes():
    g = trace_graph(lambda x: dnp.sin(x) * dnp.sin(x) + dnp.sin(x), (np.ones(3),))
    assert names(g).count("sin") == 3
    opt = passes.dce(passes.cse(g))
    assert names(opt) == ["sin", "mul", "add"]
    x = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(run(opt, x)[0], np.sin(x) ** 2 + np.sin(x))


def test_fold_constants_evaluates_constant_nodes():
    nodes = [Node(P.exp, [np.zeros(3)], {}, F, [-1], 1),
             Node(P.mul, [None, None], {}, F, [0, 1], 2)]
    g = passes.fold_constants(graph_of(nodes, [2]))
    assert names(g) == ["mul"]
    np.testing.assert_array_equal(g.nodes[0].args[1], np.ones(3))
    np.testing.assert_array_equal(run(g, np.full(3, 2.0))[0], np.full(3, 2.0))


def test_simplify_identities_involution_collapse():
    g = trace_graph(lambda x: dnp.negative(-(x * 1.0 + -0.0)) / 1.0 - 0.0, (np.ones(3),))
    assert names(g) == ["mul", "add", "neg", "neg", "div", "sub"]
    assert names(passes.dce(passes.simplify(g))) == []
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(run(passes.simplify(g), x)[0], x)
    g = trace_graph(lambda x: dnp.reshape(dnp.reshape(x, (3, 1)), (1, 3)) * 2.0, (np.ones(3),))
    opt = passes.dce(passes.simplify(g))
    assert names(opt) == ["reshape", "mul"]
    np.testing.assert_array_equal(run(opt, x)[0], (x * 2.0).reshape(1, 3))
    # x * 1 where the 1 broadcasts x to a bigger shape is not an identity
    nodes = [Node(P.mul, [None, np.ones((2, 3))], {}, ShapedArray((2, 3), np.float64), [0, -1],
                  1)]
    assert names(passes.simplify(graph_of(nodes, [1]))) == ["mul"]


def test_identities_respect_the_sign_of_zero():
    # x + 0.0 is not x at x = -0.0 (it is +0.0), and x - (-0.0) neither: both stay
    x = np.array([-0.0, 0.0, 1.0, np.nan, -np.inf])
    for f in (lambda x: x + 0.0, lambda x: 0.0 + x, lambda x: x - (-0.0)):
        g = trace_graph(f, (x,))
        opt = passes.optimize(g)
        assert len(names(opt)) == 1
        np.testing.assert_array_equal(np.signbit(run(opt, x)[0]), np.signbit(f(x)))
    # complex: x * 1.0 is not x when a part is infinite (inf * 0 = nan in the cross terms)
    z = np.array([complex(np.inf, 1.0)])
    assert names(passes.optimize(trace_graph(lambda z: z * 1.0, (z,)))) == ["mul"]


def test_cse_tells_constants_apart_by_type_and_bits():
    x = np.array([1.0, -2.0])
    f = lambda x: (x * 0.0 + 1.0) / (x * -0.0 + 1.0) + dnp.less(x, True) * 1.0 \
        + dnp.less(x, 1) * 2.0
    opt = passes.optimize(trace_graph(f, (x,)))
    assert names(opt).count("mul") >= 2  # x * 0.0 and x * -0.0 are not merged
    np.testing.assert_array_equal(run(opt, x)[0], f(x))
    assert passes.const_key(np.float32(2)) != passes.const_key(np.float64(2))
    assert passes.const_key(float("nan")) == passes.const_key(float("nan"))


def test_static_arguments_are_keyed_by_type_and_bits():
    seen = []

    def f(x, s):
        seen.append(s)
        return x * 2.0 if np.signbit(s) else x

    g = dp.jit(f, static_argnums=1)
    x = np.ones(2)
    for s in (0.0, -0.0, True, 1, np.float32(2), np.float64(2), float("nan"), float("nan")):
        g(x, s)
    assert g.traces == 7  # every value but the repeated NaN is a new program
    np.testing.assert_array_equal(g(x, -0.0), 2 * x)
    np.testing.assert_array_equal(g(x, 0.0), x)


def test_symbolic_zeros_from_the_sweep_are_removed():
    # the seed of grad is a constant 1 broadcast: mul(ct, y) with ct == 1 disappears
    g = trace_graph(dp.grad(lambda x: dnp.sum(dnp.sin(x))), (np.ones(3),))
    opt = passes.optimize(g)
    assert names(opt) == ["cos"]


def product(x, n):
    out = x[0]
    for i in range(1, n):
        out = out * x[i]
    return out


def test_gradient_of_a_product_stays_linear():
    counts = {}
    for n in (10, 20, 30):
        g = trace_graph(dp.grad(lambda x, n=n: product(x, n)), (np.linspace(1, 2, n),))
        counts[n] = (len(g), len(passes.optimize(g)))
    # before and after optimization, the count grows linearly in the number of factors
    for before_or_after in (0, 1):
        c10, c20, c30 = (counts[n][before_or_after] for n in (10, 20, 30))
        assert c30 - c20 == c20 - c10
    assert counts[30][1] < counts[30][0]
    x = np.linspace(1, 2, 30)
    g = jit(dp.grad(lambda x: product(x, 30)))(x)
    np.testing.assert_allclose(g, np.prod(x) / x, rtol=1e-12)


def test_cse_shares_what_every_backward_sweep_of_jacrev_recomputes():
    def deep(x):
        for _ in range(10):
            x = dnp.sin(x) * 1.5
        return x
    n = 8
    g = trace_graph(dp.jacrev(deep), (np.linspace(0, 1, n),))
    # jacrev pulls the whole output basis back in one sweep batched by vmap (issue 13), so the
    # 10 cosines of sin's rule are computed once even before CSE (which keeps them once)
    assert names(g).count("cos") == 10
    assert names(passes.optimize(g)).count("cos") == 10
    np.testing.assert_allclose(jit(dp.jacrev(deep))(np.linspace(0, 1, n)),
                               dp.jacrev(deep)(np.linspace(0, 1, n)), rtol=1e-13)


def test_jacfwd_runs_the_forward_pass_once():
    def deep(x):
        for _ in range(10):
            x = dnp.sin(x) * 1.5
        return x
    g = trace_graph(dp.jacfwd(deep), (np.linspace(0, 1, 8),))
    assert names(g).count("sin") == 10  # linearized once, then the linear graph replayed


def test_conj_is_an_involution():
    z = np.array([1.0 + 2.0j, -3.0j])
    opt = passes.optimize(trace_graph(lambda z: dnp.conj(dnp.conj(z)) * 2.0, (z,)))
    assert "conj" not in names(opt)
    np.testing.assert_array_equal(run(opt, z)[0], z * 2.0)
