"""Eager versus jit on edge values (issue 11): random programs over NaN, ±inf, -0.0, huge and
tiny (subnormal) floats, extreme integers, bool, float16, float32, float64 and complex, with
size-0 and broadcast shapes, run eagerly and under ``jit(f, executor="numpy")`` and
``jit(f, executor="numba")``, and for float inputs ``jit(grad(f))`` against ``grad(f)``.

Results must agree bitwise where NumPy is deterministic: dtype, shape, the positions of NaN,
and every other value with its sign of zero. Primitives whose implementations are not
correctly rounded (transcendental functions: NumPy's SIMD loops, libm and
``diffprog.kernels.fastmath``, each within about 1 ulp of the exact value, see that module's
docstring) may differ by ``ULPS`` units in the last place.

The programs reuse tests/test_properties.py's generator (its operation tables, shape steps and
``Program``) without its domain bookkeeping: here every value, however extreme, is fed to the
next operation as it is, and a step NumPy refuses eagerly (an integer to a negative power, a
complex maximum) is drawn again.

The default run is small and derandomized (a few seconds once numba's kernels are cached);
``-m slow`` runs the thorough fuzz. Known bugs are reproduced by the ``KNOWN_BUGS`` cases
below, marked ``xfail(strict=True)``: each flips to a failure when the bug is fixed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.jit import trace_graph
from tests.test_properties import BINARY, UNARY, Program, build_shape, reduce_axes

ULPS = 4
# primitives that are not correctly rounded (NumPy's, libm's and fastmath's forms may differ)
INEXACT = {"exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sin", "cos", "tan",
           "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh",
           "arctan2", "hypot", "logaddexp", "logaddexp2", "cbrt", "erf", "erfc", "logistic",
           "pow", "power", "sqrt"}

FLOAT_EDGES = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e300, -1e300, 5e-324, -5e-324,
               1e-310, 0.5, 1.0, -1.0, 1.5, -2.5, 3.0, 7.0, 1e20, 2.0 ** 63, 0.1, -0.7]
DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_,
          np.complex128]


# ----------------------------------------------------------------------------------------------
# Values


def edge_elements(dtype: Any) -> st.SearchStrategy:
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        edges = [0, 1, 2, 3, 7, info.max, info.min, info.max - 1] + (
            [-1, -2, -7, info.min + 1] if dtype.kind == "i" else [])
        return st.sampled_from(edges)
    if dtype.kind == "c":
        parts = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 1.5, -2.5, 1e300])
        return st.builds(complex, parts, parts)
    with np.errstate(all="ignore"):
        # the edges as this dtype has them (1e300 is inf in float32, 5e-324 is 0.0)
        floats = sorted({float(np.array(v, dtype)) for v in FLOAT_EDGES}, key=repr)
    return st.sampled_from(floats)


@st.composite
def edge_pair(draw: Any, dtypes: list = DTYPES) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays (dtypes drawn independently, often equal) whose shapes broadcast."""
    dx = draw(st.sampled_from(dtypes), label="x dtype")
    dy = draw(st.one_of(st.just(dx), st.sampled_from(dtypes)), label="y dtype")
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                    min_side=0, max_side=3))
    x = draw(hnp.arrays(dx, shapes.input_shapes[0], elements=edge_elements(dx)))
    y = draw(hnp.arrays(dy, shapes.input_shapes[1], elements=edge_elements(dy)))
    return x, y


# ----------------------------------------------------------------------------------------------
# Programs: test_properties' tables, applied to the values as they are

EXTRA_UNARY = {
    "abs": dnp.abs, "sign": dnp.sign, "floor": dnp.floor, "ceil": dnp.ceil, "trunc": dnp.trunc,
    "rint": dnp.rint, "round": dnp.round, "isnan": dnp.isnan, "isfinite": dnp.isfinite,
    "relu": dp.nn.relu, "softplus": dp.nn.softplus, "positive": dnp.positive,
}
EXTRA_BINARY = {
    "floor_divide": dnp.floor_divide, "mod": dnp.mod, "fmax": dnp.fmax, "fmin": dnp.fmin,
    "logaddexp2": dnp.logaddexp2, "less": dnp.less, "equal": dnp.equal,
    "where_gt": lambda a, b: dnp.where(dnp.greater(a, b), a, b),
    "where_scalars": lambda a, b: dnp.where(dnp.less(a, b), 1.0, -1.0),
}
CASTS = [np.float64, np.float32, np.float16, np.int64, np.bool_, np.complex128]


def unary_fns() -> dict:
    fns = {name: fn for name, (fn, _) in UNARY.items()}
    fns.update(EXTRA_UNARY)
    return fns


def binary_fns() -> dict:
    fns = {name: fn for name, (fn, _, _) in BINARY.items()}
    fns.update(EXTRA_BINARY)
    return fns


UNARY_FNS = unary_fns()
BINARY_FNS = binary_fns()
PY_SCALARS = [0, 1, -1, 2, 0.0, -0.0, 0.5, -2.5, math.inf, -math.inf, math.nan, 1e300, True,
              1j]


# True while programs for the numba executor are built (bugs of that executor only are steered
# around then)
NUMBA_MODE = [False]


class Steer(Exception):
    """A step that would hit a known bug (see KNOWN_BUGS): drawn again."""


def steer(known_bug: str, hit: bool) -> None:
    # While a bug in KNOWN_BUGS is open, the random programs avoid it, so that the fuzz finds
    # other bugs; its reproducer below is an xfail(strict=True) case. When the bug is fixed,
    # that case flips: delete it and its entry here.
    if hit and known_bug in STEERED:
        raise Steer(known_bug)


def build_edge_unary(data: Any, v: np.ndarray, y: np.ndarray) -> tuple[Any, str]:
    name = data.draw(st.sampled_from(sorted(UNARY_FNS)), label="unary")
    fn = UNARY_FNS[name]
    return (lambda v, y: fn(v)), name


def build_edge_binary(data: Any, v: np.ndarray, y: np.ndarray) -> tuple[Any, str]:
    name = data.draw(st.sampled_from(sorted(BINARY_FNS)), label="binary")
    fn = BINARY_FNS[name]
    sources = ["scalar", "constant"]
    try:
        np.broadcast_shapes(v.shape, y.shape)
        sources.append("y")
    except ValueError:
        pass
    source = data.draw(st.sampled_from(sources), label="operand")
    if source == "y":
        def other(y):
            return y
        label = "y"
    elif source == "scalar":
        const = data.draw(st.sampled_from(PY_SCALARS), label="scalar")
        steer("add_of_int_zero", name == "add" and type(const) in (int, bool) and const == 0)
        steer("python_complex_widens_float32", type(const) is complex and v.dtype in (
            np.float32, np.float16))

        def other(y):
            return const
        label = repr(const)
    else:
        dtype = data.draw(st.sampled_from([v.dtype, y.dtype]), label="constant dtype")
        ndim = data.draw(st.integers(0, v.ndim), label="constant ndim")
        shape = v.shape[v.ndim - ndim:]
        const = data.draw(hnp.arrays(dtype, shape, elements=edge_elements(dtype)),
                          label="constant")

        def other(y):
            return const
        label = f"const{const.dtype}{list(const.shape)}"
    w = other(y)
    if NUMBA_MODE[0]:
        shape = np.broadcast_shapes(np.shape(w), v.shape)
        steer("numba_kernel_reused_for_another_broadcast", isinstance(w, np.ndarray) and (
            np.shape(w) != shape or v.shape != shape))
        with np.errstate(all="ignore"):
            steer("numba_python_float_not_rounded_to_float32", type(w) is float and (
                v.dtype in (np.float32, np.float16) and np.isfinite(w)
                and float(np.array(w, v.dtype)) != w))
    swap = data.draw(st.booleans(), label="swap")
    steer("grad_dtype_of_power_with_bool_exponent", name == "power" and not swap and (
        np.asarray(other(y)).dtype.kind == "b"))
    if swap:
        return (lambda v, y: fn(other(y), v)), f"{name}({label}, v)"
    return (lambda v, y: fn(v, other(y))), f"{name}(v, {label})"


def build_edge_reduction(data: Any, v: np.ndarray, y: np.ndarray) -> tuple[Any, str]:
    name = data.draw(st.sampled_from(["sum", "prod", "max", "min", "mean"]), label="reduction")
    axis = reduce_axes(data, v.ndim)
    keepdims = data.draw(st.booleans(), label="keepdims")
    steer("prod_over_no_axes", name == "prod" and (v.ndim == 0 or axis == ()))
    steer("mean_of_integers_overflows", name == "mean" and v.dtype.kind in "iu")
    fn = {"sum": dnp.sum, "prod": dnp.prod, "max": dnp.max, "min": dnp.min,
          "mean": dnp.mean}[name]
    return (lambda v, y: fn(v, axis=axis, keepdims=keepdims)), \
        f"{name}(axis={axis}, keepdims={keepdims})"


def build_cast(data: Any, v: np.ndarray, y: np.ndarray) -> tuple[Any, str]:
    dtype = data.draw(st.sampled_from(CASTS), label="cast")
    steer("complex_to_bool", v.dtype.kind == "c" and np.dtype(dtype).kind == "b")
    return (lambda v, y: dnp.astype(v, dtype)), f"astype({np.dtype(dtype).name})"


def build_index(data: Any, v: np.ndarray, y: np.ndarray) -> tuple[Any, str]:
    """Gathers and scatters: at the integer input y (traced under jit: the gather primitives)
    or at constant integer arrays (the getitem primitives)."""
    if v.size == 0:
        raise Steer("nothing to index")
    options = ["gather_constant", "at_add_constant", "at_set_constant"]
    if y.dtype.kind in "iu":
        options += ["take_clip_y", "take_along_y", "at_max_y"]
    kind = data.draw(st.sampled_from(options), label="index op")
    n = v.shape[0] if v.ndim else 1
    if kind == "take_clip_y":
        # (not mode="wrap": NumPy's take wraps a negative index by adding the length in a
        # loop, some 2**63 / n times for the most negative int64)
        return (lambda v, y: dnp.take(v, y, mode="clip")), "take(v, y, mode='clip')"
    if kind == "take_along_y":
        flat = v.size
        return (lambda v, y: dnp.take_along_axis(
            dnp.reshape(v, (-1,)), dnp.reshape(dnp.mod(y, flat), (-1,)), axis=0)), \
            "take_along_axis(v.ravel(), y % v.size)"
    if kind == "at_max_y":
        return (lambda v, y: dnp.at(dnp.reshape(v, (-1,)))[dnp.mod(y, v.size)].max(
            np.array(1.5, v.dtype))), "v.ravel().at[y % v.size].max(1.5)"
    size = data.draw(st.integers(0, 4), label="index size")
    idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=size, max_size=size),
                             label="index"), dtype=np.intp)
    if kind == "gather_constant":
        if v.ndim == 0:
            raise Steer("a 0-d value has no axis to gather along")
        return (lambda v, y: v[idx]), f"v[{idx.tolist()}]"
    value = data.draw(st.sampled_from(PY_SCALARS[:11]), label="value")
    if v.ndim == 0:
        raise Steer("a 0-d value has no axis to update")
    if kind == "at_add_constant":
        return (lambda v, y: dnp.at(v)[idx].add(value)), f"v.at[{idx.tolist()}].add({value})"
    return (lambda v, y: dnp.at(v)[idx].set(value)), f"v.at[{idx.tolist()}].set({value})"


FFT_NORMS = [None, "backward", "ortho", "forward"]


def build_fft(data: Any, v: np.ndarray, y: np.ndarray) -> tuple[Any, str]:
    """One of NumPy's FFTs along a drawn axis, with a drawn length (padding or truncating) and
    norm; also its absolute value or real part, so that a real result (and grad) follows."""
    if v.ndim == 0:
        raise Steer("an FFT needs an axis")
    kind = data.draw(st.sampled_from(["fft", "ifft", "rfft", "irfft", "hfft", "ihfft", "fft2",
                                      "ifftn", "abs_fft", "real_ifft"]), label="fft")
    axis = data.draw(st.integers(-v.ndim, v.ndim - 1), label="fft axis")
    n = data.draw(st.sampled_from([None, 1, 2, 3, 5, 8]), label="fft n")
    norm = data.draw(st.sampled_from(FFT_NORMS), label="fft norm")
    f = dnp.fft
    if kind in ("fft2", "ifftn"):
        if v.ndim < 2:
            raise Steer("a 2-d FFT needs two axes")
        axes, s = (axis, (axis + 1) % v.ndim - v.ndim), None if n is None else (n, n)
        fn = f.fft2 if kind == "fft2" else f.ifftn
        return (lambda v, y: fn(v, s=s, axes=axes, norm=norm)), \
            f"{kind}(v, s={s}, axes={axes}, norm={norm!r})"
    if kind == "abs_fft":
        return (lambda v, y: dnp.abs(f.fft(v, n=n, axis=axis, norm=norm))), \
            f"abs(fft(v, n={n}, axis={axis}, norm={norm!r}))"
    if kind == "real_ifft":
        return (lambda v, y: dnp.real(f.ifft(v, n=n, axis=axis, norm=norm))), \
            f"real(ifft(v, n={n}, axis={axis}, norm={norm!r}))"
    if kind in ("irfft", "hfft") and v.shape[axis] == 0:
        # NumPy 2.4's irfft/hfft of an empty axis padded to n return uninitialized memory
        # (np.fft.irfft(np.array([]), n=1) is [6.9e-310] or so); diffprog's traced form is 0
        raise Steer("NumPy's irfft of nothing")
    fn = getattr(f, kind)
    return (lambda v, y: fn(v, n=n, axis=axis, norm=norm)), \
        f"{kind}(v, n={n}, axis={axis}, norm={norm!r})"


def _dtype_keeping(data: Any, v: np.ndarray, label: str) -> tuple[Any, str]:
    """A unary function drawn from the tables that keeps v's dtype and shape (a loop carry)."""
    name = data.draw(st.sampled_from(sorted(UNARY_FNS)), label=label)
    fn = UNARY_FNS[name]
    with np.errstate(all="ignore"):
        out = np.asarray(fn(v))
    if out.dtype != v.dtype or out.shape != v.shape:
        raise Steer("the body changes the carry's dtype or shape")
    return fn, name


def build_control(data: Any, v: np.ndarray, y: np.ndarray) -> tuple[Any, str]:
    """cond, switch, fori_loop, while_loop and scan with random bodies from the tables, their
    predicates and trip counts read from the (edge) values: nan, infinities, empty arrays."""
    kind = data.draw(st.sampled_from(["cond", "switch", "fori_loop", "while_loop", "scan"]),
                     label="control")
    f, fname = _dtype_keeping(data, v, "body")
    if kind in ("cond", "switch"):
        g, gname = _dtype_keeping(data, v, "other branch")
        if kind == "cond":
            pred = data.draw(st.sampled_from(["any(v > 0)", "sum(v) > 0", "all(isfinite(v))"]),
                             label="predicate")
            p = {"any(v > 0)": lambda v: dnp.any(dnp.greater(v, 0)),
                 "sum(v) > 0": lambda v: dnp.greater(dnp.real(dnp.sum(v)), 0),
                 "all(isfinite(v))": lambda v: dnp.all(dnp.isfinite(v))}[pred]
            return (lambda v, y: dp.cond(p(v), f, g, v)), f"cond({pred}, {fname}, {gname}, v)"
        # the branch index counts the nans: 0, 1 or clamped to the last of three branches
        return (lambda v, y: dp.switch(dnp.sum(dnp.isnan(v)), [f, g, dnp.positive], v)), \
            f"switch(sum(isnan(v)), [{fname}, {gname}, positive], v)"
    if kind == "fori_loop":
        k = data.draw(st.integers(0, 3), label="trips")
        return (lambda v, y: dp.fori_loop(0, k, lambda i, c: f(c), v)), \
            f"fori_loop(0, {k}, {fname}, v)"
    if kind == "while_loop":
        k = data.draw(st.integers(0, 3), label="most trips")

        def loop(v, y):
            # stops after k trips or once no element is finite (data-dependent)
            def go(c):
                return dnp.logical_and(dnp.less(c[0], k), dnp.any(dnp.isfinite(c[1])))
            return dp.while_loop(go, lambda c: (c[0] + 1, f(c[1])), (0, v))[1]
        return loop, f"while_loop(i < {k} and any(isfinite(v)), {fname}, v)"
    if v.ndim == 0:
        raise Steer("scan needs an axis")
    name = data.draw(st.sampled_from(sorted(BINARY_FNS)), label="scan combine")
    h = BINARY_FNS[name]
    reverse = data.draw(st.booleans(), label="reverse")
    init = np.zeros(v.shape[1:], v.dtype)
    with np.errstate(all="ignore"):
        if v.shape[0] and np.asarray(h(init, v[0])).dtype != v.dtype:
            raise Steer("the combination changes the carry's dtype")

    def scanned(v, y):
        carry, ys = dp.scan(lambda c, x: (h(c, x), f(c)), init, v, reverse=reverse)
        return dnp.concatenate([dnp.expand_dims(carry, 0), ys], axis=0)
    return scanned, f"scan(c, x -> ({name}(c, x), {fname}(c)), 0, v, reverse={reverse})"


EDGE_BUILDERS = {"unary": build_edge_unary, "binary": build_edge_binary,
                 "reduction": build_edge_reduction, "shape": build_shape, "cast": build_cast,
                 "index": build_index, "fft": build_fft, "control": build_control}
REFUSED = (Steer, TypeError, ValueError, IndexError, ZeroDivisionError, OverflowError,
           NotImplementedError, np.exceptions.DTypePromotionError)


def build_edge_program(data: Any, x: np.ndarray, y: np.ndarray, max_len: int = 4,
                       builders: dict | None = None) -> Program:
    """A program of 1 to ``max_len`` steps that runs eagerly on (x, y); steps that eager mode
    refuses on the current value are drawn again (at most a few times)."""
    builders = EDGE_BUILDERS if builders is None else builders
    n = data.draw(st.integers(1, max_len), label="length")
    program = Program()
    v = x
    with np.errstate(all="ignore"):
        for _ in range(n):
            for _attempt in range(4):
                kind = data.draw(st.sampled_from(sorted(builders)), label="kind")
                try:
                    step, label = builders[kind](data, v, y)
                    out = np.asarray(step(v, y))
                except REFUSED:
                    continue
                v = out
                program.steps.append(step)
                program.labels.append(label)
                break
    return program


# ----------------------------------------------------------------------------------------------
# Comparison


# NumPy's own fmax/fmin return either zero for (-0.0, 0.0), by the element's position in the
# array (vector loop or scalar tail), and so does clip: after them the sign of a zero is not
# deterministic, and not compared.
ANY_ZERO_SIGN = {"fmax", "fmin", "clip"}


def same(got: Any, want: Any, inexact: bool, zero_sign: bool = True) -> str | None:
    """None if ``got`` equals ``want`` (see the module docstring), else what differs."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"dtype/shape {got.dtype}{list(got.shape)} != {want.dtype}{list(want.shape)}"
    if want.dtype.kind == "c":
        return (same(got.real, want.real, inexact, zero_sign)
                or same(got.imag, want.imag, inexact, zero_sign))
    if not zero_sign and want.dtype.kind == "f":
        got, want = got + np.zeros((), got.dtype), want + np.zeros((), want.dtype)  # -0 -> +0
    if want.dtype.kind != "f":
        return None if np.array_equal(got, want) else f"values {got!r} != {want!r}"
    nan = np.isnan(want)
    if not np.array_equal(np.isnan(got), nan):
        return f"nan positions: {got!r} != {want!r}"
    g, w = got[~nan], want[~nan]
    if not inexact or not np.isfinite(w).all() and not np.array_equal(
            g[~np.isfinite(w)], w[~np.isfinite(w)]):
        if np.array_equal(g, w) and np.array_equal(np.signbit(g), np.signbit(w)):
            return None
        if not inexact:
            return f"bits: {got!r} != {want!r}"
        return f"infinities: {got!r} != {want!r}"
    fin = np.isfinite(w)
    if not np.array_equal(g[~fin], w[~fin]) or not np.isfinite(g[fin]).all():
        return f"infinities: {got!r} != {want!r}"
    with np.errstate(all="ignore"):
        err = np.abs(g[fin].astype(np.float64) - w[fin].astype(np.float64))
        tol = ULPS * np.maximum(np.spacing(np.abs(w[fin])).astype(np.float64),
                                float(np.finfo(want.dtype).smallest_subnormal))
    zero = w[fin] == 0
    if np.any(err > tol) or not np.array_equal(np.signbit(g[fin][zero]),
                                               np.signbit(w[fin][zero])):
        return f"more than {ULPS} ulp: {got!r} != {want!r}"
    return None


def _outputs(out: Any) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _kinds(f: Any, args: tuple) -> tuple[bool, bool]:
    """(inexact, zero_sign): does ``f`` use primitives that are not correctly rounded, and is
    the sign of its zeros deterministic?"""
    with np.errstate(all="ignore"):
        names = set(trace_graph(f, args).primitive_names())
    return bool(INEXACT & names), not ANY_ZERO_SIGN & names


def compare(f: Any, args: tuple, executor: str) -> list[str]:
    """Differences between ``f(*args)`` eagerly and under ``jit(f, executor=executor)``;
    when eager mode raises, jit must raise the same kind of error."""
    problems = []
    with np.errstate(all="ignore"):
        try:
            want = f(*args)
        except Exception as e:  # the error itself is compared
            try:
                dp.jit(f, executor=executor)(*args)
            except type(e):
                return []
            except Exception as e2:
                return [f"{executor}: eager raised {e!r}, jit raised {e2!r}"]
            return [f"{executor}: eager raised {e!r}, jit returned"]
        try:
            got = dp.jit(f, executor=executor)(*args)
        except Exception as e:
            return [f"{executor}: jit raised {e!r} where eager returned {want!r}"]
    inexact, zero_sign = _kinds(f, args)
    for k, (g, w) in enumerate(zip(_outputs(got), _outputs(want))):
        msg = same(g, w, inexact, zero_sign)
        if msg:
            problems.append(f"{executor} output {k}: {msg}")
    return problems


def gradient(program: Program):
    def loss(x, y):
        return dnp.sum(program(x, y))
    return dp.grad(loss)


def differentiable(x: np.ndarray, program: Program, y: np.ndarray) -> bool:
    if x.dtype.kind != "f":
        return False
    with np.errstate(all="ignore"):
        out = np.asarray(program(x, y))
    return out.dtype.kind == "f"


def run_fuzz_case(program: Program, x: np.ndarray, y: np.ndarray,
                  executors: tuple = ("numpy", "numba")) -> list[str]:
    problems = []
    for executor in executors:
        problems += compare(program, (x, y), executor)
        if differentiable(x, program, y):
            problems += [f"grad: {p}" for p in compare(gradient(program), (x, y), executor)]
    return problems


# ----------------------------------------------------------------------------------------------
# The fuzz


def fuzz_settings(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.slow
@fuzz_settings(40)
@given(st.data(), edge_pair())
def test_fuzz_eager_vs_jit_numpy_executor(data, pair):
    x, y = pair
    program = build_edge_program(data, x, y)
    problems = run_fuzz_case(program, x, y, executors=("numpy",))
    assert not problems, f"{program} on x={x!r}, y={y!r}:\n" + "\n".join(problems)


@pytest.mark.slow
@fuzz_settings(6)
@given(st.data(), edge_pair([np.float64, np.float32]))
def test_fuzz_eager_vs_jit_numba_executor(data, pair):
    # each new program compiles its kernels (about a second each, cold): few examples here
    x, y = pair
    NUMBA_MODE[0] = True
    try:
        program = build_edge_program(data, x, y, max_len=3)
    finally:
        NUMBA_MODE[0] = False
    problems = run_fuzz_case(program, x, y, executors=("numba",))
    assert not problems, f"{program} on x={x!r}, y={y!r}:\n" + "\n".join(problems)


# FFTs and control flow between elementwise steps
FFT_CONTROL_BUILDERS = {"fft": build_fft, "control": build_control, "unary": build_edge_unary}


@pytest.mark.slow
@fuzz_settings(60)
@given(st.data(), edge_pair([np.float64, np.float32, np.int64, np.bool_, np.complex128]))
def test_fuzz_fft_and_control_flow_eager_vs_jit(data, pair):
    x, y = pair
    program = build_edge_program(data, x, y, max_len=3, builders=FFT_CONTROL_BUILDERS)
    problems = run_fuzz_case(program, x, y, executors=("numpy",))
    assert not problems, f"{program} on x={x!r}, y={y!r}:\n" + "\n".join(problems)


@pytest.mark.slow
@fuzz_settings(400)
@given(st.data(), edge_pair(), st.sampled_from(["numpy", "numba"]))
def test_fuzz_eager_vs_jit_thorough(data, pair, executor):
    x, y = pair
    NUMBA_MODE[0] = executor == "numba"
    try:
        program = build_edge_program(data, x, y, max_len=5)
    finally:
        NUMBA_MODE[0] = False
    problems = run_fuzz_case(program, x, y, executors=(executor,))
    assert not problems, f"{program} on x={x!r}, y={y!r}:\n" + "\n".join(problems)


# ----------------------------------------------------------------------------------------------
# Bugs found by the fuzz, now fixed: their minimal reproducers stay as regression tests. A new
# bug gets a reproducer here marked xfail(strict=True) and an entry in STEERED until it is fixed


def _fixed(name: str, f: Any, *args: Any, executor: str = "numpy", where: str = "") -> Any:
    """A bug the fuzz found and that is fixed: its reproducer stays as a regression test."""
    return pytest.param(f, args, executor, id=name)


KNOWN_BUGS = [
    _fixed("add_of_int_zero", lambda x: dnp.add(x, 0), np.array([-0.0, 1.0]),
         where="diffprog/passes.py: the identity simplification drops add(x, 0) for a Python "
               "int (or False) 0, whose sum with -0.0 is +0.0; only a float -0.0 is add's "
               "identity"),
    _fixed("add_of_int_zero_numba", lambda x: dnp.add(x, False), np.array([-0.0]),
         executor="numba", where="diffprog/passes.py, as add_of_int_zero"),
    _fixed("prod_over_no_axes_dtype", lambda x: dnp.prod(x), np.array(3, np.uint8),
           where="diffprog/numpy/_reductions.py: prod of a 0-d traced value (or axis=()) "
                 "returned the operand, where NumPy promotes small integers and bool"),
    _fixed("prod_over_no_axes_complex", lambda x: dnp.prod(x),
           np.array(complex(math.inf, math.nan)),
         where="diffprog/numpy/_reductions.py: NumPy's prod multiplies by 1 even over no "
               "axes, (1+0j)*(inf+nanj) = nan+nanj; the traced prod returns inf+nanj"),
    _fixed("reciprocal_of_integers", lambda x: dnp.reciprocal(x), np.array([1, 2], np.uint8),
         where="diffprog/numpy/_elementwise.py reciprocal: a traced value goes to "
               "divide(1.0, x), a float; NumPy's reciprocal of integers is integer (bool too), "
               "and of complex -0+0j nan+nanj where 1.0 / (-0+0j) is inf+nanj"),
    _fixed("reciprocal_of_complex_zero", lambda x: dnp.reciprocal(x),
         np.array([complex(-0.0, 0.0)]), where="as reciprocal_of_integers"),
    _fixed("mean_of_integers_overflows", lambda x: dnp.mean(x),
         np.array([-2 ** 63 + 1, -7, -2]),
         where="diffprog/numpy/_reductions.py mean: a traced integer array is summed in its "
               "own dtype (int64 wraps around) and then divided; NumPy's mean accumulates "
               "integers in float64"),
    _fixed("grad_dtype_of_power_with_bool_exponent",
         dp.grad(lambda x: dnp.sum(dnp.power(x, np.array(True)))), np.array([0.5], np.float16),
         where="pow's vjp (diffprog/prims/elementwise.py) computes a float16 x's cotangent in "
               "float64 for a bool exponent; eager grad casts it back to float16 "
               "(ad._user_value, on concrete values only), jit(grad) returns float64"),
    _fixed("python_complex_widens_float32", lambda x: x * 1j, np.array([3.0], np.float32),
         where="diffprog/numpy/_core.py (_binary/_align): a traced float32 (or float16) with "
               "a Python complex scalar is converted to complex128; NumPy's weak Python "
               "scalars give complex64 (eager traced values too, e.g. under jvp)"),
    _fixed("numba_python_float_not_rounded_to_float32", lambda x: (x * 1e300) / 1e300,
         np.array([3.0, 1.0], np.float32), executor="numba",
         where="diffprog/kernels/fuse.py: a fused float32 kernel computes with the Python "
               "float 1e300 as a float64 (no overflow in x * 1e300), where NumPy converts the "
               "weak scalar to float32 (inf): [3, 1] instead of [nan, nan]; jit(grad) of "
               "arctan2(x, 1e300) on float32 gives 0 instead of nan the same way"),
    _fixed("complex_to_bool", lambda x: dnp.astype(x, np.bool_),
         np.array([complex(-0.0, math.inf), 1j, 0j]),
         where="diffprog/prims/elementwise.py _convert: a complex value cast to bool (or int) "
               "keeps the real part first, so 1j becomes False; NumPy's bool(z) is z != 0"),
    _fixed("complex_sign_of_infinities_and_rounding", lambda x: dnp.sign(x),
         np.array([complex(math.inf, -0.0), complex(math.nan, math.inf), 1.5 + 1.5j,
                   -0.0 + 1.5j, complex(1.5, -0.0), complex(5e-324, 5e-324)]),
         where="diffprog/numpy/_elementwise.py sign: a traced complex sign was x / |x| as a "
               "complex division: nan where NumPy 2 gives the unit along an infinite part, a "
               "last-bit difference where NumPy divides each part by hypot(re, im), and +0.0 "
               "for a -0.0 part"),
    _fixed("complex_sign_numba", lambda x: dnp.sign(x),
         np.array([complex(-math.inf, 2.0), 1.5 - 2.5j, complex(-0.0, -1e-310)],
                  np.complex64), executor="numba", where="as complex_sign_of_infinities"),
]
STEERED: set[str] = set()  # the known bugs the fuzz steers around (none open)


def test_fixed_numba_kernel_reused_for_another_broadcast():
    """In one process, the fused kernel of ``x + y`` compiled for x, y of shape (2,) is reused
    for x of shape (2,) and y of shape (3, 1, 2), and reads past its operands (wrong values,
    garbage, zeros). Of the 36 broadcastable pairs of 8 small shapes, 16 fail so."""
    def f(x, y):
        return dnp.add(x, y)
    compare(f, (np.array([1, 2]), np.array([10.0, 20.0], np.float32)), "numba")
    y = (10 * np.arange(6.0)).astype(np.float32).reshape(3, 1, 2)
    problems = compare(f, (np.array([1, 2]), y), "numba")
    assert not problems, problems


@pytest.mark.parametrize("f,args,executor", KNOWN_BUGS)
def test_known_bug_reproducer(f, args, executor):
    problems = compare(f, args, executor)
    assert not problems, problems
