"""Loops on the whole-program tier (diffprog/kernels/wholeprog.py): a ``scan`` node runs as a
compiled loop over its body's instructions (forward, reverse, with and without xs and ys,
saved carries, checkpointed and nested scans), and its gradients under ``jit`` agree with
eager evaluation on edge values; loops it cannot run (a while loop, integer or float32
carries, complex values) fall back to the other tiers and agree as well."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.kernels import wholeprog
from tests.test_jit_fuzz import build_edge_program, differentiable, edge_pair, fuzz_settings, same

EDGE = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e308, -1e308, 1e-308, 5e-324, -1.5,
                 2.0, 0.5, -3.0, 0.75, 1.0, -1.0])


def whole(f, *args):
    """``f`` jitted on the whole-program tier: its outputs and its program's graph."""
    jitted = dp.jit(f, executor="whole")
    out = jitted(*args)
    (program,) = jitted.cache.values()
    return out, program.graph


def has_loop(graph) -> bool:
    return any(n.prim.program_form is not None and n.prim.multiple_results
               for n in graph.nodes)


def check(f, *args, rtol=1e-14, signs=True, eligible=True, loop=True):
    """``f`` on the whole tier (eligible: the graph really has a table) against eager."""
    with np.errstate(all="ignore"):
        want = f(*args)
        got, graph = whole(f, *args)
        assert (wholeprog.whole_program(graph) is not None) == eligible, graph
    if eligible and loop:
        assert has_loop(graph), graph  # (the loop was not unrolled or folded away)
    got_leaves, want_leaves = dp.tree_leaves(got), dp.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g, w)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=0, equal_nan=True)
        if signs:  # -0.0 stays -0.0
            zero = w == 0
            np.testing.assert_array_equal(np.signbit(g[zero]), np.signbit(w[zero]))


# -- scan, forward ---------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_with_xs_and_ys_on_edge_values_is_bitwise(reverse):
    # add and mul are the same operations as eager's: the same bits, NaN, infinities, -0.0
    f = lambda c0, xs: dp.scan(lambda c, x: (c * 0.5 + x, c * x), c0, xs, reverse=reverse)
    check(f, np.float64(-0.0), EDGE, rtol=0)
    check(f, np.array([1.0, -0.0, np.inf]), np.repeat(EDGE, 3).reshape(-1, 3), rtol=0)


def test_scan_without_xs_and_without_ys():
    f = lambda x: dp.scan(lambda c, _: (c * 0.5 + 1.0, None), x, length=7)[0]
    check(f, np.array([4.0, -0.0, np.nan, 1e308]), rtol=0)
    g = lambda x: dp.scan(lambda c, _: (dnp.sin(c) + 1.0, c), x, length=5)
    check(g, np.array([0.3, -2.0, 5.0]), rtol=1e-15)


def test_scan_of_length_zero_and_empty_values():
    f = lambda c0, xs: dp.scan(lambda c, x: (c + x, c * x), c0, xs)
    check(f, np.array([1.0, -0.0]), np.zeros((0, 2)), rtol=0)
    check(f, np.zeros(0), np.zeros((4, 0)), rtol=0)  # a carry of no elements
    check(lambda c0: dp.scan(lambda c, _: (c * 2.0, c), c0, length=0), np.array([-0.0, 3.0]),
          rtol=0)


def test_scan_unrolled_runs_the_blocked_and_the_remainder_loops():
    xs = np.linspace(-1.0, 2.0, 10)
    for unroll in (3, True):
        for reverse in (False, True):
            f = lambda c0, xs, u=unroll, r=reverse: dp.scan(
                lambda c, x: (c * x + 1.0, c - x), c0, xs, unroll=u, reverse=r)
            check(f, np.float64(0.5), xs, rtol=0, loop=unroll is not True)


def test_several_carries_swapped_constant_outputs_and_a_pytree():
    xs = np.array([1.0, -2.0, 0.5, -0.0])
    # the carries trade places every step (copied through temporaries), a carry that stays,
    # a constant y
    f = lambda a, b: dp.scan(lambda c, x: ((c[1], c[0] + x, c[2]), (c[0], 2.0)),
                             (a, b, np.float64(3.0)), xs)
    check(f, np.float64(1.0), np.float64(-0.0), rtol=0)
    g = lambda p, xs: dp.scan(lambda c, x: ({"h": c["h"] * x["u"], "s": c["s"] + x["v"][0]},
                                            c["h"] + x["v"][1]),
                              p, {"u": xs[:, 0], "v": xs[:, 1:]})
    check(g, {"h": np.array([1.0, 2.0]), "s": np.float64(0.0)},
          np.arange(12.0).reshape(4, 3) - 5.0, rtol=0)


def test_carries_written_in_place_only_once_nothing_reads_the_old_value():
    # the new first carry is computed before the second reads the old one: it cannot be
    # written into its slot at once (the second one can)
    f = lambda a, b, xs: dp.scan(lambda c, x: ((c[0] + x, c[0] * c[1] - x), c[0] + 0.0),
                                 (a, b), xs)
    check(f, np.array([1.0, -0.0]), np.array([2.0, 3.0]), np.linspace(-1.0, 1.0, 5), rtol=0)
    g = lambda a, xs: dp.scan(lambda c, x: (c * x + c[0], None), a, xs)[0]  # c[0]: a gather
    check(g, np.array([1.5, -2.0, 0.5]), np.linspace(-1.0, 1.0, 4), rtol=0)
    h = lambda a, b: dp.while_loop(lambda c: c[1] < 4.0,
                                   lambda c: (c[0] + c[1], c[1] + 1.0 + c[0][0]), (a, b))
    check(h, np.array([0.5, -3.0]), np.float64(1.0), rtol=0)


def test_broadcast_shapes_in_a_body():
    # a scalar x with a vector carry (stride 0), a column against a matrix (gathered)
    f = lambda c0, xs: dp.scan(lambda c, x: (c * x + x, dnp.sum(c)), c0, xs)
    check(f, np.arange(3.0), np.array([0.5, -0.0, 2.0, np.inf]), rtol=0)
    g = lambda c0, xs: dp.scan(lambda c, x: (c + x, c * 2.0), c0, xs)
    check(g, np.ones((3, 4)), np.arange(15.0).reshape(5, 3, 1), rtol=0)


def test_a_scan_nested_in_a_scan_body():
    def f(c0, xs):
        def outer(c, row):
            inner, ys = dp.scan(lambda d, x: (d * x + 1.0, d), c, row)
            return inner, ys
        return dp.scan(outer, c0, xs)
    check(f, np.float64(0.25), np.linspace(-1.5, 1.5, 12).reshape(4, 3), rtol=0)


def test_the_body_closes_over_a_value_of_the_program():
    f = lambda w, xs: dp.scan(lambda c, x: (dnp.tanh(w @ c + x), c), np.zeros(3), xs)
    w = np.linspace(-1.0, 1.0, 9).reshape(3, 3)
    check(f, w, np.linspace(0.0, 2.0, 15).reshape(5, 3), rtol=1e-13, signs=False)


def test_matrix_vector_products_in_bodies():
    # a matrix the same at every step is transposed once before the loop (also in a nested
    # loop, where it changes with the outer step), a constant one at build time; a matrix
    # carry is not
    rng = np.random.default_rng(3)
    w, m0 = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    xs = rng.standard_normal((6, 4))
    f = lambda w, xs: dp.scan(lambda c, x: (w @ (dnp.sin(c) * x) + c, w @ x), np.ones(4), xs)
    check(f, w, xs, rtol=1e-13, signs=False)
    g = lambda xs: dp.scan(lambda c, x: (dnp.tanh(w @ c + x), None), np.ones(4), xs)[0]
    check(g, xs, rtol=1e-13, signs=False)
    h = lambda m0, xs: dp.scan(lambda c, x: ((c[1] * 0.5, c[0] @ c[1]), c[1] @ x), (m0, m0),
                               xs)
    check(h, m0, xs, rtol=1e-13, signs=False)

    def nested(w, xs):
        def outer(s, row):
            m = w * s[0]  # the inner loop's matrix: new at every outer step
            inner, _ = dp.scan(lambda v, x: (dnp.tanh(m @ v) + x, None), s, xs[:3])
            return inner + row, None
        return dp.scan(outer, np.ones(4) * 0.5, xs)[0]
    check(nested, w, xs, rtol=1e-12, signs=False)
    check(dp.grad(lambda w, xs: dnp.sum(nested(w, xs) ** 2)), w, xs, rtol=1e-11, signs=False)


# -- gradients of scans under jit ------------------------------------------------------------


def rnn_loss(Wh, Wx, h0, xs):
    def step(h, x):
        return dnp.tanh(Wh @ h + Wx @ x), None
    h, _ = dp.scan(step, h0, xs)
    return dnp.sum(h * h)


def rnn_problem(n=9, h=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((h, h)) / 2, rng.standard_normal((h, h)) / 2,
            rng.standard_normal(h), rng.standard_normal((n, h)))


def test_grad_of_an_rnn_scan_against_eager():
    # the products add in a plain loop, not through BLAS: equal to rounding
    args = rnn_problem()
    check(dp.grad(rnn_loss, argnums=(0, 1, 2, 3)), *args, rtol=1e-12, signs=False)


def test_grad_of_a_reverse_scan_and_of_its_ys():
    def loss(w, xs):
        c, ys = dp.scan(lambda c, x: (dnp.sin(c * w + x), c * x), np.float64(0.3), xs,
                        reverse=True)
        return c * 2.0 + dnp.sum(ys * ys)
    check(dp.grad(loss, argnums=(0, 1)), np.float64(0.7), np.linspace(-1.0, 1.0, 8),
          rtol=1e-13, signs=False)


@pytest.mark.parametrize("every", [1, 3, 4])
@pytest.mark.parametrize("reverse", [False, True])
def test_grad_of_a_checkpointed_scan_runs_nested_loops(every, reverse):
    # checkpoint_every=k: the backward pass is a reverse scan over segments whose body holds
    # a forward scan recomputing the segment and the reverse scan of its steps (10 = 3 * 3 + 1:
    # a remainder segment too)
    def loss(w, xs):
        c, _ = dp.scan(lambda c, x: (dnp.tanh(c * w + x), None), np.array([0.1, -0.2]), xs,
                       checkpoint_every=every, reverse=reverse)
        return dnp.sum(c ** 2)
    args = (np.array([0.9, 1.1]), np.linspace(-1.0, 1.0, 20).reshape(10, 2))
    check(dp.grad(loss, argnums=(0, 1)), *args, rtol=1e-13, signs=False)


def test_grad_on_edge_values():
    # non-finite and signed-zero inputs flow through the forward and the reverse loops
    def loss(c0, xs):
        c, ys = dp.scan(lambda c, x: (c * x, c + x), c0, xs)
        return dnp.sum(c) + dnp.sum(ys)
    xs = np.stack([EDGE, EDGE[::-1]], axis=1)
    check(dp.grad(loss, argnums=(0, 1)), np.array([1.0, -0.0]), xs, rtol=0)
    # with no steps the gradient is constant: folded, no node is left
    check(dp.grad(loss, argnums=(0, 1)), np.array([1e-308, 1e308]), xs[:0], rtol=0,
          eligible=False)


def test_grad_of_a_scan_of_length_zero():
    loss = lambda c0, w: dnp.sum(dp.scan(lambda c, _: (c * w, None), c0, length=0)[0])
    check(dp.grad(loss, argnums=(0, 1)), np.array([2.0, 3.0]), np.float64(1.5), rtol=0,
          eligible=False)  # (constant: folded, no node is left)
    f = lambda c0, w: dp.scan(lambda c, _: (c * w, c), c0, length=0)
    check(f, np.array([2.0, -0.0]), np.float64(1.5), rtol=0)
    # a carry the body does not read (it is still the result when there are no steps)
    g = lambda c0, xs: dp.scan(lambda c, x: (x * 2.0, None), c0, xs)[0]
    check(g, np.float64(-0.0), np.zeros(0), rtol=0)
    check(g, np.float64(-0.0), np.array([1.0, -0.0]), rtol=0)


def test_second_order_through_a_scan():
    def f(w):
        c, _ = dp.scan(lambda c, x: (dnp.sin(c * w + x), None), np.float64(0.5),
                       np.linspace(0.0, 1.0, 6))
        return c
    check(dp.grad(dp.grad(f)), np.float64(0.8), rtol=1e-12, signs=False)


def test_jvp_and_vmap_of_a_scan():
    xs = np.linspace(-1.0, 1.0, 6)

    def f(w):
        return dp.scan(lambda c, x: (c * w + x, c), np.float64(0.5), xs)[0]
    check(lambda w, t: dp.jvp(f, (w,), (t,)), np.float64(0.9), np.float64(1.0), rtol=0)
    check(dp.vmap(f), np.array([0.5, -0.0, 2.0]), rtol=0)


# -- fori_loop, while_loop, fallbacks --------------------------------------------------------


def test_fori_loop_with_an_unused_index_is_a_compiled_loop():
    f = lambda x: dp.fori_loop(0, 6, lambda i, c: c * 0.5 + 1.0, x)
    check(f, np.array([3.0, -0.0, np.nan]), rtol=0)
    check(dp.grad(lambda x: dnp.sum(f(x) ** 2)), np.array([3.0, -1.0]), rtol=0)


def test_fori_loop_reading_its_integer_index():
    # the index steps through an int64 array held as float64: what NumPy computes with
    f = lambda x: dp.fori_loop(0, 6, lambda i, c: c * 0.5 + i, x)
    check(f, np.array([3.0, -0.0, np.inf]), rtol=0)
    g = lambda x: dp.fori_loop(-3, 4, lambda i, c: c * dnp.sin(i * 0.1) + i / 3, x)
    check(g, np.array([3.0, -0.0]), rtol=1e-15)
    check(dp.grad(lambda x: dnp.sum(g(x) ** 2)), np.array([3.0, -1.0]), rtol=1e-14)
    h = lambda x: dp.fori_loop(0, 5, lambda i, c: c + dnp.astype(i, np.float64) ** 2, x)
    check(h, np.array([0.5, -0.0]), rtol=0)


def test_integer_and_bool_inputs_read_as_float64():
    f = lambda x, n, b: x * n + b / 2
    check(f, np.array([1.5, -0.0]), np.array([3, -(2 ** 60) - 1]), np.array([True, False]),
          rtol=0, loop=False)
    # an integer result is not for this tier
    check(lambda x, n: x * (n + 1), np.array([1.5, -0.0]), np.array([3, 4]), eligible=False)


def test_while_loop_with_a_data_dependent_trip_count():
    f = lambda x: dp.while_loop(lambda v: v[0] < 10.0, lambda v: v * 2.0, x)
    check(f, np.array([1.5, -0.0]), rtol=0)
    check(f, np.array([11.0, 1.0]), rtol=0)  # zero trips
    check(f, np.array([np.nan, 1.0]), rtol=0)  # a NaN predicate is false
    # one program, trip counts from 0 to 1074 (5e-324 doubles up past 10)
    jitted = dp.jit(f, executor="whole")
    for x0 in (5e-324, 1e-300, 0.1, 9.99, 10.0, 1e308):
        x = np.array([x0, -0.0])
        np.testing.assert_array_equal(jitted(x), f(x))
    (program,) = jitted.cache.values()
    assert wholeprog.whole_program(program.graph) is not None


def test_while_loop_with_several_carries_closures_and_comparisons():
    def f(x, w):
        return dp.while_loop(lambda c: c[1] < 6.0,
                             lambda c: (dnp.sin(c[0] * w) + c[1], c[1] + 1.0),
                             (x, np.float64(0.0)))
    check(f, np.array([0.5, -0.0, np.inf]), np.float64(1.3), rtol=1e-15)
    g = lambda x: dp.while_loop(lambda c: c[0] >= c[1], lambda c: (c[1], c[0] - 1.0),
                                (x, np.float64(2.0)))  # swapped carries
    check(g, np.float64(7.5), rtol=0)
    check(g, np.float64(1.0), rtol=0)
    check(lambda x: (x > 0.5, x <= 0.5, x == 1.0, x != 1.0), EDGE, rtol=0, signs=False,
          loop=False)  # bools held as float64, given back as bools


def test_a_while_loop_that_only_ends_on_its_data_is_not_run_on_stand_ins():
    # stand-in inputs (between 0.5 and 1.5) would never reach 3.0: the program is not checked
    # on them (which would not end), and it ends on the real inputs
    f = lambda x: dp.while_loop(lambda v: v != 3.0, lambda v: v + 1.0, x)
    check(f, np.float64(0.0), rtol=0)
    check(f, np.float64(-2.0), rtol=0)


def test_jvp_of_a_while_loop_is_a_compiled_loop():
    f = lambda x: dp.while_loop(lambda v: v[0] < 10.0, lambda v: v * v + 1.0, x)
    check(lambda x, t: dp.jvp(f, (x,), (t,)), np.array([1.5, -0.5]), np.array([1.0, 2.0]),
          rtol=0)


def test_while_loops_that_fall_back_agree():
    f = lambda x: dp.while_loop(lambda v: v[0] < 10.0, lambda v: v * 2.0, x)
    # reverse mode: the backward pass is built at run time for the recorded trip count
    check(dp.grad(lambda x: dnp.sum(f(x))), np.array([1.5, 2.0]), eligible=False)
    check(dp.grad(lambda x: dnp.sum(f(x))), np.array([11.0, 2.0]), eligible=False)
    g = lambda x, n: dp.fori_loop(0, n, lambda i, c: c * 1.5, x)  # traced bounds: int carry
    check(g, np.array([1.0, 2.0]), 3, eligible=False)
    check(g, np.array([1.0, 2.0]), 0, eligible=False)
    # two integers compare exactly, not as float64
    check(lambda x, n, m: x * (n < m), np.array([1.0, -0.0]), np.array([2 ** 53 + 1]),
          np.array([2 ** 53 + 2]), eligible=False)


def test_loops_of_other_dtypes_fall_back_and_agree():
    xs = np.linspace(-1.0, 1.0, 5)
    f32 = lambda c0, xs: dp.scan(lambda c, x: (c * x + 1.0, c), c0, xs)
    check(f32, np.float32(0.5), xs.astype(np.float32), eligible=False)
    # float16 carries (NumPy rounds each step to float16) on edge values, forward and grad
    with np.errstate(over="ignore"):  # 1e308 -> inf in float16, as intended
        e16 = EDGE.astype(np.float16)
    check(f32, np.float16(0.5), e16, eligible=False, rtol=0)
    check(dp.grad(lambda c0: dnp.sum(f32(c0, xs.astype(np.float16))[1])), np.float16(0.5),
          eligible=False, rtol=0)
    ints = lambda c0, xs: dp.scan(lambda c, x: (c * 2 + x, c), c0, xs)
    check(ints, np.int64(1), np.arange(5), eligible=False)
    cplx = lambda c0, xs: dp.scan(lambda c, x: (c * x + 1.0, c), c0, xs)
    check(cplx, np.complex128(0.5 + 1j), xs + 0.5j, eligible=False, signs=False)
    # a float64 carry next to an integer one: the whole scan falls back
    mixed = lambda c0, xs: dp.scan(lambda c, x: ((c[0] * x, c[1] + 1), None), c0, xs)[0]
    check(mixed, (np.float64(0.5), np.int64(0)), xs, eligible=False)


def test_the_tiered_runner_builds_the_whole_program_of_a_scan_gradient():
    args = rnn_problem(n=20)
    f = dp.grad(rnn_loss)
    jitted = dp.jit(f, compile="background")
    jitted(*args)
    assert jitted.wait_compiled(timeout=300)
    (program,) = jitted.cache.values()
    assert "whole" in program.tiers.runners or program.tier == "whole" \
        or "whole" not in program.tiers.failed
    assert wholeprog.whole_program(program.graph) is not None
    for _ in range(30):
        np.testing.assert_allclose(jitted(*args), f(*args), rtol=1e-12)


# -- random bodies ---------------------------------------------------------------------------


@pytest.mark.slow
@fuzz_settings(60)
@given(st.data(), edge_pair([np.float64]))
def test_fuzz_scan_bodies_eager_vs_whole_program(data, pair):
    # a random program of the jit fuzz as the body of a scan over three slices (and reversed),
    # its outputs the ys; and the gradient through the reverse scan
    x, y = pair
    program = build_edge_program(data, x, y, max_len=4)
    xs = np.stack([x, x * 0.5, -x])
    reverse = data.draw(st.booleans(), label="reverse")

    def f(xs, y):
        return dp.scan(lambda c, xr: (c + 1.0, program(xr, y)), np.float64(0.0), xs,
                       reverse=reverse)

    problems = []
    with np.errstate(all="ignore"):
        try:
            want = f(xs, y)
        except Exception:
            return  # (a program eager mode refuses: not this test's subject)
        got, graph = whole(f, xs, y)
        if differentiable(x, program, y):
            g = dp.grad(lambda xs, y: dnp.sum(f(xs, y)[1]))
            problems += [f"grad: {same(a, b, True)}"
                         for a, b in [(whole(g, xs, y)[0], g(xs, y))] if same(a, b, True)]
    for a, b in zip(dp.tree_leaves(got), dp.tree_leaves(want)):
        msg = same(a, b, True)
        if msg:
            problems.append(msg)
    assert not problems, f"{program} on x={x!r}, y={y!r}, reverse={reverse}:\n" + \
        "\n".join(problems)


def test_threads_running_one_loop_program_keep_their_own_step_counts():
    # the step count lives in the arena, which is a call's own (or, when large, a thread's)
    f = dp.grad(rnn_loss, argnums=(0, 1))
    jitted = dp.jit(f, executor="whole")
    cases = [rnn_problem(seed=s) for s in range(3)]
    jitted(*cases[0])
    (program,) = jitted.cache.values()
    assert wholeprog.whole_program(program.graph) is not None
    wants = [f(*args) for args in cases]
    problems = []

    def work(k):
        for _ in range(30):
            for args, want in zip(cases[k:] + cases[:k], wants[k:] + wants[:k]):
                got = jitted(*args)
                if not all(np.allclose(a, b, rtol=1e-12, atol=0) for a, b in zip(got, want)):
                    problems.append(k)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not problems
