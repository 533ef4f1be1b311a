"""The whole-program tier (diffprog/kernels/wholeprog.py) against eager evaluation: every
opcode and every ``program_form`` plan on edge values (NaN, ±inf, -0.0, huge, tiny,
subnormal), broadcast and empty shapes; graphs it cannot run (float32, integers) fall back;
the tiered runner picks it up; random programs of the jit fuzz agree with eager on it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.kernels import tiers, wholeprog
from tests.test_jit_fuzz import build_edge_program, edge_pair, fuzz_settings, run_fuzz_case

EDGE = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e308, -1e308, 1e-308, 5e-324, -1.5,
                 2.0, 0.5, -3.0, 0.75, 1.0, -1.0])
POSITIVE = np.array([0.0, 5e-324, 1e-308, 0.5, 1.0, 2.0, 1e308, np.inf, np.nan])


def whole(f, *args):
    """``f`` jitted on the whole-program tier: its outputs, and its program's graph (which
    the test checks really ran there)."""
    jitted = dp.jit(f, executor="whole")
    out = jitted(*args)
    (program,) = jitted.cache.values()
    return out, program.graph


def check(f, *args, rtol=1e-14, signs=True, eligible=True):
    with np.errstate(all="ignore"):
        want = f(*args)
        got, graph = whole(f, *args)
    assert (wholeprog.whole_program(graph) is not None) == eligible, graph
    for g, w in zip(dp.tree_leaves(got), dp.tree_leaves(want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=0, equal_nan=True)
        if signs:  # -0.0 stays -0.0
            finite_zero = (w == 0)
            np.testing.assert_array_equal(np.signbit(g[finite_zero]), np.signbit(w[finite_zero]))


UNARY = [dnp.negative, dnp.abs, dnp.exp, dnp.log, dnp.log1p, dnp.expm1, dnp.sin, dnp.cos,
         dnp.tanh, dnp.sqrt, dnp.tan, dnp.sinh, dnp.cosh, dnp.arcsin, dnp.arccos, dnp.arctan,
         dnp.arcsinh, dnp.arccosh, dnp.arctanh, dnp.log2, dnp.log10]


@pytest.mark.parametrize("fn", UNARY, ids=lambda f: f.__name__)
def test_every_unary_opcode_on_edge_values(fn):
    # the fast-math forms (exp, log, sin, tanh, ...) are within 1 ulp, as on the interpreter
    check(fn, EDGE, rtol=1e-15)


BINARY = [dnp.add, dnp.subtract, dnp.multiply, dnp.divide, dnp.power, dnp.maximum,
          dnp.minimum, dnp.fmax, dnp.fmin, dnp.arctan2, dnp.hypot]


@pytest.mark.parametrize("fn", BINARY, ids=lambda f: f.__name__)
def test_every_binary_opcode_on_edge_values_with_broadcasting(fn):
    # (16, 1) with (16,): both operands broadcast along one axis (the gather path), and
    # scalars on either side (the stride-0 path). NumPy's own fmax/fmin give either zero at
    # a tie of 0.0 and -0.0 depending on its code path (np.fmax(-0.0, 0.0) is -0.0, the
    # same pair broadcast from a column gives 0.0), so their signs of zero are not compared.
    signs = fn not in (dnp.fmax, dnp.fmin)
    check(lambda x: fn(x[:, None], x), EDGE, signs=signs)
    check(lambda x: fn(x, 2.5), EDGE, signs=signs)
    check(lambda x: fn(0.0, x), EDGE, signs=signs)


def test_reductions_keep_shapes_signs_and_non_finite_values():
    m = EDGE.reshape(4, 4)
    check(lambda m: dnp.sum(m, axis=0), m)
    check(lambda m: dnp.sum(m, axis=1, keepdims=True), m)
    check(lambda m: dnp.sum(m), m)
    check(lambda m: dnp.sum(-m * 0.0, axis=1), np.abs(m))      # sums of -0.0 are 0.0
    t = np.arange(24.0).reshape(2, 3, 4) - 7.5
    check(lambda t: dnp.sum(t, axis=(0, 2)), t, rtol=1e-15)
    check(lambda t: dnp.mean(t * t, axis=-1), t, rtol=1e-15)


def test_movements_transpose_reshape_indexing_concatenate():
    t = np.concatenate([EDGE, EDGE[:8]]).reshape(2, 3, 4)
    check(lambda t: dnp.transpose(t, (2, 0, 1)) * 2.0, t)
    check(lambda t: dnp.reshape(t, (4, 6)).T + 1.0, t)
    check(lambda t: t[1, ::-1, 1:3] * 1.0, t)
    check(lambda t: t[None, ..., 0] - 1.0, t)
    check(lambda t: t[:, np.array([2, 0, 2])] * 3.0, t)
    check(lambda t: dnp.concatenate([t, -t], axis=1), t)
    check(lambda t: dnp.stack([t[0], t[1] * 2.0]), t)


def test_scatters_from_gradients_of_indexing():
    x = np.array([1.5, -0.0, 2.0, 3.0, -1.0])
    check(dp.grad(lambda x: dnp.sum(dnp.sin(x[1:4]) * x[::2][:3])), x, rtol=1e-15)
    # a repeated index accumulates (np.add.at)
    check(dp.grad(lambda x: dnp.sum(x[np.array([0, 0, 3, 0])] ** 2)), x)


@pytest.mark.parametrize("shapes", [((5,), (5,)), ((3, 5), (5,)), ((5,), (5, 4)),
                                    ((3, 5), (5, 4)), ((2, 3, 5), (2, 5, 4)),
                                    ((2, 3, 5), (5, 4)), ((3, 5), (2, 5, 4)),
                                    ((3, 0), (0, 4)), ((0, 5), (5, 2))])
def test_matmul_shapes(shapes):
    rng = np.random.default_rng(len(str(shapes)))
    a, b = (rng.standard_normal(s) for s in shapes)
    check(lambda a, b: dnp.matmul(a, b), a, b, rtol=1e-13, signs=False)


def test_matmul_propagates_nan_and_inf():
    a = np.array([[1.0, np.nan], [np.inf, 2.0]])
    b = np.array([[1.0, 2.0], [3.0, 4.0]])
    check(lambda a, b: a @ b, a, b, signs=False)


def test_empty_and_broadcast_shapes():
    check(lambda x: dnp.sum(dnp.exp(x) * 2.0, axis=0), np.zeros((0, 3)))
    check(lambda x: dnp.tanh(x) + x, np.zeros(0))
    check(lambda x, y: (x * y + 1.0) / (y - 3.0), np.arange(3.0)[:, None], np.arange(4.0))
    check(lambda x: dnp.broadcast_to(x, (3, 2)) * x, np.array([-0.0, 2.0]))


def test_a_scalar_result_is_a_numpy_scalar_as_on_the_numpy_executor():
    f = lambda x: dnp.sum(dnp.sin(x) * x)
    got = dp.jit(f, executor="whole")(EDGE[9:])
    assert type(got) is type(dp.jit(f, executor="numpy")(EDGE[9:])) is np.float64
    assert got == pytest.approx(f(EDGE[9:]), rel=1e-14)


def test_huge_and_tiny_values_in_a_gradient():
    x = np.array([1e-308, 5e-324, 1e154, -1e154, 1e308])
    check(dp.grad(lambda x: dnp.sum(x * x * 0.5)), x)


def test_graphs_it_cannot_run_fall_back_and_agree():
    with np.errstate(over="ignore"):
        small = EDGE.astype(np.float32)
    check(lambda x: dnp.sin(x) * 2.0, small, eligible=False, rtol=1e-6)
    check(lambda x: x * 3 + 1, np.arange(5), eligible=False)
    check(lambda x: dnp.where(x > 0, x, -x), EDGE, eligible=False)  # a bool value
    big = np.linspace(-1.0, 1.0, 80 * 80).reshape(80, 80)  # a product BLAS does faster
    check(lambda a: dnp.tanh(a @ a), big, eligible=False, rtol=1e-13, signs=False)


def rk4(k, steps):
    def rhs(y):
        return dnp.stack([y[1], -k * dnp.sin(y[0]) - 0.1 * y[1]])
    y, h = dnp.array([1.0, 0.0]), 0.05
    for _ in range(steps):
        k1 = rhs(y)
        k2 = rhs(y + h / 2 * k1)
        k3 = rhs(y + h / 2 * k2)
        k4 = rhs(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return dnp.sum(y ** 2)


@pytest.mark.slow
def test_rk4_gradient_and_a_hessian():
    check(dp.grad(lambda k: rk4(k, 12)), np.float64(2.0), rtol=1e-12, signs=False)
    w = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    check(dp.hessian(lambda x: dnp.sum(dnp.tanh(w @ x) ** 2) + dnp.sum(x[1:] * x[:-1])),
          np.linspace(0.1, 0.4, 4), rtol=1e-12, signs=False)


def test_the_tiered_runner_moves_to_the_whole_program_when_it_is_faster(monkeypatch):
    # "faster" decided by trials: fake times make the whole program win, and the others lose
    monkeypatch.setattr(tiers, "fused_executor", lambda graph, select=True: None)
    f = dp.grad(lambda x: dnp.sum(dnp.tanh(x @ np.eye(3)) ** 2))
    x = np.array([0.5, -0.0, 2.0])
    jitted = dp.jit(f, compile="background")
    jitted(x)
    assert jitted.wait_compiled(timeout=120)
    (program,) = jitted.cache.values()
    assert "whole" in program.tiers.runners or program.tier == "whole"
    for _ in range(200):
        np.testing.assert_allclose(jitted(x), f(x), rtol=1e-14)
    assert program.tier in ("numpy", "interp", "whole")


@pytest.mark.slow
@fuzz_settings(150)
@given(st.data(), edge_pair([np.float64]))
def test_fuzz_eager_vs_jit_whole_program(data, pair):
    x, y = pair
    program = build_edge_program(data, x, y, max_len=5)
    problems = run_fuzz_case(program, x, y, executors=("whole",))
    assert not problems, f"{program} on x={x!r}, y={y!r}:\n" + "\n".join(problems)


def test_a_large_arena_is_reused_without_changing_earlier_results_or_other_threads():
    import threading
    # (fast-math sin/cos within 1 ulp, and cos(x) x + sin(x) cancels near its zeros: an
    # absolute tolerance there)
    n = wholeprog.REUSE_ARENA  # arenas this large are kept per thread: outputs are copies
    f = dp.grad(lambda x: dnp.sum(dnp.sin(x) * x))
    x = np.linspace(-2.0, 2.0, n)
    jitted = dp.jit(f, executor="whole")
    first = jitted(x)
    assert wholeprog.program_table(next(iter(jitted.cache.values())).graph).size >= n
    second = jitted(x * 2.0)
    np.testing.assert_allclose(first, f(x), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(second, f(x * 2.0), rtol=1e-12, atol=1e-14)
    problems = []

    def work(scale):
        for _ in range(20):
            got = jitted(x * scale)
            if not np.allclose(got, f(x * scale), rtol=1e-12, atol=1e-14):
                problems.append(scale)
    threads = [threading.Thread(target=work, args=(s,)) for s in (0.5, 3.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not problems
